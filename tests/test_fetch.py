"""The fetchers, through the real pooch code path, against a loopback mirror.

A `ThreadingHTTPServer` on 127.0.0.1 serves a mirror tree built in tmp:
``<root>/<host>/<path>`` holding the real MSDL zip, a metadata archive made of
the real ADHD-200 tables, and two subject archives made of the real
regressors and a tiny synthetic 4D NIfTI of the matching length.
"""

import hashlib
import io as _io
import json
import logging
import multiprocessing
import shutil
import socket
import stat
import tarfile
import threading
import types
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pooch
import pytest

from cohort_connectome.fetch import archives, datasets, download
from cohort_connectome.errors import InputError
from cohort_connectome.io import read_labels, read_table

from conftest import ADHD_AFFINE, SHARED_DATA, require_shared
from mirror import add_bytes, serve_directory, served

SUBJECTS = {"0010042": 176, "0027034": 260}   # id -> volumes of the real regressors
TINY_SHAPE = (8, 9, 8)
PHENO = "ADHD200_40subs_motion_parameters_and_phenotypics.csv"
TIMING = "ADHD200_40subs_slice_timing_parameters.csv"


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cache_files(cache):
    """Every file of the cache except the flock files."""
    return sorted(str(p.relative_to(cache)) for p in Path(cache).rglob("*")
                  if p.is_file() and ".locks" not in p.relative_to(cache).parts)


def leftovers(folder):
    """Temporary files or staging folders left anywhere under ``folder``."""
    return [str(p) for p in Path(folder).rglob("*")
            if p.name.startswith("tmp") or p.name.endswith((".tmp", ".extract"))]


def tiny_bold_bytes(n_volumes, seed):
    rng = np.random.default_rng(seed)
    img = nib.Nifti1Image(rng.random(TINY_SHAPE + (n_volumes,), dtype=np.float32),
                          ADHD_AFFINE)
    img.header.set_xyzt_units("mm", "sec")
    return img.to_bytes()


def subject_tgz(path, sid, n_volumes, seed=0, regressors=None):
    """``adhd40_<id>.tgz``: data/<id>/<id>_rest...nii.gz + data/<id>/<id>_regressors.csv."""
    import gzip

    bold = gzip.compress(tiny_bold_bytes(n_volumes, seed), mtime=0)
    with tarfile.open(path, "w:gz") as tar:
        add_bytes(tar, f"data/{sid}/{sid}_rest_tshift_RPI_voreg_mni.nii.gz", bold)
        add_bytes(tar, f"data/{sid}/{sid}_regressors.csv", Path(regressors).read_bytes())
    return path


def metadata_tgz(path, names=(PHENO, TIMING, "ADHD200_40subs_ID.txt")):
    # a folder prefix: the fetcher must find the tables by name anywhere
    with tarfile.open(path, "w:gz") as tar:
        for name in names:
            add_bytes(tar, f"adhd40_metadata/{name}",
                      require_shared("adhd", name).read_bytes())
    return path


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory, adhd_regressors_paths):
    """The archives served by the mirror, built once."""
    folder = tmp_path_factory.mktemp("artefacts")
    built = {"msdl": require_shared("msdl", "MSDL_rois.zip"),
             "metadata": metadata_tgz(folder / "adhd40_metadata.tgz")}
    for sid, n_volumes in SUBJECTS.items():
        built[sid] = subject_tgz(folder / f"adhd40_{sid}.tgz", sid, n_volumes, seed=1,
                                 regressors=adhd_regressors_paths[sid])
        built[f"{sid}-v2"] = subject_tgz(folder / f"adhd40_{sid}-v2.tgz", sid, n_volumes,
                                         seed=2, regressors=adhd_regressors_paths[sid])
    return built


@pytest.fixture
def mirror(tmp_path, artefacts):
    """A loopback HTTP mirror: ``.url``, ``.root``, ``.requests``, ``.put(url, file)``."""
    root = tmp_path / "mirror"
    placed = {datasets.MSDL_URL: artefacts["msdl"],
              datasets.ADHD_METADATA_URL: artefacts["metadata"]}
    placed.update({datasets.adhd_subject_url(sid): artefacts[sid] for sid in SUBJECTS})
    for url, source in placed.items():
        served(root, url).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, served(root, url))

    def put(url, source):
        served(root, url).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, served(root, url))

    with serve_directory(root) as server:
        yield types.SimpleNamespace(url=server.url, root=root, requests=server.requests,
                                    put=put)


