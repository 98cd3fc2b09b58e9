"""Confound strategies and volume censoring, as nilearn's ``load_confounds``.

Reproduces the column choice, expansions, first-row filling, demeaning and
``sample_mask`` of nilearn 0.13.1's
``nilearn.interfaces.fmriprep.load_confounds`` for the strategies of the
``clean.strategy`` config key, on two table layouts:

- **fMRIPrep** ``*_desc-confounds_timeseries.tsv`` (or the older
  ``*_desc-confounds_regressors.tsv``): ``trans_x … rot_z`` (mm, radians),
  ``white_matter``, ``csf``, ``global_signal``, their ``_derivative1``,
  ``_power2``, ``_derivative1_power2`` expansions (``n/a`` on the first row of
  derivatives), ``a_comp_cor_NN`` (described by the JSON sidecar),
  ``framewise_displacement`` and ``non_steady_state_outlierNN``;
- **ADHD-200** ``<id>_regressors.csv`` (the NeuroBureau Athena pipeline, as
  shipped by nilearn's ``fetch_adhd``): ``motion-x motion-y motion-z``
  (mm), ``motion-pitch motion-roll motion-yaw`` (degrees, AFNI ``3dvolreg``),
  ``wm``, ``csf``, ``global``, ``compcor1..5``; no expansion, FD or
  non-steady-state column.

ADHD columns are renamed onto the fMRIPrep names (`ADHD_TO_FMRIPREP`) and
expanded exactly as fMRIPrep expands its own columns, so every strategy yields
the same names on both layouts.

Strategies (`STRATEGIES`) and the nilearn call each one mirrors:

=============  ==============================================================
``none``       no confound (zero columns)
``6P``         ``strategy=["motion"], motion="basic"``
``24P``        ``strategy=["motion"], motion="full"``
``36P``        ``strategy=["motion", "wm_csf", "global_signal"]``, all three
               ``"full"``
``acompcor``   ``strategy=["high_pass", "motion", "compcor"], motion="full",
               compcor="anat_combined", n_compcor="all"`` without the
               ``cosineNN`` columns of ``high_pass`` (see Notes)
=============  ==============================================================

Semantics reproduced from nilearn 0.13.1 (``load_confounds.py``,
``load_confounds_utils.py``, ``load_confounds_components.py``,
``load_confounds_compcor.py``, ``load_confounds_scrub.py``):

- **Names and order.**  A parameter ``p`` expands to ``p``,
  ``p_derivative1``, ``p_power2``, ``p_derivative1_power2`` ("full"); the
  selected columns are returned **sorted alphabetically**, as
  ``extract_outlier_regressors`` returns them.
- **Expansions.**  ``derivative1`` is the backward difference
  ``x[t] - x[t-1]`` with NaN (fMRIPrep's ``n/a``) at ``t = 0``; ``power2`` is
  ``x**2``; ``derivative1_power2`` is ``derivative1**2``.  fMRIPrep's own
  expansion columns are used when present; absent ones are computed that way
  (always, for the ADHD layout).
- **First row.**  Every selected column that is NaN on row 0 gets the value
  of row 1 (nilearn's ``prepare_output``), so ``x_derivative1[0] ==
  x_derivative1[1]`` and ``x_derivative1_power2[0] == x_derivative1[1]**2``.
  Only row 0 is filled.
- **aCompCor.**  nilearn's ``find_compcor(meta, "anat_combined", n)``: the
  candidates are ``a_comp_cor_00 … a_comp_cor_{K-1}`` where K is the number of
  sidecar entries whose key contains ``a_comp_cor``; those whose sidecar
  ``Mask`` is (a substring of) ``"combined"`` are kept, the first
  ``n_compcor`` of them (all by default).  The sidecar is required, as in
  nilearn.  ADHD: ``compcor1..N`` → ``a_comp_cor_00..``, first ``n_compcor``.
- **Demeaning** (``demean=True``, nilearn's default): without a sample mask,
  ``sklearn.preprocessing.scale(with_std=False)`` (which subtracts the
  residual mean again when it is not ``allclose`` to 0);
  with a sample mask, subtract the mean over the kept volumes from every
  volume.  ``select_confounds`` does **not** demean by default (``demean=False``):
  the cleaning step centres (and standardizes) the confounds itself.
- **Censoring** (``strategy=[..., "scrub"], scrub=min_segment,
  fd_threshold=..., std_dvars_threshold=None``): motion outliers are the
  volumes with ``framewise_displacement > fd_threshold`` (strict; the NaN of
  row 0 is never an outlier).  When there is at least one outlier and
  ``min_segment > 0``, every run of consecutive non-outlier volumes shorter
  than ``min_segment`` becomes outliers too (nilearn's ``optimize_scrub``:
  leading, trailing and inner segments alike).  Non-steady-state volumes —
  any column whose name contains ``non_steady_state``, flagged by a non-zero
  value — are then removed as well, but they do **not** take part in the
  segment rule (nilearn adds them after ``optimize_scrub``).  ``dummy_scans``
  = d flags volumes ``0 … d-1`` as non-steady-state, merged (union) with the
  fMRIPrep columns: it never removes the same volume twice and, like them,
  does not shorten segments.
- **sample_mask** is the sorted int64 array of the indices of the *kept*
  volumes.  Where nilearn returns ``None`` (nothing to remove) we return
  ``np.arange(n_volumes)``; when every volume is censored the array is empty
  (nilearn warns; callers decide).

Deviations from nilearn (documented, deliberate):

- ``acompcor`` leaves out the ``cosineNN`` columns nilearn requires alongside
  compcor (the workflow high-passes with ``clean.high_pass`` instead); list
  them through ``columns`` to regress them.
- Expansion columns missing from an fMRIPrep table are computed, not an error
  (nilearn raises); base columns missing are an `InputError`.
- A NaN framewise displacement after row 0 is an `InputError` (nilearn would
  silently keep the volume).
- ``std_dvars`` censoring is not offered (the config has no DVARS threshold);
  nilearn's counterpart is ``std_dvars_threshold=None``.

Tables are ``pandas.DataFrame`` as `load_confounds_table` reads them
(``pandas.read_csv``).
"""

