"""Butterworth design and zero-phase filtering without importing scipy.

Why this module exists: ``import scipy.signal`` costs about a second per
process (it pulls in ``scipy.stats`` among others), and the per-run cleaning
job runs once per fMRI run, each in its own process, while all it needs from
``scipy.signal`` is a Butterworth design and ``sosfiltfilt``.  This module
provides those two in numpy only; it never imports scipy.

It reproduces scipy 1.17's algorithms operation for operation (same numpy
calls, same order of floating-point operations), so that the results are
bit-identical to scipy's with the same numpy (checked on x86-64; where
scipy's compiled sosfilt loop is built with fused multiply-adds, as compilers
may do on arm64, the filtered values differ from scipy's by rounding only):

* `butter_sos` is ``scipy.signal.butter(order, wn, btype=btype,
  output="sos", fs=fs)`` for digital low-, high- and band-pass filters:
  ``iirfilter`` -> ``buttap`` -> ``lp2lp_zpk`` / ``lp2hp_zpk`` /
  ``lp2bp_zpk`` -> ``bilinear_zpk`` -> ``zpk2sos`` (``pairing='nearest'``),
  with scipy's ``_cplxreal``, ``_nearest_real_complex_idx``,
  ``_single_zpksos``, ``zpk2tf`` and ``poly``;
* `sosfiltfilt` is ``scipy.signal.sosfiltfilt`` (``_validate_pad``,
  ``odd_ext`` / ``even_ext`` / ``const_ext``, ``sosfilt_zi`` /
  ``lfilter_zi``, and ``sosfilt``'s direct form II transposed recursion,
  whose per-sample update is that of scipy's compiled ``_sosfilt`` loop).

The code is adapted from scipy (BSD-3-Clause, Copyright (c) 2001-2002
Enthought, Inc. 2003, SciPy Developers); only the branches needed for these
filters are kept, anything else raises.
"""

import math
import operator

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

__all__ = ["butter_sos", "sosfiltfilt"]

#: Butterworth orders accepted by `butter_sos` (the tested range).
MAX_ORDER = 10

#: scipy's ``band_dict``, without the band-stop names.
_BAND_TYPES = {
    "band": "bandpass", "bandpass": "bandpass", "pass": "bandpass",
    "bp": "bandpass",
    "l": "lowpass", "low": "lowpass", "lowpass": "lowpass", "lp": "lowpass",
    "high": "highpass", "highpass": "highpass", "h": "highpass",
    "hp": "highpass",
}

#: Upper bound on ``n_sections * n_signals`` filtered at once by `_sosfilt`:
#: wider inputs are filtered in blocks of signals (keeps the work set in cache).
_BLOCK_ELEMENTS = 32768


# --------------------------------------------------------------------------
# Butterworth design (scipy.signal._filter_design)
# --------------------------------------------------------------------------


