"""Per-subject connectivity matrices, as nilearn's ``ConnectivityMeasure``.

Reproduces, for one subject's region signals, what nilearn 0.13.1 computes
with ``ConnectivityMeasure(cov_estimator=..., kind=...).fit_transform([signals])[0]``
for the kinds ``"correlation"``, ``"partial correlation"`` (here
``"partialcorrelation"``), ``"covariance"`` and ``"precision"``, with three
covariance estimators: Ledoit-Wolf shrinkage (nilearn's default), the empirical
(maximum-likelihood) covariance, and the sparse inverse covariance of
scikit-learn's ``GraphicalLassoCV``.

The covariance estimators are scikit-learn's (``sklearn.covariance``:
``LedoitWolf(store_precision=False)``, ``EmpiricalCovariance`` and
``GraphicalLassoCV``) and the precision is ``scipy.linalg.inv`` of the
covariance, the calls nilearn makes, so that each matrix is nilearn's.  What
is our own code is nilearn's semantics around them: the z-scoring of the
correlation kind, one fit shared by the kinds derived from the raw signals,
the checks and the record of each fit.
"""

import math
import numbers

import numpy as np
from scipy import linalg
from sklearn.covariance import EmpiricalCovariance, GraphicalLassoCV, LedoitWolf

#: Connectivity kinds, in output order.
KINDS = ("correlation", "partialcorrelation", "covariance", "precision", "fisherz")
#: Covariance estimators.
ESTIMATORS = ("ledoit_wolf", "empirical", "graphical_lasso_cv")

#: Options accepted by each estimator (passed through to scikit-learn).
_ESTIMATOR_OPTIONS = {
    "ledoit_wolf": (),
    "empirical": (),
    "graphical_lasso_cv": (
        "alphas", "n_refinements", "cv", "max_iter", "tol", "enet_tol", "mode",
    ),
}
#: scikit-learn class name of each estimator, for the record.
_SKLEARN_CLASS = {
    "ledoit_wolf": "LedoitWolf",
    "empirical": "EmpiricalCovariance",
    "graphical_lasso_cv": "GraphicalLassoCV",
}
#: Kinds derived from the fit on the raw (un-standardized) signals.
_RAW_KINDS = ("partialcorrelation", "covariance", "precision")
#: Estimators a failed ``GraphicalLassoCV`` fit may fall back to (closed form,
#: never failing on finite signals; Ledoit-Wolf is nilearn's default).
_FALLBACKS = ("ledoit_wolf", "empirical")
#: Exceptions of a fit that count as an outright failure of the estimator.
_FIT_FAILURES = (FloatingPointError, np.linalg.LinAlgError)
_FIT_LABEL = {"zscored": "z-scored", "raw": "raw"}


def cov_to_corr(covariance):
    """Correlation matrix of a covariance matrix (nilearn's ``cov_to_corr``).

    Parameters
    ----------
    covariance : array-like, shape (n, n)
        A covariance matrix.

    Returns
    -------
    correlation : ndarray, shape (n, n), float64
        ``covariance[i, j] / sqrt(covariance[i, i] * covariance[j, j])``, with
        the diagonal set to exactly 1.

    Raises
    ------
    ValueError
        If `covariance` is not a square 2D matrix.

    Notes
    -----
    As in nilearn, a zero or negative diagonal entry is not an error: the
    corresponding row and column come out non-finite.
    """
    covariance = _as_square(covariance, "covariance")
    diagonal = np.atleast_2d(1.0 / np.sqrt(np.diag(covariance)))
    correlation = covariance * diagonal * diagonal.T
    np.fill_diagonal(correlation, 1.0)
    return correlation


def prec_to_partial(precision):
    """Partial correlation matrix of a precision matrix (nilearn's ``prec_to_partial``).

    Parameters
    ----------
    precision : array-like, shape (n, n)
        A precision (inverse covariance) matrix.

    Returns
    -------
    partial_correlation : ndarray, shape (n, n), float64
        ``-precision[i, j] / sqrt(precision[i, i] * precision[j, j])``, with the
        diagonal set to exactly 1.

    Raises
    ------
    ValueError
        If `precision` is not a square 2D matrix.
    """
    partial_correlation = -cov_to_corr(precision)
    np.fill_diagonal(partial_correlation, 1.0)
    return partial_correlation


