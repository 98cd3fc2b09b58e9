"""The extraction jobs (`cohort_connectome.jobs.extraction`) with several atlases:
``prepare_atlas`` (the atlas as used), ``resample_atlas`` (each atlas on each
run grid) and ``extract_timeseries`` (every atlas from one read of the run),
on small synthetic runs (6 mm grids, 20 volumes), against nilearn 0.13.1's
maskers and cut coordinates and against direct computations; and the workflow
end to end with two atlases.

The atlases: the demo's 30 probabilistic maps (``probseg``, 4 mm) and a
parcellation made from them (``dseg``: the map of largest value where it is
above 0.1).  The run grids are chosen so that no atlas voxel centre falls
halfway between two run voxels (no rounding tie in nearest-neighbour lookups).
"""

import gzip
import hashlib
import json
import logging
import re
import time
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cohort_connectome import demo, io
from cohort_connectome.errors import InputError
from cohort_connectome.jobs import extraction
from cohort_connectome.regions import GridAtlas
from cohort_connectome.template import brain_mask
from conftest import (demo_atlas, extract_test_run, prepare_test_atlas, relative_error,
                      resample_test_atlas, snakemake)

SUBJECT = "sub-01"
N_VOLUMES = 20
#: The whole atlas (x -78..78, y -111..77, z -51..85 mm) on a 6 mm grid.
RUN_SHAPE = (27, 36, 28)
RUN_AFFINE = np.array([[6.0, 0, 0, -77.25], [0, 6.0, 0, -112.5], [0, 0, 6.0, -61.5],
                       [0, 0, 0, 1]])
#: A slab of it: z from 14.5 mm up (no cerebellum, temporal lobes, ...).
SLAB_SHAPE = (27, 36, 15)
SLAB_AFFINE = RUN_AFFINE.copy()
SLAB_AFFINE[2, 3] = 14.5
NAMES = [r[0] for r in demo.REGIONS]
#: Demo regions whose maps lie wholly below the slab (z extent <= 10 mm) ...
BELOW_SLAB = ["L LTC", "R LTC", "Cerebellum"]
#: ... and wholly inside it, left or right of the midline (z extent >= 24 mm).
INSIDE_SLAB = {"L IPS": "left", "R IPS": "right", "L M1": "left", "R M1": "right"}
DSEG_THRESHOLD = 0.1
#: In the module's parcellation, a region of one atlas voxel that no voxel of
#: the 6 mm grids samples (nearest neighbour): absent from the run's grid.
TINY = "R STG"


def line(subject, path, problem):
    """Regex of exactly one InputError line."""
    parts = [p for p in (subject, None if path is None else str(path)) if p]
    return "^" + re.escape(": ".join(parts + [problem])) + "$"


