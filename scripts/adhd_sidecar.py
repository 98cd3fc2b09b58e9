"""Rule adhd_sidecar: a run's JSON sidecar with its site's repetition time."""
from cohort_connectome.jobs.runtime import job_log
from cohort_connectome.jobs.sources import write_adhd_sidecar

subject = snakemake.wildcards.subject
with job_log(snakemake.log[0], snakemake.rule, subject):
    write_adhd_sidecar(snakemake.input.phenotypic, snakemake.input.slice_timing,
                       subject[len("sub-"):], snakemake.output[0])
