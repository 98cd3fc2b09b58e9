"""Group sparse inverse covariance: one precision per subject, one shared support.

The model is the one of Varoquaux et al., "Brain covariance selection: better
individual functional connectivity models using population prior" (NIPS 2010):
every subject k has its own precision matrix K_k, all of them are estimated at
once by maximizing the sum of the subjects' Gaussian log-likelihoods weighted
by their sample counts, under an l21 penalty

    alpha * sum_{i != j} sqrt(sum_k K_k[i, j] ** 2)

which zeroes a coefficient in every subject or in none.  The solver is the
block coordinate descent of Honorio & Samaras (2010): one row/column of the
precisions at a time, with a Newton-Raphson search per coefficient.

This module mirrors nilearn 0.13.1's ``nilearn/connectome/group_sparse_cov.py``
(same defaults, same algorithm, same order of operations, same warnings):

- `empirical_covariances`, `compute_alpha_max`, `group_sparse_scores`,
  `group_sparse_covariance`, `group_sparse_covariance_path` and
  `EarlyStopProbe` mirror the functions and class of the same name;
- `group_sparse_precisions` mirrors nilearn's private
  ``_group_sparse_covariance`` (the solver on covariance matrices rather
  than signals);
- `GroupSparseCovariance` and `GroupSparseCovarianceCV` mirror nilearn's
  estimators of the same name: scikit-learn estimators
  (``sklearn.base.BaseEstimator``), whose input is validated by
  ``sklearn.utils.check_array`` and whose cross-validation folds come from
  ``sklearn.model_selection.check_cv``, as nilearn's; the covariances are
  ``sklearn.covariance.empirical_covariance``'s.

No library provides this model, hence the port.  What differs from nilearn
is the cost, not the result:

- the subjects are stacked in one (n_subjects, n_features, n_features) array
  and every matrix operation of the solver (the Sherman-Morrison-Woodbury
  updates of the sub-matrix inverses, the new diagonal coefficient, the
  log-likelihoods of the early-stopping probe) is one batched numpy call
  instead of a loop over subjects;
- the coordinate descent on a row computes the "gradient" c of all the
  remaining coordinates of the row at once, and jumps straight to the next
  coordinate that changes (a coordinate that is zero and stays zero leaves
  every other coordinate's value untouched), so sparse rows cost a few numpy
  calls instead of a few per coordinate;
- the Newton-Raphson search of each non-zero coefficient takes 2 or 3 steps
  instead of about 10, wherever nilearn's stopping rule resolves the
  coefficient to better than 1e-9 relative (see `_newton_gamma`); elsewhere
  (signals of large variance) nilearn's own iteration is run;
- the cross-validation computes each fold's covariances once rather than once
  per alpha and per grid refinement.

The precisions agree with nilearn's to about 1e-10 relative (1e-15 where
nilearn's Newton-Raphson iteration is run), far below the 1e-4 the tests
require, and the cross-validation selects the same alpha.  nilearn's
``n_jobs`` (joblib) and ``memory`` (caching) parameters are not provided.
"""

import collections.abc
import itertools
import math
import numbers
import operator
import sys
import warnings

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator
from sklearn.covariance import empirical_covariance
from sklearn.model_selection import check_cv
from sklearn.utils import check_array

__all__ = [
    "EarlyStopProbe",
    "GroupSparseCovariance",
    "GroupSparseCovarianceCV",
    "compute_alpha_max",
    "empirical_covariances",
    "group_sparse_covariance",
    "group_sparse_covariance_path",
    "group_sparse_precisions",
    "group_sparse_scores",
]

#: Newton-Raphson stopping step and iteration cap (as nilearn).
_NEWTON_TOL = 1.5e-8
_NEWTON_MAX_ITER = 100
#: Largest relative resolution of nilearn's Newton-Raphson result (see
#: `_newton_gamma`) for which the faster root search is used.
_FAST_NEWTON_RESOLUTION = 1e-9
#: Up to this many subjects, the Newton-Raphson search runs on Python floats.
_PYTHON_NEWTON_MAX_SUBJECTS = 10


# --------------------------------------------------------------------------
# logging and input checks


def _log(message, verbose, caller, msg_level=1):
    """Print ``[caller] message`` when ``verbose >= msg_level`` (nilearn's logger)."""
    if verbose >= msg_level:
        print(f"[{caller}] {message}", file=sys.stdout, flush=True)


def _check_alpha(alpha):
    """Raise ValueError unless alpha is a non-negative real number."""
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, numbers.Real)
        or not alpha >= 0
    ):
        raise ValueError(
            "Regularization parameter alpha must be a positive number.\n"
            f"You provided: alpha={alpha!r}"
        )


def _check_subjects(subjects):
    """Validate the signals of an estimator's ``fit`` (nilearn's checks).

    Parameters
    ----------
    subjects : list of array-like, shape for each (n_samples, n_features)
        A single array (dense or sparse) is taken as one subject.

    Returns
    -------
    list of numpy.ndarray
        The subjects as returned by ``sklearn.utils.check_array``: 2D,
        finite, float64 or float32 (other dtypes are converted to float64).

    Raises
    ------
    TypeError
        If ``subjects`` is not a list (or tuple) of arrays, or a subject is
        sparse (``check_array``'s message, after ``subject k: ``).
    ValueError
        If ``subjects`` is empty; if a subject is not 2D, not finite, not
        numeric, or has fewer than 2 samples or 2 features
        (``check_array``'s message, after ``subject k: ``); or if the
        subjects' feature counts differ.
    """
    if isinstance(subjects, np.ndarray) or scipy.sparse.issparse(subjects):
        subjects = [subjects]
    if not isinstance(subjects, (list, tuple)):
        raise TypeError(
            "'subjects' must be a list of 2D numpy arrays. "
            f"Got {subjects.__class__.__name__}"
        )
    if len(subjects) == 0:
        raise ValueError("'subjects' is empty: at least one subject is required.")
    checked = []
    for k, x in enumerate(subjects):
        try:
            checked.append(check_array(
                x,
                accept_sparse=False,
                dtype=[np.float64, np.float32],
                ensure_2d=True,
                ensure_min_samples=2,
                ensure_min_features=2,
            ))
        except (TypeError, ValueError) as error:
            raise type(error)(f"subject {k}: {error}") from error
    n_features = [x.shape[1] for x in checked]
    if len(set(n_features)) > 1:
        raise ValueError(
            "All subjects must have the same number of features.\n"
            f"You provided: {n_features}"
        )
    return checked


