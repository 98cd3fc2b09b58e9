"""Cohort sheets and the demo cohort table."""

import numpy as np
import pandas as pd
import pytest

from cohort_connectome import cohort
from cohort_connectome.demo import demo_design
from cohort_connectome.errors import InputError


def write_sheet(tmp_path, rows, name="participants.tsv", sep="\t"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, sep=sep, index=False)
    return path


def test_sheet_paths_ids_and_phenotype(tmp_path):
    (tmp_path / "sheets").mkdir()
    path = write_sheet(tmp_path / "sheets", {
        "participant_id": ["sub-01", "02"],
        "func": ["../data/a.nii.gz", "/abs/b.nii"],
        "confounds": ["a.tsv", np.nan],
        "t_r": [2.0, np.nan],
        "age": [10, 11],
        "group": ["x", "y"],
    }, name="cohort.csv", sep=",")
    table = cohort.read_sheet(path)
    assert list(table.index) == ["sub-01", "sub-02"]
    assert table.loc["sub-01", "func"] == str(tmp_path / "data" / "a.nii.gz")
    assert table.loc["sub-02", "func"] == "/abs/b.nii"
    assert table.loc["sub-01", "confounds"] == str(tmp_path / "sheets" / "a.tsv")
    assert table.loc["sub-02", "confounds"] == ""
    assert table.loc["sub-01", "t_r"] == 2.0 and np.isnan(table.loc["sub-02", "t_r"])
    pheno = cohort.phenotype(table)
    assert list(pheno.columns) == ["participant_id", "age", "group"]
    assert pheno["participant_id"].tolist() == ["sub-01", "sub-02"]


@pytest.mark.parametrize("rows, message", [
    ({"func": ["a.nii"]}, "lacks the required column 'participant_id'"),
    ({"participant_id": ["01"]}, "lacks the required column 'func'"),
    ({"participant_id": ["01", "sub-01"], "func": ["a", "b"]}, "sub-01 more than once"),
    ({"participant_id": ["01", "02"], "func": ["a", ""]}, "no func path for sub-02"),
    ({"participant_id": ["01"], "func": ["a"], "t_r": [-2]}, "invalid t_r for sub-01"),
    ({"participant_id": ["0 1"], "func": ["a"]}, "not a valid BIDS label"),
])
def test_sheet_errors(tmp_path, rows, message):
    path = write_sheet(tmp_path, rows)
    with pytest.raises(InputError, match=message) as err:
        cohort.read_sheet(path)
    assert str(path) in str(err.value)


def test_demo_cohort_table():
    design = demo_design(6, 3)
    table = cohort.demo_cohort(design, "resources/demo")
    assert list(table.index) == [f"sub-0{i}" for i in range(1, 7)]
    assert table.loc["sub-03", "func"] == "resources/demo/sub-03/func/sub-03_task-rest_bold.nii.gz"
    assert table["t_r"].isna().all()
    assert list(cohort.phenotype(table).columns) == ["participant_id", "group", "age", "sex"]


def test_read_phenotype(tmp_path):
    path = write_sheet(tmp_path, {"participant_id": ["01", "sub-02"], "func": ["a", "b"],
                                  "sidecar": ["x.json", ""], "age": [9, 10]})
    pheno = cohort.read_phenotype(path)
    assert list(pheno.columns) == ["participant_id", "age"]
    assert pheno["participant_id"].tolist() == ["sub-01", "sub-02"]
    bad = write_sheet(tmp_path, {"id": ["01"]}, name="bad.tsv")
    with pytest.raises(InputError, match="lacks the column 'participant_id'"):
        cohort.read_phenotype(bad)


def test_sheet_sidecar_column(tmp_path):
    path = write_sheet(tmp_path, {"participant_id": ["01"], "func": ["a.nii"],
                                  "sidecar": ["a.json"]})
    assert cohort.read_sheet(path).loc["sub-01", "sidecar"] == str(tmp_path / "a.json")


def test_read_phenotype_refuses_missing_ids(tmp_path):
    """An empty id is an error naming its line, not ``sub-nan``."""
    path = write_sheet(tmp_path, {"participant_id": ["01", np.nan], "age": [9, 10]})
    with pytest.raises(InputError, match=r"participants table has no participant_id on line 3"):
        cohort.read_phenotype(path)
