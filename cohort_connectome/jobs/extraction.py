"""Jobs of the image-reading rules (workflow/rules/extraction.smk): the atlas
resampled once per voxel grid, and each run's region signals.

These are the per-run jobs that read the 4D images, each in its own process
(the light per-run steps, workflow/rules/subject.smk, run inside the Snakemake
process on a workstation).  Each reads its inputs, calls the numerics
(`resampling`, `streaming`, `extraction`), writes its outputs and, with
``cohort.on_bad_input: exclude``, the placeholders of an excluded run
(`runtime.excluded_on_bad_input`).
"""

from pathlib import Path

import nibabel as nib
import numpy as np

from .. import io
from ..errors import InputError
from ..extraction import header_repetition_time, load_run
from ..resampling import resample_maps, same_grid
from ..streaming import MapsProjector, extract_signals_streaming
from .runtime import excluded_on_bad_input, exclusion_reason, log


def resample_atlas(maps_path, labels_path, output_path, projector_path, shape=None,
                   affine=None, runs=(), run_paths=(), on_bad_input="fail"):
    """Write the atlas maps on one voxel grid, and their projector.

    Runs once per distinct grid of the cohort (shape + affine, read from the
    runs' headers when the DAG is built) and is shared by every run on it.
    Linear interpolation with nilearn's clipping; when the grids are equal
    (or ``shape`` is None) the maps are written unchanged.  The projector
    (support and pseudo-inverse of the maps, `streaming.MapsProjector`) is
    computed here once, so that extracting a run is a matrix product; it
    carries the region names of the labels table (checked here, one row per
    map), so that the extraction jobs need not read it.

    Parameters
    ----------
    shape, affine : the target grid, or None to keep the atlas grid.
    runs, run_paths : sequence of str
        The runs on this grid and their files, named in errors and in the log.
    on_bad_input : {"fail", "exclude"}
        When the maps cannot be used on this grid (they do not overlap it):
        fail, or write zero maps and an unusable projector
        (`MapsProjector.unusable`) whose reason each run's extraction job
        records as its exclusion (stage ``resample_atlas``).  Problems of the
        atlas itself (unreadable maps, labels) always fail.
    """
    who = _runs_label(runs)
    maps_img = _load_maps(maps_path)
    labels = io.read_labels(labels_path, n_maps=maps_img.shape[3])
    maps = np.asanyarray(maps_img.dataobj)
    if shape is None or same_grid(maps.shape, maps_img.affine, shape, affine):
        out_shape, out_affine = maps.shape[:3], maps_img.affine
    else:
        out_shape, out_affine = tuple(shape)[:3], np.asarray(affine, dtype=np.float64)

    def write_unusable(stage, err):  # the reason without the file: it is every run's
        zeros = np.zeros(tuple(out_shape) + (maps.shape[3],), dtype=maps.dtype)
        io.save_nifti(nib.Nifti1Image(zeros, out_affine), output_path)
        MapsProjector.unusable(maps.dtype, out_shape, maps.shape[3], err.problem).save(
            projector_path, names=labels["name"])

    with excluded_on_bad_input("resample_atlas", on_bad_input, write_unusable, subject=who):
        try:  # e.g. the atlas does not overlap the grid
            if out_affine is maps_img.affine:
                log.info("atlas already on the grid: maps used unchanged")
                out = maps
            else:
                out = resample_maps(maps, maps_img.affine, out_shape, out_affine)
                log.info("resampled %d maps from %s to %s for %s", maps.shape[3],
                         "x".join(map(str, maps.shape[:3])), "x".join(map(str, out_shape)),
                         who)
            projector = MapsProjector().fit(out)
        except InputError as err:
            raise err.with_context(path=_first(run_paths), subject=who) from None
        io.save_nifti(nib.Nifti1Image(out, out_affine), output_path)
        projector.save(projector_path, names=labels["name"])
        log.info("projector: %d maps on %d voxels", projector.n_maps_,
                 projector.support_.size)


def _first(values):
    values = list(values or ())
    return values[0] if values else None