@pytest.fixture(autouse=True)
def sleeps(monkeypatch):
    """pooch waits 1 s, 2 s, ... between retries: record the waits instead."""
    waited = []
    monkeypatch.setattr(pooch.core, "time", types.SimpleNamespace(sleep=waited.append))
    monkeypatch.setattr(download, "DOWNLOAD_TIMEOUT", 10)
    return waited


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------
# URLs, ids, cache location
# --------------------------------------------------------------------------
@pytest.mark.parametrize("url, mirror, expected", [
    (datasets.MSDL_URL, None, datasets.MSDL_URL),
    (datasets.MSDL_URL, "", datasets.MSDL_URL),
    (datasets.MSDL_URL, "http://127.0.0.1:8000",
     "http://127.0.0.1:8000/team.inria.fr/parietal/files/2015/01/MSDL_rois.zip"),
    (datasets.MSDL_URL, "https://m.example.org/data/",
     "https://m.example.org/data/team.inria.fr/parietal/files/2015/01/MSDL_rois.zip"),
    ("https://www.nitrc.org/frs/download.php/7782/adhd40_0010042.tgz", "http://m//",
     "http://m/www.nitrc.org/frs/download.php/7782/adhd40_0010042.tgz"),
    ("https://www.nitrc.org/frs/download.php?file_id=7781&x=1", "http://m",
     "http://m/www.nitrc.org/frs/download.php?file_id=7781&x=1"),
    ("http://example.org/a/b.txt", "https://mirror.org/base",
     "https://mirror.org/base/example.org/a/b.txt"),
    ("https://host:8443/x.zip", "http://m", "http://m/host:8443/x.zip"),
])
def test_mirror_url(url, mirror, expected):
    assert download.mirror_url(url, mirror) == expected


def test_mirror_url_rejects_non_http():
    with pytest.raises(InputError, match="not an http"):
        download.mirror_url("file:///etc/passwd", "http://m")


def test_default_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(download.CACHE_ENV, raising=False)
    assert download.default_cache_dir() == tmp_path / "xdg" / "cohort_connectome"
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "env"))
    assert download.default_cache_dir() == tmp_path / "env"
    assert download.default_cache_dir(tmp_path / "configured") == tmp_path / "configured"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert download.default_cache_dir("~/data") == tmp_path / "home" / "data"


def test_adhd_ids_and_urls():
    real = require_shared("adhd", "ADHD200_40subs_ID.txt").read_text().split()
    assert len(datasets.ADHD_IDS) == 40
    assert list(datasets.ADHD_IDS) == sorted(real)
    assert datasets.adhd_subject_url("0010042") == \
        "https://www.nitrc.org/frs/download.php/7782/adhd40_0010042.tgz"
    assert datasets.adhd_subject_url(27034) == \
        "https://www.nitrc.org/frs/download.php/7790/adhd40_0027034.tgz"
    assert datasets.adhd_subject_url("9750701") == \
        "https://www.nitrc.org/frs/download.php/7821/adhd40_9750701.tgz"
    with pytest.raises(InputError, match="ADHD_IDS") as err:
        datasets.adhd_subject_url("1234567")
    assert "\n" not in str(err.value) and "0010042" in str(err.value)


def test_unknown_subject_fails_before_any_download(tmp_path):
    with pytest.raises(InputError, match="unknown ADHD-200 subject id '42'"):
        datasets.fetch_adhd_subject("42", tmp_path / "cache", mirror="http://127.0.0.1:9")
    assert not (tmp_path / "cache").exists()


