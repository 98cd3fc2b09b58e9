"""One function per workflow rule: read the inputs, call the numerics, write the outputs.

The Snakemake scripts in ``scripts/`` only unpack ``snakemake.input``,
``snakemake.output`` and ``snakemake.params`` into these functions, inside
`job_log`.  Keeping the file handling here makes every rule testable without
Snakemake and keeps the numeric modules free of I/O.
"""

import contextlib
import logging
import math
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from . import io
from .errors import InputError

log = logging.getLogger("cohort_connectome")

#: Columns of the per-volume QC table that `clean_timeseries` writes.
QC_COLUMNS = ("volume", "framewise_displacement", "kept")


class _ThreadFilter(logging.Filter):
    """Pass the records of the thread that created it: a job run inside the
    scheduler process (``run:``, `job_log`) logs only its own messages while
    other jobs run in other threads."""

    def __init__(self):
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record):
        return record.thread == self.thread


@contextlib.contextmanager
def job_log(log_path, name, subject=None):
    """Log a job to ``log_path`` (and stderr); turn bad input into a one-line error.

    An `InputError` is written as one line naming the subject, file and
    problem, to the log and to stderr, and the job exits with status 1 (no
    traceback: the input is wrong, not the code).  Any other exception keeps
    its traceback in the log.  Outputs are written atomically by `io`, and
    Snakemake removes the outputs of a failed job, so nothing partial stays.

    A job run inside the Snakemake process (``run:`` rules, one thread per
    job) logs only its own thread's records, logs its warnings even when an
    earlier job of the process gave the same; its ``SystemExit(1)`` becomes
    an exception that fails the job (``run_in_process`` in common.smk: in a
    job thread Snakemake would hang on it).
    """
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    formatter = logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s")
    this_thread = _ThreadFilter()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(this_thread)
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    logging.captureWarnings(True)
    if threading.current_thread() is not threading.main_thread():
        # a job inside the scheduler process (``run:``): log its warnings even
        # if an earlier job of the process gave the same ones
        for category in (UserWarning, RuntimeWarning):
            warnings.simplefilter("always", category)
    for handler in handlers:
        logging.getLogger("py.warnings").addHandler(handler)
    label = f"{name} {subject}" if subject else name
    start = time.perf_counter()
    log.info("%s: started", label)
    try:
        yield log
    except InputError as err:
        if subject and not err.subject:
            err = err.with_context(subject=subject)
        log.error("%s", err)
        raise SystemExit(1) from None
    except Exception:
        log.exception("%s: failed", label)
        raise
    else:
        log.info("%s: done in %.2f s", label, time.perf_counter() - start)
    finally:
        for handler in handlers:
            log.removeHandler(handler)
            logging.getLogger("py.warnings").removeHandler(handler)
            handler.close()


ON_BAD_INPUT = ("exclude", "fail")


@contextlib.contextmanager
def excluded_on_bad_input(stage, on_bad_input, write_excluded, subject=None):
    """Turn bad input of one run into its exclusion, so that the cohort goes on.

    With ``on_bad_input="exclude"`` an `InputError` raised in the block is
    logged as its one line (subject, file, problem) at ERROR level, then
    ``write_excluded(stage, err)`` writes the job's outputs as placeholders
    that say so (time series with a header and no row, matrices of n/a,
    sidecars with ``Excluded`` = reason and ``ExcludedStage`` = stage), and
    the job succeeds: the later rules carry the exclusion on and the group
    rule lists it in ``results/group/exclusions.tsv``.  With ``"fail"`` the
    error propagates (`job_log` makes it the job's one-line failure).  Other
    exceptions always propagate.

    Parameters
    ----------
    stage : str
        The rule that found the problem (``ExcludedStage``).
    on_bad_input : {"exclude", "fail"}
        Config ``cohort.on_bad_input``.
    write_excluded : callable
        ``write_excluded(stage, err)``: ``err`` the `InputError` (its
        `exclusion_reason` goes into the sidecars).
    subject : str, optional
        Named in the error when the error does not name it.
    """
    if on_bad_input not in ON_BAD_INPUT:
        raise ValueError(f"on_bad_input must be one of {ON_BAD_INPUT}, got {on_bad_input!r}")
    try:
        yield
    except InputError as err:
        if on_bad_input != "exclude":
            raise
        if subject and not err.subject:
            err = err.with_context(subject=subject)
        stage = err.stage or stage
        log.error("%s", err)
        write_excluded(stage, err)
        log.warning("%s excluded at %s (cohort.on_bad_input: exclude): outputs written as "
                    "placeholders", err.subject or "run", stage)


def exclusion_reason(err):
    """The reason of an exclusion: the error's file and problem (its subject
    has a column of its own in the exclusions table)."""
    return str(InputError(err.problem, path=err.path))


def excluded_info(sidecar):
    """``(stage, reason)`` of an excluded run's sidecar, or None if included."""
    reason = sidecar.get("Excluded") or sidecar.get("excluded")
    if not reason:
        return None
    return sidecar.get("ExcludedStage") or sidecar.get("excluded_stage"), reason


# --------------------------------------------------------------------------
# demo cohort
# --------------------------------------------------------------------------
def simulate_demo_atlas(maps_path, labels_path, truth_paths, participants_path,
                        n_subjects, seed, demo_root):
    """Write the demo atlas (maps + labels), the ground-truth precisions and
    the demo's participants table (a valid cohort sheet)."""
    import nibabel as nib

    from . import cohort, demo

    maps = demo.evaluate_maps(demo.ATLAS_SHAPE, demo.ATLAS_AFFINE)
    img = nib.Nifti1Image(maps, demo.ATLAS_AFFINE)
    img.header.set_xyzt_units("mm")
    io.save_nifti(img, maps_path)
    labels = demo.demo_labels()
    io.write_table(labels, labels_path)
    truths = demo.ground_truth_precisions(seed)
    for group, path in truth_paths.items():
        io.write_matrix(truths[group], labels["name"], path)
    design = demo.demo_design(n_subjects, seed)
    table = cohort.demo_cohort(design, demo_root)
    sheet_dir = Path(participants_path).parent
    sheet = cohort.phenotype(table)
    sheet.insert(1, "func", [str(Path(p).relative_to(sheet_dir)) for p in table["func"]])
    sheet.insert(2, "confounds",
                 [str(Path(p).relative_to(sheet_dir)) for p in table["confounds"]])
    io.write_table(sheet, participants_path)
    log.info("demo atlas: %d maps on a %s grid; %d subjects", maps.shape[3],
             "x".join(map(str, maps.shape[:3])), n_subjects)


def simulate_demo_run(subject, truth_path, run_path, confounds_path, signals_path,
                      n_subjects, seed):
    """Write one demo subject's 4D run, confounds table and true region signals."""
    import nibabel as nib

    from . import demo

    design = demo.demo_design(n_subjects, seed)
    row = design[[f"sub-{p}" == subject for p in design["participant_id"]]]
    if row.empty:
        raise InputError(f"{subject} is not in the demo design of {n_subjects} subjects")
    row = row.iloc[0]
    precision, names = io.read_matrix(truth_path)
    data, affine, confounds, signals = demo.simulate_run(row, precision, seed=seed)
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms((3.0, 3.0, 3.0, float(row["t_r"])))
    io.save_nifti(img, run_path)
    io.write_table(confounds, confounds_path)
    io.write_timeseries(signals, names, signals_path)
    log.info("%s: %d volumes, TR %.2f s, group %s", subject, data.shape[3], row["t_r"],
             row["group"])


