"""cohort_connectome.group_sparse against nilearn 0.13.1's group_sparse_cov.

Parity data:

- ``synthetic``: 5 subjects x 12 regions, 60 to 120 samples each, drawn from
  precisions sharing one sparse support (nilearn's
  ``generate_group_sparse_gaussian_graphs``, seed 0), as is (variances of a
  few units) and z-scored;
- ``real``: the real HCP parcel series (CIFTI-2 ptseries, 1200 x 419) cut in
  4 "subjects" of 300 volumes, first 30 parcels (first 15 for the
  cross-validation), in scanner units and z-scored.

Precisions are compared per subject: max|ours - nilearn| / max|nilearn| of
each ``precisions_[..., k]``, required below 1e-4.
"""

import ast
import inspect
import warnings

import numpy as np
import pytest

from conftest import relative_error
from sklearn.utils.estimator_checks import parametrize_with_checks

from cohort_connectome import group_sparse as gs
from cohort_connectome.group_sparse import (
    GroupSparseCovariance,
    GroupSparseCovarianceCV,
    compute_alpha_max,
    empirical_covariances,
    group_sparse_covariance,
    group_sparse_covariance_path,
    group_sparse_scores,
)

TOLERANCE = 1e-4

pytestmark = [
    # nilearn and we warn alike on non-standardized signals and on max_iter
    pytest.mark.filterwarnings("ignore:Input signals do not all have unit variance"),
    pytest.mark.filterwarnings("ignore:Maximum number of iterations reached"),
]


def per_subject_error(ours, reference):
    """The largest relative error over subjects (last axis)."""
    assert ours.shape == reference.shape
    return max(relative_error(ours[..., k], reference[..., k])
               for k in range(reference.shape[-1]))


def zscore(signals):
    return [(s - s.mean(axis=0)) / s.std(axis=0) for s in signals]


# small matrices: BLAS threads only add overhead (see conftest.single_threaded_blas)
pytestmark.append(pytest.mark.usefixtures("single_threaded_blas"))


# --------------------------------------------------------------------------
# data


@pytest.fixture(scope="module")
def synthetic():
    from nilearn._utils.data_gen import generate_group_sparse_gaussian_graphs

    signals, precisions, topology = generate_group_sparse_gaussian_graphs(
        n_subjects=5, n_features=12, min_n_samples=60, max_n_samples=120,
        density=0.2, random_state=0)
    return {"raw": signals, "zscore": zscore(signals), "topology": topology}


@pytest.fixture(scope="module")
def cv_signals():
    """5 subjects x 10 regions x 100 samples, z-scored."""
    from nilearn._utils.data_gen import generate_group_sparse_gaussian_graphs

    signals, _, _ = generate_group_sparse_gaussian_graphs(
        n_subjects=5, n_features=10, min_n_samples=100, max_n_samples=101,
        density=0.2, random_state=1)
    return zscore(signals)


@pytest.fixture(scope="module")
def real_chunks(hcp_series):
    chunks = [np.ascontiguousarray(hcp_series[300 * i: 300 * (i + 1), :30]) for i in range(4)]
    return {"raw": chunks, "zscore": zscore(chunks)}


def _alpha(signals, fraction):
    covs, n_samples = empirical_covariances(signals)
    return fraction * float(compute_alpha_max(covs, n_samples)[0])


# --------------------------------------------------------------------------
# building blocks


@pytest.mark.parametrize("assume_centered, standardize",
                         [(False, False), (True, False), (False, True)])
def test_empirical_covariances(synthetic, assume_centered, standardize):
    from nilearn.connectome.group_sparse_cov import empirical_covariances as ref

    ours, n_ours = empirical_covariances(synthetic["raw"], assume_centered, standardize)
    theirs, n_theirs = ref(synthetic["raw"], assume_centered, standardize)
    assert ours.shape == (12, 12, 5) and ours.flags.f_contiguous
    assert relative_error(ours, theirs) < 1e-14
    np.testing.assert_array_equal(n_ours, n_theirs)
    np.testing.assert_array_equal(ours, np.swapaxes(ours, 0, 1))


