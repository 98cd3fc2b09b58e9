"""Empirical and Ledoit-Wolf covariance estimators, without scikit-learn.

Why this module exists: `cohort_connectome.connectivity` runs once per subject,
each time in a fresh process, and importing anything from
``sklearn.covariance`` costs about 1.4 s of start-up there (scikit-learn pulls in
scipy.stats, pandas, ...), several times the computation itself.  The two
closed-form estimators used by default -- nilearn's default
``LedoitWolf(store_precision=False)`` and ``EmpiricalCovariance()`` -- are a few
lines of numpy, reproduced here with scikit-learn 1.9.1's exact sequence of
floating-point operations, so that the results are bit-identical to
scikit-learn's (same values, same dtypes).  The iterative ``GraphicalLassoCV``
is not reproduced: `connectivity` still imports it from scikit-learn, lazily.

Reproduced (scikit-learn 1.9.1, ``sklearn/covariance/_empirical_covariance.py``
and ``_shrunk_covariance.py``, BSD-3-Clause):

- `empirical_covariance` is ``sklearn.covariance.empirical_covariance``;
- `ledoit_wolf_shrinkage` is ``sklearn.covariance.ledoit_wolf_shrinkage``,
  including its block loop (`block_size` changes the order of the sums, hence
  the last bits of the result, exactly as in scikit-learn);
- `ledoit_wolf` is ``sklearn.covariance.ledoit_wolf``, i.e.
  ``LedoitWolf(store_precision=False, ...).fit(X)``: the data are centred by
  their mean first, then the shrinkage and the shrunk covariance are computed
  on the centred data;
- `EmpiricalCovariance` and `LedoitWolf` are minimal estimator-like classes
  whose ``fit(X)`` sets ``covariance_``, ``location_`` (and ``shrinkage_``) as
  scikit-learn's classes do.

Input validation follows scikit-learn's ``check_array``: a non-empty 2D array
of real numbers (object arrays are converted to float64; integer, boolean and
floating dtypes are kept, so float32 data give the float32 results
scikit-learn gives), all finite; a non-finite estimate (overflow) is a
`ValueError`, as scikit-learn's final check of ``covariance_`` makes it.

Differences, all deliberate:

- No precision matrix is computed (scikit-learn's ``EmpiricalCovariance()``
  stores ``precision_ = pinvh(covariance_)`` by default); `connectivity`
  inverts ``covariance_`` itself with ``scipy.linalg.inv``, as nilearn does.
- With a single sample, the "Only one sample available" `UserWarning` is
  issued once (scikit-learn's ``LedoitWolf.fit`` issues it twice).
- Where scikit-learn returns the integer ``0`` as a shrinkage (all centred data
  zero), `ledoit_wolf_shrinkage` returns ``0.0``.
- A boolean `block_size` is rejected (scikit-learn takes ``True`` for 1).
- Error messages say what is wrong in this module's words; the error types
  (`ValueError`) are scikit-learn's.
"""

import numbers
import warnings

import numpy as np

__all__ = [
    "EmpiricalCovariance",
    "LedoitWolf",
    "empirical_covariance",
    "ledoit_wolf",
    "ledoit_wolf_shrinkage",
]

_ONE_SAMPLE = "Only one sample available. You may want to reshape your data array"


