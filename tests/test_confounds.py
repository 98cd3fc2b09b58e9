"""Tests of cohort_connectome.confounds against nilearn 0.13.1's ``load_confounds``.

nilearn is the oracle, never a dependency of the package.  The fMRIPrep
tables are the real ones shipped in nilearn's wheel
(``nilearn/interfaces/fmriprep/data``); ``load_confounds`` finds them from a
BOLD file name, so each is copied into a temporary folder as
``sub-01_ses-1_task-rest_desc-confounds_timeseries.tsv`` (+ its JSON sidecar)
beside the (never created) ``sub-01_ses-1_task-rest_desc-preproc_bold.nii.gz``.

The ADHD-200 tables have no oracle of their own: they are checked against
numpy, and — rewritten in fMRIPrep form with numpy-computed expansions and FD
— against ``load_confounds`` too.
"""

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohort_connectome import confounds as C
from cohort_connectome.errors import InputError
from conftest import relative_error

TOL = 1e-12
BOLD_NAME = "sub-01_ses-1_task-rest_desc-preproc_bold.nii.gz"
CONFOUNDS_NAME = "sub-01_ses-1_task-rest_desc-confounds_timeseries"

#: fMRIPrep tables of nilearn's wheel: key -> (tsv stem, json stem)
FMRIPREP_TABLES = {
    # fMRIPrep 1.4: 189 columns, 1 non-steady-state volume, 57 combined aCompCor
    "v14": ("test_desc-confounds_regressors", "test_desc-confounds_regressors"),
    # fMRIPrep 21: 84 columns, 3 non-steady-state volumes, large motion
    "v21": ("test-v21_desc-confounds_timeseries", "test-v21_desc-confounds_timeseries"),
    # fMRIPrep 1.4 without non-steady-state column
    "no-nss": ("no_nonsteady_desc-confounds_regressors", "test_desc-confounds_regressors"),
}

#: our strategy -> nilearn load_confounds keyword arguments
NILEARN_STRATEGY = {
    "6P": dict(strategy=["motion"], motion="basic"),
    "24P": dict(strategy=["motion"], motion="full"),
    "36P": dict(strategy=["motion", "wm_csf", "global_signal"], motion="full",
                wm_csf="full", global_signal="full"),
    "acompcor": dict(strategy=["high_pass", "motion", "compcor"], motion="full",
                     compcor="anat_combined", n_compcor="all"),
}

ADHD_COUNTS = {"6P": 6, "24P": 24, "36P": 36, "acompcor": 29}


# --------------------------------------------------------------------------
# helpers and fixtures
# --------------------------------------------------------------------------


def nilearn_data_dir():
    import nilearn.interfaces.fmriprep as fmriprep

    return Path(fmriprep.__file__).parent / "data"


def nilearn_load(bold, **kwargs):
    """``nilearn.interfaces.fmriprep.load_confounds(bold, **kwargs)``, its
    warnings silenced, with a None sample mask turned into all volumes."""
    from nilearn.interfaces.fmriprep import load_confounds

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conf, mask = load_confounds(str(bold), **kwargs)
    n_volumes = len(conf)
    return conf, (np.arange(n_volumes) if mask is None else np.asarray(mask))


def place(folder, table_path, json_path=None):
    """Copy a confounds table (+ sidecar) under the fMRIPrep name; return the
    BOLD path load_confounds needs and the table path."""
    folder.mkdir(parents=True, exist_ok=True)
    tsv = folder / f"{CONFOUNDS_NAME}.tsv"
    shutil.copy(table_path, tsv)
    if json_path is not None:
        shutil.copy(json_path, folder / f"{CONFOUNDS_NAME}.json")
    return folder / BOLD_NAME, tsv


@pytest.fixture(scope="module")
def fmriprep(tmp_path_factory):
    """key -> (bold path, table path) of nilearn's shipped fMRIPrep tables."""
    data = nilearn_data_dir()
    root = tmp_path_factory.mktemp("fmriprep")
    return {key: place(root / key, data / f"{tsv}.tsv", data / f"{js}.json")
            for key, (tsv, js) in FMRIPREP_TABLES.items()}


def with_columns(tmp_path, key, fmriprep, update=None, drop=()):
    """A modified copy of a shipped table (n/a written back as n/a)."""
    _, tsv = fmriprep[key]
    table = pd.read_csv(tsv, sep="\t", na_values=["n/a"])
    table = table.drop(columns=list(drop))
    if update:
        table = pd.concat([table, pd.DataFrame(update)], axis=1)
    folder = tmp_path / f"{key}-modified"
    folder.mkdir()
    out = folder / f"{CONFOUNDS_NAME}.tsv"
    table.to_csv(out, sep="\t", index=False, na_rep="n/a")
    shutil.copy(tsv.with_suffix(".json"), folder / f"{CONFOUNDS_NAME}.json")
    return folder / BOLD_NAME, out


