"""Tests of cohort_connectome.signal against nilearn 0.13.1's ``signal.clean``.

nilearn is the oracle here, never a dependency of the package.  Every oracle
call spells out all the arguments ``NiftiMapsMasker`` passes, because
``clean()``'s own defaults (detrend=True, standardize="zscore", t_r=2.5) are
not the masker's.
"""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from cohort_connectome.signal import clean_signals
from conftest import relative_error

N_VOLUMES = 176  # rows of subject 0010042's regressors
N_REGIONS = 39  # MSDL regions
# nilearn filters column by column (~1 ms each): the big grid uses fewer regions
GRID_REGIONS = 6
SUBJECT = "0010042"

#: name -> (low_pass, high_pass, t_r, a cut-off at/above Nyquist?)
FILTERS = {
    "none": (None, None, None, False),
    "lowpass-tr2": (0.1, None, 2.0, False),
    "highpass-tr2.5": (None, 0.01, 2.5, False),
    "bandpass-tr2": (0.1, 0.01, 2.0, False),
    "bandpass-tr2.5": (0.1, 0.01, 2.5, False),
    # Nyquist is 0.25 Hz at t_r=2: exactly at it, and above it in a band
    "lowpass-at-nyquist-tr2": (0.25, None, 2.0, True),
    "bandpass-above-nyquist-tr2.5": (0.3, 0.01, 2.5, True),
}
STANDARDIZE = ("zscore_sample", "zscore", "psc", False)
#: name -> (use the real confounds?, standardize_confounds)
CONFOUNDS = {
    "no-confounds": (False, True),
    "confounds-standardized": (True, True),
    "confounds-unstandardized": (True, False),
}
TOLERANCE = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 1e-4}


# --------------------------------------------------------------------------
# helpers and fixtures
# --------------------------------------------------------------------------


def nilearn_clean(signals, confounds=None, *, detrend=False, standardize=False,
                  standardize_confounds=True, low_pass=None, high_pass=None,
                  t_r=None):
    """``nilearn.signal.clean`` with every argument the masker passes explicit.

    nilearn's own warnings (its FutureWarning / DeprecationWarning about
    future defaults, Nyquist, ...) are silenced: they are nilearn's business.
    """
    from nilearn.signal import clean

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return clean(
            signals,
            runs=None,
            detrend=detrend,
            standardize=standardize,
            sample_mask=None,
            confounds=confounds,
            standardize_confounds=standardize_confounds,
            filter="butterworth",
            low_pass=low_pass,
            high_pass=high_pass,
            t_r=t_r,
            ensure_finite=False,
        )




def assert_parity(ours, reference):
    """Same shape and dtype, and within the dtype's relative tolerance."""
    assert ours.shape == reference.shape
    assert ours.dtype == reference.dtype, (ours.dtype, reference.dtype)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
    error = relative_error(ours, reference)
    assert error <= TOLERANCE[reference.dtype], (
        f"relative error {error:.3g} > {TOLERANCE[reference.dtype]:g}"
    )


def re_shape(shape):
    """A shape as a regular expression matching its repr."""
    return str(shape).replace("(", r"\(").replace(")", r"\)")


def make_signals(dtype=np.float64, n_volumes=N_VOLUMES, n_regions=N_REGIONS, seed=0):
    """Synthetic region signals: mean ~100, noise, a slow oscillation, a drift."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_volumes)[:, np.newaxis]
    baseline = 100.0 + 10.0 * rng.random(n_regions)
    drift = 0.05 * t * rng.standard_normal(n_regions)
    slow = 3.0 * np.sin(2 * np.pi * t / 40.0 + rng.random(n_regions) * 2 * np.pi)
    noise = 2.0 * rng.standard_normal((n_volumes, n_regions))
    return (baseline + drift + slow + noise).astype(dtype)


@pytest.fixture(scope="module")
def regressors(adhd_regressors_paths):
    """Subject 0010042's real regressors (176 x 17, incl. constant and linearTrend)."""
    table = pd.read_csv(adhd_regressors_paths[SUBJECT], sep="\t")
    assert table.shape[0] == N_VOLUMES
    assert {"constant", "linearTrend"} <= set(table.columns)
    return table.to_numpy(dtype=np.float64)


# --------------------------------------------------------------------------
# parity with nilearn
# --------------------------------------------------------------------------


