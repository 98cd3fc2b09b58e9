"""Region coverage (cohort_connectome.coverage), XCP-D style.

No nilearn counterpart: the oracles are hand-built grids with known answers
and a brute-force dense computation written independently (voxel centres in
world space, nearest target voxel by ``numpy.rint``, one-hot per region).
"""

import tracemalloc

import numpy as np
import pytest
from scipy import sparse

from cohort_connectome.coverage import coverage_matrix, label_weights, region_coverage
from conftest import ADHD_AFFINE, require_shared


def _seen(atlas_shape, atlas_affine, target_shape, target_affine, mask):
    """Oracle: per atlas voxel (Fortran order), whether its world centre's
    nearest target voxel exists and is in the mask."""
    ijk = np.indices(atlas_shape).reshape(3, -1, order="F").T
    world = ijk @ atlas_affine[:3, :3].T + atlas_affine[:3, 3]
    inverse = np.linalg.inv(target_affine)
    t = np.rint(world @ inverse[:3, :3].T + inverse[:3, 3]).astype(int)
    inside = np.all((t >= 0) & (t < np.array(target_shape)), axis=1)
    seen = np.zeros(len(ijk), dtype=bool)
    seen[inside] = mask[t[inside, 0], t[inside, 1], t[inside, 2]]
    return seen


def _brute_force(weights_dense, atlas_shape, atlas_affine, target_shape, target_affine, mask):
    """Dense oracle: the weight of the seen atlas voxels over the total weight."""
    seen = _seen(atlas_shape, atlas_affine, target_shape, target_affine, mask)
    totals = weights_dense.sum(axis=0)
    covered = weights_dense[seen].sum(axis=0)
    return np.where(totals > 0, covered / np.where(totals > 0, totals, 1), 0.0)


def _label_oracle(labels, atlas_affine, target_shape, target_affine, mask, n_labels):
    """Counting oracle for a parcellation: seen voxels of each label over its voxels."""
    seen = _seen(labels.shape, atlas_affine, target_shape, target_affine, mask)
    flat = labels.reshape(-1, order="F").astype(int)
    total = np.bincount(flat, minlength=n_labels + 1)[1:]
    covered = np.bincount(flat[seen], minlength=n_labels + 1)[1:]
    return covered / total


def _full(shape):
    return np.ones(int(np.prod(shape)), dtype=bool)


def test_slab_covering_half_an_atlas():
    """Region 1 fills an 8x4x4 atlas; a target grid with the same voxels but
    only x < 4 sees half of it; region 2 (x >= 6) none."""
    labels = np.ones((8, 4, 4), dtype=np.int16)
    labels[6:] = 2
    weights = label_weights(labels, [1, 2])
    C, totals = coverage_matrix(weights, labels.shape, np.eye(4), (4, 4, 4), np.eye(4))
    np.testing.assert_array_equal(totals, [6 * 16, 2 * 16])
    coverage = region_coverage(C, totals, _full((4, 4, 4)))
    np.testing.assert_allclose(coverage, [4 / 6, 0.0])
    labels[:] = 1
    C, totals = coverage_matrix(label_weights(labels, [1]), labels.shape, np.eye(4),
                                (4, 4, 4), np.eye(4))
    assert region_coverage(C, totals, _full((4, 4, 4)))[0] == 0.5


