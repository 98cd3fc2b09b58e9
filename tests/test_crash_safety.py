"""Crash safety (issue 8, item 3): ``kill -9`` of a run, then a rerun, gives the
same bytes as a run that was never interrupted.

Scenario 1 (a node failure or an OOM kill): the demo is started, and once some
runs have their region signals but the group level has not started, the whole
process group (snakemake and its running jobs) is SIGKILLed at once.  The
recovery a user runs is then checked step by step:

* ``snakemake --cores 2 --rerun-incomplete`` alone is refused: a SIGKILLed
  snakemake 9 leaves its lock (``.snakemake/locks``) and does not detect that it
  is stale;
* ``snakemake --unlock``, then ``snakemake --cores 2 --rerun-incomplete``
  completes, and every file under results/, work/ and resources/ is byte-identical
  to the uninterrupted run.

(The workflow profile ``profiles/default`` already sets ``rerun-incomplete``; the
flag is passed explicitly, as a user following the documentation would.)

Scenario 2 (a cheaper one): only the snakemake process is killed while it
recomputes part of a finished tree (``--forcerun estimate_connectomes``); its
orphaned jobs finish writing on their own.  Once they have exited, the same
recovery converges to the uninterrupted bytes again.

Writers are atomic (`cohort_connectome.io.atomic_path`, ``plotting._save_png``):
a temporary ``.<name>.<random>.tmp[<ext>]`` beside the target, renamed onto it.
So every file present right after the kill must already be byte-identical to
the uninterrupted run's, and the only debris a kill can leave is such a
temporary.

Snakemake runs as a subprocess with ``--directory`` in temporary folders, so
the repository is never written to.  Linux only (process groups are read from
/proc).
"""

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, snakemake, snakemake_command, tree_digest

FOLDERS = ("results", "work", "resources")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}

#: Generous: the machine may be shared (the demo takes 40-100 s on 2 cores).
WAIT_TIMEOUT = 600

#: A temporary of an atomic writer: ``.<target name>.<8 mkstemp chars>.tmp[<ext>]``.
TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9.]+)?$")

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(not Path("/proc/self/stat").is_file() or not hasattr(os, "killpg"),
                       reason="needs POSIX process groups and /proc (Linux)"),
]


# --------------------------------------------------------------------------- helpers

def start_snakemake(workdir, log, *args):
    """Start snakemake in a new session (its own process group); output to ``log``."""
    with open(log, "w") as handle:
        return subprocess.Popen(snakemake_command(workdir, *args), cwd=REPO_ROOT, env=ENV,
                                stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)


def live_pids(pgid):
    """Pids of the processes of group ``pgid`` that are still running (not zombies)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = stat[stat.rindex(")") + 2:].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


def wait_for_group_exit(pgid, timeout=WAIT_TIMEOUT):
    deadline = time.monotonic() + timeout
    while (pids := live_pids(pgid)):
        if time.monotonic() > deadline:
            raise AssertionError(f"processes {pids} of group {pgid} still running "
                                 f"after {timeout} s")
        time.sleep(0.2)


def kill_group(proc):
    """SIGKILL the whole process group of ``proc`` (cleanup; idempotent)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_for_group_exit(proc.pid)


def is_temporary(path):
    return TEMPORARY.match(Path(path).name) is not None


def temporaries(root):
    """Relative paths of the atomic writers' temporaries under results/, work/, resources/."""
    found = []
    for folder in FOLDERS:
        base = Path(root) / folder
        if not base.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(base):
            found += [str(Path(dirpath, f).relative_to(root)) for f in files
                      if is_temporary(f)]
    return sorted(found)


def split_temporaries(digests):
    """(outputs, temporaries) of a `tree_digest`."""
    outputs = {k: v for k, v in digests.items() if not is_temporary(k)}
    return outputs, sorted(set(digests) - set(outputs))


def incomplete_markers(root):
    """Outputs snakemake marked incomplete (jobs running when it died)."""
    folder = Path(root) / ".snakemake" / "incomplete"
    if not folder.is_dir():
        return []
    paths = []
    for entry in folder.iterdir():
        if entry.name == "migration_underway":
            continue
        try:
            paths.append(base64.urlsafe_b64decode(entry.name).decode())
        except ValueError:
            paths.append(entry.name)
    return sorted(paths)


def locks(root):
    folder = Path(root) / ".snakemake" / "locks"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def compare_trees(expected, actual):
    """Human-readable differences between two `tree_digest` dicts ([] if identical)."""
    problems = [f"missing: {k}" for k in sorted(set(expected) - set(actual))]
    problems += [f"extra: {k}" for k in sorted(set(actual) - set(expected))]
    problems += [f"differs: {k}" for k in sorted(set(expected) & set(actual))
                 if expected[k] != actual[k]]
    return problems


