"""The per-subject chain through its job functions (files in, files out)
against nilearn 0.13.1's NiftiMapsMasker + ConnectivityMeasure: the seed
example "Extracting signals of a probabilistic atlas of rest functional
regions" on the real MSDL atlas, synthetic BOLD on the ADHD-200 grid and the
real ADHD-200 regressors as confounds.
"""

import json
import warnings

import numpy as np
import pytest

from cohort_connectome import io
from cohort_connectome.jobs import subject as subject_jobs

from conftest import extract_one_atlas, relative_error, synthetic_bold




@pytest.fixture(scope="module")
def adhd_like_run(tmp_path_factory, msdl_maps_img, adhd_regressors_paths):
    """A float32 run of 176 volumes (as subject 0010042) on the ADHD grid."""
    root = tmp_path_factory.mktemp("parity")
    img = synthetic_bold(msdl_maps_img, 176, dtype=np.float32, seed=11)
    run = root / "sub-0010042_bold.nii.gz"
    img.to_filename(run)
    return root, run, img, adhd_regressors_paths["0010042"]


CLEAN = {"detrend": True, "standardize": "zscore_sample", "standardize_confounds": True,
         "low_pass": 0.1, "high_pass": 0.01, "t_r": 2.0, "confounds": None}


@pytest.fixture(scope="module")
def our_chain(adhd_like_run, msdl_maps_path, msdl_labels_path):
    """prepare_atlas -> resample_atlas (once per grid, from the run's header) ->
    extract_timeseries -> clean_timeseries, as the workflow runs them."""
    root, run, _, confounds = adhd_like_run
    raw, raw_info, _, _, _ = extract_one_atlas(run, msdl_maps_path, msdl_labels_path, root,
                                               name="msdl", subject="sub-0010042")
    subject_jobs.clean_timeseries(raw, raw_info, confounds,
                                  root / "clean.tsv", root / "clean.json", root / "qc.tsv", CLEAN,
                                  subject="sub-0010042")
    return {"root": root, "raw": raw, "raw_info": raw_info}


def test_masker_parity(our_chain, adhd_like_run, msdl_maps_img, msdl_labels_path):
    """Mirrors NiftiMapsMasker(msdl, detrend=True, standardize="zscore_sample",
    low_pass=0.1, high_pass=0.01, t_r=2).fit_transform(run, confounds=regressors)."""
    from nilearn.maskers import NiftiMapsMasker

    _, _, img, confounds = adhd_like_run
    masker = NiftiMapsMasker(msdl_maps_img, detrend=True, standardize="zscore_sample",
                             standardize_confounds=True, low_pass=0.1, high_pass=0.01,
                             t_r=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = masker.fit_transform(img, confounds=str(confounds))
    ours, names = io.read_timeseries(our_chain["root"] / "clean.tsv")
    assert names == list(io.read_labels(msdl_labels_path)["name"])
    assert ours.shape == expected.shape == (176, 39)
    assert relative_error(ours, expected) <= 1e-4  # float32 data
    sidecar = json.loads((our_chain["root"] / "clean.json").read_text())
    assert sidecar["RepetitionTimeSource"] == "config clean.t_r"
    assert len(sidecar["Confounds"]) == 17


def test_raw_extraction_parity(our_chain, adhd_like_run, msdl_maps_img):
    """Mirrors NiftiMapsMasker(msdl).fit_transform(run): resampling + least
    squares with nilearn's defaults (no cleaning)."""
    from nilearn.maskers import NiftiMapsMasker

    _, _, img, _ = adhd_like_run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = NiftiMapsMasker(msdl_maps_img).fit_transform(img)
    ours, _ = io.read_timeseries(our_chain["raw"])
    assert relative_error(ours, expected) <= 1e-5
    assert json.loads(our_chain["raw_info"].read_text())["RepetitionTimeHeader"] == 2.0


@pytest.mark.parametrize("estimator", ["ledoit_wolf", "graphical_lasso_cv"])
def test_connectome_parity(our_chain, estimator):
    """Mirrors ConnectivityMeasure(cov_estimator=LedoitWolf(store_precision=False) |
    GraphicalLassoCV(), kind=...).fit_transform([signals]) on the cleaned signals,
    read back from the pipeline's TSV as the workflow does."""
    from nilearn.connectome import ConnectivityMeasure
    from sklearn.covariance import GraphicalLassoCV, LedoitWolf

    root = our_chain["root"]
    signals, _ = io.read_timeseries(root / "clean.tsv")
    kinds = {"correlation": "correlation", "partialcorrelation": "partial correlation",
             "covariance": "covariance", "precision": "precision"}
    outputs = {k: root / f"{estimator}_{k}.tsv" for k in kinds}
    subject_jobs.estimate_connectomes(root / "clean.tsv", outputs,
                                      root / f"{estimator}.json", estimator)
    info = json.loads((root / f"{estimator}.json").read_text())
    for kind, nilearn_kind in kinds.items():
        est = (LedoitWolf(store_precision=False) if estimator == "ledoit_wolf"
               else GraphicalLassoCV())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = ConnectivityMeasure(cov_estimator=est, kind=nilearn_kind) \
                .fit_transform([signals])[0]
        ours, _ = io.read_matrix(outputs[kind])
        assert relative_error(ours, expected) <= 1e-5, kind
    if estimator == "graphical_lasso_cv":
        # the recorded alpha is the one GraphicalLassoCV chooses on these signals
        assert info["alpha_raw"] == pytest.approx(GraphicalLassoCV().fit(signals).alpha_,
                                                  rel=1e-12)
    else:
        assert 0 < info["shrinkage_raw"] < 1
