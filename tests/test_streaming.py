"""Chunked extraction (cohort_connectome.streaming) against the in-memory path.

Oracle: ``extract_signals(run_data(load_run(path)), maps)`` (itself checked
against nilearn in test_extraction.py) and, for one case, nilearn's
``img_to_signals_maps`` directly.  Inputs: synthetic BOLD on the ADHD grid
with the real MSDL maps resampled to it, written to disk by a small NIfTI
writer so that dtype, byte order and scl_slope/scl_inter are exactly chosen.
"""

import gzip
import json
import os
import re
import subprocess
import sys
import zlib

import numpy as np
import pytest

from cohort_connectome import streaming
from cohort_connectome.errors import InputError
from cohort_connectome.extraction import extract_signals, load_run, run_data
from cohort_connectome.resampling import resample_maps
from cohort_connectome.streaming import (MapsProjector, extract_signals_streaming,
                                         iter_volume_chunks)

from conftest import ADHD_AFFINE, ADHD_SHAPE, relative_error, synthetic_bold

N_VOLUMES = 20
TOL64 = 1e-5
TOL32 = 1e-4


def write_nifti(path, data, affine=ADHD_AFFINE, dtype=None, slope=None, inter=None,
                endian="<"):
    """Write ``data`` (x, y, z, t) as NIfTI-1 with exactly this on-disk dtype,
    byte order and scaling (nibabel's writer would choose its own scaling).
    ``data`` is written as is (already in ``dtype``)."""
    import nibabel as nib

    data = np.asarray(data)
    dtype = np.dtype(dtype or data.dtype)
    hdr = nib.Nifti1Header(endianness=endian)
    hdr.set_data_shape(data.shape)
    hdr.set_data_dtype(dtype)
    hdr.set_qform(affine, code=1)
    hdr.set_sform(affine, code=1)
    hdr.set_xyzt_units("mm", "sec")
    hdr.set_data_offset(352)
    if slope is not None:
        hdr["scl_slope"] = slope
        hdr["scl_inter"] = inter or 0.0
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        hdr.write_to(f)  # 348 bytes + 4-byte extension flag = 352
        f.write(np.asarray(data, dtype=dtype.newbyteorder(endian)).tobytes(order="F"))
    return path


def reference(path, maps):
    return extract_signals(run_data(load_run(path)), maps)


@pytest.fixture(scope="module")
def float32_refs(float32_runs, maps):
    return {ext: reference(path, maps) for ext, path in float32_runs.items()}


@pytest.fixture(scope="module")
def maps(msdl_maps_img):
    return resample_maps(np.asanyarray(msdl_maps_img.dataobj), msdl_maps_img.affine,
                         ADHD_SHAPE, ADHD_AFFINE)


@pytest.fixture(scope="module")
def projector(maps):
    return MapsProjector().fit(maps)


@pytest.fixture(scope="module")
def bold(msdl_maps_img):
    return np.asarray(synthetic_bold(msdl_maps_img, N_VOLUMES, seed=3).dataobj)


@pytest.fixture(scope="module")
def float32_runs(bold, tmp_path_factory):
    d = tmp_path_factory.mktemp("f32")
    return {ext: write_nifti(d / f"run{ext}", bold) for ext in (".nii.gz", ".nii")}


def check(ours, ref, tol=None):
    assert ours.shape == ref.shape
    assert ours.dtype == ref.dtype
    err = relative_error(ours, ref)
    tol = tol if tol is not None else (TOL32 if ref.dtype == np.float32 else TOL64)
    assert err <= tol, err
    return err


@pytest.mark.parametrize("ext", [".nii.gz", ".nii"])
@pytest.mark.parametrize("chunk_volumes", [1, 7, None])
def test_float32_parity(float32_runs, float32_refs, projector, ext, chunk_volumes):
    path = float32_runs[ext]
    ref = float32_refs[ext]
    ours = extract_signals_streaming(path, projector, chunk_volumes=chunk_volumes)
    check(ours, ref)


def test_maps_array_and_projector_agree(float32_runs, maps, projector):
    path = float32_runs[".nii.gz"]
    a = extract_signals_streaming(path, maps, subject="sub-01", chunk_volumes=7)
    b = extract_signals_streaming(path, projector, chunk_volumes=7)
    np.testing.assert_array_equal(a, b)


def test_projector_support_is_fortran_order(maps, projector):
    flat = maps.reshape(-1, maps.shape[3], order="F")
    expected = np.flatnonzero(np.any(np.isfinite(flat) & (flat != 0), axis=1))
    np.testing.assert_array_equal(projector.support_, expected)
    assert projector.supported_.shape == (maps.shape[3],) and projector.supported_.all()
    assert projector.maps_.shape == (expected.size, maps.shape[3])
    assert projector.gram_pinv_.shape == (maps.shape[3], maps.shape[3])
    np.testing.assert_array_equal(projector.maps_.toarray(), flat[expected])
    assert projector.grid_shape_ == ADHD_SHAPE


