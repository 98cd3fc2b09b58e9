"""Cleaning of region signals, as nilearn's ``NiftiMapsMasker`` does it.

Reproduces the part of nilearn 0.13.1's ``nilearn.signal.clean`` that
``NiftiMapsMasker`` uses: the Butterworth filter only, no high-variance
confounds, ``ensure_finite=False`` and ``extrapolate=False``, with an optional
sample mask (scrubbing) and optional runs.  The steps and their order are
nilearn's, run by run (each run is cleaned independently):

0. with a sample mask: censored volumes are interpolated (cubic spline) when
   filtering, the censored volumes at the edges dropped, or, without a
   filter, all censored volumes are removed (the interpolation is nilearn's
   documented one, not its 0.13.1 code: see the Notes of `clean_signals`);
1. detrend the signals and the confounds (optional);
2. Butterworth-filter the signals and the confounds (optional), then remove
   the censored volumes;
3. standardize the confounds and project them out of the signals (when
   confounds are given);
4. standardize the signals (optional).

The floating-point operations follow nilearn's one for one, because nilearn's
result can depend on the last bits of intermediate values (see the Notes of
`clean_signals`).  The library calls are nilearn's: the Butterworth filter is
scipy's (``scipy.signal.butter(..., output="sos", fs=...)`` and
``scipy.signal.sosfiltfilt``, as in ``nilearn.signal.butterworth``), the
interpolation of censored volumes ``scipy.interpolate.CubicSpline`` (as in
``nilearn.signal._interpolate_volumes``) and the confound projection's pivoted
QR ``scipy.linalg.qr`` (as in ``nilearn.signal.clean``'s confound removal).
What is our own code is nilearn's semantics around those calls: the order of
the steps, the checks, the detrending and the standardizations.
"""

import math
import numbers
import warnings

import numpy as np
from scipy import linalg
from scipy import signal as sp_signal
from scipy.interpolate import CubicSpline

#: Accepted values of ``standardize`` (besides False / None).
STANDARDIZE_STRATEGIES = ("zscore_sample", "zscore", "psc")

#: Order of the Butterworth filter (nilearn's default).
_BUTTERWORTH_ORDER = 5

_EPS64 = np.finfo(np.float64).eps
_EPS32 = np.finfo(np.float32).eps


