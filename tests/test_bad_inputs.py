"""Bad-input matrix (issue 8, item 1): every case with its exact outcome.

Each case is run at the level of the job functions (`cohort_connectome.jobs.*`:
what a workflow rule calls) on small synthetic runs (10x12x10 voxels of 16 mm,
the demo atlas evaluated on that grid), or of `cohort.read_sheet` for
participant ids.  A failure is a one-line `InputError`, ``"<subject>: <file>:
<problem>"``, asserted whole; a case that does not fail is asserted on its
values (against nilearn 0.13.1 where nilearn defines them), its sidecar and
its warning.  Cases already tested elsewhere with their exact outcome are not
repeated; the table lists them so that the matrix is complete here.

============================================  ==========================================
case                                          test
============================================  ==========================================
missing file: run, confounds, atlas           test_unreadable_file[missing-*] (here)
empty file: run (.nii, .nii.gz), confounds    test_unreadable_file[empty-*] (here)
truncated .nii.gz: in the data, in header     test_unreadable_file[truncated-*] (here);
                                              count of complete volumes on a large run:
                                              test_streaming.py::test_truncated_gz,
                                              uncompressed: ::test_truncated_nii
3D image                                      test_unreadable_file[3d-run] (here)
single-volume run                             test_extraction.py::test_load_run_single_volume
NaN/inf voxels (zeroed as nilearn, counted)   test_non_finite_voxels_are_zeroed_as_nilearn
                                              (here; count through cleaning also in
                                              test_jobs_subject.py::test_non_finite_voxels_are_counted_through_cleaning)
region whose signal is constant               test_constant_region_* (here: cleaned to 0,
                                              listed in ConstantRegions; a documented
                                              deviation from nilearn's rounding noise)
atlas outside the run's field of view         test_atlas_outside_field_of_view (here)
confounds with a different row count          test_confounds_row_count (here)
non-numeric / non-finite confounds            test_confounds_not_numeric (here)
duplicate participant ids                     test_cohort.py::test_sheet_errors
                                              ("01" and "sub-01": "lists sub-01 more than
                                              once", with the sheet path); ids differing
                                              only in case, missing ids: test_sheet_ids (here)
ids that break paths or wildcards             test_input_safety.py::test_ids_that_break_paths_or_shells_are_refused
                                              (10 ids, refused, named); in a sheet, with
                                              its path: test_cohort.py::test_sheet_errors
                                              ("0 1"); test_sheet_ids (here)
missing or zero TR                            test_repetition_time_missing_or_zero (here);
                                              sidecar "2s": test_jobs_subject.py::test_bad_sidecar_is_one_line_error;
                                              sheet t_r -2: test_cohort.py::test_sheet_errors
low_pass above Nyquist                        test_low_pass_above_nyquist_as_nilearn (here);
                                              clean_signals grid: test_signal.py::test_parity_with_nilearn_clean,
                                              ::test_parity_band_collapsed_above_nyquist
GraphicalLassoCV not converging               test_graphical_lasso_not_converging_is_recorded
GraphicalLassoCV failing (Non SPD)            test_graphical_lasso_failure_* (here)
============================================  ==========================================
"""

import json
import logging
import re
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cohort_connectome import cohort, demo, io
from cohort_connectome.jobs import group as group_jobs
from cohort_connectome.jobs import subject as subject_jobs
from cohort_connectome.errors import InputError
from conftest import (REPO_ROOT, extract_test_run, prepare_test_atlas, relative_error,
                      resample_test_atlas)

SHAPE = (10, 12, 10)
AFFINE = np.array([[16.0, 0, 0, -72], [0, 16.0, 0, -104], [0, 0, 16.0, -56], [0, 0, 0, 1]])
N_VOLUMES = 60
SUBJECT = "sub-01"
CLEAN = {"detrend": True, "standardize": "zscore_sample", "high_pass": 0.01}
#: The demo region whose map overlaps no other map on this grid.
ISOLATED = demo.REGIONS[1][0]  # mPFC


def line(subject, path, problem):
    """Regex of exactly one InputError line."""
    parts = [p for p in (subject, None if path is None else str(path)) if p]
    return "^" + re.escape(": ".join(parts + [problem])) + "$"


def write_run(path, data, affine=AFFINE, t_r=2.0):
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = t_r
    img.to_filename(path)
    return path


