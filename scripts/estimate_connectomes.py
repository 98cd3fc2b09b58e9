"""Rule estimate_connectomes: one subject's connectivity matrices."""
from cohort_connectome.jobs.runtime import job_log
from cohort_connectome.jobs.subject import estimate_connectomes

subject = snakemake.wildcards.run
with job_log(snakemake.log[0], snakemake.rule, subject):
    estimate_connectomes(
        snakemake.input.timeseries,
        dict(zip(snakemake.params.kinds, snakemake.output.relmats)),
        snakemake.output.sidecar,
        estimator=snakemake.params.estimator,
        estimator_options=dict(snakemake.params.options),
        subject=subject,
        clean_sidecar=snakemake.input.clean_sidecar,
        fallback=snakemake.params.fallback,
        on_bad_input=snakemake.params.on_bad_input,
    )
