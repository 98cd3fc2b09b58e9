"""Atlas maps onto a run's voxel grid, as ``NiftiMapsMasker(resampling_target="data")``.

nilearn 0.13.1's masker, at fit time, (1) replaces NaN/inf in the maps by 0
(``clean_img(maps, ensure_finite=True)``), then (2) when the maps and the run
are not on the same grid (``check_same_fov``), calls
``resample_img(maps, target_affine=run.affine, target_shape=run.shape[:3],
interpolation="linear")``.  This module reproduces both steps on arrays:

* the voxel-to-voxel transform is built as nilearn builds it
  (``scipy.linalg.inv(maps_affine) @ target_affine``, the identity when the
  two affines are bit-identical); a maps affine without rotation (diagonal
  3x3 part: the usual atlas) is inverted by numpy, which gives the same bits
  (tested);
* when the transform's matrix is diagonal -- grids that differ only by voxel
  size, origin and axis flips, the usual case (e.g. MSDL onto the ADHD grid)
  -- nilearn passes scipy a zoom vector and
  ``scipy.ndimage.affine_transform(order=1)`` takes its zoom/shift path.  That
  interpolation is computed here with numpy, separably (three 1D linear
  interpolations), with ndimage's sample positions
  (``(k + offset / zoom) * zoom``), weights and ``mode="constant"`` edges (a
  sample outside ``[0, n - 1]``, even by 1e-12, is 0; ``n - 1`` itself is
  interpolated): the same numbers to rounding (float64: <= 4e-16 relative on
  random zooms, bit-identical on MSDL -> ADHD; float32: identical in every
  case tested), several times faster, and without importing scipy.ndimage;
* any other transform (oblique grids) goes to
  ``scipy.ndimage.affine_transform`` with the full matrix, the call nilearn
  makes, so the same code path and the same numbers;
* the result is clipped to ``[min(maps, 0), max(maps, 0)]`` (nilearn's
  ``clip=True``) and keeps the maps' floating dtype.

scipy is imported only for oblique transforms (``scipy.ndimage``) and maps
affines with rotations (``scipy.linalg``), never on the same-grid and
zoom/shift paths.
"""

import numpy as np

from .errors import InputError

__all__ = ["same_grid", "grid_id", "read_grid", "resample_maps"]

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
        or its numpy equivalent for a diagonal transform, see the module
        docstring), then clipped to ``[min(maps, 0), max(maps, 0)]``.  Its
        dtype is the maps' floating dtype (float64 stays float64, float32 stays float32;
        integer maps become float as nilearn's ``clean_img`` makes them), in
        native byte order when the transform is diagonal (as nilearn).

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
    non-finite values or must be converted to float, and, on the zoom/shift
    path, a few float64 intermediates of at most one output volume each
    (2 MB for a 61x73x61 grid).
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

    # nilearn's BoundingBoxError check: the maps' corners in target voxels.
    to_target = np.linalg.inv(target_affine).dot(maps_affine)
    (_, xmax), (_, ymax), (_, zmax) = _bounds(maps.shape[:3], to_target)
    if xmax < 0 or ymax < 0 or zmax < 0:
        raise InputError(NO_OVERLAP + " (the target grid contains none of the maps)")

    # Voxel-to-voxel transform, built as nilearn builds it
    # (``scipy.linalg.inv(maps_affine) @ target_affine``).
    if np.all(target_affine == maps_affine):
        transform = np.eye(4)
    else:
        transform = np.dot(_inv(maps_affine), target_affine)
    matrix = transform[:3, :3]
    offset = transform[:3, 3]
    # A diagonal matrix is nilearn's zoom/shift case (scipy gets a vector),
    # computed with numpy below.
    if np.all(np.diag(np.diag(matrix)) == matrix):
        matrix = np.diag(matrix)

    dtype = _float_dtype(maps.dtype)
    out_dtype = dtype
    if matrix.ndim == 1 and not out_dtype.isnative:
        out_dtype = out_dtype.newbyteorder("=")

    n_maps = maps.shape[3]
    out = np.zeros(target_shape + (n_maps,), order="F", dtype=out_dtype)
    axes = None
    if matrix.ndim == 1:
        axes = _zoom_shift_axes(maps.shape[:3], target_shape, matrix, offset)
        if axes is None:  # no output voxel samples the maps: all zeros, as ndimage
            return out
    else:
        from scipy.ndimage import affine_transform
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
        if axes is not None:
            _zoom_shift_linear(vol, axes, out[..., k])
        else:
            affine_transform(
                vol,
                matrix,
                offset=offset,
                output_shape=target_shape,
                output=out[..., k],
                cval=0,
                order=1,
            )
    out.clip(vmin, vmax, out=out)
    return out