def test_compute_alpha_max(synthetic):
    from nilearn.connectome.group_sparse_cov import compute_alpha_max as ref

    covs, n_samples = empirical_covariances(synthetic["zscore"])
    np.testing.assert_allclose(compute_alpha_max(covs, n_samples),
                               ref(covs, n_samples), rtol=1e-14)


def test_alpha_max_bounds_the_sparsity(synthetic):
    """Above alpha_max the precisions are diagonal; just below, they are not."""
    signals = synthetic["zscore"]
    alpha_max = _alpha(signals, 1.0)
    off_diagonal = ~np.eye(12, dtype=bool)
    above = GroupSparseCovariance(alpha=1.01 * alpha_max).fit(signals).precisions_
    assert not above[off_diagonal].any()
    below = GroupSparseCovariance(alpha=0.9 * alpha_max).fit(signals).precisions_
    assert below[off_diagonal].any()


def test_group_sparse_scores(synthetic):
    from nilearn.connectome.group_sparse_cov import group_sparse_scores as ref

    signals = synthetic["zscore"]
    alpha = _alpha(signals, 0.2)
    fitted = GroupSparseCovariance(alpha=alpha).fit(signals)
    covs = fitted.covariances_
    n_samples = np.array([s.shape[0] for s in signals], dtype=float)
    n_samples /= n_samples.sum()
    ours = group_sparse_scores(fitted.precisions_, n_samples, covs, alpha,
                               duality_gap=True)
    theirs = ref(fitted.precisions_, n_samples, covs, alpha, duality_gap=True)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    assert ours[2] >= 0  # a duality gap


# --------------------------------------------------------------------------
# parity of the solver


@pytest.mark.parametrize("data", ["raw", "zscore"])
@pytest.mark.parametrize("fraction", [0.05, 0.3])
def test_precisions_match_nilearn(synthetic, data, fraction):
    from nilearn.connectome import GroupSparseCovariance as Reference

    signals = synthetic[data]
    alpha = _alpha(signals, fraction)
    ours = GroupSparseCovariance(alpha=alpha).fit(signals)
    theirs = Reference(alpha=alpha).fit(signals)
    assert relative_error(ours.covariances_, theirs.covariances_) < 1e-14
    assert per_subject_error(ours.precisions_, theirs.precisions_) < TOLERANCE
    assert ours.n_features_in_ == 12


def test_function_and_probe_match_nilearn(synthetic):
    """group_sparse_covariance: same precisions, same probe calls (iterations)."""
    from nilearn.connectome import group_sparse_covariance as reference

    signals = synthetic["zscore"]
    alpha = _alpha(signals, 0.1)

    def recorder(calls):
        def probe(emp_covs, n_samples, alpha, max_iter, tol, n, omega, omega_old):
            calls.append((n, omega.copy(), None if omega_old is None else omega_old.copy(),
                          n_samples.copy()))
        return probe

    ours_calls, their_calls = [], []
    covs, ours = group_sparse_covariance(signals, alpha, max_iter=30, tol=1e-5,
                                         probe_function=recorder(ours_calls))
    _, theirs = reference(signals, alpha, max_iter=30, tol=1e-5,
                          probe_function=recorder(their_calls))
    assert per_subject_error(ours, theirs) < TOLERANCE
    assert [c[0] for c in ours_calls] == [c[0] for c in their_calls]
    assert len(ours_calls) > 2 and ours_calls[0][2] is None
    for (_, o, o_old, w), (_, t, t_old, w_ref) in zip(ours_calls, their_calls):
        assert o.shape == (12, 12, 5)
        assert per_subject_error(o, t) < TOLERANCE
        np.testing.assert_allclose(w, w_ref, rtol=1e-15)
        assert abs(w.sum() - 1) < 1e-12