def wait_until(proc, ready, what, timeout=WAIT_TIMEOUT, interval=0.05):
    """Poll ``ready()`` until it returns true; fail if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended ({proc.returncode}) before {what}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: one uninterrupted run of the default (demo) configuration."""
    workdir = tmp_path_factory.mktemp("uninterrupted")
    started = time.monotonic()
    proc = snakemake(workdir)
    (workdir / "run.log").write_text(proc.stdout + proc.stderr)
    digests = tree_digest(workdir)
    outputs, temps = split_temporaries(digests)
    assert not temps, f"an uninterrupted run left temporaries: {temps}"
    assert sum(k.startswith("results/group/") for k in outputs) > 10
    return {"dir": workdir, "digests": digests, "seconds": time.monotonic() - started}


@pytest.fixture(scope="module")
def killed_group(tmp_path_factory, uninterrupted):
    """Scenario 1: SIGKILL of snakemake and all its jobs mid-run, then the recovery.

    Returns what was observed at each step.
    """
    workdir = tmp_path_factory.mktemp("killed")
    facts = {"dir": workdir}
    signals = workdir / "results"
    group = workdir / "results" / "group"

    def mid_run():
        return (len(list(signals.glob("sub-*/func/*_timeseries.tsv"))) >= 2
                and not (group.is_dir() and any(group.iterdir())))

    proc = start_snakemake(workdir, workdir / "killed_run.log")
    try:
        wait_until(proc, mid_run, "some runs had their region signals")
        # Prefer killing while an atomic writer has a temporary open (a kill in
        # the middle of a write), for up to 10 s; kill anyway after that.
        armed = time.monotonic()
        while time.monotonic() - armed < 10 and proc.poll() is None:
            if temporaries(workdir):
                break
            if group.is_dir() and any(group.iterdir()):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "snakemake ended before it could be killed"
        facts["jobs_at_kill"] = [p for p in live_pids(proc.pid) if p != proc.pid]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        wait_for_group_exit(proc.pid)
    finally:
        if proc.poll() is None or live_pids(proc.pid):
            kill_group(proc)
    facts["returncode"] = proc.returncode
    facts["at_kill"] = tree_digest(workdir)
    facts["temporaries_at_kill"] = temporaries(workdir)
    facts["incomplete"] = incomplete_markers(workdir)
    facts["locks"] = locks(workdir)

    # The rerun a user tries first is refused while the dead run's lock is there.
    started = time.monotonic()
    facts["first_rerun"] = snakemake(workdir, "--rerun-incomplete", check=False)
    facts["after_refused_rerun"] = tree_digest(workdir)
    # The documented recovery: unlock, then rerun the incomplete jobs.
    facts["unlock"] = snakemake(workdir, "--unlock", check=False)
    facts["rerun"] = snakemake(workdir, "--rerun-incomplete", check=False)
    facts["rerun_seconds"] = time.monotonic() - started
    (workdir / "rerun.log").write_text(facts["rerun"].stdout + facts["rerun"].stderr)
    facts["after_rerun"] = tree_digest(workdir)
    facts["temporaries_after_rerun"] = temporaries(workdir)
    print(f"\nuninterrupted {uninterrupted['seconds']:.0f} s; killed with "
          f"{len(facts['jobs_at_kill'])} job(s) running, incomplete {facts['incomplete']}, "
          f"temporaries {facts['temporaries_at_kill']}; recovery {facts['rerun_seconds']:.0f} s; "
          f"temporaries after it {facts['temporaries_after_rerun']}")
    return facts


# --------------------------------------------------------------------------- scenario 1

def test_kill_interrupts_the_demo_mid_run(killed_group, uninterrupted):
    """The SIGKILL really hit a run in progress: jobs were running, the group
    level was never reached, and the dead run left its lock behind."""
    facts = killed_group
    assert facts["returncode"] == -signal.SIGKILL
    assert facts["jobs_at_kill"], "no job was running when snakemake was killed"
    assert facts["incomplete"], "snakemake recorded no job in progress"
    at_kill, _ = split_temporaries(facts["at_kill"])
    reference, _ = split_temporaries(uninterrupted["digests"])
    assert set(at_kill) < set(reference), "the killed run was not missing any output"
    assert not any(k.startswith("results/group/") for k in at_kill)
    assert facts["locks"], "a SIGKILLed snakemake was expected to leave its lock"


