"""Benchmark: the workflow itself on DiFuMo-sized and several atlases (not a test).

Called by ``atlas_scale.py`` (``python benchmarks/atlas_scale.py``, which
``make bench`` runs); on its own::

    python benchmarks/atlas_workflow.py                 # items 1-4, medians of 3
    python benchmarks/atlas_workflow.py --nilearn       # + NiftiMapsMasker once (~5-8 min, ~18 GiB)
    python benchmarks/atlas_workflow.py --max-load 0.7  # wait (up to 20 min) for a quiet machine

Inputs: those of ``atlas_scale.py`` under ``benchmarks/_work_atlas/`` (the
DiFuMo-shaped 1024-map atlas, float32 runs of 100 and 1200 volumes on the
2 mm MNI grid 91x109x91, TR 2 s), plus, built here deterministically when
absent: the DiFuMo-shaped atlas's labels table; a Schaefer-400-shaped
``dseg`` (400 k-means parcels of the brain mask on the run grid, int16,
seed 400); an AAL-shaped ``dseg`` (116 parcels with codes 2001..9170,
big-endian int16, seed 116); the real MSDL atlas from ``../shared/data`` (else
the demo atlas, as ``run.py``).

Every measurement is a whole process: ``snakemake -s <repo>/Snakefile
--directory <workdir> --cores 2 --profile <repo>/profiles/default
--configfile <workdir>/config.yaml <target>`` (wall time, and the peak RSS of
its largest process: ``wait4``'s ``ru_maxrss``, which on Linux is the largest
of the process and its waited-for descendants), each job's own figures from
Snakemake's benchmark files (``<workdir>/benchmarks/<rule>/...``: ``s``, and
``max_rss``, sampled every 0.5 s over the job's process tree), or
``python -c``.

1. Whole workflow, 100-volume run, DiFuMo-shaped maps: the cleaned series
   (resample_atlas + extract_timeseries + clean_timeseries; prepare_atlas is
   not needed for it) from an empty workdir; with ``--nilearn``,
   ``NiftiMapsMasker(maps, detrend=True, standardize="zscore_sample",
   high_pass=0.01, t_r=2).fit_transform(run)`` once, at the end.
2. 1200-volume run, DiFuMo-shaped maps: the extract_timeseries job (its
   atlas already resampled) against decoding the run once (``isal.igzip``,
   read to the end); the size of the grid's atlas file.
3. One read for four atlases (MSDL, DiFuMo-shaped, Schaefer-400-shaped,
   AAL-shaped), 1200-volume run: the extract_timeseries job against the
   MSDL-only one.
4. Labels, 100-volume run: ``NiftiLabelsMasker(schaefer400, strategy="mean",
   resampling_target="data").fit_transform(run)`` against our resample_atlas
   and extract_timeseries jobs (each a process with the ``script:`` preamble,
   as ``run.py``).
"""

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import atlas_scale  # noqa: E402  (a sibling script)
from run import machine  # noqa: E402  (the MSDL benchmark's machine line)

ROOT = atlas_scale.ROOT
WORK = atlas_scale.WORK
PYTHON = atlas_scale.PYTHON
SNAKEMAKE = str(Path(PYTHON).with_name("snakemake"))
SHARED_MSDL = ROOT.parent / "shared" / "data" / "msdl" / "MSDL_rois"
RESULTS = ROOT / "benchmarks" / "results.md"
BEGIN, END = "<!-- begin atlas_workflow.py -->", "<!-- end atlas_workflow.py -->"
CLEAN = {"detrend": True, "standardize": "zscore_sample", "high_pass": 0.01,
         "t_r": atlas_scale.T_R}
GIB = 1024.0  # MiB
TARGET = "results/sub-01/func/sub-01_atlas-{atlas}_timeseries.tsv"
RAW = "work/sub-01/sub-01_atlas-{atlas}_desc-raw_timeseries.tsv"


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------
def _write_table(path, indices, names):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["index", "name"])
        writer.writerows(zip(indices, names))


