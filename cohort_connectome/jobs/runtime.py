"""The runtime of every job: its log, and what bad input does to it.

`job_log` wraps each job (the ``scripts/`` adapters call it): the job's log
file, its one-line error on bad input, and the process-wide logging and
warning settings it needs, restored when the last job of the process ends.
`excluded_on_bad_input` turns bad input into the run's exclusion
(``cohort.on_bad_input: exclude``).  No nilearn counterpart.
"""

import contextlib
import logging
import sys
import threading
import time
import warnings
from pathlib import Path

from ..errors import InputError

log = logging.getLogger("cohort_connectome")

#: Values of the config ``cohort.on_bad_input``.
ON_BAD_INPUT = ("exclude", "fail")

#: Categories a job run in a thread logs every time (not once per process).
_ALWAYS_SHOWN = (UserWarning, RuntimeWarning)


class _ThreadFilter(logging.Filter):
    """Pass the records of the thread that created it: a job run inside the
    scheduler process (``run:``, `job_log`) logs only its own messages while
    other jobs run in other threads."""

    def __init__(self):
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record):
        return record.thread == self.thread


class _ProcessSettings:
    """The process-wide settings `job_log` changes, shared by the jobs that
    run at the same time in one process (the scheduler's job threads).

    The first job to start saves the logger level of ``cohort_connectome``,
    whether `logging.captureWarnings` is on and the warning filters; the last
    job to end restores them (a job ending while others run would otherwise
    turn their warning capture off).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._active = 0
        self._saved = None

    def enter(self, in_thread):
        with self._lock:
            if self._active == 0:
                # catch_warnings saves the filters (and showwarning) and restores
                # them on __exit__; the lock above makes the pair thread-safe
                filters = warnings.catch_warnings()
                filters.__enter__()
                self._saved = (log.level, _capturing_warnings(), filters)
            self._active += 1
            log.setLevel(logging.INFO)
            logging.captureWarnings(True)
            if in_thread:
                # a job inside the scheduler process (``run:``): log its warnings
                # even if an earlier job of the process gave the same ones
                for category in _ALWAYS_SHOWN:
                    warnings.simplefilter("always", category)

    def exit(self):
        with self._lock:
            self._active -= 1
            if self._active:
                return
            level, capturing, filters = self._saved
            self._saved = None
            log.setLevel(level)
            logging.captureWarnings(capturing)
            filters.__exit__(None, None, None)


class ProgressLog:
    """Log a long read's progress, at most every ``interval`` seconds.

    After each piece, `update` adds its volumes and bytes; a line
    ``<what>: 300 of 1200 volumes (25%), 84.2 MB/s`` (the rate since the
    start) is logged when ``interval`` seconds have passed since the start or
    the last line, so a read shorter than ``interval`` logs nothing.

    Parameters
    ----------
    what : str
        Who reads (e.g. the subject), at the start of each line.
    total : int
        Volumes to read.
    interval : float
        Seconds between lines.
    clock : callable, optional
        Seconds, monotonic (`time.monotonic` by default; a test's fake clock).
    """

    def __init__(self, what, total, interval=5.0, clock=None):
        self.what = what
        self.total = int(total)
        self.interval = float(interval)
        self.clock = clock or time.monotonic
        self.start = self.last = self.clock()
        self.done = 0
        self.nbytes = 0

    def update(self, volumes, nbytes):
        self.done += int(volumes)
        self.nbytes += int(nbytes)
        now = self.clock()
        if now - self.last < self.interval or now <= self.start:
            return
        self.last = now
        rate = self.nbytes / 1e6 / (now - self.start)
        log.info("%s: %d of %d volumes (%d%%), %.1f MB/s", self.what, self.done, self.total,
                 100 * self.done // max(self.total, 1), rate)


def _capturing_warnings():
    """Is `logging.captureWarnings` on?  (logging has no public getter: it
    keeps the replaced ``warnings.showwarning`` while capturing.)"""
    return logging._warnings_showwarning is not None


_PROCESS_SETTINGS = _ProcessSettings()


@contextlib.contextmanager
def job_log(log_path, name, subject=None):
    """Log a job to ``log_path`` (and stderr); turn bad input into a one-line error.

    An `InputError` is written as one line naming the subject, file and
    problem, to the log and to stderr, and the job exits with status 1 (no
    traceback: the input is wrong, not the code).  Any other exception keeps
    its traceback in the log.  Outputs are written atomically by `io`, and
    Snakemake removes the outputs of a failed job, so nothing partial stays.

    A job run inside the Snakemake process (``run:`` rules, one thread per
    job) logs only its own thread's records, logs its warnings even when an
    earlier job of the process gave the same; its ``SystemExit(1)`` becomes
    an exception that fails the job (``run_in_process`` in common.smk: in a
    job thread Snakemake would hang on it).  The process-wide settings the
    job needs (level of the ``cohort_connectome`` logger, warnings captured
    by logging, warning filters) are restored when the last job running in
    the process ends, also on error.
    """
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    formatter = logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s")
    this_thread = _ThreadFilter()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(this_thread)
        log.addHandler(handler)
    _PROCESS_SETTINGS.enter(threading.current_thread() is not threading.main_thread())
    for handler in handlers:
        logging.getLogger("py.warnings").addHandler(handler)
    label = f"{name} {subject}" if subject else name
    start = time.perf_counter()
    log.info("%s: started", label)
    try:
        yield log
    except InputError as err:
        if subject and not err.subject:
            err = err.with_context(subject=subject)
        log.error("%s", err)
        raise SystemExit(1) from None
    except Exception:
        log.exception("%s: failed", label)
        raise
    else:
        log.info("%s: done in %.2f s", label, time.perf_counter() - start)
    finally:
        for handler in handlers:
            log.removeHandler(handler)
            logging.getLogger("py.warnings").removeHandler(handler)
            handler.close()
        _PROCESS_SETTINGS.exit()


@contextlib.contextmanager
def excluded_on_bad_input(stage, on_bad_input, write_excluded, subject=None):
    """Turn bad input of one run into its exclusion, so that the cohort goes on.

    With ``on_bad_input="exclude"`` an `InputError` raised in the block is
    logged as its one line (subject, file, problem) at ERROR level, then
    ``write_excluded(stage, err)`` writes the job's outputs as placeholders
    that say so (time series with a header and no row, matrices of n/a,
    sidecars with ``Excluded`` = reason and ``ExcludedStage`` = stage), and
    the job succeeds: the later rules carry the exclusion on and the group
    rule lists it in ``results/group/atlas-<name>_exclusions.tsv``.  With ``"fail"`` the
    error propagates (`job_log` makes it the job's one-line failure).  Other
    exceptions always propagate.

    Parameters
    ----------
    stage : str
        The rule that found the problem (``ExcludedStage``).
    on_bad_input : {"exclude", "fail"}
        Config ``cohort.on_bad_input``.
    write_excluded : callable
        ``write_excluded(stage, err)``: ``err`` the `InputError` (its
        `exclusion_reason` goes into the sidecars).
    subject : str, optional
        Named in the error when the error does not name it.
    """
    if on_bad_input not in ON_BAD_INPUT:
        raise ValueError(f"on_bad_input must be one of {ON_BAD_INPUT}, got {on_bad_input!r}")
    try:
        yield
    except InputError as err:
        if on_bad_input != "exclude":
            raise
        if subject and not err.subject:
            err = err.with_context(subject=subject)
        stage = err.stage or stage
        log.error("%s", err)
        write_excluded(stage, err)
        log.warning("%s excluded at %s (cohort.on_bad_input: exclude): outputs written as "
                    "placeholders", err.subject or "run", stage)


def exclusion_reason(err):
    """The reason of an exclusion: the error's file and problem (its subject
    has a column of its own in the exclusions table)."""
    return str(InputError(err.problem, path=err.path))
