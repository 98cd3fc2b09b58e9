"""Rule prepare_atlas: an atlas checked and written out as used, with its provenance."""
from cohort_connectome.jobs.runtime import job_log
from cohort_connectome.jobs.extraction import prepare_atlas

with job_log(snakemake.log[0], snakemake.rule):
    prepare_atlas(
        snakemake.params.spec,
        snakemake.params.provenance,
        snakemake.input.image,
        snakemake.input.labels,
        snakemake.output.image,
        snakemake.output.table,
        snakemake.output.sidecar,
        origin_path=snakemake.input.origin or None,
    )
