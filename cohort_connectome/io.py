"""Tables and files at the edges of the pipeline.

Everything that reads or writes a file lives here, so that the numeric modules
stay pure.  Writers are atomic: they write a temporary file beside the target
and rename it, so a failed job never leaves a partial output.  Floats are
written with one fixed format so reruns are byte-identical.
"""

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

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
    was (absent, for a Snakemake output), so no partial output survives.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".gz") else path.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}",
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_table(path, subject=None, dtype=None):
    """Read a CSV or TSV with a header row; the separator (tab or comma) is sniffed.

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
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=path, subject=subject)
    with open(path, encoding="utf-8-sig") as handle:
        first = handle.readline()
    if not first.strip():
        raise InputError("table is empty (no header row)", path=path, subject=subject)
    sep = "\t" if "\t" in first else ","
    try:
        return pd.read_csv(path, sep=sep, na_values=["n/a", "N/A"], keep_default_na=True,
                           encoding="utf-8-sig", dtype=dtype)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(f"not a readable table: {err}", path=path, subject=subject) from err


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
        table[column] = table[column].astype(str).str.strip()
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


def write_timeseries(signals, names, path):
    """Write region signals: header = region names, one row per volume."""
    write_table(pd.DataFrame(np.asarray(signals), columns=list(names)), path)


def read_timeseries(path, subject=None):
    """Read a region time-series TSV written by `write_timeseries`.

    Returns
    -------
    signals : ndarray, shape (n_volumes, n_regions), float64
    names : list of str
    """
    table = read_table(path, subject=subject)
    return table.to_numpy(dtype=np.float64), [str(c) for c in table.columns]


def write_matrix(matrix, names, path):
    """Write a square matrix; header and first column are the region names."""
    table = pd.DataFrame(np.asarray(matrix), index=list(names), columns=list(names))
    table.index.name = "region"
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", float_format=FLOAT_FORMAT, lineterminator="\n")


def read_matrix(path):
    """Read a square matrix written by `write_matrix`.

    Returns
    -------
    matrix : ndarray, shape (n, n), float64
    names : list of str
    """
    table = pd.read_csv(path, sep="\t", index_col=0)
    return table.to_numpy(dtype=np.float64), [str(c) for c in table.columns]


def write_json(data, path):
    """Write a JSON sidecar (sorted keys, 2-space indent), atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_nifti(img, path):
    """Save a nibabel image atomically."""
    with atomic_path(path) as tmp:
        img.to_filename(str(tmp))
