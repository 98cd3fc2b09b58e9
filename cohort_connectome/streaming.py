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
  imported and with the standard :mod:`gzip` otherwise, by default (2 CPUs
  or more) in a background thread a few chunks ahead (both decoders release
  the GIL while inflating, as do numpy's and scipy's products, so decoding
  overlaps the projection on a second core); an uncompressed ``.nii`` is
  memory-mapped (:mod:`mmap`, read-only) and pages already projected are
  released with ``madvise(MADV_DONTNEED)`` so the resident set stays at
  about one chunk;
* each chunk is projected onto the maps (:class:`MapsProjector`, computed
  once per grid from sparse maps: see below).

NIfTI stores each volume as one contiguous block with x varying fastest
(Fortran order), so a chunk is an array ``(n_chunk, nx * ny * nz)`` whose
column ``j`` is voxel ``np.unravel_index(j, (nx, ny, nz), order="F")``; the
projector's support indices use the same convention
(``maps.reshape(-1, k, order="F")``).

Numerics: nilearn solves ``lstsq(maps[support], data[support])`` with LAPACK
``gelsd``, which drops the singular values below ``eps * s.max()``.  The
projector keeps the maps as a sparse matrix ``A`` (support x maps) and the
pseudo-inverse of ``G = A.T @ A`` (maps x maps): signals are ``(X A)
pinv(G)``, the same minimum-norm solution, with gelsd's cut-off translated
to the eigenvalues of ``G`` (:meth:`MapsProjector.fit`), so that a
DiFuMo-1024 projector is ~40 MB instead of a 7 GB dense pseudo-inverse.
Measured against nilearn (relative error, max |ours - nilearn| / max
|nilearn|): 1.2e-14 for MSDL onto the ADHD 3 mm grid (float64 maps), 2.9e-14
for the real DiFuMo-64 onto a 3 mm grid with a float64 run; with float32
maps and runs nilearn's lstsq runs in float32 and the difference is its
rounding (1.8e-6 to 2.8e-6: MSDL, DiFuMo-64 onto the 2 mm MNI and a 3 mm
grid).  Maps with no support on a grid are left out of the least squares
and give NaN.  The projection is computed in float64 and cast to the dtype
``lstsq`` returns for the same inputs (that of the LAPACK routine scipy
picks for the maps' and the data's dtypes), so results are interchangeable.
"""

import mmap
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import linalg
from scipy.linalg.lapack import get_lapack_funcs

from .errors import InputError
from .extraction import NO_OVERLAP, load_run

try:  # optional fast gzip decoder; not a dependency
    from isal import igzip as _igzip
except ImportError:  # pragma: no cover - depends on the environment
    _igzip = None

__all__ = ["MapsProjector", "LinearForm", "iter_region_signals", "iter_volume_chunks", "iter_map_chunks", "open_maps",
           "extract_signals_streaming", "DEFAULT_CHUNK_BYTES"]

#: Target size, in bytes of on-disk data, of one chunk when ``chunk_volumes``
#: is not given.  Measured on 100- and 1200-volume ADHD-shaped runs: 16 MiB
#: gives the job a peak of 86 MB against 159 MB with 64 MiB, and is no slower.
DEFAULT_CHUNK_BYTES = 16 * 2**20

# Size of one read() on the gzip stream: a read that hits a truncated stream
# loses what it decoded, so this bounds the error in the count of complete
# volumes reported for a truncated file; still large enough for the decoder.
_READ_PIECE = 256 * 2**10

#: Whether ``.nii.gz`` files are decompressed in a background thread by
#: default (:func:`iter_volume_chunks`' ``background``): None = when the
#: process may run on at least 2 CPUs (``os.sched_getaffinity``).  Measured
#: on a 1200-volume 2 mm run with DiFuMo-1024 (2 idle cores): 1.08-1.21x the
#: wall of merely decoding the file, against 1.56-1.65x decoding in line;
#: with both cores busy the two are within noise (two concurrent extractions
#: 18.1 s and 17.8 s).  ``READ_AHEAD``: chunks decoded ahead of the consumer.
BACKGROUND_DECODE = None
READ_AHEAD = 2


def _background_default():
    if BACKGROUND_DECODE is not None:
        return bool(BACKGROUND_DECODE)
    try:
        return len(os.sched_getaffinity(0)) >= 2
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return (os.cpu_count() or 1) >= 2


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


#: Projector archive format written by :meth:`MapsProjector.save` (version 1,
#: a dense pseudo-inverse, is refused at load: rerun resample_atlas).
PROJECTOR_FORMAT = 2

#: Normal equations are used as they are when the Gram matrix's eigenvalues
#: all lie above this fraction of the largest (condition number of the maps
#: below 1e4): their rounding error, ~eps64 * cond**2, is then below 2.2e-8
#: relative, and no singular value is near gelsd's cut-off.
_WELL_CONDITIONED = 1e-8

#: Largest ``n_support * n_maps`` for which ill-conditioned maps are
#: decomposed from their dense matrix (an SVD, as gelsd does), 256 MB of
#: float64; larger ones use the Gram matrix's eigenvalues (see `fit`).
_DENSE_SVD_LIMIT = 2**25

#: Support voxels transposed at a time (`_transposed_float64`).
_GATHER_BLOCK = 16384

#: Volumes projected together by `iter_region_signals` (see there).
PROJECT_VOLUMES = 16


def _affine_or_none(affine):
    if affine is None:
        return None
    affine = np.array(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"grid_affine must be a 4x4 matrix, got shape {affine.shape}")
    return affine


def _as_sparse_maps(maps, grid_shape=None):
    """(csc_matrix (n_voxels, k) of the finite non-zero map values, grid
    shape, dtype) of dense 4D maps or of a sparse matrix."""
    from scipy import sparse

    if sparse.issparse(maps):
        if grid_shape is None:
            raise ValueError("grid_shape is required with sparse maps")
        grid_shape = tuple(int(s) for s in grid_shape)
        if len(grid_shape) != 3 or maps.ndim != 2 or maps.shape[0] != int(np.prod(grid_shape)):
            raise ValueError(f"sparse maps of shape {maps.shape} do not match the grid "
                             f"{grid_shape} (expected (n_voxels, n_maps))")
        dtype = np.dtype(maps.dtype)
        maps = sparse.csc_matrix(maps, copy=True)
        if dtype.kind in "fc":
            maps.data[~np.isfinite(maps.data)] = 0
        maps.eliminate_zeros()
        maps.sort_indices()
        return maps, grid_shape, dtype
    maps = np.asanyarray(maps)
    if maps.ndim != 4:
        raise ValueError(f"maps must be a 4D array (x, y, z, k), got shape {maps.shape}")
    k = maps.shape[3]
    flat = maps.reshape(-1, k, order="F")
    indices, values, indptr = [], [], [0]
    for j in range(k):
        column = np.asarray(flat[:, j])
        keep = column != 0
        if column.dtype.kind in "fc":
            keep &= np.isfinite(column)
        nz = np.flatnonzero(keep)
        indices.append(nz)
        values.append(column[nz])
        indptr.append(indptr[-1] + nz.size)
    dtype = np.dtype(maps.dtype).newbyteorder("=")
    matrix = sparse.csc_matrix(
        (np.concatenate(values).astype(dtype), np.concatenate(indices), indptr),
        shape=(flat.shape[0], k))
    return matrix, tuple(int(s) for s in maps.shape[:3]), np.dtype(maps.dtype)


class MapsProjector:
    """Least-squares projection of voxel values onto atlas maps, from sparse
    maps (normal equations).

    ``fit`` keeps the maps restricted to their support as a sparse matrix
    ``A`` (support voxels x supported maps, float64) and the pseudo-inverse
    of their Gram matrix ``G = A.T @ A``; ``transform`` then turns volumes
    into region signals as ``(X[:, support] @ A) @ pinv(G)``: one sparse
    product and one small dense one per chunk, never a dense
    (maps x voxels) matrix.  This is ``pinv(A) @ x``, nilearn's
    ``lstsq(maps, data)`` (``gelsd``), with gelsd's rank cut-off
    ``s_i <= eps * s_max`` translated to the eigenvalues of ``G``
    (``lambda_i <= eps**2 * lambda_max``, ``eps`` that of the precision
    lstsq runs in for float32 runs).  See `fit` for the numerics.

    Maps with no support on the grid (no finite non-zero value: e.g. a
    DiFuMo component outside a slab acquisition) take no part in the least
    squares, and their signals are NaN (``supported_``); nilearn would give
    the least squares on the supported maps for the others too.

    Attributes
    ----------
    support_ : ndarray of int64, shape (n_support,)
        Flat voxel indices of the support (voxels where at least one finite
        map value is non-zero), in Fortran (NIfTI, x fastest) order of the 3D
        grid: index ``j`` is voxel ``np.unravel_index(j, grid_shape_,
        order="F")``.
    supported_ : ndarray of bool, shape (n_maps,)
        Maps with at least one voxel of support; the others give NaN.
    maps_ : scipy.sparse.csr_matrix, shape (n_support, n_supported)
        ``A``: the supported maps on the support, float64 (non-finite map
        values as 0).
    gram_pinv_ : ndarray of float64, shape (n_supported, n_supported)
        Pseudo-inverse of ``A.T @ A`` with gelsd's cut-off.
    dtype_ : numpy.dtype
        The maps' dtype (native byte order); with the data's dtype it fixes
        the result dtype, as scipy's ``lstsq`` would.
    grid_shape_ : tuple of int
        The maps' spatial shape ``(x, y, z)``.
    grid_affine_ : ndarray of float64, shape (4, 4), or None
        The grid's affine when given to `fit` (or `unusable`), so that a
        run's grid can be checked against the projector alone.
    n_maps_ : int
        Number of maps ``k`` (supported or not).
    names_ : list of str or None
        Region names in map order, when saved with the projector (None after
        `fit`).
    unusable_ : str or None
        Why the maps cannot be used on this grid (e.g. they do not overlap
        it), for a projector made by :meth:`unusable`; None after `fit`.
    """

    def __init__(self):
        pass

    def fit(self, maps, grid_shape=None, grid_affine=None):
        """Learn the support, the sparse maps and the Gram pseudo-inverse.

        Parameters
        ----------
        maps : ndarray of shape (x, y, z, k), or scipy.sparse matrix of shape (x * y * z, k)
            Atlas maps on the run's grid: dense (converted to sparse), or
            sparse with voxels in Fortran order (as
            :func:`cohort_connectome.resampling.resample_maps_sparse` returns
            them).  Never modified; NaN/inf count as 0.
        grid_shape : tuple of 3 int, optional
            The grid, required with sparse maps.
        grid_affine : array-like, shape (4, 4), optional
            The grid's affine, kept as ``grid_affine_`` (and saved).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If dense ``maps`` are not 4D, or sparse ones do not match
            ``grid_shape``.
        InputError
            If no voxel has a non-zero finite map value.

        Notes
        -----
        ``G = A.T @ A`` is formed in float64 and decomposed by
        ``scipy.linalg.eigh``.  When all its eigenvalues exceed
        ``1e-8 * lambda_max`` (maps with a condition number below 1e4, as
        atlases are: MSDL, DiFuMo), ``pinv(G)`` is used as it is: its
        rounding error (~``eps64 * cond**2``) stays below 2.2e-8 relative
        and no singular value is near gelsd's cut-off, which thus keeps
        them all.  Otherwise the normal equations could not tell the
        singular values below ~``sqrt(eps64)`` from noise, so:

        * when the maps' dense matrix is small (``n_support * n_supported
          <= 2**25``), its singular values and vectors come from an SVD of
          it (``scipy.linalg.svd``), with gelsd's cut-off ``s_i > eps *
          s_max`` applied to them exactly; ``pinv(G) = V diag(1/s**2) V.T``
          is then as accurate as nilearn's solution (~``eps * cond``);
        * otherwise the eigenvalues of ``G`` are cut at ``max(eps**2, k *
          eps64) * lambda_max``: gelsd's rule, raised to the rounding noise
          of ``G`` (a singular value between ``eps * s_max`` and
          ``sqrt(k * eps64) * s_max`` is dropped here and kept by gelsd,
          which then amplifies noise by ``1 / s``).
        """
        from scipy import sparse

        maps, grid_shape, dtype = _as_sparse_maps(maps, grid_shape)
        counts = np.diff(maps.indptr)
        supported = counts > 0
        if not supported.any():
            raise InputError(NO_OVERLAP)
        a = maps[:, np.flatnonzero(supported)].tocsr()
        support = np.flatnonzero(np.diff(a.indptr) > 0).astype(np.int64)
        a = a[support]
        a = sparse.csr_matrix((a.data.astype(np.float64), a.indices, a.indptr), shape=a.shape)
        a.sort_indices()
        eps = np.finfo(_lstsq_dtype(dtype, np.float32)).eps
        self.support_ = support
        self.supported_ = supported
        self.maps_ = a
        self.gram_pinv_ = _gram_pinv(a, eps)
        self.dtype_ = np.dtype(dtype).newbyteorder("=")
        self.grid_shape_ = tuple(int(s) for s in grid_shape)
        self.grid_affine_ = _affine_or_none(grid_affine)
        self.n_maps_ = int(maps.shape[1])
        self.names_ = None
        self.unusable_ = None
        self._prepare()
        return self

    def _prepare(self):
        # A.T as CSC (the same arrays as A in CSR): the product A.T @ X.T
        # visits the support voxel by voxel, reading X.T's rows in order.
        self._at = self.maps_.T

    @classmethod
    def unusable(cls, maps_dtype, grid_shape, n_maps, reason, grid_affine=None):
        """A projector that says why the maps cannot be used on a grid.

        Written in place of a fitted projector when the runs of a grid cannot
        be extracted (e.g. the atlas lies outside their field of view), so
        that each run's extraction job can record the reason and the other
        grids go on.  It has an empty support, no supported map and
        ``unusable_ = reason``.
        """
        from scipy import sparse

        projector = cls()
        projector.support_ = np.zeros(0, dtype=np.int64)
        projector.supported_ = np.zeros(int(n_maps), dtype=bool)
        projector.maps_ = sparse.csr_matrix((0, 0), dtype=np.float64)
        projector.gram_pinv_ = np.zeros((0, 0))
        projector.dtype_ = np.dtype(maps_dtype).newbyteorder("=")
        projector.grid_shape_ = tuple(int(s) for s in grid_shape)
        projector.grid_affine_ = _affine_or_none(grid_affine)
        projector.n_maps_ = int(n_maps)
        projector.names_ = None
        projector.unusable_ = str(reason)
        projector._prepare()
        return projector

    def _check_fitted(self):
        if not hasattr(self, "gram_pinv_"):
            raise RuntimeError("MapsProjector is not fitted; call fit(maps) first")

    def to_arrays(self, names=None):
        """The projector as a dict of plain numpy arrays (deterministic).

        Keys: ``format`` (:data:`PROJECTOR_FORMAT`), ``support``,
        ``supported``, ``maps_data``/``maps_indices``/``maps_indptr`` (``A``
        in CSR: float64, int32, int64), ``maps_shape``, ``gram_pinv``,
        ``grid_shape``, ``dtype`` (a string), ``grid_affine`` and
        ``unusable`` when set, and ``names`` when given
        (or, without ``names``, when the projector has ``names_``).

        Raises
        ------
        ValueError
            When ``names`` does not hold one name per map.
        """
        self._check_fitted()
        a = self.maps_
        arrays = {"format": np.asarray(PROJECTOR_FORMAT, dtype=np.int64),
                  "support": np.asarray(self.support_, dtype=np.int64),
                  "supported": np.asarray(self.supported_, dtype=bool),
                  "maps_data": np.asarray(a.data, dtype=np.float64),
                  "maps_indices": np.asarray(a.indices, dtype=np.int32),
                  "maps_indptr": np.asarray(a.indptr, dtype=np.int64),
                  "maps_shape": np.asarray(a.shape, dtype=np.int64),
                  "gram_pinv": np.asarray(self.gram_pinv_, dtype=np.float64),
                  "grid_shape": np.asarray(self.grid_shape_, dtype=np.int64),
                  "dtype": np.asarray(self.dtype_.str)}
        if getattr(self, "grid_affine_", None) is not None:
            arrays["grid_affine"] = np.asarray(self.grid_affine_, dtype=np.float64)
        if getattr(self, "unusable_", None):
            arrays["unusable"] = np.asarray(self.unusable_, dtype=str)
        if names is None:
            names = getattr(self, "names_", None)
        if names is not None:
            names = [str(n) for n in names]
            if len(names) != self.n_maps_:
                raise ValueError(f"{len(names)} names for {self.n_maps_} maps")
            arrays["names"] = np.asarray(names, dtype=str)
        return arrays

    @classmethod
    def from_arrays(cls, arrays):
        """A projector from :meth:`to_arrays`' dict (or a loaded archive).

        Raises
        ------
        KeyError, ValueError
            When an array is missing or inconsistent.
        """
        from scipy import sparse

        fmt = int(np.asarray(arrays["format"]).reshape(-1)[0]) if "format" in arrays else 1
        if fmt != PROJECTOR_FORMAT:
            raise ValueError(f"projector format {fmt}, expected {PROJECTOR_FORMAT} "
                             "(written by another version: rerun resample_atlas)")
        projector = cls()
        projector.support_ = np.asarray(arrays["support"]).astype(np.int64, copy=False)
        projector.supported_ = np.asarray(arrays["supported"]).astype(bool, copy=False)
        shape = tuple(int(s) for s in np.asarray(arrays["maps_shape"]))
        projector.maps_ = sparse.csr_matrix(
            (np.asarray(arrays["maps_data"], dtype=np.float64),
             np.asarray(arrays["maps_indices"]), np.asarray(arrays["maps_indptr"])),
            shape=shape)
        projector.gram_pinv_ = np.asarray(arrays["gram_pinv"], dtype=np.float64)
        projector.grid_shape_ = tuple(int(s) for s in np.asarray(arrays["grid_shape"]))
        projector.grid_affine_ = _affine_or_none(arrays.get("grid_affine"))
        projector.dtype_ = np.dtype(str(np.asarray(arrays["dtype"]).reshape(-1)[0]))
        projector.names_ = ([str(n) for n in np.asarray(arrays["names"])]
                            if "names" in arrays else None)
        projector.unusable_ = (str(np.asarray(arrays["unusable"]).reshape(-1)[0])
                               if "unusable" in arrays else None)
        projector.n_maps_ = int(projector.supported_.size)
        n_supported = int(projector.supported_.sum())
        if (shape != (projector.support_.size, n_supported)
                or projector.gram_pinv_.shape != (n_supported, n_supported)
                or len(projector.grid_shape_) != 3):
            raise ValueError("inconsistent projector arrays")
        projector._prepare()
        return projector

    def save(self, path, names=None):
        """Write the projector (:meth:`to_arrays`) as an uncompressed ``.npz``,
        atomically; zip entries carry a fixed date, so that a rerun writes
        the same bytes.  ``names`` (one per map, read back as ``names_``)
        defaults to ``names_``."""
        from .io import write_npz

        write_npz(path, self.to_arrays(names=names))
        return self

    @classmethod
    def load(cls, path):
        """A projector written by :meth:`save`.

        Raises
        ------
        InputError
            When the file is missing, is not a projector archive, or was
            written in another format (e.g. the dense pseudo-inverse of
            earlier versions).
        """
        from .io import read_npz

        arrays = read_npz(path, what="a projector file written by resample_atlas")
        try:
            return cls.from_arrays(arrays)
        except (KeyError, ValueError) as err:
            raise InputError(f"not a projector file written by resample_atlas: {err}",
                             path=path) from None

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
        counts : dict, optional
            When given, ``counts["non_finite"]`` is incremented by the number of
            NaN/inf values on the maps' support (those set to 0, as nilearn does).

        Returns
        -------
        signals : ndarray of float64, shape (n, k)
            NaN in the columns of unsupported maps.
        """
        self._check_fitted()
        chunk = self._check_chunk(chunk)
        signals = np.empty((chunk.shape[0], self.n_maps_))
        for _, start, values in iter_region_signals([chunk], [self], [counts]):
            signals[start:start + values.shape[0]] = values
        return signals

    def linear_form(self):
        """The projection as a `LinearForm`: ``pinv(G) @ (A.T @ X.T)``.

        ``A.T`` is kept in CSC (the same arrays as ``A`` in CSR): the product
        visits the support voxel by voxel, reading ``X.T``'s rows in order.
        """
        self._check_fitted()
        return LinearForm(self.support_, self._at, self._solve)

    def _check_chunk(self, chunk):
        chunk = np.asanyarray(chunk)
        n_vox = int(np.prod(self.grid_shape_))
        if chunk.ndim != 2 or chunk.shape[1] != n_vox:
            raise ValueError(f"chunk must have shape (n, {n_vox}), got {chunk.shape}")
        return chunk

    def _solve(self, fitted):
        """Signals (n, k) from ``A.T @ X.T`` (n_supported, n): ``pinv(G)``
        applied, NaN for the unsupported maps."""
        signals = np.full((fitted.shape[1], self.n_maps_), np.nan)
        if fitted.shape[0]:
            signals[:, self.supported_] = (self.gram_pinv_ @ fitted).T
        return signals


