"""Parity of cohort_connectome.labels with nilearn 0.13.1's labels masker.

Oracles:

* ``NiftiLabelsMasker(labels_img, strategy=s,
  resampling_target="data").fit_transform(run)`` for the signals (nilearn
  returns a column per label value present on the run's grid, sorted; we
  return the atlas's regions in atlas order, NaN for absent ones);
* ``nilearn.image.resample_img(labels_img, interpolation="nearest", ...)``
  (the call the masker's ``_fit`` makes) for :func:`resample_labels`;
* ``nilearn.plotting.find_parcellation_cut_coords`` and
  ``find_probabilistic_atlas_cut_coords`` for the cut coordinates.

Real atlases from ../shared/data/atlases (AAL big-endian int16 with codes
2001..9170, Harvard-Oxford maxprob uint8, Schaefer-100 float32) on their own
2 mm grid, on the ADHD 3 mm grid and on an oblique grid; synthetic runs of
a few float64 volumes (nilearn reduces volume by volume with scipy.ndimage).
"""

import io
import warnings

import numpy as np
import pytest

from cohort_connectome.errors import InputError
from cohort_connectome.labels import (STRATEGIES, LabelsReducer, parcellation_cut_coords,
                                      probabilistic_cut_coords, resample_labels)
from conftest import ADHD_AFFINE, ADHD_SHAPE, relative_error, require_shared

#: Parity tolerance on max|ours - nilearn| / max|nilearn| for float64 runs.
#: Measured: 0 (bit-identical; scipy's operations in scipy's order); 1e-12,
#: not 0, leaves room for a summation-order change in a future scipy.
RTOL = 1e-12
N_VOLUMES = 10

ATLASES = {
    "aal": ("aal", "AAL.nii"),
    "ho_cort": ("harvard_oxford", "HarvardOxford-cort-maxprob-thr25-2mm.nii.gz"),
    "schaefer100": ("schaefer_2018",
                    "Schaefer2018_100Parcels_7Networks_order_FSLMNI152_2mm.nii.gz"),
}


def _rotation(ax, ay, az):
    cx, sx, cy, sy, cz, sz = (np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay),
                              np.cos(az), np.sin(az))
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


#: An oblique 3.5 mm grid, rotated and shifted, that covers the brain.
OBLIQUE_SHAPE = (50, 60, 45)
OBLIQUE_AFFINE = np.eye(4)
OBLIQUE_AFFINE[:3, :3] = 3.5 * _rotation(0.05, -0.03, 0.1)
OBLIQUE_AFFINE[:3, 3] = [-78.3, -112.6, -58.1]

MNI2_SHAPE = (91, 109, 91)
MNI2_AFFINE = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])

GRIDS = {
    "own_2mm": (MNI2_SHAPE, MNI2_AFFINE),
    "adhd_3mm": (ADHD_SHAPE, ADHD_AFFINE),
    "oblique": (OBLIQUE_SHAPE, OBLIQUE_AFFINE),
}


# -- helpers ------------------------------------------------------------------


def _load(atlas):
    import nibabel as nib

    path = require_shared("atlases", *ATLASES[atlas])
    img = nib.load(path)
    # the stored array, dtype and byte order as on disk (what nilearn reads)
    return nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine, img.header)