# --------------------------------------------------------------------------
# ADHD-200 metadata
# --------------------------------------------------------------------------
def write_adhd_participants(phenotypic_path, slice_timing_path, subject_ids, output_path):
    """Write the ADHD-200 participants table (sub-<id>, t_r, phenotype)."""
    from .fetch.datasets import adhd_participants

    table = adhd_participants(phenotypic_path, slice_timing_path, subject_ids)
    table["participant_id"] = [io.participant_label(p) for p in table["participant_id"]]
    io.write_table(table, output_path)
    log.info("%d participants; sites %s", len(table),
             ", ".join(sorted(set(map(str, table["site"])))))


def write_adhd_sidecar(phenotypic_path, slice_timing_path, subject_id, output_path):
    """Write a run's JSON sidecar with the true repetition time of its site.

    nilearn's fetch_adhd returns t_r=2.0 for every subject; the sites' real
    values (slice-timing table) range from 1.96 to 2.5 s.
    """
    from .fetch.datasets import adhd_participants

    row = adhd_participants(phenotypic_path, slice_timing_path, [subject_id]).iloc[0]
    io.write_json({"RepetitionTime": float(row["t_r"]), "Site": str(row["site"]),
                   "Source": str(slice_timing_path)}, output_path)
    log.info("%s: site %s, TR %.2f s", subject_id, row["site"], row["t_r"])


def write_bids_participants(participants_path, participant_ids, output_path):
    """Write the phenotype of a BIDS cohort's participants (``participant_id``
    only when the dataset has no participants.tsv)."""
    from .bids import read_participants

    table = read_participants(participants_path, participant_ids)
    io.write_table(table, output_path)
    log.info("%d participants; phenotype columns: %s", len(table),
             ", ".join(table.columns[1:]) or "none")


# --------------------------------------------------------------------------
# per subject
# --------------------------------------------------------------------------
def resample_atlas(maps_path, labels_path, output_path, projector_path, shape=None,
                   affine=None, runs=(), run_paths=(), on_bad_input="fail"):
    """Write the atlas maps on one voxel grid, and their projector.

    Runs once per distinct grid of the cohort (shape + affine, read from the
    runs' headers when the DAG is built) and is shared by every run on it.
    Linear interpolation with nilearn's clipping; when the grids are equal
    (or ``shape`` is None) the maps are written unchanged.  The projector
    (support and pseudo-inverse of the maps, `streaming.MapsProjector`) is
    computed here once, so that extracting a run is a matrix product; it
    carries the region names of the labels table (checked here, one row per
    map), so that the extraction jobs need not read it.

    Parameters
    ----------
    shape, affine : the target grid, or None to keep the atlas grid.
    runs, run_paths : sequence of str
        The runs on this grid and their files, named in errors and in the log.
    on_bad_input : {"fail", "exclude"}
        When the maps cannot be used on this grid (they do not overlap it):
        fail, or write zero maps and an unusable projector
        (`MapsProjector.unusable`) whose reason each run's extraction job
        records as its exclusion (stage ``resample_atlas``).  Problems of the
        atlas itself (unreadable maps, labels) always fail.
    """
    import nibabel as nib

    from .resampling import resample_maps, same_grid
    from .streaming import MapsProjector

    who = _runs_label(runs)
    maps_img = _load_maps(maps_path)
    labels = io.read_labels(labels_path, n_maps=maps_img.shape[3])
    maps = np.asanyarray(maps_img.dataobj)
    if shape is None or same_grid(maps.shape, maps_img.affine, shape, affine):
        out_shape, out_affine = maps.shape[:3], maps_img.affine
    else:
        out_shape, out_affine = tuple(shape)[:3], np.asarray(affine, dtype=np.float64)

    def write_unusable(stage, err):  # the reason without the file: it is every run's
        zeros = np.zeros(tuple(out_shape) + (maps.shape[3],), dtype=maps.dtype)
        io.save_nifti(nib.Nifti1Image(zeros, out_affine), output_path)
        MapsProjector.unusable(maps.dtype, out_shape, maps.shape[3], err.problem).save(
            projector_path, names=labels["name"])

    with excluded_on_bad_input("resample_atlas", on_bad_input, write_unusable, subject=who):
        try:  # e.g. the atlas does not overlap the grid
            if out_affine is maps_img.affine:
                log.info("atlas already on the grid: maps used unchanged")
                out = maps
            else:
                out = resample_maps(maps, maps_img.affine, out_shape, out_affine)
                log.info("resampled %d maps from %s to %s for %s", maps.shape[3],
                         "x".join(map(str, maps.shape[:3])), "x".join(map(str, out_shape)),
                         who)
            projector = MapsProjector().fit(out)
        except InputError as err:
            raise err.with_context(path=_first(run_paths), subject=who) from None
        io.save_nifti(nib.Nifti1Image(out, out_affine), output_path)
        projector.save(projector_path, names=labels["name"])
        log.info("projector: %d maps on %d voxels", projector.n_maps_,
                 projector.support_.size)


def _first(values):
    values = list(values or ())
    return values[0] if values else None


def _runs_label(runs):
    runs = list(runs or ())
    if not runs:
        return None
    return runs[0] if len(runs) == 1 else f"{runs[0]} (and {len(runs) - 1} more runs)"


def _load_maps(path):
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise InputError("atlas maps file not found", path=path)
    try:
        img = nib.load(path)
    except Exception as err:  # nibabel raises several types for bad files
        raise InputError(f"not a readable NIfTI image: {err}", path=path) from None
    if len(img.shape) != 4:
        raise InputError(f"atlas maps must be a 4D image (one volume per map), got shape "
                         f"{img.shape}", path=path)
    return img


def extract_timeseries(run_path, maps_path, projector_path, output_path, sidecar_path,
                       subject=None, on_bad_input="fail"):
    """Extract region signals (least squares on the maps) from one run.

    The run is streamed in chunks of volumes and projected with the maps'
    pseudo-inverse computed once per grid by `resample_atlas`
    (`cohort_connectome.streaming`), never held whole; the result equals
    nilearn's ``img_to_signals_maps``.  A run whose header is not on the grid
    of ``maps_path`` (its grid was unknown when the DAG was built) has the
    maps resampled here, for it alone, with a warning in the log.  Writes the
    raw region signals (TSV, header = region names) and a JSON sidecar with
    the run's repetition time from its header.

    A bad run (missing, empty, truncated, not 4D, outside the atlas) fails
    the job, or with ``on_bad_input="exclude"`` is excluded (see
    `excluded_on_bad_input`); so is every run of a grid whose projector is
    unusable (stage ``resample_atlas``).
    """
    from .extraction import load_run
    from .streaming import MapsProjector

    # the workflow's own files: a problem here is not the run's (never excluded)
    projector = MapsProjector.load(projector_path)
    maps_img = _load_maps(maps_path)
    names = projector.names_
    if names is None:
        raise InputError("projector has no region names (written by an older version: "
                         "rerun resample_atlas)", path=projector_path, subject=subject)

    def write_excluded(stage, err):
        io.write_timeseries(np.zeros((0, len(names))), names, output_path)
        io.write_json({"Excluded": exclusion_reason(err), "ExcludedStage": stage,
                       "NumberOfVolumes": None, "NonFiniteValues": None,
                       "RepetitionTimeHeader": None, "Source": str(run_path)}, sidecar_path)

    with excluded_on_bad_input("extract_timeseries", on_bad_input, write_excluded, subject):
        if projector.unusable_:  # the maps cannot be used on this run's grid
            raise InputError(projector.unusable_, path=run_path, subject=subject,
                             stage="resample_atlas")
        _extract_run(load_run(run_path, subject=subject), run_path, maps_path, maps_img,
                     projector, names, output_path, sidecar_path, subject)


