"""Parity of cohort_connectome.resampling with nilearn 0.13.1's maps resampling.

The oracle is ``nilearn.image.resample_img(..., interpolation="linear")`` -- the
call ``NiftiMapsMasker(resampling_target="data")`` makes at fit time -- and,
where NaN or integer maps matter, the masker itself (``fit(run).maps_img_``).
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest

from cohort_connectome.errors import InputError
from cohort_connectome.resampling import resample_maps, same_grid
from conftest import ADHD_AFFINE, ADHD_SHAPE, REPO_ROOT, relative_error

#: Parity tolerance on max|ours - nilearn| / max|nilearn| (measured: 0).
RTOL = 1e-5




def _nilearn_resample(maps_img, target_shape, target_affine):
    import nibabel as nib
    from nilearn.image import resample_img

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = resample_img(maps_img, target_affine=target_affine,
                           target_shape=target_shape, interpolation="linear",
                           force_resample=True, copy_header=True)
    assert isinstance(out, nib.Nifti1Image)
    return np.asanyarray(out.dataobj)


def _rotation(ax, ay, az):
    cx, sx, cy, sy, cz, sz = (np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay),
                              np.cos(az), np.sin(az))
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


#: An oblique 3.5 mm grid, rotated and shifted relative to MSDL's 4 mm grid,
#: that still covers the brain.
OBLIQUE_SHAPE = (50, 60, 45)
OBLIQUE_AFFINE = np.eye(4)
OBLIQUE_AFFINE[:3, :3] = 3.5 * _rotation(0.05, -0.03, 0.1)
OBLIQUE_AFFINE[:3, 3] = [-78.3, -112.6, -58.1]


def _maps_array(msdl_maps_img):
    return np.asanyarray(msdl_maps_img.dataobj)


def test_msdl_to_adhd_grid_matches_resample_img(msdl_maps_img):
    """Mirrors ``nilearn.image.resample_img(msdl, target_affine=ADHD_AFFINE,
    target_shape=ADHD_SHAPE, interpolation="linear")`` (diagonal transform:
    x flip + 4 mm -> 3 mm zoom)."""
    maps = _maps_array(msdl_maps_img)
    assert maps.dtype == np.float64 and maps.shape == (40, 48, 35, 39)
    ref = _nilearn_resample(msdl_maps_img, ADHD_SHAPE, ADHD_AFFINE)
    ours = resample_maps(maps, msdl_maps_img.affine, ADHD_SHAPE, ADHD_AFFINE)
    assert ours.shape == ADHD_SHAPE + (39,)
    assert ours.dtype == ref.dtype == np.float64
    assert relative_error(ours, ref) <= RTOL
    # every map survives on the new grid
    assert np.all(np.abs(ours).reshape(-1, 39).max(axis=0) > 0)


def test_oblique_grid_matches_resample_img(msdl_maps_img):
    """Mirrors ``nilearn.image.resample_img(msdl, target_affine=OBLIQUE_AFFINE,
    target_shape=OBLIQUE_SHAPE, interpolation="linear")``: a rotated, shifted
    3.5 mm grid, i.e. scipy's general (non-diagonal) matrix path."""
    from scipy import linalg

    transform = linalg.inv(msdl_maps_img.affine) @ OBLIQUE_AFFINE
    assert not np.all(np.diag(np.diag(transform[:3, :3])) == transform[:3, :3])
    maps = _maps_array(msdl_maps_img)
    ref = _nilearn_resample(msdl_maps_img, OBLIQUE_SHAPE, OBLIQUE_AFFINE)
    ours = resample_maps(maps, msdl_maps_img.affine, OBLIQUE_SHAPE, OBLIQUE_AFFINE)
    assert ours.shape == OBLIQUE_SHAPE + (39,)
    assert ours.dtype == ref.dtype
    assert relative_error(ours, ref) <= RTOL


