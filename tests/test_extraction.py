"""Parity of cohort_connectome.extraction with nilearn 0.13.1's maps extraction.

Oracles: ``nilearn.regions.signal_extraction.img_to_signals_maps`` (what
``NiftiMapsMasker`` calls once the maps are on the run's grid) and, end to end,
``NiftiMapsMasker(maps_img=msdl).fit_transform(run)`` with default arguments
(resampling to the data, no cleaning).
"""

import gzip
import warnings

import numpy as np
import pytest

from cohort_connectome.errors import InputError
from cohort_connectome.extraction import extract_signals, load_run, run_data
from cohort_connectome.resampling import resample_maps
from conftest import ADHD_AFFINE, ADHD_SHAPE, synthetic_bold, relative_error

N_VOLUMES = 120
N_VOLUMES_FLOAT64 = 60  # the float64 oracle is the slowest call: keep it shorter
RTOL_FLOAT32 = 1e-4
RTOL_FLOAT64 = 1e-5




def _nilearn_signals(bold_img, maps_img):
    """``img_to_signals_maps`` on private copies (nilearn zeroes NaNs in place)."""
    import nibabel as nib
    from nilearn.regions.signal_extraction import img_to_signals_maps

    bold = nib.Nifti1Image(np.array(np.asanyarray(bold_img.dataobj)), bold_img.affine,
                           bold_img.header)
    maps = nib.Nifti1Image(np.array(np.asanyarray(maps_img.dataobj)), maps_img.affine,
                           maps_img.header)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signals, labels = img_to_signals_maps(bold, maps)
    assert labels == list(range(maps.shape[3]))
    return signals


@pytest.fixture(scope="module")
def adhd_maps_img(msdl_maps_img):
    """MSDL resampled by nilearn to the ADHD grid (float64)."""
    from nilearn.image import resample_img

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return resample_img(msdl_maps_img, target_affine=ADHD_AFFINE,
                            target_shape=ADHD_SHAPE, interpolation="linear",
                            force_resample=True, copy_header=True)


@pytest.fixture(scope="module")
def bold32(msdl_maps_img):
    return synthetic_bold(msdl_maps_img, N_VOLUMES, dtype=np.float32, seed=1)


@pytest.fixture(scope="module")
def bold64(msdl_maps_img):
    return synthetic_bold(msdl_maps_img, N_VOLUMES_FLOAT64, dtype=np.float64, seed=2)


# --------------------------------------------------------------------------
# extract_signals vs img_to_signals_maps
# --------------------------------------------------------------------------
def test_float32_run_matches_img_to_signals_maps(bold32, adhd_maps_img):
    """Mirrors ``img_to_signals_maps(bold_float32, msdl_on_adhd_grid)``: float32
    data, float64 maps -> float64 signals (LAPACK dispatch on both inputs)."""
    data = run_data(bold32)
    assert data.dtype == np.float32
    ref = _nilearn_signals(bold32, adhd_maps_img)
    ours = extract_signals(data, np.asanyarray(adhd_maps_img.dataobj))
    assert ours.shape == (N_VOLUMES, 39)
    assert ours.dtype == ref.dtype == np.float64
    assert relative_error(ours, ref) <= RTOL_FLOAT32


def test_float64_run_matches_img_to_signals_maps(bold64, adhd_maps_img):
    """Mirrors ``img_to_signals_maps(bold_float64, msdl_on_adhd_grid)``."""
    ref = _nilearn_signals(bold64, adhd_maps_img)
    ours = extract_signals(run_data(bold64), np.asanyarray(adhd_maps_img.dataobj))
    assert ours.shape == (N_VOLUMES_FLOAT64, 39)
    assert ours.dtype == ref.dtype == np.float64
    assert relative_error(ours, ref) <= RTOL_FLOAT64


def test_float32_run_and_maps_give_float32(bold32, adhd_maps_img):
    """Mirrors ``img_to_signals_maps(bold_float32, float32 maps)``: single
    precision ``gelsd``, float32 signals."""
    import nibabel as nib

    maps32 = np.asanyarray(adhd_maps_img.dataobj).astype(np.float32)
    ref = _nilearn_signals(bold32, nib.Nifti1Image(maps32, adhd_maps_img.affine))
    ours = extract_signals(run_data(bold32), maps32)
    assert ours.dtype == ref.dtype == np.float32
    assert relative_error(ours, ref) <= RTOL_FLOAT32


