# Per run: atlas on the run grid -> region signals -> cleaned signals -> connectomes.
# {run} is the run's name (its BIDS entities; sub-<id> for single-run cohorts) and
# {folder} where its outputs go (sub-<id>[/ses-<s>]).


rule resample_atlas:
    input:
        run=get_run,
        maps=ATLAS_MAPS,
    output:
        "work/{folder}/{run}_atlas-{atlas}_desc-resampled_maps.nii.gz",
    log:
        "logs/resample_atlas/{folder}/{run}_atlas-{atlas}.log",
    benchmark:
        "benchmarks/resample_atlas/{folder}/{run}_atlas-{atlas}.tsv"
    params:
        run=lambda w: COHORT.loc[w.run, "func"],
    conda:
        "../../envs/numerics.yaml"
    script:
        "../../scripts/resample_atlas.py"


rule extract_timeseries:
    input:
        run=get_run,
        maps=rules.resample_atlas.output[0],
        labels=ATLAS_LABELS,
    output:
        timeseries="work/{folder}/{run}_atlas-{atlas}_desc-raw_timeseries.tsv",
        sidecar="work/{folder}/{run}_atlas-{atlas}_desc-raw_timeseries.json",
    log:
        "logs/extract_timeseries/{folder}/{run}_atlas-{atlas}.log",
    benchmark:
        "benchmarks/extract_timeseries/{folder}/{run}_atlas-{atlas}.tsv"
    params:
        run=lambda w: COHORT.loc[w.run, "func"],
    conda:
        "../../envs/numerics.yaml"
    script:
        "../../scripts/extract_timeseries.py"


rule clean_timeseries:
    input:
        timeseries=rules.extract_timeseries.output.timeseries,
        sidecar=rules.extract_timeseries.output.sidecar,
        confounds=get_confounds,
        bold_sidecar=get_sidecar,
    output:
        timeseries="results/{folder}/func/{run}_atlas-{atlas}_timeseries.tsv",
        sidecar="results/{folder}/func/{run}_atlas-{atlas}_timeseries.json",
        qc="results/{folder}/func/{run}_atlas-{atlas}_qc.tsv",
    log:
        "logs/clean_timeseries/{folder}/{run}_atlas-{atlas}.log",
    benchmark:
        "benchmarks/clean_timeseries/{folder}/{run}_atlas-{atlas}.tsv"
    params:
        confounds=lambda w: COHORT.loc[w.run, "confounds"],
        bold_sidecar=lambda w: COHORT.loc[w.run, "sidecar"],
        clean=config["clean"],
        t_r=get_t_r,
    conda:
        "../../envs/numerics.yaml"
    script:
        "../../scripts/clean_timeseries.py"


rule estimate_connectomes:
    input:
        timeseries=rules.clean_timeseries.output.timeseries,
        clean_sidecar=rules.clean_timeseries.output.sidecar,
    output:
        relmats=expand(
            "results/{{folder}}/func/{{run}}_atlas-{{atlas}}_meas-{kind}_relmat.tsv",
            kind=KINDS,
        ),
        sidecar="results/{folder}/func/{run}_atlas-{atlas}_connectivity.json",
    log:
        "logs/estimate_connectomes/{folder}/{run}_atlas-{atlas}.log",
    benchmark:
        "benchmarks/estimate_connectomes/{folder}/{run}_atlas-{atlas}.tsv"
    params:
        kinds=KINDS,
        estimator=config["connectivity"]["estimator"],
        options=get_estimator_options,
    conda:
        "../../envs/connectivity.yaml"
    script:
        "../../scripts/estimate_connectomes.py"


rule plot_subject_connectomes:
    input:
        relmats=rules.estimate_connectomes.output.relmats,
        labels=ATLAS_LABELS,
    output:
        matrices=expand(
            "results/{{folder}}/figures/{{run}}_atlas-{{atlas}}_meas-{kind}_matrix.png",
            kind=KINDS,
        ),
        connectomes=expand(
            "results/{{folder}}/figures/{{run}}_atlas-{{atlas}}_meas-{kind}_connectome.png",
            kind=KINDS,
        ),
    log:
        "logs/plot_subject_connectomes/{folder}/{run}_atlas-{atlas}.log",
    benchmark:
        "benchmarks/plot_subject_connectomes/{folder}/{run}_atlas-{atlas}.tsv"
    params:
        kinds=KINDS,
        title=lambda w: f"{w.run}, atlas {w.atlas}",
        negate=config["figures"]["negate"],
        n_edges=config["figures"]["n_edges"],
    conda:
        "../../envs/plotting.yaml"
    script:
        "../../scripts/plot_subject_connectomes.py"


if COMBINE:

    ruleorder: combine_runs > clean_timeseries

    rule combine_runs:
        input:
            timeseries=lambda w: [run_path(r, "timeseries.tsv") for r in get_subject_runs(w)],
            sidecars=lambda w: [run_path(r, "timeseries.json") for r in get_subject_runs(w)],
        output:
            timeseries="results/{subject}/func/{subject}_atlas-{atlas}_timeseries.tsv",
            sidecar="results/{subject}/func/{subject}_atlas-{atlas}_timeseries.json",
        log:
            "logs/combine_runs/{subject}_atlas-{atlas}.log",
        benchmark:
            "benchmarks/combine_runs/{subject}_atlas-{atlas}.tsv"
        params:
            runs=get_subject_runs,
        conda:
            "../../envs/numerics.yaml"
        script:
            "../../scripts/combine_runs.py"
