"""cohort_connectome.tangent against nilearn 0.13.1's ConnectivityMeasure(kind="tangent").

Parity data:

- ``synthetic``: 8 subjects x 150 volumes x 30 regions, each subject a random
  mixing of white noise around a shared mixing matrix, plus baselines (fixed
  seed);
- ``real``: 5 "subjects" cut from the real HCP parcel series (CIFTI-2
  ptseries, 1200 x 419): consecutive chunks of 240 volumes of the first 60
  parcels.

Parity is bit-identity for float64 signals (the same scikit-learn estimator and
the same ``scipy.linalg.eigh`` calls as nilearn); for float32 signals, where
nilearn keeps LedoitWolf's covariances in float32, ``relative_error`` of
conftest, max|ours - nilearn| / max|nilearn|.
"""

import ast
import warnings

import numpy as np
import pytest

from conftest import REPO_ROOT, relative_error

from cohort_connectome import tangent
from cohort_connectome.tangent import (
    geometric_mean,
    map_eigenvalues,
    sym_matrix_to_vec,
    tangent_connectivity,
    tangent_space,
    vec_to_sym_matrix,
)

N_SUBJECTS, N_VOLUMES, N_REGIONS = 8, 150, 30
REAL_CHUNKS, REAL_CHUNK_VOLUMES, REAL_PARCELS = 5, 240, 60


# small matrices: BLAS threads only add overhead (see conftest.single_threaded_blas)
pytestmark = pytest.mark.usefixtures("single_threaded_blas")


# --------------------------------------------------------------------------
# data

@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(42)
    shared = rng.standard_normal((N_REGIONS, N_REGIONS)) / np.sqrt(N_REGIONS)
    subjects = []
    for _ in range(N_SUBJECTS):
        mixing = np.eye(N_REGIONS) + shared + 0.3 * rng.standard_normal((N_REGIONS, N_REGIONS)) \
            / np.sqrt(N_REGIONS)
        signals = rng.standard_normal((N_VOLUMES, N_REGIONS)) @ mixing
        subjects.append(signals * rng.uniform(0.5, 2.0) + rng.uniform(50, 150, N_REGIONS))
    return subjects


@pytest.fixture(scope="module")
def real_subjects(hcp_series):
    return [np.ascontiguousarray(hcp_series[k * REAL_CHUNK_VOLUMES:(k + 1) * REAL_CHUNK_VOLUMES,
                                        :REAL_PARCELS])
            for k in range(REAL_CHUNKS)]


def _spd(n, rng, n_matrices=1, condition=1.0):
    out = []
    for _ in range(n_matrices):
        a = rng.standard_normal((n, 2 * n))
        out.append(a @ a.T / (2 * n) + condition * np.eye(n))
    return np.array(out)


def _nilearn_tangent(subjects, cov_estimator=None):
    from nilearn.connectome import ConnectivityMeasure

    measure = ConnectivityMeasure(cov_estimator=cov_estimator, kind="tangent")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nilearn must converge too: same path
        tangents = measure.fit_transform([s.copy() for s in subjects])
    return tangents, measure.mean_, measure.whitening_


def _check_parity(ours, reference):
    """(tangents, mean, whitening) bit-identical to nilearn's."""
    assert len(ours) == len(reference)
    for o, r in zip(ours, reference):
        np.testing.assert_array_equal(o, r, strict=True)


# --------------------------------------------------------------------------
# parity with nilearn