def test_nilearn_oracle(float32_runs, maps):
    import nibabel as nib
    from nilearn.regions.signal_extraction import img_to_signals_maps

    path = float32_runs[".nii.gz"]
    ref = img_to_signals_maps(nib.load(path), nib.Nifti1Image(maps, ADHD_AFFINE))[0]
    ours = extract_signals_streaming(path, maps, chunk_volumes=7)
    check(ours, np.asarray(ref))


@pytest.mark.parametrize("ext", [".nii.gz", ".nii"])
@pytest.mark.parametrize("endian", ["<", ">"])
def test_int16_scaled_parity(bold, maps, projector, tmp_path, ext, endian):
    slope, inter = 0.01, 90.0
    raw = np.clip(np.rint((bold.astype(np.float64) - inter) / slope), -32768, 32767)
    path = write_nifti(tmp_path / f"run{ext}", raw.astype(np.int16), slope=slope,
                       inter=inter, endian=endian)
    full = run_data(load_run(path))
    assert full.dtype == np.float64  # nibabel scales to float64
    chunks = list(iter_volume_chunks(path, chunk_volumes=7))
    assert [c.shape[0] for c in chunks] == [7, 7, 6]
    stacked = np.concatenate(chunks)
    assert stacked.dtype == np.float64 and stacked.dtype.isnative
    np.testing.assert_array_equal(stacked, full.reshape(-1, N_VOLUMES, order="F").T)
    check(extract_signals_streaming(path, projector, chunk_volumes=7),
          reference(path, maps))


def test_float32_scaled_and_big_endian(bold, maps, projector, tmp_path):
    path = write_nifti(tmp_path / "run.nii.gz", bold, slope=2.0, inter=-5.0, endian=">")
    ref = reference(path, maps)
    assert ref.dtype == np.float64
    check(extract_signals_streaming(path, projector, chunk_volumes=1), ref)


@pytest.mark.parametrize("ext", [".nii.gz", ".nii"])
def test_big_endian_unscaled_chunks(bold, maps, projector, tmp_path, ext):
    path = write_nifti(tmp_path / f"run{ext}", bold, endian=">")
    full = run_data(load_run(path))
    assert full.dtype == np.dtype(">f4")
    stacked = np.concatenate(list(iter_volume_chunks(path, chunk_volumes=7)))
    assert stacked.dtype == np.dtype("=f4")
    np.testing.assert_array_equal(stacked, full.reshape(-1, N_VOLUMES, order="F").T)
    check(extract_signals_streaming(path, projector), reference(path, maps))


def test_float32_maps_give_float32(float32_runs, maps):
    maps32 = maps.astype(np.float32)
    projector32 = MapsProjector().fit(maps32)
    for ext, path in float32_runs.items():
        ref = reference(path, maps32)
        assert ref.dtype == np.float32
        check(extract_signals_streaming(path, projector32, chunk_volumes=7), ref, TOL32)


def test_nan_voxels(bold, maps, projector, tmp_path):
    data = bold.copy()
    data[30, 40, 30, :] = np.nan
    data[25, 30, 35, 3] = np.inf
    data[20, 50, 30, 5:9] = -np.inf
    for ext in (".nii.gz", ".nii"):
        path = write_nifti(tmp_path / f"nan{ext}", data)
        ref = reference(path, maps)
        assert np.isfinite(ref).all()
        counts = {}
        ours = extract_signals_streaming(path, projector, chunk_volumes=7, counts=counts)
        assert np.isfinite(ours).all()
        check(ours, ref)
        # the non-finite values on the maps' support, counted for the QC tables
        support = np.zeros(int(np.prod(ADHD_SHAPE)), bool)
        support[projector.support_] = True
        support = support.reshape(ADHD_SHAPE, order="F")
        expected = int((~np.isfinite(data) & support[..., None]).sum())
        assert expected > 0 and counts["non_finite"] == expected
    clean = {}
    extract_signals_streaming(tmp_path / "nan.nii", projector, counts=clean)
    assert clean["non_finite"] == expected
    extract_signals_streaming(write_nifti(tmp_path / "ok.nii", bold), projector, counts=clean)
    assert clean["non_finite"] == expected  # adds nothing for a clean run


def test_standard_gzip_fallback(float32_runs, projector, monkeypatch):
    path = float32_runs[".nii.gz"]
    fast = extract_signals_streaming(path, projector, chunk_volumes=7)
    monkeypatch.setattr(streaming, "_igzip", None)
    slow = extract_signals_streaming(path, projector, chunk_volumes=7)
    np.testing.assert_array_equal(fast, slow)


def test_truncated_gz(float32_runs, projector, tmp_path):
    blob = float32_runs[".nii.gz"].read_bytes()
    cut = blob[: int(len(blob) * 0.6)]
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(cut)
    available = len(zlib.decompressobj(31).decompress(cut))
    volume_bytes = int(np.prod(ADHD_SHAPE)) * 4
    expected = (available - 352) // volume_bytes
    assert 0 < expected < N_VOLUMES
    with pytest.raises(InputError) as info:
        extract_signals_streaming(path, projector, subject="sub-07", chunk_volumes=3)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"sub-07: {path}: ")
    n = int(re.search(r"file ends after (\d+) of 20 volumes", message).group(1))
    assert n == expected


