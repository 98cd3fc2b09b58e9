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
"""

import numpy as np
from scipy import linalg, ndimage

from .errors import InputError

__all__ = ["same_grid", "grid_id", "read_grid", "voxel_transform", "resample_maps"]

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
    target_shape = tuple(int(s) for s in tuple(target_shape)[:3])
    if len(target_shape) != 3 or min(target_shape) < 1:
        raise ValueError(f"target_shape must hold 3 positive sizes, got {target_shape}")
    maps_affine = np.asarray(maps_affine, dtype=np.float64)
    target_affine = np.asarray(target_affine, dtype=np.float64)
    for name, aff in (("maps_affine", maps_affine), ("target_affine", target_affine)):
        if aff.shape != (4, 4):
            raise ValueError(f"{name} must be a 4x4 matrix, got shape {aff.shape}")

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