def test_shifted_and_coarser_grid():
    """A target grid shifted by 2 voxels along x (world origin at x = 2) and a
    2 mm grid over a 1 mm atlas: each atlas voxel goes to rint(x / 2)."""
    labels = np.ones((8, 4, 4), dtype=np.uint8)
    shifted = np.eye(4)
    shifted[0, 3] = 2.0
    C, totals = coverage_matrix(label_weights(labels, [1]), labels.shape, np.eye(4),
                                (8, 4, 4), shifted)
    assert region_coverage(C, totals, _full((8, 4, 4)))[0] == 6 / 8
    coarse = np.diag([2.0, 2.0, 2.0, 1.0])
    C, totals = coverage_matrix(label_weights(labels, [1]), labels.shape, np.eye(4),
                                (2, 2, 2), coarse)
    # rint(x / 2) < 2  <=>  x / 2 < 1.5 (1.5 rounds to 2, ties to even): x in 0..2
    # (x = 3 -> 1.5 -> 2: outside); same along y and z, 4 voxels -> 0..2
    assert C.sum() == 3 * 3 * 3
    assert region_coverage(C, totals, _full((2, 2, 2)))[0] == 27 / 128


def test_mask_and_weights():
    """Probabilistic weights: the covered share is weighted; the mask counts."""
    rng = np.random.default_rng(0)
    shape = (6, 5, 4)
    dense = rng.random((int(np.prod(shape)), 3))
    dense[dense < 0.4] = 0
    dense[:, 2] = 0  # a region without weight: coverage 0
    mask = np.zeros(shape, dtype=bool)
    mask[:3] = True
    weights = sparse.csr_matrix(dense)
    weights.data[:5] = 0  # explicit zeros: kept in the input, absent from C
    dense = weights.toarray()
    before = weights.copy()
    C, totals = coverage_matrix(weights, shape, np.eye(4), shape, np.eye(4))
    assert (weights != before).nnz == 0 and weights.nnz == before.nnz
    assert np.all(C.data != 0)
    coverage = region_coverage(C, totals, mask.reshape(-1, order="F"))
    first = np.zeros(shape, dtype=bool)
    first[:3] = True
    expected = dense[first.reshape(-1, order="F")].sum(axis=0) / dense.sum(axis=0).clip(1e-300)
    expected[2] = 0
    np.testing.assert_allclose(coverage, expected, rtol=1e-12)
    np.testing.assert_allclose(totals, dense.sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_oblique_grids_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    atlas_shape, target_shape = (9, 8, 7), (7, 6, 6)
    atlas_affine = np.diag([1.5, 1.5, 1.5, 1.0])
    atlas_affine[:3, 3] = [-6.0, -5.0, -4.0]
    angle = 0.2 + 0.1 * seed
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                         [0, 0, 1]])
    target_affine = np.eye(4)
    target_affine[:3, :3] = 2.1 * rotation
    target_affine[:3, 3] = [-5.0, -7.0, -6.0]
    dense = rng.random((int(np.prod(atlas_shape)), 5)) * (rng.random((1, 5)) > 0.1)
    dense[dense < 0.5] = 0
    mask = rng.random(target_shape) < 0.7
    C, totals = coverage_matrix(sparse.csc_matrix(dense), atlas_shape, atlas_affine,
                                target_shape, target_affine)
    assert isinstance(C, sparse.csr_matrix) and C.shape == (5, int(np.prod(target_shape)))
    ours = region_coverage(C, totals, mask.reshape(-1, order="F"))
    expected = _brute_force(dense, atlas_shape, atlas_affine, target_shape, target_affine,
                            mask)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-15)


def test_label_weights_are_one_hot_in_fortran_order():
    labels = np.zeros((3, 4, 2), dtype=np.float32)
    labels[2, 1, 0] = 7
    labels[0, 3, 1] = 5
    labels[1, 1, 1] = 9  # not listed
    weights = label_weights(labels, [5, 7])
    assert weights.shape == (24, 2)
    assert weights[np.ravel_multi_index((2, 1, 0), (3, 4, 2), order="F"), 1] == 1
    assert weights[np.ravel_multi_index((0, 3, 1), (3, 4, 2), order="F"), 0] == 1
    assert weights.nnz == 2
    labels[0, 0, 0] = 1.5
    with pytest.raises(ValueError, match="integers"):
        label_weights(labels, [5, 7])