def write_run(path, shape=RUN_SHAPE, affine=RUN_AFFINE, seed=0, brain_only=False,
              dtype=np.float32):
    """A run: the demo maps times random signals, a baseline and noise
    (everywhere, or in the schematic brain only: zero outside)."""
    rng = np.random.default_rng(seed)
    maps = demo.evaluate_maps(shape, affine).reshape(-1, len(NAMES))
    data = maps @ rng.standard_normal((len(NAMES), N_VOLUMES)) * 20.0 + 100.0
    data += rng.standard_normal(data.shape)
    if brain_only:
        data[~brain_mask(shape, affine).reshape(-1)] = 0.0
    img = nib.Nifti1Image(data.reshape(tuple(shape) + (N_VOLUMES,)).astype(dtype), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = 2.0
    img.to_filename(path)
    return path


def dseg_from_maps(maps, tiny=False):
    """The parcellation of the demo maps: 1 + the index of the largest map where
    it is above DSEG_THRESHOLD, else 0 (int16); with ``tiny``, region TINY cut
    to one voxel of x index 1 modulo 3, which the 6 mm grids (x voxel j samples
    atlas voxel rint(1.5 j + 0.1875)) never sample."""
    labels = (np.argmax(maps, axis=-1) + 1).astype(np.int16)
    labels[maps.max(axis=-1) <= DSEG_THRESHOLD] = 0
    if tiny:
        index = NAMES.index(TINY) + 1
        voxels = np.argwhere(labels == index)
        voxel = voxels[voxels[:, 0] % 3 == 1][0]
        labels[labels == index] = 0
        labels[tuple(voxel)] = index
    return labels


def write_dseg(folder, keep=None, suffix=".nii.gz", name="dseg", tiny=False):
    """The demo parcellation (only the regions named in ``keep``) and its table
    (index, name; no coordinates)."""
    maps = demo.evaluate_maps(demo.ATLAS_SHAPE, demo.ATLAS_AFFINE)
    labels = dseg_from_maps(maps, tiny=tiny)
    if keep is not None:
        labels[~np.isin(labels, [NAMES.index(n) + 1 for n in keep])] = 0
    image, table = folder / f"{name}{suffix}", folder / f"{name}.tsv"
    nib.Nifti1Image(labels, demo.ATLAS_AFFINE).to_filename(image)
    present = sorted(set(np.unique(labels).tolist()) - {0})
    pd.DataFrame({"index": present, "name": [NAMES[i - 1] for i in present]}).to_csv(
        table, sep="\t", index=False)
    return image, table


@pytest.fixture(scope="module")
def atlases(tmp_path_factory):
    """The demo probseg and its dseg (with TINY), prepared (prepare_atlas)."""
    root = tmp_path_factory.mktemp("atlases")
    maps, labels, _ = demo_atlas(root)
    image, table = write_dseg(root, tiny=True)
    return {"probseg": prepare_test_atlas(root / "prepared", maps, labels, name="maps"),
            "dseg": prepare_test_atlas(root / "prepared", image, table, name="parc",
                                       kind="dseg")}


def resample_both(atlases, folder, shape, affine, **kwargs):
    return [resample_test_atlas(atlases[k], folder / f"{k}.npz", shape, affine, **kwargs)
            for k in ("probseg", "dseg")]


def extract_both(atlases, run, regions, folder, **kwargs):
    return extract_test_run(run, [atlases["probseg"], atlases["dseg"]], regions, folder,
                            subject=SUBJECT, **kwargs)


def nilearn_signals(atlas, run):
    """nilearn's masker of the atlas (resampled to the run) on the run, and the
    index of each of its columns."""
    from nilearn.maskers import NiftiLabelsMasker, NiftiMapsMasker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if atlas["spec"]["kind"] == "probseg":
            signals = NiftiMapsMasker(str(atlas["image"]), resampling_target="data") \
                .fit_transform(str(run))
            return signals, list(range(1, len(NAMES) + 1))
        masker = NiftiLabelsMasker(str(atlas["image"]), resampling_target="data")
        signals = masker.fit_transform(str(run))
    present = [int(v) for v in np.unique(np.asanyarray(masker.labels_img_.dataobj)) if v != 0]
    assert signals.shape[1] == len(present)
    return signals, present


# --------------------------------------------------------------------------
# one read of the run for every atlas, each as nilearn's masker
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-6), (np.float32, 1e-5)])
def test_one_read_for_all_atlases_each_as_nilearn(atlases, tmp_path, monkeypatch, dtype,
                                                  tolerance):
    """Two atlases, one job: the run's file is decoded once (one chunk
    iterator, one gzip stream; nibabel never reads its data), and each atlas's
    signals are nilearn's ``NiftiMapsMasker(maps, resampling_target="data")`` /
    ``NiftiLabelsMasker(labels, resampling_target="data")`` ``.fit_transform(run)``
    to 1e-6 (float64 run; a float32 run to 1e-5: nilearn's float32 ``lstsq``
    is 1.6e-6 from the float64 solution here), in nilearn's dtype.  nilearn
    drops the label that vanishes on the 6 mm grid (TINY): ours is a NaN
    column, listed in ``MissingRegions``."""
    from nibabel.arrayproxy import ArrayProxy

    from cohort_connectome import streaming

    run = write_run(tmp_path / "run.nii.gz", dtype=dtype)
    regions = resample_both(atlases, tmp_path, RUN_SHAPE, RUN_AFFINE)
    iterated, opened, proxied = [], [], []
    real_iter, real_open = extraction.iter_volume_chunks, streaming._gzip_open
    real_array, real_getitem = ArrayProxy.__array__, ArrayProxy.__getitem__

    def count_iter(path, *args, **kwargs):
        iterated.append(str(path))
        return real_iter(path, *args, **kwargs)

    def count_open(path):
        opened.append(str(path))
        return real_open(path)

    def array(self, *args, **kwargs):
        proxied.append(str(self.file_like))
        return real_array(self, *args, **kwargs)

    def getitem(self, key):
        proxied.append(str(self.file_like))
        return real_getitem(self, key)

    monkeypatch.setattr(extraction, "iter_volume_chunks", count_iter)
    monkeypatch.setattr(streaming, "_gzip_open", count_open)
    monkeypatch.setattr(ArrayProxy, "__array__", array)
    monkeypatch.setattr(ArrayProxy, "__getitem__", getitem)
    outputs = extract_both(atlases, run, regions, tmp_path)
    monkeypatch.undo()
    assert iterated == [str(run)] and opened == [str(run)]
    assert str(run) not in proxied

    for kind, atlas in atlases.items():
        ts, side, cov = outputs[atlas["spec"]["name"]]
        ours, names = io.read_timeseries(ts)
        assert names == [NAMES[i - 1] for i in io.read_table(atlas["table"])["index"]]
        assert ours.shape == (N_VOLUMES, len(names))
        theirs, present = nilearn_signals(atlas, run)
        indices = io.read_table(atlas["table"])["index"].tolist()
        columns = [indices.index(v) for v in present]
        assert relative_error(ours[:, columns], theirs) <= tolerance, kind
        absent = [n for i, n in zip(indices, names) if i not in present]
        info = json.loads(side.read_text())
        assert info["MissingRegions"] == absent
        assert np.isnan(ours[:, [names.index(n) for n in absent]]).all()
        assert np.isfinite(ours[:, columns]).all()
        assert (info["NumberOfVolumes"], info["Atlas"], info["DataType"]) == (
            N_VOLUMES, atlas["spec"]["name"], str(theirs.dtype))
        assert list(pd.read_csv(cov, sep="\t").columns) == ["index", "name", "coverage"]
        assert absent == ([] if kind == "probseg" else [TINY])