def _grid():
    """detrend x standardize x filter x confounds x dtype.

    float32 skips the unstandardized confounds: the confound path does not
    depend on the signals' dtype (confounds stay float64), and nilearn's
    column-by-column filtering of the 17 confounds dominates the run time.
    """
    for dtype in (np.float64, np.float32):
        for detrend in (False, True):
            for standardize in STANDARDIZE:
                for filter_case in FILTERS:
                    for confound_case in CONFOUNDS:
                        if dtype is np.float32 and confound_case == "confounds-unstandardized":
                            continue
                        yield pytest.param(
                            detrend, standardize, filter_case, confound_case, dtype,
                            id="-".join([
                                "detrend" if detrend else "nodetrend",
                                str(standardize), filter_case, confound_case,
                                np.dtype(dtype).name,
                            ]),
                        )


@pytest.mark.parametrize(
    "detrend, standardize, filter_case, confound_case, dtype", list(_grid())
)
def test_parity_with_nilearn_clean(detrend, standardize, filter_case, confound_case,
                                   dtype, regressors):
    """Mirrors ``nilearn.signal.clean(signals, runs=None, detrend=detrend,
    standardize=standardize, sample_mask=None, confounds=confounds,
    standardize_confounds=standardize_confounds, filter="butterworth",
    low_pass=low_pass, high_pass=high_pass, t_r=t_r, ensure_finite=False)``.
    """
    low_pass, high_pass, t_r, above_nyquist = FILTERS[filter_case]
    use_confounds, standardize_confounds = CONFOUNDS[confound_case]
    signals = make_signals(dtype, n_regions=GRID_REGIONS)
    confounds = regressors if use_confounds else None
    kwargs = dict(detrend=detrend, standardize=standardize,
                  standardize_confounds=standardize_confounds,
                  low_pass=low_pass, high_pass=high_pass, t_r=t_r)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = clean_signals(signals, confounds, **kwargs)
    reference = nilearn_clean(signals, confounds, **kwargs)

    assert_parity(ours, reference)
    assert ours.dtype == np.dtype(dtype)
    nyquist_warned = any("at or above the Nyquist" in str(w.message) for w in caught)
    assert nyquist_warned == above_nyquist


#: (detrend, standardize_confounds, low_pass, high_pass, t_r, span-invariant?)
RANK_DEFICIENT_CASES = {
    "plain": (False, True, None, None, None, True),
    "unstandardized": (False, False, None, None, None, True),
    "detrend-lowpass": (True, True, 0.1, None, 2.0, True),
    "bandpass-unstandardized": (False, False, 0.1, 0.01, 2.0, True),
    # nilearn keeps rounding noise here (see clean_signals' Notes): the
    # duplicate changes its result by ~20 %, so only parity is checked
    "detrend-bandpass": (True, True, 0.1, 0.01, 2.0, False),
}