def clean_signals(signals, confounds=None, *, detrend=False, standardize=False,
                  standardize_confounds=True, low_pass=None, high_pass=None,
                  t_r=None, sample_mask=None, runs=None):
    """Detrend, filter, deconfound and standardize region signals.

    nilearn 0.13.1's ``nilearn.signal.clean(signals, runs=runs,
    detrend=detrend, standardize=standardize, sample_mask=sample_mask,
    confounds=confounds, standardize_confounds=standardize_confounds,
    filter="butterworth", low_pass=low_pass, high_pass=high_pass, t_r=t_r,
    ensure_finite=False)`` (``extrapolate=False``, its default), as called by
    ``NiftiMapsMasker``.

    Parameters
    ----------
    signals : array-like, shape (n_volumes, n_regions)
        Region signals, time along the first axis.  float32 or float64 (an
        integer or boolean array is converted as nilearn does: 8-byte integers
        to float64, smaller ones to float32).  Not modified.  Non-finite
        values are kept, not replaced (nilearn's ``ensure_finite=False``):
        they spread along their own column.
    confounds : array-like, shape (n_volumes, n_confounds) or (n_volumes,), optional
        Confound time series to project out of the signals; a 1D array is
        one confound.  Must be finite.  Not modified.
    detrend : bool, default=False
        Remove the mean and the linear trend of the signals and of the
        confounds.
    standardize : {"zscore_sample", "zscore", "psc", False, None}, default=False
        Standardization of the cleaned signals:

        - ``"zscore_sample"``: centred and divided by the sample standard
          deviation (``ddof=1``);
        - ``"zscore"``: centred and divided by the population standard
          deviation (``ddof=0``);
        - ``"psc"``: percent signal change, ``100 * (x - mean) / |mean|``,
          with the mean of the input signals added back first when
          detrending / high-pass filtering has removed it (see Notes);
        - False or None: no standardization.

        A standard deviation below float64 eps is replaced by 1; a psc
        column whose mean is below float64 eps in absolute value is set to 0
        (with a warning).
    standardize_confounds : bool, default=True
        Centre the confounds and divide them by their population standard
        deviation before the projection.  When False they are only divided by
        their maximum absolute value (their mean is kept).
    low_pass : float, optional
        Low-pass cut-off frequency, in Hz.  Needs `t_r`.
    high_pass : float, optional
        High-pass cut-off frequency, in Hz.  Needs `t_r`; lower than
        `low_pass` when both are given.
    t_r : float, optional
        Repetition time, in seconds (positive, finite).  Only used by the
        filter (and the interpolation of censored volumes before it).
    sample_mask : array-like, optional
        The volumes to keep (scrubbing): a boolean mask of length n_volumes
        (True = kept) or the indices of the kept volumes, strictly increasing
        integers in ``[0, n_volumes)``.  With `runs`: a list (or tuple) of
        such masks, one per run, in the order of the sorted run labels, each
        relative to its run's volumes (a bare array is accepted for a single
        run).  Without a filter the censored volumes are removed first; with
        a filter they are interpolated before it and removed after it (see
        Notes).  Not modified.
    runs : array-like, shape (n_volumes,), optional
        Run label of each volume.  Each run is cleaned on its own (its own
        detrending, filtering, confound projection and standardization) and
        the cleaned runs are stacked in the order of the sorted labels
        (``numpy.unique``), whatever the order of the volumes.

    Returns
    -------
    cleaned : ndarray, shape (n_kept_volumes, n_regions)
        A new array, of the signals' floating dtype (float32 input gives
        float32 output, as in nilearn).  One row per kept volume (all the
        volumes without `sample_mask`), run after run.

    Raises
    ------
    ValueError
        `signals` not 2D, empty or of an unsupported dtype; `confounds` not
        1D/2D, with a row count different from the signals' volume count, or
        with non-finite values; an unknown `standardize` (including True, see
        Notes); `low_pass` / `high_pass` without `t_r`; `high_pass` >=
        `low_pass`; a NaN cut-off; `t_r` not positive and finite.  `runs`
        not 1D, of the wrong length or with NaN labels.  A sample mask not
        1D, keeping no volume, with indices out of range, repeated or not
        increasing, a boolean mask of the wrong length, a number of masks
        different from the number of runs; with a filter, fewer than 2 kept
        volumes (for the interpolation), no more volumes left to filter than
        scipy's ``sosfiltfilt`` padding (18 for a low- or high-pass filter,
        33 for a band-pass; also for a run without sample mask), or
        non-finite signals at kept volumes.
    TypeError
        A non-boolean `detrend` / `standardize_confounds`, a non-numeric (or
        boolean) cut-off or `t_r`, or `confounds` given as a list / tuple.
        A sample mask neither boolean nor integer; with several runs, a
        sample mask that is not a list / tuple of masks.

    Warns
    -----
    UserWarning
        A cut-off at or above the Nyquist frequency (it is moved just below
        it, as in nilearn) or negative (moved just above 0); a band whose two
        cut-offs end up equal (the signals are left unfiltered); psc of a
        zero-mean column; confounds with neither `detrend` nor
        `standardize_confounds`; a single volume (detrending and
        standardization are skipped); ``standardize_confounds=False`` with
        `runs` and confounds (ignored, as by nilearn).

    Notes
    -----
    - ``standardize=True`` is rejected on purpose.  Its meaning depends on the
      nilearn version (``"zscore"``, population std, in 0.13.1; announced to
      become ``"zscore_sample"``, sample std, in 0.14), so the strategy must
      be chosen explicitly: ``"zscore_sample"`` or ``"zscore"``.
    - The filter is a Butterworth filter of order 5, second-order sections,
      applied forward and backward (``scipy.signal.sosfiltfilt``, odd
      padding of scipy's default length).  It is computed in float64 and the
      result is cast back to the signals' dtype.  Confounds are filtered with
      the same filter, so that the projection stays orthogonal to it.
    - Confounds are projected out with a pivoted, economic QR decomposition;
      columns whose ``|R[i, i]|`` is not above ``100 * eps`` (float64) are
      dropped, so collinear or constant confounds (a constant column is
      zeroed by the confound standardization) are harmless.
    - As in nilearn, the confound standardization divides by the standard
      deviation whenever it is above float64 eps (an absolute threshold).  A
      confound that detrending or filtering has reduced to rounding noise is
      thus blown up to unit variance and projected out as if it were a real
      regressor: with the ADHD-200 regressors, the ``linearTrend`` column
      after detrending (std ~2e-15) and the ``constant`` column after
      low-pass filtering (std ~4e-16).  Likewise the QR threshold ``100 *
      eps`` is absolute, and the residual ``|R[i, i]|`` of an exactly
      duplicated z-scored column can land just above it (2.6e-14 measured).
      The result then depends on the last bits of that noise: perturbing the
      confounds by 1e-15 (relative) changes nilearn's cleaned signals by 20
      to 140 % in those configurations.  This module therefore repeats
      nilearn's floating-point operations in nilearn's order, including the
      memory layout they run on (the confounds keep the layout they are
      given in, as after nilearn's ``np.hstack``; column means are summed in
      a layout-dependent order), and reproduces nilearn to ~1e-13 on the
      same machine.  The one reordering, ``x - Q (Q^T x)`` instead of
      nilearn's ``x - (Q Q^T) x``, comes after the sensitive steps.
    - psc: when the mean of the cleaned signals is, on average, less than a
      tenth of the mean of the input signals (detrending or high-pass
      filtering removed it), the input mean is added back before computing
      the percent signal change, as nilearn does.
    - Sample mask, as documented by nilearn 0.13.1 (``signal.clean``,
      ``_handle_scrubbed_volumes``).  Without a filter, the censored volumes
      are removed first, from the signals and the confounds, and the whole
      cleaning runs on the kept volumes (the psc mean too).  With a filter
      (Lindquist et al. 2019): a cubic spline
      (``scipy.interpolate.CubicSpline``, not-a-knot, ``extrapolate=False``)
      through the kept volumes at the frame times ``arange(n_volumes) * t_r``
      fills every censored volume of the signals and, separately, of the
      confounds; the censored volumes before the first and after the last
      kept one get NaN and are dropped; the psc mean is taken, detrending and
      filtering run on what remains, and then the censored volumes are
      removed, before the confound projection.  The output rows are exactly
      the kept volumes, in order.
    - Deliberate deviation from nilearn 0.13.1's code (not from its
      documentation): nilearn turns the sample mask into integer indices of
      the kept volumes and writes the interpolation with
      ``volumes[~sample_mask] = interpolated[~sample_mask]``.  On integers ``~i`` is ``-i - 1``, so it
      overwrites volume ``n_volumes - 1 - i`` (the mirror of ``i``) for each
      kept volume ``i``, not the censored volumes.  A censored volume is thus
      interpolated (or, at an edge, dropped) only when its mirror is kept;
      a censored volume whose mirror is censored too keeps its raw value (the
      motion spike the mask was meant to remove) through the filter, and when
      the first and the last volumes are both censored the dropped edges are
      the wrong ones, so the output rows are shifted: nilearn returns some
      censored volumes and loses kept ones, with no error.  That is not
      scrubbing, so this module does what nilearn documents instead.  To stay
      bit-identical to nilearn where nilearn is right, the spline is also
      written, as nilearn does, into the mirror of every kept volume: at a
      kept volume the spline gives back the volume's own value, exactly except
      at the last kept volume (evaluated at the end of the last spline piece,
      a rounding difference).  Hence a mask in which no censored volume's
      mirror is censored too gives nilearn's numbers exactly (the same
      computation); any other mask gives the documented result, which is not
      what nilearn 0.13.1 returns.
    - Runs, as nilearn 0.13.1 (``_process_runs``): each run is cleaned by
      its own call, with its sample mask, and nilearn does not pass
      `standardize_confounds` on: the confounds of every run are z-scored
      (``standardize_confounds=True``) whatever the value given, which this
      module reproduces, with a warning when it is False.
    - Differences with ``nilearn.signal.clean``: inputs are validated up
      front (nilearn lets some bad values fail later, e.g. a NaN confound in
      scipy's QR, or ignores them, e.g. a negative `t_r` without filtering);
      float16 / extended-precision / complex inputs are rejected; confounds
      must be an array (no file name, no list of arrays); nilearn's
      ``FutureWarning`` / ``DeprecationWarning`` about its future defaults
      are not emitted.  Sample masks: indices must be strictly increasing
      and integer (nilearn reorders / repeats volumes without a filter and
      truncates float indices) and a boolean mask must have the run's
      length; an empty mask, an index equal to n_volumes, or too few kept
      volumes for the filter raise a ValueError naming the problem (nilearn
      fails inside numpy / scipy).  Runs: any labels are accepted with
      sample masks (nilearn needs the labels 0 .. n_runs - 1 and fails for
      a single run labelled 0), and a run too short for the filter raises a
      clear ValueError.  With a filter, every censored volume is interpolated
      as documented, where nilearn 0.13.1 mishandles masks with a censored
      volume whose mirror is censored too (see above).
    """
    x, confounds, standardize = _check_inputs(
        signals, confounds, detrend, standardize, standardize_confounds,
        low_pass, high_pass, t_r,
    )
    if runs is None:
        labels, run_masks = None, [None]
        if sample_mask is not None:
            run_masks = [_check_sample_mask(sample_mask, x.shape[0], where="")]
    else:
        runs, labels = _check_runs(runs, x.shape[0])
        run_masks = _check_run_sample_masks(sample_mask, runs, labels)
    if confounds is not None and not detrend and not standardize_confounds:
        warnings.warn(
            "confounds are given with detrend=False and "
            "standardize_confounds=False: unless they are already centred, "
            "the signals will not be cleaned correctly",
            UserWarning, stacklevel=2,
        )
    kwargs = dict(detrend=detrend, standardize=standardize,
                  standardize_confounds=standardize_confounds,
                  low_pass=low_pass, high_pass=high_pass, t_r=t_r)
    if runs is None:
        return _clean_run(x, confounds, run_masks[0], where="", **kwargs)

    if confounds is not None and not standardize_confounds:
        warnings.warn(
            "standardize_confounds=False is ignored with runs: as nilearn "
            "0.13.1 does, the confounds of each run are z-scored",
            UserWarning, stacklevel=2,
        )
    kwargs["standardize_confounds"] = True  # nilearn's _process_runs drops it
    cleaned = []
    for label, run_mask in zip(labels, run_masks):
        in_run = runs == label
        cleaned.append(_clean_run(
            x[in_run], None if confounds is None else confounds[in_run],
            run_mask, where=f"run {_label_repr(label)}: ", **kwargs,
        ))
    return np.vstack(cleaned)