def adhd_as_fmriprep(table, radius=50.0):
    """An ADHD-200 table rewritten as fMRIPrep would write it, by plain numpy:
    fMRIPrep names, backward-difference derivatives with n/a on row 0,
    squares, rotations in radians for FD, FD with n/a on row 0, std_dvars 0.
    """
    base = {
        "trans_x": table["motion-x"], "trans_y": table["motion-y"],
        "trans_z": table["motion-z"], "rot_x": table["motion-pitch"],
        "rot_y": table["motion-yaw"], "rot_z": table["motion-roll"],
        "white_matter": table["wm"], "csf": table["csf"],
        "global_signal": table["global"],
    }
    out = {}
    for name, column in base.items():
        x = column.to_numpy(dtype=float)
        d = np.concatenate(([np.nan], x[1:] - x[:-1]))
        out[name] = x
        out[f"{name}_derivative1"] = d
        out[f"{name}_power2"] = x * x
        out[f"{name}_derivative1_power2"] = d * d
    trans = table[["motion-x", "motion-y", "motion-z"]].to_numpy(dtype=float)
    rot = np.radians(table[["motion-pitch", "motion-roll", "motion-yaw"]].to_numpy(float))
    fd = np.full(len(table), np.nan)
    for t in range(1, len(table)):
        fd[t] = (np.abs(trans[t] - trans[t - 1]).sum()
                 + radius * np.abs(rot[t] - rot[t - 1]).sum())
    out["framewise_displacement"] = fd
    out["std_dvars"] = np.zeros(len(table))
    return pd.DataFrame(out)


def kept_by_rule(fd, threshold, min_segment, n_dummy=0):
    """Plain-python statement of the scrubbing rule, independent of both codes."""
    n = len(fd)
    bad = [bool(np.isfinite(v) and v > threshold) for v in fd]
    if any(bad) and min_segment > 0:
        t = 0
        while t < n:
            if bad[t]:
                t += 1
                continue
            start = t
            while t < n and not bad[t]:
                t += 1
            if t - start < min_segment:
                for k in range(start, t):
                    bad[k] = True
    return [t for t in range(n) if not bad[t] and t >= n_dummy]


# --------------------------------------------------------------------------
# strategies on fMRIPrep tables: parity with load_confounds
# --------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(FMRIPREP_TABLES))
@pytest.mark.parametrize("strategy", ["6P", "24P", "36P", "acompcor"])
def test_strategy_matches_load_confounds(fmriprep, key, strategy):
    """Mirrors ``load_confounds(bold, **NILEARN_STRATEGY[strategy],
    demean=False)`` (its ``cosineNN`` columns dropped for acompcor): same
    names, same order, same values, row 0 filled from row 1."""
    bold, tsv = fmriprep[key]
    reference, _ = nilearn_load(bold, demean=False, **NILEARN_STRATEGY[strategy])
    reference = reference[[c for c in reference.columns if not c.startswith("cosine")]]
    values, names = C.select_confounds(C.load_confounds_table(tsv), strategy)
    assert names == list(reference.columns)
    assert values.shape == reference.shape
    assert not np.isnan(values).any()
    assert relative_error(values, reference.to_numpy()) < TOL


def test_strategy_column_counts(fmriprep):
    """Counts of ``load_confounds`` for the three motion models and for
    ``compcor="anat_combined"`` on the fMRIPrep 1.4 / 21 sidecars (57 / 5
    combined-mask components; the WM and CSF ones are left out)."""
    for key, n_compcor in (("v14", 57), ("v21", 5)):
        table = C.load_confounds_table(fmriprep[key][1])
        counts = {s: len(C.select_confounds(table, s)[1]) for s in C.STRATEGIES}
        assert counts == {"none": 0, "6P": 6, "24P": 24, "36P": 36,
                          "acompcor": 24 + n_compcor}
        names = C.select_confounds(table, "acompcor")[1]
        assert not any(n.startswith(("w_comp", "c_comp", "t_comp")) for n in names)


@pytest.mark.parametrize("key", ["v14", "v21"])
def test_demean_matches_load_confounds(fmriprep, key):
    """Mirrors ``load_confounds(bold, strategy=["motion", "wm_csf",
    "global_signal"], ..., demean=True)``: the mean over the volumes kept by
    the non-steady-state columns is subtracted."""
    bold, tsv = fmriprep[key]
    reference, mask = nilearn_load(bold, demean=True, **NILEARN_STRATEGY["36P"])
    table = C.load_confounds_table(tsv)
    ours_mask, _ = C.censor_table(table)
    np.testing.assert_array_equal(ours_mask, mask)
    values, names = C.select_confounds(table, "36P", demean=True, sample_mask=ours_mask)
    assert names == list(reference.columns)
    assert relative_error(values, reference.to_numpy()) < TOL
    # the mean is over the kept volumes, not all of them
    assert np.abs(values[ours_mask].mean(axis=0)).max() < 1e-9 * np.abs(values).max()
    assert np.abs(values.mean(axis=0)).max() > 1e-6 * np.abs(values).max()


