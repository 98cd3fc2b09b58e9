# Config checks, the cohort table, input functions and the final outputs.
import os
import re
import shutil
import sys
from pathlib import Path

import pandas as pd
import yaml
from snakemake.exceptions import WorkflowError

from cohort_connectome import bids, fetch
from cohort_connectome import cohort as cohort_table
from cohort_connectome.atlases import atlas_specs, check_atlas, grids_covered, provenance
from cohort_connectome.config import (
    ConfigError,
    apply_demo_settings,
    builtin_atlas_files,
    check_atlas_names,
    check_band,
    check_compare,
    check_removed_keys,
    compare_label,
    fit_group_kinds,
    load_cohort,
    replace_mappings,
    split_kinds,
)
from cohort_connectome.errors import InputError
from cohort_connectome.fetch import atlas_library
from cohort_connectome.demo import GROUPS, RUN_AFFINE, RUN_SHAPE
from cohort_connectome.resampling import grid_id, read_grid
from cohort_connectome.schema import validate_config
from cohort_connectome.summary import exclusions_summary, results_summary

# What the user's config gives, told apart from the defaults: the command line's
# (--configfile, --config); or, when another workflow uses this one as a module
# with `config:`, that mapping (the Snakefile's USER_CONFIG).
GIVEN = USER_CONFIG
# The demo's own settings (config/demo.yaml: the comparison of its two groups) on
# the demo cohort only, the user's keys winning; any other cohort keeps the
# neutral defaults of config/config.yaml.
with open(workflow.source_path("../../config/demo.yaml")) as _demo:
    apply_demo_settings(config, GIVEN, yaml.safe_load(_demo))
# The user's atlases replace the default's (Snakemake merges mappings key by key);
# keys of older configs are refused with what to write instead. Then each value
# against the schema, its defaults filled in (cohort_connectome.schema: a
# violation is one line, not jsonschema's message and the schema; skipped, with
# the defaults, where a host workflow's `module` says skip_validation); then the
# values against each other and the cohort (cohort_connectome.config: a
# ConfigError, one line naming the key).
replace_mappings(config, GIVEN)
check_removed_keys(config)
check_atlas_names(workflow.configfiles)
if not workflow.modifier.skip_validation:
    with open(workflow.source_path("../schemas/config.schema.yaml")) as _schema:
        validate_config(config, yaml.safe_load(_schema))
check_band(config["clean"])

DEMO_ROOT = "resources/demo"
ADHD_ROOT = "resources/adhd"
BIDS_ROOT = "resources/bids"
SOURCE = config["cohort"]["source"]
# a run with bad input: "exclude" (placeholder outputs, listed in exclusions.tsv) or "fail"
ON_BAD_INPUT = config["cohort"]["on_bad_input"]
# downloads: fetch.cache_dir, else $COHORT_CONNECTOME_DATA, else pooch's OS cache
CACHE_DIR = str(fetch.default_cache_dir(config["fetch"]["cache_dir"]))
# the fetch rules' options besides their cache folder (derived from their outputs)
FETCH_OPTIONS = {key: config["fetch"][key] for key in ("mirror", "registry", "retries")}


COHORT = load_cohort(config["cohort"], CACHE_DIR, DEMO_ROOT, ADHD_ROOT)
RUNS = list(COHORT.index)
# connectomes are per run, or per subject from its concatenated runs
COMBINE = (
    bool(config["connectivity"]["combine_runs"]) and len(RUNS) > COHORT["participant_id"].nunique()
)
UNITS = sorted(set(COHORT["participant_id"])) if COMBINE else RUNS

# Group-level kinds need 2 units: asked for on a smaller cohort, a one-line error;
# from the defaults, dropped with a note (said once, by the main process).
_note = fit_group_kinds(config, len(UNITS), GIVEN)
if _note and workflow.is_main_process:
    print(f"cohort_connectome: {_note}", file=sys.stderr)
# KINDS: estimated per run (estimate_connectomes); GROUP_LEVEL_KINDS: by the group
# rule from every run's time series at once (tangent; group sparse with group.sparse).
KINDS, GROUP_LEVEL_KINDS, ALL_KINDS = split_kinds(
    config["connectivity"]["kinds"], config["group"]["sparse"]
)