# --------------------------------------------------------------------------
# covariances, alpha_max, scores


def empirical_covariances(subjects, assume_centered=False, standardize=False):
    """Compute empirical covariances for several signals.

    Parameters
    ----------
    subjects : list of numpy.ndarray, shape for each (n_samples, n_features)
        Input subjects. Each subject is a 2D array, whose columns contain
        signals. Sample number can vary from subject to subject, but all
        subjects must have the same number of features (i.e. of columns).

    assume_centered : bool, default=False
        If True, assume that all input signals are centered.

    standardize : bool, default=False
        If True, set every signal variance to one before computing their
        covariance matrix (i.e. compute a correlation matrix).

    Returns
    -------
    emp_covs : numpy.ndarray, shape (n_features, n_features, n_subjects)
        Empirical covariances (Fortran order: ``emp_covs[..., k]`` is
        contiguous), exactly symmetric.

    n_samples : numpy.ndarray, shape (n_subjects,)
        Number of samples for each subject, as float64.

    Raises
    ------
    ValueError
        If ``subjects`` is not iterable or the feature counts differ.
    """
    if not hasattr(subjects, "__iter__"):
        raise ValueError(
            "'subjects' input argument must be an iterable. "
            f"You provided {subjects.__class__}"
        )
    subjects = [np.asarray(s) for s in subjects]
    n_features_list = [s.shape[1] for s in subjects]
    if len(set(n_features_list)) > 1:
        raise ValueError(
            "All subjects must have the same number of "
            f"features.\nYou provided: {n_features_list}"
        )
    n_subjects = len(subjects)
    n_features = subjects[0].shape[1]

    emp_covs = np.empty((n_features, n_features, n_subjects), order="F")
    for k, s in enumerate(subjects):
        if standardize:
            s = s / s.std(axis=0)
        cov = empirical_covariance(s, assume_centered=assume_centered)
        # Forced symmetry, for the numerical stability of the solver.
        emp_covs[..., k] = cov + cov.T
    emp_covs /= 2

    n_samples = np.asarray([s.shape[0] for s in subjects], dtype=np.float64)
    return emp_covs, n_samples


def compute_alpha_max(emp_covs, n_samples):
    """Compute the critical values of the regularization parameter.

    Above ``alpha_max`` the precisions computed by `group_sparse_covariance`
    are diagonal (complete sparsity); below ``alpha_min`` they are fully dense.
    Derived as in Duchi et al. (2012).

    Parameters
    ----------
    emp_covs : array-like, shape (n_features, n_features, n_subjects)
        Covariance matrix of every subject.

    n_samples : array-like, shape (n_subjects,)
        Number of samples used to compute every covariance matrix;
        ``n_samples.sum()`` can be arbitrary.

    Returns
    -------
    alpha_max : float
        Smallest regularization giving fully sparse (diagonal) precisions.

    alpha_min : float
        Largest regularization giving fully dense precisions.
    """
    emp_covs = np.asarray(emp_covs, dtype=np.float64)
    weights = np.asarray(n_samples, dtype=np.float64).copy()
    weights /= weights.sum()
    A = emp_covs * weights
    diagonal = np.arange(A.shape[0])
    A[diagonal, diagonal, :] = 0
    norms = np.sqrt((A**2).sum(axis=-1))
    return np.max(norms), np.min(norms[norms > 0])


def _fast_logdet(matrices):
    """``sklearn.utils.extmath.fast_logdet`` of every matrix of a (k, n, n) stack.

    One batched ``numpy.linalg.slogdet`` call (scikit-learn's takes one
    matrix): log det, or -inf unless det > 0.
    """
    sign, logdet = np.linalg.slogdet(matrices)
    return np.where(sign > 0, logdet, -np.inf)


def _log_likelihood(precisions_knn, weights, emp_covs_knn):
    """Weighted log-likelihood of (n_subjects, n, n) stacks (nilearn's sum order)."""
    traces = (emp_covs_knn * precisions_knn).sum(axis=(1, 2))
    logdets = _fast_logdet(precisions_knn)
    log_lik = 0
    for k in range(precisions_knn.shape[0]):
        log_lik += weights[k] * (logdets[k] - traces[k])
    return log_lik


def group_sparse_scores(
    precisions, n_samples, emp_covs, alpha, duality_gap=False, debug=False
):
    """Compute the log-likelihood, objective and duality gap of precisions.

    Parameters
    ----------
    precisions : numpy.ndarray, shape (n_features, n_features, n_subjects)
        Estimated precisions.

    n_samples : array-like, shape (n_subjects,)
        Number of samples used to estimate each subject in ``precisions``;
        ``n_samples.sum()`` must be equal to 1.

    emp_covs : numpy.ndarray, shape (n_features, n_features, n_subjects)
        Empirical covariance matrices.

    alpha : float
        Regularization parameter.

    duality_gap : bool, default=False
        If True, also return a duality gap upper bound.

    debug : bool, default=False
        If True, check the symmetry and definiteness of intermediate results.

    Returns
    -------
    log_lik : float
        Log-likelihood of the precisions on the covariances: the opposite of
        the loss, without the regularization term.

    objective : float
        Value of the objective minimized by `group_sparse_covariance`.

    duality_gap : float
        Duality gap upper bound (only if ``duality_gap``); it vanishes for the
        optimal precisions.
    """
    precisions = np.asarray(precisions, dtype=np.float64)
    emp_covs = np.asarray(emp_covs, dtype=np.float64)
    n_samples = np.asarray(n_samples, dtype=np.float64)
    n_features, _, n_subjects = emp_covs.shape
    prec_knn = np.moveaxis(precisions, -1, 0)
    covs_knn = np.moveaxis(emp_covs, -1, 0)

    log_lik = _log_likelihood(prec_knn, n_samples, covs_knn)
    l2 = np.sqrt((precisions**2).sum(axis=-1))
    l12 = l2.sum() - np.diag(l2).sum()  # diagonal terms are not penalized
    objective = alpha * l12 - log_lik
    if not duality_gap:
        return log_lik, objective

    diagonal = np.arange(n_features)
    A = n_samples[:, None, None] * (np.linalg.inv(prec_knn) - covs_knn)
    if debug:
        np.testing.assert_almost_equal(A, np.swapaxes(A, 1, 2))
    # Project A on the set of feasible points, zero diagonals (this keeps the
    # duality gap positive).
    norms = np.sqrt((A**2).sum(axis=0))
    mask = norms > alpha
    A[:, mask] *= alpha / norms[mask]
    A[:, diagonal, diagonal] = 0

    B = covs_knn + A / n_samples[:, None, None]
    dual_logdets = _fast_logdet(B)
    dual_obj = 0
    for k in range(n_subjects):
        dual_obj += n_samples[k] * (n_features + dual_logdets[k])

    # If some B is not positive definite, use another (feasible but not tight)
    # point: better a loose upper bound than an infinite one.
    if not np.isfinite(dual_obj):
        A = -n_samples[:, None, None] * covs_knn
        A[:, diagonal, diagonal] = 0
        norm_max = np.sqrt((A**2).sum(axis=0)).max()
        gamma = min((alpha / norm_max, 0.05))
        B = (1.0 - gamma) * covs_knn + gamma * np.eye(n_features)
        dual_logdets = _fast_logdet(B)
        dual_obj = 0
        for k in range(n_subjects):
            dual_obj += n_samples[k] * (n_features + dual_logdets[k])

    return log_lik, objective, objective - dual_obj