import json
import math
import numbers
import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.preprocessing import scale

from .errors import InputError
from .io import read_table

#: Accepted values of ``clean.strategy``.
STRATEGIES = ("none", "6P", "24P", "36P", "acompcor")

#: fMRIPrep motion columns: three translations (mm), three rotations (rad).
FMRIPREP_MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")

#: ADHD-200 motion columns, in the order of `FMRIPREP_MOTION`.
ADHD_MOTION = ("motion-x", "motion-y", "motion-z",
               "motion-pitch", "motion-yaw", "motion-roll")

#: ADHD-200 (Athena) column -> fMRIPrep column.  Rotations follow AFNI
#: ``3dvolreg``'s convention (pitch about the R-L axis = x, yaw about the A-P
#: axis = y, roll about the I-S axis = z).  The choice only names the columns:
#: no strategy, FD or censoring result depends on which rotation is called x.
ADHD_TO_FMRIPREP = {
    **dict(zip(ADHD_MOTION, FMRIPREP_MOTION)),
    "wm": "white_matter",
    "csf": "csf",
    "global": "global_signal",
}

#: fMRIPrep's framewise-displacement column.
FD_COLUMN = "framewise_displacement"

#: Default head radius (mm) turning rotations into displacements (Power 2012).
HEAD_RADIUS = 50.0