# --------------------------------------------------------------------------
# a slab: regions outside, coverage, brain mask
# --------------------------------------------------------------------------
def coverage_oracle(weights, atlas_affine, shape, affine, mask):
    """Direct coverage: each atlas voxel centre to its nearest voxel of the
    grid (solved, not inverted); the share of each region's weight (k last
    axis of ``weights``) that lands in ``mask`` (3D bool)."""
    ijk = np.indices(weights.shape[:3]).reshape(3, -1).astype(np.float64)
    world = atlas_affine[:3, :3] @ ijk + atlas_affine[:3, 3:]
    voxel = np.rint(np.linalg.solve(affine[:3, :3], world - affine[:3, 3:])).astype(int)
    inside = np.all((voxel >= 0) & (voxel < np.array(shape)[:, None]), axis=0)
    in_mask = np.zeros(inside.size, dtype=bool)
    in_mask[inside] = mask[tuple(voxel[:, inside])]
    w = weights.reshape(-1, weights.shape[-1]).astype(np.float64)
    return (w * in_mask[:, None]).sum(axis=0) / w.sum(axis=0)


def atlas_weights(atlas):
    """(x, y, z, k) weights of an atlas's regions on its own grid, table order."""
    img = nib.load(atlas["image"])
    data = np.asanyarray(img.dataobj)
    indices = io.read_table(atlas["table"])["index"].to_numpy()
    if atlas["spec"]["kind"] == "probseg":
        return data[..., indices - 1], img.affine
    return (data[..., None] == indices).astype(np.float64), img.affine


