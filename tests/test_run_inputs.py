"""What a run's inputs give the cleaning job: its repetition time (the end
section of `cohort_connectome.cohort`) and its confounds and censoring (the
end section of `cohort_connectome.confounds`)."""

import json

import nibabel as nib
import numpy as np
import pytest

from cohort_connectome.cohort import T_R_SOURCES, repetition_time, sidecar_repetition_time
from cohort_connectome.confounds import read_run_confounds, run_confounds_and_censoring
from cohort_connectome.extraction import header_repetition_time
from cohort_connectome.errors import InputError


# --------------------------------------------------------------------------
# repetition time
# --------------------------------------------------------------------------
@pytest.mark.parametrize("values, expected", [
    ((1.5, 2.2, 2.5, 2.0), (1.5, "cohort sheet")),
    ((float("nan"), 2.2, 2.5, 2.0), (2.2, "config clean.t_r")),
    ((None, None, 2.5, 2.0), (2.5, "JSON sidecar")),
    ((None, None, None, 2.0), (2.0, "NIfTI header")),
    ((None, None, None, None), (None, None)),
])
def test_repetition_time_precedence(values, expected):
    assert repetition_time(*values) == expected
    assert expected[1] is None or expected[1] in T_R_SOURCES


def test_sidecar_repetition_time(tmp_path):
    path = tmp_path / "bold.json"
    path.write_text(json.dumps({"RepetitionTime": 2}))
    assert sidecar_repetition_time(path) == 2.0
    path.write_text(json.dumps({"TaskName": "rest"}))
    assert sidecar_repetition_time(path) is None
    for bad in ("2s", True, -1, 0):
        path.write_text(json.dumps({"RepetitionTime": bad}))
        with pytest.raises(InputError, match=r"^sub-01: \S*bold.json: RepetitionTime must be"):
            sidecar_repetition_time(path, subject="sub-01")
    path.write_text("{not json")
    with pytest.raises(InputError, match="not a readable JSON sidecar"):
        sidecar_repetition_time(path)


@pytest.mark.parametrize("zoom, unit, expected", [
    (2.5, "sec", 2.5), (2500.0, "msec", 2.5), (2.5e6, "usec", 2.5), (0.0, "sec", None),
])
def test_header_repetition_time(zoom, unit, expected):
    img = nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), np.eye(4))
    img.header.set_xyzt_units("mm", unit)
    img.header.set_zooms((1.0, 1.0, 1.0, zoom))
    got = header_repetition_time(img)
    assert got is None if expected is None else got == pytest.approx(expected)
    assert header_repetition_time(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32),
                                                  np.eye(4))) is None


# --------------------------------------------------------------------------
# confounds of a run
# --------------------------------------------------------------------------
def test_real_adhd_regressors_are_tab_separated_despite_csv(adhd_regressors_paths):
    """`*_regressors.csv` files are tab-separated with a header: sniffed; with
    no strategy and no columns every column is used, as read."""
    import pandas as pd

    path = adhd_regressors_paths["0010042"]
    values, names = read_run_confounds(path, 176)
    assert values.shape == (176, 17)
    assert names[:3] == ["csf", "constant", "linearTrend"]
    assert names[-1] == "compcor5"
    np.testing.assert_array_equal(values, pd.read_csv(path, sep="\t").to_numpy(dtype=float))


def test_confounds_columns_and_strategies(adhd_regressors_paths):
    path = adhd_regressors_paths["0027034"]
    values, names = read_run_confounds(path, 260, columns=["motion-x", "wm"])
    assert names == ["motion-x", "wm"] and values.shape == (260, 2)
    # explicit columns win over the strategy
    assert read_run_confounds(path, 260, strategy="36P", columns=["wm"])[1] == ["wm"]
    for strategy, k in (("none", 0), ("6P", 6), ("24P", 24), ("36P", 36)):
        assert read_run_confounds(path, 260, strategy=strategy)[0].shape == (260, k)
    with pytest.raises(InputError, match="lacks column.*motion-w"):
        read_run_confounds(path, 260, columns=["motion-w"], subject="sub-0027034")


def test_strategy_columns_missing_names_them(tmp_path):
    path = tmp_path / "conf.tsv"
    path.write_text("trans_x\ttrans_y\n1\t2\n3\t4\n")
    with pytest.raises(InputError) as err:
        read_run_confounds(path, 2, strategy="6P", subject="sub-01")
    assert str(path) in str(err.value) and "trans_z" in str(err.value)


def test_confounds_row_mismatch_is_one_line(adhd_regressors_paths):
    path = adhd_regressors_paths["0021019"]
    with pytest.raises(InputError) as err:
        read_run_confounds(path, 176, subject="sub-0021019")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"sub-0021019: {path}: ")
    assert "175 rows but the run has 176 volumes" in message


def test_confounds_comma_and_missing_values(tmp_path):
    path = tmp_path / "conf.csv"
    path.write_text("a,b\n1,2\n3,n/a\n5,6\n")
    with pytest.raises(InputError, match="b"):
        read_run_confounds(path, 3)
    path.write_text("a,b\n1,2\n3,4\n")
    values, names = read_run_confounds(path, 2)
    assert names == ["a", "b"] and values.tolist() == [[1, 2], [3, 4]]



def test_run_without_confounds_is_censored_by_dummy_scans_only():
    assert run_confounds_and_censoring(None, 10) == (None, [], None, None)
    confounds, names, mask, fd = run_confounds_and_censoring(None, 10, dummy_scans=3)
    assert confounds is None and names == [] and fd is None
    assert mask.tolist() == list(range(3, 10))
    with pytest.raises(InputError, match="fd_threshold needs a confounds table"):
        run_confounds_and_censoring(None, 10, fd_threshold=0.5)


def test_run_confounds_and_censoring_with_motion(tmp_path):
    """Motion columns give FD; censoring keeps the volumes under the
    threshold; without a threshold nor dummy scans every volume is kept (no
    mask) but FD is still reported; a table without motion gives no FD."""
    rng = np.random.default_rng(0)
    motion = rng.standard_normal((30, 6)).cumsum(axis=0) * 0.05
    path = tmp_path / "conf.tsv"
    path.write_text("trans_x\ttrans_y\ttrans_z\trot_x\trot_y\trot_z\n" + "\n".join(
        "\t".join(repr(v) for v in row) for row in motion.tolist()) + "\n")
    confounds, names, mask, fd = run_confounds_and_censoring(path, 30, strategy="6P")
    assert confounds.shape == (30, 6) and len(names) == 6 and mask is None
    assert fd.shape == (30,) and fd[0] == 0 and (fd[1:] > 0).all()
    threshold = float(np.quantile(fd[1:], 0.7))
    _, _, mask, fd = run_confounds_and_censoring(path, 30, strategy="6P",
                                                 fd_threshold=threshold)
    assert 0 < len(mask) < 30 and (fd[mask] <= threshold).all()
    other = tmp_path / "other.tsv"
    other.write_text("a\n" + "\n".join(str(v) for v in range(30)) + "\n")
    confounds, names, mask, fd = run_confounds_and_censoring(other, 30)
    assert names == ["a"] and mask is None and fd is None