def test_bad_arguments():
    weights = sparse.csr_matrix(np.ones((8, 1)))
    with pytest.raises(ValueError, match="rows"):
        coverage_matrix(weights, (3, 3, 3), np.eye(4), (2, 2, 2), np.eye(4))
    with pytest.raises(ValueError, match="non-negative"):
        coverage_matrix(-weights, (2, 2, 2), np.eye(4), (2, 2, 2), np.eye(4))
    with pytest.raises(ValueError, match="4x4"):
        coverage_matrix(weights, (2, 2, 2), np.eye(3), (2, 2, 2), np.eye(4))
    C, totals = coverage_matrix(weights, (2, 2, 2), np.eye(4), (2, 2, 2), np.eye(4))
    with pytest.raises(ValueError, match="mask_flat"):
        region_coverage(C, totals, np.ones(7, dtype=bool))


def test_schaefer_on_a_3mm_slab():
    """The real Schaefer-100 (2 mm) onto a 3 mm slab (z from -12 to +30 mm on the
    ADHD grid) with a brain mask: equal to the dense oracle; regions entirely
    inside or outside the slab get 1 or 0."""
    import nibabel as nib

    img = nib.load(require_shared(
        "atlases", "schaefer_2018", "Schaefer2018_100Parcels_7Networks_order_FSLMNI152_2mm.nii.gz"))
    labels = np.asanyarray(img.dataobj)
    indices = list(range(1, 101))
    slab_affine = ADHD_AFFINE.copy()
    slab_affine[2, 3] = -12.0
    slab_shape = (61, 73, 15)
    weights = label_weights(labels, indices)
    C, totals = coverage_matrix(weights, labels.shape, img.affine, slab_shape, slab_affine)
    full = region_coverage(C, totals, _full(slab_shape))
    expected = _label_oracle(labels, img.affine, slab_shape, slab_affine,
                             np.ones(slab_shape, dtype=bool), 100)
    np.testing.assert_allclose(full, expected, rtol=1e-12)
    assert 0 < (full == 1).sum() < 100 and 0 < (full == 0).sum() < 100
    assert np.any((full > 0) & (full < 1))
    np.testing.assert_array_equal(totals, np.bincount(labels.astype(int).ravel(),
                                                      minlength=101)[1:])
    # a brain mask: every other x column
    mask = np.zeros(slab_shape, dtype=bool)
    mask[::2] = True
    masked = region_coverage(C, totals, mask.reshape(-1, order="F"))
    expected = _label_oracle(labels, img.affine, slab_shape, slab_affine, mask, 100)
    np.testing.assert_allclose(masked, expected, rtol=1e-12)
    assert np.all(masked <= full)


def test_difumo_like_atlas_memory_is_sparse():
    """104x123x104 voxels x 1024 maps with 3M non-zeros onto the ADHD grid: the
    peak traced memory stays a few times the weights' size (a dense voxels x
    maps array would be 10.9 GB)."""
    rng = np.random.default_rng(0)
    shape = (104, 123, 104)
    n_vox, k, nnz = int(np.prod(shape)), 1024, 3_000_000
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-96.0, -132.0, -78.0]
    rows = rng.integers(0, n_vox, nnz)
    cols = rng.integers(0, k, nnz)
    weights = sparse.csr_matrix((rng.random(nnz).astype(np.float32), (rows, cols)),
                                shape=(n_vox, k))
    size = weights.data.nbytes + weights.indices.nbytes + weights.indptr.nbytes
    tracemalloc.start()
    try:
        C, totals = coverage_matrix(weights, shape, affine, (61, 73, 61), ADHD_AFFINE)
        coverage = region_coverage(C, totals, _full((61, 73, 61)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * size, (peak, size)
    assert coverage.shape == (k,) and np.all((coverage > 0.5) & (coverage <= 1))
    np.testing.assert_allclose(totals, np.asarray(weights.astype(np.float64).sum(axis=0)).ravel(),
                               rtol=1e-12)
