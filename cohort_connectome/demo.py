"""The embedded demo cohort: a synthetic resting-state study with a known answer.

Everything is generated from one seed, offline:

- a probabilistic atlas of overlapping smooth maps (Gaussian blobs at
  textbook MNI coordinates, clipped to the brain) on a 4 mm grid, with a labels
  table (name, network, x, y, z);
- a ground-truth sparse precision matrix per phenotype group (the patient
  group differs from the control group on a few edges);
- per subject, a 4D run on an MNI-like 3 mm grid (x flipped, as in the
  ADHD-200 data), with its own length and repetition time.  Inside the brain
  mask each voxel is

      baseline + gain * sum_k map_k(v) s_k(t) + sum_c B_c(v) m_c(t)
               + drift(v, t) + noise

  where the region signals ``s`` are drawn from N(0, inv(precision)) with
  AR(1) temporal autocorrelation, ``m`` are six motion-like confounds (written
  to the confounds TSV) and ``B_c`` smooth spatial patterns.

The maps that generate the data are the blob functions evaluated on the run
grid; the atlas the pipeline receives is the same functions sampled on the
4 mm grid, so the pipeline's resampling is exercised as with real data.
"""

import numpy as np
import pandas as pd

from .template import brain_mask, world_coordinates

#: The run grid: 3 mm, x flipped, cropped to the brain.
RUN_SHAPE = (49, 61, 48)
RUN_AFFINE = np.array([[-3.0, 0.0, 0.0, 72.0],
                       [0.0, 3.0, 0.0, -108.0],
                       [0.0, 0.0, 3.0, -60.0],
                       [0.0, 0.0, 0.0, 1.0]])
#: The atlas grid: 4 mm, the MSDL atlas geometry.
ATLAS_SHAPE = (40, 48, 35)
ATLAS_AFFINE = np.array([[4.0, 0.0, 0.0, -78.0],
                         [0.0, 4.0, 0.0, -111.0],
                         [0.0, 0.0, 4.0, -51.0],
                         [0.0, 0.0, 0.0, 1.0]])

#: (name, network, x, y, z): the demo atlas regions.
REGIONS = (
    ("PCC", "DMN", 0, -52, 28), ("mPFC", "DMN", 0, 50, 4),
    ("L AG", "DMN", -46, -66, 32), ("R AG", "DMN", 48, -64, 32),
    ("L LTC", "DMN", -60, -22, -12), ("R LTC", "DMN", 60, -20, -12),
    ("L V1", "Visual", -10, -90, 2), ("R V1", "Visual", 12, -88, 2),
    ("L LOC", "Visual", -42, -78, -4), ("R LOC", "Visual", 44, -76, -4),
    ("Cuneus", "Visual", 0, -78, 26),
    ("L M1", "Motor", -38, -22, 56), ("R M1", "Motor", 38, -22, 56),
    ("SMA", "Motor", 0, -8, 58), ("L S2", "Motor", -54, -26, 22),
    ("R S2", "Motor", 54, -26, 22),
    ("L A1", "Auditory", -48, -20, 8), ("R A1", "Auditory", 50, -18, 8),
    ("L STG", "Auditory", -58, -6, 0), ("R STG", "Auditory", 58, -4, 0),
    ("dACC", "Salience", 0, 20, 36), ("L AI", "Salience", -36, 16, 2),
    ("R AI", "Salience", 38, 18, 2), ("L SMG", "Salience", -58, -42, 32),
    ("L DLPFC", "Frontoparietal", -44, 30, 32), ("R DLPFC", "Frontoparietal", 44, 30, 32),
    ("L IPS", "Frontoparietal", -36, -56, 46), ("R IPS", "Frontoparietal", 36, -56, 46),
    ("Precuneus", "Frontoparietal", 0, -64, 50), ("Cerebellum", "Cerebellar", 0, -62, -34),
)

#: Blob width (mm) and the fraction of the peak below which a map is zero.
BLOB_SIGMA_MM = 9.0
BLOB_CUTOFF = 0.05

GROUPS = ("control", "patient")
_TR_CYCLE = (2.0, 2.5, 1.5, 2.0)
CONFOUND_NAMES = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")


