"""Region coverage of a run, as XCP-D's ``stat-coverage`` reports it.

The coverage of a region in a run is the share of the region that lands in
the run's field of view and brain mask: its voxels for a parcellation
(dseg), its weight for a probabilistic map, counted on the **atlas's own
grid** (not after resampling, so that it does not depend on how the atlas was
interpolated onto the run).  XCP-D (``--min-coverage``, issue #1579) drops the
regions below a threshold; there is no nilearn counterpart.

Computation, in three steps that the workflow can run at different times:

1. :func:`label_weights` (a parcellation) or the caller's sparse maps give the
   atlas as weights ``W`` (atlas voxels in Fortran order x regions);
2. :func:`coverage_matrix`, once per atlas and run grid: each atlas voxel
   centre goes to its nearest run voxel, and ``C[r, v]`` sums the weight of
   region ``r`` landing in run voxel ``v`` (``C`` sparse, regions x run
   voxels), with ``totals[r]`` the whole weight of region ``r``;
3. :func:`region_coverage`, per run: ``C @ mask / totals``.

Voxel order is NIfTI's (Fortran, x fastest) on both grids, as in
:mod:`cohort_connectome.streaming`.
"""

import numpy as np
from scipy import sparse

from .labels import _check_indices, _group_voxels

__all__ = ["label_weights", "coverage_matrix", "region_coverage"]


def label_weights(labels, indices, background=0):
    """A parcellation as sparse one-hot weights on its own grid.

    Parameters
    ----------
    labels : ndarray, shape (x, y, z)
        Integer-valued labels (any real dtype; NaN/inf count as 0).
    indices : sequence of int
        The regions' label values, in the order of the columns.
    background : int, default=0
        Label value of no region.

    Returns
    -------
    weights : scipy.sparse.csr_matrix of float64, shape (x * y * z, k)
        ``weights[j, r] = 1`` when voxel ``j`` (Fortran order) has label
        ``indices[r]``.  Label values not in ``indices`` are left out.

    Raises
    ------
    ValueError
        If ``indices`` are not distinct integers without ``background``, or a
        label value is not an integer.
    """
    labels = np.asanyarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be a 3D array, got shape {labels.shape}")
    indices = _check_indices(indices, background)
    voxels, regions, _ = _group_voxels(labels.reshape(-1, order="F"), indices, background)
    return sparse.csr_matrix((np.ones(voxels.size), (voxels, regions)),
                             shape=(labels.size, indices.size))


def coverage_matrix(weights, atlas_shape, atlas_affine, target_shape, target_affine):
    """Where the weight of each region lands on a target grid.

    Parameters
    ----------
    weights : scipy.sparse matrix, shape (n_atlas_voxels, k)
        Non-negative finite weights of the regions on the atlas grid, voxels
        in Fortran order (``n_atlas_voxels = prod(atlas_shape)``).
    atlas_shape : tuple of 3 int
    atlas_affine : array-like, shape (4, 4)
        Voxel-to-world affine of the atlas grid.
    target_shape : tuple of int
        Spatial shape of the run (a longer tuple is cut to 3 entries).
    target_affine : array-like, shape (4, 4)
        Voxel-to-world affine of the run.

    Returns
    -------
    C : scipy.sparse.csr_matrix of float64, shape (k, n_target_voxels)
        ``C[r, v]``: the weight of region ``r`` whose atlas voxel centres are
        nearest to target voxel ``v`` (Fortran order).  Atlas voxels whose
        nearest target voxel is outside the target grid are dropped.
    totals : ndarray of float64, shape (k,)
        The column sums of ``weights`` (including the weight that falls
        outside the target grid).

    Raises
    ------
    ValueError
        On malformed shapes or affines, or negative or non-finite weights.

    Notes
    -----
    Atlas voxel ``(i, j, k)`` goes to the target voxel
    ``numpy.rint(inv(target_affine) @ atlas_affine @ (i, j, k, 1))``: rounding
    to nearest, **ties to even** (a centre exactly halfway between two
    target voxels, e.g. a 1 mm atlas on a grid shifted by half a voxel, goes
    to the even index; ``-0.5`` rounds to 0, inside the grid).

    Memory: O(nnz(weights)) -- one target index per atlas voxel that carries
    weight, and a sparse product; no dense (voxels x regions) array.
    """
    atlas_shape = _shape3(atlas_shape, "atlas_shape")
    target_shape = _shape3(target_shape, "target_shape")
    atlas_affine = _affine(atlas_affine, "atlas_affine")
    target_affine = _affine(target_affine, "target_affine")
    weights = sparse.csr_matrix(weights, dtype=np.float64)  # rows: atlas voxels (no copy
    # when already CSR float64: never modified below)
    n_atlas = int(np.prod(atlas_shape))
    if weights.shape[0] != n_atlas:
        raise ValueError(f"weights must have {n_atlas} rows (atlas voxels), "
                         f"got shape {weights.shape}")
    if weights.nnz and (not np.all(np.isfinite(weights.data)) or weights.data.min() < 0):
        raise ValueError("weights must be finite and non-negative")

    rows = np.flatnonzero(np.diff(weights.indptr))  # atlas voxels with weight
    target = _nearest_voxel(rows, atlas_shape, atlas_affine, target_shape, target_affine)
    inside = target >= 0
    n_target = int(np.prod(target_shape))
    # one-hot (atlas voxel -> target voxel) map of the voxels that land inside
    mapping = sparse.csr_matrix((np.ones(int(inside.sum())), (rows[inside], target[inside])),
                                shape=(n_atlas, n_target))
    coverage = sparse.csr_matrix(weights.T.tocsr() @ mapping)
    coverage.sum_duplicates()
    coverage.eliminate_zeros()
    totals = np.asarray(weights.sum(axis=0), dtype=np.float64).reshape(-1)
    return coverage, totals


