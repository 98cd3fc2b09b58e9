"""Tables and files at the edges of the pipeline.

Everything that reads or writes a file lives here, so that the numeric modules
stay pure.  Writers are atomic: they write a temporary file beside the target
and rename it, so a failed job never leaves a partial output.  Floats are
written with one fixed format so reruns are byte-identical.
"""

import contextlib
import json
import math
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .errors import InputError

# pandas is imported by the functions that read or write a DataFrame: the
# extraction job, a process per run, uses this module without any table.

#: Format of every float written to a TSV: 10 significant digits, enough for
#: float32 round-trips and far below the parity tolerances.
FLOAT_FORMAT = "%.10g"

#: Columns a labels table must provide (after renaming the accepted aliases).
LABEL_COLUMNS = ("name", "network", "x", "y", "z")
_LABEL_ALIASES = {"net name": "network", "net_name": "network", "label": "name",
                  "region": "name"}


def participant_label(participant_id):
    """The ``sub-<id>`` label of a participant, whether or not the id has the prefix.

    Parameters
    ----------
    participant_id : str or int

    Returns
    -------
    str
        ``"sub-01"`` for ``"01"`` and for ``"sub-01"`` alike (never ``sub-sub-``).
    """
    text = str(participant_id).strip()
    if text.startswith("sub-"):
        text = text[4:]
    if not (text.isascii() and text.isalnum()):
        raise InputError(f"participant_id {participant_id!r} is not a valid BIDS label "
                         "(letters and digits only, optionally prefixed by 'sub-')")
    return f"sub-{text}"


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left as it
    was (absent, for a Snakemake output), so no partial output survives.  A
    process killed mid-write (``kill -9``, out of memory) cannot clean up:
    its temporary (``.<name>.<random>.tmp<suffix>``) is removed by the next
    write of the same output, so a rerun leaves none behind.  The output gets
    the usual permissions (``0o666`` minus the umask), not ``mkstemp``'s 0600.
    """
    import glob

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".gz") else path.suffix
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp{glob.escape(suffix)}"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}",
                               dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask():
    """The process umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_table(path, subject=None, dtype=None):
    """Read a CSV or TSV with a header row; the separator (tab or comma) is sniffed.

    ``pandas.read_csv`` with ``n/a`` and ``N/A`` read as missing besides
    pandas' defaults, and ``index_col=False``: a data row with more cells than
    the header is an error (pandas would otherwise take the first column as
    the row index and shift every column).

    Parameters
    ----------
    path : str or Path
    subject : str, optional
        Used in error messages.
    dtype : dict, optional
        Column types, passed to `pandas.read_csv` (e.g. ids kept as text).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        Missing, empty or unreadable file, rows longer than the header (one
        line: subject, file, problem).
    """
    import pandas as pd

    path = Path(path)
    sep = _sniff_separator(path, subject)
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(path, sep=sep, na_values=["n/a", "N/A"], keep_default_na=True,
                               encoding="utf-8-sig", dtype=dtype, index_col=False)
        except pd.errors.ParserWarning:
            raise InputError("not a readable table: data rows have more cells than the "
                             "header", path=path, subject=subject) from None
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            raise InputError(f"not a readable table: {err}", path=path,
                             subject=subject) from err


def _sniff_separator(path, subject=None):
    """The separator of a table with a header row: tab when its first line has
    one, else comma.

    Raises
    ------
    InputError
        The file is missing, not UTF-8, or its first line is blank.
    """
    if not path.is_file():
        raise InputError("file not found", path=path, subject=subject)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            first = handle.readline()
    except UnicodeDecodeError as err:
        raise InputError(f"not a readable table: {err}", path=path, subject=subject) from None
    if not first.strip():
        raise InputError("table is empty (no header row)", path=path, subject=subject)
    return "\t" if "\t" in first else ","


