"""Benchmark: a DiFuMo-1024-sized probabilistic atlas (not a test).

    python benchmarks/atlas_scale.py              # build inputs if absent, measure
    python benchmarks/atlas_scale.py --nilearn    # also NiftiMapsMasker once (~5 min, ~18 GiB)
    python benchmarks/atlas_scale.py --repeats 3  # medians of 3 (default 1)
    python benchmarks/atlas_scale.py --no-workflow  # the function-level measures only

After the function-level measures below, runs the workflow itself on these
inputs (``atlas_workflow.py``: Snakemake on the 100- and 1200-volume runs, four
atlases, a Schaefer-400-shaped parcellation against ``NiftiLabelsMasker``) and
writes its section of ``benchmarks/results.md``; ``--nilearn`` is then run
there, once, and used for both.

Builds, deterministically (fixed seeds), under ``benchmarks/_work_atlas/``
(git-ignored; reused when present):

* ``maps.nii.gz``: 1024 smooth positive components on DiFuMo's 2 mm grid
  (104 x 123 x 104, affine diag(2, 2, 2), origin (-96, -132, -78)), float32,
  each covering 1500-3600 voxels of a brain-shaped mask with values up to
  about 0.00126 (the real DiFuMo-64 has maps of 1510-3593 voxels, values
  0-0.00126); 5.4 GB decompressed, written volume by volume through a gzip
  stream (never held whole);
* ``run-0100.nii.gz``, ``run-1200.nii.gz``: float32 runs on the 2 mm MNI
  grid (91 x 109 x 91, affine diag(-2, 2, 2), origin (90, -126, -72)), TR 2 s:
  a smooth-ish random signal inside a brain mask (a baseline, 16 smooth
  spatial patterns with random-walk time courses, white noise, values on a
  0.01 step), zeros outside.

Measures whole processes (wall time, and the child's peak resident set from
``wait4``'s ``ru_maxrss`` through a small launcher):

(a) resample once: ``resample_maps_sparse`` (the atlas file streamed) +
    ``MapsProjector.fit`` + ``save``; the artefact's size on disk;
(b) extraction of the 1200-volume run (projector load, stream, project,
    write the TSV) against merely decoding the run once with the same gzip
    decoder (``isal.igzip``, read to the end, discarded);
(c) the whole "resample once + extract + clean" of the 100-volume run
    (detrend, zscore_sample, high-pass 0.01 Hz, TR 2 s) and, with
    ``--nilearn``, ``NiftiMapsMasker(maps, detrend=True,
    standardize="zscore_sample", high_pass=0.01, t_r=2).fit_transform(run)``
    once, alone, at the end.

Prints a small table.  Measured on 2 cores (medians of 3, idle machine):
resample once 3.6 s, 249 MiB peak, projector 43 MB on disk; decoding the
1200-volume run 3.6 s, extracting it 4.35 s with background decoding (1.21x)
and 5.9 s decoding in line (1.65x), 210 MiB peak; resample + extract + clean
of the 100-volume run 5.3 s, 249 MiB peak.  nilearn (once, on a busy
machine): 460 s, 18.0 GiB peak, i.e. ours 0.016x its time and 0.014x its
memory; cleaned signals differ by 1.1e-4 relative (nilearn's float32 lstsq:
our raw signals equal float64 gelsd to 2.6e-13 on this atlas and grid).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work_atlas"
PYTHON = sys.executable

ATLAS_SHAPE = (104, 123, 104)
ATLAS_AFFINE = np.array([[2.0, 0, 0, -96], [0, 2.0, 0, -132], [0, 0, 2.0, -78], [0, 0, 0, 1]])
N_MAPS = 1024
RUN_SHAPE = (91, 109, 91)
RUN_AFFINE = np.array([[-2.0, 0, 0, 90], [0, 2.0, 0, -126], [0, 0, 2.0, -72], [0, 0, 0, 1]])
T_R = 2.0
CLEAN = dict(detrend=True, standardize="zscore_sample", high_pass=0.01, t_r=T_R)


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------
def _header(shape, affine, dtype=np.float32, t_r=None):
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(dtype)
    hdr.set_qform(affine, code=1)
    hdr.set_sform(affine, code=1)
    hdr.set_xyzt_units("mm", "sec")
    if t_r is not None:
        hdr["pixdim"][4] = t_r
    hdr.set_data_offset(352)
    return hdr


def _gzip_writer(path):
    from isal import igzip

    return igzip.open(path, "wb", compresslevel=1)


def _write_4d(path, shape, affine, volumes, t_r=None):
    """Write a float32 4D NIfTI from an iterator of 3D volumes, through a gzip
    stream (atomically: a temporary name renamed at the end)."""
    tmp = path.with_name(path.name + ".part")
    with _gzip_writer(tmp) as f:
        _header(shape, affine, t_r=t_r).write_to(f)  # 348 bytes + 4-byte extension flag
        n = 0
        for volume in volumes:
            f.write(np.asarray(volume, dtype="<f4").tobytes(order="F"))
            n += 1
    assert n == shape[3], (n, shape)
    os.replace(tmp, path)


def atlas_components(seed=0):
    """Yield the 1024 maps (3D float32) of the DiFuMo-shaped atlas."""
    from cohort_connectome.template import brain_mask

    rng = np.random.default_rng(seed)
    mask = brain_mask(ATLAS_SHAPE, ATLAS_AFFINE)
    inside = np.argwhere(mask)
    half = 14  # local box of 29^3 voxels around each centre
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    for _ in range(N_MAPS):
        centre = inside[rng.integers(len(inside))]
        sigma = rng.uniform(2.5, 5.0, size=3)
        axes, _ = np.linalg.qr(rng.standard_normal((3, 3)))  # a random orientation
        lo = np.maximum(centre - half, 0)
        hi = np.minimum(centre + half + 1, ATLAS_SHAPE)
        grid = np.stack(np.meshgrid(*(offsets[l - c + half:h - c + half]
                                      for l, h, c in zip(lo, hi, centre)),
                                    indexing="ij"), axis=-1)
        d = (grid @ axes) / sigma
        g = np.exp(-0.5 * np.einsum("...i,...i->...", d, d))
        g *= mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        count = int(rng.integers(1500, 3601))
        flat = np.sort(g.ravel())[::-1]
        count = min(count, int(np.count_nonzero(flat)))
        thresh = flat[count] if count < flat.size else 0.0
        local = np.where(g > thresh, g - thresh, 0.0)
        local *= rng.uniform(0.0005, 0.00126) / local.max()
        volume = np.zeros(ATLAS_SHAPE, dtype=np.float32)
        volume[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = local
        yield volume


def run_volumes(n_volumes, seed):
    """Yield the volumes of a float32 run on the 2 mm MNI grid."""
    from scipy import ndimage

    from cohort_connectome.template import brain_mask

    rng = np.random.default_rng(seed)
    mask = brain_mask(RUN_SHAPE, RUN_AFFINE).astype(np.float32)
    n_patterns = 16
    patterns = np.empty((int(np.prod(RUN_SHAPE)), n_patterns), dtype=np.float32)
    for j in range(n_patterns):
        field = ndimage.gaussian_filter(rng.standard_normal(RUN_SHAPE), sigma=4)
        patterns[:, j] = (field / field.std() * mask).ravel()
    courses = rng.standard_normal((n_volumes, n_patterns)).cumsum(axis=0) * 0.5
    baseline = 800.0 * mask
    for t in range(n_volumes):
        volume = (patterns @ courses[t].astype(np.float32)).reshape(RUN_SHAPE) * 10
        volume += baseline
        volume += 5 * rng.standard_normal(RUN_SHAPE, dtype=np.float32) * mask
        yield np.round(volume, 2).astype(np.float32)


def build_inputs():
    WORK.mkdir(parents=True, exist_ok=True)
    maps = WORK / "maps.nii.gz"
    if not maps.is_file():
        print("building", maps, flush=True)
        _write_4d(maps, ATLAS_SHAPE + (N_MAPS,), ATLAS_AFFINE, atlas_components())
    runs = {}
    for n in (100, 1200):
        path = WORK / f"run-{n:04d}.nii.gz"
        if not path.is_file():
            print("building", path, flush=True)
            _write_4d(path, RUN_SHAPE + (n,), RUN_AFFINE, run_volumes(n, seed=n), t_r=T_R)
        runs[n] = path
    return maps, runs


# --------------------------------------------------------------------------
# measuring whole processes
# --------------------------------------------------------------------------
# A small launcher forks the measured command, so that the child's peak RSS
# (ru_maxrss) starts from the launcher's ~10 MiB, not from this process's.
LAUNCHER = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss, usage.ru_utime + usage.ru_stime,
      os.waitstatus_to_exitcode(status))
"""