def region_coverage(C, totals, mask_flat):
    """Share of each region inside a run's brain mask.

    Parameters
    ----------
    C : scipy.sparse matrix, shape (k, n_target_voxels)
        From :func:`coverage_matrix`.
    totals : array-like, shape (k,)
        From :func:`coverage_matrix`.
    mask_flat : array-like of bool, shape (n_target_voxels,)
        The run's brain mask, Fortran order (e.g.
        ``mask.reshape(-1, order="F")``).

    Returns
    -------
    coverage : ndarray of float64, shape (k,)
        ``(C @ mask_flat) / totals``, in [0, 1] (clipped against rounding); 0
        for regions with a total weight of 0.
    """
    C = sparse.csr_matrix(C)
    totals = np.asarray(totals, dtype=np.float64).reshape(-1)
    mask_flat = np.asarray(mask_flat).reshape(-1)
    if mask_flat.size != C.shape[1]:
        raise ValueError(f"mask_flat must have {C.shape[1]} values, got {mask_flat.size}")
    if totals.size != C.shape[0]:
        raise ValueError(f"totals must have {C.shape[0]} values, got {totals.size}")
    covered = C @ mask_flat.astype(bool).astype(np.float64)
    coverage = np.zeros(totals.size)
    has_weight = totals > 0
    coverage[has_weight] = covered[has_weight] / totals[has_weight]
    return np.clip(coverage, 0.0, 1.0)


# -- helpers ------------------------------------------------------------------


def _nearest_voxel(rows, atlas_shape, atlas_affine, target_shape, target_affine):
    """Fortran-order index of the target voxel nearest to each atlas voxel of
    ``rows`` (Fortran-order indices), -1 outside the target grid."""
    to_target = np.linalg.inv(target_affine) @ atlas_affine
    ijk = np.stack(np.unravel_index(rows, atlas_shape, order="F")).astype(np.float64)
    xyz = np.rint(to_target[:3, :3] @ ijk + to_target[:3, 3:4])
    del ijk
    size = np.array(target_shape, dtype=np.float64)[:, None]
    inside = np.all((xyz >= 0) & (xyz < size), axis=0)
    target = np.full(rows.size, -1, dtype=np.int64)
    xyz = xyz[:, inside].astype(np.int64)
    target[inside] = np.ravel_multi_index(tuple(xyz), target_shape, order="F")
    return target


def _shape3(shape, name):
    shape = tuple(int(s) for s in tuple(shape)[:3])
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{name} must hold 3 positive sizes, got {shape}")
    return shape


def _affine(affine, name):
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"{name} must be a 4x4 matrix, got shape {affine.shape}")
    return affine
