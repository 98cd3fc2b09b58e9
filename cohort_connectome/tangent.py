"""Tangent-space connectivity, as nilearn's ``ConnectivityMeasure(kind="tangent")``.

The tangent kind (Varoquaux et al., MICCAI 2010) describes each subject's
covariance ``C_s`` by its displacement from a group reference, the geometric
(Riemannian) mean ``G`` of all subjects' covariances:

    T_s = logm(G^{-1/2} C_s G^{-1/2})

``T_s`` is symmetric; it is zero for a subject whose covariance equals the
group mean.  This module reproduces nilearn 0.13.1's implementation
(``nilearn.connectome.connectivity_matrices``): the same gradient descent for
the geometric mean, the same stopping rule and warning, the same eigenvalue
maps, and its ``sym_matrix_to_vec`` / ``vec_to_sym_matrix`` vectorization.
Mirrored: ``ConnectivityMeasure(kind="tangent")``'s ``fit_transform``
(`tangent_connectivity`), ``_geometric_mean`` (`geometric_mean`),
``_map_eigenvalues`` (`map_eigenvalues`), ``sym_matrix_to_vec`` and
``vec_to_sym_matrix``.  The eigendecompositions are ``scipy.linalg.eigh``, as
in nilearn, and each subject's covariance is scikit-learn's estimator (see
`cohort_connectome.connectivity`).
"""

import math
import numbers
import warnings

import numpy as np
from scipy import linalg

from .connectivity import estimate_connectivity

#: Iterations and tolerance ConnectivityMeasure(kind="tangent") gives the
#: geometric mean (the function itself defaults to 10 iterations).
TANGENT_MAX_ITER = 30
TANGENT_TOL = 1e-7
#: Symmetry tolerance of the SPD check: nilearn's ``is_spd(M, decimal=7)``.
_SYMMETRY_RTOL = 1e-7