def job_env():
    """One BLAS thread per job (as the Snakefile sets), the package importable."""
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))


def measure(code, env=None):
    """(wall s, peak RSS MiB, CPU s) of ``python -c code``; fails loudly."""
    argv = [PYTHON, "-c", textwrap.dedent(code)]
    proc = subprocess.run([PYTHON, "-S", "-c", LAUNCHER, *argv], cwd=ROOT,
                          env=env or job_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    fields = proc.stdout.split()[-4:] if proc.stdout.split() else []
    if proc.returncode or len(fields) != 4 or fields[3] != "0":
        raise RuntimeError(f"{code[:300]} failed:\n{proc.stderr[-3000:]}")
    return float(fields[0]), int(fields[1]) / 1024, float(fields[2])


def decode_only(run):
    return f"""
        from isal import igzip
        buffer = bytearray(16 * 2**20)
        with igzip.open({str(run)!r}, "rb") as f:
            while f.readinto(buffer):
                pass
        """


def resample_once(maps, projector):
    return f"""
        from cohort_connectome.resampling import resample_maps_sparse
        from cohort_connectome.streaming import MapsProjector
        shape, affine = {RUN_SHAPE!r}, {RUN_AFFINE.tolist()!r}
        resampled, weights = resample_maps_sparse({str(maps)!r}, shape, affine)
        names = [f"component {{i + 1}}" for i in range({N_MAPS})]
        MapsProjector().fit(resampled, grid_shape=shape).save({str(projector)!r}, names=names)
        """


def extract(run, projector, output, background=None):
    return f"""
        from cohort_connectome import io
        from cohort_connectome.streaming import MapsProjector, extract_signals_streaming
        projector = MapsProjector.load({str(projector)!r})
        signals = extract_signals_streaming({str(run)!r}, projector, background={background!r})
        io.write_timeseries(signals, projector.names_, {str(output)!r})
        """


def clean(raw, output):
    return f"""
        from cohort_connectome import io
        from cohort_connectome.signal import clean_run_signals
        signals, names = io.read_timeseries({str(raw)!r})
        cleaned, _ = clean_run_signals(signals, **{CLEAN!r})
        io.write_timeseries(cleaned, names, {str(output)!r})
        """


def nilearn_masker(run, maps, output):
    return f"""
        import numpy as np
        from nilearn.maskers import NiftiMapsMasker
        masker = NiftiMapsMasker({str(maps)!r}, detrend=True, standardize="zscore_sample",
                                 high_pass=0.01, t_r={T_R})
        signals = masker.fit_transform({str(run)!r})
        np.savetxt({str(output)!r}, signals, delimiter="\\t")
        """


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="medians of N runs")
    parser.add_argument("--nilearn", action="store_true",
                        help="also NiftiMapsMasker on the 100-volume run, once, at the end")
    parser.add_argument("--no-workflow", action="store_true",
                        help="skip atlas_workflow.py (the workflow on these inputs)")
    parser.add_argument("--max-load", type=float, default=None,
                        help="atlas_workflow.py: before each item wait (up to 20 min) for a "
                             "1-minute load average below this")
    args = parser.parse_args(argv)
    maps, runs = build_inputs()
    if args.max_load is not None:
        import atlas_workflow

        atlas_workflow.wait_for_load(args.max_load)
    out = WORK / "out"
    out.mkdir(exist_ok=True)
    projector = out / "projector.npz"
    measure(resample_once(maps, projector))  # warm the page cache
    steps = {
        "resample once (sparse + fit + save)": resample_once(maps, projector),
        "decode the 1200-volume run (isal, read to the end)": decode_only(runs[1200]),
        "extract 1200 volumes (background decode)": extract(runs[1200], projector,
                                                            out / "raw-1200.tsv", True),
        "extract 1200 volumes (decode in line)": extract(runs[1200], projector,
                                                         out / "raw-1200-inline.tsv", False),
        "extract 100 volumes": extract(runs[100], projector, out / "raw-0100.tsv"),
        "clean 100 volumes": clean(out / "raw-0100.tsv", out / "clean-0100.tsv"),
    }
    results = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, code in steps.items():  # interleaved: load hits all alike
            results[name].append(measure(code))
    rows = {name: tuple(statistics.median(r[i] for r in values) for i in range(3))
            for name, values in results.items()}
    size_mb = projector.stat().st_size / 1e6
    print(f"\natlas: {N_MAPS} maps {ATLAS_SHAPE}, {maps.stat().st_size / 1e6:.0f} MB gzipped "
          f"({N_MAPS * np.prod(ATLAS_SHAPE) * 4 / 1e9:.1f} GB decompressed); runs on "
          f"{RUN_SHAPE}; median of {args.repeats}; projector {size_mb:.1f} MB on disk\n")
    print(f"| step | wall (s) | CPU (s) | peak RSS (MiB) |\n|---|---:|---:|---:|")
    for name, (wall, peak, cpu) in rows.items():
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {peak:.0f} |")
    decode = rows["decode the 1200-volume run (isal, read to the end)"][0]
    for mode in ("background decode", "decode in line"):
        wall = rows[f"extract 1200 volumes ({mode})"][0]
        print(f"\nextract 1200 volumes ({mode}) / decode only: {wall / decode:.2f}x")
    total = sum(rows[k][0] for k in ("resample once (sparse + fit + save)",
                                     "extract 100 volumes", "clean 100 volumes"))
    peak = max(rows[k][1] for k in ("resample once (sparse + fit + save)",
                                    "extract 100 volumes", "clean 100 volumes"))
    print(f"resample once + extract + clean, 100 volumes: {total:.2f} s, peak {peak:.0f} MiB")
    nilearn = None
    if not args.no_workflow:
        import atlas_workflow

        wf_argv = ["--repeats", str(args.repeats)] + (["--nilearn"] if args.nilearn else [])
        if args.max_load is not None:
            wf_argv += ["--max-load", str(args.max_load)]
        nilearn = atlas_workflow.main(wf_argv)
        if nilearn:
            n_wall, n_peak = nilearn["wall"], nilearn["peak"]
    elif args.nilearn:
        n_wall, n_peak, _ = measure(nilearn_masker(runs[100], maps, out / "nilearn-0100.tsv"),
                                    env=dict(os.environ))
        nilearn = True
    if nilearn:
        print(f"nilearn NiftiMapsMasker, 100 volumes: {n_wall:.1f} s, peak {n_peak:.0f} MiB; "
              f"ours {total / n_wall:.3f}x its time, {peak / n_peak:.3f}x its memory")
        ours = np.loadtxt(out / "clean-0100.tsv", skiprows=1, delimiter="\t")
        ref = np.loadtxt(out / "nilearn-0100.tsv", delimiter="\t")
        err = np.abs(ours - ref).max() / np.abs(ref).max()
        print(f"ours vs nilearn (cleaned signals): max relative error {err:.2e}")


if __name__ == "__main__":
    main()