# --------------------------------------------------------------------------
# MSDL
# --------------------------------------------------------------------------
def test_fetch_msdl_through_mirror(mirror, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="cohort_connectome.fetch")
    cache = tmp_path / "cache"
    out = datasets.fetch_msdl(cache, mirror=mirror.url)

    assert out == {"maps": cache / "msdl" / "MSDL_rois" / "msdl_rois.nii",
                   "labels": cache / "msdl" / "MSDL_rois" / "msdl_rois_labels.csv"}
    assert mirror.requests == ["/team.inria.fr/parietal/files/2015/01/MSDL_rois.zip"]
    archive = cache / "downloads" / "team.inria.fr/parietal/files/2015/01/MSDL_rois.zip"
    assert sha256(archive) == datasets.MSDL_SHA256
    # the extracted maps are the original float64 image (PROVENANCE sha256)
    assert sha256(out["maps"]) == \
        "b8513d232ba844f6221b254bd819c98c2253272fc85e1f3654e6b703a2938a07"
    img = nib.load(out["maps"])
    assert img.shape == (40, 48, 35, 39)
    labels = read_labels(out["labels"], n_maps=39)
    assert labels["network"].nunique() == 17 and labels["name"].iloc[-1] == "R Ant IPS"
    assert json.loads((cache / download.LOCK_NAME).read_text()) == \
        {datasets.MSDL_URL: datasets.MSDL_SHA256}
    progress = [r.getMessage() for r in caplog.records if "MSDL_rois.zip" in r.getMessage()]
    assert any("100%" in m for m in progress), progress
    assert leftovers(cache) == []

    # second call: no request, no re-extraction
    stamp = out["maps"].stat().st_mtime_ns
    assert datasets.fetch_msdl(cache, mirror=mirror.url) == out
    assert out["maps"].stat().st_mtime_ns == stamp
    # the archive itself is a cache hit too (pooch finds it, hash matches)
    assert download.fetch_file(datasets.MSDL_URL, cache, known_hash=datasets.MSDL_SHA256,
                            mirror=mirror.url) == archive
    assert len(mirror.requests) == 1


def test_msdl_with_wrong_bytes_is_refused_and_not_kept(mirror, tmp_path, sleeps):
    fake = tmp_path / "fake.zip"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr("MSDL_rois/msdl_rois_labels.csv", "x,y,z,name,net name\n")
    mirror.put(datasets.MSDL_URL, fake)
    cache = tmp_path / "cache"
    # a stale, wrong file in the cache must not survive either
    stale = cache / "downloads" / "team.inria.fr/parietal/files/2015/01/MSDL_rois.zip"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")

    with pytest.raises(InputError) as err:
        datasets.fetch_msdl(cache, mirror=mirror.url, retries=1)
    message = str(err.value)
    mirrored = download.mirror_url(datasets.MSDL_URL, mirror.url)
    assert message == (f"{datasets.MSDL_URL} (via mirror {mirrored}): sha256 mismatch: "
                       f"expected {datasets.MSDL_SHA256}, got {sha256(fake)} "
                       "(after 2 attempts; nothing kept in the cache)")
    assert len(mirror.requests) == 2 and sleeps == [1]
    assert cache_files(cache) == []
    assert not (cache / "msdl").exists()
    assert leftovers(cache) == []


# --------------------------------------------------------------------------
# ADHD-200
# --------------------------------------------------------------------------
def test_adhd_subject_is_pinned_then_a_changed_archive_is_refused(
        mirror, tmp_path, artefacts, adhd_regressors_paths):
    cache = tmp_path / "cache"
    url = datasets.adhd_subject_url("0010042")
    out = datasets.fetch_adhd_subject("0010042", cache, mirror=mirror.url)

    data = cache / "adhd" / "data" / "0010042"
    assert out == {"func": data / "0010042_rest_tshift_RPI_voreg_mni.nii.gz",
                   "confounds": data / "0010042_regressors.csv"}
    assert out["confounds"].read_bytes() == adhd_regressors_paths["0010042"].read_bytes()
    img = nib.load(out["func"])
    assert img.shape == TINY_SHAPE + (176,)
    assert len(read_table(out["confounds"])) == img.shape[3]
    pinned = sha256(artefacts["0010042"])
    assert json.loads((cache / download.LOCK_NAME).read_text()) == {url: pinned}
    archive = cache / "downloads" / "www.nitrc.org/frs/download.php/7782/adhd40_0010042.tgz"
    assert sha256(archive) == pinned
    assert mirror.requests == ["/www.nitrc.org/frs/download.php/7782/adhd40_0010042.tgz"]

    # the server changes the archive: the cache still answers, without a request
    mirror.put(url, artefacts["0010042-v2"])
    func_bytes = out["func"].read_bytes()
    assert datasets.fetch_adhd_subject(10042, cache, mirror=mirror.url) == out
    assert out["func"].read_bytes() == func_bytes
    assert len(mirror.requests) == 1

    # ... until the cache is emptied: then the new bytes do not match the pin
    shutil.rmtree(cache / "adhd")
    archive.unlink()
    with pytest.raises(InputError) as err:
        datasets.fetch_adhd_subject("0010042", cache, mirror=mirror.url, retries=0)
    assert str(err.value) == (
        f"{url} (via mirror {download.mirror_url(url, mirror.url)}): sha256 mismatch: "
        f"expected {pinned} (pinned in {cache / download.LOCK_NAME}), "
        f"got {sha256(artefacts['0010042-v2'])} "
        "(after 1 attempt; nothing kept in the cache)")
    assert cache_files(cache) == [download.LOCK_NAME]
    assert json.loads((cache / download.LOCK_NAME).read_text()) == {url: pinned}
    assert leftovers(cache) == []