def fisher_z(correlation):
    """Fisher z-transform of a correlation matrix: ``arctanh(r)``.

    Parameters
    ----------
    correlation : ndarray, shape (n, n)

    Returns
    -------
    ndarray, shape (n, n), float64
        ``arctanh`` of the off-diagonal entries; the diagonal (r = 1, z = inf)
        is set to 0, and off-diagonal |r| is clipped to 1 - 1e-12 so that the
        result stays finite.

    Notes
    -----
    Not part of nilearn; averaging z rather than r is the usual way to pool
    correlations across subjects (the group mean of this kind does that).
    """
    z = np.arctanh(np.clip(_as_square(correlation, "correlation"), -1 + 1e-12, 1 - 1e-12))
    np.fill_diagonal(z, 0.0)
    return z


def estimate_connectivity(signals, kinds=KINDS, estimator="ledoit_wolf",
                          estimator_options=None, fallback=None):
    """Connectivity matrices of one subject's region signals.

    Parameters
    ----------
    signals : array-like, shape (n_volumes, n_regions)
        Region signals, time along the first axis; at least 2 volumes and 2
        regions, all finite.
    kinds : str or sequence of str, default=KINDS
        Any of ``"correlation"``, ``"partialcorrelation"``, ``"covariance"``,
        ``"precision"``, ``"fisherz"`` (`fisher_z` of the correlation kind).  A
        single string is one kind; duplicates are ignored.
    estimator : {"ledoit_wolf", "empirical", "graphical_lasso_cv"}, default="ledoit_wolf"
        The covariance estimator: ``LedoitWolf(store_precision=False)``
        (nilearn's default), ``EmpiricalCovariance()`` or ``GraphicalLassoCV()``.
    estimator_options : dict or None, default=None
        Options of the estimator.  Only ``"graphical_lasso_cv"`` takes any:
        ``alphas`` (int, or a list of positive floats; default 4),
        ``n_refinements`` (4), ``cv`` (number of K-fold folds, or None for the
        default 5-fold), ``max_iter`` (100), ``tol`` (1e-4), ``enet_tol``
        (1e-4), ``mode`` (``"cd"`` or ``"lars"``; ``"cd"``) -- scikit-learn
        1.9.1's defaults.
    fallback : {None, "ledoit_wolf", "empirical"}, default=None
        What to do when ``GraphicalLassoCV`` fails outright (scikit-learn
        raises ``FloatingPointError``, "Non SPD result" / "The system is too
        ill-conditioned for this solver", e.g. for near-collinear or constant
        regions; nilearn's ``ConnectivityMeasure`` raises it too).  None:
        raise a ValueError naming the fit and scikit-learn's message.  An
        estimator name: every fit of the run is redone with that estimator
        (so that all kinds come from the same estimator) and the failure is
        recorded in ``info["fallback"]``.  Ignored by the other estimators,
        which do not fail on finite signals.  Non-convergence is not a
        failure: it is recorded in ``converged_<fit>`` and the estimate kept.

    Returns
    -------
    matrices : dict of str to ndarray
        ``kind -> (n_regions, n_regions)`` float64 matrix, in the order of
        `kinds`.
    info : dict
        What was done, as plain JSON-serialisable values:

        - ``estimator``: the estimator name; ``sklearn_estimator``: its
          scikit-learn class; ``estimator_options``: every option with the
          value used (defaults filled in; ``{}`` for estimators without
          options).
        - ``kinds``: the kinds computed.
        - ``n_volumes``, ``n_regions``; ``input_dtype``: the dtype of
          `signals`.
        - ``standardize``: how the signals of the correlation kind were
          standardized (``"zscore"``, population standard deviation) or None
          when the correlation kind was not requested.
        - ``constant_regions``: indices of regions whose signal has zero
          variance (their correlations are undefined with the empirical
          estimator).
        - ``precision_source``: ``"inv(covariance_)"`` when a precision was
          computed (precision or partialcorrelation), else None.
        - ledoit_wolf: ``shrinkage_zscored`` (the fit behind the correlation
          kind, on z-scored signals) and ``shrinkage_raw`` (the fit behind the
          other kinds, on the raw signals); None for a fit not needed.
        - graphical_lasso_cv, for each fit ``<fit>`` in ``zscored`` / ``raw``
          (None for a fit not needed): ``alpha_<fit>`` (the cross-validated
          penalty ``alpha_``), ``cv_alphas_<fit>`` (every penalty scored by
          the cross-validation, descending, ending with 0 -- scikit-learn's
          ``cv_results_["alphas"]``), ``n_iter_<fit>``, ``dual_gap_<fit>``
          and ``converged_<fit>`` (final fit's duality gap below ``tol``).
        - ``fallback``: None, or, when ``GraphicalLassoCV`` failed and
          `fallback` is set, ``"<fallback> (GraphicalLassoCV failed on the
          <z-scored|raw> signals: <exception type>: <message>)"``.  The
          matrices then come from the fallback estimator:
          ``alpha_<fit>``, ``cv_alphas_<fit>``, ``n_iter_<fit>`` and
          ``dual_gap_<fit>`` are None, ``converged_<fit>`` is False for every
          fit needed, and ``shrinkage_<fit>`` (always present for
          graphical_lasso_cv, None otherwise) holds the Ledoit-Wolf shrinkage.

    Raises
    ------
    ValueError
        Bad signals (not 2D, fewer than 2 volumes or regions, non-numeric,
        non-finite), an unknown kind or estimator, an unknown or invalid
        estimator option or fallback; ``GraphicalLassoCV`` failing without
        `fallback`; a singular covariance for the precision kinds.

    Notes
    -----
    Per subject this is nilearn 0.13.1's ``ConnectivityMeasure``:

    - ``"correlation"``: the signals are centred and divided by their
      population standard deviation (``ddof=0``; nilearn's
      ``standardize=True``, i.e. ``"zscore"``, with a standard deviation
      below float64 eps replaced by 1), the estimator is fitted on them and its
      ``covariance_`` is turned into a correlation with `cov_to_corr`.  As in
      nilearn the z-scoring is done in the signals' own floating dtype
      (float32 stays float32); the estimator then works in float64.  This
      matters for ``GraphicalLassoCV``, whose result is sensitive to the last
      bits of its input when it stops on ``max_iter``: z-scoring float32
      signals in float64 instead changes its correlation by up to ~1e-3
      (relative) on the real HCP parcel series.
    - ``"covariance"``: ``covariance_`` of the estimator fitted on the raw
      signals; ``"precision"``: ``scipy.linalg.inv`` of it, as in nilearn;
      ``"partialcorrelation"``: `prec_to_partial` of that inverse.  The three
      share one fit.
    - For ``GraphicalLassoCV`` the precision is ``inv(covariance_)`` as in
      nilearn, not the estimator's ``precision_`` (which holds the exact zeros
      of the sparse support, and which nilearn's example plots).  The two
      differ by more than the 1e-5 relative tolerance this module keeps to
      nilearn: measured ``max|precision_ - inv(covariance_)| / max|inv(covariance_)|``
      = 1.6e-4 (partial correlation 8.3e-5) on synthetic signals from a sparse
      precision (39 regions, 176 volumes), 2.1e-5 (1.7e-5) on 40 real HCP
      parcels x 1200 volumes, raw, and 3.2e-4 (4.1e-4) on the same z-scored.  The sparse support is
      therefore only approximately zero in the returned matrices.
    - Results are in float64 (nilearn keeps float32 for ``LedoitWolf`` on
      float32 signals; the difference is ~1e-6 relative).
    - Everything is deterministic: ``GraphicalLassoCV`` uses un-shuffled
      K-fold splits.  Its ``ConvergenceWarning`` is not silenced; convergence
      is also recorded in `info`.  Where it fails outright, nilearn 0.13.1
      propagates scikit-learn's ``FloatingPointError``; here it is a
      ValueError, or, with `fallback`, a recorded fallback (a deviation from
      nilearn, never silent: ``info["fallback"]``).
    """
    kinds = _check_kinds(kinds)
    estimator, options = _check_estimator(estimator, estimator_options)
    if fallback is not None and fallback not in _FALLBACKS:
        raise ValueError(f"unknown fallback {fallback!r}; valid fallbacks: None, "
                         f"{', '.join(_FALLBACKS)}")
    x = _check_signals(signals)
    n_volumes, n_regions = x.shape

    info = {
        "estimator": estimator,
        "sklearn_estimator": _SKLEARN_CLASS[estimator],
        "estimator_options": _plain(options),
        "kinds": list(kinds),
        "n_volumes": int(n_volumes),
        "n_regions": int(n_regions),
        "input_dtype": str(np.asarray(signals).dtype),
        "standardize": "zscore" if {"correlation", "fisherz"} & set(kinds) else None,
        "constant_regions": [int(i) for i in np.flatnonzero(
            np.asarray(x, dtype=np.float64).std(axis=0) < np.finfo(np.float64).eps)],
        "precision_source": ("inv(covariance_)"
                             if {"precision", "partialcorrelation"} & set(kinds) else None),
    }
    inputs = {}
    if {"correlation", "fisherz"} & set(kinds):
        inputs["zscored"] = _zscore(x)
    if set(_RAW_KINDS) & set(kinds):
        inputs["raw"] = x.astype(np.float64, copy=False)
    fits, failure = {}, None
    for name, values in inputs.items():
        try:
            fits[name] = _fit(values, estimator, options)
        except _FIT_FAILURES as exc:  # only GraphicalLassoCV fails on finite signals
            failure = (f"{_SKLEARN_CLASS[estimator]} failed on the {_FIT_LABEL[name]} "
                       f"signals: {type(exc).__name__}: {' '.join(str(exc).split())}")
            if fallback is None:
                raise ValueError(f"{failure} ({n_regions} regions, {n_volumes} volumes; "
                                 "no fallback estimator set)") from exc
            break
    if failure is not None:
        fits = {name: _fit(values, fallback, {}) for name, values in inputs.items()}
    info.update(_fit_info(fits, estimator, options, fallback if failure else None))
    info["fallback"] = None if failure is None else f"{fallback} ({failure})"

    matrices = {}
    precision = None
    for kind in kinds:
        if kind == "correlation":
            matrices[kind] = cov_to_corr(fits["zscored"].covariance_)
        elif kind == "fisherz":
            matrices[kind] = fisher_z(cov_to_corr(fits["zscored"].covariance_))
        elif kind == "covariance":
            matrices[kind] = np.array(fits["raw"].covariance_, dtype=np.float64)
        else:
            if precision is None:
                covariance = np.asarray(fits["raw"].covariance_, dtype=np.float64)
                try:
                    precision = linalg.inv(covariance)
                except np.linalg.LinAlgError as exc:
                    raise ValueError(
                        f"the {estimator} covariance of {n_regions} regions from {n_volumes} "
                        f"volumes is singular ({exc}); the {kind} kind is undefined") from exc
            matrices[kind] = (np.array(precision, dtype=np.float64) if kind == "precision"
                              else prec_to_partial(precision))
    return matrices, info