_MODEL_SUFFIXES = {
    "basic": (),
    "derivatives": ("derivative1",),
    "power2": ("power2",),
    "full": ("derivative1", "power2", "derivative1_power2"),
}
_GROUP_PARAMS = {
    "motion": FMRIPREP_MOTION,
    "wm_csf": ("csf", "white_matter"),
    "global_signal": ("global_signal",),
}
# strategy -> ((group, model), ...); "compcor" is anat_combined.
_STRATEGY_GROUPS = {
    "none": (),
    "6P": (("motion", "basic"),),
    "24P": (("motion", "full"),),
    "36P": (("motion", "full"), ("wm_csf", "full"), ("global_signal", "full")),
    "acompcor": (("motion", "full"), ("compcor", None)),
}
_ADHD_COMPCOR = re.compile(r"^compcor(\d+)$")
_SUFFIX = re.compile(r"^(.*?)_(derivative1_power2|derivative1|power2)$")


def load_confounds_table(path, subject=None):
    """Read a confounds table (tab or comma separated, ``n/a`` read as NaN)
    with ``pandas.read_csv`` (`cohort_connectome.io.read_table`).

    The JSON sidecar of an fMRIPrep table (same name, ``.json``), when it
    exists, is read too and kept in ``table.attrs["confounds_json"]`` (needed
    by the ``acompcor`` strategy); ``table.attrs["path"]`` holds the path,
    used in error messages.

    Parameters
    ----------
    path : str or Path
    subject : str, optional
        Used in error messages.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        As `cohort_connectome.io.read_table`; or an unreadable JSON sidecar.
    """
    path = Path(path)
    table = read_table(path, subject=subject)
    table.attrs["path"] = str(path)
    sidecar = path.with_suffix(".json")
    if path.suffix in (".tsv", ".csv") and sidecar.is_file():
        try:
            table.attrs["confounds_json"] = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InputError(f"not a readable JSON sidecar: {err}", path=sidecar,
                             subject=subject) from None
    return table


def detect_layout(table, path=None, subject=None):
    """Tell which confounds layout a table follows.

    Parameters
    ----------
    table : pandas.DataFrame
    path, subject : optional
        Used in error messages (``path`` defaults to ``table.attrs["path"]``).

    Returns
    -------
    str
        ``"fmriprep"`` when it has ``trans_x … rot_z``, ``"adhd"`` when it has
        ``motion-x … motion-yaw``.

    Raises
    ------
    InputError
        Neither set of motion columns is complete; the message names the
        columns each layout lacks.
    """
    columns = set(map(str, table.columns))
    missing_fmriprep = [c for c in FMRIPREP_MOTION if c not in columns]
    if not missing_fmriprep:
        return "fmriprep"
    missing_adhd = [c for c in ADHD_MOTION if c not in columns]
    if not missing_adhd:
        return "adhd"
    raise InputError(
        "confounds table is neither an fMRIPrep table (lacks "
        f"{', '.join(missing_fmriprep)}) nor an ADHD-200 regressors table (lacks "
        f"{', '.join(missing_adhd)})", path=_path(table, path), subject=subject)


