"""The atlas library (cohort_connectome.fetch.atlas_library) against nilearn's
fetchers, both downloading the same bytes from a loopback mirror.

Each atlas's archives are built small (a few voxels) but laid out as the
originals: the members nilearn's fetcher reads (its test suite's
``archive_contents`` and the fetchers' own member lists) and a labels file in
the original format.  nilearn 0.13.1 is the oracle: its download function is
pointed at the mirror (the URL it would request, rewritten to
``<mirror>/<host>/<path>``), and the image it returns (data, dtype, affine)
and its labels (names, indices, order) must be ours.
"""

import gzip
import hashlib
import io as _io
import json
import shutil
import tarfile
import types
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import nibabel as nib
import numpy as np
import pandas as pd
import pooch
import pytest

from cohort_connectome.atlases import read_region_table
from cohort_connectome.errors import InputError
from cohort_connectome.fetch import atlas_library as library
from cohort_connectome.fetch import download

from mirror import add_bytes, serve_directory, served

FSL_2MM = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
MNI_1MM = np.array([[-1.0, 0, 0, 90], [0, 1, 0, -126], [0, 0, 1, -72], [0, 0, 0, 1]])


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def nifti_bytes(data, affine, gzipped=True):
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm")
    raw = img.to_bytes()
    return gzip.compress(raw, mtime=0) if gzipped else raw


def labelled(shape, n, seed, dtype=np.int16, values=None):
    """A 3D image holding every one of ``values`` (default 1..n) and background."""
    rng = np.random.default_rng(seed)
    values = np.arange(1, n + 1) if values is None else np.asarray(values)
    flat = np.concatenate([[0], values, rng.choice(np.append(values, 0),
                                                   int(np.prod(shape)) - len(values) - 1)])
    return rng.permutation(flat).reshape(shape).astype(dtype)


def maps(shape, n, seed):
    return np.random.default_rng(seed).random(shape + (n,), dtype=np.float32)


def zip_bytes(members):
    buffer = _io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            zf.writestr(info, data)
    return buffer.getvalue()


def tgz_bytes(members):
    buffer = _io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            add_bytes(tar, name, data)
    return buffer.getvalue()


# --------------------------------------------------------------------------
# the original files, small
# --------------------------------------------------------------------------
def difumo_files():
    files = {}
    for dim, osf in ((64, "pqu9r"), (128, "wjvd5")):
        labels = pd.DataFrame({
            "Component": range(1, dim + 1),
            "Difumo_names": [f"Region {k} {'LH' if k % 2 else 'RH'}" for k in range(1, dim + 1)],
            "Yeo_networks7": [f"Net7_{k % 7}" for k in range(dim)],
            "Yeo_networks17": [f"Net17_{k % 17}" for k in range(dim)],
            "GM": np.linspace(0, 1, dim), "WM": np.linspace(1, 0, dim), "CSF": 0.0})
        files[f"https://osf.io/{osf}/download"] = zip_bytes({
            f"{dim}/labels_{dim}_dictionary.csv": labels.to_csv(index=False),
            f"{dim}/2mm/maps.nii.gz": nifti_bytes(maps((5, 6, 5), dim, dim), FSL_2MM),
            f"{dim}/3mm/maps.nii.gz": nifti_bytes(maps((4, 4, 4), dim, dim + 1),
                                                  np.diag([3.0, 3, 3, 1])),
        })
    files["https://osf.io/4k9bf/download"] = b"# DiFuMo README\n"   # nilearn fetches it too
    return files


def schaefer_files():
    files = {}
    base = library._SCHAEFER_BASE
    for n_rois in (100, 200):
        for networks in (7, 17):
            names = ("Vis", "SomMot", "DorsAttn") if networks == 7 else \
                ("VisCent", "VisPeri", "SomMotA")
            stem = f"Schaefer2018_{n_rois}Parcels_{networks}Networks_order"
            lines = [f"{k}\t{networks}Networks_{'LH' if k <= n_rois // 2 else 'RH'}_"
                     f"{names[k % 3]}_{k}\t{k % 255}\t18\t131\t0" for k in range(1, n_rois + 1)]
            files[f"{base}{stem}.txt"] = ("\n".join(lines) + "\n").encode()
            for res in (1, 2):
                affine = np.diag([float(res), res, res, 1])
                affine[:3, 3] = (-90, -126, -72)
                files[f"{base}{stem}_FSLMNI152_{res}mm.nii.gz"] = nifti_bytes(
                    labelled((6, 6, 6), n_rois, n_rois + res, np.int32), affine)
    return files


