"""Jobs of the image-reading rules (workflow/rules/extraction.smk): each atlas as
used, each atlas on each voxel grid, and each run's region signals for every
atlas from one read.

These are the jobs that read images, each in its own process (the light
per-run steps, workflow/rules/subject.smk, run inside the Snakemake process on
a workstation).  Each reads its inputs, calls the numerics (`atlases`,
`regions`, `streaming`), writes its outputs and, with ``cohort.on_bad_input:
exclude``, the placeholders of an excluded run (`runtime.excluded_on_bad_input`).
"""

import hashlib
from pathlib import Path

import nibabel as nib
import numpy as np

from .. import io
from ..atlases import AtlasSpec, check_atlas, read_region_table, region_table_columns
from ..errors import InputError
from ..extraction import header_repetition_time, load_run
from ..regions import GridAtlas
from ..streaming import (PROJECT_VOLUMES, iter_region_signals, iter_volume_chunks,
                         union_of_voxels)
from .runtime import ProgressLog, excluded_on_bad_input, exclusion_reason, log

#: Seconds between two lines of a run's read progress in its extraction log.
PROGRESS_INTERVAL = 5.0


def _spec(params, image, labels):
    """The AtlasSpec of a job's ``spec`` params and input files."""
    return AtlasSpec(params["name"], params["kind"], str(image), str(labels),
                     fetch=params.get("fetch"), strategy=params.get("strategy", "mean"),
                     background=int(params.get("background", 0)))


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_atlas(spec, provenance, image_path, labels_path, image_out, table_out,
                  sidecar_out, origin_path=None):
    """Check an atlas and write it out as used, with its region table and provenance.

    The image is checked against its table (`atlases.check_atlas`: kind and
    dimensions, indices present, integer labels); region coordinates missing
    from the table are computed from the image as nilearn's
    ``find_parcellation_cut_coords`` (dseg) and
    ``find_probabilistic_atlas_cut_coords`` (probseg, one map at a time).
    Writes ``atlas-<name>_<kind>.nii.gz`` (the image's bytes when it is
    already gzipped, else gzipped with a fixed header), ``.tsv`` (index, name,
    network, x, y, z) and ``.json`` (provenance, SHA-256 of the files, kind,
    strategy, background, number of regions, where the coordinates come from).
    ``origin_path``: a library atlas's ``origin.json`` (its fetch job's), whose
    URLs, archive hashes and regions left out complete the provenance.
    """
    spec = _spec(spec, image_path, labels_path)
    if origin_path:
        origin = io.read_json(origin_path)
        single = len(origin["URLs"]) == 1
        provenance = {**provenance,
                      "URL": origin["URLs"][0] if single else origin["URLs"],
                      "ArchiveSha256": origin["Sha256"][0] if single else origin["Sha256"],
                      "RegionsAbsentFromImage": origin["RegionsAbsentFromImage"]}
    table, img = check_atlas(spec)
    coordinates = "labels table"
    if table[["x", "y", "z"]].isna().any().any():
        table[["x", "y", "z"]] = _cut_coords(spec, img, table)
        coordinates = ("computed as nilearn's " + (
            "find_parcellation_cut_coords" if spec.kind == "dseg"
            else "find_probabilistic_atlas_cut_coords"))
    io.copy_gzipped(image_path, image_out)
    io.write_table(table[list(region_table_columns)], table_out)
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    io.write_json({
        **provenance,
        "Atlas": spec.name,
        "Kind": spec.kind,
        "Strategy": spec.strategy if spec.kind == "dseg" else None,
        "Background": spec.background if spec.kind == "dseg" else None,
        "NumberOfRegions": int(len(table)),
        "Shape": [int(s) for s in img.shape],
        "VoxelSizeMillimetres": zooms,
        "Affine": np.asarray(img.affine, dtype=float).round(6).tolist(),
        "ImageSha256": _sha256(image_path),
        "LabelsSha256": _sha256(labels_path),
        "Coordinates": coordinates,
    }, sidecar_out)
    log.info("atlas %s: %s, %d regions, shape %s, coordinates from the %s", spec.name,
             spec.kind, len(table), "x".join(map(str, img.shape)), coordinates)