def test_demean_without_sample_mask_matches_load_confounds(fmriprep):
    """Mirrors ``load_confounds(bold, strategy=["motion"], motion="full",
    demean=True)`` on a table without non-steady-state column (nilearn's
    sample_mask is None: sklearn's ``scale(with_std=False)``)."""
    bold, tsv = fmriprep["no-nss"]
    reference, _ = nilearn_load(bold, demean=True, **NILEARN_STRATEGY["24P"])
    values, names = C.select_confounds(C.load_confounds_table(tsv), "24P", demean=True)
    assert names == list(reference.columns)
    assert relative_error(values, reference.to_numpy()) < TOL


def test_demean_over_scrubbed_volumes_matches_load_confounds(fmriprep):
    """Mirrors ``load_confounds(bold, strategy=["motion", "scrub"],
    motion="full", scrub=0, fd_threshold=0.1, std_dvars_threshold=None,
    demean=True)``: the mean is over the volumes the scrubbing keeps."""
    bold, tsv = fmriprep["v14"]
    reference, mask = nilearn_load(bold, strategy=["motion", "scrub"], motion="full",
                                   scrub=0, fd_threshold=0.1, std_dvars_threshold=None,
                                   demean=True)
    table = C.load_confounds_table(tsv)
    ours_mask, _ = C.censor_table(table, fd_threshold=0.1)
    np.testing.assert_array_equal(ours_mask, mask)
    assert 5 < len(mask) < len(table) - 5
    values, names = C.select_confounds(table, "24P", demean=True, sample_mask=ours_mask)
    assert names == list(reference.columns)
    assert relative_error(values, reference.to_numpy()) < TOL


def test_missing_expansions_are_computed_as_fmriprep_does(tmp_path, fmriprep):
    """A table without its expansion columns gives the values nilearn's
    ``load_confounds(bold, strategy=["motion", "wm_csf", "global_signal"],
    ..., demean=False)`` reads from the full table."""
    bold, _ = fmriprep["no-nss"]
    reference, _ = nilearn_load(bold, demean=False, **NILEARN_STRATEGY["36P"])
    _, tsv = fmriprep["no-nss"]
    full = C.load_confounds_table(tsv)
    expansions = [c for c in full.columns if c.endswith(("_derivative1", "_power2"))]
    assert len(expansions) == 27
    stripped = full.drop(columns=expansions)
    values, names = C.select_confounds(stripped, "36P")
    assert names == list(reference.columns)
    assert relative_error(values, reference.to_numpy()) < 1e-9


def test_n_compcor_matches_load_confounds(fmriprep):
    """Mirrors ``load_confounds(bold, strategy=["high_pass", "motion",
    "compcor"], motion="basic", compcor="anat_combined", n_compcor=3)``."""
    bold, tsv = fmriprep["v14"]
    reference, _ = nilearn_load(bold, strategy=["high_pass", "motion", "compcor"],
                                motion="basic", compcor="anat_combined", n_compcor=3,
                                demean=False)
    compcor = [c for c in reference.columns if "comp_cor" in c]
    assert len(compcor) == 3
    values, names = C.select_confounds(C.load_confounds_table(tsv), "acompcor",
                                       n_compcor=3)
    ours = dict(zip(names, values.T))
    for name in compcor:
        np.testing.assert_array_equal(ours[name], reference[name].to_numpy())
    assert [n for n in names if "comp_cor" in n] == compcor


# --------------------------------------------------------------------------
# censoring: parity with load_confounds(strategy=["motion", "scrub"])
# --------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(FMRIPREP_TABLES))
def test_sample_mask_matches_load_confounds(fmriprep, key):
    """Mirrors ``load_confounds(bold, strategy=["motion", "scrub"],
    scrub=min_segment, fd_threshold=threshold, std_dvars_threshold=None)``
    over a grid of thresholds (from censoring nothing to censoring all) and
    segment lengths; non-steady-state volumes are removed in both."""
    bold, tsv = fmriprep[key]
    table = C.load_confounds_table(tsv)
    fd = table["framewise_displacement"].to_numpy()
    thresholds = [float(np.nanquantile(fd, q)) for q in (0.1, 0.3, 0.5, 0.8)]
    thresholds += [0.0, float(np.nanmax(fd)) + 1.0]
    sizes = set()
    for threshold in thresholds:
        for min_segment in (0, 1, 3, 5, 10):
            _, reference = nilearn_load(bold, strategy=["motion", "scrub"],
                                        scrub=min_segment, fd_threshold=threshold,
                                        std_dvars_threshold=None)
            ours, _ = C.censor_table(table, fd_threshold=threshold,
                                     min_segment=min_segment)
            assert ours.dtype == np.int64
            np.testing.assert_array_equal(ours, reference,
                                          err_msg=f"{threshold=} {min_segment=}")
            sizes.add(len(reference))
    assert min(sizes) == 0 and max(sizes) >= len(table) - 3 and len(sizes) >= 5