def _extract_run(run, run_path, maps_path, maps_img, projector, names, output_path,
                 sidecar_path, subject):
    """The body of `extract_timeseries` for a readable run."""
    from .streaming import MapsProjector, extract_signals_streaming

    if not (maps_img.shape[:3] == run.shape[:3] and np.allclose(maps_img.affine, run.affine)):
        from .resampling import resample_maps

        log.warning("run grid %s differs from the grid of %s: maps resampled for this "
                    "run only", "x".join(map(str, run.shape[:3])), maps_path)
        try:
            maps = resample_maps(np.asanyarray(maps_img.dataobj), maps_img.affine,
                                 run.shape[:3], run.affine)
            projector = MapsProjector().fit(maps)
        except InputError as err:
            raise err.with_context(path=run_path, subject=subject) from None
    counts = {}
    try:
        signals = extract_signals_streaming(run_path, projector, subject=subject,
                                            counts=counts)
    except InputError as err:
        raise err.with_context(path=run_path, subject=subject) from None
    if counts["non_finite"]:
        log.warning("%d NaN/inf values in the atlas' voxels set to 0 (as nilearn)",
                    counts["non_finite"])
    io.write_timeseries(signals, names, output_path)
    io.write_json({"RepetitionTimeHeader": header_t_r(run), "NumberOfVolumes": run.shape[3],
                   "NonFiniteValues": int(counts["non_finite"]),
                   "DataType": str(signals.dtype), "Source": str(run_path)}, sidecar_path)
    log.info("%d volumes x %d regions", *signals.shape)


def header_t_r(img):
    """Repetition time (s) from a NIfTI header's 4th zoom, or None when unset."""
    zooms = img.header.get_zooms()
    if len(zooms) < 4 or not zooms[3] or not math.isfinite(zooms[3]) or zooms[3] <= 0:
        return None
    unit = img.header.get_xyzt_units()[1]
    scale = {"msec": 1e-3, "usec": 1e-6}.get(unit, 1.0)
    return float(zooms[3]) * scale


def clean_timeseries(raw_path, sidecar_path, confounds_path, output_path, info_path,
                     qc_path, clean, t_r=None, subject=None, bold_sidecar=None,
                     on_bad_input="fail"):
    """Censor and clean region signals as nilearn (``load_confounds`` volumes,
    then ``signal.clean``: detrend, filter, confounds, standardize) and write
    them with a JSON sidecar of what was done and a per-volume QC table.

    A run whose censoring keeps no volume, or less than ``clean["min_seconds"]``,
    is excluded rather than failed: its time series has a header and no row,
    and the sidecar says why (``Excluded``); the group rules leave it out and
    list it in ``results/group/exclusions.tsv``.

    Parameters
    ----------
    clean : dict
        The ``clean`` config section: nilearn's names, plus ``strategy``,
        ``confounds`` (explicit columns), ``fd_threshold``, ``dummy_scans``,
        ``min_segment`` and ``min_seconds``.
    t_r : float or None
        The repetition time from the cohort sheet; else ``clean["t_r"]``; else
        ``RepetitionTime`` of the run's JSON sidecar (``bold_sidecar``); else
        the run header.  A header that disagrees with the value used is
        logged as a warning.
    bold_sidecar : path, optional
        BIDS-style JSON sidecar of the run (``RepetitionTime`` in seconds).
    on_bad_input : {"fail", "exclude"}
        Bad input (confounds, repetition time, a setting the data cannot
        take) fails the job or excludes the run (`excluded_on_bad_input`).
        A run excluded upstream (``Excluded`` in the raw sidecar) is passed
        on as excluded.
    """
    import json

    signals, names = io.read_timeseries(raw_path, subject=subject)
    header = json.loads(Path(sidecar_path).read_text())
    upstream = excluded_info(header)
    if upstream:
        _write_excluded_clean(names, None, *upstream, confounds_path, clean, output_path,
                              info_path, qc_path)
        log.warning("run excluded at %s (%s): passed on", *upstream)
        return

    def write_excluded(stage, err):
        _write_excluded_clean(names, len(signals), stage, exclusion_reason(err),
                              confounds_path, clean, output_path, info_path, qc_path)

    with excluded_on_bad_input("clean_timeseries", on_bad_input, write_excluded, subject):
        _clean_run(signals, names, header, raw_path, confounds_path, output_path, info_path,
                   qc_path, clean, t_r, subject, bold_sidecar)


def _write_excluded_clean(names, n_volumes, stage, reason, confounds_path, clean,
                          output_path, info_path, qc_path):
    """The outputs of clean_timeseries for an excluded run: no row, no volume
    kept, and a sidecar with the settings and the reason."""
    io.write_timeseries(np.zeros((0, len(names))), names, output_path)
    io.write_numeric_table(_qc_values(n_volumes or 0, None, []), QC_COLUMNS, qc_path)
    io.write_json({**_clean_settings(clean, confounds_path),
                   "RepetitionTime": None, "RepetitionTimeSource": None,
                   "NumberOfVolumes": n_volumes, "NumberOfVolumesKept": 0,
                   "NonFiniteValues": None, "SecondsKept": None,
                   "MeanFramewiseDisplacement": None, "Confounds": [],
                   "Excluded": reason, "ExcludedStage": stage}, info_path)


def _clean_settings(clean, confounds_path):
    """The cleaning settings recorded in every cleaned sidecar."""
    return {
        "ConfoundsFile": str(confounds_path or ""),
        "Strategy": clean.get("strategy"),
        "FramewiseDisplacementThreshold": clean.get("fd_threshold"),
        "DummyScans": int(clean.get("dummy_scans") or 0),
        "MinSegment": int(clean.get("min_segment") or 0),
        "Detrend": bool(clean.get("detrend", False)),
        "Standardize": clean.get("standardize") or False,
        "StandardizeConfounds": bool(clean.get("standardize_confounds", True)),
        "LowPass": clean.get("low_pass"), "HighPass": clean.get("high_pass"),
    }