def _run(shape, affine, n_volumes=N_VOLUMES, seed=0, dtype=np.float64):
    """A synthetic run: a smooth spatial pattern times random time courses,
    a baseline and white noise (independent of the labels)."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    ijk = np.indices(shape, dtype=np.float64)
    pattern = np.stack([np.sin(ijk[0] / 5.0 + f) * np.cos(ijk[1] / 7.0 - f) + ijk[2] / 20.0
                        for f in (0.0, 1.3, 2.1)], axis=-1)
    courses = rng.standard_normal((3, n_volumes))
    data = 100.0 + 20.0 * pattern @ courses
    data += 5.0 * rng.standard_normal(data.shape)
    return nib.Nifti1Image(np.asfortranarray(data.astype(dtype)), affine)


def _chunk(run_img):
    """(n_volumes, n_voxels) in Fortran voxel order, as streaming reads it."""
    data = np.asanyarray(run_img.dataobj)
    return data.reshape(-1, data.shape[3], order="F").T


def _nilearn_signals(labels_img, run_img, strategy, **kwargs):
    """nilearn's signals and the label value of each column.  nilearn gets a
    copy of the run: its ``ensure_finite`` zeroes NaN/inf in the image's array."""
    import nibabel as nib
    from nilearn.maskers import NiftiLabelsMasker

    run_img = nib.Nifti1Image(np.array(run_img.dataobj), run_img.affine)

    masker = NiftiLabelsMasker(labels_img, strategy=strategy, resampling_target="data",
                               **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signals = masker.fit_transform(run_img)
    on_grid = np.nan_to_num(np.asanyarray(masker.labels_img_.dataobj), nan=0, posinf=0,
                            neginf=0)
    present = [v for v in np.unique(on_grid).tolist()
               if v != kwargs.get("background_label", 0)]
    assert signals.shape[1] == len(present)
    return signals, present


def _ours(labels_img, run_img, strategy, indices, **kwargs):
    labels = resample_labels(np.asanyarray(labels_img.dataobj), labels_img.affine,
                             run_img.shape[:3], run_img.affine)
    reducer = LabelsReducer(indices, strategy=strategy, **kwargs).fit(labels)
    return reducer.transform(_chunk(run_img)), reducer


def _compare(ours, indices, theirs, present):
    """Our columns of nilearn's labels to 1e-6; NaN columns exactly for ours absent."""
    position = {int(v): r for r, v in enumerate(indices)}
    columns = [position[int(v)] for v in present]
    error = relative_error(ours[:, columns], theirs)
    absent = sorted(set(range(len(indices))) - set(columns))
    assert np.all(np.isnan(ours[:, absent]))
    assert np.all(np.isfinite(ours[:, columns]))
    return error


def _atlas_order(labels_img, seed=1):
    """The atlas's label values (background 0 left out), in a shuffled order so
    that atlas order and nilearn's sorted order differ."""
    values = np.unique(np.asanyarray(labels_img.dataobj))
    values = [int(v) for v in values if v != 0]
    return [values[i] for i in np.random.default_rng(seed).permutation(len(values))]


# -- resample_labels ------------------------------------------------------------


@pytest.mark.parametrize("grid", ["adhd_3mm", "oblique"])
@pytest.mark.parametrize("atlas", sorted(ATLASES))
def test_resample_labels_is_nilearns_bit_for_bit(atlas, grid):
    """Mirrors ``resample_img(labels_img, interpolation="nearest",
    target_shape=..., target_affine=...)`` (NiftiLabelsMasker._fit): same
    values, same dtype and byte order (AAL stays big-endian int16)."""
    from nilearn.image import resample_img

    labels_img = _load(atlas)
    shape, affine = GRIDS[grid]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = np.asanyarray(resample_img(labels_img, interpolation="nearest",
                                            target_shape=shape, target_affine=affine,
                                            force_resample=True, copy_header=True).dataobj)
    ours = resample_labels(np.asanyarray(labels_img.dataobj), labels_img.affine, shape, affine)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


def test_resample_labels_big_endian_kept():
    labels_img = _load("aal")
    ours = resample_labels(np.asanyarray(labels_img.dataobj), labels_img.affine, ADHD_SHAPE,
                           ADHD_AFFINE)
    assert ours.dtype == np.dtype(">i2")


def test_resample_labels_same_grid_is_the_same_object():
    labels = np.zeros((4, 5, 6), dtype=np.int16)
    labels[1, 2, 3] = 7
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nudged = affine + 1e-9
    assert resample_labels(labels, affine, (4, 5, 6, 30), nudged) is labels


def test_resample_labels_nan_are_background_as_in_nilearn():
    """NaN/inf labels: nilearn extrapolates them before resampling, puts NaN
    back where the nearest voxel was not finite and zeroes them; zeroing first
    gives the same labels, on the same grid and on another one."""
    from nilearn.maskers import NiftiLabelsMasker
    import nibabel as nib

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 6, size=(12, 14, 10)).astype(np.float32)
    labels[rng.random(labels.shape) < 0.1] = np.nan
    labels[0, 0, 0] = np.inf
    before = labels.copy()
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    target = np.diag([3.0, 3.0, 3.0, 1.0])
    target[:3, 3] = [0.5, -0.5, 1.0]
    for shape, aff in (((12, 14, 10), affine), ((8, 9, 7), target)):
        run = _run(shape, aff, n_volumes=3)
        masker = NiftiLabelsMasker(nib.Nifti1Image(labels, affine), resampling_target="data")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            masker.fit(run)
        theirs = np.nan_to_num(np.asanyarray(masker.labels_img_.dataobj), nan=0, posinf=0)
        ours = resample_labels(labels, affine, shape, aff)
        np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_array_equal(labels, before)  # input untouched (NaN equal)