def test_slab_run_missing_regions_and_coverage(atlases, tmp_path):
    """A run covering the top of the brain only: the regions below it are n/a
    columns listed in ``MissingRegions``, with coverage 0; every coverage is
    the direct computation's (the brain mask: voxels non-zero in some volume,
    then mask files); with a full mask the regions inside the slab have
    coverage 1, with a left-hemisphere mask 1 on the left and 0 on the right."""
    run = write_run(tmp_path / "slab.nii.gz", SLAB_SHAPE, SLAB_AFFINE, brain_only=True)
    regions = resample_both(atlases, tmp_path, SLAB_SHAPE, SLAB_AFFINE)
    full = np.ones(SLAB_SHAPE, dtype=bool)
    world_x = SLAB_AFFINE[0, 0] * np.arange(SLAB_SHAPE[0]) + SLAB_AFFINE[0, 3]
    left = np.broadcast_to((world_x < 0)[:, None, None], SLAB_SHAPE)
    masks = {"nonzero": None, "full": full, "left": left}
    expected_masks = {"nonzero": brain_mask(SLAB_SHAPE, SLAB_AFFINE), "full": full,
                      "left": left}
    for label, mask in masks.items():
        mask_path = None
        if mask is not None:
            mask_path = tmp_path / f"mask_{label}.nii.gz"
            nib.Nifti1Image(mask.astype(np.uint8), SLAB_AFFINE).to_filename(mask_path)
        outputs = extract_both(atlases, run, regions, tmp_path / label, mask_path=mask_path)
        for atlas in atlases.values():
            ts, side, cov = outputs[atlas["spec"]["name"]]
            signals, names = io.read_timeseries(ts)
            info = json.loads(side.read_text())
            nan_columns = [n for n, c in zip(names, signals.T) if np.isnan(c).all()]
            assert info["MissingRegions"] == nan_columns
            assert set(BELOW_SLAB) <= set(nan_columns)
            assert np.isfinite(np.delete(signals, [names.index(n) for n in nan_columns],
                                         axis=1)).all()
            assert info["BrainMask"] == ("non-zero voxels" if mask is None else "file")
            table = pd.read_csv(cov, sep="\t")
            assert table["name"].tolist() == names
            coverage = table["coverage"].to_numpy()
            weights, atlas_affine = atlas_weights(atlas)
            expected = coverage_oracle(weights, atlas_affine, SLAB_SHAPE, SLAB_AFFINE,
                                       expected_masks[label])
            np.testing.assert_allclose(coverage, expected, rtol=1e-9, atol=1e-12)
            by_name = dict(zip(names, coverage))
            assert all(by_name[n] == 0 for n in BELOW_SLAB)
            assert 0 < by_name["L V1"] < 1  # cut by the slab's lower face
            if label == "full":
                assert all(by_name[n] == 1 for n in INSIDE_SLAB)
            if label == "left":
                assert all(by_name[n] == (1 if side_ == "left" else 0)
                           for n, side_ in INSIDE_SLAB.items())

    other = tmp_path / "mask_other.nii.gz"
    nib.Nifti1Image(np.ones(RUN_SHAPE, np.uint8), RUN_AFFINE).to_filename(other)
    with pytest.raises(InputError, match=line(SUBJECT, other, (
            f"brain mask is not on the run's grid (shape {RUN_SHAPE}, run {SLAB_SHAPE})"))):
        extract_both(atlases, run, regions, tmp_path / "other", mask_path=other)
    assert not (tmp_path / "other").exists()