def _clean_run(signals, names, header, raw_path, confounds_path, output_path, info_path,
               qc_path, clean, t_r, subject, bold_sidecar):
    """The body of `clean_timeseries` for a run not excluded upstream."""
    from .signal import clean_signals, constant_columns

    if header.get("DataType") == "float32":
        signals = signals.astype(np.float32)
    n_volumes = len(signals)
    t_r, t_r_source = _repetition_time(t_r, clean, bold_sidecar, header, subject)
    filtering = clean.get("low_pass") is not None or clean.get("high_pass") is not None
    if (filtering or clean.get("min_seconds")) and t_r is None:
        raise InputError("filtering and min_seconds need the repetition time, and none is "
                         "given (sheet t_r, config clean.t_r, JSON sidecar) nor in the NIfTI "
                         "header", path=header.get("Source"), subject=subject)

    confounds, confound_names, sample_mask, fd = _run_confounds_and_censoring(
        confounds_path, n_volumes, clean, subject)
    kept = np.arange(n_volumes) if sample_mask is None else sample_mask
    seconds_kept = None if t_r is None else len(kept) * t_r
    excluded = None
    if len(kept) == 0:
        excluded = "censoring keeps no volume"
    elif clean.get("min_seconds") and seconds_kept < clean["min_seconds"]:
        excluded = (f"{seconds_kept:.1f} s kept after censoring, less than min_seconds "
                    f"{clean['min_seconds']:g} s")

    if excluded:
        log.warning("run excluded: %s", excluded)
        cleaned = np.zeros((0, signals.shape[1]))
    else:
        try:
            cleaned = clean_signals(
                signals, confounds,
                detrend=bool(clean.get("detrend", False)),
                standardize=clean.get("standardize") or False,
                standardize_confounds=bool(clean.get("standardize_confounds", True)),
                low_pass=clean.get("low_pass"), high_pass=clean.get("high_pass"), t_r=t_r,
                sample_mask=sample_mask)
        except InputError:
            raise
        except ValueError as err:  # a setting the data cannot take, e.g. too few volumes
            raise InputError(str(err), path=raw_path, subject=subject) from None
    # A region whose raw signal is constant carries no signal: once its mean is
    # removed (detrend, high-pass, standardize) only rounding noise is left, which
    # standardization would blow up to unit variance (nilearn does). Exact
    # arithmetic gives 0: set it, record it (a documented deviation from nilearn).
    constant = [] if excluded else constant_columns(signals, sample_mask)
    if constant and (clean.get("detrend") or clean.get("high_pass") is not None
                     or clean.get("standardize")):
        cleaned[:, constant] = 0
    if constant:
        log.warning("%d constant regions (no signal; cleaned to 0): %s", len(constant),
                    ", ".join(names[i] for i in constant))
    steps = fd[1:] if fd is not None else np.zeros(0)
    io.write_timeseries(cleaned, names, output_path)
    io.write_numeric_table(_qc_values(n_volumes, fd, kept), QC_COLUMNS, qc_path)
    io.write_json({
        "RepetitionTime": t_r, "RepetitionTimeSource": t_r_source,
        "NumberOfVolumes": int(n_volumes), "NumberOfVolumesKept": int(len(kept)),
        "NonFiniteValues": header.get("NonFiniteValues"),
        "ConstantRegions": [names[i] for i in constant],
        "SecondsKept": seconds_kept,
        "MeanFramewiseDisplacement": float(steps.mean()) if steps.size else None,
        "Excluded": excluded, "ExcludedStage": "clean_timeseries" if excluded else None,
        "Confounds": confound_names, **_clean_settings(clean, confounds_path),
    }, info_path)
    log.info("cleaned %d of %d volumes x %d regions; %d confounds; TR %s s (%s)",
             len(cleaned), n_volumes, signals.shape[1], len(confound_names), t_r, t_r_source)


def _repetition_time(t_r, clean, bold_sidecar, header, subject):
    """The run's repetition time and where it came from (see `clean_timeseries`)."""
    sidecar_t_r = _sidecar_t_r(bold_sidecar, subject) if bold_sidecar else None
    header_value = header.get("RepetitionTimeHeader")
    if t_r is not None and not _isnan(t_r):
        t_r, source = float(t_r), "cohort sheet"
    elif clean.get("t_r") is not None:
        t_r, source = float(clean["t_r"]), "config clean.t_r"
    elif sidecar_t_r is not None:
        t_r, source = sidecar_t_r, "JSON sidecar"
    else:
        t_r, source = header_value, ("NIfTI header" if header_value is not None else None)
    if t_r is not None and header_value is not None and not math.isclose(
            t_r, header_value, rel_tol=1e-3):
        log.warning("repetition time %.4g s (%s) differs from the NIfTI header's %.4g s; "
                    "using %.4g s", t_r, source, header_value, t_r)
    return t_r, source


def _run_confounds_and_censoring(path, n_volumes, clean, subject):
    """Confound regressors, kept volumes (None: all) and framewise displacement
    (None without motion information) of a run."""
    from .confounds import FD_COLUMN, _has_motion, censor_table, load_confounds_columns

    fd_threshold = clean.get("fd_threshold")
    dummy_scans = int(clean.get("dummy_scans") or 0)
    if not path:
        if fd_threshold is not None:
            raise InputError("clean.fd_threshold needs a confounds table (framewise_"
                             "displacement or motion columns), and the run has none",
                             subject=subject)
        mask = np.arange(dummy_scans, n_volumes) if dummy_scans else None
        return None, [], mask, None
    table = load_confounds_columns(path, subject=subject)
    confounds, names = read_run_confounds(path, n_volumes, strategy=clean.get("strategy"),
                                          columns=clean.get("confounds"), subject=subject,
                                          table=table)
    mask, fd = censor_table(table, fd_threshold=fd_threshold, dummy_scans=dummy_scans,
                            min_segment=int(clean.get("min_segment") or 0), path=path,
                            subject=subject)
    censoring = fd_threshold is not None or len(mask) < n_volumes
    if fd_threshold is None and FD_COLUMN not in table.columns and not _has_motion(table):
        fd = None  # no motion information: no FD to report
    return confounds, names, (mask if censoring else None), fd


def _qc_values(n_volumes, fd, kept):
    """Per-volume QC, the columns of `QC_COLUMNS`: volume index, framewise
    displacement (NaN without motion information) and 1 where the volume is
    kept, else 0.

    Returns
    -------
    ndarray, shape (n_volumes, 3), float64
        Indices and flags are whole numbers: `io.write_numeric_table` writes
        them as pandas writes integer columns.
    """
    flags = np.zeros(n_volumes)
    flags[np.asarray(kept, dtype=int)] = 1
    return np.column_stack([np.arange(n_volumes, dtype=np.float64),
                            np.full(n_volumes, np.nan) if fd is None else fd, flags])


def combine_runs(runs, timeseries_paths, sidecar_paths, output_path, info_path,
                 subject=None, on_bad_input="fail"):
    """Concatenate a subject's cleaned runs (nilearn's ``runs``: each run
    cleaned on its own, then stacked in run order); excluded runs are left out.

    Writes the concatenated time series and a sidecar summing the runs'
    volumes, kept volumes and seconds (``Runs`` lists the runs used,
    ``ExcludedRuns`` the others; ``Excluded`` when none is left).  Runs
    whose regions differ fail the job, or exclude the subject with
    ``on_bad_input="exclude"``.
    """
    def write_excluded(stage, err):  # only on this path: the first run's header
        names = io.read_timeseries(timeseries_paths[0], subject=runs[0])[1]
        io.write_timeseries(np.zeros((0, len(names))), names, output_path)
        io.write_json({"Runs": [], "ExcludedRuns": {}, "NumberOfVolumes": None,
                       "NumberOfVolumesKept": 0, "NonFiniteValues": None,
                       "SecondsKept": None, "MeanFramewiseDisplacement": None,
                       "Confounds": [], "Excluded": exclusion_reason(err),
                       "ExcludedStage": stage}, info_path)

    with excluded_on_bad_input("combine_runs", on_bad_input, write_excluded, subject):
        _combine_runs(runs, timeseries_paths, sidecar_paths, output_path, info_path, subject)