def test_resample_labels_outside_the_field_of_view():
    labels = np.ones((5, 5, 5), dtype=np.uint8)
    far = np.eye(4)
    far[:3, 3] = 1000.0
    with pytest.raises(InputError, match="do not overlap"):
        resample_labels(labels, np.eye(4), (5, 5, 5), far)


def test_resample_labels_bad_arguments():
    with pytest.raises(ValueError, match="3D"):
        resample_labels(np.zeros((3, 3)), np.eye(4), (3, 3, 3), np.eye(4))
    with pytest.raises(ValueError, match="4x4"):
        resample_labels(np.zeros((3, 3, 3)), np.eye(3), (3, 3, 3), np.eye(4))
    with pytest.raises(ValueError, match="target_shape"):
        resample_labels(np.zeros((3, 3, 3)), np.eye(4), (3, 3), np.eye(4))


# -- signals: real atlases ------------------------------------------------------


@pytest.fixture(scope="module")
def real_case():
    """(labels image, run, atlas-order indices) per (atlas, grid), built once."""
    cache = {}

    def get(atlas, grid):
        if (atlas, grid) not in cache:
            labels_img = _load(atlas)
            shape, affine = GRIDS[grid]
            cache[(atlas, grid)] = (labels_img, _run(shape, affine), _atlas_order(labels_img))
        return cache[(atlas, grid)]

    return get


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("grid", sorted(GRIDS))
@pytest.mark.parametrize("atlas", sorted(ATLASES))
def test_signals_match_nilearn_labels_masker(real_case, atlas, grid, strategy):
    """Mirrors ``NiftiLabelsMasker(labels_img, strategy=strategy,
    resampling_target="data").fit_transform(run)`` on a float64 run."""
    labels_img, run, indices = real_case(atlas, grid)
    theirs, present = _nilearn_signals(labels_img, run, strategy)
    ours, reducer = _ours(labels_img, run, strategy, indices)
    assert ours.dtype == np.float64 and ours.shape == (N_VOLUMES, len(indices))
    assert _compare(ours, indices, theirs, present) <= RTOL
    assert reducer.supported_.sum() == len(present)
    assert reducer.unlisted_.size == 0


# -- signals: synthetic cases -----------------------------------------------------


