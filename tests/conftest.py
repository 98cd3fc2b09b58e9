"""Shared fixtures and helpers: the real data in ../shared/data and synthetic
BOLD around it, the demo atlas as user files, and a Snakemake runner.

The real files are never copied into the project.  Outside CI a test that
needs them is skipped with the reason; in CI (``CI=true``) their absence is a
failure.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

# The ADHD-200 runs (nilearn's fetch_adhd) live on a 61x73x61 3 mm MNI grid.
ADHD_SHAPE = (61, 73, 61)
ADHD_AFFINE = np.array(
    [
        [-3.0, 0.0, 0.0, 90.0],
        [0.0, 3.0, 0.0, -126.0],
        [0.0, 0.0, 3.0, -72.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
ADHD_REGRESSOR_SUBJECTS = ("0010042", "0010128", "0021019", "0027034", "0027037")


def relative_error(ours, reference):
    """The parity metric of every test: max|ours - reference| / max|reference|.

    Positions that are NaN in both arrays are ignored (nilearn propagates NaN
    the same way we do); an all-zero reference fails, as the comparison would
    say nothing.
    """
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    both_nan = np.isnan(ours) & np.isnan(reference)
    diff = np.abs(np.where(both_nan, 0.0, ours - reference))
    scale = np.max(np.abs(np.where(both_nan, 0.0, reference)))
    assert scale > 0, "oracle is all zeros: the comparison would be vacuous"
    return float(np.max(diff) / scale)


def tree_digest(root, folders=("results", "work", "resources")):
    """sha256 of every file under the given folders of a workflow run, by
    relative path (logs/ and benchmarks/ hold timings by design: left out)."""
    import hashlib

    digests = {}
    for folder in folders:
        for path in sorted((Path(root) / folder).rglob("*")):
            if path.is_file():
                digests[str(path.relative_to(root))] = hashlib.sha256(
                    path.read_bytes()).hexdigest()
    return digests


def _in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_shared(*parts):
    """Path under ../shared/data; skip (or fail in CI) when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"real data not available: {path} is missing"
        if _in_ci():
            pytest.fail(message + " (required in CI)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def msdl_dir():
    """Folder holding the real MSDL atlas (msdl_rois.nii.gz, msdl_rois_labels.csv)."""
    return require_shared("msdl", "MSDL_rois")


@pytest.fixture(scope="session")
def msdl_maps_path(msdl_dir):
    return msdl_dir / "msdl_rois.nii.gz"


@pytest.fixture(scope="session")
def msdl_labels_path(msdl_dir):
    return msdl_dir / "msdl_rois_labels.csv"


@pytest.fixture(scope="session")
def msdl_maps_img(msdl_maps_path):
    import nibabel as nib

    img = nib.load(msdl_maps_path)
    # Load once: later tests share the array.
    return nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine, img.header)


@pytest.fixture(scope="session")
def hcp_series():
    """The real HCP resting-state parcel series (CIFTI-2 ptseries): 1200 volumes x
    419 parcels, float64, read-only (shared by the session)."""
    import nibabel as nib

    path = require_shared("hcp-ptseries", "sub-RAPIDTIDETEST_cifti.ptseries.nii")
    series = nib.load(path).get_fdata()
    assert series.shape == (1200, 419)
    series.setflags(write=False)
    return series


@pytest.fixture(scope="session")
def adhd_regressors_paths():
    """The five real ADHD-200 regressor tables (tab-separated, with header)."""
    return {
        sid: require_shared("adhd", "data", sid, f"{sid}_regressors.csv")
        for sid in ADHD_REGRESSOR_SUBJECTS
    }


def synthetic_bold(maps_img, n_volumes, dtype=np.float32, seed=0, shape=ADHD_SHAPE,
                   affine=ADHD_AFFINE, noise=0.5):
    """Synthetic BOLD on a grid: atlas maps (resampled by nearest lookup) times
    random region signals, plus a baseline and white noise.

    Built independently of the package so that it can serve as neutral input
    to parity tests.

    Returns
    -------
    nibabel.Nifti1Image, 4D, of the requested dtype.
    """
    import nibabel as nib

    rng = np.random.default_rng(seed)
    maps = np.asarray(maps_img.dataobj, dtype=np.float64)
    # nearest-neighbour lookup of the maps at the target voxel centres
    ijk = np.moveaxis(np.indices(shape, dtype=np.float64), 0, -1)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    inv = np.linalg.inv(maps_img.affine)
    src = np.rint(world @ inv[:3, :3].T + inv[:3, 3]).astype(int)
    inside = np.all((src >= 0) & (src < np.array(maps.shape[:3])), axis=-1)
    on_grid = np.zeros(shape + (maps.shape[3],))
    s = src[inside]
    on_grid[inside] = maps[s[:, 0], s[:, 1], s[:, 2]]
    signals = rng.standard_normal((n_volumes, maps.shape[3]))
    data = on_grid.reshape(-1, maps.shape[3]) @ signals.T * 20.0
    brain = inside.reshape(-1)
    data[brain] += 100.0 + noise * rng.standard_normal((int(brain.sum()), n_volumes))
    data = data.reshape(shape + (n_volumes,)).astype(dtype)
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    zooms = tuple(abs(float(v)) for v in np.diag(affine)[:3]) + (2.0,)
    img.header.set_zooms(zooms)
    return img