def synthetic_data(maps, n_volumes=N_VOLUMES, seed=0):
    """Region signals through the maps, a baseline and noise, float32."""
    rng = np.random.default_rng(seed)
    signals = rng.standard_normal((n_volumes, maps.shape[3]))
    data = maps.reshape(-1, maps.shape[3]) @ signals.T * 20.0 + 100.0
    data += rng.standard_normal(data.shape)
    return data.reshape(SHAPE + (n_volumes,)).astype(np.float32)


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    """The demo atlas on the run grid, as the workflow uses it: the user files
    (maps, labels), the atlas as prepared (prepare_atlas) and on the run grid
    (resample_atlas: projector and coverage)."""
    root = tmp_path_factory.mktemp("atlas")
    maps = demo.evaluate_maps(SHAPE, AFFINE)
    paths = {"atlas": root / "atlas.nii.gz", "labels": root / "labels.tsv"}
    nib.Nifti1Image(maps, AFFINE).to_filename(paths["atlas"])
    io.write_table(demo.demo_labels(), paths["labels"])
    prepared = prepare_test_atlas(root / "prepared", paths["atlas"], paths["labels"])
    regions = resample_test_atlas(prepared, root / "regions.npz", SHAPE, AFFINE, runs=[SUBJECT])
    return {**paths, "prepared": prepared, "regions": regions, "array": maps}


def extract(atlas, run, tmp_path, name="raw"):
    raw, side, _ = extract_test_run(run, [atlas["prepared"]], [atlas["regions"]], tmp_path,
                                    stem=name, subject=SUBJECT)["test"]
    return raw, side


def clean(raw, side, tmp_path, settings, confounds=None, t_r=None, bold_sidecar=None):
    out = {k: tmp_path / f"clean.{k}" for k in ("tsv", "json", "qc.tsv")}
    subject_jobs.clean_timeseries(raw, side, confounds, out["tsv"], out["json"], out["qc.tsv"],
                                  settings, t_r=t_r, subject=SUBJECT, bold_sidecar=bold_sidecar)
    return out


@pytest.fixture
def raw(atlas, tmp_path):
    """An extracted run (60 volumes, TR 2 s in the header)."""
    run = write_run(tmp_path / "run.nii.gz", synthetic_data(atlas["array"]))
    return extract(atlas, run, tmp_path)


# --------------------------------------------------------------------------
# missing, empty, truncated, 3D
# --------------------------------------------------------------------------
def _gz_cut(tmp_path, keep):
    """A 20-volume run's .nii.gz cut to ``keep(len(bytes))`` bytes."""
    full = write_run(tmp_path / "full.nii.gz",
                     np.random.default_rng(1).standard_normal(SHAPE + (20,)).astype(np.float32))
    blob = full.read_bytes()
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(blob[:keep(len(blob))])
    return path


def _make(case, tmp_path):
    """(job to run, file named, problem) of an unreadable-file case."""
    if case == "missing-run":
        return "extract", tmp_path / "absent.nii.gz", "file not found"
    if case == "missing-confounds":
        return "clean", tmp_path / "absent.tsv", "file not found"
    if case == "missing-atlas":  # found by prepare_atlas, the first job to read it
        return "atlas", tmp_path / "absent_atlas.nii.gz", "atlas test: image not found"
    if case in ("empty-run.nii.gz", "empty-run.nii"):
        path = tmp_path / ("run" + case.split("run")[1])
        path.write_bytes(b"")
        return "extract", path, "file is empty (0 bytes)"
    if case == "empty-confounds":
        path = tmp_path / "conf.tsv"
        path.write_bytes(b"")
        return "clean", path, "table is empty (no header row)"
    if case == "empty-confounds-header-only":
        path = tmp_path / "conf.tsv"
        path.write_text("a\tb\n")
        return "clean", path, f"confounds table has 0 rows but the run has {N_VOLUMES} volumes"
    if case == "truncated-data":
        # The data block (96 kB) is shorter than one read of the stream
        # (streaming._READ_PIECE, 256 kB): a cut anywhere in it loses the piece.
        path = _gz_cut(tmp_path, lambda n: int(n * 0.6))
        return "extract", path, "file ends after 0 of 20 volumes"
    if case == "truncated-header":
        path = _gz_cut(tmp_path, lambda n: 60)
        return "extract", path, ("not a readable NIfTI image: compressed file is truncated: "
                                 "its gzip stream ends within the first 540 bytes (the NIfTI "
                                 "header)")
    if case == "3d-run":
        path = write_run(tmp_path / "anat.nii.gz", np.zeros(SHAPE, np.float32))
        return "extract", path, "image is 3D, expected a 4D run"
    raise AssertionError(case)