def test_truncated_nii(float32_runs, projector, tmp_path):
    volume_bytes = int(np.prod(ADHD_SHAPE)) * 4
    path = tmp_path / "cut.nii"
    path.write_bytes(float32_runs[".nii"].read_bytes()[: 352 + 5 * volume_bytes + 100])
    with pytest.raises(InputError, match=r"cut\.nii: file ends after 5 of 20 volumes$"):
        extract_signals_streaming(path, projector)


def test_unsupported_dtype_and_shape(tmp_path, projector, maps):
    small = np.zeros(ADHD_SHAPE + (2,), dtype=np.complex64)
    path = write_nifti(tmp_path / "c.nii.gz", small)
    with pytest.raises(InputError, match=r"c\.nii\.gz: unsupported data type complex64"):
        extract_signals_streaming(path, projector)
    path3d = write_nifti(tmp_path / "three.nii", np.zeros(ADHD_SHAPE, np.float32))
    with pytest.raises(InputError, match=r"three\.nii: image is 3D, expected a 4D run"):
        list(iter_volume_chunks(path3d))
    other = write_nifti(tmp_path / "other.nii", np.zeros((4, 5, 6, 3), np.float32))
    with pytest.raises(InputError, match=r"other\.nii: maps are not on the run's grid"):
        extract_signals_streaming(other, maps)
    with pytest.raises(InputError, match=r"missing\.nii\.gz: file not found"):
        extract_signals_streaming(tmp_path / "missing.nii.gz", projector)


def test_default_chunk_size(float32_runs):
    chunks = list(iter_volume_chunks(float32_runs[".nii"]))
    # volumes of 1.04 MiB: 15 fit in one 16 MiB chunk, then the 5 others
    assert N_VOLUMES == 20
    assert [c.shape for c in chunks] == [(15, int(np.prod(ADHD_SHAPE))),
                                         (5, int(np.prod(ADHD_SHAPE)))]


# ---------------------------------------------------------------- peak memory

_CHILD = r"""
import json, resource, sys
import numpy as np
import nibabel
def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
def peak():
    # VmHWM: peak resident set of this process image.  ru_maxrss is not used:
    # Linux carries it over fork+exec, so it starts at pytest's own size.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if sys.argv[1] == "baseline":
    print(json.dumps({"peak": peak()}))
    sys.exit()
from cohort_connectome.streaming import MapsProjector, extract_signals_streaming
projector = MapsProjector().fit(np.load(sys.argv[2]))
fit_peak = peak()
try:  # reset the high-water mark to the current RSS (Linux >= 4.0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
before = status("VmRSS")
signals = extract_signals_streaming(sys.argv[1], projector)
print(json.dumps({"fit_peak": fit_peak, "before": before, "peak": peak(),
                  "shape": signals.shape}))
"""


def _child(*args):
    out = subprocess.run([sys.executable, "-c", _CHILD, *map(str, args)], check=True,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout)


@pytest.mark.parametrize("ext", [".nii.gz", ".nii"])
def test_peak_memory(maps, tmp_path, ext):
    """A 400-volume float32 run (414 MiB uncompressed) is extracted with a
    resident set far below its size: the run is never held in memory (for
    .nii the memory-mapped pages are released chunk by chunk)."""
    n_volumes = 400
    path = tmp_path / f"long{ext}"
    rng = np.random.default_rng(0)
    volume = np.rint(rng.standard_normal(ADHD_SHAPE) * 4).astype(np.float32) + 100
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_shape(ADHD_SHAPE + (n_volumes,))
    hdr.set_data_dtype(np.float32)
    hdr.set_sform(ADHD_AFFINE, code=1)
    hdr.set_data_offset(352)
    opener = (lambda p: gzip.open(p, "wb", compresslevel=1)) if ext == ".nii.gz" else \
        (lambda p: open(p, "wb"))
    with opener(path) as f:  # volume by volume
        hdr.write_to(f)
        for t in range(n_volumes):
            f.write((volume + np.float32(t % 7)).tobytes(order="F"))
    data_bytes = n_volumes * volume.nbytes
    maps_path = tmp_path / "maps.npy"
    np.save(maps_path, maps)

    baseline = _child("baseline")["peak"]
    run = _child(path, maps_path)
    assert run["shape"] == [n_volumes, maps.shape[3]]
    extraction = run["peak"] - run["before"]  # growth during extraction only
    total = max(run["peak"], run["fit_peak"]) - baseline  # + maps and projector
    mib = {k: f"{v / 2**20:.0f} MiB" for k, v in run.items() if k != "shape"}
    print(f"\n{ext}: data {data_bytes / 2**20:.0f} MiB; baseline "
          f"{baseline / 2**20:.0f} MiB; child {mib}")
    assert extraction < 0.4 * data_bytes
    assert total < 0.4 * data_bytes + maps.nbytes


