"""Rule fetch_library_atlas: a library atlas, downloaded, verified and written into the cache."""
from cohort_connectome.fetch.atlas_library import fetch_library_atlas
from cohort_connectome.jobs.runtime import job_log

p = snakemake.params
with job_log(snakemake.log[0], snakemake.rule):
    fetch_library_atlas(p.atlas, p.parameters, p.cache_dir, mirror=p.mirror,
                        registry=p.registry, retries=p.retries)