HO_XML = {
    "HarvardOxford-Cortical.xml": ["Frontal Pole", "Frontal Operculum Cortex",
                                   "Temporal Pole"],
    "HarvardOxford-Cortical-Lateralized.xml": [
        "Left Frontal Pole", "Right Frontal Pole", "Left Frontal Operculum Cortex",
        "Right Frontal Operculum Cortex", "Left Temporal Pole", "Right Temporal Pole"],
    "HarvardOxford-Subcortical.xml": ["Left Lateral Ventrical ", "Brain-Stem",
                                      "Left Thalamus"],
}


def ho_xml(names):
    rows = "".join(f'<label index="{i}" x="{40 + i}" y="50" z="30">{n}</label>\n'
                   for i, n in enumerate(names))
    return ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<atlas version="1.0">\n'
            "<header>\n<name>Harvard-Oxford</name>\n<type>Label</type>\n</header>\n"
            f"<data>\n{rows}</data>\n</atlas>\n").encode("latin-1")


def ho_sub_image():
    """Brain-Stem (2) crosses the midline of the first axis; 1 and 3 do not."""
    data = np.zeros((10, 6, 5), dtype=np.int16)
    data[:4, :2] = 1          # one side
    data[2:8, 2:4] = 2        # both sides
    data[6:, 4:] = 3          # the other side
    data[4, 0, 0] = 3         # one stray voxel across: < 5 %
    return data


def ho_files():
    members = {f"data/atlases/{name}": ho_xml(names) for name, names in HO_XML.items()}
    root = "data/atlases/HarvardOxford/HarvardOxford-"
    for res in ("1mm", "2mm"):
        members[f"{root}cort-maxprob-thr25-{res}.nii.gz"] = nifti_bytes(
            labelled((10, 6, 5), 3, 1), FSL_2MM)
        members[f"{root}cortl-maxprob-thr25-{res}.nii.gz"] = nifti_bytes(
            labelled((10, 6, 5), 6, 2), FSL_2MM)
        members[f"{root}cort-prob-{res}.nii.gz"] = nifti_bytes(
            (maps((10, 6, 5), 3, 3) * 100).astype(np.uint8), FSL_2MM)
        members[f"{root}sub-maxprob-thr25-{res}.nii.gz"] = nifti_bytes(ho_sub_image(),
                                                                       FSL_2MM)
    return {library._HO_URL: tgz_bytes(members)}


AAL_LABELS = {"SPM12": [(2001, "Precentral_L"), (2002, "Precentral_R"), (4101, "Hippocampus_L"),
                        (9170, "Vermis_10")],
              "3v2": [(1, "Precentral_L"), (2, "Precentral_R"), (37, "Cingulate_Mid_L"),
                      (170, "Raphe_M")]}


def aal_xml(rows):
    labels = "".join(f"    <label>\n      <index>{i}</index>\n      <name>{n}</name>\n"
                     "    </label>\n" for i, n in rows)
    return ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<atlas version="2.0">\n'
            "  <header>\n    <name>AAL</name>\n  </header>\n  <data>\n"
            f"{labels}  </data>\n</atlas>\n").encode("latin-1")


def aal_files():
    mni = np.array([[-2.0, 0, 0, 92], [0, 2, 0, -128], [0, 0, 2, -74], [0, 0, 0, 1]])
    files = {}
    for version, (image, xml) in {"SPM12": ("aal/atlas/AAL.nii", "aal/atlas/AAL.xml"),
                                  "3v2": ("AAL3/AAL3v1.nii", "AAL3/AAL3v1.xml")}.items():
        rows = AAL_LABELS[version]
        data = labelled((6, 7, 6), 4, 7, values=[i for i, _ in rows])
        files[library._aal_files(version)[0]] = tgz_bytes({
            image: nifti_bytes(data, mni, gzipped=False), xml: aal_xml(rows),
            f"{Path(image).parent}/ROI_MNI_V4_List.mat": b"binary"})
    return files


