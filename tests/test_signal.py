"""Tests of cohort_connectome.signal against nilearn 0.13.1's ``signal.clean``.

nilearn is the oracle here, never a dependency of the package.  Every oracle
call spells out all the arguments ``NiftiMapsMasker`` passes, because
``clean()``'s own defaults (detrend=True, standardize="zscore", t_r=2.5) are
not the masker's.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from cohort_connectome.signal import (CONSTANT_RTOL, clean_run_signals, clean_signals,
                                      constant_columns, missing_regions)
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


def nilearn_clean(signals, confounds=None, *, sample_mask=None, runs=None, detrend=False,
                  standardize=False, standardize_confounds=True, low_pass=None,
                  high_pass=None, t_r=None):
    """``nilearn.signal.clean`` with every argument the masker passes explicit.

    nilearn's own warnings (its FutureWarning / DeprecationWarning about
    future defaults, Nyquist, ...) are silenced: they are nilearn's business.
    ``extrapolate`` is left at its 0.13 default, False, as the masker does.
    Sample masks are copied: nilearn shifts int32 ones in place.
    """
    from nilearn.signal import clean

    if isinstance(sample_mask, list):
        sample_mask = [np.array(m) for m in sample_mask]
    elif sample_mask is not None:
        sample_mask = np.array(sample_mask)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return clean(
            signals,
            runs=runs,
            detrend=detrend,
            standardize=standardize,
            sample_mask=sample_mask,
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


@pytest.fixture(scope="module")
def full_rank_confounds(regressors):
    """The real regressors without ``constant`` and ``linearTrend``.

    With those two, detrending and filtering reduce a confound to rounding
    noise that nilearn blows up (see clean_signals' Notes): a reference that
    rounds differently, however correct, then differs by 20 % or more.
    """
    return np.delete(regressors, [1, 2], axis=1)


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


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("filter_case", [k for k in FILTERS if k != "none"])
def test_butterworth_is_nilearns_bit_for_bit(filter_case, dtype, order):
    """The filter step alone mirrors ``nilearn.signal.butterworth(signals,
    sampling_rate=1 / t_r, low_pass=low_pass, high_pass=high_pass)`` (as
    ``clean`` calls it: order 5, odd padding, in place column by column):
    same bits, dtype and memory layout, including cut-offs moved below Nyquist."""
    from nilearn.signal import butterworth

    from cohort_connectome.signal import _butterworth

    low_pass, high_pass, t_r, _ = FILTERS[filter_case]
    signals = np.asarray(make_signals(n_regions=GRID_REGIONS), dtype=dtype, order=order)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Nyquist warnings: tested elsewhere
        ours = _butterworth(signals, t_r, low_pass=low_pass, high_pass=high_pass)
        reference = butterworth(signals.copy(order="K"), sampling_rate=1.0 / t_r,
                                low_pass=low_pass, high_pass=high_pass)
    np.testing.assert_array_equal(ours, reference, strict=True)
    assert ours.flags.f_contiguous == reference.flags.f_contiguous


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


# --------------------------------------------------------------------------
# sample mask (scrubbing) and runs
# --------------------------------------------------------------------------

#: name -> censored volumes of the 176; no censored volume's mirror
#: (175 - i) is censored, so nilearn interpolates / drops them as documented
SCRUB_MASKS = {
    "middle": [40, 41, 42, 90, 120, 121],
    "start": [0, 1, 2, 3],
    "end": [173, 174, 175],
    "start-and-middle": [0, 1, 60, 61, 100],
}
#: censored volumes whose mirror is censored too: nilearn 0.13.1's
#: ``~sample_mask`` on indices mishandles them, this module follows nilearn's
#: documentation instead (see clean_signals' Notes)
MIRRORED_MASKS = {
    "first-and-last": [0, 175],
    "both-edges": [0, 1, 60, 61, 174, 175],
    "mirrored-middle": [30, 145],
}
#: name -> (low_pass, high_pass, t_r)
SCRUB_FILTERS = {
    "bandpass-tr2": (0.1, 0.01, 2.0),
    "highpass-tr2.5": (None, 0.01, 2.5),
    "none": (None, None, None),
}


def kept_volumes(censored, n_volumes=N_VOLUMES):
    """Indices of the kept volumes, given the censored ones."""
    return np.setdiff1d(np.arange(n_volumes), censored)


def boolean_mask(censored, n_volumes=N_VOLUMES):
    mask = np.ones(n_volumes, dtype=bool)
    mask[censored] = False
    return mask


def documented_interpolation(volumes, kept, t_r):
    """nilearn's documented interpolation, written with scipy alone: every
    censored volume gets the cubic spline (not-a-knot, no extrapolation)
    through the kept volumes at the frame times, in the volumes' dtype; the
    censored edges, NaN, are dropped."""
    from scipy.interpolate import CubicSpline

    frame_times = np.arange(volumes.shape[0]) * t_r
    censored = np.setdiff1d(np.arange(volumes.shape[0]), kept)
    filled = volumes.copy()
    filled[censored] = CubicSpline(frame_times[kept], volumes[kept],
                                   extrapolate=False)(frame_times[censored])
    filled = filled[~np.isnan(filled).all(axis=1)]
    assert filled.shape[0] == kept[-1] - kept[0] + 1  # only the edges were NaN
    return filled


def documented_clean_scrubbed(signals, confounds=None, *, sample_mask, t_r, **kwargs):
    """The documented scrubbing with a filter, independent of this module:
    `documented_interpolation` of the signals and of the confounds, then
    nilearn's own clean for the rest (detrend, filter, censor, confounds,
    standardize), given the interpolated volumes and the kept ones.  nilearn
    interpolates again, over volumes that are all filled already (none at an
    edge): only rounding changes."""
    kept = np.asarray(sample_mask)
    return nilearn_clean(
        documented_interpolation(signals, kept, t_r),
        None if confounds is None else documented_interpolation(confounds, kept, t_r),
        sample_mask=kept - kept[0], t_r=t_r, **kwargs,
    )


def nilearn_mirrored_interpolation(volumes, kept, t_r):
    """What nilearn 0.13.1 does instead: the spline written into volume
    n - 1 - i for each kept volume i (``~`` of int indices), then the
    all-NaN volumes dropped."""
    from scipy.interpolate import CubicSpline

    frame_times = np.arange(volumes.shape[0]) * t_r
    filled = volumes.copy()
    mirrors = volumes.shape[0] - 1 - kept
    filled[mirrors] = CubicSpline(frame_times[kept], volumes[kept],
                                  extrapolate=False)(frame_times[mirrors])
    return filled[~np.isnan(filled).all(axis=1)]


def _scrub_grid():
    for dtype in (np.float64, np.float32):
        for mask_case in SCRUB_MASKS:
            for filter_case in SCRUB_FILTERS:
                for use_confounds in (False, True):
                    for detrend in (False, True):
                        for standardize in ("zscore_sample", "psc"):
                            yield pytest.param(
                                mask_case, filter_case, use_confounds, detrend,
                                standardize, dtype,
                                id="-".join([
                                    mask_case, filter_case,
                                    "confounds" if use_confounds else "no-confounds",
                                    "detrend" if detrend else "nodetrend",
                                    standardize, np.dtype(dtype).name,
                                ]),
                            )


@pytest.mark.parametrize(
    "mask_case, filter_case, use_confounds, detrend, standardize, dtype",
    list(_scrub_grid()),
)
def test_parity_sample_mask(mask_case, filter_case, use_confounds, detrend,
                            standardize, dtype, regressors):
    """Mirrors ``nilearn.signal.clean(signals, runs=None, detrend=detrend,
    standardize=standardize, sample_mask=sample_mask, confounds=confounds,
    standardize_confounds=True, filter="butterworth", low_pass=low_pass,
    high_pass=high_pass, t_r=t_r, ensure_finite=False)``.

    "start-and-middle" passes a boolean mask, the others kept indices.
    """
    low_pass, high_pass, t_r = SCRUB_FILTERS[filter_case]
    censored = SCRUB_MASKS[mask_case]
    sample_mask = (boolean_mask(censored) if mask_case == "start-and-middle"
                   else kept_volumes(censored))
    signals = make_signals(dtype, n_regions=GRID_REGIONS)
    confounds = regressors if use_confounds else None
    kwargs = dict(detrend=detrend, standardize=standardize,
                  standardize_confounds=True, low_pass=low_pass,
                  high_pass=high_pass, t_r=t_r)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = clean_signals(signals, confounds, sample_mask=sample_mask, **kwargs)
    reference = nilearn_clean(signals, confounds,
                                       sample_mask=sample_mask, **kwargs)

    assert_parity(ours, reference)
    assert ours.shape == (N_VOLUMES - len(censored), GRID_REGIONS)
    assert ours.dtype == np.dtype(dtype)
    assert not [w for w in caught if "neither interpolated" in str(w.message)]


def test_interpolation_is_bit_identical_to_nilearn_without_mirrored_pairs(regressors):
    """For masks where no censored volume's mirror is censored, the
    interpolation and the dropped edges are nilearn 0.13.1's
    ``_handle_scrubbed_volumes`` bit for bit, memory layout included (the
    later steps depend on the last bits, see clean_signals' Notes); for the
    other masks they differ."""
    from nilearn.signal import _handle_scrubbed_volumes

    from cohort_connectome.signal import _interpolate_censored

    confounds = np.asfortranarray(regressors)  # as pandas hands them over
    for dtype in (np.float64, np.float32):
        signals = make_signals(dtype, n_regions=GRID_REGIONS)
        for case, censored in {**SCRUB_MASKS, **MIRRORED_MASKS}.items():
            kept = kept_volumes(censored)
            ours = _interpolate_censored(signals.copy(), confounds.copy(order="K"),
                                         kept, 2.0, 33, "")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = _handle_scrubbed_volumes(signals.copy(), confounds.copy(order="K"),
                                                  kept.copy(), "butterworth", 2.0, False)
            same = all(a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
                       for a, b in zip(ours, theirs))
            assert same == (case in SCRUB_MASKS), case
            if same:
                for a, b in zip(ours[:2], theirs[:2]):
                    assert a.dtype == b.dtype
                    assert a.flags.c_contiguous == b.flags.c_contiguous
                    assert a.flags.f_contiguous == b.flags.f_contiguous


def _mirrored_grid():
    for mask_case in MIRRORED_MASKS:
        for filter_case in ("bandpass-tr2", "highpass-tr2.5"):
            for use_confounds in (False, True):
                float64 = use_confounds == (filter_case == "bandpass-tr2")
                yield pytest.param(
                    mask_case, filter_case, use_confounds,
                    np.float64 if float64 else np.float32,
                    id="-".join([mask_case, filter_case,
                                 "confounds" if use_confounds else "no-confounds",
                                 "float64" if float64 else "float32"]),
                )


@pytest.mark.parametrize("mask_case, filter_case, use_confounds, dtype",
                         list(_mirrored_grid()))
def test_mirrored_sample_mask_follows_the_documented_scrubbing(
        mask_case, filter_case, use_confounds, dtype, full_rank_confounds):
    """Masks with a censored volume whose mirror ``175 - i`` is censored too:
    the result is the documented procedure, computed independently
    (`documented_clean_scrubbed`: scipy's CubicSpline for the signals and
    the confounds, edges dropped, then nilearn's clean with the kept volumes),
    not nilearn 0.13.1's own result (see
    test_nilearn_mirrors_the_interpolation).  detrend / standardize vary with
    the filter.  The reference rounds differently (nilearn interpolates the
    filled volumes again), hence the full-rank confounds."""
    low_pass, high_pass, t_r = SCRUB_FILTERS[filter_case]
    censored = MIRRORED_MASKS[mask_case]
    kept = kept_volumes(censored)
    signals = make_signals(dtype, n_regions=GRID_REGIONS)
    confounds = full_rank_confounds if use_confounds else None
    bandpass = filter_case == "bandpass-tr2"
    kwargs = dict(detrend=bandpass, standardize="zscore_sample" if bandpass else "psc",
                  standardize_confounds=True, low_pass=low_pass, high_pass=high_pass,
                  t_r=t_r)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning any more
        ours = clean_signals(signals, confounds, sample_mask=kept, **kwargs)
    assert ours.shape == (N_VOLUMES - len(censored), GRID_REGIONS)
    assert_parity(ours, documented_clean_scrubbed(signals, confounds, sample_mask=kept,
                                                  **kwargs))


@pytest.mark.parametrize("use_confounds", [False, True], ids=["no-confounds", "confounds"])
def test_first_and_last_censored_gives_the_volumes_in_between(use_confounds,
                                                              full_rank_confounds):
    """Volumes 0 and 175 of 176 censored: the output is volumes 1 .. 174
    cleaned, as if the edges had been cut off (nilearn's own clean of
    ``signals[1:175]`` without a mask), whatever the edges hold.  Volume 174
    gets the spline's value at its own knot (one rounding), hence the
    full-rank confounds."""
    signals = make_signals(n_regions=GRID_REGIONS)
    signals[[0, 175]] += 500.0  # motion spikes: must not leak into the output
    confounds = full_rank_confounds if use_confounds else None
    kwargs = dict(detrend=True, standardize="zscore_sample", standardize_confounds=True,
                  low_pass=0.1, high_pass=0.01, t_r=2.0)
    ours = clean_signals(signals, confounds, sample_mask=kept_volumes([0, 175]),
                         **kwargs)
    inner = slice(1, 175)
    cut = nilearn_clean(signals[inner], None if confounds is None else confounds[inner],
                        **kwargs)
    assert ours.shape == (174, GRID_REGIONS)
    assert_parity(ours, cut)
    alone = clean_signals(signals[inner], None if confounds is None else confounds[inner],
                          **kwargs)
    assert relative_error(ours, alone) <= 1e-12


@pytest.mark.parametrize("mask_case", ["first-and-last", "mirrored-middle"])
def test_nilearn_mirrors_the_interpolation(mask_case):
    """Documents the nilearn 0.13.1 behaviour this module deviates from: its
    ``volumes[~sample_mask] = interpolated[~sample_mask]`` on int indices
    fills volume n - 1 - i for each kept volume i, so censored volumes whose
    mirror is censored stay raw (and with both edges censored, none is
    dropped and the output rows are volumes 0 .. 173).  If this test fails,
    nilearn has changed (fixed?): revisit clean_signals' Notes."""
    from scipy.signal import butter, sosfiltfilt

    kept = kept_volumes(MIRRORED_MASKS[mask_case])
    signals = make_signals(n_regions=GRID_REGIONS)
    signals[MIRRORED_MASKS[mask_case]] += 500.0  # motion spikes
    kwargs = dict(low_pass=0.1, t_r=2.0)
    theirs = nilearn_clean(signals, sample_mask=kept, **kwargs)
    ours = clean_signals(signals, sample_mask=kept, **kwargs)

    sos = butter(5, 0.1, btype="low", output="sos", fs=1 / 2.0)
    mirrored = nilearn_mirrored_interpolation(signals, kept, 2.0)
    assert relative_error(theirs, sosfiltfilt(sos, mirrored, axis=0)[kept - kept[0]]) <= 1e-12
    documented = documented_interpolation(signals, kept, 2.0)
    assert relative_error(ours, sosfiltfilt(sos, documented, axis=0)[kept - kept[0]]) <= 1e-12
    assert theirs.shape == ours.shape
    assert relative_error(theirs, ours) > 0.5  # the spikes went through nilearn
    if mask_case == "first-and-last":  # nothing interpolated nor dropped
        unmasked = nilearn_clean(signals, **kwargs)
        assert relative_error(theirs, unmasked[:174]) <= 1e-12  # volumes 0 .. 173


@pytest.mark.parametrize("mask_case", [*SCRUB_MASKS, *MIRRORED_MASKS])
def test_sample_mask_follows_the_documented_scrubbing(mask_case):
    """Independent of nilearn: interpolate the censored volumes with a cubic
    spline, drop the censored edges, band-pass filter, then keep the kept
    volumes (Lindquist et al. 2019, nilearn's documented order)."""
    from scipy.interpolate import CubicSpline
    from scipy.signal import butter, sosfiltfilt

    censored = {**SCRUB_MASKS, **MIRRORED_MASKS}[mask_case]
    kept = kept_volumes(censored)
    signals = make_signals()
    t_r = 2.0
    frame_times = np.arange(N_VOLUMES) * t_r
    filled = signals.copy()
    filled[censored] = CubicSpline(frame_times[kept], signals[kept])(frame_times[censored])
    filled = filled[kept[0]:kept[-1] + 1]  # censored edges dropped
    sos = butter(5, [0.01, 0.1], btype="band", output="sos", fs=1 / t_r)
    expected = sosfiltfilt(sos, filled, axis=0)[kept - kept[0]]

    ours = clean_signals(signals, sample_mask=kept, low_pass=0.1, high_pass=0.01, t_r=t_r)
    assert relative_error(ours, expected) <= 1e-12
    if mask_case in ("start", "end", "first-and-last"):  # edges only: as if cut off
        cut = clean_signals(signals[kept], low_pass=0.1, high_pass=0.01, t_r=t_r)
        assert relative_error(ours, cut) <= 1e-12


def test_sample_mask_without_filter_censors_first(regressors):
    """Without a filter the censored volumes are removed before anything else:
    the same as cleaning the kept volumes (and their confounds) alone."""
    kept = kept_volumes(SCRUB_MASKS["start-and-middle"])
    signals = make_signals()
    kwargs = dict(detrend=True, standardize="psc", standardize_confounds=True)
    ours = clean_signals(signals, regressors, sample_mask=kept, **kwargs)
    alone = clean_signals(signals[kept], regressors[kept], **kwargs)
    np.testing.assert_array_equal(ours, alone)


@pytest.mark.parametrize("filter_case", ["bandpass-tr2", "none"])
def test_sample_mask_forms_are_equivalent(filter_case):
    """Boolean mask, indices of any integer dtype, a list, or nilearn's list
    of one mask give the same result."""
    low_pass, high_pass, t_r = SCRUB_FILTERS[filter_case]
    censored = SCRUB_MASKS["middle"]
    kept = kept_volumes(censored)
    signals = make_signals(n_regions=GRID_REGIONS)
    kwargs = dict(detrend=True, standardize="zscore_sample", low_pass=low_pass,
                  high_pass=high_pass, t_r=t_r)
    reference = clean_signals(signals, sample_mask=kept, **kwargs)
    assert reference.shape[0] == N_VOLUMES - len(censored)
    for form in (boolean_mask(censored), kept.astype(np.int32),
                 kept.astype(np.uint16), kept.tolist(), [kept],
                 boolean_mask(censored).tolist()):
        np.testing.assert_array_equal(
            clean_signals(signals, sample_mask=form, **kwargs), reference)


@pytest.mark.parametrize("filter_case", ["bandpass-tr2", "none"])
def test_parity_sample_mask_keeping_everything(filter_case):
    """Mirrors ``nilearn.signal.clean(signals, sample_mask=all_volumes,
    detrend=True, standardize="zscore_sample", confounds=None,
    standardize_confounds=True, filter="butterworth", low_pass=low_pass,
    high_pass=high_pass, t_r=t_r, ensure_finite=False)``: the same as no
    mask, up to the spline's rounding at the last volume."""
    low_pass, high_pass, t_r = SCRUB_FILTERS[filter_case]
    signals = make_signals(n_regions=GRID_REGIONS)
    kwargs = dict(detrend=True, standardize="zscore_sample", low_pass=low_pass,
                  high_pass=high_pass, t_r=t_r)
    everything = np.ones(N_VOLUMES, dtype=bool)
    ours = clean_signals(signals, sample_mask=everything, **kwargs)
    assert_parity(ours, nilearn_clean(signals, sample_mask=everything, **kwargs))
    assert relative_error(ours, clean_signals(signals, **kwargs)) <= 1e-12


def test_parity_sample_mask_collapsed_band(regressors):
    """Mirrors ``nilearn.signal.clean(signals, sample_mask=kept, detrend=True,
    standardize="zscore_sample", confounds=confounds, standardize_confounds=True,
    filter="butterworth", low_pass=0.4, high_pass=0.3, t_r=2.0,
    ensure_finite=False)``: the band collapses (no filtering) but the censored
    volumes are still interpolated, then removed, as in nilearn."""
    kept = kept_volumes(SCRUB_MASKS["start-and-middle"])
    signals = make_signals(n_regions=GRID_REGIONS)
    kwargs = dict(detrend=True, standardize="zscore_sample", low_pass=0.4,
                  high_pass=0.3, t_r=2.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = clean_signals(signals, regressors, sample_mask=kept, **kwargs)
    assert any("unfiltered" in str(w.message) for w in caught)
    assert_parity(ours, nilearn_clean(signals, regressors, sample_mask=kept,
                                               **kwargs))
    censored_first = clean_signals(signals, regressors, sample_mask=kept,
                                   detrend=True, standardize="zscore_sample")
    assert relative_error(ours, censored_first) > 1e-6  # interpolated, not censored


def test_parity_nan_at_censored_volume(regressors):
    """Mirrors ``nilearn.signal.clean(signals_with_nan, sample_mask=kept,
    detrend=True, standardize="zscore_sample", confounds=confounds,
    standardize_confounds=True, filter="butterworth", low_pass=0.1,
    high_pass=0.01, t_r=2.0, ensure_finite=False)``: a NaN at a censored
    volume is interpolated over and never reaches the output."""
    signals = make_signals()
    signals[41, 3] = np.nan
    kept = kept_volumes(SCRUB_MASKS["middle"])
    kwargs = dict(detrend=True, standardize="zscore_sample",
                  low_pass=0.1, high_pass=0.01, t_r=2.0)
    ours = clean_signals(signals, regressors, sample_mask=kept, **kwargs)
    assert np.isfinite(ours).all()
    assert_parity(ours, nilearn_clean(signals, regressors, sample_mask=kept,
                                               **kwargs))


#: name -> run lengths (176 volumes in all) and labels, in volume order
RUN_CASES = {
    "2-runs": ([96, 80], [0, 1]),
    "3-runs": ([50, 70, 56], [0, 1, 2]),
    "3-runs-unsorted-labels": ([50, 70, 56], [2, 0, 1]),
}


def run_labels(case):
    lengths, labels = RUN_CASES[case]
    return np.repeat(labels, lengths)


def run_sample_masks(runs):
    """One mask per run (sorted labels), 5 censored volumes each: the start
    and the middle in runs 0, 2, the middle and the end in run 1; no censored
    volume's mirror is censored."""
    masks = []
    for i, label in enumerate(np.unique(runs)):
        n = int(np.count_nonzero(runs == label))
        m = n // 2
        edge = [0, 1] if i % 2 == 0 else [n - 2, n - 1]
        masks.append(kept_volumes(sorted(edge + [m, m + 1, m + 5]), n))
    return masks


def _runs_grid():
    for dtype in (np.float64, np.float32):
        for run_case in RUN_CASES:
            for use_mask in (False, True):
                for filter_case in ("bandpass-tr2", "none"):
                    for use_confounds in (False, True):
                        yield pytest.param(
                            run_case, use_mask, filter_case, use_confounds, dtype,
                            id="-".join([
                                run_case, "mask" if use_mask else "no-mask",
                                filter_case,
                                "confounds" if use_confounds else "no-confounds",
                                np.dtype(dtype).name,
                            ]),
                        )


@pytest.mark.parametrize(
    "run_case, use_mask, filter_case, use_confounds, dtype", list(_runs_grid())
)
def test_parity_runs(run_case, use_mask, filter_case, use_confounds, dtype,
                     regressors):
    """Mirrors ``nilearn.signal.clean(signals, runs=runs, detrend=detrend,
    standardize=standardize, sample_mask=per_run_masks or None,
    confounds=confounds, standardize_confounds=True, filter="butterworth",
    low_pass=low_pass, high_pass=high_pass, t_r=t_r, ensure_finite=False)``.

    detrend and the standardization (zscore_sample / psc) alternate with the
    dtype so that both meet every other case.
    """
    low_pass, high_pass, t_r = SCRUB_FILTERS[filter_case]
    runs = run_labels(run_case)
    sample_mask = run_sample_masks(runs) if use_mask else None
    signals = make_signals(dtype, n_regions=GRID_REGIONS)
    confounds = regressors if use_confounds else None
    float64 = dtype is np.float64
    kwargs = dict(detrend=float64 != use_mask,
                  standardize="zscore_sample" if float64 == use_confounds else "psc",
                  standardize_confounds=True, low_pass=low_pass,
                  high_pass=high_pass, t_r=t_r)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = clean_signals(signals, confounds, sample_mask=sample_mask, runs=runs,
                             **kwargs)
    reference = nilearn_clean(signals, confounds, sample_mask=sample_mask,
                                       runs=runs, **kwargs)
    assert_parity(ours, reference)
    assert not [w for w in caught if "neither interpolated" in str(w.message)]
    n_kept = N_VOLUMES - (5 * len(RUN_CASES[run_case][0]) if use_mask else 0)
    assert ours.shape == (n_kept, GRID_REGIONS)


def test_runs_mirrored_censoring_follows_the_documented_scrubbing():
    """The first and last volume of each run censored (a mirrored pair in
    each run): every run follows the documented procedure
    (`documented_clean_scrubbed`, run by run), not nilearn 0.13.1's mirrored
    indexing."""
    runs = run_labels("2-runs")
    masks = [kept_volumes([0, 95], 96), kept_volumes([0, 30, 79], 80)]
    signals = make_signals(n_regions=GRID_REGIONS)
    kwargs = dict(detrend=True, standardize="zscore_sample", low_pass=0.1, t_r=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = clean_signals(signals, sample_mask=masks, runs=runs, **kwargs)
    expected = np.vstack([
        documented_clean_scrubbed(signals[runs == label], sample_mask=mask, **kwargs)
        for label, mask in zip([0, 1], masks)
    ])
    assert ours.shape == (176 - 5, GRID_REGIONS)
    assert_parity(ours, expected)


def test_warnings_point_at_the_caller(regressors):
    """The module's warnings name the line that called clean_signals, with
    and without runs and sample masks."""
    signals = make_signals(n_regions=GRID_REGIONS)
    runs = run_labels("2-runs")
    calls = [
        lambda: clean_signals(signals, low_pass=0.3, t_r=2.0),  # Nyquist
        lambda: clean_signals(signals, runs=runs, low_pass=0.3, t_r=2.0),
        lambda: clean_signals(signals, sample_mask=kept_volumes([0, 175]),
                              low_pass=0.4, high_pass=0.3, t_r=2.0),  # collapsed
        lambda: clean_signals(signals, runs=runs, sample_mask=[[5], [6]],
                              detrend=True),  # single volume
        lambda: clean_signals(signals, regressors, runs=runs,
                              standardize_confounds=False, detrend=True),
    ]
    for call in calls:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        assert caught
        assert {w.filename for w in caught} == {__file__}


def test_runs_are_cleaned_separately_in_sorted_label_order(regressors):
    """Independent of nilearn: with interleaved, unsorted labels, the result
    is each run cleaned alone (with its own mask), stacked by sorted label."""
    runs = np.tile(np.repeat(["rest", "b-task"], [22, 22]), 4)  # 176, interleaved
    signals = make_signals(n_regions=GRID_REGIONS)
    masks = [kept_volumes([0, 40, 86], 88), boolean_mask([3, 4, 50], 88)]
    kwargs = dict(detrend=True, standardize="psc", low_pass=0.1, high_pass=0.01,
                  t_r=2.0)
    ours = clean_signals(signals, regressors, sample_mask=masks, runs=runs, **kwargs)
    expected = np.vstack([
        clean_signals(signals[runs == label], regressors[runs == label],
                      sample_mask=mask, **kwargs)
        for label, mask in zip(["b-task", "rest"], masks)
    ])
    assert ours.shape == (176 - 6, GRID_REGIONS)
    np.testing.assert_array_equal(ours, expected)


def test_parity_runs_ignore_standardize_confounds_false(regressors):
    """Mirrors ``nilearn.signal.clean(signals, runs=runs, detrend=True,
    standardize="zscore_sample", sample_mask=None, confounds=confounds,
    standardize_confounds=False, filter="butterworth", low_pass=0.1,
    high_pass=None, t_r=2.0, ensure_finite=False)``: nilearn's
    ``_process_runs`` does not pass standardize_confounds on, so the
    confounds are z-scored anyway (reproduced, with a warning)."""
    runs = run_labels("3-runs")
    signals = make_signals(n_regions=GRID_REGIONS)
    kwargs = dict(detrend=True, standardize="zscore_sample", low_pass=0.1, t_r=2.0)
    with pytest.warns(UserWarning, match="standardize_confounds=False is ignored with runs"):
        ours = clean_signals(signals, regressors, runs=runs,
                             standardize_confounds=False, **kwargs)
    assert_parity(ours, nilearn_clean(signals, regressors, runs=runs,
                                               standardize_confounds=False, **kwargs))
    standardized = clean_signals(signals, regressors, runs=runs,
                                 standardize_confounds=True, **kwargs)
    np.testing.assert_array_equal(ours, standardized)


def test_runs_with_any_labels_accept_sample_masks():
    """nilearn needs the labels 0 .. n_runs - 1 with sample masks (it checks
    the mask of run i against the volumes labelled i); any labels work here."""
    runs = np.repeat([1, 2], [96, 80])
    signals = make_signals(n_regions=GRID_REGIONS)
    masks = run_sample_masks(runs)
    kwargs = dict(detrend=True, standardize="zscore_sample", low_pass=0.1, t_r=2.0)
    ours = clean_signals(signals, sample_mask=masks, runs=runs, **kwargs)
    zero_based = nilearn_clean(signals, sample_mask=masks, runs=runs - 1,
                                        **kwargs)
    assert_parity(ours, zero_based)
    with pytest.raises(IndexError):
        nilearn_clean(signals, sample_mask=masks, runs=runs, **kwargs)
    # a single run labelled 0 (nilearn fails), bare mask or list of one
    kept = kept_volumes(SCRUB_MASKS["start-and-middle"])
    alone = clean_signals(signals, sample_mask=kept, **kwargs)
    for form in (kept, [kept]):
        single = clean_signals(signals, sample_mask=form, runs=np.zeros(176, int),
                               **kwargs)
        np.testing.assert_array_equal(single, alone)


def test_sample_mask_and_runs_are_not_modified():
    signals = make_signals(n_regions=GRID_REGIONS)
    runs = run_labels("2-runs")
    masks = [m.astype(np.int32) for m in run_sample_masks(runs)]
    before = [m.copy() for m in masks]
    runs_before = runs.copy()
    signals_before = signals.copy()
    clean_signals(signals, sample_mask=masks, runs=runs, low_pass=0.1, t_r=2.0)
    single = kept_volumes(SCRUB_MASKS["middle"]).astype(np.int32)
    single_before = single.copy()
    clean_signals(signals, sample_mask=single, low_pass=0.1, t_r=2.0)
    np.testing.assert_array_equal(single, single_before)
    for mask, mask_before in zip(masks, before):
        np.testing.assert_array_equal(mask, mask_before)
    np.testing.assert_array_equal(runs, runs_before)
    np.testing.assert_array_equal(signals, signals_before)


# ---- validation of sample_mask and runs


@pytest.mark.parametrize("mask", [np.array([], dtype=int), [], np.zeros(N_VOLUMES, bool)],
                         ids=["empty-indices", "empty-list", "all-false"])
@pytest.mark.parametrize("filter_case", ["bandpass-tr2", "none"])
def test_empty_sample_mask_is_rejected(mask, filter_case):
    low_pass, high_pass, t_r = SCRUB_FILTERS[filter_case]
    with pytest.raises(ValueError, match="the sample mask keeps no volume"):
        clean_signals(make_signals(), sample_mask=mask, low_pass=low_pass,
                      high_pass=high_pass, t_r=t_r)


@pytest.mark.parametrize("mask, match", [
    (np.array([-1, 3, 4]), r"indices \[-1\] are out of range: there are 176 volumes"),
    (np.array([3, 4, 176]), r"indices \[176\] are out of range"),
    (np.array([3, 3, 4]), "strictly increasing"),
    (np.array([5, 4, 6]), "strictly increasing"),
    (np.ones(175, dtype=bool), "boolean sample mask has 175 values but there are 176 volumes"),
    (np.ones((2, 88), dtype=int), r"1D .* shape \(2, 88\)"),
])
def test_bad_sample_mask_is_rejected(mask, match):
    with pytest.raises(ValueError, match=match):
        clean_signals(make_signals(), sample_mask=mask)


@pytest.mark.parametrize("mask", [np.array([1.0, 2.0, 3.0]), np.array(["1", "2"])],
                         ids=["float", "str"])
def test_sample_mask_of_bad_dtype_is_rejected(mask):
    with pytest.raises(TypeError, match="boolean mask or integer indices"):
        clean_signals(make_signals(), sample_mask=mask)


@pytest.mark.parametrize("n_volumes, kept, low_pass, high_pass, padlen", [
    (60, np.arange(30), 0.1, 0.01, 33),  # end censored: 30 left for a band-pass
    (60, np.arange(26, 60), 0.1, 0.01, None),  # 34 > 33: fine
    (36, np.arange(18, 36), 0.1, None, 18),  # start censored: 18 for a low-pass
    (38, np.arange(19, 38), 0.1, None, None),  # 19 > 18: fine
])
def test_too_few_kept_volumes_for_the_filter(n_volumes, kept, low_pass, high_pass,
                                            padlen):
    """nilearn fails inside scipy (sosfiltfilt's padlen); the boundary is
    scipy's: more than 3 * ntaps volumes."""
    signals = make_signals(n_volumes=n_volumes, n_regions=3)
    kwargs = dict(low_pass=low_pass, high_pass=high_pass, t_r=2.0)
    if padlen is None:
        ours = clean_signals(signals, sample_mask=kept, **kwargs)
        assert_parity(ours, nilearn_clean(signals, sample_mask=kept, **kwargs))
        return
    match = (rf"the sample mask keeps {len(kept)} of {n_volumes} volume\(s\), leaving "
             rf"{len(kept)} to filter .*needs more than {padlen} \(scipy's sosfiltfilt")
    with pytest.raises(ValueError, match=match):
        clean_signals(signals, sample_mask=kept, **kwargs)
    with pytest.raises(ValueError, match=f"greater than padlen, which is {padlen}"):
        nilearn_clean(signals, sample_mask=kept, **kwargs)


def test_one_kept_volume_with_a_filter_is_rejected():
    with pytest.raises(ValueError, match=r"keeps 1 of 176 volume\(s\), but interpolating .* at least 2"):
        clean_signals(make_signals(), sample_mask=[100], low_pass=0.1, t_r=2.0)
    # without a filter, one volume is cleaned (with the single-volume warnings)
    with pytest.warns(UserWarning, match="single volume"):
        out = clean_signals(make_signals(), sample_mask=[100], detrend=True)
    assert out.shape == (1, N_REGIONS)


def test_non_finite_kept_signal_with_a_filter_is_rejected():
    """nilearn fails in scipy's CubicSpline ("`y` must contain only finite
    values")."""
    signals = make_signals()
    signals[50, 2] = np.inf
    kept = kept_volumes(SCRUB_MASKS["middle"])
    with pytest.raises(ValueError, match=r"non-finite values .* at kept volumes in column\(s\) \[2\]"):
        clean_signals(signals, sample_mask=kept, low_pass=0.1, t_r=2.0)
    with pytest.raises(ValueError, match="finite"):
        nilearn_clean(signals, sample_mask=kept, low_pass=0.1, t_r=2.0)


@pytest.mark.parametrize("runs, error, match", [
    (np.zeros(175, int), ValueError, "runs has 175 labels but the signals have 176 volumes"),
    (np.zeros((176, 1), int), ValueError, r"runs must be a 1D array .* shape \(176, 1\)"),
    (np.r_[np.zeros(175), np.nan], ValueError, "runs must not contain NaN"),
])
def test_bad_runs_are_rejected(runs, error, match):
    with pytest.raises(error, match=match):
        clean_signals(make_signals(), runs=runs)


def test_bad_run_sample_masks_are_rejected():
    runs = run_labels("3-runs")
    masks = run_sample_masks(runs)
    signals = make_signals()
    with pytest.raises(TypeError, match="with 3 runs, sample_mask must be a list of masks"):
        clean_signals(signals, sample_mask=np.arange(170), runs=runs)
    with pytest.raises(ValueError, match=r"holds 2 mask\(s\) but there are 3 runs \(labels \[0, 1, 2\]\)"):
        clean_signals(signals, sample_mask=masks[:2], runs=runs)
    with pytest.raises(ValueError, match=r"run 1: sample mask indices \[70\] are out of range: there are 70"):
        clean_signals(signals, sample_mask=[masks[0], np.arange(71), masks[2]], runs=runs)
    with pytest.raises(ValueError, match="run 2: the sample mask keeps no volume"):
        clean_signals(signals, sample_mask=[masks[0], masks[1], []], runs=runs)
    with pytest.raises(ValueError, match=r"run 0: the sample mask keeps 25 of 50 volume\(s\), leaving 25 to filter"):
        clean_signals(signals, sample_mask=[np.arange(25), masks[1], masks[2]], runs=runs,
                      low_pass=0.1, high_pass=0.01, t_r=2.0)


def test_run_too_short_for_the_filter_is_rejected():
    runs = np.repeat(["a", "b"], [160, 16])
    with pytest.raises(ValueError, match=r"run 'b': the run has 16 volume\(s\), but the Butterworth filter needs more than 18"):
        clean_signals(make_signals(), runs=runs, low_pass=0.1, t_r=2.0)


def test_constant_columns():
    """Constant up to CONSTANT_RTOL of the run's largest |value|, over the kept
    volumes; a column near 0 is judged on the run's scale; NaN is not constant."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 5)) + 100.0
    x[:, 1] = 140.75
    x[:, 2] = 1e-13 * rng.standard_normal(30)  # rounding leakage around 0
    x[:10, 3] = 100.0                           # constant on the first 10 volumes only
    assert CONSTANT_RTOL == 16 * float(np.finfo(np.float32).eps)
    assert constant_columns(x) == [1, 2]
    assert constant_columns(x, sample_mask=np.arange(10)) == [1, 2, 3]
    assert constant_columns(x, sample_mask=np.arange(30) < 10) == [1, 2, 3]
    x[:, 4] = 100.0 + np.arange(30) * 1e-3     # a slow but real drift
    assert 4 not in constant_columns(x)
    x[3, 1] = np.nan
    assert constant_columns(x) == [2]
    assert constant_columns(np.zeros((4, 2), np.float32)) == [0, 1]
    assert constant_columns(np.zeros((0, 3))) == []
    with pytest.raises(ValueError, match="must be 2D"):
        constant_columns(np.zeros(3))


# --------------------------------------------------------------------------
# regions without data: whole columns of n/a (clean_run_signals)
# --------------------------------------------------------------------------
def test_missing_regions_are_whole_nan_columns():
    x = make_signals(n_volumes=20, n_regions=5)
    assert not missing_regions(x).any()
    x[:, [1, 3]] = np.nan
    assert missing_regions(x).tolist() == [False, True, False, True, False]
    assert missing_regions(np.zeros((0, 3))).tolist() == [False] * 3
    x[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"n/a in some volumes only, first column 2 "
                                         r"\(1 of 20 volumes\)"):
        missing_regions(x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("filtered", [False, True])
def test_clean_run_signals_leaves_missing_regions_out(full_rank_confounds, dtype, filtered):
    """Mirrors ``nilearn.signal.clean(signals[:, present], confounds=confounds,
    detrend=True, standardize="zscore_sample", high_pass=0.01 (filtered),
    t_r=2.0, sample_mask=kept)``: nilearn drops the columns, we keep them n/a.
    The present columns are exactly `clean_run_signals` of those columns alone."""
    signals = make_signals(dtype)
    missing = [0, 7, 8, 38]
    present = np.setdiff1d(np.arange(N_REGIONS), missing)
    signals[:, 12] = 140.75  # constant: set to 0, its index in the atlas' columns
    with_na = signals.copy()
    with_na[:, missing] = np.nan
    kept = np.setdiff1d(np.arange(N_VOLUMES), [30, 31, 32, 90])
    kwargs = dict(detrend=True, standardize="zscore_sample", t_r=2.0, sample_mask=kept,
                  high_pass=0.01 if filtered else None)
    cleaned, constant = clean_run_signals(with_na, full_rank_confounds, **kwargs)
    alone, constant_alone = clean_run_signals(signals[:, present], full_rank_confounds,
                                              **kwargs)
    assert cleaned.shape == (len(kept), N_REGIONS) and cleaned.dtype == alone.dtype
    assert np.isnan(cleaned[:, missing]).all() and not np.isnan(cleaned[:, present]).any()
    np.testing.assert_array_equal(cleaned[:, present], alone)
    assert constant == [12] and constant_alone == [int(np.flatnonzero(present == 12)[0])]
    reference = nilearn_clean(signals[:, present], full_rank_confounds, **kwargs)
    keep = present != 12  # nilearn blows the constant region's rounding noise up
    assert relative_error(cleaned[:, present[keep]], reference[:, keep]) <= TOLERANCE[
        np.dtype(dtype)]
    # no region missing: the same call as before n/a regions existed
    full, _ = clean_run_signals(signals, full_rank_confounds, **kwargs)
    ours = clean_signals(signals, full_rank_confounds, **kwargs)
    ours[:, 12] = 0
    np.testing.assert_array_equal(full, ours)


def test_clean_run_signals_with_every_region_missing_raises():
    with pytest.raises(ValueError, match=r"every region \(3\) is n/a"):
        clean_run_signals(np.full((10, 3), np.nan), detrend=True)