def _run_grids():
    """Each run's voxel grid, known when the DAG is built, so that the atlas is
    resampled once per distinct grid (shape + affine) and shared.

    Sheet and BIDS runs: read from their headers (data not read). The demo's
    runs are simulated on one known grid, and the ADHD-200 runs, fetched later,
    are all on the MNI 3 mm grid of nilearn's subset. A run whose header
    cannot be read gets the cohort's most common grid: its extraction job
    reports the problem, or, if the run turns out to be on another grid,
    resamples the maps for it alone (with a warning in its log).
    Returns ``(grid id per run, {grid id: (shape, affine)})``.
    """
    if SOURCE == "demo":
        known = {run: (RUN_SHAPE, RUN_AFFINE) for run in COHORT.index}
    elif SOURCE == "adhd":
        known = {run: (fetch.ADHD_SHAPE, fetch.ADHD_AFFINE) for run in COHORT.index}
    else:
        known = {run: read_grid(COHORT.loc[run, "func"]) for run in COHORT.index}
    grids, ids = {}, {}
    for run, grid in known.items():
        if grid is not None:
            ids[run] = grid_id(*grid)
            grids.setdefault(ids[run], (tuple(grid[0]), [list(map(float, row)) for row in grid[1]]))
    counts = pd.Series(list(ids.values()), dtype=object).value_counts()
    fallback = counts.index[0] if len(counts) else "atlas"
    if fallback == "atlas":
        grids["atlas"] = (None, None)
    return {run: ids.get(run, fallback) for run in COHORT.index}, grids


RUN_GRID, GRIDS = _run_grids()


def runs_on_grid(wildcards):
    return sorted(run for run, grid in RUN_GRID.items() if grid == wildcards.grid)


# --------------------------------------------------------------------------
# atlases: each one's outputs are named atlas-<name>; all are extracted from
# one read of each run (extract_timeseries)
# --------------------------------------------------------------------------
ATLASES = atlas_specs(
    config["atlases"],
    lambda name, parameters: builtin_atlas_files(name, CACHE_DIR, DEMO_ROOT, parameters),
)
ATLAS_NAMES = list(ATLASES)
# the library atlases' parameters by (atlas, folder key): rule fetch_library_atlas
LIBRARY_PARAMETERS = {
    (spec.fetch, atlas_library.parameters_key(dict(spec.parameters))): dict(spec.parameters)
    for spec in ATLASES.values()
    if spec.library
}
# regions covered by less of a run (field of view and brain mask) are n/a there
MIN_COVERAGE = config["extraction"]["min_coverage"]


def _check_atlases():
    """A user's atlas is checked now, image against table and against the runs'
    grids, so that a mismatch stops the workflow before any job; built-in atlases
    are checked by prepare_atlas once fetched."""
    for name, spec in ATLASES.items():
        if spec.fetch is not None:
            continue
        try:
            _, img = check_atlas(spec)
            known = [g for g in GRIDS.values() if g[0] is not None]
            if known and not grids_covered(img, known):
                raise InputError(
                    f"atlas {name}: covers none of the cohort's runs (no overlap with "
                    f"the field of view of any of its {len(known)} voxel grid(s))",
                    path=spec.image,
                )
        except InputError as err:
            problem = err.problem.removeprefix(f"atlas {name}: ")
            raise ConfigError(f"config atlases.{name}: {err.path}: {problem}") from None


# once, in the main process (a cluster job's snakemake parses this file again)
if workflow.is_main_process:
    _check_atlases()


def atlas_params(name):
    """What an atlas's jobs need to know of it (plain values: Snakemake compares
    params between runs)."""
    spec = ATLASES[name]
    return {
        "name": name,
        "kind": spec.kind,
        "strategy": spec.strategy,
        "background": spec.background,
        "fetch": spec.fetch,
    }


def atlas_provenance(name):
    return provenance(ATLASES[name], config["atlases"][name], config["cohort"]["demo"]["seed"])


def atlas_origin(name):
    """A library atlas's origin.json (URLs and archive hashes, from its fetch job), else none."""
    spec = ATLASES[name]
    if not spec.library:
        return []
    return str(atlas_library.library_paths(CACHE_DIR, spec.fetch, dict(spec.parameters))["origin"])


def atlas_table(wildcards):
    """The atlas's region table as used (prepare_atlas): index, name, network, x, y, z."""
    return atlas_output(wildcards.atlas, "tsv")


def atlas_image(wildcards):
    """The atlas image as used (prepare_atlas)."""
    return atlas_output(wildcards.atlas, "nii.gz")


def atlas_output(atlas, extension):
    """``results/atlases/atlas-<a>/atlas-<a>_<dseg|probseg>.<extension>``."""
    return f"results/atlases/atlas-{atlas}/atlas-{atlas}_{ATLASES[atlas].suffix}.{extension}"