def basc_files():
    files = {}
    for version, number in (("sym", "1861819"), ("asym", "1861820")):
        folder = f"template_cambridge_basc_multiscale_nii_{version}"
        members = {f"{folder}/README.md": b"BASC\n"}
        for scale in (7, 12):
            members[f"{folder}/template_cambridge_basc_multiscale_{version}_scale{scale:03}"
                    ".nii.gz"] = nifti_bytes(labelled((6, 6, 6), scale, scale, np.float32),
                                             np.diag([3.0, 3, 3, 1]))
        files[f"https://ndownloader.figshare.com/files/{number}"] = zip_bytes(members)
    return files


def smith_files():
    files = {}
    for params in ({}, {"dimension": 20, "resting": False, "mirror": "nitrc"}):
        full = library.check_parameters("smith", params)
        [url] = library._smith_urls(full)
        files[url] = nifti_bytes(maps((4, 5, 4), full["dimension"], len(url)), FSL_2MM)
    return files


def yeo_lut(n):
    lines = ["  0     NONE                              0   0   0   0"]
    lines += [f"{k:3d}     {n}Networks_{k:<24d}{(40 * k) % 255:3d} {k:3d} {255 - k:3d}   0"
              for k in range(1, n + 1)]
    return ("\n".join(lines) + "\n").encode()


def yeo_files():
    root = "Yeo_JNeurophysiol11_MNI152/"
    members = {f"{root}Yeo_JNeurophysiol11_MNI152_README": b"readme\n",
               f"{root}FSL_MNI152_FreeSurferConformed_1mm.nii.gz": nifti_bytes(
                   np.zeros((6, 6, 6), np.uint8), MNI_1MM)}
    for n in (7, 17):
        members[f"{root}Yeo2011_{n}Networks_ColorLUT.txt"] = yeo_lut(n)
        for suffix, seed in (("", 1), ("_LiberalMask", 2)):
            members[f"{root}Yeo2011_{n}Networks_MNI152_FreeSurferConformed1mm{suffix}.nii.gz"] \
                = nifti_bytes(labelled((6, 6, 6), n, n + seed, np.uint8)[..., None], MNI_1MM)
    return {library._YEO_URL: zip_bytes(members)}


PAULI_NAMES = ["Pu", "Ca", "NAC", "EXA", "GPe", "GPi", "SNc", "RN", "SNr", "PBP", "VTA",
               "VeP", "HN", "HTH", "MN", "STH"]


def pauli_files():
    affine = np.diag([0.5, 0.5, 0.5, 1])
    return {
        "https://osf.io/w8zq2/download": nifti_bytes(maps((5, 5, 4), 16, 16), affine),
        "https://osf.io/5mqfx/download": nifti_bytes(labelled((6, 6, 6), 16, 16, np.int16),
                                                     affine),
        "https://osf.io/6qrcb/download":
            "".join(f"{k}\t{n}\n" for k, n in enumerate(PAULI_NAMES)).encode(),
    }


ALL_FILES = {"difumo": difumo_files, "schaefer": schaefer_files, "harvard_oxford": ho_files,
             "aal": aal_files, "basc": basc_files, "smith": smith_files, "yeo": yeo_files,
             "pauli": pauli_files}


@pytest.fixture(scope="session")
def originals():
    return {url: data for make in ALL_FILES.values() for url, data in make().items()}


@pytest.fixture
def mirror(tmp_path, originals):
    root = tmp_path / "mirror"

    def put(url, data):
        served(root, url).parent.mkdir(parents=True, exist_ok=True)
        served(root, url).write_bytes(data)

    for url, data in originals.items():
        put(url, data)
    with serve_directory(root) as server:
        yield types.SimpleNamespace(url=server.url, requests=server.requests, put=put)


@pytest.fixture(autouse=True)
def no_waits(monkeypatch):
    monkeypatch.setattr(pooch.core, "time", types.SimpleNamespace(sleep=lambda s: None))