def _synthetic_labels(shape=(14, 16, 12), n_labels=9, dtype=np.int32, seed=0):
    """Blocky labels: 0 background plus 1..n_labels (some voxels each)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, n_labels + 1, size=tuple((s + 1) // 2 for s in shape))
    labels = np.kron(coarse, np.ones((2, 2, 2), dtype=int))[:shape[0], :shape[1], :shape[2]]
    return labels.astype(dtype)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_non_finite_data_count_as_zero(strategy):
    """nilearn sets NaN/inf in the run to 0 and keeps them in the regions;
    ``counts["non_finite"]`` counts those on the support."""
    import nibabel as nib

    labels = _synthetic_labels()
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    run = _run(labels.shape, affine, n_volumes=6)
    data = np.array(run.dataobj)
    rng = np.random.default_rng(5)
    # in regions 1-4 and in the background (not counted); 5-9 stay finite
    bad = (rng.random(data.shape) < 0.05) & np.isin(labels, [0, 1, 2, 3, 4])[..., None]
    data[bad] = rng.choice([np.nan, np.inf, -np.inf], size=int(bad.sum()))
    run = nib.Nifti1Image(data, affine)
    labels_img = nib.Nifti1Image(labels, affine)
    theirs, present = _nilearn_signals(labels_img, run, strategy)
    indices = list(range(1, 10))
    reducer = LabelsReducer(indices, strategy).fit(labels)
    chunk = _chunk(run)
    before = chunk.copy()
    counts = {"non_finite": 2}
    ours = reducer.transform(chunk, counts=counts)
    assert _compare(ours, indices, theirs, present) <= RTOL
    np.testing.assert_array_equal(chunk, before)  # never modified
    on_support = (labels != 0)[..., None] & bad
    assert counts["non_finite"] == 2 + int(on_support.sum())


def test_labels_lost_in_resampling_give_nan_columns():
    """A one-voxel region on a 1 mm atlas vanishes on a 4 mm grid: nilearn drops
    its column (and warns), ours is NaN and ``supported_`` says so."""
    import nibabel as nib

    labels = np.zeros((24, 24, 24), dtype=np.uint8)
    labels[2:22, 2:12, 2:22] = 1
    labels[2:22, 12:22, 2:22] = 2
    labels[13, 13, 13] = 3  # one voxel inside region 2: not picked at 4 mm
    affine = np.eye(4)
    target = np.diag([4.0, 4.0, 4.0, 1.0])
    run = _run((6, 6, 6), target, n_volumes=4)
    labels_img = nib.Nifti1Image(labels, affine)
    theirs, present = _nilearn_signals(labels_img, run, "mean")
    assert present == [1, 2]
    ours, reducer = _ours(labels_img, run, "mean", [3, 1, 2])
    assert _compare(ours, [3, 1, 2], theirs, present) <= RTOL
    np.testing.assert_array_equal(reducer.supported_, [False, True, True])
    assert np.all(np.isnan(ours[:, 0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, ">f4"])
def test_float_labels_with_integral_values(dtype):
    import nibabel as nib

    labels = _synthetic_labels(dtype=np.float64) * 10.0 - 5.0  # -5 (region), 5, 15, ...
    labels[labels == -5.0] = 0.0
    labels = labels.astype(dtype)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    target = np.diag([3.0, 3.0, 3.0, 1.0])
    target[:3, 3] = [1.0, 0.5, -1.0]
    run = _run((9, 10, 8), target, n_volumes=5)
    labels_img = nib.Nifti1Image(labels, affine)
    indices = [int(v) for v in np.unique(labels) if v != 0][::-1]
    for strategy in ("mean", "median", "variance"):
        theirs, present = _nilearn_signals(labels_img, run, strategy)
        ours, _ = _ours(labels_img, run, strategy, indices)
        assert _compare(ours, indices, theirs, present) <= RTOL


def test_non_integral_labels_are_refused():
    labels = _synthetic_labels(dtype=np.float32)
    labels[3, 3, 3] = 2.5
    with pytest.raises(ValueError, match="integers.*2.5"):
        LabelsReducer([1, 2, 3]).fit(labels)


@pytest.mark.parametrize("dtype", [">i2", ">i4", "<u2"])
def test_big_endian_and_other_integer_labels(dtype):
    """Big-endian labels, resampled (kept big-endian, as nilearn) and reduced."""
    import nibabel as nib

    labels = (_synthetic_labels() * 1000 + 7 * (_synthetic_labels() > 0)).astype(dtype)
    affine = np.diag([-2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [26.0, -15.0, -11.0]
    target = np.diag([-3.0, 3.0, 3.0, 1.0])
    target[:3, 3] = [25.0, -14.0, -10.0]
    run = _run((9, 10, 8), target, n_volumes=5)
    labels_img = nib.Nifti1Image(labels, affine)
    on_grid = resample_labels(labels, affine, (9, 10, 8), target)
    assert on_grid.dtype == np.dtype(dtype)
    indices = [int(v) for v in np.unique(labels) if v != 0]
    for strategy in ("sum", "minimum", "standard_deviation"):
        theirs, present = _nilearn_signals(labels_img, run, strategy)
        ours, _ = _ours(labels_img, run, strategy, indices)
        assert _compare(ours, indices, theirs, present) <= RTOL


@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_other_run_dtypes(dtype):
    """float32 runs: nilearn returns float32, the float32 rounding of our
    float64 (exactly); int16 runs: the same float64 values."""
    import nibabel as nib

    labels = _synthetic_labels()
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    run = _run(labels.shape, affine, n_volumes=5)
    run = nib.Nifti1Image(np.asarray(run.dataobj).astype(dtype), affine)
    labels_img = nib.Nifti1Image(labels, affine)
    indices = list(range(1, 10))
    for strategy in ("mean", "median", "maximum", "variance"):
        theirs, present = _nilearn_signals(labels_img, run, strategy)
        ours, _ = _ours(labels_img, run, strategy, indices)
        assert ours.dtype == np.float64 and theirs.dtype == (
            np.float32 if dtype == np.float32 else np.float64)
        assert _compare(ours, indices, theirs, present) <= (1e-6 if dtype == np.float32
                                                              else RTOL)
        np.testing.assert_array_equal(ours[:, [p - 1 for p in present]].astype(theirs.dtype),
                                      theirs)


def test_unlisted_labels_are_recorded_not_extracted():
    labels = _synthetic_labels()
    reducer = LabelsReducer([4, 2, 9], "mean").fit(labels)
    np.testing.assert_array_equal(reducer.unlisted_, [1, 3, 5, 6, 7, 8])
    assert set(np.unique(reducer.region_).tolist()) == {0, 1, 2}
    for r, value in enumerate([4, 2, 9]):
        assert reducer.counts_[r] == int((labels == value).sum())
    np.testing.assert_array_equal(
        np.sort(reducer.support_),
        np.flatnonzero(np.isin(labels.reshape(-1, order="F"), [4, 2, 9])))


def test_background_other_than_zero():
    """``background=-1``: 0 is then a region (nilearn's ``background_label``)."""
    import nibabel as nib

    labels = _synthetic_labels() - 1  # -1 background, 0..8 regions
    affine = np.eye(4)
    run = _run(labels.shape, affine, n_volumes=4)
    theirs, present = _nilearn_signals(nib.Nifti1Image(labels, affine), run, "mean",
                                       background_label=-1)
    indices = list(range(0, 9))
    ours, _ = _ours(nib.Nifti1Image(labels, affine), run, "mean", indices, background=-1)
    assert _compare(ours, indices, theirs, present) <= RTOL


def test_chunks_give_the_signals_of_one_chunk():
    labels = _synthetic_labels(shape=(20, 18, 16), n_labels=12)
    affine = np.eye(4)
    run = _run(labels.shape, affine, n_volumes=23)
    chunk = _chunk(run)
    for strategy in STRATEGIES:
        reducer = LabelsReducer(list(range(1, 13)), strategy).fit(labels)
        whole = reducer.transform(chunk)
        parts = np.vstack([reducer.transform(chunk[a:b])
                           for a, b in ((0, 1), (1, 8), (8, 20), (20, 23))])
        np.testing.assert_array_equal(parts, whole)


def test_arrays_round_trip_exactly():
    labels = _synthetic_labels()
    labels[labels == 5] = 0
    reducer = LabelsReducer([9, 5, 1, 2, 3, 4, 6, 7, 8, 42], "median", background=0).fit(labels)
    buffer = io.BytesIO()
    arrays = reducer.to_arrays()
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as archive:
        loaded = LabelsReducer.from_arrays(archive)
    for name in ("indices_", "support_", "region_", "counts_", "supported_", "unlisted_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(reducer, name))
    assert loaded.grid_shape_ == reducer.grid_shape_
    assert loaded.n_regions_ == reducer.n_regions_ == 10
    assert (loaded.strategy, loaded.background) == ("median", 0)
    chunk = _chunk(_run(labels.shape, np.eye(4), n_volumes=3))
    np.testing.assert_array_equal(loaded.transform(chunk), reducer.transform(chunk))
    with pytest.raises(ValueError, match="missing"):
        LabelsReducer.from_arrays({k: v for k, v in arrays.items() if k != "support"})


def test_bad_arguments():
    labels = _synthetic_labels()
    with pytest.raises(ValueError, match="strategy"):
        LabelsReducer([1], "mode").fit(labels)
    with pytest.raises(ValueError, match="distinct"):
        LabelsReducer([1, 1]).fit(labels)
    with pytest.raises(ValueError, match="background"):
        LabelsReducer([0, 1]).fit(labels)
    with pytest.raises(ValueError, match="integers"):
        LabelsReducer([1.5]).fit(labels)
    with pytest.raises(ValueError, match="3D"):
        LabelsReducer([1]).fit(labels[0])
    with pytest.raises(RuntimeError, match="not fitted"):
        LabelsReducer([1]).transform(np.zeros((1, labels.size)))
    reducer = LabelsReducer([1]).fit(labels)
    with pytest.raises(ValueError, match="chunk must have shape"):
        reducer.transform(np.zeros((2, labels.size - 1)))


# -- cut coordinates ------------------------------------------------------------


@pytest.mark.parametrize("atlas", sorted(ATLASES))
def test_parcellation_cut_coords_match_nilearn(atlas):
    """Mirrors ``find_parcellation_cut_coords(labels_img, background_label=0,
    return_label_names=True)`` (label_hemisphere="left"); an index absent from
    the image gives a NaN row."""
    from nilearn.plotting import find_parcellation_cut_coords

    labels_img = _load(atlas)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, names = find_parcellation_cut_coords(labels_img, return_label_names=True)
    indices = _atlas_order(labels_img) + [123456]
    ours = parcellation_cut_coords(np.asanyarray(labels_img.dataobj), labels_img.affine,
                                   indices)
    rows = [indices.index(int(v)) for v in names]
    assert len(rows) == len(indices) - 1
    np.testing.assert_allclose(ours[rows], theirs, rtol=0, atol=1e-9)
    assert np.all(np.isnan(ours[-1]))


def test_parcellation_cut_coords_reordered_axes_and_ties():
    """A swapped-and-flipped affine (nilearn reorders the image first), regions
    straddling the hemisphere split and two equal components (the first in C
    order of the reordered image wins)."""
    import nibabel as nib
    from nilearn.plotting import find_parcellation_cut_coords

    labels = np.zeros((12, 10, 8), dtype=np.int16)
    labels[1:3, 1:3, 1:3] = 1   # two equal cubes of region 1, both on one side
    labels[1:3, 6:8, 5:7] = 1
    labels[4:9, 2:5, 2:4] = 2   # region 2 across the split
    labels[7:11, 6:9, 1:7] = 3  # region 3 on the other side only
    labels[10, 1, 1] = 4
    affine = np.array([[0.0, 2.0, 0.0, -9.0],
                       [-2.0, 0.0, 0.0, 11.0],
                       [0.0, 0.0, 2.0, -7.0],
                       [0.0, 0.0, 0.0, 1.0]])
    img = nib.Nifti1Image(labels, affine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, names = find_parcellation_cut_coords(img, return_label_names=True)
    ours = parcellation_cut_coords(labels, affine, [int(v) for v in names])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
    oblique = affine.copy()
    oblique[:3, :3] = 2.0 * _rotation(0.1, 0.0, 0.0)
    with pytest.raises(ValueError, match="rotations"):
        parcellation_cut_coords(labels, oblique, [1])


def _maps_cut_coords_case(parts, dtype=None, step=1):
    import nibabel as nib
    from nilearn.plotting import find_probabilistic_atlas_cut_coords

    img = nib.load(require_shared("atlases", *parts))
    maps = np.asanyarray(img.dataobj)[..., ::step]
    if dtype is not None:
        maps = maps.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = find_probabilistic_atlas_cut_coords(nib.Nifti1Image(maps, img.affine))
    ours = np.array([probabilistic_cut_coords(maps[..., m], img.affine)
                     for m in range(maps.shape[3])])
    return ours, theirs


def test_probabilistic_cut_coords_harvard_oxford_all_maps():
    """Mirrors ``find_probabilistic_atlas_cut_coords(maps_img)`` on the 48
    uint8 Harvard-Oxford cortical probability maps, one map at a time."""
    ours, theirs = _maps_cut_coords_case(("harvard_oxford", "HarvardOxford-cort-prob-2mm.nii.gz"))
    assert ours.shape == theirs.shape == (48, 3)
    np.testing.assert_array_equal(ours, theirs)


def test_probabilistic_cut_coords_float_maps_and_empty_map():
    """float32 maps (every 4th HO map, as float32), plus an all-zero map
    (nilearn returns the world position of voxel 0)."""
    ours, theirs = _maps_cut_coords_case(("harvard_oxford", "HarvardOxford-cort-prob-2mm.nii.gz"),
                                         dtype=np.float32, step=4)
    np.testing.assert_array_equal(ours, theirs)
    affine = np.diag([-2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [90, -126, -72]
    np.testing.assert_array_equal(probabilistic_cut_coords(np.zeros((4, 4, 4)), affine),
                                  [90.0, -126.0, -72.0])