@pytest.mark.parametrize("case", list(RANK_DEFICIENT_CASES))
def test_parity_rank_deficient_confounds(case, regressors):
    """Mirrors ``nilearn.signal.clean(signals, confounds=confounds_with_duplicates,
    detrend=detrend, standardize="zscore_sample",
    standardize_confounds=standardize_confounds, filter="butterworth",
    low_pass=low_pass, high_pass=high_pass, t_r=t_r, ensure_finite=False)``.

    The real confounds already hold a constant and a linear trend (collinear
    with detrending); a repeated and a rescaled column are added.  Where
    nilearn's result is numerically stable, the duplicates must not change it.
    """
    detrend, standardize_confounds, low_pass, high_pass, t_r, invariant = (
        RANK_DEFICIENT_CASES[case]
    )
    signals = make_signals()
    duplicated = np.column_stack([regressors, regressors[:, 0], 2.0 * regressors[:, 3]])
    kwargs = dict(detrend=detrend, standardize="zscore_sample",
                  standardize_confounds=standardize_confounds,
                  low_pass=low_pass, high_pass=high_pass, t_r=t_r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # detrend=standardize_confounds=False
        ours = clean_signals(signals, duplicated, **kwargs)
        without = clean_signals(signals, regressors, **kwargs)
    assert_parity(ours, nilearn_clean(signals, duplicated, **kwargs))
    if invariant:  # same span, same residuals
        assert relative_error(ours, without) <= 1e-10


def test_parity_without_constant_and_trend(regressors):
    """Mirrors ``nilearn.signal.clean(signals, confounds=confounds,
    detrend=False, standardize="zscore_sample", standardize_confounds=False,
    filter="butterworth", low_pass=None, high_pass=None, t_r=None,
    ensure_finite=False)`` with only full-rank confounds (no constant column,
    so unstandardized confounds do not centre the signals)."""
    signals = make_signals()
    confounds = np.delete(regressors, [1, 2], axis=1)
    kwargs = dict(detrend=False, standardize="zscore_sample",
                  standardize_confounds=False)
    with pytest.warns(UserWarning, match="standardize_confounds=False"):
        ours = clean_signals(signals, confounds, **kwargs)
    assert_parity(ours, nilearn_clean(signals, confounds, **kwargs))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_parity_float32_confounds(dtype, regressors):
    """Mirrors ``nilearn.signal.clean(signals, confounds=float32_confounds,
    detrend=True, standardize="zscore_sample", standardize_confounds=True,
    filter="butterworth", low_pass=0.1, high_pass=0.01, t_r=2.5,
    ensure_finite=False)``: float32 confounds are decomposed in float32."""
    signals = make_signals(dtype)
    confounds = regressors.astype(np.float32)
    kwargs = dict(detrend=True, standardize="zscore_sample",
                  standardize_confounds=True, low_pass=0.1, high_pass=0.01, t_r=2.5)
    ours = clean_signals(signals, confounds, **kwargs)
    assert_parity(ours, nilearn_clean(signals, confounds, **kwargs))


def test_parity_one_dimensional_confound(regressors):
    """Mirrors ``nilearn.signal.clean(signals, confounds=csf_1d, detrend=True,
    standardize="zscore", standardize_confounds=True, filter="butterworth",
    low_pass=None, high_pass=0.01, t_r=2.0, ensure_finite=False)``."""
    signals = make_signals()
    csf = regressors[:, 0].copy()
    kwargs = dict(detrend=True, standardize="zscore", standardize_confounds=True,
                  high_pass=0.01, t_r=2.0)
    ours = clean_signals(signals, csf, **kwargs)
    assert_parity(ours, nilearn_clean(signals, csf, **kwargs))
    assert_parity(ours, clean_signals(signals, csf[:, np.newaxis], **kwargs))


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64])
def test_parity_integer_signals(dtype):
    """Mirrors ``nilearn.signal.clean(int_signals, detrend=True,
    standardize="psc", confounds=None, standardize_confounds=True,
    filter="butterworth", low_pass=0.1, high_pass=None, t_r=2.0,
    ensure_finite=False)``: integers become float32, or float64 when 8 bytes."""
    signals = np.rint(make_signals()).astype(dtype)
    kwargs = dict(detrend=True, standardize="psc", low_pass=0.1, t_r=2.0)
    ours = clean_signals(signals, **kwargs)
    assert_parity(ours, nilearn_clean(signals, **kwargs))
    assert ours.dtype == (np.float64 if dtype is np.int64 else np.float32)


@pytest.mark.parametrize("detrend", [False, True], ids=["nodetrend", "detrend"])
def test_parity_nan_in_signals_is_kept(detrend, regressors):
    """Mirrors ``nilearn.signal.clean(signals_with_nan, confounds=confounds,
    detrend=detrend, standardize="zscore_sample", standardize_confounds=True,
    filter="butterworth", low_pass=0.1, high_pass=0.01, t_r=2.0,
    ensure_finite=False)``: NaN spreads along its own column only."""
    signals = make_signals()
    signals[10, 3] = np.nan
    kwargs = dict(detrend=detrend, standardize="zscore_sample",
                  standardize_confounds=True, low_pass=0.1, high_pass=0.01, t_r=2.0)
    ours = clean_signals(signals, regressors, **kwargs)
    assert_parity(ours, nilearn_clean(signals, regressors, **kwargs))
    assert np.isnan(ours[:, 3]).all()
    assert np.isfinite(np.delete(ours, 3, axis=1)).all()


def test_parity_psc_zero_mean_column():
    """Mirrors ``nilearn.signal.clean(signals, confounds=None, detrend=False,
    standardize="psc", standardize_confounds=True, filter="butterworth",
    low_pass=None, high_pass=None, t_r=None, ensure_finite=False)`` with a
    zero-mean column, which psc sets to 0 with a warning."""
    signals = make_signals()
    signals[:, 5] = 3.0 * (-1.0) ** np.arange(N_VOLUMES)  # mean exactly 0
    with pytest.warns(UserWarning, match="psc"):
        ours = clean_signals(signals, standardize="psc")
    assert_parity(ours, nilearn_clean(signals, standardize="psc"))
    assert np.all(ours[:, 5] == 0)
    assert np.any(ours[:, 4] != 0)


