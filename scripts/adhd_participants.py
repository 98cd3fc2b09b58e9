"""Rule adhd_participants: sub-<id>, site TR and phenotype of the fetched subjects."""
from cohort_connectome.jobs.runtime import job_log
from cohort_connectome.jobs.sources import write_adhd_participants

with job_log(snakemake.log[0], snakemake.rule):
    write_adhd_participants(snakemake.input.phenotypic, snakemake.input.slice_timing,
                            snakemake.params.ids, snakemake.output[0])