@pytest.mark.parametrize("maps_dtype", ["<f4", ">f4", "<f8", "<f2", "<i2", "<u1", "<i4", "|b1"])
@pytest.mark.parametrize("data_dtype", ["<f4", ">f4", "<f8", "<f2", "<i2", "<u1", "<i4"])
def test_result_dtype_is_scipy_lstsq_dtype(maps_dtype, data_dtype):
    """The dtype of the LAPACK routine we ask scipy for is what
    scipy.linalg.lstsq returns (nilearn's signals dtype)."""
    from scipy import linalg

    a = np.ones((3, 1), dtype=np.dtype(maps_dtype).newbyteorder("="))
    b = np.ones((3, 1), dtype=np.dtype(data_dtype).newbyteorder("="))
    expected = linalg.lstsq(a, b, lapack_driver="gelsd")[0].dtype
    assert streaming._lstsq_dtype(maps_dtype, data_dtype) == expected


def test_projector_save_load_round_trip_is_byte_identical(projector, tmp_path, float32_runs):
    """A saved projector loads to the same arrays and signals, and saving twice
    writes the same bytes (fixed zip dates: reruns are byte-identical)."""
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    names = [f"region {i}" for i in range(projector.n_maps_)]
    projector.save(first, names=names)
    projector.save(second, names=names)
    assert first.read_bytes() == second.read_bytes()
    loaded = MapsProjector.load(first)
    assert loaded.names_ == names
    projector.save(second)
    assert MapsProjector.load(second).names_ is None
    with pytest.raises(ValueError, match="names for"):
        projector.save(second, names=names[:-1])
    np.testing.assert_array_equal(loaded.support_, projector.support_)
    for name, array in projector.to_arrays().items():
        np.testing.assert_array_equal(loaded.to_arrays(names=None)[name], array)
    assert loaded.grid_shape_ == projector.grid_shape_
    assert loaded.dtype_ == projector.dtype_ and loaded.n_maps_ == projector.n_maps_
    run = float32_runs[".nii.gz"]
    np.testing.assert_array_equal(extract_signals_streaming(run, loaded),
                                  extract_signals_streaming(run, projector))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="bad.npz: not a projector file"):
        MapsProjector.load(tmp_path / "bad.npz")


# --------------------------------------------------------------------------
# the projector's rank cut-off is nilearn's (lstsq, gelsd)
# --------------------------------------------------------------------------


def _rank_cases():
    """Maps (grid (20, 16, 10), 6 maps) whose smallest singular value ``s``
    (the largest is 1) lies on either side of gelsd's cut-off ``eps``, of
    ``scipy.linalg.pinv``'s default one (``max(M, N) * eps``) and of the
    normal equations' noise floor; with a run of 30 volumes."""
    rng = np.random.default_rng(4)
    grid, k = (20, 16, 10), 6
    m = int(np.prod(grid))
    u, _ = np.linalg.qr(rng.standard_normal((m, k)))
    v, _ = np.linalg.qr(rng.standard_normal((k, k)))
    data = rng.standard_normal(grid + (30,))
    eps = np.finfo(np.float64).eps
    cut = m * eps  # scipy.linalg.pinv's default relative cut-off
    smalls = (0.0, eps * 0.1, eps * 10, cut * 0.5, cut * 2, 1e-6, 1e-5, 1e-3)
    cases = [(small, ((u * [1.0, 0.5, 0.25, 0.1, 0.05, small]) @ v.T).reshape(
        grid + (k,), order="F")) for small in smalls]
    return data, cases


def _img_to_signals_maps(data, maps):
    import warnings

    import nibabel as nib
    from nilearn.regions.signal_extraction import img_to_signals_maps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return img_to_signals_maps(nib.Nifti1Image(data, np.eye(4)),
                                   nib.Nifti1Image(maps, np.eye(4)))[0]


def test_rank_deficient_maps_match_nilearn_lstsq():
    """Mirrors ``img_to_signals_maps(run, maps)`` (``scipy.linalg.lstsq``,
    ``gelsd``: singular values ``<= eps * s.max()`` dropped) on maps whose
    smallest singular value ``s`` lies on either side of that cut-off and of
    ``scipy.linalg.pinv``'s default one (``max(M, N) * eps * s.max()``, which
    drops the values between the two and misses nilearn by 100% there).

    With ``s >= 1e-4`` (condition number <= 1e4) the projector uses the
    normal equations as they are: error ~``eps * cond**2`` (measured 0.08 of
    it at ``s = 1e-3``).  Below, the maps are small enough for an SVD of
    their dense matrix, with gelsd's cut-off: a kept ``s`` is only known to
    about ``eps * s.max()``, so both results carry an error of about ``eps /
    s`` relative -- measured 2.6-5.4 times it here (the dense pseudo-inverse
    of earlier versions: 0.3-0.6 times it, tolerance ``1 * eps / s``; now 6)."""
    data, cases = _rank_cases()
    chunk = data.reshape(-1, data.shape[3], order="F").T
    eps = np.finfo(np.float64).eps
    for small, maps in cases:
        projector = MapsProjector().fit(maps)
        assert projector.support_.size == chunk.shape[1]
        ref = _img_to_signals_maps(data, maps)
        tol = 1e-12 + (6 * eps / small if small > eps else 0.0)
        if small >= 1e-4:
            tol += 0.2 * eps / small**2
        assert relative_error(projector.transform(chunk), ref) <= tol, small