def test_parity_band_collapsed_above_nyquist():
    """Mirrors ``nilearn.signal.clean(signals, confounds=None, detrend=False,
    standardize="zscore_sample", standardize_confounds=True,
    filter="butterworth", low_pass=0.4, high_pass=0.3, t_r=2.0,
    ensure_finite=False)``: both cut-offs move to just below Nyquist, become
    equal, and the signals are left unfiltered (with a warning)."""
    signals = make_signals()
    kwargs = dict(standardize="zscore_sample", low_pass=0.4, high_pass=0.3, t_r=2.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = clean_signals(signals, **kwargs)
    messages = [str(w.message) for w in caught]
    assert sum("at or above the Nyquist" in m for m in messages) == 2  # high, low
    assert any("unfiltered" in m for m in messages)
    assert_parity(ours, nilearn_clean(signals, **kwargs))
    unfiltered = clean_signals(signals, standardize="zscore_sample")
    assert relative_error(ours, unfiltered) == 0


def test_parity_single_volume():
    """Mirrors ``nilearn.signal.clean(one_volume, confounds=None, detrend=True,
    standardize="zscore_sample", standardize_confounds=True,
    filter="butterworth", low_pass=None, high_pass=None, t_r=None,
    ensure_finite=False)``: detrending and standardization are skipped."""
    signals = make_signals(n_volumes=1, n_regions=5)
    with pytest.warns(UserWarning, match="single volume"):
        ours = clean_signals(signals, detrend=True, standardize="zscore_sample")
    reference = nilearn_clean(signals, detrend=True, standardize="zscore_sample")
    assert_parity(ours, reference)
    np.testing.assert_array_equal(ours, signals)


# --------------------------------------------------------------------------
# behaviour
# --------------------------------------------------------------------------


def test_standardize_none_is_false():
    signals = make_signals()
    a = clean_signals(signals, detrend=True, standardize=None)
    b = clean_signals(signals, detrend=True, standardize=False)
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean()) < 1e-9  # detrended, not standardized
    assert a.std(axis=0).max() > 1.5


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_inputs_are_not_modified_and_output_is_new(dtype, regressors):
    signals = make_signals(dtype)
    signals_before = signals.copy()
    confounds = np.asfortranarray(regressors)  # as pandas hands them over
    confounds_before = confounds.copy()
    out = clean_signals(signals, confounds, detrend=True, standardize="psc",
                        standardize_confounds=True, low_pass=0.1, high_pass=0.01,
                        t_r=2.0)
    np.testing.assert_array_equal(signals, signals_before)
    np.testing.assert_array_equal(confounds, confounds_before)
    assert not np.shares_memory(out, signals)
    # nothing to do at all: still a new array
    out = clean_signals(signals)
    np.testing.assert_array_equal(out, signals)
    assert out is not signals and not np.shares_memory(out, signals)
    # 1D confound
    csf = regressors[:, 0].copy()
    clean_signals(signals, csf, detrend=True, standardize="zscore", high_pass=0.01, t_r=2.5)
    np.testing.assert_array_equal(csf, regressors[:, 0])