@pytest.mark.parametrize("kind", ["tsv-by-url", "json-by-file-name"])
def test_registry_override_wins_over_the_lock(mirror, tmp_path, artefacts, kind):
    cache = tmp_path / "cache"
    url = datasets.adhd_subject_url("0027034")
    out = datasets.fetch_adhd_subject("0027034", cache, mirror=mirror.url)
    old = sha256(artefacts["0027034"])
    new = sha256(artefacts["0027034-v2"])
    assert download.read_lock(cache) == {url: old}
    mirror.put(url, artefacts["0027034-v2"])

    registry = tmp_path / ("registry.tsv" if kind.startswith("tsv") else "registry.json")

    def write(value):
        if kind.startswith("tsv"):
            registry.write_text(f"# my pins\nurl\tsha256\n{url}\tsha256:{value}\n")
        else:
            registry.write_text(json.dumps({"adhd40_0027034.tgz": value}))

    # a registry hash that matches nothing fails, although the lock matches the cache
    write("0" * 64)
    with pytest.raises(InputError, match=f"expected {'0' * 64} \\(from the registry "
                                         f".*{registry.name}\\), got {new}"):
        datasets.fetch_adhd_subject("0027034", cache, mirror=mirror.url, registry=registry,
                                 retries=0)
    # the new hash in the registry: the new archive is fetched, extracted and pinned
    write(new)
    again = datasets.fetch_adhd_subject("0027034", cache, mirror=mirror.url, registry=registry)
    assert again == out
    with tarfile.open(artefacts["0027034-v2"]) as tar:
        member = tar.extractfile("data/0027034/0027034_rest_tshift_RPI_voreg_mni.nii.gz")
        assert out["func"].read_bytes() == member.read()
    assert download.read_lock(cache) == {url: new}
    assert leftovers(cache) == []


def test_fetch_adhd_metadata_and_participants(mirror, tmp_path):
    cache = tmp_path / "cache"
    out = datasets.fetch_adhd_metadata(cache, mirror=mirror.url)
    assert out == {"phenotypic": cache / "adhd" / PHENO,
                   "slice_timing": cache / "adhd" / TIMING}
    assert out["phenotypic"].read_bytes() == require_shared("adhd", PHENO).read_bytes()
    assert out["slice_timing"].read_bytes() == require_shared("adhd", TIMING).read_bytes()
    assert url_pinned(cache, datasets.ADHD_METADATA_URL)
    table = datasets.adhd_participants(out["phenotypic"], out["slice_timing"], ["0027034"])
    assert table["t_r"].tolist() == [1.96]
    assert datasets.fetch_adhd_metadata(cache, mirror=mirror.url) == out
    assert len(mirror.requests) == 1


def url_pinned(cache, url):
    return download.read_lock(cache).get(url) is not None


def test_metadata_archive_without_a_table_is_an_error(mirror, tmp_path):
    broken = metadata_tgz(tmp_path / "meta.tgz", names=(PHENO,))
    mirror.put(datasets.ADHD_METADATA_URL, broken)
    with pytest.raises(InputError, match=f"archive has no file named {TIMING}"):
        datasets.fetch_adhd_metadata(tmp_path / "cache", mirror=mirror.url)
    assert not (tmp_path / "cache" / "adhd" / PHENO).exists()


