"""Quality-control records of the runs: per volume, per subject, per cohort.

The per-volume QC table of a cleaned run, the summary of a subject's runs
once concatenated, and the cohort's QC and exclusions tables built from the
runs' JSON sidecars.  No nilearn counterpart: nilearn returns arrays and
leaves this bookkeeping to the user.
"""

import numpy as np
import pandas as pd

#: Columns of the per-volume QC table (`volume_qc`).
QC_COLUMNS = ("volume", "framewise_displacement", "kept")


def excluded_info(sidecar):
    """The exclusion a run's sidecar records.

    Parameters
    ----------
    sidecar : dict
        A run's JSON sidecar: cleaning's (``Excluded``, ``ExcludedStage``)
        or estimation's (``excluded``, ``excluded_stage``).

    Returns
    -------
    tuple or None
        ``(stage, reason)``, or None when the run is included.
    """
    reason = sidecar.get("Excluded") or sidecar.get("excluded")
    if not reason:
        return None
    return sidecar.get("ExcludedStage") or sidecar.get("excluded_stage"), reason


def volume_qc(n_volumes, fd, kept):
    """Per-volume QC, the columns of `QC_COLUMNS`.

    Parameters
    ----------
    n_volumes : int
        Volumes of the run.
    fd : ndarray, shape (n_volumes,) or None
        Framewise displacement (mm); None without motion information.
    kept : array of int
        Indices of the kept volumes.

    Returns
    -------
    ndarray, shape (n_volumes, 3), float64
        Volume index, framewise displacement (NaN without motion
        information), 1 where the volume is kept, else 0.  Indices and flags
        are whole numbers: `io.write_numeric_table` writes them as pandas
        writes integer columns.
    """
    flags = np.zeros(n_volumes)
    flags[np.asarray(kept, dtype=int)] = 1
    return np.column_stack([np.arange(n_volumes, dtype=np.float64),
                            np.full(n_volumes, np.nan) if fd is None else fd, flags])


def mean_framewise_displacement(fd):
    """Mean framewise displacement of a run, over volumes 1..n-1.

    Parameters
    ----------
    fd : ndarray, shape (n_volumes,) or None
        Framewise displacement (mm); the first volume has no predecessor and
        is left out.

    Returns
    -------
    float or None
        None without motion information or with fewer than 2 volumes.
    """
    steps = fd[1:] if fd is not None else np.zeros(0)
    return float(steps.mean()) if steps.size else None


def combine_run_info(runs, infos):
    """The sidecar of a subject's runs concatenated, from the runs' sidecars.

    Excluded runs are left out of the sums (their volumes still count in
    ``NumberOfVolumes``); the mean framewise displacement is the mean over
    the included runs' volumes 1..n-1, weighted by their number.

    Parameters
    ----------
    runs : sequence of str
        The runs' names, in the order they are stacked.
    infos : sequence of dict
        Their cleaned sidecars (``NumberOfVolumes``, ``NumberOfVolumesKept``,
        ``SecondsKept``, ``MeanFramewiseDisplacement``, ``NonFiniteValues``,
        ``Confounds``, ``Excluded``, ``ExcludedStage``).

    Returns
    -------
    dict
        ``Runs`` (the included runs), ``ExcludedRuns`` ({run: reason}),
        summed volumes, kept volumes, non-finite values and seconds, the
        mean framewise displacement (None without any), the union of the
        confounds in order, and ``Excluded``/``ExcludedStage`` when every run
        is excluded.
    """
    used, excluded, stages, confounds = [], {}, [], []
    volumes = kept = 0
    seconds, fd_sum, fd_n = 0.0, 0.0, 0
    non_finite = None
    for run, info in zip(runs, infos):
        volumes += info["NumberOfVolumes"] or 0  # None: excluded before it was read
        if info.get("NonFiniteValues") is not None:
            non_finite = (non_finite or 0) + info["NonFiniteValues"]
        if info.get("Excluded"):
            excluded[run] = info["Excluded"]
            stages.append(info.get("ExcludedStage"))
            continue
        used.append(run)
        kept += info["NumberOfVolumesKept"]
        seconds += info["SecondsKept"] or 0.0
        if info.get("MeanFramewiseDisplacement") is not None:
            fd_sum += info["MeanFramewiseDisplacement"] * (info["NumberOfVolumes"] - 1)
            fd_n += info["NumberOfVolumes"] - 1
        confounds += [c for c in info["Confounds"] if c not in confounds]
    return {
        "Runs": used, "ExcludedRuns": excluded,
        "NumberOfVolumes": int(volumes), "NumberOfVolumesKept": int(kept),
        "NonFiniteValues": non_finite,
        "SecondsKept": seconds, "MeanFramewiseDisplacement": fd_sum / fd_n if fd_n else None,
        "Confounds": confounds,
        "Excluded": None if used else "every run of the subject is excluded: " + "; ".join(
            f"{run}: {reason}" for run, reason in excluded.items()),
        "ExcludedStage": None if used else ",".join(dict.fromkeys(map(str, stages))),
    }


