"""Download the MSDL atlas and the ADHD-200 subset that nilearn's example uses.

Everything goes through pooch: a download lands in a temporary file in the
cache and is moved onto its final name only once its hash is verified, and
failed downloads are retried (pooch's ``retry_if_failed``).  On top of pooch
this module adds

* **hash pinning** -- the MSDL zip has a known sha256.  The ADHD archives have
  none upstream, so the first successful download records its sha256 in the
  lock file ``<cache>/cohort_connectome.lock.json`` and every later download
  must match it (trust on first use).  A user registry file (TSV or JSON,
  ``{url or file name: sha256}``) wins over both;
* **mirrors** -- ``https://<host>/<path>`` is fetched from
  ``<mirror>/<host>/<path>``;
* **safe extraction** -- archive members with absolute paths, ``..``, links
  pointing outside or device files are refused, and extraction happens in a
  temporary folder so a failure leaves nothing partial;
* **one-line errors** -- every failure is an `InputError` naming the URL and
  the problem.

Cache layout (``<cache>`` is `default_cache_dir`)::

    <cache>/cohort_connectome.lock.json           {url: sha256}, sorted
    <cache>/downloads/<host>/<url path>           the archives, as downloaded
    <cache>/msdl/MSDL_rois/msdl_rois.nii          (and labels, README)
    <cache>/adhd/ADHD200_40subs_*.csv             the metadata tables
    <cache>/adhd/data/<id>/<id>_rest_tshift_RPI_voreg_mni.nii.gz
    <cache>/adhd/data/<id>/<id>_regressors.csv
    <cache>/.locks/                               per-URL lock files (flock)
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pooch

from .errors import InputError

log = logging.getLogger("cohort_connectome.fetch")

MSDL_URL = "https://team.inria.fr/parietal/files/2015/01/MSDL_rois.zip"
MSDL_SHA256 = "212dc16e87c5f67857ec344caf30405c3563566ba9728e2e99481f0fa4f83d98"

ADHD_METADATA_URL = "https://www.nitrc.org/frs/download.php/7781/adhd40_metadata.tgz"
ADHD_PHENOTYPIC_NAME = "ADHD200_40subs_motion_parameters_and_phenotypics.csv"
ADHD_SLICE_TIMING_NAME = "ADHD200_40subs_slice_timing_parameters.csv"
#: Voxel grid of the subset's preprocessed runs (MNI, 3 mm), known before they
#: are fetched so that the atlas is resampled once for all of them (a run on
#: another grid has the maps resampled for it alone, see jobs.extract_timeseries).
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

#: Environment variable naming the data cache (below the config value).
CACHE_ENV = "COHORT_CONNECTOME_DATA"
#: Name of the lock file, in the cache folder: ``{url: sha256}``.
LOCK_NAME = "cohort_connectome.lock.json"
#: Seconds before a connection or a stalled read is given up (per attempt).
DOWNLOAD_TIMEOUT = 60
#: Bytes read per chunk while streaming a download.
CHUNK_SIZE = 1 << 16

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


# --------------------------------------------------------------------------
# URLs and cache location
# --------------------------------------------------------------------------
def default_cache_dir(configured=None):
    """The data cache folder.

    Parameters
    ----------
    configured : str or Path, optional
        The config value ``fetch.cache_dir``; wins when given.

    Returns
    -------
    Path
        ``configured``, else ``$COHORT_CONNECTOME_DATA``, else pooch's
        per-user cache ``os_cache("cohort_connectome")`` (``~`` expanded).
    """
    if configured:
        return Path(configured).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(pooch.os_cache("cohort_connectome")).expanduser()


def mirror_url(url, mirror=None):
    """Where to download ``url`` from, given an optional mirror.

    Parameters
    ----------
    url : str
        ``http(s)://<host>/<path>[?query]``.
    mirror : str, optional
        Base URL of a mirror holding ``<host>/<path>``; a trailing slash is
        ignored.

    Returns
    -------
    str
        ``<mirror>/<host>/<path>[?query]``, or ``url`` when there is no mirror.
    """
    parts = _split_url(url)
    if not mirror:
        return url
    query = f"?{parts.query}" if parts.query else ""
    return f"{str(mirror).rstrip('/')}/{parts.netloc}{parts.path}{query}"


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
                         f"of cohort_connectome.fetch.ADHD_IDS ({', '.join(ADHD_IDS)})")
    return text


def _split_url(url):
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https", "ftp") or not parts.netloc:
        raise InputError("not an http(s) or ftp URL", path=url)
    return parts


def _cache_name(url):
    """Stable path of a download relative to the cache: ``downloads/<host>/<path>``."""
    parts = _split_url(url)
    pieces = [p for p in parts.path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in pieces):
        raise InputError("URL path has '..' components", path=url)
    if not pieces or parts.path.endswith("/"):
        pieces.append("index")
    if parts.query:
        digest = hashlib.sha256(parts.query.encode()).hexdigest()[:12]
        pieces[-1] = f"{pieces[-1]}.q{digest}"
    host = parts.netloc.rsplit("@", 1)[-1].replace(":", "_")
    return "/".join(["downloads", host, *pieces])


# --------------------------------------------------------------------------
# hashes: known, user registry, lock file
# --------------------------------------------------------------------------
def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _clean_hash(value, source):
    text = str(value).strip().lower()
    if text.startswith("sha256:"):
        text = text[len("sha256:"):]
    if not _SHA256_RE.match(text):
        raise InputError(f"{value!r} is not a sha256 (64 hex digits, optionally "
                         "prefixed by 'sha256:')", path=source)
    return text


def read_registry(path):
    """Read a user registry of hashes: JSON ``{key: sha256}`` or a TSV.

    The TSV has one ``key<TAB>sha256`` per line (any whitespace separates;
    ``#`` starts a comment; an optional header ``url sha256`` is skipped).  A
    key is a full URL or the file name of the download.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict
        ``{key: sha256}``, hashes in lowercase hex.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise InputError(f"cannot read the hash registry: {err.strerror or err}",
                         path=path) from err
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"not valid JSON: {err}", path=path) from err
        if not isinstance(entries, dict):
            raise InputError("a JSON registry must be an object {url or file name: sha256}",
                             path=path)
        return {str(k).strip(): _clean_hash(v, path) for k, v in entries.items()}
    entries = {}
    first = True
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise InputError(f"line {number}: expected 'url-or-file-name sha256', got "
                             f"{len(fields)} field(s)", path=path)
        header, first = first and fields[1].lower() in ("sha256", "hash", "known_hash"), False
        if not header:
            entries[fields[0]] = _clean_hash(fields[1], f"{path}:{number}")
    return entries


