# Quality control: a figure per run (figures.qc) and QC-FC across the cohort
# (from aggregate_connectomes' table, group.smk).
from cohort_connectome.io import read_json
from cohort_connectome.qc import run_qc_labels


rule plot_subject_qc:
    input:
        raw="work/{folder}/{run}_atlas-{atlas}_desc-raw_timeseries.tsv",
        timeseries=rules.clean_timeseries.output.timeseries,
        sidecar=rules.clean_timeseries.output.sidecar,
        qc=rules.clean_timeseries.output.qc,
        labels=atlas_table,
    output:
        figure=report(
            "results/{folder}/figures/{run}_atlas-{atlas}_qc.png",
            caption="../report/run_qc.rst",
            category=CATEGORY["qc"],
            subcategory="runs",
            # the run's QC numbers in the report's table of runs, read from its sidecar
            labels=lambda w, input: run_qc_labels(w.run, w.atlas, read_json(input.sidecar)),
        ),
    log:
        "logs/plot_subject_qc/{folder}/{run}_atlas-{atlas}.log",
    benchmark:
        "benchmarks/plot_subject_qc/{folder}/{run}_atlas-{atlas}.tsv"
    conda:
        "../../envs/plotting.yaml"
    resources:
        mem_mb=mem_mb_for_run,
        runtime=runtime_for_run,
    params:
        clean=config["clean"],
        confounds=lambda w: COHORT.loc[w.run, "confounds"],
        title=lambda w: f"{w.run}, atlas {w.atlas}",
    script:
        "../../scripts/plot_subject_qc.py"


rule qc_fc:
    input:
        table=rules.aggregate_connectomes.output.table,
        qc=rules.aggregate_connectomes.output.qc,
        labels=atlas_table,
    output:
        table=report(
            group_path("qcfc.tsv"),
            caption="../report/qcfc_table.rst",
            category=CATEGORY["qc"],
            labels={"atlas": "{atlas}", "output": "QC-FC table"},
            subcategory="cohort",
        ),
        figure=report(
            "results/group/figures/atlas-{atlas}_qcfc.png",
            caption="../report/qcfc.rst",
            category=CATEGORY["qc"],
            labels={"atlas": "{atlas}", "output": "QC-FC figure"},
            subcategory="cohort",
        ),
    log:
        "logs/qc_fc/atlas-{atlas}.log",
    benchmark:
        "benchmarks/qc_fc/atlas-{atlas}.tsv"
    conda:
        "../../envs/group.yaml"
    resources:
        mem_mb=mem_mb_for_group,
        runtime=runtime_for_group,
    params:
        title=lambda w: f"atlas {w.atlas}",
    script:
        "../../scripts/qc_fc.py"


# The runs' mean framewise displacement by group (group.compare): motion that
# differs between groups confounds their comparison.
rule plot_cohort_motion:
    input:
        qc=rules.aggregate_connectomes.output.qc,
        participants=get_participants_table(),
    output:
        figure=report(
            "results/group/figures/atlas-{atlas}_desc-motion_qc.png",
            caption="../report/cohort_motion.rst",
            category=CATEGORY["qc"],
            labels={"atlas": "{atlas}", "output": "motion by group"},
            subcategory="cohort",
        ),
    log:
        "logs/plot_cohort_motion/atlas-{atlas}.log",
    benchmark:
        "benchmarks/plot_cohort_motion/atlas-{atlas}.tsv"
    conda:
        "../../envs/group.yaml"
    resources:
        mem_mb=mem_mb_for_group,
        runtime=runtime_for_group,
    params:
        column=COMPARE,
        levels=config["group"]["levels"],
        title=lambda w: f"atlas {w.atlas}",
    script:
        "../../scripts/plot_cohort_motion.py"
