"""Rule fetch_adhd_subject: one subject's run and regressors, into the cache."""
from cohort_connectome.fetch.datasets import fetch_adhd_subject
from cohort_connectome.jobs.runtime import job_log

p = snakemake.params
subject_id = snakemake.wildcards.adhd
with job_log(snakemake.log[0], snakemake.rule, f"sub-{subject_id}"):
    fetch_adhd_subject(subject_id, p.cache_dir, mirror=p.mirror, registry=p.registry,
                       retries=p.retries)