def _gram_pinv(a, eps):
    """``pinv(a.T @ a)`` with gelsd's cut-off (see `MapsProjector.fit`)."""
    gram = (a.T @ a).toarray()
    gram = (gram + gram.T) / 2  # exactly symmetric for eigh
    lam, vec = linalg.eigh(gram)
    lam_max = lam[-1]
    if lam[0] > _WELL_CONDITIONED * lam_max:
        return (vec / lam) @ vec.T
    if a.shape[0] * a.shape[1] <= _DENSE_SVD_LIMIT:
        _, s, vt = linalg.svd(a.toarray(), full_matrices=False)
        keep = s > eps * s[0]
        vt = vt[keep]
        return (vt.T / s[keep] ** 2) @ vt
    k = a.shape[1]
    keep = lam > max(eps**2, k * np.finfo(np.float64).eps) * lam_max
    vec = vec[:, keep]
    return (vec / lam[keep]) @ vec.T


def _check_dtype(proxy, path, subject=None):
    dtype = np.dtype(proxy.dtype)
    if dtype.kind not in "iuf" or dtype.itemsize > 8:
        raise InputError(f"unsupported data type {dtype} (expected integers or "
                         "float32/float64)", path=path, subject=subject)
    if getattr(proxy, "order", "F") != "F":  # pragma: no cover - NIfTI is F order
        raise InputError("unsupported array order", path=path, subject=subject)
    return dtype