def select_confounds(table, strategy="none", columns=None, path=None, subject=None, *,
                     meta=None, n_compcor="all", demean=False, sample_mask=None):
    """The confound regressors of a strategy, or explicit columns.

    Parameters
    ----------
    table : pandas.DataFrame
        A confounds table (fMRIPrep or ADHD-200 layout, see `detect_layout`;
        any columns when ``columns`` is given).
    strategy : {"none", "6P", "24P", "36P", "acompcor"}, default="none"
        See the module docstring for the nilearn call each one mirrors.
    columns : list of str, optional
        Explicit columns, in this order; when given (non-empty) they win over
        ``strategy`` and keep their names.
    path, subject : optional
        Used in error messages (``path`` defaults to ``table.attrs["path"]``).
    meta : dict, optional
        The fMRIPrep JSON sidecar (default ``table.attrs["confounds_json"]``);
        required by ``acompcor`` on the fMRIPrep layout.
    n_compcor : int or "all", default="all"
        Number of aCompCor components (nilearn's ``n_compcor``).
    demean : bool, default=False
        Demean as nilearn's ``load_confounds(demean=True)`` (module docstring).
    sample_mask : array of int, optional
        Kept volumes, for ``demean``: the mean is taken over them.

    Returns
    -------
    confounds : ndarray, shape (n_volumes, k), float64
        Row 0 NaN filled from row 1, as nilearn does.
    names : list of str
        fMRIPrep names (e.g. ``trans_x_derivative1_power2``), sorted as
        nilearn sorts them; the given names for explicit ``columns``.

    Raises
    ------
    InputError
        Unknown strategy; columns missing (named, with the file); non-numeric
        columns; missing values beyond row 0; acompcor without a sidecar.
    """
    path = _path(table, path)
    n_volumes = len(table)
    if columns is not None and not isinstance(columns, str) and len(columns) > 0:
        columns = [str(c) for c in columns]
        present = set(map(str, table.columns))
        missing = [c for c in columns if c not in present]
        if missing:
            raise InputError(f"confounds table lacks column(s) {', '.join(missing)}",
                             path=path, subject=subject)
        selected = {c: _numeric(table[c], c, path, subject) for c in columns}
        names = list(columns)
    else:
        strategy = _check_strategy(strategy, path, subject)
        if strategy == "none":
            return np.zeros((n_volumes, 0)), []
        selected = _strategy_columns(table, strategy, path, subject, meta, n_compcor)
        names = sorted(selected)
    values = np.column_stack([selected[n] for n in names]).astype(np.float64)
    # nilearn's prepare_output: NaN on the first row <- value of the second row
    if n_volumes > 1:
        first_nan = np.isnan(values[0])
        values[0, first_nan] = values[1, first_nan]
    bad = [n for n, ok in zip(names, np.isfinite(values).all(axis=0)) if not ok]
    if bad:
        raise InputError(f"confounds column(s) {', '.join(bad)} contain missing or "
                         "non-finite values (beyond the first row)", path=path,
                         subject=subject)
    if demean:
        values = _demean(values, sample_mask)
    return values, names


def framewise_displacement(motion, head_radius=HEAD_RADIUS):
    """Framewise displacement of Power et al. (2012).

    ``FD[t] = sum_i |Δtrans_i[t]| + head_radius * sum_j |Δrot_j[t]|`` with
    ``Δx[t] = x[t] - x[t-1]`` (nipype's ``FramewiseDisplacement``, as
    fMRIPrep computes its ``framewise_displacement`` column).

    Parameters
    ----------
    motion : array-like, shape (n_volumes, 6)
        Three translations (mm) then three rotations (radians), i.e.
        ``trans_x trans_y trans_z rot_x rot_y rot_z``.
    head_radius : float, default=50.0
        Radius (mm) of the sphere turning rotations into arc lengths.

    Returns
    -------
    ndarray, shape (n_volumes,), float64
        FD in mm; 0 for the first volume (fMRIPrep writes ``n/a`` there,
        which nilearn never counts as an outlier: the same censoring).
    """
    motion = np.asarray(motion, dtype=np.float64)
    if motion.ndim != 2 or motion.shape[1] != 6:
        raise ValueError(f"motion must have shape (n_volumes, 6), got {motion.shape}")
    fd = np.zeros(motion.shape[0])
    if motion.shape[0] > 1:
        step = np.abs(np.diff(motion, axis=0))
        fd[1:] = step[:, :3].sum(axis=1) + head_radius * step[:, 3:].sum(axis=1)
    return fd


