"""Group aggregation: mean and the long table."""

import numpy as np
import pytest

from cohort_connectome.group import group_mean, long_table


def test_group_mean():
    a, b = np.eye(3), np.full((3, 3), 3.0)
    np.testing.assert_allclose(group_mean([a, b]), (a + b) / 2)
    with pytest.raises(ValueError):
        group_mean([np.ones((2, 3))])


def test_long_table_rows_and_order():
    rng = np.random.default_rng(0)
    m = {k: {s: rng.standard_normal((3, 3)) for s in ("sub-1", "sub-2")}
         for k in ("covariance", "precision")}
    pheno = [{"participant_id": "sub-2", "age": 9}, {"participant_id": "sub-1", "age": 8}]
    table = long_table(m, ["A", "B", "C"], pheno)
    assert list(table.columns) == ["participant_id", "age", "kind", "region_i", "region_j",
                                   "value"]
    assert len(table) == 2 * 2 * 6
    assert table["participant_id"].iloc[0] == "sub-2"
    row = table[(table.participant_id == "sub-1") & (table.kind == "precision")
                & (table.region_i == "A") & (table.region_j == "C")]
    assert row["value"].item() == m["precision"]["sub-1"][0, 2]
    assert row["age"].item() == 8
    with pytest.raises(ValueError, match="no covariance matrix for sub-3"):
        long_table(m, ["A", "B", "C"], [{"participant_id": "sub-3"}])


def test_long_table_keyed_by_run():
    """Runs of one participant: matrices keyed by run name, entities as columns."""
    m = {"covariance": {"sub-1_run-1": np.eye(2), "sub-1_run-2": 2 * np.eye(2)}}
    records = [{"key": "sub-1_run-1", "participant_id": "sub-1", "run": "1"},
               {"key": "sub-1_run-2", "participant_id": "sub-1", "run": "2"}]
    table = long_table(m, ["A", "B"], records)
    assert list(table.columns) == ["participant_id", "run", "kind", "region_i", "region_j",
                                   "value"]
    assert table.loc[(table.run == "2") & (table.region_i == "A") & (table.region_j == "A"),
                     "value"].item() == 2.0


# --------------------------------------------------------------------------
# group kinds, contrasts, QC-FC (cohort_connectome.group) and their jobs
# --------------------------------------------------------------------------
import json  # noqa: E402

import pandas as pd  # noqa: E402

from cohort_connectome import io  # noqa: E402
from cohort_connectome.jobs import group as group_jobs, qc as qc_jobs  # noqa: E402
from cohort_connectome.errors import InputError  # noqa: E402
from cohort_connectome.group import (  # noqa: E402
    contrast_levels,
    group_sparse_kinds,
    label_text,
    matrices_from_long,
    qc_fc,
    read_long_table,
    tangent_kind,
)


def _signals(n_subjects=4, n_volumes=80, n_regions=5, seed=0):
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((n_regions, n_regions)) * 0.4 + np.eye(n_regions)
    return [rng.standard_normal((n_volumes + 10 * k, n_regions)) @ mixing
            for k in range(n_subjects)]


def test_label_text_and_contrast_levels():
    assert [label_text(v) for v in (1, 1.0, "1", " a ", None, np.nan, "")] == \
        ["1", "1", "1", "a", None, None, None]
    assert contrast_levels([1, 0, 1.0, None, "0"], "adhd") == ("0", "1")
    assert contrast_levels(["10", "9", "9"], "x") == ("9", "10")  # numeric order
    assert contrast_levels(["a", "b", "c"], "site", levels=["c", "a"]) == ("c", "a")
    with pytest.raises(ValueError, match=r"^phenotype column 'dx' has 1 level\(s\) \('a'\)"):
        contrast_levels(["a", "a", None], "dx")
    with pytest.raises(ValueError, match="column 'dx' has 0 level"):
        contrast_levels([None, np.nan], "dx")
    with pytest.raises(ValueError, match="'site' has 3 levels .*group.levels"):
        contrast_levels(["a", "b", "c"], "site")
    with pytest.raises(ValueError, match="group.levels 'd' not found in phenotype column 'site'"):
        contrast_levels(["a", "b", "c"], "site", levels=["a", "d"])


