"""The atlases of a config: what each one is, its region table, and the checks
that an image and its table agree.

A config names its atlases in a mapping (``atlases:``), each producing its own
outputs (``atlas-<name>``)::

    atlases:
      msdl:   {fetch: msdl}                                   # built-in, fetched
      difumo: {fetch: difumo, dimension: 256}                 # the atlas library
      mymaps: {probseg: my/maps.nii.gz, labels: my/maps.tsv}  # 4D probabilistic maps
      aal:    {dseg: my/aal.nii.gz, labels: my/aal.tsv}       # 3D integer labels

:func:`atlas_specs` turns that mapping into one :class:`AtlasSpec` per atlas
(the files, the kind, the reduction of a ``dseg``; a library atlas's
parameters, checked by `fetch.atlas_library.check_parameters`); :func:`read_region_table`
reads a labels table (``index``, ``name``, optional ``network``, ``x``, ``y``,
``z``); :func:`check_atlas_header` and :func:`check_region_table` check an image
against its table: the former from the header alone (when the workflow is
parsed), the latter with the image's values (in the ``prepare_atlas`` job, and
at parse time for a small ``dseg``).

Kinds: a ``probseg`` is 4D, one volume per region (``index`` is the 1-based
volume), extracted as nilearn's ``NiftiMapsMasker`` (least squares); a ``dseg``
is 3D with integer values (``index`` is the value; ``background``, default 0,
is no region), extracted as nilearn's ``NiftiLabelsMasker`` with ``strategy``.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = [
    "AtlasSpec",
    "BUILTIN_ATLASES",
    "KINDS",
    "STRATEGIES",
    "atlas_specs",
    "check_atlas",
    "check_atlas_header",
    "check_region_table",
    "grids_covered",
    "provenance",
    "read_region_table",
    "region_table_columns",
]

#: Atlas kinds, as their BIDS suffixes.
KINDS = ("probseg", "dseg")

#: nilearn's ``NiftiLabelsMasker`` strategies (``scipy.ndimage`` reductions).
STRATEGIES = ("mean", "median", "sum", "minimum", "maximum", "standard_deviation",
              "variance")

#: Atlases named by ``fetch:``: their kind and what they are.
BUILTIN_ATLASES = {
    "demo": ("probseg", "the demo cohort's generated atlas (30 maps)"),
    "msdl": ("probseg", "MSDL (39 maps, 4 mm), fetched as nilearn's fetch_atlas_msdl"),
}

#: Columns of a region table, in the order they are written.
region_table_columns = ("index", "name", "network", "x", "y", "z")

# Header names accepted for the columns (lower case): MSDL's "net name", etc.
_ALIASES = {"net name": "network", "net_name": "network", "label": "name",
            "region": "name", "roi": "name"}


@dataclass(frozen=True)
class AtlasSpec:
    """One atlas of the config.

    Attributes
    ----------
    name : str
        Its label in output names (``atlas-<name>``).
    kind : {"probseg", "dseg"}
    image, labels : str
        The image and its region table (for a fetched atlas, where the fetch
        job writes them).
    fetch : str or None
        The built-in atlas (``demo``, ``msdl``) or library atlas
        (`fetch.atlas_library.LIBRARY`) fetched, else None.
    strategy : str
        How a ``dseg`` region's voxels are reduced (``mean`` for a ``probseg``,
        unused).
    background : int
        The ``dseg`` value that is no region.
    parameters : tuple of (str, value)
        A library atlas's parameters, all of them (defaults filled in), in
        the library's order; empty otherwise.
    """

    name: str
    kind: str
    image: str
    labels: str
    fetch: str = None
    strategy: str = "mean"
    background: int = 0
    parameters: tuple = ()

    @property
    def library(self):
        """Is it an atlas of the library (`fetch.atlas_library`)?"""
        from .fetch.atlas_library import LIBRARY

        return self.fetch in LIBRARY

    @property
    def suffix(self):
        """BIDS suffix of the image as written out: ``dseg`` or ``probseg``."""
        return self.kind


def _config_error(message):
    from .config import ConfigError

    return ConfigError(message)


def atlas_specs(atlases, builtin_files):
    """The atlases of the config's ``atlases`` mapping.

    Parameters
    ----------
    atlases : dict
        ``{name: {fetch: ..., [parameter: value, ...]}}`` or ``{name:
        {probseg|dseg: image, labels: table, [strategy], [background]}}``, in
        the order the config gives.
    builtin_files : callable
        ``builtin_files(fetch_name, parameters) -> (image, labels)``: where
        the workflow writes a built-in or library atlas (``parameters``: a
        library atlas's, checked; ``{}`` for a built-in one).

    Returns
    -------
    dict of str to AtlasSpec, in config order.

    Raises
    ------
    ConfigError
        One line naming the key: no atlas; an entry with none or several of
        ``fetch``/``probseg``/``dseg``; an unknown built-in or library atlas
        (with the closest name and the valid ones); an unknown parameter or
        parameter value of a library atlas (with the valid ones); library
        parameters on another atlas; ``labels`` missing;
        ``strategy``/``background`` on a ``probseg`` or built-in
        (``background`` on a library ``dseg``, whose background is 0).
    """
    import difflib

    from .fetch.atlas_library import LIBRARY, atlas_kind, check_parameters, did_you_mean

    own_keys = {"fetch", "probseg", "dseg", "labels", "strategy", "background", "url",
                "licence", "description"}

    if not atlases:
        raise _config_error("config atlases: name at least one atlas, e.g. "
                            "atlases: {msdl: {fetch: msdl}}")
    specs = {}
    for name, entry in atlases.items():
        key = f"config atlases.{name}"
        entry = dict(entry or {})
        given = [k for k in ("fetch", "probseg", "dseg") if entry.get(k)]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            raise _config_error(f"{key}: give exactly one of fetch (a built-in or library atlas), "
                                f"probseg (4D maps) or dseg (3D labels); got {what}")
        source = given[0]
        parameters = {k: v for k, v in entry.items() if k not in own_keys}
        if source == "fetch":
            fetch = str(entry["fetch"])
            known = [*BUILTIN_ATLASES, *LIBRARY]
            if fetch not in known:
                raise _config_error(f"{key}.fetch: unknown atlas '{fetch}'"
                                    f"{did_you_mean(fetch, known)}; built-in: "
                                    f"{', '.join(BUILTIN_ATLASES)}; library: {', '.join(LIBRARY)}")
            library = fetch in LIBRARY
            for extra in ("labels", "background") if library else \
                    ("labels", "strategy", "background"):
                if entry.get(extra) is not None:
                    raise _config_error(f"{key}.{extra}: not used with fetch (the atlas "
                                        f"'{fetch}' has its own)")
            if not library:
                if parameters:
                    raise _config_error(f"{key}.{next(iter(parameters))}: the built-in atlas "
                                        f"'{fetch}' has no parameters")
                image, labels = builtin_files(fetch, {})
                specs[name] = AtlasSpec(name, BUILTIN_ATLASES[fetch][0], str(image),
                                        str(labels), fetch=fetch)
                continue
            try:
                parameters = check_parameters(fetch, parameters)
            except InputError as err:
                raise _config_error(f"{key}.{err}") from None
            kind = atlas_kind(fetch, parameters)
            if kind == "probseg" and entry.get("strategy") is not None:
                raise _config_error(f"{key}.strategy: only for a dseg ('{fetch}' with these "
                                    "parameters is a probseg)")
            strategy = _strategy(entry, key, difflib)
            image, labels = builtin_files(fetch, parameters)
            specs[name] = AtlasSpec(name, kind, str(image), str(labels), fetch=fetch,
                                    strategy=strategy, parameters=tuple(parameters.items()))
            continue
        if parameters:
            raise _config_error(f"{key}.{next(iter(parameters))}: a parameter of the atlas "
                                "library, only with fetch: <library atlas>")
        if not entry.get("labels"):
            raise _config_error(f"{key}.labels: required with {source} (a TSV/CSV with "
                                "index, name and optional network, x, y, z)")
        if source == "probseg":
            for extra in ("strategy", "background"):
                if entry.get(extra) is not None:
                    raise _config_error(f"{key}.{extra}: only for a dseg (a probseg's "
                                        "signals are least-squares fits of its maps)")
        strategy = _strategy(entry, key, difflib)
        background = entry.get("background")
        specs[name] = AtlasSpec(name, source, str(entry[source]), str(entry["labels"]),
                                strategy=strategy,
                                background=0 if background is None else int(background))
    return specs


def _strategy(entry, key, difflib):
    """A ``dseg``'s ``strategy`` (default ``mean``), checked."""
    strategy = entry.get("strategy") or "mean"
    if strategy not in STRATEGIES:
        close = difflib.get_close_matches(str(strategy), STRATEGIES, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise _config_error(f"{key}.strategy: unknown '{strategy}'{hint}; one of "
                            f"{', '.join(STRATEGIES)}")
    return strategy


def read_region_table(path, atlas=None):
    """Read an atlas's region table.

    Columns (header names, any order, tab- or comma-separated): ``index``
    (the integer value of a ``dseg``, the 1-based volume of a ``probseg``),
    ``name``, and optionally ``network`` and ``x``, ``y``, ``z`` (MNI mm).
    Without ``index`` the rows are the regions in order (1, 2, ...): the MSDL
    table ``x,y,z,name,net name`` reads so.  Names and networks are stripped.

    Parameters
    ----------
    path : str or Path
    atlas : str, optional
        Named in errors.

    Returns
    -------
    pandas.DataFrame
        Columns ``index`` (int64), ``name``, ``network`` (str; empty when not
        given), ``x``, ``y``, ``z`` (float64; NaN when not given), one row per
        region in table order.

    Raises
    ------
    InputError
        One line naming the file: unreadable, no ``name`` column, an index
        that is not a whole number, duplicate indices or names, empty names,
        only some of x/y/z, non-numeric coordinates.
    """
    import pandas as pd

    from .io import read_table

    def fail(problem):
        what = f"atlas {atlas}: " if atlas else ""
        return InputError(f"{what}labels table {problem}", path=path)

    table = read_table(path, dtype=str)
    table.columns = [str(c).strip() for c in table.columns]
    table = table.rename(columns={c: _ALIASES.get(c.lower(), c.lower()) for c in table.columns})
    if "name" not in table.columns:
        raise fail(f"has no 'name' column (columns: {', '.join(table.columns)})")
    if table.empty:
        raise fail("has no rows")
    out = pd.DataFrame(index=range(len(table)))
    if "index" in table.columns:
        values = pd.to_numeric(table["index"].str.strip(), errors="coerce").to_numpy()
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise fail(f"has an index that is not a whole number: "
                       f"'{table['index'].iloc[row]}' (row {row + 1})")
        out["index"] = values.astype(np.int64)
    else:
        out["index"] = np.arange(1, len(table) + 1, dtype=np.int64)
    out["name"] = table["name"].fillna("").astype(str).str.strip().to_numpy()
    network = table["network"] if "network" in table.columns else pd.Series([""] * len(table))
    out["network"] = network.fillna("").astype(str).str.strip().to_numpy()
    given = [c for c in ("x", "y", "z") if c in table.columns]
    if given and len(given) < 3:
        raise fail(f"has only some coordinates ({', '.join(given)}): give x, y and z, or none")
    for c in ("x", "y", "z"):
        if given:
            column = pd.to_numeric(table[c].str.strip(), errors="coerce")
            if column.isna().any():
                row = int(np.flatnonzero(column.isna().to_numpy())[0])
                raise fail(f"has a missing or non-numeric {c} coordinate (row {row + 1})")
            out[c] = column.to_numpy(dtype=np.float64)
        else:
            out[c] = np.nan
    if (out["name"] == "").any():
        row = int(np.flatnonzero((out["name"] == "").to_numpy())[0])
        raise fail(f"has an empty name (row {row + 1})")
    bad_chars = [n for n in out["name"] if any(ch in n for ch in "\t\n\r\"")]
    if bad_chars:
        raise fail(f"has a name with a tab, newline or quote: {bad_chars[0]!r}")
    for column in ("index", "name"):
        dupes = out[column][out[column].duplicated()]
        if len(dupes):
            shown = ", ".join(map(str, sorted(set(dupes.tolist()))[:5]))
            raise fail(f"has duplicate {column}es: {shown}" if column == "index"
                       else f"has duplicate names: {shown}")
    return out


def check_atlas_header(spec, img=None):
    """Check an atlas image's dimensions for its kind, from its header.

    Parameters
    ----------
    spec : AtlasSpec
    img : nibabel image, optional
        Already loaded (else ``spec.image`` is loaded, data not read).

    Returns
    -------
    nibabel image
        The image (data not read).

    Raises
    ------
    InputError
        One line naming the atlas and file: missing or unreadable image, a
        3D ``probseg`` or 4D ``dseg`` (a 4D image with one volume counts as
        3D, as nilearn's ``check_niimg_3d``).
    """
    from . import io

    path = Path(spec.image)
    if img is None:
        if not path.is_file():
            raise InputError(f"atlas {spec.name}: image not found", path=path)
        try:
            img = io.load_nifti(path)
        except InputError as err:
            raise InputError(f"atlas {spec.name}: {err.problem}", path=path) from None
    shape = tuple(int(s) for s in img.shape)
    if spec.kind == "probseg" and len(shape) != 4:
        raise InputError(f"atlas {spec.name}: a probseg must be a 4D image (one volume "
                         f"per region), got shape {shape}; a 3D image of integer labels "
                         "is a dseg", path=path)
    if spec.kind == "dseg" and not (len(shape) == 3 or (len(shape) == 4 and shape[3] == 1)):
        raise InputError(f"atlas {spec.name}: a dseg must be a 3D image of integer "
                         f"labels, got shape {shape}; 4D maps are a probseg", path=path)
    return img


def check_region_table(spec, table, img, values=None):
    """Check that a region table matches its image.

    Parameters
    ----------
    spec : AtlasSpec
    table : DataFrame
        From :func:`read_region_table`.
    img : nibabel image
        The atlas image (checked by :func:`check_atlas_header`).
    values : ndarray, optional
        For a ``dseg``: the image's distinct values (``numpy.unique`` of its
        data); when None only what the header tells is checked.

    Raises
    ------
    InputError
        One line naming the atlas and the table: for a ``probseg``, indices
        outside 1..n_volumes or volumes without a row; for a ``dseg``, the
        background listed as a region, non-integer values in the image,
        indices absent from the image, image values without a row.
    """
    path = spec.labels
    indices = table["index"].to_numpy()

    def fail(problem):
        return InputError(f"atlas {spec.name}: labels table {problem}", path=path)

    if spec.kind == "probseg":
        n = int(img.shape[3])
        outside = sorted(int(i) for i in indices if i < 1 or i > n)
        if outside:
            raise fail(f"lists volume(s) {_few(outside)} but {spec.image} has {n} volumes "
                       "(index is the 1-based volume of a probseg)")
        missing = sorted(set(range(1, n + 1)) - set(int(i) for i in indices))
        if missing:
            raise fail(f"has no row for volume(s) {_few(missing)} of {spec.image} "
                       f"({len(indices)} rows, {n} volumes)")
        return
    if spec.background in set(int(i) for i in indices):
        raise fail(f"lists the background value {spec.background} as a region "
                   "(set background to another value, or remove the row)")
    if values is None:
        return
    values = np.asarray(values)
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if values.dtype.kind == "f" and np.any(finite != np.round(finite)):
        bad = finite[finite != np.round(finite)]
        raise InputError(f"atlas {spec.name}: a dseg must hold integer labels, but "
                         f"{spec.image} has non-integer values (e.g. {bad[0]:g}); "
                         "probabilistic maps are a probseg", path=spec.image)
    present = set(int(v) for v in finite) - {int(spec.background)}
    absent = sorted(set(int(i) for i in indices) - present)
    if absent:
        raise fail(f"lists index(es) {_few(absent)} that do not occur in {spec.image}")
    unlisted = sorted(present - set(int(i) for i in indices))
    if unlisted:
        raise fail(f"has no row for value(s) {_few(unlisted)} of {spec.image} "
                   f"(background is {spec.background})")


def check_atlas(spec, read_values=True):
    """Check an atlas's image and table against each other.

    Parameters
    ----------
    spec : AtlasSpec
    read_values : bool
        For a ``dseg``, read the image's values too (integers, indices
        present); a 3D image is small (7 M voxels at 1 mm).

    Returns
    -------
    (table, img)
        The region table (:func:`read_region_table`) and the image (data not
        kept).

    Raises
    ------
    InputError
        One line naming the atlas, the file and the problem.
    """
    img = check_atlas_header(spec)
    table = read_region_table(spec.labels, atlas=spec.name) if Path(spec.labels).is_file() \
        else _missing_table(spec)
    values = None
    if spec.kind == "dseg" and read_values:
        data = np.asanyarray(img.dataobj)
        values = np.unique(data[np.isfinite(data)] if data.dtype.kind == "f" else data)
        del data
    check_region_table(spec, table, img, values=values)
    return table, img


def _missing_table(spec):
    raise InputError(f"atlas {spec.name}: labels table not found", path=spec.labels)


def _world_box(shape, affine):
    """World (min, max) per axis of a grid's corner voxel centres, +- half a voxel."""
    shape = [int(v) for v in shape[:3]]
    corners = np.array([[i, j, k, 1.0] for i in (-0.5, shape[0] - 0.5)
                        for j in (-0.5, shape[1] - 0.5) for k in (-0.5, shape[2] - 0.5)])
    world = corners @ np.asarray(affine, dtype=np.float64).T
    return world[:, :3].min(axis=0), world[:, :3].max(axis=0)


def grids_covered(img, grids):
    """Whether an atlas image overlaps at least one of the voxel grids.

    Parameters
    ----------
    img : nibabel image
        The atlas (header only).
    grids : iterable of (shape, affine)
        The cohort's run grids.

    Returns
    -------
    bool
        True when the world bounding box of the atlas intersects that of some
        grid (a necessary condition for any region to have data in a run).
    """
    low, high = _world_box(img.shape, img.affine)
    for shape, affine in grids:
        g_low, g_high = _world_box(shape, affine)
        if np.all(g_low < high) and np.all(low < g_high):
            return True
    return False


def provenance(spec, entry=None, demo_seed=None):
    """What is known of an atlas's origin, for its JSON sidecar.

    Parameters
    ----------
    spec : AtlasSpec
    entry : dict, optional
        The atlas's config entry: its optional ``url``, ``licence`` and
        ``description`` are recorded for a user's atlas.
    demo_seed : int, optional
        The demo's seed (the demo atlas is generated from it).

    Returns
    -------
    dict
        ``Source`` (``fetch:<name>`` or the file given), ``Description``,
        ``URL``, ``ArchiveSha256`` (a fetched archive's pinned hash),
        ``Licence``, and for a fetched atlas ``Reference``; a library atlas
        adds ``Fetcher`` (nilearn's) and ``Parameters``.  None where unknown.
        The job adds the files' own SHA-256, and for a library atlas the
        archives' (the fetch job's ``origin.json``: the hashes are known once
        downloaded).
    """
    from .fetch import atlas_library, datasets

    entry = dict(entry or {})
    if spec.library:
        atlas = atlas_library.LIBRARY[spec.fetch]
        parameters = dict(spec.parameters)
        urls = atlas_library.atlas_urls(spec.fetch, parameters)
        return {"Source": f"fetch:{spec.fetch}", "Description": atlas.description,
                "Fetcher": f"nilearn.datasets.{atlas.fetcher} (0.13.1)",
                "Parameters": parameters, "URL": urls[0] if len(urls) == 1 else urls,
                "ArchiveSha256": None, "Licence": atlas.licence,
                "Reference": atlas.reference}
    if spec.fetch == "msdl":
        return {"Source": "fetch:msdl", "Description": BUILTIN_ATLASES["msdl"][1],
                "URL": datasets.MSDL_URL, "ArchiveSha256": datasets.MSDL_SHA256,
                "Licence": "usage is unrestricted for non-commercial research purposes "
                           "(as nilearn states for MSDL)",
                "Reference": "Varoquaux et al., Multi-subject dictionary learning to "
                             "segment an atlas of brain spontaneous activity, IPMI 2011"}
    if spec.fetch == "demo":
        return {"Source": "fetch:demo", "Description": BUILTIN_ATLASES["demo"][1]
                + f", generated from cohort.demo.seed {demo_seed}", "URL": None,
                "ArchiveSha256": None, "Licence": "generated by this workflow"}
    return {"Source": spec.image, "Description": entry.get("description"),
            "URL": entry.get("url"), "ArchiveSha256": None, "Licence": entry.get("licence")}


def _few(values, n=5):
    shown = ", ".join(map(str, values[:n]))
    return shown + (f" (and {len(values) - n} more)" if len(values) > n else "")
