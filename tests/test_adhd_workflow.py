"""config/adhd.yaml end to end through the real pooch code path.

A loopback HTTP mirror serves the real MSDL zip, the real ADHD-200 metadata
and, for the five subjects whose real regressors we have, archives holding
those regressors and a synthetic BOLD run of the matching length on the
ADHD-200 grid (61x73x61, 3 mm). The workflow runs with ``fetch.mirror`` set;
the results are compared with nilearn's NiftiMapsMasker + GraphicalLassoCV on
the same files.
"""

import gzip
import json
import tarfile
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cohort_connectome.fetch import datasets, download
from cohort_connectome.io import read_matrix, read_timeseries
from cohort_connectome.template import brain_mask
from conftest import ADHD_AFFINE, ADHD_REGRESSOR_SUBJECTS, ADHD_SHAPE, REPO_ROOT, \
    relative_error, require_shared, snakemake, synthetic_bold
from mirror import add_bytes, serve_directory, served

pytestmark = pytest.mark.workflow

PHENO = "ADHD200_40subs_motion_parameters_and_phenotypics.csv"
TIMING = "ADHD200_40subs_slice_timing_parameters.csv"


def adhd_like_run(msdl_img, n_volumes, seed):
    """Float32 BOLD on the ADHD grid, zero outside a brain mask, header TR 2 s
    (as nilearn's fetcher assumes)."""
    img = synthetic_bold(msdl_img, n_volumes, dtype=np.float32, seed=seed)
    data = np.asanyarray(img.dataobj)
    data[~brain_mask(ADHD_SHAPE, ADHD_AFFINE)] = 0
    return nib.Nifti1Image(data, ADHD_AFFINE, img.header)


@pytest.fixture(scope="module")
def adhd_mirror(tmp_path_factory, msdl_maps_img, adhd_regressors_paths):
    root = tmp_path_factory.mktemp("adhd_mirror")
    zipped = served(root, datasets.MSDL_URL)
    zipped.parent.mkdir(parents=True)
    zipped.write_bytes(require_shared("msdl", "MSDL_rois.zip").read_bytes())
    metadata = served(root, datasets.ADHD_METADATA_URL)
    metadata.parent.mkdir(parents=True)
    with tarfile.open(metadata, "w:gz") as tar:
        for name in (PHENO, TIMING):
            add_bytes(tar, name, require_shared("adhd", name).read_bytes())
    for k, sid in enumerate(ADHD_REGRESSOR_SUBJECTS):
        regressors = adhd_regressors_paths[sid]
        n_volumes = len(pd.read_csv(regressors, sep="\t"))
        bold = gzip.compress(adhd_like_run(msdl_maps_img, n_volumes, k).to_bytes(),
                             compresslevel=1, mtime=0)
        archive = served(root, datasets.adhd_subject_url(sid))
        archive.parent.mkdir(parents=True)
        with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
            add_bytes(tar, f"data/{sid}/{sid}_rest_tshift_RPI_voreg_mni.nii.gz", bold)
            add_bytes(tar, f"data/{sid}/{sid}_regressors.csv", regressors.read_bytes())
    with serve_directory(root) as server:
        yield server


@pytest.fixture(scope="module")
def adhd_run(tmp_path_factory, adhd_mirror):
    root = tmp_path_factory.mktemp("adhd_run")
    overlay = root / "mirror.yaml"
    overlay.write_text(
        "cohort:\n  adhd:\n    subjects: [" + ", ".join(f"'{s}'" for s in ADHD_REGRESSOR_SUBJECTS)
        + "]\n"
        f"fetch:\n  cache_dir: {root / 'cache'}\n  mirror: {adhd_mirror.url}\n")
    workdir = root / "run"
    workdir.mkdir()
    config = ["--configfile", str(REPO_ROOT / "config" / "adhd.yaml"), str(overlay)]
    proc = snakemake(workdir, *config)
    return workdir, root / "cache", config, proc


def test_adhd_outputs(adhd_run, adhd_mirror):
    """Every subject gets the seed's outputs; the site TR comes from the metadata."""
    workdir, cache, _, _ = adhd_run
    assert len(adhd_mirror.requests) == 2 + len(ADHD_REGRESSOR_SUBJECTS)
    lock = json.loads((cache / download.LOCK_NAME).read_text())
    assert lock[datasets.MSDL_URL] == datasets.MSDL_SHA256
    for sid in ADHD_REGRESSOR_SUBJECTS:
        assert len(lock[datasets.adhd_subject_url(sid)]) == 64  # pinned on first fetch
        sub = f"sub-{sid}"
        func = workdir / "results" / sub / "func"
        signals, names = read_timeseries(func / f"{sub}_atlas-msdl_timeseries.tsv")
        assert signals.shape[1] == 39 and "R TPJ" in names
        info = json.loads((func / f"{sub}_atlas-msdl_connectivity.json").read_text())
        assert info["estimator"] == "graphical_lasso_cv" and info["alpha_raw"] > 0
        for kind in ("covariance", "precision"):
            for figure in ("matrix", "connectome"):
                assert (workdir / "results" / sub / "figures" /
                        f"{sub}_atlas-msdl_meas-{kind}_{figure}.png").is_file()
    side = json.loads((workdir / "results/sub-0027034/func/sub-0027034_atlas-msdl_timeseries.json")
                      .read_text())
    assert side["RepetitionTime"] == 1.96 and side["RepetitionTimeSource"] == "JSON sidecar"
    assert "differs from the NIfTI header" in (workdir / "logs" / "clean_timeseries" /
                                               "sub-0027034" /
                                               "sub-0027034_atlas-msdl.log").read_text()
    table = pd.read_csv(workdir / "results/group/atlas-msdl_connectomes.tsv", sep="\t",
                        low_memory=False,
                        dtype={"participant_id": str})
    assert {"site", "adhd", "age"} <= set(table.columns) and "t_r" not in table.columns
    assert set(table["participant_id"]) == {f"sub-{s}" for s in ADHD_REGRESSOR_SUBJECTS}
    assert set(table.loc[table.participant_id == "sub-0010042", "site"]) == {"NYU"}