def _open_run(path, subject=None):
    """``load_run`` plus the facts needed to read the data block."""
    img = load_run(path, subject=subject)
    proxy = img.dataobj
    return img, proxy, _check_dtype(proxy, path, subject)


def open_maps(path):
    """Open a 4D atlas maps file without reading its data.

    Returns
    -------
    img : nibabel image
    dtype : numpy.dtype
        The dtype of ``np.asanyarray(img.dataobj)`` (what
        :func:`iter_map_chunks` yields): the on-disk dtype in native byte
        order, or nibabel's scaled dtype when the header scales the data.

    Raises
    ------
    InputError
        Naming the file: missing, unreadable, not 4D, unsupported data type.
    """
    from .io import load_nifti

    path = Path(path)
    if not path.is_file():
        raise InputError("atlas maps file not found", path=path)
    img = load_nifti(path)
    if len(img.shape) != 4 or not hasattr(img.dataobj, "offset"):
        raise InputError(f"atlas maps must be a 4D image (one volume per map), got shape "
                         f"{img.shape}", path=path)
    proxy = img.dataobj
    dtype = _check_dtype(proxy, path)
    return img, _chunk_dtype(proxy, dtype)


def _chunk_dtype(proxy, dtype):
    """The dtype of the chunks read from ``proxy`` (on-disk ``dtype``): native
    byte order, or nibabel's scaled dtype when the header scales the data."""
    empty = np.zeros(0, dtype=dtype.newbyteorder("="))
    return _scale(empty, proxy.slope, proxy.inter).dtype


