# Per grid: the atlas on the runs' grid; per run: region signals, read from the
# 4D image in chunks. These jobs read the images, each in its own process.
# {run} is the run's name (its BIDS entities; sub-<id> for single-run cohorts) and
# {folder} where its outputs go (sub-<id>[/ses-<s>]).


# Once per distinct voxel grid of the cohort ({grid}: a hash of shape + affine,
# read from the run headers when the DAG is built), shared by all its runs.
rule resample_atlas:
    input:
        maps=ATLAS_MAPS,
        labels=ATLAS_LABELS,
    output:
        maps="work/atlas-{atlas}/grid-{grid}_desc-resampled_maps.nii.gz",
        projector="work/atlas-{atlas}/grid-{grid}_desc-projector.npz",
    log:
        "logs/resample_atlas/grid-{grid}_atlas-{atlas}.log",
    benchmark:
        "benchmarks/resample_atlas/grid-{grid}_atlas-{atlas}.tsv"
    conda:
        "../../envs/numerics.yaml"
    resources:
        mem_mb=mem_mb_for_run,
        runtime=runtime_for_run,
    params:
        shape=lambda w: GRIDS[w.grid][0],
        affine=lambda w: GRIDS[w.grid][1],
        runs=runs_on_grid,
        run_paths=lambda w: [COHORT.loc[r, "func"] for r in runs_on_grid(w)],
        on_bad_input=ON_BAD_INPUT,
    script:
        "../../scripts/resample_atlas.py"


rule extract_timeseries:
    input:
        run=get_run,
        maps=grid_maps,
        projector=grid_projector,
    output:
        timeseries="work/{folder}/{run}_atlas-{atlas}_desc-raw_timeseries.tsv",
        sidecar="work/{folder}/{run}_atlas-{atlas}_desc-raw_timeseries.json",
    log:
        "logs/extract_timeseries/{folder}/{run}_atlas-{atlas}.log",
    benchmark:
        "benchmarks/extract_timeseries/{folder}/{run}_atlas-{atlas}.tsv"
    conda:
        "../../envs/numerics.yaml"
    resources:
        mem_mb=mem_mb_for_run,
        runtime=runtime_for_run,
    params:
        run=lambda w: COHORT.loc[w.run, "func"],
        on_bad_input=ON_BAD_INPUT,
    script:
        "../../scripts/extract_timeseries.py"