def kmeans_parcels(n_parcels, seed, iterations=20):
    """Labels 1..n of ``n_parcels`` k-means (Lloyd) parcels of the brain mask's
    voxels on the run grid: compact, contiguous-ish parcels of similar size."""
    from scipy.spatial import cKDTree

    from cohort_connectome.template import brain_mask

    mask = brain_mask(atlas_scale.RUN_SHAPE, atlas_scale.RUN_AFFINE)
    ijk = np.argwhere(mask)
    points = ijk.astype(np.float64)
    rng = np.random.default_rng(seed)
    centres = points[rng.choice(len(points), n_parcels, replace=False)]
    for _ in range(iterations):
        _, assign = cKDTree(centres).query(points)
        counts = np.bincount(assign, minlength=n_parcels)
        for d in range(3):
            sums = np.bincount(assign, weights=points[:, d], minlength=n_parcels)
            centres[:, d] = np.where(counts > 0, sums / np.maximum(counts, 1), centres[:, d])
    _, assign = cKDTree(centres).query(points)
    labels = np.zeros(atlas_scale.RUN_SHAPE, dtype=np.int32)
    labels[tuple(ijk.T)] = assign + 1
    assert np.unique(assign).size == n_parcels
    return labels


def _save_dseg(path, labels, dtype):
    import nibabel as nib

    dtype = np.dtype(dtype)
    hdr = nib.Nifti1Header(endianness=dtype.byteorder if dtype.byteorder in "<>" else None)
    hdr.set_data_dtype(dtype)
    img = nib.Nifti1Image(labels.astype(dtype), atlas_scale.RUN_AFFINE, header=hdr)
    img.set_qform(atlas_scale.RUN_AFFINE, code=1)
    img.set_sform(atlas_scale.RUN_AFFINE, code=1)
    tmp = path.with_name("part-" + path.name)
    nib.save(img, tmp)
    os.replace(tmp, path)
    loaded = nib.load(path)
    assert loaded.get_data_dtype() == dtype, (loaded.get_data_dtype(), dtype)


def msdl_paths():
    """(maps, labels, description) of the real MSDL atlas, else the demo atlas."""
    maps = SHARED_MSDL / "msdl_rois.nii.gz"
    labels = SHARED_MSDL / "msdl_rois_labels.csv"
    if maps.is_file() and labels.is_file():
        return maps, labels, "MSDL (real, 39 maps, 4 mm)"
    import run  # the suite's demo atlas when MSDL is absent

    maps, labels, _ = run.atlas_paths()
    return maps, labels, "demo atlas (30 maps; MSDL absent)"


def build_inputs():
    """The inputs of atlas_scale.py plus the tables and the two dseg atlases."""
    maps, runs = atlas_scale.build_inputs()
    difumo_labels = WORK / "maps_labels.tsv"
    if not difumo_labels.is_file():
        n = atlas_scale.N_MAPS
        _write_table(difumo_labels, range(1, n + 1), [f"component {i}" for i in range(1, n + 1)])
    schaefer = WORK / "schaefer400_dseg.nii.gz"
    schaefer_labels = WORK / "schaefer400_dseg.tsv"
    if not schaefer.is_file():
        print("building", schaefer, flush=True)
        _save_dseg(schaefer, kmeans_parcels(400, seed=400), "<i2")
        _write_table(schaefer_labels, range(1, 401), [f"parcel {i}" for i in range(1, 401)])
    aal = WORK / "aal116_dseg.nii.gz"
    aal_labels = WORK / "aal116_dseg.tsv"
    if not aal.is_file():
        print("building", aal, flush=True)
        rng = np.random.default_rng(116)
        codes = np.sort(np.concatenate([[2001, 9170], rng.choice(np.arange(2002, 9170), 114,
                                                                 replace=False)]))
        parcels = kmeans_parcels(116, seed=116)
        labels = np.zeros(parcels.shape, dtype=np.int32)
        labels[parcels > 0] = codes[parcels[parcels > 0] - 1]
        _save_dseg(aal, labels, ">i2")
        _write_table(aal_labels, codes, [f"region {c}" for c in codes])
    msdl, msdl_labels, msdl_source = msdl_paths()
    atlases = {
        "msdl": {"probseg": str(msdl), "labels": str(msdl_labels)},
        "difumo": {"probseg": str(maps), "labels": str(difumo_labels)},
        "schaefer400": {"dseg": str(schaefer), "labels": str(schaefer_labels)},
        "aal": {"dseg": str(aal), "labels": str(aal_labels)},
    }
    return maps, runs, atlases, msdl_source