def test_adhd_matches_nilearn(adhd_run, msdl_maps_img):
    """Mirrors the seed: NiftiMapsMasker(msdl, standardize="zscore_sample")
    .fit_transform(run, confounds=regressors) then GraphicalLassoCV on it, on
    the files the workflow fetched."""
    from nilearn.maskers import NiftiMapsMasker
    from sklearn.covariance import GraphicalLassoCV

    workdir, cache, _, _ = adhd_run
    sid = "0010042"
    paths = datasets.adhd_subject_paths(cache, sid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = NiftiMapsMasker(msdl_maps_img, standardize="zscore_sample") \
            .fit_transform(str(paths["func"]), confounds=str(paths["confounds"]))
    func = workdir / "results" / f"sub-{sid}" / "func"
    ours, _ = read_timeseries(func / f"sub-{sid}_atlas-msdl_timeseries.tsv")
    assert relative_error(ours, expected) <= 1e-4
    estimator = GraphicalLassoCV().fit(ours)
    covariance, _ = read_matrix(func / f"sub-{sid}_atlas-msdl_meas-covariance_relmat.tsv")
    assert relative_error(covariance, estimator.covariance_) <= 1e-5


def test_second_run_fetches_nothing(adhd_run, adhd_mirror, tmp_path):
    """A rerun in the same folder has nothing to do; a new folder with the
    same cache downloads nothing (cache hit)."""
    workdir, cache, config, _ = adhd_run
    before = len(adhd_mirror.requests)
    proc = snakemake(workdir, "-n", *config)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    proc = snakemake(fresh, *config, "--until", "adhd_participants", "fetch_msdl",
                     "fetch_adhd_subject")
    assert len(adhd_mirror.requests) == before
    assert (fresh / "resources" / "adhd" / "participants.tsv").is_file()


# -- config/seed.yaml: nilearn's example, exactly ----------------------------------


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory, adhd_mirror):
    root = tmp_path_factory.mktemp("seed_run")
    overlay = root / "mirror.yaml"
    overlay.write_text(f"fetch:\n  cache_dir: {root / 'cache'}\n  mirror: {adhd_mirror.url}\n")
    workdir = root / "run"
    workdir.mkdir()
    before = len(adhd_mirror.requests)
    proc = snakemake(workdir, "--configfile", str(REPO_ROOT / "config" / "seed.yaml"),
                     str(overlay))
    return workdir, root / "cache", adhd_mirror.requests[before:], proc


def test_seed_is_nilearns_example(seed_run):
    """config/seed.yaml against the example's own code on the files it fetched:
    ``NiftiMapsMasker(maps_img=atlas["maps"], standardize="zscore_sample")
    .fit_transform(func, confounds=confounds)``, ``GraphicalLassoCV().fit``, its
    ``covariance_`` and ``precision_``; and the two figures it draws."""
    from nilearn.maskers import NiftiMapsMasker
    from sklearn.covariance import GraphicalLassoCV

    workdir, cache, requests, _ = seed_run
    sid = "0010042"  # nilearn's fetch_adhd(n_subjects=1)
    assert sorted(requests) == sorted(
        "/" + url.split("://", 1)[1] for url in
        (datasets.MSDL_URL, datasets.ADHD_METADATA_URL, datasets.adhd_subject_url(sid)))
    atlas = datasets.msdl_paths(cache)
    data = datasets.adhd_subject_paths(cache, sid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        masker = NiftiMapsMasker(maps_img=str(atlas["maps"]), standardize="zscore_sample")
        time_series = masker.fit_transform(str(data["func"]), confounds=str(data["confounds"]))
    estimator = GraphicalLassoCV()
    estimator.fit(time_series)

    sub = f"sub-{sid}"
    func = workdir / "results" / sub / "func"
    ours, names = read_timeseries(func / f"{sub}_atlas-msdl_timeseries.tsv")
    assert len(names) == 39 and relative_error(ours, time_series) <= 1e-4
    covariance, _ = read_matrix(func / f"{sub}_atlas-msdl_meas-covariance_relmat.tsv")
    precision, _ = read_matrix(func / f"{sub}_atlas-msdl_meas-precision_relmat.tsv")
    assert relative_error(covariance, estimator.covariance_) <= 1e-4
    assert relative_error(precision, estimator.precision_) <= 1e-4
    info = json.loads((func / f"{sub}_atlas-msdl_connectivity.json").read_text())
    assert info["estimator"] == "graphical_lasso_cv"
    assert info["alpha_raw"] == pytest.approx(estimator.alpha_, rel=1e-4)
    figures = workdir / "results" / sub / "figures"
    for name in ("meas-covariance_matrix", "meas-precision_connectome"):
        assert (figures / f"{sub}_atlas-msdl_{name}.png").read_bytes()[:4] == b"\x89PNG"
