"""Rule extract_timeseries: raw region signals of one run."""
from cohort_connectome.jobs.runtime import job_log
from cohort_connectome.jobs.extraction import extract_timeseries

subject = snakemake.wildcards.run
with job_log(snakemake.log[0], snakemake.rule, subject):
    extract_timeseries(
        snakemake.params.run,
        snakemake.input.maps,
        snakemake.input.projector,
        snakemake.output.timeseries,
        snakemake.output.sidecar,
        subject,
        on_bad_input=snakemake.params.on_bad_input,
    )