def test_same_affine_other_shape_matches_resample_img(msdl_maps_img):
    """Mirrors ``nilearn.image.resample_img(msdl, target_affine=msdl.affine,
    target_shape=(44, 40, 38), interpolation="linear")``: identical affines
    (nilearn's identity-transform shortcut), a padded/cropped grid."""
    maps = _maps_array(msdl_maps_img)
    shape = (44, 40, 38)
    ref = _nilearn_resample(msdl_maps_img, shape, msdl_maps_img.affine)
    ours = resample_maps(maps, msdl_maps_img.affine, shape, msdl_maps_img.affine)
    assert ours.shape == shape + (39,)
    assert relative_error(ours, ref) <= RTOL


def test_float32_maps_stay_float32(msdl_maps_img):
    """Mirrors ``nilearn.image.resample_img(float32 msdl, ...,
    interpolation="linear")``, which keeps float32 (ADHD and oblique grids)."""
    import nibabel as nib

    maps32 = _maps_array(msdl_maps_img).astype(np.float32)
    img32 = nib.Nifti1Image(maps32, msdl_maps_img.affine)
    for shape, affine in ((ADHD_SHAPE, ADHD_AFFINE), (OBLIQUE_SHAPE, OBLIQUE_AFFINE)):
        ref = _nilearn_resample(img32, shape, affine)
        ours = resample_maps(maps32, msdl_maps_img.affine, shape, affine)
        assert ref.dtype == np.float32
        assert ours.dtype == np.float32
        assert relative_error(ours, ref) <= RTOL


def test_signed_maps_and_clipping_match_resample_img():
    """Mirrors ``nilearn.image.resample_img(img, target_affine=oblique,
    target_shape=..., interpolation="linear")`` (clip=True) on random maps
    with negative and positive weights."""
    import nibabel as nib

    rng = np.random.default_rng(3)
    maps = rng.standard_normal((12, 14, 10, 3))
    affine = np.diag([2.0, 2.0, 2.5, 1.0])
    affine[:3, 3] = [-10, -12, -11]
    target = np.eye(4)
    target[:3, :3] = 1.3 * _rotation(0.2, 0.1, -0.3)
    target[:3, 3] = [-12, -10, -9]
    ref = _nilearn_resample(nib.Nifti1Image(maps, affine), (18, 20, 16), target)
    ours = resample_maps(maps, affine, (18, 20, 16), target)
    assert relative_error(ours, ref) <= RTOL
    assert ours.min() < 0 < ours.max()
    assert ours.min() >= min(maps.min(), 0) and ours.max() <= max(maps.max(), 0)