def _combine_runs(runs, timeseries_paths, sidecar_paths, output_path, info_path, subject):
    """The body of `combine_runs`."""
    import json

    blocks, used, excluded, stages, names = [], [], {}, [], None
    volumes = kept = 0
    seconds, fd_sum, fd_n, confounds = 0.0, 0.0, 0, []
    non_finite = None
    for run, path, side in zip(runs, timeseries_paths, sidecar_paths):
        info = json.loads(Path(side).read_text())
        signals, these = io.read_timeseries(path, subject=run)
        if names is None:
            names = these
        elif these != names:
            raise InputError("region names differ between the subject's runs", path=path,
                             subject=subject)
        volumes += info["NumberOfVolumes"] or 0  # None: excluded before it was read
        if info.get("NonFiniteValues") is not None:
            non_finite = (non_finite or 0) + info["NonFiniteValues"]
        if info.get("Excluded"):
            excluded[run] = info["Excluded"]
            stages.append(info.get("ExcludedStage"))
            continue
        blocks.append(signals)
        used.append(run)
        kept += info["NumberOfVolumesKept"]
        seconds += info["SecondsKept"] or 0.0
        if info.get("MeanFramewiseDisplacement") is not None:
            fd_sum += info["MeanFramewiseDisplacement"] * (info["NumberOfVolumes"] - 1)
            fd_n += info["NumberOfVolumes"] - 1
        confounds += [c for c in info["Confounds"] if c not in confounds]
    combined = np.vstack(blocks) if blocks else np.zeros((0, len(names)))
    io.write_timeseries(combined, names, output_path)
    io.write_json({
        "Runs": used, "ExcludedRuns": excluded,
        "NumberOfVolumes": int(volumes), "NumberOfVolumesKept": int(kept),
        "NonFiniteValues": non_finite,
        "SecondsKept": seconds, "MeanFramewiseDisplacement": fd_sum / fd_n if fd_n else None,
        "Confounds": confounds,
        "Excluded": None if used else "every run of the subject is excluded: " + "; ".join(
            f"{run}: {reason}" for run, reason in excluded.items()),
        "ExcludedStage": None if used else ",".join(dict.fromkeys(map(str, stages))),
    }, info_path)
    log.info("%d runs concatenated (%d volumes); %d excluded", len(used), len(combined),
             len(excluded))


def read_run_confounds(path, n_volumes, strategy=None, columns=None, subject=None,
                       table=None):
    """The confound regressors of one run.

    Parameters
    ----------
    path : path
        Confounds table (CSV/TSV with header; fMRIPrep or ADHD-200 layout for
        strategies).
    n_volumes : int
        Volumes of the run: the table must have as many rows.
    strategy : {None, "none", "6P", "24P", "36P", "acompcor"}
        None: the explicit ``columns``, else every column of the table.
    columns : list of str, optional
        Explicit columns; they win over ``strategy``.
    table : cohort_connectome.io.Columns or pandas.DataFrame, optional
        The table already read from ``path`` (default: read with
        `confounds.load_confounds_columns`).

    Returns
    -------
    confounds : ndarray (n_volumes, k), names : list of str
    """
    from .confounds import load_confounds_columns, select_confounds

    if table is None:
        table = load_confounds_columns(path, subject=subject)
    if len(table) != n_volumes:
        raise InputError(f"confounds table has {len(table)} rows but the run has "
                         f"{n_volumes} volumes", path=path, subject=subject)
    if not columns and strategy is None:
        columns = [str(c) for c in table.columns]
    return select_confounds(table, strategy or "none", columns=columns or None, path=path,
                            subject=subject)


def _sidecar_t_r(path, subject=None):
    """``RepetitionTime`` (s) from a BIDS-style JSON sidecar."""
    import json

    try:
        value = json.loads(Path(path).read_text()).get("RepetitionTime")
    except (OSError, ValueError) as err:
        raise InputError(f"not a readable JSON sidecar: {err}", path=path,
                         subject=subject) from None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"RepetitionTime must be a positive number of seconds, got {value!r}",
                         path=path, subject=subject)
    return float(value)


def _isnan(value):
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def estimate_connectomes(timeseries_path, output_paths, info_path, estimator,
                         estimator_options=None, subject=None, clean_sidecar=None,
                         on_bad_input="fail", fallback=None):
    """Estimate one run's connectivity matrices (one TSV per kind) and write a
    JSON sidecar with the estimator's choices (shrinkage, alpha, convergence,
    ``fallback``: the estimator used where ``GraphicalLassoCV`` failed, see
    `connectivity.estimate_connectivity`).

    A run excluded upstream (``Excluded`` in ``clean_sidecar``) gets
    matrices of n/a and a sidecar saying why (``excluded``,
    ``excluded_stage``), so that the workflow goes on; so does a run the
    estimator cannot take, with ``on_bad_input="exclude"``
    (`excluded_on_bad_input`).
    """
    import json

    from .connectivity import estimate_connectivity

    signals, names = io.read_timeseries(timeseries_path, subject=subject)
    kinds = list(output_paths)

    def write_excluded(stage, reason):
        for path in output_paths.values():
            io.write_matrix(np.full((len(names), len(names)), np.nan), names, path)
        io.write_json({"estimator": estimator, "kinds": kinds, "excluded": reason,
                       "excluded_stage": stage}, info_path)

    upstream = excluded_info(json.loads(Path(clean_sidecar).read_text())) if clean_sidecar \
        else None
    if upstream:
        write_excluded(*upstream)
        log.warning("run excluded at %s (%s): matrices written as n/a", *upstream)
        return
    with excluded_on_bad_input("estimate_connectomes", on_bad_input,
                               lambda stage, err: write_excluded(stage, exclusion_reason(err)),
                               subject):
        try:
            matrices, info = estimate_connectivity(signals, kinds=kinds, estimator=estimator,
                                                   estimator_options=estimator_options or None,
                                                   fallback=fallback)
        except InputError:
            raise
        except ValueError as err:
            raise InputError(str(err), path=timeseries_path, subject=subject) from None
        for kind, path in output_paths.items():
            io.write_matrix(matrices[kind], names, path)
        info["excluded"] = None
        info["excluded_stage"] = None
        if info.get("fallback"):
            log.warning("fallback estimator: %s", info["fallback"])
        unconverged = [k for k, v in info.items() if k.startswith("converged_") and not v]
        if unconverged and not info.get("fallback"):
            log.warning("%s did not converge (%s)", estimator, ", ".join(unconverged))
        if info.get("constant_regions"):
            log.warning("constant regions (zero variance): %s",
                        ", ".join(names[i] for i in info["constant_regions"]))
        io.write_json(info, info_path)
        log.info("%s: %s", estimator, ", ".join(kinds))