def table_framewise_displacement(table, head_radius=HEAD_RADIUS, path=None,
                                 subject=None):
    """Framewise displacement of a confounds table, in mm.

    The ``framewise_displacement`` column when the table has one (its row-0
    ``n/a`` set to 0), else `framewise_displacement` of the motion columns:
    fMRIPrep rotations are radians; ADHD-200 rotations are degrees (AFNI
    ``3dvolreg``) and are converted to radians first.

    Returns
    -------
    ndarray, shape (n_volumes,), float64
    """
    path = _path(table, path)
    if FD_COLUMN in table.columns:
        fd = _numeric(table[FD_COLUMN], FD_COLUMN, path, subject).copy()
        if len(fd) and np.isnan(fd[0]):
            fd[0] = 0.0
        if not np.isfinite(fd).all():
            raise InputError(f"{FD_COLUMN} has missing or non-finite values after the "
                             "first row", path=path, subject=subject)
        return fd
    layout = detect_layout(table, path=path, subject=subject)
    source = FMRIPREP_MOTION if layout == "fmriprep" else ADHD_MOTION
    motion = np.column_stack([_numeric(table[c], c, path, subject) for c in source])
    if layout == "adhd":
        motion[:, 3:] = np.deg2rad(motion[:, 3:])
    if not np.isfinite(motion).all():
        raise InputError("motion columns have missing or non-finite values", path=path,
                         subject=subject)
    return framewise_displacement(motion, head_radius=head_radius)


def censoring_mask(fd, fd_threshold=None, dummy_scans=0, min_segment=0,
                   non_steady_state=None):
    """Kept volumes after scrubbing, as nilearn's ``sample_mask``.

    Mirrors ``load_confounds(..., strategy=["motion", "scrub"], scrub=min_segment,
    fd_threshold=fd_threshold, std_dvars_threshold=None)``.

    Parameters
    ----------
    fd : array-like, shape (n_volumes,)
        Framewise displacement (mm); NaN is never an outlier.
    fd_threshold : float, optional
        Volumes with ``fd > fd_threshold`` are censored; None: no scrubbing.
    dummy_scans : int, default=0
        The first ``dummy_scans`` volumes are non-steady-state: removed, but
        not part of the segment rule (as fMRIPrep's non-steady-state outliers
        in nilearn).
    min_segment : int, default=0
        When some volume exceeds the threshold, runs of consecutive
        non-outlier volumes shorter than this are censored too (nilearn's
        ``scrub``); 0 disables the rule.
    non_steady_state : array-like, shape (n_volumes,), optional
        Non-zero where fMRIPrep flags a non-steady-state volume (the row-wise
        sum of its ``non_steady_state_outlierNN`` columns); merged with
        ``dummy_scans``.

    Returns
    -------
    ndarray of int64
        Sorted indices of the kept volumes (``np.arange(n)`` when nothing is
        removed, where nilearn returns None; empty when all are removed).
    """
    fd = np.asarray(fd, dtype=np.float64)
    if fd.ndim != 1:
        raise ValueError(f"fd must be one-dimensional, got shape {fd.shape}")
    n_volumes = fd.shape[0]
    dummy_scans = _count(dummy_scans, "dummy_scans")
    min_segment = _count(min_segment, "min_segment")
    removed = np.zeros(n_volumes, dtype=bool)
    if fd_threshold is not None:
        fd_threshold = float(fd_threshold)
        if not (math.isfinite(fd_threshold) and fd_threshold >= 0):
            raise ValueError(f"fd_threshold must be a non-negative number of mm, got "
                             f"{fd_threshold!r}")
        with np.errstate(invalid="ignore"):
            removed = fd > fd_threshold
        if min_segment > 0 and removed.any():
            removed = _censor_short_segments(removed, min_segment)
    removed[:min(dummy_scans, n_volumes)] = True
    if non_steady_state is not None:
        flags = np.asarray(non_steady_state, dtype=np.float64)
        if flags.shape != (n_volumes,):
            raise ValueError(f"non_steady_state must have shape ({n_volumes},), got "
                             f"{flags.shape}")
        removed |= np.nan_to_num(flags) != 0
    return np.flatnonzero(~removed).astype(np.int64)


def non_steady_state_flags(table):
    """Row-wise sum of a table's ``*non_steady_state*`` columns (NaN as 0).

    Returns
    -------
    ndarray, shape (n_volumes,), or None when the table has no such column.
    """
    names = [c for c in table.columns if "non_steady_state" in str(c)]
    if not names:
        return None
    return np.nansum(table[names].to_numpy(dtype=np.float64), axis=1)