# --------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------
def measure_argv(argv, cwd=ROOT, env=None):
    """(wall s, peak RSS MiB of the largest process, CPU s of the tree) of a
    whole command, through atlas_scale's wait4 launcher; fails loudly."""
    argv = [str(a) for a in argv]
    proc = subprocess.run([PYTHON, "-S", "-c", atlas_scale.LAUNCHER, *argv], cwd=cwd,
                          env=env or dict(os.environ), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    fields = proc.stdout.split()[-4:] if proc.stdout.split() else []
    if proc.returncode or len(fields) != 4 or fields[3] != "0":
        raise RuntimeError(f"{' '.join(argv)[:300]} failed:\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-4000:]}")
    return float(fields[0]), int(fields[1]) / 1024, float(fields[2])


def load():
    return os.getloadavg()[0]


def wait_for_load(max_load, max_wait=1200.0):
    """Sleep until the 1-minute load average is below ``max_load`` (at most
    ``max_wait`` s); returns the load when measuring starts."""
    if max_load is None:
        return load()
    start = time.monotonic()
    while load() >= max_load and time.monotonic() - start < max_wait:
        print(f"  load {load():.2f} >= {max_load}: waiting", flush=True)
        time.sleep(30)
    return load()


class Workdir:
    """A workdir with a one-run cohort sheet and a config, run by Snakemake."""

    def __init__(self, name, run, atlases):
        import yaml

        self.path = WORK / "wf" / name
        self.path.mkdir(parents=True, exist_ok=True)
        sheet = self.path / "sheet.tsv"
        sheet.write_text(f"participant_id\tfunc\tt_r\nsub-01\t{run}\t{atlas_scale.T_R}\n")
        config = {
            "cohort": {"source": "sheet", "sheet": str(sheet)},
            "atlases": atlases,
            "clean": CLEAN,
            "connectivity": {"kinds": ["correlation"]},
            "group": {"compare": None},
            "figures": {"qc": False},
        }
        self.config = self.path / "config.yaml"
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))

    def reset(self, keep_atlases=False):
        """Remove the workflow's outputs: all, or the run's (the resampled atlases
        kept, so that only the run's jobs run again)."""
        if keep_atlases:
            for name in ("results/sub-01", "work/sub-01"):
                shutil.rmtree(self.path / name, ignore_errors=True)
            return
        for name in ("results", "work", "logs", "benchmarks", ".snakemake"):
            shutil.rmtree(self.path / name, ignore_errors=True)

    def snakemake(self, target):
        """Run Snakemake for ``target``: (wall s, peak RSS MiB, CPU s)."""
        argv = [SNAKEMAKE, "-s", ROOT / "Snakefile", "--directory", self.path, "--cores", "2",
                "--profile", ROOT / "profiles" / "default", "--configfile", self.config,
                "--quiet", "all", "--", target]
        self.started = time.time()
        return measure_argv(argv, cwd=self.path)

    def jobs(self):
        """{rule: (s, max_rss MiB)} of the jobs of the last run (their benchmark
        files, those written since it started)."""
        found = {}
        for path in sorted((self.path / "benchmarks").rglob("*.tsv")):
            if path.stat().st_mtime < self.started:
                continue
            rule = path.relative_to(self.path / "benchmarks").parts[0]
            with open(path) as f:
                row = next(csv.DictReader(f, delimiter="\t"))
            found.setdefault(rule, []).append((path.stem, float(row["s"]),
                                               float(row["max_rss"])))
        return {rule if len(rows) == 1 else f"{rule} {stem}": (s, rss)
                for rule, rows in found.items() for stem, s, rss in rows}

    def atlas_file(self, atlas):
        found = sorted((self.path / "work" / f"atlas-{atlas}").glob("grid-*_desc-regions.npz"))
        return found[0]