def _rng(seed, *keys):
    """An independent generator for each (seed, keys) pair."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, keys)]))


def demo_design(n_subjects=8, seed=0):
    """Per-subject design of the demo cohort.

    Parameters
    ----------
    n_subjects : int
        Number of subjects (≥ 2); they alternate between the two groups.
    seed : int

    Returns
    -------
    pandas.DataFrame
        Columns ``participant_id`` (``"01"``, ``"02"``, ...), ``group``,
        ``age``, ``sex``, ``n_volumes``, ``t_r``.
    """
    if int(n_subjects) < 2:
        raise ValueError(f"the demo cohort needs at least 2 subjects, got {n_subjects}")
    rng = _rng(seed, 1)
    rows = []
    for k in range(int(n_subjects)):
        rows.append({
            "participant_id": f"{k + 1:02d}",
            "group": GROUPS[k % 2],
            "age": int(rng.integers(8, 18)),
            "sex": "F" if rng.random() < 0.5 else "M",
            "n_volumes": int(rng.integers(15, 23) * 10),
            "t_r": _TR_CYCLE[k % len(_TR_CYCLE)],
        })
    return pd.DataFrame(rows)


def demo_labels():
    """The labels table of the demo atlas (name, network, x, y, z)."""
    return pd.DataFrame(REGIONS, columns=["name", "network", "x", "y", "z"])


def evaluate_maps(shape, affine):
    """The demo atlas maps evaluated at the voxel centres of a grid.

    Parameters
    ----------
    shape : tuple of int
    affine : ndarray, shape (4, 4)

    Returns
    -------
    maps : ndarray, shape shape[:3] + (n_regions,), float32
        Gaussian blobs (peak 0.3–0.6) zeroed below 5 % of their peak and
        outside the schematic brain.
    """
    xyz = world_coordinates(shape, affine)
    inside = brain_mask(shape, affine)
    peaks = 0.3 + 0.3 * _rng(0, 2).random(len(REGIONS))
    maps = np.zeros(tuple(shape[:3]) + (len(REGIONS),), dtype=np.float32)
    for k, (_, _, x, y, z) in enumerate(REGIONS):
        d2 = np.sum((xyz - np.array([x, y, z], dtype=float)) ** 2, axis=-1)
        blob = np.exp(-0.5 * d2 / BLOB_SIGMA_MM ** 2)
        blob[(blob < BLOB_CUTOFF) | ~inside] = 0.0
        maps[..., k] = peaks[k] * blob
    return maps


def ground_truth_precisions(seed=0):
    """Sparse ground-truth precision matrices, one per group.

    The control precision has unit diagonal and about two edges per region,
    mostly within networks, with off-diagonal entries of magnitude 0.3–0.5
    (before the diagonal shift that keeps it positive definite).
    The patient precision lacks three within-DMN edges of the control one
    and has an extra DMN–Salience edge.

    Returns
    -------
    dict
        ``{"control": ndarray (n, n), "patient": ndarray (n, n)}``.
    """
    rng = _rng(seed, 3)
    networks = [r[1] for r in REGIONS]
    n = len(REGIONS)
    precision = np.eye(n)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    same = [p for p in pairs if networks[p[0]] == networks[p[1]]]
    other = [p for p in pairs if networks[p[0]] != networks[p[1]]]
    chosen = [same[i] for i in rng.choice(len(same), size=int(0.4 * len(same)),
                                          replace=False)]
    chosen += [other[i] for i in rng.choice(len(other), size=n // 2, replace=False)]
    for i, j in sorted(chosen):
        value = rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.5)
        precision[i, j] = precision[j, i] = value
    precision = _make_positive_definite(precision)
    patient = precision.copy()
    dmn = [k for k, net in enumerate(networks) if net == "DMN"]
    dmn_edges = [(i, j) for i in dmn for j in dmn if i < j and precision[i, j] != 0]
    for i, j in dmn_edges[:3]:
        patient[i, j] = patient[j, i] = 0.0
    salience = [k for k, net in enumerate(networks) if net == "Salience"]
    i, j = dmn[0], salience[0]
    patient[i, j] = patient[j, i] = 0.3 if precision[i, j] == 0 else precision[i, j]
    patient = _make_positive_definite(patient)
    return {"control": precision, "patient": patient}


def _make_positive_definite(precision, min_eigenvalue=0.2):
    """Shift the diagonal so the smallest eigenvalue is at least ``min_eigenvalue``,
    then rescale to unit diagonal (the sparsity pattern is unchanged)."""
    smallest = np.linalg.eigvalsh(precision)[0]
    if smallest < min_eigenvalue:
        precision = precision + (min_eigenvalue - smallest) * np.eye(len(precision))
    d = np.sqrt(np.diag(precision))
    return precision / np.outer(d, d)


def simulate_region_signals(precision, n_volumes, rng, ar_coefficient=0.3):
    """Region signals with covariance inv(precision) and AR(1) autocorrelation.

    Returns
    -------
    ndarray, shape (n_volumes, n_regions)
    """
    covariance = np.linalg.inv(precision)
    chol = np.linalg.cholesky(covariance)
    innovations = rng.standard_normal((n_volumes, len(precision))) @ chol.T
    signals = np.empty_like(innovations)
    signals[0] = innovations[0]
    scale = np.sqrt(1.0 - ar_coefficient ** 2)
    for t in range(1, n_volumes):
        signals[t] = ar_coefficient * signals[t - 1] + scale * innovations[t]
    return signals


def simulate_confounds(n_volumes, rng):
    """Six motion-like parameters (mm for translations, radians for rotations):
    smoothed random walks around zero."""
    steps = rng.standard_normal((n_volumes, 6))
    walk = np.cumsum(steps, axis=0) / np.sqrt(n_volumes)
    kernel = np.ones(3) / 3.0
    walk = np.column_stack([np.convolve(walk[:, c], kernel, mode="same") for c in range(6)])
    walk -= walk.mean(axis=0)
    scales = np.array([0.3, 0.3, 0.4, 0.004, 0.004, 0.003])
    return pd.DataFrame(walk * scales, columns=list(CONFOUND_NAMES))


def simulate_run(design_row, precision, seed=0, gain=25.0, noise_sd=8.0,
                 baseline=1000.0):
    """Simulate one subject's 4D run and its confounds table.

    Parameters
    ----------
    design_row : mapping
        One row of `demo_design` (needs ``participant_id``, ``n_volumes``, ``t_r``).
    precision : ndarray, shape (n_regions, n_regions)
        The subject's ground-truth precision.
    seed : int
    gain, noise_sd, baseline : float
        Signal amplitude per unit map weight, voxel noise SD, baseline.

    Returns
    -------
    data : ndarray, shape RUN_SHAPE + (n_volumes,), float32
    affine : ndarray, shape (4, 4)
    confounds : pandas.DataFrame, shape (n_volumes, 6)
    region_signals : ndarray, shape (n_volumes, n_regions)
    """
    n_volumes = int(design_row["n_volumes"])
    rng = _rng(seed, 4, int(design_row["participant_id"]))
    mask = brain_mask(RUN_SHAPE, RUN_AFFINE)
    maps = evaluate_maps(RUN_SHAPE, RUN_AFFINE)[mask]  # (n_voxels, n_regions)
    xyz = world_coordinates(RUN_SHAPE, RUN_AFFINE)[mask] / 70.0
    n_voxels = len(maps)

    signals = simulate_region_signals(precision, n_volumes, rng)
    confounds = simulate_confounds(n_volumes, rng)
    # smooth spatial patterns of each confound's effect: gradients plus a
    # radial term, like the intensity changes that head motion leaves
    basis = np.column_stack([xyz, np.sum(xyz ** 2, axis=1) - 1.0])
    weights = rng.standard_normal((basis.shape[1], 6))
    per_unit = np.array([20.0, 20.0, 15.0, 1500.0, 1500.0, 2000.0])
    confound_maps = basis @ weights * per_unit  # (n_voxels, 6)

    t = np.arange(n_volumes) / max(n_volumes - 1, 1)
    drift = np.column_stack([t - 0.5, np.cos(np.pi * t)])
    drift_maps = rng.normal(0.0, [6.0, 4.0], size=(n_voxels, 2))

    voxel_baseline = baseline * (1.0 + 0.1 * rng.standard_normal(n_voxels))
    series = (gain * maps) @ signals.T
    series += confound_maps @ confounds.to_numpy().T
    series += drift_maps @ drift.T
    series += noise_sd * rng.standard_normal((n_voxels, n_volumes))
    series += voxel_baseline[:, None]

    data = np.zeros(RUN_SHAPE + (n_volumes,), dtype=np.float32)
    data[mask] = series
    return data, RUN_AFFINE.copy(), confounds, signals