def test_many_censored_volumes_v21(fmriprep):
    """Mirrors ``load_confounds(bold, strategy=["motion", "scrub"], scrub=5,
    fd_threshold=1.0, std_dvars_threshold=None)`` on the fMRIPrep 21 table
    (large motion): most volumes go, the 3 non-steady-state ones included."""
    bold, tsv = fmriprep["v21"]
    _, reference = nilearn_load(bold, strategy=["motion", "scrub"], scrub=5,
                                fd_threshold=1.0, std_dvars_threshold=None)
    ours, fd = C.censor_table(C.load_confounds_table(tsv), fd_threshold=1.0,
                              min_segment=5)
    np.testing.assert_array_equal(ours, reference)
    assert 0 < len(ours) < 15
    assert not set(ours) & {0, 1, 2}
    assert ours.tolist() == kept_by_rule(fd, 1.0, 5, n_dummy=3)


@pytest.mark.parametrize("n_dummy", [1, 3, 8])
def test_dummy_scans_equal_non_steady_state_columns(tmp_path, fmriprep, n_dummy):
    """``dummy_scans=d`` on a table without non-steady-state column equals
    ``load_confounds(bold, strategy=["motion", "scrub"], scrub=5,
    fd_threshold=0.1, std_dvars_threshold=None)`` on the same table with d
    ``non_steady_state_outlierNN`` columns flagging volumes 0..d-1: they are
    removed, and do not take part in the segment rule."""
    _, tsv = fmriprep["no-nss"]
    flags = {f"non_steady_state_outlier{k:02d}": (np.arange(30) == k).astype(float)
             for k in range(n_dummy)}
    bold, _ = with_columns(tmp_path, "no-nss", fmriprep, update=flags)
    _, reference = nilearn_load(bold, strategy=["motion", "scrub"], scrub=5,
                                fd_threshold=0.1, std_dvars_threshold=None)
    ours, fd = C.censor_table(C.load_confounds_table(tsv), fd_threshold=0.1,
                              min_segment=5, dummy_scans=n_dummy)
    np.testing.assert_array_equal(ours, reference)
    assert ours.tolist() == kept_by_rule(fd, 0.1, 5, n_dummy=n_dummy)


def test_dummy_scans_merge_with_non_steady_state_columns(tmp_path, fmriprep):
    """The v14 table flags volume 0; ``dummy_scans=3`` on it equals
    ``load_confounds(bold, strategy=["motion", "scrub"], scrub=3,
    fd_threshold=0.12, std_dvars_threshold=None)`` on it with volumes 1 and 2
    flagged too (union, nothing removed twice)."""
    _, tsv = fmriprep["v14"]
    extra = {f"non_steady_state_outlier{k:02d}": (np.arange(30) == k).astype(float)
             for k in (1, 2)}
    bold, _ = with_columns(tmp_path, "v14", fmriprep, update=extra)
    _, reference = nilearn_load(bold, strategy=["motion", "scrub"], scrub=3,
                                fd_threshold=0.12, std_dvars_threshold=None)
    ours, _ = C.censor_table(C.load_confounds_table(tsv), fd_threshold=0.12,
                             min_segment=3, dummy_scans=3)
    np.testing.assert_array_equal(ours, reference)
    assert ours[0] >= 3
    # without scrubbing: only the dummy / non-steady-state volumes go
    ours, _ = C.censor_table(C.load_confounds_table(tsv), dummy_scans=3)
    np.testing.assert_array_equal(ours, np.arange(3, 30))


def test_segment_rule_matches_optimize_scrub():
    """Mirrors nilearn's ``load_confounds_scrub.optimize_scrub(outliers,
    n_scans, scrub)`` (the segment rule of ``load_confounds``) on random
    outlier patterns."""
    from nilearn.interfaces.fmriprep.load_confounds_scrub import optimize_scrub

    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(400):
        n = int(rng.integers(1, 60))
        fd = rng.exponential(1.0, n)
        threshold = float(rng.uniform(0.3, 3.0))
        scrub = int(rng.integers(0, 9))
        outliers = np.flatnonzero(fd > threshold)
        removed = (optimize_scrub(outliers, n, scrub) if scrub > 0 and outliers.size
                   else outliers)
        reference = np.setdiff1d(np.arange(n), removed)
        ours = C.censoring_mask(fd, fd_threshold=threshold, min_segment=scrub)
        np.testing.assert_array_equal(ours, reference)
        checked += int(len(reference) != n - outliers.size)
    assert checked > 50  # the segment rule did remove extra volumes