@pytest.fixture
def nilearn_via(monkeypatch, tmp_path):
    """nilearn's fetchers, their downloads sent to the mirror; returns ``run(fetcher, **kw)``."""
    from nilearn.datasets import _utils as nilearn_utils

    original = nilearn_utils.fetch_single_file

    def run(mirror_url, fetcher, **kwargs):
        def via_mirror(url, *args, **kw):
            parts = urlsplit(url)
            return original(f"{mirror_url}/{parts.netloc}{parts.path}", *args, **kw)

        monkeypatch.setattr(nilearn_utils, "fetch_single_file", via_mirror)
        return fetcher(data_dir=tmp_path / "nilearn_data", verbose=0, **kwargs)

    return run


# --------------------------------------------------------------------------
# helpers of the comparisons
# --------------------------------------------------------------------------
def ours(name, params, cache, mirror_url, **kwargs):
    paths = library.fetch_library_atlas(name, params, cache, mirror=mirror_url,
                                        progress=False, **kwargs)
    return paths, read_region_table(paths["labels"])


def same_image(our_path, theirs):
    mine = nib.load(our_path)
    other = nib.load(theirs) if isinstance(theirs, (str, Path)) else theirs
    a, b = np.asanyarray(mine.dataobj), np.asanyarray(other.dataobj)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a, b)
    np.testing.assert_allclose(mine.affine, other.affine, rtol=0, atol=1e-5)
    assert a.any()


def lut_rows(atlas):
    """nilearn's look-up table without the background: [(index, name)]."""
    lut = atlas.lut
    lut = lut[lut["name"] != "Background"]
    return [(int(i), str(n)) for i, n in zip(lut["index"], lut["name"])]


def table_rows(table):
    return list(zip(table["index"].tolist(), table["name"].tolist()))


# --------------------------------------------------------------------------
# each fetcher against nilearn's
# --------------------------------------------------------------------------
@pytest.mark.parametrize("params", [{}, {"dimension": 128, "resolution_mm": 3}])
def test_difumo(params, mirror, tmp_path, nilearn_via):
    from nilearn.datasets import fetch_atlas_difumo

    paths, table = ours("difumo", params, tmp_path / "cache", mirror.url)
    theirs = nilearn_via(mirror.url, fetch_atlas_difumo, **params)
    same_image(paths["image"], theirs.maps)
    assert table["name"].tolist() == theirs.labels["difumo_names"].tolist()
    assert table["network"].tolist() == theirs.labels["yeo_networks7"].tolist()
    assert table["index"].tolist() == list(range(1, len(theirs.labels) + 1))
    assert nib.load(paths["image"]).shape[3] == len(table) == params.get("dimension", 64)
    assert library.atlas_kind("difumo", params) == "probseg"


@pytest.mark.parametrize("params", [{"n_rois": 100}, {"n_rois": 200, "yeo_networks": 17,
                                                      "resolution_mm": 2}])
def test_schaefer(params, mirror, tmp_path, nilearn_via):
    from nilearn.datasets import fetch_atlas_schaefer_2018

    paths, table = ours("schaefer", params, tmp_path / "cache", mirror.url)
    theirs = nilearn_via(mirror.url, fetch_atlas_schaefer_2018, **params)
    same_image(paths["image"], theirs.maps)
    assert table_rows(table) == lut_rows(theirs)
    assert theirs.labels[0] == "Background" and table["name"].tolist() == theirs.labels[1:]
    expected = ["Vis", "SomMot", "DorsAttn"] if params.get("yeo_networks", 7) == 7 else \
        ["VisCent", "VisPeri", "SomMotA"]
    assert table["network"].tolist() == [expected[k % 3] for k in table["index"]]
    stem = f"Schaefer2018_{params['n_rois']}Parcels_{params.get('yeo_networks', 7)}Networks_order"
    assert library.atlas_urls("schaefer", params) == [
        f"{library._SCHAEFER_BASE}{stem}.txt",
        f"{library._SCHAEFER_BASE}{stem}_FSLMNI152_{params.get('resolution_mm', 1)}mm.nii.gz"]