def test_path_matches_nilearn(synthetic):
    from nilearn.connectome.group_sparse_cov import group_sparse_covariance_path as ref

    signals = synthetic["raw"]
    train = [s[: len(s) // 2] for s in signals]
    test = [s[len(s) // 2:] for s in signals]
    alphas = [_alpha(zscore(train), f) for f in (0.5, 0.2, 0.05)]
    ours, ours_scores = group_sparse_covariance_path(train, alphas, test_subjs=test)
    theirs, their_scores = ref(train, alphas, test_subjs=test)
    for o, t in zip(ours, theirs, strict=True):
        assert per_subject_error(o, t) < TOLERANCE
    np.testing.assert_allclose(ours_scores, their_scores, rtol=1e-8)
    assert len(group_sparse_covariance_path(train, alphas)) == 3


def test_alpha_zero_matches_nilearn(synthetic):
    """alpha = 0: nilearn's Newton search diverges (and warns); so do we."""
    from nilearn.connectome import group_sparse_covariance as reference

    signals = [s[:, :6] for s in synthetic["zscore"]]
    with pytest.warns(UserWarning, match="Newton-Raphson step did not converge"):
        _, ours = group_sparse_covariance(signals, 0.0, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, theirs = reference(signals, 0.0, max_iter=2)
    assert per_subject_error(ours, theirs) < TOLERANCE


def test_shared_support(synthetic):
    """All subjects' precisions are zero at the same places, and symmetric."""
    signals = synthetic["zscore"]
    precisions = GroupSparseCovariance(alpha=_alpha(signals, 0.3), max_iter=50,
                                       tol=1e-5).fit(signals).precisions_
    support = precisions != 0
    off_diagonal = ~np.eye(12, dtype=bool)
    assert (support == support[..., :1]).all()
    assert support[off_diagonal].any() and not support[off_diagonal].all()
    assert support[~off_diagonal].all()
    np.testing.assert_array_equal(precisions, np.swapaxes(precisions, 0, 1))
    assert all(np.linalg.eigvalsh(precisions[..., k]).min() > 0 for k in range(5))


def test_deterministic(synthetic):
    signals = synthetic["zscore"]
    alpha = _alpha(signals, 0.1)
    first = GroupSparseCovariance(alpha=alpha).fit(signals).precisions_
    second = GroupSparseCovariance(alpha=alpha).fit([s.copy() for s in signals]).precisions_
    np.testing.assert_array_equal(first, second)


# --------------------------------------------------------------------------
# cross-validation


def _cv_cases(signals):
    from sklearn.model_selection import KFold

    alphas = [_alpha(signals, f) for f in (0.6, 0.3, 0.1, 0.03)]
    return {
        "grid": dict(n_refinements=2),
        "list-no-early-stop": dict(alphas=alphas, cv=3, early_stopping=False),
        "splitter": dict(alphas=3, n_refinements=1,
                         cv=KFold(4, shuffle=True, random_state=0)),
        "iterable": dict(alphas=3, n_refinements=2,
                         cv=[(np.arange(0, 70), np.arange(70, 100)),
                             (np.arange(30, 100), np.arange(0, 30))]),
    }


@pytest.mark.parametrize("case", ["grid", "list-no-early-stop", "splitter", "iterable"])
def test_cv_matches_nilearn(cv_signals, case):
    from nilearn.connectome import GroupSparseCovarianceCV as Reference

    params = _cv_cases(cv_signals)[case]
    ours = GroupSparseCovarianceCV(**params).fit(cv_signals)
    theirs = Reference(**params).fit(cv_signals)
    assert ours.alpha_ == pytest.approx(theirs.alpha_, rel=1e-12)
    np.testing.assert_allclose(ours.cv_alphas_, theirs.cv_alphas_, rtol=1e-12)
    np.testing.assert_allclose(ours.cv_scores_, theirs.cv_scores_, rtol=1e-6)
    assert relative_error(ours.covariances_, theirs.covariances_) < 1e-14
    assert per_subject_error(ours.precisions_, theirs.precisions_) < TOLERANCE


def test_cv_deterministic(cv_signals):
    first = GroupSparseCovarianceCV(n_refinements=1).fit(cv_signals)
    second = GroupSparseCovarianceCV(n_refinements=1).fit(cv_signals)
    assert first.alpha_ == second.alpha_
    np.testing.assert_array_equal(first.precisions_, second.precisions_)
    np.testing.assert_array_equal(first.cv_scores_, second.cv_scores_)


# --------------------------------------------------------------------------
# the real HCP series


@pytest.mark.parametrize("data, fraction", [("raw", 0.05), ("zscore", 0.05),
                                            ("zscore", 0.3)])
def test_real_precisions_match_nilearn(real_chunks, data, fraction):
    from nilearn.connectome import GroupSparseCovariance as Reference

    signals = real_chunks[data]
    alpha = _alpha(signals, fraction)
    ours = GroupSparseCovariance(alpha=alpha).fit(signals)
    theirs = Reference(alpha=alpha).fit(signals)
    assert per_subject_error(ours.precisions_, theirs.precisions_) < TOLERANCE


def test_real_cv_matches_nilearn(real_chunks):
    from nilearn.connectome import GroupSparseCovarianceCV as Reference

    signals = [s[:, :15] for s in real_chunks["zscore"]]
    ours = GroupSparseCovarianceCV(n_refinements=2).fit(signals)
    theirs = Reference(n_refinements=2).fit(signals)
    assert ours.alpha_ == pytest.approx(theirs.alpha_, rel=1e-12)
    assert per_subject_error(ours.precisions_, theirs.precisions_) < TOLERANCE


# --------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("fit", [
    lambda s: GroupSparseCovariance().fit(s),
    lambda s: GroupSparseCovarianceCV().fit(s),
    lambda s: group_sparse_covariance(s, 0.1),
])
def test_bad_subjects(fit):
    """check_array's errors, naming the subject; our own for the list itself."""
    from scipy import sparse

    rng = np.random.default_rng(0)
    good = rng.standard_normal((20, 4))
    with pytest.raises(ValueError, match=r"(?s)same number of features.*\[4, 5\]"):
        fit([good, rng.standard_normal((20, 5))])
    with pytest.raises(ValueError, match=r"subject 1: .*1 sample\(s\).*minimum of 2"):
        fit([good, good[:1]])
    with pytest.raises(ValueError, match=r"subject 0: .*1 feature\(s\).*minimum of 2"):
        fit([good[:, :1]])
    with pytest.raises(ValueError, match="subject 1: Expected 2D array, got 1D array"):
        fit([good, good[:, 0]])
    nan = good.copy()
    nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="subject 1: Input contains NaN"):
        fit([good, nan])
    with pytest.raises(TypeError, match="subject 0: Sparse data was passed"):
        fit(sparse.csr_matrix(good))
    with pytest.raises(TypeError, match="must be a list of 2D numpy arrays"):
        fit({"a": good})
    with pytest.raises(ValueError, match="'subjects' is empty"):
        fit([])


def test_subject_dtypes(synthetic):
    """float32 signals are kept; integer and object ones become float64."""
    signals = synthetic["zscore"]
    alpha = _alpha(signals, 0.3)
    reference = GroupSparseCovariance(alpha=alpha).fit(signals).precisions_
    as_object = GroupSparseCovariance(alpha=alpha).fit([s.astype(object) for s in signals])
    np.testing.assert_array_equal(as_object.precisions_, reference)
    ints = [np.round(100 * s).astype(np.int32) for s in signals]
    np.testing.assert_array_equal(
        GroupSparseCovariance(alpha=alpha).fit(ints).precisions_,
        GroupSparseCovariance(alpha=alpha).fit([s.astype(np.float64) for s in ints]).precisions_)
    single = [s.astype(np.float32) for s in signals]
    assert per_subject_error(GroupSparseCovariance(alpha=alpha).fit(single).precisions_,
                             reference) < 1e-5


def test_negative_alpha(synthetic):
    signals = synthetic["zscore"]
    for alpha in (-0.1, "0.1", None):
        with pytest.raises(ValueError, match="alpha must be a positive number"):
            GroupSparseCovariance(alpha=alpha).fit(signals)
        with pytest.raises(ValueError, match="alpha must be a positive number"):
            group_sparse_covariance(signals, alpha)
    with pytest.raises(ValueError, match="alpha must be a positive number"):
        GroupSparseCovarianceCV(alphas=[0.1, -0.1]).fit(signals)


def test_bad_cv_parameters(cv_signals):
    with pytest.raises(ValueError, match="'n_refinements' must be a positive integer"):
        GroupSparseCovarianceCV(n_refinements=0).fit(cv_signals)
    with pytest.raises(ValueError, match="'alphas' must be an integer >= 2"):
        GroupSparseCovarianceCV(alphas=1).fit(cv_signals)


# --------------------------------------------------------------------------
# estimator API


def _expected_failed_checks(estimator):
    """scikit-learn checks our estimators fail, and why (a subset of nilearn's).

    nilearn 0.13.1 (``nilearn/_utils/estimator_checks.py``,
    ``return_expected_failed_checks``) declares for both estimators
    ``check_estimator_sparse_array``, ``check_estimator_sparse_matrix`` and
    ``check_estimator_sparse_tag`` (its ``fit`` rejects a sparse matrix with
    a TypeError that does not say "sparse"), and for the CV
    ``check_dtype_object`` and ``check_estimators_dtypes``.  Ours pass the
    sparse checks (``check_array(accept_sparse=False)`` says so) and
    ``check_dtype_object`` (the validated float64 copy is used); the one
    that remains is a property of the data, see
    `test_cv_integer_signals_have_no_score`.
    """
    if isinstance(estimator, GroupSparseCovarianceCV):
        return {
            "check_estimators_dtypes": (
                "its integer signals (20 samples of 3 levels) have columns "
                "constant within a 4-sample test fold: every cross-validated "
                "score is NaN and fit raises (nilearn: UnboundLocalError)"
            ),
        }
    return {}


@parametrize_with_checks([GroupSparseCovariance(), GroupSparseCovarianceCV()],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_cv_integer_signals_have_no_score():
    """The data of check_estimators_dtypes: no finite score, for nilearn too."""
    from nilearn.connectome import GroupSparseCovarianceCV as Reference

    x = (3 * np.random.RandomState(0).uniform(size=(20, 5))).astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0 / 0 in the standardization
        with pytest.raises(RuntimeError, match="all scores are NaN"):
            GroupSparseCovarianceCV().fit(x)
        with pytest.raises(UnboundLocalError, match="best_index"):
            Reference().fit(x)
        # the same signals as floats have a score: only their levels matter
        assert GroupSparseCovarianceCV().fit(x + 0.01 * np.arange(20)[:, None]).alpha_ > 0


def test_defaults_are_nilearn_defaults():
    """Same parameters and defaults as nilearn's, less n_jobs and memory."""
    from nilearn.connectome import GroupSparseCovariance as RefG
    from nilearn.connectome import GroupSparseCovarianceCV as RefCV

    for ours, theirs, missing in (
            (GroupSparseCovariance(), RefG(), {"memory", "memory_level"}),
            (GroupSparseCovarianceCV(), RefCV(), {"n_jobs"})):
        reference = theirs.get_params()
        assert set(reference) - set(ours.get_params()) == missing
        assert ours.get_params() == {k: v for k, v in reference.items() if k not in missing}


def test_docstrings():
    """numpy-style docstrings everywhere public; none says 'from nilearn' at a line start."""
    tree = ast.parse(inspect.getsource(gs))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node) or ""
            for line in doc.splitlines():
                assert not line.strip().lower().startswith("from nilearn"), line
    for name in gs.__all__:
        assert getattr(gs, name).__doc__, name
