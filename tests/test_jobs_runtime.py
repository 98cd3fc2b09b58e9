"""The job runtime (`cohort_connectome.jobs.runtime`): `job_log` inside the
scheduler process (``run:`` rules, one thread per job), and
`excluded_on_bad_input`."""

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
