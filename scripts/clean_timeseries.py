"""Rule clean_timeseries: detrend, filter, regress confounds, standardize."""
from cohort_connectome.jobs.runtime import job_log
from cohort_connectome.jobs.subject import clean_timeseries

subject = snakemake.wildcards.run
with job_log(snakemake.log[0], snakemake.rule, subject):
    clean_timeseries(
        snakemake.input.timeseries,
        snakemake.input.sidecar,
        snakemake.params.confounds,
        snakemake.output.timeseries,
        snakemake.output.sidecar,
        snakemake.output.qc,
        clean=dict(snakemake.params.clean),
        t_r=snakemake.params.t_r,
        subject=subject,
        bold_sidecar=snakemake.params.bold_sidecar or None,
        on_bad_input=snakemake.params.on_bad_input,
        atlas=snakemake.wildcards.atlas,
        coverage_path=snakemake.input.coverage,
        min_coverage=snakemake.params.min_coverage,
    )