# --------------------------------------------------------------------------
# group
# --------------------------------------------------------------------------
def aggregate_connectomes(relmats, units, participants_path, clean_sidecars, long_path,
                          mean_paths, qc_path, exclusions_path, info_path=None,
                          timeseries=None, group_kinds=(), estimator="ledoit_wolf",
                          estimator_options=None, sparse_options=None,
                          connectivity_sidecars=None):
    """Build the group long table, the group-mean matrix of each kind, the
    cohort QC table and the exclusions table; estimate the group-level kinds.

    Parameters
    ----------
    relmats : dict
        ``{kind: {run: path}}`` of per-run matrices (the per-run kinds).
    units : list of dict
        One record per run: ``key`` (the run name), ``participant_id`` and the
        run's entities (``session``, ``task``, ``run``) when the cohort has
        several runs per participant.
    participants_path : path
        The cohort's participants table (sheet, demo, ADHD-200 or BIDS
        ``participants.tsv``); its phenotype columns go into the long table.
    clean_sidecars : dict
        ``{run: path}`` of the cleaned time series' JSON sidecars (QC and
        exclusion).
    connectivity_sidecars : dict, optional
        ``{run: path}`` of estimate_connectomes' JSON sidecars: a run excluded
        there (``excluded``) is excluded here too.
    long_path : path
        ``participant_id, [entities...], <phenotype...>, kind, region_i,
        region_j, value`` with one row per included run, kind and region pair
        i ≤ j (atlas order); kinds in the order of ``mean_paths``.
    mean_paths : dict
        ``{kind: path}`` of the group matrices: the mean over included runs,
        except for ``tangent``, whose group matrix is the geometric mean of
        the covariances (the reference point of the tangent space).
    qc_path, exclusions_path : path
        One row per run (volumes, kept, seconds, mean FD, confounds,
        exclusion and the rule that excluded it); one row per excluded run:
        ``participant_id, [entities...], stage, reason``.
    info_path : path, optional
        JSON sidecar of the group level: runs used, kinds, and for the group
        kinds the geometric mean's iterations and convergence (``tangent``)
        and the cross-validated alpha (``groupsparse``); null when not computed.
    timeseries : dict, optional
        ``{run: path}`` of the cleaned time series (needed by group kinds).
    group_kinds : sequence of str
        Kinds estimated here from all runs' time series at once: ``tangent``
        (nilearn's ``ConnectivityMeasure(kind="tangent")`` with
        ``estimator``), ``groupsparse_precision`` and
        ``groupsparse_partialcorrelation`` (``GroupSparseCovarianceCV`` with
        ``sparse_options``).  Excluded runs are left out.
    """
    import json

    import pandas as pd

    from .cohort import read_phenotype
    from .group import GROUP_SPARSE_KINDS, group_mean, long_table

    phenotype = read_phenotype(participants_path).drop_duplicates("participant_id")
    records = pd.DataFrame(units)
    missing = sorted(set(records["participant_id"]) - set(phenotype["participant_id"]))
    if missing:
        raise InputError(f"participants table has no row for {', '.join(missing)}",
                         path=participants_path)
    entity_columns = [c for c in records.columns if c not in ("key", "participant_id")]
    sidecars = {run: json.loads(Path(path).read_text()) for run, path in clean_sidecars.items()}
    qc = records[["participant_id", *entity_columns]].copy()
    qc["n_volumes"] = [sidecars[k]["NumberOfVolumes"] for k in records["key"]]
    qc["n_kept"] = [sidecars[k]["NumberOfVolumesKept"] for k in records["key"]]
    qc["seconds_kept"] = [sidecars[k]["SecondsKept"] for k in records["key"]]
    qc["mean_fd"] = [sidecars[k]["MeanFramewiseDisplacement"] for k in records["key"]]
    qc["n_nonfinite"] = [sidecars[k].get("NonFiniteValues") for k in records["key"]]
    qc["n_confounds"] = [len(sidecars[k]["Confounds"]) for k in records["key"]]
    qc["confounds"] = [",".join(sidecars[k]["Confounds"]) for k in records["key"]]
    estimates = {run: json.loads(Path(path).read_text())
                 for run, path in (connectivity_sidecars or {}).items()}
    exclusions = [excluded_info(sidecars[k]) or excluded_info(estimates.get(k, {}))
                  or ("", "") for k in records["key"]]
    qc["n_constant"] = [len(sidecars[k].get("ConstantRegions") or []) for k in records["key"]]
    qc["fallback"] = [estimates.get(k, {}).get("fallback") or "" for k in records["key"]]
    qc["converged"] = [_converged(estimates.get(k, {})) for k in records["key"]]
    qc["excluded"] = [reason for _, reason in exclusions]
    qc["excluded_stage"] = [stage or "" for stage, _ in exclusions]
    io.write_table(qc, qc_path)
    excluded = qc["excluded"] != ""
    io.write_table(qc.loc[excluded, ["participant_id", *entity_columns, "excluded_stage",
                                     "excluded"]]
                   .rename(columns={"excluded_stage": "stage", "excluded": "reason"}),
                   exclusions_path)
    for key, (stage, reason) in zip(records["key"], exclusions):
        if reason:
            log.warning("excluded: %s at %s: %s", key, stage, reason)
    included = records[~excluded.to_numpy()]
    if included.empty:
        raise InputError("every run is excluded (see the exclusions table)",
                         path=exclusions_path)
    records = included.merge(phenotype, on="participant_id", how="left")
    keys = list(records["key"])
    tables, names = {}, None
    for kind, by_run in relmats.items():
        tables[kind] = {}
        for run in keys:
            matrix, these = io.read_matrix(by_run[run])
            if names is None:
                names = these
            elif these != names:
                raise InputError("region names differ from the other runs'", path=by_run[run],
                                 subject=run)
            tables[kind][run] = matrix

    group_kinds = list(group_kinds)
    means = {kind: group_mean(list(tables[kind].values())) for kind in tables}
    info = {"runs": keys,
            "excluded": [str(u["key"]) for u, e in zip(units, excluded) if e],
            "kinds": list(mean_paths), "tangent": None, "groupsparse": None}
    if group_kinds:
        if len(keys) < 2:
            raise InputError(f"{', '.join(group_kinds)} are estimated across runs and need at "
                             f"least 2 included runs, {len(keys)} left (see the exclusions "
                             "table)", path=exclusions_path)
        signals = []
        for run in keys:
            values, these = io.read_timeseries(timeseries[run], subject=run)
            if names is None:
                names = these
            elif these != names:
                raise InputError("region names differ from the other runs'",
                                 path=timeseries[run], subject=run)
            signals.append(values)
        if "tangent" in group_kinds:
            info["tangent"], tables["tangent"], means["tangent"] = _tangent_kind(
                signals, keys, estimator, estimator_options)
        if set(GROUP_SPARSE_KINDS) & set(group_kinds):
            info["groupsparse"], sparse = _group_sparse_kinds(signals, keys, sparse_options)
            for kind in GROUP_SPARSE_KINDS:
                tables[kind] = sparse[kind]
                means[kind] = group_mean(list(sparse[kind].values()))
    tables = {kind: tables[kind] for kind in mean_paths}
    for kind, path in mean_paths.items():
        io.write_matrix(means[kind], names, path)
    table = long_table(tables, names, records.to_dict("records"))
    io.write_table(table, long_path)
    if info_path:
        io.write_json(info, info_path)
    log.info("%d runs of %d participants (%d excluded), %d kinds, %d rows", len(records),
             records["participant_id"].nunique(), int(excluded.sum()), len(tables), len(table))


def _converged(info):
    """"yes"/"no" when the run's estimator iterates (GraphicalLassoCV: every
    fit converged, no fallback), "" otherwise."""
    flags = [v for k, v in info.items() if k.startswith("converged_")]
    if not flags:
        return ""
    return "yes" if all(flags) and not info.get("fallback") else "no"


def _tangent_kind(signals, keys, estimator, estimator_options):
    """(sidecar info, {run: tangent matrix}, geometric mean) of the included runs."""
    from .group import tangent_kind

    try:
        tangents, mean, info = tangent_kind(signals, estimator, estimator_options)
    except ValueError as err:  # e.g. a singular covariance
        raise InputError(f"tangent space: {err}") from None
    if not info["converged"]:
        log.warning("tangent: the geometric mean did not reach tol %g in %d iterations "
                    "(gradient norm %.3g)", info["tol"], info["max_iter"],
                    info["gradient_norm"])
    log.info("tangent: geometric mean of %d covariances in %d iterations (%s)", len(keys),
             info["n_iter"], "converged" if info["converged"] else "not converged")
    return info, dict(zip(keys, tangents)), mean