# --------------------------------------------------------------------------
# the solver


def _fast_start(c_norm, q, alpha):
    """Start of the fast root search of `_newton_gamma`, or None.

    None (nilearn's own iteration) unless nilearn's result is resolved to
    better than ``_FAST_NEWTON_RESOLUTION`` relative, in which case both
    searches give the same coefficients to that resolution.

    nilearn stops at a step below 1.5e-8 (absolute) and computes the
    coefficients with the iterate before that step, so that their relative
    error is up to 1.5e-8 q / (1 + gamma q) <= 1.5e-8 min(q, 1 / gamma):
    negligible for standardized signals (q ~ 1 / n_subjects, gamma >> 1),
    but not for signals of large variance (q ~ 1e6, gamma ~ 1e-2 for
    BOLD signals in scanner units: 1e-6 on every coefficient, which the
    iterations amplify); there the coarser nilearn result is reproduced.
    """
    q_max = float(q.max())
    if not alpha > 0 or not q_max > 0 or not float(q.min()) > 0:
        return None
    gamma0 = (c_norm / alpha - 1.0) / q_max  # a lower bound of the root
    if gamma0 <= 0:
        return None
    if _NEWTON_TOL * min(q_max, 1.0 / gamma0) > _FAST_NEWTON_RESOLUTION:
        return None
    return gamma0


def _newton_gamma(c, q, alpha, gamma0=None):
    """Solve sum(c**2 / (1 + gamma q)**2) = alpha**2 for gamma >= 0.

    nilearn runs Newton-Raphson on f(gamma) = S(gamma) - alpha**2, with
    S = sum(c**2 / (1 + gamma q)**2), from gamma = 0, until a step is below
    1.5e-8: about 10 steps, as f decays like 1 / gamma**2.  That is what is
    done here when ``gamma0`` is None.  Otherwise the same root is found in
    2 or 3 steps, with the same stopping rule and the same quantities (S and
    its derivative) per step:

    - Newton-Raphson on phi(gamma) = S(gamma) ** -0.5 - 1 / alpha instead,
      which is linear in gamma when all q are equal and concave otherwise
      (a power mean of the 1 + gamma q), so that its Newton iterates from the
      left of the root increase monotonically to it;
    - from gamma0 = (||c|| / alpha - 1) / max(q), the root when all q are
      equal and a lower bound of it otherwise (see `_fast_start`).

    Parameters
    ----------
    c, q : numpy.ndarray, shape (n_subjects,)
        q > 0.
    alpha : float
        The regularization parameter (> 0 when gamma0 is given).
    gamma0 : float or None, default=None
        Start of the fast search, at most the root; None for nilearn's.

    Returns
    -------
    gamma : float
        The root.
    aq : numpy.ndarray
        ``1 + gamma_prev * q`` where gamma_prev is the last iterate before the
        final step (nilearn computes the new coefficients with it).
    """
    if c.shape[0] <= _PYTHON_NEWTON_MAX_SUBJECTS:
        gamma, gamma_prev, step = _newton_python(c.tolist(), q.tolist(), alpha,
                                                 gamma0)
    else:
        gamma, gamma_prev, step = _newton_numpy(c, q, alpha, gamma0)
    if step is None:
        warnings.warn("derivative was zero.", RuntimeWarning, stacklevel=4)
    elif abs(step) > 0.1:
        warnings.warn(
            "Newton-Raphson step did not converge.\n"
            "This may indicate a badly conditioned system.",
            stacklevel=4,
        )
    return gamma, 1.0 + gamma_prev * q


def _newton_python(c, q, alpha, gamma0):
    """`_newton_gamma` on Python floats (fewer subjects than ufunc overheads).

    Returns (gamma, gamma_prev, last step), the step None if the derivative
    vanished.
    """
    alpha2 = alpha * alpha
    fast = gamma0 is not None
    cc = [ck * ck for ck in c]
    terms = [(cck, 2.0 * cck * qk, qk) for cck, qk in zip(cc, q)]
    gamma = gamma0 if fast else 0.0
    gamma_prev = gamma
    step = 0.0
    for _ in range(_NEWTON_MAX_ITER):
        S = 0.0
        fder = 0.0  # -dS/dgamma
        for cck, two_ccq, qk in terms:
            aq = 1.0 + gamma * qk
            aq2 = aq * aq
            fder += two_ccq / (aq2 * aq)
            S += cck / aq2
        gamma_prev = gamma
        if fder == 0:
            return gamma, gamma_prev, None
        if fast:
            step = 2.0 * S * (math.sqrt(S) / alpha - 1.0) / fder
        else:
            step = -(alpha2 - S) / fder
        gamma = step + gamma
        if abs(step) < _NEWTON_TOL:
            break
    return gamma, gamma_prev, step