def _inv(affine):
    """``scipy.linalg.inv(affine)`` (what nilearn inverts the maps' affine with).

    For an affine whose 3x3 part is diagonal (no rotation or shear: the usual
    atlas) ``numpy.linalg.inv`` gives the same bits (both factor it without
    row exchanges; the tests check 2000 atlas-like affines), without
    importing ``scipy.linalg`` (~0.3 s).  Other affines go to scipy.
    """
    if (np.all(np.diag(np.diag(affine[:3, :3])) == affine[:3, :3])
            and np.all(affine[3] == (0, 0, 0, 1))):
        return np.linalg.inv(affine)
    from scipy import linalg

    return linalg.inv(affine)


def _zoom_shift_axes(in_shape, out_shape, zooms, offset):
    """Sampling positions and weights, per axis, of ``affine_transform(...,
    matrix=zooms, offset=offset, order=1, mode="constant")`` (scipy's
    ``zoom_shift`` code path).

    As ``scipy.ndimage`` computes them: output index ``k`` samples the input at
    ``c = (k + offset / zoom) * zoom``; a sample outside ``[0, n - 1]`` (even
    by 1e-12) is ``cval`` (0), one inside -- ``n - 1`` included -- is
    ``w0 * v[i] + w1 * v[i + 1]`` with ``i = floor(c)``,
    ``w0 = 1 - (c - i)`` and ``w1 = 1 - w0`` (at ``c = n - 1``, ``w1 = 0`` and
    the upper neighbour is never read).

    Returns
    -------
    list of 3 tuples ``(lo, hi, i0, i1, w0, w1)``, or None
        Output indices ``lo:hi`` along the axis are inside (they are
        contiguous: ``c`` is monotonic in ``k``), with their neighbour indices
        ``i0``, ``i1`` and weights; None when an axis has no output index
        inside (the output is all ``cval``).
    """
    zooms = np.asarray(zooms, dtype=np.float64)
    shifts = np.asarray(offset, dtype=np.float64) / zooms
    axes = []
    for n_in, n_out, zoom, shift in zip(in_shape, out_shape, zooms, shifts):
        coords = (np.arange(n_out, dtype=np.float64) + shift) * zoom
        inside = np.flatnonzero((coords >= 0) & (coords <= n_in - 1))
        if inside.size == 0:
            return None
        lo, hi = int(inside[0]), int(inside[-1]) + 1
        coords = coords[lo:hi]
        floor = np.floor(coords)
        i0 = floor.astype(np.intp)
        w0 = 1.0 - (coords - floor)
        axes.append((lo, hi, i0, np.minimum(i0 + 1, n_in - 1), w0, 1.0 - w0))
    return axes


def _zoom_shift_linear(vol, axes, out):
    """Linear interpolation of a 3D volume on a zoomed/shifted grid, separably.

    ``out`` (3D, zeros outside the sampled box) receives what
    ``scipy.ndimage.affine_transform(vol, zooms, offset, order=1, cval=0)``
    gives, to rounding: three 1D interpolations (along x, then y, then z)
    with the neighbours and weights of :func:`_zoom_shift_axes`, in float64
    (ndimage's accumulator), cast once to ``out``'s dtype.  ndimage sums the
    8 corner products ``v * wx * wy * wz`` instead, so results may differ in
    the last bits (float64: <= 4e-16 relative measured; float32: identical in
    every case tested).  ``vol`` is finite (`resample_maps` zeroes NaN/inf
    first, as nilearn's ``clean_img``).
    """
    (xlo, xhi, xi0, xi1, xw0, xw1), (ylo, yhi, yi0, yi1, yw0, yw1), \
        (zlo, zhi, zi0, zi1, zw0, zw1) = axes
    # Transposed views: NIfTI data are Fortran ordered, so (z, y, x) is C order
    # and x, interpolated first on the smallest array, is the contiguous axis.
    v = np.asarray(vol, dtype=np.float64).T
    a = v[:, :, xi0] * xw0
    a += v[:, :, xi1] * xw1
    del v
    b = a[:, yi0, :] * yw0[:, None]
    b += a[:, yi1, :] * yw1[:, None]
    del a
    c = b[zi0] * zw0[:, None, None]
    c += b[zi1] * zw1[:, None, None]
    del b
    # + 0.0 as ndimage's accumulator starts at 0.0: a sum of -0.0 terms (maps
    # holding -0.0) is +0.0 there, so the output has the same zeros, bit for bit.
    np.add(c, 0.0, out=out.T[zlo:zhi, ylo:yhi, xlo:xhi])