def test_censoring_mask_edge_cases():
    """NaN FD is never an outlier; no outlier -> no segment rule (nilearn);
    threshold None -> only dummy scans; bad arguments are refused."""
    fd = np.array([np.nan, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1])
    np.testing.assert_array_equal(C.censoring_mask(fd, 0.5), [0, 1, 3, 4, 5, 6])
    np.testing.assert_array_equal(C.censoring_mask(fd, 0.5, min_segment=3),
                                  [3, 4, 5, 6])
    np.testing.assert_array_equal(C.censoring_mask(fd, 0.95, min_segment=100),
                                  np.arange(7))
    np.testing.assert_array_equal(C.censoring_mask(fd, None, dummy_scans=2,
                                                   min_segment=3), np.arange(2, 7))
    np.testing.assert_array_equal(C.censoring_mask(fd, 0.0), [0])
    assert C.censoring_mask(fd, 0.5, dummy_scans=10).size == 0
    for bad in (dict(dummy_scans=-1), dict(min_segment=1.5), dict(fd_threshold=-0.1)):
        with pytest.raises(ValueError):
            C.censoring_mask(fd, **{"fd_threshold": 0.5, **bad})


# --------------------------------------------------------------------------
# framewise displacement
# --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["v21", "no-nss"])
def test_framewise_displacement_matches_fmriprep_column(fmriprep, key):
    """Power's FD (radius 50 mm) of ``trans_* rot_*`` equals the table's
    ``framewise_displacement`` column written by fMRIPrep (row 0: n/a vs 0);
    without the column, the computed FD censors as ``load_confounds(bold,
    strategy=["motion", "scrub"], scrub=3, fd_threshold=median,
    std_dvars_threshold=None)`` does with it."""
    bold, tsv = fmriprep[key]
    table = C.load_confounds_table(tsv)
    fd = C.framewise_displacement(table[list(C.FMRIPREP_MOTION)].to_numpy())
    column = table["framewise_displacement"].to_numpy()
    assert fd[0] == 0 and np.isnan(column[0])
    assert relative_error(fd[1:], column[1:]) < 1e-12
    threshold = float(np.nanmedian(column))
    _, reference = nilearn_load(bold, strategy=["motion", "scrub"], scrub=3,
                                fd_threshold=threshold, std_dvars_threshold=None)
    ours, used = C.censor_table(table.drop(columns=["framewise_displacement"]),
                                fd_threshold=threshold, min_segment=3)
    np.testing.assert_array_equal(ours, reference)
    assert relative_error(used, fd) == 0


# --------------------------------------------------------------------------
# ADHD-200 layout (real regressors)
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adhd_tables(adhd_regressors_paths):
    return {sid: C.load_confounds_table(p, subject=f"sub-{sid}")
            for sid, p in adhd_regressors_paths.items()}


def test_adhd_strategies_against_numpy(adhd_tables):
    """On the 5 real ADHD regressors tables: 6/24/36/29 columns, fMRIPrep
    names, and every derivative / square equal to numpy on the raw columns
    (derivative row 0 = row 1, as nilearn fills it)."""
    mapping = {"trans_x": "motion-x", "trans_y": "motion-y", "trans_z": "motion-z",
               "rot_x": "motion-pitch", "rot_y": "motion-yaw", "rot_z": "motion-roll",
               "white_matter": "wm", "csf": "csf", "global_signal": "global"}
    for sid, table in adhd_tables.items():
        assert C.detect_layout(table) == "adhd"
        for strategy, count in ADHD_COUNTS.items():
            values, names = C.select_confounds(table, strategy)
            assert values.shape == (len(table), count), (sid, strategy)
            assert names == sorted(names) and len(set(names)) == count
        values, names = C.select_confounds(table, "36P")
        got = dict(zip(names, values.T))
        assert set(got) == {f"{p}{s}" for p in mapping for s in
                            ("", "_derivative1", "_power2", "_derivative1_power2")}
        for name, source in mapping.items():
            x = table[source].to_numpy(dtype=float)
            d = np.diff(x)
            np.testing.assert_array_equal(got[name], x)
            np.testing.assert_array_equal(got[f"{name}_power2"], x ** 2)
            np.testing.assert_allclose(got[f"{name}_derivative1"][1:], d, rtol=0, atol=0)
            assert got[f"{name}_derivative1"][0] == d[0]
            np.testing.assert_array_equal(got[f"{name}_derivative1_power2"],
                                          np.concatenate(([d[0]], d)) ** 2)
        values, names = C.select_confounds(table, "acompcor")
        got = dict(zip(names, values.T))
        for k in range(5):
            np.testing.assert_array_equal(got[f"a_comp_cor_{k:02d}"],
                                          table[f"compcor{k + 1}"].to_numpy())
        assert set(names) - {f"a_comp_cor_{k:02d}" for k in range(5)} == \
            set(C.select_confounds(table, "24P")[1])