def med(values):
    return statistics.median(values)


# --------------------------------------------------------------------------
# the four items
# --------------------------------------------------------------------------
def item1_whole(runs, atlases, repeats):
    wd = Workdir("difumo-0100", runs[100], {"difumo": atlases["difumo"]})
    target = TARGET.format(atlas="difumo")
    walls, peaks, jobs = [], [], []
    for _ in range(repeats):
        wd.reset()
        wall, peak, _ = wd.snakemake(target)
        walls.append(wall)
        peaks.append(peak)
        jobs.append(wd.jobs())
    rules = sorted(jobs[-1])
    return {"wall": med(walls), "peak": med(peaks), "walls": walls, "peaks": peaks,
            "jobs": {r: (med(j[r][0] for j in jobs), med(j[r][1] for j in jobs))
                     for r in rules},
            "output": wd.path / target}


def item2_extract(runs, atlases, repeats):
    wd = Workdir("difumo-1200", runs[1200], {"difumo": atlases["difumo"]})
    target = RAW.format(atlas="difumo")
    wd.reset()
    first_wall, first_peak, _ = wd.snakemake(target)  # resample_atlas + extract
    first_jobs = wd.jobs()
    extract, rss, whole, decode = [], [], [], []
    for _ in range(repeats):
        wd.reset(keep_atlases=True)
        wall, _, _ = wd.snakemake(target)
        jobs = wd.jobs()
        assert set(jobs) == {"extract_timeseries"}, jobs  # only the extraction reran
        extract.append(jobs["extract_timeseries"][0])
        rss.append(jobs["extract_timeseries"][1])
        whole.append(wall)
        decode.append(atlas_scale.measure(atlas_scale.decode_only(runs[1200]))[0])
    return {"extract": med(extract), "rss": med(rss), "whole": med(whole),
            "decode": med(decode), "extracts": extract, "decodes": decode,
            "npz_mb": wd.atlas_file("difumo").stat().st_size / 1e6,
            "first": (first_wall, first_peak), "first_jobs": first_jobs}


def item3_four(runs, atlases, repeats):
    four = Workdir("four-1200", runs[1200], atlases)
    msdl = Workdir("msdl-1200", runs[1200], {"msdl": atlases["msdl"]})
    for wd, atlas in ((four, "msdl"), (msdl, "msdl")):
        wd.reset()
        wd.snakemake(RAW.format(atlas=atlas))  # the atlases resampled once
    resample = {k: v for k, v in four.jobs().items() if k.startswith("resample_atlas")}
    out = {"four": [], "msdl": [], "four_rss": [], "msdl_rss": []}
    for _ in range(repeats):
        for name, wd in (("four", four), ("msdl", msdl)):  # interleaved
            wd.reset(keep_atlases=True)
            wd.snakemake(RAW.format(atlas="msdl"))
            s, rss = wd.jobs()["extract_timeseries"]
            out[name].append(s)
            out[f"{name}_rss"].append(rss)
    return {k: med(v) for k, v in out.items()} | {"runs": out, "resample": resample,
                                                  "npz_mb": {a: four.atlas_file(a).stat().st_size
                                                             / 1e6 for a in atlases}}


def our_job(call, log):
    """A job process as Snakemake's ``script:`` runs it (as run.py)."""
    return textwrap.dedent(f"""
        import snakemake.script
        from cohort_connectome.jobs.runtime import job_log
        from cohort_connectome.jobs.extraction import resample_atlas, extract_timeseries
        with job_log({str(log)!r}, "bench", "sub-01"):
            {call}
        """)