def grid_regions(wildcards):
    """Each atlas on the run's grid (resample_atlas), in config order."""
    grid = RUN_GRID[wildcards.run]
    return [f"work/atlas-{a}/grid-{grid}_desc-regions.npz" for a in ATLAS_NAMES]


def get_brain_mask(wildcards):
    """The run's brain mask (fMRIPrep's desc-brain_mask, a sheet's mask column), if any."""
    return _as_input(COHORT.loc[wildcards.run, "mask"])


wildcard_constraints:
    subject="sub-[A-Za-z0-9]+",
    folder="sub-[A-Za-z0-9]+(/ses-[A-Za-z0-9]+)?",
    run="sub-[A-Za-z0-9]+(_(ses|task|acq|ce|rec|dir|run|echo)-[A-Za-z0-9]+)*",
    atlas="|".join(ATLAS_NAMES),
    suffix="dseg|probseg",
    grid="[0-9a-f]{12}|atlas",
    kind="|".join(ALL_KINDS),
    group="|".join(GROUPS),


# The light per-run steps (clean_timeseries; estimate_connectomes with a
# closed-form estimator) do ~0.1 s of work on a run's region signals, less than a
# job process spends starting (Python, snakemake.script, numpy: ~0.3 s). Their
# rules (run:) call the same scripts/ adapters inside the scheduler process, one
# thread per job: profiles/default sets force-use-threads, without which Snakemake
# would start a whole Snakemake process for each. On a cluster each is a job as
# before. GraphicalLassoCV holds the GIL for seconds per run: its own process.
ESTIMATE_IN_PROCESS = config["connectivity"]["estimator"] != "graphical_lasso_cv"


def run_in_process(name, input, output, params, wildcards, log, rule):
    """Run ``scripts/<name>.py`` in this process with the ``snakemake`` object
    its ``script:`` preamble would give it (input, output, params, wildcards,
    log, rule)."""
    import runpy
    from types import SimpleNamespace

    job = SimpleNamespace(
        input=input, output=output, params=params, wildcards=wildcards, log=log, rule=rule
    )
    try:
        runpy.run_path(
            workflow.source_path(f"../../scripts/{name}.py"), init_globals={"snakemake": job}
        )
    except SystemExit as exit:
        # job_log's exit after the one-line error (bad input): raised in a job
        # thread, SystemExit would hang Snakemake; an exception fails the job.
        raise RuntimeError(
            f"{rule} failed (exit status {exit.code}): the error above, and {log[0]}"
        ) from None


# Snakemake's report shows a rule's code from its script: (shell:, wrapper:,
# notebook:) directive; for a run: directive it shows none ("no easy way yet to
# obtain the actual uncompiled source code", snakemake/report/__init__.py). The
# in-process rules (run_in_process, above) run scripts/<rule>.py: while
# the report is built, and only then (a script: rule would run in its own process
# and be benchmarked there), their rules name that script, so that their panel
# shows it.
_create_report = workflow.create_report


def _create_report_with_in_process_code(*args, **kwargs):
    for in_process in workflow.rules:
        if in_process.is_run and in_process.name in ("clean_timeseries", "estimate_connectomes"):
            in_process.script = f"../../scripts/{in_process.name}.py"
    return _create_report(*args, **kwargs)


workflow.create_report = _create_report_with_in_process_code


# Said once, before any job runs (not in dry runs): run locally without
# force-use-threads (profiles/default sets it), the run_in_process rules each
# start a Snakemake process; with the slurm executor, its client commands must be
# here (checked before any job is submitted).
SLURM_COMMANDS = ("sbatch", "squeue", "scancel", "sinfo")


onstart:
    if not workflow.use_threads:
        print(
            "cohort_connectome: WARNING: run without force-use-threads (profiles/default "
            "sets it): clean_timeseries and estimate_connectomes each start a Snakemake "
            "process (~2 s) instead of running in this one",
            file=sys.stderr,
        )
    plugin = workflow.executor_plugin
    if plugin is not None and plugin.name == "slurm":
        missing = [c for c in SLURM_COMMANDS if shutil.which(c) is None]
        if missing:
            raise WorkflowError(
                f"executor slurm: SLURM command(s) not found on PATH: {', '.join(missing)} "
                "(run from a SLURM login node, or run locally without --profile profiles/slurm)"
            )


def _as_input(path):
    """A run or confounds file as a rule input.

    Files the workflow makes (the demo) are always inputs. A user's file that
    is missing is left out of the inputs so the DAG still builds: the job
    then fails with a one-line error naming the subject and file, and the
    other subjects go on.
    """
    if not path:
        return []
    if SOURCE in ("demo", "adhd") or os.path.exists(path):
        return [path]
    return []