@pytest.mark.parametrize("case", [
    "missing-run", "missing-confounds", "missing-atlas",
    "empty-run.nii.gz", "empty-run.nii", "empty-confounds", "empty-confounds-header-only",
    "truncated-data", "truncated-header", "3d-run",
])
def test_unreadable_file(case, atlas, raw, tmp_path):
    job, path, problem = _make(case, tmp_path)
    out = tmp_path / "out"
    if job == "extract":
        with pytest.raises(InputError, match=line(SUBJECT, path, problem)):
            extract(atlas, path, out)
    elif job == "clean":
        with pytest.raises(InputError, match=line(SUBJECT, path, problem)):
            clean(*raw, out, CLEAN, confounds=path)
    else:  # the atlas belongs to no subject
        with pytest.raises(InputError, match=line(None, path, problem)):
            prepare_test_atlas(out, path, atlas["labels"])
    assert not out.exists() or not list(out.iterdir())  # nothing written


def test_truncated_data_count_is_decoder_independent(tmp_path, atlas, monkeypatch):
    """The same line with the standard-library gzip decoder as with ISA-L."""
    from cohort_connectome import streaming

    job, path, problem = _make("truncated-data", tmp_path)
    monkeypatch.setattr(streaming, "_igzip", None)
    with pytest.raises(InputError, match=line(SUBJECT, path, problem)):
        extract(atlas, path, tmp_path / "out")


# --------------------------------------------------------------------------
# NaN / inf voxels
# --------------------------------------------------------------------------
def test_non_finite_voxels_are_zeroed_as_nilearn(atlas, tmp_path, caplog):
    """NaN/+inf/-inf voxels on the atlas' support: the region signals are those
    of the same run with these voxels set to 0 (bit for bit), equal to
    nilearn's ``NiftiMapsMasker(maps).fit_transform(run)`` (which zeroes them),
    and counted in the sidecar (``NonFiniteValues``), in the cleaned sidecar
    and in one log warning.  An inf off the support is neither used nor counted.
    The cleaned signals equal nilearn's masker with the same cleaning."""
    from nilearn.maskers import NiftiMapsMasker

    from cohort_connectome.regions import GridAtlas

    data = synthetic_data(atlas["array"])
    support = GridAtlas.load(atlas["regions"]).extractor.support_
    on = [np.unravel_index(v, SHAPE, order="F") for v in support[[0, 7, 20]]]
    off = np.unravel_index(np.setdiff1d(np.arange(np.prod(SHAPE)), support)[0], SHAPE,
                           order="F")
    data[on[0] + (slice(0, 4),)] = np.nan   # 4 values
    data[on[1] + (10,)] = np.inf            # 1
    data[on[2] + (slice(30, 32),)] = -np.inf  # 2
    data[off + (slice(None),)] = np.inf     # off the support: not counted
    expected_count = 7
    run = write_run(tmp_path / "nan.nii.gz", data)
    zeroed = write_run(tmp_path / "zeroed.nii.gz", np.nan_to_num(data, nan=0, posinf=0,
                                                                  neginf=0))
    with caplog.at_level(logging.WARNING, logger="cohort_connectome"):
        raw_path, side_path = extract(atlas, run, tmp_path)
    assert [r.getMessage() for r in caplog.records] == [
        f"atlas test: {expected_count} NaN/inf values in its voxels set to 0 (as nilearn)"]
    side = json.loads(side_path.read_text())
    assert side["NonFiniteValues"] == expected_count
    ours, names = io.read_timeseries(raw_path)
    assert names == list(demo.demo_labels()["name"])
    reference_zeroed, _ = io.read_timeseries(extract(atlas, zeroed, tmp_path, "zeroed")[0])
    np.testing.assert_array_equal(ours, reference_zeroed)

    maps_img = nib.load(atlas["atlas"])  # on the run grid: nilearn does not resample
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = NiftiMapsMasker(maps_img).fit_transform(str(run))
        expected_clean = NiftiMapsMasker(maps_img, detrend=True, standardize="zscore_sample",
                                         high_pass=0.01, low_pass=0.1,
                                         t_r=2.0).fit_transform(str(run))
    assert relative_error(ours, expected) <= 1e-5

    out = clean(raw_path, side_path, tmp_path, {**CLEAN, "low_pass": 0.1})
    cleaned, _ = io.read_timeseries(out["tsv"])
    assert relative_error(cleaned, expected_clean) <= 1e-4
    assert json.loads(out["json"].read_text())["NonFiniteValues"] == expected_count