def _group_sparse_kinds(signals, keys, options):
    """(sidecar info, {kind: {run: matrix}}) of GroupSparseCovarianceCV."""
    from .group import group_sparse_kinds

    try:
        matrices, info = group_sparse_kinds(signals, options)
    except ValueError as err:
        raise InputError(f"group sparse covariance: {err}") from None
    log.info("group sparse: alpha %.4g chosen among %d, %.1f%% of the edges non-zero",
             info["alpha"], len(info["cv_alphas"]), 100 * info["density"])
    return info, {kind: dict(zip(keys, stack)) for kind, stack in matrices.items()}


def plot_connectomes(matrix_paths, labels_path, figure_paths, title, negate=(),
                     n_edges=40):
    """Draw, for each kind, a matrix figure and a connectome figure.

    Parameters
    ----------
    matrix_paths : dict
        ``{kind: path}`` of matrices written by `io.write_matrix`.
    labels_path : path
        The atlas labels table (names, networks, coordinates).
    figure_paths : dict
        ``{kind: {"matrix": path, "connectome": path}}``.
    title : str
        Title suffix, e.g. ``"sub-01, atlas msdl"``.
    negate : sequence of str
        Kinds drawn with the sign flipped (nilearn's example shows -precision).
    n_edges : int
        Strongest edges drawn in each connectome figure.
    """
    from .plotting import plot_connectome, plot_matrix, plot_message

    labels = io.read_labels(labels_path)
    coords = labels[["x", "y", "z"]].to_numpy(dtype=float)
    networks = labels["network"].tolist()
    for kind, path in matrix_paths.items():
        matrix, names = io.read_matrix(path)
        if names != list(labels["name"]):
            raise InputError("matrix region names do not match the atlas labels", path=path)
        if np.isnan(matrix).all():  # an excluded run
            for figure in figure_paths[kind].values():
                plot_message(figure, f"{kind}, {title}: run excluded (see the QC table)")
            continue
        if kind in negate:
            matrix, label = -matrix, f"negated {kind}"
        else:
            label = kind
        plot_matrix(matrix, names, networks, figure_paths[kind]["matrix"],
                    title=f"{label}, {title}")
        plot_connectome(matrix, coords, figure_paths[kind]["connectome"], networks=networks,
                        title=f"{label}, {title}", n_edges=n_edges)


# --------------------------------------------------------------------------
# group comparison and quality control
# --------------------------------------------------------------------------
def _read_long_table(path):
    import pandas as pd

    return pd.read_csv(path, sep="\t", dtype={"participant_id": str, "session": str,
                                              "task": str, "run": str},
                       na_values=["n/a"], keep_default_na=True, low_memory=False)


def compare_groups(table_path, participants_path, labels_path, column, ttest_path,
                   classification_path, figure_paths, participant_ids=None, levels=None,
                   fdr=0.05, classify=None):
    """Compare the two levels of a phenotype column, kind by kind.

    Per participant (the mean of its runs' matrices when it has several), per
    kind: a two-sample t-test of every edge with Benjamini-Hochberg FDR
    (`comparison.edgewise_ttest`), a cross-validated LinearSVC classification
    of the phenotype from the vectorized matrices (`comparison.classify_phenotype`),
    and a matrix figure of the t values of the significant edges, ordered by
    network.  Too few subjects for a test or a classification: the tables say
    so in their ``note`` column (NaN statistics), the figure too.

    Parameters
    ----------
    table_path : path
        The group long table (included runs only).
    participants_path : path
        The participants table: the levels of ``column`` are taken over the
        cohort's participants (``participant_ids``), excluded ones included,
        so that exclusions leave a contrast with a missing group rather than
        no contrast.
    column : str
        The phenotype column.
    figure_paths : dict
        ``{kind: path}``; the kinds compared, in order.
    levels : pair, optional
        The two levels to compare (needed when the column has more).
    fdr : float
        False discovery rate of the ``significant`` column.
    classify : dict, optional
        ``n_splits``, ``n_repeats``, ``seed`` of the classification.

    Raises
    ------
    InputError
        One line naming the column when it is absent or has fewer than 2
        levels (or more than 2 without ``levels``).
    """
    import pandas as pd

    from .cohort import read_phenotype
    from .comparison import CLASSIFY_COLUMNS, TTEST_COLUMNS, classify_phenotype, edgewise_ttest
    from .group import contrast_levels, label_text, matrices_from_long

    classify = dict(classify or {})
    phenotype = read_phenotype(participants_path).drop_duplicates("participant_id")
    if participant_ids is not None:
        phenotype = phenotype[phenotype["participant_id"].isin(list(participant_ids))]
    if column not in phenotype.columns:
        shown = ", ".join(c for c in phenotype.columns if c != "participant_id") or "none"
        raise InputError(f"group.compare: phenotype column '{column}' is not in the "
                         f"participants table (phenotype columns: {shown})",
                         path=participants_path)
    try:
        level_a, level_b = contrast_levels(phenotype[column].tolist(), column, levels)
    except ValueError as err:
        raise InputError(f"group.compare: {err}", path=participants_path) from None
    by_participant = dict(zip(phenotype["participant_id"],
                              (label_text(v) for v in phenotype[column])))

    table = _read_long_table(table_path)
    labels = io.read_labels(labels_path)
    names, networks = list(labels["name"]), list(labels["network"])
    ttests, classifications = [], []
    for kind, figure in figure_paths.items():
        keys, stack = matrices_from_long(table, names, kind)
        groups = [by_participant.get(k) for k in keys]
        keep = np.array([g in (level_a, level_b) for g in groups], dtype=bool)
        stack, groups = stack[keep], [g for g, k in zip(groups, keep) if k]
        present = sorted(set(groups))
        if len(present) == 2:
            result = edgewise_ttest(stack, pd.Series(groups, name=column), names=names,
                                    alpha=fdr, levels=(level_a, level_b), column=column)
            scores = classify_phenotype({kind: stack}, pd.Series(groups, name=column),
                                        column=column, **classify)
        else:
            missing = level_a if level_a not in present else level_b
            note = (f"not tested: no included subject in group '{missing}' of phenotype "
                    f"column '{column}'")
            rows, cols = np.triu_indices(len(names), k=1)
            in_a = np.array([g == level_a for g in groups], dtype=bool)
            result = pd.DataFrame({
                "region_i": np.asarray(names, dtype=object)[rows],
                "region_j": np.asarray(names, dtype=object)[cols],
                "group_a": level_a, "group_b": level_b,
                "n_a": int(in_a.sum()), "n_b": int((~in_a).sum()),
                "mean_a": stack[in_a][:, rows, cols].mean(axis=0) if in_a.any() else np.nan,
                "mean_b": stack[~in_a][:, rows, cols].mean(axis=0) if (~in_a).any() else np.nan,
                "t": np.nan, "p": np.nan, "q": np.nan, "significant": False, "note": note,
            })[list(TTEST_COLUMNS)]
            scores = pd.DataFrame([{
                "kind": kind, "accuracy_mean": np.nan, "accuracy_std": np.nan,
                "n_splits": int(classify.get("n_splits", 5)),
                "n_repeats": int(classify.get("n_repeats", 10)),
                "chance": np.nan, "n_subjects": len(groups),
                "note": note.replace("not tested", "not run")}])[list(CLASSIFY_COLUMNS)]
        result.insert(0, "kind", kind)
        ttests.append(result)
        classifications.append(scores)
        _plot_ttest(result, names, networks, figure, kind, column, fdr)
        tested = result["note"] == ""
        log.info("%s: %s %d vs %s %d, %d of %d edges tested, %d with q < %g; accuracy %s "
                 "(chance %s)", kind, level_a, result["n_a"].iloc[0], level_b,
                 result["n_b"].iloc[0], int(tested.sum()), len(result),
                 int(result["significant"].sum()), fdr,
                 _fmt(scores["accuracy_mean"].iloc[0]), _fmt(scores["chance"].iloc[0]))
    io.write_table(pd.concat(ttests, ignore_index=True), ttest_path)
    io.write_table(pd.concat(classifications, ignore_index=True), classification_path)