#: Relative tolerance of `constant_columns`: 16 float32 rounding units of the
#: largest absolute value of the run's signals.
CONSTANT_RTOL = 16 * float(_EPS32)


def constant_columns(signals, sample_mask=None, rtol=CONSTANT_RTOL):
    """Regions whose raw signal is constant, up to rounding, over the kept volumes.

    Such a region carries no signal, and cleaning cannot be trusted with it:
    detrending (or high-pass filtering) leaves only rounding noise, which a
    z-score standardization, nilearn's as ours, divides by its own standard
    deviation (above float64 eps) and returns as a unit-variance series of
    rounding errors.  Its values then depend on the last bits of the
    extraction (nilearn's ``lstsq`` over the whole grid and our projector
    differ there), so no two implementations agree on it, and its
    correlations are noise.  Exact arithmetic gives a column of zeros.

    Parameters
    ----------
    signals : array-like, shape (n_volumes, n_regions)
        Raw (uncleaned) region signals.
    sample_mask : array-like of int or bool, optional
        The kept volumes (indices or boolean mask); all when None.
    rtol : float, default=CONSTANT_RTOL
        A column is constant when ``max - min`` over the kept volumes is at
        most ``rtol * max|signals[kept]|`` (the largest absolute value of all
        regions, so that a region near 0 -- e.g. a map outside the run's
        brain mask -- is judged on the run's scale, not its own).  The default,
        16 float32 rounding units (1.9e-6), is far below any measured BOLD
        fluctuation (~1e-3 of the signal) and above the rounding of float32
        data through the projection.

    Returns
    -------
    list of int
        Indices of the constant columns, increasing.  Non-finite columns are
        not constant.
    """
    x = np.asarray(signals)
    if x.ndim != 2:
        raise ValueError(f"signals must be 2D (n_volumes, n_regions), got shape {x.shape}")
    if sample_mask is not None:
        x = x[np.asarray(sample_mask)]
    if x.shape[0] == 0 or x.shape[1] == 0:
        return []
    x = x.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore"):
        spread = x.max(axis=0) - x.min(axis=0)
        scale = np.max(np.abs(x)) if np.isfinite(x).all() else np.nanmax(
            np.where(np.isfinite(x), np.abs(x), np.nan))
        constant = np.isfinite(spread) & (spread <= rtol * scale)
    return [int(i) for i in np.flatnonzero(constant)]


def _clean_run(x, confounds, sample_mask, *, detrend, standardize,
               standardize_confounds, low_pass, high_pass, t_r, where):
    """Clean one run: nilearn's ``clean`` once its inputs are sanitized.

    Parameters
    ----------
    x : ndarray, shape (n_volumes, n_regions), floating
        The run's signals, a copy owned by the caller (may be modified).
    confounds : ndarray, shape (n_volumes, n_confounds), floating, or None
        The run's confounds, likewise.
    sample_mask : ndarray of int or None
        Strictly increasing indices of the kept volumes (`_check_sample_mask`).
    detrend, standardize, standardize_confounds, low_pass, high_pass, t_r
        As in `clean_signals` (validated; `standardize` is a strategy or None).
    where : str
        Prefix naming the run in error and warning messages ("" for none).

    Returns
    -------
    cleaned : ndarray, shape (n_kept_volumes, n_regions)
    """
    filtering = low_pass is not None or high_pass is not None
    if sample_mask is not None:
        if filtering:
            x, confounds, sample_mask = _interpolate_censored(
                x, confounds, sample_mask, t_r,
                _filter_padlen(t_r, low_pass, high_pass), where,
            )
        else:
            x, confounds = _censor(x, confounds, sample_mask)
    elif filtering and where:
        _check_filter_length(x.shape[0], _filter_padlen(t_r, low_pass, high_pass),
                             f"{where}the run has {x.shape[0]} volume(s)")

    original_mean = x.mean(axis=0)
    if detrend:
        x = _detrend(x)
        if confounds is not None:
            confounds = _detrend(confounds)

    if filtering:
        x = _butterworth(x, t_r, low_pass=low_pass, high_pass=high_pass)
        if confounds is not None:
            confounds = _butterworth(
                confounds, t_r, low_pass=low_pass, high_pass=high_pass
            )
        if sample_mask is not None:
            x, confounds = _censor(x, confounds, sample_mask)

    if confounds is not None:
        x = _project_out_confounds(x, confounds, standardize_confounds)

    if standardize is None:
        return x
    return _standardize(x, standardize, original_mean=original_mean)


