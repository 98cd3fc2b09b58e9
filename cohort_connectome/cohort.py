"""The cohort table: one row per run, whatever the source.

Every source (the embedded demo, a user's sheet, the ADHD-200 fetch, fMRIPrep
derivatives) is turned into the same table, indexed by the run's name (its
BIDS entities, ``sub-01_ses-1_task-rest_run-2``; for single-run sources simply
``sub-<id>``), with columns ``participant_id`` (``sub-<id>``), ``folder``
(``sub-<id>[/ses-<s>]``: where its outputs go), ``func`` (4D run path), ``confounds`` (path or
empty), ``sidecar`` (JSON with ``RepetitionTime``, path or empty), ``t_r``
(seconds or NaN: then the sidecar or the run header decides) and any
phenotype columns.  The workflow's input functions read only this table.
"""

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .io import participant_label, read_table

#: Columns with a meaning to the pipeline; every other sheet column is phenotype.
RESERVED_COLUMNS = ("participant_id", "folder", "func", "confounds", "t_r", "sidecar", "mask")


def _single_run_table(subjects):
    """An empty cohort table for one run per subject (the run is named by the subject)."""
    table = pd.DataFrame(index=pd.Index(subjects, name="key"))
    table["participant_id"] = subjects
    table["folder"] = subjects
    return table


def _labels(values, path, what):
    """``sub-<id>`` labels of a table's participant_id column; a missing id
    (an empty cell, or one pandas reads as missing: ``n/a``, ``NA``, ``nan``...)
    is an error naming its line, never a ``sub-nan``."""
    labels = []
    for line, raw in enumerate(values, start=2):  # line 1 is the header
        if raw is None or (isinstance(raw, float) and np.isnan(raw)) or not str(raw).strip():
            raise InputError(f"{what} has no participant_id on line {line} (empty, or a "
                             "value read as missing such as n/a or NA)", path=path)
        try:
            labels.append(participant_label(raw))
        except InputError as err:
            raise err.with_context(path=path) from None
    return labels


def read_sheet(path):
    """Read a cohort sheet (TSV/CSV): ``participant_id``, ``func``, optional
    ``confounds``, ``t_r``, ``sidecar`` (a JSON file with
    ``RepetitionTime``) and ``mask`` (the run's brain mask, for region
    coverage); other columns are phenotype.

    Paths in the sheet are relative to the sheet's folder.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    pandas.DataFrame
        Indexed by the run name (``sub-<id>``: one run per row), columns
        ``participant_id``, ``folder``, ``func``, ``confounds``, ``sidecar``,
        ``mask``, ``t_r`` then the phenotype columns in sheet order.
    """
    # ids are text: "01" must not become 1
    sheet = read_table(path, dtype={"participant_id": str})
    sheet.columns = [str(c).strip() for c in sheet.columns]
    for column in ("participant_id", "func"):
        if column not in sheet.columns:
            raise InputError(f"cohort sheet lacks the required column '{column}' "
                             f"(it has: {', '.join(sheet.columns)})", path=path)
    if sheet.empty:
        raise InputError("cohort sheet has no participants", path=path)
    base = os.path.dirname(os.fspath(path))

    def resolve(value):
        if pd.isna(value) or not str(value).strip():
            return ""
        value = os.path.expanduser(str(value).strip())
        return os.path.normpath(value if os.path.isabs(value) else os.path.join(base, value))

    subjects = _labels(sheet["participant_id"], path, "cohort sheet")
    table = _single_run_table(subjects)
    duplicated = table.index[table.index.duplicated()].unique()
    if len(duplicated):
        raise InputError(f"cohort sheet lists {', '.join(duplicated)} more than once",
                         path=path)
    folded = {}
    for subject in subjects:
        folded.setdefault(subject.lower(), []).append(subject)
    clashes = [" and ".join(names) for names in folded.values() if len(names) > 1]
    if clashes:
        raise InputError(f"cohort sheet lists {'; '.join(clashes)}, which differ only in "
                         "case (their outputs would share a folder on a case-insensitive "
                         "file system)", path=path)
    missing_func = [s for s, f in zip(subjects, sheet["func"]) if not resolve(f)]
    if missing_func:
        raise InputError(f"cohort sheet has no func path for {', '.join(missing_func)}",
                         path=path)
    table["func"] = [resolve(v) for v in sheet["func"]]
    for column in ("confounds", "sidecar", "mask"):
        table[column] = ([resolve(v) for v in sheet[column]]
                         if column in sheet.columns else "")
    if "t_r" in sheet.columns:
        t_r = pd.to_numeric(sheet["t_r"], errors="coerce").to_numpy()
        bad = [s for s, raw, v in zip(subjects, sheet["t_r"], t_r)
               if not pd.isna(raw) and not (np.isfinite(v) and v > 0)]
        if bad:
            raise InputError(f"cohort sheet has an invalid t_r for {', '.join(bad)} "
                             "(seconds, > 0)", path=path)
        table["t_r"] = t_r
    else:
        table["t_r"] = np.nan
    for column in sheet.columns:
        if column not in RESERVED_COLUMNS:
            table[column] = sheet[column].to_numpy()
    return table