def test_synthetic_matches_nilearn(synthetic):
    """``ConnectivityMeasure(kind="tangent").fit_transform(subjects)``, ``mean_``,
    ``whitening_`` (default LedoitWolf(store_precision=False), raw signals)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = tangent_connectivity(synthetic)
    assert ours[0].shape == (N_SUBJECTS, N_REGIONS, N_REGIONS)
    assert all(a.dtype == np.float64 for a in ours)
    _check_parity(ours, _nilearn_tangent(synthetic))


def test_real_matches_nilearn(real_subjects):
    ours = tangent_connectivity(real_subjects)
    assert ours[0].shape == (REAL_CHUNKS, REAL_PARCELS, REAL_PARCELS)
    _check_parity(ours, _nilearn_tangent(real_subjects))


def test_real_float32_close_to_nilearn(real_subjects):
    """float32 signals: nilearn keeps LedoitWolf's covariances in float32, we
    compute in float64; the tangent matrices differ by ~4e-5 (relative)."""
    subjects = [s.astype(np.float32) for s in real_subjects]
    ours = tangent_connectivity(subjects)
    reference = _nilearn_tangent(subjects)
    assert ours[0].dtype == np.float64
    errors = [relative_error(o, r) for o, r in zip(ours, reference)]
    assert max(errors) < 1e-4, errors


def test_empirical_estimator_matches_nilearn(synthetic):
    from sklearn.covariance import EmpiricalCovariance

    ours = tangent_connectivity(synthetic[:4], estimator="empirical")
    _check_parity(ours, _nilearn_tangent(synthetic[:4], EmpiricalCovariance()))


def test_tangent_space_of_covariances_matches_nilearn(synthetic):
    """tangent_space on given covariances = what the measure does after its fit."""
    from sklearn.covariance import LedoitWolf

    covariances = np.array([LedoitWolf(store_precision=False).fit(s).covariance_
                            for s in synthetic])
    _check_parity(tangent_space(covariances), _nilearn_tangent(synthetic))
    # a list of matrices works the same
    _check_parity(tangent_space(list(covariances)), _nilearn_tangent(synthetic))


@pytest.mark.parametrize("kwargs", [{}, {"max_iter": 3, "tol": None}, {"init": "first"}])
def test_geometric_mean_matches_nilearn(kwargs):
    from nilearn.connectome.connectivity_matrices import _geometric_mean

    rng = np.random.default_rng(1)
    matrices = _spd(12, rng, n_matrices=6, condition=0.1)
    if kwargs.get("init") == "first":
        kwargs = {"init": matrices[0], "max_iter": 30}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = geometric_mean(matrices, **kwargs)
        reference = _geometric_mean(list(matrices), **kwargs)
    np.testing.assert_array_equal(ours, reference, strict=True)


def test_geometric_mean_warns_as_nilearn():
    """Not converged in max_iter steps: both warn, with the same message."""
    from nilearn.connectome.connectivity_matrices import _geometric_mean

    rng = np.random.default_rng(2)
    matrices = _spd(8, rng, n_matrices=5, condition=0.01)
    with pytest.warns(UserWarning, match="Maximum number of iterations 1 reached") as ours_w:
        ours = geometric_mean(matrices, max_iter=1, tol=1e-12)
    with pytest.warns(UserWarning) as theirs_w:
        reference = _geometric_mean(list(matrices), max_iter=1, tol=1e-12)
    assert str(ours_w[0].message) == str(theirs_w[-1].message)
    np.testing.assert_array_equal(ours, reference, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        geometric_mean(matrices, max_iter=1, tol=None)  # no tolerance: no warning


def test_vectorization_matches_nilearn():
    from nilearn.connectome import sym_matrix_to_vec as nl_to_vec
    from nilearn.connectome import vec_to_sym_matrix as nl_to_sym

    rng = np.random.default_rng(3)
    m = rng.standard_normal((3, 2, 5, 5))
    m = m + np.swapaxes(m, -1, -2)
    for discard in (False, True):
        np.testing.assert_array_equal(sym_matrix_to_vec(m, discard_diagonal=discard),
                                      nl_to_vec(m, discard_diagonal=discard))
    vec = sym_matrix_to_vec(m)
    assert vec.shape == (3, 2, 15)
    np.testing.assert_array_equal(vec_to_sym_matrix(vec), nl_to_sym(vec))
    np.testing.assert_allclose(vec_to_sym_matrix(vec), m, rtol=1e-15, atol=1e-15)
    off = sym_matrix_to_vec(m, discard_diagonal=True)
    diagonal = np.diagonal(m, axis1=-2, axis2=-1) / np.sqrt(2)
    np.testing.assert_array_equal(vec_to_sym_matrix(off, diagonal=diagonal),
                                  nl_to_sym(off, diagonal=diagonal))
    np.testing.assert_allclose(vec_to_sym_matrix(off, diagonal=diagonal), m, atol=1e-15)
    # norm conservation (up to 1/sqrt(2))
    np.testing.assert_allclose(np.linalg.norm(vec[0, 0]),
                               np.linalg.norm(m[0, 0]) / np.sqrt(2))


# --------------------------------------------------------------------------
# properties

def test_geometric_mean_properties():
    rng = np.random.default_rng(4)
    # commuting (diagonal) matrices: the element-wise geometric mean
    diagonals = rng.uniform(0.5, 3.0, (5, 4))
    expected = np.diag(np.exp(np.log(diagonals).mean(axis=0)))
    np.testing.assert_allclose(geometric_mean([np.diag(d) for d in diagonals], max_iter=30),
                               expected, rtol=1e-10)
    # 1x1: the usual geometric mean of positive numbers
    np.testing.assert_allclose(geometric_mean([[[2.0]], [[8.0]]]), [[4.0]])
    # one matrix is its own mean
    single = _spd(6, rng)[0]
    np.testing.assert_allclose(geometric_mean([single]), single, rtol=1e-12)
    # congruence invariance: gmean(A M A.T) = A gmean(M) A.T
    matrices = _spd(6, rng, n_matrices=4)
    a = rng.standard_normal((6, 6)) + 3 * np.eye(6)
    moved = np.array([a @ m @ a.T for m in matrices])
    np.testing.assert_allclose(geometric_mean(moved, max_iter=50),
                               a @ geometric_mean(matrices, max_iter=50) @ a.T, rtol=1e-6)


def test_tangent_space_inverts_to_covariances():
    """C_s = G^{1/2} expm(T_s) G^{1/2} (nilearn's inverse_transform); the
    tangent vectors average to ~0 at the geometric mean."""
    rng = np.random.default_rng(5)
    covariances = _spd(7, rng, n_matrices=6, condition=0.2)
    tangents, mean, whitening = tangent_space(covariances)
    np.testing.assert_allclose(whitening @ mean @ whitening, np.eye(7), atol=1e-10)
    mean_sqrt = map_eigenvalues(np.sqrt, mean)
    rebuilt = np.array([mean_sqrt @ map_eigenvalues(np.exp, t) @ mean_sqrt for t in tangents])
    np.testing.assert_allclose(rebuilt, covariances, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tangents, np.swapaxes(tangents, 1, 2), atol=1e-12)
    assert np.abs(tangents.mean(axis=0)).max() < 1e-5 * np.abs(tangents).max()


def test_no_docstring_line_starts_with_from_nilearn():
    for module in ("tangent", "comparison"):
        tree = ast.parse((REPO_ROOT / "cohort_connectome" / f"{module}.py").read_text())
        nodes = [tree] + [n for n in ast.walk(tree)
                          if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        for node in nodes:
            for line in (ast.get_docstring(node) or "").splitlines():
                assert not line.strip().lower().startswith("from nilearn"), (module, line)


# --------------------------------------------------------------------------
# errors

def test_non_spd_inputs_raise():
    rng = np.random.default_rng(6)
    good = _spd(4, rng, n_matrices=3)
    negative = good.copy()
    negative[1] = -np.eye(4)
    with pytest.raises(ValueError, match=r"covariances\[1\] is not symmetric positive "
                                         r"definite: smallest eigenvalue -1"):
        geometric_mean(negative)
    asymmetric = good.copy()
    asymmetric[2, 0, 1] += 0.5
    with pytest.raises(ValueError, match=r"covariances\[2\] .* not symmetric"):
        tangent_space(asymmetric)
    singular = good.copy()
    singular[0] = np.diag([1.0, 1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="smallest eigenvalue 0"):
        tangent_space(singular)
    with pytest.raises(ValueError, match="non-finite"):
        geometric_mean(np.full((2, 3, 3), np.nan))
    # nilearn rejects the same matrices
    from nilearn.connectome.connectivity_matrices import _geometric_mean

    for bad in (negative, asymmetric, singular):
        with pytest.raises(ValueError, match="symmetric positive definite"):
            _geometric_mean(list(bad))


def test_shape_errors():
    rng = np.random.default_rng(7)
    a, b = _spd(3, rng)[0], _spd(4, rng)[0]
    with pytest.raises(ValueError, match=r"not all of one shape: covariances\[0\] is \(3, 3\), "
                                         r"covariances\[1\] is \(4, 4\)"):
        geometric_mean([a, b])
    with pytest.raises(ValueError, match=r"covariances\[0\] must be a square 2D matrix"):
        geometric_mean([np.ones((2, 3))])
    with pytest.raises(ValueError, match=r"shape \(n_matrices, n, n\)"):
        tangent_space(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="empty"):
        geometric_mean([])
    with pytest.raises(ValueError, match=r"init has shape \(4, 4\)"):
        geometric_mean([a, a], init=b)
    with pytest.raises(ValueError, match="init is not symmetric positive definite"):
        geometric_mean([a, a], init=-a)
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1"):
        geometric_mean([a], max_iter=0)
    with pytest.raises(ValueError, match="tol must be a positive float or None"):
        geometric_mean([a], tol=-1.0)
    with pytest.raises(ValueError, match="not a triangular number"):
        vec_to_sym_matrix(np.ones(4))
    with pytest.raises(ValueError, match="diagonal of shape"):
        vec_to_sym_matrix(np.ones(3), diagonal=np.ones(2))
    with pytest.raises(ValueError, match="square matrices"):
        sym_matrix_to_vec(np.ones((2, 3)))


def test_single_subject_is_refused_as_nilearn(synthetic):
    """A tangent embedding is a deviation from the group: nilearn's
    fit_transform refuses one subject, and so do we."""
    from nilearn.connectome import ConnectivityMeasure

    with pytest.raises(ValueError, match="can only be applied to a group of subjects"):
        ConnectivityMeasure(kind="tangent").fit_transform([synthetic[0]])
    with pytest.raises(ValueError, match=r"tangent space needs at least 2 subjects .*, got 1"):
        tangent_connectivity([synthetic[0]])
    with pytest.raises(ValueError, match=r"tangent space needs at least 2 subjects .*, got 1"):
        tangent_connectivity(synthetic[0])  # a bare 2D array is one subject
    with pytest.raises(ValueError, match=r"tangent space needs at least 2 subjects .*, got 1"):
        tangent_space(np.eye(3)[None])


def test_signal_errors(synthetic):
    with pytest.raises(ValueError, match=r"same number of regions, got \[30, 20\]"):
        tangent_connectivity([synthetic[0], synthetic[1][:, :20]])
    with pytest.raises(ValueError, match=r"signals_list\[1\] must be 2D"):
        tangent_connectivity([synthetic[0], synthetic[1][:, 0]])
    bad = synthetic[1].copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match=r"signals_list\[1\]: signals contain 1 non-finite"):
        tangent_connectivity([synthetic[0], bad])
    with pytest.raises(ValueError, match="unknown covariance estimator"):
        tangent_connectivity(synthetic[:2], estimator="oas")
    # empirical covariance of fewer volumes than regions is singular
    with pytest.raises(ValueError, match="not symmetric positive definite"):
        tangent_connectivity([s[:10] for s in synthetic[:2]], estimator="empirical")


def test_module_constants_are_connectivity_measure_values():
    assert (tangent.TANGENT_MAX_ITER, tangent.TANGENT_TOL) == (30, 1e-7)
