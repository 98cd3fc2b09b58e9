"""The MSDL atlas and the ADHD-200 subset that nilearn's example uses.

Where each dataset comes from (URLs, known hashes, the 40 subject ids), where
it goes in the cache, and its fetchers: each archive is downloaded once
(`download.fetch_file`: verified, pinned, mirrored) and the files the
workflow needs are extracted from it (`archives.safe_extract`).  Mirrors
nilearn's ``fetch_atlas_msdl`` and ``fetch_adhd`` (same files, same subject
order), and builds the ADHD-200 participants table with each site's true
repetition time.

Cache layout (below `download`'s)::

    <cache>/msdl/MSDL_rois/msdl_rois.nii          (and labels, README)
    <cache>/adhd/ADHD200_40subs_*.csv             the metadata tables
    <cache>/adhd/data/<id>/<id>_rest_tshift_RPI_voreg_mni.nii.gz
    <cache>/adhd/data/<id>/<id>_regressors.csv
"""

import logging
import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pandas as pd

from ..errors import InputError
from ..io import read_table
from .archives import list_members, safe_extract
from .download import expected_hash, fetch_with_hash

log = logging.getLogger("cohort_connectome.fetch")

MSDL_URL = "https://team.inria.fr/parietal/files/2015/01/MSDL_rois.zip"
MSDL_SHA256 = "212dc16e87c5f67857ec344caf30405c3563566ba9728e2e99481f0fa4f83d98"

ADHD_METADATA_URL = "https://www.nitrc.org/frs/download.php/7781/adhd40_metadata.tgz"
ADHD_PHENOTYPIC_NAME = "ADHD200_40subs_motion_parameters_and_phenotypics.csv"
ADHD_SLICE_TIMING_NAME = "ADHD200_40subs_slice_timing_parameters.csv"
#: Voxel grid of the subset's preprocessed runs (MNI, 3 mm), known before they
#: are fetched so that the atlas is resampled once for all of them (a run on
#: another grid has the maps resampled for it alone, see jobs.subject.extract_timeseries).
ADHD_SHAPE = (61, 73, 61)
ADHD_AFFINE = ((-3.0, 0.0, 0.0, 90.0), (0.0, 3.0, 0.0, -126.0), (0.0, 0.0, 3.0, -72.0),
               (0.0, 0.0, 0.0, 1.0))

#: The 40 subjects of nilearn's ADHD-200 subset, in ascending order, as
#: ``nilearn.datasets.func.adhd_ids()``; subject ``k`` is NITRC download
#: ``7782 + k``.
ADHD_IDS = (
    "0010042", "0010064", "0010128", "0021019", "0023008", "0023012", "0027011",
    "0027018", "0027034", "0027037", "1019436", "1206380", "1418396", "1517058",
    "1552181", "1562298", "1679142", "2014113", "2497695", "2950754", "3007585",
    "3154996", "3205761", "3520880", "3624598", "3699991", "3884955", "3902469",
    "3994098", "4016887", "4046678", "4134561", "4164316", "4275075", "6115230",
    "7774305", "8409791", "8697774", "9744150", "9750701",
)
_ADHD_FIRST_DOWNLOAD = 7782


def adhd_ids(subjects=None, n_subjects=40):
    """The ADHD-200 ids a cohort uses: ``subjects`` (validated, in ADHD_IDS
    order) if given, else the first ``n_subjects`` of `ADHD_IDS` (as nilearn's
    ``fetch_adhd(n_subjects)``)."""
    if subjects:
        chosen = {_adhd_id(s) for s in subjects}
        return [i for i in ADHD_IDS if i in chosen]
    if not 1 <= int(n_subjects) <= len(ADHD_IDS):
        raise InputError(f"n_subjects must be between 1 and {len(ADHD_IDS)}, got {n_subjects}")
    return list(ADHD_IDS[: int(n_subjects)])