def _newton_numpy(c, q, alpha, gamma0):
    """`_newton_gamma` with ufuncs on preallocated buffers (many subjects)."""
    multiply, divide, add_reduce = np.multiply, np.divide, np.add.reduce
    alpha2 = alpha * alpha
    fast = gamma0 is not None
    cc = c * c
    two_ccq = 2.0 * cc * q
    aq = np.empty_like(c)
    aq2 = np.empty_like(c)
    tmp = np.empty_like(c)
    gamma = gamma0 if fast else 0.0
    gamma_prev = gamma
    step = 0.0
    for _ in range(_NEWTON_MAX_ITER):
        multiply(q, gamma, out=aq)
        aq += 1.0
        multiply(aq, aq, out=aq2)
        multiply(aq2, aq, out=tmp)
        divide(two_ccq, tmp, out=tmp)
        fder = float(add_reduce(tmp))  # -dS/dgamma
        gamma_prev = gamma
        if fder == 0:
            return gamma, gamma_prev, None
        divide(cc, aq2, out=tmp)
        S = float(add_reduce(tmp))
        if fast:
            step = 2.0 * S * (math.sqrt(S) / alpha - 1.0) / fder
        else:
            step = -(alpha2 - S) / fder
        gamma = step + gamma
        if abs(step) < _NEWTON_TOL:
            break
    return gamma, gamma_prev, step


def _update_inverses(omega, W, W_inv, p):
    """Move the removed row/column of W from p - 1 to p, updating W_inv.

    ``W[k]`` is ``omega[k]`` without row and column p - 1 and ``W_inv[k]`` its
    inverse; both are updated in place to those without row and column p, by
    two Sherman-Morrison-Woodbury rank-one updates (nilearn's
    ``_update_submatrix``), for all subjects at once.

    Parameters
    ----------
    omega : numpy.ndarray, shape (n_subjects, n_features, n_features)
    W, W_inv : numpy.ndarray, shape (n_subjects, n_features - 1, n_features - 1)
    p : int
        1 <= p < n_features.
    """
    n = p - 1
    # v: column n of omega without row p; h: row n of omega without column p
    v = np.concatenate((omega[:, : n + 1, n], omega[:, n + 2 :, n]), axis=1)
    h = np.concatenate((omega[:, n, : n + 1], omega[:, n, n + 2 :]), axis=1)

    # change row n
    V = h - W[:, n, :]
    coln = W_inv[:, :, n]
    coln = coln / (1.0 + np.einsum("ki,ki->k", V, coln))[:, None]
    VW = np.matmul(V[:, None, :], W_inv)
    W_inv -= coln[:, :, None] * VW
    W[:, n, :] = h

    # change column n
    rown = W_inv[:, n, :]
    U = v - W[:, :, n]
    rown = rown / (1.0 + np.einsum("ki,ki->k", rown, U))[:, None]
    WU = np.matmul(W_inv, U[:, :, None])
    W_inv -= WU * rown[:, None, :]
    W[:, :, n] = v

    # symmetrize (numerical round-off)
    W_inv += np.swapaxes(W_inv, 1, 2).copy()
    W_inv /= 2.0


def _descend_row(y, u, W_inv, weights, s_pp, alpha):
    """Coordinate descent on the off-diagonal part y of row p, in place.

    Visits the coordinates m = 0 .. n_features - 2 in order, as nilearn.
    For each, with c_k = -w_k (s_pp,k h_12,k . y_1,k + u_k,m): the new value is
    0 if ||c|| <= alpha, else gamma c / (1 + gamma q) with q_k = w_k s_pp,k
    W_inv_k[m, m] and gamma from `_newton_gamma`.

    The products h_12,k . y_1,k are kept up to date for all coordinates
    (r = W_inv y, corrected after each change of y).  In sparse stretches,
    the c of all the coordinates still to visit are computed at once, and
    those that are zero and stay zero (which change nothing) are skipped;
    after a change, coordinates are visited one at a time until one does not
    change.

    Parameters
    ----------
    y : numpy.ndarray, shape (n_features - 1, n_subjects)
        Row p of the precisions without its diagonal; updated in place.
    u : numpy.ndarray, shape (n_features - 1, n_subjects)
        Row p of the covariances without its diagonal.
    W_inv : numpy.ndarray, shape (n_subjects, n_features - 1, n_features - 1)
        Inverses of the precisions without row and column p, symmetric.
    weights : numpy.ndarray, shape (n_subjects,)
        Normalized sample counts.
    s_pp : numpy.ndarray, shape (n_subjects,)
        Diagonal coefficient p of the covariances.
    alpha : float
        Regularization parameter.
    """
    sqrt, dot = math.sqrt, np.dot
    n_coefs = y.shape[0]
    neg_w = -weights
    w_s = weights * s_pp
    diag = np.diagonal(W_inv, axis1=1, axis2=2).T.copy()
    # r[m] = h_12 . y_1 + W_inv[m, m] y[m] (all subjects)
    r = np.matmul(y.T[:, None, :], W_inv)[:, 0, :].T.copy()
    was_zero = ~y.any(axis=1)
    m = 0
    one_by_one = False
    while m < n_coefs:
        if one_by_one:
            c = neg_w * (s_pp * (r[m] - diag[m] * y[m]) + u[m])
            c_norm = sqrt(dot(c, c))
            if c_norm <= alpha and was_zero[m]:
                one_by_one = False
                m += 1
                continue
            j = m
        else:
            hy = r[m:] - diag[m:] * y[m:]
            c_all = neg_w * (s_pp * hy + u[m:])
            c_norms = np.sqrt(np.einsum("mk,mk->m", c_all, c_all))
            moves = np.flatnonzero((c_norms > alpha) | ~was_zero[m:])
            if moves.size == 0:
                return
            i = moves[0]
            j = m + i
            c = c_all[i]
            c_norm = float(c_norms[i])
        if c_norm <= alpha:
            delta = -y[j]
            y[j] = 0
        else:
            q = w_s * diag[j]
            gamma, aq = _newton_gamma(c, q, alpha, _fast_start(c_norm, q, alpha))
            new = (gamma * c) / aq
            delta = new - y[j]
            y[j] = new
        m = j + 1
        r[m:] += W_inv[:, j, m:].T * delta
        one_by_one = True


