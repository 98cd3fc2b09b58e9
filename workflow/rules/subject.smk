# Per run, after extraction: cleaned signals -> connectomes (-> figures); the
# runs of a subject combined when connectivity.combine_runs. {run} and {folder}
# as in extraction.smk.


rule clean_timeseries:
    input:
        timeseries="work/{folder}/{run}_atlas-{atlas}_desc-raw_timeseries.tsv",
        sidecar="work/{folder}/{run}_atlas-{atlas}_desc-raw_timeseries.json",
        coverage="results/{folder}/func/{run}_atlas-{atlas}_stat-coverage_bold.tsv",
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
        min_coverage=MIN_COVERAGE,
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
        labels=atlas_table,
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
            timeseries=lambda w: [
                run_path(r, "timeseries.tsv", w.atlas) for r in get_subject_runs(w)
            ],
            sidecars=lambda w: [
                run_path(r, "timeseries.json", w.atlas) for r in get_subject_runs(w)
            ],
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