def test_two_jobs_fetching_at_once_both_pin(mirror, tmp_path):
    cache = tmp_path / "cache"
    results, errors = {}, []

    def job(sid):
        try:
            results[sid] = datasets.fetch_adhd_subject(sid, cache, mirror=mirror.url,
                                                    progress=False)
        except Exception as err:   # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=job, args=(sid,)) for sid in SUBJECTS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert set(download.read_lock(cache)) == {datasets.adhd_subject_url(s) for s in SUBJECTS}
    assert all(p.is_file() for out in results.values() for p in out.values())


def _pin_many(cache, worker, n):
    for i in range(n):
        download._record_pin(cache, f"https://example.org/{worker}/{i}",
                          hashlib.sha256(f"{worker}{i}".encode()).hexdigest())


def test_lock_file_is_safe_against_parallel_processes(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_pin_many, args=(cache, w, 60)) for w in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]
    pins = download.read_lock(cache)
    assert len(pins) == 120
    assert pins["https://example.org/1/59"] == hashlib.sha256(b"159").hexdigest()


def test_lock_refuses_a_different_pin(tmp_path):
    download._record_pin(tmp_path, "https://h/x", "a" * 64)
    with pytest.raises(InputError, match=f"expected {'a' * 64} .*got {'b' * 64}"):
        download._record_pin(tmp_path, "https://h/x", "b" * 64)
    download._record_pin(tmp_path, "https://h/x", "b" * 64, overwrite=True)
    assert download.read_lock(tmp_path) == {"https://h/x": "b" * 64}


# --------------------------------------------------------------------------
# network failures
# --------------------------------------------------------------------------
def test_server_down_retries_then_one_clear_error(tmp_path, sleeps):
    cache = tmp_path / "cache"
    dead = f"http://127.0.0.1:{closed_port()}"
    url = datasets.adhd_subject_url("0010042")
    with pytest.raises(InputError) as err:
        download.fetch_file(url, cache, mirror=dead, retries=2)
    assert str(err.value) == (f"{url} (via mirror {download.mirror_url(url, dead)}): "
                              "download failed after 3 attempts: connection refused")
    assert sleeps == [1, 2]
    assert cache_files(cache) == [] and leftovers(cache) == []


def test_missing_file_on_the_mirror(mirror, tmp_path):
    url = datasets.adhd_subject_url("0010064")   # not on the mirror
    with pytest.raises(InputError, match=r"download failed after 1 attempt: HTTP 404") as err:
        datasets.fetch_adhd_subject("0010064", tmp_path / "cache", mirror=mirror.url, retries=0)
    assert str(err.value).startswith(f"{url} (via mirror {mirror.url}/www.nitrc.org/")
    assert cache_files(tmp_path / "cache") == []


def test_unknown_host(tmp_path):
    with pytest.raises(InputError, match="failed after 1 attempt: unknown host "
                                         "no-such-host.invalid$"):
        download.fetch_file(datasets.MSDL_URL, tmp_path, mirror="http://no-such-host.invalid",
                         retries=0)


# --------------------------------------------------------------------------
# safe extraction
# --------------------------------------------------------------------------
def _tar_with(path, evil):
    with tarfile.open(path, "w:gz") as tar:
        add_bytes(tar, "good.txt", b"fine")
        tar.addfile(evil, _io.BytesIO(b"evil") if evil.isfile() else None)
    return path


def _tar_member(name, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = 4 if kind == tarfile.REGTYPE else 0
    return info


def _zip_with(path, name, symlink_to=None):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("good.txt", "fine")
        info = zipfile.ZipInfo(name)
        if symlink_to is not None:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, symlink_to)
        else:
            zf.writestr(info, "evil")
    return path