def _solve(
    covs,
    weights,
    alpha,
    max_iter,
    tol,
    omega,
    probe_function,
    emp_covs,
    verbose,
    debug,
):
    """The block coordinate descent on (n_subjects, n, n) stacks.

    ``omega`` is updated in place; ``emp_covs`` and ``weights`` are what a
    probe function is given (nilearn's layout).  Returns omega.
    """
    n_subjects, n_features, _ = covs.shape
    n_coefs = n_features - 1
    others = [np.r_[0:p, p + 1 : n_features] for p in range(n_features)]
    u_rows = [covs[:, others[p], p].T.copy() for p in range(n_features)]
    s_diag = [covs[:, p, p].copy() for p in range(n_features)]

    def as_nilearn(a):
        return np.transpose(a, (1, 2, 0))

    if probe_function is not None:
        # iteration number -1 means "before the first iteration"
        probe_function(
            emp_covs, weights, alpha, max_iter, tol, -1, as_nilearn(omega), None
        )

    tolerance_reached = False
    probe_interrupted = False
    max_norm = None
    W = W_inv = None
    for it in range(max_iter):
        suffix = (
            f" variation (max norm): {max_norm:.3e} " if max_norm is not None else ""
        )
        _log(
            f"* iteration {it:d} ({100.0 * it / max_iter:.0f} %){suffix} ...",
            verbose,
            "group_sparse_covariance",
        )
        omega_old = omega.copy()
        for p in range(n_features):
            if p == 0:
                W = omega[:, 1:, 1:].copy()
                W_inv = np.linalg.inv(W)
            else:
                _update_inverses(omega, W, W_inv, p)
            if debug:
                eye = np.eye(n_coefs)
                np.testing.assert_almost_equal(np.matmul(W_inv, W), np.broadcast_to(
                    eye, W.shape), decimal=10)
            idx = others[p]
            y_t = omega[:, idx, p].T.copy()
            _descend_row(y_t, u_rows[p], W_inv, weights, s_diag[p], alpha)
            y = y_t.T
            omega[:, idx, p] = y
            omega[:, p, idx] = y
            yW = np.matmul(y[:, None, :], W_inv)[:, 0, :]
            omega[:, p, p] = 1.0 / s_diag[p] + np.einsum("ki,ki->k", yW, y)
            if debug:
                assert np.all(np.linalg.eigvalsh(omega) > 0)

        if probe_function is not None and probe_function(
            emp_covs,
            weights,
            alpha,
            max_iter,
            tol,
            it,
            as_nilearn(omega),
            as_nilearn(omega_old),
        ):
            probe_interrupted = True
            _log("probe_function interrupted loop", verbose, "group_sparse_covariance",
                 msg_level=2)
            break

        omega_old -= omega
        max_norm = np.abs(omega_old).max()
        tolerance_reached = tol is not None and max_norm < tol
        if tolerance_reached:
            _log(
                f"tolerance reached at iteration number {it + 1:d}: {max_norm:.3e}",
                verbose,
                "group_sparse_covariance",
            )
            break

    if tol is not None and not tolerance_reached and not probe_interrupted:
        warnings.warn(
            "Maximum number of iterations reached without getting "
            "to the requested tolerance level.",
            stacklevel=4,
        )
    return omega


def _check_diagonal_normalization(emp_covs):
    """Warn unless every covariance diagonal is within 0.1 of one."""
    diagonal = np.arange(emp_covs.shape[0])
    if (np.abs(emp_covs[diagonal, diagonal, :] - 1.0) > 0.1).any():
        warnings.warn(
            "Input signals do not all have unit variance. "
            "This can lead to numerical instability.",
            stacklevel=4,
        )


def _init_omega(covs_knn, precisions_init):
    """Initial precisions as a (n_subjects, n, n) stack (a copy)."""
    if precisions_init is None:
        n_subjects, n_features, _ = covs_knn.shape
        omega = np.zeros_like(covs_knn)
        diagonal = np.arange(n_features)
        omega[:, diagonal, diagonal] = 1.0 / covs_knn[:, diagonal, diagonal]
        return omega
    precisions_init = np.asarray(precisions_init, dtype=np.float64)
    if precisions_init.shape != covs_knn.shape[1:] + covs_knn.shape[:1]:
        raise ValueError(
            "precisions_init must have the shape of the covariances "
            f"(n_features, n_features, n_subjects) = "
            f"{covs_knn.shape[1:] + covs_knn.shape[:1]}, got {precisions_init.shape}"
        )
    # always a copy: precisions_init may be a view of an earlier result
    return np.transpose(precisions_init, (2, 0, 1)).copy(order="C")


def _precisions(
    emp_covs,
    weights,
    alpha,
    max_iter,
    tol,
    precisions_init,
    probe_function,
    verbose,
    debug,
):
    """Solver on nilearn-layout covariances and already normalized weights."""
    _check_alpha(alpha)
    if tol == -1:
        tol = None
    emp_covs = np.asarray(emp_covs, dtype=np.float64)
    if emp_covs.ndim != 3 or emp_covs.shape[0] != emp_covs.shape[1]:
        raise ValueError(
            "emp_covs must have shape (n_features, n_features, n_subjects), "
            f"got {emp_covs.shape}"
        )
    if emp_covs.shape[0] < 2:
        raise ValueError("at least 2 features (regions) are required")
    _check_diagonal_normalization(emp_covs)
    covs = np.ascontiguousarray(np.transpose(emp_covs, (2, 0, 1)))
    omega = _init_omega(covs, precisions_init)
    omega = _solve(covs, weights, alpha, max_iter, tol, omega, probe_function,
                   emp_covs, verbose, debug)
    # (n, n, k) view: precisions[..., k] is contiguous.
    return np.transpose(omega, (1, 2, 0))


def group_sparse_precisions(
    emp_covs,
    n_samples,
    alpha,
    max_iter=10,
    tol=1e-3,
    precisions_init=None,
    probe_function=None,
    verbose=0,
    debug=False,
):
    """Group-sparse precisions from covariance matrices.

    The solver of `group_sparse_covariance`, given covariances rather than
    signals (nilearn's ``_group_sparse_covariance``, with its defaults).

    Parameters
    ----------
    emp_covs : numpy.ndarray, shape (n_features, n_features, n_subjects)
        Covariance matrix of every subject, symmetric.

    n_samples : array-like, shape (n_subjects,)
        Number of samples of every subject (normalized to sum to one here).

    alpha : float
        Regularization parameter, >= 0.

    max_iter : int, default=10
        Maximum number of iterations.

    tol : float or None, default=1e-3
        Stop when the largest change of a precision coefficient over an
        iteration is below tol; None (or -1) never stops early.

    precisions_init : numpy.ndarray or None, default=None
        Initial precisions, shape (n_features, n_features, n_subjects); the
        inverse of the covariances' diagonals if None.

    probe_function : callable or None, default=None
        Called before the first iteration and after each one, see
        `group_sparse_covariance`; returning True stops the optimization.

    verbose : int, default=0
        Verbosity level.

    debug : bool, default=False
        If True, check intermediate results (slow).

    Returns
    -------
    precisions : numpy.ndarray, shape (n_features, n_features, n_subjects)
        Estimated precision matrices, sharing one sparsity pattern.
    """
    weights = np.asarray(n_samples, dtype=np.float64)
    weights = weights / weights.sum()  # essential for numerical stability
    return _precisions(emp_covs, weights, alpha, max_iter, tol, precisions_init,
                       probe_function, verbose, debug)