def test_rank_deficient_large_maps_use_the_gram_eigenvalues(monkeypatch):
    """Maps too large for a dense SVD: the eigenvalues of ``G = A.T @ A``
    are cut at ``max(eps**2, k * eps64) * lambda_max`` (gelsd's rule raised
    to G's rounding noise).  Singular values below ``sqrt(6 * eps64) =
    3.7e-8`` are then dropped (nilearn keeps those above ``eps``): equal to
    ``lstsq`` with that cut-off; the others as nilearn, to the normal
    equations' error ``eps / s**2`` (measured 0.08-1.9 times it)."""
    from scipy import linalg

    monkeypatch.setattr(streaming, "_DENSE_SVD_LIMIT", 0)
    data, cases = _rank_cases()
    chunk = data.reshape(-1, data.shape[3], order="F").T
    eps = np.finfo(np.float64).eps
    for small, maps in cases:
        ours = MapsProjector().fit(maps).transform(chunk)
        flat = maps.reshape(-1, maps.shape[3], order="F")
        if small < 1e-7:
            ref = linalg.lstsq(flat, chunk.T, cond=1e-7, lapack_driver="gelsd")[0].T
            tol = 1e-9
        else:
            ref = _img_to_signals_maps(data, maps)
            tol = 4 * eps / small**2  # the normal equations: measured 0.08-1.9 of it
        assert relative_error(ours, ref) <= tol, small


def test_map_without_support_gives_nan():
    """A map that is zero everywhere on the grid takes no part in the least
    squares: its column is NaN, the others are nilearn's (which gives 0 for
    the empty map: zero columns do not change the minimum-norm solution)."""
    rng = np.random.default_rng(4)
    grid = (20, 16, 10)
    data = rng.standard_normal(grid + (30,))
    maps = rng.random(grid + (3,))
    maps[..., 1] = 0
    maps[3, 4, 5, 1] = np.nan  # non-finite values are no support
    chunk = data.reshape(-1, 30, order="F").T
    projector = MapsProjector().fit(maps)
    np.testing.assert_array_equal(projector.supported_, [True, False, True])
    assert projector.maps_.shape == (int(np.prod(grid)), 2)
    ours = projector.transform(chunk)
    assert np.isnan(ours[:, 1]).all()
    ref = _img_to_signals_maps(data, np.nan_to_num(maps))
    assert np.all(ref[:, 1] == 0)
    assert relative_error(ours[:, [0, 2]], ref[:, [0, 2]]) <= 1e-12
    in_memory = extract_signals(data, maps)
    assert np.isnan(in_memory[:, 1]).all()
    assert relative_error(in_memory[:, [0, 2]], ref[:, [0, 2]]) <= 1e-12


# --------------------------------------------------------------------------
# sparse maps: resample_maps_sparse -> MapsProjector, maps without support
# --------------------------------------------------------------------------
def test_projector_from_sparse_maps_is_the_dense_one(msdl_maps_img, maps, projector,
                                                     float32_runs):
    """resample_maps_sparse's matrix fits the very projector the dense
    resampled maps fit (same support, maps and Gram pseudo-inverse), so the
    signals are equal bit for bit; both match nilearn's lstsq."""
    from cohort_connectome.resampling import resample_maps_sparse

    resampled, _ = resample_maps_sparse(np.asanyarray(msdl_maps_img.dataobj), ADHD_SHAPE,
                                        ADHD_AFFINE, maps_affine=msdl_maps_img.affine)
    sparse_projector = MapsProjector().fit(resampled, grid_shape=ADHD_SHAPE)
    for name, array in projector.to_arrays().items():
        np.testing.assert_array_equal(sparse_projector.to_arrays()[name], array)
    assert projector.grid_affine_ is None and "grid_affine" not in projector.to_arrays()
    with_affine = MapsProjector().fit(resampled, grid_shape=ADHD_SHAPE, grid_affine=ADHD_AFFINE)
    np.testing.assert_array_equal(
        MapsProjector.from_arrays(with_affine.to_arrays()).grid_affine_, ADHD_AFFINE)
    path = float32_runs[".nii.gz"]
    np.testing.assert_array_equal(extract_signals_streaming(path, sparse_projector),
                                  extract_signals_streaming(path, projector))
    with pytest.raises(ValueError, match="grid_shape is required"):
        MapsProjector().fit(resampled)
    with pytest.raises(ValueError, match="do not match the grid"):
        MapsProjector().fit(resampled, grid_shape=(61, 73, 60))