def geometric_mean(covariances, init=None, max_iter=10, tol=1e-7, info=None):
    """Geometric (Riemannian) mean of symmetric positive definite matrices.

    The mean minimises the sum of squared affine-invariant distances
    ``sum_k ||logm(X^{-1/2} M_k X^{-1/2})||_F^2`` (Fletcher & Joshi 2007,
    Algorithm 3); for 1x1 matrices it is the usual geometric mean.

    Parameters
    ----------
    covariances : array-like, shape (n_matrices, n, n), or sequence of (n, n)
        At least one symmetric positive definite matrix, all of one shape.
    init : array-like, shape (n, n), or None, default=None
        Starting point; None starts from the arithmetic mean of `covariances`.
        Must be symmetric positive definite.
    max_iter : int, default=10
        Maximum number of gradient steps (at least 1).
    tol : positive float or None, default=1e-7
        Convergence threshold on ``||gradient||_F / n**2``; None runs all
        `max_iter` steps and never warns.
    info : dict or None, default=None
        When a dict, filled with how the descent went: ``n_iter`` (gradient
        steps taken), ``gradient_norm`` (the ``||gradient||_F / n**2`` the
        stopping rule last saw), ``max_iter``, ``tol`` and ``converged``
        (False when the warning below is issued; True with ``tol=None``).

    Returns
    -------
    gmean : ndarray, shape (n, n), float64
        The geometric mean.

    Raises
    ------
    ValueError
        If `covariances` is empty, a matrix is not square, not finite, of
        another shape than the first, or not symmetric positive definite
        (symmetric to a relative 1e-7 and with a positive smallest
        eigenvalue); the same for `init`; `max_iter` below 1 or `tol` not
        positive.
    FloatingPointError
        If a matrix logarithm yields NaN during the descent.

    Warns
    -----
    UserWarning
        ``"Maximum number of iterations {max_iter} reached without getting to
        the requested tolerance level {tol}."`` when `tol` is set and not met.

    Notes
    -----
    Step by step the algorithm of nilearn 0.13.1's ``_geometric_mean``: at
    the current mean ``G`` the gradient is the mean ``L`` of
    ``logm(G^{-1/2} M_k G^{-1/2})``; the mean moves along the geodesic,
    ``G <- G^{1/2} expm(step * L) G^{1/2}``.  The step starts at 1 and is
    halved whenever the gradient norm grows; the norm used by the stopping
    rule is then the smallest one seen so far.  The descent stops when
    ``norm / n**2 < tol``, checked after the update.  Matrix functions are
    applied through ``scipy.linalg.eigh``.

    Differences from nilearn: every check raises ValueError naming the
    offending matrix (nilearn: ``"Expected a symmetric positive definite
    matrix."``, IndexError for an empty list, NameError for ``max_iter=0``);
    inputs are converted to float64.
    """
    matrices = _check_spd_stack(covariances, "covariances")
    n_features = matrices.shape[1]
    max_iter = _check_max_iter(max_iter)
    tol = _check_tol(tol)

    if init is None:
        gmean = np.mean(matrices, axis=0)
    else:
        init = _as_float_array(init, "init")
        if init.ndim != 2 or init.shape[0] != init.shape[1]:
            raise ValueError(f"init must be a square 2D matrix, got shape {init.shape}")
        if init.shape[0] != n_features:
            raise ValueError(f"init has shape {init.shape}, the covariances are "
                             f"{n_features}x{n_features}")
        _check_spd(init, "init")
        gmean = init

    norm_old = np.inf
    step = 1.0
    norm = np.inf
    n_iter = 0
    for _ in range(max_iter):
        n_iter += 1
        vals_gmean, vecs_gmean = linalg.eigh(gmean)
        gmean_inv_sqrt = _form_symmetric(np.sqrt, 1.0 / vals_gmean, vecs_gmean)
        whitened = [gmean_inv_sqrt.dot(matrix).dot(gmean_inv_sqrt) for matrix in matrices]
        logs = [map_eigenvalues(np.log, w) for w in whitened]
        logs_mean = np.mean(logs, axis=0)
        if np.any(np.isnan(logs_mean)):
            raise FloatingPointError("Nan value after logarithm operation.")

        norm = np.linalg.norm(logs_mean)

        vals_log, vecs_log = linalg.eigh(logs_mean)
        gmean_sqrt = _form_symmetric(np.sqrt, vals_gmean, vecs_gmean)
        gmean = gmean_sqrt.dot(_form_symmetric(np.exp, vals_log * step, vecs_log)).dot(gmean_sqrt)

        if norm < norm_old:
            norm_old = norm
        elif norm > norm_old:
            step = step / 2.0
            norm = norm_old
        if tol is not None and norm / gmean.size < tol:
            break
    converged = tol is None or norm / gmean.size < tol
    if info is not None:
        info.update(n_iter=n_iter, gradient_norm=float(norm / gmean.size),
                    max_iter=max_iter, tol=tol, converged=bool(converged))
    if not converged:
        warnings.warn(
            f"Maximum number of iterations {max_iter} reached without "
            f"getting to the requested tolerance level {tol}.",
            UserWarning,
            stacklevel=2,
        )
    return gmean


def map_eigenvalues(function, symmetric):
    """Matrix function of a real symmetric matrix, through its eigenvalues.

    Parameters
    ----------
    function : callable, ndarray -> ndarray
        Applied to the eigenvalues (e.g. ``np.log``, ``np.sqrt``).
    symmetric : ndarray, shape (n, n)
        A real symmetric matrix (not checked: a non-symmetric input gives a
        wrong result, as in nilearn's ``_map_eigenvalues``).

    Returns
    -------
    ndarray, shape (n, n)
        ``V diag(function(w)) V.T`` where ``symmetric = V diag(w) V.T``
        (``scipy.linalg.eigh``).
    """
    eigenvalues, eigenvectors = linalg.eigh(symmetric)
    return _form_symmetric(function, eigenvalues, eigenvectors)