def _masker_maps(maps_img, shape, affine):
    """What ``NiftiMapsMasker(maps_img).fit(run)`` holds as ``maps_img_`` for a
    run on (shape, affine): cleaned (NaN -> 0, float) then resampled."""
    import nibabel as nib
    from nilearn.maskers import NiftiMapsMasker

    run = nib.Nifti1Image(np.zeros(tuple(shape) + (2,), dtype=np.float32), affine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        masker = NiftiMapsMasker(maps_img=maps_img).fit(run)
    return np.asanyarray(masker.maps_img_.dataobj)


def test_non_finite_maps_are_zeroed_before_resampling(msdl_maps_img):
    """Mirrors ``NiftiMapsMasker(maps_img=msdl_with_nan).fit(run).maps_img_``
    (``clean_img(ensure_finite=True)`` then ``resample_img(linear)``), not
    ``resample_img`` alone, which would extrapolate around the NaNs."""
    import nibabel as nib

    maps = _maps_array(msdl_maps_img).copy()
    maps[20, 20:26, 15, 0] = np.nan
    maps[10:13, 30, 20, 5] = np.inf
    maps[25, 10, 10:12, 7] = -np.inf
    before = maps.copy()
    ref = _masker_maps(nib.Nifti1Image(maps.copy(), msdl_maps_img.affine), ADHD_SHAPE,
                       ADHD_AFFINE)
    ours = resample_maps(maps, msdl_maps_img.affine, ADHD_SHAPE, ADHD_AFFINE)
    assert np.all(np.isfinite(ours))
    assert ours.dtype == ref.dtype
    assert relative_error(ours, ref) <= RTOL
    # equal to resampling the maps with the non-finite values set to 0
    zeroed = np.where(np.isfinite(maps), maps, 0.0)
    assert relative_error(ours, resample_maps(zeroed, msdl_maps_img.affine, ADHD_SHAPE,
                                        ADHD_AFFINE)) == 0
    # the caller's array is untouched
    np.testing.assert_array_equal(maps, before)


def test_integer_maps_become_float_like_the_masker():
    """Mirrors ``NiftiMapsMasker(maps_img=int16_maps).fit(run).maps_img_``:
    ``clean_img`` turns int16 maps into float32 before resampling."""
    import nibabel as nib

    rng = np.random.default_rng(5)
    maps = rng.integers(0, 100, size=(10, 11, 9, 2)).astype(np.int16)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    target = np.diag([2.0, 2.0, 2.0, 1.0])
    ref = _masker_maps(nib.Nifti1Image(maps, affine), (14, 16, 12), target)
    ours = resample_maps(maps, affine, (14, 16, 12), target)
    assert ref.dtype == np.float32
    assert ours.dtype == ref.dtype
    assert relative_error(ours, ref) <= RTOL


def test_same_grid_returns_the_very_same_object(msdl_maps_img):
    maps = _maps_array(msdl_maps_img)
    affine = msdl_maps_img.affine
    assert resample_maps(maps, affine, maps.shape[:3], affine) is maps
    # within np.allclose, and a 4D target shape (only [:3] counts)
    nudged = affine + 1e-9
    assert resample_maps(maps, affine, maps.shape[:3] + (120,), nudged) is maps
    # NaNs are left for the extraction step on this path
    with_nan = maps.copy()
    with_nan[0, 0, 0, 0] = np.nan
    out = resample_maps(with_nan, affine, maps.shape[:3], affine)
    assert out is with_nan and np.isnan(out[0, 0, 0, 0])


def _shifted(affine, i, j, delta):
    out = np.array(affine, dtype=float)
    out[i, j] += delta
    return out


SAME_GRID_CASES = [
    # (shape_a, affine_a, shape_b, affine_b, expected)
    ((61, 73, 61), ADHD_AFFINE, (61, 73, 61), ADHD_AFFINE, True),
    ((61, 73, 61, 120), ADHD_AFFINE, (61, 73, 61, 39), ADHD_AFFINE, True),
    ((61, 73, 61), ADHD_AFFINE, (61, 73, 60), ADHD_AFFINE, False),
    ((61, 73, 61), ADHD_AFFINE, (73, 61, 61), ADHD_AFFINE, False),
    ((61, 73, 61), ADHD_AFFINE, (61, 73, 61), _shifted(ADHD_AFFINE, 0, 3, 1e-6), True),
    ((61, 73, 61), ADHD_AFFINE, (61, 73, 61), _shifted(ADHD_AFFINE, 0, 3, 0.01), False),
    ((61, 73, 61), ADHD_AFFINE, (61, 73, 61), _shifted(ADHD_AFFINE, 0, 1, 1e-6), False),
    ((61, 73, 61), ADHD_AFFINE, (61, 73, 61), _shifted(ADHD_AFFINE, 0, 1, 1e-9), True),
    ((61, 73, 61), ADHD_AFFINE, (61, 73, 61), np.diag([3.0, 3.0, 3.0, 1.0]), False),
]


@pytest.mark.parametrize("shape_a, affine_a, shape_b, affine_b, expected", SAME_GRID_CASES)
def test_same_grid_truth_table(shape_a, affine_a, shape_b, affine_b, expected):
    """Mirrors ``nilearn.image.check_same_fov(img_a, img_b)``."""
    import nibabel as nib
    from nilearn.image.image import check_same_fov

    img_a = nib.Nifti1Image(np.zeros(shape_a, dtype=np.uint8), affine_a)
    img_b = nib.Nifti1Image(np.zeros(shape_b, dtype=np.uint8), affine_b)
    assert check_same_fov(img_a, img_b) is expected
    assert same_grid(shape_a, affine_a, shape_b, affine_b) is expected
    assert same_grid(shape_b, affine_b, shape_a, affine_a) is expected


def test_target_grid_outside_the_maps_raises(msdl_maps_img):
    """Mirrors ``nilearn.image.resample_img`` raising ``BoundingBoxError`` when
    the target field of view contains none of the maps."""
    from nilearn.image.resampling import BoundingBoxError

    far = ADHD_AFFINE.copy()
    far[:3, 3] = [1000.0, 1000.0, 1000.0]  # x flipped: only y and z are past the maps
    with pytest.raises(BoundingBoxError):
        _nilearn_resample(msdl_maps_img, ADHD_SHAPE, far)
    maps = _maps_array(msdl_maps_img)
    with pytest.raises(InputError, match="do not overlap"):
        resample_maps(maps, msdl_maps_img.affine, ADHD_SHAPE, far)


def test_bad_arguments_raise_value_error(msdl_maps_img):
    maps = _maps_array(msdl_maps_img)
    with pytest.raises(ValueError, match="4D"):
        resample_maps(maps[..., 0], msdl_maps_img.affine, ADHD_SHAPE, ADHD_AFFINE)
    with pytest.raises(ValueError, match="4x4"):
        resample_maps(maps, msdl_maps_img.affine[:3], ADHD_SHAPE, ADHD_AFFINE)
    with pytest.raises(ValueError, match="target_shape"):
        resample_maps(maps, msdl_maps_img.affine, (61, 73), ADHD_AFFINE)


def test_scipy_is_imported_only_for_oblique_grids():
    """Start-up cost: importing the module, the same-grid path and the
    zoom/shift (diagonal transform) path -- the usual case -- do not import
    scipy; an oblique (non-diagonal) transform imports scipy.ndimage, and a
    maps affine with rotations scipy.linalg (nilearn's inverse)."""
    code = (
        "import sys, numpy as np\n"
        "from cohort_connectome.resampling import resample_maps\n"
        "scipy = lambda: sorted(m for m in ('scipy', 'scipy.linalg', 'scipy.ndimage')\n"
        "                       if m in sys.modules)\n"
        "assert scipy() == [], 'scipy imported at module import'\n"
        "m = np.ones((4, 4, 4, 2)); a = np.eye(4)\n"
        "assert resample_maps(m, a, (4, 4, 4), a) is m\n"
        "assert scipy() == [], 'scipy imported on same grid'\n"
        "resample_maps(m, a, (5, 5, 5), np.diag([-0.5, 0.5, 0.7, 1.0]))\n"
        "assert scipy() == [], 'scipy imported for a zoom/shift'\n"
        "oblique = np.eye(4); oblique[0, 1] = 0.1\n"
        "resample_maps(m, a, (5, 5, 5), oblique)\n"
        "assert scipy() == ['scipy', 'scipy.ndimage'], scipy()\n"
        "resample_maps(m, oblique, (5, 5, 5), a)\n"
        "assert scipy() == ['scipy', 'scipy.linalg', 'scipy.ndimage'], scipy()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_grid_id_names_a_grid_stably(tmp_path):
    """One name per grid: equal for float-noise affines (as same_grid), for
    -0.0, and for a 4D run and its 3D volume; different when shape or affine
    differ. read_grid reads it from the header, None when unreadable."""
    import nibabel as nib

    from cohort_connectome.resampling import grid_id, read_grid

    base = grid_id(ADHD_SHAPE, ADHD_AFFINE)
    assert len(base) == 12 and int(base, 16) >= 0
    noisy = ADHD_AFFINE + 1e-9
    assert same_grid(ADHD_SHAPE, ADHD_AFFINE, ADHD_SHAPE, noisy)
    assert grid_id(ADHD_SHAPE + (176,), noisy) == base
    negative_zero = ADHD_AFFINE.copy()
    negative_zero[0, 1] = -0.0
    assert grid_id(ADHD_SHAPE, negative_zero) == base
    assert grid_id((61, 73, 60), ADHD_AFFINE) != base
    shifted = ADHD_AFFINE.copy()
    shifted[0, 3] += 3
    assert grid_id(ADHD_SHAPE, shifted) != base

    path = tmp_path / "run.nii.gz"
    nib.Nifti1Image(np.zeros(ADHD_SHAPE + (3,), np.float32), ADHD_AFFINE).to_filename(path)
    shape, affine = read_grid(path)
    assert shape == ADHD_SHAPE and grid_id(shape, affine) == base
    assert read_grid(tmp_path / "missing.nii.gz") is None
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    assert read_grid(tmp_path / "empty.nii.gz") is None


# --------------------------------------------------------------------------
# zoom/shift (diagonal transform) path: numpy against scipy.ndimage
# --------------------------------------------------------------------------

#: Max |ours - ndimage| / max|maps| on the zoom/shift path.  Both interpolate
#: in float64 (ndimage's accumulator) but sum in another order (ours: three 1D
#: interpolations; ndimage: 8 corner products), so they may differ by
#: rounding: measured <= 4e-16 in float64 on random zooms/shifts (0 on the
#: MSDL -> ADHD case), and no difference at all after the cast to float32.
#: Bounds: 1e-12 (float64); 1e-6 (float32: a float32 ulp is 6e-8 relative, so
#: a few ulps of rounding pass and any interpolation error fails).
ZOOM_SHIFT_TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-6}


def _ndimage_zoom_shift(vol, zooms, offset, shape):
    from scipy.ndimage import affine_transform

    return affine_transform(np.asarray(vol, dtype=np.float64), np.asarray(zooms, float),
                            offset=offset, output_shape=shape, order=1, mode="constant",
                            cval=0)


def _ndimage_resample_maps(maps, maps_affine, shape, target_affine):
    """The ndimage implementation `resample_maps` had (every transform through
    ``scipy.ndimage.affine_transform``), the oracle of the numpy path."""
    from scipy import linalg
    from scipy.ndimage import affine_transform

    from cohort_connectome.resampling import _float_dtype

    transform = (np.eye(4) if np.all(target_affine == maps_affine)
                 else np.dot(linalg.inv(maps_affine), target_affine))
    matrix, offset = transform[:3, :3], transform[:3, 3]
    if np.all(np.diag(np.diag(matrix)) == matrix):
        matrix = np.diag(matrix)
    dtype = _float_dtype(maps.dtype)
    out_dtype = dtype.newbyteorder("=") if matrix.ndim == 1 else dtype
    out = np.zeros(tuple(shape) + (maps.shape[3],), order="F", dtype=out_dtype)
    vmin = vmax = 0
    for k in range(maps.shape[3]):
        vol = np.asarray(maps[..., k], dtype=dtype)
        vol = np.where(np.isfinite(vol), vol, 0).astype(dtype)
        vmin, vmax = min(vmin, vol.min()), max(vmax, vol.max())
        affine_transform(vol, matrix, offset=offset, output_shape=tuple(shape),
                         output=out[..., k], cval=0, order=1)
    out.clip(vmin, vmax, out=out)
    return out


def _edge_cases(n_in):
    """(zoom, offset, n_out) along one axis of n_in voxels: samples exactly on,
    just inside and just outside (1e-12, 1e-9) each edge, up/down-sampling,
    flips."""
    last = n_in - 1
    cases = [(1.0, 0.0, n_in), (1.0, -1e-12, n_in), (1.0, 1e-12, n_in),
             (1.0, -1e-9, n_in + 2), (1.0, 1e-9, n_in), (1.0, -1.0, n_in + 2),
             (0.5, 0.0, 2 * n_in), (0.5, 1e-12, 2 * n_in), (0.5, -1e-12, 2 * n_in),
             (2.0, 0.0, n_in // 2 + 1), (2.0, 1.0, n_in // 2), (0.75, -0.375, n_in + 3),
             (1.0 / 3.0, 0.1, 3 * n_in), (1.6, -2.3, n_in),
             (-1.0, last, n_in), (-1.0, last + 1e-12, n_in), (-1.0, last - 1e-12, n_in + 1),
             (-0.75, last + 0.5, n_in + 2), (-2.0, last, n_in // 2 + 1)]
    return cases


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_zoom_shift_edges_match_ndimage(axis, dtype):
    """Per axis, the samples ndimage's 'constant' mode keeps (inside
    [0, n - 1], both ends included; any coordinate beyond, even by 1e-12, is 0)
    and their values, for exact, near and outside edge positions and flips."""
    from cohort_connectome.resampling import _zoom_shift_axes, _zoom_shift_linear

    rng = np.random.default_rng(axis)
    in_shape = (7, 9, 6)
    vol = (rng.random(in_shape) + 0.5).astype(dtype)  # > 0: zero means "not sampled"
    for zoom, offset, n_out in _edge_cases(in_shape[axis]):
        zooms = [1.0, 1.0, 1.0]
        offsets = [0.0, 0.0, 0.0]
        out_shape = list(in_shape)
        zooms[axis], offsets[axis], out_shape[axis] = zoom, offset, n_out
        ref = _ndimage_zoom_shift(vol, zooms, offsets, out_shape).astype(dtype)
        ours = np.zeros(out_shape, dtype=dtype, order="F")
        axes = _zoom_shift_axes(in_shape, out_shape, zooms, offsets)
        if axes is None:
            assert not ref.any()
            continue
        _zoom_shift_linear(np.asfortranarray(vol), axes, ours)
        case = (zoom, offset, n_out)
        np.testing.assert_array_equal(ours != 0, ref != 0, err_msg=str(case))
        assert np.abs(ours - ref).max() <= ZOOM_SHIFT_TOL[np.dtype(dtype)], case


def _diagonal_affine(zooms, origin):
    affine = np.diag(list(zooms) + [1.0])
    affine[:3, 3] = origin
    return affine


@pytest.mark.parametrize("dtype", ["<f8", "<f4", ">f4", "<i2"])
def test_diagonal_transforms_match_ndimage(dtype):
    """``resample_maps`` on random signed maps, for up- and down-sampling,
    flips and shifts (random and the 3 mm ADHD grid), against the ndimage
    implementation: same dtype, zeros at the same voxels, values within
    ``ZOOM_SHIFT_TOL`` of max|maps|, then clipped the same."""
    rng = np.random.default_rng(11)
    maps = rng.standard_normal((12, 14, 10, 3))
    maps = (maps * 100).astype(dtype) if dtype == "<i2" else maps.astype(dtype)
    maps_affine = _diagonal_affine([4.0, 4.0, 4.0], [-22.0, -26.0, -18.0])
    targets = [((17, 19, 14), _diagonal_affine([3.0, 3.0, 3.0], [-24.0, -27.0, -19.0])),
               ((17, 19, 14), _diagonal_affine([-3.0, 3.0, 3.0], [24.0, -27.0, -19.0])),
               ((6, 8, 5), _diagonal_affine([8.0, 7.5, 9.0], [-22.0, -26.0, -18.0])),
               ((30, 31, 29), _diagonal_affine([1.7, -2.1, 1.3], [-30.0, 30.0, -20.0])),
               ((12, 14, 10), _diagonal_affine([4.0, 4.0, 4.0], [-22.0 + 1e-10, -30.0, -14.0])),
               ((10, 10, 10), _diagonal_affine([-4.0, -4.0, 4.0], [22.0, 26.0, -18.0]))]
    for shape, target in targets:
        ref = _ndimage_resample_maps(maps, maps_affine, shape, target)
        ours = resample_maps(maps, maps_affine, shape, target)
        assert ours.dtype == ref.dtype and ours.shape == ref.shape
        assert ours.flags.f_contiguous
        np.testing.assert_array_equal(ours == 0, ref == 0)
        scale = float(np.abs(maps.astype(np.float64)).max())
        assert np.abs(ours.astype(np.float64) - ref).max() <= ZOOM_SHIFT_TOL[ours.dtype] * scale


def test_msdl_zoom_shift_matches_ndimage(msdl_maps_img):
    """The real case (MSDL 4 mm -> ADHD 3 mm with an x flip), float64 and
    float32, and with non-finite map values, against the ndimage
    implementation."""
    maps = _maps_array(msdl_maps_img)
    with_nan = maps.copy()
    with_nan[20, 20:26, 15, 0] = np.nan
    with_nan[10:13, 30, 20, 5] = -np.inf
    for case in (maps, maps.astype(np.float32), with_nan):
        ref = _ndimage_resample_maps(case, msdl_maps_img.affine, ADHD_SHAPE, ADHD_AFFINE)
        ours = resample_maps(case, msdl_maps_img.affine, ADHD_SHAPE, ADHD_AFFINE)
        assert ours.dtype == ref.dtype
        scale = float(np.nanmax(np.abs(np.where(np.isfinite(case), case, 0))))
        assert np.abs(ours.astype(np.float64) - ref).max() <= ZOOM_SHIFT_TOL[ours.dtype] * scale


def test_numpy_inverse_of_diagonal_affines_is_scipys():
    """The zoom/shift path inverts a diagonal maps affine with numpy instead
    of nilearn's ``scipy.linalg.inv``: the same bits, for atlas-like voxel
    sizes (powers of two or not, flips) and origins."""
    from scipy import linalg

    from cohort_connectome.resampling import _inv

    rng = np.random.default_rng(0)
    sizes = [0.5, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 6.0, 0.9375, 1.796875]
    for _ in range(2000):
        zooms = rng.choice([-1, 1], 3) * np.where(rng.random(3) < 0.8,
                                                  rng.choice(sizes, 3), rng.uniform(0.3, 7, 3))
        origin = np.round(rng.uniform(-200, 200, 3), int(rng.integers(0, 6)))
        affine = _diagonal_affine(zooms, origin)
        assert np.array_equal(_inv(affine), linalg.inv(affine)), affine
    oblique = _diagonal_affine([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    oblique[0, 1] = 0.3
    assert np.array_equal(_inv(oblique), linalg.inv(oblique))  # scipy's own


def test_zoom_shift_zeros_are_positive_as_ndimage():
    """ndimage's accumulator starts at +0.0, so maps holding -0.0 (and
    negative values) never give -0.0: the numpy path writes the same zeros
    (so the resampled NIfTI has the same bytes where the maps are zero)."""
    rng = np.random.default_rng(2)
    maps = -rng.random((9, 8, 7, 2))
    maps[rng.random(maps.shape) < 0.5] = -0.0
    maps[2:5, 2:5, 2:5, 0] = -0.0
    affine = _diagonal_affine([2.0, 2.0, 2.0], [0.0, 0.0, 0.0])
    target = _diagonal_affine([-1.5, 1.0, 2.0], [16.0, -1.0, 0.5])
    ref = _ndimage_resample_maps(maps, affine, (12, 17, 8), target)
    ours = resample_maps(maps, affine, (12, 17, 8), target)
    assert (ref == 0).any() and not np.signbit(ref[ref == 0]).any()
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(ref))
    assert np.abs(ours - ref).max() <= ZOOM_SHIFT_TOL[ours.dtype] * np.abs(maps).max()