def _cut_coords(spec, img, table):
    """(k, 3) region coordinates (MNI mm) computed from the image, table order."""
    from ..labels import parcellation_cut_coords, probabilistic_cut_coords

    if spec.kind == "dseg":
        labels = np.asanyarray(img.dataobj)
        if labels.ndim == 4:
            labels = labels[..., 0]
        return parcellation_cut_coords(labels, img.affine, table["index"].to_numpy(),
                                       background=spec.background)
    coords = np.full((len(table), 3), np.nan)
    position = {int(index): row for row, index in enumerate(table["index"])}
    volume = 0
    for chunk in iter_volume_chunks(spec.image):
        for values in chunk:
            volume += 1
            if volume in position:
                vol = np.asarray(values).reshape(img.shape[:3], order="F")
                coords[position[volume]] = probabilistic_cut_coords(vol, img.affine)
    return coords


def resample_atlas(spec, image_path, table_path, output_path, shape=None, affine=None,
                   runs=(), run_paths=(), on_bad_input="fail"):
    """Write one atlas on one voxel grid (`regions.GridAtlas`).

    Runs once per atlas and distinct grid of the cohort (shape + affine, read
    from the runs' headers when the DAG is built), shared by every run on it:
    a ``probseg``'s maps resampled sparsely (linear, nilearn's clipping) and
    their least-squares projector; a ``dseg``'s labels resampled (nearest)
    and their reducer; the coverage matrix of both.

    Reads the atlas's own image and labels table (checked when the workflow
    was parsed, or, fetched, by ``prepare_atlas``, which runs beside it).

    Parameters
    ----------
    spec : dict
        The atlas (name, kind, strategy, background).
    shape, affine : the target grid, or None to keep the atlas grid.
    runs, run_paths : sequence of str
        The runs on this grid and their files, named in errors and in the log.
    on_bad_input : {"fail", "exclude"}
        When no region of the atlas lands on this grid: fail, or write an
        unusable grid atlas whose reason each run's extraction job records as
        its exclusion for this atlas (stage ``resample_atlas``).  Problems of
        the atlas itself (unreadable image or table) always fail.
    """
    who = _runs_label(runs)
    spec = _spec(spec, image_path, table_path)
    img = nib.load(image_path)
    table = read_region_table(table_path, atlas=spec.name)
    if shape is None:
        shape, affine = img.shape[:3], img.affine

    def write_unusable(stage, err):  # the reason without the file: it is every run's
        GridAtlas.unusable_on(spec, table, shape, affine, err.problem).save(output_path)

    with excluded_on_bad_input("resample_atlas", on_bad_input, write_unusable, subject=who):
        try:
            grid_atlas = GridAtlas.build(spec, img, table, shape, affine)
        except InputError as err:
            raise err.with_context(path=_first(run_paths), subject=who) from None
        grid_atlas.save(output_path)
        log.info("atlas %s on grid %s for %s: %d of %d regions have voxels", spec.name,
                 "x".join(map(str, grid_atlas.grid_shape)), who,
                 int(grid_atlas.supported.sum()), grid_atlas.n_regions)


def _first(values):
    values = list(values or ())
    return values[0] if values else None


def _runs_label(runs):
    runs = list(runs or ())
    if not runs:
        return None
    return runs[0] if len(runs) == 1 else f"{runs[0]} (and {len(runs) - 1} more runs)"