def test_matrices_from_long_averages_runs():
    rng = np.random.default_rng(1)
    sym = [(lambda a: a + a.T)(rng.standard_normal((3, 3))) for _ in range(3)]
    records = [{"key": "r1", "participant_id": "sub-1", "run": "1"},
               {"key": "r2", "participant_id": "sub-1", "run": "2"},
               {"key": "r3", "participant_id": "sub-2", "run": "1"}]
    table = long_table({"covariance": dict(zip(["r1", "r2", "r3"], sym))}, ["A", "B", "C"],
                       records)
    keys, stack = matrices_from_long(table, ["A", "B", "C"], "covariance")
    assert keys == ["sub-1", "sub-2"]
    np.testing.assert_allclose(stack[0], (sym[0] + sym[1]) / 2)
    np.testing.assert_allclose(stack[1], sym[2])
    keys, stack = matrices_from_long(table, ["A", "B", "C"], "precision")
    assert keys == [] and stack.shape == (0, 3, 3)


def test_qc_fc_is_pearson():
    from scipy import stats

    rng = np.random.default_rng(2)
    fd = rng.random(12)
    edges = rng.standard_normal((12, 4))
    edges[:, 1] += 3 * fd
    edges[:, 2] = 0.5  # constant: not computed
    fd_missing = fd.copy()
    fd_missing[0] = np.nan  # a run without FD is left out
    r, p, n = qc_fc(edges, fd_missing)
    assert (n == 11).all() and np.isnan(r[2]) and np.isnan(p[2])
    for k in (0, 1, 3):
        expected = stats.pearsonr(edges[1:, k], fd[1:])
        assert r[k] == expected.statistic
        assert p[k] == expected.pvalue
    r, p, n = qc_fc(edges[:2], fd[:2])
    assert (n == 2).all() and np.isnan(r).all()


def test_tangent_kind_records_the_geometric_mean():
    from cohort_connectome.tangent import tangent_connectivity

    signals = _signals()
    tangents, mean, info = tangent_kind(signals)
    expected, expected_mean, _ = tangent_connectivity(signals)
    np.testing.assert_allclose(tangents, expected)
    np.testing.assert_allclose(mean, expected_mean)
    assert info["converged"] and info["n_iter"] >= 1 and info["n_subjects"] == 4
    assert info["gradient_norm"] < info["tol"] == 1e-7 and info["max_iter"] == 30
    assert info["estimator"] == "ledoit_wolf"


def test_group_sparse_kinds_share_one_support():
    from cohort_connectome.connectivity import prec_to_partial
    from cohort_connectome.group_sparse import GroupSparseCovarianceCV

    signals = [(s - s.mean(0)) / s.std(0) for s in _signals(n_subjects=3, n_volumes=60)]
    options = {"alphas": [0.3, 0.1], "cv": 3}
    matrices, info = group_sparse_kinds(signals, options)
    model = GroupSparseCovarianceCV(**options).fit(signals)
    assert info["alpha"] == model.alpha_ and info["options"] == options
    precisions = matrices["groupsparse_precision"]
    np.testing.assert_allclose(precisions, np.moveaxis(model.precisions_, -1, 0))
    for precision, partial in zip(precisions, matrices["groupsparse_partialcorrelation"]):
        np.testing.assert_allclose(partial, prec_to_partial(precision))
        assert ((precision != 0) == (precisions[0] != 0)).all()


# ---- jobs ----------------------------------------------------------------
NAMES = ["A", "B", "C", "D"]


