"""Tests of cohort_connectome.filters against scipy.signal.

scipy is the oracle here: `butter_sos` must give ``scipy.signal.butter(...,
output="sos")`` and `sosfiltfilt` ``scipy.signal.sosfiltfilt``.  Every
comparison asserts a relative difference (``max|ours - scipy| / max|scipy|``)
of at most 1e-13; with scipy 1.17 on x86-64 (see `EXACT`), whose algorithms
the module reproduces operation for operation, the results must moreover be
bit-identical.
"""

import platform
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy
from scipy import signal as sp_signal

from cohort_connectome import filters
from cohort_connectome.filters import butter_sos, sosfiltfilt
from conftest import relative_error

TOLERANCE = 1e-13
#: the module reproduces scipy 1.17's order of operations: bit-identical there,
#: on x86-64 (elsewhere, e.g. arm64, the compiler may fuse the multiply-adds of
#: scipy's compiled sosfilt loop, and the results then differ by rounding)
EXACT = (scipy.__version__.split(".")[:2] == ["1", "17"]
         and platform.machine().lower() in ("x86_64", "amd64"))
EPS32 = float(np.finfo(np.float32).eps)

#: nilearn's Butterworth cut-offs (Hz) and repetition times (s)
TRS = (0.72, 1.5, 2.0, 2.5, 3.0)
NILEARN_FILTERS = {
    "high-0.008": (None, 0.008),
    "high-0.01": (None, 0.01),
    "low-0.08": (0.08, None),
    "low-0.1": (0.1, None),
    "band-0.008-0.08": (0.08, 0.008),
    "band-0.01-0.1": (0.1, 0.01),
    "band-0.01-0.08": (0.08, 0.01),
    "band-0.008-0.1": (0.1, 0.008),
}

#: normalized critical frequencies of the design grid, from near 0 to near 1
SINGLE_WN = (1e-7, 1.2e-7, 1e-5, 1e-3, 0.004, 0.01, 0.0432, 0.1, 0.2, 0.25,
             1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.8, 0.9, 0.99, 0.999,
             1 - 10 * EPS32, 1 - 1e-12)
BAND_WN = ((1e-7, 0.5), (1e-5, 1e-4), (0.001, 0.999), (0.01, 0.1),
           (0.02, 0.4), (0.1, 0.9), (0.3, 0.31), (0.4, 0.400001),
           (0.5, 1 - 10 * EPS32), (0.0288, 0.288), (0.04, 0.5), (0.9, 0.99))


def assert_matches(ours, reference):
    """Same dtype and shape, relative difference <= TOLERANCE (0 with 1.17)."""
    ours, reference = np.asarray(ours), np.asarray(reference)
    assert ours.dtype == reference.dtype
    assert ours.shape == reference.shape
    if reference.size == 0 or not np.any(reference):
        np.testing.assert_array_equal(ours, reference)
        return
    assert relative_error(ours, reference) <= TOLERANCE
    if EXACT:
        np.testing.assert_array_equal(ours, reference, strict=True)


def nilearn_critical(t_r, low_pass, high_pass):
    """(btype, critical frequencies in Hz, fs) as nilearn's ``butterworth``."""
    fs = 1.0 / t_r
    nyq = fs * 0.5
    critical = []
    for btype, freq in (("high", high_pass), ("low", low_pass)):
        if freq is not None:
            if freq >= nyq:
                freq = nyq - (nyq * 10 * EPS32)
            critical.append(freq)
            kind = btype
    if len(critical) == 2:
        return "band", critical, fs
    return kind, critical[0], fs


# --------------------------------------------------------------------------
# butter_sos
# --------------------------------------------------------------------------


