"""The atlas library: the atlases connectome studies commonly use, by name.

Each atlas is fetched from the URLs nilearn 0.13.1's fetcher uses, with its
parameters and their defaults, and gives the same image and labels (in the
same order) as that fetcher, through `download.fetch_with_hash`: cache,
mirror, retries, user registry and lock file (the first download of an
archive records its sha256 in the cache's lock file, every later download
must match it).  What nilearn's fetcher returns (an image, a list of names or
a look-up table) is written into the cache as an image and a region table
that `atlases.read_region_table` reads::

    <cache>/atlases/<atlas>/<key>/image.nii.gz   the atlas (gzipped)
    <cache>/atlases/<atlas>/<key>/regions.tsv    index, name, network
    <cache>/atlases/<atlas>/<key>/origin.json    fetcher, parameters, URLs, sha256s

``<key>`` names every parameter, e.g. ``dimension-256_resolution_mm-2``.
``origin.json`` is written last: a folder with it, for parameters and
hashes equal to the expected ones, is complete and is not fetched again.

The region table of a ``dseg`` lists the regions by image value (the
background, 0, is no row); that of a ``probseg`` by 1-based volume.  A
``dseg`` region named by the atlas's labels but absent from its image is left
out of the table (logged and listed in ``origin.json``): the workflow's check
of an atlas refuses a row without voxels.

MSDL (``fetch: msdl``) stays a built-in atlas of `datasets` (its archive's
hash is pinned in the package); the demo atlas is generated.
"""

import difflib
import logging
import re
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from .. import io
from ..errors import InputError
from .archives import safe_extract
from .download import expected_hash, fetch_with_hash

log = logging.getLogger("cohort_connectome.fetch")

#: File names of a fetched library atlas, in its folder.
IMAGE_NAME = "image.nii.gz"
TABLE_NAME = "regions.tsv"
ORIGIN_NAME = "origin.json"


@dataclass(frozen=True)
class LibraryAtlas:
    """One atlas of the library.

    Attributes
    ----------
    name : str
        Its name in a config (``fetch: <name>``).
    fetcher : str
        The nilearn 0.13.1 fetcher it reproduces.
    parameters : dict
        ``{parameter: (default, allowed values)}``, nilearn's names,
        defaults and values, in nilearn's order.
    description, reference, licence : str
        Recorded with the atlas (licences as nilearn's dataset descriptions
        state them).
    kind : callable
        ``kind(params) -> "probseg" | "dseg"``.
    urls : callable
        ``urls(params) -> [url, ...]``: the files downloaded.
    build : callable
        ``build(params, files, work) -> (image, table)``: ``files`` are the
        downloaded files (as ``urls``), ``work`` a scratch folder; ``image``
        is a path (copied gzipped) or a nibabel image (saved), ``table`` a
        DataFrame with ``index``, ``name``, ``network``.
    combination : callable, optional
        ``combination(params) -> str or None``: what is wrong with a
        combination of allowed values (``"<parameter>: <problem>"``).
    """

    name: str
    fetcher: str
    parameters: dict
    description: str
    reference: str
    licence: str
    kind: object
    urls: object
    build: object
    combination: object = None


# --------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------
def _canonical(value, allowed):
    """The allowed value equal to ``value`` (booleans only match booleans), or None."""
    for option in allowed:
        if isinstance(option, bool) or isinstance(value, bool):
            if isinstance(option, bool) and isinstance(value, bool) and option == value:
                return option
        elif isinstance(option, str) or isinstance(value, str):
            if value == option:
                return option
        elif value == option:
            return option
    return None


