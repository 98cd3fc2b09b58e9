"""Region signals from a 4D run and atlas maps, as nilearn's ``NiftiMapsMasker``.

nilearn 0.13.1's masker (no mask image, no cleaning) ends in
``nilearn.regions.signal_extraction.img_to_signals_maps``: non-finite values of
the maps and of the run are set to 0 (``safe_get_data(ensure_finite=True)``)
and the region signals are the least-squares fit of the voxel time series on
the maps, ``scipy.linalg.lstsq(maps_2d, data_2d)[0].T`` (LAPACK ``gelsd``).

:func:`extract_signals` does the same on arrays; :func:`load_run` opens and
checks a run; :func:`run_data` reads its array with the dtype nilearn sees.
"""

import math
from pathlib import Path

import numpy as np
from scipy import linalg

from .errors import InputError

__all__ = ["extract_signals", "header_repetition_time", "load_run", "run_data", "NO_OVERLAP"]

#: Raised by :func:`extract_signals` when no voxel carries a non-zero map value.
NO_OVERLAP = ("atlas maps do not overlap the run's field of view "
              "(no voxel with a non-zero map)")


def _finite(values):
    """``values`` with NaN/inf set to 0; ``values`` itself (no copy) when all
    are finite or the dtype cannot hold non-finite values."""
    if values.dtype.kind not in "fc":
        return values
    bad = ~np.isfinite(values)
    if bad.any():
        values = np.array(values, copy=True)
        values[bad] = 0
    return values


def extract_signals(data, maps):
    """Least-squares region signals of a run on atlas maps (nilearn's
    ``img_to_signals_maps``).

    Parameters
    ----------
    data : ndarray, shape (x, y, z, t)
        The run, as returned by :func:`run_data`.  Never modified.
    maps : ndarray, shape (x, y, z, k)
        The atlas maps on the same grid as ``data`` (see
        :func:`cohort_connectome.resampling.resample_maps`).  Never modified.

    Returns
    -------
    signals : ndarray, shape (t, k)
        ``scipy.linalg.lstsq(maps[support][:, supported],
        data[support], lapack_driver="gelsd")[0].T`` where ``support`` is the
        set of voxels where at least one (finite) map value is non-zero and
        ``supported`` the maps with at least one such voxel; the columns of
        the other maps (no support on this grid) are NaN.  Its dtype is the
        one scipy's LAPACK dispatch gives, as in nilearn: float32 when both
        ``data`` and ``maps`` are float32, float64 otherwise (e.g. float32
        data with float64 maps, or scaled/integer data).

    Raises
    ------
    ValueError
        If the arrays are not 4D or their spatial shapes differ.
    InputError
        If no voxel has a non-zero map value (the maps miss the run's field
        of view).

    Notes
    -----
    NaN and inf in ``data`` and in ``maps`` count as 0, as in nilearn.  Only
    the support voxels are copied (``data[support]``, ``maps[support]``) and
    non-finite values are zeroed in those copies, so the caller's arrays are
    never modified (nilearn zeroes them in place in the image's data cache).

    nilearn fits over all voxels of the grid and all maps; voxels outside
    the support are rows of zeros in the maps matrix and maps without
    support are columns of zeros, neither of which changes the least-squares
    (minimum-norm) solution of the other maps, so fitting the supported maps
    over the support alone gives the same signals up to rounding while
    copying less.  nilearn gives 0 for a map without support; NaN says that
    the map was not seen (as
    :class:`cohort_connectome.streaming.MapsProjector` does).
    """
    data = np.asanyarray(data)
    maps = np.asanyarray(maps)
    if data.ndim != 4:
        raise ValueError(f"data must be a 4D array (x, y, z, t), got shape {data.shape}")
    if maps.ndim != 4:
        raise ValueError(f"maps must be a 4D array (x, y, z, k), got shape {maps.shape}")
    if data.shape[:3] != maps.shape[:3]:
        raise ValueError(f"data and maps are not on the same grid: spatial shapes "
                         f"{data.shape[:3]} and {maps.shape[:3]}")

    if maps.dtype.kind in "fc":
        nonzero = np.isfinite(maps) & (maps != 0)
    else:
        nonzero = maps != 0
    support = np.any(nonzero, axis=-1)
    if not support.any():
        raise InputError(NO_OVERLAP)
    supported = np.any(nonzero[support], axis=0)
    del nonzero

    maps_2d = _finite(np.asarray(maps[support]))
    data_2d = _finite(np.asarray(data[support]))
    del support
    if supported.all():
        return linalg.lstsq(maps_2d, data_2d, lapack_driver="gelsd")[0].T
    fitted = linalg.lstsq(maps_2d[:, supported], data_2d, lapack_driver="gelsd")[0].T
    signals = np.full((fitted.shape[0], maps.shape[3]), np.nan, dtype=fitted.dtype)
    signals[:, supported] = fitted
    return signals