@pytest.mark.parametrize("params, kind", [
    ({}, "dseg"),
    ({"atlas_name": "cort-prob-2mm"}, "probseg"),
    ({"atlas_name": "sub-maxprob-thr25-2mm", "symmetric_split": True}, "dseg"),
    ({"atlas_name": "cort-maxprob-thr25-1mm", "symmetric_split": True}, "dseg"),
])
def test_harvard_oxford(params, kind, mirror, tmp_path, nilearn_via):
    from nilearn.datasets import fetch_atlas_harvard_oxford

    paths, table = ours("harvard_oxford", params, tmp_path / "cache", mirror.url)
    theirs = nilearn_via(mirror.url, fetch_atlas_harvard_oxford,
                         atlas_name=params.get("atlas_name", "cort-maxprob-thr25-2mm"),
                         symmetric_split=params.get("symmetric_split", False))
    same_image(paths["image"], theirs.maps)
    assert nib.load(paths["image"]).affine[0, 0] > 0   # reordered as nilearn
    assert library.atlas_kind("harvard_oxford", params) == kind
    assert theirs.labels[0] == "Background"
    assert table["name"].tolist() == theirs.labels[1:]
    assert table["index"].tolist() == list(range(1, len(theirs.labels)))
    if kind == "dseg":
        assert table_rows(table) == lut_rows(theirs)
    if params.get("symmetric_split") and params["atlas_name"].startswith("sub"):
        assert table["name"].tolist() == ["Left Lateral Ventricle", "Left Brain-Stem",
                                          "Right Brain-Stem", "Left Thalamus"]
    if params.get("atlas_name", "").startswith("cort-maxprob"):
        assert "Right Frontal Opercular Cortex" in table["name"].tolist()   # cortl's labels


@pytest.mark.parametrize("version", ["3v2", "SPM12"])
def test_aal(version, mirror, tmp_path, nilearn_via):
    from nilearn.datasets import fetch_atlas_aal

    params = {} if version == "3v2" else {"version": version}
    paths, table = ours("aal", params, tmp_path / "cache", mirror.url)
    theirs = nilearn_via(mirror.url, fetch_atlas_aal, version=version)
    same_image(paths["image"], theirs.maps)
    assert table_rows(table) == lut_rows(theirs) == AAL_LABELS[version]   # not consecutive
    assert [int(i) for i in theirs.indices[1:]] == table["index"].tolist()


@pytest.mark.parametrize("params", [{}, {"version": "asym", "resolution": 12}])
def test_basc(params, mirror, tmp_path, nilearn_via):
    from nilearn.datasets import fetch_atlas_basc_multiscale_2015

    paths, table = ours("basc", params, tmp_path / "cache", mirror.url)
    theirs = nilearn_via(mirror.url, fetch_atlas_basc_multiscale_2015, **params)
    same_image(paths["image"], theirs.maps)
    assert table_rows(table) == lut_rows(theirs)
    assert table["name"].tolist() == theirs.labels[1:]


@pytest.mark.parametrize("params", [{}, {"dimension": 20, "resting": False,
                                         "mirror": "nitrc"}])
def test_smith(params, mirror, tmp_path, nilearn_via):
    from nilearn.datasets import fetch_atlas_smith_2009

    paths, table = ours("smith", params, tmp_path / "cache", mirror.url)
    theirs = nilearn_via(mirror.url, fetch_atlas_smith_2009, **params)
    same_image(paths["image"], theirs.maps)
    n = params.get("dimension", 10)
    key = "bm20" if params else "rsn10"
    assert table["name"].tolist() == [f"{key}_{k:02d}" for k in range(1, n + 1)]
    assert nib.load(paths["image"]).shape[3] == n
    assert "labels" not in theirs   # nilearn names no map


@pytest.mark.parametrize("params", [{}, {"n_networks": 17, "thickness": "thin"}])
def test_yeo(params, mirror, tmp_path, nilearn_via):
    from nilearn.datasets import fetch_atlas_yeo_2011

    paths, table = ours("yeo", params, tmp_path / "cache", mirror.url)
    theirs = nilearn_via(mirror.url, fetch_atlas_yeo_2011, **params)
    same_image(paths["image"], theirs.maps)
    assert table_rows(table) == lut_rows(theirs)
    assert table["network"].tolist() == table["name"].tolist()
    n = params.get("n_networks", 7)
    assert table["name"].tolist() == [f"{n}Networks_{k}" for k in range(1, n + 1)]


