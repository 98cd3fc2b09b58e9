# Per grid: atlas on the runs' grid; per run: region signals -> cleaned signals -> connectomes.
# {run} is the run's name (its BIDS entities; sub-<id> for single-run cohorts) and
# {folder} where its outputs go (sub-<id>[/ses-<s>]).


# Once per distinct voxel grid of the cohort ({grid}: a hash of shape + affine,
# read from the run headers when the DAG is built), shared by all its runs.
rule resample_atlas:
    input:
        maps=ATLAS_MAPS,
        labels=ATLAS_LABELS,
    output:
        maps="work/atlas-{atlas}/grid-{grid}_desc-resampled_maps.nii.gz",
        projector="work/atlas-{atlas}/grid-{grid}_desc-projector.npz",
    log:
        "logs/resample_atlas/grid-{grid}_atlas-{atlas}.log",
    benchmark:
        "benchmarks/resample_atlas/grid-{grid}_atlas-{atlas}.tsv"
    conda:
        "../../envs/numerics.yaml"
    resources:
        mem_mb=mem_mb_for_run,
        runtime=runtime_for_run,
    params:
        shape=lambda w: GRIDS[w.grid][0],
        affine=lambda w: GRIDS[w.grid][1],
        runs=runs_on_grid,
        run_paths=lambda w: [COHORT.loc[r, "func"] for r in runs_on_grid(w)],
        on_bad_input=ON_BAD_INPUT,
    script:
        "../../scripts/resample_atlas.py"


rule extract_timeseries:
    input:
        run=get_run,
        maps=grid_maps,
        projector=grid_projector,
    output:
        timeseries="work/{folder}/{run}_atlas-{atlas}_desc-raw_timeseries.tsv",
        sidecar="work/{folder}/{run}_atlas-{atlas}_desc-raw_timeseries.json",
    log:
        "logs/extract_timeseries/{folder}/{run}_atlas-{atlas}.log",
    benchmark:
        "benchmarks/extract_timeseries/{folder}/{run}_atlas-{atlas}.tsv"
    conda:
        "../../envs/numerics.yaml"
    resources:
        mem_mb=mem_mb_for_run,
        runtime=runtime_for_run,
    params:
        run=lambda w: COHORT.loc[w.run, "func"],
        on_bad_input=ON_BAD_INPUT,
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
    wildcard_constraints:
        # the cohort's runs: a subject's combined series (combine_runs) has the
        # same file pattern, {run} being the subject
        run="|".join(map(re.escape, RUNS)),
    resources:
        mem_mb=mem_mb_for_run,
        runtime=runtime_for_run,
    params:
        confounds=lambda w: COHORT.loc[w.run, "confounds"],
        bold_sidecar=lambda w: COHORT.loc[w.run, "sidecar"],
        clean=config["clean"],
        t_r=get_t_r,
        on_bad_input=ON_BAD_INPUT,
    run:
        run_in_process("clean_timeseries", input, output, params, wildcards, log, rule)


# One run's (or, runs combined, one subject's) connectivity matrices. With a
# closed-form estimator (ledoit_wolf, empirical: ~0.02 s per run) the job runs
# inside the scheduler process, like clean_timeseries; GraphicalLassoCV (seconds
# of GIL-bound work per run) gets a process of its own.
if ESTIMATE_IN_PROCESS:

    rule estimate_connectomes:
        input:
            unpack(cleaned_or_combined_series),
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
        resources:
            mem_mb=mem_mb_for_run,
            runtime=runtime_for_run,
        params:
            kinds=KINDS,
            estimator=config["connectivity"]["estimator"],
            options=get_estimator_options,
            fallback=config["connectivity"]["fallback"],
            on_bad_input=ON_BAD_INPUT,
        run:
            run_in_process("estimate_connectomes", input, output, params, wildcards, log, rule)

else:

    rule estimate_connectomes:
        input:
            unpack(cleaned_or_combined_series),
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
        conda:
            "../../envs/connectivity.yaml"
        resources:
            mem_mb=mem_mb_for_run,
            runtime=runtime_for_run,
        params:
            kinds=KINDS,
            estimator=config["connectivity"]["estimator"],
            options=get_estimator_options,
            fallback=config["connectivity"]["fallback"],
            on_bad_input=ON_BAD_INPUT,
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
    conda:
        "../../envs/plotting.yaml"
    resources:
        mem_mb=mem_mb_for_run,
        runtime=runtime_for_run,
    params:
        kinds=KINDS,
        title=lambda w: f"{w.run}, atlas {w.atlas}",
        negate=config["figures"]["negate"],
        n_edges=config["figures"]["n_edges"],
    script:
        "../../scripts/plot_subject_connectomes.py"


# connectivity.combine_runs: a subject's runs concatenated, read by
# estimate_connectomes in place of a run's series (cleaned_or_combined_series).
if COMBINE:

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
        conda:
            "../../envs/numerics.yaml"
        resources:
            mem_mb=mem_mb_for_run,
            runtime=runtime_for_run,
        params:
            runs=get_subject_runs,
            on_bad_input=ON_BAD_INPUT,
        script:
            "../../scripts/combine_runs.py"