@pytest.fixture
def cohort(tmp_path):
    """Long table of 6 participants (3 'ctl', 3 'adhd'), labels, participants."""
    rng = np.random.default_rng(3)
    matrices = {}
    for kind in ("correlation", "tangent"):
        matrices[kind] = {}
        for k in range(6):
            a = rng.standard_normal((4, 4)) * 0.2
            m = a + a.T + (0.8 if k % 2 else 0.0)
            np.fill_diagonal(m, 1.0)
            matrices[kind][f"sub-{k}"] = m
    pheno = pd.DataFrame({"participant_id": [f"sub-{k}" for k in range(6)],
                          "dx": ["ctl", "adhd"] * 3, "site": ["x"] * 6})
    table = long_table(matrices, NAMES, pheno.to_dict("records"))
    io.write_table(table, tmp_path / "long.tsv")
    io.write_table(pheno, tmp_path / "participants.tsv")
    io.write_table(pd.DataFrame({"name": NAMES, "network": ["n1", "n2", "n1", "n2"],
                                 "x": [-40, 40, -20, 20], "y": [0, 0, 30, 30],
                                 "z": [10, 10, 40, 40]}), tmp_path / "labels.tsv")
    return tmp_path


def _compare(folder, column="dx", **kwargs):
    figures = {k: folder / f"{k}.png" for k in ("correlation", "tangent")}
    group_jobs.compare_groups(folder / "long.tsv", folder / "participants.tsv",
                              folder / "labels.tsv", column, folder / "ttest.tsv",
                              folder / "classes.tsv", figures, **kwargs)
    read = dict(sep="\t", keep_default_na=False, na_values=["n/a"])
    return pd.read_csv(folder / "ttest.tsv", **read), pd.read_csv(folder / "classes.tsv", **read)


def test_compare_groups_job(cohort):
    ttest, classes = _compare(cohort, classify={"n_splits": 3, "n_repeats": 2})
    assert list(ttest.columns[:3]) == ["kind", "region_i", "region_j"]
    assert len(ttest) == 2 * 6 and (ttest["note"] == "").all()
    assert set(ttest["group_a"]) == {"adhd"} and set(ttest["n_a"]) == {3}
    assert (ttest["t"] > 0).all()  # adhd edges are 0.8 higher
    assert list(classes["kind"]) == ["correlation", "tangent"]
    assert (classes["note"] == "").all() and (classes["accuracy_mean"] >= 0.5).all()
    assert (cohort / "tangent.png").read_bytes()[:4] == b"\x89PNG"
    # too few subjects for the folds: the table says so
    _, classes = _compare(cohort, classify={"n_splits": 5})
    assert classes["accuracy_mean"].isna().all()
    assert classes["note"].str.contains("fewer than n_splits=5").all()


def test_compare_groups_group_without_included_subject(cohort):
    """Every 'ctl' participant excluded (not in the long table): no failure, the
    tables and figures say why."""
    table = pd.read_csv(cohort / "long.tsv", sep="\t")
    table[table["dx"] == "adhd"].to_csv(cohort / "long.tsv", sep="\t", index=False)
    ttest, classes = _compare(cohort)
    assert ttest["t"].isna().all() and set(ttest["n_b"]) == {0}
    assert (ttest["note"] == "not tested: no included subject in group 'ctl' of phenotype "
            "column 'dx'").all()
    assert classes["note"].str.startswith("not run: no included subject in group 'ctl'").all()
    assert (cohort / "correlation.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("column, message", [
    ("site", "phenotype column 'site' has 1 level(s) ('x'); a comparison needs 2"),
    ("age", "phenotype column 'age' is not in the participants table (phenotype columns: "
            "dx, site)"),
])
def test_compare_groups_bad_column_is_one_line(cohort, column, message):
    """ADHD-200's phenotype is only known once fetched: the job checks it."""
    with pytest.raises(InputError) as err:
        _compare(cohort, column=column)
    text = str(err.value)
    assert "\n" not in text and message in text and "participants.tsv" in text


