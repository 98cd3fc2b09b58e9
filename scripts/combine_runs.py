"""Rule combine_runs: a subject's cleaned runs, concatenated."""
from cohort_connectome.jobs.runtime import job_log
from cohort_connectome.jobs.subject import combine_runs

subject = snakemake.wildcards.subject
with job_log(snakemake.log[0], snakemake.rule, subject):
    combine_runs(snakemake.params.runs, snakemake.input.timeseries, snakemake.input.sidecars,
                 snakemake.output.timeseries, snakemake.output.sidecar, subject=subject,
                 on_bad_input=snakemake.params.on_bad_input,
                 atlas=snakemake.wildcards.atlas)
