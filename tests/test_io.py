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


def test_numpy_writers_match_pandas_bytes_and_round_trip(tmp_path):
    """Region signals and matrices are written without pandas, with the same
    bytes as DataFrame.to_csv (FLOAT_FORMAT, n/a for NaN), and read back to
    the written precision; an excluded run (no rows) round-trips too."""
    import pandas as pd

    from cohort_connectome import io

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 6)) * 10.0 ** rng.integers(-12, 12, (40, 6))
    x[3, 2], x[4, 1], x[5, 5] = np.nan, 0.0, -0.0
    names = [f"region {i}" for i in range(6)]
    io.write_timeseries(x, names, tmp_path / "ours.tsv")
    pd.DataFrame(x, columns=names).to_csv(tmp_path / "pandas.tsv", sep="\t", index=False,
                                          float_format=io.FLOAT_FORMAT, lineterminator="\n",
                                          na_rep="n/a")
    assert (tmp_path / "ours.tsv").read_bytes() == (tmp_path / "pandas.tsv").read_bytes()
    values, read_names = io.read_timeseries(tmp_path / "ours.tsv")
    assert read_names == names
    expected = np.array([[float(io.FLOAT_FORMAT % v) for v in row] for row in x])
    np.testing.assert_array_equal(values, expected)

    m = x[:6]
    io.write_matrix(m, names, tmp_path / "m.tsv")
    table = pd.DataFrame(m, index=names, columns=names)
    table.index.name = "region"
    table.to_csv(tmp_path / "mp.tsv", sep="\t", float_format=io.FLOAT_FORMAT,
                 lineterminator="\n", na_rep="n/a")
    assert (tmp_path / "m.tsv").read_bytes() == (tmp_path / "mp.tsv").read_bytes()
    values, read_names = io.read_matrix(tmp_path / "m.tsv")
    np.testing.assert_array_equal(values, expected[:6])
    assert read_names == names

    io.write_timeseries(np.zeros((0, 3)), ["a", "b", "c"], tmp_path / "empty.tsv")
    assert (tmp_path / "empty.tsv").read_text() == "a\tb\tc\n"
    assert io.read_timeseries(tmp_path / "empty.tsv")[0].shape == (0, 3)
    (tmp_path / "bad.tsv").write_text("a\tb\n1\tx\n")
    with pytest.raises(InputError, match="bad.tsv: not a numeric table"):
        io.read_timeseries(tmp_path / "bad.tsv", subject="sub-01")
    with pytest.raises(ValueError, match="tabs"):
        io.write_timeseries(np.zeros((1, 1)), ["a\tb"], tmp_path / "x.tsv")


def test_atomic_write_removes_a_killed_writers_temporary(tmp_path):
    """A writer killed mid-write (kill -9) leaves ``.<name>.<random>.tmp<ext>``
    beside its output; the next write of that output removes it, and only its
    own (another output's temporary is kept)."""
    target = tmp_path / "sub-01_timeseries.tsv"
    stale = tmp_path / ".sub-01_timeseries.tsv.k3j9x2ab.tmp.tsv"
    other = tmp_path / ".sub-02_timeseries.tsv.k3j9x2ab.tmp.tsv"
    stale.write_text("partial")
    other.write_text("partial")
    io.write_timeseries(np.ones((2, 2)), ["A", "B"], target)
    assert not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, target.name]


def test_atomic_write_honours_the_umask(tmp_path):
    """Outputs get 0o666 minus the umask (``mkstemp`` alone would give 0600)."""
    import os

    old = os.umask(0o027)
    try:
        io.write_json({"a": 1}, tmp_path / "a.json")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640
    io.write_json({"a": 1}, tmp_path / "b.json")
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o666 & ~old
# --------------------------------------------------------------------------
# read_columns: CSV/TSV into numpy columns, as pandas.read_csv (read_table)
# --------------------------------------------------------------------------


def nilearn_confounds_tables():
    """The fMRIPrep (and tedana, with text columns) tables of nilearn's wheel."""
    import nilearn.interfaces.fmriprep as fmriprep
    from pathlib import Path

    return sorted((Path(fmriprep.__file__).parent / "data").glob("*.tsv"))


def assert_columns_equal_pandas(path):
    """`read_columns` gives the columns, types and values of `read_table`
    (pandas), exactly: NaN where pandas has NaN, text as text."""
    import pandas as pd

    ours = io.read_columns(path)
    reference = io.read_table(path)
    assert ours.columns == list(reference.columns)
    assert len(ours) == len(reference)
    pd.testing.assert_frame_equal(ours.to_frame(), reference, check_exact=True)
    for name in ours.columns:
        assert ours[name].dtype.kind == reference[name].to_numpy().dtype.kind, name


def test_na_cells_are_pandas_defaults():
    from pandas._libs.parsers import STR_NA_VALUES

    assert io.NA_CELLS == set(STR_NA_VALUES) | {"n/a", "N/A"}


def test_read_columns_matches_pandas_on_real_adhd_regressors(adhd_regressors_paths):
    """The five real ADHD-200 ``*_regressors.csv`` (tab-separated despite the
    name, 17 float columns, 17-digit values) read as pandas reads them."""
    for path in adhd_regressors_paths.values():
        assert_columns_equal_pandas(path)