def test_adhd_framewise_displacement_direct_formula(adhd_tables):
    """FD of the real ADHD motion, radius 50 mm, rotations in degrees:
    ``|Δx|+|Δy|+|Δz| + 50·π/180·(|Δpitch|+|Δroll|+|Δyaw|)``, written out."""
    for sid, table in adhd_tables.items():
        fd = C.table_framewise_displacement(table)
        step = table.diff().abs()
        direct = (step["motion-x"] + step["motion-y"] + step["motion-z"]
                  + 50.0 * np.pi / 180.0 * (step["motion-pitch"] + step["motion-roll"]
                                            + step["motion-yaw"])).to_numpy()
        assert fd[0] == 0
        assert relative_error(fd[1:], direct[1:]) < 1e-12, sid
        qc = C.run_qc(fd, np.arange(len(fd)), t_r=2.0)
        assert qc["mean_fd"] == pytest.approx(np.mean(direct[1:]), rel=1e-12)
        assert qc["seconds_kept"] == 2.0 * len(fd) and qc["n_censored"] == 0


@pytest.mark.parametrize("sid", ["0010042", "0027034"])
def test_adhd_matches_load_confounds_in_fmriprep_form(tmp_path, adhd_tables, sid):
    """The ADHD table rewritten in fMRIPrep form by numpy (expansions, FD in
    radians, n/a on row 0): ``load_confounds(bold, strategy=["motion",
    "wm_csf", "global_signal"], all "full", demean=False)`` gives our 36P of
    the raw table, and ``load_confounds(bold, strategy=["motion", "scrub"],
    scrub=5, fd_threshold=q, std_dvars_threshold=None)`` our censoring."""
    table = adhd_tables[sid]
    converted = adhd_as_fmriprep(table)
    folder = tmp_path / sid
    folder.mkdir()
    converted.to_csv(folder / f"{CONFOUNDS_NAME}.tsv", sep="\t", index=False,
                     na_rep="n/a")
    (folder / f"{CONFOUNDS_NAME}.json").write_text(json.dumps({}))
    bold = folder / BOLD_NAME
    reference, _ = nilearn_load(bold, demean=False, **NILEARN_STRATEGY["36P"])
    values, names = C.select_confounds(table, "36P")
    assert names == list(reference.columns)
    assert relative_error(values, reference.to_numpy()) < 1e-12
    fd = converted["framewise_displacement"].to_numpy()
    counts = set()
    for q in (0.5, 0.8, 0.95):
        threshold = float(np.nanquantile(fd, q))
        _, mask = nilearn_load(bold, strategy=["motion", "scrub"], scrub=5,
                               fd_threshold=threshold, std_dvars_threshold=None)
        ours, _ = C.censor_table(table, fd_threshold=threshold, min_segment=5)
        np.testing.assert_array_equal(ours, mask, err_msg=f"{sid} {q=}")
        counts.add(len(ours))
    assert len(counts) == 3 and min(counts) < len(table) // 2


def test_adhd_dummy_scans_do_not_shorten_segments(tmp_path, adhd_tables):
    """Real ADHD run 0027034 (FD > 0.1 mm first at volume 5): ``dummy_scans=3,
    min_segment=5`` equals ``load_confounds(bold, strategy=["motion",
    "scrub"], scrub=5, fd_threshold=0.1, std_dvars_threshold=None)`` on its
    fMRIPrep form with ``non_steady_state_outlier00..02`` flagging volumes
    0-2: the leading segment 0-4 has 5 volumes, so 3 and 4 are kept although
    only 2 of them follow the dummy scans."""
    table = adhd_tables["0027034"]
    converted = adhd_as_fmriprep(table)
    n = len(table)
    flags = pd.DataFrame({f"non_steady_state_outlier{k:02d}": (np.arange(n) == k) * 1.0
                          for k in range(3)})
    folder = tmp_path / "0027034"
    folder.mkdir()
    pd.concat([converted, flags], axis=1).to_csv(
        folder / f"{CONFOUNDS_NAME}.tsv", sep="\t", index=False, na_rep="n/a")
    (folder / f"{CONFOUNDS_NAME}.json").write_text(json.dumps({}))
    _, reference = nilearn_load(folder / BOLD_NAME, strategy=["motion", "scrub"],
                                scrub=5, fd_threshold=0.1, std_dvars_threshold=None)
    ours, fd = C.censor_table(table, fd_threshold=0.1, min_segment=5, dummy_scans=3)
    assert np.flatnonzero(fd > 0.1)[0] == 5
    np.testing.assert_array_equal(ours, reference)
    assert ours[:2].tolist() == [3, 4]
    assert ours.tolist() == kept_by_rule(fd, 0.1, 5, n_dummy=3)