@pytest.mark.parametrize("atlas_type", ["probabilistic", "deterministic"])
def test_pauli(atlas_type, mirror, tmp_path, nilearn_via):
    from nilearn.datasets import fetch_atlas_pauli_2017

    params = {"atlas_type": atlas_type}
    paths, table = ours("pauli", params, tmp_path / "cache", mirror.url)
    theirs = nilearn_via(mirror.url, fetch_atlas_pauli_2017, atlas_type=atlas_type)
    same_image(paths["image"], theirs.maps)
    assert table["index"].tolist() == list(range(1, 17))
    if atlas_type == "deterministic":
        assert table_rows(table) == lut_rows(theirs)
    else:
        assert table["name"].tolist() == theirs.labels == PAULI_NAMES


# --------------------------------------------------------------------------
# pinning, cache, errors
# --------------------------------------------------------------------------
def test_first_fetch_pins_every_archive_and_a_second_fetch_is_offline(mirror, tmp_path):
    cache = tmp_path / "cache"
    paths = library.fetch_library_atlas("pauli", {}, cache, mirror=mirror.url, progress=False)
    urls = library.atlas_urls("pauli", {})
    assert urls == ["https://osf.io/w8zq2/download", "https://osf.io/6qrcb/download"]
    lock = download.read_lock(cache)
    downloaded = [cache / "downloads" / "osf.io" / u.split("/")[-2] / "download" for u in urls]
    assert lock == {u: sha256(p) for u, p in zip(urls, downloaded)}
    origin = json.loads(paths["origin"].read_text())
    assert origin == {"Atlas": "pauli", "Fetcher": "nilearn.datasets.fetch_atlas_pauli_2017 "
                      "(0.13.1)", "Parameters": {"atlas_type": "probabilistic"},
                      "Kind": "probseg", "URLs": urls, "Sha256": [lock[u] for u in urls],
                      "RegionsAbsentFromImage": []}
    assert paths["image"].parent == cache / "atlases" / "pauli" / "atlas_type-probabilistic"
    assert len(mirror.requests) == 2

    stamp = paths["image"].stat().st_mtime_ns
    assert library.fetch_library_atlas("pauli", {"atlas_type": "probabilistic"}, cache,
                                       mirror=mirror.url) == paths
    assert paths["image"].stat().st_mtime_ns == stamp and len(mirror.requests) == 2


def test_changed_archive_is_refused_naming_atlas_url_and_hashes(mirror, tmp_path, originals):
    cache = tmp_path / "cache"
    url = library._HO_URL
    paths = library.fetch_library_atlas("harvard_oxford", {}, cache, mirror=mirror.url,
                                        progress=False)
    pinned = sha256(cache / "downloads" / "www.nitrc.org/frs/download.php/9902/"
                    "HarvardOxford.tgz")
    changed = originals[url] + b"\0"
    mirror.put(url, changed)
    shutil.rmtree(cache / "atlases")
    shutil.rmtree(cache / "downloads")
    with pytest.raises(InputError) as err:
        library.fetch_library_atlas("harvard_oxford", {}, cache, mirror=mirror.url, retries=0,
                                    progress=False)
    message = str(err.value)
    assert message == (
        f"{url} (via mirror {download.mirror_url(url, mirror.url)}): atlas harvard_oxford: "
        f"sha256 mismatch: expected {pinned} (pinned in {cache / download.LOCK_NAME}), "
        f"got {hashlib.sha256(changed).hexdigest()} (after 1 attempt; nothing kept in the "
        "cache)")
    assert "\n" not in message
    left = sorted(str(p.relative_to(cache)) for p in cache.rglob("*")
                  if p.is_file() and ".locks" not in p.parts)
    assert left == [download.LOCK_NAME] and not paths["image"].exists()