def test_slab_grid_maps_without_support_are_nan(msdl_maps_img, tmp_path):
    """A 6-slice slab at the top of the brain sees 20 of MSDL's 39 maps: the
    19 others are NaN, and the rest equal nilearn's ``img_to_signals_maps``
    on exactly the supported maps (measured 2.6e-12 relative; asserted 1e-6),
    for the projector, the array path and extract_signals."""
    import warnings

    import nibabel as nib
    from nilearn.regions.signal_extraction import img_to_signals_maps

    from cohort_connectome.resampling import resample_maps_sparse

    shape = (61, 73, 6)
    affine = ADHD_AFFINE.copy()
    affine[2, 3] += 3 * 40
    resampled, _ = resample_maps_sparse(np.asanyarray(msdl_maps_img.dataobj), shape,
                                        affine, maps_affine=msdl_maps_img.affine)
    projector = MapsProjector().fit(resampled, grid_shape=shape)
    supported = projector.supported_
    assert supported.sum() == 20 and projector.maps_.shape[1] == 20
    bold = synthetic_bold(msdl_maps_img, N_VOLUMES, seed=5, shape=shape, affine=affine)
    path = write_nifti(tmp_path / "slab.nii.gz", np.asarray(bold.dataobj), affine=affine)
    dense = resampled.toarray().reshape(shape + (39,), order="F")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = img_to_signals_maps(nib.load(path),
                                  nib.Nifti1Image(dense[..., supported], affine))[0]
    for ours in (extract_signals_streaming(path, projector, chunk_volumes=7),
                 extract_signals_streaming(path, dense),
                 extract_signals(run_data(load_run(path)), dense)):
        assert ours.shape == (N_VOLUMES, 39)
        assert np.isnan(ours[:, ~supported]).all()
        assert np.isfinite(ours[:, supported]).all()
        assert relative_error(ours[:, supported], ref) <= 1e-6


def test_no_supported_map_raises():
    from scipy import sparse

    empty = sparse.csc_matrix((24, 3))
    with pytest.raises(InputError, match="do not overlap the run's field of view"):
        MapsProjector().fit(empty, grid_shape=(2, 3, 4))
    nan_only = np.zeros((2, 3, 4, 3))
    nan_only[0, 0, 0, 1] = np.nan
    with pytest.raises(InputError, match="do not overlap the run's field of view"):
        MapsProjector().fit(nan_only)


def test_to_arrays_round_trip_and_old_format(projector, float32_runs, tmp_path):
    """to_arrays is a dict of plain numpy arrays, the same on every call;
    from_arrays gives back the same projector; a projector file of the
    earlier format (a dense ``pinv``) is refused with a one-line InputError."""
    import zipfile

    arrays = projector.to_arrays(names=[f"r{i}" for i in range(projector.n_maps_)])
    again = projector.to_arrays(names=[f"r{i}" for i in range(projector.n_maps_)])
    assert list(arrays) == list(again)
    for name, array in arrays.items():
        assert type(array) is np.ndarray and array.dtype != object
        np.testing.assert_array_equal(array, again[name])
        assert array.dtype == again[name].dtype
    copy = MapsProjector.from_arrays(arrays)
    assert copy.names_ == [f"r{i}" for i in range(projector.n_maps_)]
    run = float32_runs[".nii.gz"]
    np.testing.assert_array_equal(extract_signals_streaming(run, copy),
                                  extract_signals_streaming(run, projector))
    old = tmp_path / "old.npz"
    np.savez(old, support=projector.support_, pinv=np.zeros((3, projector.support_.size)),
             grid_shape=np.asarray(ADHD_SHAPE), dtype=np.asarray("<f8"))
    with pytest.raises(InputError, match=r"old\.npz: not a projector file written by "
                       r"resample_atlas: projector format 1, expected 2"):
        MapsProjector.load(old)
    path = tmp_path / "p.npz"
    projector.save(path)
    with zipfile.ZipFile(path) as archive:
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist())


def test_unusable_projector_round_trip(tmp_path):
    unusable = MapsProjector.unusable(np.float32, ADHD_SHAPE, 5, "outside the field of view",
                                      grid_affine=ADHD_AFFINE)
    path = tmp_path / "u.npz"
    unusable.save(path, names=list("abcde"))
    loaded = MapsProjector.load(path)
    assert loaded.unusable_ == "outside the field of view"
    assert loaded.n_maps_ == 5 and loaded.support_.size == 0
    assert not loaded.supported_.any() and loaded.names_ == list("abcde")
    assert loaded.grid_shape_ == ADHD_SHAPE and loaded.dtype_ == np.float32
    np.testing.assert_array_equal(loaded.grid_affine_, ADHD_AFFINE)