# --------------------------------------------------------------------------
# a region whose signal is constant
# --------------------------------------------------------------------------
def constant_run(atlas, tmp_path, value):
    """A run whose voxels under the isolated map (mPFC) all hold ``value``
    (0: the map lies outside the run's brain mask)."""
    index = list(demo.demo_labels()["name"]).index(ISOLATED)
    data = synthetic_data(atlas["array"])
    data[atlas["array"][..., index] > 0] = np.float32(value)
    return index, write_run(tmp_path / "constant.nii.gz", data)


@pytest.mark.parametrize("value", [0.0, 100.3])
def test_constant_region_is_detected_and_breaks_nilearn_parity(atlas, tmp_path, value):
    """A documented deviation from nilearn, and why no implementation can agree.

    The region's raw signal is constant up to rounding: ours to ~1e-13 (the
    projector's rounding from the other maps; exactly for 100.3), nilearn's to
    ~1e-5 relative (float32 ``lstsq`` over the whole grid).
    `signal.constant_columns` flags it in both.  Detrending leaves rounding
    noise, which nilearn's z-score (divided by its std whenever above float64
    eps) returns as a unit-variance column of rounding errors; without our
    rule ours did the same at 0.0 and gave zeros at 100.3, depending on how
    the rounding fell.  We clean it to 0 (exact arithmetic) and list it in
    ``ConstantRegions``; the other regions match nilearn."""
    from nilearn.maskers import NiftiMapsMasker

    from cohort_connectome.signal import constant_columns

    index, run = constant_run(atlas, tmp_path, value)
    raw_path, side_path = extract(atlas, run, tmp_path)
    raw_signals, _ = io.read_timeseries(raw_path)
    assert np.ptp(raw_signals[:, index]) <= 1e-12 * np.abs(raw_signals).max()
    assert constant_columns(raw_signals) == [index]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        maps_img = nib.load(atlas["atlas"])
        nilearn_raw = NiftiMapsMasker(maps_img).fit_transform(str(run))
        nilearn_clean = NiftiMapsMasker(maps_img, detrend=True, standardize="zscore_sample",
                                        t_r=2.0).fit_transform(str(run))
    assert constant_columns(nilearn_raw) == [index]
    assert np.ptp(nilearn_raw[:, index]) > 0
    out = clean(raw_path, side_path, tmp_path, {"detrend": True,
                                                "standardize": "zscore_sample"})
    cleaned, _ = io.read_timeseries(out["tsv"])
    others = np.arange(cleaned.shape[1]) != index
    assert relative_error(cleaned[:, others], nilearn_clean[:, others]) <= 1e-4
    assert nilearn_clean[:, index].std(ddof=1) == pytest.approx(1, abs=1e-3)
    assert np.all(cleaned[:, index] == 0)
    assert json.loads(out["json"].read_text())["ConstantRegions"] == [ISOLATED]


def test_constant_region_zeroed_matches_nilearn_connectivity():
    """Once the constant region's cleaned signal is 0 (exact arithmetic), the
    connectomes are nilearn's: Ledoit-Wolf gives it 0 correlations, the
    empirical covariance NaN (0 variance; as nilearn's ``cov_to_corr``), and
    ``info["constant_regions"]`` names it.  Mirrors
    ``ConnectivityMeasure(cov_estimator=..., kind="correlation").fit_transform([x])[0]``."""
    from nilearn.connectome import ConnectivityMeasure
    from sklearn.covariance import EmpiricalCovariance, LedoitWolf

    from cohort_connectome.connectivity import estimate_connectivity

    x = np.random.default_rng(1).standard_normal((60, 5))
    x[:, 1] = 0.0
    for name, estimator in (("ledoit_wolf", LedoitWolf(store_precision=False)),
                            ("empirical", EmpiricalCovariance())):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = ConnectivityMeasure(cov_estimator=estimator,
                                           kind="correlation").fit_transform([x])[0]
            ours, info = estimate_connectivity(x, kinds="correlation", estimator=name)
        assert info["constant_regions"] == [1]
        np.testing.assert_array_equal(np.isnan(ours["correlation"]), np.isnan(expected))
        assert relative_error(ours["correlation"], expected) <= 1e-12
        row = ours["correlation"][1, [0, 2, 3, 4]]
        assert np.all(row == 0) if name == "ledoit_wolf" else np.all(np.isnan(row))