def test_registry_wins_over_the_lock(mirror, tmp_path, originals):
    cache = tmp_path / "cache"
    url = "https://ndownloader.figshare.com/files/1861819"
    library.fetch_library_atlas("basc", {}, cache, mirror=mirror.url, progress=False)
    changed = zip_bytes({"template_cambridge_basc_multiscale_nii_sym/template_cambridge_basc_"
                         "multiscale_sym_scale007.nii.gz":
                         nifti_bytes(labelled((6, 6, 6), 7, 99, np.float32),
                                     np.diag([3.0, 3, 3, 1]))})
    mirror.put(url, changed)
    new = hashlib.sha256(changed).hexdigest()
    registry = tmp_path / "registry.tsv"
    registry.write_text(f"{url}\t{new}\n")
    paths = library.fetch_library_atlas("basc", {}, cache, mirror=mirror.url,
                                        registry=registry, progress=False)
    assert download.read_lock(cache)[url] == new
    assert json.loads(paths["origin"].read_text())["Sha256"] == [new]
    assert np.asanyarray(nib.load(paths["image"]).dataobj).max() == 7


def test_labelled_region_absent_from_the_image_is_left_out(mirror, tmp_path):
    url = library._aal_files("SPM12")[0]
    rows = AAL_LABELS["SPM12"]
    data = labelled((6, 7, 6), 3, 5, values=[i for i, _ in rows[:3]])
    mirror.put(url, tgz_bytes({"aal/atlas/AAL.nii": nifti_bytes(data, FSL_2MM, False),
                               "aal/atlas/AAL.xml": aal_xml(rows)}))
    paths, table = ours("aal", {"version": "SPM12"}, tmp_path / "cache", mirror.url)
    assert table_rows(table) == rows[:3]
    assert json.loads(paths["origin"].read_text())["RegionsAbsentFromImage"] == ["Vermis_10"]


def test_archive_without_the_member_is_one_line(mirror, tmp_path):
    mirror.put("https://osf.io/pqu9r/download", zip_bytes({"64/2mm/maps.nii.gz": b""}))
    with pytest.raises(InputError, match="archive has no member "
                                         "'64/labels_64_dictionary.csv'") as err:
        library.fetch_library_atlas("difumo", {}, tmp_path / "cache", mirror=mirror.url)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "cache" / "atlases" / "difumo" / "dimension-64_resolution_mm-2"
                / "origin.json").exists()


@pytest.mark.parametrize("name, params, message", [
    ("difumu", {}, "unknown library atlas 'difumu' (did you mean 'difumo'?); the library: "
                   "difumo, schaefer, harvard_oxford, aal, basc, smith, yeo, pauli"),
    ("difumo", {"dimension": 100}, "dimension: unknown value '100' for difumo; one of 64, "
                                   "128, 256, 512, 1024"),
    ("difumo", {"resolution": 2}, "resolution: not a parameter of difumo (did you mean "
                                  "'resolution_mm'?); its parameters: dimension, resolution_mm"),
    ("aal", {"version": "spm12"}, "version: unknown value 'spm12' for aal (did you mean "
                                  "'SPM12'?); one of SPM5, SPM8, SPM12, 3v2"),
    ("harvard_oxford", {"symmetric_split": 1}, "symmetric_split: unknown value '1' for "
                                               "harvard_oxford; one of false, true"),
    ("schaefer", {"resolution_mm": True}, "resolution_mm: unknown value 'true' for schaefer; "
                                          "one of 1, 2"),
])
def test_bad_parameters_are_one_line(name, params, message):
    with pytest.raises(InputError) as err:
        library.check_parameters(name, params)
    assert str(err.value) == message


def test_parameters_defaults_and_keys():
    assert library.check_parameters("schaefer", {}) == {"n_rois": 400, "yeo_networks": 7,
                                                        "resolution_mm": 1}
    assert library.check_parameters("difumo", {"resolution_mm": 3.0}) == \
        {"dimension": 64, "resolution_mm": 3}
    assert library.parameters_key(library.check_parameters("harvard_oxford", {})) == \
        "atlas_name-cort-maxprob-thr25-2mm_symmetric_split-false"
    with pytest.raises(InputError) as err:
        library.check_parameters("harvard_oxford", {"atlas_name": "sub-prob-1mm",
                                                    "symmetric_split": True})
    assert str(err.value) == ("symmetric_split: not available for the probabilistic "
                              "sub-prob-1mm (as nilearn: only for maxprob atlases)")