def _runs_label(runs):
    runs = list(runs or ())
    if not runs:
        return None
    return runs[0] if len(runs) == 1 else f"{runs[0]} (and {len(runs) - 1} more runs)"


def _load_maps(path):
    path = Path(path)
    if not path.is_file():
        raise InputError("atlas maps file not found", path=path)
    try:
        img = nib.load(path)
    except Exception as err:  # nibabel raises several types for bad files
        raise InputError(f"not a readable NIfTI image: {err}", path=path) from None
    if len(img.shape) != 4:
        raise InputError(f"atlas maps must be a 4D image (one volume per map), got shape "
                         f"{img.shape}", path=path)
    return img


def extract_timeseries(run_path, maps_path, projector_path, output_path, sidecar_path,
                       subject=None, on_bad_input="fail"):
    """Extract region signals (least squares on the maps) from one run.

    The run is streamed in chunks of volumes and projected with the maps'
    pseudo-inverse computed once per grid by `resample_atlas`
    (`cohort_connectome.streaming`), never held whole; the result equals
    nilearn's ``img_to_signals_maps``.  A run whose header is not on the grid
    of ``maps_path`` (its grid was unknown when the DAG was built) has the
    maps resampled here, for it alone, with a warning in the log.  Writes the
    raw region signals (TSV, header = region names) and a JSON sidecar with
    the run's repetition time from its header.

    A bad run (missing, empty, truncated, not 4D, outside the atlas) fails
    the job, or with ``on_bad_input="exclude"`` is excluded (see
    `excluded_on_bad_input`); so is every run of a grid whose projector is
    unusable (stage ``resample_atlas``).
    """
    # the workflow's own files: a problem here is not the run's (never excluded)
    projector = MapsProjector.load(projector_path)
    maps_img = _load_maps(maps_path)
    names = projector.names_
    if names is None:
        raise InputError("projector has no region names (written by an older version: "
                         "rerun resample_atlas)", path=projector_path, subject=subject)

    def write_excluded(stage, err):
        io.write_timeseries(np.zeros((0, len(names))), names, output_path)
        io.write_json({"Excluded": exclusion_reason(err), "ExcludedStage": stage,
                       "NumberOfVolumes": None, "NonFiniteValues": None,
                       "RepetitionTimeHeader": None, "Source": str(run_path)}, sidecar_path)

    with excluded_on_bad_input("extract_timeseries", on_bad_input, write_excluded, subject):
        if projector.unusable_:  # the maps cannot be used on this run's grid
            raise InputError(projector.unusable_, path=run_path, subject=subject,
                             stage="resample_atlas")
        _extract_run(load_run(run_path, subject=subject), run_path, maps_path, maps_img,
                     projector, names, output_path, sidecar_path, subject)


def _extract_run(run, run_path, maps_path, maps_img, projector, names, output_path,
                 sidecar_path, subject):
    """The body of `extract_timeseries` for a readable run."""
    if not (maps_img.shape[:3] == run.shape[:3] and np.allclose(maps_img.affine, run.affine)):
        log.warning("run grid %s differs from the grid of %s: maps resampled for this "
                    "run only", "x".join(map(str, run.shape[:3])), maps_path)
        try:
            maps = resample_maps(np.asanyarray(maps_img.dataobj), maps_img.affine,
                                 run.shape[:3], run.affine)
            projector = MapsProjector().fit(maps)
        except InputError as err:
            raise err.with_context(path=run_path, subject=subject) from None
    counts = {}
    try:
        signals = extract_signals_streaming(run_path, projector, subject=subject,
                                            counts=counts)
    except InputError as err:
        raise err.with_context(path=run_path, subject=subject) from None
    if counts["non_finite"]:
        log.warning("%d NaN/inf values in the atlas' voxels set to 0 (as nilearn)",
                    counts["non_finite"])
    io.write_timeseries(signals, names, output_path)
    io.write_json({"RepetitionTimeHeader": header_repetition_time(run),
                   "NumberOfVolumes": run.shape[3],
                   "NonFiniteValues": int(counts["non_finite"]),
                   "DataType": str(signals.dtype), "Source": str(run_path)}, sidecar_path)
    log.info("%d volumes x %d regions", *signals.shape)
