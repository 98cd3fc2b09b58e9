"""Rule qc_fc: correlation of every edge with mean framewise displacement."""
from cohort_connectome.jobs import job_log, qc_fc

with job_log(snakemake.log[0], snakemake.rule):
    qc_fc(
        snakemake.input.table,
        snakemake.input.qc,
        snakemake.input.labels,
        snakemake.output.table,
        snakemake.output.figure,
        title=snakemake.params.title,
    )