def extract_timeseries(run_path, atlases, region_paths, specs, image_paths, table_paths,
                       timeseries_paths, sidecar_paths, coverage_paths, mask_path=None,
                       subject=None, on_bad_input="fail"):
    """Every atlas's region signals of one run, from one read of the run.

    The run is streamed in chunks of volumes and projected on every atlas
    (`streaming.iter_region_signals`: per batch of volumes, one gather of the
    atlases' voxels; least squares for a ``probseg``, nilearn's
    ``img_to_signals_maps``; the strategy's reduction for a ``dseg``,
    ``img_to_signals_labels``).  Regions with no voxel in the run's
    field of view are ``n/a`` and listed in the sidecar (``MissingRegions``).
    Each region's coverage (share of it, on the atlas grid, inside the run's
    field of view and brain mask: ``mask_path``, else the voxels non-zero in
    some volume) is written per atlas (``stat-coverage_bold.tsv``), for
    ``clean_timeseries`` to apply ``extraction.min_coverage``.

    A run whose header is not on the grid its atlases were resampled for (its
    grid was unknown when the DAG was built) has them resampled here, for it
    alone, with a warning.  A bad run (missing, empty, truncated, not 4D)
    fails the job, or with ``on_bad_input="exclude"`` is excluded for every
    atlas; an atlas that has no region on the run's grid excludes the run for
    that atlas only (stage ``resample_atlas``).
    """
    # the workflow's own files: a problem here is not the run's (never excluded)
    grid_atlases = [GridAtlas.load(p) for p in region_paths]
    outputs = list(zip(atlases, grid_atlases, timeseries_paths, sidecar_paths,
                       coverage_paths))

    def write_excluded(stage, err, which=None):
        for name, grid_atlas, ts_path, side_path, cov_path in outputs:
            if which is not None and name != which:
                continue
            io.write_timeseries(np.zeros((0, grid_atlas.n_regions)), grid_atlas.names, ts_path)
            io.write_json({"Excluded": exclusion_reason(err), "ExcludedStage": stage,
                           "Atlas": name, "NumberOfVolumes": None, "NonFiniteValues": None,
                           "RepetitionTimeHeader": None, "MissingRegions": None,
                           "Source": str(run_path)}, side_path)
            _write_coverage(grid_atlas, np.full(grid_atlas.n_regions, np.nan), cov_path)

    with excluded_on_bad_input("extract_timeseries", on_bad_input, write_excluded, subject):
        run = load_run(run_path, subject=subject)
        usable = []
        for (name, grid_atlas, *_), spec, image, table in zip(outputs, specs, image_paths,
                                                             table_paths):
            if grid_atlas.extractor is not None and not grid_atlas.on_grid(run.shape,
                                                                           run.affine):
                grid_atlas = _resample_for_run(spec, image, table, run, run_path, subject)
            if grid_atlas.unusable:
                err = InputError(grid_atlas.unusable, path=run_path, subject=subject,
                                 stage="resample_atlas")
                if on_bad_input != "exclude" or len(outputs) == 1:
                    raise err
                log.error("%s", err)
                write_excluded("resample_atlas", err, which=name)
                log.warning("%s excluded for atlas %s (cohort.on_bad_input: exclude)",
                            subject or "run", name)
                continue
            usable.append((name, grid_atlas))
        if usable:
            _extract_run(run, run_path, usable, outputs, mask_path, subject)


def _resample_for_run(spec, image, table, run, run_path, subject):
    log.warning("run grid %s differs from the grid atlas %s was resampled for: resampled "
                "for this run only", "x".join(map(str, run.shape[:3])), spec["name"])
    spec_ = _spec(spec, image, table)
    img = nib.load(image)
    regions = read_region_table(table, atlas=spec_.name)
    try:
        return GridAtlas.build(spec_, img, regions, run.shape[:3], run.affine)
    except InputError as err:
        return GridAtlas.unusable_on(spec_, regions, run.shape[:3], run.affine,
                                     err.problem)


