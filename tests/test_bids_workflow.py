"""An fMRIPrep derivatives folder as the cohort: sessions and runs give per-run
outputs under sub-<id>[/ses-<s>]/func/, named by their entities."""

import json

import numpy as np
import pandas as pd
import pytest

from cohort_connectome import bids
from cohort_connectome.errors import InputError
from cohort_connectome.io import read_timeseries
from conftest import demo_atlas, snakemake
from test_workflow import _small_run

pytestmark = pytest.mark.workflow

SPACE = "MNI152NLin2009cAsym"
RUNS = {  # run name -> (volumes, sidecar TR)
    "sub-01_ses-1_task-rest_run-1": (70, 2.0),
    "sub-01_ses-1_task-rest_run-2": (60, 2.0),
    "sub-01_ses-2_task-rest_run-1": (65, 1.5),
    "sub-02_task-rest": (80, 2.5),
}


def _folder(name):
    entities = dict(p.split("-") for p in name.split("_"))
    return f"sub-{entities['sub']}" + (f"/ses-{entities['ses']}" if "ses" in entities else "")


@pytest.fixture(scope="module")
def atlas_files(tmp_path_factory):
    """The demo atlas as user files: ``(maps path, labels path, maps image)``."""
    return demo_atlas(tmp_path_factory.mktemp("atlas"))