def embed_regions(matrix, present):
    """A matrix of the present regions placed in the atlas' k x k, n/a elsewhere.

    Parameters
    ----------
    matrix : array-like, shape (p, p)
        Over the present regions, in atlas order.
    present : array-like of bool, shape (k,)
        The atlas' regions with data; ``p = present.sum()``.

    Returns
    -------
    ndarray, shape (k, k), float64
        ``matrix`` at the rows and columns of the present regions; NaN in the
        rows and columns of the others, diagonal included.  ``matrix`` itself
        (as float64) when every region is present.
    """
    present = np.asarray(present, dtype=bool)
    matrix = np.asarray(matrix, dtype=np.float64)
    if present.all():
        return matrix
    if matrix.shape != (int(present.sum()),) * 2:
        raise ValueError(f"matrix of shape {matrix.shape} for {int(present.sum())} present "
                         f"regions of {present.size}")
    full = np.full((present.size, present.size), np.nan)
    full[np.ix_(present, present)] = matrix
    return full


def estimate_run_connectivity(signals, kinds=KINDS, estimator="ledoit_wolf",
                              estimator_options=None, fallback=None):
    """`estimate_connectivity` of a run's regions with data, in the atlas' k x k.

    A region without data in the run (its column n/a in every volume:
    outside the field of view, or below ``atlas.min_coverage``) is left out
    of the estimation: every kind is `estimate_connectivity` of
    ``signals[:, present]`` (so, on those regions, what nilearn's
    ``ConnectivityMeasure`` gives for those columns), then `embed_regions`
    puts it back in atlas order with n/a rows and columns (diagonal
    included) for the missing regions.  nilearn has no n/a region: it
    would return the smaller p x p matrix (27 x 27 for a 30-region atlas
    with 3 regions missing, where here it is 30 x 30 with 3 n/a rows and
    columns, 171 of its 900 cells n/a).

    Parameters
    ----------
    signals : array-like, shape (n_volumes, k)
        Whole columns may be NaN (`signal.missing_regions`); at least 2
        regions with data.
    kinds, estimator, estimator_options, fallback
        As `estimate_connectivity`.

    Returns
    -------
    matrices : dict of str to ndarray (k, k)
    info : dict
        `estimate_connectivity`'s, with ``n_regions`` the regions estimated
        (those with data) and ``constant_regions`` as column indices of
        `signals`.  Identical to `estimate_connectivity`'s when no region is
        missing.

    Raises
    ------
    ValueError
        As `estimate_connectivity`; a column n/a in some volumes only; fewer
        than 2 regions with data.
    """
    from .signal import missing_regions

    x = np.asarray(signals)
    missing = missing_regions(x)
    if not missing.any():
        return estimate_connectivity(x, kinds=kinds, estimator=estimator,
                                     estimator_options=estimator_options, fallback=fallback)
    present = np.flatnonzero(~missing)
    if present.size < 2:
        raise ValueError(f"{present.size} of {missing.size} regions have data; a connectome "
                         "needs at least 2")
    # in the layout of `signals` (x[:, present] alone comes out Fortran-ordered):
    # the z-scoring's column means depend on it in their last bits
    order = "F" if x.flags.f_contiguous and not x.flags.c_contiguous else "C"
    kept = np.asarray(x[:, present], order=order)
    matrices, info = estimate_connectivity(kept, kinds=kinds, estimator=estimator,
                                           estimator_options=estimator_options,
                                           fallback=fallback)
    info["constant_regions"] = [int(present[i]) for i in info["constant_regions"]]
    return {kind: embed_regions(m, ~missing) for kind, m in matrices.items()}, info