UNSAFE = {
    "tar-parent": lambda p: _tar_with(p, _tar_member("../evil")),
    "tar-nested-parent": lambda p: _tar_with(p, _tar_member("a/../../evil")),
    "tar-absolute": lambda p: _tar_with(p, _tar_member("/abs/evil")),
    "tar-symlink-out": lambda p: _tar_with(p, _tar_member("link", tarfile.SYMTYPE,
                                                          "../../outside")),
    "tar-symlink-abs": lambda p: _tar_with(p, _tar_member("link", tarfile.SYMTYPE,
                                                          "/etc/passwd")),
    "tar-hardlink-out": lambda p: _tar_with(p, _tar_member("hard", tarfile.LNKTYPE,
                                                           "../evil")),
    "tar-device": lambda p: _tar_with(p, _tar_member("dev", tarfile.CHRTYPE)),
    "tar-fifo": lambda p: _tar_with(p, _tar_member("fifo", tarfile.FIFOTYPE)),
    "zip-parent": lambda p: _zip_with(p, "../evil"),
    "zip-absolute": lambda p: _zip_with(p, "/abs/evil"),
    "zip-backslash": lambda p: _zip_with(p, "a\\..\\..\\evil"),
    "zip-symlink": lambda p: _zip_with(p, "link", symlink_to="../../outside"),
}
UNSAFE_MEMBER = {"tar-parent": "../evil", "tar-nested-parent": "a/../../evil",
                 "tar-absolute": "/abs/evil", "tar-symlink-out": "link",
                 "tar-symlink-abs": "link", "tar-hardlink-out": "hard", "tar-device": "dev",
                 "tar-fifo": "fifo", "zip-parent": "../evil", "zip-absolute": "/abs/evil",
                 "zip-backslash": "a\\..\\..\\evil", "zip-symlink": "link"}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_safe_extract_refuses_unsafe_members(tmp_path, case):
    work = tmp_path / "work"
    work.mkdir()
    archive = UNSAFE[case](work / ("a.zip" if case.startswith("zip") else "a.tgz"))
    dest = work / "out"
    with pytest.raises(InputError, match="unsafe member") as err:
        archives.safe_extract(archive, dest)
    message = str(err.value)
    assert message.startswith(f"{archive}: ") and repr(UNSAFE_MEMBER[case]) in message
    assert "\n" not in message
    assert sorted(p.name for p in work.iterdir()) == [archive.name]   # nothing extracted
    assert not (tmp_path / "evil").exists() and not Path("/abs/evil").exists()


def test_safe_extract_selects_renames_and_copies_inner_links(tmp_path):
    archive = tmp_path / "ok.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.addfile(_tar_member("./top", tarfile.DIRTYPE))
        add_bytes(tar, "./top/a.txt", b"alpha")
        tar.addfile(_tar_member("top/sub/link.txt", tarfile.SYMTYPE, "../a.txt"))
        tar.addfile(_tar_member("top/hard.txt", tarfile.LNKTYPE, "top/a.txt"))
    files = archives.safe_extract(archive, tmp_path / "all")
    assert files == [tmp_path / "all" / "top" / "a.txt",
                     tmp_path / "all" / "top" / "sub" / "link.txt",
                     tmp_path / "all" / "top" / "hard.txt"]
    assert all(p.read_bytes() == b"alpha" and not p.is_symlink() for p in files)

    picked = archives.safe_extract(archive, tmp_path / "some", members={"top/a.txt": "x/b.txt"})
    assert picked == [tmp_path / "some" / "x" / "b.txt"]
    assert sorted(p.name for p in (tmp_path / "some").rglob("*")) == ["b.txt", "x"]
    with pytest.raises(InputError, match="archive has no member 'top/nope.txt'"):
        archives.safe_extract(archive, tmp_path / "none", members=["top/nope.txt"])
    assert not (tmp_path / "none").exists()

    msdl = require_shared("msdl", "MSDL_rois.zip")
    got = archives.safe_extract(msdl, tmp_path / "msdl", members=["MSDL_rois/README.txt"])
    assert sha256(got[0]) == sha256(SHARED_DATA / "msdl" / "MSDL_rois" / "README.txt")


def _garbage(path, artefacts):
    path.write_bytes(b"this is not an archive" * 50)
    return path