def get_run(wildcards):
    return _as_input(COHORT.loc[wildcards.run, "func"])


def get_confounds(wildcards):
    return _as_input(COHORT.loc[wildcards.run, "confounds"])


def adhd_id(subject):
    """The 7-digit ADHD-200 id of ``sub-<id>``."""
    return subject[len("sub-") :]


def get_t_r(wildcards):
    """The sheet's repetition time for this run, or None."""
    value = COHORT.loc[wildcards.run, "t_r"]
    return None if value != value else float(value)


def get_estimator_options(wildcards):
    if config["connectivity"]["estimator"] == "graphical_lasso_cv":
        return dict(config["connectivity"].get("graphical_lasso_cv") or {})
    return {}


def get_sidecar(wildcards):
    """The run's JSON sidecar (RepetitionTime), when the cohort has one."""
    return _as_input(COHORT.loc[wildcards.run, "sidecar"])


def get_participants_table():
    """The table the group rule takes phenotype from."""
    if SOURCE == "demo":
        return f"{DEMO_ROOT}/participants.tsv"
    if SOURCE == "adhd":
        return f"{ADHD_ROOT}/participants.tsv"
    if SOURCE == "bids":
        return f"{BIDS_ROOT}/participants.tsv"
    return config["cohort"]["sheet"]


def get_bids_participants_source():
    """The phenotype table of a BIDS cohort, when there is one."""
    path = config["cohort"]["participants"] or os.path.join(
        config["cohort"]["bids_dir"] or "", "participants.tsv"
    )
    return path if os.path.isfile(path) else None


def folder_of(unit):
    """Results folder of a run (``sub-<id>[/ses-<s>]``) or of a subject."""
    return COHORT.loc[unit, "folder"] if unit in COHORT.index else unit


def run_path(unit, what, atlas):
    """Path of a per-run (or per-subject) result, e.g. ``run_path(r, "timeseries.tsv", a)``."""
    return f"results/{folder_of(unit)}/func/{unit}_atlas-{atlas}_{what}"


def relmat_path(run, kind, atlas):
    return run_path(run, f"meas-{kind}_relmat.tsv", atlas)


def get_units():
    """The units aggregate_connectomes reads, one record per run (participant and
    entities), or per subject when runs are combined."""
    if COMBINE:
        return [{"key": s, "participant_id": s} for s in UNITS]
    columns = [
        c
        for c in ("session", "task", "run")
        if c in COHORT.columns and COHORT[c].astype(str).str.len().gt(0).any()
    ]
    return [
        {
            "key": key,
            "participant_id": COHORT.loc[key, "participant_id"],
            **{c: str(COHORT.loc[key, c]) for c in columns},
        }
        for key in RUNS
    ]


def cleaned_or_combined_series(wildcards):
    """The series estimate_connectomes reads, and its sidecar: with
    connectivity.combine_runs (its {run} is then a subject), the subject's runs
    concatenated by combine_runs; else the run's series from clean_timeseries."""
    if COMBINE:
        made_by = rules.combine_runs.output
        names = {"subject": wildcards.run, "atlas": wildcards.atlas}
    else:
        made_by = rules.clean_timeseries.output
        names = dict(wildcards.items())
    return {
        "timeseries": made_by.timeseries.format(**names),
        "clean_sidecar": made_by.sidecar.format(**names),
    }


def get_subject_runs(wildcards):
    """The runs of a subject, in name order."""
    return sorted(COHORT.index[COHORT["participant_id"] == wildcards.subject])


# --------------------------------------------------------------------------
# group level: group kinds, phenotype comparison (group.compare)
# --------------------------------------------------------------------------
COMPARE = config["group"]["compare"]
COMPARE_LABEL = compare_label(COMPARE)


def known_phenotype():
    """(phenotype table, where it comes from) when known before any job runs:
    the demo's design, a sheet's columns, a BIDS participants.tsv; None for
    ADHD-200 (its metadata are fetched by a job, which then checks)."""
    if SOURCE in ("demo", "sheet"):
        where = (
            "the demo cohort" if SOURCE == "demo" else f"cohort sheet {config['cohort']['sheet']}"
        )
        return cohort_table.phenotype(COHORT), where
    if SOURCE == "bids":
        source = get_bids_participants_source()
        table = bids.read_participants(source, sorted(set(COHORT["participant_id"])))
        return table, (
            f"participants table {source}"
            if source
            else f"cohort.bids_dir {config['cohort']['bids_dir']} (no participants.tsv)"
        )
    return None


