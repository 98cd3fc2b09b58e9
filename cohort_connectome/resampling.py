"""Atlas maps onto a run's voxel grid, as ``NiftiMapsMasker(resampling_target="data")``.

Mirrors ``nilearn.image.resample_img`` (the call ``resample_to_img`` makes) as
nilearn 0.13.1's maps masker uses it at fit time: (1) NaN/inf in the maps are
replaced by 0 (``clean_img(maps, ensure_finite=True)``), then (2) when the maps
and the run are not on the same grid (``check_same_fov``),
``resample_img(maps, target_affine=run.affine, target_shape=run.shape[:3],
interpolation="linear")``.  On arrays, with nilearn's calls:

* the voxel-to-voxel transform is ``scipy.linalg.inv(maps_affine) @
  target_affine`` (the identity when the two affines are bit-identical);
* when its 3x3 matrix is diagonal (grids that differ only by voxel size,
  origin and axis flips: the usual case, e.g. MSDL onto the ADHD grid) it is
  passed as a vector, so ``scipy.ndimage.affine_transform`` takes its
  zoom/shift path;
* each map is interpolated by ``scipy.ndimage.affine_transform(vol, matrix,
  offset, output_shape, order=1, cval=0)`` into a Fortran-ordered output;
* the result is clipped to ``[min(maps, 0), max(maps, 0)]`` (nilearn's
  ``clip=True``) and keeps the maps' floating dtype, byte order included
  (nilearn's conversion of non-native data to native order for a diagonal
  transform tests the 3x3 matrix before it becomes a vector, so it never
  applies in 0.13.1).

:func:`resample_maps` returns the dense resampled maps (the reference).
:func:`resample_maps_sparse` gives the same values, bit for bit, as sparse
matrices, reading a maps file one volume at a time and interpolating only the
target voxels near each map's support: for DiFuMo-1024 at 2 mm (5.4 GB of
maps, 3.7 GB once resampled densely to the MNI 2 mm grid) it holds ~2.6
million non-zero values.
"""

import numpy as np
from scipy import linalg, ndimage

from .errors import InputError

__all__ = ["same_grid", "grid_id", "read_grid", "voxel_transform", "reorder_axes", "resample_maps",
           "resample_maps_sparse"]

#: Message raised when the run's grid does not see any of the atlas.
NO_OVERLAP = "atlas maps do not overlap the run's field of view"


def same_grid(shape_a, affine_a, shape_b, affine_b):
    """Whether two images share a voxel grid (nilearn's ``check_same_fov``).

    Parameters
    ----------
    shape_a, shape_b : tuple of int
        Image shapes; only the first 3 entries (the spatial grid) are compared,
        so a 4D run and 4D maps can be passed as they are.
    affine_a, affine_b : array-like, shape (4, 4)
        Voxel-to-world affines.

    Returns
    -------
    bool
        True when ``shape_a[:3] == shape_b[:3]`` and
        ``numpy.allclose(affine_a, affine_b)`` (default tolerances, as nilearn).
    """
    if tuple(int(s) for s in shape_a[:3]) != tuple(int(s) for s in shape_b[:3]):
        return False
    affine_a = np.asarray(affine_a, dtype=np.float64)
    affine_b = np.asarray(affine_b, dtype=np.float64)
    if affine_a.shape != affine_b.shape:
        return False
    return bool(np.allclose(affine_a, affine_b))


def grid_id(shape, affine):
    """A short, stable name for a voxel grid: runs with the same name share
    one resampled atlas.

    Parameters
    ----------
    shape : tuple of int
        Image shape; only the first 3 entries count.
    affine : array-like, shape (4, 4)

    Returns
    -------
    str
        12 hexadecimal digits: a SHA-1 of the spatial shape and of the affine
        rounded to 1e-6 mm (so headers that differ by float noise, and that
        `same_grid` calls equal, get one name).
    """
    import hashlib

    shape = tuple(int(s) for s in shape[:3])
    affine = np.round(np.asarray(affine, dtype=np.float64), 6) + 0.0  # no -0.0
    text = "x".join(map(str, shape)) + ";" + ",".join(f"{v:.6f}" for v in affine.ravel())
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def read_grid(path):
    """The voxel grid of a NIfTI file from its header (data not read).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    (shape, affine) or None
        ``shape`` the first 3 dimensions (tuple of int), ``affine`` a (4, 4)
        float64 array; None when the file is missing or its header cannot be
        read (the job that reads the run reports why).
    """
    import nibabel as nib

    try:
        img = nib.load(path)
        shape = tuple(int(s) for s in img.shape[:3])
        affine = np.asarray(img.affine, dtype=np.float64)
    except Exception:  # missing, unreadable: reported by the job that needs the data
        return None
    if len(shape) < 3 or affine.shape != (4, 4):
        return None
    return shape, affine


