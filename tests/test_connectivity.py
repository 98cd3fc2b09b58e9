"""cohort_connectome.connectivity against nilearn 0.13.1's ConnectivityMeasure.

Parity data:

- ``synthetic``: 176 volumes x 39 regions drawn from a known sparse precision
  (scikit-learn's ``make_sparse_spd_matrix``, fixed seed, unit variances),
  plus a baseline per region;
- ``real``: the real HCP resting-state parcel series (CIFTI-2 ptseries,
  1200 x 419), all parcels for ledoit_wolf / empirical, the first 40 for
  graphical_lasso_cv (runtime);
- ``*32``: the same as float32 signals.

Parity is bit-identity (the same scikit-learn estimators and ``scipy.linalg.inv``
as nilearn, on the same inputs), except for ``LedoitWolf`` on float32 signals:
nilearn fits it in float32, this package in float64 (relative difference
<= 1e-5; measured 2.3e-6 on the real series).

The nilearn results are computed once per (data, estimator, kind) and shared
between the tests of this module.
"""

import json
import warnings

import numpy as np
import pytest
from scipy import linalg

from conftest import relative_error

from cohort_connectome import connectivity
from cohort_connectome.connectivity import (
    ESTIMATORS,
    KINDS,
    cov_to_corr,
    estimate_connectivity,
    prec_to_partial,
)

#: The kinds nilearn's ConnectivityMeasure has (fisherz is ours: tested on its own).
NILEARN_KINDS = tuple(k for k in KINDS if k != "fisherz")

pytestmark = [
    # nilearn 0.13.1: standardize=True -> "zscore" is deprecated (FutureWarning)
    pytest.mark.filterwarnings("ignore:The default strategy for standardize:FutureWarning"),
    # GraphicalLassoCV on the real series stops on max_iter, as it does in nilearn
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
]

NILEARN_KIND = {"correlation": "correlation", "partialcorrelation": "partial correlation",
                "covariance": "covariance", "precision": "precision"}
#: max relative difference for LedoitWolf on float32 signals (fitted in float32
#: by nilearn, in float64 here); every other case is bit-identical
FLOAT32_LEDOIT_WOLF_TOLERANCE = 1e-5
N_REAL_PARCELS_GLCV = 40


def _sklearn_estimator(name):
    """The estimator object nilearn is given for each of our estimator names."""
    from sklearn.covariance import EmpiricalCovariance, GraphicalLassoCV, LedoitWolf

    return {"ledoit_wolf": lambda: LedoitWolf(store_precision=False),
            "empirical": EmpiricalCovariance,
            "graphical_lasso_cv": GraphicalLassoCV}[name]()




# small matrices: BLAS threads only add overhead (see conftest.single_threaded_blas)
pytestmark.append(pytest.mark.usefixtures("single_threaded_blas"))


# --------------------------------------------------------------------------
# data

@pytest.fixture(scope="module")
def synthetic():
    """Signals from a known sparse precision (as scikit-learn's plot_sparse_cov)."""
    from sklearn.datasets import make_sparse_spd_matrix

    n_regions, n_volumes = 39, 176
    rng = np.random.RandomState(0)
    precision = make_sparse_spd_matrix(n_regions, alpha=0.95, smallest_coef=0.4,
                                       largest_coef=0.7, random_state=rng)
    covariance = linalg.inv(precision)
    d = np.sqrt(np.diag(covariance))
    covariance /= np.outer(d, d)
    precision *= np.outer(d, d)
    signals = rng.multivariate_normal(np.zeros(n_regions), covariance, size=n_volumes)
    # unit variances (a graphical lasso on regions of unequal scales penalizes
    # them unequally), BOLD-like baselines
    signals = signals + rng.uniform(50, 150, n_regions)
    return {"signals": signals, "precision": precision}


def _signals(request, dataset, estimator):
    if dataset.startswith("synthetic"):
        signals = request.getfixturevalue("synthetic")["signals"]
    else:
        signals = request.getfixturevalue("hcp_series")
        if estimator == "graphical_lasso_cv":
            signals = signals[:, :N_REAL_PARCELS_GLCV]
    dtype = np.float32 if dataset.endswith("32") else np.float64
    return np.ascontiguousarray(signals, dtype=dtype)


