"""Quality-control records (`cohort_connectome.qc`): per volume, a subject's
runs combined, the cohort's QC and exclusions tables; and what the QC-FC
table says besides its correlations (`cohort_connectome.group`)."""

import numpy as np
import pandas as pd
import pytest

from cohort_connectome.qc import (QC_COLUMNS, cohort_qc_table, combine_run_info, converged,
                                  excluded_info, exclusions_table, mean_framewise_displacement,
                                  motion_by_group, run_qc_labels, volume_qc)


def test_volume_qc():
    fd = np.array([0.0, 0.2, 0.9, 0.1])
    table = volume_qc(4, fd, [0, 1, 3])
    assert table.shape == (4, len(QC_COLUMNS)) and table.dtype == np.float64
    np.testing.assert_array_equal(table, [[0, 0.0, 1], [1, 0.2, 1], [2, 0.9, 0], [3, 0.1, 1]])
    no_motion = volume_qc(3, None, [])
    assert np.isnan(no_motion[:, 1]).all() and not no_motion[:, 2].any()
    assert volume_qc(0, None, []).shape == (0, 3)


def test_mean_framewise_displacement_leaves_the_first_volume_out():
    assert mean_framewise_displacement(np.array([5.0, 0.2, 0.4])) == pytest.approx(0.3)
    assert mean_framewise_displacement(None) is None
    assert mean_framewise_displacement(np.array([0.0])) is None


def test_excluded_info_reads_both_sidecars():
    assert excluded_info({"Excluded": None}) is None
    assert excluded_info({}) is None
    assert excluded_info({"Excluded": "x: 3D", "ExcludedStage": "extract_timeseries"}) == \
        ("extract_timeseries", "x: 3D")
    assert excluded_info({"excluded": "y", "excluded_stage": "estimate_connectomes"}) == \
        ("estimate_connectomes", "y")


def _run(volumes, kept, fd=None, confounds=("a",), excluded=None, stage=None,
         non_finite=0):
    return {"NumberOfVolumes": volumes, "NumberOfVolumesKept": kept,
            "SecondsKept": None if kept is None else 2.0 * kept,
            "MeanFramewiseDisplacement": fd, "NonFiniteValues": non_finite,
            "Confounds": list(confounds), "Excluded": excluded, "ExcludedStage": stage}


def test_combine_run_info_sums_included_runs():
    info = combine_run_info(
        ["r1", "r2", "r3"],
        [_run(11, 10, fd=0.2, confounds=("a", "b")), _run(21, 20, fd=0.5, confounds=("b", "c")),
         _run(None, 0, excluded="z: 3D", stage="extract_timeseries", non_finite=None)])
    assert info["Runs"] == ["r1", "r2"] and info["ExcludedRuns"] == {"r3": "z: 3D"}
    assert (info["NumberOfVolumes"], info["NumberOfVolumesKept"]) == (32, 30)
    assert info["SecondsKept"] == 60.0 and info["NonFiniteValues"] == 0
    assert info["MeanFramewiseDisplacement"] == pytest.approx((0.2 * 10 + 0.5 * 20) / 30)
    assert info["Confounds"] == ["a", "b", "c"]
    assert info["Excluded"] is None and info["ExcludedStage"] is None


def test_combine_run_info_without_fd_or_any_run_left():
    info = combine_run_info(["r1"], [_run(5, 5)])
    assert info["MeanFramewiseDisplacement"] is None
    none_left = combine_run_info(
        ["r1", "r2"], [_run(5, 0, excluded="few volumes", stage="clean_timeseries"),
                       _run(None, 0, excluded="x: 3D", stage="extract_timeseries")])
    assert none_left["Runs"] == [] and none_left["NumberOfVolumesKept"] == 0
    assert none_left["Excluded"] == ("every run of the subject is excluded: r1: few volumes; "
                                     "r2: x: 3D")
    assert none_left["ExcludedStage"] == "clean_timeseries,extract_timeseries"


def test_converged():
    assert converged({"estimator": "ledoit_wolf"}) == ""
    assert converged({"converged_covariance": True, "converged_precision": True}) == "yes"
    assert converged({"converged_covariance": True, "converged_precision": False}) == "no"
    assert converged({"converged_covariance": True, "fallback": "ledoit_wolf"}) == "no"


