"""Parity of cohort_connectome.resampling with nilearn 0.13.1's maps resampling.

The oracle is ``nilearn.image.resample_img(..., interpolation="linear")`` -- the
call ``NiftiMapsMasker(resampling_target="data")`` makes at fit time -- and,
where NaN or integer maps matter, the masker itself (``fit(run).maps_img_``).
"""

import warnings

import numpy as np
import pytest

from cohort_connectome.errors import InputError
from cohort_connectome.resampling import resample_maps, same_grid
from conftest import ADHD_AFFINE, ADHD_SHAPE, relative_error

#: Parity tolerance on max|ours - nilearn| / max|nilearn|: none, the scipy
#: calls are nilearn's (was 1e-5 when the zoom/shift path was computed with numpy).
RTOL = 0




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
# diagonal transforms (ndimage's zoom/shift path): dtypes, flips, edges
# --------------------------------------------------------------------------


def _diagonal_affine(zooms, origin):
    affine = np.diag(list(zooms) + [1.0])
    affine[:3, 3] = origin
    return affine


@pytest.mark.parametrize("dtype", ["<f8", "<f4", ">f4", "<i2"])
def test_diagonal_transforms_match_nilearn(dtype):
    """Mirrors ``NiftiMapsMasker(maps_img).fit(run).maps_img_`` on random
    signed maps for up- and down-sampling, flips, shifts and a grid offset by
    1e-10 mm (samples on the maps' edge): same dtype (big-endian kept, int16
    made float32 by ``clean_img``), values and zeros."""
    import nibabel as nib

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
        ref = _masker_maps(nib.Nifti1Image(maps, maps_affine), shape, target)
        ours = resample_maps(maps, maps_affine, shape, target)
        assert ours.dtype == ref.dtype and ours.shape == ref.shape
        assert ours.flags.f_contiguous
        np.testing.assert_array_equal(ours == 0, ref == 0)
        assert relative_error(ours, ref) <= RTOL


# --------------------------------------------------------------------------
# resample_maps_sparse: the same values bit for bit, the maps file streamed
# --------------------------------------------------------------------------
def _sparse_as_dense(resampled, shape):
    return resampled.toarray().reshape(tuple(shape) + (resampled.shape[1],), order="F")


def _check_sparse(maps, maps_affine, shape, affine, **kwargs):
    """resample_maps_sparse == resample_maps, bit for bit (values, zeros,
    dtype in native order); the weights are the maps' finite non-zeros."""
    from cohort_connectome.resampling import resample_maps_sparse

    ref = resample_maps(maps, maps_affine, shape, affine)
    resampled, weights = resample_maps_sparse(maps, shape, affine, maps_affine=maps_affine,
                                              **kwargs)
    assert resampled.format == "csc" and resampled.has_sorted_indices
    assert resampled.dtype == ref.dtype.newbyteorder("=")
    assert resampled.shape == (int(np.prod(shape[:3])), maps.shape[3])
    assert np.all(resampled.data != 0)
    dense = _sparse_as_dense(resampled, shape[:3])
    np.testing.assert_array_equal(np.nan_to_num(dense, posinf=0, neginf=0),
                                  np.nan_to_num(ref, nan=0, posinf=0, neginf=0))
    assert np.array_equal(dense, np.where(np.isfinite(ref), ref, 0))
    flat = np.asarray(maps).reshape(-1, maps.shape[3], order="F")
    expected = np.where(np.isfinite(flat), flat, 0) if flat.dtype.kind == "f" else flat
    assert weights.shape == flat.shape and np.all(weights.data != 0)
    np.testing.assert_array_equal(weights.toarray(), expected.astype(weights.dtype))
    return resampled, weights


@pytest.mark.parametrize("dtype", ["<f8", "<f4"])
@pytest.mark.parametrize("grid", ["adhd", "oblique", "same_affine"])
def test_sparse_resampling_is_resample_maps_bit_for_bit(msdl_maps_img, dtype, grid):
    """MSDL onto the ADHD grid (diagonal: zoom/shift path), an oblique grid
    (general matrix) and its own affine with another shape (identity)."""
    maps = _maps_array(msdl_maps_img).astype(dtype)
    shape, affine = {"adhd": (ADHD_SHAPE, ADHD_AFFINE),
                     "oblique": (OBLIQUE_SHAPE, OBLIQUE_AFFINE),
                     "same_affine": ((44, 40, 38), msdl_maps_img.affine)}[grid]
    resampled, _ = _check_sparse(maps, msdl_maps_img.affine, shape, affine)
    assert resampled.nnz > 0