def tangent_space(covariances, max_iter=TANGENT_MAX_ITER, tol=TANGENT_TOL, info=None):
    """Tangent-space embedding of a group of covariance matrices.

    Parameters
    ----------
    covariances : array-like, shape (n_subjects, n, n), or sequence of (n, n)
        One symmetric positive definite covariance per subject, at least 2.
    max_iter : int, default=30
        Iterations of `geometric_mean` (ConnectivityMeasure's value).
    tol : positive float or None, default=1e-7
        Tolerance of `geometric_mean`.
    info : dict or None, default=None
        Filled by `geometric_mean` (iterations, convergence).

    Returns
    -------
    tangents : ndarray, shape (n_subjects, n, n), float64
        ``logm(W C_s W)`` per subject, in input order: what
        ``ConnectivityMeasure(kind="tangent").fit_transform`` returns.
    mean : ndarray, shape (n, n), float64
        The geometric mean ``G`` of the covariances (the measure's ``mean_``).
    whitening : ndarray, shape (n, n), float64
        ``W = G^{-1/2}`` (the measure's ``whitening_``).

    Raises
    ------
    ValueError
        Fewer than 2 subjects (a tangent embedding is a deviation from the
        group: nilearn's ``fit_transform`` refuses a single subject too), or
        any of the errors of `geometric_mean`.

    Warns
    -----
    UserWarning
        When the geometric mean does not reach `tol` in `max_iter` steps.

    Notes
    -----
    The reference point is the geometric mean of *all* the covariances
    given; subjects embedded together share one reference, and embeddings
    from different calls are not comparable.
    """
    matrices = _check_spd_stack(covariances, "covariances")
    if matrices.shape[0] < 2:
        raise ValueError(
            f"tangent space needs at least 2 subjects (it returns deviations from the "
            f"group mean), got {matrices.shape[0]}")
    mean = geometric_mean(matrices, max_iter=max_iter, tol=tol, info=info)
    whitening = map_eigenvalues(lambda x: 1.0 / np.sqrt(x), mean)
    tangents = np.array([map_eigenvalues(np.log, whitening.dot(cov).dot(whitening))
                         for cov in matrices])
    return tangents, mean, whitening


def tangent_connectivity(signals_list, estimator="ledoit_wolf", estimator_options=None,
                         max_iter=TANGENT_MAX_ITER, tol=TANGENT_TOL, info=None):
    """Tangent-space connectivity of a group of subjects' region signals.

    Parameters
    ----------
    signals_list : sequence of array-like, each (n_volumes_s, n_regions)
        One signal array per subject (time along the first axis), at least 2
        subjects; the number of volumes may differ, the regions may not.
    estimator : {"ledoit_wolf", "empirical", "graphical_lasso_cv"}, default="ledoit_wolf"
        Covariance estimator, as in
        `cohort_connectome.connectivity.estimate_connectivity`.
    estimator_options : dict or None, default=None
        Its options (``graphical_lasso_cv`` only).
    max_iter, tol, info
        Passed to `tangent_space`.

    Returns
    -------
    tangents : ndarray, shape (n_subjects, n_regions, n_regions)
    mean : ndarray, shape (n_regions, n_regions)
    whitening : ndarray, shape (n_regions, n_regions)
        As `tangent_space`.

    Raises
    ------
    ValueError
        Fewer than 2 subjects, subjects with different numbers of regions,
        bad signals or estimator (see ``estimate_connectivity``), a singular
        covariance (e.g. the empirical estimator with fewer volumes than
        regions).

    Notes
    -----
    This is nilearn 0.13.1's
    ``ConnectivityMeasure(cov_estimator=..., kind="tangent").fit_transform(signals_list)``
    (with ``mean_`` and ``whitening_``): for the tangent kind nilearn fits the
    covariance estimator on each subject's *raw* signals -- its
    ``standardize`` option only applies to the correlation kind -- and the
    default estimator is ``LedoitWolf(store_precision=False)``.  The
    covariances are the ``"covariance"`` kind of ``estimate_connectivity``,
    hence in float64 also for float32 signals (nilearn keeps LedoitWolf's
    covariance in float32 then).
    """
    if isinstance(signals_list, np.ndarray) and signals_list.ndim == 2:
        signals_list = [signals_list]
    try:
        signals_list = list(signals_list)
    except TypeError:
        raise ValueError(f"signals_list must be a sequence of 2D arrays, got "
                         f"{type(signals_list).__name__}") from None
    if len(signals_list) < 2:
        raise ValueError(
            f"tangent space needs at least 2 subjects (it returns deviations from the "
            f"group mean), got {len(signals_list)}")
    n_regions = [np.shape(s)[1] if np.ndim(s) == 2 else None for s in signals_list]
    for index, signals in enumerate(signals_list):
        if np.ndim(signals) != 2:
            raise ValueError(f"signals_list[{index}] must be 2D (n_volumes, n_regions), "
                             f"got shape {np.shape(signals)}")
    if len(set(n_regions)) > 1:
        raise ValueError(f"all subjects must have the same number of regions, got {n_regions}")
    covariances = []
    for index, signals in enumerate(signals_list):
        try:
            matrices, _ = estimate_connectivity(signals, kinds="covariance", estimator=estimator,
                                                estimator_options=estimator_options)
        except ValueError as exc:
            raise ValueError(f"signals_list[{index}]: {exc}") from exc
        covariances.append(matrices["covariance"])
    return tangent_space(covariances, max_iter=max_iter, tol=tol, info=info)


