# Memory and time of each job, for schedulers that enforce them (SLURM: --mem, -t).
#
# Every per-run rule has
#     resources:
#         mem_mb=mem_mb_for_run,
#         runtime=runtime_for_run,
# and the group rules mem_mb_for_group / runtime_for_group. The numbers grow with
# the run's size, read from its NIfTI header (voxels per volume, volumes, bytes per
# voxel), with the atlas' number of regions, and with the attempt: a job killed for
# memory or time is retried (--retries) with 2x, then 3x, as much.
#
# mem_mb is the whole job's: on a cluster a job runs its own snakemake process
# (135 MB measured) beside the rule's Python process (75-280 MB on the demo, numpy,
# scipy, pandas and nibabel imported). Measured peaks of the rule processes and the
# model below are in README.md, "Running on a cluster". Change a rule's values with
# --set-resources (or set-resources: in a profile), or the constants here.
# runtime is in minutes.
import functools
import math
import os

import nibabel
import numpy as np

from cohort_connectome.streaming import DEFAULT_CHUNK_BYTES

#: the job's snakemake process plus the rule's Python interpreter with its imports
JOB_MB = 400
#: matplotlib and its figures, on top of JOB_MB, for the plotting rules
PLOT_MB = 250
#: reading and decompressing a run, MB per minute, pessimistic (network file system)
READ_MB_PER_MINUTE = 600
#: every job's minimum time: start-up of snakemake and Python, file system latency
BASE_MINUTES = 5
#: assumed when a run does not exist yet (the demo simulates its runs); the value
#: is computed again from the real header when the job is submitted
TYPICAL_RUN = (61 * 73 * 61, 300, 4)  # ADHD-200 3 mm grid, 300 float32 volumes
TYPICAL_REGIONS = 64


@functools.lru_cache(maxsize=None)
def _header_shape(path, mtime_ns):
    """Shape and bytes per voxel of a NIfTI file (header only, data not read)."""
    header = nibabel.load(path).header
    return tuple(header.get_data_shape()), header.get_data_dtype().itemsize


def _shape_of(path):
    if not path or not os.path.isfile(path):
        return None
    try:
        return _header_shape(path, os.stat(path).st_mtime_ns)
    except Exception:  # unreadable: the job itself reports it, naming the file
        return None


def run_geometry(run):
    """(voxels per volume, volumes, bytes per voxel) of a run, from its header.

    TYPICAL_RUN while the run does not exist yet or is not a 4D image."""
    found = _shape_of(COHORT.loc[run, "func"])
    if found is None or len(found[0]) != 4:
        return TYPICAL_RUN
    shape, itemsize = found
    return math.prod(shape[:3]), shape[3], itemsize


@functools.lru_cache(maxsize=None)
def _table_rows(path, mtime_ns):
    with open(path) as handle:
        return max(0, sum(1 for line in handle if line.strip()) - 1)


def atlas_regions(wildcards=None):
    """Regions of the job's atlas ({atlas}), or of all the atlases (extract_timeseries):
    a probseg's volumes, else its region table's rows; TYPICAL_REGIONS per atlas
    whose files do not exist yet."""
    names = (
        [wildcards.atlas] if wildcards is not None and "atlas" in wildcards.keys() else ATLAS_NAMES
    )
    total = 0
    for name in names:
        spec = ATLASES[name]
        found = _shape_of(spec.image) if spec.kind == "probseg" else None
        if found is not None and len(found[0]) == 4:
            total += found[0][3]
        elif os.path.isfile(spec.labels):
            total += _table_rows(spec.labels, os.stat(spec.labels).st_mtime_ns)
        else:
            total += TYPICAL_REGIONS
    return total


def _runs_of(wildcards):
    """The runs a job reads: its run, or all the runs of its subject (combine_runs,
    and the connectomes of combined runs, named after the subject)."""
    if "grid" in wildcards.keys():  # resample_atlas: the runs on its grid
        return runs_on_grid(wildcards)[:1]
    unit = wildcards.run if "run" in wildcards.keys() else wildcards.subject
    if unit in COHORT.index:
        return [unit]
    return sorted(COHORT.index[COHORT["participant_id"] == unit])


#: the largest volume a region of an atlas is assumed to spread over (400 mL)
REGION_MM3 = 400_000


def _voxel_mm3(runs, grid=None):
    """Volume of a voxel of the job's grid (mm³), from the grid's affine or the first
    run's header; 27 (3 mm) when neither is known."""
    if grid is not None and GRIDS.get(grid, (None,))[0]:
        return abs(float(np.linalg.det(np.asarray(GRIDS[grid][1])[:3, :3]))) or 27.0
    for run in runs:
        path = COHORT.loc[run, "func"]
        if _shape_of(path) is not None:
            zooms = nibabel.load(path).header.get_zooms()[:3]
            return float(np.prod(zooms)) or 27.0
    return 27.0