_OURS = {}
_NILEARN = {}


def _ours(request, dataset, estimator):
    """(signals, matrices, info) of estimate_connectivity, every kind, computed once."""
    key = (dataset, estimator)
    if key not in _OURS:
        signals = _signals(request, dataset, estimator)
        _OURS[key] = (signals, *estimate_connectivity(signals, estimator=estimator))
    return _OURS[key]


def _nilearn(request, dataset, estimator, kind):
    """(matrix, fitted cov_estimator_) of
    ``ConnectivityMeasure(cov_estimator=..., kind=...).fit_transform([signals])[0]``,
    computed once."""
    key = (dataset, estimator, kind)
    if key not in _NILEARN:
        from nilearn.connectome import ConnectivityMeasure

        signals = _signals(request, dataset, estimator)
        measure = ConnectivityMeasure(cov_estimator=_sklearn_estimator(estimator),
                                      kind=NILEARN_KIND[kind])
        matrix = measure.fit_transform([signals.copy()])[0]
        _NILEARN[key] = (matrix, measure.cov_estimator_)
    return _NILEARN[key]


def _check_parity(request, dataset, estimator, kind):
    signals, ours, _ = _ours(request, dataset, estimator)
    reference, _ = _nilearn(request, dataset, estimator, kind)
    matrix = ours[kind]
    assert matrix.dtype == np.float64
    assert matrix.shape == (signals.shape[1],) * 2
    if signals.dtype == np.float32 and estimator == "ledoit_wolf":
        error = relative_error(matrix, reference)
        assert error <= FLOAT32_LEDOIT_WOLF_TOLERANCE, (dataset, kind, error)
    else:
        np.testing.assert_array_equal(matrix, reference, strict=True)


# --------------------------------------------------------------------------
# parity with nilearn

@pytest.mark.parametrize("kind", NILEARN_KINDS)
@pytest.mark.parametrize("dataset", ["synthetic", "synthetic32", "real", "real32"])
def test_ledoit_wolf_matches_nilearn(request, dataset, kind):
    """Mirrors ``ConnectivityMeasure(cov_estimator=LedoitWolf(store_precision=False),
    kind=kind).fit_transform([signals])[0]`` (nilearn's default estimator)."""
    _check_parity(request, dataset, "ledoit_wolf", kind)


@pytest.mark.parametrize("kind", NILEARN_KINDS)
@pytest.mark.parametrize("dataset", ["synthetic", "synthetic32", "real", "real32"])
def test_empirical_matches_nilearn(request, dataset, kind):
    """Mirrors ``ConnectivityMeasure(cov_estimator=EmpiricalCovariance(),
    kind=kind).fit_transform([signals])[0]``."""
    _check_parity(request, dataset, "empirical", kind)


# float32: only one kind per fit (z-scored / raw), to keep the runtime down
@pytest.mark.parametrize("dataset, kind", [
    *[("synthetic", kind) for kind in NILEARN_KINDS],
    *[("real", kind) for kind in NILEARN_KINDS],
    ("real32", "correlation"),
    ("real32", "partialcorrelation"),
])
def test_graphical_lasso_cv_matches_nilearn(request, dataset, kind):
    """Mirrors ``ConnectivityMeasure(cov_estimator=GraphicalLassoCV(),
    kind=kind).fit_transform([signals])[0]`` (real data: first 40 parcels)."""
    _check_parity(request, dataset, "graphical_lasso_cv", kind)


@pytest.mark.parametrize("dataset", ["synthetic", "real", "real32"])
def test_graphical_lasso_cv_alpha_matches_nilearn(request, dataset):
    """The recorded alphas are those of the GraphicalLassoCV nilearn fitted:
    ``ConnectivityMeasure(GraphicalLassoCV(), kind=...).cov_estimator_.alpha_``."""
    _, _, info = _ours(request, dataset, "graphical_lasso_cv")
    zscored = _nilearn(request, dataset, "graphical_lasso_cv", "correlation")[1]
    raw = _nilearn(request, dataset, "graphical_lasso_cv", "partialcorrelation")[1]
    assert info["alpha_zscored"] == float(zscored.alpha_)
    assert info["alpha_raw"] == float(raw.alpha_)
    assert info["cv_alphas_zscored"] == [float(a) for a in zscored.cv_results_["alphas"]]
    assert info["cv_alphas_raw"] == [float(a) for a in raw.cv_results_["alphas"]]
    assert info["n_iter_raw"] == raw.n_iter_
    # the raw and z-scored fits are distinct fits (the signals are not z-scored)
    assert info["alpha_zscored"] != info["alpha_raw"]


