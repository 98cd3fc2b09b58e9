"""The embedded demo cohort: determinism, shapes, and a known ground truth."""

import numpy as np

from cohort_connectome import demo
from cohort_connectome.template import brain_mask


def test_design_is_deterministic_and_varied():
    a, b = demo.demo_design(8, 7), demo.demo_design(8, 7)
    assert a.equals(b)
    assert set(a["group"]) == {"control", "patient"}
    assert (a["group"] == "control").sum() == 4
    assert a["t_r"].nunique() >= 2 and a["n_volumes"].nunique() >= 2
    assert not a.equals(demo.demo_design(8, 8))


def test_atlas_maps_are_overlapping_smooth_and_in_brain():
    maps = demo.evaluate_maps(demo.ATLAS_SHAPE, demo.ATLAS_AFFINE)
    assert maps.shape == demo.ATLAS_SHAPE + (30,)
    support = maps > 0
    assert support.any(axis=(0, 1, 2)).all()  # every map has voxels
    assert (support.sum(axis=-1) > 1).sum() > 0.1 * support.any(axis=-1).sum()  # overlap
    assert not (support.any(axis=-1) & ~brain_mask(demo.ATLAS_SHAPE, demo.ATLAS_AFFINE)).any()
    assert 0.3 <= maps.max(axis=(0, 1, 2)).min() and maps.max() <= 0.6


def test_ground_truth_is_sparse_spd_and_groups_differ():
    truths = demo.ground_truth_precisions(1)
    for precision in truths.values():
        np.testing.assert_allclose(precision, precision.T)
        np.testing.assert_allclose(np.diag(precision), 1.0)
        assert np.linalg.eigvalsh(precision)[0] > 0
        off = precision[np.triu_indices(30, 1)]
        assert 0.03 < np.mean(off != 0) < 0.2
    changed = truths["control"] != truths["patient"]
    assert changed.any()


def test_simulated_run_shapes_and_determinism():
    design = demo.demo_design(2, 5)
    row = design.iloc[1]
    precision = demo.ground_truth_precisions(5)[row["group"]]
    data, affine, confounds, signals = demo.simulate_run(row, precision, seed=5)
    assert data.shape == demo.RUN_SHAPE + (row["n_volumes"],) and data.dtype == np.float32
    assert list(confounds.columns) == list(demo.CONFOUND_NAMES)
    assert len(confounds) == row["n_volumes"] == len(signals)
    outside = ~brain_mask(demo.RUN_SHAPE, affine)
    assert not data[outside].any()
    again = demo.simulate_run(row, precision, seed=5)[0]
    np.testing.assert_array_equal(data, again)
    # the region signals follow the true covariance
    empirical = np.corrcoef(signals.T)
    covariance = np.linalg.inv(precision)
    d = np.sqrt(np.diag(covariance))
    assert np.abs(empirical - covariance / np.outer(d, d)).max() < 0.35
