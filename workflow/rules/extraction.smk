# Per atlas: the atlas as used (checked, written out); per atlas and voxel grid:
# the atlas on the runs' grid; per run: every atlas's region signals from one read
# of the 4D image, in chunks. These jobs read the images, each in its own process.
# {run} is the run's name (its BIDS entities; sub-<id> for single-run cohorts) and
# {folder} where its outputs go (sub-<id>[/ses-<s>]).


# Once per atlas: image and region table checked against each other, coordinates
# computed when the table has none, and both written out with their provenance
# ({suffix}: dseg or probseg, the atlas's kind).
rule prepare_atlas:
    input:
        image=lambda w: ATLASES[w.atlas].image,
        labels=lambda w: ATLASES[w.atlas].labels,
        origin=lambda w: atlas_origin(w.atlas),
    output:
        image="results/atlases/atlas-{atlas}/atlas-{atlas}_{suffix}.nii.gz",
        table=report(
            "results/atlases/atlas-{atlas}/atlas-{atlas}_{suffix}.tsv",
            caption="../report/atlas_table.rst",
            category=CATEGORY["atlases"],
            subcategory="{atlas}",
            labels={"atlas": "{atlas}", "output": "regions"},
        ),
        sidecar=report(
            "results/atlases/atlas-{atlas}/atlas-{atlas}_{suffix}.json",
            caption="../report/atlas_sidecar.rst",
            category=CATEGORY["atlases"],
            subcategory="{atlas}",
            labels={"atlas": "{atlas}", "output": "provenance"},
        ),
    log:
        "logs/prepare_atlas/atlas-{atlas}_{suffix}.log",
    benchmark:
        "benchmarks/prepare_atlas/atlas-{atlas}_{suffix}.tsv"
    conda:
        "../../envs/numerics.yaml"
    resources:
        mem_mb=mem_mb_for_atlas,
        runtime=runtime_for_atlas,
    params:
        spec=lambda w: atlas_params(w.atlas),
        provenance=lambda w: atlas_provenance(w.atlas),
    script:
        "../../scripts/prepare_atlas.py"


# Once per atlas and distinct voxel grid of the cohort ({grid}: a hash of shape +
# affine, read from the run headers when the DAG is built), shared by all its runs.
rule resample_atlas:
    input:
        # the atlas's own files (not prepare_atlas' copies: the two run side by side)
        image=lambda w: ATLASES[w.atlas].image,
        table=lambda w: ATLASES[w.atlas].labels,
    output:
        regions="work/atlas-{atlas}/grid-{grid}_desc-regions.npz",
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
        spec=lambda w: atlas_params(w.atlas),
        shape=lambda w: GRIDS[w.grid][0],
        affine=lambda w: GRIDS[w.grid][1],
        runs=runs_on_grid,
        run_paths=lambda w: [COHORT.loc[r, "func"] for r in runs_on_grid(w)],
        on_bad_input=ON_BAD_INPUT,
    script:
        "../../scripts/resample_atlas.py"


# One read of the run for every atlas of the config: each chunk of volumes is
# projected on each atlas (adding an atlas reruns this job, see the README).
rule extract_timeseries:
    input:
        run=get_run,
        regions=grid_regions,
        # a run whose grid was unknown when the DAG was built: atlases resampled for it
        images=[ATLASES[a].image for a in ATLAS_NAMES],
        tables=[ATLASES[a].labels for a in ATLAS_NAMES],
        mask=get_brain_mask,
    output:
        timeseries=expand(
            "work/{{folder}}/{{run}}_atlas-{atlas}_desc-raw_timeseries.tsv", atlas=ATLAS_NAMES
        ),
        sidecars=expand(
            "work/{{folder}}/{{run}}_atlas-{atlas}_desc-raw_timeseries.json", atlas=ATLAS_NAMES
        ),
        coverage=expand(
            "results/{{folder}}/func/{{run}}_atlas-{atlas}_stat-coverage_bold.tsv",
            atlas=ATLAS_NAMES,
        ),
    log:
        "logs/extract_timeseries/{folder}/{run}.log",
    benchmark:
        "benchmarks/extract_timeseries/{folder}/{run}.tsv"
    conda:
        "../../envs/numerics.yaml"
    resources:
        mem_mb=mem_mb_for_run,
        runtime=runtime_for_run,
    params:
        atlases=ATLAS_NAMES,
        specs=lambda w: [atlas_params(a) for a in ATLAS_NAMES],
        run=lambda w: COHORT.loc[w.run, "func"],
        mask=lambda w: COHORT.loc[w.run, "mask"],
        on_bad_input=ON_BAD_INPUT,
    script:
        "../../scripts/extract_timeseries.py"