def test_reorder_img_permutes_and_flips_as_nilearn():
    from nilearn.image import reorder_img as nilearn_reorder

    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    affine = np.array([[0, 0, -2.0, 10], [3.0, 0, 0, -20], [0, -1.0, 0, 5], [0, 0, 0, 1]])
    img = nib.Nifti1Image(data, affine)
    mine, theirs = library.reorder_img(img), nilearn_reorder(img, copy_header=True)
    assert np.array_equal(np.asanyarray(mine.dataobj), np.asanyarray(theirs.dataobj))
    np.testing.assert_allclose(mine.affine, theirs.affine)
    rotated = nib.Nifti1Image(data, np.array([[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0],
                                              [0, 0, 0, 1.0]]))
    with pytest.raises(InputError, match="contains rotations"):
        library.reorder_img(rotated)


# --------------------------------------------------------------------------
# through the workflow
# --------------------------------------------------------------------------
@pytest.mark.workflow
def test_workflow_fetches_library_atlases_with_their_provenance(mirror, tmp_path, originals):
    """fetch_library_atlas (one job per atlas) feeds prepare_atlas, whose sidecar
    says the fetcher, parameters, URL, archive sha256, reference and licence; a
    bad parameter value stops the workflow before any job, in one line."""
    from conftest import snakemake

    cache = tmp_path / "cache"
    overlay = tmp_path / "library.yaml"
    overlay.write_text(
        "atlases:\n  basc: {fetch: basc, resolution: 12}\n"
        "  pauli: {fetch: pauli, atlas_type: deterministic, strategy: median}\n"
        f"fetch:\n  cache_dir: {cache}\n  mirror: {mirror.url}\n")
    workdir = tmp_path / "run"
    targets = [f"results/atlases/atlas-{a}/atlas-{a}_dseg.{ext}" for a in ("basc", "pauli")
               for ext in ("nii.gz", "tsv", "json")]
    proc = snakemake(workdir, *targets, "--configfile", str(overlay))
    assert "fetch_library_atlas" in proc.stdout + proc.stderr

    basc_url = "https://ndownloader.figshare.com/files/1861819"
    side = json.loads((workdir / targets[2]).read_text())
    assert side["Source"] == "fetch:basc"
    assert side["Fetcher"] == "nilearn.datasets.fetch_atlas_basc_multiscale_2015 (0.13.1)"
    assert side["Parameters"] == {"resolution": 12, "version": "sym"}
    assert side["URL"] == basc_url
    assert side["ArchiveSha256"] == hashlib.sha256(originals[basc_url]).hexdigest()
    assert side["ArchiveSha256"] == download.read_lock(cache)[basc_url]
    assert side["Reference"].startswith("Bellec et al.") and side["Licence"].startswith("unknown")
    assert side["NumberOfRegions"] == 12 and side["RegionsAbsentFromImage"] == []
    table = read_region_table(workdir / targets[1])
    assert table["name"].tolist() == [str(k) for k in range(1, 13)]

    pauli = json.loads((workdir / targets[5]).read_text())
    assert pauli["URL"] == ["https://osf.io/5mqfx/download", "https://osf.io/6qrcb/download"]
    assert pauli["ArchiveSha256"] == [hashlib.sha256(originals[u]).hexdigest()
                                      for u in pauli["URL"]]
    assert pauli["Licence"].startswith("CC BY 4.0") and pauli["Strategy"] == "median"
    assert read_region_table(workdir / targets[4])["name"].tolist() == PAULI_NAMES
    fetched = cache / "atlases" / "pauli" / "atlas_type-deterministic" / "image.nii.gz"
    assert (workdir / targets[3]).read_bytes() == fetched.read_bytes()
    assert len(mirror.requests) == 3

    bad = tmp_path / "bad.yaml"
    bad.write_text("atlases:\n  d: {fetch: difumo, dimension: 100}\n")
    proc = snakemake(tmp_path / "bad", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    line = ("config atlases.d.dimension: unknown value '100' for difumo; one of 64, 128, 256, "
            "512, 1024")
    assert line in (proc.stdout + proc.stderr).splitlines()
    assert not (tmp_path / "bad" / "results").exists()