# --------------------------------------------------------------------------
# helpers

def _as_square(matrix, name):
    matrix = np.array(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be a square 2D matrix, got shape {matrix.shape}")
    return matrix


def _check_kinds(kinds):
    if isinstance(kinds, str):
        kinds = (kinds,)
    try:
        kinds = list(kinds)
    except TypeError:
        raise ValueError(f"kinds must be a string or a sequence of strings, got {kinds!r}") from None
    if not kinds:
        raise ValueError(f"kinds is empty; choose from {', '.join(KINDS)}")
    unique = []
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown connectivity kind {kind!r}; valid kinds: {', '.join(KINDS)}")
        if kind not in unique:
            unique.append(kind)
    return tuple(unique)


def _check_estimator(estimator, options):
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown covariance estimator {estimator!r}; "
                         f"valid estimators: {', '.join(ESTIMATORS)}")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ValueError(f"estimator_options must be a dict or None, got {type(options).__name__}")
    allowed = _ESTIMATOR_OPTIONS[estimator]
    for name in options:
        if name not in allowed:
            valid = ", ".join(allowed) if allowed else "none"
            raise ValueError(f"unknown option {name!r} for estimator {estimator!r}; "
                             f"valid options: {valid}")
    if estimator != "graphical_lasso_cv":
        return estimator, {}
    resolved = {"alphas": 4, "n_refinements": 4, "cv": None, "max_iter": 100,
                "tol": 1e-4, "enet_tol": 1e-4, "mode": "cd"}
    resolved.update(options)
    cv = resolved["cv"]
    if cv is not None and (isinstance(cv, bool) or not isinstance(cv, numbers.Integral) or cv < 2):
        raise ValueError(f"graphical_lasso_cv option 'cv' must be None or an integer >= 2 "
                         f"(number of un-shuffled K-fold folds), got {cv!r}")
    alphas = resolved["alphas"]
    if isinstance(alphas, bool):
        raise ValueError(f"graphical_lasso_cv option 'alphas' must be an int or a list of "
                         f"positive floats, got {alphas!r}")
    if not isinstance(alphas, numbers.Integral):
        try:
            grid = [float(a) for a in alphas]
        except (TypeError, ValueError):
            raise ValueError(f"graphical_lasso_cv option 'alphas' must be an int or a list of "
                             f"positive floats, got {alphas!r}") from None
        if not grid or not all(a > 0 and math.isfinite(a) for a in grid):
            raise ValueError(f"graphical_lasso_cv option 'alphas' must be a non-empty list of "
                             f"positive finite floats, got {alphas!r}")
        resolved["alphas"] = grid
    # The other values are validated by scikit-learn (InvalidParameterError is
    # a ValueError) before any computation.
    return estimator, resolved