def test_cohort_qc_and_exclusions_tables():
    units = [{"key": "sub-01_run-1", "participant_id": "sub-01", "run": "1"},
             {"key": "sub-01_run-2", "participant_id": "sub-01", "run": "2"},
             {"key": "sub-02_run-1", "participant_id": "sub-02", "run": "1"}]
    clean = {"sub-01_run-1": {**_run(10, 9, fd=0.1), "ConstantRegions": ["A"],
                              "MissingRegions": ["B", "C"]},
             "sub-01_run-2": _run(10, 0, excluded="censoring keeps no volume",
                                  stage="clean_timeseries"),
             "sub-02_run-1": _run(12, 12, confounds=())}
    estimates = {"sub-01_run-1": {"converged_precision": True},
                 "sub-02_run-1": {"excluded": "c: singular", "excluded_stage":
                                  "estimate_connectomes", "fallback": "ledoit_wolf"}}
    qc = cohort_qc_table(units, clean, estimates)
    assert list(qc.columns) == [
        "participant_id", "run", "n_volumes", "n_kept", "seconds_kept", "mean_fd",
        "n_nonfinite", "n_confounds", "confounds", "n_constant", "n_missing_regions",
        "fallback", "converged", "excluded", "excluded_stage"]
    assert qc["n_kept"].tolist() == [9, 0, 12] and qc["n_constant"].tolist() == [1, 0, 0]
    assert qc["n_missing_regions"].tolist() == [2, 0, 0]  # no MissingRegions key: 0
    assert qc["confounds"].tolist() == ["a", "a", ""]
    assert qc["converged"].tolist() == ["yes", "", ""]
    assert qc["fallback"].tolist() == ["", "", "ledoit_wolf"]
    assert qc["excluded_stage"].tolist() == ["", "clean_timeseries", "estimate_connectomes"]
    excluded = exclusions_table(qc)
    assert list(excluded.columns) == ["participant_id", "run", "stage", "reason"]
    assert excluded.values.tolist() == [
        ["sub-01", "2", "clean_timeseries", "censoring keeps no volume"],
        ["sub-02", "1", "estimate_connectomes", "c: singular"]]
    single = cohort_qc_table([{"key": "sub-03", "participant_id": "sub-03"}],
                             {"sub-03": _run(5, 5)})
    assert list(exclusions_table(single).columns) == ["participant_id", "stage", "reason"]
    assert exclusions_table(single).empty


def test_run_qc_labels():
    """A run's QC row in short, as the report shows it beside the run's QC figure."""
    included = {**_run(10, 9, fd=0.12345), "ConstantRegions": ["A"], "MissingRegions": ["B", "C"],
                "LowCoverageRegions": ["C"], "MinCoverage": 0.5}
    assert run_qc_labels("sub-01", "demo", included) == {
        "run": "sub-01", "atlas": "demo", "volumes kept": "9 of 10",
        "seconds kept": "18",
        "mean FD (mm)": "0.123", "constant / n/a regions": "1 / 2",
        "n/a for coverage": "1 (coverage < 0.5)", "excluded": "no"}
    excluded = run_qc_labels("sub-02", "demo", _run(10, 0, excluded="censoring keeps no volume",
                                                    stage="clean_timeseries"))
    assert excluded["excluded"] == "censoring keeps no volume"
    assert excluded["volumes kept"] == "0 of 10" and excluded["mean FD (mm)"] == "n/a"
    assert excluded["n/a for coverage"] == "n/a"  # an excluded run's sidecar has none


def test_motion_by_group():
    """Included and excluded runs' mean FD by level (runs without FD or level left
    out); Student's t-test of the included runs when both levels have 2."""
    from scipy import stats

    qc = pd.DataFrame({
        "participant_id": ["s1", "s2", "s3", "s4", "s5", "s6", "s7"],
        "mean_fd": [0.1, 0.2, 0.5, 0.4, 0.9, None, 0.3],
        "excluded": ["", "", "", "", "too short", "", ""],
    })
    groups = {"s1": "a", "s3": "b", "s2": "a", "s4": "b", "s5": "b", "s6": "a"}
    by_group, test = motion_by_group(qc, groups)
    assert list(by_group) == ["a", "b"]
    assert by_group["a"]["included"].tolist() == [0.1, 0.2]
    assert by_group["b"]["included"].tolist() == [0.5, 0.4]
    assert by_group["b"]["excluded"].tolist() == [0.9] and by_group["a"]["excluded"].size == 0
    expected = stats.ttest_ind([0.1, 0.2], [0.5, 0.4])
    assert test == pytest.approx({"t": expected.statistic, "p": expected.pvalue})
    assert motion_by_group(qc, {"s1": "a", "s2": "a", "s3": "b"})[1] is None  # b has 1 run
    assert motion_by_group(qc, {p: "all" for p in qc["participant_id"]})[1] is None


# --------------------------------------------------------------------------
# QC-FC notes and distances (cohort_connectome.group)
# --------------------------------------------------------------------------
def test_qc_fc_note():
    from cohort_connectome.group import qc_fc_note

    assert qc_fc_note(np.array([np.nan, np.nan]), 0).startswith("no framewise displacement")
    assert qc_fc_note(np.array([0.1, 0.2, np.nan]), 2) == \
        "not computed: 2 run(s) with framewise displacement, 3 needed"
    assert qc_fc_note(np.array([0.1, 0.1, 0.1]), 3) == \
        "not computed: mean framewise displacement is the same for every run"
    assert qc_fc_note(np.array([0.1, 0.2, 0.3, np.nan]), 3) == ""


def test_edge_distances_in_triu_order():
    from cohort_connectome.group import edge_distances

    coords = np.array([[0.0, 0, 0], [3, 4, 0], [0, 0, 2]])
    np.testing.assert_allclose(edge_distances(coords), [5.0, 2.0, np.sqrt(29.0)])
