"""Tables at the edges: labels (real MSDL header), confounds (real ADHD
regressors), matrices and time series, atomic writes."""

import numpy as np
import pandas as pd
import pytest

from cohort_connectome import io
from cohort_connectome.errors import InputError


def test_msdl_labels_header_and_padding(msdl_labels_path):
    """The real MSDL labels (`x,y,z,name,net name`, names padded with spaces)
    read as name/network/x/y/z with the padding stripped, as nilearn's
    fetch_atlas_msdl does."""
    labels = io.read_labels(msdl_labels_path, n_maps=39)
    assert list(labels.columns) == ["name", "network", "x", "y", "z"]
    assert len(labels) == 39
    assert labels["name"].str.strip().equals(labels["name"])
    assert labels["network"].str.strip().equals(labels["network"])
    assert "R TPJ" in set(labels["name"]) and "Language" in set(labels["network"])
    assert labels["network"].nunique() == 17
    raw = pd.read_csv(msdl_labels_path)
    np.testing.assert_allclose(labels[["x", "y", "z"]].to_numpy(),
                               raw[["x", "y", "z"]].to_numpy())


def test_labels_count_must_match_maps(msdl_labels_path):
    with pytest.raises(InputError, match="39 rows but the atlas has 40 maps"):
        io.read_labels(msdl_labels_path, n_maps=40)


def test_labels_missing_column(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("name\tx\ty\tz\nA\t1\t2\t3\n")
    with pytest.raises(InputError, match="lacks column.*network"):
        io.read_labels(path)


def test_missing_table_is_reported():
    with pytest.raises(InputError, match="file not found"):
        io.read_table("does/not/exist.tsv", subject="sub-01")


@pytest.mark.parametrize("raw, label", [("01", "sub-01"), ("sub-01", "sub-01"),
                                        (10042, "sub-10042"), ("sub-ABC1", "sub-ABC1")])
def test_participant_label(raw, label):
    assert io.participant_label(raw) == label


@pytest.mark.parametrize("raw", ["", "sub-", "01_a", "sub-sub-01", "a b"])
def test_participant_label_rejects(raw):
    with pytest.raises(InputError, match="not a valid BIDS label"):
        io.participant_label(raw)


def test_matrix_and_timeseries_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((4, 4))
    names = ["A", "B C", "D", "E"]
    io.write_matrix(matrix, names, tmp_path / "m.tsv")
    back, back_names = io.read_matrix(tmp_path / "m.tsv")
    assert back_names == names
    np.testing.assert_allclose(back, matrix, rtol=1e-9)
    assert (tmp_path / "m.tsv").read_text().splitlines()[0] == "region\tA\tB C\tD\tE"
    signals = rng.standard_normal((5, 4)).astype(np.float32)
    io.write_timeseries(signals, names, tmp_path / "t.tsv")
    back, back_names = io.read_timeseries(tmp_path / "t.tsv")
    assert back_names == names
    np.testing.assert_array_equal(back.astype(np.float32), signals)  # float32 round trip


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.tsv"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_input_error_is_one_line():
    err = InputError("image is 3D,\n expected a 4D run", path="/x/run.nii.gz", subject="sub-01")
    assert str(err) == "sub-01: /x/run.nii.gz: image is 3D, expected a 4D run"
    assert str(InputError("bad").with_context(path="p", subject="sub-2")) == "sub-2: p: bad"
