"""Jobs of the per-run rules (`cohort_connectome.jobs.extraction` and `.subject`) on the
branches the workflow tests do not reach every time: where the repetition
time comes from, censoring, extraction on another grid, non-finite voxels,
and the exclusion of bad runs (``cohort.on_bad_input``)."""

import json
import re
import logging

import numpy as np
import pytest

from cohort_connectome import io
from cohort_connectome.errors import InputError
from cohort_connectome.jobs import subject
from conftest import demo_atlas, extract_test_run, prepare_test_atlas, resample_test_atlas



@pytest.fixture
def raw(tmp_path):
    signals = np.random.default_rng(0).standard_normal((60, 3)) + 10
    io.write_timeseries(signals, ["A", "B", "C"], tmp_path / "raw.tsv")
    io.write_json({"RepetitionTimeHeader": 2.0, "DataType": "float64",
                   "Source": "run.nii.gz"}, tmp_path / "raw.json")
    return tmp_path


CLEAN = {"detrend": True, "standardize": "zscore_sample", "high_pass": 0.01}


@pytest.mark.parametrize("sheet_t_r, config_t_r, sidecar, expected, source", [
    (1.5, 2.2, 2.5, 1.5, "cohort sheet"),
    (None, 2.2, 2.5, 2.2, "config clean.t_r"),
    (None, None, 2.5, 2.5, "JSON sidecar"),
    (None, None, None, 2.0, "NIfTI header"),
])
def test_repetition_time_precedence(raw, sheet_t_r, config_t_r, sidecar, expected, source):
    bold_sidecar = None
    if sidecar is not None:
        bold_sidecar = raw / "bold.json"
        bold_sidecar.write_text(json.dumps({"RepetitionTime": sidecar}))
    subject.clean_timeseries(raw / "raw.tsv", raw / "raw.json", None, raw / "c.tsv",
                             raw / "c.json", raw / "q.tsv", {**CLEAN, "t_r": config_t_r},
                             t_r=sheet_t_r, subject="sub-01", bold_sidecar=bold_sidecar)
    info = json.loads((raw / "c.json").read_text())
    assert info["RepetitionTime"] == expected and info["RepetitionTimeSource"] == source


def test_header_disagreement_is_logged(raw, caplog):
    (raw / "bold.json").write_text(json.dumps({"RepetitionTime": 2.5}))
    with caplog.at_level(logging.WARNING, logger="cohort_connectome"):
        subject.clean_timeseries(raw / "raw.tsv", raw / "raw.json", None, raw / "c.tsv",
                                 raw / "c.json", raw / "q.tsv", CLEAN,
                                 bold_sidecar=raw / "bold.json")
    assert "differs from the NIfTI header's 2 s" in caplog.text


def test_bad_sidecar_is_one_line_error(raw):
    (raw / "bold.json").write_text(json.dumps({"RepetitionTime": "2s"}))
    with pytest.raises(InputError, match=r"sub-01: .*bold.json: RepetitionTime must be"):
        subject.clean_timeseries(raw / "raw.tsv", raw / "raw.json", None, raw / "c.tsv",
                                 raw / "c.json", raw / "q.tsv", CLEAN, subject="sub-01",
                                 bold_sidecar=raw / "bold.json")
    assert not (raw / "c.tsv").exists()


def test_filtering_without_any_t_r_fails(raw):
    io.write_json({"RepetitionTimeHeader": None, "DataType": "float64", "Source": "r.nii"},
                  raw / "raw.json")
    with pytest.raises(InputError, match="need the repetition time"):
        subject.clean_timeseries(raw / "raw.tsv", raw / "raw.json", None, raw / "c.tsv",
                                 raw / "c.json", raw / "q.tsv", CLEAN, subject="sub-01")