def censor_table(table, fd_threshold=None, dummy_scans=0, min_segment=0,
                 head_radius=HEAD_RADIUS, path=None, subject=None):
    """`censoring_mask` of a confounds table.

    FD from `table_framewise_displacement`; the table's non-steady-state
    columns merged with ``dummy_scans``.

    Returns
    -------
    sample_mask : ndarray of int64
        Kept volume indices.
    fd : ndarray, shape (n_volumes,)
        The framewise displacement used (mm).
    """
    path = _path(table, path)
    n_volumes = len(table)
    if fd_threshold is not None or FD_COLUMN in table.columns or _has_motion(table):
        fd = table_framewise_displacement(table, head_radius=head_radius, path=path,
                                          subject=subject)
    else:  # nothing to measure motion with, and no scrubbing asked
        fd = np.zeros(n_volumes)
    try:
        mask = censoring_mask(fd, fd_threshold=fd_threshold, dummy_scans=dummy_scans,
                              min_segment=min_segment,
                              non_steady_state=non_steady_state_flags(table))
    except ValueError as err:
        raise InputError(str(err), path=path, subject=subject) from None
    return mask, fd


def run_qc(fd, sample_mask, t_r=None):
    """Motion and censoring summary of a run.

    Parameters
    ----------
    fd : array-like, shape (n_volumes,)
        Framewise displacement (mm); its first value (no predecessor) is left
        out of the mean and maximum.
    sample_mask : array of int
        Kept volume indices (`censoring_mask`).
    t_r : float, optional
        Repetition time (s), for ``seconds_kept``.

    Returns
    -------
    dict
        ``n_volumes``, ``n_kept``, ``n_censored``, ``fraction_kept``,
        ``mean_fd``, ``max_fd`` (mm, over volumes 1..n-1; NaN for a single
        volume), ``seconds_kept`` (``n_kept * t_r``, None without ``t_r``).
    """
    fd = np.asarray(fd, dtype=np.float64)
    n_volumes = int(fd.shape[0])
    n_kept = int(np.asarray(sample_mask).size)
    steps = fd[1:]
    steps = steps[np.isfinite(steps)]
    return {
        "n_volumes": n_volumes,
        "n_kept": n_kept,
        "n_censored": n_volumes - n_kept,
        "fraction_kept": n_kept / n_volumes if n_volumes else float("nan"),
        "mean_fd": float(steps.mean()) if steps.size else float("nan"),
        "max_fd": float(steps.max()) if steps.size else float("nan"),
        "seconds_kept": None if t_r is None else n_kept * float(t_r),
    }


# --------------------------------------------------------------------------- helpers


def _path(table, path):
    if path is not None:
        return path
    return getattr(table, "attrs", {}).get("path")


def _check_strategy(strategy, path, subject):
    if strategy is None:
        return "none"
    lookup = {s.lower(): s for s in STRATEGIES}
    key = str(strategy).strip().lower()
    if key not in lookup:
        raise InputError(f"unknown confound strategy {strategy!r} (choose from "
                         f"{', '.join(STRATEGIES)})", path=path, subject=subject)
    return lookup[key]


