"""The job runtime (`cohort_connectome.jobs.runtime`): `job_log` inside the
scheduler process (``run:`` rules, one thread per job) and what it changes
process-wide, and `excluded_on_bad_input`."""

import logging
import warnings

import pytest

from cohort_connectome.errors import InputError
from cohort_connectome.jobs import runtime


def test_on_bad_input_must_be_known():
    with pytest.raises(ValueError, match="on_bad_input must be one of"):
        with runtime.excluded_on_bad_input("x", "skip", lambda stage, err: None):
            pass



# --------------------------------------------------------------------------
# job_log inside the scheduler process (run: rules, one thread per job)
# --------------------------------------------------------------------------

def _in_thread(function, *args):
    import threading
    outcome = {}

    def target():
        try:
            function(*args)
        except BaseException as err:  # noqa: BLE001 - handed to the test
            outcome["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return outcome.get("error")


def test_job_log_threads_log_only_their_own_job(tmp_path):
    """Two jobs in two threads of one process, interleaved: each log file has its
    own job's lines and none of the other's."""
    import threading

    both_started = threading.Barrier(2)
    first_logged = threading.Event()

    def job(name, wait_for_other):
        with runtime.job_log(tmp_path / f"{name}.log", "clean_timeseries", name):
            both_started.wait()
            if wait_for_other:
                first_logged.wait()
            runtime.log.info("message of %s", name)
            first_logged.set()

    threads = [threading.Thread(target=job, args=("sub-01", False)),
               threading.Thread(target=job, args=("sub-02", True))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, other in (("sub-01", "sub-02"), ("sub-02", "sub-01")):
        text = (tmp_path / f"{name}.log").read_text()
        assert f"message of {name}" in text and f"clean_timeseries {name}: done" in text
        assert other not in text


def test_job_log_threads_each_log_a_repeated_warning(tmp_path):
    """In a long-lived process a warning is shown once per code location by
    default: a job run in a thread logs it even when an earlier job did.  (A
    process of its own: pytest's warning capture replaces the hooks.)"""
    import subprocess
    import sys

    code = f"""
import threading, warnings
from cohort_connectome.jobs import runtime

def job(name):
    with runtime.job_log({str(tmp_path)!r} + f"/{{name}}.log", "clean_timeseries", name):
        warnings.warn("low_pass above Nyquist: adjusted", UserWarning)

for name in ("sub-01", "sub-02"):
    thread = threading.Thread(target=job, args=(name,))
    thread.start()
    thread.join()
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    for name in ("sub-01", "sub-02"):
        assert "low_pass above Nyquist" in (tmp_path / f"{name}.log").read_text()


def test_job_log_bad_input_in_thread_is_one_line_and_exit_1(tmp_path):
    """Bad input in a job run in a thread: the one line in its log, and
    SystemExit(1), which run_in_process (common.smk) turns into the job's failure."""
    def job():
        with runtime.job_log(tmp_path / "job.log", "clean_timeseries", "sub-07"):
            raise InputError("confounds have 59 rows, the run 60 volumes", path="c.tsv")

    error = _in_thread(job)
    assert isinstance(error, SystemExit) and error.code == 1
    lines = (tmp_path / "job.log").read_text().splitlines()
    assert lines[-1].endswith("ERROR [cohort_connectome] sub-07: c.tsv: confounds have 59 rows, "
                              "the run 60 volumes")


# --------------------------------------------------------------------------
# job_log restores what it changes process-wide
# --------------------------------------------------------------------------
def _process_state():
    """What job_log changes in the process: the package logger's level, the
    warnings hook (logging's while captureWarnings is on) and the filters."""
    return (logging.getLogger("cohort_connectome").level, warnings.showwarning,
            list(warnings.filters))


@pytest.fixture
def process_state():
    """A state job_log must change (level WARNING, warnings not captured by
    logging, no "always" filter), restored after the test whatever happens."""
    logger = logging.getLogger("cohort_connectome")
    level = logger.level
    logging.captureWarnings(False)
    logger.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        before = _process_state()
        assert before[0] == logging.WARNING and ("always", None, UserWarning, None, 0) \
            not in before[2]
        yield before
    logger.setLevel(level)
    logging.captureWarnings(False)


def _changed_inside(tmp_path, name, body=None):
    """Run a job_log block; return the process state inside it."""
    inside = {}
    with runtime.job_log(tmp_path / f"{name}.log", "clean_timeseries", name):
        inside["state"] = _process_state()
        if body:
            body()
    return inside["state"]


def test_job_log_restores_the_process_settings(tmp_path, process_state):
    """Main thread and job thread, success and failure (bad input, a bug):
    inside the block the level is INFO and warnings are logged (in a thread,
    every time); after it, everything is as before."""
    state = {}

    def record():
        state["inside"] = _process_state()

    def bad_input():
        record()
        raise InputError("confounds have 59 rows, the run 60 volumes", path="c.tsv")

    def bug():
        record()
        raise KeyError("bug")

    inside = _changed_inside(tmp_path, "main")
    assert inside[0] == logging.INFO and inside[1] is not process_state[1]
    assert _process_state() == process_state

    assert _in_thread(_changed_inside, tmp_path, "thread", record) is None
    assert ("always", None, UserWarning, None, 0) in state["inside"][2]
    assert _process_state() == process_state

    error = _in_thread(_changed_inside, tmp_path, "bad", bad_input)
    assert isinstance(error, SystemExit) and state["inside"][0] == logging.INFO
    assert _process_state() == process_state

    error = _in_thread(_changed_inside, tmp_path, "bug", bug)
    assert isinstance(error, KeyError)
    assert _process_state() == process_state


def test_job_log_keeps_the_settings_while_another_job_runs(tmp_path, process_state):
    """Jobs overlapping in two threads: the first to end leaves the settings
    of the one still running; the last to end restores the process's."""
    import threading

    first_started, first_done = threading.Event(), threading.Event()
    seen = {}

    def second_job():
        first_started.wait()
        with runtime.job_log(tmp_path / "second.log", "clean_timeseries", "sub-02"):
            seen["before_first_ends"] = _process_state()
            first_done.wait()
            seen["after_first_ends"] = _process_state()
            warnings.warn("low_pass above Nyquist: adjusted", UserWarning)

    def first_job():
        with runtime.job_log(tmp_path / "first.log", "clean_timeseries", "sub-01"):
            first_started.set()
            while "before_first_ends" not in seen and second.is_alive():
                threading.Event().wait(0.01)
        first_done.set()

    second = threading.Thread(target=second_job)
    second.start()
    assert _in_thread(first_job) is None
    second.join()
    assert seen["after_first_ends"] == seen["before_first_ends"]
    assert seen["after_first_ends"][0] == logging.INFO
    assert "low_pass above Nyquist" in (tmp_path / "second.log").read_text()
    assert _process_state() == process_state


def test_progress_log_at_most_every_interval(caplog):
    """A long read's progress: volumes read of the total and the rate since the start,
    logged when ``interval`` seconds have passed since the start or the last line."""
    now = [100.0]
    progress = runtime.ProgressLog("sub-01", 1200, interval=5, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="cohort_connectome"):
        for elapsed in (1.0, 4.9, 5.0, 9.0, 10.5, 12.0):
            now[0] = 100.0 + elapsed
            progress.update(16, 16_000_000)
    assert [r.getMessage() for r in caplog.records] == [
        "sub-01: 48 of 1200 volumes (4%), 9.6 MB/s",   # 5 s after the start
        "sub-01: 80 of 1200 volumes (6%), 7.6 MB/s",   # 5.5 s after the last line
    ]
    caplog.clear()
    quick = runtime.ProgressLog("sub-02", 10, interval=5, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="cohort_connectome"):
        now[0] += 4.0
        quick.update(10, 1000)
    assert caplog.records == []