def group_sparse_covariance(
    subjects,
    alpha,
    max_iter=50,
    tol=1e-3,
    verbose=0,
    probe_function=None,
    precisions_init=None,
    debug=False,
):
    """Compute sparse precision matrices and covariance matrices.

    The precision matrices returned share a common sparsity pattern: all have
    zeros at the same locations. They are computed simultaneously by the
    algorithm of Honorio & Samaras (2010). Running time is linear in max_iter
    and the number of subjects, cubic in the number of features.

    Parameters
    ----------
    subjects : list of numpy.ndarray, shape for each (n_samples, n_features)
        Input subjects. Each subject is a 2D array, whose columns contain
        signals. The sample number can vary from subject to subject, but all
        subjects must have the same number of features.

    alpha : float
        Regularization parameter. With normalized covariance matrices and
        number of samples, sensible values lie in the [0, 1] range (zero is
        no regularization: the output is not sparse).

    max_iter : int, default=50
        Maximum number of iterations.

    tol : positive float or None, default=1e-3
        Stop when the largest change of a precision coefficient over an
        iteration goes below this value. If None, no check is performed.

    verbose : int, default=0
        Verbosity level.

    probe_function : callable or None, default=None
        Called before the first iteration and after each iteration; if it
        returns True, the optimization stops. Its arguments are, in order:
        the empirical covariances, the normalized numbers of samples, alpha,
        max_iter, tol, the iteration number (-1 before the first), the
        current precisions and the previous precisions (None before the first
        iteration), arrays of shape (n_features, n_features, n_subjects).

    precisions_init : numpy.ndarray, default=None
        Initial value of the precision matrices. If None, the diagonal
        matrices of the inverse variances are used.

    debug : bool, default=False
        If True, perform (slow) consistency checks during computation.

    Returns
    -------
    emp_covs : numpy.ndarray, shape (n_features, n_features, n_subjects)
        Empirical covariance matrices.

    precisions : numpy.ndarray, shape (n_features, n_features, n_subjects)
        Estimated precision matrices.
    """
    subjects = _check_subjects(subjects)
    emp_covs, n_samples = empirical_covariances(subjects, assume_centered=False)
    precisions = group_sparse_precisions(
        emp_covs,
        n_samples,
        alpha,
        max_iter=max_iter,
        tol=tol,
        verbose=verbose,
        precisions_init=precisions_init,
        probe_function=probe_function,
        debug=debug,
    )
    return emp_covs, precisions


def _precisions_path(train_covs, train_weights, alphas, test_covs, tol, max_iter,
                     precisions_init, verbose, debug, probe_function):
    """Precisions (and test scores) along alphas, each started from the last.

    ``train_weights`` are renormalized before each alpha, as nilearn (which
    normalizes its sample counts in place) does; the scores use them.
    """
    scores = []
    precisions_list = []
    for alpha in alphas:
        train_weights = train_weights / train_weights.sum()
        precisions = _precisions(
            train_covs,
            train_weights,
            alpha,
            max_iter,
            tol,
            precisions_init,
            probe_function,
            verbose,
            debug,
        )
        if test_covs is not None:
            scores.append(group_sparse_scores(precisions, train_weights,
                                              test_covs, 0)[0])
        precisions_list.append(precisions)
        precisions_init = precisions
    return precisions_list, scores


def group_sparse_covariance_path(
    train_subjs,
    alphas,
    test_subjs=None,
    tol=1e-3,
    max_iter=10,
    precisions_init=None,
    verbose=0,
    debug=False,
    probe_function=None,
):
    """Get estimated precision matrices for several values of alpha.

    Each estimation starts from the result of the previous one, which is
    faster than independent calls of `group_sparse_covariance`.

    Parameters
    ----------
    train_subjs : list of numpy.ndarray
        Signals, standardized here before the covariances are computed.

    alphas : list of float
        Values of alpha, preferably sorted in decreasing order.

    test_subjs : list of numpy.ndarray, default=None
        Signals independent from train_subjs, on which to compute a score
        (the log-likelihood of the standardized signals). If None, no score
        is computed.

    tol, max_iter, precisions_init, verbose, debug, probe_function :
        As in `group_sparse_covariance` (here max_iter defaults to 10).

    Returns
    -------
    precisions_list : list of numpy.ndarray
        Estimated precisions for each value of alpha.

    scores : list of float
        The test score of each estimated precision (only if test_subjs is
        not None).
    """
    train_covs, train_n_samples = empirical_covariances(
        train_subjs, assume_centered=False, standardize=True
    )
    test_covs = None
    if test_subjs is not None:
        test_covs, _ = empirical_covariances(
            test_subjs, assume_centered=False, standardize=True
        )
    precisions_list, scores = _precisions_path(
        train_covs, train_n_samples, alphas, test_covs, tol, max_iter,
        precisions_init, max(0, verbose - 1), debug, probe_function)
    return (precisions_list, scores) if test_subjs is not None else precisions_list