def _extract_run(run, run_path, usable, outputs, mask_path, subject):
    """The body of `extract_timeseries` for a readable run: one read, every atlas."""
    grid = tuple(int(s) for s in run.shape[:3])
    n_volumes = int(run.shape[3])
    mask = _brain_mask(mask_path, run, subject)
    # without a mask file, the voxels non-zero in some volume, looked at only where
    # an atlas's weight lands (all the coverage needs; a fraction of the grid), and
    # each only until it is found non-zero (after the first chunk, few are left)
    pending = None if mask is not None else union_of_voxels(
        [ga.coverage_.indices for _, ga in usable], int(np.prod(grid)))
    if mask is None:
        mask = np.zeros(int(np.prod(grid)), dtype=bool)
    signals = {name: np.empty((n_volumes, ga.n_regions)) for name, ga in usable}
    counts = {name: {"non_finite": 0} for name, _ in usable}
    names = [name for name, _ in usable]
    data_dtype = None

    progress = ProgressLog(subject or "run", n_volumes, PROGRESS_INTERVAL)

    def chunks():  # the run's chunks, looked at for the mask on the way
        nonlocal pending, data_dtype
        for chunk in iter_volume_chunks(run_path, subject=subject,
                                        read_ahead_volumes=PROJECT_VOLUMES):
            data_dtype = chunk.dtype
            progress.update(chunk.shape[0], chunk.nbytes)
            if pending is not None and pending.size:
                part = np.take(chunk, pending, axis=1)
                seen = np.any((part != 0) & np.isfinite(part), axis=0)
                mask[pending[seen]] = True
                pending = pending[~seen]
                del part
            yield chunk

    try:
        for i, start, values in iter_region_signals(
                chunks(), [ga.extractor for _, ga in usable], [counts[n] for n in names]):
            signals[names[i]][start:start + values.shape[0]] = values
    except InputError as err:
        raise err.with_context(path=run_path, subject=subject) from None
    by_name = {o[0]: o for o in outputs}
    header_tr = header_repetition_time(run)
    for name, grid_atlas in usable:
        _, _, ts_path, side_path, cov_path = by_name[name]
        # nilearn's dtype (float32 for float32 data and maps), as its maskers return
        values = signals[name].astype(grid_atlas.result_dtype(data_dtype))
        missing = [n for n, ok in zip(grid_atlas.names, grid_atlas.supported) if not ok]
        values[:, ~grid_atlas.supported] = np.nan
        coverage = grid_atlas.coverage(mask)
        if counts[name]["non_finite"]:
            log.warning("atlas %s: %d NaN/inf values in its voxels set to 0 (as nilearn)",
                        name, counts[name]["non_finite"])
        if missing:
            log.warning("atlas %s: %d of %d regions have no voxel in the run's field of "
                        "view: n/a (%s)", name, len(missing), grid_atlas.n_regions,
                        ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
        io.write_timeseries(values, grid_atlas.names, ts_path)
        _write_coverage(grid_atlas, coverage, cov_path)
        io.write_json({"Atlas": name, "RepetitionTimeHeader": header_tr,
                       "NumberOfVolumes": n_volumes,
                       "NonFiniteValues": int(counts[name]["non_finite"]),
                       "MissingRegions": missing,
                       "BrainMask": "file" if mask_path else "non-zero voxels",
                       "DataType": str(values.dtype), "Source": str(run_path)}, side_path)
        log.info("atlas %s: %d volumes x %d regions (%d n/a)", name, n_volumes,
                 grid_atlas.n_regions, len(missing))


def _brain_mask(mask_path, run, subject):
    """The run's brain mask (bool per voxel, Fortran order), or None."""
    if not mask_path:
        return None
    path = Path(mask_path)
    if not path.is_file():
        raise InputError("brain mask file not found", path=path, subject=subject)
    try:
        img = nib.load(path)
        data = np.asanyarray(img.dataobj)
    except Exception as err:  # nibabel raises several types
        raise InputError(f"not a readable NIfTI image: {err}", path=path,
                         subject=subject) from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    from ..resampling import same_grid

    if data.ndim != 3 or not same_grid(data.shape, img.affine, run.shape, run.affine):
        raise InputError(f"brain mask is not on the run's grid (shape {data.shape}, run "
                         f"{tuple(run.shape[:3])})", path=path, subject=subject)
    return np.asarray(data != 0).reshape(-1, order="F")


def _write_coverage(grid_atlas, coverage, path):
    """The per-run coverage table (XCP-D's ``stat-coverage``): index, name, coverage."""
    import pandas as pd

    table = pd.DataFrame({"name": grid_atlas.names, "coverage": coverage})
    table.insert(0, "index", grid_atlas.indices)
    io.write_table(table, path)
