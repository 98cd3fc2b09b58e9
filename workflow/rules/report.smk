# The report's own results: the methods text of this run (from the config used
# and the group outputs) and the group tables as HTML pages (Snakemake's report
# shows HTML inline; the TSVs stay downloadable beside them).
from cohort_connectome.methods import software_versions


rule methods:
    input:
        atlases=[atlas_output(a, "json") for a in ATLAS_NAMES],
        info=[group_path("connectomes.json", a) for a in ATLAS_NAMES],
        qc=[group_path("qc.tsv", a) for a in ATLAS_NAMES],
        exclusions=[group_path("exclusions.tsv", a) for a in ATLAS_NAMES],
    output:
        markdown="results/methods.md",
        html=report(
            "results/methods.html",
            caption="../report/methods.rst",
            category=CATEGORY["methods"],
            labels={"output": "methods"},
        ),
    log:
        "logs/methods.log",
    benchmark:
        "benchmarks/methods.tsv"
    conda:
        "../../envs/numerics.yaml"
    resources:
        mem_mb=mem_mb_for_group,
        runtime=runtime_for_group,
    params:
        # the whole config: a changed value reruns this rule (params are compared)
        config=config,
        atlases=ATLAS_NAMES,
        cohort={
            "n_subjects": int(COHORT["participant_id"].nunique()),
            "n_runs": len(RUNS),
            "combine_runs": COMBINE,
        },
        kinds=[KINDS, GROUP_LEVEL_KINDS],
        # this process' environment: it runs the in-process rules (and the others
        # without --use-conda); a new version reruns the rule
        versions=software_versions(),
    script:
        "../../scripts/write_methods.py"


rule report_qc_tables:
    input:
        qc=rules.aggregate_connectomes.output.qc,
        exclusions=rules.aggregate_connectomes.output.exclusions,
    output:
        qc=report(
            group_path("qc.html"),
            caption="../report/qc_table.rst",
            category=CATEGORY["qc"],
            labels={"atlas": "{atlas}", "output": "QC table (page)"},
            subcategory="cohort",
        ),
        exclusions=report(
            group_path("exclusions.html"),
            caption="../report/exclusions.rst",
            category=CATEGORY["qc"],
            labels={"atlas": "{atlas}", "output": "exclusions (page)"},
            subcategory="cohort",
        ),
    log:
        "logs/report_qc_tables/atlas-{atlas}.log",
    benchmark:
        "benchmarks/report_qc_tables/atlas-{atlas}.tsv"
    conda:
        "../../envs/numerics.yaml"
    resources:
        mem_mb=mem_mb_for_group,
        runtime=runtime_for_group,
    params:
        pages=lambda w: {
            "qc": {
                "title": f"QC table, atlas {w.atlas}",
                "note": "One row per run; excluded runs highlighted.",
                "flag": "excluded",
            },
            "exclusions": {
                "title": f"Exclusions, atlas {w.atlas}",
                "note": "The runs left out of the group tables and why.",
            },
        },
    script:
        "../../scripts/report_tables.py"


if COMPARE:

    rule report_comparison_tables:
        input:
            ttest=rules.compare_groups.output.ttest,
            classification=rules.compare_groups.output.classification,
            labels=atlas_table,
        output:
            significant=report(
                compare_path("significant.html"),
                caption="../report/compare_significant.rst",
                category=CATEGORY["comparison"],
                labels={"atlas": "{atlas}", "output": "significant edges"},
                subcategory="tables",
            ),
            classification=report(
                compare_path("classification.html"),
                caption="../report/compare_classification.rst",
                category=CATEGORY["comparison"],
                labels={"atlas": "{atlas}", "output": "classification (page)"},
                subcategory="tables",
            ),
        log:
            f"logs/report_comparison_tables/atlas-{{atlas}}_compare-{COMPARE_LABEL}.log",
        benchmark:
            f"benchmarks/report_comparison_tables/atlas-{{atlas}}_compare-{COMPARE_LABEL}.tsv"
        conda:
            "../../envs/numerics.yaml"
        resources:
            mem_mb=mem_mb_for_group,
            runtime=runtime_for_group,
        params:
            fdr=config["group"]["fdr"],
            pages=lambda w: {
                "significant": {"title": f"Significant edges of {COMPARE}, atlas {w.atlas}"},
                "classification": {
                    "title": f"Classification of {COMPARE}, atlas {w.atlas}",
                    "note": "Cross-validated accuracy per kind, with the chance level.",
                },
            },
        script:
            "../../scripts/report_tables.py"