def _truncated_tgz(path, artefacts):
    data = Path(artefacts["0010042"]).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _bad_crc_zip(path, artefacts):
    data = bytearray(require_shared("msdl", "MSDL_rois.zip").read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("make, problem", [
    (_garbage, "not a valid zip/tar archive"),
    (_truncated_tgz, "(not a valid zip/tar archive|corrupt archive)"),
    (_bad_crc_zip, "corrupt archive: cannot extract 'MSDL_rois/msdl_rois.nii'"),
])
def test_corrupt_archive(tmp_path, artefacts, make, problem):
    work = tmp_path / "work"
    work.mkdir()
    archive = make(work / "broken.tgz", artefacts)
    with pytest.raises(InputError, match=problem) as err:
        archives.safe_extract(archive, work / "out")
    assert str(err.value).startswith(f"{archive}: ") and "\n" not in str(err.value)
    assert sorted(p.name for p in work.iterdir()) == ["broken.tgz"]


def test_corrupt_archive_from_the_mirror_is_reported_with_its_path(mirror, tmp_path):
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(b"\x1f\x8b garbage")
    mirror.put(datasets.ADHD_METADATA_URL, broken)
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match="not a valid zip/tar archive") as err:
        datasets.fetch_adhd_metadata(cache, mirror=mirror.url)
    assert str(err.value).startswith(
        str(cache / "downloads" / "www.nitrc.org/frs/download.php/7781/adhd40_metadata.tgz"))
    assert not (cache / "adhd").exists()


# --------------------------------------------------------------------------
# participants
# --------------------------------------------------------------------------
def test_adhd_participants_on_the_real_tables():
    pheno = require_shared("adhd", PHENO)
    timing = require_shared("adhd", TIMING)
    ids = ["0010042", "2014113", 3520880, "0027034", "sub-3624598", "0023008"]
    table = datasets.adhd_participants(pheno, timing, ids)
    assert table["participant_id"].tolist() == ["0010042", "2014113", "3520880", "0027034",
                                                "3624598", "0023008"]
    assert table["site"].tolist() == ["NYU", "KKI", "Peking_1", "NeuroImage", "Peking_3",
                                      "OHSU"]
    assert table["t_r"].tolist() == [2.0, 2.5, 2.0, 1.96, 2.0, 2.5]
    assert table["adhd"].tolist() == [1, 1, 1, 1, 0, 0]
    assert table["sex"].tolist() == ["M", "M", "M", "M", "M", "M"]
    assert table["age"].iloc[0] == pytest.approx(10.65)
    assert list(table.columns[:6]) == ["participant_id", "t_r", "site", "age", "sex", "adhd"]
    assert "mean_fd" in table.columns and "rest_scan" in table.columns
    assert len(table.columns) == 65 and not any("unnamed" in c for c in table.columns)
    assert "subject" not in table.columns

    every = datasets.adhd_participants(pheno, timing, datasets.ADHD_IDS)
    site_tr = {"KKI": 2.5, "NeuroImage": 1.96, "NYU": 2.0, "OHSU": 2.5, "Peking_1": 2.0,
               "Peking_2": 2.0, "Peking_3": 2.0}
    assert every["t_r"].tolist() == [site_tr[s] for s in every["site"]]
    assert every["participant_id"].tolist() == list(datasets.ADHD_IDS)

    with pytest.raises(InputError, match="subject\\(s\\) 1234567 not in the phenotypic"):
        datasets.adhd_participants(pheno, timing, ["1234567"])


def test_adhd_participants_site_names(tmp_path):
    pheno = require_shared("adhd", PHENO)
    timing = tmp_path / "timing.csv"
    timing.write_text("Site,TR (seconds)\nnyu,2\nPeking,2.25\n")
    table = datasets.adhd_participants(pheno, timing, ["3624598", "0010042"])
    assert table["t_r"].tolist() == [2.25, 2.0]   # Peking_3 -> Peking, NYU -> nyu
    with pytest.raises(InputError, match="site 'KKI' has no TR"):
        datasets.adhd_participants(pheno, timing, ["2014113"])


def test_adhd_ids_selection():
    assert datasets.adhd_ids(None, 3) == ["0010042", "0010064", "0010128"]
    assert datasets.adhd_ids(["sub-0027034", "0010042"]) == ["0010042", "0027034"]
    with pytest.raises(InputError, match="unknown ADHD-200 subject id '1234567'"):
        datasets.adhd_ids(["1234567"])
    with pytest.raises(InputError, match="between 1 and 40"):
        datasets.adhd_ids(None, 41)