def butter_sos(order, wn, btype="lowpass", *, fs=None):
    """Digital Butterworth filter as second-order sections.

    ``scipy.signal.butter(order, wn, btype=btype, analog=False,
    output="sos", fs=fs)``, bit for bit.

    Parameters
    ----------
    order : int
        Order of the filter, 1 to `MAX_ORDER`.  A band-pass filter has
        ``order`` sections (its transfer function has order ``2 * order``).
    wn : float or pair of floats
        Critical frequency (low- and high-pass) or the two band edges
        (band-pass, increasing).  Normalized by the Nyquist frequency,
        ``0 < wn < 1``, unless `fs` is given.
    btype : str, default="lowpass"
        "lowpass", "highpass" or "bandpass", or one of scipy's aliases
        ("low", "lp", "l", "high", "hp", "h", "band", "bp", "pass").
    fs : float, optional
        Sampling frequency: `wn` is then in the same unit (e.g. Hz) and is
        divided by ``fs / 2`` as scipy does, with ``0 < wn < fs / 2``.

    Returns
    -------
    sos : ndarray, shape (n_sections, 6), float64
        One row ``[b0, b1, b2, 1, a1, a2]`` per section; the gain is in the
        first section.

    Raises
    ------
    ValueError
        For an order that is not an integer in 1..`MAX_ORDER`, an unknown or
        unsupported `btype` (band-stop), critical frequencies not finite or
        outside the open interval, band edges not increasing, or a `wn` of
        the wrong size for `btype`.
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
        raise ValueError(f"order must be an integer, got {order!r}")
    order = int(order)
    if not 1 <= order <= MAX_ORDER:
        raise ValueError(f"order must be between 1 and {MAX_ORDER}, got {order}")
    if not isinstance(btype, str):
        raise ValueError(f"btype must be a string, got {btype!r}")

    # iirfilter
    wn = np.asarray(wn, dtype=np.float64)
    if fs is not None:
        if not np.isscalar(fs):
            raise ValueError("Sampling frequency fs must be a single scalar.")
        fs = float(fs)
        wn = wn / (fs / 2)
    if wn.ndim > 1 or wn.size not in (1, 2):
        raise ValueError("wn must be a scalar or a pair of frequencies")
    if not np.all(np.isfinite(wn)):  # scipy fails later, less clearly
        raise ValueError(f"filter critical frequencies must be finite, got {wn}")
    if np.any(wn <= 0):
        raise ValueError("filter critical frequencies must be greater than 0")
    if wn.size > 1 and not wn[0] < wn[1]:
        raise ValueError("Wn[0] must be less than Wn[1]")
    try:
        btype = _BAND_TYPES[btype.lower()]
    except KeyError:
        raise ValueError(
            f"'{btype}' is not a supported band type: lowpass, highpass or "
            "bandpass"
        ) from None
    z, p, k = _buttap(order)
    if np.any(wn <= 0) or np.any(wn >= 1):
        if fs is not None:
            raise ValueError("Digital filter critical frequencies must "
                             f"be 0 < Wn < fs/2 (fs={fs} -> fs/2={fs/2})")
        raise ValueError("Digital filter critical frequencies "
                         "must be 0 < Wn < 1")
    fs = 2.0
    warped = 2 * fs * np.tan(np.pi * wn / fs)
    if btype in ("lowpass", "highpass"):
        if warped.size != 1:
            raise ValueError("Must specify a single critical frequency Wn "
                             "for lowpass or highpass filter")
        if btype == "lowpass":
            z, p, k = _lp2lp_zpk(z, p, k, wo=warped)
        else:
            z, p, k = _lp2hp_zpk(z, p, k, wo=warped)
    else:
        if warped.ndim != 1:
            raise ValueError("Wn must specify start and stop frequencies for "
                             "bandpass or bandstop filter")
        bw = warped[1] - warped[0]
        wo = np.sqrt(warped[0] * warped[1])
        z, p, k = _lp2bp_zpk(z, p, k, wo=wo, bw=bw)
    z, p, k = _bilinear_zpk(z, p, k, fs=fs)
    return _zpk2sos(z, p, k)


def _buttap(order):
    """Analog Butterworth prototype (scipy's ``buttap``).

    Parameters
    ----------
    order : int

    Returns
    -------
    z : ndarray, shape (0,), float64
    p : ndarray, shape (order,), complex128
    k : float
    """
    z = np.asarray([], dtype=np.float64)
    m = np.arange(-order + 1, order, 2, dtype=np.float64)
    # Middle value is 0 to ensure an exactly real pole
    p = -np.exp(1j * np.pi * m / (2 * order))
    k = 1.0
    return z, p, k


def _relative_degree(z, p):
    """Number of poles minus number of zeros (scipy's ``_relative_degree``).

    Parameters
    ----------
    z, p : ndarray

    Returns
    -------
    degree : int
    """
    degree = p.shape[0] - z.shape[0]
    if degree < 0:
        raise ValueError("Improper transfer function. "
                         "Must have at least as many poles as zeros.")
    return degree


def _lp2lp_zpk(z, p, k, wo):
    """Low-pass prototype to low-pass at `wo` (scipy's ``lp2lp_zpk``).

    Parameters
    ----------
    z, p : ndarray
    k : float
    wo : float or 0-d ndarray

    Returns
    -------
    z, p : ndarray
    k : float
    """
    wo = float(wo)
    degree = _relative_degree(z, p)
    z_lp = wo * z
    p_lp = wo * p
    k_lp = k * wo**degree
    return z_lp, p_lp, k_lp


def _lp2hp_zpk(z, p, k, wo):
    """Low-pass prototype to high-pass at `wo` (scipy's ``lp2hp_zpk``).

    Parameters
    ----------
    z, p : ndarray
    k : float
    wo : float or 0-d ndarray

    Returns
    -------
    z, p : ndarray
    k : numpy float64
    """
    wo = float(wo)
    degree = _relative_degree(z, p)
    z_hp = wo / z
    p_hp = wo / p
    z_hp = np.concatenate((z_hp, np.zeros(degree)))
    k_hp = k * np.real(np.prod(-z) / np.prod(-p))
    return z_hp, p_hp, k_hp


def _lp2bp_zpk(z, p, k, wo, bw):
    """Low-pass prototype to band-pass (scipy's ``lp2bp_zpk``).

    Parameters
    ----------
    z, p : ndarray
    k : float
    wo : float
        Centre of the band (geometric mean of the warped edges).
    bw : float
        Width of the band.

    Returns
    -------
    z, p : ndarray, complex128
    k : float
    """
    z = z.astype(np.result_type(z, p))  # scipy's xp_promote(z, p)
    wo = float(wo)
    bw = float(bw)
    degree = _relative_degree(z, p)
    z_lp = z * bw/2
    p_lp = p * bw/2
    z_lp = z_lp.astype(np.complex128)
    p_lp = p_lp.astype(np.complex128)
    z_bp = np.concatenate((z_lp + np.sqrt(z_lp**2 - wo**2),
                           z_lp - np.sqrt(z_lp**2 - wo**2)))
    p_bp = np.concatenate((p_lp + np.sqrt(p_lp**2 - wo**2),
                           p_lp - np.sqrt(p_lp**2 - wo**2)))
    z_bp = np.concatenate((z_bp, np.zeros(degree)))
    k_bp = k * bw**degree
    return z_bp, p_bp, k_bp


def _bilinear_zpk(z, p, k, fs):
    """Bilinear transform of an analog filter (scipy's ``bilinear_zpk``).

    Parameters
    ----------
    z, p : ndarray
    k : float
    fs : float

    Returns
    -------
    z, p : ndarray
    k : numpy float64
    """
    fs = float(fs)
    degree = _relative_degree(z, p)
    fs2 = 2.0*fs
    z_z = (fs2 + z) / (fs2 - z)
    p_z = (fs2 + p) / (fs2 - p)
    z_z = np.concatenate((z_z, -np.ones(degree)))
    k_z = k * np.real(np.prod(fs2 - z) / np.prod(fs2 - p))
    return z_z, p_z, k_z


def _cplxreal(z):
    """Split into complex pairs and reals (scipy's ``_cplxreal``).

    Parameters
    ----------
    z : ndarray, 1-D

    Returns
    -------
    zc : ndarray
        One element (positive imaginary part) per conjugate pair.
    zr : ndarray
        Real elements, sorted.
    """
    z = np.atleast_1d(z)
    if z.size == 0:
        return z, z
    tol = 100 * np.finfo((1.0 * z).dtype).eps
    z = z[np.lexsort((abs(z.imag), z.real))]
    real_indices = abs(z.imag) <= tol * abs(z)
    zr = z[real_indices].real
    if len(zr) == len(z):
        return np.array([]), zr
    z = z[~real_indices]
    zp = z[z.imag > 0]
    zn = z[z.imag < 0]
    if len(zp) != len(zn):
        raise ValueError("Array contains complex value with no matching "
                         "conjugate.")
    same_real = np.diff(zp.real) <= tol * abs(zp[:-1])
    diffs = np.diff(np.concatenate(([0], same_real, [0])))
    run_starts = np.nonzero(diffs > 0)[0]
    run_stops = np.nonzero(diffs < 0)[0]
    for i in range(len(run_starts)):
        start = run_starts[i]
        stop = run_stops[i] + 1
        for chunk in (zp[start:stop], zn[start:stop]):
            chunk[...] = chunk[np.lexsort([abs(chunk.imag)])]
    if any(abs(zp - zn.conj()) > tol * abs(zn)):
        raise ValueError("Array contains complex value with no matching "
                         "conjugate.")
    zc = (zp + zn.conj()) / 2
    return zc, zr


def _poly(seq_of_zeros):
    """Polynomial with the given roots (scipy's ``_polyutils.poly``).

    Parameters
    ----------
    seq_of_zeros : array-like, 1-D

    Returns
    -------
    coefficients : ndarray
        Highest power first; real when the roots come in conjugate pairs.
    """
    seq_of_zeros = np.atleast_1d(np.asarray(seq_of_zeros))
    if seq_of_zeros.shape[0] == 0:
        return np.asarray(1.0, dtype=np.real(seq_of_zeros).dtype)
    dt = seq_of_zeros.dtype
    a = np.ones((1,), dtype=dt)
    one = np.ones_like(seq_of_zeros[0])
    for zero in seq_of_zeros:
        a = np.convolve(a, np.stack((one, -zero)), mode="full")
    if np.iscomplexobj(a):
        roots = np.asarray(seq_of_zeros, dtype=np.complex128)
        if np.all(np.sort(np.imag(roots)) == np.sort(np.imag(np.conj(roots)))):
            a = np.asarray(np.real(a), copy=True)
    return a


def _zpk2tf(z, p, k):
    """Numerator and denominator from zeros, poles, gain (scipy's ``zpk2tf``).

    Parameters
    ----------
    z, p : sequence, 1-D
    k : float

    Returns
    -------
    b, a : ndarray
    """
    z, p = map(np.asarray, (z, p))
    k = np.asarray(k, dtype=np.result_type(np.real(z), np.real(p), k))
    if k.dtype.kind in "iub":
        k = k.astype(np.float64)
    z = np.atleast_1d(z)
    k = np.atleast_1d(k)
    b = np.multiply(k, _poly(z))
    a = np.atleast_1d(np.asarray(_poly(p)))
    return b, a


def _nearest_real_complex_idx(fro, to, which):
    """Index of the nearest (real / complex / any) element of `fro` to `to`.

    Parameters
    ----------
    fro : ndarray
    to : scalar
    which : {"real", "complex", "any"}

    Returns
    -------
    index : int
    """
    order = np.argsort(np.abs(fro - to))
    if which == "any":
        return order[0]
    mask = np.isreal(fro[order])
    if which == "complex":
        mask = ~mask
    return order[np.nonzero(mask)[0][0]]


def _single_zpksos(z, p, k):
    """One second-order section from up to two zeros and poles.

    Parameters
    ----------
    z, p : sequence
    k : float

    Returns
    -------
    sos : ndarray, shape (6,)
    """
    sos = np.zeros(6)
    b, a = _zpk2tf(z, p, k)
    sos[3-len(b):3] = b
    sos[6-len(a):6] = a
    return sos


def _zpk2sos(z, p, k):
    """Second-order sections of a digital filter (scipy's ``zpk2sos``).

    ``pairing='nearest'``, ``analog=False``, the defaults of ``iirfilter``.

    Parameters
    ----------
    z, p : ndarray
        Zeros and poles.
    k : float
        Gain.

    Returns
    -------
    sos : ndarray, shape (n_sections, 6)
    """
    z, p = map(np.asarray, (z, p))
    k = np.asarray(k)
    if len(z) == len(p) == 0:
        return np.asarray([[k, 0., 0., 1., 0., 0.]])
    p = np.concatenate((p, np.zeros(max(len(z) - len(p), 0))))
    z = np.concatenate((z, np.zeros(max(len(p) - len(z), 0))))
    n_sections = (max(len(p), len(z)) + 1) // 2
    if len(p) % 2 == 1:
        p = np.concatenate((p, [0.]))
        z = np.concatenate((z, [0.]))
    z = np.concatenate(_cplxreal(z))
    p = np.concatenate(_cplxreal(p))
    if not np.isreal(k):
        raise ValueError("k must be real")
    k = k.real

    def idx_worst(p):
        # digital: "worst" is the closest to the unit circle
        return np.argmin(np.abs(1 - np.abs(p)))

    sos = np.zeros((n_sections, 6))
    # Construct the system, reversing order so the "worst" are last
    for si in range(n_sections-1, -1, -1):
        p1_idx = idx_worst(p)
        p1 = p[p1_idx]
        p = np.delete(p, p1_idx)
        if np.isreal(p1) and np.isreal(p).sum() == 0:
            # Special case (1): last remaining real pole
            z1_idx = _nearest_real_complex_idx(z, p1, "real")
            z1 = z[z1_idx]
            z = np.delete(z, z1_idx)
            sos[si] = _single_zpksos([z1, 0], [p1, 0], 1)
        elif (len(p) + 1 == len(z)
              and not np.isreal(p1)
              and np.isreal(p).sum() == 1
              and np.isreal(z).sum() == 1):
            # Special case (2): one real pole and one real zero left
            z1_idx = _nearest_real_complex_idx(z, p1, "complex")
            z1 = z[z1_idx]
            z = np.delete(z, z1_idx)
            sos[si] = _single_zpksos([z1, z1.conj()], [p1, p1.conj()], 1)
        else:
            if np.isreal(p1):
                prealidx = np.flatnonzero(np.isreal(p))
                p2_idx = prealidx[idx_worst(p[prealidx])]
                p2 = p[p2_idx]
                p = np.delete(p, p2_idx)
            else:
                p2 = p1.conj()
            if len(z) > 0:
                z1_idx = _nearest_real_complex_idx(z, p1, "any")
                z1 = z[z1_idx]
                z = np.delete(z, z1_idx)
                if not np.isreal(z1):
                    sos[si] = _single_zpksos([z1, z1.conj()], [p1, p2], 1)
                elif len(z) > 0:
                    z2_idx = _nearest_real_complex_idx(z, p1, "real")
                    z2 = z[z2_idx]
                    z = np.delete(z, z2_idx)
                    sos[si] = _single_zpksos([z1, z2], [p1, p2], 1)
                else:
                    sos[si] = _single_zpksos([z1], [p1, p2], 1)
            else:
                sos[si] = _single_zpksos([], [p1, p2], 1)
    if not len(p) == len(z) == 0:  # pragma: no cover - scipy asserts it
        raise RuntimeError("zpk2sos left poles or zeros unpaired")
    sos[0][:3] *= k
    return sos


# --------------------------------------------------------------------------
# Zero-phase filtering (scipy.signal._signaltools, _arraytools, _sosfilt)
# --------------------------------------------------------------------------


def sosfiltfilt(sos, x, axis=0, padtype="odd", padlen=None):
    """Forward-backward filtering with second-order sections.

    ``scipy.signal.sosfiltfilt(sos, x, axis=axis, padtype=padtype,
    padlen=padlen)``, bit for bit (see the module's docstring; note the
    default ``axis=0`` here, -1 in scipy).  The signal is extended at both ends, filtered forward from the
    steady state of the step response scaled by its first value, filtered
    backward likewise, and the extension is cut off.

    Parameters
    ----------
    sos : array-like, shape (n_sections, 6)
        Second-order sections, ``sos[:, 3]`` all ones (e.g. `butter_sos`).
    x : array-like, at least 1-D
        The signals; not modified.
    axis : int, default=0
        The axis along which to filter.
    padtype : {"odd", "even", "constant", None}, default="odd"
        Extension of the signal at both ends (``odd_ext``, ``even_ext``,
        ``const_ext``); None for no extension.
    padlen : int or None, default=None
        Length of each extension; None for scipy's default, ``3 * ntaps``
        with ``ntaps = 2 * n_sections + 1 - min((sos[:, 2] == 0).sum(),
        (sos[:, 5] == 0).sum())``.  Ignored when `padtype` is None.

    Returns
    -------
    y : ndarray, same shape as `x`
        The filtered signals, a new array of dtype ``np.result_type(sos, x)``
        (as scipy: a float32 `x` filtered with float64 coefficients gives
        float64); C-contiguous once the filtered axis is moved first (so
        C-contiguous for ``axis=0``).

    Raises
    ------
    ValueError
        For a malformed `sos`, a 0-d `x`, an unknown `padtype`, or a signal
        not longer than the padding (scipy's message: "The length of the
        input vector x must be greater than padlen, which is ...").
    numpy.exceptions.AxisError
        For an `axis` out of range (a ValueError and an IndexError).
    NotImplementedError
        For complex or other non-real-floating result dtypes.
    """
    sos, n_sections = _validate_sos(sos)
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("x must be at least 1-D")
    axis = normalize_axis_index(operator.index(axis), x.ndim)
    ntaps = 2 * n_sections + 1
    ntaps -= min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum())
    # time first: every step below works on whole rows of signals
    xt = np.moveaxis(x, axis, 0)
    edge, ext = _validate_pad(padtype, padlen, xt, ntaps)
    zi = _sosfilt_zi(sos)  # shape (n_sections, 2)
    dtype = np.result_type(sos, ext, zi)
    if dtype.char not in "fdg":
        raise NotImplementedError(f"input type '{dtype}' not supported")
    signal_shape = ext.shape[1:]
    ext = ext.reshape(ext.shape[0], math.prod(signal_shape))
    zi = zi.reshape(n_sections, 2, 1)
    sos = sos.astype(dtype, copy=False)

    x_0 = ext[:1]
    forward = _sosfilt(sos, ext, (zi * x_0).astype(dtype, copy=False))
    y_0 = forward[-1:]
    # the backward pass reads the forward output from its end and writes its
    # own output from the end, so that it comes out in time order
    y = np.empty_like(forward)
    _sosfilt(sos, forward[::-1], (zi * y_0).astype(dtype, copy=False),
             out=y[::-1])
    del forward
    if edge > 0:
        y = y[edge:-edge]
    return np.moveaxis(y.reshape(y.shape[:1] + signal_shape), 0, axis)


def _validate_sos(sos):
    """Check second-order sections (scipy's ``_validate_sos``).

    Parameters
    ----------
    sos : array-like

    Returns
    -------
    sos : ndarray, shape (n_sections, 6)
    n_sections : int
    """
    sos = np.atleast_2d(np.asarray(sos))
    if sos.ndim != 2:
        raise ValueError("sos array must be 2D")
    n_sections, m = sos.shape
    if m != 6:
        raise ValueError("sos array must be shape (n_sections, 6)")
    if not np.all(sos[:, 3] == 1):
        raise ValueError("sos[:, 3] should be all ones")
    return sos, n_sections


def _validate_pad(padtype, padlen, x, ntaps):
    """Padding of `x` along axis 0 (scipy's ``_validate_pad``).

    Parameters
    ----------
    padtype : {"odd", "even", "constant", None}
    padlen : int or None
    x : ndarray
        Time along axis 0.
    ntaps : int

    Returns
    -------
    edge : int
        Length of each extension.
    ext : ndarray
        `x` extended at both ends (`x` itself when `edge` is not positive).
    """
    if padtype not in ["even", "odd", "constant", None]:
        raise ValueError(f"Unknown value '{padtype}' given to padtype. "
                         "padtype must be 'even', 'odd', 'constant', or None.")
    if padtype is None:
        padlen = 0
    if padlen is None:
        edge = ntaps * 3
    else:
        edge = operator.index(padlen)
    if x.shape[0] <= edge:
        raise ValueError(
            f"The length of the input vector x must be greater than padlen, "
            f"which is {edge}."
        )
    if padtype is not None and edge > 0:
        n = edge
        if padtype == "even":
            ext = np.concatenate((x[n:0:-1], x, x[-2:-(n + 2):-1]), axis=0)
        elif padtype == "odd":
            ext = np.concatenate((2 * x[:1] - x[n:0:-1],
                                  x,
                                  2 * x[-1:] - x[-2:-(n + 2):-1]), axis=0)
        else:
            ones = np.ones((n,) + (1,) * (x.ndim - 1), dtype=x.dtype)
            ext = np.concatenate((ones * x[:1], x, ones * x[-1:]), axis=0)
    else:
        ext = x
    return edge, ext


def _lfilter_zi(b, a):
    """Steady state of the step response of one filter (scipy's ``lfilter_zi``).

    Parameters
    ----------
    b, a : ndarray, 1-D
        Numerator and denominator.

    Returns
    -------
    zi : ndarray, shape (max(len(a), len(b)) - 1,)
    """
    while a.shape[0] > 1 and a[0] == 0.0:
        a = a[1:]
    if a.size < 1:
        raise ValueError("There must be at least one nonzero `a` coefficient.")
    if a[0] != 1.0:
        b = b / a[0]
        a = a / a[0]
    n = max(a.shape[0], b.shape[0])
    if a.shape[0] < n:
        a = np.concatenate((a, np.zeros(n - a.shape[0], dtype=a.dtype)))
    elif b.shape[0] < n:
        b = np.concatenate((b, np.zeros(n - b.shape[0], dtype=b.dtype)))
    dt = np.result_type(a, b)
    IminusA = np.eye(n - 1) - _companion(a).T
    IminusA = np.asarray(IminusA, dtype=dt)
    B = b[1:] - a[1:] * b[0]
    return np.linalg.solve(IminusA, B)


def _companion(a):
    """Companion matrix of a polynomial (scipy.linalg's ``companion``, 1-D).

    Parameters
    ----------
    a : ndarray, 1-D, ``a[0] != 0``

    Returns
    -------
    c : ndarray, shape (len(a) - 1, len(a) - 1)
    """
    n = a.shape[-1]
    if n < 2:
        raise ValueError("The length of `a` along the last axis must be at "
                         "least 2.")
    first_row = -a[1:] / (1.0 * a[0:1])
    c = np.zeros((n - 1, n - 1), dtype=first_row.dtype)
    c[0, :] = first_row
    c[np.arange(1, n - 1), np.arange(0, n - 2)] = 1
    return c


def _sosfilt_zi(sos):
    """Step-response steady state of cascaded sections (``sosfilt_zi``).

    Parameters
    ----------
    sos : ndarray, shape (n_sections, 6)

    Returns
    -------
    zi : ndarray, shape (n_sections, 2)
        In `sos`'s dtype (float64 for integer or boolean sections).
    """
    if sos.dtype.kind in "iub":
        sos = sos.astype(np.float64)
    n_sections = sos.shape[0]
    zi = np.empty((n_sections, 2), dtype=sos.dtype)
    scale = 1.0
    for section in range(n_sections):
        b = sos[section, :3]
        a = sos[section, 3:]
        zi[section, ...] = scale * _lfilter_zi(b, a)
        # b.sum() / a.sum() is the section's gain at frequency 0
        scale *= np.sum(b) / np.sum(a)
    return zi


def _sosfilt(sos, x, zi, out=None):
    """Cascaded second-order sections along axis 0, from state `zi`.

    The recursion of scipy's compiled ``_sosfilt`` loop (direct form II
    transposed), per sample ``x`` and section ``s``::

        y = sos[s, 0] * x + z0
        z0 = sos[s, 1] * x - sos[s, 4] * y + z1
        z1 = sos[s, 2] * x - sos[s, 5] * y
        x = y

    evaluated in the same order, without fused multiply-adds, in `sos`'s
    dtype.  It is vectorized across the signals and pipelined across the
    sections: at step ``t`` section ``s`` processes sample ``t - s``, so all
    sections advance in the same numpy calls.  Floating-point errors are
    silenced, as the compiled loop does not report them.

    Parameters
    ----------
    sos : ndarray, shape (n_sections, 6)
        Of the working dtype.
    x : ndarray, shape (n_samples, n_signals)
        Any dtype and strides; not modified.
    zi : ndarray, shape (n_sections, 2, n_signals)
        Initial states, of the working dtype; not modified.
    out : ndarray, shape (n_samples, n_signals), optional
        Where to write the output (rows may have any stride, e.g. a reversed
        view); a new C-contiguous array when None.

    Returns
    -------
    y : ndarray, shape (n_samples, n_signals)
        `out` when given.
    """
    dtype = sos.dtype
    n_samples, n_signals = x.shape
    n_sections = sos.shape[0]
    if out is None:
        out = np.empty((n_samples, n_signals), dtype=dtype)
    y = out
    if n_samples == 0 or n_signals == 0:
        return y
    block = max(1, _BLOCK_ELEMENTS // n_sections)
    with np.errstate(all="ignore"):
        for start in range(0, n_signals, block):
            stop = min(start + block, n_signals)
            _sosfilt_block(sos, x[:, start:stop], zi[:, :, start:stop],
                           y[:, start:stop])
    return y


def _sosfilt_block(sos, x, zi, y):
    """`_sosfilt` on one block of signals, writing into `y`.

    Parameters
    ----------
    sos : ndarray, shape (n_sections, 6)
    x : ndarray, shape (n_samples, n_signals)
    zi : ndarray, shape (n_sections, 2, n_signals)
    y : ndarray, shape (n_samples, n_signals)
        Output, of `sos`'s dtype.
    """
    dtype = sos.dtype
    n_samples, width = x.shape
    n_sections = sos.shape[0]
    last = n_sections - 1
    # coefficients repeated along the signals: numpy multiplies two
    # contiguous arrays much faster than it broadcasts a (3, S, 1) one
    b_all = np.ascontiguousarray(np.broadcast_to(
        sos[:, 0:3].T[:, :, None], (3, n_sections, width)))
    a_12 = np.ascontiguousarray(np.broadcast_to(
        sos[:, 4:6].T[:, :, None], (2, n_sections, width)))
    # buf[t % 2][s] is the input of section s at step t; the outputs of step
    # t go to rows 1.. of the other buffer, the inputs of step t + 1
    bufs = (np.zeros((n_sections + 1, width), dtype=dtype),
            np.zeros((n_sections + 1, width), dtype=dtype))
    # prods[t % 2] = [b0 x, b1 x - a1 y, b2 x - a2 y] of step t; the last row
    # is the state z1 after step t
    prods = (np.empty((3, n_sections, width), dtype=dtype),
             np.empty((3, n_sections, width), dtype=dtype))
    z0 = np.array(zi[:, 0, :], dtype=dtype, order="C")
    prods[1][2] = zi[:, 1, :]  # z1 before step 0
    ay = np.empty((2, n_sections, width), dtype=dtype)
    multiply, add, subtract, copyto = np.multiply, np.add, np.subtract, np.copyto

    # ramp-up: at step t < n_sections - 1 only sections 0..t have input
    # (sections after t must keep their initial state)
    for t in range(min(last, n_samples + last)):
        hi = t + 1
        src, dst = bufs[t % 2], bufs[(t + 1) % 2]
        prod, prev = prods[t % 2], prods[(t + 1) % 2]
        if t < n_samples:
            copyto(src[0], x[t])
        cur = src[:hi]
        out = dst[1:hi + 1]
        multiply(b_all[:, :hi], cur, out=prod[:, :hi])
        add(prod[0, :hi], z0[:hi], out=out)
        multiply(a_12[:, :hi], out, out=ay[:, :hi])
        subtract(prod[1:, :hi], ay[:, :hi], out=prod[1:, :hi])
        add(prod[1, :hi], prev[2, :hi], out=z0[:hi])
        # the sections after t keep z1: carry it into this step's row
        copyto(prod[2, hi:], prev[2, hi:])

    # steady state and drain: every section computes; once a section has
    # seen the last sample its input and state are garbage, but they only
    # ever reach sections that are done too
    views = []
    for parity in (0, 1):
        src, dst = bufs[parity], bufs[1 - parity]
        prod, prev = prods[parity], prods[1 - parity]
        views.append((src[0], src[:n_sections], dst[1:], dst[n_sections],
                      prod, prod[0], prod[1:], prod[1], prev[2]))
    for t in range(last, n_samples):
        src0, cur, out, out_last, prod, prod0, prod12, prod1, z1 = views[t % 2]
        copyto(src0, x[t])
        multiply(b_all, cur, out=prod)
        add(prod0, z0, out=out)
        multiply(a_12, out, out=ay)
        subtract(prod12, ay, out=prod12)
        add(prod1, z1, out=z0)
        copyto(y[t - last], out_last)
    for t in range(max(last, n_samples), n_samples + last):
        src0, cur, out, out_last, prod, prod0, prod12, prod1, z1 = views[t % 2]
        multiply(b_all, cur, out=prod)
        add(prod0, z0, out=out)
        multiply(a_12, out, out=ay)
        subtract(prod12, ay, out=prod12)
        add(prod1, z1, out=z0)
        copyto(y[t - last], out_last)
