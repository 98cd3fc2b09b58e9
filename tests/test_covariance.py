"""cohort_connectome.covariance against scikit-learn 1.9.1.

The module reproduces ``LedoitWolf(store_precision=False)``,
``EmpiricalCovariance()``, ``empirical_covariance``, ``ledoit_wolf`` and
``ledoit_wolf_shrinkage`` operation for operation, so the parity checked here is
bit-identity (same bytes, same dtype), on random data of several shapes and
dtypes and on the real HCP parcel series; plus the input errors, and that
`estimate_connectivity` with these estimators never imports scikit-learn.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import REPO_ROOT

from cohort_connectome import connectivity
from cohort_connectome.covariance import (
    EmpiricalCovariance,
    LedoitWolf,
    empirical_covariance,
    ledoit_wolf,
    ledoit_wolf_shrinkage,
)

ONE_SAMPLE = "Only one sample available"


pytestmark = pytest.mark.usefixtures("single_threaded_blas")


def _data(shape, dtype, seed=0):
    """Signals with unequal scales and BOLD-like baselines, in `dtype`."""
    rng = np.random.default_rng(seed)
    n_samples, n_features = shape
    x = (rng.standard_normal(shape) @ rng.standard_normal((n_features, n_features))
         * rng.uniform(0.5, 20.0, n_features) + rng.uniform(50, 150, n_features))
    if np.dtype(dtype).kind in "iu":
        return np.rint(x).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return x > np.median(x, axis=0)
    return x.astype(dtype)


def _assert_same_array(ours, reference):
    ours, reference = np.asarray(ours), np.asarray(reference)
    assert ours.dtype == reference.dtype
    assert ours.shape == reference.shape
    assert ours.tobytes() == reference.tobytes(), (
        np.max(np.abs(ours.astype(np.float64) - reference)) / np.max(np.abs(reference)))


def _assert_same_shrinkage(ours, reference):
    assert ours == reference
    if not (isinstance(reference, int) and reference == 0):  # ours: 0.0
        assert type(ours) is type(reference)


def _sklearn_fit(cls, x, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return cls(**params).fit(x)


# (shape, block_size): n > p, n < p, 1 feature, several blocks with and without
# a remainder, blocks of 1, a single block exactly the size of the data
CASES = [
    ((176, 39), 1000),
    ((40, 90), 1000),
    ((30, 1), 1000),
    ((2, 5), 1000),
    ((200, 25), 7),
    ((60, 25), 5),
    ((15, 6), 1),
    ((50, 12), 12),
    ((300, 130), 64),
]


@pytest.mark.parametrize("assume_centered", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, block_size", CASES)
def test_ledoit_wolf_fit_matches_sklearn(shape, block_size, dtype, assume_centered):
    from sklearn.covariance import LedoitWolf as SkLedoitWolf

    x = _data(shape, dtype)
    ours = LedoitWolf(assume_centered=assume_centered, block_size=block_size).fit(x)
    reference = _sklearn_fit(SkLedoitWolf, x, store_precision=False,
                             assume_centered=assume_centered, block_size=block_size)
    _assert_same_array(ours.covariance_, reference.covariance_)
    _assert_same_array(ours.location_, reference.location_)
    _assert_same_shrinkage(ours.shrinkage_, reference.shrinkage_)
    if shape[1] > 1:
        assert 0.0 <= ours.shrinkage_ <= 1.0


@pytest.mark.parametrize("assume_centered", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, block_size", CASES)
def test_ledoit_wolf_functions_match_sklearn(shape, block_size, dtype, assume_centered):
    from sklearn import covariance as sk

    x = _data(shape, dtype, seed=1)
    covariance, shrinkage = ledoit_wolf(x, assume_centered=assume_centered,
                                        block_size=block_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref_covariance, ref_shrinkage = sk.ledoit_wolf(
            x, assume_centered=assume_centered, block_size=block_size)
        # the standalone shrinkage centres the data itself (assume_centered=False)
        ref_alone = sk.ledoit_wolf_shrinkage(x, assume_centered=assume_centered,
                                             block_size=block_size)
    _assert_same_array(covariance, ref_covariance)
    _assert_same_shrinkage(shrinkage, ref_shrinkage)
    _assert_same_shrinkage(ledoit_wolf_shrinkage(x, assume_centered=assume_centered,
                                                 block_size=block_size), ref_alone)


def test_block_size_only_reorders_the_sums():
    """Blocks change the last bits (as in scikit-learn), not the value."""
    x = _data((120, 40), np.float64, seed=2)
    one_block = ledoit_wolf_shrinkage(x)
    for block_size in (1, 3, 7, 39, 40, 41):
        assert ledoit_wolf_shrinkage(x, block_size=block_size) == pytest.approx(
            one_block, rel=1e-13, abs=0)


@pytest.mark.parametrize("assume_centered", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.bool_])
@pytest.mark.parametrize("shape", [(176, 39), (40, 90), (30, 1), (2, 3)])
def test_empirical_matches_sklearn(shape, dtype, assume_centered):
    from sklearn import covariance as sk

    x = _data(shape, dtype, seed=3)
    ours = EmpiricalCovariance(assume_centered=assume_centered).fit(x)
    reference = _sklearn_fit(sk.EmpiricalCovariance, x, assume_centered=assume_centered)
    _assert_same_array(ours.covariance_, reference.covariance_)
    _assert_same_array(ours.location_, reference.location_)
    assert not hasattr(ours, "precision_")
    _assert_same_array(empirical_covariance(x, assume_centered=assume_centered),
                       sk.empirical_covariance(x, assume_centered=assume_centered))


@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
@pytest.mark.parametrize("shape", [(176, 39), (30, 1)])
def test_ledoit_wolf_non_float_data_matches_sklearn(shape, dtype):
    from sklearn.covariance import LedoitWolf as SkLedoitWolf

    x = _data(shape, dtype, seed=4)
    ours = LedoitWolf().fit(x)
    reference = _sklearn_fit(SkLedoitWolf, x, store_precision=False)
    _assert_same_array(ours.covariance_, reference.covariance_)
    _assert_same_array(ours.location_, reference.location_)
    _assert_same_shrinkage(ours.shrinkage_, reference.shrinkage_)


def test_empirical_covariance_of_1d_and_lists():
    from sklearn import covariance as sk

    row = np.array([1.0, 2.0, 4.0])
    with pytest.warns(UserWarning, match=ONE_SAMPLE):
        ours = empirical_covariance(row)
    with pytest.warns(UserWarning, match=ONE_SAMPLE):
        _assert_same_array(ours, sk.empirical_covariance(row))
    rows = [[1, 1, 1], [1, 1, 1], [0, 0, 0], [0, 0, 0]]
    _assert_same_array(empirical_covariance(rows), sk.empirical_covariance(rows))
    np.testing.assert_array_equal(empirical_covariance(rows), np.full((3, 3), 0.25))


def test_constant_and_zero_data_match_sklearn():
    """A flat column, and all-constant data (centred data all zero: shrinkage 0)."""
    from sklearn.covariance import LedoitWolf as SkLedoitWolf

    x = _data((50, 6), np.float64, seed=5)
    x[:, 2] = 7.0
    for data in (x, np.full((20, 4), 3.0)):
        ours = LedoitWolf().fit(data)
        reference = SkLedoitWolf(store_precision=False).fit(data)
        _assert_same_array(ours.covariance_, reference.covariance_)
        _assert_same_shrinkage(ours.shrinkage_, reference.shrinkage_)
    assert LedoitWolf().fit(np.full((20, 4), 3.0)).shrinkage_ == 0.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("standardized", [False, True])
def test_real_hcp_series_match_sklearn(hcp_series, dtype, standardized):
    """All 419 parcels x 1200 volumes of the real HCP ptseries, raw and as
    `connectivity` z-scores them for the correlation kind."""
    from sklearn import covariance as sk

    x = np.ascontiguousarray(hcp_series, dtype=dtype)
    if standardized:
        x = connectivity._zscore(x)
    ours = LedoitWolf().fit(x)
    reference = sk.LedoitWolf(store_precision=False).fit(x)
    _assert_same_array(ours.covariance_, reference.covariance_)
    _assert_same_array(ours.location_, reference.location_)
    _assert_same_shrinkage(ours.shrinkage_, reference.shrinkage_)
    assert 0.0 < ours.shrinkage_ < 1.0
    if dtype == np.float64 and not standardized:
        # blocks on real data too (4 products: 300 + 119 columns)
        _assert_same_array(ledoit_wolf(x, block_size=300)[0],
                           sk.ledoit_wolf(x, block_size=300)[0])
    ours = EmpiricalCovariance().fit(x)
    reference = sk.EmpiricalCovariance().fit(x)
    _assert_same_array(ours.covariance_, reference.covariance_)
    _assert_same_array(ours.location_, reference.location_)


# --------------------------------------------------------------------------
# errors and warnings: the same as scikit-learn's

BAD_DATA = {
    "nan": np.array([[1.0, np.nan], [2.0, 3.0], [0.0, 1.0]]),
    "inf": np.array([[1.0, np.inf], [2.0, 3.0], [0.0, 1.0]]),
    "-inf32": np.array([[1.0, -np.inf], [2.0, 3.0], [0.0, 1.0]], dtype=np.float32),
    "1d": np.ones(3),
    "3d": np.ones((4, 3, 2)),
    "no samples": np.ones((0, 3)),
    "no features": np.ones((3, 0)),
    "complex": np.array([[1 + 1j, 2], [3, 4]]),
    "strings": np.array([["a", "b"], ["c", "d"]]),
    "object None": np.array([[1, 2], [3, None]], dtype=object),
    "float32 overflow": np.array([[1e30, 2], [-1e30, 4]], dtype=np.float32),
    "float64 overflow": np.array([[1e200, 2], [-1e200, 4]]),
}
MESSAGES = {"nan": "NaN", "inf": "infinity", "-inf32": "infinity", "1d": "2D",
            "3d": "2D", "no samples": "at least 1 sample", "no features": "1 feature",
            "complex": "real numbers", "strings": "real numbers",
            "object None": "NaN", "float32 overflow": "not finite",
            "float64 overflow": "not finite"}


@pytest.mark.parametrize("name", list(BAD_DATA))
def test_ledoit_wolf_rejects_what_sklearn_rejects(name):
    from sklearn.covariance import LedoitWolf as SkLedoitWolf

    x = BAD_DATA[name]
    with pytest.raises(ValueError), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        SkLedoitWolf(store_precision=False).fit(x)
    with pytest.raises(ValueError, match=MESSAGES[name]), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        LedoitWolf().fit(x)
    with pytest.raises(ValueError, match=MESSAGES[name]), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ledoit_wolf(x)


@pytest.mark.parametrize("name", list(BAD_DATA))
def test_empirical_rejects_what_sklearn_rejects(name):
    from sklearn.covariance import EmpiricalCovariance as SkEmpirical

    x = BAD_DATA[name]
    if name == "float32 overflow":
        # np.cov computes in float64: no overflow, in scikit-learn or here
        _assert_same_array(EmpiricalCovariance().fit(x).covariance_,
                           SkEmpirical().fit(x).covariance_)
        return
    with pytest.raises(ValueError), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        SkEmpirical().fit(x)
    with pytest.raises(ValueError, match=MESSAGES[name]), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        EmpiricalCovariance().fit(x)


@pytest.mark.parametrize("params", [{"block_size": 0}, {"block_size": 2.5},
                                    {"assume_centered": "yes"}])
def test_rejects_bad_parameters(params):
    from sklearn.covariance import LedoitWolf as SkLedoitWolf

    x = _data((10, 3), np.float64)
    with pytest.raises(ValueError):
        SkLedoitWolf(**params).fit(x)
    with pytest.raises(ValueError, match=next(iter(params))):
        LedoitWolf(**params).fit(x)
    with pytest.raises(ValueError, match=next(iter(params))):
        ledoit_wolf(x, **params)


def test_rejects_boolean_block_size():
    """Stricter than scikit-learn, which takes True for a block size of 1."""
    with pytest.raises(ValueError, match="block_size"):
        LedoitWolf(block_size=True).fit(_data((10, 3), np.float64))


def test_single_sample_warns_once_and_matches_sklearn():
    from sklearn import covariance as sk

    x = np.array([[1.0, 2.0, 4.0]])
    for ours_cls, sk_cls, params in [(LedoitWolf, sk.LedoitWolf, {"store_precision": False}),
                                     (EmpiricalCovariance, sk.EmpiricalCovariance, {})]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ours = ours_cls().fit(x)
        assert [str(w.message) for w in caught if ONE_SAMPLE in str(w.message)] == [
            str(caught[0].message)]
        with pytest.warns(UserWarning, match=ONE_SAMPLE):
            reference = sk_cls(**params).fit(x)
        _assert_same_array(ours.covariance_, reference.covariance_)
    # one feature: no shrinkage to estimate, no warning (as scikit-learn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted = LedoitWolf().fit(np.array([[3.0]]))
    assert fitted.covariance_.tolist() == [[0.0]] and fitted.shrinkage_ == 0.0


# --------------------------------------------------------------------------
# use in connectivity

@pytest.mark.parametrize("estimator", ["ledoit_wolf", "empirical"])
def test_connectivity_fits_are_sklearns(estimator):
    """estimate_connectivity's covariance kind and recorded shrinkages are,
    bit for bit, those of scikit-learn's estimators on the same signals."""
    from sklearn import covariance as sk

    signals = _data((176, 39), np.float64, seed=6)
    matrices, info = connectivity.estimate_connectivity(signals, estimator=estimator)
    make = {"ledoit_wolf": lambda: sk.LedoitWolf(store_precision=False),
            "empirical": sk.EmpiricalCovariance}[estimator]
    raw = make().fit(signals)
    zscored = make().fit(connectivity._zscore(signals))
    _assert_same_array(matrices["covariance"], raw.covariance_)
    _assert_same_array(matrices["correlation"], connectivity.cov_to_corr(zscored.covariance_))
    if estimator == "ledoit_wolf":
        assert info["shrinkage_raw"] == raw.shrinkage_
        assert info["shrinkage_zscored"] == zscored.shrinkage_


def test_graphical_lasso_cv_still_uses_sklearn():
    from sklearn.covariance import GraphicalLassoCV

    fitted = connectivity._make_estimator("graphical_lasso_cv", {"cv": 3, "max_iter": 20})
    assert isinstance(fitted, GraphicalLassoCV)
    assert (fitted.cv, fitted.max_iter) == (3, 20)
    assert isinstance(connectivity._make_estimator("ledoit_wolf", {}), LedoitWolf)
    assert isinstance(connectivity._make_estimator("empirical", {}), EmpiricalCovariance)


def test_ledoit_wolf_and_empirical_do_not_import_sklearn():
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from cohort_connectome.connectivity import KINDS, estimate_connectivity\n"
        "x = np.random.default_rng(0).standard_normal((176, 39))\n"
        "for estimator in ('ledoit_wolf', 'empirical'):\n"
        "    for signals in (x, x.astype(np.float32)):\n"
        "        matrices, info = estimate_connectivity(signals, kinds=KINDS,\n"
        "                                               estimator=estimator)\n"
        "        assert list(matrices) == list(KINDS)\n"
        "assert 'sklearn' not in sys.modules, 'sklearn imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