def test_scipy_signal_is_imported_lazily():
    code = (
        "import sys\n"
        "from cohort_connectome.signal import clean_signals\n"
        "import numpy as np\n"
        "x = np.random.default_rng(0).standard_normal((50, 3)) + 10\n"
        "clean_signals(x, detrend=True, standardize='zscore_sample')\n"
        "assert 'scipy.signal' not in sys.modules, 'imported without filtering'\n"
        "clean_signals(x, low_pass=0.1, t_r=2.0)\n"
        "assert 'scipy.signal' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, np.bool_(True)], ids=["True", "np.True_"])
def test_standardize_true_is_rejected(value):
    with pytest.raises(ValueError, match=r"zscore_sample.*zscore"):
        clean_signals(make_signals(), standardize=value)


@pytest.mark.parametrize("value", ["z-score", "ZSCORE", "minmax", 1, "true"])
def test_unknown_standardize_is_rejected(value):
    with pytest.raises(ValueError, match=r"standardize must be one of .*got " + repr(value)):
        clean_signals(make_signals(), standardize=value)


@pytest.mark.parametrize("name", ["low_pass", "high_pass"])
def test_cutoff_without_t_r_is_rejected(name):
    with pytest.raises(ValueError, match=rf"{name}=0\.05 needs the repetition time: t_r"):
        clean_signals(make_signals(), **{name: 0.05})


@pytest.mark.parametrize("high_pass", [0.1, 0.2])
def test_high_pass_not_below_low_pass_is_rejected(high_pass):
    with pytest.raises(ValueError, match=rf"high_pass \({high_pass} Hz\) must be lower than low_pass \(0\.1 Hz\)"):
        clean_signals(make_signals(), low_pass=0.1, high_pass=high_pass, t_r=2.0)


@pytest.mark.parametrize("t_r", [-2.0, 0.0, float("inf"), float("nan")])
def test_bad_t_r_is_rejected(t_r):
    with pytest.raises(ValueError, match=r"t_r must be a positive, finite number of seconds; got " + repr(t_r)):
        clean_signals(make_signals(), low_pass=0.1, t_r=t_r)
    # rejected even when nothing is filtered
    with pytest.raises(ValueError, match="t_r must be a positive"):
        clean_signals(make_signals(), t_r=t_r)


@pytest.mark.parametrize("kwargs, match", [
    (dict(t_r="2"), "t_r must be a number of seconds"),
    (dict(t_r=True), "t_r must be a number of seconds"),
    (dict(low_pass=True, t_r=2.0), "low_pass must be a frequency"),
    (dict(high_pass="0.01", t_r=2.0), "high_pass must be a frequency"),
    (dict(detrend="yes"), "detrend must be True or False"),
    (dict(standardize_confounds=None), "standardize_confounds must be True or False"),
])
def test_bad_argument_types_are_rejected(kwargs, match):
    with pytest.raises(TypeError, match=match):
        clean_signals(make_signals(), **kwargs)


def test_nan_cutoff_is_rejected():
    with pytest.raises(ValueError, match="low_pass must be a frequency in Hz or None, got nan"):
        clean_signals(make_signals(), low_pass=float("nan"), t_r=2.0)


def test_confound_row_count_mismatch_is_rejected(regressors):
    with pytest.raises(ValueError, match="confounds have 175 rows but the signals have 176 volumes"):
        clean_signals(make_signals(), regressors[:-1])
    with pytest.raises(ValueError, match="confounds have 176 rows but the signals have 170 volumes"):
        clean_signals(make_signals(n_volumes=170), regressors[:, 0])


def test_confounds_of_bad_shape_or_type_are_rejected(regressors):
    with pytest.raises(ValueError, match=r"confounds must be a 1D or 2D array .* shape \(176, 17, 1\)"):
        clean_signals(make_signals(), regressors[:, :, np.newaxis])
    with pytest.raises(TypeError, match="not a list"):
        clean_signals(make_signals(), [regressors[:, 0], regressors[:, 3]])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_confounds_are_rejected(bad, regressors):
    """nilearn raises a ValueError too (from scipy's QR, ``check_finite``)."""
    confounds = regressors.copy()
    confounds[7, 4] = bad
    with pytest.raises(ValueError, match=r"confounds contain non-finite values .* column\(s\) \[4\]"):
        clean_signals(make_signals(), confounds, detrend=True, standardize="zscore_sample")
    with pytest.raises(ValueError):
        nilearn_clean(make_signals(), confounds, detrend=True, standardize="zscore_sample")


@pytest.mark.parametrize("shape", [(176,), (176, 39, 1), ()])
def test_signals_not_2d_are_rejected(shape):
    signals = np.ones(shape)
    with pytest.raises(ValueError, match=r"signals must be a 2D array of shape \(n_volumes, n_regions\); got an array of shape " + re_shape(shape)):
        clean_signals(signals)


def test_empty_signals_are_rejected():
    with pytest.raises(ValueError, match=r"signals have no volume \(shape \(0, 39\)\)"):
        clean_signals(np.empty((0, 39)))


@pytest.mark.parametrize("dtype", [np.float16, np.complex128, object])
def test_unsupported_signal_dtypes_are_rejected(dtype):
    with pytest.raises(ValueError, match="signals must be float32 or float64"):
        clean_signals(np.ones((10, 3), dtype=dtype))