@pytest.mark.parametrize("path", nilearn_confounds_tables(), ids=lambda p: p.stem)
def test_read_columns_matches_pandas_on_fmriprep_tables(path):
    """nilearn's shipped fMRIPrep tables (n/a on derivative rows, int
    non-steady-state columns) and the tedana table (text columns)."""
    assert_columns_equal_pandas(path)


SYNTHETIC_TABLES = {
    "n/a and empty cells": "a\tb\tc\n1\tn/a\t\n2.5\t3\tN/A\n\t4\t5\n",
    "comma separated": "x,y\n1.5,-2e-3\n.5,1e+05\n",
    "pandas missing tokens": "a,b,c\nNA,nan,NULL\n1,#N/A,None\n2,-nan,<NA>\n",
    "non-numeric columns": "a,label,mixed\n1,left,1\n2,right,x\n3,,2\n",
    "text like missing": "a,b,c\n n/a,NAN,na\n1,2,3\n",
    "booleans": "a,b,c\nTrue,true,True\nFALSE,False,\n",
    "integers, floats, signs": "a,b,c,d\n+1,00012,-0,1\n-3,5,0,2.0\n",
    "spaces around numbers": "a,b\n 1.5, 2\n3 ,\t4\n",
    "infinities": "a,b,c\ninf,-Infinity, inf\n+INF,1e400,1\n",
    "not numbers": "a,b,c,d\n1_000,0x1A,1e,1.5f\n1,2,3,4\n",
    "quoted cells": 'a,"b,c"\n"1.5","n/a"\n" 2",""\n',
    "blank and whitespace lines": "a\tb\n\n1\t2\n   \n3\t4\n\t\n",
    "short rows": "a,b,c\n1\n2,3\n4,5,6\n",
    "empty and repeated names": "a,,a,a.1,a\n1,2,3,4,5\n",
    "byte-order mark and CRLF": "\ufeffa,b\r\n1,2\r\n3,4\r\n",
    "header only": "a\tb\n",
    "huge integers beside decimals": "a\n9223372036854775808\n1.5\n",
}


@pytest.mark.parametrize("text", SYNTHETIC_TABLES.values(), ids=SYNTHETIC_TABLES.keys())
def test_read_columns_matches_pandas_on_synthetic_tables(tmp_path, text):
    path = tmp_path / "table.csv"
    path.write_bytes(text.encode("utf-8"))
    assert_columns_equal_pandas(path)


def test_read_columns_numbers_match_pandas_bit_for_bit(tmp_path):
    """Random decimals of 1-39 digits, exponents to +-320, in the formats
    tables are written with: parsed to the same double as pandas."""
    import pandas as pd

    rng = np.random.default_rng(7)
    x = rng.standard_normal(3000) * 10.0 ** rng.integers(-12, 12, 3000)
    cells = [repr(v) for v in x.tolist()] + [f"{v:.10g}" for v in x.tolist()]
    cells += [f"{v:.25e}" for v in x[:1000].tolist()]
    for _ in range(2000):
        digits = "".join(rng.choice(list("0123456789"), int(rng.integers(1, 40))))
        point = int(rng.integers(0, len(digits)))
        cells.append(f"{'-' if rng.random() < 0.5 else ''}{digits[:point] or '0'}."
                     f"{digits[point:]}e{int(rng.integers(-320, 310))}")
    path = tmp_path / "numbers.tsv"
    path.write_text("v\n" + "\n".join(cells) + "\n")
    reference = pd.read_csv(path, sep="\t")["v"].to_numpy()
    np.testing.assert_array_equal(io.read_columns(path)["v"], reference)


def test_read_columns_errors_are_one_line(tmp_path):
    path = tmp_path / "long.tsv"
    path.write_text("a\tb\n1\t2\n1\t2\t3\n")
    with pytest.raises(InputError) as info:
        io.read_columns(path, subject="sub-01")
    assert str(info.value) == (f"sub-01: {path}: not a readable table: data row 2 has 3 "
                               "cells, the header 2")
    (tmp_path / "empty.tsv").write_text("\n1\t2\n")
    with pytest.raises(InputError, match="table is empty"):
        io.read_columns(tmp_path / "empty.tsv")
    (tmp_path / "latin1.tsv").write_bytes("a\tb\n1\t\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not a readable table: 'utf-8' codec"):
        io.read_columns(tmp_path / "latin1.tsv")
    with pytest.raises(InputError, match="file not found"):
        io.read_columns(tmp_path / "absent.tsv")


def test_write_numeric_table_matches_write_table_with_integer_columns(tmp_path):
    """The per-volume QC table (int volume, float FD with NaN, int flag) is
    written without pandas with the bytes pandas writes (`write_table`)."""
    import pandas as pd

    n = 300
    fd = np.random.default_rng(1).gamma(2.0, 0.05, n)
    fd[0] = np.nan
    fd[7], fd[8] = 0.0, 1234.5678901234
    kept = (fd < 0.2).astype(int)
    io.write_numeric_table(np.column_stack([np.arange(n), fd, kept]),
                           ["volume", "framewise_displacement", "kept"], tmp_path / "ours.tsv")
    io.write_table(pd.DataFrame({"volume": np.arange(n), "framewise_displacement": fd,
                                 "kept": kept}), tmp_path / "pandas.tsv")
    assert (tmp_path / "ours.tsv").read_bytes() == (tmp_path / "pandas.tsv").read_bytes()