def test_sparse_resampling_signed_maps_and_clipping():
    """Random signed maps (non-zero up to the array's edges) on an oblique
    grid: nilearn's clipping over all maps, applied to the sparse values."""
    rng = np.random.default_rng(3)
    maps = rng.standard_normal((12, 14, 10, 3))
    affine = np.diag([2.0, 2.0, 2.5, 1.0])
    affine[:3, 3] = [-10, -12, -11]
    target = np.eye(4)
    target[:3, :3] = 1.3 * _rotation(0.2, 0.1, -0.3)
    target[:3, 3] = [-12, -10, -9]
    _check_sparse(maps, affine, (18, 20, 16), target)


@pytest.mark.parametrize("dtype", ["<f8", "<f4", ">f4", "<i2"])
def test_sparse_resampling_diagonal_transforms(dtype):
    """The diagonal cases of test_diagonal_transforms_match_nilearn (up- and
    down-sampling, flips, samples on the maps' edge) on random signed maps,
    plus localized maps whose support is a small box."""
    rng = np.random.default_rng(11)
    maps = rng.standard_normal((12, 14, 10, 4))
    maps[..., 3] = 0
    maps[4:7, 5:9, 2:4, 3] = rng.random((3, 4, 2)) + 0.5  # a small component
    maps = (maps * 100).astype(dtype) if dtype == "<i2" else maps.astype(dtype)
    maps_affine = _diagonal_affine([4.0, 4.0, 4.0], [-22.0, -26.0, -18.0])
    targets = [((17, 19, 14), _diagonal_affine([3.0, 3.0, 3.0], [-24.0, -27.0, -19.0])),
               ((17, 19, 14), _diagonal_affine([-3.0, 3.0, 3.0], [24.0, -27.0, -19.0])),
               ((6, 8, 5), _diagonal_affine([8.0, 7.5, 9.0], [-22.0, -26.0, -18.0])),
               ((30, 31, 29), _diagonal_affine([1.7, -2.1, 1.3], [-30.0, 30.0, -20.0])),
               ((12, 14, 10), _diagonal_affine([4.0, 4.0, 4.0], [-22.0 + 1e-10, -30.0, -14.0])),
               ((10, 10, 10), _diagonal_affine([-4.0, -4.0, 4.0], [22.0, 26.0, -18.0]))]
    for shape, target in targets:
        _check_sparse(maps, maps_affine, shape, target)


def test_sparse_resampling_non_finite_maps(msdl_maps_img):
    """NaN/inf are zeroed before interpolating (nilearn's clean_img), as in
    resample_maps; the weights hold only the finite non-zero values."""
    maps = _maps_array(msdl_maps_img).copy()
    maps[20, 20:26, 15, 0] = np.nan
    maps[10:13, 30, 20, 5] = np.inf
    maps[25, 10, 10:12, 7] = -np.inf
    before = maps.copy()
    _check_sparse(maps, msdl_maps_img.affine, ADHD_SHAPE, ADHD_AFFINE)
    np.testing.assert_array_equal(maps, before)


