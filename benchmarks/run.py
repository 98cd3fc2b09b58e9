"""Benchmark suite: ours vs nilearn vs a bare nibabel load (issue 5).

    python benchmarks/run.py                 # everything (about 25 min on 2 cores)
    python benchmarks/run.py --runs 176      # one run length only, no cohort
    python benchmarks/run.py --cohort 0      # run lengths only
    python benchmarks/run.py --runs '' --baseline ../before   # the cohort, this
        # checkout interleaved with another one (git worktree add ../before <commit>)

Builds its inputs under ``benchmarks/_work/`` (git-ignored; reused when
present): the real MSDL atlas from ``../shared/data/msdl/`` when it is there,
else the demo atlas; ADHD-shaped runs (61x73x61, 3 mm, float32, gzipped,
TR 2 s) of 100, 176 and 1200 volumes with six motion confounds; and a
40-subject cohort of 176-volume runs.

Every measurement is a whole process (``python -c ...`` or ``snakemake``),
timed with its peak resident memory (``wait4``'s ``ru_maxrss`` of the child,
the largest of a job's processes for a group of jobs), the median of
``--repeats`` runs, each tool's runs interleaved so that machine load hits
all alike. Settings everywhere: detrend, band-pass 0.01-0.1 Hz, six
confounds, zscore_sample, TR 2 s.

* ``nibabel``: ``nib.load(run).get_fdata(dtype=np.float32)``.
* ``nilearn``: ``NiftiMapsMasker(maps, ...).fit_transform(run, confounds)``
  (it resamples the maps, extracts and cleans), then writes the signals.
* ``ours``: the per-run jobs as Snakemake runs them on a cluster --
  ``extract_timeseries`` and ``clean_timeseries``, each a process that
  imports ``snakemake.script`` (the preamble of a ``script:`` job) and calls
  the job function (an upper bound: on a workstation cleaning runs inside
  the Snakemake process, see the README). The atlas
  resampling runs once per grid and is counted in the cohort figure, not
  here (it is shown on its own line).
* cohort: ``snakemake --cores 2`` on a sheet of 40 runs (estimator
  ledoit_wolf, kinds correlation and partial correlation, group tables and
  figures), from empty outputs, against a nilearn script (joblib, 2 workers:
  masker per subject, ``ConnectivityMeasure`` per kind, group-mean figure
  per kind).

Writes ``benchmarks/results.md`` (a markdown table and the machine) and
prints it.
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_MSDL = ROOT.parent / "shared" / "data" / "msdl" / "MSDL_rois"
WORK = ROOT / "benchmarks" / "_work"
PYTHON = sys.executable
SNAKEMAKE = str(Path(PYTHON).with_name("snakemake"))

SHAPE = (61, 73, 61)
AFFINE = np.array([[-3.0, 0, 0, 90], [0, 3.0, 0, -126], [0, 0, 3.0, -72], [0, 0, 0, 1]])
T_R = 2.0
MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
CLEAN = {"detrend": True, "standardize": "zscore_sample", "standardize_confounds": True,
         "low_pass": 0.1, "high_pass": 0.01, "t_r": T_R, "strategy": None,
         "confounds": MOTION}
KINDS = ["correlation", "partialcorrelation"]
KEEP = "<!-- begin atlas_workflow.py -->"  # results.md from here on: atlas_workflow.py's


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------
def atlas_paths():
    """(maps, labels, source) of the benchmark atlas: real MSDL when present."""
    maps = SHARED_MSDL / "msdl_rois.nii.gz"
    labels = SHARED_MSDL / "msdl_rois_labels.csv"
    if maps.is_file() and labels.is_file():
        return maps, labels, "MSDL (real, 39 maps, 4 mm)"
    out = WORK / "atlas"
    maps, labels = out / "demo_maps.nii.gz", out / "demo_labels.tsv"
    if not maps.is_file():
        from cohort_connectome import demo, io
        import nibabel as nib

        out.mkdir(parents=True, exist_ok=True)
        data = demo.evaluate_maps(demo.ATLAS_SHAPE, demo.ATLAS_AFFINE)
        io.save_nifti(nib.Nifti1Image(data, demo.ATLAS_AFFINE), maps)
        io.write_table(demo.demo_labels(), labels)
    return maps, labels, "demo atlas (MSDL absent)"


def build_run(path, n_volumes, maps_path, seed):
    """An ADHD-shaped float32 run: atlas-shaped region signals, a baseline
    inside a brain mask, drifts, six motion confounds and noise; values kept
    to a 0.01 step so that gzip compresses it about as it does real data."""
    import nibabel as nib

    from cohort_connectome import io
    from cohort_connectome.resampling import resample_maps
    from cohort_connectome.template import brain_mask

    if path.is_file():
        return
    rng = np.random.default_rng(seed)
    maps_img = nib.load(maps_path)
    maps = resample_maps(np.asanyarray(maps_img.dataobj), maps_img.affine, SHAPE, AFFINE)
    mask = brain_mask(SHAPE, AFFINE)
    n_maps = maps.shape[3]
    signals = rng.standard_normal((n_volumes, n_maps)).cumsum(axis=0) * 0.2
    motion = rng.standard_normal((n_volumes, 6)).cumsum(axis=0) * 0.05
    baseline = np.where(mask, 800.0, 0.0).astype(np.float32)
    data = np.empty(SHAPE + (n_volumes,), dtype=np.float32)
    flat_maps = maps.reshape(-1, n_maps).astype(np.float32)
    for t in range(n_volumes):
        volume = flat_maps @ signals[t].astype(np.float32)
        volume = volume.reshape(SHAPE) * 20 + baseline * (1 + 0.001 * t / n_volumes)
        volume += 5 * rng.standard_normal(SHAPE, dtype=np.float32) * mask
        volume += 3 * motion[t, 0] * mask
        data[..., t] = np.round(volume, 2)
    img = nib.Nifti1Image(data, AFFINE)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = T_R
    path.parent.mkdir(parents=True, exist_ok=True)
    io.save_nifti(img, path)
    import pandas as pd

    io.write_table(pd.DataFrame(motion, columns=MOTION), confounds_path(path))


def confounds_path(run_path):
    return run_path.with_name(run_path.name.replace("_bold.nii.gz", "_confounds.tsv"))


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
print(time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def measure(argv, cwd=None, env=None):
    """Wall time (s) and peak RSS (MiB) of a whole process; fails loudly."""
    argv = [str(a) for a in argv]
    proc = subprocess.run([PYTHON, "-S", "-c", LAUNCHER, shutil.which(argv[0]) or argv[0],
                           *argv[1:]], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    fields = proc.stdout.split()[-3:] if proc.stdout.split() else []
    if proc.returncode or len(fields) != 3 or fields[2] != "0":
        raise RuntimeError(f"{' '.join(argv)[:200]} failed:\n{proc.stderr[-3000:]}")
    return float(fields[0]), int(fields[1]) / 1024


def python_c(code):
    return [PYTHON, "-c", textwrap.dedent(code)]


def nibabel_load(run):
    return python_c(f"""
        import nibabel as nib, numpy as np
        data = nib.load({str(run)!r}).get_fdata(dtype=np.float32)
        """)


def nilearn_masker(run, maps, out):
    return python_c(f"""
        import numpy as np, pandas as pd
        from nilearn.maskers import NiftiMapsMasker
        masker = NiftiMapsMasker({str(maps)!r}, detrend=True, standardize="zscore_sample",
                                 low_pass=0.1, high_pass=0.01, t_r={T_R})
        confounds = pd.read_csv({str(confounds_path(run))!r}, sep="\\t").to_numpy()
        signals = masker.fit_transform({str(run)!r}, confounds=confounds)
        np.savetxt({str(out)!r}, signals, delimiter="\\t")
        """)


def job_env():
    """The environment of a job: what the Snakefile sets (one BLAS thread per
    job) and the package importable."""
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                MKL_NUM_THREADS="1", VECLIB_MAXIMUM_THREADS="1", NUMEXPR_NUM_THREADS="1",
                PYTHONPATH=str(ROOT))


def our_job(module, call):
    """A job process as snakemake's ``script:`` runs it: its preamble imports
    snakemake.script, then the adapter calls one job function in job_log."""
    return python_c(f"""
        import snakemake.script
        from cohort_connectome.jobs.runtime import job_log
        from cohort_connectome.jobs.{module} import {call.split("(")[0]}
        with job_log({str(WORK / 'job.log')!r}, "bench", "sub-bench"):
            {call}
        """)


# The atlas as the workflow's params give it to the jobs (atlas_params in common.smk).
SPEC = {"name": "msdl", "kind": "probseg", "strategy": "mean", "background": 0, "fetch": None}


def our_jobs(run, maps, labels, tmp):
    regions = tmp / "regions.npz"
    raw, raw_json = tmp / "raw.tsv", tmp / "raw.json"
    grid = f"{SHAPE!r}, {AFFINE.tolist()!r}"
    return {
        "resample": our_job("extraction", f"resample_atlas({SPEC!r}, {str(maps)!r}, "
                            f"{str(labels)!r}, {str(regions)!r}, {grid})"),
        "extract": our_job("extraction", f"extract_timeseries({str(run)!r}, ['msdl'], "
                           f"[{str(regions)!r}], [{SPEC!r}], [{str(maps)!r}], "
                           f"[{str(labels)!r}], [{str(raw)!r}], [{str(raw_json)!r}], "
                           f"[{str(tmp / 'coverage.tsv')!r}])"),
        "clean": our_job("subject", f"clean_timeseries({str(raw)!r}, {str(raw_json)!r}, "
                         f"{str(confounds_path(run))!r}, {str(tmp / 'ts.tsv')!r}, "
                         f"{str(tmp / 'ts.json')!r}, {str(tmp / 'qc.tsv')!r}, "
                         f"{dict(CLEAN)!r})"),
    }


def median(values):
    return statistics.median(values)


def bench_run(n_volumes, maps, labels, repeats):
    run = WORK / "runs" / f"sub-{n_volumes:04d}_bold.nii.gz"
    build_run(run, n_volumes, maps, seed=n_volumes)
    tmp = WORK / "tmp" / f"n{n_volumes}"
    tmp.mkdir(parents=True, exist_ok=True)
    jobs = our_jobs(run, maps, labels, tmp)
    measure(jobs["resample"], cwd=ROOT, env=job_env())  # once per grid; timed below too
    times = {k: [] for k in ("nibabel", "nilearn", "resample", "extract", "clean")}
    peaks = {k: [] for k in times}
    for _ in range(repeats):
        for name, argv in (("nibabel", nibabel_load(run)),
                           ("nilearn", nilearn_masker(run, maps, tmp / "nilearn.tsv")),
                           ("resample", jobs["resample"]), ("extract", jobs["extract"]),
                           ("clean", jobs["clean"])):
            env = None if name in ("nibabel", "nilearn") else job_env()
            wall, peak = measure(argv, cwd=ROOT, env=env)
            times[name].append(wall)
            peaks[name].append(peak)
    row = {k: (median(times[k]), median(peaks[k])) for k in times}
    ours = [row["extract"][0] + row["clean"][0],
            max(row["extract"][1], row["clean"][1])]
    row["ours"] = tuple(ours)
    ours_ref = np.loadtxt(tmp / "ts.tsv", skiprows=1, delimiter="\t")
    nilearn_ref = np.loadtxt(tmp / "nilearn.tsv", delimiter="\t")
    row["parity"] = float(np.abs(ours_ref - nilearn_ref).max() / np.abs(nilearn_ref).max())
    row["size_mib"] = run.stat().st_size / 2**20
    return row


# --------------------------------------------------------------------------
# the cohort
# --------------------------------------------------------------------------
def build_cohort(n_subjects, maps, n_volumes=176):
    cohort = WORK / "cohort"
    rows = []
    for i in range(n_subjects):
        pid = f"sub-{i + 1:02d}"
        run = cohort / "data" / f"{pid}_bold.nii.gz"
        build_run(run, n_volumes, maps, seed=1000 + i)
        rows.append({"participant_id": pid, "func": str(run),
                     "confounds": str(confounds_path(run)), "t_r": T_R,
                     "group": ["control", "patient"][i % 2]})
    import pandas as pd

    sheet = cohort / "sheet.tsv"
    pd.DataFrame(rows).to_csv(sheet, sep="\t", index=False)
    return cohort, sheet, rows


def cohort_config(cohort, sheet, maps, labels):
    import yaml

    config = {
        "cohort": {"source": "sheet", "sheet": str(sheet)},
        "atlases": {"msdl": {"probseg": str(maps), "labels": str(labels)}},
        "clean": CLEAN,
        "connectivity": {"kinds": KINDS, "estimator": "ledoit_wolf"},
        # what the nilearn script makes: no per-run QC figures, no group comparison
        "figures": {"subjects": False, "qc": False},
        "group": {"compare": None},
    }
    path = cohort / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def nilearn_cohort_script(rows, maps, out):
    return python_c(f"""
        import numpy as np, pandas as pd
        from joblib import Parallel, delayed
        from nilearn.connectome import ConnectivityMeasure
        from nilearn.maskers import NiftiMapsMasker
        from nilearn import plotting
        rows = {rows!r}

        def signals(row):
            masker = NiftiMapsMasker({str(maps)!r}, detrend=True,
                                     standardize="zscore_sample", low_pass=0.1,
                                     high_pass=0.01, t_r={T_R})
            confounds = pd.read_csv(row["confounds"], sep="\\t").to_numpy()
            return masker.fit_transform(row["func"], confounds=confounds)

        series = Parallel(n_jobs=2)(delayed(signals)(row) for row in rows)
        for kind in ("correlation", "partial correlation"):
            matrices = ConnectivityMeasure(kind=kind).fit_transform(series)
            name = kind.replace(" ", "")
            np.save({str(out)!r} + f"/{{name}}.npy", matrices)
            display = plotting.plot_matrix(matrices.mean(axis=0), vmin=-1, vmax=1)
            display.figure.savefig({str(out)!r} + f"/{{name}}.png")
        """)


def snakemake_cohort(tree, workdir, config):
    """``snakemake --cores 2`` of the workflow in ``tree`` (this checkout, or
    another one given with --baseline) on the cohort."""
    return [SNAKEMAKE, "--snakefile", str(tree / "Snakefile"), "--directory",
            str(workdir), "--configfile", str(config), "--cores", "2", "--quiet",
            "all", "--workflow-profile", str(tree / "profiles" / "default")]


def bench_cohort(n_subjects, maps, labels, repeats, baseline=None):
    cohort, sheet, rows = build_cohort(n_subjects, maps)
    config = cohort_config(cohort, sheet, maps, labels)
    nilearn_out = cohort / "nilearn"
    trees = {"ours": ROOT} | ({"baseline": baseline} if baseline else {})
    times = {name: [] for name in [*trees, "nilearn"]}
    peaks = {name: [] for name in times}
    for _ in range(repeats):
        for name, tree in trees.items():
            workdir = cohort / f"snakemake-{name}"
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True)
            env = dict(os.environ, PYTHONPATH=str(tree))
            wall, peak = measure(snakemake_cohort(tree, workdir, config), cwd=tree, env=env)
            times[name].append(wall)
            peaks[name].append(peak)
        shutil.rmtree(nilearn_out, ignore_errors=True)
        nilearn_out.mkdir(parents=True)
        wall, peak = measure(nilearn_cohort_script(rows, maps, nilearn_out), cwd=ROOT)
        times["nilearn"].append(wall)
        peaks["nilearn"].append(peak)
    n_jobs = sum(1 for _ in (cohort / "snakemake-ours" / "logs").rglob("*.log"))
    return {k: (median(times[k]), median(peaks[k])) for k in times} | {"n_jobs": n_jobs}


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
def describe_tree(tree):
    """``<commit> (<subject>)`` of a checkout, for the report."""
    out = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h"],
                         capture_output=True, text=True)
    return out.stdout.strip() or str(tree)


def machine():
    import nibabel
    import scipy

    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, numpy "
            f"{np.__version__}, scipy {scipy.__version__}, nibabel {nibabel.__version__}")


def report(runs, cohort, atlas, repeats):
    lines = [f"Benchmark of {time.strftime('%Y-%m-%d')}, {repeats} repeats (medians), "
             f"atlas {atlas}.", f"Machine: {machine()}.", ""]
    if runs:
        lines += ["| run (61x73x61, float32 .nii.gz) | nibabel load | nilearn masker | "
                  "ours: extract + clean | ours / nilearn | ours extract / nibabel load | "
                  "resample (once per grid) | max rel. diff vs nilearn |",
                  "|---|---|---|---|---|---|---|---|"]
        for n, row in runs.items():
            nib_t, nib_m = row["nibabel"]
            nil_t, nil_m = row["nilearn"]
            our_t, our_m = row["ours"]
            lines.append(
                f"| {n} volumes ({row['size_mib']:.0f} MiB) | {nib_t:.2f} s, {nib_m:.0f} MiB "
                f"| {nil_t:.2f} s, {nil_m:.0f} MiB | {row['extract'][0]:.2f} + "
                f"{row['clean'][0]:.2f} = {our_t:.2f} s, {our_m:.0f} MiB "
                f"| {our_t / nil_t:.2f}x time, {our_m / nil_m:.2f}x memory "
                f"| {row['extract'][0] / nib_t:.2f}x | {row['resample'][0]:.2f} s, "
                f"{row['resample'][1]:.0f} MiB | {row['parity']:.1e} |")
        if len(runs) > 1:
            lengths = sorted(runs)
            low, high = runs[lengths[0]], runs[lengths[-1]]
            lines += ["", f"Peak memory, {lengths[-1]} vs {lengths[0]} volumes: ours "
                      f"{high['ours'][1] / low['ours'][1]:.2f}x, nilearn "
                      f"{high['nilearn'][1] / low['nilearn'][1]:.2f}x."]
    if cohort:
        n, row = next(iter(cohort.items()))
        lines += ["", "| cohort (176-volume runs, --cores 2 / 2 joblib workers) | ours "
                  "(snakemake, end to end) | nilearn script | ours / nilearn |",
                  "|---|---|---|---|",
                  f"| {n} subjects ({row['n_jobs']} jobs) | {row['ours'][0]:.1f} s | "
                  f"{row['nilearn'][0]:.1f} s | {row['ours'][0] / row['nilearn'][0]:.2f}x |"]
        if "baseline" in row:
            lines.append(f"| same, workflow of {row['baseline_tree']} | "
                         f"{row['baseline'][0]:.1f} s | {row['nilearn'][0]:.1f} s | "
                         f"{row['baseline'][0] / row['nilearn'][0]:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="100,176,1200",
                        help="run lengths in volumes, comma-separated ('' for none)")
    parser.add_argument("--cohort", type=int, default=40, help="subjects (0: no cohort)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cohort-repeats", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results.md")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout of the workflow (e.g. a git worktree of an "
                             "earlier commit): its cohort run is interleaved with ours")
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    maps, labels, atlas = atlas_paths()
    runs = {}
    for n in [int(v) for v in args.runs.split(",") if v.strip()]:
        print(f"run of {n} volumes ...", flush=True)
        runs[n] = bench_run(n, maps, labels, args.repeats)
    cohort = {}
    if args.cohort:
        print(f"cohort of {args.cohort} subjects ...", flush=True)
        cohort[args.cohort] = bench_cohort(args.cohort, maps, labels, args.cohort_repeats,
                                           args.baseline)
        if args.baseline:
            cohort[args.cohort]["baseline_tree"] = describe_tree(args.baseline)
    text = report(runs, cohort, atlas, args.repeats)
    # atlas_workflow.py's section (run by atlas_scale.py) is kept as it is
    old = args.output.read_text() if args.output.is_file() else ""
    if KEEP in old:
        text += "\n" + KEEP + old.split(KEEP, 1)[1]
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
