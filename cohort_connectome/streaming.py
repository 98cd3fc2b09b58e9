"""Region signals from a 4D run read chunk by chunk, never holding the whole run.

Mirrors the least squares of nilearn 0.13.1's ``NiftiMapsMasker``
(``nilearn.regions.signal_extraction.img_to_signals_maps``:
``scipy.linalg.lstsq(maps_2d, data_2d)[0].T``), as
:func:`cohort_connectome.extraction.extract_signals` does in memory.
:func:`cohort_connectome.extraction.extract_signals` needs the whole run in
memory (``run_data``: for a ``.nii.gz`` run the full decompressed array, and
float64 when the header scales the data).  This module gives the same signals
while holding only a chunk of volumes at a time:

* the NIfTI data block is read sequentially from the byte stream: the offset
  is ``img.dataobj.offset`` (``header.get_data_offset()`` is 0 on a loaded
  image), the on-disk dtype and byte order come from the header, and
  ``scl_slope``/``scl_inter`` are applied exactly as nibabel's
  ``ArrayProxy`` does (same function, same dtype rules);
* ``.nii.gz`` is decompressed with ``isal.igzip`` (ISA-L) when it can be
  imported and with the standard :mod:`gzip` otherwise; an uncompressed
  ``.nii`` is memory-mapped (:mod:`mmap`, read-only) and pages already
  projected are released with ``madvise(MADV_DONTNEED)`` so the resident set
  stays at about one chunk;
* each chunk is projected onto the maps with the pseudo-inverse of the maps
  restricted to their support (:class:`MapsProjector`, computed once).

NIfTI stores each volume as one contiguous block with x varying fastest
(Fortran order), so a chunk is an array ``(n_chunk, nx * ny * nz)`` whose
column ``j`` is voxel ``np.unravel_index(j, (nx, ny, nz), order="F")``; the
projector's support indices use the same convention
(``maps.reshape(-1, k, order="F")``).

Numerics: nilearn solves ``lstsq(maps[support], data[support])`` with LAPACK
``gelsd``, which drops the singular values below ``eps * s.max()``; the
projector is ``scipy.linalg.pinv(maps[support], atol=0, rtol=eps)``, the same
minimum-norm solution with the same cut-off (``eps`` of the precision
``lstsq`` runs in for float32 runs), so the two agree to rounding (measured
6e-15 relative to nilearn on synthetic runs with the MSDL maps).  The
projection is computed in float64 and cast to the dtype ``lstsq`` returns for
the same inputs (that of the LAPACK routine scipy picks for the maps' and the
data's dtypes), so results are interchangeable.
"""

import mmap
import os
from pathlib import Path

import numpy as np
from scipy import linalg
from scipy.linalg.lapack import get_lapack_funcs

from .errors import InputError
from .extraction import NO_OVERLAP, load_run

try:  # optional fast gzip decoder; not a dependency
    from isal import igzip as _igzip
except ImportError:  # pragma: no cover - depends on the environment
    _igzip = None

__all__ = ["MapsProjector", "iter_volume_chunks", "extract_signals_streaming",
           "DEFAULT_CHUNK_BYTES"]

#: Target size, in bytes of on-disk data, of one chunk when ``chunk_volumes``
#: is not given.  Measured on 100- and 1200-volume ADHD-shaped runs: 16 MiB
#: gives the job a peak of 86 MB against 159 MB with 64 MiB, and is no slower.
DEFAULT_CHUNK_BYTES = 16 * 2**20

# Size of one read() on the gzip stream: a read that hits a truncated stream
# loses what it decoded, so this bounds the error in the count of complete
# volumes reported for a truncated file; still large enough for the decoder.
_READ_PIECE = 256 * 2**10


def _gzip_open(path):
    """Open a gzip file for binary reading with the fastest decoder available."""
    if _igzip is not None:
        return _igzip.open(path, "rb")
    import gzip

    return gzip.open(path, "rb")


def _lstsq_dtype(maps_dtype, data_dtype):
    """The dtype ``scipy.linalg.lstsq(maps_2d, data_2d)`` returns (what
    :func:`~cohort_connectome.extraction.extract_signals` gives): that of the
    LAPACK ``gelsd`` scipy picks for the two dtypes (float32 when both are
    single-precision types, float64 otherwise)."""
    arrays = (np.empty(0, dtype=maps_dtype), np.empty(0, dtype=data_dtype))
    return np.dtype(get_lapack_funcs("gelsd", arrays).dtype)