def _shown(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def did_you_mean(value, options):
    """`` (did you mean 'x'?)`` for the option closest to ``value`` (ignoring
    case), or ``""``."""
    lowered = {str(o).lower(): str(o) for o in options}
    close = difflib.get_close_matches(str(value).lower(), list(lowered), n=1)
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""


def library_atlas(name):
    """The `LibraryAtlas` called ``name``; InputError listing the library's names."""
    if name in LIBRARY:
        return LIBRARY[name]
    raise InputError(f"unknown library atlas '{name}'{did_you_mean(name, LIBRARY)}; the library: "
                     f"{', '.join(LIBRARY)}")


def check_parameters(name, given):
    """Every parameter of a library atlas, the given ones checked, defaults filled in.

    Parameters
    ----------
    name : str
        A library atlas.
    given : dict
        Parameter values (nilearn's names).

    Returns
    -------
    dict
        ``{parameter: value}`` in the atlas's order, each value one of the
        allowed ones.

    Raises
    ------
    InputError
        One line starting with the parameter's name: an unknown parameter
        (with the closest name and the atlas's parameters) or value (with the
        allowed values).
    """
    atlas = library_atlas(name)
    given = dict(given or {})
    for key in given:
        if key not in atlas.parameters:
            hint = did_you_mean(key, atlas.parameters)
            listed = ", ".join(atlas.parameters) or "none"
            raise InputError(f"{key}: not a parameter of {name}{hint}; its parameters: "
                             f"{listed}")
    params = {}
    for key, (default, allowed) in atlas.parameters.items():
        value = given.get(key, default)
        chosen = _canonical(value, allowed)
        if chosen is None:
            texts = [_shown(a) for a in allowed]
            hint = did_you_mean(value, texts) if isinstance(value, str) else ""
            raise InputError(f"{key}: unknown value {_shown(value)!r} for {name}{hint}; "
                             f"one of {', '.join(texts)}")
        params[key] = chosen
    problem = atlas.combination(params) if atlas.combination else None
    if problem:
        raise InputError(problem)
    return params


def parameters_key(params):
    """The folder name of a set of parameters: ``dimension-256_resolution_mm-2``."""
    text = "_".join(f"{k}-{_shown(v)}" for k, v in params.items()) or "default"
    return re.sub(r"[^A-Za-z0-9_.+-]", "", text)


def library_layout(cache_dir, name, key):
    """``{"image", "labels", "origin"}`` of atlas ``name`` with parameters
    ``key`` (`parameters_key`) in the cache; ``name`` and ``key`` may be
    Snakemake wildcards (``"{library}"``)."""
    folder = Path(cache_dir).expanduser().absolute() / "atlases" / name / key
    return {"image": folder / IMAGE_NAME, "labels": folder / TABLE_NAME,
            "origin": folder / ORIGIN_NAME}


def library_paths(cache_dir, name, params):
    """Where `fetch_library_atlas` writes an atlas: ``{"image", "labels", "origin"}``.

    ``params`` are checked (`check_parameters`) first.
    """
    params = check_parameters(name, params)
    return library_layout(cache_dir, name, parameters_key(params))


def atlas_kind(name, params):
    """``"probseg"`` or ``"dseg"``: the kind of a library atlas with these parameters."""
    return LIBRARY[name].kind(check_parameters(name, params))


def atlas_urls(name, params):
    """The URLs a library atlas with these parameters is downloaded from."""
    return list(LIBRARY[name].urls(check_parameters(name, params)))


# --------------------------------------------------------------------------
# fetching
# --------------------------------------------------------------------------
def _is_complete(paths, name, params, urls, cache_dir, registry):
    """Are the outputs there, for these parameters and the expected archives?"""
    if not all(p.is_file() for p in paths.values()):
        return False
    try:
        origin = io.read_json(paths["origin"])
    except (OSError, ValueError):
        return False
    recorded = dict(zip(origin.get("URLs", []), origin.get("Sha256", [])))
    if origin.get("Atlas") != name or origin.get("Parameters") != params:
        return False
    for url in urls:
        expected, _ = expected_hash(url, cache_dir, None, registry)
        if expected is None or recorded.get(url) != expected:
            return False
    return True


def fetch_library_atlas(name, params, cache_dir, mirror=None, registry=None, progress=True,
                        retries=3):
    """Fetch a library atlas and write its image and region table into the cache.

    Parameters
    ----------
    name : str
        A library atlas (`LIBRARY`).
    params : dict
        Its parameters (nilearn's names; missing ones take nilearn's defaults).
    cache_dir : str or Path
    mirror, registry, progress, retries
        See `download.fetch_file`.

    Returns
    -------
    dict
        `library_paths`: ``image`` (gzipped NIfTI), ``labels`` (TSV: index,
        name, network) and ``origin`` (JSON: atlas, nilearn fetcher,
        parameters, URLs and their sha256, kind, regions left out).  A second
        call finds them and neither downloads nor writes.

    Raises
    ------
    InputError
        One line: a bad parameter, a failed download or a sha256 mismatch
        (naming the atlas, the URL, the expected and actual hash; nothing is
        kept in the cache), an archive without the expected member, labels
        that disagree with the image.
    """
    atlas = library_atlas(name)
    params = check_parameters(name, params)
    cache_dir = Path(cache_dir).expanduser().absolute()
    paths = library_paths(cache_dir, name, params)
    urls = atlas.urls(params)
    if _is_complete(paths, name, params, urls, cache_dir, registry):
        return paths
    paths["origin"].unlink(missing_ok=True)   # written last: the outputs are complete
    files, hashes = [], []
    for url in urls:
        try:
            path, sha256 = fetch_with_hash(url, cache_dir, None, registry, mirror, retries,
                                           progress)
        except InputError as err:
            raise InputError(f"atlas {name}: {err.problem}", path=err.path) from None
        files.append(path)
        hashes.append(sha256)
    folder = paths["image"].parent
    folder.mkdir(parents=True, exist_ok=True)
    kind = atlas.kind(params)
    with tempfile.TemporaryDirectory(prefix=".build.", dir=folder) as work:
        image, table = atlas.build(params, files, Path(work))
        if not isinstance(image, (str, Path)):
            io.save_nifti(image, paths["image"])
        else:
            io.copy_gzipped(image, paths["image"])
    table, absent = _regions_in_image(name, kind, table, paths["image"])
    io.write_table(table[["index", "name", "network"]], paths["labels"])
    io.write_json({"Atlas": name, "Fetcher": f"nilearn.datasets.{atlas.fetcher} (0.13.1)",
                   "Parameters": params, "Kind": kind, "URLs": urls, "Sha256": hashes,
                   "RegionsAbsentFromImage": absent}, paths["origin"])
    log.info("atlas %s (%s): %s, %d regions, in %s", name, parameters_key(params), kind,
             len(table), folder)
    return paths


def _regions_in_image(name, kind, table, image_path):
    """The table without the ``dseg`` rows whose value is not in the image.

    Returns ``(table, [names left out])``; an image value without a row is an
    InputError (the labels do not describe the image).
    """
    import nibabel as nib

    if kind != "dseg":
        return table, []
    data = np.asanyarray(nib.load(image_path).dataobj)
    present = set(np.unique(data).tolist()) - {0}
    indices = table["index"].astype(np.int64)
    unlisted = sorted(present - set(indices.tolist()))
    if unlisted:
        raise InputError(f"atlas {name}: image values {unlisted[:5]} have no label",
                         path=image_path)
    keep = indices.isin(present).to_numpy()
    absent = table.loc[~keep, "name"].tolist()
    if absent:
        log.warning("atlas %s: %d labelled region(s) have no voxel in the image, left out "
                    "of the table: %s", name, len(absent), ", ".join(absent))
    return table.loc[keep].reset_index(drop=True), absent


# --------------------------------------------------------------------------
# helpers of the builders
# --------------------------------------------------------------------------
def _extract(archive, member, work):
    """Extract one archive member into ``work``; its path."""
    target = PurePosixPath(member).name
    try:
        return safe_extract(archive, work, {member: target})[0]
    except InputError as err:
        raise err.with_context(path=archive) from None


def _table(indices, names, networks=None):
    import pandas as pd

    names = [str(n) for n in names]
    return pd.DataFrame({"index": np.asarray(indices, dtype=np.int64), "name": names,
                         "network": list(networks) if networks is not None
                         else [""] * len(names)})


def _consecutive(names, source):
    """Rows 1..n of a list of names (volume or value i+1 is names[i])."""
    if not names:
        raise InputError("labels file lists no region", path=source)
    return _table(range(1, len(names) + 1), names)


def _read_xml(path):
    try:
        return ElementTree.parse(path).getroot()
    except ElementTree.ParseError as err:
        raise InputError(f"labels file is not valid XML: {err}", path=path) from None


# --------------------------------------------------------------------------
# DiFuMo (nilearn.datasets.fetch_atlas_difumo)
# --------------------------------------------------------------------------
_DIFUMO_IDS = {64: "pqu9r", 128: "wjvd5", 256: "3vrct", 512: "9b76y", 1024: "34792"}


def _difumo_urls(p):
    return [f"https://osf.io/{_DIFUMO_IDS[p['dimension']]}/download"]


def _difumo_build(p, files, work):
    """``<dim>/labels_<dim>_dictionary.csv`` (Component, Difumo_names,
    Yeo_networks7, Yeo_networks17, GM, WM, CSF) and ``<dim>/<res>mm/maps.nii.gz``;
    volume i is row i of the labels (nilearn's ``labels``)."""
    import pandas as pd

    dim = p["dimension"]
    folder = "3mm" if p["resolution_mm"] == 3 else "2mm"
    csv = _extract(files[0], f"{dim}/labels_{dim}_dictionary.csv", work / "labels")
    maps = _extract(files[0], f"{dim}/{folder}/maps.nii.gz", work / "maps")
    labels = pd.read_csv(csv)
    labels = labels.rename(columns={c: c.lower() for c in labels.columns})
    for column in ("difumo_names", "yeo_networks7"):
        if column not in labels.columns:
            raise InputError(f"labels file has no column {column!r}", path=csv)
    table = _consecutive(labels["difumo_names"].tolist(), csv)
    table["network"] = labels["yeo_networks7"].fillna("").astype(str).to_numpy()
    return maps, table


# --------------------------------------------------------------------------
# Schaefer 2018 (nilearn.datasets.fetch_atlas_schaefer_2018)
# --------------------------------------------------------------------------
_SCHAEFER_BASE = ("https://raw.githubusercontent.com/ThomasYeoLab/CBIG/"
                  "v0.14.3-Update_Yeo2011_Schaefer2018_labelname/"
                  "stable_projects/brain_parcellation/"
                  "Schaefer2018_LocalGlobal/Parcellations/MNI/")


def _schaefer_urls(p):
    stem = f"Schaefer2018_{p['n_rois']}Parcels_{p['yeo_networks']}Networks_order"
    return [f"{_SCHAEFER_BASE}{stem}.txt",
            f"{_SCHAEFER_BASE}{stem}_FSLMNI152_{p['resolution_mm']}mm.nii.gz"]


_SCHAEFER_NAME = re.compile(r"^\d+Networks_[LR]H_([^_]+)_")


def _schaefer_build(p, files, work):
    """``..._order.txt``: ``index<TAB>name<TAB>r<TAB>g<TAB>b<TAB>0`` per region
    (nilearn's look-up table without its added Background); the network is the
    name's third field (``7Networks_LH_Vis_1`` -> ``Vis``)."""
    import pandas as pd

    lut = pd.read_csv(files[0], delimiter="\t", names=["index", "name", "r", "g", "b", "fs"])
    networks = []
    for name in lut["name"].astype(str):
        match = _SCHAEFER_NAME.match(name)
        if match is None:
            raise InputError(f"region name {name!r} is not <n>Networks_<LH|RH>_<network>_...",
                             path=files[0])
        networks.append(match.group(1))
    return files[1], _table(lut["index"], lut["name"], networks)


# --------------------------------------------------------------------------
# Harvard-Oxford (nilearn.datasets.fetch_atlas_harvard_oxford)
# --------------------------------------------------------------------------
_HO_URL = "https://www.nitrc.org/frs/download.php/9902/HarvardOxford.tgz"
_HO_NAMES = tuple(f"{part}-{kind}-{res}"
                  for part in ("cort", "cortl", "sub")
                  for kind in ("maxprob-thr0", "maxprob-thr25", "maxprob-thr50", "prob")
                  for res in ("1mm", "2mm"))


def _ho_kind(p):
    return "probseg" if "-prob-" in p["atlas_name"] else "dseg"


def _ho_build(p, files, work):
    """``data/atlases/HarvardOxford/HarvardOxford-<atlas_name>.nii.gz`` and its
    FSL XML (``<label index="i">name</label>``, value/volume i+1), the image
    reordered to a positive diagonal affine; ``symmetric_split`` as nilearn:
    ``cort-maxprob`` becomes ``cortl-maxprob`` (lateralized), ``sub-maxprob``
    regions crossing the midline are split in Left/Right."""
    atlas_name = p["atlas_name"]
    if p["symmetric_split"]:
        atlas_name = atlas_name.replace("cort-max", "cortl-max")
    if atlas_name.startswith("sub-"):
        xml, lateralized = "HarvardOxford-Subcortical.xml", False
    elif atlas_name.startswith("cortl"):
        xml, lateralized = "HarvardOxford-Cortical-Lateralized.xml", True
    else:
        xml, lateralized = "HarvardOxford-Cortical.xml", False
    image_path = _extract(files[0], f"data/atlases/HarvardOxford/HarvardOxford-{atlas_name}"
                          ".nii.gz", work / "image")
    xml_path = _extract(files[0], f"data/atlases/{xml}", work / "labels")
    names = {0: "Background"}
    labels = _read_xml(xml_path).findall(".//label")
    for label in labels:
        index = int(label.get("index")) + 1
        if index in names:
            raise InputError(f"labels file lists index {index - 1} twice", path=xml_path)
        text = (label.text or "").replace("Ventrical", "Ventricle")
        names[index] = text.replace("Operculum", "Opercular").strip()
    if sorted(names) != list(range(len(labels) + 1)):
        raise InputError("labels file indices are not 0..n-1", path=xml_path)
    names = [names[i] for i in range(len(names))]
    img = reorder_img(io.load_nifti(image_path))
    if p["symmetric_split"] and not lateralized:
        data, names = _symmetric_split(np.asanyarray(img.dataobj), names, xml_path)
        img = _new_image(data, img.affine)
    return img, _consecutive(names[1:], xml_path)


def _ho_combination(p):
    if p["symmetric_split"] and _ho_kind(p) == "probseg":
        return (f"symmetric_split: not available for the probabilistic {p['atlas_name']} "
                "(as nilearn: only for maxprob atlases)")
    return None


def reorder_img(img):
    """The image with a positive diagonal affine, by permuting and flipping axes:
    nilearn's ``image.reorder_img(img, resample=None)`` (`resampling.reorder_axes`);
    an affine with rotations is an InputError naming the file."""
    from ..resampling import reorder_axes

    try:
        data, affine = reorder_axes(np.asanyarray(img.dataobj),
                                    np.asarray(img.affine, dtype=np.float64))
    except ValueError as err:
        raise InputError(str(err)[0].lower() + str(err)[1:],
                         path=img.get_filename()) from None
    return _new_image(data, affine)


def _new_image(data, affine):
    import nibabel as nib

    img = nib.Nifti1Image(np.ascontiguousarray(data), affine)
    img.header.set_xyzt_units("mm")
    return img


def _symmetric_split(data, names, source):
    """Split every region crossing the middle of the first axis in Left/Right,
    as nilearn's ``_compute_symmetric_split`` (labels renumbered in order; a
    region with less than 5 % of its voxels on one side is kept whole).

    nilearn pairs the image's distinct values with the names in order, which
    misnames regions when one is absent: refused here.
    """
    values = np.unique(data)
    if values.tolist() != list(range(len(names))):
        raise InputError(f"symmetric_split: the image's values are not 0..{len(names) - 1} "
                         "(one per label); nilearn would misname the regions", path=source)
    middle = data.shape[0] // 2
    left = data.copy()
    left[middle:] = 0
    right = data.copy()
    right[:middle] = 0
    split = data.copy()
    new_names = [names[0]]
    label_out = 0
    for value, name in zip(values[1:], names[1:]):
        label_out += 1
        n_left, n_right = int((left == value).sum()), int((right == value).sum())
        total = float(n_left + n_right)
        if n_left / total < 0.05 or n_right / total < 0.05:
            split[data == value] = label_out
            new_names.append(name)
            continue
        split[left == value] = label_out
        new_names.append(f"Left {name}")
        label_out += 1
        split[right == value] = label_out
        new_names.append(f"Right {name}")
    return split, new_names


# --------------------------------------------------------------------------
# AAL (nilearn.datasets.fetch_atlas_aal)
# --------------------------------------------------------------------------
_AAL_BASE = "https://www.gin.cnrs.fr/"


def _aal_files(version):
    """``(url, image member, labels member)``."""
    if version == "SPM12":
        return (f"{_AAL_BASE}AAL_files/aal_for_SPM12.tar.gz", "aal/atlas/AAL.nii",
                "aal/atlas/AAL.xml")
    if version == "3v2":
        return (f"{_AAL_BASE}wp-content/uploads/AAL3v2_for_SPM12.tar.gz", "AAL3/AAL3v1.nii",
                "AAL3/AAL3v1.xml")
    return (f"{_AAL_BASE}wp-content/uploads/aal_for_{version}.zip",
            f"aal_for_{version}/ROI_MNI_V4.nii", f"aal_for_{version}/ROI_MNI_V4.txt")


def _aal_build(p, files, work):
    """SPM12 and 3v2: an XML of ``<label><index>v</index><name>n</name></label>``;
    SPM5/SPM8: ``abbreviation<TAB>name<TAB>value`` lines.  The values are not
    consecutive: each row keeps its image value."""
    _, image_member, labels_member = _aal_files(p["version"])
    image = _extract(files[0], image_member, work / "image")
    labels = _extract(files[0], labels_member, work / "labels")
    indices, names = [], []
    if p["version"] in ("SPM12", "3v2"):
        for label in _read_xml(labels).iter("label"):
            indices.append(label.find("index").text)
            names.append(label.find("name").text)
    else:
        for number, line in enumerate(labels.read_text().splitlines(), start=1):
            fields = line.strip().split("\t")
            if len(fields) != 3:
                raise InputError(f"line {number}: expected abbreviation, name and value "
                                 "separated by tabs", path=labels)
            names.append(fields[1])
            indices.append(fields[2])
    try:
        values = [int(i) for i in indices]
    except (TypeError, ValueError):
        raise InputError("labels file has a non-integer index", path=labels) from None
    return image, _table(values, names)


# --------------------------------------------------------------------------
# BASC multiscale 2015 (nilearn.datasets.fetch_atlas_basc_multiscale_2015)
# --------------------------------------------------------------------------
def _basc_urls(p):
    number = "1861819" if p["version"] == "sym" else "1861820"
    return [f"https://ndownloader.figshare.com/files/{number}"]


def _basc_build(p, files, work):
    """``template_cambridge_basc_multiscale_nii_<v>/..._<v>_scale<NNN>.nii.gz``;
    regions 1..n named by their number, as nilearn's labels."""
    version, n = p["version"], p["resolution"]
    member = (f"template_cambridge_basc_multiscale_nii_{version}/"
              f"template_cambridge_basc_multiscale_{version}_scale{n:03}.nii.gz")
    image = _extract(files[0], member, work / "image")
    return image, _table(range(1, n + 1), [str(i) for i in range(1, n + 1)])


# --------------------------------------------------------------------------
# Smith 2009 (nilearn.datasets.fetch_atlas_smith_2009)
# --------------------------------------------------------------------------
_SMITH_FILES = {"rsn20": "rsn20.nii.gz", "rsn10": "PNAS_Smith09_rsn10.nii.gz",
                "rsn70": "rsn70.nii.gz", "bm20": "bm20.nii.gz",
                "bm10": "PNAS_Smith09_bm10.nii.gz", "bm70": "bm70.nii.gz"}
_SMITH_NITRC = (7730, 7729, 7731, 7726, 7728, 7727)   # in _SMITH_FILES order


def _smith_key(p):
    return f"{'rsn' if p['resting'] else 'bm'}{p['dimension']}"


def _smith_urls(p):
    key = _smith_key(p)
    if p["mirror"] == "origin":
        return [f"https://www.fmrib.ox.ac.uk/datasets/brainmap+rsns/{_SMITH_FILES[key]}"]
    number = _SMITH_NITRC[list(_SMITH_FILES).index(key)]
    return [f"https://www.nitrc.org/frs/download.php/{number}/{_SMITH_FILES[key]}"]


def _smith_build(p, files, work):
    """One 4D image; nilearn gives no labels: the maps are named
    ``<rsn|bm><dimension>_<k>`` (k = 1-based volume, zero-padded)."""
    key = _smith_key(p)
    n = p["dimension"]
    return files[0], _table(range(1, n + 1), [f"{key}_{k:02d}" for k in range(1, n + 1)])


# --------------------------------------------------------------------------
# Yeo 2011 (nilearn.datasets.fetch_atlas_yeo_2011)
# --------------------------------------------------------------------------
_YEO_URL = "ftp://surfer.nmr.mgh.harvard.edu/pub/data/Yeo_JNeurophysiol11_MNI152.zip"


def _yeo_build(p, files, work):
    """``Yeo_JNeurophysiol11_MNI152/Yeo2011_<n>Networks_MNI152_FreeSurferConformed1mm
    [_LiberalMask].nii.gz`` (thin, thick) and ``Yeo2011_<n>Networks_ColorLUT.txt``
    (``index name r g b 0``, its first line ``0 NONE``, which nilearn reads as a
    header and replaces by Background); each region is a network."""
    import pandas as pd

    n = p["n_networks"]
    stem = f"Yeo_JNeurophysiol11_MNI152/Yeo2011_{n}Networks_"
    suffix = "_LiberalMask" if p["thickness"] == "thick" else ""
    image = _extract(files[0], f"{stem}MNI152_FreeSurferConformed1mm{suffix}.nii.gz",
                     work / "image")
    lut_path = _extract(files[0], f"{stem}ColorLUT.txt", work / "labels")
    lut = pd.read_csv(lut_path, sep=r"\s+", names=["index", "name", "r", "g", "b", "fs"],
                      header=None)
    if lut.empty or int(lut["index"].iloc[0]) != 0:
        raise InputError("colour table does not start with the background (0 NONE)",
                         path=lut_path)
    lut = lut.iloc[1:]
    return image, _table(lut["index"], lut["name"], lut["name"].astype(str))


# --------------------------------------------------------------------------
# Pauli 2017 (nilearn.datasets.fetch_atlas_pauli_2017)
# --------------------------------------------------------------------------
def _pauli_urls(p):
    maps = "https://osf.io/5mqfx/download" if p["atlas_type"] == "deterministic" \
        else "https://osf.io/w8zq2/download"
    return [maps, "https://osf.io/6qrcb/download"]


def _pauli_build(p, files, work):
    """The image, and ``labels.txt`` (``k name`` per line, k from 0): region
    k+1 (value or volume) is line k, as nilearn's look-up table."""
    names = []
    for number, line in enumerate(files[1].read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise InputError(f"line {number}: expected 'index name'", path=files[1])
        names.append(fields[1])
    return files[0], _consecutive(names, files[1])


# --------------------------------------------------------------------------
# the library
# --------------------------------------------------------------------------
_FSL_LICENCE = ("FSL licence (non-commercial use), see "
                "https://fsl.fmrib.ox.ac.uk/fsl/docs/#/license")

LIBRARY = {
    "difumo": LibraryAtlas(
        "difumo", "fetch_atlas_difumo",
        {"dimension": (64, (64, 128, 256, 512, 1024)), "resolution_mm": (2, (2, 3))},
        "DiFuMo, Dictionaries of Functional Modes (probabilistic, MNI152NLin6Asym)",
        "Dadi et al., Fine-grain atlases of functional modes for fMRI analysis, "
        "NeuroImage 221:117126, 2020",
        "usage is unrestricted for non-commercial research purposes",
        lambda p: "probseg", _difumo_urls, _difumo_build),
    "schaefer": LibraryAtlas(
        "schaefer", "fetch_atlas_schaefer_2018",
        {"n_rois": (400, tuple(range(100, 1100, 100))), "yeo_networks": (7, (7, 17)),
         "resolution_mm": (1, (1, 2))},
        "Schaefer 2018 local-global cortical parcellation, release v0.14.3 "
        "(FSL MNI152)",
        "Schaefer et al., Local-Global Parcellation of the Human Cerebral Cortex from "
        "Intrinsic Functional Connectivity MRI, Cerebral Cortex 28(9):3095-3114, 2018",
        "MIT", lambda p: "dseg", _schaefer_urls, _schaefer_build),
    "harvard_oxford": LibraryAtlas(
        "harvard_oxford", "fetch_atlas_harvard_oxford",
        {"atlas_name": ("cort-maxprob-thr25-2mm", _HO_NAMES),
         "symmetric_split": (False, (False, True))},
        "Harvard-Oxford cortical and subcortical structural atlases, from FSL 5.0 "
        "(MNI152NLin6Asym)",
        "Makris et al. 2006, Schizophrenia Research 83:155-171; Frazier et al. 2005, "
        "Am J Psychiatry 162:1256-1265; Desikan et al. 2006, NeuroImage 31:968-980; "
        "Goldstein et al. 2007, Biol Psychiatry 61:935-945",
        _FSL_LICENCE, _ho_kind, lambda p: [_HO_URL], _ho_build, _ho_combination),
    "aal": LibraryAtlas(
        "aal", "fetch_atlas_aal",
        {"version": ("3v2", ("SPM5", "SPM8", "SPM12", "3v2"))},
        "AAL, automated anatomical labelling (MNI Colin27)",
        "Tzourio-Mazoyer et al., NeuroImage 15:273-289, 2002; AAL3: Rolls et al., "
        "Automated anatomical labelling atlas 3, NeuroImage 206:116189, 2020",
        "unknown (as nilearn states)",
        lambda p: "dseg", lambda p: [_aal_files(p["version"])[0]], _aal_build),
    "basc": LibraryAtlas(
        "basc", "fetch_atlas_basc_multiscale_2015",
        {"resolution": (7, (7, 12, 20, 36, 64, 122, 197, 325, 444)),
         "version": ("sym", ("sym", "asym"))},
        "BASC multiscale functional parcellations of the Cambridge sample (MNI152)",
        "Bellec et al., Multi-level bootstrap analysis of stable clusters in "
        "resting-state fMRI, NeuroImage 51(3):1126-1139, 2010",
        "unknown (as nilearn states)", lambda p: "dseg", _basc_urls, _basc_build),
    "smith": LibraryAtlas(
        "smith", "fetch_atlas_smith_2009",
        {"mirror": ("origin", ("origin", "nitrc")), "dimension": (10, (10, 20, 70)),
         "resting": (True, (True, False))},
        "Smith 2009 ICA maps of resting-state fMRI (rsn) or BrainMap activations (bm), "
        "MNI152 2 mm",
        "Smith et al., Correspondence of the brain's functional architecture during "
        "activation and rest, PNAS 106(31):13040-13045, 2009",
        "unknown (as nilearn states)", lambda p: "probseg", _smith_urls, _smith_build),
    "yeo": LibraryAtlas(
        "yeo", "fetch_atlas_yeo_2011",
        {"n_networks": (7, (7, 17)), "thickness": ("thick", ("thin", "thick"))},
        "Yeo 2011 cortical networks, FreeSurfer-conformed MNI152 1 mm",
        "Yeo et al., The organization of the human cerebral cortex estimated by "
        "intrinsic functional connectivity, J Neurophysiol 106(3):1125-1165, 2011",
        "MIT (https://github.com/ThomasYeoLab/CBIG/blob/master/LICENSE.md)",
        lambda p: "dseg", lambda p: [_YEO_URL], _yeo_build),
    "pauli": LibraryAtlas(
        "pauli", "fetch_atlas_pauli_2017",
        {"atlas_type": ("probabilistic", ("probabilistic", "deterministic"))},
        "Pauli 2017 (CIT168) subcortical nuclei, 16 regions",
        "Pauli, Nili and Tyszka, A high-resolution probabilistic in vivo atlas of human "
        "subcortical brain nuclei, Scientific Data 5:180063, 2018",
        "CC BY 4.0 (Creative Commons Attribution 4.0 International)",
        lambda p: "dseg" if p["atlas_type"] == "deterministic" else "probseg",
        _pauli_urls, _pauli_build),
}