def test_censoring_without_confounds_and_exclusion(raw):
    """dummy_scans without a confounds table drops the first volumes; a run
    left with less than min_seconds is excluded, not failed; fd_threshold
    without a confounds table is a clear error."""
    import pandas as pd

    subject.clean_timeseries(raw / "raw.tsv", raw / "raw.json", None, raw / "c.tsv",
                             raw / "c.json", raw / "q.tsv", {**CLEAN, "dummy_scans": 4})
    info = json.loads((raw / "c.json").read_text())
    assert info["NumberOfVolumesKept"] == 56 and info["SecondsKept"] == 112.0
    assert pd.read_csv(raw / "q.tsv", sep="\t")["kept"].tolist() == [0] * 4 + [1] * 56
    assert len(io.read_timeseries(raw / "c.tsv")[0]) == 56

    subject.clean_timeseries(raw / "raw.tsv", raw / "raw.json", None, raw / "c.tsv",
                             raw / "c.json", raw / "q.tsv",
                             {**CLEAN, "dummy_scans": 4, "min_seconds": 120})
    info = json.loads((raw / "c.json").read_text())
    assert "less than min_seconds 120 s" in info["Excluded"]
    assert io.read_timeseries(raw / "c.tsv")[0].shape == (0, 3)

    with pytest.raises(InputError, match="fd_threshold needs a confounds table"):
        subject.clean_timeseries(raw / "raw.tsv", raw / "raw.json", None, raw / "c.tsv",
                                 raw / "c.json", raw / "q.tsv", {**CLEAN, "fd_threshold": 0.5})


def _old_qc_frame(n_volumes, fd, kept):
    """The QC table as the job built it with pandas before (the reference)."""
    import pandas as pd

    flags = np.zeros(n_volumes, dtype=int)
    flags[np.asarray(kept, dtype=int)] = 1
    return pd.DataFrame({"volume": np.arange(n_volumes),
                         "framewise_displacement": (np.full(n_volumes, np.nan)
                                                    if fd is None else fd),
                         "kept": flags})


def test_clean_job_qc_table_has_the_pandas_bytes(raw):
    """The cleaning job on a tab-separated ADHD-like confounds table (motion,
    framewise_displacement with n/a on row 0, a text column) with censoring:
    the QC table has the bytes the pandas writer gives."""
    rng = np.random.default_rng(4)
    motion = rng.standard_normal((60, 6)).cumsum(axis=0) * 0.05
    fd = np.concatenate(([np.nan], np.abs(np.diff(motion, axis=0)).sum(axis=1)))
    lines = ["trans_x\ttrans_y\ttrans_z\trot_x\trot_y\trot_z\tframewise_displacement\tnote"]
    lines += ["\t".join([repr(v) for v in row] + ["n/a" if np.isnan(f) else repr(f), "ok"])
              for row, f in zip(motion.tolist(), fd.tolist())]
    (raw / "conf.tsv").write_text("\n".join(lines) + "\n")
    clean = {**CLEAN, "strategy": "24P", "fd_threshold": float(np.nanquantile(fd, 0.8)),
             "min_segment": 3, "low_pass": 0.1, "t_r": 2.0}
    subject.clean_timeseries(raw / "raw.tsv", raw / "raw.json", raw / "conf.tsv", raw / "c.tsv",
                             raw / "c.json", raw / "q.tsv", clean)
    from cohort_connectome.confounds import censor_table

    kept, used_fd = censor_table(io.read_table(raw / "conf.tsv"),
                                 fd_threshold=clean["fd_threshold"], min_segment=3)
    assert 0 < len(kept) == json.loads((raw / "c.json").read_text())["NumberOfVolumesKept"] < 60
    io.write_table(_old_qc_frame(60, used_fd, kept), raw / "reference.tsv")
    assert (raw / "q.tsv").read_bytes() == (raw / "reference.tsv").read_bytes()


def test_qc_table_without_motion_matches_pandas_bytes(raw):
    """No confounds table: FD is n/a on every row; dummy scans are not kept."""
    subject.clean_timeseries(raw / "raw.tsv", raw / "raw.json", None, raw / "c.tsv",
                             raw / "c.json", raw / "q.tsv", {**CLEAN, "dummy_scans": 3})
    io.write_table(_old_qc_frame(60, None, np.arange(3, 60)), raw / "reference.tsv")
    assert (raw / "q.tsv").read_bytes() == (raw / "reference.tsv").read_bytes()