@pytest.mark.parametrize("dataset", ["synthetic", "real"])
def test_ledoit_wolf_shrinkage_matches_nilearn(request, dataset):
    """The recorded shrinkages are ``ConnectivityMeasure(LedoitWolf(store_precision=False),
    kind=...).cov_estimator_.shrinkage_`` of the correlation and covariance fits."""
    _, _, info = _ours(request, dataset, "ledoit_wolf")
    zscored = _nilearn(request, dataset, "ledoit_wolf", "correlation")[1]
    raw = _nilearn(request, dataset, "ledoit_wolf", "covariance")[1]
    assert info["shrinkage_zscored"] == zscored.shrinkage_
    assert info["shrinkage_raw"] == raw.shrinkage_
    assert 0.0 < info["shrinkage_raw"] < 1.0


def test_constant_region_matches_nilearn(synthetic):
    """A flat region: nilearn's z-scoring keeps it at 0 (std replaced by 1);
    mirrors ``ConnectivityMeasure(LedoitWolf(store_precision=False),
    kind="correlation").fit_transform([signals])[0]``."""
    from nilearn.connectome import ConnectivityMeasure

    signals = synthetic["signals"][:, :10].copy()
    signals[:, 3] = 7.0
    ours, info = estimate_connectivity(signals, kinds="correlation")
    reference = ConnectivityMeasure(cov_estimator=_sklearn_estimator("ledoit_wolf"),
                                    kind="correlation").fit_transform([signals])[0]
    assert np.all(np.isfinite(ours["correlation"]))
    np.testing.assert_array_equal(ours["correlation"], reference, strict=True)
    assert info["constant_regions"] == [3]


def test_cov_to_corr_and_prec_to_partial_match_nilearn(synthetic):
    """Mirrors ``nilearn.connectome.cov_to_corr`` / ``prec_to_partial``."""
    from nilearn.connectome import cov_to_corr as nl_cov_to_corr
    from nilearn.connectome import prec_to_partial as nl_prec_to_partial

    covariance = np.cov(synthetic["signals"], rowvar=False)
    precision = linalg.inv(covariance)
    np.testing.assert_array_equal(cov_to_corr(covariance), nl_cov_to_corr(covariance),
                                  strict=True)
    np.testing.assert_array_equal(prec_to_partial(precision),
                                  nl_prec_to_partial(precision), strict=True)


# --------------------------------------------------------------------------
# properties

def test_cov_to_corr_unit_diagonal_symmetric(synthetic):
    covariance = np.cov(synthetic["signals"], rowvar=False)
    correlation = cov_to_corr(covariance)
    assert correlation.dtype == np.float64
    assert np.array_equal(np.diag(correlation), np.ones(covariance.shape[0]))
    np.testing.assert_allclose(correlation, correlation.T, rtol=0, atol=1e-15)
    np.testing.assert_allclose(correlation, np.corrcoef(synthetic["signals"], rowvar=False),
                               rtol=0, atol=1e-12)
    assert np.max(np.abs(correlation)) <= 1.0 + 1e-12