def iter_map_chunks(path, chunk_volumes=None, background=None):
    """Read a 4D atlas maps file sequentially, a chunk of maps at a time.

    As :func:`iter_volume_chunks` (same values, dtypes and errors) for any
    4D image, a single map included: chunk rows are maps, voxels in Fortran
    order.  Opened with :func:`open_maps`.
    """
    img, _ = open_maps(path)
    yield from _iter_chunks(path, img, img.dataobj, np.dtype(img.dataobj.dtype),
                            chunk_volumes, None, background)


def _chunk_size(chunk_volumes, volume_bytes, n_volumes):
    if chunk_volumes is None:
        chunk_volumes = max(1, DEFAULT_CHUNK_BYTES // max(volume_bytes, 1))
    else:
        chunk_volumes = int(chunk_volumes)
        if chunk_volumes < 1:
            raise ValueError(f"chunk_volumes must be >= 1, got {chunk_volumes}")
    return max(1, min(chunk_volumes, n_volumes))


def iter_volume_chunks(path, chunk_volumes=None, subject=None, background=None,
                       read_ahead_volumes=0):
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
    background : bool, optional
        For ``.nii.gz``: decompress in a background thread, up to
        :data:`READ_AHEAD` chunks ahead of the consumer, so that decoding
        overlaps the caller's work on the previous chunk (the decoders
        release the GIL while inflating).  Default :data:`BACKGROUND_DECODE`
        (on when the process may use 2 CPUs or more).
        Same chunks, values and errors either way.
    read_ahead_volumes : int, default=0
        With ``background``: let the decoder run this many volumes ahead
        (plus :data:`READ_AHEAD` chunks), for a consumer that works on
        batches of volumes (`iter_region_signals`): decoding then goes on
        while a batch is projected, at the cost of that many decoded
        volumes in memory.

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
    yield from _iter_chunks(path, img, proxy, dtype, chunk_volumes, subject, background,
                            read_ahead_volumes)