# --------------------------------------------------------------------------
# decoding in a background thread
# --------------------------------------------------------------------------
@pytest.mark.parametrize("read_ahead_volumes", [0, 10])
@pytest.mark.parametrize("chunk_volumes", [1, 7, None])
def test_background_decoding_gives_the_same_chunks(float32_runs, projector, chunk_volumes,
                                                   read_ahead_volumes):
    path = float32_runs[".nii.gz"]
    plain = list(iter_volume_chunks(path, chunk_volumes=chunk_volumes, background=False))
    ahead = list(iter_volume_chunks(path, chunk_volumes=chunk_volumes, background=True,
                                    read_ahead_volumes=read_ahead_volumes))
    assert [c.shape for c in plain] == [c.shape for c in ahead]
    for a, b in zip(plain, ahead):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    np.testing.assert_array_equal(
        extract_signals_streaming(path, projector, chunk_volumes=chunk_volumes,
                                  background=False),
        extract_signals_streaming(path, projector, chunk_volumes=chunk_volumes,
                                  background=True))


@pytest.mark.parametrize("read_ahead_volumes, depth", [(0, 0), (1, 1), (6, 2), (7, 3)])
def test_read_ahead_covers_a_batch_of_volumes(float32_runs, monkeypatch, read_ahead_volumes,
                                              depth):
    """The decoder may run ``read_ahead_volumes`` (rounded up to whole chunks)
    beyond its READ_AHEAD chunks, so that it goes on while a batch is projected."""
    depths = []
    real = streaming._read_ahead
    monkeypatch.setattr(streaming, "_read_ahead",
                        lambda items, d: depths.append(d) or real(items, d))
    list(iter_volume_chunks(float32_runs[".nii.gz"], chunk_volumes=3, background=True,
                            read_ahead_volumes=read_ahead_volumes))
    assert depths == [streaming.READ_AHEAD + depth]


@pytest.mark.parametrize("background", [False, True])
def test_truncated_gz_with_and_without_background(float32_runs, tmp_path, background):
    """The chunks before the break are yielded, then the one-line error."""
    blob = float32_runs[".nii.gz"].read_bytes()
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(blob[: int(len(blob) * 0.6)])
    got = []
    with pytest.raises(InputError, match=r"cut\.nii\.gz: file ends after (\d+) of 20 "
                       r"volumes$") as info:
        for chunk in iter_volume_chunks(path, chunk_volumes=3, background=background):
            got.append(chunk.shape[0])
    n = int(re.search(r"after (\d+) of", str(info.value)).group(1))
    assert sum(got) == n // 3 * 3 and len(got) >= 1


def test_abandoned_background_reader_stops_its_thread(float32_runs):
    import threading

    before = threading.active_count()
    chunks = iter_volume_chunks(float32_runs[".nii.gz"], chunk_volumes=1, background=True)
    next(chunks)
    assert threading.active_count() == before + 1
    chunks.close()
    assert threading.active_count() == before


def test_iter_map_chunks_reads_any_4d_image(tmp_path, msdl_maps_img):
    """Maps files: a single map is fine (a run needs 2 volumes); values as
    nibabel's dataobj."""
    import nibabel as nib

    from cohort_connectome.streaming import iter_map_chunks, open_maps

    one = np.asanyarray(msdl_maps_img.dataobj)[..., :1].astype(np.float32)
    path = tmp_path / "one.nii.gz"
    nib.Nifti1Image(one, msdl_maps_img.affine).to_filename(path)
    img, dtype = open_maps(path)
    assert dtype == np.float32 and img.shape == one.shape
    chunks = list(iter_map_chunks(path))
    assert len(chunks) == 1 and chunks[0].shape == (1, one[..., 0].size)
    np.testing.assert_array_equal(chunks[0][0], one[..., 0].ravel(order="F"))