def _working_mb(rulename, runs, grid=None, wildcards=None):
    """Peak memory of the rule's own arrays, MB (on top of JOB_MB)."""
    regions = atlas_regions(wildcards)
    geometry = [run_geometry(r) for r in runs] or [TYPICAL_RUN]
    voxels = max(g[0] for g in geometry)
    if grid is not None and GRIDS.get(grid, (None,))[0]:
        voxels = math.prod(GRIDS[grid][0][:3])  # known before the runs exist
    volumes = sum(g[1] for g in geometry)
    # the atlases on the run grid are sparse (resample_atlas): a region rarely spreads
    # over more than REGION_MM3 (50,000 voxels at 2 mm, 15,000 at 3 mm); 12 bytes per
    # non-zero (value, index) plus its float64 copy, and the Gram pseudo-inverse
    per_region = min(voxels, REGION_MM3 / _voxel_mm3(runs, grid))
    maps = 20 * regions * per_region + 3 * 8 * regions**2
    signals = 8 * volumes * (regions + 36)  # region signals and up to 36P confounds
    if rulename == "resample_atlas":
        # maps read a chunk of volumes at a time (float64), the sparse maps twice
        # (atlas grid and run grid), the eigendecomposition of the Gram matrix
        working = 4 * DEFAULT_CHUNK_BYTES + 2 * maps
    elif rulename == "extract_timeseries":
        # a chunk of volumes, as float64, twice (read + scaled), read ahead once,
        # then projected on every atlas
        volume_bytes = voxels * geometry[0][2]
        chunk = min(volumes, max(1, DEFAULT_CHUNK_BYTES // volume_bytes))
        working = 3 * 8 * chunk * voxels + maps + 4 * signals
    elif rulename in ("clean_timeseries", "combine_runs"):
        # detrend, filter (spline fill of censored volumes), QR of the confounds
        working = 20 * signals
    elif rulename == "estimate_connectomes":
        working = 10 * signals + 50 * 8 * regions**2
    else:  # the figures: plot_subject_connectomes, plot_subject_qc
        working = 10 * 8 * regions**2
    return working / 2**20


def _round_up(mb, step=10):
    return int(math.ceil(mb / step) * step)


def mem_mb_for_run(wildcards, input, attempt, rulename):
    """Memory (MB) of a per-run (or per-subject) job, for its attempt."""
    grid = wildcards.grid if "grid" in wildcards.keys() else None
    mb = JOB_MB + _working_mb(rulename, _runs_of(wildcards), grid, wildcards)
    if rulename.startswith("plot_"):
        mb += PLOT_MB
    return _round_up(mb) * attempt


def runtime_for_run(wildcards, input, attempt, rulename):
    """Wall time (minutes) of a per-run (or per-subject) job, for its attempt."""
    minutes = BASE_MINUTES
    if rulename == "extract_timeseries":  # reads every volume; the others, a header
        data_mb = sum(math.prod(run_geometry(r)) for r in _runs_of(wildcards)) / 2**20
        minutes += data_mb / READ_MB_PER_MINUTE
    if rulename == "estimate_connectomes" and (
        config["connectivity"]["estimator"] == "graphical_lasso_cv"
    ):
        minutes += 30 * (atlas_regions(wildcards) / 40) ** 3
    return int(math.ceil(minutes)) * attempt


def _input_mb(input):
    return sum(os.path.getsize(f) for f in input if os.path.isfile(f)) / 2**20


def mem_mb_for_group(wildcards, input, attempt, rulename):
    """Memory (MB) of a group-level job: the long table in pandas grows with the
    per-run matrices it reads (about 10x their size as text)."""
    mb = JOB_MB + 10 * _input_mb(input)
    if rulename.startswith("plot_"):
        mb += PLOT_MB
    return _round_up(mb) * attempt


def runtime_for_group(wildcards, input, attempt):
    """Wall time (minutes) of a group-level job (reads every run's matrices)."""
    return int(math.ceil(BASE_MINUTES + _input_mb(input) / 100)) * attempt


def mem_mb_for_atlas(wildcards, input, attempt):
    """Memory (MB) of prepare_atlas: one map (or the 3D labels) at a time, float64."""
    found = _shape_of(ATLASES[wildcards.atlas].image)
    voxels = math.prod(found[0][:3]) if found is not None else 256**3
    return _round_up(JOB_MB + 4 * 8 * voxels / 2**20) * attempt


def runtime_for_atlas(wildcards, input, attempt):
    """Wall time (minutes) of prepare_atlas: reads the atlas image once or twice."""
    return int(math.ceil(BASE_MINUTES + 2 * _input_mb(input) / READ_MB_PER_MINUTE)) * attempt