def _fmt(value):
    return "n/a" if value != value else f"{value:.3f}"


def _plot_ttest(result, names, networks, path, kind, column, fdr):
    """Matrix of the t values of the edges with q < fdr (0 elsewhere), by network."""
    from .plotting import plot_matrix, plot_message

    tested = result["note"] == ""
    a, b = result["group_a"].iloc[0], result["group_b"].iloc[0]
    if not tested.any():
        plot_message(path, f"{kind}, {column}: {result['note'].iloc[0]}")
        return
    index = {name: k for k, name in enumerate(names)}
    i = result["region_i"].map(index).to_numpy()
    j = result["region_j"].map(index).to_numpy()
    t = result["t"].to_numpy(dtype=np.float64)
    significant = result["significant"].to_numpy(dtype=bool)
    matrix = np.zeros((len(names), len(names)))
    matrix[i[significant], j[significant]] = t[significant]
    matrix[j[significant], i[significant]] = t[significant]
    top = float(np.nanmax(np.abs(t[tested.to_numpy()]))) or 1.0
    plot_matrix(matrix, names, networks, path, vmin=-top, vmax=top,
                title=f"{kind}: t ({column} {a} - {b}), {int(significant.sum())} of "
                      f"{int(tested.sum())} edges with q < {fdr:g}")


def qc_fc(table_path, qc_path, labels_path, output_path, figure_path, title=""):
    """QC-FC: the correlation, across included runs, of every edge with the
    run's mean framewise displacement, per kind, and its dependence on the
    distance between the regions (a motion artefact shows as many non-zero
    correlations, stronger for close regions).

    Writes one row per kind and edge (``kind, region_i, region_j,
    distance_mm, r, p, n_runs, note``) and a figure (histogram and distance
    plot per kind).  Runs without FD are left out; with fewer than 3 runs with
    FD, the table's ``note`` and the figure say so.
    """
    import pandas as pd

    from .group import matrices_from_long, qc_fc as correlate
    from .plotting import plot_message, plot_qcfc

    table = _read_long_table(table_path)
    qc = pd.read_csv(qc_path, sep="\t", dtype=str, keep_default_na=False)
    entities = [c for c in ("session", "task", "run") if c in qc.columns]
    qc = qc[qc["excluded"] == ""]

    def unit_keys(frame):
        parts = [frame["participant_id"].astype(str)]
        parts += [frame[c].fillna("").astype(str) for c in entities]
        return pd.Series(["|".join(v) for v in zip(*parts)], index=frame.index)

    table["unit"] = unit_keys(table)
    fd_by_unit = dict(zip(unit_keys(qc), pd.to_numeric(qc["mean_fd"].replace("n/a", ""),
                                                       errors="coerce")))
    labels = io.read_labels(labels_path)
    names = list(labels["name"])
    coords = labels[["x", "y", "z"]].to_numpy(dtype=float)
    rows, cols = np.triu_indices(len(names), k=1)
    distance = np.linalg.norm(coords[rows] - coords[cols], axis=1)
    kinds = list(dict.fromkeys(table["kind"]))
    blocks, results = [], {}
    for kind in kinds:
        units, stack = matrices_from_long(table, names, kind, by="unit")
        fd = np.array([fd_by_unit.get(u, np.nan) for u in units], dtype=np.float64)
        r, p, n = correlate(stack[:, rows, cols], fd)
        if not np.isfinite(fd).any():
            note = "no framewise displacement (the confounds have no motion columns)"
        elif n < 3:
            note = f"not computed: {n} run(s) with framewise displacement, 3 needed"
        elif np.ptp(fd[np.isfinite(fd)]) == 0:
            note = "not computed: mean framewise displacement is the same for every run"
        else:
            note = ""
        edge_note = np.where(np.isfinite(r), "", note or "not computed: edge constant "
                             "across runs")
        blocks.append(pd.DataFrame({
            "kind": kind, "region_i": np.asarray(names, dtype=object)[rows],
            "region_j": np.asarray(names, dtype=object)[cols], "distance_mm": distance,
            "r": r, "p": p, "n_runs": n, "note": edge_note}))
        results[kind] = {"r": r, "p": p, "distance": distance, "n": n, "note": note}
    io.write_table(pd.concat(blocks, ignore_index=True), output_path)
    notes = {results[k]["note"] for k in kinds}
    if all(results[k]["note"] for k in kinds):
        plot_message(figure_path, f"QC-FC, {title}: {sorted(notes)[0]}")
        log.warning("QC-FC not computed: %s", "; ".join(sorted(notes)))
        return
    plot_qcfc(figure_path, {k: v for k, v in results.items() if not v["note"]},
              title=f"QC-FC, {title}")
    for kind in kinds:
        r = results[kind]["r"]
        if np.isfinite(r).any():
            log.info("%s: median |QC-FC r| %.3f over %d runs", kind,
                     np.nanmedian(np.abs(r)), results[kind]["n"])


def plot_subject_qc(raw_path, timeseries_path, sidecar_path, qc_path, labels_path,
                    figure_path, clean, confounds_path=None, title="", subject=None):
    """One run's QC figure (`plotting.plot_run_qc`) from the outputs of
    extract_timeseries and clean_timeseries: framewise displacement and
    censored volumes (the per-volume QC table), the confound regressors used
    (read again as cleaning read them), and the raw and cleaned region signals
    as carpets ordered by network."""
    import json

    import pandas as pd

    from .plotting import plot_run_qc

    raw, names = io.read_timeseries(raw_path, subject=subject)
    cleaned, _ = io.read_timeseries(timeseries_path, subject=subject)
    info = json.loads(Path(sidecar_path).read_text())
    if len(raw) == 0 and excluded_info(info):  # excluded before its data were read
        from .plotting import plot_message

        plot_message(figure_path, "{}: run excluded at {} ({})".format(
            title, *excluded_info(info)))
        log.info("QC figure: run excluded at %s", info.get("ExcludedStage"))
        return
    qc = pd.read_csv(qc_path, sep="\t", na_values=["n/a"])
    labels = io.read_labels(labels_path)
    networks = (list(labels["network"]) if list(labels["name"]) == names else None)
    confounds, confound_names = None, []
    if confounds_path and info.get("Confounds"):
        confounds, confound_names = read_run_confounds(
            confounds_path, len(raw), strategy=clean.get("strategy"),
            columns=clean.get("confounds"), subject=subject)
    plot_run_qc(figure_path, qc["framewise_displacement"].to_numpy(dtype=float),
                qc["kept"].to_numpy(dtype=bool), raw, cleaned, networks=networks,
                confounds=confounds, confound_names=confound_names,
                fd_threshold=info.get("FramewiseDisplacementThreshold"), title=title,
                excluded=info.get("Excluded"))
    log.info("QC figure: %d of %d volumes kept", int(qc["kept"].sum()), len(qc))