PHENOTYPE = known_phenotype() if COMPARE else None
if PHENOTYPE is not None:
    check_compare(*PHENOTYPE, COMPARE, config["group"]["levels"])


# The report's categories; Snakemake's report lists them sorted by name, hence the
# numbers: reading order (what was done, then checks, then results).
CATEGORY = {
    "methods": "1 Methods",
    "atlases": "2 Atlases",
    "qc": "3 Quality control",
    "connectomes": "4 Group connectomes",
    "comparison": "5 Group comparison",
}


def group_path(what, atlas="{atlas}"):
    """``results/group/atlas-<atlas>_<what>`` (a pattern with {atlas} by default)."""
    return f"results/group/atlas-{atlas}_{what}"


def compare_path(what, atlas="{atlas}"):
    """An output of compare_groups: ``results/group/atlas-<atlas>_compare-<column>_<what>``."""
    return group_path(f"compare-{COMPARE_LABEL}_{what}", atlas)


def compare_figure(kind, atlas="{atlas}"):
    return f"results/group/figures/atlas-{atlas}_compare-{COMPARE_LABEL}_meas-{kind}_ttest.png"


def group_figure(kind, figure, atlas="{atlas}"):
    return f"results/group/figures/atlas-{atlas}_meas-{kind}_{figure}.png"


def qc_figure(run, atlas):
    """The per-run QC figure (figures.qc)."""
    return f"results/{folder_of(run)}/figures/{run}_atlas-{atlas}_qc.png"


# the tables aggregate_connectomes writes for each atlas
GROUP_TABLES = ("connectomes.tsv", "connectomes.json", "qc.tsv", "exclusions.tsv")


def get_final_output():
    outputs = []
    for a in ATLAS_NAMES:
        outputs += [atlas_output(a, ext) for ext in ("nii.gz", "tsv", "json")]
        outputs += [relmat_path(u, k, a) for u in UNITS for k in KINDS]
        outputs += [run_path(r, "timeseries.tsv", a) for r in RUNS]
        outputs += [run_path(r, "stat-coverage_bold.tsv", a) for r in RUNS]
        outputs += [group_path(what, a) for what in GROUP_TABLES]
        outputs += [group_path(f"meas-{k}_relmat.tsv", a) for k in ALL_KINDS]
        outputs += [group_path("qcfc.tsv", a), f"results/group/figures/atlas-{a}_qcfc.png"]
        if config["figures"]["qc"]:
            outputs += [qc_figure(r, a) for r in RUNS]
        outputs += [group_path("qc.html", a), group_path("exclusions.html", a)]
        outputs += [f"results/group/figures/atlas-{a}_desc-motion_qc.png"]
        if COMPARE:
            outputs += [compare_path("ttest.tsv", a), compare_path("classification.tsv", a)]
            outputs += [compare_path(p, a) for p in ("significant.html", "classification.html")]
            outputs += [compare_figure(k, a) for k in ALL_KINDS]
        outputs += [group_figure(k, f, a) for k in ALL_KINDS for f in ("matrix", "connectome")]
        if config["figures"]["subjects"]:
            outputs += [
                f"results/{folder_of(u)}/figures/{u}_atlas-{a}_meas-{k}_{f}.png"
                for k in KINDS
                for u in UNITS
                for f in ("matrix", "connectome")
            ]
    return outputs + ["results/methods.md", "results/methods.html"]


def group_figure_title(wildcards):
    n = len(UNITS)
    what = "runs" if n > COHORT["participant_id"].nunique() else "subjects"
    if wildcards.kind == "tangent":
        return f"atlas {wildcards.atlas}, geometric mean of {n} {what}' covariances"
    return f"atlas {wildcards.atlas}, mean of {n} {what}"


def summary():
    """The end-of-run summary of this cohort and config (the Snakefile's onsuccess)."""
    return results_summary(
        n_subjects=COHORT["participant_id"].nunique(),
        n_runs=len(RUNS),
        atlases=ATLAS_NAMES,
        kinds=ALL_KINDS,
        subject_figures=config["figures"]["subjects"] or config["figures"]["qc"],
        comparison=(
            [compare_path(t, a) for a in ATLAS_NAMES for t in ("ttest.tsv", "classification.tsv")]
            if COMPARE
            else []
        ),
        exclusions=[
            line
            for a in ATLAS_NAMES
            for line in exclusions_summary(
                group_path("exclusions.tsv", a),
                len(UNITS),
                atlas=a if len(ATLAS_NAMES) > 1 else None,
            )
        ],
    )