def test_demean_recentres_large_values_as_sklearn(tmp_path, fmriprep):
    """Mirrors ``load_confounds(bold, strategy=["global_signal"],
    global_signal="basic", demean=True)`` with ``global_signal`` offset by
    1e9: nilearn's ``scale(with_std=False)`` subtracts the residual mean a
    second time, and so do we."""
    _, tsv = fmriprep["no-nss"]
    shifted = pd.read_csv(tsv, sep="\t", na_values=["n/a"])["global_signal"] + 1e9
    bold, path = with_columns(tmp_path, "no-nss", fmriprep,
                              update={"global_signal": shifted.to_numpy()},
                              drop=["global_signal"])
    reference, _ = nilearn_load(bold, strategy=["global_signal"],
                                global_signal="basic", demean=True)
    values, names = C.select_confounds(C.load_confounds_table(path),
                                       columns=["global_signal"], demean=True)
    assert names == list(reference.columns)
    assert relative_error(values, reference.to_numpy()) < 1e-13


# --------------------------------------------------------------------------
# explicit columns, loading, errors
# --------------------------------------------------------------------------


def test_explicit_columns_win_and_none_is_empty(fmriprep):
    """Explicit columns are taken as given (order, names), even with a
    strategy, with nilearn's row-0 fill; "none" gives zero columns."""
    table = C.load_confounds_table(fmriprep["v21"][1])
    values, names = C.select_confounds(table, "36P",
                                       columns=["csf", "trans_x_derivative1"])
    assert names == ["csf", "trans_x_derivative1"]
    np.testing.assert_array_equal(values[:, 0], table["csf"].to_numpy())
    d = table["trans_x_derivative1"].to_numpy()
    assert np.isnan(d[0]) and values[0, 1] == d[1]
    np.testing.assert_array_equal(values[1:, 1], d[1:])
    values, names = C.select_confounds(table, "none")
    assert values.shape == (30, 0) and names == []
    assert C.select_confounds(table)[1] == []


def test_load_confounds_table_reads_sidecar_and_na(fmriprep):
    """The sidecar lands in ``attrs``; ``n/a`` is NaN; without it acompcor is
    refused (nilearn raises too)."""
    table = C.load_confounds_table(fmriprep["v14"][1])
    assert table.shape == (30, 189)
    assert "a_comp_cor_00" in table.attrs["confounds_json"]
    assert np.isnan(table["trans_x_derivative1"].iloc[0])
    bare = pd.DataFrame(table)
    bare.attrs = {}
    with pytest.raises(InputError, match="JSON sidecar"):
        C.select_confounds(bare, "acompcor", path="conf.tsv")
    values, _ = C.select_confounds(bare, "acompcor", meta=table.attrs["confounds_json"])
    assert values.shape == (30, 24 + 57)


def test_missing_strategy_columns_name_columns_and_file(tmp_path, adhd_regressors_paths,
                                                        fmriprep):
    """36P on an ADHD table without ``wm`` / an fMRIPrep table without
    ``white_matter`` and ``global_signal``: one-line InputError naming the
    columns and the file."""
    source = adhd_regressors_paths["0010042"]
    path = tmp_path / "0010042_regressors.csv"
    pd.read_csv(source, sep="\t").drop(columns=["wm"]).to_csv(path, sep="\t", index=False)
    table = C.load_confounds_table(path, subject="sub-0010042")
    C.select_confounds(table, "24P")  # 24P does not need wm
    with pytest.raises(InputError) as info:
        C.select_confounds(table, "36P", subject="sub-0010042")
    message = str(info.value)
    assert "wm" in message and str(path) in message and "\n" not in message
    assert message.startswith("sub-0010042: ")

    _, tsv = fmriprep["v21"]
    table = C.load_confounds_table(tsv).drop(columns=["white_matter", "global_signal"])
    with pytest.raises(InputError) as info:
        C.select_confounds(table, "36P", path=tsv)
    message = str(info.value)
    assert "white_matter" in message and "global_signal" in message and str(tsv) in message


