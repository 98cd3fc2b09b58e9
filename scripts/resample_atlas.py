"""Rule resample_atlas: the atlas maps on the run's grid."""
from cohort_connectome.jobs import job_log, resample_atlas

subject = snakemake.wildcards.run
with job_log(snakemake.log[0], snakemake.rule, subject):
    resample_atlas(snakemake.params.run, snakemake.input.maps, snakemake.output[0], subject)