def item4_labels(runs, atlases, repeats):
    out = WORK / "out" / "labels"
    out.mkdir(parents=True, exist_ok=True)
    atlas = atlases["schaefer400"]
    spec = {"name": "schaefer400", "kind": "dseg", "strategy": "mean", "background": 0,
            "fetch": None}
    npz, ours = out / "schaefer400.npz", out / "ours.tsv"
    grid = f"{atlas_scale.RUN_SHAPE!r}, {atlas_scale.RUN_AFFINE.tolist()!r}"
    resample = our_job(f"resample_atlas({spec!r}, {atlas['dseg']!r}, {atlas['labels']!r}, "
                       f"{str(npz)!r}, {grid})", out / "job.log")
    extract = our_job(f"extract_timeseries({str(runs[100])!r}, ['schaefer400'], [{str(npz)!r}], "
                      f"[{spec!r}], [{atlas['dseg']!r}], [{atlas['labels']!r}], [{str(ours)!r}], "
                      f"[{str(out / 'ours.json')!r}], [{str(out / 'coverage.tsv')!r}])",
                      out / "job.log")
    nilearn = textwrap.dedent(f"""
        import numpy as np
        from nilearn.maskers import NiftiLabelsMasker
        masker = NiftiLabelsMasker({atlas['dseg']!r}, strategy="mean", resampling_target="data")
        signals = masker.fit_transform({str(runs[100])!r})
        np.save({str(out / 'nilearn.npy')!r}, signals)
        """)
    times = {k: [] for k in ("resample", "extract", "nilearn")}
    for _ in range(repeats):
        for name, code in (("resample", resample), ("extract", extract), ("nilearn", nilearn)):
            env = atlas_scale.job_env() if name != "nilearn" else dict(os.environ)
            times[name].append(atlas_scale.measure(code, env=env))
    row = {k: (med(v[0] for v in vals), med(v[1] for v in vals)) for k, vals in times.items()}
    b = np.load(out / "nilearn.npy")
    # ours as written (shortest repr of its float32 values), in nilearn's dtype
    a = np.loadtxt(ours, skiprows=1, delimiter="\t").astype(b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = np.abs(a.astype(np.float64) - b)
    row["max_abs"] = float(diff.max())
    row["max_rel"] = float(diff.max() / np.abs(b).max())
    row["shape"], row["dtype"] = a.shape, str(b.dtype)
    return row


def nilearn_maps(runs, maps, ours_path):
    """NiftiMapsMasker on the 100-volume run, once; with the cleaned series'
    difference to ours."""
    out = WORK / "out" / "nilearn-0100.tsv"
    wall, peak, _ = atlas_scale.measure(atlas_scale.nilearn_masker(runs[100], maps, out),
                                        env=dict(os.environ))
    ours = np.loadtxt(ours_path, skiprows=1, delimiter="\t")
    ref = np.loadtxt(out, delimiter="\t")
    return {"wall": wall, "peak": peak,
            "max_rel": float(np.abs(ours - ref).max() / np.abs(ref).max())}


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
def _ok(value, target):
    return "yes" if value <= target else "**no**"


def report(data):
    r, nilearn = data["results"], data["nilearn"]
    one, two, three, four = r[1], r[2], r[3], r[4]
    ours1 = f"{one['wall']:.1f} s, {one['peak']:.0f} MiB"
    if nilearn:
        ref1 = f"{nilearn['wall']:.0f} s, {nilearn['peak'] / GIB:.1f} GiB (once)"
        t_ratio, m_ratio = one["wall"] / nilearn["wall"], one["peak"] / nilearn["peak"]
        ratio1 = (f"{t_ratio:.3f}x time ({_ok(t_ratio, 0.05)}), {m_ratio:.3f}x memory "
                  f"({_ok(m_ratio, 0.1)}); max rel. diff {nilearn['max_rel']:.1e}")
    else:
        # earlier single measurements of the same call on these inputs (atlas_scale.py)
        ref1 = ("not run here (`--nilearn`); earlier: 460 s, 18.0 GiB (this machine, busy), "
                "319 s, 17.9 GiB (the issue's)")
        ratio1 = (f"vs those: {one['wall'] / 460:.3f}-{one['wall'] / 319:.3f}x time "
                  f"({_ok(one['wall'] / 319, 0.05)}), {one['peak'] / (17.9 * GIB):.3f}x memory "
                  f"({_ok(one['peak'] / (17.9 * GIB), 0.1)})")
    rows = [
        ("1. whole `snakemake` (resample once + extract + clean), 100 volumes, DiFuMo-shaped "
         "1024 maps", ours1, "nilearn `NiftiMapsMasker(...).fit_transform`: " + ref1, ratio1,
         "<= 0.05x time, <= 0.1x memory"),
        ("2. extract_timeseries job, 1200 volumes, DiFuMo-shaped",
         f"{two['extract']:.2f} s, {two['rss']:.0f} MiB",
         f"decode the run once (isal): {two['decode']:.2f} s",
         f"{two['extract'] / two['decode']:.2f}x ({_ok(two['extract'] / two['decode'], 1.5)}), "
         f"{two['rss']:.0f} MiB ({_ok(two['rss'], GIB)}); atlas file {two['npz_mb']:.0f} MB "
         f"({_ok(two['npz_mb'], 300)})", "<= 1.5x, <= 1 GiB; file <= 300 MB"),
        ("3. extract_timeseries job, 1200 volumes, four atlases (MSDL, DiFuMo-shaped, "
         "Schaefer-400-shaped, AAL-shaped)", f"{three['four']:.2f} s, {three['four_rss']:.0f} MiB",
         f"MSDL only: {three['msdl']:.2f} s, {three['msdl_rss']:.0f} MiB",
         f"{three['four'] / three['msdl']:.2f}x ({_ok(three['four'] / three['msdl'], 1.3)})",
         "<= 1.3x"),
        ("4. Schaefer-400-shaped labels, 100 volumes: resample_atlas + extract_timeseries "
         "jobs", f"{four['resample'][0]:.2f} + {four['extract'][0]:.2f} = "
         f"{four['resample'][0] + four['extract'][0]:.2f} s, "
         f"{max(four['resample'][1], four['extract'][1]):.0f} MiB",
         f"nilearn `NiftiLabelsMasker(strategy=\"mean\", resampling_target=\"data\")`: "
         f"{four['nilearn'][0]:.2f} s, {four['nilearn'][1]:.0f} MiB",
         f"{(four['resample'][0] + four['extract'][0]) / four['nilearn'][0]:.2f}x time, "
         f"{max(four['resample'][1], four['extract'][1]) / four['nilearn'][1]:.2f}x memory; "
         + (f"identical {four['dtype']} values" if four["max_abs"] == 0 else
            f"max abs. diff {four['max_abs']:.1e} (rel. {four['max_rel']:.1e})"), "-"),
    ]
    lines = [BEGIN, "", "## Atlas scale: the workflow (benchmarks/atlas_workflow.py)", "",
             "Runs float32 .nii.gz on the 2 mm MNI grid 91x109x91, TR 2 s; DiFuMo-shaped atlas: "
             "1024 float32 maps on 104x123x104 at 2 mm; MSDL: " + data["msdl_source"] + ". "
             "`snakemake --cores 2`; wall of the whole command or of the job (Snakemake's "
             "benchmark file), peak RSS of the largest process (wait4) or the job's max_rss; "
             "medians of the repeats, nilearn's NiftiMapsMasker once.",
             f"Machine: {machine()}.",
             "When (repeats; 1-minute load average at the start and the end, the benchmark's "
             "own work included): " + "; ".join(
                 f"{k} {data['dates'][k]} ({data['repeats'].get(k, 1)}x; "
                 f"{data['loads'][k][0]:.2f} -> {data['loads'][k][1]:.2f})"
                 for k in sorted(data["dates"])) + ".", "",
             "| item | ours | reference | ours / reference (target met?) | target |",
             "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    jobs = ", ".join(f"{k} {s:.2f} s / {m:.0f} MiB" for k, (s, m) in one["jobs"].items())
    lines += ["", f"Item 1 per job (medians): {jobs} (clean_timeseries runs inside the "
              "Snakemake process: its max_rss is that process's). Whole-command walls "
              + ", ".join(f"{w:.1f}" for w in one["walls"]) + " s.",
              f"Item 2: the whole `snakemake` command for the extraction alone took "
              f"{two['whole']:.1f} s; extraction walls " + ", ".join(f"{w:.2f}" for w in
                                                                    two["extracts"])
              + " s, decode " + ", ".join(f"{w:.2f}" for w in two["decodes"]) + " s.",
              "Item 3: extraction walls, four atlases " + ", ".join(
                  f"{w:.2f}" for w in three["runs"]["four"]) + " s, MSDL only "
              + ", ".join(f"{w:.2f}" for w in three["runs"]["msdl"]) + " s; resampled once "
              "per grid: " + ", ".join(f"{k.split('_atlas-')[-1]} {s:.2f} s / {m:.0f} MiB"
                                       for k, (s, m) in three["resample"].items())
              + "; atlas files " + ", ".join(f"{a} {mb:.1f} MB" for a, mb in
                                            three["npz_mb"].items()) + ".",
              f"Item 4: ours vs nilearn on {four['shape'][0]} volumes x {four['shape'][1]} "
              f"regions ({four['dtype']}, nilearn's dtype and ours).", "", END]
    return "\n".join(lines) + "\n"


RAW_RESULTS = WORK / "out" / "atlas_workflow.json"


def save_raw(data):
    """The measured numbers as JSON (``--report-only`` rewrites the section from them)."""
    import json

    RAW_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RAW_RESULTS.write_text(json.dumps(data, indent=1, default=str))


def write_section(text, path=RESULTS):
    """Put this benchmark's section into results.md, replacing an earlier one."""
    old = path.read_text() if path.is_file() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        new = head + text + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + text
    path.write_text(new)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nilearn", action="store_true",
                        help="also NiftiMapsMasker on the 100-volume run, once, at the end "
                             "(~5-8 min, ~18 GiB)")
    parser.add_argument("--max-load", type=float, default=None,
                        help="before each item wait (up to 20 min) for a 1-minute load "
                             "average below this")
    parser.add_argument("--items", default="1,2,3,4",
                        help="items to measure; the others' numbers are taken from the last "
                             "run (_work_atlas/out/atlas_workflow.json) when there is one")
    parser.add_argument("--report-only", action="store_true",
                        help="measure no item (but nilearn with --nilearn): rewrite the "
                             "section from the last run's numbers")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    maps, runs, atlases, msdl_source = build_inputs()
    items = set() if args.report_only else {int(i) for i in args.items.split(",") if i.strip()}
    data = {"results": {}, "loads": {}, "nilearn": None, "dates": {}, "repeats": {}}
    if items != {1, 2, 3, 4} and RAW_RESULTS.is_file():
        import json

        data = json.loads(RAW_RESULTS.read_text())
        data["results"] = {int(k): v for k, v in data["results"].items()}
    steps = {1: lambda: item1_whole(runs, atlases, args.repeats),
             2: lambda: item2_extract(runs, atlases, args.repeats),
             3: lambda: item3_four(runs, atlases, args.repeats),
             4: lambda: item4_labels(runs, atlases, args.repeats)}
    for i in sorted(items):
        start = wait_for_load(args.max_load)
        print(f"item {i} (load {start:.2f}) ...", flush=True)
        data["results"][i] = steps[i]()
        data["loads"][f"item {i}"] = [start, load()]
        data["dates"][f"item {i}"] = time.strftime("%Y-%m-%d %H:%M")
        data["repeats"][f"item {i}"] = args.repeats
        print(data["results"][i], flush=True)
    if args.nilearn and 1 in data["results"]:
        start = wait_for_load(args.max_load)
        print(f"nilearn NiftiMapsMasker (load {start:.2f}) ...", flush=True)
        data["nilearn"] = nilearn_maps(runs, maps, data["results"][1]["output"])
        data["loads"]["nilearn NiftiMapsMasker"] = [start, load()]
        data["dates"]["nilearn NiftiMapsMasker"] = time.strftime("%Y-%m-%d %H:%M")
        print(data["nilearn"], flush=True)
    data["msdl_source"] = msdl_source
    save_raw(data)
    if set(data["results"]) == {1, 2, 3, 4}:
        text = report(data)
        write_section(text, args.output)
        print(text)
    return data["nilearn"]


if __name__ == "__main__":
    main()