def test_prec_to_partial_sign_and_diagonal():
    precision = np.array([[2.0, -1.0, 0.0], [-1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    partial = prec_to_partial(precision)
    assert np.array_equal(np.diag(partial), np.ones(3))
    assert partial[0, 1] == pytest.approx(0.5)
    assert partial[1, 2] == pytest.approx(-0.5 / np.sqrt(2.0))
    assert partial[0, 2] == 0.0
    np.testing.assert_array_equal(partial, partial.T)


@pytest.mark.parametrize("bad", [np.ones(3), np.ones((2, 3)), np.ones((2, 2, 2))])
def test_cov_to_corr_rejects_non_square(bad):
    with pytest.raises(ValueError, match="square"):
        cov_to_corr(bad)
    with pytest.raises(ValueError, match="square"):
        prec_to_partial(bad)


def test_graphical_lasso_recovers_true_support(request, synthetic):
    """|partial correlation| of the sparse estimate ranks the true edges first."""
    from sklearn.metrics import roc_auc_score

    _, ours, info = _ours(request, "synthetic", "graphical_lasso_cv")
    lower = np.tril_indices(synthetic["precision"].shape[0], k=-1)
    truth = synthetic["precision"][lower] != 0
    assert 0 < truth.sum() < truth.size
    auc = roc_auc_score(truth, np.abs(ours["partialcorrelation"][lower]))
    assert auc >= 0.9, auc
    # and the estimate is sparse-ish: many entries shrunk to (near) zero
    assert info["alpha_raw"] > 0


def test_deterministic(request):
    """Two calls give bit-identical matrices and identical info (graphical lasso,
    the only estimator with an iterative, cross-validated fit; the second call
    re-runs only the raw fit, to save time)."""
    signals, first, first_info = _ours(request, "synthetic", "graphical_lasso_cv")
    kinds = ("precision", "covariance", "partialcorrelation")
    second, second_info = estimate_connectivity(signals, kinds=kinds,
                                                estimator="graphical_lasso_cv")
    assert list(second) == list(kinds)
    for kind in kinds:
        assert second[kind].tobytes() == first[kind].tobytes(), kind
    for key in ("alpha_raw", "cv_alphas_raw", "n_iter_raw", "dual_gap_raw"):
        assert second_info[key] == first_info[key], key


def _assert_plain(value, where="info"):
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str, where
            _assert_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        for k, item in enumerate(value):
            _assert_plain(item, f"{where}[{k}]")
    else:
        assert type(value) in (str, int, float, bool, type(None)), (where, type(value))


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_info_is_plain_json(synthetic, estimator):
    signals = synthetic["signals"][:, :8]
    _, info = estimate_connectivity(signals, estimator=estimator,
                                    estimator_options={"cv": 3} if estimator ==
                                    "graphical_lasso_cv" else None)
    _assert_plain(info)
    assert json.loads(json.dumps(info, allow_nan=False)) == info
    assert info["estimator"] == estimator
    assert (info["n_volumes"], info["n_regions"]) == signals.shape
    assert info["kinds"] == list(KINDS)
    assert info["standardize"] == "zscore"
    assert info["precision_source"] == "inv(covariance_)"
    if estimator == "ledoit_wolf":
        assert {"shrinkage_zscored", "shrinkage_raw"} <= set(info)
    if estimator == "graphical_lasso_cv":
        assert info["estimator_options"] == {"alphas": 4, "n_refinements": 4, "cv": 3,
                                             "max_iter": 100, "tol": 1e-4,
                                             "enet_tol": 1e-4, "mode": "cd"}
        for fit in ("zscored", "raw"):
            assert info[f"alpha_{fit}"] in info[f"cv_alphas_{fit}"]
            assert info[f"cv_alphas_{fit}"][-1] == 0.0
            assert isinstance(info[f"converged_{fit}"], bool)


def test_graphical_lasso_cv_options_are_passed_through(synthetic):
    """alphas / cv reach GraphicalLassoCV: an explicit grid is the grid searched."""
    from sklearn.covariance import GraphicalLassoCV

    signals = synthetic["signals"][:, :8]
    options = {"alphas": [0.5, 0.1, 0.02], "cv": 3, "max_iter": 50, "tol": 1e-3}
    ours, info = estimate_connectivity(signals, kinds=("covariance",),
                                       estimator="graphical_lasso_cv",
                                       estimator_options=options)
    reference = GraphicalLassoCV(**options).fit(signals)
    assert info["cv_alphas_raw"] == [0.5, 0.1, 0.02, 0.0]
    assert info["alpha_raw"] == reference.alpha_
    assert ours["covariance"].tobytes() == reference.covariance_.tobytes()


def test_one_fit_per_signal_version(monkeypatch, synthetic):
    """correlation needs the z-scored fit; the three other kinds share the raw one."""
    calls = []
    original = connectivity._fit

    def counting_fit(x, estimator, options):
        calls.append(x.copy())
        return original(x, estimator, options)

    monkeypatch.setattr(connectivity, "_fit", counting_fit)
    signals = synthetic["signals"][:, :6]
    matrices, info = estimate_connectivity(signals)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[0].std(axis=0), 1.0, rtol=1e-12)
    assert calls[1].tobytes() == signals.tobytes()

    calls.clear()
    matrices, info = estimate_connectivity(signals, kinds=("precision", "covariance"))
    assert len(calls) == 1 and list(matrices) == ["precision", "covariance"]
    assert info["shrinkage_zscored"] is None and info["shrinkage_raw"] is not None
    np.testing.assert_allclose(matrices["precision"] @ matrices["covariance"],
                               np.eye(6), atol=1e-10)

    calls.clear()
    matrices, info = estimate_connectivity(signals, kinds="correlation")
    assert len(calls) == 1 and list(matrices) == ["correlation"]
    assert info["shrinkage_raw"] is None and info["precision_source"] is None


# --------------------------------------------------------------------------
# validation

@pytest.mark.parametrize("signals, message", [
    (np.ones(10), "2D"),
    (np.ones((10, 3, 2)), "2D"),
    (np.ones((1, 3)), "at least 2 volumes"),
    (np.ones((10, 1)), "at least 2 regions"),
    (np.array([["a", "b"], ["c", "d"]]), "real numbers"),
])
def test_rejects_bad_signal_shapes(signals, message):
    with pytest.raises(ValueError, match=message):
        estimate_connectivity(signals)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_rejects_non_finite_signals(synthetic, bad):
    signals = synthetic["signals"][:, :5].copy()
    signals[7, 2] = bad
    with pytest.raises(ValueError, match=r"non-finite.*\(7, 2\)"):
        estimate_connectivity(signals)


def test_rejects_unknown_kind(synthetic):
    with pytest.raises(ValueError, match="'partial correlation'") as excinfo:
        estimate_connectivity(synthetic["signals"][:, :5], kinds=("partial correlation",))
    for kind in KINDS:
        assert kind in str(excinfo.value)
    with pytest.raises(ValueError, match="empty"):
        estimate_connectivity(synthetic["signals"][:, :5], kinds=())


def test_rejects_unknown_estimator(synthetic):
    with pytest.raises(ValueError, match="'graphical_lasso'") as excinfo:
        estimate_connectivity(synthetic["signals"][:, :5], estimator="graphical_lasso")
    for estimator in ESTIMATORS:
        assert estimator in str(excinfo.value)


@pytest.mark.parametrize("estimator, options, message", [
    ("graphical_lasso_cv", {"alpha": 0.1}, "unknown option 'alpha'.*cv"),
    ("ledoit_wolf", {"cv": 5}, "unknown option 'cv'"),
    ("empirical", {"assume_centered": True}, "unknown option 'assume_centered'"),
    ("graphical_lasso_cv", {"cv": 1}, "'cv'"),
    ("graphical_lasso_cv", {"cv": "kfold"}, "'cv'"),
    ("graphical_lasso_cv", {"alphas": [0.1, -1.0]}, "'alphas'"),
    ("graphical_lasso_cv", {"mode": "newton"}, "mode"),
])
def test_rejects_bad_estimator_options(synthetic, estimator, options, message):
    with pytest.raises(ValueError, match=message):
        estimate_connectivity(synthetic["signals"][:, :5], estimator=estimator,
                              estimator_options=options)


def test_singular_empirical_covariance_is_a_clear_error(synthetic):
    signals = synthetic["signals"][:, :10].copy()
    signals[:, 4] = 1.0  # a flat region: a zero row and column in the covariance
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="singular"):
            estimate_connectivity(signals, kinds=("precision",), estimator="empirical")


def test_fisher_z_kind():
    """fisherz = arctanh of the correlation kind, diagonal 0, fitted once."""
    from cohort_connectome.connectivity import fisher_z

    x = np.random.default_rng(5).standard_normal((120, 6))
    matrices, info = estimate_connectivity(x, kinds=["fisherz", "correlation"])
    off = ~np.eye(6, dtype=bool)
    np.testing.assert_allclose(np.tanh(matrices["fisherz"][off]),
                               matrices["correlation"][off], rtol=1e-12)
    assert np.all(np.diag(matrices["fisherz"]) == 0)
    assert info["shrinkage_zscored"] is not None and info["shrinkage_raw"] is None
    only, _ = estimate_connectivity(x, kinds="fisherz")
    np.testing.assert_array_equal(only["fisherz"], matrices["fisherz"])
    z = fisher_z(np.array([[1.0, 1.0], [1.0, 1.0]]))
    assert np.all(np.isfinite(z)) and z[0, 1] > 10


# --------------------------------------------------------------------------
# regions without data: n/a rows and columns (estimate_run_connectivity)

@pytest.mark.parametrize("estimator", ["ledoit_wolf", "empirical"])
def test_missing_regions_are_estimated_without_and_embedded(synthetic, estimator):
    """Mirrors ``ConnectivityMeasure(cov_estimator=..., kind=kind)
    .fit_transform([signals[:, present]])[0]`` on the regions with data, the
    others n/a (rows, columns and diagonal); nilearn would return the
    smaller matrix."""
    from nilearn.connectome import ConnectivityMeasure

    from cohort_connectome.connectivity import embed_regions, estimate_run_connectivity

    signals = synthetic["signals"].copy()
    missing = [2, 3, 20]
    present = np.setdiff1d(np.arange(signals.shape[1]), missing)
    if estimator == "ledoit_wolf":  # the empirical covariance would be singular
        signals[:, 30] = 7.0  # constant: reported by its atlas index
    with_na = signals.copy()
    with_na[:, missing] = np.nan
    matrices, info = estimate_run_connectivity(with_na, estimator=estimator)
    # the present columns as a TSV of them would be read: C-ordered
    alone, info_alone = estimate_connectivity(signals[:, present].copy(), estimator=estimator)
    assert info["n_regions"] == len(present)
    if estimator == "ledoit_wolf":
        assert info["constant_regions"] == [30]
        assert info_alone["constant_regions"] == [int(np.flatnonzero(present == 30)[0])]
    for kind in KINDS:
        matrix = matrices[kind]
        assert matrix.shape == (signals.shape[1],) * 2
        assert np.isnan(matrix[missing]).all() and np.isnan(matrix[:, missing]).all()
        np.testing.assert_array_equal(matrix[np.ix_(present, present)], alone[kind])
        np.testing.assert_array_equal(matrix, embed_regions(alone[kind], np.isin(
            np.arange(signals.shape[1]), present)))
        if kind in NILEARN_KIND:
            reference = ConnectivityMeasure(cov_estimator=_sklearn_estimator(estimator),
                                            kind=NILEARN_KIND[kind]).fit_transform(
                [signals[:, present].copy()])[0]
            np.testing.assert_array_equal(matrix[np.ix_(present, present)], reference)
    # no region missing: estimate_connectivity itself
    full, full_info = estimate_run_connectivity(signals, estimator=estimator)
    same, same_info = estimate_connectivity(signals, estimator=estimator)
    assert full_info == same_info
    for kind in KINDS:
        np.testing.assert_array_equal(full[kind], same[kind])


def test_fewer_than_two_regions_with_data_is_an_error():
    from cohort_connectome.connectivity import embed_regions, estimate_run_connectivity

    x = np.random.default_rng(0).standard_normal((50, 3))
    x[:, :2] = np.nan
    with pytest.raises(ValueError, match="1 of 3 regions have data; a connectome needs at "
                                         "least 2"):
        estimate_run_connectivity(x)
    x[:5, 2] = np.nan
    with pytest.raises(ValueError, match="n/a in some volumes only"):
        estimate_run_connectivity(x[:, 1:])
    with pytest.raises(ValueError, match=r"matrix of shape \(3, 3\) for 2 present"):
        embed_regions(np.eye(3), [True, False, True])