def _check_signals(signals):
    x = np.asarray(signals)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"signals must be real numbers, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"signals must be 2D (n_volumes, n_regions), got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"signals need at least 2 volumes, got {x.shape[0]} (shape {x.shape})")
    if x.shape[1] < 2:
        raise ValueError(f"signals need at least 2 regions, got {x.shape[1]} (shape {x.shape})")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))
        raise ValueError(f"signals contain {len(bad)} non-finite value(s), first at "
                         f"(volume, region) = {tuple(int(i) for i in bad[0])}")
    return x


def _zscore(x):
    """nilearn's ``standardize_signal(x, detrend=False, standardize="zscore")``,
    in the dtype of `x`, returned as float64."""
    z = x - x.mean(axis=0)
    std = z.std(axis=0)
    std[std < np.finfo(np.float64).eps] = 1.0
    z /= std
    return z.astype(np.float64, copy=False)


def _make_estimator(estimator, options):
    """An unfitted scikit-learn estimator: ``LedoitWolf(store_precision=False)``
    (nilearn's default), ``EmpiricalCovariance(store_precision=False)`` (only
    ``covariance_`` is used: the precision kinds invert it, as nilearn does)
    or ``GraphicalLassoCV(**options)``."""
    if estimator == "ledoit_wolf":
        return LedoitWolf(store_precision=False)
    if estimator == "empirical":
        return EmpiricalCovariance(store_precision=False)
    return GraphicalLassoCV(**options)


