"""The tables of a phenotype contrast with a missing group
(`cohort_connectome.comparison.untested_contrast`, what compare_groups writes
when the included subjects cover one level only)."""

import numpy as np

from cohort_connectome.comparison import CLASSIFY_COLUMNS, TTEST_COLUMNS, untested_contrast


def test_untested_contrast_tables():
    rng = np.random.default_rng(0)
    stack = rng.standard_normal((3, 3, 3))
    ttest, classes = untested_contrast(stack, ["adhd"] * 3, ["A", "B", "C"], ("adhd", "ctl"),
                                       "dx", "correlation", n_splits=4, n_repeats=2)
    assert list(ttest.columns) == list(TTEST_COLUMNS) and len(ttest) == 3
    assert ttest[["region_i", "region_j"]].values.tolist() == [["A", "B"], ["A", "C"],
                                                               ["B", "C"]]
    assert (ttest["n_a"] == 3).all() and (ttest["n_b"] == 0).all()
    np.testing.assert_allclose(ttest["mean_a"], stack[:, [0, 0, 1], [1, 2, 2]].mean(axis=0))
    assert ttest["mean_b"].isna().all() and ttest[["t", "p", "q"]].isna().all().all()
    assert not ttest["significant"].any()
    assert (ttest["note"] == "not tested: no included subject in group 'ctl' of phenotype "
                             "column 'dx'").all()
    assert list(classes.columns) == list(CLASSIFY_COLUMNS)
    row = classes.iloc[0]
    assert (row["kind"], row["n_splits"], row["n_repeats"], row["n_subjects"]) == \
        ("correlation", 4, 2, 3)
    assert row["note"].startswith("not run: no included subject in group 'ctl'")
    assert untested_contrast(stack[:0], [], ["A", "B", "C"], ("a", "b"), "dx",
                             "correlation")[0]["note"].iloc[0].endswith("group 'a' of "
                                                                         "phenotype column 'dx'")