def _check_inputs(signals, confounds, detrend, standardize,
                  standardize_confounds, low_pass, high_pass, t_r):
    """Validate the arguments of `clean_signals`.

    Returns
    -------
    signals : ndarray, shape (n_volumes, n_regions)
        A C-contiguous floating copy of `signals`.
    confounds : ndarray, shape (n_volumes, n_confounds) or None
        A C-contiguous floating copy of `confounds`.
    standardize : str or None
        The standardization strategy, None for none.
    """
    for name, value in (("detrend", detrend),
                        ("standardize_confounds", standardize_confounds)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {value!r}")

    if isinstance(standardize, (bool, np.bool_)):
        if standardize:
            raise ValueError(
                "standardize=True is ambiguous (its meaning depends on the "
                "nilearn version); choose standardize='zscore_sample' (sample "
                "std, ddof=1) or standardize='zscore' (population std, ddof=0) "
                "explicitly"
            )
        standardize = None
    elif standardize is not None and (
        not isinstance(standardize, str)
        or standardize not in STANDARDIZE_STRATEGIES
    ):
        raise ValueError(
            f"standardize must be one of {', '.join(map(repr, STANDARDIZE_STRATEGIES))}, "
            f"False or None; got {standardize!r}"
        )

    if t_r is not None:
        if isinstance(t_r, (bool, np.bool_)) or not isinstance(t_r, numbers.Real):
            raise TypeError(f"t_r must be a number of seconds, got {t_r!r}")
        if not math.isfinite(t_r) or t_r <= 0:
            raise ValueError(
                f"t_r must be a positive, finite number of seconds; got {t_r!r}"
            )
    for name, value in (("low_pass", low_pass), ("high_pass", high_pass)):
        if value is None:
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a frequency in Hz or None, got {value!r}")
        if math.isnan(value):
            raise ValueError(f"{name} must be a frequency in Hz or None, got {value!r}")
        if t_r is None:
            raise ValueError(
                f"{name}={value!r} needs the repetition time: t_r must be "
                "given for Butterworth filtering"
            )
    if low_pass is not None and high_pass is not None and high_pass >= low_pass:
        raise ValueError(
            f"high_pass ({high_pass!r} Hz) must be lower than low_pass "
            f"({low_pass!r} Hz)"
        )

    x = _as_float_copy(signals, "signals", order="C")
    if x.ndim != 2:
        raise ValueError(
            "signals must be a 2D array of shape (n_volumes, n_regions); "
            f"got an array of shape {x.shape}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"signals have no volume (shape {x.shape})")

    if confounds is not None:
        if isinstance(confounds, (list, tuple)):
            raise TypeError(
                "confounds must be an array of shape (n_volumes, n_confounds), "
                f"not a {type(confounds).__name__}; stack the confounds as columns"
            )
        confounds = np.asarray(confounds)
        if confounds.ndim == 1:
            confounds = confounds[:, np.newaxis]
        if confounds.ndim != 2:
            raise ValueError(
                "confounds must be a 1D or 2D array of shape (n_volumes, "
                f"n_confounds); got an array of shape {confounds.shape}"
            )
        # keeps the memory layout, as nilearn's np.hstack does (see _detrend)
        confounds = _as_float_copy(confounds, "confounds", order="K")
        if confounds.shape[0] != x.shape[0]:
            raise ValueError(
                f"confounds have {confounds.shape[0]} rows but the signals "
                f"have {x.shape[0]} volumes"
            )
        if not np.all(np.isfinite(confounds)):
            bad = np.flatnonzero(~np.all(np.isfinite(confounds), axis=0))
            raise ValueError(
                "confounds contain non-finite values (NaN or inf) in "
                f"column(s) {bad.tolist()}"
            )
    return x, confounds, standardize


def _as_float_copy(array, name, order):
    """Floating copy of `array`, with nilearn's dtype rule.

    float32 and float64 are kept; booleans and integers become float64 when
    8 bytes wide, float32 otherwise (nilearn's ``_ensure_float``).

    Parameters
    ----------
    array : array-like
        The input.
    name : str
        Its name, for error messages.
    order : {"C", "K"}
        Memory layout of the copy: C-contiguous (nilearn's ``signals.copy()``)
        or that of `array` (nilearn's ``np.hstack`` of the confounds).

    Returns
    -------
    copy : ndarray
        A new array (never a view of `array`).
    """
    a = np.asarray(array)
    if a.dtype in (np.float32, np.float64):
        dtype = a.dtype
    elif a.dtype.kind in "biu":
        dtype = np.float64 if a.dtype.itemsize == 8 else np.float32
    else:
        raise ValueError(
            f"{name} must be float32 or float64 (or integer), got dtype {a.dtype}"
        )
    return np.array(a, dtype=dtype, order=order, copy=True)


def _check_runs(runs, n_volumes):
    """Validate the run labels.

    Returns
    -------
    runs : ndarray, shape (n_volumes,)
        The labels as an array.
    labels : ndarray
        The distinct labels, sorted (``numpy.unique``): the order in which
        the runs are cleaned and stacked.
    """
    runs = np.asarray(runs)
    if runs.ndim != 1:
        raise ValueError(
            "runs must be a 1D array of run labels, one per volume; got an "
            f"array of shape {runs.shape}"
        )
    if runs.shape[0] != n_volumes:
        raise ValueError(
            f"runs has {runs.shape[0]} labels but the signals have {n_volumes} "
            "volumes"
        )
    if runs.dtype.kind in "fc" and not np.all(np.isfinite(runs)):
        raise ValueError("runs must not contain NaN (or infinite) labels")
    return runs, np.unique(runs)


def _check_run_sample_masks(sample_mask, runs, labels):
    """Validate the per-run sample masks.

    Parameters
    ----------
    sample_mask : list or tuple of array-like, array-like or None
        One mask per run, in the order of `labels`; a bare array for a
        single run.
    runs : ndarray, shape (n_volumes,)
        Run labels.
    labels : ndarray
        Sorted distinct labels.

    Returns
    -------
    masks : list of (ndarray of int or None)
        One `_check_sample_mask` result per run (all None without mask).
    """
    if sample_mask is None:
        return [None] * len(labels)
    if isinstance(sample_mask, np.ndarray) and len(labels) == 1:
        sample_mask = [sample_mask]
    if not isinstance(sample_mask, (list, tuple)):
        raise TypeError(
            f"with {len(labels)} runs, sample_mask must be a list of masks, "
            f"one per run (in the order of the sorted run labels); got an "
            f"object of type {type(sample_mask).__name__}"
        )
    if len(sample_mask) != len(labels):
        raise ValueError(
            f"sample_mask holds {len(sample_mask)} mask(s) but there are "
            f"{len(labels)} runs (labels {labels.tolist()}): give one mask per "
            "run"
        )
    return [
        _check_sample_mask(mask, int(np.count_nonzero(runs == label)),
                           where=f"run {_label_repr(label)}: ")
        for mask, label in zip(sample_mask, labels)
    ]


def _check_sample_mask(sample_mask, n_volumes, where):
    """Indices of the kept volumes, from a boolean mask or indices.

    Parameters
    ----------
    sample_mask : array-like
        Boolean mask of length `n_volumes` (True = kept) or strictly
        increasing integer indices in ``[0, n_volumes)``.  A list holding a
        single such array (nilearn's one-run form) is accepted too.
    n_volumes : int
        Number of volumes of the run.
    where : str
        Prefix naming the run in error messages ("" for none).

    Returns
    -------
    kept : ndarray of intp, shape (n_kept,)
        A new, strictly increasing index array, with at least one index.
    """
    if (isinstance(sample_mask, (list, tuple)) and len(sample_mask) == 1
            and np.ndim(sample_mask[0]) == 1):
        sample_mask = sample_mask[0]
    mask = np.asarray(sample_mask)
    if mask.ndim != 1:
        raise ValueError(
            f"{where}sample_mask must be a 1D boolean mask or 1D array of "
            f"indices (with runs, a list of one such mask per run); got an "
            f"array of shape {mask.shape}"
        )
    if mask.size == 0 or (mask.dtype == bool and not mask.any()):
        raise ValueError(
            f"{where}the sample mask keeps no volume: at least one volume "
            "must be kept"
        )
    if mask.dtype == bool:
        if mask.shape[0] != n_volumes:
            raise ValueError(
                f"{where}the boolean sample mask has {mask.shape[0]} values but "
                f"there are {n_volumes} volumes"
            )
        return np.flatnonzero(mask)
    if mask.dtype.kind not in "iu":
        raise TypeError(
            f"{where}sample_mask must be a boolean mask or integer indices of "
            f"the kept volumes, got dtype {mask.dtype}"
        )
    outside = mask[(mask < 0) | (mask >= n_volumes)]
    if outside.size:
        raise ValueError(
            f"{where}sample mask indices {_short_list(outside)} are out of range: "
            f"there are {n_volumes} volumes (indices 0 to {n_volumes - 1})"
        )
    kept = mask.astype(np.intp)
    if np.any(np.diff(kept) <= 0):
        raise ValueError(
            f"{where}sample mask indices must be strictly increasing (sorted, "
            "without repeats)"
        )
    return kept


def _label_repr(label):
    """A run label for messages (``1``, ``'rest'``; not ``np.int64(1)``)."""
    return repr(label.item() if isinstance(label, np.generic) else label)


def _short_list(values, limit=10):
    """The first `limit` values of a 1D array, as a short string."""
    values = np.asarray(values).tolist()
    if len(values) <= limit:
        return str(values)
    return str(values[:limit])[:-1] + f", ... ({len(values)} in all)]"


def _censor(x, confounds, kept):
    """Keep the volumes `kept` of the signals and confounds (nilearn's
    ``_censor_signals``).

    Parameters
    ----------
    x : ndarray, shape (n_volumes, n_regions)
    confounds : ndarray, shape (n_volumes, n_confounds), or None
    kept : ndarray of int
        Indices of the kept volumes.

    Returns
    -------
    x, confounds : ndarray
        New arrays, of the kept volumes (confounds None if None).
    """
    x = x[kept, :]
    if confounds is not None:
        confounds = confounds[kept, :]
    return x, confounds


def _interpolate_volumes(volumes, kept, t_r):
    """Fill the censored volumes with a cubic spline through the kept ones,
    in place: the interpolation nilearn 0.13.1 documents (its
    ``_interpolate_volumes(volumes, kept, t_r, extrapolate=False)`` without
    the ``~`` bug, see the Notes of `clean_signals`).

    A cubic spline (``scipy.interpolate.CubicSpline``, not-a-knot,
    ``extrapolate=False``) through the kept volumes, at the frame times
    ``arange(n_volumes) * t_r``, is written into every censored volume; those
    outside the kept range become NaN.  It is also written, as nilearn 0.13.1
    does, into volume ``n_volumes - 1 - i`` for each kept volume ``i``
    (nilearn's ``volumes[~kept] = interpolated[~kept]`` on integer indices):
    at a kept volume that is the volume's own value, exactly except at the
    last kept one (a rounding difference), which keeps the masks nilearn
    handles right bit-identical to it (see the Notes of `clean_signals`).

    Parameters
    ----------
    volumes : ndarray, shape (n_volumes, n_columns), floating
        Modified in place (the interpolated values are cast to its dtype).
    kept : ndarray of int, shape (n_kept,)
        Strictly increasing indices, at least 2; finite values there.
    t_r : float
        Repetition time, in seconds.

    Returns
    -------
    volumes : ndarray
        `volumes` itself.
    """
    n_volumes = volumes.shape[0]
    frame_times = np.arange(n_volumes) * t_r
    spline = CubicSpline(frame_times[kept], volumes[kept, :], extrapolate=False)
    interpolated = spline(frame_times)
    written = np.ones(n_volumes, dtype=bool)
    written[kept] = False  # the censored volumes
    written[n_volumes - 1 - kept] = True  # nilearn's ~kept, for bit parity
    volumes[written, :] = interpolated[written, :]
    return volumes


def _interpolate_censored(x, confounds, kept, t_r, padlen, where):
    """Interpolate the censored volumes before filtering (nilearn 0.13.1's
    ``_handle_scrubbed_volumes`` with a Butterworth filter, no extrapolation,
    as documented: see `_interpolate_volumes`).

    The signals and the confounds are interpolated separately
    (`_interpolate_volumes`); the censored volumes at the edges (before the
    first and after the last kept volume, all-NaN after the interpolation)
    are dropped from each; the kept indices are shifted by the first one.

    Parameters
    ----------
    x : ndarray, shape (n_volumes, n_regions), floating
        Signals, a copy owned by the caller (modified in place).
    confounds : ndarray, shape (n_volumes, n_confounds), or None
        Confounds, likewise (finite).
    kept : ndarray of int
        Strictly increasing indices of the kept volumes.
    t_r : float
        Repetition time, in seconds.
    padlen : int
        `_filter_padlen` of the filter that follows.
    where : str
        Prefix naming the run in messages ("" for none).

    Returns
    -------
    x, confounds : ndarray
        The interpolated, trimmed signals and confounds.
    kept : ndarray of int
        The kept indices in the trimmed arrays (``kept - kept[0]``).

    Raises
    ------
    ValueError
        Fewer than 2 kept volumes, non-finite signals at kept volumes, or
        too few volumes left for the filter.
    """
    n_volumes = x.shape[0]
    counted = f"{where}the sample mask keeps {kept.size} of {n_volumes} volume(s)"
    if kept.size < 2:
        raise ValueError(
            f"{counted}, but interpolating the censored volumes before the "
            f"Butterworth filter needs at least 2 (and the filter more than "
            f"{padlen})"
        )
    bad = ~np.all(np.isfinite(x[kept, :]), axis=0)
    if bad.any():
        raise ValueError(
            f"{where}signals have non-finite values (NaN or inf) at kept volumes "
            f"in column(s) {_short_list(np.flatnonzero(bad))}: the censored "
            "volumes cannot be interpolated before the Butterworth filter"
        )
    # the censored edges, and only they, are all-NaN once interpolated:
    # nilearn drops the all-NaN volumes with a boolean index, as here (the
    # copy's memory layout matters, see _detrend)
    inside = np.zeros(n_volumes, dtype=bool)
    inside[kept[0]:kept[-1] + 1] = True
    x = _interpolate_volumes(x, kept, t_r)[inside, :]
    if confounds is not None:
        confounds = _interpolate_volumes(confounds, kept, t_r)[inside, :]
    _check_filter_length(
        x.shape[0], padlen,
        f"{counted}, leaving {x.shape[0]} to filter once the censored edges "
        "are dropped",
    )
    return x, confounds, kept - kept[0]


def _detrend(x):
    """Remove the mean and the linear trend of each column.

    nilearn's ``_detrend(x, inplace=False, type="linear")``, with the same
    operations in the same order and in `x`'s own dtype.

    Parameters
    ----------
    x : ndarray, shape (n_volumes, n_columns), floating
        Not modified.

    Returns
    -------
    detrended : ndarray, same shape, dtype and memory layout as `x`
        A new array; `x` itself (copied) when it has a single volume, with a
        warning.

    Notes
    -----
    The copy is Fortran-ordered when `x` is (as scikit-learn's
    ``as_float_array`` in nilearn), C-ordered otherwise: the column means are
    summed in a layout-dependent order, and their last bits matter (see the
    Notes of `clean_signals`).
    """
    x = x.copy(order="F" if x.flags.f_contiguous else "C")
    if x.shape[0] == 1:
        warnings.warn(
            "detrending a single volume would give zeros; skipped",
            UserWarning, stacklevel=4,
        )
        return x
    x -= np.mean(x, axis=0)
    regressor = np.arange(x.shape[0], dtype=x.dtype)
    regressor -= regressor.mean()
    norm = np.sqrt((regressor**2).sum())
    if not norm < _EPS64:
        regressor /= norm
    x -= np.dot(regressor, x) * regressor[:, np.newaxis]
    return x


def _check_wn(btype, freq, nyq, warn=True):
    """Keep a cut-off frequency strictly inside (0, Nyquist), as nilearn does.

    A frequency at or above the Nyquist frequency is moved to
    ``nyq * (1 - 10 * eps32)``, a negative one to ``nyq * eps32``, each with a
    warning.  0 is kept (and rejected later by scipy).

    Parameters
    ----------
    btype : {"low", "high"}
        Which cut-off, for the warning.
    freq : float
        The cut-off, in Hz.
    nyq : float
        The Nyquist frequency, in Hz.
    warn : bool, default=True
        Whether to warn when the cut-off is moved.

    Returns
    -------
    freq : float
        The cut-off to use.
    """
    # warnings point at the caller of clean_signals:
    # clean_signals > _clean_run > _butterworth > _butterworth_sos > here
    if freq >= nyq:
        freq = nyq - (nyq * 10 * _EPS32)
        if warn:
            warnings.warn(
                f"the {btype}-pass cut-off is at or above the Nyquist frequency "
                f"({nyq} Hz) and cannot be handled by a digital filter; it has "
                f"been lowered to {freq} Hz",
                UserWarning, stacklevel=6,
            )
    elif freq < 0.0:
        freq = nyq * _EPS32
        if warn:
            warnings.warn(
                f"the {btype}-pass cut-off is negative; it has been set to "
                f"{freq} Hz",
                UserWarning, stacklevel=6,
            )
    return freq


def _butterworth_sos(t_r, low_pass=None, high_pass=None, warn=True):
    """Second-order sections of nilearn's Butterworth filter.

    Order 5; low-pass, high-pass or band-pass depending on which cut-offs
    are given, after `_check_wn`.

    Parameters
    ----------
    t_r : float
        Repetition time, in seconds.
    low_pass, high_pass : float or None
        Cut-off frequencies, in Hz (validated by the caller; one at least).
    warn : bool, default=True
        Whether to warn about moved cut-offs and a collapsed band.

    Returns
    -------
    sos : ndarray, shape (n_sections, 6), or None
        None when the two cut-offs of a band coincide after `_check_wn`
        (the signals are then left unfiltered, as in nilearn).
    """
    sampling_rate = 1.0 / t_r
    nyq = sampling_rate * 0.5
    critical = []
    if high_pass is not None:
        btype = "high"
        critical.append(_check_wn(btype, high_pass, nyq, warn=warn))
    if low_pass is not None:
        btype = "low"
        critical.append(_check_wn(btype, low_pass, nyq, warn=warn))
    if len(critical) == 2:
        btype = "band"
        if critical[0] == critical[1]:
            if warn:
                warnings.warn(
                    "the band-pass cut-offs are equal after being moved below "
                    "the Nyquist frequency; the signals are returned unfiltered. "
                    "Check t_r, low_pass and high_pass.",
                    UserWarning, stacklevel=5,
                )
            return None
    else:
        critical = critical[0]

    return sp_signal.butter(N=_BUTTERWORTH_ORDER, Wn=critical, btype=btype,
                            output="sos", fs=sampling_rate)


def _butterworth(x, t_r, low_pass=None, high_pass=None):
    """Zero-phase Butterworth filter of each column (nilearn's ``butterworth``).

    Order 5, second-order sections, ``sosfiltfilt(..., axis=0, padtype="odd",
    padlen=None)``; low-pass, high-pass or band-pass depending on which
    cut-offs are given.  Computed in float64, returned in `x`'s dtype.
    nilearn (``copy=False``, as ``clean`` calls it) runs ``sosfiltfilt``
    column by column; scipy filters each column of one ``axis=0`` call with
    the same operations, so the result is the same, bit for bit.

    Parameters
    ----------
    x : ndarray, shape (n_volumes, n_columns), floating
        Not modified.
    t_r : float
        Repetition time, in seconds.
    low_pass, high_pass : float or None
        Cut-off frequencies, in Hz (validated by the caller).

    Returns
    -------
    filtered : ndarray, same shape, dtype and memory layout as `x`
        A new array; a copy of `x` when the two cut-offs of a band coincide
        after `_check_wn` (with a warning, as nilearn).
    """
    if low_pass is None and high_pass is None:
        return x.copy(order="K")
    sos = _butterworth_sos(t_r, low_pass=low_pass, high_pass=high_pass)
    if sos is None:
        return x.copy(order="K")

    filtered = np.empty_like(x)  # nilearn filters in place: same dtype, layout
    filtered[...] = sp_signal.sosfiltfilt(sos, x, axis=0, padtype="odd",
                                          padlen=None)
    return filtered


def _filter_padlen(t_r, low_pass, high_pass):
    """Padding of ``sosfiltfilt`` for nilearn's Butterworth filter.

    scipy's default ``padlen`` (``3 * ntaps``, ntaps counted from the
    second-order sections, as in ``scipy.signal.sosfiltfilt``): the filter
    needs strictly more volumes than that.  18 for a low- or high-pass
    filter, 33 for a band-pass one, 0 for a collapsed band (no filtering).

    Parameters
    ----------
    t_r : float
        Repetition time, in seconds.
    low_pass, high_pass : float or None
        Cut-off frequencies, in Hz (validated; one at least).

    Returns
    -------
    padlen : int
    """
    sos = _butterworth_sos(t_r, low_pass=low_pass, high_pass=high_pass,
                           warn=False)
    if sos is None:
        return 0
    ntaps = 2 * sos.shape[0] + 1
    ntaps -= min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return 3 * ntaps


def _check_filter_length(n_volumes, padlen, what):
    """Raise a clear ValueError when the filter would get too few volumes.

    Parameters
    ----------
    n_volumes : int
        Number of volumes the filter would get.
    padlen : int
        `_filter_padlen`.
    what : str
        Start of the message, stating the volume count.
    """
    if n_volumes <= padlen:
        raise ValueError(
            f"{what}, but the Butterworth filter needs more than {padlen} "
            "(scipy's sosfiltfilt padding)"
        )


def _project_out_confounds(x, confounds, standardize_confounds):
    """Remove from `x` its projection on the span of the confounds.

    The confounds are first z-scored (population std, std below float64 eps
    replaced by 1; `standardize_confounds` True) or divided by their maximum
    absolute value (False).  Their span is then taken from a pivoted economic
    QR decomposition, keeping the columns of Q whose ``|R[i, i]|`` is above
    ``100 * eps64``, and ``x - Q (Q^T x)`` is returned.

    Parameters
    ----------
    x : ndarray, shape (n_volumes, n_regions), floating
        Not modified.
    confounds : ndarray, shape (n_volumes, n_confounds), floating, finite
        Not modified.
    standardize_confounds : bool
        See above.

    Returns
    -------
    residuals : ndarray, same shape and dtype as `x`
        A new array.
    """
    if standardize_confounds:
        c = _zscore(confounds, ddof=0)
    else:
        c = confounds.copy()
        peak = np.max(np.abs(c), axis=0)
        peak[peak == 0] = 1
        c /= peak
    q, r, _ = linalg.qr(c, mode="economic", pivoting=True)
    q = q[:, np.abs(np.diag(r)) > _EPS64 * 100.0]
    residuals = x.copy()
    residuals -= q @ (q.T @ x)
    return residuals


def _zscore(x, ddof):
    """Centre each column and divide it by its standard deviation.

    nilearn's ``standardize_signal(x, detrend=False, standardize="zscore")``
    (``ddof=0``) or ``"zscore_sample"`` (``ddof=1``): a standard deviation
    below float64 eps is replaced by 1, so a constant column becomes 0.

    Parameters
    ----------
    x : ndarray, shape (n_volumes, n_columns), floating
        Not modified.
    ddof : {0, 1}
        Delta degrees of freedom of the standard deviation.

    Returns
    -------
    z : ndarray, same shape and dtype as `x`
        A new, C-ordered array (computed from a C-ordered copy, as nilearn,
        since the column means are summed in a layout-dependent order).
    """
    x = x.copy(order="C")
    z = x - x.mean(axis=0)
    std = z.std(axis=0, ddof=ddof)
    std[std < _EPS64] = 1.0
    z /= std
    return z


def _standardize(x, strategy, original_mean):
    """Standardize the cleaned signals (the last step of nilearn's ``clean``).

    Parameters
    ----------
    x : ndarray, shape (n_volumes, n_regions), floating
        Cleaned signals.  Not modified.
    strategy : {"zscore_sample", "zscore", "psc"}
        See `clean_signals`.
    original_mean : ndarray, shape (n_regions,)
        Mean of the signals before cleaning.  For ``"psc"``, added back to
        `x` when the mean absolute mean of `x` is below a tenth of that of
        `original_mean` (detrending or high-pass filtering removed it).

    Returns
    -------
    standardized : ndarray, same shape and dtype as `x`
        A new array; a copy of `x` (with a warning) for a single volume.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_removed = (
            np.abs(x.mean(0)).mean() / np.abs(original_mean).mean() < 1e-1
        )
    if strategy == "psc" and mean_removed:
        x = x + original_mean
    if x.shape[0] == 1:
        warnings.warn(
            "standardizing a single volume would give zeros; skipped",
            UserWarning, stacklevel=4,
        )
        return x.copy()
    if strategy == "zscore_sample":
        return _zscore(x, ddof=1)
    if strategy == "zscore":
        return _zscore(x, ddof=0)
    # psc
    mean = x.mean(axis=0)
    invalid = np.absolute(mean) < _EPS64
    with np.errstate(divide="ignore", invalid="ignore"):
        psc = (x - mean) / np.absolute(mean)
    psc *= 100
    if np.any(invalid):
        warnings.warn(
            "psc standardization is meaningless for a signal whose mean is "
            f"0; column(s) {np.flatnonzero(invalid).tolist()} are set to 0",
            UserWarning, stacklevel=4,
        )
        psc[:, invalid] = 0
    return psc


# --------------------------------------------------------------------------
# cleaning one run of the workflow
# --------------------------------------------------------------------------
def censoring_exclusion(n_kept, t_r=None, min_seconds=None):
    """Why a censored run is excluded, or None when it is kept.

    Parameters
    ----------
    n_kept : int
        Volumes kept after censoring.
    t_r : float or None
        Repetition time (s); needed with ``min_seconds``.
    min_seconds : float or None
        Least scan time a run must keep (config ``clean.min_seconds``).

    Returns
    -------
    str or None
        ``"censoring keeps no volume"``, or the seconds kept below
        ``min_seconds``; None when the run is kept.
    """
    if n_kept == 0:
        return "censoring keeps no volume"
    if min_seconds and n_kept * t_r < min_seconds:
        return (f"{n_kept * t_r:.1f} s kept after censoring, less than min_seconds "
                f"{min_seconds:g} s")
    return None


def missing_regions(signals):
    """Regions without data in a run: columns that are n/a (NaN) in every volume.

    A region outside the run's field of view, or whose coverage is below
    ``atlas.min_coverage``, is written by extraction as a whole column of
    n/a (its name in the raw sidecar's ``MissingRegions``).  Any other NaN
    is an error: a region has data in every volume or in none.

    Parameters
    ----------
    signals : array-like, shape (n_volumes, n_regions)

    Returns
    -------
    ndarray of bool, shape (n_regions,)
        True for the missing regions.  A run of 0 volumes has none.

    Raises
    ------
    ValueError
        A column with NaN in some volumes only (names its index and count).
    """
    x = np.asarray(signals)
    if x.ndim != 2:
        raise ValueError(f"signals must be 2D (n_volumes, n_regions), got shape {x.shape}")
    if x.shape[0] == 0:
        return np.zeros(x.shape[1], dtype=bool)
    nan = np.isnan(x)
    missing = nan.all(axis=0)
    partial = np.flatnonzero(nan.any(axis=0) & ~missing)
    if partial.size:
        k = int(partial[0])
        raise ValueError(f"{partial.size} region(s) are n/a in some volumes only, first "
                         f"column {k} ({int(nan[:, k].sum())} of {x.shape[0]} volumes): a "
                         "region must have data in every volume or be n/a in all")
    return missing


def clean_run_signals(signals, confounds=None, *, detrend=False, standardize=False,
                      standardize_confounds=True, low_pass=None, high_pass=None, t_r=None,
                      sample_mask=None):
    """`clean_signals` of one run, with its constant regions set to 0 and its
    missing regions left n/a.

    A region whose raw signal is constant (`constant_columns`) carries no
    signal: once its mean is removed (detrend, high-pass, standardize) only
    rounding noise is left, which standardization would blow up to unit
    variance (nilearn does).  Exact arithmetic gives 0: it is set (a
    documented deviation from nilearn).

    A region without data (`missing_regions`: n/a in every volume) is left
    out: the present regions are cleaned as ``signals[:, present]`` alone
    (what nilearn's ``signal.clean`` gives on those columns; every step is
    column-wise, the confounds being shared), and the missing columns come
    back n/a.  nilearn
    has no n/a region: its maskers drop the column instead (so a run's
    matrix would have fewer rows, e.g. 27 instead of 30), where here every
    run keeps the atlas' k columns in atlas order.  `constant_columns`
    judges the present regions on the scale of the present regions.

    Parameters
    ----------
    signals, confounds, detrend, standardize, standardize_confounds, low_pass, high_pass, t_r, sample_mask
        See `clean_signals`.  Whole columns of `signals` may be NaN.

    Returns
    -------
    cleaned : ndarray, shape (n_kept, n_regions)
        NaN in the missing regions' columns.
    constant : list of int
        The constant regions (cleaned to 0 when the mean is removed), as
        column indices of `signals`.

    Raises
    ------
    ValueError
        As `clean_signals`; a column n/a in some volumes only; every region
        missing.
    """
    signals = np.asarray(signals)
    missing = missing_regions(signals)
    if missing.all() and missing.size:
        raise ValueError(f"every region ({missing.size}) is n/a: nothing to clean")
    present = np.flatnonzero(~missing)
    x = signals[:, present] if missing.any() else signals
    cleaned = clean_signals(x, confounds, detrend=detrend, standardize=standardize,
                            standardize_confounds=standardize_confounds, low_pass=low_pass,
                            high_pass=high_pass, t_r=t_r, sample_mask=sample_mask)
    constant = constant_columns(x, sample_mask)
    if constant and (detrend or high_pass is not None or standardize):
        cleaned[:, constant] = 0
    if missing.any():
        full = np.full((cleaned.shape[0], signals.shape[1]), np.nan, dtype=cleaned.dtype)
        full[:, present] = cleaned
        cleaned = full
        constant = [int(present[i]) for i in constant]
    return cleaned, constant