@pytest.mark.parametrize("order", range(1, filters.MAX_ORDER + 1))
@pytest.mark.parametrize("btype", ["lowpass", "highpass"])
def test_butter_sos_single_cutoff_matches_scipy(order, btype):
    for wn in SINGLE_WN:
        ours = butter_sos(order, wn, btype)
        assert ours.shape == ((order + 1) // 2, 6)
        assert_matches(ours, sp_signal.butter(order, wn, btype=btype,
                                              output="sos"))


@pytest.mark.parametrize("order", range(1, filters.MAX_ORDER + 1))
def test_butter_sos_bandpass_matches_scipy(order):
    for wn in BAND_WN:
        ours = butter_sos(order, wn, "bandpass")
        assert ours.shape == (order, 6)
        assert_matches(ours, sp_signal.butter(order, wn, btype="bandpass",
                                              output="sos"))
        assert_matches(butter_sos(order, np.array(wn), "bandpass"), ours)


@pytest.mark.parametrize("t_r", TRS)
@pytest.mark.parametrize("name", NILEARN_FILTERS)
def test_butter_sos_nilearn_cases(t_r, name):
    """Order 5 with ``fs``, as nilearn calls it, and with normalized wn."""
    btype, critical, fs = nilearn_critical(t_r, *NILEARN_FILTERS[name])
    reference = sp_signal.butter(N=5, Wn=critical, btype=btype, output="sos",
                                 fs=fs)
    assert_matches(butter_sos(5, critical, btype, fs=fs), reference)
    normalized = np.asarray(critical) / (fs * 0.5)
    assert_matches(butter_sos(5, normalized, btype),
                   sp_signal.butter(5, normalized, btype=btype, output="sos"))


@pytest.mark.parametrize("t_r", TRS)
@pytest.mark.parametrize("low_pass, high_pass", [
    (10.0, None),  # above Nyquist: moved just below it
    (None, 10.0),
    (10.0, 0.01),
    (0.1, None),
])
def test_butter_sos_nilearn_clipped_cutoffs(t_r, low_pass, high_pass):
    """Cut-offs moved below Nyquist by nilearn: wn = 1 - 10 * eps32."""
    btype, critical, fs = nilearn_critical(t_r, low_pass, high_pass)
    assert_matches(butter_sos(5, critical, btype, fs=fs),
                   sp_signal.butter(N=5, Wn=critical, btype=btype,
                                    output="sos", fs=fs))


@pytest.mark.parametrize("alias, canonical, wn", [
    ("low", "lowpass", 0.2), ("lp", "lowpass", 0.2), ("l", "lowpass", 0.2),
    ("LOWPASS", "lowpass", 0.2), ("high", "highpass", 0.2),
    ("hp", "highpass", 0.2), ("h", "highpass", 0.2),
    ("band", "bandpass", (0.1, 0.3)), ("bp", "bandpass", (0.1, 0.3)),
    ("pass", "bandpass", (0.1, 0.3)),
])
def test_butter_sos_btype_aliases(alias, canonical, wn):
    np.testing.assert_array_equal(butter_sos(4, wn, alias),
                                  butter_sos(4, wn, canonical))


def test_butter_sos_default_is_lowpass_and_types():
    sos = butter_sos(3, 0.3)
    np.testing.assert_array_equal(sos, butter_sos(3, 0.3, "lowpass"))
    assert sos.dtype == np.float64 and sos.flags.c_contiguous
    np.testing.assert_array_equal(butter_sos(np.int64(3), np.float32(0.25)),
                                  sp_signal.butter(3, np.float32(0.25),
                                                   output="sos"))
    np.testing.assert_array_equal(butter_sos(5, 0.1, fs=4),
                                  sp_signal.butter(5, 0.1, fs=4, output="sos"))


@pytest.mark.parametrize("args, kwargs", [
    ((0, 0.2), {}),
    ((11, 0.2), {}),
    ((-2, 0.2), {}),
    ((2.0, 0.2), {}),
    ((True, 0.2), {}),
    ((4, 0.0), {}),
    ((4, -0.1), {}),
    ((4, 1.0), {}),
    ((4, 1.5), {}),
    ((4, np.nan), {}),
    ((4, 0.1), {"fs": 0.2}),  # wn at fs / 2
    ((4, 0.2), {"fs": 0.2}),
    ((4, 0.1), {"fs": [1.0, 2.0]}),
    ((4, (0.1, 0.3), "lowpass"), {}),
    ((4, (0.1, 0.3), "highpass"), {}),
    ((4, 0.2, "bandpass"), {}),
    ((4, (0.3, 0.1), "bandpass"), {}),
    ((4, (0.3, 0.3), "bandpass"), {}),
    ((4, (0.1, 0.2, 0.3), "bandpass"), {}),
    ((4, [[0.1, 0.2]], "bandpass"), {}),
    ((4, (0.1, 1.0), "bandpass"), {}),
    ((4, (0.1, 0.3), "bandstop"), {}),
    ((4, 0.2, "notch"), {}),
    ((4, 0.2, None), {}),
])
def test_butter_sos_invalid_raises(args, kwargs):
    with pytest.raises(ValueError):
        butter_sos(*args, **kwargs)


def test_butter_sos_messages_follow_scipy():
    for wn, kwargs in ((0.0, {}), (1.0, {}), (0.2, {"fs": 0.2})):
        with pytest.raises(ValueError) as ours:
            butter_sos(4, wn, **kwargs)
        with pytest.raises(ValueError) as theirs:
            sp_signal.butter(4, wn, output="sos", **kwargs)
        assert str(ours.value) == str(theirs.value)


# --------------------------------------------------------------------------
# sosfiltfilt
# --------------------------------------------------------------------------

#: second-order sections filtered with: nilearn's, odd order, wide band
SOS = {
    "low5": sp_signal.butter(5, 0.4, "lowpass", output="sos"),
    "high5": sp_signal.butter(5, 0.02, "highpass", output="sos"),
    "band5": sp_signal.butter(5, (0.05, 0.4), "bandpass", output="sos"),
    "low1": sp_signal.butter(1, 0.3, "lowpass", output="sos"),
    "high4": sp_signal.butter(4, 0.1, "highpass", output="sos"),
    "band10": sp_signal.butter(10, (0.1, 0.6), "bandpass", output="sos"),
}

#: (shape, axis): the filtered axis has >= 64 samples (band10's padding is 63)
SHAPES = [
    ((200,), 0),
    ((200,), -1),
    ((176, 39), 0),
    ((7, 150), -1),
    ((7, 150), 1),
    ((4, 90, 3), 1),
    ((3, 2, 120), -1),
    ((100, 1), 0),
    ((1, 100), -1),
]

PADS = [("odd", None), ("even", None), ("constant", None), (None, None),
        ("odd", 0), ("odd", 5), ("even", 17), ("constant", 40), (None, 3),
        ("odd", -2)]


def random_signals(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3.0 + 1.5
    # a trend and an offset, so that the padding and initial states matter
    x += np.linspace(-2.0, 5.0, shape[-1])
    return x.astype(dtype)


@pytest.mark.parametrize("shape, axis", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("padtype, padlen", PADS)
def test_sosfiltfilt_matches_scipy(shape, axis, dtype, padtype, padlen):
    x = random_signals(shape, dtype, seed=len(shape) + axis)
    for sos in SOS.values():
        ours = sosfiltfilt(sos, x, axis=axis, padtype=padtype, padlen=padlen)
        theirs = sp_signal.sosfiltfilt(sos, x, axis=axis, padtype=padtype,
                                       padlen=padlen)
        assert_matches(ours, theirs)


@pytest.mark.parametrize("x_dtype", [np.float32, np.float64, np.int16,
                                     np.int64, np.bool_, np.float16])
@pytest.mark.parametrize("sos_dtype", [np.float32, np.float64])
def test_sosfiltfilt_dtypes_follow_scipy(x_dtype, sos_dtype):
    """The working dtype is ``result_type(sos, x)``: float32 sections and
    float32 signals filter in float32, anything with float64 in float64."""
    x = random_signals((130, 5), np.float64, seed=3) * 20
    x = (x > 0) if x_dtype is np.bool_ else x.astype(x_dtype)
    sos = SOS["band5"].astype(sos_dtype)
    ours = sosfiltfilt(sos, x, axis=0)
    if x_dtype is not np.bool_:  # booleans are padded as integers
        assert ours.dtype == np.result_type(sos, x)
    assert_matches(ours, sp_signal.sosfiltfilt(sos, x, axis=0))


@pytest.mark.parametrize("t_r", TRS)
@pytest.mark.parametrize("name", NILEARN_FILTERS)
def test_sosfiltfilt_nilearn_pipeline(t_r, name):
    """nilearn's filter: butter(5, ..., fs) then sosfiltfilt(axis=0, 'odd')."""
    btype, critical, fs = nilearn_critical(t_r, *NILEARN_FILTERS[name])
    sos = butter_sos(5, critical, btype, fs=fs)
    reference_sos = sp_signal.butter(N=5, Wn=critical, btype=btype,
                                     output="sos", fs=fs)
    for dtype in (np.float64, np.float32):
        x = random_signals((176, 39), dtype, seed=7)
        ours = sosfiltfilt(sos, x, axis=0, padtype="odd", padlen=None)
        assert ours.flags.c_contiguous
        assert_matches(ours, sp_signal.sosfiltfilt(reference_sos, x, axis=0,
                                                   padtype="odd", padlen=None))


def test_sosfiltfilt_does_not_modify_input_and_accepts_lists():
    x = random_signals((80, 3), np.float64)
    x_f = np.asfortranarray(x)
    before = x.copy()
    sos = SOS["low5"]
    ours = sosfiltfilt(sos, x_f, axis=0)
    np.testing.assert_array_equal(x_f, before)
    assert_matches(ours, sp_signal.sosfiltfilt(sos, x, axis=0))
    assert_matches(sosfiltfilt(sos.tolist(), x[:, 0].tolist()),
                   sp_signal.sosfiltfilt(sos, x[:, 0]))
    # a strided, reversed view
    view = x[::-1, ::2]
    assert_matches(sosfiltfilt(sos, view, axis=0),
                   sp_signal.sosfiltfilt(sos, view, axis=0))


def test_sosfiltfilt_nonfinite_values_without_warnings():
    """NaN and inf propagate as in scipy; the filter loop stays silent."""
    x = random_signals((120, 6), np.float64)
    x[40, 1] = np.nan
    x[70, 2] = np.inf
    x[10, 3] = -np.inf
    x[60, 4] = np.nan
    x[65, 4] = np.inf
    sos = SOS["band5"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = sosfiltfilt(sos, x, axis=0)
    theirs = sp_signal.sosfiltfilt(sos, x, axis=0)
    assert not np.isfinite(ours[:, 1:5]).any()
    np.testing.assert_array_equal(ours, theirs, strict=True)
    assert_matches(ours[:, [0, 5]], theirs[:, [0, 5]])


def test_sosfiltfilt_overflow_like_scipy():
    """Huge values overflow (with numpy's warning in the odd extension)."""
    x = random_signals((120, 3), np.float64)
    x[:, 1] = 1e308
    x[50, 2] = -1e308
    sos = SOS["low5"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ours = sosfiltfilt(sos, x, axis=0)
        theirs = sp_signal.sosfiltfilt(sos, x, axis=0)
    np.testing.assert_array_equal(ours, theirs, strict=True)
    assert_matches(ours[:, 0], theirs[:, 0])


@pytest.mark.parametrize("n_samples", [1, 2, 3, 5, 9, 11])
def test_sosfiltfilt_fewer_samples_than_sections(n_samples):
    """Without padding, signals shorter than the cascade (10 sections)."""
    x = random_signals((n_samples, 4), np.float64)
    for sos in (SOS["band10"], SOS["low1"]):
        assert_matches(sosfiltfilt(sos, x, axis=0, padtype=None),
                       sp_signal.sosfiltfilt(sos, x, axis=0, padtype=None))
    sos = SOS["band10"]
    if n_samples >= 2:
        assert_matches(
            sosfiltfilt(sos, x, axis=0, padlen=n_samples - 1),
            sp_signal.sosfiltfilt(sos, x, axis=0, padlen=n_samples - 1),
        )


def test_sosfiltfilt_blocks_of_signals(monkeypatch):
    """Wide inputs are filtered in blocks of signals (last block partial)."""
    monkeypatch.setattr(filters, "_BLOCK_ELEMENTS", 64)
    x = random_signals((90, 37), np.float64, seed=11)
    for name in ("low5", "band10", "low1"):
        sos = SOS[name]
        assert_matches(sosfiltfilt(sos, x, axis=0),
                       sp_signal.sosfiltfilt(sos, x, axis=0))
    x = random_signals((5, 3, 80), np.float32, seed=12)
    assert_matches(sosfiltfilt(SOS["band5"], x, axis=-1),
                   sp_signal.sosfiltfilt(SOS["band5"], x, axis=-1))


def test_sosfiltfilt_empty_signal_axis():
    x = np.zeros((100, 0))
    sos = SOS["band5"]
    assert_matches(sosfiltfilt(sos, x, axis=0),
                   sp_signal.sosfiltfilt(sos, x, axis=0))


def test_sosfiltfilt_sections_with_zero_coefficients():
    """The default padding discounts sections padded with zeros (odd order)."""
    sos = SOS["low1"]
    assert sos[0, 2] == 0 and sos[0, 5] == 0
    x = random_signals((7,), np.float64)  # padlen 3 * (3 - 1) = 6 < 7
    assert_matches(sosfiltfilt(sos, x), sp_signal.sosfiltfilt(sos, x))
    with pytest.raises(ValueError, match="which is 6"):
        sosfiltfilt(sos, x[:6])


@pytest.mark.parametrize("name, n_samples, padlen", [
    ("band5", 33, None),  # default padding: 3 * 11 = 33
    ("low5", 18, None),  # 3 * (7 - 1) = 18 (a first-order section)
    ("band5", 10, 10),
    ("band5", 10, 25),
    ("low5", 0, None),
])
def test_sosfiltfilt_padlen_too_long(name, n_samples, padlen):
    sos = SOS[name]
    x = random_signals((n_samples, 2), np.float64)
    with pytest.raises(ValueError) as ours:
        sosfiltfilt(sos, x, axis=0, padlen=padlen)
    with pytest.raises(ValueError) as theirs:
        sp_signal.sosfiltfilt(sos, x, axis=0, padlen=padlen)
    assert str(ours.value) == str(theirs.value)
    assert "must be greater than padlen" in str(ours.value)
    # one more sample than the padding is enough
    edge = 3 * (2 * len(sos) + 1 - min((sos[:, 2] == 0).sum(),
                                       (sos[:, 5] == 0).sum()))
    edge = edge if padlen is None else padlen
    x = random_signals((edge + 1, 2), np.float64)
    assert_matches(sosfiltfilt(sos, x, axis=0, padlen=padlen),
                   sp_signal.sosfiltfilt(sos, x, axis=0, padlen=padlen))


@pytest.mark.parametrize("sos, x, kwargs, error", [
    (SOS["low5"], np.ones(50), {"padtype": "zero"}, ValueError),
    (SOS["low5"], np.ones(50), {"padtype": "ODD"}, ValueError),
    (SOS["low5"][:, :5], np.ones(50), {}, ValueError),
    (SOS["low5"][None], np.ones(50), {}, ValueError),
    (SOS["low5"] * 2, np.ones(50), {}, ValueError),  # sos[:, 3] != 1
    (SOS["low5"], np.float64(3.0), {}, ValueError),
    (SOS["low5"], np.ones((50, 2)), {"axis": 2}, ValueError),
    (SOS["low5"], np.ones((50, 2)), {"axis": -3}, IndexError),
    (SOS["low5"], np.ones(50, dtype=complex), {}, NotImplementedError),
    (SOS["low5"], np.ones(50), {"padlen": 3.5}, TypeError),
])
def test_sosfiltfilt_invalid_raises(sos, x, kwargs, error):
    with pytest.raises(error):
        sosfiltfilt(sos, x, **kwargs)


def test_sosfiltfilt_validation_messages_follow_scipy():
    x = np.ones(50)
    for sos, kwargs in ((SOS["low5"], {"padtype": "zero"}),
                        (SOS["low5"][:, :5], {}),
                        (SOS["low5"] * 2, {})):
        with pytest.raises(ValueError) as ours:
            sosfiltfilt(sos, x, **kwargs)
        with pytest.raises(ValueError) as theirs:
            sp_signal.sosfiltfilt(sos, x, **kwargs)
        assert str(ours.value) == str(theirs.value)


def test_default_axis_is_zero():
    x = random_signals((60, 70), np.float64)
    sos = SOS["low5"]
    np.testing.assert_array_equal(sosfiltfilt(sos, x),
                                  sosfiltfilt(sos, x, axis=0))
    assert_matches(sosfiltfilt(sos, x), sp_signal.sosfiltfilt(sos, x, axis=0))


# --------------------------------------------------------------------------
# the point of the module: no scipy at import or run time
# --------------------------------------------------------------------------


def test_no_scipy_import():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        from cohort_connectome import filters

        sos = filters.butter_sos(5, [0.01, 0.1], "bandpass", fs=0.5)
        sos_high = filters.butter_sos(5, 0.02, "highpass")
        x = np.random.default_rng(0).standard_normal((176, 39))
        y = filters.sosfiltfilt(sos, x, axis=0, padtype="odd", padlen=None)
        y = filters.sosfiltfilt(sos_high, x.astype(np.float32), axis=0)
        assert y.shape == x.shape
        loaded = sorted(m for m in sys.modules
                        if m == "scipy" or m.startswith("scipy."))
        assert "scipy" not in sys.modules, loaded
        assert "scipy.signal" not in sys.modules, loaded
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
