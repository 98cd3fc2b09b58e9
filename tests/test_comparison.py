"""cohort_connectome.comparison: edgewise t-tests with FDR, phenotype classification."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cohort_connectome.comparison import (
    CLASSIFY_COLUMNS,
    TTEST_COLUMNS,
    classify_phenotype,
    edgewise_ttest,
)
from cohort_connectome.tangent import sym_matrix_to_vec

N_REGIONS = 12
PLANTED = [(0, 1), (2, 7), (5, 11)]
NAMES = [f"R{k:02d}" for k in range(N_REGIONS)]


pytestmark = pytest.mark.usefixtures("single_threaded_blas")


def _symmetric(rng, n_subjects, n=N_REGIONS):
    m = rng.standard_normal((n_subjects, n, n))
    return (m + np.swapaxes(m, 1, 2)) / 2


@pytest.fixture(scope="module")
def planted():
    """25 controls, 20 patients; patients differ by +1.5 sd on 3 edges."""
    rng = np.random.default_rng(0)
    matrices = _symmetric(rng, 45)
    for i, j in PLANTED:
        noise_sd = np.sqrt(0.5)
        matrices[25:, i, j] += 1.5 * noise_sd
        matrices[25:, j, i] += 1.5 * noise_sd
    groups = pd.Series(["control"] * 25 + ["patient"] * 20, name="diagnosis")
    return matrices, groups


# --------------------------------------------------------------------------
# edgewise t-test

def test_planted_difference_is_found(planted):
    matrices, groups = planted
    table = edgewise_ttest(matrices, groups, names=NAMES)
    assert list(table.columns) == list(TTEST_COLUMNS)
    assert len(table) == N_REGIONS * (N_REGIONS - 1) // 2
    # stable order: row-major upper triangle, i < j
    rows, cols = np.triu_indices(N_REGIONS, k=1)
    assert table["region_i"].tolist() == [NAMES[i] for i in rows]
    assert table["region_j"].tolist() == [NAMES[j] for j in cols]
    assert (table["group_a"] == "control").all() and (table["group_b"] == "patient").all()
    assert (table["n_a"] == 25).all() and (table["n_b"] == 20).all()
    assert (table["note"] == "").all()

    hits = table.set_index(["region_i", "region_j"])
    for i, j in PLANTED:
        row = hits.loc[(NAMES[i], NAMES[j])]
        assert row["q"] < 0.01 and row["significant"] and row["t"] < 0  # a < b
    null = table[~table.set_index(["region_i", "region_j"]).index.isin(
        [(NAMES[i], NAMES[j]) for i, j in PLANTED])]
    assert null["significant"].mean() <= 0.05
    assert null["q"].median() > 0.5


def test_ttest_values_match_scipy(planted):
    matrices, groups = planted
    for equal_var in (True, False):
        table = edgewise_ttest(matrices, groups, equal_var=equal_var)
        rows, cols = np.triu_indices(N_REGIONS, k=1)
        a = matrices[:25, rows, cols]
        b = matrices[25:, rows, cols]
        expected = stats.ttest_ind(a, b, axis=0, equal_var=equal_var)
        np.testing.assert_allclose(table["t"], expected.statistic, rtol=1e-12)
        np.testing.assert_allclose(table["p"], expected.pvalue, rtol=1e-12)
        np.testing.assert_allclose(table["q"],
                                   stats.false_discovery_control(expected.pvalue, method="bh"))
        np.testing.assert_allclose(table["mean_a"], a.mean(axis=0))
        np.testing.assert_allclose(table["mean_b"], b.mean(axis=0))
        assert table["region_i"].tolist()[:2] == [0, 0]  # default names: indices


def test_levels_order_flips_sign(planted):
    matrices, groups = planted
    forward = edgewise_ttest(matrices, groups)
    backward = edgewise_ttest(matrices, groups, levels=("patient", "control"))
    np.testing.assert_allclose(backward["t"], -forward["t"])
    np.testing.assert_allclose(backward["q"], forward["q"])
    assert (backward["group_a"] == "patient").all()
    with pytest.raises(ValueError, match="levels .* must be the 2 levels of phenotype column "
                                         "'diagnosis'"):
        edgewise_ttest(matrices, groups, levels=("patient", "other"))


def test_missing_labels_and_constant_edges():
    rng = np.random.default_rng(2)
    matrices = np.array([np.corrcoef(x) for x in rng.standard_normal((10, 4, 30))])
    groups = ["a", "b"] * 4 + [None, np.nan]
    table = edgewise_ttest(matrices, groups, include_diagonal=True)
    assert len(table) == 10
    assert (table["n_a"] == 4).all() and (table["n_b"] == 4).all()
    diagonal = table["region_i"] == table["region_j"]
    assert table.loc[diagonal, "note"].eq("not tested: constant within both groups").all()
    assert table.loc[diagonal, ["t", "p", "q"]].isna().all().all()
    assert not table.loc[diagonal, "significant"].any()
    off = table.loc[~diagonal]
    assert off["p"].notna().all() and (off["note"] == "").all()
    # the untested edges do not count in the correction
    np.testing.assert_allclose(off["q"], stats.false_discovery_control(off["p"], method="bh"))


def test_one_level_names_the_column(planted):
    matrices, _ = planted
    groups = pd.Series(["control"] * 45, name="diagnosis")
    with pytest.raises(ValueError, match=r"phenotype column 'diagnosis' has 1 level\(s\): "
                                         r"\['control'\]"):
        edgewise_ttest(matrices, groups)
    with pytest.raises(ValueError, match="phenotype column 'site' has 3 level"):
        edgewise_ttest(matrices, ["x", "y", "z"] * 15, column="site")
    with pytest.raises(ValueError, match="phenotype column 'groups' has 0 level"):
        edgewise_ttest(matrices, [None] * 45)


def test_too_few_subjects_gives_a_note(planted):
    matrices, _ = planted
    groups = ["control"] * 44 + ["patient"]
    table = edgewise_ttest(matrices, groups, names=NAMES)
    assert list(table.columns) == list(TTEST_COLUMNS)
    assert len(table) == N_REGIONS * (N_REGIONS - 1) // 2
    assert table[["t", "p", "q"]].isna().all().all()
    assert not table["significant"].any()
    assert table["note"].str.contains("group 'patient' of phenotype column 'groups' has 1 "
                                      "subject").all()
    np.testing.assert_allclose(table["mean_b"], matrices[44][np.triu_indices(N_REGIONS, 1)])


def test_ttest_input_errors(planted):
    matrices, groups = planted
    with pytest.raises(ValueError, match=r"phenotype column 'diagnosis' has 44 labels for "
                                         r"45 subjects"):
        edgewise_ttest(matrices, groups[:44])
    with pytest.raises(ValueError, match=r"shape \(n_subjects, n, n\)"):
        edgewise_ttest(matrices[:, :, :5], groups)
    with pytest.raises(ValueError, match="names has 3 entries for 12 regions"):
        edgewise_ttest(matrices, groups, names=["a", "b", "c"])
    with pytest.raises(ValueError, match="alpha"):
        edgewise_ttest(matrices, groups, alpha=1.5)
    bad = matrices.copy()
    bad[0, 0, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        edgewise_ttest(bad, groups)


# --------------------------------------------------------------------------
# classification

@pytest.fixture(scope="module")
def separable():
    """40 subjects; class 1 shifted by 1.2 sd on 8 of 66 edges."""
    rng = np.random.default_rng(3)
    labels = np.array([0] * 20 + [1] * 20)
    matrices = _symmetric(rng, 40)
    rows, cols = np.triu_indices(N_REGIONS, k=1)
    shift = np.zeros((N_REGIONS, N_REGIONS))
    shift[rows[:8], cols[:8]] = 1.2
    matrices[labels == 1] += shift + shift.T
    return matrices, labels


def test_separable_classes_are_classified(separable):
    matrices, labels = separable
    vectors = sym_matrix_to_vec(matrices, discard_diagonal=True)
    table = classify_phenotype({"correlation": vectors, "matrices": matrices},
                               pd.Series(labels, name="dx"), n_splits=5, n_repeats=3)
    assert list(table.columns) == list(CLASSIFY_COLUMNS)
    assert table["kind"].tolist() == ["correlation", "matrices"]
    assert (table["accuracy_mean"] > 0.9).all(), table
    assert (table["chance"] == 0.5).all() and (table["n_subjects"] == 40).all()
    assert (table["n_splits"] == 5).all() and (table["n_repeats"] == 3).all()
    assert (table["note"] == "").all()


def test_random_labels_are_near_chance(separable):
    matrices, _ = separable
    rng = np.random.default_rng(4)
    labels = rng.permutation(["a"] * 20 + ["b"] * 20)
    table = classify_phenotype({"x": sym_matrix_to_vec(matrices)}, labels, n_splits=5,
                               n_repeats=4)
    assert abs(table["accuracy_mean"].item() - 0.5) < 0.2, table


def test_classification_is_deterministic(separable):
    matrices, labels = separable
    vectors = {"x": sym_matrix_to_vec(matrices)}
    first = classify_phenotype(vectors, labels, n_splits=4, n_repeats=2, seed=7)
    second = classify_phenotype(vectors, labels, n_splits=4, n_repeats=2, seed=7)
    pd.testing.assert_frame_equal(first, second)


def test_classification_matches_a_direct_sklearn_run(separable):
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
    from sklearn.svm import LinearSVC

    matrices, labels = separable
    x = sym_matrix_to_vec(matrices)
    scores = cross_val_score(LinearSVC(random_state=1), x, labels,
                             cv=RepeatedStratifiedKFold(n_splits=4, n_repeats=2, random_state=1))
    table = classify_phenotype({"x": x}, labels, n_splits=4, n_repeats=2, seed=1)
    assert table["accuracy_mean"].item() == pytest.approx(scores.mean())
    assert table["accuracy_std"].item() == pytest.approx(scores.std())


def test_too_few_subjects_is_not_run(separable):
    matrices, _ = separable
    labels = pd.Series(["adhd"] * 3 + ["control"] * 37, name="dx")
    table = classify_phenotype({"a": matrices, "b": sym_matrix_to_vec(matrices)}, labels,
                               n_splits=5)
    assert list(table.columns) == list(CLASSIFY_COLUMNS)
    assert table["accuracy_mean"].isna().all() and table["accuracy_std"].isna().all()
    assert table["note"].str.startswith("not run: class 'adhd' of phenotype column 'dx' has 3 "
                                        "subject(s), fewer than n_splits=5").all()
    assert table["chance"].tolist() == [37 / 40] * 2


def test_missing_labels_are_left_out(separable):
    matrices, labels = separable
    labels = labels.astype(object)
    labels[[0, 39]] = None
    table = classify_phenotype({"x": matrices}, labels, n_splits=3, n_repeats=1)
    assert table["n_subjects"].item() == 38 and table["note"].item() == ""


def test_classification_errors(separable):
    matrices, labels = separable
    with pytest.raises(ValueError, match=r"phenotype column 'dx' has 1 level\(s\): \['adhd'\]"):
        classify_phenotype({"x": matrices}, pd.Series(["adhd"] * 40, name="dx"))
    with pytest.raises(ValueError, match="kind 'x' have 39 rows but phenotype column 'labels' "
                                         "has 40 labels"):
        classify_phenotype({"x": matrices[:39]}, labels)
    with pytest.raises(ValueError, match="n_splits must be an integer >= 2"):
        classify_phenotype({"x": matrices}, labels, n_splits=1)
    with pytest.raises(ValueError, match="non-empty dict"):
        classify_phenotype({}, labels)
    with pytest.raises(ValueError, match="vectors"):
        classify_phenotype({"x": np.ones(40)}, labels)


# --------------------------------------------------------------------------
# n/a edges (regions without data in some subjects)

def test_ttest_uses_the_subjects_that_have_each_edge(planted):
    """Each edge is scipy.stats.ttest_ind over the subjects that have it; an
    edge fewer than 2 subjects of a group have is not tested and not in the FDR."""
    matrices, groups = planted
    matrices = matrices.copy()
    matrices[[0, 30], 3, :] = matrices[[0, 30], :, 3] = np.nan  # region 3: 2 subjects lack it
    matrices[25:44, 9, :] = matrices[25:44, :, 9] = np.nan      # region 9: 1 patient has it
    matrices[:, 10, :] = matrices[:, :, 10] = np.nan            # region 10: nobody has it
    table = edgewise_ttest(matrices, groups, names=NAMES)
    rows, cols = np.triu_indices(N_REGIONS, 1)
    in_a = (groups == "control").to_numpy()
    for k, (i, j) in enumerate(zip(rows, cols)):
        values = matrices[:, i, j]
        has = ~np.isnan(values)
        a, b = values[has & in_a], values[has & ~in_a]
        assert (table["n_a"][k], table["n_b"][k]) == (len(a), len(b))
        if len(a) and len(b):
            np.testing.assert_allclose([table["mean_a"][k], table["mean_b"][k]],
                                       [a.mean(), b.mean()], rtol=1e-12)
        else:
            assert np.isnan(table["mean_a"][k]) and np.isnan(table["mean_b"][k])
        if min(len(a), len(b)) < 2:
            small = "control" if len(a) < 2 else "patient"
            assert np.isnan(table["p"][k]) and table["note"][k] == (
                f"not tested: n/a in {int((~has).sum())} subject(s) (a region without data); "
                f"{min(len(a), len(b))} subject(s) of group '{small}' have the edge, a "
                "two-sample t-test needs at least 2 per group")
            continue
        expected = stats.ttest_ind(a, b)
        np.testing.assert_allclose([table["t"][k], table["p"][k]],
                                   [expected.statistic, expected.pvalue], rtol=1e-12)
    tested = table["note"] == ""
    assert tested.sum() == len(table) - 2 * (N_REGIONS - 1) + 1  # regions 9 and 10
    np.testing.assert_array_equal(table.loc[tested, "q"], stats.false_discovery_control(
        table.loc[tested, "p"], method="bh"))
    assert table.loc[~tested, "q"].isna().all() and not table.loc[~tested, "significant"].any()
    # without n/a: the same table as before
    clean = edgewise_ttest(planted[0], groups, names=NAMES)
    assert (clean["n_a"] == 25).all() and (clean["note"] == "").all()


def test_classification_uses_the_edges_every_subject_has(separable):
    """Features n/a in some subject are left out for all; the note counts them."""
    matrices, labels = separable
    with_na = matrices.copy()
    with_na[3, 5, :] = with_na[3, :, 5] = np.nan
    table = classify_phenotype({"x": with_na}, labels, n_splits=3, n_repeats=2)
    vectors = sym_matrix_to_vec(with_na)
    complete = ~np.isnan(vectors).any(axis=0)
    assert (~complete).sum() == N_REGIONS  # region 5's row of the lower triangle + diagonal
    direct = classify_phenotype({"x": vectors[:, complete]}, labels, n_splits=3, n_repeats=2)
    assert table["accuracy_mean"].item() == direct["accuracy_mean"].item()
    assert table["note"].item() == (f"ran on {complete.sum()} of {complete.size} features: "
                                    f"{N_REGIONS} n/a in some subject left out")
    every = matrices.copy()
    every[:, 0, 0] = np.nan
    every[0] = np.nan
    table = classify_phenotype({"x": every}, labels, n_splits=3, n_repeats=1)
    assert np.isnan(table["accuracy_mean"].item())
    assert table["note"].item().startswith("not run: every one of the 78 features is n/a")