def empirical_covariance(X, assume_centered=False):
    """Maximum-likelihood covariance, as ``sklearn.covariance.empirical_covariance``.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
        The data.  As in scikit-learn, a 1D array is one sample, and non-finite
        values are *not* rejected here (they propagate).
    assume_centered : bool, default=False
        If True the data are not centred: ``X.T @ X / n_samples``; otherwise
        ``np.cov(X.T, bias=True)``.

    Returns
    -------
    covariance : ndarray, shape (n_features, n_features)
        float64 when `assume_centered` is False (``np.cov`` computes in at
        least float64); the dtype of ``X.T @ X / n`` otherwise (float32 data
        stay float32).

    Raises
    ------
    ValueError
        If `X` is not numeric, or has more than 2 dimensions.

    Warns
    -----
    UserWarning
        If there is a single sample.
    """
    X = _as_numeric(X)
    if X.ndim == 1:
        X = np.reshape(X, (1, -1))
    if X.ndim != 2:
        raise ValueError(f"X must be 1D or 2D (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] == 1:
        warnings.warn(_ONE_SAMPLE, UserWarning, stacklevel=2)
    return _empirical_covariance(X, assume_centered)


def ledoit_wolf_shrinkage(X, assume_centered=False, block_size=1000):
    """Ledoit-Wolf shrinkage coefficient, as ``sklearn.covariance.ledoit_wolf_shrinkage``.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
        The data: 2D, non-empty, finite.
    assume_centered : bool, default=False
        If True the data are not centred before the computation.
    block_size : int, default=1000
        Size of the blocks into which ``X.T @ X`` is split (memory); it also
        fixes the order of the sums, as in scikit-learn.

    Returns
    -------
    shrinkage : float
        The coefficient in ``(1 - shrinkage) * cov + shrinkage * mu * I``
        (``mu = trace(cov) / n_features``), in [0, 1]: a NumPy scalar of the
        computation's dtype, or ``0.0`` for a single feature or all-zero
        centred data.

    Raises
    ------
    ValueError
        If `X` is not a non-empty 2D array of finite real numbers, or
        `block_size` is not a positive integer.

    Warns
    -----
    UserWarning
        If there is a single sample.
    """
    _check_options(assume_centered, block_size)
    X = _check_data(X)
    if X.shape[1] == 1:
        return 0.0
    if X.shape[0] == 1:
        warnings.warn(_ONE_SAMPLE, UserWarning, stacklevel=2)
    return _ledoit_wolf_shrinkage(X, assume_centered, block_size)


def ledoit_wolf(X, assume_centered=False, block_size=1000):
    """Ledoit-Wolf shrunk covariance, as ``sklearn.covariance.ledoit_wolf``.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
        The data: 2D, non-empty, finite.
    assume_centered : bool, default=False
        If True the data are not centred (their mean is taken to be 0).
    block_size : int, default=1000
        See `ledoit_wolf_shrinkage`.

    Returns
    -------
    covariance : ndarray, shape (n_features, n_features)
        ``(1 - shrinkage) * cov + shrinkage * trace(cov) / n_features * I``,
        ``cov`` being the empirical covariance.  In the dtype of the centred
        data: float32 data give float32 unless `assume_centered` is True
        (scikit-learn then subtracts a float64 zero location).
    shrinkage : float
        See `ledoit_wolf_shrinkage`.

    Raises
    ------
    ValueError
        If `X` is not a non-empty 2D array of finite real numbers,
        `block_size` is not a positive integer, or the estimate is not finite
        (overflow).

    Warns
    -----
    UserWarning
        If there is a single sample.

    Notes
    -----
    Equal, bit for bit, to ``LedoitWolf(store_precision=False,
    assume_centered=assume_centered, block_size=block_size).fit(X)``'s
    ``covariance_`` and ``shrinkage_``.
    """
    fitted = LedoitWolf(assume_centered=assume_centered, block_size=block_size).fit(X)
    return fitted.covariance_, fitted.shrinkage_


class EmpiricalCovariance:
    """Maximum-likelihood estimator, as scikit-learn's ``EmpiricalCovariance()``.

    Parameters
    ----------
    assume_centered : bool, default=False
        If True the data are not centred (``location_`` is 0).

    Attributes
    ----------
    covariance_ : ndarray, shape (n_features, n_features)
        The estimate (set by `fit`); see `empirical_covariance` for its dtype.
    location_ : ndarray, shape (n_features,)
        The mean of the data (float64 zeros if `assume_centered`).

    Notes
    -----
    Unlike scikit-learn's class (``store_precision=True`` by default), no
    ``precision_`` is computed.
    """

    def __init__(self, assume_centered=False):
        self.assume_centered = assume_centered

    def fit(self, X):
        """Fit the estimator to `X`.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            The data: 2D, non-empty, finite.

        Returns
        -------
        self : EmpiricalCovariance

        Raises
        ------
        ValueError
            If `X` is not a non-empty 2D array of finite real numbers, or the
            estimate is not finite (overflow).

        Warns
        -----
        UserWarning
            If there is a single sample.
        """
        _check_options(self.assume_centered, 1)
        X = _check_data(X)
        if X.shape[0] == 1:
            warnings.warn(_ONE_SAMPLE, UserWarning, stacklevel=2)
        if self.assume_centered:
            location = np.zeros(X.shape[1])
        else:
            location = X.mean(0)
        covariance = _empirical_covariance(X, self.assume_centered)
        self.location_ = location
        self.covariance_ = _check_estimate(covariance)
        return self


class LedoitWolf:
    """Ledoit-Wolf estimator, as scikit-learn's ``LedoitWolf(store_precision=False)``.

    Parameters
    ----------
    assume_centered : bool, default=False
        If True the data are not centred (``location_`` is 0).
    block_size : int, default=1000
        See `ledoit_wolf_shrinkage`.

    Attributes
    ----------
    covariance_ : ndarray, shape (n_features, n_features)
        The shrunk covariance (set by `fit`); see `ledoit_wolf` for its dtype.
    location_ : ndarray, shape (n_features,)
        The mean of the data (float64 zeros if `assume_centered`).
    shrinkage_ : float
        The shrinkage coefficient, in [0, 1].
    """

    def __init__(self, assume_centered=False, block_size=1000):
        self.assume_centered = assume_centered
        self.block_size = block_size

    def fit(self, X):
        """Fit the estimator to `X`.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            The data: 2D, non-empty, finite.

        Returns
        -------
        self : LedoitWolf

        Raises
        ------
        ValueError
            If `X` is not a non-empty 2D array of finite real numbers,
            `block_size` is not a positive integer, or the estimate is not
            finite (overflow).

        Warns
        -----
        UserWarning
            If there is a single sample (and more than one feature).
        """
        _check_options(self.assume_centered, self.block_size)
        X = _check_data(X)
        if self.assume_centered:
            location = np.zeros(X.shape[1])
        else:
            location = X.mean(0)
        X = X - location
        # scikit-learn's _ledoit_wolf(X, assume_centered=True, ...)
        if X.shape[1] == 1:
            # one feature: the result is the same whatever the shrinkage
            covariance, shrinkage = np.atleast_2d((X**2).mean()), 0.0
        else:
            if X.shape[0] == 1:
                warnings.warn(_ONE_SAMPLE, UserWarning, stacklevel=2)
            n_features = X.shape[1]
            shrinkage = _ledoit_wolf_shrinkage(X, True, self.block_size)
            emp_cov = _empirical_covariance(X, True)
            mu = np.sum(np.trace(emp_cov)) / n_features
            covariance = (1.0 - shrinkage) * emp_cov
            covariance.flat[:: n_features + 1] += shrinkage * mu
        self.location_ = location
        self.shrinkage_ = shrinkage
        self.covariance_ = _check_estimate(covariance)
        return self


# --------------------------------------------------------------------------
# helpers

def _empirical_covariance(X, assume_centered):
    """scikit-learn's empirical_covariance after its input checks."""
    if assume_centered:
        covariance = np.dot(X.T, X) / X.shape[0]
    else:
        covariance = np.cov(X.T, bias=1)
    if covariance.ndim == 0:
        covariance = np.array([[covariance]])
    return covariance


def _ledoit_wolf_shrinkage(X, assume_centered, block_size):
    """scikit-learn 1.9.1's ledoit_wolf_shrinkage after its input checks and
    the one-feature case, operation for operation."""
    n_samples, n_features = X.shape
    if not assume_centered:
        X = X - X.mean(0)
    # number of blocks to split the covariance matrix into
    n_splits = int(n_features / block_size)
    X2 = X**2
    emp_cov_trace = np.sum(X2, axis=0) / n_samples
    mu = np.sum(emp_cov_trace) / n_features
    beta_ = 0.0  # sum of the coefficients of <X2.T, X2>
    delta_ = 0.0  # sum of the *squared* coefficients of <X.T, X>
    for i in range(n_splits):
        for j in range(n_splits):
            rows = slice(block_size * i, block_size * (i + 1))
            cols = slice(block_size * j, block_size * (j + 1))
            beta_ += np.sum(np.dot(X2.T[rows], X2[:, cols]))
            delta_ += np.sum(np.dot(X.T[rows], X[:, cols]) ** 2)
        rows = slice(block_size * i, block_size * (i + 1))
        beta_ += np.sum(np.dot(X2.T[rows], X2[:, block_size * n_splits:]))
        delta_ += np.sum(np.dot(X.T[rows], X[:, block_size * n_splits:]) ** 2)
    for j in range(n_splits):
        cols = slice(block_size * j, block_size * (j + 1))
        beta_ += np.sum(np.dot(X2.T[block_size * n_splits:], X2[:, cols]))
        delta_ += np.sum(np.dot(X.T[block_size * n_splits:], X[:, cols]) ** 2)
    delta_ += np.sum(np.dot(X.T[block_size * n_splits:], X[:, block_size * n_splits:]) ** 2)
    delta_ /= n_samples**2
    beta_ += np.sum(np.dot(X2.T[block_size * n_splits:], X2[:, block_size * n_splits:]))
    # use delta_ to compute beta
    beta = 1.0 / (n_features * n_samples) * (beta_ / n_samples - delta_)
    # delta is the sum of the squared coefficients of (<X.T,X> - mu*Id) / p
    delta = delta_ - 2.0 * mu * emp_cov_trace.sum() + n_features * mu**2
    delta /= n_features
    # shrink by at most 1
    beta = min(beta, delta)
    return 0.0 if beta == 0 else beta / delta


def _as_numeric(X):
    """The array of `X`, real numbers (scikit-learn's dtype="numeric")."""
    X = np.asarray(X)
    if X.dtype.kind == "O":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"X must hold real numbers, got an object array "
                             f"that is not ({exc})") from None
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must hold real numbers, got dtype {X.dtype}")
    return X


def _check_data(X):
    """scikit-learn's check_array(X): non-empty 2D, real, finite."""
    X = _as_numeric(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2D array (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must have at least 1 sample and 1 feature, got shape {X.shape}")
    if X.dtype.kind == "f" and not np.all(np.isfinite(X)):
        what = "NaN" if np.any(np.isnan(X)) else "infinity"
        raise ValueError(f"X contains {what}")
    return X


def _check_estimate(covariance):
    """scikit-learn's final check_array(covariance_): a finite estimate."""
    if not np.all(np.isfinite(covariance)):
        raise ValueError(f"the covariance estimate is not finite (overflow in "
                         f"{covariance.dtype}?)")
    return covariance


def _check_options(assume_centered, block_size):
    if not isinstance(assume_centered, (bool, np.bool_)):
        raise ValueError(f"assume_centered must be a bool, got {assume_centered!r}")
    if (isinstance(block_size, (bool, np.bool_)) or not isinstance(block_size, numbers.Integral)
            or block_size < 1):
        raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