def test_real_difumo64_on_a_3mm_grid_matches_nilearn(tmp_path):
    """The real DiFuMo-64 (2 mm, float32) onto the ADHD 3 mm grid: the
    streamed sparse resampling equals resample_maps bit for bit, and the
    sparse projector's signals equal nilearn's ``img_to_signals_maps`` on
    those maps (float32 lstsq: measured 1.8e-6 relative, TOL32 asserted)."""
    import warnings

    import nibabel as nib
    from nilearn.regions.signal_extraction import img_to_signals_maps

    from cohort_connectome.resampling import resample_maps_sparse
    from conftest import require_shared

    path = require_shared("atlases", "difumo", "64", "2mm", "maps.nii.gz")
    maps_img = nib.load(path)
    resampled, weights = resample_maps_sparse(path, ADHD_SHAPE, ADHD_AFFINE)
    dense = resample_maps(np.asanyarray(maps_img.dataobj), maps_img.affine, ADHD_SHAPE,
                          ADHD_AFFINE)
    assert dense.dtype == resampled.dtype == np.float32
    np.testing.assert_array_equal(resampled.toarray(), dense.reshape(-1, 64, order="F"))
    assert weights.nnz == 163894  # the maps' own non-zeros (1510-3593 per map)
    projector = MapsProjector().fit(resampled, grid_shape=ADHD_SHAPE)
    rng = np.random.default_rng(6)
    data = (resampled @ rng.standard_normal((64, N_VOLUMES))) * (20 / resampled.data.max())
    brain = np.asarray(resampled.sum(axis=1)).ravel() > 0
    data[brain] += 100 + 0.5 * rng.standard_normal((int(brain.sum()), N_VOLUMES))
    run = write_nifti(tmp_path / "run.nii.gz",
                      data.astype(np.float32).reshape(ADHD_SHAPE + (N_VOLUMES,), order="F"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = img_to_signals_maps(nib.load(run), nib.Nifti1Image(dense, ADHD_AFFINE))[0]
    check(extract_signals_streaming(run, projector), np.asarray(ref))


@pytest.mark.parametrize("cpus, thread", [({0}, False), ({0, 1}, True)])
def test_background_decoding_default_follows_the_cpus(float32_runs, monkeypatch, cpus,
                                                      thread):
    """By default a background thread decodes only when the process may run
    on 2 CPUs or more (e.g. not in a 1-CPU cluster job)."""
    import threading

    monkeypatch.setattr(streaming.os, "sched_getaffinity", lambda pid: cpus, raising=False)
    before = threading.active_count()
    chunks = iter_volume_chunks(float32_runs[".nii.gz"], chunk_volumes=1)
    next(chunks)
    assert threading.active_count() == before + thread
    chunks.close()


# -- several atlases from one read (iter_region_signals) ---------------------------


def _blocky_labels(shape, n_labels, seed):
    """0 background plus 1..n_labels in 3-voxel blocks, on ``shape``."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, n_labels + 1, size=tuple((s + 2) // 3 for s in shape))
    labels = np.kron(coarse, np.ones((3, 3, 3), dtype=int))
    return labels[:shape[0], :shape[1], :shape[2]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_one_read_for_several_atlases_equals_each_alone(projector, bold, dtype):
    """MSDL maps, two parcellations read by the sparse operators (mean, sum)
    and one reduced chunk by chunk (median), from one pass in batches that
    straddle chunks: each equals its own ``transform`` (the parcellations bit
    for bit), and each counts the NaN/inf on its own support."""
    from cohort_connectome.labels import LabelsReducer

    labels_a = _blocky_labels(ADHD_SHAPE, 30, seed=1)
    labels_b = _blocky_labels(ADHD_SHAPE, 7, seed=2)
    labels_b[:, :, :ADHD_SHAPE[2] // 2] = 0  # a half-brain atlas: supports differ
    extractors = [projector,
                  LabelsReducer(list(range(30, 0, -1)), "mean").fit(labels_a),
                  LabelsReducer(list(range(1, 8)), "sum").fit(labels_b),
                  LabelsReducer(list(range(1, 31)), "median").fit(labels_a)]
    data = bold.reshape(-1, bold.shape[3], order="F").T.astype(dtype)  # (t, voxels)
    rng = np.random.default_rng(4)
    if dtype == np.float64:  # values a sum in another order would round differently
        data += rng.standard_normal(data.shape) / 3
    if dtype != np.int16:
        bad = rng.random(data.shape) < 0.002
        data[bad] = rng.choice([np.nan, np.inf, -np.inf], size=int(bad.sum()))
    before = data.copy()
    alone_counts = [{"non_finite": 0} for _ in extractors]
    alone = [np.concatenate([e.transform(data[i:i + 7], counts=c)
                             for i in range(0, len(data), 7)])
             for e, c in zip(extractors, alone_counts)]
    counts = [{"non_finite": 0} for _ in extractors]
    shared = [np.full_like(a, -1.0) for a in alone]
    chunks = (data[i:i + 7] for i in range(0, len(data), 7))
    for i, start, values in streaming.iter_region_signals(chunks, extractors, counts,
                                                          batch_volumes=5):
        shared[i][start:start + len(values)] = values
    np.testing.assert_array_equal(data, before)  # never modified
    assert relative_error(shared[0], alone[0]) <= 1e-13
    for ours, theirs in zip(shared[1:], alone[1:]):
        np.testing.assert_array_equal(ours, theirs)
    assert counts == alone_counts
    if dtype != np.int16:
        assert all(c["non_finite"] > 0 for c in counts)


def test_one_read_needs_one_grid(projector):
    from cohort_connectome.labels import LabelsReducer

    other = LabelsReducer([1, 2]).fit(_blocky_labels((5, 6, 7), 2, seed=0))
    with pytest.raises(ValueError, match="one grid"):
        list(streaming.iter_region_signals([], [projector, other]))
    n_vox = int(np.prod(ADHD_SHAPE))
    with pytest.raises(ValueError, match=f"chunk must have shape \\(n, {n_vox}\\)"):
        list(streaming.iter_region_signals([np.zeros((2, 5))], [projector]))