def read_lock(cache_dir):
    """The pinned hashes of a cache: ``{url: sha256}`` (empty without a lock file)."""
    path = Path(cache_dir) / LOCK_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"lock file is not valid JSON ({err}); fix or delete it",
                         path=path) from err
    if not isinstance(data, dict):
        raise InputError("lock file must be a JSON object {url: sha256}", path=path)
    return data


@contextlib.contextmanager
def _flock(path):
    """Hold an exclusive `fcntl.flock` on ``path`` (created if needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_json_atomic(data, path):
    from .io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _record_pin(cache_dir, url, sha256, overwrite=False):
    """Record ``url -> sha256`` in the lock file, safely against parallel jobs.

    The read-modify-write runs under an exclusive flock on a separate file
    (``<lock>.flock``) and the new lock file replaces the old one atomically.

    Parameters
    ----------
    overwrite : bool
        Replace a different pinned hash (the download was verified against a
        hash that wins over the lock); otherwise a different pin is an error.
    """
    cache_dir = Path(cache_dir)
    path = cache_dir / LOCK_NAME
    with _flock(cache_dir / ".locks" / f"{LOCK_NAME}.flock"):
        pins = read_lock(cache_dir)
        old = pins.get(url)
        if old == sha256:
            return
        if old is not None and not overwrite:
            raise InputError(f"sha256 mismatch: expected {old} (pinned in {path}), "
                             f"got {sha256}", path=url)
        if old is not None:
            log.info("%s: lock file pin changed from %s to %s", url, old, sha256)
        pins[url] = sha256
        _write_json_atomic(pins, path)


def _expected_hash(url, cache_dir, known_hash=None, registry=None):
    """The hash a download must have, and where it comes from.

    Precedence: the user registry (by URL, then file name), ``known_hash``,
    the lock file; ``(None, None)`` when nothing is pinned yet.
    """
    if registry is not None:
        entries = read_registry(registry)
        name = PurePosixPath(urlsplit(url).path).name
        for key in (url, name):
            if key in entries:
                return entries[key], "registry"
    if known_hash:
        return _clean_hash(known_hash, "known_hash"), "known"
    pinned = read_lock(cache_dir).get(url)
    if pinned:
        return _clean_hash(pinned, Path(cache_dir) / LOCK_NAME), "lock"
    return None, None


# --------------------------------------------------------------------------
# downloading
# --------------------------------------------------------------------------
def _emit(message, *args):
    """Log at INFO when logging is configured (Snakemake jobs), else to stderr."""
    if log.hasHandlers():
        log.info(message, *args)
    else:
        print(message % args, file=sys.stderr, flush=True)


def _megabytes(n):
    return f"{n / 1e6:.1f} MB"


class LogProgress:
    """A pooch progress bar that writes log lines instead of redrawing a bar.

    pooch accepts any object with ``total``, ``update``, ``reset`` and
    ``close``.  One line per 10 % (or per 10 MB when the size is unknown)
    suits the job log files, where a tqdm bar would be a mess of carriage
    returns.
    """

    def __init__(self, name):
        self.name = name
        self._total = 0
        self.n = 0
        self._step = 0

    @property
    def total(self):
        return self._total

    @total.setter
    def total(self, value):
        # pooch sets the size at the start of each attempt
        self._total = int(value or 0)
        self.n = 0
        self._step = 0
        _emit("%s: downloading %s", self.name,
              _megabytes(self._total) if self._total else "(size unknown)")

    def update(self, n):
        self.n += int(n)
        if self._total:
            done = min(self.n, self._total)
            step = done * 10 // self._total
            if step > self._step:
                self._step = step
                _emit("%s: %3d%% (%s of %s)", self.name, step * 10,
                      _megabytes(done), _megabytes(self._total))
        else:
            step = self.n // 10_000_000
            if step > self._step:
                self._step = step
                _emit("%s: %s", self.name, _megabytes(self.n))

    def reset(self):
        self.n = 0

    def close(self):
        pass


class _TrackingDownloader:
    """Wrap a pooch downloader: count the attempts, remember the last hash."""

    def __init__(self, inner):
        self.inner = inner
        self.attempts = 0
        self.last_sha256 = None

    def __call__(self, url, output_file, pooch_instance, check_only=False):
        self.attempts += 1
        self.last_sha256 = None
        if check_only:
            return self.inner(url, output_file, pooch_instance, check_only=True)
        result = self.inner(url, output_file, pooch_instance)
        self.last_sha256 = _sha256(output_file)
        return result


def _make_downloader(source_url, name, progress):
    if urlsplit(source_url).scheme in ("http", "https"):
        bar = LogProgress(name) if progress else False
        inner = pooch.HTTPDownloader(progressbar=bar, chunk_size=CHUNK_SIZE,
                                     timeout=DOWNLOAD_TIMEOUT)
    else:
        inner = pooch.downloaders.choose_downloader(source_url, progressbar=False)
    return _TrackingDownloader(inner)


def _reason(err):
    """A short, one-line reason for a failed request."""
    import requests

    text = " ".join(str(err).split())
    if isinstance(err, requests.HTTPError) and err.response is not None:
        return f"HTTP {err.response.status_code} {err.response.reason}".strip()
    if isinstance(err, requests.Timeout):
        return f"timed out ({DOWNLOAD_TIMEOUT} s)"
    if isinstance(err, requests.ConnectionError):
        if "Connection refused" in text:
            return "connection refused"
        if any(s in text for s in ("Failed to resolve", "Name or service not known",
                                   "nodename nor servname", "getaddrinfo failed",
                                   "Temporary failure in name resolution")):
            match = re.search(r"host='([^']+)'", text)
            return f"unknown host {match.group(1)}" if match else "unknown host"
        match = re.findall(r"\[Errno -?\d+\] ([^'\")]+)", text)
        if match:
            return match[-1].strip().lower()
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _where(url, source_url):
    return url if source_url == url else f"{url} (via mirror {source_url})"


def fetch_file(url, cache_dir, known_hash=None, registry=None, mirror=None, retries=3,
               progress=True):
    """Download one file into the cache (or find it there), verified by sha256.

    Parameters
    ----------
    url : str
        The upstream URL; it names the file in the cache and in the lock.
    cache_dir : str or Path
        The data cache (see `default_cache_dir`).
    known_hash : str, optional
        The expected sha256 (``"sha256:"`` prefix allowed).
    registry : str or Path, optional
        A user registry file (see `read_registry`); its hashes win over
        ``known_hash`` and over the lock file.
    mirror : str, optional
        Download from ``mirror_url(url, mirror)`` instead.
    retries : int
        Further attempts after a failed one (pooch's ``retry_if_failed``;
        pooch waits 1 s, 2 s, ... between them).
    progress : bool
        Log the download progress (see `LogProgress`).

    Returns
    -------
    Path
        ``<cache>/downloads/<host>/<url path>``.

    Raises
    ------
    InputError
        One line naming the URL (and the mirror URL): hash mismatch, failed
        download, unknown host, refused connection, unwritable cache.

    Notes
    -----
    A cached file whose hash matches the expected one is returned without any
    network access.  Without any expected hash (a first download), the file's
    sha256 is pinned in the lock file; later downloads must match it.
    """
    return _fetch(url, cache_dir, known_hash, registry, mirror, retries, progress)[0]


def _fetch(url, cache_dir, known_hash=None, registry=None, mirror=None, retries=3,
           progress=True):
    """`fetch_file`, returning ``(path, sha256)``."""
    cache_dir = Path(cache_dir).expanduser().absolute()
    name = _cache_name(url)
    source_url = mirror_url(url, mirror)
    target = cache_dir / name
    lock_key = hashlib.sha256(url.encode()).hexdigest()[:24]
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the data cache: {err.strerror or err}",
                         path=cache_dir) from err
    # one job at a time per URL: parallel jobs wait, then find the file cached
    with _flock(cache_dir / ".locks" / f"{lock_key}.flock"):
        expected, origin = _expected_hash(url, cache_dir, known_hash, registry)
        pup = pooch.create(
            path=cache_dir,
            base_url=f"{source_url.rsplit('/', 1)[0]}/",
            registry={name: f"sha256:{expected}" if expected else None},
            urls={name: source_url},
            retry_if_failed=max(int(retries), 0),
        )
        downloader = _make_downloader(source_url, PurePosixPath(name).name, progress)
        try:
            pup.fetch(name, downloader=downloader)
        except Exception as err:
            _drop_unverified(target, expected)
            pinned_by = {"lock": f"pinned in {cache_dir / LOCK_NAME}",
                         "registry": f"from the registry {registry}"}.get(origin)
            raise _download_error(err, url, source_url, expected, downloader,
                                  pinned_by) from err
        except BaseException:
            _drop_unverified(target, expected)
            raise
        if downloader.attempts:
            log.info("%s: downloaded to %s", _where(url, source_url), target)
        sha256 = expected or _sha256(target)
        try:
            _record_pin(cache_dir, url, sha256, overwrite=origin in ("registry", "known"))
        except InputError:
            _drop_unverified(target, None)
            raise
    return target, sha256


def _drop_unverified(target, expected):
    """Remove a cached file that does not have the expected hash (or any, if None)."""
    with contextlib.suppress(FileNotFoundError):
        if expected is None or _sha256(target) != expected:
            target.unlink()


def _download_error(err, url, source_url, expected, downloader, pinned_by=None):
    """Turn what pooch raised into a one-line `InputError`."""
    import requests

    if isinstance(err, InputError):
        return err
    where = _where(url, source_url)
    attempts = f"{downloader.attempts} attempt{'s' if downloader.attempts != 1 else ''}"
    got = downloader.last_sha256
    if isinstance(err, requests.RequestException):
        return InputError(f"download failed after {attempts}: {_reason(err)}", path=where)
    if isinstance(err, ValueError) and expected and got and got != expected:
        origin = f" ({pinned_by})" if pinned_by else ""
        return InputError(f"sha256 mismatch: expected {expected}{origin}, got {got} "
                          f"(after {attempts}; nothing kept in the cache)", path=where)
    if isinstance(err, PermissionError):
        return InputError(f"data cache is not writable: {err}", path=where)
    if isinstance(err, (ValueError, OSError)):
        return InputError(f"download failed: {type(err).__name__}: {err}", path=where)
    return err


# --------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------
def _member_parts(name):
    """Path components of an archive member name, or None when unsafe."""
    text = name.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return parts


def _link_escapes(member_parts, target, hardlink):
    """Does a link at ``member_parts`` pointing to ``target`` leave the archive root?"""
    text = target.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return True
    base = [] if hardlink else member_parts[:-1]
    depth = len(base)
    for part in text.split("/"):
        if part in ("", "."):
            continue
        depth = depth - 1 if part == ".." else depth + 1
        if depth < 0:
            return True
    return False


def _open_archive(archive):
    """``("zip", ZipFile)`` or ``("tar", TarFile)``; InputError when neither."""
    try:
        if zipfile.is_zipfile(archive):
            return "zip", zipfile.ZipFile(archive)
        return "tar", tarfile.open(archive, mode="r:*")
    except FileNotFoundError as err:
        raise InputError("archive not found", path=archive) from err
    except tarfile.ReadError as err:
        raise InputError("not a valid zip/tar archive", path=archive) from err
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise InputError(f"not a valid zip/tar archive ({type(err).__name__}: {err})",
                         path=archive) from err


def _entries(kind, handle, archive):
    """``(name, entry)`` of every member, in archive order."""
    try:
        if kind == "zip":
            return [(info.filename, info) for info in handle.infolist()]
        return [(member.name, member) for member in handle.getmembers()]
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise InputError(f"not a valid zip/tar archive ({type(err).__name__}: {err})",
                         path=archive) from err


def list_members(archive):
    """Names of the members of a zip or tar(.gz) archive, in archive order."""
    kind, handle = _open_archive(archive)
    with handle:
        return [name for name, _ in _entries(kind, handle, archive)]


def _check_entry(kind, name, entry, archive):
    """Refuse unsafe members; return ``"dir"`` or ``"file"``."""
    parts = _member_parts(name)
    if parts is None:
        raise InputError(f"unsafe member {name!r}: absolute path or '..' component",
                         path=archive)
    if kind == "zip":
        mode = entry.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise InputError(f"unsafe member {name!r}: symlinks are not supported in zip "
                             "archives", path=archive)
        return "dir" if entry.is_dir() else "file"
    if entry.issym() or entry.islnk():
        if _link_escapes(parts, entry.linkname, hardlink=entry.islnk()):
            raise InputError(f"unsafe member {name!r}: link to {entry.linkname!r} points "
                             "outside the archive", path=archive)
        return "file"
    if entry.isdir():
        return "dir"
    if entry.isfile():
        return "file"
    raise InputError(f"unsafe member {name!r}: device, fifo or other special file",
                     path=archive)


def _copy_entry(kind, handle, entry, out, archive, name):
    try:
        if kind == "zip":
            source = handle.open(entry)
        else:
            source = handle.extractfile(entry)
            if source is None:
                raise InputError(f"member {name!r} is not a regular file", path=archive)
        with source, open(out, "wb") as sink:
            shutil.copyfileobj(source, sink, CHUNK_SIZE)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, KeyError, OSError,
            zlib.error) as err:
        raise InputError(f"corrupt archive: cannot extract {name!r} "
                         f"({type(err).__name__}: {err})", path=archive) from err


def safe_extract(archive, dest, members=None):
    """Extract a zip or tar(.gz) archive safely.

    Members with an absolute path or a ``..`` component, links pointing
    outside the archive and device/fifo members are refused.  Links inside
    the archive are extracted as copies of their target.  Everything is first
    extracted into a temporary folder beside ``dest``, then moved into place,
    so a refused or corrupt archive leaves nothing behind.

    Parameters
    ----------
    archive : str or Path
    dest : str or Path
        Folder to extract into (created if needed; existing other files stay).
    members : sequence of str or dict, optional
        Members to extract (default: all).  A dict maps a member name to the
        path, relative to ``dest``, to write it to.

    Returns
    -------
    list of Path
        The extracted files (not folders), in archive order.

    Raises
    ------
    InputError
        Naming the archive and the member: unsafe member, missing member,
        not a valid zip/tar archive, corrupt data.
    """
    archive = Path(archive)
    dest = Path(dest)
    kind, handle = _open_archive(archive)
    with handle:
        entries = _entries(kind, handle, archive)
        by_name = {}
        for name, entry in entries:
            by_name.setdefault(_normalize_member(name), (name, entry))
        if members is None:
            plan = [(name, entry, None) for name, entry in entries]
        else:
            mapping = members if isinstance(members, dict) else {m: None for m in members}
            plan = []
            for wanted, rename in mapping.items():
                found = by_name.get(_normalize_member(wanted))
                if found is None:
                    raise InputError(f"archive has no member {wanted!r}", path=archive)
                plan.append((*found, rename))
        checked = []
        for name, entry, rename in plan:
            what = _check_entry(kind, name, entry, archive)
            relative = _member_parts(rename) if rename is not None else _member_parts(name)
            if relative is None:
                raise InputError(f"unsafe target path {rename!r} for member {name!r}",
                                 path=archive)
            checked.append((name, entry, what, relative))
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".extract",
                                        dir=dest.parent))
        try:
            files = []
            for name, entry, what, relative in checked:
                out = staging.joinpath(*relative)
                if what == "dir":
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                _copy_entry(kind, handle, entry, out, archive, name)
                files.append(relative)
            extracted = []
            for relative in files:
                final = dest.joinpath(*relative)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging.joinpath(*relative), final)
                extracted.append(final)
            for name, entry, what, relative in checked:
                if what == "dir":
                    dest.joinpath(*relative).mkdir(parents=True, exist_ok=True)
            return extracted
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _normalize_member(name):
    parts = _member_parts(name)
    return "/".join(parts) if parts else name


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
    expected, _ = _expected_hash(url, cache_dir, known_hash, registry)
    if _is_extracted(outputs, stamp, expected):
        return outputs
    archive, sha256 = _fetch(url, cache_dir, known_hash, registry, mirror, retries, progress)
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
        See `fetch_file`.

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
        See `fetch_file`.

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
    import pandas as pd

    from .io import read_table

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