def test_end_to_end_matches_nifti_maps_masker(msdl_maps_img, bold32):
    """Mirrors ``NiftiMapsMasker(maps_img=msdl).fit_transform(bold)`` with
    default arguments: maps resampled to the run (linear), then extracted."""
    from nilearn.maskers import NiftiMapsMasker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = NiftiMapsMasker(maps_img=msdl_maps_img).fit_transform(bold32)
    maps = resample_maps(np.asanyarray(msdl_maps_img.dataobj), msdl_maps_img.affine,
                         bold32.shape[:3], bold32.affine)
    ours = extract_signals(run_data(bold32), maps)
    assert ours.shape == ref.shape == (N_VOLUMES, 39)
    assert ours.dtype == ref.dtype
    assert relative_error(ours, ref) <= RTOL_FLOAT32
    # the synthetic run is built from the maps: the signals are not trivial
    assert np.all(ours.std(axis=0) > 1.0)


# --------------------------------------------------------------------------
# non-finite values, on a small grid
# --------------------------------------------------------------------------
def _small_case(seed=0, n_volumes=30, dtype=np.float64):
    import nibabel as nib

    rng = np.random.default_rng(seed)
    shape = (12, 13, 10)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    maps = np.clip(rng.standard_normal(shape + (4,)), 0, None)
    maps[:3] = 0.0  # a slab outside every map
    signals = rng.standard_normal((n_volumes, 4))
    data = (maps @ signals.T + 0.1 * rng.standard_normal(shape + (n_volumes,)) + 50.0)
    return (nib.Nifti1Image(data.astype(dtype), affine), nib.Nifti1Image(maps, affine))


def test_nan_in_data_matches_img_to_signals_maps():
    """Mirrors ``img_to_signals_maps(bold_with_nan_and_inf, maps)``: non-finite
    data count as 0 (``safe_get_data(ensure_finite=True)``)."""
    bold, maps_img = _small_case(seed=1)
    data = np.array(bold.dataobj)
    data[5, 5, 5, :] = np.nan        # a whole voxel, inside the maps
    data[6, 7, 4, 3:9] = np.inf      # some volumes of another
    data[7, 2, 8, 0] = -np.inf
    data[1, 1, 1, :] = np.nan        # outside every map
    bold = type(bold)(data, bold.affine)
    before = data.copy()
    ref = _nilearn_signals(bold, maps_img)
    ours = extract_signals(data, np.asanyarray(maps_img.dataobj))
    assert np.all(np.isfinite(ours))
    assert relative_error(ours, ref) <= RTOL_FLOAT64
    # ...and differs from ignoring the voxels: the NaNs really are zeros
    dropped = np.asanyarray(maps_img.dataobj).copy()
    dropped[5, 5, 5] = 0
    dropped[6, 7, 4] = 0
    dropped[7, 2, 8] = 0
    assert relative_error(extract_signals(np.nan_to_num(data, posinf=0, neginf=0), dropped),
                    ref) > 1e-6
    # the caller's array is not modified
    np.testing.assert_array_equal(data, before)


def test_nan_in_maps_matches_img_to_signals_maps():
    """Mirrors ``img_to_signals_maps(bold, maps_with_nan)``: non-finite map
    values count as 0."""
    bold, maps_img = _small_case(seed=2)
    maps = np.array(maps_img.dataobj)
    maps[4, 4, 4, 1] = np.nan
    maps[8, 9, 2, :] = np.inf
    maps[1, 1, 1, 2] = np.nan  # in the empty slab
    before = maps.copy()
    ref = _nilearn_signals(bold, type(maps_img)(maps, maps_img.affine))
    ours = extract_signals(run_data(bold), maps)
    assert np.all(np.isfinite(ours))
    assert relative_error(ours, ref) <= RTOL_FLOAT64
    np.testing.assert_array_equal(maps, before)


def test_maps_without_support_raise_input_error():
    bold, maps_img = _small_case(seed=3)
    maps = np.zeros(maps_img.shape)
    maps[0, 0, 0, 1] = np.nan  # non-finite values are no support either
    with pytest.raises(InputError, match="do not overlap the run's field of view"):
        extract_signals(run_data(bold), maps)


def test_shape_mismatch_raises_value_error():
    bold, maps_img = _small_case(seed=4)
    data = run_data(bold)
    maps = np.asanyarray(maps_img.dataobj)
    with pytest.raises(ValueError, match="same grid") as info:
        extract_signals(data[:-1], maps)
    assert not isinstance(info.value, InputError)
    with pytest.raises(ValueError, match="4D"):
        extract_signals(data[..., 0], maps)
    with pytest.raises(ValueError, match="4D"):
        extract_signals(data, maps[..., 0])


# --------------------------------------------------------------------------
# load_run / run_data
# --------------------------------------------------------------------------
def _save(img, path):
    import nibabel as nib

    nib.save(img, path)
    return path


def _assert_one_line(err, *parts):
    text = str(err)
    assert "\n" not in text
    for part in parts:
        assert part in text, f"{part!r} not in {text!r}"