# --------------------------------------------------------------------------
# an atlas with no region on the run's grid
# --------------------------------------------------------------------------
def test_atlas_without_region_on_the_grid_excludes_the_run_for_it_only(atlases, tmp_path,
                                                                      caplog):
    """A parcellation of the regions below the slab, with the demo maps, on a
    slab run: ``resample_atlas`` fails for it, or with "exclude" writes it
    unusable; the run's extraction then writes that atlas's outputs as an
    exclusion at stage resample_atlas (no row, n/a coverage) and the maps'
    as usual; with "fail" the job raises the one line and writes nothing."""
    image, table = write_dseg(tmp_path, keep=BELOW_SLAB, name="low")
    low = prepare_test_atlas(tmp_path / "prepared", image, table, name="low", kind="dseg")
    run = write_run(tmp_path / "slab.nii.gz", SLAB_SHAPE, SLAB_AFFINE)
    problem = "atlas low: no region has a voxel in the run's field of view"
    low_regions = tmp_path / "low.npz"
    with pytest.raises(InputError, match=line(SUBJECT, run, problem)):
        resample_test_atlas(low, low_regions, SLAB_SHAPE, SLAB_AFFINE, runs=[SUBJECT],
                            run_paths=[run])
    assert not low_regions.exists()
    resample_test_atlas(low, low_regions, SLAB_SHAPE, SLAB_AFFINE, runs=[SUBJECT],
                        run_paths=[run], on_bad_input="exclude")
    unusable = GridAtlas.load(low_regions)
    assert (unusable.unusable, unusable.extractor) == (problem, None)
    maps_regions = resample_test_atlas(atlases["probseg"], tmp_path / "maps.npz", SLAB_SHAPE,
                                       SLAB_AFFINE)
    pair = [atlases["probseg"], low]

    with pytest.raises(InputError, match=line(SUBJECT, run, problem)):
        extract_test_run(run, pair, [maps_regions, low_regions], tmp_path / "fail",
                         subject=SUBJECT)
    assert not (tmp_path / "fail").exists()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cohort_connectome"):
        outputs = extract_test_run(run, pair, [maps_regions, low_regions], tmp_path / "ex",
                                   subject=SUBJECT, on_bad_input="exclude")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"{SUBJECT}: {run}: {problem}"]
    ts, side, cov = outputs["low"]
    signals, names = io.read_timeseries(ts)
    assert signals.shape == (0, len(BELOW_SLAB)) and names == BELOW_SLAB
    info = json.loads(side.read_text())
    assert (info["Excluded"], info["ExcludedStage"]) == (f"{run}: {problem}", "resample_atlas")
    assert pd.read_csv(cov, sep="\t")["coverage"].isna().all()

    ts, side, cov = outputs["maps"]
    signals, names = io.read_timeseries(ts)
    info = json.loads(side.read_text())
    assert signals.shape == (N_VOLUMES, len(NAMES)) and "Excluded" not in info
    alone = extract_test_run(run, [atlases["probseg"]], [maps_regions], tmp_path / "alone",
                             subject=SUBJECT)["maps"]
    assert ts.read_bytes() == alone[0].read_bytes()
    assert cov.read_bytes() == alone[2].read_bytes()


# --------------------------------------------------------------------------
# prepare_atlas
# --------------------------------------------------------------------------
def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prepare_dseg_from_nii_gzipped_deterministically_with_coordinates(tmp_path,
                                                                         monkeypatch):
    """An uncompressed dseg is written gzipped with the same bytes on every run
    (no time, no name in the gzip header), its content the source's; the table
    without coordinates gets nilearn's ``find_parcellation_cut_coords``; the
    sidecar has the files' SHA-256."""
    from nilearn.plotting import find_parcellation_cut_coords

    image, table = write_dseg(tmp_path, suffix=".nii")
    first = prepare_test_atlas(tmp_path / "a", image, table, name="parc", kind="dseg")
    monkeypatch.setattr(time, "time", lambda: 1.5e9)  # another gzip time, if one were written
    second = prepare_test_atlas(tmp_path / "b", image, table, name="parc", kind="dseg")
    monkeypatch.undo()
    assert first["image"].read_bytes() == second["image"].read_bytes()
    assert gzip.decompress(first["image"].read_bytes()) == image.read_bytes()
    assert first["table"].read_bytes() == second["table"].read_bytes()

    written = pd.read_csv(first["table"], sep="\t", keep_default_na=False)
    assert list(written.columns) == ["index", "name", "network", "x", "y", "z"]
    source = pd.read_csv(table, sep="\t")
    assert written["index"].tolist() == source["index"].tolist()
    assert written["name"].tolist() == source["name"].tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coords, labels = find_parcellation_cut_coords(nib.load(image), return_label_names=True)
    assert sorted(labels) == written["index"].tolist()
    expected = np.asarray(coords)[np.argsort(labels)]
    np.testing.assert_allclose(written[["x", "y", "z"]].to_numpy(), expected, rtol=0, atol=1e-6)

    info = json.loads(first["sidecar"].read_text())
    assert info["ImageSha256"] == sha256(image) and info["LabelsSha256"] == sha256(table)
    assert (info["Kind"], info["Strategy"], info["Background"]) == ("dseg", "mean", 0)
    assert info["NumberOfRegions"] == len(written)
    assert info["Coordinates"] == "computed as nilearn's find_parcellation_cut_coords"
    assert info["Source"] == str(image)