@pytest.fixture(scope="module")
def single_threaded_blas():
    """Small matrices: BLAS threads only add overhead (and contention on 2 cores).
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("single_threaded_blas")``."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def demo_atlas(folder):
    """The demo atlas (30 maps, cohort_connectome.demo) written as user files:
    ``(maps path, labels path, maps image)`` in ``folder``."""
    import nibabel as nib

    from cohort_connectome import demo

    img = nib.Nifti1Image(demo.evaluate_maps(demo.ATLAS_SHAPE, demo.ATLAS_AFFINE),
                          demo.ATLAS_AFFINE)
    maps, labels = Path(folder) / "atlas.nii.gz", Path(folder) / "labels.tsv"
    img.to_filename(maps)
    demo.demo_labels().to_csv(labels, sep="\t", index=False)
    return maps, labels, img


def snakemake_command(workdir, *args, cores=2):
    """The command running the repository's Snakefile on ``workdir`` (``--directory``:
    the repository is never written to); ``cores=None`` leaves ``--cores`` out."""
    return [*SNAKEMAKE, "-s", str(REPO_ROOT / "Snakefile"), "--directory", str(workdir),
            *(["--cores", str(cores)] if cores else []), *args]


def snakemake(workdir, *args, check=True, cores=2, env=None, timeout=900):
    """Run snakemake from the repository root on ``workdir``; return the process.

    ``check``: a failure raises AssertionError with the end of its output.
    ``env``: variables added to this process' environment. ``timeout`` (s) is
    generous: the machine may be shared (the demo takes 40-100 s on 2 cores)."""
    proc = subprocess.run(snakemake_command(workdir, *args, cores=cores), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(map(str, args))} failed ({proc.returncode}):"
                             f"\n{(proc.stdout + proc.stderr)[-20000:]}")
    return proc


# --------------------------------------------------------------------------
# the extraction jobs (cohort_connectome.jobs.extraction) on user files
# --------------------------------------------------------------------------
def atlas_spec(name="test", kind="probseg", strategy="mean", background=0, fetch=None):
    """The ``spec`` params the workflow passes to an atlas's jobs (common.smk's
    ``atlas_params``)."""
    return {"name": name, "kind": kind, "strategy": strategy, "background": background,
            "fetch": fetch}


def prepare_test_atlas(folder, image, labels, name="test", kind="probseg", **spec):
    """Run ``prepare_atlas`` on an image and its labels table, as the workflow
    does before any other atlas job: the atlas as used, in ``folder``.

    Returns
    -------
    dict
        ``spec`` (the job params), ``image``, ``table``, ``sidecar`` (the
        files written).
    """
    from cohort_connectome.jobs import extraction

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"atlas-{name}_{kind}"
    out = {"spec": atlas_spec(name, kind, **spec), "image": Path(f"{stem}.nii.gz"),
           "table": Path(f"{stem}.tsv"), "sidecar": Path(f"{stem}.json")}
    extraction.prepare_atlas(out["spec"], {"Source": str(image)}, image, labels, out["image"],
                             out["table"], out["sidecar"])
    return out


def resample_test_atlas(atlas, output, shape=None, affine=None, runs=("sub-01",),
                        run_paths=(), on_bad_input="fail"):
    """``resample_atlas`` of a prepared atlas (`prepare_test_atlas`) onto a grid
    (None: the atlas's own); returns ``output`` (the ``.npz``)."""
    from cohort_connectome.jobs import extraction

    extraction.resample_atlas(atlas["spec"], atlas["image"], atlas["table"], output, shape,
                              affine, list(runs), list(run_paths), on_bad_input=on_bad_input)
    return Path(output)


def extract_test_run(run, atlases, regions, folder, stem="raw", **kwargs):
    """``extract_timeseries`` of one run for prepared atlases and their grid files.

    Returns
    -------
    dict
        ``{atlas name: (timeseries.tsv, sidecar.json, coverage.tsv)}``.
    """
    from cohort_connectome.jobs import extraction

    folder = Path(folder)
    names = [a["spec"]["name"] for a in atlases]
    paths = {n: tuple(folder / f"{stem}_atlas-{n}{suffix}" for suffix in (
        "_desc-raw_timeseries.tsv", "_desc-raw_timeseries.json", "_stat-coverage_bold.tsv"))
        for n in names}
    extraction.extract_timeseries(
        run, names, list(regions), [a["spec"] for a in atlases], [a["image"] for a in atlases],
        [a["table"] for a in atlases], [paths[n][0] for n in names],
        [paths[n][1] for n in names], [paths[n][2] for n in names], **kwargs)
    return paths


def extract_one_atlas(run, image, labels, folder, shape=None, affine=None, name="test",
                      kind="probseg", subject=None, stem="raw", **kwargs):
    """The three extraction jobs for one atlas and one run, as the workflow
    chains them: ``prepare_atlas`` (image + labels table -> atlas as used),
    ``resample_atlas`` onto ``shape``/``affine`` (None: the run's own grid, read
    from its header) and ``extract_timeseries``.

    Returns
    -------
    (timeseries.tsv, sidecar.json, coverage.tsv, prepared atlas dict, regions.npz)
    """
    from cohort_connectome.resampling import read_grid

    folder = Path(folder)
    atlas = prepare_test_atlas(folder / "atlas", image, labels, name=name, kind=kind)
    if shape is None:
        shape, affine = read_grid(run)
    regions = resample_test_atlas(atlas, folder / f"atlas-{name}_regions.npz", shape, affine,
                                  runs=[subject or "sub-01"], run_paths=[run])
    ts, side, cov = extract_test_run(run, [atlas], [regions], folder, stem=stem,
                                     subject=subject, **kwargs)[name]
    return ts, side, cov, atlas, regions