@pytest.fixture(scope="module")
def fmriprep(tmp_path_factory):
    root = tmp_path_factory.mktemp("fmriprep")
    for k, (name, (n, t_r)) in enumerate(RUNS.items()):
        func = root / _folder(name) / "func"
        func.mkdir(parents=True, exist_ok=True)
        stem = name.replace("_run-", f"_space-{SPACE}_run-") if "_run-" in name else \
            f"{name}_space-{SPACE}"
        _small_run(func / f"{stem}_desc-preproc_bold.nii.gz", n, k, t_r=1.0)  # header TR wrong
        (func / f"{stem}_desc-preproc_bold.json").write_text(json.dumps({"RepetitionTime": t_r}))
        motion = np.random.default_rng(k).standard_normal((n, 6)) * 0.1
        pd.DataFrame(motion, columns=["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]) \
            .to_csv(func / f"{name}_desc-confounds_timeseries.tsv", sep="\t", index=False)
    # files that must be ignored: another task, another space
    other = root / "sub-02" / "func"
    _small_run(other / f"sub-02_task-nback_space-{SPACE}_desc-preproc_bold.nii.gz", 20, 9)
    _small_run(other / "sub-02_task-rest_space-T1w_desc-preproc_bold.nii.gz", 20, 9)
    pd.DataFrame({"participant_id": ["sub-01", "sub-02"], "age": [30, 41]}) \
        .to_csv(root / "participants.tsv", sep="\t", index=False)
    return root


def test_find_runs(fmriprep):
    table = bids.find_runs(fmriprep, SPACE, "rest")
    assert list(table.index) == sorted(RUNS)
    row = table.loc["sub-01_ses-2_task-rest_run-1"]
    assert row["folder"] == "sub-01/ses-2" and row["session"] == "2" and row["run"] == "1"
    assert row["confounds"].endswith("sub-01_ses-2_task-rest_run-1_desc-confounds_timeseries.tsv")
    assert row["sidecar"].endswith("_desc-preproc_bold.json")
    assert table.loc["sub-02_task-rest", "folder"] == "sub-02"
    with pytest.raises(InputError, match="no sub-.*of task movie"):
        bids.find_runs(fmriprep, SPACE, "movie")


def test_entities():
    entities, suffix = bids.parse_entities(
        "sub-01_ses-1_task-rest_space-MNI_res-2_desc-preproc_bold.nii.gz")
    assert suffix == "bold" and entities["res"] == "2"
    assert bids.run_name(entities) == "sub-01_ses-1_task-rest"
    with pytest.raises(InputError, match="not a BIDS key-value"):
        bids.parse_entities("sub01_bold.nii.gz")


def test_bids_cohort_end_to_end(fmriprep, atlas_files, tmp_path):
    """Every run of the right task and space is processed; outputs carry the
    entities and sit in session folders; the sidecar TR is used; the group
    table has session/task/run and the participants' phenotype."""
    atlas, labels, _ = atlas_files
    config = tmp_path / "bids.yaml"
    config.write_text(
        f"cohort:\n  source: bids\n  bids_dir: {fmriprep}\n"
        f"atlases:\n  test: {{probseg: {atlas}, labels: {labels}}}\n"
        "clean:\n  high_pass: 0.01\n"
        "connectivity:\n  kinds: [correlation]\n"
        "group:\n  compare: null\n")
    workdir = tmp_path / "run"
    workdir.mkdir()
    snakemake(workdir, "--configfile", str(config))
    for name, (n, t_r) in RUNS.items():
        func = workdir / "results" / _folder(name) / "func"
        signals, _ = read_timeseries(func / f"{name}_atlas-test_timeseries.tsv")
        assert signals.shape == (n, 30)
        sidecar = json.loads((func / f"{name}_atlas-test_timeseries.json").read_text())
        assert sidecar["RepetitionTime"] == t_r
        assert sidecar["RepetitionTimeSource"] == "JSON sidecar"
        assert (func / f"{name}_atlas-test_meas-correlation_relmat.tsv").is_file()
    table = pd.read_csv(workdir / "results/group/atlas-test_connectomes.tsv", sep="\t",
                        dtype=str)
    assert list(table.columns[:5]) == ["participant_id", "session", "task", "run", "age"]
    assert len(table) == len(RUNS) * (30 * 31 // 2)
    row = table[(table.participant_id == "sub-01") & (table.session == "2")].iloc[0]
    assert row["run"] == "1" and row["age"] == "30"
    assert not list((workdir / "results").rglob("*nback*"))


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    """Two fMRIPrep runs with a framewise_displacement column: one with a few
    high-motion volumes, one that moves all the time."""
    root = tmp_path_factory.mktemp("moving")
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    rng = np.random.default_rng(7)
    runs = {}
    for k, run in enumerate(("1", "2")):
        n = 90
        name = f"sub-01_task-rest_run-{run}"
        bold = func / f"sub-01_task-rest_space-{SPACE}_run-{run}_desc-preproc_bold.nii.gz"
        _small_run(bold, n, 20 + k, t_r=2.0)
        (func / bold.name.replace(".nii.gz", ".json")).write_text(
            json.dumps({"RepetitionTime": 2.0}))
        motion = np.cumsum(rng.standard_normal((n, 6)) * 0.01, axis=0)
        fd = np.abs(rng.standard_normal(n)) * 0.1
        if run == "1":
            fd[[30, 31, 50, 52, 70]] = 1.5  # isolated spikes; 51 left alone -> min_segment
        else:
            fd[:] = 1.0
        table = pd.DataFrame(motion, columns=["trans_x", "trans_y", "trans_z",
                                              "rot_x", "rot_y", "rot_z"])
        table["framewise_displacement"] = fd
        table["std_dvars"] = 1.0  # nilearn's scrub reads it even with DVARS off
        table.loc[0, ["framewise_displacement", "std_dvars"]] = np.nan
        table.to_csv(func / f"{name}_desc-confounds_timeseries.tsv", sep="\t", index=False,
                     na_rep="n/a")
        runs[name] = bold
    return root, runs


def test_censoring_matches_nilearn_and_excludes(moving, atlas_files, tmp_path):
    """clean.fd_threshold/min_segment/strategy 6P give the volumes of nilearn's
    load_confounds(strategy=["motion", "scrub"]) and the signals of
    NiftiMapsMasker.fit_transform(run, confounds, sample_mask); a run left with
    too few seconds is excluded, listed, and the workflow still finishes."""
    import warnings

    from nilearn.interfaces.fmriprep import load_confounds
    from nilearn.maskers import NiftiMapsMasker

    from conftest import relative_error

    root, runs = moving
    atlas, labels, atlas_img = atlas_files
    config = tmp_path / "censor.yaml"
    config.write_text(
        f"cohort:\n  source: bids\n  bids_dir: {root}\n"
        f"atlases:\n  test: {{probseg: {atlas}, labels: {labels}}}\n"
        "clean:\n  strategy: 6P\n  fd_threshold: 0.5\n  min_segment: 3\n"
        "  min_seconds: 60\n  high_pass: 0.01\n  low_pass: 0.1\n"
        "connectivity:\n  kinds: [correlation]\n"
        "group:\n  compare: null\n")
    workdir = tmp_path / "run"
    workdir.mkdir()
    snakemake(workdir, "--configfile", str(config))

    name = "sub-01_task-rest_run-1"
    func = workdir / "results" / "sub-01" / "func"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        confounds, sample_mask = load_confounds(
            str(runs[name]), strategy=["motion", "scrub"], motion="basic", scrub=3,
            fd_threshold=0.5, std_dvars_threshold=None)
        expected = NiftiMapsMasker(atlas_img, detrend=True, standardize="zscore_sample",
                                   high_pass=0.01, low_pass=0.1, t_r=2.0).fit_transform(
            str(runs[name]), confounds=confounds, sample_mask=sample_mask)
    qc = pd.read_csv(func / f"{name}_atlas-test_qc.tsv", sep="\t")
    np.testing.assert_array_equal(np.flatnonzero(qc["kept"]), sample_mask)
    assert 50 not in sample_mask and 51 not in sample_mask  # the short segment
    ours, _ = read_timeseries(func / f"{name}_atlas-test_timeseries.tsv")
    assert ours.shape == expected.shape
    assert relative_error(ours, expected) <= 1e-4

    excluded = "sub-01_task-rest_run-2"
    sidecar = json.loads((func / f"{excluded}_atlas-test_timeseries.json").read_text())
    assert sidecar["NumberOfVolumesKept"] == 0 and "no volume" in sidecar["Excluded"]
    exclusions = pd.read_csv(workdir / "results/group/atlas-test_exclusions.tsv", sep="\t",
                             dtype=str)
    assert exclusions[["participant_id", "run"]].values.tolist() == [["sub-01", "2"]]
    group_qc = pd.read_csv(workdir / "results/group/atlas-test_qc.tsv", sep="\t", dtype=str)
    assert len(group_qc) == 2 and group_qc.loc[0, "n_kept"] == str(len(sample_mask))
    table = pd.read_csv(workdir / "results/group/atlas-test_connectomes.tsv", sep="\t",
                        dtype=str)
    assert set(table["run"]) == {"1"}  # the excluded run is left out


def test_combine_runs(fmriprep, atlas_files, tmp_path):
    """connectivity.combine_runs: one connectome per subject from its runs
    cleaned separately and concatenated in run order."""
    from cohort_connectome.io import read_matrix

    atlas, labels, _ = atlas_files
    config = tmp_path / "combine.yaml"
    config.write_text(
        f"cohort:\n  source: bids\n  bids_dir: {fmriprep}\n"
        f"atlases:\n  test: {{probseg: {atlas}, labels: {labels}}}\n"
        "connectivity:\n  kinds: [covariance]\n  combine_runs: true\n"
        "group:\n  compare: null\n")
    workdir = tmp_path / "run"
    workdir.mkdir()
    snakemake(workdir, "--configfile", str(config))
    results = workdir / "results"
    combined, _ = read_timeseries(results / "sub-01/func/sub-01_atlas-test_timeseries.tsv")
    parts = [read_timeseries(results / _folder(r) / "func" / f"{r}_atlas-test_timeseries.tsv")[0]
             for r in sorted(RUNS) if r.startswith("sub-01")]
    np.testing.assert_array_equal(combined, np.vstack(parts))
    covariance, _ = read_matrix(results / "sub-01/func/sub-01_atlas-test_meas-covariance_relmat.tsv")
    from sklearn.covariance import LedoitWolf
    np.testing.assert_allclose(covariance, LedoitWolf().fit(combined).covariance_, rtol=1e-8)
    table = pd.read_csv(results / "group/atlas-test_connectomes.tsv", sep="\t", dtype=str)
    assert list(table.columns[:2]) == ["participant_id", "age"]
    assert sorted(set(table["participant_id"])) == ["sub-01", "sub-02"]