def _float_dtype(dtype):
    """The dtype nilearn's ``clean_img`` gives maps of ``dtype``
    (``signal._ensure_float``: floats kept, 8-byte ints to float64, others to
    float32)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return dtype
    return np.dtype(np.float64) if dtype.itemsize == 8 else np.dtype(np.float32)


def _bounds(shape, affine):
    """World-space (min, max) per axis of the corner voxel centres
    (nilearn.image.resampling.get_bounds)."""
    a, b, c = (int(s) - 1 for s in shape)
    box = np.array(
        [[0.0, 0, 0, 1], [a, 0, 0, 1], [0, b, 0, 1], [0, 0, c, 1],
         [a, b, 0, 1], [a, 0, c, 1], [0, b, c, 1], [a, b, c, 1]]
    ).T
    box = np.dot(affine, box)[:3]
    return list(zip(box.min(axis=-1), box.max(axis=-1)))


def _check_overlap(source_shape, source_affine, target_affine, message):
    """nilearn's ``BoundingBoxError`` check in ``resample_img``: the source's
    corner voxels in target voxel coordinates must not all lie on the negative
    side of some axis.

    Raises
    ------
    InputError
        With ``message`` when the target grid contains none of the source.
    """
    to_target = np.linalg.inv(target_affine).dot(source_affine)
    (_, xmax), (_, ymax), (_, zmax) = _bounds(source_shape[:3], to_target)
    if xmax < 0 or ymax < 0 or zmax < 0:
        raise InputError(message)


def voxel_transform(source_affine, target_affine):
    """Target-voxel to source-voxel transform, built as nilearn's ``resample_img``
    builds it for ``scipy.ndimage.affine_transform``.

    Parameters
    ----------
    source_affine, target_affine : ndarray, shape (4, 4)
        Voxel-to-world affines (float64) of the image to resample and of the
        target grid.

    Returns
    -------
    matrix : ndarray, shape (3,) or (3, 3)
        The 3x3 part of ``scipy.linalg.inv(source_affine) @ target_affine``
        (the identity when the two affines are bit-identical), as a vector of
        its diagonal when it is diagonal, so that ``affine_transform`` takes its
        zoom/shift path exactly when nilearn's call does.
    offset : ndarray, shape (3,)
        The translation part of the same transform.
    """
    if np.all(target_affine == source_affine):
        transform = np.eye(4)  # nilearn: "small trick to be more numerically stable"
    else:
        transform = np.dot(linalg.inv(source_affine), target_affine)
    matrix = transform[:3, :3]
    offset = transform[:3, 3]
    if np.all(np.diag(np.diag(matrix)) == matrix):  # ndimage's zoom/shift path
        matrix = np.diag(matrix)
    return matrix, offset


def check_grid_arguments(target_shape, **affines):
    """The target shape as 3 ints and the affines as float64 (4, 4) arrays.

    Parameters
    ----------
    target_shape : tuple of int
        A longer tuple is cut to its first 3 entries.
    **affines : array-like
        Named affines (the name is used in the error).

    Returns
    -------
    (tuple of 3 int, list of ndarray)

    Raises
    ------
    ValueError
        Fewer than 3 positive sizes, or an affine that is not 4x4.
    """
    target_shape = tuple(int(s) for s in tuple(target_shape)[:3])
    if len(target_shape) != 3 or min(target_shape) < 1:
        raise ValueError(f"target_shape must hold 3 positive sizes, got {target_shape}")
    checked = []
    for name, affine in affines.items():
        affine = np.asarray(affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise ValueError(f"{name} must be a 4x4 matrix, got shape {affine.shape}")
        checked.append(affine)
    return target_shape, checked


def resample_maps(maps, maps_affine, target_shape, target_affine):
    """Resample 4D atlas maps onto a target grid as nilearn's maps masker does.

    Equivalent to ``clean_img(maps_img, detrend=False, standardize=None,
    ensure_finite=True)`` followed by ``resample_img(...,
    target_affine=target_affine, target_shape=target_shape,
    interpolation="linear")`` (``clip=True``, ``fill_value=0``,
    ``force_resample=True``) in nilearn 0.13.1.

    Parameters
    ----------
    maps : ndarray, shape (x, y, z, n_maps)
        The atlas maps (one volume per region).  Never modified.
    maps_affine : array-like, shape (4, 4)
        Voxel-to-world affine of ``maps``.
    target_shape : tuple of 3 int
        Spatial shape of the target grid (e.g. ``run.shape[:3]``; a longer
        tuple is cut to its first 3 entries).
    target_affine : array-like, shape (4, 4)
        Voxel-to-world affine of the target grid.

    Returns
    -------
    resampled : ndarray, shape target_shape + (n_maps,)
        ``maps`` itself (same object, no copy, non-finite values left as they
        are) when :func:`same_grid` holds -- the extraction step zeroes
        non-finite map values, as nilearn's does.  Otherwise a new
        Fortran-ordered array: each map with NaN/inf set to 0, linearly
        interpolated (``scipy.ndimage.affine_transform(order=1, cval=0)``,
        see the module docstring), then clipped to
        ``[min(maps, 0), max(maps, 0)]``.  Its dtype is the maps' floating
        dtype (float64 stays float64, float32 stays float32; integer maps
        become float as nilearn's ``clean_img`` makes them), byte order
        kept (as nilearn).

    Raises
    ------
    ValueError
        If ``maps`` is not 4D, or ``target_shape``/the affines are malformed.
    InputError
        If the target grid lies entirely on the negative side of the maps
        along some axis, so no part of the atlas can be seen (nilearn raises
        its ``BoundingBoxError``, also a ``ValueError``, in that case).

    Notes
    -----
    Memory: besides the output, one 3D map at a time: a copy when it holds
    non-finite values or must be converted to float.
    """
    maps = np.asanyarray(maps)
    if maps.ndim != 4:
        raise ValueError(f"maps must be a 4D array (x, y, z, n_maps), got shape {maps.shape}")
    target_shape, (maps_affine, target_affine) = check_grid_arguments(
        target_shape, maps_affine=maps_affine, target_affine=target_affine)

    if same_grid(maps.shape, maps_affine, target_shape, target_affine):
        return maps

    _check_overlap(maps.shape[:3], maps_affine, target_affine,
                   NO_OVERLAP + " (the target grid contains none of the maps)")
    matrix, offset = voxel_transform(maps_affine, target_affine)

    dtype = _float_dtype(maps.dtype)
    n_maps = maps.shape[3]
    out = np.zeros(target_shape + (n_maps,), order="F", dtype=dtype)
    vmin = vmax = 0  # 0 always takes part in nilearn's clipping range
    for k in range(n_maps):
        vol = maps[..., k]
        if vol.dtype != dtype:
            vol = vol.astype(dtype)
        bad = ~np.isfinite(vol)
        if bad.any():
            vol = np.array(vol, copy=True)
            vol[bad] = 0
        del bad
        vol = np.asarray(vol)
        if vol.size:
            vmin = min(vmin, vol.min())
            vmax = max(vmax, vol.max())
        ndimage.affine_transform(vol, matrix, offset=offset, output_shape=target_shape,
                                 output=out[..., k], cval=0, order=1)
    out.clip(vmin, vmax, out=out)
    return out


# --------------------------------------------------------------------------
# sparse resampling, the maps file streamed map by map
# --------------------------------------------------------------------------
def _sparse_value_dtype(dtype):
    """``dtype`` in native byte order, as scipy.sparse can hold it (float16,
    which it cannot, is widened to float32)."""
    dtype = np.dtype(dtype).newbyteorder("=")
    if dtype == np.float16:
        return np.dtype(np.float32)
    return dtype


def _map_columns(maps, chunk_volumes=None):
    """(shape, affine, dtype, iterator of 1D Fortran-ordered maps) of a 4D
    maps file (streamed) or of an in-memory (maps, affine) pair."""
    maps, maps_affine = maps
    if isinstance(maps, np.ndarray) or hasattr(maps, "__array__"):
        maps = np.asanyarray(maps)
        if maps.ndim != 4:
            raise ValueError(f"maps must be a 4D array (x, y, z, n_maps), got shape {maps.shape}")
        if maps_affine is None:
            raise ValueError("maps_affine is required with an in-memory maps array")

        def columns():
            for k in range(maps.shape[3]):
                yield np.asarray(maps[..., k]).ravel(order="F")

        return maps.shape, maps_affine, np.dtype(maps.dtype), columns()

    from .streaming import iter_map_chunks, open_maps

    img, dtype = open_maps(maps)
    if maps_affine is None:
        maps_affine = img.affine

    def columns():
        for chunk in iter_map_chunks(maps, chunk_volumes=chunk_volumes):
            yield from chunk
            del chunk

    return tuple(int(s) for s in img.shape), maps_affine, dtype, columns()


def _nilearn_coordinates(transform, lo, hi):
    """The input coordinates scipy computes for the output voxels of the box
    ``[lo, hi)`` (3 arrays of shape (nz, ny, nx): x varies fastest), with
    the operations, in the order, of ``affine_transform``: for a diagonal
    3x3 matrix (ndimage's zoom/shift path, ``NI_ZoomShift``) ``(o + offset /
    zoom) * zoom`` per axis, else (``NI_GeometricTransform``)
    ``((offset + o0 * m0) + o1 * m1) + o2 * m2``.  Fed to
    ``ndimage.map_coordinates`` (same interpolation code), they give the
    values of the full-grid call bit for bit."""
    matrix, offset = transform
    axes = [np.arange(lo[a], hi[a], dtype=np.float64) for a in range(3)]
    shape = tuple(int(h - l) for l, h in zip(lo, hi))[::-1]
    view = ((None, None, slice(None)), (None, slice(None), None), (slice(None), None, None))
    coords = np.empty((3,) + shape, dtype=np.float64)
    if matrix.ndim == 1:
        shift = offset / matrix  # as affine_transform passes it to zoom_shift
        for h in range(3):
            coords[h] = ((axes[h] + shift[h]) * matrix[h])[view[h]]
    else:
        for h in range(3):
            c = offset[h] + axes[0][view[0]] * matrix[h, 0]
            c = c + axes[1][view[1]] * matrix[h, 1]
            coords[h] = c + axes[2][view[2]] * matrix[h, 2]
    return coords


def _target_box(inverse, lo, hi, target_shape):
    """Bounding box ``[start, stop)`` of the target voxels whose input
    coordinates can fall within ``(lo - 1, hi + 1)`` (the voxels where linear
    interpolation of a map with support in ``[lo, hi]`` can be non-zero),
    with one voxel of margin against rounding; None when empty."""
    corners = np.array([[x, y, z, 1.0] for x in (lo[0] - 1, hi[0] + 1)
                        for y in (lo[1] - 1, hi[1] + 1) for z in (lo[2] - 1, hi[2] + 1)]).T
    mapped = inverse.dot(corners)[:3]
    start = np.maximum(np.floor(mapped.min(axis=1)) - 1, 0).astype(np.int64)
    stop = np.minimum(np.ceil(mapped.max(axis=1)) + 2, target_shape).astype(np.int64)
    if np.any(stop <= start):
        return None
    return start, stop


def resample_maps_sparse(maps, target_shape, target_affine, maps_affine=None,
                         chunk_volumes=None):
    """Resample 4D atlas maps onto a target grid as sparse matrices, reading
    the maps one volume at a time.

    The values are those of :func:`resample_maps` (nilearn's
    ``clean_img(ensure_finite=True)`` then ``resample_img(...,
    interpolation="linear")``) bit for bit, without ever holding the dense 4D
    maps or their dense resampled array: for each map, the bounding box of its
    non-zero support is mapped onto the target grid and only the target
    voxels of that box are interpolated, by
    ``scipy.ndimage.map_coordinates(order=1, cval=0)`` at the very input
    coordinates ``affine_transform`` computes for them (see
    :func:`_nilearn_coordinates`); nilearn's clipping to ``[min(maps, 0),
    max(maps, 0)]`` (over all maps) is applied to the non-zero values at the
    end.

    Parameters
    ----------
    maps : str or os.PathLike, or ndarray of shape (x, y, z, n_maps)
        A 4D NIfTI file (``.nii`` memory-mapped, ``.nii.gz`` decompressed as
        a stream; scaled like nibabel's ``dataobj``), or an in-memory array
        (then ``maps_affine`` is required).
    target_shape : tuple of 3 int
        The target grid (a longer tuple is cut to its first 3 entries).
    target_affine : array-like, shape (4, 4)
    maps_affine : array-like, shape (4, 4), optional
        The maps' affine; by default the file's (``img.affine``).
    chunk_volumes : int, optional
        Maps read at a time from a file (default: about 16 MiB of data).

    Returns
    -------
    resampled : scipy.sparse.csc_matrix, shape (prod(target_shape), n_maps)
        Column ``k`` holds map ``k`` on the target grid, rows are voxels in
        Fortran (NIfTI, x fastest) order; only non-zero values are stored
        (sorted indices).  ``resampled.toarray()`` equals
        ``resample_maps(maps, ...).reshape(-1, n_maps, order="F")`` -- with
        non-finite values as 0 when the grids are the same (no interpolation,
        no clipping: the maps' finite non-zero values).  Its dtype is
        :func:`resample_maps`' in native byte order (float16 widened to
        float32).
    weights : scipy.sparse.csc_matrix, shape (prod(maps.shape[:3]), n_maps)
        The maps on their own grid, from the same single pass: the finite
        non-zero values (same dtype as ``resampled``; Fortran order of the
        atlas grid).  The same object as ``resampled`` when the grids are
        the same.

    Raises
    ------
    ValueError
        Malformed shapes or affines, or an array without ``maps_affine``.
    InputError
        As :func:`resample_maps` (the target grid sees none of the maps), or
        when the maps file cannot be read (missing, not 4D, truncated).

    Notes
    -----
    Memory: one chunk of maps, the sparse outputs, and per map the
    coordinates of its target box (a few thousand voxels for DiFuMo-like
    components).  Bit equality with :func:`resample_maps` rests on scipy
    computing coordinates with plain (non-fused) double operations, as its
    builds do; the tests check it on oblique and diagonal transforms.
    """
    from scipy import sparse

    target_shape, _ = check_grid_arguments(target_shape)
    shape, maps_affine, src_dtype, columns = _map_columns((maps, maps_affine), chunk_volumes)
    _, (maps_affine, target_affine) = check_grid_arguments(
        target_shape, maps_affine=maps_affine, target_affine=target_affine)
    grid = shape[:3]
    n_maps = shape[3]
    n_atlas = int(np.prod(grid))
    n_target = int(np.prod(target_shape))

    same = same_grid(grid, maps_affine, target_shape, target_affine)
    if same:
        dtype = _sparse_value_dtype(src_dtype)
    else:
        _check_overlap(grid, maps_affine, target_affine,
                       NO_OVERLAP + " (the target grid contains none of the maps)")
        matrix, offset = voxel_transform(maps_affine, target_affine)
        transform = np.eye(4)
        transform[:3, :3] = np.diag(matrix) if matrix.ndim == 1 else matrix
        transform[:3, 3] = offset
        inverse = np.linalg.inv(transform)
        dtype = _sparse_value_dtype(_float_dtype(src_dtype))
        strides = np.array([1, target_shape[0], target_shape[0] * target_shape[1]],
                           dtype=np.int64)

    w_indices, w_values, w_counts = [], [], []
    r_indices, r_values, r_counts = [], [], []
    vmin = vmax = 0
    n_read = 0
    for column in columns:
        n_read += 1
        nz = np.flatnonzero(column != 0)  # NaN and inf included: dropped below
        values = column[nz]
        if values.dtype != dtype:
            values = values.astype(dtype)
        finite = np.isfinite(values) if values.dtype.kind in "fc" else None
        if finite is not None and not finite.all():
            column = np.array(column, dtype=dtype, copy=True)
            column[nz[~finite]] = 0
            nz, values = nz[finite], values[finite]
        w_indices.append(nz)
        w_values.append(values)
        w_counts.append(nz.size)
        if same or nz.size == 0:
            continue
        vmin = min(vmin, values.min())
        vmax = max(vmax, values.max())
        ijk = np.unravel_index(nz[[0, -1]], grid, order="F")  # z range from the ends
        x = nz % grid[0]
        y = (nz // grid[0]) % grid[1]
        lo = np.array([x.min(), y.min(), ijk[2][0]])
        hi = np.array([x.max(), y.max(), ijk[2][1]])
        box = _target_box(inverse, lo, hi, target_shape)
        if box is None:
            r_indices.append(np.zeros(0, np.int64))
            r_values.append(np.zeros(0, dtype))
            r_counts.append(0)
            continue
        start, stop = box
        volume = column.reshape(grid, order="F")
        if volume.dtype != dtype:
            volume = volume.astype(dtype)
        coords = _nilearn_coordinates((matrix, offset), start, stop)
        out = ndimage.map_coordinates(volume, coords, order=1, mode="constant", cval=0,
                                      prefilter=False, output=dtype).ravel()
        keep = np.flatnonzero(out)
        bx, by, _ = (stop - start)
        flat = (start @ strides + (keep % bx) + (keep // bx % by) * strides[1]
                + (keep // (bx * by)) * strides[2])
        r_indices.append(flat)
        r_values.append(out[keep])
        r_counts.append(keep.size)
    if n_read != n_maps:  # pragma: no cover - the readers check the length
        raise InputError(f"maps file holds {n_read} of {n_maps} maps")

    def assemble(indices, values, counts, n_rows):
        indptr = np.zeros(n_maps + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        index_dtype = np.int32 if max(n_rows, indptr[-1]) < 2**31 else np.int64
        return sparse.csc_matrix(
            (np.concatenate(values) if values else np.zeros(0, dtype),
             np.concatenate(indices).astype(index_dtype) if indices else
             np.zeros(0, index_dtype), indptr.astype(index_dtype)),
            shape=(n_rows, n_maps))

    weights = assemble(w_indices, w_values, w_counts, n_atlas)
    del w_indices, w_values
    if same:
        return weights, weights
    resampled = assemble(r_indices, r_values, r_counts, n_target)
    np.clip(resampled.data, vmin, vmax, out=resampled.data)
    return resampled, weights


def reorder_axes(data, affine):
    """``nilearn.image.reorder_img(img, resample=None)`` on an array: axes
    swapped to put the affine's largest entries on the diagonal, then flipped
    so that it is positive (the origin moved to the first voxel).  ``data``
    may have more than 3 axes (the others are kept).  Returns (data view, new
    affine).

    Raises
    ------
    ValueError
        If the affine has rotations (more than one non-zero entry in a column).
    """
    A, b = affine[:3, :3].copy(), affine[:3, 3].copy()
    if not np.all((np.abs(A) > 0.001).sum(axis=0) == 1):
        raise ValueError("Cannot reorder the axes: the image affine contains rotations")
    axis_numbers = np.argmax(np.abs(A), axis=0)
    while not np.all(np.sort(axis_numbers) == axis_numbers):
        first_inversion = np.argmax(np.diff(axis_numbers) < 0)
        axis1, axis2 = first_inversion + 1, first_inversion
        data = np.swapaxes(data, axis1, axis2)
        order = np.array((0, 1, 2, 3))
        order[axis1], order[axis2] = axis2, axis1
        affine = affine.T[order].T
        A, b = affine[:3, :3].copy(), affine[:3, 3].copy()
        axis_numbers = np.argmax(np.abs(A), axis=0)
    pixdim = np.diag(A).copy()
    flips = []
    for axis in range(3):
        if pixdim[axis] < 0:
            b[axis] = b[axis] + pixdim[axis] * (data.shape[axis] - 1)
            pixdim[axis] = -pixdim[axis]
            flips.append(slice(None, None, -1))
        else:
            flips.append(slice(None))
    new_affine = np.eye(4)
    new_affine[:3, :3] = np.diag(pixdim)
    new_affine[:3, 3] = b
    return data[tuple(flips)], new_affine
