# Config validation, the cohort table, input functions and the final outputs.
import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from cohort_connectome import bids
from cohort_connectome import cohort as cohort_table
from cohort_connectome import fetch
from cohort_connectome.demo import GROUPS, demo_design
from cohort_connectome.errors import InputError


validate(config, schema="../schemas/config.schema.yaml")
_low, _high = config["clean"]["low_pass"], config["clean"]["high_pass"]
if _low is not None and _high is not None and _high >= _low:
    raise WorkflowError(
        f"config clean.high_pass ({_high} Hz) must be below clean.low_pass ({_low} Hz)"
    )

DEMO_ROOT = "resources/demo"
ADHD_ROOT = "resources/adhd"
BIDS_ROOT = "resources/bids"
SOURCE = config["cohort"]["source"]
ATLAS = config["atlas"]["name"]
KINDS = list(config["connectivity"]["kinds"])
# downloads: fetch.cache_dir, else $COHORT_CONNECTOME_DATA, else pooch's OS cache
CACHE_DIR = str(fetch.default_cache_dir(config["fetch"]["cache_dir"]))
FETCH_PARAMS = {
    "cache_dir": CACHE_DIR,
    "mirror": config["fetch"]["mirror"],
    "registry": config["fetch"]["registry"],
    "retries": config["fetch"]["retries"],
}


def _load_cohort():
    if SOURCE == "demo":
        demo = config["cohort"]["demo"]
        return cohort_table.demo_cohort(
            demo_design(demo["n_subjects"], demo["seed"]), DEMO_ROOT
        )
    if SOURCE == "adhd":
        adhd = config["cohort"]["adhd"]
        try:
            ids = fetch.adhd_ids(adhd["subjects"], adhd["n_subjects"])
        except InputError as err:
            raise WorkflowError(f"config cohort.adhd.subjects: {err}") from None
        return cohort_table.adhd_cohort(ids, CACHE_DIR, ADHD_ROOT)
    if SOURCE == "bids":
        if not config["cohort"]["bids_dir"]:
            raise WorkflowError("config cohort.bids_dir: required when cohort.source is 'bids'")
        try:
            return bids.find_runs(
                config["cohort"]["bids_dir"], config["cohort"]["space"], config["cohort"]["task"]
            )
        except InputError as err:
            raise WorkflowError(f"config cohort.bids_dir: {err}") from None
    sheet = config["cohort"].get("sheet")
    if not sheet:
        raise WorkflowError("config cohort.sheet: required when cohort.source is 'sheet'")
    try:
        return cohort_table.read_sheet(sheet)
    except InputError as err:
        raise WorkflowError(f"config cohort.sheet: {err}") from None


COHORT = _load_cohort()
RUNS = list(COHORT.index)
# connectomes are per run, or per subject from its concatenated runs
COMBINE = bool(config["connectivity"]["combine_runs"]) and len(RUNS) > COHORT[
    "participant_id"
].nunique()
UNITS = sorted(set(COHORT["participant_id"])) if COMBINE else RUNS

if config["atlas"]["maps"]:
    if not config["atlas"]["labels"]:
        raise WorkflowError("config atlas.labels: required when atlas.maps is given")
    ATLAS_MAPS = config["atlas"]["maps"]
    ATLAS_LABELS = config["atlas"]["labels"]
elif ATLAS == "msdl":
    ATLAS_MAPS = str(fetch.msdl_paths(CACHE_DIR)["maps"])
    ATLAS_LABELS = str(fetch.msdl_paths(CACHE_DIR)["labels"])
elif ATLAS == "demo":
    ATLAS_MAPS = f"{DEMO_ROOT}/atlas/atlas-demo_maps.nii.gz"
    ATLAS_LABELS = f"{DEMO_ROOT}/atlas/atlas-demo_labels.tsv"
else:
    raise WorkflowError(
        f"config atlas.maps: required for atlas.name '{ATLAS}' (the built-in atlases "
        "are 'demo', generated, and 'msdl', fetched)"
    )


wildcard_constraints:
    subject="sub-[A-Za-z0-9]+",
    folder="sub-[A-Za-z0-9]+(/ses-[A-Za-z0-9]+)?",
    run="sub-[A-Za-z0-9]+(_(ses|task|acq|ce|rec|dir|run|echo)-[A-Za-z0-9]+)*",
    atlas=ATLAS,
    kind="|".join(KINDS),
    group="|".join(GROUPS),


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


def run_path(unit, what):
    """Path of a per-run (or per-subject) result, e.g. ``run_path(r, "timeseries.tsv")``."""
    return f"results/{folder_of(unit)}/func/{unit}_atlas-{ATLAS}_{what}"


def relmat_path(run, kind):
    return run_path(run, f"meas-{kind}_relmat.tsv")


def get_units():
    """What the group rule aggregates: one record per run (participant and
    entities), or per subject when runs are combined."""
    if COMBINE:
        return [{"key": s, "participant_id": s} for s in UNITS]
    columns = [c for c in ("session", "task", "run") if c in COHORT.columns
               and COHORT[c].astype(str).str.len().gt(0).any()]
    return [
        {"key": key, "participant_id": COHORT.loc[key, "participant_id"],
         **{c: str(COHORT.loc[key, c]) for c in columns}}
        for key in RUNS
    ]


def get_subject_runs(wildcards):
    """The runs of a subject, in name order."""
    return sorted(COHORT.index[COHORT["participant_id"] == wildcards.subject])


def get_final_output():
    outputs = [relmat_path(u, k) for u in UNITS for k in KINDS]
    outputs += [run_path(r, "timeseries.tsv") for r in RUNS]
    outputs.append(f"results/group/atlas-{ATLAS}_connectomes.tsv")
    outputs.append(f"results/group/atlas-{ATLAS}_qc.tsv")
    outputs.append("results/group/exclusions.tsv")
    outputs += [f"results/group/atlas-{ATLAS}_meas-{k}_relmat.tsv" for k in KINDS]
    for kind in KINDS:
        outputs += [
            f"results/group/figures/atlas-{ATLAS}_meas-{kind}_{figure}.png"
            for figure in ("matrix", "connectome")
        ]
        if config["figures"]["subjects"]:
            outputs += [
                f"results/{folder_of(u)}/figures/{u}_atlas-{ATLAS}_meas-{kind}_{figure}.png"
                for u in UNITS
                for figure in ("matrix", "connectome")
            ]
    return outputs


def results_summary():
    return "\n".join(
        [
            "",
            f"cohort_connectome: {COHORT['participant_id'].nunique()} subjects, "
            f"{len(RUNS)} runs, atlas {ATLAS}, "
            f"kinds {', '.join(KINDS)}",
            f"  region time series  results/sub-*/[ses-*/]func/sub-*_atlas-{ATLAS}_timeseries.tsv",
            f"  connectomes         results/sub-*/[ses-*/]func/sub-*_atlas-{ATLAS}_meas-*_relmat.tsv",
            f"  group tables        results/group/atlas-{ATLAS}_connectomes.tsv and "
            f"results/group/atlas-{ATLAS}_meas-*_relmat.tsv",
            "  figures             results/group/figures/"
            + ("  results/sub-*/figures/" if config["figures"]["subjects"] else ""),
            "  logs, benchmarks    logs/<rule>/, benchmarks/<rule>/",
            "",
        ]
    )
