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