def test_prepare_probseg_from_nii_gz_copied_with_coordinates(tmp_path):
    """A .nii.gz probseg (8 of the demo maps: nilearn takes 0.25 s a map) is
    copied byte for byte; a table without coordinates gets nilearn's
    ``find_probabilistic_atlas_cut_coords``; one with coordinates keeps them."""
    from nilearn.plotting import find_probabilistic_atlas_cut_coords

    n = 8
    maps = tmp_path / "maps.nii.gz"
    img = nib.Nifti1Image(demo.evaluate_maps(demo.ATLAS_SHAPE, demo.ATLAS_AFFINE)[..., :n],
                          demo.ATLAS_AFFINE)
    img.to_filename(maps)
    labels, bare = tmp_path / "labels.tsv", tmp_path / "bare.tsv"
    demo.demo_labels().iloc[:n].to_csv(labels, sep="\t", index=False)
    demo.demo_labels().iloc[:n][["name", "network"]].to_csv(bare, sep="\t", index=False)
    prepared = prepare_test_atlas(tmp_path / "out", maps, bare, name="maps")
    assert prepared["image"].read_bytes() == maps.read_bytes()
    written = pd.read_csv(prepared["table"], sep="\t")
    assert written["index"].tolist() == list(range(1, n + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = find_probabilistic_atlas_cut_coords(img)
    np.testing.assert_allclose(written[["x", "y", "z"]].to_numpy(), expected, rtol=0,
                               atol=1e-6)
    info = json.loads(prepared["sidecar"].read_text())
    assert info["ImageSha256"] == sha256(maps) and info["LabelsSha256"] == sha256(bare)
    assert info["Coordinates"] == "computed as nilearn's find_probabilistic_atlas_cut_coords"
    assert (info["Kind"], info["Strategy"], info["Background"]) == ("probseg", None, None)
    assert (info["NumberOfRegions"], info["Atlas"]) == (n, "maps")

    given = prepare_test_atlas(tmp_path / "given", maps, labels, name="maps")
    written = pd.read_csv(given["table"], sep="\t")
    np.testing.assert_array_equal(written[["x", "y", "z"]].to_numpy(),
                                  demo.demo_labels().iloc[:n][["x", "y", "z"]].to_numpy())
    assert json.loads(given["sidecar"].read_text())["Coordinates"] == "labels table"


def test_prepare_table_not_matching_the_image_fails_with_one_line(tmp_path):
    """A table without a row for a value (dseg) or a volume (probseg) of the
    image: one line naming the atlas, the table and the image; nothing written."""
    image, table = write_dseg(tmp_path)
    rows = pd.read_csv(table, sep="\t")
    short = tmp_path / "short.tsv"
    rows[rows["index"] != 7].to_csv(short, sep="\t", index=False)
    with pytest.raises(InputError, match=line(None, short, (
            f"atlas parc: labels table has no row for value(s) 7 of {image} "
            "(background is 0)"))):
        prepare_test_atlas(tmp_path / "dseg", image, short, name="parc", kind="dseg")
    assert not list((tmp_path / "dseg").iterdir())

    maps, _, _ = demo_atlas(tmp_path)
    short = tmp_path / "short_maps.tsv"
    demo.demo_labels().iloc[:-1].to_csv(short, sep="\t", index=False)
    with pytest.raises(InputError, match=line(None, short, (
            f"atlas maps: labels table has no row for volume(s) 30 of {maps} "
            "(29 rows, 30 volumes)"))):
        prepare_test_atlas(tmp_path / "probseg", maps, short, name="maps")
    assert not list((tmp_path / "probseg").iterdir())


# --------------------------------------------------------------------------
# a run on a grid the atlases were not resampled for
# --------------------------------------------------------------------------
def test_stray_run_is_extracted_on_its_own_grid(atlases, tmp_path, caplog):
    """A run whose header is not on the grid its atlases were resampled for
    (unknown when the DAG was built): each atlas is resampled for it, with a
    warning, and its outputs are those of atlases resampled for its own grid."""
    shifted = RUN_AFFINE.copy()
    shifted[:3, 3] += [6.0, -6.0, 12.0]
    run = write_run(tmp_path / "stray.nii.gz", affine=shifted)
    dag_grid = resample_both(atlases, tmp_path / "dag", RUN_SHAPE, RUN_AFFINE)
    own_grid = resample_both(atlases, tmp_path / "own", RUN_SHAPE, shifted)
    with caplog.at_level(logging.WARNING, logger="cohort_connectome"):
        stray = extract_both(atlases, run, dag_grid, tmp_path / "stray")
    warned = [r.getMessage() for r in caplog.records
              if "resampled for this run only" in r.getMessage()]
    assert warned == [f"run grid {'x'.join(map(str, RUN_SHAPE))} differs from the grid atlas "
                      f"{name} was resampled for: resampled for this run only"
                      for name in ("maps", "parc")]
    expected = extract_both(atlases, run, own_grid, tmp_path / "expected")
    for name in ("maps", "parc"):
        for got, want in zip(stray[name], expected[name]):
            assert got.read_bytes() == want.read_bytes(), got.name
        assert np.isfinite(io.read_timeseries(stray[name][0])[0]).any()


def test_read_progress_is_logged(atlases, tmp_path, caplog, monkeypatch):
    """A run's read progress in its extraction log: the volumes read of the total and
    the rate, at most every PROGRESS_INTERVAL seconds (0 here: after every chunk, of 6
    volumes here)."""
    from cohort_connectome import streaming

    monkeypatch.setattr(extraction, "PROGRESS_INTERVAL", 0.0)
    monkeypatch.setattr(streaming, "DEFAULT_CHUNK_BYTES", 6 * 4 * int(np.prod(RUN_SHAPE)))
    run = write_run(tmp_path / "run.nii.gz")
    regions = resample_both(atlases, tmp_path / "grid", RUN_SHAPE, RUN_AFFINE)
    with caplog.at_level(logging.INFO, logger="cohort_connectome"):
        extract_both(atlases, run, regions, tmp_path / "out")
    lines = [r.getMessage() for r in caplog.records if " volumes (" in r.getMessage()]
    pattern = rf"{SUBJECT}: (\d+) of {N_VOLUMES} volumes \((\d+)%\), \d+\.\d MB/s"
    read = [int(re.fullmatch(pattern, line).group(1)) for line in lines]
    assert read[-1] == N_VOLUMES and lines[-1].split(", ")[0].endswith("(100%)")
    assert read == [6, 12, 18, 20]


# --------------------------------------------------------------------------
# the workflow with two atlases
# --------------------------------------------------------------------------
@pytest.mark.workflow
def test_workflow_with_two_atlases(tmp_path):
    """The demo cohort (2 subjects) with the demo atlas and a user dseg: every
    per-atlas output exists for both, extract_timeseries runs once per run for
    both atlases, and the summary names both."""
    from test_workflow import job_counts

    data = tmp_path / "data"
    data.mkdir()
    image, table = write_dseg(data, name="parc")
    config = tmp_path / "two.yaml"
    config.write_text(
        "cohort:\n  demo:\n    n_subjects: 2\n"
        f"atlases:\n  demo: {{fetch: demo}}\n  parc: {{dseg: {image}, labels: {table}}}\n"
        "connectivity:\n  kinds: [correlation]\n"
        "figures:\n  qc: false\n"
        "group:\n  compare: null\n")
    workdir = tmp_path / "run"
    proc = snakemake(workdir, "--configfile", str(config))
    out = proc.stdout + proc.stderr
    # one extraction per run; per atlas: prepared, resampled to the demo's one grid,
    # cleaned and estimated per run, aggregated
    assert job_counts(out) == {
        "simulate_demo_atlas": 1, "simulate_demo_run": 2, "prepare_atlas": 2,
        "resample_atlas": 2, "extract_timeseries": 2, "clean_timeseries": 4,
        "estimate_connectomes": 4, "aggregate_connectomes": 2, "plot_group_connectomes": 2,
        "qc_fc": 2, "plot_cohort_motion": 2, "report_qc_tables": 2, "methods": 1, "all": 1,
        "total": 29}

    results = workdir / "results"
    for atlas, kind in (("demo", "probseg"), ("parc", "dseg")):
        stem = results / "atlases" / f"atlas-{atlas}" / f"atlas-{atlas}_{kind}"
        for suffix in (".nii.gz", ".tsv", ".json"):
            assert stem.with_name(stem.name + suffix).is_file()
        names = pd.read_csv(f"{stem}.tsv", sep="\t")["name"].tolist()
        for sub in ("sub-01", "sub-02"):
            func = results / sub / "func"
            raw = workdir / "work" / sub / f"{sub}_atlas-{atlas}_desc-raw_timeseries.tsv"
            assert io.read_timeseries(raw)[1] == names
            signals, header = io.read_timeseries(func / f"{sub}_atlas-{atlas}_timeseries.tsv")
            assert header == names and len(signals) > 0
            coverage = pd.read_csv(func / f"{sub}_atlas-{atlas}_stat-coverage_bold.tsv",
                                   sep="\t")
            assert coverage["name"].tolist() == names
            matrix, _ = io.read_matrix(func / f"{sub}_atlas-{atlas}_meas-correlation_relmat.tsv")
            assert matrix.shape == (len(names), len(names))
            assert (workdir / "logs" / "extract_timeseries" / sub / f"{sub}.log").is_file()
        group = results / "group"
        assert (group / f"atlas-{atlas}_connectomes.tsv").is_file()
        assert (group / f"atlas-{atlas}_meas-correlation_relmat.tsv").is_file()
        assert (group / f"atlas-{atlas}_exclusions.tsv").is_file()
    assert not (results / "group" / "exclusions.tsv").exists()
    assert "cohort_connectome: 2 subjects, 2 runs, atlases demo, parc, kinds correlation" in out
    for atlas in ("demo", "parc"):
        assert f"  exclusions          none (atlas {atlas})" in out


@pytest.mark.workflow
def test_dseg_table_not_matching_stops_before_any_job(tmp_path):
    """A dseg whose table lists an index absent from the image: the workflow
    stops when it is parsed, with the one-line config error naming the atlas."""
    data = tmp_path / "data"
    data.mkdir()
    image, table = write_dseg(data, name="parc")
    rows = pd.read_csv(table, sep="\t")
    extra = pd.concat([rows, pd.DataFrame({"index": [99], "name": ["ghost"]})])
    extra.to_csv(table, sep="\t", index=False)
    config = tmp_path / "bad.yaml"
    config.write_text(f"atlases:\n  parc: {{dseg: {image}, labels: {table}}}\n")
    proc = snakemake(tmp_path / "run", "-n", "--configfile", str(config), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert (f"config atlases.parc: {table}: labels table lists index(es) 99 that do not occur "
            f"in {image}") in out.splitlines()
    assert "Job stats" not in out and "Traceback" not in out
    assert not (tmp_path / "run" / "results").exists()