def test_layout_and_argument_errors(fmriprep):
    """Neither layout -> the missing motion columns of both are named; an
    unknown strategy or an explicit column not in the table is refused."""
    table = C.load_confounds_table(fmriprep["v21"][1])
    assert C.detect_layout(table) == "fmriprep"
    broken = table.drop(columns=["rot_z"])
    with pytest.raises(InputError, match=r"lacks rot_z\).*motion-x"):
        C.detect_layout(broken, path="x.tsv")
    with pytest.raises(InputError, match="rot_z"):
        C.select_confounds(broken, "6P")
    with pytest.raises(InputError, match="unknown confound strategy"):
        C.select_confounds(table, "12P")
    with pytest.raises(InputError, match="lacks column.*nope"):
        C.select_confounds(table, columns=["csf", "nope"])
    assert C.select_confounds(table, "24p")[1] == C.select_confounds(table, "24P")[1]


def test_run_qc_counts(fmriprep):
    """QC of the v21 run scrubbed at 1 mm: counts, seconds, mean FD of
    volumes 1..n-1 (fMRIPrep's n/a row left out)."""
    table = C.load_confounds_table(fmriprep["v21"][1])
    mask, fd = C.censor_table(table, fd_threshold=1.0, min_segment=5)
    qc = C.run_qc(fd, mask, t_r=2.5)
    column = table["framewise_displacement"].to_numpy()
    assert qc["n_volumes"] == 30 and qc["n_kept"] == len(mask)
    assert qc["n_censored"] == 30 - len(mask)
    assert qc["seconds_kept"] == pytest.approx(2.5 * len(mask))
    assert qc["mean_fd"] == pytest.approx(np.nanmean(column), rel=1e-12)
    assert qc["max_fd"] == pytest.approx(np.nanmax(column), rel=1e-12)
    assert C.run_qc(fd, mask)["seconds_kept"] is None


# --------------------------------------------------------------------------
# reading: pandas.read_csv, one-line errors
# --------------------------------------------------------------------------


def test_real_adhd_regressors_read_as_floats(adhd_regressors_paths):
    """The five real ADHD-200 ``*_regressors.csv`` (tab-separated despite the
    name): 17 float64 columns, path in ``attrs``, no sidecar."""
    for sid, path in adhd_regressors_paths.items():
        table = C.load_confounds_table(path, subject=f"sub-{sid}")
        assert table.attrs["path"] == str(path) and "confounds_json" not in table.attrs
        assert table.shape[1] == 17 and (table.dtypes == np.float64).all()
        assert isinstance(table.index, pd.RangeIndex)


def test_non_numeric_columns_are_one_line_errors(tmp_path):
    """A text column (here a comma-separated table with n/a and empty cells)
    is refused only when used, with a one-line message."""
    path = tmp_path / "conf.csv"
    path.write_text("trans_x,trans_y,trans_z,rot_x,rot_y,rot_z,label,gap\n"
                    "0,0,0,0,0,0,a,n/a\n0.1,0,0,0,0,0.01,b,\n0.2,0.1,0,0,0,0.02,,1\n")
    table = C.load_confounds_table(path, subject="sub-01")
    assert np.isnan(table["gap"][:2]).all() and table["gap"][2] == 1
    values, names = C.select_confounds(table, "6P")
    assert names == sorted(C.FMRIPREP_MOTION) and values[2, names.index("rot_z")] == 0.02
    with pytest.raises(InputError) as info:
        C.select_confounds(table, columns=["trans_x", "label"], subject="sub-01")
    assert str(info.value) == f"sub-01: {path}: confounds column label is not numeric"
    with pytest.raises(InputError, match=r"column\(s\) gap contain missing"):
        C.select_confounds(table, columns=["gap"])


def test_unreadable_tables_are_one_line_errors(tmp_path):
    """Rows longer than the header (also the first one, which pandas would
    silently take as the row index), a blank first line, a file not in
    UTF-8, a missing file: one-line InputError naming subject and file."""
    path = tmp_path / "long.tsv"
    path.write_text("a\tb\n1\t2\n1\t2\t3\n")
    with pytest.raises(InputError) as info:
        C.load_confounds_table(path, subject="sub-01")
    assert str(info.value) == (f"sub-01: {path}: not a readable table: Error tokenizing "
                               "data. C error: Expected 2 fields in line 3, saw 3")
    path.write_text("a\tb\n1\t2\t3\n4\t5\t6\n")
    with pytest.raises(InputError) as info:
        C.load_confounds_table(path, subject="sub-01")
    assert str(info.value) == (f"sub-01: {path}: not a readable table: data rows have more "
                               "cells than the header")
    (tmp_path / "empty.tsv").write_text("\n1\t2\n")
    with pytest.raises(InputError, match="table is empty"):
        C.load_confounds_table(tmp_path / "empty.tsv")
    (tmp_path / "latin1.tsv").write_bytes("a\tb\n1\t\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not a readable table: 'utf-8' codec"):
        C.load_confounds_table(tmp_path / "latin1.tsv")
    with pytest.raises(InputError, match="sub-02: .*absent.tsv: file not found$"):
        C.load_confounds_table(tmp_path / "absent.tsv", subject="sub-02")
