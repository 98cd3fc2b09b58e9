"""Rule resample_atlas: one atlas on one voxel grid (extractor and coverage)."""
from cohort_connectome.jobs.runtime import job_log
from cohort_connectome.jobs.extraction import resample_atlas

runs = snakemake.params.runs
with job_log(snakemake.log[0], snakemake.rule, runs[0] if len(runs) == 1 else None):
    resample_atlas(
        snakemake.params.spec,
        snakemake.input.image,
        snakemake.input.table,
        snakemake.output.regions,
        snakemake.params.shape,
        snakemake.params.affine,
        runs,
        snakemake.params.run_paths,
        on_bad_input=snakemake.params.on_bad_input,
    )