def test_constant_region_is_zeroed_and_recorded(atlas, tmp_path):
    """The intended outcome: the cleaned signal of a constant region is exactly
    0 (what exact arithmetic gives) and the sidecar lists it (``ConstantRegions``)."""
    index, run = constant_run(atlas, tmp_path, 0.0)
    raw_path, side_path = extract(atlas, run, tmp_path)
    out = clean(raw_path, side_path, tmp_path, CLEAN)
    cleaned, _ = io.read_timeseries(out["tsv"])
    assert json.loads(out["json"].read_text())["ConstantRegions"] == [ISOLATED]
    assert np.all(cleaned[:, index] == 0)


# --------------------------------------------------------------------------
# atlas outside the run's field of view
# --------------------------------------------------------------------------
@pytest.mark.parametrize("shift", [2000.0, -2000.0])
def test_atlas_outside_field_of_view(atlas, tmp_path, shift):
    """Far on either side of the atlas: resampling for the grid fails naming
    the grid's (first) run and writes nothing; a run whose header was off the
    DAG's grid fails the same way in its extraction job (atlas resampled for
    it alone)."""
    far = AFFINE.copy()
    far[:3, 3] += shift
    run = write_run(tmp_path / "far.nii.gz", synthetic_data(atlas["array"]), affine=far)
    problem = "atlas test: no region has a voxel in the run's field of view"
    regions = tmp_path / "regions.npz"
    with pytest.raises(InputError, match=line("sub-06", run, problem)):
        resample_test_atlas(atlas["prepared"], regions, SHAPE, far, runs=["sub-06"],
                            run_paths=[run])
    with pytest.raises(InputError, match=line("sub-06 (and 2 more runs)", run, problem)):
        resample_test_atlas(atlas["prepared"], regions, SHAPE, far,
                            runs=["sub-06", "sub-07", "sub-08"], run_paths=[run, "b", "c"])
    assert not regions.exists()
    with pytest.raises(InputError, match=line(SUBJECT, run, problem)):
        extract(atlas, run, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------
# confounds
# --------------------------------------------------------------------------
@pytest.mark.parametrize("n_rows", [N_VOLUMES - 1, N_VOLUMES + 1])
def test_confounds_row_count(raw, tmp_path, n_rows):
    path = tmp_path / "conf.tsv"
    pd.DataFrame(np.random.default_rng(2).standard_normal((n_rows, 2)),
                 columns=["a", "b"]).to_csv(path, sep="\t", index=False)
    problem = f"confounds table has {n_rows} rows but the run has {N_VOLUMES} volumes"
    with pytest.raises(InputError, match=line(SUBJECT, path, problem)):
        clean(*raw, tmp_path, CLEAN, confounds=path)
    assert not (tmp_path / "clean.tsv").exists()


@pytest.mark.parametrize("value, name, problem", [
    ("abc", "conf.tsv", "confounds column b is not numeric"),
    ("1,5", "conf.csv", "confounds column b is not numeric"),  # decimal comma
    ("n/a", "conf.tsv", "confounds column(s) b contain missing or non-finite values "
                        "(beyond the first row)"),
    ("inf", "conf.tsv", "confounds column(s) b contain missing or non-finite values "
                        "(beyond the first row)"),
])
def test_confounds_not_numeric(raw, tmp_path, value, name, problem):
    """A text, missing or infinite cell (beyond row 0, which nilearn fills
    from row 1) fails naming the column."""
    table = pd.DataFrame(np.random.default_rng(3).standard_normal((N_VOLUMES, 2)),
                         columns=["a", "b"]).astype(object)
    table.loc[7, "b"] = value
    path = tmp_path / name
    table.to_csv(path, sep="," if name.endswith(".csv") else "\t", index=False)
    with pytest.raises(InputError, match=line(SUBJECT, path, problem)):
        clean(*raw, tmp_path, CLEAN, confounds=path)


# --------------------------------------------------------------------------
# participant ids
# --------------------------------------------------------------------------
@pytest.mark.parametrize("ids, problem", [
    (["01", "01"], "cohort sheet lists sub-01 more than once"),
    (["A1", "a1"], "cohort sheet lists sub-A1 and sub-a1, which differ only in case (their "
                   "outputs would share a folder on a case-insensitive file system)"),
    (["01", ""], "cohort sheet has no participant_id on line 3 (empty, or a value read as "
                 "missing such as n/a or NA)"),
    (["n/a", "02"], "cohort sheet has no participant_id on line 2 (empty, or a value read as "
                    "missing such as n/a or NA)"),
    (["sub-01/../02"], "participant_id 'sub-01/../02' is not a valid BIDS label (letters and "
                       "digits only, optionally prefixed by 'sub-')"),
    (["{id}"], "participant_id '{id}' is not a valid BIDS label (letters and digits only, "
               "optionally prefixed by 'sub-')"),  # a Snakemake wildcard
])
def test_sheet_ids(tmp_path, ids, problem):
    """Ids are refused, never sanitized: a renamed subject would not match its
    phenotype elsewhere.  Missing ids used to become ``sub-nan``."""
    path = tmp_path / "participants.tsv"
    pd.DataFrame({"participant_id": ids, "func": ["a.nii.gz"] * len(ids)}).to_csv(
        path, sep="\t", index=False)
    with pytest.raises(InputError, match=line(None, path, problem)):
        cohort.read_sheet(path)


# --------------------------------------------------------------------------
# repetition time
# --------------------------------------------------------------------------
def test_repetition_time_missing_or_zero(atlas, tmp_path):
    """A header TR of 0 is no TR: filtering then fails naming the run; without
    filtering the run is cleaned and its sidecar has no TR.  A JSON sidecar's
    0, a sheet's 0 and a config's 0 are refused."""
    run = write_run(tmp_path / "run.nii.gz", synthetic_data(atlas["array"]), t_r=0.0)
    raw_path, side_path = extract(atlas, run, tmp_path)
    assert json.loads(side_path.read_text())["RepetitionTimeHeader"] is None
    problem = ("filtering and min_seconds need the repetition time, and none is given (sheet "
               "t_r, config clean.t_r, JSON sidecar) nor in the NIfTI header")
    with pytest.raises(InputError, match=line(SUBJECT, run, problem)):
        clean(raw_path, side_path, tmp_path, CLEAN)
    with pytest.raises(InputError, match=line(SUBJECT, run, problem)):
        clean(raw_path, side_path, tmp_path, {"detrend": True, "min_seconds": 60})

    out = clean(raw_path, side_path, tmp_path, {"detrend": True, "standardize": "zscore_sample"})
    info = json.loads(out["json"].read_text())
    assert (info["RepetitionTime"], info["RepetitionTimeSource"], info["SecondsKept"]) == (
        None, None, None)

    bold = tmp_path / "bold.json"
    bold.write_text(json.dumps({"RepetitionTime": 0}))
    with pytest.raises(InputError, match=line(
            SUBJECT, bold, "RepetitionTime must be a positive number of seconds, got 0")):
        clean(raw_path, side_path, tmp_path, CLEAN, bold_sidecar=bold)

    sheet = tmp_path / "participants.tsv"
    pd.DataFrame({"participant_id": ["01"], "func": ["run.nii.gz"], "t_r": [0]}).to_csv(
        sheet, sep="\t", index=False)
    with pytest.raises(InputError, match=line(
            None, sheet, "cohort sheet has an invalid t_r for sub-01 (seconds, > 0)")):
        cohort.read_sheet(sheet)

    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    with pytest.raises(WorkflowError, match=r"(?s)0 is less than or equal to the minimum of 0"
                       r".*\['clean'\]\['properties'\]\['t_r'\]"):
        validate({"clean": {"t_r": 0}}, str(REPO_ROOT / "workflow/schemas/config.schema.yaml"))


# --------------------------------------------------------------------------
# low_pass above Nyquist
# --------------------------------------------------------------------------
def test_low_pass_above_nyquist_as_nilearn(raw, tmp_path):
    """low_pass 0.3 Hz at TR 2 s (Nyquist 0.25 Hz): moved to nyq * (1 - 10 *
    eps32) with one warning, as nilearn 0.13.1's ``_check_wn``; the cleaned
    signals are ``nilearn.signal.clean`` of the same raw signals with the same
    settings.  The sidecar keeps the configured value."""
    from nilearn.signal import clean as nilearn_clean

    settings = {**CLEAN, "low_pass": 0.3}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = clean(*raw, tmp_path, settings)
    lowered = 0.25 - 0.25 * 10 * float(np.finfo(np.float32).eps)
    assert [str(w.message) for w in caught] == [
        "the low-pass cut-off is at or above the Nyquist frequency (0.25 Hz) and cannot be "
        f"handled by a digital filter; it has been lowered to {lowered} Hz"]

    signals, _ = io.read_timeseries(raw[0])
    signals = signals.astype(np.float32)  # DataType float32, as the job reads it
    with warnings.catch_warnings(record=True) as nilearn_caught:
        warnings.simplefilter("always")
        expected = nilearn_clean(signals, detrend=True, standardize="zscore_sample",
                                 filter="butterworth", low_pass=0.3, high_pass=0.01, t_r=2.0,
                                 ensure_finite=False)
    nyquist = [str(w.message) for w in nilearn_caught if "Nyquist" in str(w.message)]
    assert nyquist == [
        "The frequency specified for the low pass filter is too high to be handled by a "
        "digital filter (superior to Nyquist frequency). It has been lowered to "
        f"{lowered} (Nyquist frequency)."]
    cleaned, _ = io.read_timeseries(out["tsv"])
    assert relative_error(cleaned, expected) <= 1e-6
    info = json.loads(out["json"].read_text())
    assert (info["LowPass"], info["HighPass"], info["RepetitionTime"]) == (0.3, 0.01, 2.0)


# --------------------------------------------------------------------------
# GraphicalLassoCV
# --------------------------------------------------------------------------
def _near_collinear():
    """6 regions x 50 volumes, region 1 = region 0 + 1e-6 noise: scikit-learn's
    GraphicalLassoCV fails on the raw signals ("Non SPD result")."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 6))
    x[:, 1] = x[:, 0] + 1e-6 * rng.standard_normal(50)
    return x


GLASSO_FAILURE = ("GraphicalLassoCV failed on the raw signals: FloatingPointError: Non SPD "
                  "result: the system is too ill-conditioned for this solver. The system is "
                  "too ill-conditioned for this solver")


def _connectome_job(tmp_path, signals, options=None, fallback=None):
    names = [f"r{i}" for i in range(signals.shape[1])]
    timeseries = tmp_path / "ts.tsv"
    io.write_timeseries(signals, names, timeseries)
    paths = {k: tmp_path / f"{k}.tsv" for k in ("correlation", "partialcorrelation")}
    info = tmp_path / "connectome.json"
    subject_jobs.estimate_connectomes(timeseries, paths, info, "graphical_lasso_cv",
                                      estimator_options=options, subject=SUBJECT,
                                      fallback=fallback)
    return timeseries, paths, info


def test_graphical_lasso_failure_fails_the_job_with_one_line(tmp_path):
    """Without a fallback (config connectivity.fallback: null): one line
    naming the subject, the time series and scikit-learn's reason -- not a
    FloatingPointError traceback.  nilearn's ConnectivityMeasure raises that
    FloatingPointError on the same signals."""
    from nilearn.connectome import ConnectivityMeasure
    from sklearn.covariance import GraphicalLassoCV

    signals = _near_collinear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FloatingPointError, match="Non SPD result"):
            ConnectivityMeasure(cov_estimator=GraphicalLassoCV(),
                                kind="partial correlation").fit_transform([signals])
        problem = f"{GLASSO_FAILURE} (6 regions, 50 volumes; no fallback estimator set)"
        with pytest.raises(InputError, match=line(SUBJECT, tmp_path / "ts.tsv", problem)):
            _connectome_job(tmp_path, signals)
    assert not (tmp_path / "correlation.tsv").exists()


def test_graphical_lasso_failure_falls_back_to_ledoit_wolf_recorded():
    """With ``fallback="ledoit_wolf"`` every kind comes from Ledoit-Wolf (bit
    for bit the ledoit_wolf estimator's matrices) and the info says so."""
    from cohort_connectome.connectivity import estimate_connectivity

    signals = _near_collinear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matrices, info = estimate_connectivity(signals, estimator="graphical_lasso_cv",
                                               fallback="ledoit_wolf")
    reference, lw_info = estimate_connectivity(signals, estimator="ledoit_wolf")
    for kind, matrix in reference.items():
        np.testing.assert_array_equal(matrices[kind], matrix)
    assert info["fallback"] == f"ledoit_wolf ({GLASSO_FAILURE})"
    for fit in ("zscored", "raw"):
        assert info[f"shrinkage_{fit}"] == lw_info[f"shrinkage_{fit}"]
        assert info[f"converged_{fit}"] is False
        for key in ("alpha", "cv_alphas", "n_iter", "dual_gap"):
            assert info[f"{key}_{fit}"] is None
    assert info["estimator"] == "graphical_lasso_cv" and lw_info["fallback"] is None
    assert json.loads(json.dumps(info, allow_nan=False)) == info
    with pytest.raises(ValueError, match=r"^unknown fallback 'glasso'; valid fallbacks: "
                       r"None, ledoit_wolf, empirical$"):
        estimate_connectivity(signals, estimator="graphical_lasso_cv", fallback="glasso")


def test_graphical_lasso_failure_fallback_in_the_job_and_qc_table(tmp_path, caplog):
    """The workflow's default (connectivity.fallback: ledoit_wolf): the job
    writes Ledoit-Wolf's matrices, logs a warning and records the fallback in
    its sidecar; the group QC table has it in ``fallback`` and ``converged`` no."""
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING, "cohort_connectome"):
        warnings.simplefilter("ignore")
        timeseries, paths, info_path = _connectome_job(tmp_path, _near_collinear(),
                                                       fallback="ledoit_wolf")
    info = json.loads(info_path.read_text())
    assert info["fallback"] == f"ledoit_wolf ({GLASSO_FAILURE})"
    assert f"fallback estimator: ledoit_wolf ({GLASSO_FAILURE})" in caplog.text
    clean_side = tmp_path / "clean.json"
    io.write_json({"NumberOfVolumes": 50, "NumberOfVolumesKept": 50, "SecondsKept": 100.0,
                   "MeanFramewiseDisplacement": None, "Confounds": [], "Excluded": None},
                  clean_side)
    participants = tmp_path / "participants.tsv"
    participants.write_text(f"participant_id\tgroup\n{SUBJECT}\ta\n")
    qc = tmp_path / "qc.tsv"
    group_jobs.aggregate_connectomes(
        {k: {SUBJECT: p} for k, p in paths.items()}, [{"key": SUBJECT, "participant_id": SUBJECT}],
        participants, {SUBJECT: clean_side}, tmp_path / "long.tsv",
        {k: tmp_path / f"mean_{k}.tsv" for k in paths}, qc, tmp_path / "excl.tsv",
        connectivity_sidecars={SUBJECT: info_path})
    row = pd.read_csv(qc, sep="\t", keep_default_na=False).iloc[0]
    assert row["fallback"] == info["fallback"] and row["converged"] == "no"
    assert row["excluded"] == "" and row["n_constant"] == 0


def test_graphical_lasso_not_converging_is_recorded(tmp_path):
    """max_iter 1: scikit-learn's ConvergenceWarning (not silenced) and
    ``converged_<fit>: false`` in the job's sidecar; the estimate is kept."""
    from sklearn.exceptions import ConvergenceWarning

    signals = np.random.default_rng(0).standard_normal((50, 6))
    with pytest.warns(ConvergenceWarning, match="did not converge after 1 iteration"):
        _, paths, info_path = _connectome_job(tmp_path, signals, {"max_iter": 1})
    info = json.loads(info_path.read_text())
    assert (info["converged_zscored"], info["converged_raw"], info["fallback"]) == (
        False, False, None)
    assert (info["n_iter_zscored"], info["n_iter_raw"]) == (1, 1)
    assert abs(info["dual_gap_raw"]) >= 1e-4
    assert np.isfinite(io.read_matrix(paths["correlation"])[0]).all()
