"""Downloads into the data cache, verified by sha256 (pooch).

A download lands in a temporary file in the cache and is moved onto its final
name only once its hash is verified, and failed downloads are retried
(pooch's ``retry_if_failed``).  On top of pooch this module adds

* **hash pinning** -- a known sha256 (``known_hash``); for files without one
  upstream, the first successful download records its sha256 in the lock
  file ``<cache>/cohort_connectome.lock.json`` and every later download must
  match it (trust on first use).  A user registry file (TSV or JSON,
  ``{url or file name: sha256}``) wins over both;
* **mirrors** -- ``https://<host>/<path>`` is fetched from
  ``<mirror>/<host>/<path>``;
* **one-line errors** -- every failure is an `InputError` naming the URL and
  the problem;
* **progress as log lines** (`LogProgress`).

Cache layout (``<cache>`` is `default_cache_dir`)::

    <cache>/cohort_connectome.lock.json           {url: sha256}, sorted
    <cache>/downloads/<host>/<url path>           the files, as downloaded
    <cache>/.locks/                               per-URL lock files (flock)

Mirrors the role of nilearn's dataset downloads (``nilearn.datasets``,
``requests`` into ``nilearn_data``); the pinning, the mirrors and the cache
layout are ours.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import sys
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pooch
import requests

from ..errors import InputError
from ..io import atomic_path

log = logging.getLogger("cohort_connectome.fetch")

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


def expected_hash(url, cache_dir, known_hash=None, registry=None):
    """The hash a download must have, and where it comes from.

    Precedence: the user registry (by URL, then file name), ``known_hash``,
    the lock file.

    Returns
    -------
    sha256 : str or None
    origin : {"registry", "known", "lock"} or None
        ``(None, None)`` when nothing is pinned yet.
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
    return fetch_with_hash(url, cache_dir, known_hash, registry, mirror, retries, progress)[0]


def fetch_with_hash(url, cache_dir, known_hash=None, registry=None, mirror=None, retries=3,
                    progress=True):
    """`fetch_file`, returning ``(path, sha256)``: the file's verified hash."""
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
        expected, origin = expected_hash(url, cache_dir, known_hash, registry)
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