def test_qc_fc_job_without_motion(cohort):
    qc = pd.DataFrame({"participant_id": [f"sub-{k}" for k in range(6)], "n_volumes": 100,
                       "mean_fd": np.nan, "excluded": ""})
    io.write_table(qc, cohort / "qc.tsv")
    qc_jobs.qc_fc(cohort / "long.tsv", cohort / "qc.tsv", cohort / "labels.tsv",
                  cohort / "qcfc.tsv", cohort / "qcfc.png", title="test")
    out = pd.read_csv(cohort / "qcfc.tsv", sep="\t", keep_default_na=False, na_values=["n/a"])
    assert len(out) == 2 * 6 and out["r"].isna().all()
    assert out["note"].str.startswith("no framewise displacement").all()
    assert out["distance_mm"].iloc[0] == pytest.approx(80.0)
    assert (cohort / "qcfc.png").read_bytes()[:4] == b"\x89PNG"


def test_aggregate_group_kinds_leave_excluded_runs_out(tmp_path):
    """The group kinds use the included runs only, and need at least 2."""
    signals = _signals(n_subjects=3)
    units, sidecars, series = [], {}, {}
    for k, values in enumerate(signals):
        run = f"sub-{k}"
        excluded = "too short" if k == 1 else None
        io.write_timeseries(values[:0] if excluded else values, NAMES + ["E"],
                            tmp_path / f"{run}.tsv")
        io.write_json({"NumberOfVolumes": len(values), "NumberOfVolumesKept": 0 if excluded
                       else len(values), "SecondsKept": 1.0, "MeanFramewiseDisplacement": 0.1,
                       "Confounds": [], "Excluded": excluded}, tmp_path / f"{run}.json")
        units.append({"key": run, "participant_id": run})
        sidecars[run], series[run] = tmp_path / f"{run}.json", tmp_path / f"{run}.tsv"
    io.write_table(pd.DataFrame({"participant_id": list(series), "dx": ["a", "b", "a"]}),
                   tmp_path / "participants.tsv")

    def run(units):
        keys = [u["key"] for u in units]
        group_jobs.aggregate_connectomes(
            {}, units, tmp_path / "participants.tsv", {k: sidecars[k] for k in keys},
            tmp_path / "long.tsv", {"tangent": tmp_path / "tangent.tsv"}, tmp_path / "qc.tsv",
            tmp_path / "exclusions.tsv", info_path=tmp_path / "info.json",
            timeseries={k: series[k] for k in keys}, group_kinds=["tangent"])

    run(units)
    table = pd.read_csv(tmp_path / "long.tsv", sep="\t")
    assert sorted(set(table["participant_id"])) == ["sub-0", "sub-2"]
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["runs"] == ["sub-0", "sub-2"] and info["excluded"] == ["sub-1"]
    assert info["kinds"] == ["tangent"] and info["groupsparse"] is None
    with pytest.raises(InputError, match="need at least 2 included runs, 1 left"):
        run(units[:2])


# --------------------------------------------------------------------------
# regions without data (n/a): means, edge counts and QC-FC per edge
# --------------------------------------------------------------------------
def test_group_mean_over_the_subjects_that_have_the_edge():
    from cohort_connectome.group import edge_counts, present_regions

    rng = np.random.default_rng(7)
    names = ["A", "B", "C", "D"]
    missing = [[], ["B"], ["B", "D"]]
    present = np.array([present_regions(names, m) for m in missing])
    assert present.tolist() == [[True] * 4, [True, False, True, True],
                                [True, False, True, False]]
    matrices = []
    for mask in present:
        m = rng.standard_normal((4, 4))
        m = m + m.T
        m[~mask] = np.nan
        m[:, ~mask] = np.nan
        matrices.append(m)
    mean = group_mean(matrices, present)
    counts = edge_counts(present)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, [[3, 1, 3, 2], [1, 1, 1, 1], [3, 1, 3, 2],
                                           [2, 1, 2, 2]])
    stack = np.array(matrices)
    np.testing.assert_array_equal(mean[0, 2], stack[:, 0, 2].mean())  # every subject
    assert mean[0, 1] == stack[0, 0, 1]                                 # the first only
    np.testing.assert_allclose(mean, np.nanmean(stack, axis=0), rtol=1e-15)
    # nobody has an edge: n/a
    assert np.isnan(group_mean(matrices[1:], present[1:])[0, 1])
    # every region present: the plain mean, bit for bit
    full = [np.nan_to_num(m) for m in matrices]
    np.testing.assert_array_equal(group_mean(full, np.ones((3, 4), bool)), group_mean(full))
    np.testing.assert_array_equal(group_mean(full), np.mean(full, axis=0))
    with pytest.raises(ValueError, match="not in the atlas: E"):
        present_regions(names, ["E"])
    with pytest.raises(ValueError, match=r"present must have shape \(3, 4\)"):
        group_mean(matrices, present[:2])