class EarlyStopProbe:
    """Probe stopping the optimization once the test log-likelihood decreases.

    An instance is meant to be passed as the ``probe_function`` argument of
    `group_sparse_covariance` (as `GroupSparseCovarianceCV` does with
    ``early_stopping=True``).

    Parameters
    ----------
    test_subjs : list of numpy.ndarray
        Test signals (their covariances are computed without standardizing).

    verbose : int, default=0
        Verbosity level.
    """

    def __init__(self, test_subjs, verbose=0):
        self.test_emp_covs, _ = empirical_covariances(test_subjs)
        self.verbose = verbose
        self._test_covs_knn = np.ascontiguousarray(
            np.moveaxis(self.test_emp_covs, -1, 0))

    def __call__(self, emp_covs, n_samples, alpha, max_iter, tol, iter_n, omega,
                 prev_omega):
        """Return True when the test log-likelihood decreased at iteration iter_n."""
        del emp_covs, max_iter, tol, prev_omega, alpha
        log_lik = _log_likelihood(np.moveaxis(omega, -1, 0), n_samples,
                                  self._test_covs_knn)
        if iter_n > -1 and self.last_log_lik > log_lik:
            _log(
                "Log-likelihood on test set is decreasing. "
                f"Stopping at iteration {iter_n}",
                self.verbose,
                "EarlyStopProbe",
            )
            return True
        self.last_log_lik = log_lik
        return None


# --------------------------------------------------------------------------
# estimators


def _check_verbose(verbose):
    """nilearn's sanitize_verbose: bools become 0/1, ints >= 0 are kept."""
    if isinstance(verbose, bool):
        return int(verbose)
    if not isinstance(verbose, numbers.Integral) or verbose < 0:
        raise ValueError(f"'verbose' must be a non-negative integer, got {verbose!r}")
    return int(verbose)


class GroupSparseCovariance(BaseEstimator):
    """Covariance and precision matrix estimator with a group-sparse prior.

    The model is that of Varoquaux et al. (NIPS 2010), the algorithm that of
    Honorio & Samaras (2010), see `group_sparse_covariance`.

    Parameters
    ----------
    alpha : float, default=0.1
        Regularization parameter. With normalized covariance matrices and
        number of samples, sensible values lie in the [0, 1] range (zero is
        no regularization: the output is not sparse).

    tol : positive float, default=1e-3
        Stop when the largest change of a precision coefficient over an
        iteration goes below this value.

    max_iter : int, default=10
        Maximum number of iterations. The default value is rather
        conservative.

    verbose : int, default=0
        Verbosity level.

    Attributes
    ----------
    covariances_ : numpy.ndarray, shape (n_features, n_features, n_subjects)
        Empirical covariance matrices.

    precisions_ : numpy.ndarray, shape (n_features, n_features, n_subjects)
        Precision matrices estimated with the group-sparse algorithm.

    n_features_in_ : int
        Number of features seen during fit.
    """

    def __init__(self, alpha=0.1, tol=1e-3, max_iter=10, verbose=0):
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose

    def fit(self, subjects, y=None):
        """Fit the group-sparse precision model to the subjects' signals.

        Parameters
        ----------
        subjects : list of numpy.ndarray, shape for each (n_samples, n_features)
            Input subjects. Each subject is a 2D array, whose columns contain
            signals. Sample number can vary from subject to subject, but all
            subjects must have the same number of features.

        y : None
            Ignored.

        Returns
        -------
        self : GroupSparseCovariance
        """
        del y
        verbose = _check_verbose(self.verbose)
        _check_alpha(self.alpha)
        subjects = _check_subjects(subjects)
        _log("Computing covariance matrices", verbose, type(self).__name__)
        self.covariances_, n_samples = empirical_covariances(
            subjects, assume_centered=False
        )
        self.n_features_in_ = subjects[0].shape[1]
        _log("Computing precision matrices", verbose, type(self).__name__)
        self.precisions_ = group_sparse_precisions(
            self.covariances_,
            n_samples,
            self.alpha,
            tol=self.tol,
            max_iter=self.max_iter,
            verbose=max(0, verbose - 1),
            debug=False,
        )
        return self


def _best_index(path):
    """Index of the best score on a path sorted by decreasing alpha.

    The last maximum wins (the smallest alpha in case of equality); scores
    >= 0.1 / eps count as NaN. Also returns the last finite score's index.
    """
    best_score = -np.inf
    best_index = None
    last_finite_idx = 0
    for index, (_, this_score, _) in enumerate(path):
        if this_score >= 0.1 / np.finfo(np.float64).eps:
            this_score = np.nan
        if np.isfinite(this_score):
            last_finite_idx = index
        if this_score >= best_score:
            best_score = this_score
            best_index = index
    if best_index is None:
        raise RuntimeError(
            "GroupSparseCovarianceCV: no alpha gave a usable cross-validated "
            "score (all scores are NaN)."
        )
    return best_index, last_finite_idx


