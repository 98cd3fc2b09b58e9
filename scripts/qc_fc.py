"""Rule qc_fc: correlation of every edge with mean framewise displacement."""
from cohort_connectome.jobs.qc import qc_fc
from cohort_connectome.jobs.runtime import job_log

with job_log(snakemake.log[0], snakemake.rule):
    qc_fc(
        snakemake.input.table,
        snakemake.input.qc,
        snakemake.input.labels,
        snakemake.output.table,
        snakemake.output.figure,
        title=snakemake.params.title,
    )