def test_runs_cleaned_separately_then_stacked_is_nilearn_runs():
    """Mirrors nilearn.signal.clean(stacked, runs=labels, ...): cleaning each run
    on its own and stacking them (what combine_runs concatenates) is nilearn's
    runs semantics."""
    from nilearn.signal import clean

    from cohort_connectome.signal import clean_signals

    rng = np.random.default_rng(3)
    runs = [rng.standard_normal((n, 4)) + 50 for n in (80, 60)]
    confounds = [rng.standard_normal((len(r), 2)) for r in runs]
    kwargs = dict(detrend=True, standardize="zscore_sample", standardize_confounds=True,
                  high_pass=0.01, low_pass=0.1, t_r=2.0)
    ours = np.vstack([clean_signals(r, c, **kwargs) for r, c in zip(runs, confounds)])
    labels = np.repeat([0, 1], [len(r) for r in runs])
    expected = clean(np.vstack(runs), runs=labels, confounds=np.vstack(confounds),
                     filter="butterworth", ensure_finite=False, **kwargs)
    assert np.max(np.abs(ours - expected)) / np.max(np.abs(expected)) <= 1e-10


def _demo_atlas_and_grid(tmp_path):
    """The demo atlas written to files and prepared (prepare_atlas), and a coarse
    6 mm grid's affine."""
    atlas, labels, _ = demo_atlas(tmp_path)
    affine = np.diag([6.0, 6.0, 6.0, 1.0])
    affine[:3, 3] = [-78.0, -112.0, -60.0]
    return prepare_test_atlas(tmp_path / "prepared", atlas, labels), affine


def test_extract_on_another_grid_resamples_for_that_run(tmp_path, caplog):
    """A run whose header is not on the grid its atlas was resampled to (its
    grid was unknown when the DAG was built) has the atlas resampled for it
    alone, with a warning: same signals and coverage as with its own grid's."""
    import nibabel as nib

    from cohort_connectome import demo
    from cohort_connectome.resampling import read_grid

    atlas, affine = _demo_atlas_and_grid(tmp_path)
    run = tmp_path / "run.nii.gz"
    data = np.random.default_rng(0).standard_normal((27, 36, 27, 12)).astype(np.float32)
    nib.Nifti1Image(data, affine).to_filename(run)
    other = affine.copy()
    other[:3, 3] += 6.0

    def extract(grid, name):
        regions = resample_test_atlas(atlas, tmp_path / f"{name}.npz", *grid)
        out, _, coverage = extract_test_run(run, [atlas], [regions], tmp_path, stem=name,
                                            subject="sub-01")["test"]
        values, names = io.read_timeseries(out)
        assert names == list(demo.demo_labels()["name"])
        return values, coverage.read_bytes()

    expected = extract(read_grid(run), "own")
    with caplog.at_level(logging.WARNING, logger="cohort_connectome"):
        got = extract(((27, 36, 27), other), "other")
    assert "differs from the grid atlas test was resampled for: resampled for this run " \
        "only" in caplog.text
    np.testing.assert_array_equal(got[0], expected[0])
    assert got[1] == expected[1]