def test_load_run_returns_the_image_without_loading(tmp_path):
    bold, _ = _small_case(seed=5, dtype=np.float32)
    path = _save(bold, tmp_path / "sub-01_bold.nii.gz")
    img = load_run(path, subject="sub-01")
    assert img.shape == bold.shape
    assert not img.in_memory
    np.testing.assert_array_equal(run_data(img), np.asanyarray(bold.dataobj))
    assert run_data(img).dtype == np.float32


def test_load_run_missing_file(tmp_path):
    path = tmp_path / "sub-02_bold.nii.gz"
    with pytest.raises(InputError) as info:
        load_run(path, subject="sub-02")
    _assert_one_line(info.value, "sub-02_bold.nii.gz", "sub-02", "file not found")


def test_load_run_3d_image(tmp_path):
    import nibabel as nib

    path = _save(nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), np.eye(4)),
                 tmp_path / "anat.nii.gz")
    with pytest.raises(InputError) as info:
        load_run(path, subject="sub-03")
    _assert_one_line(info.value, "anat.nii.gz", "sub-03", "image is 3D, expected a 4D run")


def test_load_run_single_volume(tmp_path):
    import nibabel as nib

    path = _save(nib.Nifti1Image(np.zeros((4, 5, 6, 1), np.float32), np.eye(4)),
                 tmp_path / "one.nii")
    with pytest.raises(InputError) as info:
        load_run(path)
    _assert_one_line(info.value, "one.nii", "run has 1 volume; at least 2 are needed")


@pytest.mark.parametrize("name, content", [
    ("x.nii.gz", b"this is not a NIfTI file\n" * 20),             # not gzip at all
    ("y.nii.gz", gzip.compress(b"\x00\x01junk" * 100)),           # gzip, not NIfTI
    ("z.nii", b"\x00" * 10),                                      # too short
])
def test_load_run_not_nifti(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        load_run(path, subject="sub-04")
    _assert_one_line(info.value, name, "sub-04", "not a readable NIfTI image: ")


def test_run_data_truncated_file_raises_input_error(tmp_path):
    bold, _ = _small_case(seed=6, dtype=np.float32)
    path = _save(bold, tmp_path / "cut.nii")
    path.write_bytes(path.read_bytes()[:2000])  # header intact, data cut short
    img = load_run(path)
    with pytest.raises(InputError) as info:
        run_data(img, subject="sub-05")
    _assert_one_line(info.value, "cut.nii", "sub-05", "not a readable NIfTI image")


def _float32_maps_against_nilearn(path, data, maps_img, affine):
    """``extract_signals(data, float32 maps)`` and nilearn's
    ``img_to_signals_maps(nibabel.load(path), float32 maps)``."""
    import nibabel as nib
    from nilearn.regions.signal_extraction import img_to_signals_maps

    maps32 = np.asanyarray(maps_img.dataobj).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, _ = img_to_signals_maps(nib.load(path), nib.Nifti1Image(maps32, affine))
    return extract_signals(data, maps32), ref


def test_scaled_int16_run_is_float64_like_nilearn(tmp_path):
    """Mirrors ``img_to_signals_maps(nibabel.load(scaled_int16_run), maps)``:
    scl_slope=0.5 data are read as float64, and so are the signals."""
    import nibabel as nib

    bold, maps_img = _small_case(seed=7)
    raw = np.rint(np.asanyarray(bold.dataobj) * 40).astype(np.int16)
    img = nib.Nifti1Image(raw, bold.affine)
    img.header.set_slope_inter(0.5, 0.0)
    path = _save(img, tmp_path / "scaled.nii.gz")

    run = load_run(path)
    data = run_data(run)
    assert data.dtype == np.float64
    np.testing.assert_array_equal(data, raw * 0.5)
    ours, ref = _float32_maps_against_nilearn(path, data, maps_img, bold.affine)
    assert ours.dtype == ref.dtype == np.float64
    assert relative_error(ours, ref) <= RTOL_FLOAT64


def test_unscaled_int16_run_stays_int16(tmp_path):
    """Mirrors ``img_to_signals_maps(nibabel.load(int16_run), float32 maps)``:
    unscaled int16 data are read as int16; scipy's LAPACK dispatch then runs
    in single precision (float32 signals), in nilearn as here."""
    import nibabel as nib

    bold, maps_img = _small_case(seed=8)
    raw = np.rint(np.asanyarray(bold.dataobj) * 40).astype(np.int16)
    path = _save(nib.Nifti1Image(raw, bold.affine), tmp_path / "int16.nii.gz")
    data = run_data(load_run(path))
    assert data.dtype == np.int16
    ours, ref = _float32_maps_against_nilearn(path, data, maps_img, bold.affine)
    assert ours.dtype == ref.dtype == np.float32
    assert relative_error(ours, ref) <= RTOL_FLOAT32