def read_labels(path, n_maps=None):
    """Read an atlas labels table: name, network, x, y, z (world mm).

    The MSDL header ``x,y,z,name,net name`` is accepted, and the space padding
    of its names is stripped.

    Parameters
    ----------
    path : str or Path
    n_maps : int, optional
        Number of maps of the atlas; the table must have one row per map.

    Returns
    -------
    pandas.DataFrame with columns ``name, network, x, y, z``.
    """
    import pandas as pd

    table = read_table(path)
    table.columns = [str(c).strip() for c in table.columns]
    table = table.rename(columns={c: _LABEL_ALIASES[c.lower()] for c in table.columns
                                  if c.lower() in _LABEL_ALIASES})
    missing = [c for c in LABEL_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"labels table lacks column(s) {', '.join(missing)} "
                         f"(needs {', '.join(LABEL_COLUMNS)}; 'net name' is accepted "
                         "for network)", path=path)
    table = table[list(LABEL_COLUMNS)].copy()
    for column in ("name", "network"):
        table[column] = table[column].fillna("").astype(str).str.strip()
    for column in ("x", "y", "z"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    if table[["x", "y", "z"]].isna().any().any():
        raise InputError("labels table has missing or non-numeric coordinates", path=path)
    if table["name"].duplicated().any():
        dupes = sorted(set(table["name"][table["name"].duplicated()]))
        raise InputError(f"labels table has duplicate region names: {', '.join(dupes)}",
                         path=path)
    if n_maps is not None and len(table) != n_maps:
        raise InputError(f"labels table has {len(table)} rows but the atlas has "
                         f"{n_maps} maps", path=path)
    return table.reset_index(drop=True)


def write_table(table, path, float_format=FLOAT_FORMAT):
    """Write a DataFrame as TSV (no index), atomically, with a fixed float format."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format=float_format,
                     lineterminator="\n", na_rep="n/a")


def _format_rows(values, labels=None):
    """TSV body lines of a float array as `write_table` writes them
    (``FLOAT_FORMAT``, NaN as ``n/a``), optionally led by a label column."""
    lines = []
    for i, row in enumerate(np.asarray(values, dtype=np.float64)):
        cells = ["n/a" if v != v else FLOAT_FORMAT % v for v in row.tolist()]
        if labels is not None:
            cells.insert(0, str(labels[i]))
        lines.append("\t".join(cells))
    return lines


def _write_lines(header, lines, path):
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join([header] + lines) + "\n")


def _check_names(names, n, what):
    names = [str(n_) for n_ in names]
    if len(names) != n:
        raise ValueError(f"{what}: {len(names)} names for {n} columns")
    bad = [n_ for n_ in names if any(c in n_ for c in "\t\n\r\"")]
    if bad:
        raise ValueError(f"{what}: names cannot contain tabs, newlines or quotes: {bad[:3]}")
    return names


def write_numeric_table(values, names, path):
    """Write a table of numbers: header = names, one line per row of ``values``.

    Same bytes as `write_table` of the equivalent DataFrame (``FLOAT_FORMAT``,
    NaN as ``n/a``), written with numpy alone.  Integers below 1e10 print as
    pandas prints an integer column (``%.10g`` of 3.0 is ``3``), so integer
    columns may be given as floats.

    Parameters
    ----------
    values : array-like, shape (n_rows, n_columns)
    names : list of str
        Column names (no tab, newline or quote).
    path : str or Path
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values must be 2D (rows, columns), got shape {values.shape}")
    names = _check_names(names, values.shape[1], "write_numeric_table")
    _write_lines("\t".join(names), _format_rows(values), path)


def write_timeseries(signals, names, path):
    """Write region signals: header = region names, one row per volume
    (`write_numeric_table`)."""
    signals = np.asarray(signals)
    if signals.ndim != 2:
        raise ValueError(f"signals must be 2D (volumes, regions), got shape {signals.shape}")
    write_numeric_table(signals, names, path)


def _read_numeric_tsv(path, subject=None, label_column=False):
    """Header names and float64 values of a TSV of numbers (``n/a`` = NaN)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=path, subject=subject)
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        body = handle.read()
    if header == [""]:
        raise InputError("table is empty (no header row)", path=path, subject=subject)
    names = header[1:] if label_column else header
    rows = [line.split("\t") for line in body.splitlines() if line]
    try:
        labels = [r[0] for r in rows] if label_column else None
        cells = [r[1:] if label_column else r for r in rows]
        if any(len(r) != len(names) for r in cells):
            raise ValueError("rows do not have one value per column")
        values = np.array([[math.nan if c in ("n/a", "N/A", "") else float(c) for c in r]
                           for r in cells], dtype=np.float64).reshape(len(cells), len(names))
    except ValueError as err:
        raise InputError(f"not a numeric table: {err}", path=path, subject=subject) from None
    return values, names, labels


def read_timeseries(path, subject=None):
    """Read a region time-series TSV written by `write_timeseries`.

    Returns
    -------
    signals : ndarray, shape (n_volumes, n_regions), float64
    names : list of str
    """
    values, names, _ = _read_numeric_tsv(path, subject=subject)
    return values, names


def write_matrix(matrix, names, path):
    """Write a square matrix; header and first column are the region names
    (first header cell ``region``)."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be square, got shape {matrix.shape}")
    names = _check_names(names, matrix.shape[1], "write_matrix")
    _write_lines("\t".join(["region"] + names), _format_rows(matrix, names), path)