def _fit(x, estimator, options):
    return _make_estimator(estimator, options).fit(x)


def _fit_info(fits, estimator, options, fallback=None):
    """Per-fit info; ``fallback``: the estimator the `fits` come from instead
    of ``estimator`` (after a failure), or None."""
    info = {}
    for name in ("zscored", "raw"):
        fitted = fits.get(name)
        if estimator == "ledoit_wolf":
            info[f"shrinkage_{name}"] = None if fitted is None else _float(fitted.shrinkage_)
        elif estimator == "graphical_lasso_cv":
            info[f"shrinkage_{name}"] = None
            if fallback is not None:
                for key in ("alpha", "cv_alphas", "n_iter", "dual_gap"):
                    info[f"{key}_{name}"] = None
                info[f"converged_{name}"] = None if fitted is None else False
                if fitted is not None and fallback == "ledoit_wolf":
                    info[f"shrinkage_{name}"] = _float(fitted.shrinkage_)
                continue
            if fitted is None:
                for key in ("alpha", "cv_alphas", "n_iter", "dual_gap", "converged"):
                    info[f"{key}_{name}"] = None
                continue
            costs = fitted.costs_
            # a list of (objective, dual gap) per iteration; a single pair for alpha 0
            if isinstance(costs, tuple):
                last = costs
            else:
                last = costs[-1] if len(costs) else None
            dual_gap = math.nan if last is None else float(last[1])
            info[f"alpha_{name}"] = _float(fitted.alpha_)
            info[f"cv_alphas_{name}"] = [_float(a) for a in fitted.cv_results_["alphas"]]
            info[f"n_iter_{name}"] = int(fitted.n_iter_)
            info[f"dual_gap_{name}"] = _float(dual_gap)
            info[f"converged_{name}"] = bool(abs(dual_gap) < options["tol"])
    return info


def _float(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _plain(value):
    """Numpy scalars and tuples to plain Python, for JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value