def sym_matrix_to_vec(symmetric, discard_diagonal=False):
    """Flattened lower triangle of symmetric matrices (nilearn's ``sym_matrix_to_vec``).

    Parameters
    ----------
    symmetric : array-like, shape (..., n, n)
        Symmetric matrices (acts on the last two axes).
    discard_diagonal : bool, default=False
        Leave the diagonal out.

    Returns
    -------
    ndarray, shape (..., n * (n + 1) / 2), or (..., n * (n - 1) / 2) without diagonal
        The lower triangle, row by row (``np.tril`` order; for a symmetric
        matrix, the upper triangle column by column).  A kept diagonal is
        divided by sqrt(2) so that the Euclidean norm of the vector is the
        Frobenius norm of the matrix divided by sqrt(2).

    Raises
    ------
    ValueError
        If the last two axes are not square.
    """
    symmetric = np.asarray(symmetric)
    if symmetric.ndim < 2 or symmetric.shape[-1] != symmetric.shape[-2]:
        raise ValueError(f"expected square matrices on the last two axes, got shape "
                         f"{symmetric.shape}")
    if discard_diagonal:
        tril_mask = np.tril(np.ones(symmetric.shape[-2:]), k=-1).astype(bool)
        return symmetric[..., tril_mask]
    scaling = np.ones(symmetric.shape[-2:])
    np.fill_diagonal(scaling, math.sqrt(2.0))
    tril_mask = np.tril(np.ones(symmetric.shape[-2:])).astype(bool)
    return symmetric[..., tril_mask] / scaling[tril_mask]