def read_matrix(path):
    """Read a square matrix written by `write_matrix`.

    Returns
    -------
    matrix : ndarray, shape (n, n), float64
    names : list of str
    """
    values, names, _ = _read_numeric_tsv(path, label_column=True)
    return values, names


def read_json(path):
    """Read a JSON sidecar the workflow wrote (`write_json`)."""
    return json.loads(Path(path).read_text())


def write_json(data, path):
    """Write a JSON sidecar (sorted keys, 2-space indent), atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_nifti(path):
    """``nibabel.load(path)``, a failure as one line: InputError("not a readable
    NIfTI image: <nibabel's reason>") naming the file (data not read)."""
    import nibabel as nib

    try:
        return nib.load(path)
    except Exception as err:  # nibabel raises several types for bad files
        reason = " ".join(str(err).split()) or type(err).__name__
        raise InputError(f"not a readable NIfTI image: {reason}", path=path) from None


def save_nifti(img, path):
    """Save a nibabel image atomically."""
    with atomic_path(path) as tmp:
        img.to_filename(str(tmp))


def copy_gzipped(source, target):
    """Copy ``source`` to ``target`` (a ``.gz`` path) gzip-compressed, atomically:
    its bytes when it already is gzip data (magic bytes ``1f 8b``), else
    compressed with no name and a zero time in the gzip header (reruns write
    the same bytes)."""
    import gzip
    import shutil

    with open(source, "rb") as raw:
        packed_already = raw.read(2) == b"\x1f\x8b"
    with atomic_path(target) as tmp:
        if packed_already:
            shutil.copyfile(source, tmp)
            return
        with open(source, "rb") as raw, open(tmp, "wb") as out, \
                gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0,
                              compresslevel=6) as packed:
            shutil.copyfileobj(raw, packed, 2**20)


def write_npz(path, arrays):
    """Write named arrays as an uncompressed ``.npz``, atomically, with fixed zip
    dates so that a rerun writes the same bytes (``numpy.savez`` stamps the
    time).  No pickles: object arrays are refused."""
    import zipfile

    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            array = np.asarray(array)  # 0-d arrays stay 0-d (ascontiguousarray: 1-d)
            if not array.flags.c_contiguous:
                array = array.copy(order="C")
            # zip64 always: an entry's size is not known when its stream opens
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, array, allow_pickle=False)


def read_npz(path, what="a file written by this workflow"):
    """The arrays of a ``.npz`` written by `write_npz`, as a dict.

    Raises
    ------
    InputError
        Missing or unreadable file, naming ``what`` it should be.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"not {what}: {' '.join(str(err).split())}", path=path) from None