def adhd_subject_url(subject_id):
    """The NITRC URL of one subject's archive of nilearn's ADHD-200 subset.

    Parameters
    ----------
    subject_id : str or int
        One of `ADHD_IDS` (an int is zero-padded to 7 digits).

    Returns
    -------
    str
    """
    sid = _adhd_id(subject_id)
    number = _ADHD_FIRST_DOWNLOAD + ADHD_IDS.index(sid)
    return f"https://www.nitrc.org/frs/download.php/{number}/adhd40_{sid}.tgz"


def _adhd_id(subject_id):
    text = str(subject_id).strip()
    if text.startswith("sub-"):
        text = text[4:]
    if text.isdigit():
        text = text.zfill(7)
    if text not in ADHD_IDS:
        raise InputError(f"unknown ADHD-200 subject id {subject_id!r}: the ids are the 40 "
                         f"of cohort_connectome.fetch.datasets.ADHD_IDS ({', '.join(ADHD_IDS)})")
    return text


# --------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------
def _stamp_path(first_output, archive_name):
    return Path(first_output).parent / f".{archive_name}.sha256"


def _is_extracted(outputs, stamp, sha256):
    """Are ``outputs`` present and extracted from an archive of hash ``sha256``?"""
    if not sha256 or not all(Path(p).is_file() for p in outputs):
        return False
    try:
        return stamp.read_text().strip() == sha256
    except FileNotFoundError:
        return False