def _iter_chunks(path, img, proxy, dtype, chunk_volumes, subject, background,
                 read_ahead_volumes=0):
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
        blocks = _iter_gzip(path_str, offset, volume_bytes, n_volumes, chunk_volumes,
                            truncated, subject)
        if _background_default() if background is None else background:
            blocks = _read_ahead(blocks, READ_AHEAD + -(-int(read_ahead_volumes)
                                                        // chunk_volumes))
        for n, buffer in blocks:
            yield finish(np.frombuffer(buffer, dtype=dtype).reshape(n, n_vox))
            del buffer
    else:
        yield from _iter_mmap(path_str, offset, dtype, n_vox, n_volumes,
                              chunk_volumes, finish, truncated)


def _iter_gzip(path, offset, volume_bytes, n_volumes, chunk_volumes, truncated, subject):
    """Yield (n_volumes_in_chunk, bytes buffer) of the data block."""
    import zlib

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
                del view
                yield n, buffer
                del buffer
                done += n
        except InputError:
            raise
        except (EOFError, zlib.error, OSError) as err:
            reason = " ".join(str(err).split()) or type(err).__name__
            raise InputError(f"not a readable NIfTI image: {reason}", path=path,
                             subject=subject) from None


def _read_ahead(items, depth):
    """Iterate ``items`` in a background thread, at most ``depth`` items
    ahead of the consumer: the same items in the same order, then the
    iterator's exception, if any, re-raised here.  Closing this generator
    (or abandoning it) stops the thread."""
    import queue
    import threading

    q = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item):
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put((None, item)):
                    return
            put((None, end))
        except BaseException as err:  # handed to the consumer
            put((err, None))
        finally:
            items.close()

    thread = threading.Thread(target=produce, name="nifti-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            err, item = q.get()
            if err is not None:
                raise err
            if item is end:
                return
            yield item
            del item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)
        thread.join()


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


class LinearForm(NamedTuple):
    """An extractor's region signals as a linear map of its support's values.

    For values ``X`` (n volumes, n_support voxels, float64, NaN/inf as 0),
    the signals are ``finish(operator @ X.T)``.  ``operator`` is a scipy
    sparse matrix (m, n_support), CSR or CSC, whose stored order is the
    order in which each output sums its voxels (kept when it is re-indexed
    onto other voxels: `iter_region_signals`).
    """

    support: np.ndarray
    operator: object
    finish: object


def _on_columns(operator, positions, n_columns):
    """``operator`` (m, len(positions)) with column ``j`` moved to
    ``positions[j]`` of ``n_columns`` (increasing positions), its stored
    entries and their order unchanged."""
    from scipy import sparse

    if operator.format == "csc":
        per_column = np.zeros(n_columns, dtype=np.int64)
        per_column[positions] = np.diff(operator.indptr)
        indptr = np.concatenate(([0], np.cumsum(per_column)))
        return sparse.csc_matrix((operator.data, operator.indices, indptr),
                                 shape=(operator.shape[0], n_columns))
    operator = operator.tocsr()
    return sparse.csr_matrix((operator.data, positions[operator.indices], operator.indptr),
                             shape=(operator.shape[0], n_columns))


def iter_region_signals(chunks, extractors, counts=None, batch_volumes=PROJECT_VOLUMES):
    """Region signals of several atlases on one grid, from one pass over a run.

    Every extractor with a `LinearForm` (`MapsProjector`; a
    `~cohort_connectome.labels.LabelsReducer` for ``mean`` or ``sum``) is
    computed from one gather per batch of volumes: the values of the union
    of their supports (sorted voxels) are staged for ``batch_volumes``
    volumes, NaN/inf set to 0, transposed once to float64, and each
    extractor's sparse operator, re-indexed onto the union, is applied to
    them.  Each output sums its voxels in the same order as the extractor
    alone, so the signals equal its own ``transform``'s (bit for bit for a
    ``LabelsReducer``).  Other extractors (the ``LabelsReducer`` strategies
    ``median``, ``minimum``, ``maximum``, ``variance``,
    ``standard_deviation``) reduce each chunk as it comes.

    Parameters
    ----------
    chunks : iterable of ndarray, shape (n, x * y * z)
        Volumes as rows, voxels in Fortran order (:func:`iter_volume_chunks`).
        Never modified.
    extractors : sequence
        Fitted extractors on the chunks' grid (``grid_shape_``).
    counts : sequence of dict or None, optional
        One per extractor: ``"non_finite"`` is incremented by the NaN/inf
        values on its support (those counted as 0, as nilearn does).
    batch_volumes : int
        Volumes projected together: each sparse product reads its operator
        once per batch.  Measured on a 1200-volume 2 mm run: the DiFuMo-1024
        product alone takes 2.3 s in batches of 4, 0.9 s in batches of 16,
        0.8 s in batches of 32; the whole extraction job with four atlases
        (MSDL, DiFuMo-1024, Schaefer-400, AAL shapes) 4.5-4.9 s in batches
        of 16 against 5.3-5.8 s in batches of 24 or 32 (the larger float64
        staging competes with the decoder for memory bandwidth).

    Yields
    ------
    i : int
        The extractor.
    start : int
        The first volume (row of the run) of ``signals``.
    signals : ndarray of float64, shape (n, k_i)
        The extractor's signals for volumes ``start:start + n``; NaN for
        its regions without support.
    """
    extractors = list(extractors)
    counts = list(counts) if counts is not None else [None] * len(extractors)
    grids = {tuple(e.grid_shape_) for e in extractors}
    if len(grids) != 1:
        raise ValueError(f"extractors must share one grid, got {sorted(grids)}")
    n_vox = int(np.prod(grids.pop()))
    forms = [e.linear_form() if hasattr(e, "linear_form") else None for e in extractors]
    linear = [i for i, form in enumerate(forms) if form is not None]
    if linear:
        union = union_of_voxels([forms[i].support for i in linear], n_vox)
        position = np.zeros(n_vox, dtype=np.intp)
        position[union] = np.arange(union.size)
        positions = {i: position[forms[i].support] for i in linear}
        del position
        operators = {i: _on_columns(forms[i].operator, positions[i], union.size)
                     for i in linear}
    staging = None
    filled = done = row = 0

    def project(values, start):
        """Each linear extractor's signals of ``values`` (n, n_union)."""
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            bad = ~np.isfinite(values)
            for i in linear:
                if counts[i] is not None:
                    counts[i]["non_finite"] = (counts[i].get("non_finite", 0)
                                               + int(bad[:, positions[i]].sum()))
            values[bad] = 0
            del bad
        xt = _transposed_float64(values)
        for i in linear:
            yield i, start, forms[i].finish(operators[i] @ xt)

    for chunk in chunks:
        chunk = np.asanyarray(chunk)
        if chunk.ndim != 2 or chunk.shape[1] != n_vox:
            raise ValueError(f"chunk must have shape (n, {n_vox}), got {chunk.shape}")
        n = chunk.shape[0]
        for i, extractor in enumerate(extractors):
            if forms[i] is None:
                yield i, row, extractor.transform(chunk, counts=counts[i])
        row += n
        if not linear:
            continue
        if staging is None:
            staging = np.empty((max(1, int(batch_volumes)), union.size), dtype=chunk.dtype)
        taken = 0
        while taken < n:
            m = min(n - taken, staging.shape[0] - filled)
            np.take(chunk[taken:taken + m], union, axis=1, out=staging[filled:filled + m],
                    mode="clip")  # the indices are valid: no bounds-check copy
            filled += m
            taken += m
            if filled == staging.shape[0]:
                yield from project(staging, done)
                done += filled
                filled = 0
        del chunk
    if filled:
        yield from project(staging[:filled], done)


def union_of_voxels(index_arrays, n_voxels):
    """The sorted distinct voxel indices of several index arrays (flat
    indices of a grid of ``n_voxels``): ``np.unique`` of their concatenation,
    from a mask of the grid (linear time)."""
    mask = np.zeros(n_voxels, dtype=bool)
    for indices in index_arrays:
        mask[indices] = True
    return np.flatnonzero(mask)


def _transposed_float64(values):
    """``values.T`` (n_support, n) as a C-ordered float64 copy, the layout the
    sparse products read; copied by blocks of voxels so that the
    transposition stays in cache."""
    n_support = values.shape[1]
    xt = np.empty((n_support, values.shape[0]), dtype=np.float64)
    for start in range(0, n_support, _GATHER_BLOCK):
        stop = min(start + _GATHER_BLOCK, n_support)
        xt[start:stop] = values[:, start:stop].T
    return xt


def extract_signals_streaming(path, maps, subject=None, chunk_volumes=None, counts=None,
                              background=None):
    """Region signals of a run read chunk by chunk (nilearn's
    ``img_to_signals_maps`` without loading the whole run).

    Parameters
    ----------
    path : str or os.PathLike
        The 4D run (``.nii`` or ``.nii.gz``).
    maps : ndarray, shape (x, y, z, k), or fitted MapsProjector
        Atlas maps on the run's grid (see
        :func:`cohort_connectome.resampling.resample_maps`), or a projector
        already fitted on them (to reuse it across runs; e.g. fitted on
        :func:`~cohort_connectome.resampling.resample_maps_sparse`'s output).
    subject : str, optional
        Named in error messages.
    chunk_volumes : int, optional
        Volumes per chunk (default: ~16 MiB of on-disk data per chunk).
    counts : dict, optional
        Filled with ``non_finite``: the NaN/inf values of the run on the maps'
        support, counted as 0 (for the QC tables).
    background : bool, optional
        Decompress in a background thread (see :func:`iter_volume_chunks`).

    Returns
    -------
    signals : ndarray, shape (n_volumes, k)
        Equal, to rounding, to ``extract_signals(run_data(load_run(path)),
        maps)`` and of the same dtype (float32 only when the data and the
        maps are both float32 -- or narrower types scipy maps to float32 --,
        float64 otherwise); NaN in the columns of maps without support on
        the grid.

    Raises
    ------
    InputError
        Naming the file (and subject): the errors of
        :func:`iter_volume_chunks`, maps on another grid, or maps that do not
        overlap the grid.
    """
    if isinstance(maps, MapsProjector):
        projector = maps
        projector._check_fitted()
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

    if counts is not None:
        counts.setdefault("non_finite", 0)
    signals = np.empty((int(img.shape[3]), projector.n_maps_))
    chunks = iter_volume_chunks(path, chunk_volumes=chunk_volumes, subject=subject,
                                background=background, read_ahead_volumes=PROJECT_VOLUMES)
    for _, start, values in iter_region_signals(chunks, [projector], [counts]):
        signals[start:start + values.shape[0]] = values
    return signals.astype(projector.result_dtype(_chunk_dtype(proxy, dtype)), copy=False)
