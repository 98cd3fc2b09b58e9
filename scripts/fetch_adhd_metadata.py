"""Rule fetch_adhd_metadata: the ADHD-200 phenotypic and slice-timing tables."""
from cohort_connectome.fetch.datasets import fetch_adhd_metadata
from cohort_connectome.jobs.runtime import job_log

p = snakemake.params
with job_log(snakemake.log[0], snakemake.rule):
    fetch_adhd_metadata(p.cache_dir, mirror=p.mirror, registry=p.registry, retries=p.retries)