class GroupSparseCovarianceCV(BaseEstimator):
    """Group-sparse inverse covariance with a cross-validated alpha.

    A cross-validated value of the regularization parameter is first
    determined on an iteratively refined grid (the scores of a grid are
    computed, then a new grid is centered around the maximum, and so on);
    then a final optimization gives the precision matrices for that value.
    Different tolerances and iteration numbers can be used in the two phases.

    Parameters
    ----------
    alphas : int or list of float, default=4
        Initial number of points in the grid of regularization values (from
        alpha_max / 100 to alpha_max, see `compute_alpha_max`); each
        refinement adds that many points as well. A list of values is used
        as the grid, without refinement.

    n_refinements : int, default=4
        Number of times the initial grid is refined.

    cv : int, cross-validation splitter, iterable or None, default=None
        Anything ``sklearn.model_selection.check_cv`` takes: the number of
        folds of a ``KFold`` cross-validation (5 if None), a splitter, or an
        iterable of (train, test) index arrays.  It splits each subject's
        samples; fold i trains on every subject's i-th train set.

    tol_cv : float, default=1e-2
        Tolerance used to select alpha (see ``tol`` of
        `group_sparse_covariance`).

    max_iter_cv : int, default=50
        Maximum number of iterations of each optimization during the
        alpha-selection phase.

    tol : float, default=1e-3
        Tolerance of the final optimization.

    max_iter : int, default=100
        Maximum number of iterations of the final optimization.

    verbose : int, default=0
        Verbosity level.

    debug : bool, default=False
        If True, activate (slow) internal consistency checks.

    early_stopping : bool, default=True
        If True, stop each optimization of the selection phase as soon as
        the log-likelihood of the test fold decreases. This reduces the
        computation time and can give a slightly different alpha than
        early_stopping=False.

    Attributes
    ----------
    covariances_ : numpy.ndarray, shape (n_features, n_features, n_subjects)
        Covariance matrices, one per subject.

    precisions_ : numpy.ndarray, shape (n_features, n_features, n_subjects)
        Precision matrices, one per subject, all with the same sparsity
        pattern.

    alpha_ : float
        Penalization parameter value selected.

    cv_alphas_ : list of float
        All values of the penalization parameter explored, decreasing.

    cv_scores_ : numpy.ndarray, shape (n_alphas,)
        Mean test-fold score of each value of ``cv_alphas_``.

    n_features_in_ : int
        Number of features seen during fit.
    """

    def __init__(
        self,
        alphas=4,
        n_refinements=4,
        cv=None,
        tol_cv=1e-2,
        max_iter_cv=50,
        tol=1e-3,
        max_iter=100,
        verbose=0,
        debug=False,
        early_stopping=True,
    ):
        self.alphas = alphas
        self.n_refinements = n_refinements
        self.cv = cv
        self.tol_cv = tol_cv
        self.max_iter_cv = max_iter_cv
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose
        self.debug = debug
        self.early_stopping = early_stopping

    def _initial_grid(self, emp_covs, n_samples):
        """(alphas, n_refinements) of the first pass."""
        if isinstance(self.alphas, (collections.abc.Sequence, np.ndarray)):
            alphas = [float(a) for a in self.alphas]
            if len(alphas) == 0:
                raise ValueError("'alphas' is an empty list")
            for a in alphas:
                _check_alpha(a)
            return alphas, 1
        if (isinstance(self.alphas, bool) or not isinstance(self.alphas, numbers.Integral)
                or self.alphas < 2):
            raise ValueError(
                f"'alphas' must be an integer >= 2 or a list of floats, got {self.alphas!r}"
            )
        if (isinstance(self.n_refinements, bool)
                or not isinstance(self.n_refinements, numbers.Integral)
                or self.n_refinements < 1):
            raise ValueError(
                f"'n_refinements' must be a positive integer, got {self.n_refinements!r}"
            )
        alpha_1, _ = compute_alpha_max(emp_covs, n_samples)
        alpha_0 = 1e-2 * alpha_1
        alphas = np.logspace(np.log10(alpha_0), np.log10(alpha_1), self.alphas)[::-1]
        return alphas, int(self.n_refinements)

    def fit(self, subjects, y=None):
        """Compute cross-validated group-sparse precisions.

        Parameters
        ----------
        subjects : list of numpy.ndarray, shape for each (n_samples, n_features)
            Input subjects. Each subject is a 2D array, whose columns contain
            signals. Sample number can vary from subject to subject, but all
            subjects must have the same number of features.

        y : None
            Ignored.

        Returns
        -------
        self : GroupSparseCovarianceCV
        """
        del y
        verbose = _check_verbose(self.verbose)
        name = type(self).__name__
        subjects = _check_subjects(subjects)
        emp_covs, n_samples = empirical_covariances(subjects, assume_centered=False)
        self.n_features_in_ = subjects[0].shape[1]

        # One split per subject (the sample counts can differ); fold i takes
        # every subject's i-th split (nilearn's check_cv call).
        per_subject = [
            check_cv(self.cv, np.ones(s.shape[0]), classifier=False).split(s)
            for s in subjects
        ]
        folds = []
        for train_test in zip(*per_subject):
            train = [s[tr, :] for s, (tr, _) in zip(subjects, train_test)]
            test = [s[te, :] for s, (_, te) in zip(subjects, train_test)]
            train_covs, train_n = empirical_covariances(train, standardize=True)
            test_covs, _ = empirical_covariances(test, standardize=True)
            folds.append((train_covs, train_n, test_covs, test))

        alphas, n_refinements = self._initial_grid(emp_covs, n_samples)
        covs_init = itertools.repeat(None)
        path = []  # (alpha, mean score, precisions of each fold)
        for i in range(n_refinements):
            this_path = []
            for (train_covs, train_n, test_covs, test), prec_init in zip(folds,
                                                                          covs_init):
                probe = (EarlyStopProbe(test, verbose=max(0, verbose - 1))
                         if self.early_stopping else None)
                this_path.append(_precisions_path(
                    train_covs, train_n, alphas, test_covs,
                    tol=self.tol_cv,
                    max_iter=self.max_iter_cv,
                    # warm restart is useless with early stopping
                    precisions_init=None if self.early_stopping else prec_init,
                    verbose=max(0, verbose - 2),
                    debug=self.debug,
                    probe_function=probe,
                ))
            precisions_list, scores = list(zip(*this_path))
            precisions_list = list(zip(*precisions_list))
            scores = [np.mean(sc) for sc in zip(*scores)]
            path.extend(zip(alphas, scores, precisions_list))
            path = sorted(path, key=operator.itemgetter(0), reverse=True)

            best_index, last_finite_idx = _best_index(path)
            if n_refinements > 1:
                _log(f"Done refinement {i: 2} out of {n_refinements}", verbose, name)
            if i == n_refinements - 1:
                break  # (nilearn computes a next grid that it does not use)
            # refine the grid
            if best_index == 0:
                # the highest alpha with non-zero coefficients was chosen
                alpha_1, alpha_0 = path[0][0], path[1][0]
                covs_init = path[0][2]
            elif best_index == last_finite_idx and best_index != len(path) - 1:
                # non-converged models at the upper bound: refine there
                alpha_1, alpha_0 = path[best_index][0], path[best_index + 1][0]
                covs_init = path[best_index][2]
            elif best_index == len(path) - 1:
                alpha_1 = path[best_index][0]
                alpha_0 = 0.01 * path[best_index][0]
                covs_init = path[best_index][2]
            else:
                alpha_1, alpha_0 = path[best_index - 1][0], path[best_index + 1][0]
                covs_init = path[best_index - 1][2]
            alphas = np.logspace(np.log10(alpha_1), np.log10(alpha_0), len(alphas) + 2)
            alphas = alphas[1:-1]

        cv_alphas, cv_scores = [list(column) for column in list(zip(*path))[:2]]
        self.cv_scores_ = np.array(cv_scores)
        self.alpha_ = cv_alphas[best_index]
        self.cv_alphas_ = cv_alphas

        _log("Final optimization", verbose, name)
        self.covariances_ = emp_covs
        self.precisions_ = group_sparse_precisions(
            emp_covs,
            n_samples,
            self.alpha_,
            tol=self.tol,
            max_iter=self.max_iter,
            verbose=max(0, verbose - 1),
            debug=self.debug,
        )
        return self