def test_qc_fc_per_edge_over_the_runs_that_have_it():
    """Each edge is scipy.stats.pearsonr over the runs with FD and the edge."""
    from scipy import stats

    rng = np.random.default_rng(3)
    fd = rng.random(10)
    edges = rng.standard_normal((10, 5)) + fd[:, None]
    edges[[0, 4], 1] = np.nan    # edge 1: 8 runs
    edges[[2, 3], 3] = np.nan    # edge 3: 8 other runs
    edges[2:, 4] = np.nan        # edge 4: 2 runs: not computed
    fd[9] = np.nan               # no FD: left out of every edge
    r, p, n = qc_fc(edges, fd)
    assert n.tolist() == [9, 7, 9, 7, 2]
    for k in range(4):
        keep = np.isfinite(edges[:, k]) & np.isfinite(fd)
        expected = stats.pearsonr(edges[keep, k], fd[keep])
        assert r[k] == expected.statistic and p[k] == expected.pvalue
    assert np.isnan(r[4]) and np.isnan(p[4])


def test_clean_estimate_aggregate_with_missing_regions(tmp_path):
    """Three runs, each without data in other regions: clean -> estimate ->
    aggregate (then QC-FC, the comparison and the group figures, which must
    not fail).  Per edge the group mean is over the runs that have both
    regions, the count table says how many, and the tangent kind uses the
    regions every run has."""
    from cohort_connectome.jobs import figures, subject

    regions = ["A", "B", "C", "D", "E"]
    missing = {"sub-1": [], "sub-2": ["B"], "sub-3": ["B", "D"]}
    kinds = ["correlation", "covariance"]
    rng = np.random.default_rng(11)
    units, clean_sides, series, relmats, conn_sides = [], {}, {}, {k: {} for k in kinds}, {}
    for run, gone in missing.items():
        signals = rng.standard_normal((90, 5)) @ (np.eye(5) + 0.3) + 50
        signals[:, [regions.index(g) for g in gone]] = np.nan
        io.write_timeseries(signals, regions, tmp_path / f"{run}_raw.tsv")
        io.write_json({"RepetitionTimeHeader": 2.0, "DataType": "float64",
                       "NumberOfVolumes": 90, "NonFiniteValues": 0, "MissingRegions": gone},
                      tmp_path / f"{run}_raw.json")
        series[run], clean_sides[run] = tmp_path / f"{run}.tsv", tmp_path / f"{run}.json"
        subject.clean_timeseries(tmp_path / f"{run}_raw.tsv", tmp_path / f"{run}_raw.json",
                                 None, series[run], clean_sides[run], tmp_path / f"{run}_q.tsv",
                                 {"detrend": True, "standardize": "zscore_sample"},
                                 subject=run, atlas="test")
        paths = {k: tmp_path / f"{run}_{k}.tsv" for k in kinds}
        conn_sides[run] = tmp_path / f"{run}_conn.json"
        subject.estimate_connectomes(series[run], paths, conn_sides[run], "ledoit_wolf",
                                     subject=run, clean_sidecar=clean_sides[run])
        for kind in kinds:
            relmats[kind][run] = paths[kind]
        units.append({"key": run, "participant_id": run})
    io.write_table(pd.DataFrame({"participant_id": list(missing), "dx": ["a", "b", "a"]}),
                   tmp_path / "participants.tsv")
    all_kinds = kinds + ["tangent"]
    means = {k: tmp_path / f"mean_{k}.tsv" for k in all_kinds}
    group_jobs.aggregate_connectomes(
        relmats, units, tmp_path / "participants.tsv", clean_sides, tmp_path / "long.tsv",
        means, tmp_path / "qc.tsv", tmp_path / "exclusions.tsv",
        info_path=tmp_path / "info.json", timeseries=series, group_kinds=["tangent"],
        connectivity_sidecars=conn_sides, edgecount_path=tmp_path / "edgecount.tsv")

    # edge counts: integers, no n/a, laid out as the means
    text = (tmp_path / "edgecount.tsv").read_text()
    assert "n/a" not in text and "." not in text
    counts, names = io.read_matrix(tmp_path / "edgecount.tsv")
    assert names == regions
    np.testing.assert_array_equal(counts, [[3, 1, 3, 2, 3], [1, 1, 1, 1, 1], [3, 1, 3, 2, 3],
                                           [2, 1, 2, 2, 2], [3, 1, 3, 2, 3]])
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["edge_count"] == {"min": 1, "median": 2, "max": 3}  # over the 10 edges i < j
    assert info["missing_regions"] == ["B", "D"]
    # per-run matrices: n/a rows and columns where the run has no data
    per_run = {k: np.array([io.read_matrix(relmats[k][r])[0] for r in missing]) for k in kinds}
    assert np.isnan(per_run["correlation"][2][[1, 3]]).all()
    assert not np.isnan(per_run["correlation"][2][np.ix_([0, 2, 4], [0, 2, 4])]).any()
    for kind in kinds:
        mean, _ = io.read_matrix(means[kind])
        assert not np.isnan(mean).any()  # every edge has at least 1 run
        np.testing.assert_allclose(mean, np.nanmean(per_run[kind], axis=0), rtol=1e-9)
        assert mean[1, 3] == per_run[kind][0][1, 3]  # sub-1 alone has B-D
    # tangent: the 3 regions every run has, n/a elsewhere for every run
    assert info["tangent"]["dropped_regions"] == ["B", "D"]
    assert "n/a in at least one of the 3 runs" in info["tangent"]["dropped_reason"]
    tangent_mean, _ = io.read_matrix(means["tangent"])
    assert np.isnan(tangent_mean[[1, 3]]).all() and np.isnan(tangent_mean[:, [1, 3]]).all()
    assert not np.isnan(tangent_mean[np.ix_([0, 2, 4], [0, 2, 4])]).any()
    # the long table keeps the n/a values; the QC table counts the missing regions
    table = read_long_table(tmp_path / "long.tsv")
    rows = table[(table["participant_id"] == "sub-2") & (table["kind"] == "correlation")]
    assert rows.loc[(rows["region_i"] == "A") & (rows["region_j"] == "B"), "value"].isna().all()
    assert rows.loc[(rows["region_i"] == "A") & (rows["region_j"] == "C"), "value"].notna().all()
    tangent = table[table["kind"] == "tangent"]
    assert tangent.loc[tangent["region_j"] == "B", "value"].isna().all()
    qc = pd.read_csv(tmp_path / "qc.tsv", sep="\t")
    assert qc["n_missing_regions"].tolist() == [0, 1, 2]
    # the later jobs take the n/a: QC-FC, the comparison, the figures
    io.write_table(pd.DataFrame({"name": regions, "network": ["n1", "n2"] * 2 + ["n1"],
                                 "x": [-40, 40, -20, 20, 0], "y": [0, 0, 30, 30, 50],
                                 "z": [10, 10, 40, 40, 20]}), tmp_path / "labels.tsv")
    qc_jobs.qc_fc(tmp_path / "long.tsv", tmp_path / "qc.tsv", tmp_path / "labels.tsv",
                  tmp_path / "qcfc.tsv", tmp_path / "qcfc.png", title="test")
    qcfc = pd.read_csv(tmp_path / "qcfc.tsv", sep="\t", keep_default_na=False)
    assert qcfc.loc[(qcfc["region_i"] == "B") & (qcfc["region_j"] == "D"), "n_runs"].eq(0).all()
    group_jobs.compare_groups(tmp_path / "long.tsv", tmp_path / "participants.tsv",
                              tmp_path / "labels.tsv", "dx", tmp_path / "ttest.tsv",
                              tmp_path / "classes.tsv",
                              {k: tmp_path / f"t_{k}.png" for k in all_kinds},
                              classify={"n_splits": 2})
    ttest = pd.read_csv(tmp_path / "ttest.tsv", sep="\t", keep_default_na=False,
                        na_values=["n/a"])
    ab = ttest[(ttest["kind"] == "correlation") & (ttest["region_i"] == "A")
               & (ttest["region_j"] == "B")]
    assert (ab["n_a"].item(), ab["n_b"].item()) == (1, 0)
    for kind in all_kinds:
        figures.plot_connectomes({kind: means[kind]}, tmp_path / "labels.tsv",
                                 {kind: {"matrix": tmp_path / f"{kind}_m.png",
                                         "connectome": tmp_path / f"{kind}_c.png"}}, "group")
        assert (tmp_path / f"{kind}_c.png").read_bytes()[:4] == b"\x89PNG"