def load_run(path, subject=None):
    """Open a 4D fMRI run and check it, without reading its data.

    Parameters
    ----------
    path : str or os.PathLike
        A NIfTI-1/NIfTI-2 file (``.nii`` or ``.nii.gz``).
    subject : str, optional
        The participant, named in error messages.

    Returns
    -------
    nibabel.Nifti1Image or nibabel.Nifti2Image
        The image as ``nibabel.load`` returns it (data not loaded).

    Raises
    ------
    InputError
        With the file and subject, on one line, when the file does not exist
        ("file not found"), is empty ("file is empty (0 bytes)"), cannot be
        read as NIfTI ("not a readable NIfTI image: <reason>"; for a
        ``.nii.gz`` whose gzip stream is cut before the end of the header, the
        reason says so), is not 4D ("image is 3D, expected a 4D run") or has
        a single volume ("run has 1 volume; at least 2 are needed": nilearn
        would squeeze it to one sample, which cannot be cleaned or correlated).
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        problem = "is a directory, not a NIfTI file" if path.is_dir() else "file not found"
        raise InputError(problem, path=path, subject=subject)
    if path.stat().st_size == 0:
        raise InputError("file is empty (0 bytes)", path=path, subject=subject)
    try:
        img = nib.load(path)
    except Exception as err:  # nibabel raises many types (ImageFileError, OSError, ...)
        reason = _gzip_header_problem(path) or " ".join(str(err).split()) or type(err).__name__
        raise InputError(f"not a readable NIfTI image: {reason}", path=path,
                         subject=subject) from None
    if not isinstance(img, nib.Nifti1Pair):  # Nifti1Image, Nifti2Image and pairs
        raise InputError(f"not a readable NIfTI image: nibabel reads it as "
                         f"{type(img).__name__}", path=path, subject=subject)
    shape = img.shape
    if len(shape) != 4:
        raise InputError(f"image is {len(shape)}D, expected a 4D run", path=path,
                         subject=subject)
    if shape[3] < 2:
        raise InputError(f"run has {shape[3]} volume{'' if shape[3] == 1 else 's'}; "
                         "at least 2 are needed", path=path, subject=subject)
    if min(shape[:3]) < 1:
        raise InputError(f"image has an empty spatial grid {shape[:3]}", path=path,
                         subject=subject)
    return img


#: Bytes of a NIfTI-1 header; nibabel reads up to a NIfTI-2 header (540) to
#: tell the format.
_NIFTI1_HEADER_BYTES = 348
_SNIFF_BYTES = 540


def _gzip_header_problem(path):
    """Why a ``.gz`` file nibabel could not open has no NIfTI header, or None.

    nibabel reports a gzip stream cut (or emptied) before the end of the
    header as 'Cannot work out file type', which hides the cause.
    """
    if not str(path).lower().endswith(".gz"):
        return None
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as stream:
            head = stream.read(_SNIFF_BYTES)
    except EOFError:
        return ("compressed file is truncated: its gzip stream ends within the first "
                f"{_SNIFF_BYTES} bytes (the NIfTI header)")
    except (OSError, zlib.error) as err:  # not gzip, or corrupt
        return f"not a valid gzip file ({' '.join(str(err).split())})"
    if len(head) < _NIFTI1_HEADER_BYTES:
        return (f"decompressed file is {len(head)} bytes, shorter than a NIfTI header "
                f"({_NIFTI1_HEADER_BYTES} bytes)")
    return None


def run_data(img, subject=None):
    """The run's voxel array exactly as nilearn's masker reads it.

    ``np.asanyarray(img.dataobj)`` (nilearn's ``_get_data``): the on-disk
    dtype when the header has no scaling (float32 stays float32, int16 stays
    int16), float64 when ``scl_slope``/``scl_inter`` scale the data.  For an
    uncompressed file this may be a read-only-in-spirit memory map; it is not
    modified by :func:`extract_signals`.  Non-finite values are left as they
    are (:func:`extract_signals` zeroes them, as nilearn's
    ``safe_get_data(ensure_finite=True)``).

    Parameters
    ----------
    img : nibabel image
        A run from :func:`load_run` (or any in-memory NIfTI image).
    subject : str, optional
        Named in the error message if the data cannot be read.

    Returns
    -------
    ndarray, shape img.shape

    Raises
    ------
    InputError
        When the file's data cannot be read (e.g. truncated).
    """
    try:
        return np.asanyarray(img.dataobj)
    except Exception as err:  # truncated gzip, short file, ...
        reason = " ".join(str(err).split()) or type(err).__name__
        raise InputError(f"not a readable NIfTI image: {reason}",
                         path=img.get_filename(), subject=subject) from None


def header_repetition_time(img):
    """Repetition time (s) from a NIfTI header's 4th zoom, or None when unset.

    Parameters
    ----------
    img : nibabel image
        Its header's time unit (``msec``, ``usec``, else seconds) converts
        the zoom to seconds.
    """
    zooms = img.header.get_zooms()
    if len(zooms) < 4 or not zooms[3] or not math.isfinite(zooms[3]) or zooms[3] <= 0:
        return None
    unit = img.header.get_xyzt_units()[1]
    scale = {"msec": 1e-3, "usec": 1e-6}.get(unit, 1.0)
    return float(zooms[3]) * scale