def test_non_finite_voxels_are_counted_through_cleaning(tmp_path):
    """NaN/inf voxels are set to 0 (as nilearn) and counted: the raw and the
    cleaned sidecars give the count on the atlas' voxels."""
    import nibabel as nib

    from cohort_connectome.regions import GridAtlas
    from cohort_connectome.resampling import read_grid

    atlas, affine = _demo_atlas_and_grid(tmp_path)
    shape = (27, 36, 27)
    regions = resample_test_atlas(atlas, tmp_path / "regions.npz", shape, affine)
    support = GridAtlas.load(regions).extractor.support_
    inside = np.unravel_index(support[len(support) // 2], shape, order="F")
    outside = np.unravel_index(np.setdiff1d(np.arange(np.prod(shape)), support)[0], shape,
                               order="F")
    data = np.random.default_rng(0).standard_normal(shape + (40,)).astype(np.float32)
    data[inside + (slice(0, 5),)] = np.nan   # on the atlas' support: counted
    data[outside] = np.inf                   # off it: not counted
    run = tmp_path / "run.nii.gz"
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = 2.0
    img.to_filename(run)
    assert read_grid(run)[0] == shape
    raw, raw_info, _ = extract_test_run(run, [atlas], [regions], tmp_path,
                                        subject="sub-01")["test"]
    assert json.loads(raw_info.read_text())["NonFiniteValues"] == 5
    subject.clean_timeseries(raw, raw_info, None,
                             tmp_path / "clean.tsv", tmp_path / "clean.json", tmp_path / "qc.tsv",
                             {"detrend": True, "standardize": "zscore_sample"}, subject="sub-01")
    assert json.loads((tmp_path / "clean.json").read_text())["NonFiniteValues"] == 5
    assert np.isfinite(io.read_timeseries(tmp_path / "clean.tsv")[0]).all()


# --------------------------------------------------------------------------
# cohort.on_bad_input: exclude
# --------------------------------------------------------------------------
def test_bad_run_is_excluded_and_passed_on(tmp_path, caplog):
    """With on_bad_input="exclude" a truncated run is excluded at extraction:
    one ERROR line naming subject, file and problem, placeholder outputs that
    hold no data, and cleaning and estimation pass the exclusion on; with
    "fail" the same run raises that line and writes nothing."""
    import nibabel as nib

    atlas, affine = _demo_atlas_and_grid(tmp_path)
    regions = resample_test_atlas(atlas, tmp_path / "regions.npz", (27, 36, 27), affine)
    run = tmp_path / "run.nii.gz"
    data = np.random.default_rng(0).standard_normal((27, 36, 27, 20)).astype(np.float32)
    nib.Nifti1Image(data, affine).to_filename(run)
    run.write_bytes(run.read_bytes()[:5000])  # truncated
    raw = tmp_path / "raw_atlas-test_desc-raw_timeseries.tsv"
    raw_info = raw.with_suffix(".json")
    with pytest.raises(InputError, match=r"^sub-01: \S*run.nii.gz: "):
        extract_test_run(run, [atlas], [regions], tmp_path, subject="sub-01")
    assert not raw.exists() and not raw_info.exists()

    with caplog.at_level(logging.INFO, logger="cohort_connectome"):
        extract_test_run(run, [atlas], [regions], tmp_path, subject="sub-01",
                         on_bad_input="exclude")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].getMessage().startswith(f"sub-01: {run}: ")
    signals, names = io.read_timeseries(raw)
    assert signals.shape == (0, len(names)) and len(names) > 0
    info = json.loads(raw_info.read_text())
    assert info["ExcludedStage"] == "extract_timeseries"
    assert info["Excluded"] == errors[0].getMessage()[len("sub-01: "):]

    clean, clean_info, qc = tmp_path / "c.tsv", tmp_path / "c.json", tmp_path / "q.tsv"
    subject.clean_timeseries(raw, raw_info, None, clean, clean_info, qc, CLEAN, subject="sub-01")
    cleaned = json.loads(clean_info.read_text())
    assert (cleaned["Excluded"], cleaned["ExcludedStage"]) == (info["Excluded"],
                                                               "extract_timeseries")
    assert cleaned["NumberOfVolumes"] is None and cleaned["NumberOfVolumesKept"] == 0
    assert io.read_timeseries(clean)[0].shape == (0, len(names))
    relmat, conn = tmp_path / "corr.tsv", tmp_path / "conn.json"
    subject.estimate_connectomes(clean, {"correlation": relmat}, conn, "ledoit_wolf",
                                 subject="sub-01", clean_sidecar=clean_info)
    assert np.isnan(io.read_matrix(relmat)[0]).all()
    assert json.loads(conn.read_text())["excluded_stage"] == "extract_timeseries"


def test_grid_outside_the_atlas_excludes_its_runs(tmp_path):
    """Maps that do not overlap a grid: resample_atlas fails with "fail"; with
    "exclude" it writes an unusable grid atlas (no extractor, the reason), and
    each run on that grid is excluded at stage resample_atlas, naming its own
    file."""
    import re

    import nibabel as nib

    from cohort_connectome.regions import GridAtlas

    atlas, affine = _demo_atlas_and_grid(tmp_path)
    far = affine.copy()
    far[:3, 3] += 2000.0
    regions = tmp_path / "regions.npz"
    problem = "atlas test: no region has a voxel in the run's field of view"
    with pytest.raises(InputError, match=r"^sub-01 \(and 1 more runs\): \S*a.nii.gz: "
                                         + re.escape(problem) + "$"):
        resample_test_atlas(atlas, regions, (27, 36, 27), far, runs=["sub-01", "sub-02"],
                            run_paths=["a.nii.gz", "b.nii.gz"])
    assert not regions.exists()
    resample_test_atlas(atlas, regions, (27, 36, 27), far, runs=["sub-01", "sub-02"],
                        run_paths=["a.nii.gz", "b.nii.gz"], on_bad_input="exclude")
    unusable = GridAtlas.load(regions)
    assert unusable.extractor is None and unusable.unusable == problem
    assert unusable.grid_shape == (27, 36, 27) and unusable.coverage_.nnz == 0
    run = tmp_path / "b.nii.gz"
    nib.Nifti1Image(np.ones((27, 36, 27, 5), np.float32), far).to_filename(run)
    with pytest.raises(InputError, match=r"^sub-02: \S*b.nii.gz: " + re.escape(problem) + "$"):
        extract_test_run(run, [atlas], [regions], tmp_path, stem="r", subject="sub-02")
    side = extract_test_run(run, [atlas], [regions], tmp_path, stem="r", subject="sub-02",
                            on_bad_input="exclude")["test"][1]
    info = json.loads(side.read_text())
    assert info["ExcludedStage"] == "resample_atlas"
    assert info["Excluded"] == f"{run}: {problem}"


def test_combined_subject_with_every_run_excluded(tmp_path):
    """combine_runs leaves excluded runs out; a subject with none left is
    excluded, with the runs' reasons and stage."""
    names = ["A", "B"]
    paths, sides = [], []
    for i, (stage, reason) in enumerate([("extract_timeseries", "x: image is 3D"),
                                         ("extract_timeseries", "y: file not found")]):
        paths.append(tmp_path / f"r{i}.tsv")
        sides.append(tmp_path / f"r{i}.json")
        io.write_timeseries(np.zeros((0, 2)), names, paths[-1])
        io.write_json({"Excluded": reason, "ExcludedStage": stage, "NumberOfVolumes": None,
                       "NonFiniteValues": None}, sides[-1])
    subject.combine_runs(["sub-01_run-1", "sub-01_run-2"], paths, sides, tmp_path / "s.tsv",
                         tmp_path / "s.json", subject="sub-01")
    info = json.loads((tmp_path / "s.json").read_text())
    assert info["ExcludedStage"] == "extract_timeseries"
    assert info["Excluded"] == ("every run of the subject is excluded: sub-01_run-1: x: image "
                                "is 3D; sub-01_run-2: y: file not found")
    assert info["NumberOfVolumes"] == 0


def test_combined_runs_with_other_regions_exclude_the_subject(tmp_path):
    """Runs whose regions differ: combine_runs fails, or with "exclude" writes
    the subject as excluded at combine_runs (header of its first run)."""
    paths, sides = [], []
    for i, names in enumerate((["A", "B"], ["A", "C"])):
        paths.append(tmp_path / f"r{i}.tsv")
        sides.append(tmp_path / f"r{i}.json")
        io.write_timeseries(np.ones((3, 2)), names, paths[-1])
        io.write_json({"Excluded": None, "NumberOfVolumes": 3, "NumberOfVolumesKept": 3,
                       "SecondsKept": 6.0, "MeanFramewiseDisplacement": None,
                       "Confounds": []}, sides[-1])
    args = (["sub-01_run-1", "sub-01_run-2"], paths, sides, tmp_path / "s.tsv",
            tmp_path / "s.json")
    with pytest.raises(InputError, match="region names differ between the subject's runs"):
        subject.combine_runs(*args, subject="sub-01")
    subject.combine_runs(*args, subject="sub-01", on_bad_input="exclude")
    info = json.loads((tmp_path / "s.json").read_text())
    assert info["ExcludedStage"] == "combine_runs"
    assert info["Excluded"].endswith("region names differ between the subject's runs")
    signals, names = io.read_timeseries(tmp_path / "s.tsv")
    assert signals.shape == (0, 2) and names == ["A", "B"]


# --------------------------------------------------------------------------
# regions without data: whole columns of n/a, "MissingRegions"
# --------------------------------------------------------------------------
NAMES5 = ["A", "B", "C", "D", "E"]


def _raw_with_missing(folder, missing, name="raw", n_volumes=60, seed=0, key=True):
    """A raw series of 5 regions, ``missing`` written n/a, and its sidecar
    (``MissingRegions`` when ``key``)."""
    rng = np.random.default_rng(seed)
    signals = rng.standard_normal((n_volumes, 5)) + 10
    signals[:, [NAMES5.index(m) for m in missing]] = np.nan
    io.write_timeseries(signals, NAMES5, folder / f"{name}.tsv")
    info = {"RepetitionTimeHeader": 2.0, "DataType": "float64", "Source": f"{name}.nii.gz",
            "NumberOfVolumes": n_volumes, "NonFiniteValues": 0}
    if key:
        info["MissingRegions"] = list(missing)
    io.write_json(info, folder / f"{name}.json")
    return signals


def _clean(folder, name="raw", **kwargs):
    subject.clean_timeseries(folder / f"{name}.tsv", folder / f"{name}.json", None,
                             folder / f"{name}_c.tsv", folder / f"{name}_c.json",
                             folder / f"{name}_q.tsv", CLEAN, subject="sub-01", **kwargs)
    return io.read_timeseries(folder / f"{name}_c.tsv")[0], io.read_json(
        folder / f"{name}_c.json")


def test_clean_job_leaves_missing_regions_na(tmp_path):
    """The present columns are cleaned as a run of those columns alone; the
    missing ones stay n/a and the sidecar carries MissingRegions on; a
    sidecar without the key gets none (the bytes of today)."""
    signals = _raw_with_missing(tmp_path, ["B", "E"])
    cleaned, info = _clean(tmp_path)
    assert info["MissingRegions"] == ["B", "E"] and info["Excluded"] is None
    assert np.isnan(cleaned[:, [1, 4]]).all() and not np.isnan(cleaned[:, [0, 2, 3]]).any()
    io.write_timeseries(signals[:, [0, 2, 3]], ["A", "C", "D"], tmp_path / "alone.tsv")
    io.write_json({"RepetitionTimeHeader": 2.0, "DataType": "float64"},
                  tmp_path / "alone.json")
    alone, alone_info = _clean(tmp_path, "alone")
    assert "MissingRegions" not in alone_info
    np.testing.assert_array_equal(cleaned[:, [0, 2, 3]], alone)
    # the producer's key with nothing missing is carried on as is
    _raw_with_missing(tmp_path, [], name="full")
    assert _clean(tmp_path, "full")[1]["MissingRegions"] == []


@pytest.mark.parametrize("missing, reason", [
    (NAMES5, "no region of atlas msdl has data in this run (all 5 n/a)"),
    (NAMES5[1:], "only 1 region of atlas msdl has data in this run (4 of 5 n/a); a "
                 "connectome needs at least 2"),
])
def test_run_with_fewer_than_two_regions_is_excluded(tmp_path, missing, reason):
    _raw_with_missing(tmp_path, missing)
    with pytest.raises(InputError, match=re.escape(reason)):
        _clean(tmp_path, atlas="msdl")
    cleaned, info = _clean(tmp_path, atlas="msdl", on_bad_input="exclude")
    assert info["Excluded"] == f"{tmp_path / 'raw.tsv'}: {reason}"
    assert info["ExcludedStage"] == "clean_timeseries" and info["MissingRegions"] == missing
    assert cleaned.shape == (0, 5)
    subject.estimate_connectomes(tmp_path / "raw_c.tsv", {"correlation": tmp_path / "m.tsv"},
                                 tmp_path / "m.json", "ledoit_wolf",
                                 clean_sidecar=tmp_path / "raw_c.json")
    assert np.isnan(io.read_matrix(tmp_path / "m.tsv")[0]).all()


def test_missing_regions_must_match_the_sidecar(tmp_path):
    signals = _raw_with_missing(tmp_path, ["B"])
    info = io.read_json(tmp_path / "raw.json")
    io.write_json({**info, "MissingRegions": ["B", "C"]}, tmp_path / "raw.json")
    with pytest.raises(InputError, match=r"raw.json: MissingRegions \(B, C\) differ from the "
                                         r"regions n/a in the time series \(B\)"):
        _clean(tmp_path)
    signals[3, 0] = np.nan  # n/a in one volume only
    io.write_timeseries(signals, NAMES5, tmp_path / "raw.tsv")
    with pytest.raises(InputError, match="n/a in some volumes only, first column 0"):
        _clean(tmp_path)


def test_estimate_job_writes_na_rows_and_missing_regions(tmp_path):
    """Every kind on the present regions, k x k with n/a rows and columns."""
    from cohort_connectome.connectivity import estimate_connectivity

    _raw_with_missing(tmp_path, ["C"])
    cleaned, _ = _clean(tmp_path)
    kinds = ["correlation", "precision"]
    paths = {k: tmp_path / f"{k}.tsv" for k in kinds}
    subject.estimate_connectomes(tmp_path / "raw_c.tsv", paths, tmp_path / "conn.json",
                                 "ledoit_wolf", clean_sidecar=tmp_path / "raw_c.json")
    info = io.read_json(tmp_path / "conn.json")
    assert info["MissingRegions"] == ["C"] and info["n_regions"] == 4
    expected, _ = estimate_connectivity(cleaned[:, [0, 1, 3, 4]], kinds=kinds)
    for kind in kinds:
        matrix, names = io.read_matrix(paths[kind])
        assert names == NAMES5
        assert np.isnan(matrix[2]).all() and np.isnan(matrix[:, 2]).all()
        present = np.ix_([0, 1, 3, 4], [0, 1, 3, 4])
        np.testing.assert_allclose(matrix[present], expected[kind], rtol=1e-9)  # %.10g


def test_combined_runs_are_na_where_any_run_is(tmp_path):
    """A region n/a in one run is n/a in the subject's combined series."""
    runs = ["sub-01_run-1", "sub-01_run-2", "sub-01_run-3"]
    values = []
    for k, missing in enumerate((["B"], ["D"], [])):
        values.append(_raw_with_missing(tmp_path, missing, name=f"r{k}", seed=k))
        _clean(tmp_path, f"r{k}")
    paths = [tmp_path / f"r{k}_c.tsv" for k in range(3)]
    sides = [tmp_path / f"r{k}_c.json" for k in range(3)]
    subject.combine_runs(runs, paths, sides, tmp_path / "s.tsv", tmp_path / "s.json",
                         subject="sub-01")
    combined, names = io.read_timeseries(tmp_path / "s.tsv")
    info = io.read_json(tmp_path / "s.json")
    assert info["MissingRegions"] == ["B", "D"] and info["Runs"] == runs
    assert np.isnan(combined[:, [1, 3]]).all()
    parts = np.vstack([io.read_timeseries(p)[0] for p in paths])
    np.testing.assert_array_equal(combined[:, [0, 2, 4]], parts[:, [0, 2, 4]])
    # fewer than 2 regions with data in every run: bad input
    _raw_with_missing(tmp_path, ["A", "C"], name="r2", seed=2)  # with B, D: E alone
    _clean(tmp_path, "r2")
    with pytest.raises(InputError, match="only 1 region of atlas x has data in every run of "
                                         "the subject"):
        subject.combine_runs(runs, paths, sides, tmp_path / "s.tsv", tmp_path / "s.json",
                             subject="sub-01", atlas="x")
