"""Rule fetch_msdl: the MSDL atlas, downloaded and verified into the cache."""
from cohort_connectome.fetch.datasets import fetch_msdl
from cohort_connectome.jobs.runtime import job_log

p = snakemake.params
with job_log(snakemake.log[0], snakemake.rule):
    fetch_msdl(p.cache_dir, mirror=p.mirror, registry=p.registry, retries=p.retries)