def converged(info):
    """Did a run's estimator converge?

    Parameters
    ----------
    info : dict
        The run's connectivity sidecar (``converged_<kind>`` flags,
        ``fallback``).

    Returns
    -------
    {"yes", "no", ""}
        ``"yes"`` when every fit converged and no fallback was used, ``"no"``
        otherwise, ``""`` when the estimator does not iterate (no flag).
    """
    flags = [v for k, v in info.items() if k.startswith("converged_")]
    if not flags:
        return ""
    return "yes" if all(flags) and not info.get("fallback") else "no"


def cohort_qc_table(units, clean_sidecars, connectivity_sidecars=None):
    """The cohort QC table: one row per run.

    Parameters
    ----------
    units : list of dict
        One record per run: ``key`` (the run name), ``participant_id`` and
        the run's entities (``session``, ``task``, ``run``) when the cohort
        has several runs per participant.
    clean_sidecars : dict
        ``{key: dict}``, the cleaned time series' sidecars.
    connectivity_sidecars : dict, optional
        ``{key: dict}``, the connectivity sidecars: a run excluded there is
        excluded here too.

    Returns
    -------
    pandas.DataFrame
        ``participant_id, [entities...], n_volumes, n_kept, seconds_kept,
        mean_fd, n_nonfinite, n_confounds, confounds, n_constant,
        n_missing_regions, fallback, converged, excluded, excluded_stage``
        (``""`` when included), in the order of ``units``.
        ``n_missing_regions`` counts the regions without data in the unit
        (the cleaned sidecar's ``MissingRegions``; 0 without the key).
    """
    records = pd.DataFrame(units)
    entities = [c for c in records.columns if c not in ("key", "participant_id")]
    keys = list(records["key"])
    clean = [clean_sidecars[k] for k in keys]
    estimates = [(connectivity_sidecars or {}).get(k, {}) for k in keys]
    exclusions = [excluded_info(c) or excluded_info(e) or ("", "")
                  for c, e in zip(clean, estimates)]
    qc = records[["participant_id", *entities]].copy()
    qc["n_volumes"] = [c["NumberOfVolumes"] for c in clean]
    qc["n_kept"] = [c["NumberOfVolumesKept"] for c in clean]
    qc["seconds_kept"] = [c["SecondsKept"] for c in clean]
    qc["mean_fd"] = [c["MeanFramewiseDisplacement"] for c in clean]
    qc["n_nonfinite"] = [c.get("NonFiniteValues") for c in clean]
    qc["n_confounds"] = [len(c["Confounds"]) for c in clean]
    qc["confounds"] = [",".join(c["Confounds"]) for c in clean]
    qc["n_constant"] = [len(c.get("ConstantRegions") or []) for c in clean]
    qc["n_missing_regions"] = [len(c.get("MissingRegions") or []) for c in clean]
    qc["fallback"] = [e.get("fallback") or "" for e in estimates]
    qc["converged"] = [converged(e) for e in estimates]
    qc["excluded"] = [reason for _, reason in exclusions]
    qc["excluded_stage"] = [stage or "" for stage, _ in exclusions]
    return qc


