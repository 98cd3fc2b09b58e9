"""Job functions that the workflow tests do not reach on every branch:
where the repetition time comes from."""

import json
import logging

import numpy as np
import pytest

from cohort_connectome import io, jobs
from cohort_connectome.errors import InputError


@pytest.fixture
def raw(tmp_path):
    signals = np.random.default_rng(0).standard_normal((60, 3)) + 10
    io.write_timeseries(signals, ["A", "B", "C"], tmp_path / "raw.tsv")
    io.write_json({"RepetitionTimeHeader": 2.0, "DataType": "float64",
                   "Source": "run.nii.gz"}, tmp_path / "raw.json")
    return tmp_path


CLEAN = {"detrend": True, "standardize": "zscore_sample", "high_pass": 0.01}


@pytest.mark.parametrize("sheet_t_r, config_t_r, sidecar, expected, source", [
    (1.5, 2.2, 2.5, 1.5, "cohort sheet"),
    (None, 2.2, 2.5, 2.2, "config clean.t_r"),
    (None, None, 2.5, 2.5, "JSON sidecar"),
    (None, None, None, 2.0, "NIfTI header"),
])
def test_repetition_time_precedence(raw, sheet_t_r, config_t_r, sidecar, expected, source):
    bold_sidecar = None
    if sidecar is not None:
        bold_sidecar = raw / "bold.json"
        bold_sidecar.write_text(json.dumps({"RepetitionTime": sidecar}))
    jobs.clean_timeseries(raw / "raw.tsv", raw / "raw.json", None, raw / "c.tsv",
                          raw / "c.json", {**CLEAN, "t_r": config_t_r}, t_r=sheet_t_r,
                          subject="sub-01", bold_sidecar=bold_sidecar)
    info = json.loads((raw / "c.json").read_text())
    assert info["RepetitionTime"] == expected and info["RepetitionTimeSource"] == source


def test_header_disagreement_is_logged(raw, caplog):
    (raw / "bold.json").write_text(json.dumps({"RepetitionTime": 2.5}))
    with caplog.at_level(logging.WARNING, logger="cohort_connectome"):
        jobs.clean_timeseries(raw / "raw.tsv", raw / "raw.json", None, raw / "c.tsv",
                              raw / "c.json", CLEAN, bold_sidecar=raw / "bold.json")
    assert "differs from the NIfTI header's 2 s" in caplog.text


def test_bad_sidecar_is_one_line_error(raw):
    (raw / "bold.json").write_text(json.dumps({"RepetitionTime": "2s"}))
    with pytest.raises(InputError, match=r"sub-01: .*bold.json: RepetitionTime must be"):
        jobs.clean_timeseries(raw / "raw.tsv", raw / "raw.json", None, raw / "c.tsv",
                              raw / "c.json", CLEAN, subject="sub-01",
                              bold_sidecar=raw / "bold.json")
    assert not (raw / "c.tsv").exists()


def test_filtering_without_any_t_r_fails(raw):
    io.write_json({"RepetitionTimeHeader": None, "DataType": "float64", "Source": "r.nii"},
                  raw / "raw.json")
    with pytest.raises(InputError, match="filtering needs the repetition time"):
        jobs.clean_timeseries(raw / "raw.tsv", raw / "raw.json", None, raw / "c.tsv",
                              raw / "c.json", CLEAN, subject="sub-01")