def test_sparse_resampling_same_grid_is_the_finite_non_zeros(msdl_maps_img):
    """Same grid (within np.allclose): no interpolation, no clipping; the
    maps' finite non-zero values in their dtype (int16 stays int16, as
    resample_maps returns the maps themselves); one matrix for both."""
    from cohort_connectome.resampling import resample_maps_sparse

    maps = _maps_array(msdl_maps_img).copy()
    maps[0, 0, 0, 0] = np.nan
    affine = msdl_maps_img.affine
    resampled, weights = resample_maps_sparse(maps, maps.shape[:3] + (120,), affine + 1e-9,
                                              maps_affine=affine)
    assert resampled is weights and resampled.dtype == maps.dtype
    np.testing.assert_array_equal(_sparse_as_dense(resampled, maps.shape[:3]),
                                  np.nan_to_num(maps))
    ints = (np.nan_to_num(maps[..., :3]) * 1000).astype(np.int16)
    resampled, _ = resample_maps_sparse(ints, ints.shape[:3], affine, maps_affine=affine)
    assert resampled.dtype == np.int16
    np.testing.assert_array_equal(_sparse_as_dense(resampled, ints.shape[:3]), ints)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_sparse_resampling_streams_the_file(msdl_maps_img, tmp_path, suffix):
    """From a file (read a chunk of maps at a time, any chunk size): the
    same matrices as from the array nibabel reads; a scaled int16 file is
    read as nibabel scales it (float64)."""
    import nibabel as nib

    from cohort_connectome.resampling import resample_maps_sparse

    maps = _maps_array(msdl_maps_img)
    path = tmp_path / f"maps{suffix}"
    nib.Nifti1Image(maps.astype(np.float32), msdl_maps_img.affine).to_filename(path)
    ref, ref_weights = resample_maps_sparse(np.asanyarray(nib.load(path).dataobj), ADHD_SHAPE,
                                            ADHD_AFFINE, maps_affine=msdl_maps_img.affine)
    for chunk_volumes in (None, 1, 5):
        ours, weights = resample_maps_sparse(path, ADHD_SHAPE, ADHD_AFFINE,
                                             chunk_volumes=chunk_volumes)
        assert ours.dtype == np.float32
        assert (ours != ref).nnz == 0 and (weights != ref_weights).nnz == 0
    scaled = nib.Nifti1Image(np.rint(maps * 1000).astype(np.int16), msdl_maps_img.affine)
    scaled.header.set_slope_inter(0.001, 0.0)
    path = tmp_path / f"scaled{suffix}"
    scaled.to_filename(path)
    data = np.asanyarray(nib.load(path).dataobj)
    assert data.dtype == np.float64
    ours, _ = resample_maps_sparse(path, ADHD_SHAPE, ADHD_AFFINE)
    assert ours.dtype == np.float64
    np.testing.assert_array_equal(
        _sparse_as_dense(ours, ADHD_SHAPE),
        resample_maps(data, msdl_maps_img.affine, ADHD_SHAPE, ADHD_AFFINE))


def test_sparse_resampling_errors(msdl_maps_img, tmp_path):
    """The target outside the maps (as resample_maps); unreadable, 3D or
    truncated maps files: one-line InputErrors naming the file."""
    import gzip

    import nibabel as nib

    from cohort_connectome.resampling import resample_maps_sparse

    maps = _maps_array(msdl_maps_img)
    far = ADHD_AFFINE.copy()
    far[:3, 3] = [1000.0, 1000.0, 1000.0]
    with pytest.raises(InputError, match="do not overlap"):
        resample_maps_sparse(maps, ADHD_SHAPE, far, maps_affine=msdl_maps_img.affine)
    with pytest.raises(ValueError, match="maps_affine"):
        resample_maps_sparse(maps, ADHD_SHAPE, ADHD_AFFINE)
    with pytest.raises(InputError, match=r"missing\.nii\.gz: atlas maps file not found"):
        resample_maps_sparse(tmp_path / "missing.nii.gz", ADHD_SHAPE, ADHD_AFFINE)
    path3d = tmp_path / "three.nii.gz"
    nib.Nifti1Image(maps[..., 0], msdl_maps_img.affine).to_filename(path3d)
    with pytest.raises(InputError, match=r"three\.nii\.gz: atlas maps must be a 4D image"):
        resample_maps_sparse(path3d, ADHD_SHAPE, ADHD_AFFINE)
    path = tmp_path / "maps.nii.gz"
    nib.Nifti1Image(maps.astype(np.float32), msdl_maps_img.affine).to_filename(path)
    cut = tmp_path / "cut.nii.gz"
    with gzip.open(path) as f:
        raw = f.read()
    with gzip.open(cut, "wb") as f:
        f.write(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=r"cut\.nii\.gz: file ends after 19 of 39 volumes$"):
        resample_maps_sparse(cut, ADHD_SHAPE, ADHD_AFFINE)
