# Sources of data: the embedded demo cohort (simulated from one seed, no download),
# the MSDL atlas, the atlas library and ADHD-200 runs (pooch), and the participants
# of an fMRIPrep cohort.


rule simulate_demo_atlas:
    output:
        maps=f"{DEMO_ROOT}/atlas/atlas-demo_maps.nii.gz",
        labels=f"{DEMO_ROOT}/atlas/atlas-demo_labels.tsv",
        truth=expand(f"{DEMO_ROOT}/truth/group-{{group}}_precision.tsv", group=GROUPS),
        participants=f"{DEMO_ROOT}/participants.tsv",
    log:
        "logs/simulate_demo_atlas/demo.log",
    benchmark:
        "benchmarks/simulate_demo_atlas/demo.tsv"
    conda:
        "../../envs/numerics.yaml"
    params:
        n_subjects=config["cohort"]["demo"]["n_subjects"],
        seed=config["cohort"]["demo"]["seed"],
        groups=list(GROUPS),
        demo_root=lambda w, output: os.path.dirname(output.participants),
    script:
        "../../scripts/simulate_demo_atlas.py"


rule simulate_demo_run:
    input:
        truth=lambda w: f"{DEMO_ROOT}/truth/group-{COHORT.loc[w.subject, 'group']}_precision.tsv",
    output:
        run=f"{DEMO_ROOT}/{{subject}}/func/{{subject}}_task-rest_bold.nii.gz",
        confounds=f"{DEMO_ROOT}/{{subject}}/func/{{subject}}_task-rest_desc-confounds_timeseries.tsv",
        signals=f"{DEMO_ROOT}/{{subject}}/func/{{subject}}_task-rest_desc-true_timeseries.tsv",
    log:
        "logs/simulate_demo_run/{subject}.log",
    benchmark:
        "benchmarks/simulate_demo_run/{subject}.tsv"
    conda:
        "../../envs/numerics.yaml"
    params:
        n_subjects=config["cohort"]["demo"]["n_subjects"],
        seed=config["cohort"]["demo"]["seed"],
    script:
        "../../scripts/simulate_demo_run.py"


# The MSDL atlas and nilearn's ADHD-200 subset, fetched with pooch into the cache
# (fetch.cache_dir); hashes are verified (MSDL: upstream-known; ADHD: pinned in the
# cache's lock file on first download).
MSDL = fetch.msdl_paths(CACHE_DIR)
ADHD_METADATA = fetch.adhd_metadata_paths(CACHE_DIR)
ADHD_RUN = fetch.adhd_subject_paths(CACHE_DIR, "{adhd}", validate=False)


rule fetch_msdl:
    output:
        maps=str(MSDL["maps"]),
        labels=str(MSDL["labels"]),
    log:
        "logs/fetch_msdl/msdl.log",
    benchmark:
        "benchmarks/fetch_msdl/msdl.tsv"
    conda:
        "../../envs/fetch.yaml"
    params:
        **FETCH_OPTIONS,
        cache_dir=lambda w, output: str(Path(output.maps).parents[2]),  # <cache>/msdl/MSDL_rois/
    script:
        "../../scripts/fetch_msdl.py"


# The atlas library (fetch: difumo, schaefer, ...): one job per atlas and set of
# parameters, into the cache as rule fetch_msdl (hashes pinned in the cache's lock
# file on first download, fetch.registry wins); {key} names the parameters.
LIBRARY_FILES = atlas_library.library_layout(CACHE_DIR, "{library}", "{key}")


rule fetch_library_atlas:
    output:
        image=str(LIBRARY_FILES["image"]),
        labels=str(LIBRARY_FILES["labels"]),
        origin=str(LIBRARY_FILES["origin"]),
    log:
        "logs/fetch_library_atlas/{library}_{key}.log",
    benchmark:
        "benchmarks/fetch_library_atlas/{library}_{key}.tsv"
    wildcard_constraints:
        library="|".join(atlas_library.LIBRARY),
        key=r"[A-Za-z0-9_.+-]+",
    conda:
        "../../envs/fetch.yaml"
    params:
        **FETCH_OPTIONS,
        # <cache>/atlases/<atlas>/<key>/image.nii.gz
        cache_dir=lambda w, output: str(Path(output.image).parents[3]),
        atlas=lambda w: w.library,
        parameters=lambda w: LIBRARY_PARAMETERS[(w.library, w.key)],
    script:
        "../../scripts/fetch_library_atlas.py"


rule fetch_adhd_metadata:
    output:
        phenotypic=str(ADHD_METADATA["phenotypic"]),
        slice_timing=str(ADHD_METADATA["slice_timing"]),
    log:
        "logs/fetch_adhd_metadata/adhd.log",
    benchmark:
        "benchmarks/fetch_adhd_metadata/adhd.tsv"
    conda:
        "../../envs/fetch.yaml"
    params:
        **FETCH_OPTIONS,
        cache_dir=lambda w, output: str(Path(output.phenotypic).parents[1]),  # <cache>/adhd/
    script:
        "../../scripts/fetch_adhd_metadata.py"


rule fetch_adhd_subject:
    output:
        func=str(ADHD_RUN["func"]),
        confounds=str(ADHD_RUN["confounds"]),
    log:
        "logs/fetch_adhd_subject/{adhd}.log",
    benchmark:
        "benchmarks/fetch_adhd_subject/{adhd}.tsv"
    wildcard_constraints:
        adhd=r"\d{7}",
    conda:
        "../../envs/fetch.yaml"
    params:
        **FETCH_OPTIONS,
        cache_dir=lambda w, output: str(Path(output.func).parents[3]),  # <cache>/adhd/data/<id>/
    script:
        "../../scripts/fetch_adhd_subject.py"


rule adhd_participants:
    input:
        **ADHD_METADATA,
    output:
        f"{ADHD_ROOT}/participants.tsv",
    log:
        "logs/adhd_participants/adhd.log",
    benchmark:
        "benchmarks/adhd_participants/adhd.tsv"
    conda:
        "../../envs/fetch.yaml"
    params:
        ids=[adhd_id(s) for s in RUNS] if SOURCE == "adhd" else [],
    script:
        "../../scripts/adhd_participants.py"


rule adhd_sidecar:
    input:
        **ADHD_METADATA,
    output:
        f"{ADHD_ROOT}/{{subject}}/func/{{subject}}_task-rest_bold.json",
    log:
        "logs/adhd_sidecar/{subject}.log",
    benchmark:
        "benchmarks/adhd_sidecar/{subject}.tsv"
    conda:
        "../../envs/fetch.yaml"
    script:
        "../../scripts/adhd_sidecar.py"


rule bids_participants:
    input:
        [p for p in [get_bids_participants_source()] if p] if SOURCE == "bids" else [],
    output:
        f"{BIDS_ROOT}/participants.tsv",
    log:
        "logs/bids_participants/bids.log",
    benchmark:
        "benchmarks/bids_participants/bids.tsv"
    conda:
        "../../envs/numerics.yaml"
    params:
        participant_ids=sorted(set(COHORT["participant_id"])),
    script:
        "../../scripts/bids_participants.py"