def vec_to_sym_matrix(vec, diagonal=None):
    """Symmetric matrices from their flattened lower triangle (inverse of `sym_matrix_to_vec`).

    Parameters
    ----------
    vec : array-like, shape (..., n * (n + 1) / 2), or (..., n * (n - 1) / 2) with `diagonal`
        Vectors as returned by `sym_matrix_to_vec`.
    diagonal : array-like, shape (..., n), or None, default=None
        The diagonal, when `vec` was made with ``discard_diagonal=True``.

    Returns
    -------
    ndarray, shape (..., n, n), float64
        The symmetric matrices.  As in nilearn, the diagonal is multiplied by
        sqrt(2) -- also a `diagonal` given separately -- so that
        ``vec_to_sym_matrix(sym_matrix_to_vec(m)) == m``.

    Raises
    ------
    ValueError
        If the vector length is not a triangular number (``n (n + 1) / 2``,
        or ``n (n - 1) / 2`` with `diagonal`), or `diagonal` does not match.
    """
    vec = np.asarray(vec)
    if vec.ndim < 1:
        raise ValueError("vec must have at least one dimension")
    length = vec.shape[-1]
    n_columns = (math.sqrt(8 * length + 1) - 1.0) / 2
    if diagonal is not None:
        n_columns += 1
    if n_columns > math.floor(n_columns):
        raise ValueError(f"vector of shape {vec.shape} cannot be transformed to a symmetric "
                         f"matrix: its length {length} is not a triangular number")
    n_columns = int(n_columns)
    first_shape = vec.shape[:-1]
    if diagonal is not None:
        diagonal = np.asarray(diagonal)
        if diagonal.shape[:-1] != first_shape or diagonal.shape[-1] != n_columns:
            raise ValueError(f"diagonal of shape {diagonal.shape} incompatible with vector of "
                             f"shape {vec.shape}")
    sym = np.zeros((*first_shape, n_columns, n_columns))
    skip_diagonal = diagonal is not None
    mask = np.tril(np.ones((n_columns, n_columns)), k=-skip_diagonal).astype(bool)
    sym[..., mask] = vec
    sym.swapaxes(-1, -2)[..., mask] = vec
    mask.fill(False)
    np.fill_diagonal(mask, True)
    if diagonal is not None:
        sym[..., mask] = diagonal
    sym[..., mask] *= math.sqrt(2)
    return sym


# --------------------------------------------------------------------------
# helpers

def _form_symmetric(function, eigenvalues, eigenvectors):
    return np.dot(eigenvectors * function(eigenvalues), eigenvectors.T)


def _as_float_array(value, name):
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged sequences
        raise ValueError(f"{name} must be an array of matrices of one shape ({exc})") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be real numbers, got dtype {array.dtype}")
    return array.astype(np.float64)


def _check_spd_stack(covariances, name):
    """(n_matrices, n, n) float64 stack of SPD matrices, or a ValueError."""
    if isinstance(covariances, np.ndarray):
        stack = covariances
    else:
        try:
            items = list(covariances)
        except TypeError:
            raise ValueError(f"{name} must be a sequence of square matrices, got "
                             f"{type(covariances).__name__}") from None
        if not items:
            raise ValueError(f"{name} is empty: need at least one matrix")
        shapes = [np.shape(m) for m in items]
        for index, shape in enumerate(shapes):
            if len(shape) != 2 or shape[0] != shape[1]:
                raise ValueError(f"{name}[{index}] must be a square 2D matrix, got shape {shape}")
            if shape != shapes[0]:
                raise ValueError(f"{name} are not all of one shape: {name}[0] is {shapes[0]}, "
                                 f"{name}[{index}] is {shape}")
        stack = items
    stack = _as_float_array(stack, name)
    if stack.ndim != 3 or stack.shape[1] != stack.shape[2]:
        raise ValueError(f"{name} must have shape (n_matrices, n, n), got {stack.shape}")
    if stack.shape[0] == 0:
        raise ValueError(f"{name} is empty: need at least one matrix")
    for index, matrix in enumerate(stack):
        _check_spd(matrix, f"{name}[{index}]")
    return stack


def _check_spd(matrix, name):
    """nilearn's ``is_spd(matrix, decimal=7)``, as a ValueError naming the matrix."""
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} contains non-finite values")
    if not np.allclose(matrix, matrix.T, atol=0, rtol=_SYMMETRY_RTOL):
        asym = np.max(np.abs(matrix - matrix.T))
        raise ValueError(f"{name} is not symmetric positive definite: not symmetric "
                         f"(max |M - M.T| = {asym:.3g}, relative tolerance {_SYMMETRY_RTOL:g})")
    smallest = np.linalg.eigvalsh(matrix).min()
    if not smallest > 0:
        raise ValueError(f"{name} is not symmetric positive definite: smallest eigenvalue "
                         f"{smallest:.3g}")


def _check_max_iter(max_iter):
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    return int(max_iter)


def _check_tol(tol):
    if tol is None:
        return None
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol > 0:
        raise ValueError(f"tol must be a positive float or None, got {tol!r}")
    return float(tol)