def _count(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _numeric(column, name, path, subject):
    """A column (pandas.Series) as float64; text is an `InputError`."""
    if not pd.api.types.is_numeric_dtype(column):
        raise InputError(f"confounds column {name} is not numeric", path=path,
                         subject=subject)
    return column.to_numpy(dtype=np.float64)


def _has_motion(table):
    columns = set(map(str, table.columns))
    return set(FMRIPREP_MOTION) <= columns or set(ADHD_MOTION) <= columns


def _censor_short_segments(removed, min_segment):
    """Also remove every run of kept volumes shorter than ``min_segment``.

    Equivalent to nilearn's ``optimize_scrub`` (leading segment of length
    ``first outlier``, trailing one of length ``n - last outlier - 1``, inner
    ones of length ``diff - 1``, each removed when ``< scrub``).
    """
    removed = removed.copy()
    kept = np.concatenate(([0], (~removed).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(kept))
    for start, stop in zip(edges[::2], edges[1::2]):
        if stop - start < min_segment:
            removed[start:stop] = True
    return removed


def _expand(values, suffix):
    """fMRIPrep's expansion of one column (NaN first row for derivatives)."""
    if suffix == "power2":
        return values ** 2
    derivative = np.full_like(values, np.nan)
    derivative[1:] = np.diff(values)
    return derivative ** 2 if suffix == "derivative1_power2" else derivative


def _strategy_columns(table, strategy, path, subject, meta, n_compcor):
    """{fMRIPrep name: values} of a strategy's columns."""
    layout = detect_layout(table, path=path, subject=subject)
    if layout == "adhd":
        rename = dict(ADHD_TO_FMRIPREP)
        source = {v: k for k, v in rename.items() if k in table.columns}
    else:
        source = {str(c): str(c) for c in table.columns}
    wanted, missing, compcor = [], [], []
    for group, model in _STRATEGY_GROUPS[strategy]:
        if group == "compcor":
            compcor = _compcor_columns(table, layout, meta, n_compcor, path, subject)
            continue
        for param in _GROUP_PARAMS[group]:
            if param not in source:
                missing.append(_original_name(param, layout))
                continue
            wanted.append(param)
            wanted.extend(f"{param}_{s}" for s in _MODEL_SUFFIXES[model])
    if missing:
        raise InputError(f"confounds table lacks column(s) {', '.join(missing)} needed "
                         f"by strategy {strategy}", path=path, subject=subject)
    selected = {}
    for name in wanted:
        if name in source:
            selected[name] = _numeric(table[source[name]], source[name], path, subject)
        else:
            base, suffix = _SUFFIX.match(name).groups()
            raw = _numeric(table[source[base]], source[base], path, subject)
            selected[name] = _expand(raw, suffix)
    for name, column in compcor:
        selected[name] = _numeric(table[column], column, path, subject)
    return selected


def _original_name(param, layout):
    if layout == "adhd":
        return {v: k for k, v in ADHD_TO_FMRIPREP.items()}[param]
    return param


def _compcor_columns(table, layout, meta, n_compcor, path, subject):
    """[(output name, table column)] of the anatomical (combined) CompCor."""
    if layout == "adhd":
        found = sorted((int(m.group(1)), str(c)) for c in table.columns
                       if (m := _ADHD_COMPCOR.match(str(c))))
        if not found:
            raise InputError("confounds table lacks compcor columns (compcor1, "
                             "compcor2, ...) needed by strategy acompcor", path=path,
                             subject=subject)
        pairs = [(f"a_comp_cor_{i:02d}", column) for i, (_, column) in enumerate(found)]
        return _first(pairs, n_compcor, path, subject)
    if meta is None:
        meta = table.attrs.get("confounds_json")
    if meta is None:
        raise InputError("strategy acompcor needs the confounds JSON sidecar (it tells "
                         "which a_comp_cor_NN use the combined WM+CSF mask); none was "
                         "found beside the table", path=path, subject=subject)
    # nilearn's find_compcor(meta, "anat_combined", n_compcor)
    count = sum("a_comp_cor" in key for key in meta)
    candidates = [f"a_comp_cor_{str(nn).zfill(2)}" for nn in range(count)]
    undescribed = [c for c in candidates if not isinstance(meta.get(c), dict)]
    if undescribed:
        raise InputError(f"confounds JSON sidecar lacks an entry for "
                         f"{', '.join(undescribed[:5])}", path=path, subject=subject)
    combined = [c for c in candidates if str(meta[c].get("Mask")) in "combined"]
    combined = _first(combined, n_compcor, path, subject)
    if not combined:
        raise InputError("confounds JSON sidecar lists no a_comp_cor component of the "
                         "combined mask, needed by strategy acompcor", path=path,
                         subject=subject)
    missing = [c for c in combined if c not in table.columns]
    if missing:
        raise InputError(f"confounds table lacks column(s) {', '.join(missing)} needed "
                         "by strategy acompcor", path=path, subject=subject)
    return [(c, c) for c in combined]


def _first(items, n_compcor, path=None, subject=None):
    """nilearn's ``_select_compcor``: the first ``n_compcor`` (all for "all")."""
    if isinstance(n_compcor, str) and n_compcor == "all":
        return list(items)
    if isinstance(n_compcor, bool) or not isinstance(n_compcor, numbers.Integral) \
            or n_compcor < 0:
        raise InputError(f"n_compcor must be 'all' or a non-negative integer, got "
                         f"{n_compcor!r}", path=path, subject=subject)
    return list(items)[:int(n_compcor)]


def _demean(values, sample_mask):
    """nilearn's ``_demean_confounds``: ``sklearn.preprocessing.scale(values,
    with_std=False)`` without a sample mask, else minus the mean of the kept
    volumes."""
    if sample_mask is None:
        return scale(values, axis=0, with_std=False)
    sample_mask = np.asarray(sample_mask)
    return values - values[sample_mask].mean(axis=0)


# --------------------------------------------------------------------------
# the confounds and censoring of one run
# --------------------------------------------------------------------------
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
    table : table, optional
        The table already read from ``path`` (default: read with
        `load_confounds_table`).

    Returns
    -------
    confounds : ndarray (n_volumes, k), names : list of str
    """
    if table is None:
        table = load_confounds_table(path, subject=subject)
    if len(table) != n_volumes:
        raise InputError(f"confounds table has {len(table)} rows but the run has "
                         f"{n_volumes} volumes", path=path, subject=subject)
    if not columns and strategy is None:
        columns = [str(c) for c in table.columns]
    return select_confounds(table, strategy or "none", columns=columns or None, path=path,
                            subject=subject)


def run_confounds_and_censoring(path, n_volumes, strategy=None, columns=None,
                                fd_threshold=None, dummy_scans=0, min_segment=0,
                                subject=None):
    """The confound regressors, kept volumes and framewise displacement of a run.

    As nilearn's ``load_confounds`` (``strategy``, ``scrub``, ``fd_threshold``)
    before ``signal.clean``; the censoring is `censor_table`'s.

    Parameters
    ----------
    path : path or None
        The run's confounds table; None: no confounds, and only
        ``dummy_scans`` can censor.
    n_volumes : int
        Volumes of the run.
    strategy, columns
        See `read_run_confounds`.
    fd_threshold : float, optional
        Censor volumes whose framewise displacement exceeds it (needs a
        confounds table).
    dummy_scans, min_segment : int
        See `censoring_mask`.

    Returns
    -------
    confounds : ndarray (n_volumes, k) or None
    names : list of str
    sample_mask : ndarray of int or None
        Kept volumes; None when every volume is kept and no censoring is asked.
    fd : ndarray (n_volumes,) or None
        Framewise displacement; None without motion information.
    """
    dummy_scans = int(dummy_scans or 0)
    if not path:
        if fd_threshold is not None:
            raise InputError("clean.fd_threshold needs a confounds table (framewise_"
                             "displacement or motion columns), and the run has none",
                             subject=subject)
        mask = np.arange(dummy_scans, n_volumes) if dummy_scans else None
        return None, [], mask, None
    table = load_confounds_table(path, subject=subject)
    confounds, names = read_run_confounds(path, n_volumes, strategy=strategy,
                                          columns=columns, subject=subject, table=table)
    mask, fd = censor_table(table, fd_threshold=fd_threshold, dummy_scans=dummy_scans,
                            min_segment=int(min_segment or 0), path=path, subject=subject)
    censoring = fd_threshold is not None or len(mask) < n_volumes
    if fd_threshold is None and FD_COLUMN not in table.columns and not _has_motion(table):
        fd = None  # no motion information: no FD to report
    return confounds, names, (mask if censoring else None), fd
