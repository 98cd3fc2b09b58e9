"""Rule extract_timeseries: raw region signals of one run, for every atlas."""
from cohort_connectome.jobs.runtime import job_log
from cohort_connectome.jobs.extraction import extract_timeseries

subject = snakemake.wildcards.run
with job_log(snakemake.log[0], snakemake.rule, subject):
    extract_timeseries(
        snakemake.params.run,
        snakemake.params.atlases,
        snakemake.input.regions,
        snakemake.params.specs,
        snakemake.input.images,
        snakemake.input.tables,
        snakemake.output.timeseries,
        snakemake.output.sidecars,
        snakemake.output.coverage,
        mask_path=snakemake.params.mask or None,
        subject=subject,
        on_bad_input=snakemake.params.on_bad_input,
    )
