"""The summary the workflow prints at the end of a successful run.

Where the outputs are, and which runs were excluded (``cohort.on_bad_input:
exclude``), from the group rule's ``results/group/atlas-<name>_exclusions.tsv``. The
Snakefile's ``onsuccess`` prints `results_summary`.

No nilearn function is mirrored here.
"""

import os

__all__ = ["exclusions_summary", "results_summary"]


def exclusions_summary(path, n_units, limit=10, atlas=None):
    """Lines naming the runs excluded by the last group run.

    Parameters
    ----------
    path : str
        The exclusions table (tab-separated: the run's participant and
        entities, ``stage``, ``reason``).
    n_units : int
        Runs (or subjects) in the cohort, for "<excluded> of <n_units>".
    limit : int, default=10
        Runs named; the others are counted.
    atlas : str, optional
        Named in the first line (a config with several atlases has a table
        per atlas).

    Returns
    -------
    list of str
        No line when the table does not exist, one line when it lists no run,
        else a header line and a line per excluded run (up to ``limit``).
    """
    if not os.path.isfile(path):
        return []
    with open(path) as handle:
        header, *rows = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    label = f" (atlas {atlas})" if atlas else ""
    if not rows:
        return [f"  exclusions          none{label}"]
    lines = [f"  EXCLUDED            {len(rows)} of {n_units}{label}, listed in {path}:"]
    for row in rows[:limit]:
        record = dict(zip(header, row))
        who = " ".join(v for k, v in record.items() if k not in ("stage", "reason") and v)
        lines.append(f"    {who} at {record['stage']}: {record['reason']}")
    if len(rows) > limit:
        lines.append(f"    ... and {len(rows) - limit} more")
    return lines


def results_summary(n_subjects, n_runs, atlases, kinds, subject_figures, comparison,
                    exclusions):
    """The end-of-run summary: the cohort, where each kind of output is, the exclusions.

    Parameters
    ----------
    n_subjects, n_runs : int
        The cohort's subjects and runs.
    atlases : list of str
        The config's atlases (``atlas-<name>`` in the output names).
    kinds : list of str
        Every connectivity kind estimated.
    subject_figures : bool
        Per-run figures were drawn (``figures.subjects`` or ``figures.qc``).
    comparison : list of str
        The comparison's tables (``group.compare``); empty for none.
    exclusions : list of str
        `exclusions_summary`'s lines.

    Returns
    -------
    str
        Lines, with an empty line before and after.
    """
    atlas = atlases[0] if len(atlases) == 1 else "<atlas>"
    lines = [
        "",
        f"cohort_connectome: {n_subjects} subjects, {n_runs} runs, "
        f"atlas{'es' if len(atlases) > 1 else ''} {', '.join(atlases)}, "
        f"kinds {', '.join(kinds)}",
        f"  atlases as used     results/atlases/atlas-{atlas}/",
        f"  region time series  results/sub-*/[ses-*/]func/sub-*_atlas-{atlas}_timeseries.tsv",
        f"  connectomes         results/sub-*/[ses-*/]func/sub-*_atlas-{atlas}_meas-*_relmat.tsv",
        f"  group tables        results/group/atlas-{atlas}_connectomes.tsv and "
        f"results/group/atlas-{atlas}_meas-*_relmat.tsv",
        "  figures             results/group/figures/"
        + ("  results/sub-*/[ses-*/]figures/" if subject_figures else ""),
    ]
    if comparison:
        lines.append(f"  comparison          {', '.join(comparison)}")
    lines += [
        "  methods text        results/methods.md",
        "  logs, benchmarks    logs/<rule>/, benchmarks/<rule>/",
        "  report              snakemake --report results/report.html",
        *exclusions,
        "",
    ]
    return "\n".join(lines)