def _scale(raw, slope, inter):
    """nibabel's ``ArrayProxy._get_scaled(dtype=None)`` applied to ``raw``."""
    from nibabel.volumeutils import apply_read_scaling

    scl_slope = np.asanyarray(slope)
    scl_inter = np.asanyarray(inter)
    use_dtype = scl_slope.dtype
    if np.can_cast(scl_slope, use_dtype):
        scl_slope = scl_slope.astype(use_dtype)
    if np.can_cast(scl_inter, use_dtype):
        scl_inter = scl_inter.astype(use_dtype)
    return apply_read_scaling(raw, scl_slope, scl_inter)


class MapsProjector:
    """Least-squares projection of voxel values onto atlas maps.

    ``fit`` computes, once, the pseudo-inverse of the maps restricted to
    their support (voxels where at least one finite map value is non-zero;
    ``scipy.linalg.pinv`` with ``gelsd``'s cut-off, see the module docstring);
    ``transform`` then turns any number of volumes into region signals with
    one matrix product.  Equal to :func:`~cohort_connectome.extraction.\
extract_signals` (``lstsq`` with ``gelsd``) to rounding.

    Attributes
    ----------
    support_ : ndarray of int64, shape (n_support,)
        Flat voxel indices of the support, in Fortran (NIfTI, x fastest)
        order of the 3D grid: index ``j`` is voxel
        ``np.unravel_index(j, grid_shape_, order="F")``.
    pinv_ : ndarray of float64, shape (n_maps, n_support)
        Pseudo-inverse of ``maps[support]`` (non-finite map values as 0).
    dtype_ : numpy.dtype
        The maps' dtype (native byte order); with the data's dtype it fixes
        the result dtype, as scipy's ``lstsq`` would.
    grid_shape_ : tuple of int
        The maps' spatial shape ``(x, y, z)``.
    n_maps_ : int
        Number of maps ``k``.
    names_ : list of str or None
        Region names in map order, when saved with the projector (None after
        `fit`).
    unusable_ : str or None
        Why the maps cannot be used on this grid (e.g. they do not overlap
        it), for a projector made by :meth:`unusable`; None after `fit`.
    """

    def __init__(self):
        pass

    def fit(self, maps):
        """Learn the support and the pseudo-inverse of ``maps``.

        Parameters
        ----------
        maps : ndarray, shape (x, y, z, k)
            Atlas maps on the run's grid.  Never modified.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If ``maps`` is not 4D.
        InputError
            If no voxel has a non-zero finite map value.
        """
        maps = np.asanyarray(maps)
        if maps.ndim != 4:
            raise ValueError(f"maps must be a 4D array (x, y, z, k), got shape {maps.shape}")
        k = maps.shape[3]
        flat = maps.reshape(-1, k, order="F")
        if flat.dtype.kind in "fc":
            in_support = np.any(np.isfinite(flat) & (flat != 0), axis=1)
        else:
            in_support = np.any(flat != 0, axis=1)
        support = np.flatnonzero(in_support).astype(np.int64)
        if support.size == 0:
            raise InputError(NO_OVERLAP)
        maps_2d = np.array(flat[support], dtype=np.float64)
        maps_2d[~np.isfinite(maps_2d)] = 0
        # lstsq's (gelsd's) cut-off, cond = eps * s.max() in the precision it
        # runs in for float32 runs, not pinv's default max(M, N) * eps * s.max()
        eps = np.finfo(_lstsq_dtype(maps.dtype, np.float32)).eps
        self.support_ = support
        self.pinv_ = linalg.pinv(maps_2d, atol=0.0, rtol=eps)
        self.dtype_ = maps.dtype.newbyteorder("=")
        self.grid_shape_ = tuple(int(s) for s in maps.shape[:3])
        self.n_maps_ = int(k)
        self.names_ = None
        self.unusable_ = None
        return self

    @classmethod
    def unusable(cls, maps_dtype, grid_shape, n_maps, reason):
        """A projector that says why the maps cannot be used on a grid.

        Written in place of a fitted projector when the runs of a grid cannot
        be extracted (e.g. the atlas lies outside their field of view), so
        that each run's extraction job can record the reason and the other
        grids go on.  It has an empty support and ``unusable_ = reason``.
        """
        projector = cls()
        projector.support_ = np.zeros(0, dtype=np.int64)
        projector.pinv_ = np.zeros((int(n_maps), 0))
        projector.dtype_ = np.dtype(maps_dtype).newbyteorder("=")
        projector.grid_shape_ = tuple(int(s) for s in grid_shape)
        projector.n_maps_ = int(n_maps)
        projector.names_ = None
        projector.unusable_ = str(reason)
        return projector

    def save(self, path, names=None):
        """Write the fitted projector (``.npz``, byte-identical across runs).

        The archive holds ``support``, ``pinv``, ``grid_shape``, ``dtype``,
        ``unusable`` when set, and, when given, the region ``names`` in map
        order (read back as ``names_``); zip entries carry a fixed date so that a rerun writes the
        same bytes.  The file is written atomically.
        """
        import zipfile

        from .io import atomic_path

        if not hasattr(self, "pinv_"):
            raise RuntimeError("MapsProjector is not fitted; call fit(maps) first")
        arrays = {"support": self.support_, "pinv": self.pinv_,
                  "grid_shape": np.asarray(self.grid_shape_, dtype=np.int64),
                  "dtype": np.asarray(self.dtype_.str)}
        if getattr(self, "unusable_", None):
            arrays["unusable"] = np.asarray(self.unusable_, dtype=str)
        if names is not None:
            names = [str(n) for n in names]
            if len(names) != self.n_maps_:
                raise ValueError(f"{len(names)} names for {self.n_maps_} maps")
            arrays["names"] = np.asarray(names, dtype=str)
        with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
            for name, array in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with archive.open(info, "w") as handle:
                    np.lib.format.write_array(handle, np.ascontiguousarray(array),
                                              allow_pickle=False)
        return self

    @classmethod
    def load(cls, path):
        """A projector written by :meth:`save`.

        Raises
        ------
        InputError
            When the file is missing or is not a projector archive.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                projector = cls()
                projector.support_ = archive["support"].astype(np.int64, copy=False)
                projector.pinv_ = archive["pinv"]
                projector.grid_shape_ = tuple(int(s) for s in archive["grid_shape"])
                projector.dtype_ = np.dtype(str(archive["dtype"].reshape(-1)[0]))
                projector.names_ = ([str(n) for n in archive["names"]]
                                    if "names" in archive.files else None)
                projector.unusable_ = (str(archive["unusable"].reshape(-1)[0])
                                       if "unusable" in archive.files else None)
        except (OSError, KeyError, ValueError) as err:
            raise InputError(f"not a projector file written by resample_atlas: {err}",
                             path=path) from None
        projector.n_maps_ = int(projector.pinv_.shape[0])
        return projector

    def result_dtype(self, data_dtype):
        """dtype of the signals for data of ``data_dtype`` (scipy's choice)."""
        return _lstsq_dtype(self.dtype_, data_dtype)

    def transform(self, chunk, counts=None):
        """Region signals of a chunk of volumes.

        Parameters
        ----------
        chunk : ndarray, shape (n, x * y * z)
            Volumes as rows, voxels in Fortran order (as
            :func:`iter_volume_chunks` yields them).  Never modified;
            NaN/inf count as 0.

        Returns
        -------
        signals : ndarray of float64, shape (n, k)

        counts : dict, optional
            When given, ``counts["non_finite"]`` is incremented by the number of
            NaN/inf values on the maps' support (those set to 0, as nilearn does).
        """
        if not hasattr(self, "pinv_"):
            raise RuntimeError("MapsProjector is not fitted; call fit(maps) first")
        chunk = np.asanyarray(chunk)
        n_vox = int(np.prod(self.grid_shape_))
        if chunk.ndim != 2 or chunk.shape[1] != n_vox:
            raise ValueError(f"chunk must have shape (n, {n_vox}), got {chunk.shape}")
        values = np.take(chunk, self.support_, axis=1)  # copy: (n, n_support)
        if values.dtype != np.float64:
            values = values.astype(np.float64)
        if not np.isfinite(values).all():
            bad = ~np.isfinite(values)
            if counts is not None:
                counts["non_finite"] = counts.get("non_finite", 0) + int(bad.sum())
            values[bad] = 0
        return values @ self.pinv_.T


def _open_run(path, subject=None):
    """``load_run`` plus the facts needed to read the data block."""
    img = load_run(path, subject=subject)
    proxy = img.dataobj
    dtype = np.dtype(proxy.dtype)
    if dtype.kind not in "iuf" or dtype.itemsize > 8:
        raise InputError(f"unsupported data type {dtype} (expected integers or "
                         "float32/float64)", path=path, subject=subject)
    if getattr(proxy, "order", "F") != "F":  # pragma: no cover - NIfTI is F order
        raise InputError("unsupported array order", path=path, subject=subject)
    return img, proxy, dtype


def _chunk_size(chunk_volumes, volume_bytes, n_volumes):
    if chunk_volumes is None:
        chunk_volumes = max(1, DEFAULT_CHUNK_BYTES // max(volume_bytes, 1))
    else:
        chunk_volumes = int(chunk_volumes)
        if chunk_volumes < 1:
            raise ValueError(f"chunk_volumes must be >= 1, got {chunk_volumes}")
    return min(chunk_volumes, n_volumes)


def iter_volume_chunks(path, chunk_volumes=None, subject=None):
    """Read a 4D NIfTI run sequentially, a chunk of volumes at a time.

    Parameters
    ----------
    path : str or os.PathLike
        ``.nii`` (memory-mapped) or ``.nii.gz`` (decompressed as a stream,
        with ``isal.igzip`` when importable, else :mod:`gzip`).
    chunk_volumes : int, optional
        Volumes per chunk; by default as many as fit in
        :data:`DEFAULT_CHUNK_BYTES` (16 MiB) of on-disk data, at least 1.
        The last chunk may be shorter.
    subject : str, optional
        Named in error messages.

    Yields
    ------
    chunk : ndarray, shape (n_chunk, x * y * z)
        One row per volume, voxels in Fortran (x fastest) order.  Values and
        dtype are those of nibabel's ``np.asanyarray(img.dataobj)`` (i.e.
        :func:`~cohort_connectome.extraction.run_data`) for the same volumes:
        the on-disk dtype when the header does not scale the data, the dtype
        nibabel's ``apply_read_scaling`` picks (float64 for the usual float
        ``scl_slope``) when it does; the byte order is native.  Unscaled
        chunks of a native-endian ``.nii`` are read-only views of the memory
        map (they stay valid).  Non-finite values are left as they are.

    Raises
    ------
    InputError
        One line naming the file: the errors of
        :func:`~cohort_connectome.extraction.load_run` (missing, unreadable,
        not 4D, single volume), an unsupported data type (complex, RGB,
        float128), or a data block shorter than the header says
        ("file ends after N of M volumes"; for ``.nii.gz`` the chunks before
        the break are yielded first).
    """
    img, proxy, dtype = _open_run(path, subject=subject)
    shape = tuple(int(s) for s in img.shape)
    n_vox = shape[0] * shape[1] * shape[2]
    n_volumes = shape[3]
    volume_bytes = n_vox * dtype.itemsize
    offset = int(proxy.offset)
    chunk_volumes = _chunk_size(chunk_volumes, volume_bytes, n_volumes)
    slope, inter = proxy.slope, proxy.inter
    native = dtype.newbyteorder("=")

    def finish(raw):
        # raw: (n, n_vox) in the on-disk dtype
        if raw.dtype != native:
            raw = raw.astype(native)
        return _scale(raw, slope, inter)

    def truncated(n_done):
        return InputError(f"file ends after {n_done} of {n_volumes} volumes",
                          path=path, subject=subject)

    path_str = os.fspath(path)
    if path_str.lower().endswith(".gz"):
        yield from _iter_gzip(path_str, offset, dtype, n_vox, n_volumes,
                              chunk_volumes, finish, truncated, subject)
    else:
        yield from _iter_mmap(path_str, offset, dtype, n_vox, n_volumes,
                              chunk_volumes, finish, truncated)


def _iter_gzip(path, offset, dtype, n_vox, n_volumes, chunk_volumes, finish,
               truncated, subject):
    import zlib

    volume_bytes = n_vox * dtype.itemsize
    done = 0  # volumes yielded
    with _gzip_open(path) as stream:
        try:
            skipped = 0
            while skipped < offset:
                got = len(stream.read(offset - skipped))
                if got == 0:
                    raise truncated(0)
                skipped += got
            while done < n_volumes:
                n = min(chunk_volumes, n_volumes - done)
                want = n * volume_bytes
                # a fresh buffer per chunk: yielded chunks stay valid
                buffer = np.empty(want, dtype=np.uint8)
                view = memoryview(buffer)
                filled = 0
                while filled < want:
                    try:
                        got = stream.readinto(
                            view[filled:min(want, filled + _READ_PIECE)])
                    except (EOFError, zlib.error, OSError):
                        got = 0
                    if not got:
                        raise truncated(done + filled // volume_bytes)
                    filled += got
                raw = np.frombuffer(buffer.data, dtype=dtype).reshape(n, n_vox)
                yield finish(raw)
                del raw, view, buffer
                done += n
        except InputError:
            raise
        except (EOFError, zlib.error, OSError) as err:
            reason = " ".join(str(err).split()) or type(err).__name__
            raise InputError(f"not a readable NIfTI image: {reason}", path=path,
                             subject=subject) from None


def _iter_mmap(path, offset, dtype, n_vox, n_volumes, chunk_volumes, finish, truncated):
    volume_bytes = n_vox * dtype.itemsize
    size = Path(path).stat().st_size
    available = max(0, size - offset) // volume_bytes
    if available < n_volumes:
        raise truncated(available)
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    # The map stays alive as long as any yielded view does; no explicit close.
    data = np.frombuffer(mm, dtype=dtype, count=n_volumes * n_vox, offset=offset)
    data = data.reshape(n_volumes, n_vox)
    page = mmap.PAGESIZE
    can_release = hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED")
    for start in range(0, n_volumes, chunk_volumes):
        stop = min(start + chunk_volumes, n_volumes)
        yield finish(data[start:stop])
        if can_release:
            # Drop the projected pages from our resident set (they stay in
            # the page cache; a later access just maps them again).
            lo = (offset + start * volume_bytes) // page * page
            hi = offset + stop * volume_bytes
            try:
                mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
            except (OSError, ValueError):  # pragma: no cover - platform specific
                can_release = False


def extract_signals_streaming(path, maps, subject=None, chunk_volumes=None, counts=None):
    """Region signals of a run read chunk by chunk (nilearn's
    ``img_to_signals_maps`` without loading the whole run).

    Parameters
    ----------
    path : str or os.PathLike
        The 4D run (``.nii`` or ``.nii.gz``).
    maps : ndarray, shape (x, y, z, k), or fitted MapsProjector
        Atlas maps on the run's grid (see
        :func:`cohort_connectome.resampling.resample_maps`), or a projector
        already fitted on them (to reuse it across runs).
    subject : str, optional
        Named in error messages.
    chunk_volumes : int, optional
        Volumes per chunk (default: ~16 MiB of on-disk data per chunk).
    counts : dict, optional
        Filled with ``non_finite``: the NaN/inf values of the run on the maps'
        support, counted as 0 (for the QC tables).

    Returns
    -------
    signals : ndarray, shape (n_volumes, k)
        Equal, to rounding, to ``extract_signals(run_data(load_run(path)),
        maps)`` and of the same dtype (float32 only when the data and the
        maps are both float32 -- or narrower types scipy maps to float32 --,
        float64 otherwise).

    Raises
    ------
    InputError
        Naming the file (and subject): the errors of
        :func:`iter_volume_chunks`, maps on another grid, or maps that do not
        overlap the grid.
    """
    if isinstance(maps, MapsProjector):
        projector = maps
        if not hasattr(projector, "pinv_"):
            raise RuntimeError("MapsProjector is not fitted; call fit(maps) first")
    else:
        maps = np.asanyarray(maps)
        if maps.ndim != 4:
            raise ValueError(f"maps must be a 4D array (x, y, z, k), got shape {maps.shape}")
        projector = None
    img, proxy, dtype = _open_run(path, subject=subject)
    grid = tuple(int(s) for s in img.shape[:3])
    maps_grid = projector.grid_shape_ if projector is not None else maps.shape[:3]
    if tuple(maps_grid) != grid:
        raise InputError(f"maps are not on the run's grid: spatial shapes "
                         f"{tuple(maps_grid)} and {grid}", path=path, subject=subject)
    if projector is None:
        try:
            projector = MapsProjector().fit(maps)
        except InputError as err:
            raise err.with_context(path=path, subject=subject) from None

    n_volumes = int(img.shape[3])
    if counts is not None:
        counts.setdefault("non_finite", 0)
    signals = np.empty((n_volumes, projector.n_maps_), dtype=np.float64)
    out_dtype = None
    row = 0
    for chunk in iter_volume_chunks(path, chunk_volumes=chunk_volumes, subject=subject):
        if out_dtype is None:
            out_dtype = projector.result_dtype(chunk.dtype)
        n = chunk.shape[0]
        signals[row:row + n] = projector.transform(chunk, counts=counts)
        row += n
        del chunk
    return signals.astype(out_dtype, copy=False)