def test_every_file_left_by_the_kill_is_complete(killed_group, uninterrupted):
    """Atomic writes: right after the kill, each file that exists under results/,
    work/ and resources/ (temporaries aside) is already byte-identical to the
    uninterrupted run's, including outputs of the jobs that were killed."""
    at_kill, _ = split_temporaries(killed_group["at_kill"])
    reference = uninterrupted["digests"]
    partial = [k for k in at_kill if reference.get(k) != at_kill[k]]
    assert not partial, f"partial or foreign files after the kill: {partial}"
    # Outputs of the killed jobs are either absent or complete; none is half-written.
    for path in killed_group["incomplete"]:
        if path in at_kill:
            assert at_kill[path] == reference[path], path


def test_rerun_is_refused_until_unlock(killed_group):
    """Snakemake 9 keeps the lock of a SIGKILLed run: the first rerun stops before
    any job (changing nothing), ``--unlock`` releases it."""
    first = killed_group["first_rerun"]
    output = first.stdout + first.stderr
    assert first.returncode != 0
    assert "LockException" in output or "cannot be locked" in output, output[-3000:]
    assert killed_group["after_refused_rerun"] == killed_group["at_kill"]
    unlock = killed_group["unlock"]
    assert unlock.returncode == 0, (unlock.stdout + unlock.stderr)[-3000:]


def test_rerun_after_kill_completes(killed_group):
    rerun = killed_group["rerun"]
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-6000:]
    proc = snakemake(killed_group["dir"], "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]


def test_rerun_after_kill_is_byte_identical(killed_group, uninterrupted):
    """Every output under results/, work/ and resources/ has the same bytes as in
    the uninterrupted run (same set of paths, same sha256).  Temporaries left
    by writers killed mid-write are not outputs: they are checked on their own
    in `test_no_temporaries_survive_the_recovery`."""
    assert killed_group["rerun"].returncode == 0
    expected, _ = split_temporaries(uninterrupted["digests"])
    actual, _ = split_temporaries(killed_group["after_rerun"])
    problems = compare_trees(expected, actual)
    assert not problems, "\n".join(problems)


def test_no_temporaries_survive_the_recovery(killed_group):
    """A temporary left by a writer killed mid-write is gone after the recovery."""
    if not killed_group["temporaries_at_kill"]:
        pytest.skip("the kill did not land during a write: no temporary to clean up")
    assert killed_group["rerun"].returncode == 0
    assert killed_group["temporaries_after_rerun"] == [], (
        f"stray temporaries after the rerun: {killed_group['temporaries_after_rerun']}")


# --------------------------------------------------------------------------- scenario 2

def test_kill_of_snakemake_alone_then_rerun_is_byte_identical(tmp_path, uninterrupted):
    """Only the snakemake process dies (its jobs are orphaned and finish on their
    own) while it recomputes part of a finished tree; after the orphans exit,
    ``--unlock`` then ``--rerun-incomplete`` converges to the same bytes."""
    workdir = tmp_path / "orphans"
    shutil.copytree(uninterrupted["dir"], workdir, symlinks=True)   # keeps mtimes
    results = workdir / "results"
    reference = uninterrupted["digests"]
    started = time.time()

    def some_connectomes_recomputed():
        fresh = [p for p in results.glob("sub-*/func/*_connectivity.json")
                 if p.stat().st_mtime > started]
        return len(fresh) >= 2 and incomplete_markers(workdir)

    proc = start_snakemake(workdir, tmp_path / "orphans_run.log",
                           "--forcerun", "estimate_connectomes")
    try:
        wait_until(proc, some_connectomes_recomputed, "two connectomes were recomputed")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        orphans = live_pids(proc.pid)
        wait_for_group_exit(proc.pid)          # the orphaned jobs finish writing
    finally:
        if proc.poll() is None or live_pids(proc.pid):
            kill_group(proc)
    assert proc.returncode == -signal.SIGKILL
    assert incomplete_markers(workdir), "no job was in progress when snakemake died"
    # estimate_connectomes runs inside the snakemake process (profiles/default):
    # killed with it, possibly mid-write as in scenario 1, it may leave a temporary of
    # its outputs, which the recovery must remove (the comparison below); an
    # orphaned job process that finished leaves none
    left = [t for t in temporaries(workdir)
            if not re.search(r"_(meas-[a-z]+_relmat\.tsv|connectivity\.json)\.", t)]
    assert left == [], "an orphaned job that finished left a temporary"

    refused = snakemake(workdir, "--rerun-incomplete", check=False)
    assert refused.returncode != 0 and "cannot be locked" in refused.stdout + refused.stderr
    snakemake(workdir, "--unlock")
    rerun = snakemake(workdir, "--rerun-incomplete")
    (tmp_path / "orphans_rerun.log").write_text(rerun.stdout + rerun.stderr)
    print(f"\nscenario 2: {time.time() - started:.0f} s, orphaned jobs {orphans}")
    problems = compare_trees(reference, tree_digest(workdir))
    assert not problems, f"orphans {orphans}:\n" + "\n".join(problems)