def test_group_kinds_without_two_common_regions_are_na(tmp_path):
    """Fewer than 2 regions every run has: the group kinds are n/a, with a
    warning and the reason in the sidecar, instead of a failure."""
    signals = _signals(n_subjects=2)
    series, sides = {}, {}
    for k, values in enumerate(signals):
        run, gone = f"sub-{k}", [["A", "B"], ["C", "D"]][k]
        values = values.copy()
        values[:, [NAMES.index(g) for g in gone]] = np.nan
        series[run], sides[run] = tmp_path / f"{run}.tsv", tmp_path / f"{run}.json"
        io.write_timeseries(values, NAMES + ["E"], series[run])
        io.write_json({"NumberOfVolumes": len(values), "NumberOfVolumesKept": len(values),
                       "SecondsKept": 1.0, "MeanFramewiseDisplacement": 0.1, "Confounds": [],
                       "Excluded": None, "MissingRegions": gone}, sides[run])
    io.write_table(pd.DataFrame({"participant_id": list(series)}),
                   tmp_path / "participants.tsv")
    kinds = ["tangent", "groupsparse_precision", "groupsparse_partialcorrelation"]
    means = {k: tmp_path / f"{k}.tsv" for k in kinds}
    group_jobs.aggregate_connectomes(
        {}, [{"key": r, "participant_id": r} for r in series], tmp_path / "participants.tsv",
        sides, tmp_path / "long.tsv", means, tmp_path / "qc.tsv", tmp_path / "exclusions.tsv",
        info_path=tmp_path / "info.json", timeseries=series, group_kinds=kinds,
        edgecount_path=tmp_path / "edgecount.tsv")
    info = json.loads((tmp_path / "info.json").read_text())
    for name in ("tangent", "groupsparse"):
        assert info[name]["not_computed"] == ("not computed: 1 region(s) have data in every "
                                              "run, 2 needed")
        assert info[name]["dropped_regions"] == ["A", "B", "C", "D"]
    for kind in kinds:
        assert np.isnan(io.read_matrix(means[kind])[0]).all()
    assert info["edge_count"]["min"] == 0  # A-C: no run has both
    assert np.isnan(io.read_matrix(means["tangent"])[0]).all()