def run_qc_labels(run, atlas, clean_sidecar):
    """A run's QC numbers, shown beside its QC figure in the report (its labels).

    Parameters
    ----------
    run, atlas : str
    clean_sidecar : dict
        The run's cleaned time series' sidecar.

    Returns
    -------
    dict
        ``{column: text}``: run and atlas, then the run's `cohort_qc_table`
        row in short: volumes kept of the run's, seconds kept, mean framewise
        displacement (mm), constant and n/a regions, the regions n/a for their
        coverage (``LowCoverageRegions``, below ``MinCoverage``: field of view
        and brain mask), and why it is excluded (``no`` when included).
    """
    row = cohort_qc_table([{"key": run, "participant_id": run}], {run: clean_sidecar}).iloc[0]

    def number(value, spec):
        return "n/a" if value is None or value != value else format(value, spec)

    low, threshold = clean_sidecar.get("LowCoverageRegions"), clean_sidecar.get("MinCoverage")
    coverage = "n/a" if low is None else f"{len(low)} (coverage < {threshold:g})"

    return {
        "run": run,
        "atlas": atlas,
        "volumes kept": f"{row['n_kept']} of {row['n_volumes']}",
        "seconds kept": number(row["seconds_kept"], ".0f"),
        "mean FD (mm)": number(row["mean_fd"], ".3f"),
        "constant / n/a regions": f"{row['n_constant']} / {row['n_missing_regions']}",
        "n/a for coverage": coverage,
        "excluded": row["excluded"] or "no",
    }


def motion_by_group(qc, groups):
    """Mean framewise displacement of the cohort's runs by group, and whether
    the groups differ (motion differences confound group comparisons).

    Parameters
    ----------
    qc : pandas.DataFrame
        A `cohort_qc_table` (``participant_id``, ``mean_fd``, ``excluded``).
    groups : dict
        ``{participant_id: level}``, the levels in the order to show them;
        participants not in it are left out.

    Returns
    -------
    by_group : dict
        ``{level: {"included": ndarray, "excluded": ndarray}}``: the runs'
        mean FD (mm), runs without FD left out.
    test : dict or None
        With two levels of at least 2 included runs each: Student's two-sample
        ``t`` (positive when the first level moves more) and ``p``
        (``scipy.stats.ttest_ind``) of the included runs; else None.
    """
    from scipy import stats

    levels = list(dict.fromkeys(groups.values()))
    fd = pd.to_numeric(qc["mean_fd"], errors="coerce")
    level = qc["participant_id"].map(groups)
    excluded = qc["excluded"].fillna("").astype(str).ne("")
    by_group = {
        g: {"included": fd[(level == g) & ~excluded & fd.notna()].to_numpy(dtype=np.float64),
            "excluded": fd[(level == g) & excluded & fd.notna()].to_numpy(dtype=np.float64)}
        for g in levels
    }
    test = None
    if len(levels) == 2 and all(len(by_group[g]["included"]) >= 2 for g in levels):
        result = stats.ttest_ind(by_group[levels[0]]["included"], by_group[levels[1]]["included"])
        test = {"t": float(result.statistic), "p": float(result.pvalue)}
    return by_group, test


def exclusions_table(qc):
    """The excluded runs of a `cohort_qc_table`.

    Parameters
    ----------
    qc : pandas.DataFrame
        A `cohort_qc_table`.

    Returns
    -------
    pandas.DataFrame
        ``participant_id, [entities...], stage, reason``: one row per
        excluded run.
    """
    entities = list(qc.columns[1:list(qc.columns).index("n_volumes")])
    excluded = qc["excluded"] != ""
    return (qc.loc[excluded, ["participant_id", *entities, "excluded_stage", "excluded"]]
            .rename(columns={"excluded_stage": "stage", "excluded": "reason"}))