def _fetch_and_extract(url, cache_dir, dest, outputs, members, known_hash, registry,
                       mirror, retries, progress, find=None):
    """Fetch ``url`` and extract ``members`` into ``dest`` unless already done.

    ``find`` (archive -> members) picks the members once the archive is there.
    """
    cache_dir = Path(cache_dir).expanduser().absolute()
    archive_name = PurePosixPath(urlsplit(url).path).name
    stamp = _stamp_path(outputs[0], archive_name)
    expected, _ = expected_hash(url, cache_dir, known_hash, registry)
    if _is_extracted(outputs, stamp, expected):
        return outputs
    archive, sha256 = fetch_with_hash(url, cache_dir, known_hash, registry, mirror, retries,
                                      progress)
    if find is not None:
        members = find(archive)
    try:
        safe_extract(archive, dest, members)
    except InputError as err:
        raise err.with_context(path=archive) from None
    missing = [str(p) for p in outputs if not Path(p).is_file()]
    if missing:
        raise InputError(f"archive did not provide {', '.join(missing)}", path=archive)
    fd, tmp = tempfile.mkstemp(prefix=f"{stamp.name}.", suffix=".tmp", dir=stamp.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(sha256 + "\n")
    os.replace(tmp, stamp)
    log.info("%s: extracted into %s", archive, dest)
    return outputs


def _find_by_name(archive, names, rename):
    """Map the members whose base name is in ``names`` to ``rename(base name)``."""
    found = {}
    for member in list_members(archive):
        base = PurePosixPath(member.replace("\\", "/")).name
        if base in names and not member.endswith("/"):
            found.setdefault(base, member)
    missing = [n for n in names if n not in found]
    if missing:
        raise InputError(f"archive has no file named {', '.join(missing)}", path=archive)
    return {found[n]: rename(n) for n in names}


def msdl_paths(cache_dir):
    """Where `fetch_msdl` puts the atlas: ``{"maps": ..., "labels": ...}``."""
    folder = Path(cache_dir).expanduser().absolute() / "msdl" / "MSDL_rois"
    return {"maps": folder / "msdl_rois.nii", "labels": folder / "msdl_rois_labels.csv"}


def adhd_metadata_paths(cache_dir):
    """Where `fetch_adhd_metadata` puts its tables: ``{"phenotypic", "slice_timing"}``."""
    root = Path(cache_dir).expanduser().absolute() / "adhd"
    return {"phenotypic": root / ADHD_PHENOTYPIC_NAME,
            "slice_timing": root / ADHD_SLICE_TIMING_NAME}


def adhd_subject_paths(cache_dir, subject_id, validate=True):
    """Where `fetch_adhd_subject` puts a subject's files: ``{"func", "confounds"}``.

    With ``validate=False`` the id is used as given (e.g. a Snakemake
    wildcard such as ``"{adhd}"``).
    """
    sid = _adhd_id(subject_id) if validate else str(subject_id)
    folder = Path(cache_dir).expanduser().absolute() / "adhd" / "data" / sid
    return {"func": folder / f"{sid}_rest_tshift_RPI_voreg_mni.nii.gz",
            "confounds": folder / f"{sid}_regressors.csv"}


def fetch_msdl(cache_dir, mirror=None, registry=None, progress=True, retries=3):
    """Fetch the MSDL probabilistic atlas (39 maps), as nilearn's `fetch_atlas_msdl`.

    Parameters
    ----------
    cache_dir : str or Path
    mirror, registry, progress, retries
        See `download.fetch_file`.

    Returns
    -------
    dict
        ``maps``: ``<cache>/msdl/MSDL_rois/msdl_rois.nii`` (4D, float64) and
        ``labels``: ``<cache>/msdl/MSDL_rois/msdl_rois_labels.csv``.
        A second call finds both and neither downloads nor extracts.
    """
    paths = msdl_paths(cache_dir)
    _fetch_and_extract(MSDL_URL, cache_dir, paths["maps"].parent.parent,
                       [paths["maps"], paths["labels"]], None, MSDL_SHA256,
                       registry, mirror, retries, progress)
    return paths


def fetch_adhd_metadata(cache_dir, mirror=None, registry=None, progress=True, retries=3):
    """Fetch the phenotypic and slice-timing tables of nilearn's ADHD-200 subset.

    The two CSVs are found by name anywhere in ``adhd40_metadata.tgz``.

    Returns
    -------
    dict
        ``phenotypic`` and ``slice_timing``: paths under ``<cache>/adhd/``.
    """
    paths = adhd_metadata_paths(cache_dir)
    outputs = [paths["phenotypic"], paths["slice_timing"]]
    names = [p.name for p in outputs]
    _fetch_and_extract(ADHD_METADATA_URL, cache_dir, outputs[0].parent, outputs, None, None,
                       registry, mirror, retries, progress,
                       find=lambda archive: _find_by_name(archive, names, lambda n: n))
    return paths


def fetch_adhd_subject(subject_id, cache_dir, mirror=None, registry=None, progress=True,
                       retries=3):
    """Fetch one subject's preprocessed run and regressors of the ADHD-200 subset.

    Parameters
    ----------
    subject_id : str or int
        One of `ADHD_IDS`.
    cache_dir, mirror, registry, progress, retries
        See `download.fetch_file`.

    Returns
    -------
    dict
        ``func``: ``<cache>/adhd/data/<id>/<id>_rest_tshift_RPI_voreg_mni.nii.gz``,
        ``confounds``: ``<cache>/adhd/data/<id>/<id>_regressors.csv`` (tab-separated).
    """
    sid = _adhd_id(subject_id)
    paths = adhd_subject_paths(cache_dir, sid)
    outputs = [paths["func"], paths["confounds"]]
    names = [p.name for p in outputs]
    _fetch_and_extract(adhd_subject_url(sid), cache_dir, outputs[0].parents[2], outputs, None,
                       None, registry, mirror, retries, progress,
                       find=lambda archive: _find_by_name(
                           archive, names, lambda n: f"data/{sid}/{n}"))
    return paths


# --------------------------------------------------------------------------
# participants table
# --------------------------------------------------------------------------
def _clean_column(name):
    """``"MeanFD"`` -> ``"mean_fd"``, ``"Rest.Scan"`` -> ``"rest_scan"``."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name))
    text = re.sub(r"(?<=[A-Z]{2})(?=[a-z])", "_", text)
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


def _site_tr(site, trs, path):
    """TR of ``site``: exact name, else case-insensitive, else without ``_<n>``."""
    if site in trs:
        return trs[site]
    lowered = {k.lower(): v for k, v in trs.items()}
    for key in (site.lower(), re.sub(r"_\d+$", "", site).lower()):
        if key in lowered:
            return lowered[key]
    raise InputError(f"site {site!r} has no TR in the slice-timing table (sites: "
                     f"{', '.join(trs)})", path=path)


def adhd_participants(phenotypic_csv, slice_timing_csv, subject_ids):
    """Participants table of ADHD-200 subjects: id, per-site TR, phenotypes.

    Parameters
    ----------
    phenotypic_csv : str or Path
        ``ADHD200_40subs_motion_parameters_and_phenotypics.csv``.
    slice_timing_csv : str or Path
        ``ADHD200_40subs_slice_timing_parameters.csv`` (``Site``, ``TR (seconds)``).
    subject_ids : sequence of str or int

    Returns
    -------
    pandas.DataFrame
        One row per requested id, in the given order: ``participant_id`` (the
        7-digit id), ``t_r`` (s, the site's TR), ``site``, ``age``, ``sex``,
        ``adhd``, then every other column of the phenotypic table but the
        unnamed index and ``Subject``, with snake_case names (``MeanFD`` ->
        ``mean_fd``, ``Rest.Scan`` -> ``rest_scan``).
    """
    pheno = read_table(phenotypic_csv, dtype={"Subject": str})
    pheno = pheno.loc[:, [not (str(c).startswith("Unnamed:") or not str(c).strip())
                          for c in pheno.columns]]
    for column in ("Subject", "site"):
        if column not in pheno.columns:
            raise InputError(f"phenotypic table lacks column {column!r}", path=phenotypic_csv)
    ids = pheno["Subject"].astype(str).str.strip().str.zfill(7)
    if ids.duplicated().any():
        raise InputError("phenotypic table lists a Subject twice", path=phenotypic_csv)
    pheno = pheno.drop(columns="Subject")
    clean = [_clean_column(c) for c in pheno.columns]
    if len(set(clean)) != len(clean) or {"participant_id", "t_r"} & set(clean):
        raise InputError("phenotypic column names clash once cleaned", path=phenotypic_csv)
    pheno.columns = clean
    pheno.insert(0, "participant_id", ids.to_numpy())
    pheno = pheno.set_index("participant_id", drop=False)

    timing = read_table(slice_timing_csv)
    tr_column = next((c for c in timing.columns if str(c).strip().lower().startswith("tr")),
                     None)
    if "Site" not in timing.columns or tr_column is None:
        raise InputError("slice-timing table needs columns 'Site' and 'TR (seconds)'",
                         path=slice_timing_csv)
    trs = dict(zip(timing["Site"].astype(str).str.strip(),
                   pd.to_numeric(timing[tr_column], errors="coerce")))

    wanted = []
    for subject in subject_ids:
        text = str(subject).strip()
        text = text[4:] if text.startswith("sub-") else text
        wanted.append(text.zfill(7) if text.isdigit() else text)
    unknown = [s for s in wanted if s not in pheno.index]
    if unknown:
        raise InputError(f"subject(s) {', '.join(unknown)} not in the phenotypic table",
                         path=phenotypic_csv)
    if len(set(wanted)) != len(wanted):
        raise InputError("subject ids requested twice", path=phenotypic_csv)
    table = pheno.loc[wanted].reset_index(drop=True)
    t_r = [_site_tr(str(site).strip(), trs, slice_timing_csv) for site in table["site"]]
    if any(pd.isna(v) or v <= 0 for v in t_r):
        raise InputError("slice-timing table has a missing or non-positive TR",
                         path=slice_timing_csv)
    table.insert(1, "t_r", [float(v) for v in t_r])
    first = ["participant_id", "t_r", *[c for c in ("site", "age", "sex", "adhd")
                                        if c in table.columns]]
    return table[first + [c for c in table.columns if c not in first]]
