"""The cluster profiles without a cluster (a few seconds): the profiles parse and
dry-run, each job's mem_mb and runtime follow the run's size and the attempt
(workflow/rules/resources.smk), and the slurm executor with no SLURM on PATH stops
with one line naming what is missing.

The test on a real SLURM is `make test-slurm` (tests/slurm/run_demo.sh).
"""

import importlib.util
import os
import re

import nibabel as nib
import numpy as np
import pytest

from conftest import snakemake

# SLURM's client and daemon programs: left out of PATH to play "no SLURM here"
SLURM_PROGRAMS = {
    "sbatch", "srun", "squeue", "sinfo", "scancel", "scontrol", "sacct", "sacctmgr",
    "salloc", "sattach", "sbcast", "scrontab", "sdiag", "sprio", "sreport", "sshare",
    "sstat", "strigger", "sview", "seff", "slurmctld", "slurmd", "slurmdbd", "slurmstepd",
}

# find_spec, not import: importing the plugin asks SLURM (scontrol) for its settings
if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
    pytest.skip('the slurm extra is not installed (pip install -e ".[slurm]"; make test-slurm '
                "does)", allow_module_level=True)


@pytest.fixture(scope="module")
def no_slurm_path(tmp_path_factory):
    """A PATH with every program of the current PATH except SLURM's."""
    bindir = tmp_path_factory.mktemp("bin")
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            source = os.path.join(folder, name)
            target = bindir / name
            if (name in SLURM_PROGRAMS or target.exists() or target.is_symlink()
                    or not os.path.isfile(source) or not os.access(source, os.X_OK)):
                continue
            target.symlink_to(source)
    return str(bindir)


@pytest.fixture(scope="module")
def without_slurm(no_slurm_path):
    """conftest.snakemake's options here: PATH without SLURM, no --cores (the
    profiles set the jobs), failures returned (the tests read them)."""
    return {"env": {"PATH": no_slurm_path}, "cores": None, "check": False, "timeout": 120}


def job_resources(output):
    """{(rule, run or grid or ""): {resource: value}} from a dry run's job listing."""
    jobs = {}
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", output):
        head = re.match(r"\s*(?:local)?rule (\w+):", block)
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        if not head or not res:
            continue
        unit = re.search(r"^\s+wildcards: .*?\b(?:run|grid)=([^,\s]+)", block, re.M)
        values = dict(item.split("=", 1) for item in res.group(1).split(", ") if "=" in item)
        jobs[(head.group(1), unit.group(1) if unit else "")] = values
    return jobs


def test_profiles_dry_run_without_slurm(tmp_path, without_slurm):
    """Both profiles parse; a dry run with the slurm executor needs no SLURM."""
    proc = snakemake(tmp_path / "slurm", "--profile", "profiles/slurm", "-n", **without_slurm)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    out = proc.stdout + proc.stderr
    assert re.search(r"^extract_timeseries\s+8$", out, re.M)
    jobs = job_resources(out)
    assert len(jobs) > 8
    # every job of the demo has memory and time for SLURM (defaults or computed)
    assert all("mem_mb" in r and "runtime" in r for (rule, _), r in jobs.items() if rule != "all")
    proc = snakemake(tmp_path / "ws", "--profile", "profiles/workstation", "-n", **without_slurm)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


def _header_only(path, shape, dtype=np.float32, voxel_mm=3.0):
    """A NIfTI holding only its header: enough for the resources (and a dry run)."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_zooms((voxel_mm,) * 3 + (2.0,) * (len(shape) - 3))
    header.set_sform(np.diag([voxel_mm] * 3 + [1.0]), code=1)
    with open(path, "wb") as f:
        header.write_to(f)


def test_resources_follow_run_size_and_attempt(tmp_path, without_slurm):
    """mem_mb and runtime come from the run's header: longer runs get more time
    (and more memory up to extraction's chunk: 29 volumes of this grid), finer
    grids more memory (the atlas's regions cover more voxels); a retry gets twice
    both."""
    data = tmp_path / "data"
    data.mkdir()
    demo_grid = (49, 61, 48)  # the demo's 3 mm grid, float32 as the demo writes it
    runs = {"v20": demo_grid + (20,), "v1200": demo_grid + (1200,),
            "fine": (97, 115, 97, 300)}  # a 1.5 mm-like grid
    for sub, shape in runs.items():
        _header_only(data / f"sub-{sub}_bold.nii", shape, voxel_mm=1.5 if sub == "fine" else 3.0)
    _header_only(data / "maps.nii", (40, 48, 40, 30))
    (data / "labels.tsv").write_text(
        "name\tnetwork\tx\ty\tz\n" + "".join(f"r{i}\tn\t0\t0\t0\n" for i in range(30)))
    (data / "participants.tsv").write_text(  # group: a phenotype, as the demo's
        "participant_id\tfunc\tt_r\tgroup\n"
        + "".join(f"{sub}\tsub-{sub}_bold.nii\t2.0\t{group}\n"
                  for sub, group in zip(runs, ("control", "patient", "control"))))
    (tmp_path / "cohort.yaml").write_text(
        f"cohort: {{source: sheet, sheet: {data / 'participants.tsv'}}}\n"
        f"atlases: {{test: {{probseg: {data / 'maps.nii'}, labels: {data / 'labels.tsv'}}}}}\n")
    args = ("--profile", "profiles/slurm", "--configfile", str(tmp_path / "cohort.yaml"), "-n")

    proc = snakemake(tmp_path / "w", *args, **without_slurm)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    jobs = job_resources(proc.stdout + proc.stderr)

    def res(rule, sub, key):
        return int(jobs[(rule, f"sub-{sub}")][key])

    assert res("extract_timeseries", "v1200", "runtime") > res("extract_timeseries", "v20",
                                                               "runtime")
    for rule in ("extract_timeseries", "clean_timeseries"):
        assert res(rule, "v1200", "mem_mb") > res(rule, "v20", "mem_mb")
    assert res("extract_timeseries", "fine", "mem_mb") > res("extract_timeseries", "v1200",
                                                             "mem_mb")
    # the atlas is resampled once per grid: the finer grid needs more memory
    resample = sorted(int(r["mem_mb"]) for (rule, _), r in jobs.items()
                      if rule == "resample_atlas")
    assert len(resample) == 2 and resample[1] > resample[0]
    # the group rules read files that do not exist yet: the defaults of the model
    assert int(jobs[("aggregate_connectomes", "")]["mem_mb"]) >= 400

    proc = snakemake(tmp_path / "w", *args, "--attempt", "2", **without_slurm)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    retry = job_resources(proc.stdout + proc.stderr)
    for key, first in jobs.items():
        if key[0] in ("resample_atlas", "extract_timeseries", "clean_timeseries",
                      "estimate_connectomes"):
            for name in ("mem_mb", "runtime"):
                assert int(retry[key][name]) == 2 * int(first[name]), (key, name)


def test_slurm_executor_without_slurm_is_one_clear_error(tmp_path, without_slurm):
    """No SLURM on PATH: one error line naming the missing commands, no job submitted."""
    proc = snakemake(tmp_path, "--profile", "profiles/slurm", **without_slurm)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert ("executor slurm: SLURM command(s) not found on PATH: sbatch, squeue, scancel, "
            "sinfo") in out
    assert out.count("WorkflowError") == 1
    assert "Traceback" not in out
    assert "has been submitted" not in out
    assert not (tmp_path / ".snakemake" / "slurm_logs").exists()
    assert not (tmp_path / "results").exists()