def demo_cohort(design, root):
    """The cohort table of the embedded demo, with the paths its rules will write.

    Parameters
    ----------
    design : pandas.DataFrame
        From `cohort_connectome.demo.demo_design`.
    root : str
        Folder of the generated demo data (e.g. ``resources/demo``).

    Returns
    -------
    pandas.DataFrame, as `read_sheet`.  ``t_r`` is NaN: the demo runs carry
    their repetition time in the NIfTI header, as real runs do.
    """
    subjects = [participant_label(p) for p in design["participant_id"]]
    table = _single_run_table(subjects)
    table["func"] = [demo_run_path(root, s) for s in subjects]
    table["confounds"] = [demo_confounds_path(root, s) for s in subjects]
    table["sidecar"] = ""
    table["mask"] = ""
    table["t_r"] = np.nan
    for column in ("group", "age", "sex"):
        table[column] = design[column].to_numpy()
    return table


def adhd_cohort(subject_ids, cache_dir, root):
    """The cohort table of nilearn's ADHD-200 subset, with the paths its fetch
    rules will write.

    Parameters
    ----------
    subject_ids : sequence of str
        7-digit ids, in `cohort_connectome.fetch.datasets.ADHD_IDS` order.
    cache_dir : path
        The download cache (runs and regressors land there).
    root : str
        Folder of the workflow's own ADHD files (``participants.tsv`` and the
        per-run JSON sidecars holding each site's repetition time).

    Returns
    -------
    pandas.DataFrame, as `read_sheet`.  Phenotype is not in it: it is read
    from ``<root>/participants.tsv`` once the metadata are fetched.
    """
    from .fetch import adhd_subject_paths

    subjects = [participant_label(s) for s in subject_ids]
    table = _single_run_table(subjects)
    paths = [adhd_subject_paths(cache_dir, s) for s in subject_ids]
    table["func"] = [str(p["func"]) for p in paths]
    table["confounds"] = [str(p["confounds"]) for p in paths]
    table["sidecar"] = [adhd_sidecar_path(root, s) for s in subjects]
    table["mask"] = ""
    table["t_r"] = np.nan
    return table


def adhd_sidecar_path(root, subject):
    """Path of the JSON sidecar (RepetitionTime of the subject's site)."""
    return os.path.join(root, subject, "func", f"{subject}_task-rest_bold.json")


def demo_run_path(root, subject):
    """Path of a demo subject's 4D run."""
    return os.path.join(root, subject, "func", f"{subject}_task-rest_bold.nii.gz")


def demo_confounds_path(root, subject):
    """Path of a demo subject's confounds table."""
    return os.path.join(root, subject, "func",
                        f"{subject}_task-rest_desc-confounds_timeseries.tsv")


def read_phenotype(path):
    """Read the phenotype of a participants table (a cohort sheet, the demo's
    or the ADHD-200 ``participants.tsv``).

    Returns
    -------
    pandas.DataFrame
        ``participant_id`` (``sub-<id>``) then every column that is not a
        pipeline column (`RESERVED_COLUMNS`), in table order.
    """
    table = read_table(path, dtype={"participant_id": str})
    table.columns = [str(c).strip() for c in table.columns]
    if "participant_id" not in table.columns:
        raise InputError("participants table lacks the column 'participant_id'", path=path)
    ids = _labels(table["participant_id"], path, "participants table")
    out = table[[c for c in table.columns if c not in RESERVED_COLUMNS]].copy()
    out.insert(0, "participant_id", ids)
    return out.reset_index(drop=True)


def phenotype(table):
    """The phenotype part of a single-run cohort table, ``participant_id`` first."""
    columns = [c for c in table.columns if c not in RESERVED_COLUMNS]
    out = table[columns].copy()
    out.insert(0, "participant_id", table["participant_id"].to_numpy())
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------
# the repetition time of a run
# --------------------------------------------------------------------------
#: Where a run's repetition time comes from, in order of precedence.
T_R_SOURCES = ("cohort sheet", "config clean.t_r", "JSON sidecar", "NIfTI header")


def repetition_time(sheet=None, config=None, sidecar=None, header=None):
    """The repetition time of a run, and where it comes from.

    Parameters
    ----------
    sheet : float or None
        The run's ``t_r`` in the cohort table (NaN: not given).
    config : float or None
        The config value ``clean.t_r``.
    sidecar : float or None
        ``RepetitionTime`` of the run's JSON sidecar
        (`sidecar_repetition_time`).
    header : float or None
        The run's NIfTI header (`extraction.header_repetition_time`).

    Returns
    -------
    t_r : float or None
        The first value given, in the order of `T_R_SOURCES`.
    source : str or None
        Its entry of `T_R_SOURCES`; None when no value is given.
    """
    for value, source in zip((sheet, config, sidecar, header), T_R_SOURCES):
        if value is not None and not _is_nan(value):
            return float(value), source
    return None, None


def _is_nan(value):
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def sidecar_repetition_time(path, subject=None):
    """``RepetitionTime`` (s) of a BIDS-style JSON sidecar, or None when absent.

    Raises
    ------
    InputError
        The file is not readable JSON, or the value is not a positive number.
    """
    try:
        value = json.loads(Path(path).read_text()).get("RepetitionTime")
    except (OSError, ValueError) as err:
        raise InputError(f"not a readable JSON sidecar: {err}", path=path,
                         subject=subject) from None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"RepetitionTime must be a positive number of seconds, got {value!r}",
                         path=path, subject=subject)
    return float(value)
