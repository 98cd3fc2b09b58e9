"""Jobs of the group rules (workflow/rules/group.smk): the group long table,
group matrices and group-level kinds, and the phenotype comparison.

The numerics are `cohort_connectome.group` (group means, tangent and group
sparse kinds, long table), `cohort_connectome.comparison` (t-tests,
classification, the tables of a contrast with a missing group) and
`cohort_connectome.qc` (QC and exclusions tables); the group figures are
`figures.plot_connectomes`.
"""

import numpy as np
import pandas as pd

from .. import io
from ..cohort import read_phenotype
from ..errors import InputError
from ..connectivity import embed_regions
from ..group import (GROUP_SPARSE_KINDS, contrast_levels, edge_counts, group_mean,
                     group_sparse_kinds, label_text, long_table, matrices_from_long,
                     present_regions, read_long_table, tangent_kind)
from ..plotting import plot_matrix, plot_message
from ..qc import cohort_qc_table, exclusions_table
from .runtime import log


def aggregate_connectomes(relmats, units, participants_path, clean_sidecars, long_path,
                          mean_paths, qc_path, exclusions_path, info_path=None,
                          timeseries=None, group_kinds=(), estimator="ledoit_wolf",
                          estimator_options=None, sparse_options=None,
                          connectivity_sidecars=None, edgecount_path=None):
    """Build the group long table, the group-mean matrix of each kind, the
    cohort QC table and the exclusions table; estimate the group-level kinds.

    Parameters
    ----------
    relmats : dict
        ``{kind: {run: path}}`` of per-run matrices (the per-run kinds).
    units : list of dict
        One record per run: ``key`` (the run name), ``participant_id`` and the
        run's entities (``session``, ``task``, ``run``) when the cohort has
        several runs per participant.
    participants_path : path
        The cohort's participants table (sheet, demo, ADHD-200 or BIDS
        ``participants.tsv``); its phenotype columns go into the long table.
    clean_sidecars : dict
        ``{run: path}`` of the cleaned time series' JSON sidecars (QC and
        exclusion).
    connectivity_sidecars : dict, optional
        ``{run: path}`` of estimate_connectomes' JSON sidecars: a run excluded
        there (``excluded``) is excluded here too.
    long_path : path
        ``participant_id, [entities...], <phenotype...>, kind, region_i,
        region_j, value`` with one row per included run, kind and region pair
        i ≤ j (atlas order); kinds in the order of ``mean_paths``.
    mean_paths : dict
        ``{kind: path}`` of the group matrices: the mean over included runs,
        except for ``tangent``, whose group matrix is the geometric mean of
        the covariances (the reference point of the tangent space).  Each
        edge is the mean over the runs that have both regions
        (`group.group_mean`); n/a where none has.
    edgecount_path : path, optional
        The number of included runs that have each edge (both regions with
        data; the diagonal: the region), as a matrix of integers laid out as
        the group matrices.  The per-run kinds' means are over these runs.
    qc_path, exclusions_path : path
        One row per run (volumes, kept, seconds, mean FD, confounds,
        exclusion and the rule that excluded it); one row per excluded run:
        ``participant_id, [entities...], stage, reason``.
    info_path : path, optional
        JSON sidecar of the group level: runs used, kinds, and for the group
        kinds the geometric mean's iterations and convergence (``tangent``)
        and the cross-validated alpha (``groupsparse``); null when not computed.
        ``edge_count``: min, median and max over the edges i < j of the runs
        having the edge; ``missing_regions``: the regions n/a in at least one
        included run.  The group kinds (``tangent``, ``groupsparse``) need one
        region set for every run: they use the regions present in all, and
        record the others in ``dropped_regions`` (with ``dropped_reason``);
        those regions are n/a in their matrices for every run.  With fewer
        than 2 regions present in all runs they are not computed (n/a
        matrices, ``not_computed`` says why, and the log warns).
    timeseries : dict, optional
        ``{run: path}`` of the cleaned time series (needed by group kinds).
    group_kinds : sequence of str
        Kinds estimated here from all runs' time series at once: ``tangent``
        (nilearn's ``ConnectivityMeasure(kind="tangent")`` with
        ``estimator``), ``groupsparse_precision`` and
        ``groupsparse_partialcorrelation`` (``GroupSparseCovarianceCV`` with
        ``sparse_options``).  Excluded runs are left out.
    """
    phenotype = read_phenotype(participants_path).drop_duplicates("participant_id")
    records = pd.DataFrame(units)
    missing = sorted(set(records["participant_id"]) - set(phenotype["participant_id"]))
    if missing:
        raise InputError(f"participants table has no row for {', '.join(missing)}",
                         path=participants_path)
    clean_infos = _read_sidecars(clean_sidecars)
    qc = cohort_qc_table(units, clean_infos, _read_sidecars(connectivity_sidecars or {}))
    io.write_table(qc, qc_path)
    io.write_table(exclusions_table(qc), exclusions_path)
    excluded = qc["excluded"] != ""
    for key, stage, reason in zip(records["key"], qc["excluded_stage"], qc["excluded"]):
        if reason:
            log.warning("excluded: %s at %s: %s", key, stage, reason)
    included = records[~excluded.to_numpy()]
    if included.empty:
        raise InputError("every run is excluded (see the exclusions table)",
                         path=exclusions_path)
    records = included.merge(phenotype, on="participant_id", how="left")
    keys = list(records["key"])
    tables, names = {}, None
    for kind, by_run in relmats.items():
        tables[kind] = {}
        for run in keys:
            matrix, these = io.read_matrix(by_run[run])
            names = _same_regions(names, these, by_run[run], run)
            tables[kind][run] = matrix

    group_kinds = list(group_kinds)
    signals = []
    if group_kinds:
        if len(keys) < 2:
            raise InputError(f"{', '.join(group_kinds)} are estimated across runs and need at "
                             f"least 2 included runs, {len(keys)} left (see the exclusions "
                             "table)", path=exclusions_path)
        for run in keys:
            values, these = io.read_timeseries(timeseries[run], subject=run)
            names = _same_regions(names, these, timeseries[run], run)
            signals.append(values)
    present = _present(names, keys, clean_infos, clean_sidecars)
    means = {kind: group_mean(list(tables[kind].values()), present) for kind in tables}
    counts = edge_counts(present)
    upper = counts[np.triu_indices(len(names), k=1)]
    info = {"runs": keys,
            "excluded": [str(u["key"]) for u, e in zip(units, excluded) if e],
            "kinds": list(mean_paths), "tangent": None, "groupsparse": None,
            "edge_count": _summary(upper, len(keys)),
            "missing_regions": [n for n, p in zip(names, present.all(axis=0)) if not p]}
    if info["missing_regions"]:
        log.warning("%d regions n/a in some runs: group means over the runs that have each "
                    "edge (edges: %d to %d runs, median %g)", len(info["missing_regions"]),
                    info["edge_count"]["min"], info["edge_count"]["max"],
                    info["edge_count"]["median"])
    if group_kinds:
        common = present.all(axis=0)
        dropped = {"dropped_regions": info["missing_regions"],
                   "dropped_reason": (f"n/a in at least one of the {len(keys)} runs: the group "
                                      "kinds are estimated on the regions every run has"
                                      if info["missing_regions"] else None)}
        estimated = {"tangent": ["tangent"] if "tangent" in group_kinds else [],
                     "groupsparse": (list(GROUP_SPARSE_KINDS)
                                     if set(GROUP_SPARSE_KINDS) & set(group_kinds) else [])}
        if common.sum() < 2:
            note = (f"not computed: {int(common.sum())} region(s) have data in every run, 2 "
                    "needed")
            log.warning("%s: %s", ", ".join(group_kinds), note)
            empty = np.full((len(names), len(names)), np.nan)
            for name, kinds in estimated.items():
                if kinds:
                    info[name] = {"not_computed": note, **dropped}
                for kind in kinds:
                    tables[kind] = {run: empty for run in keys}
                    means[kind] = empty
        else:
            if not common.all():
                log.warning("group kinds on the %d of %d regions every run has (dropped: %s)",
                            int(common.sum()), len(names), ", ".join(dropped["dropped_regions"]))
                signals = [np.ascontiguousarray(values[:, common]) for values in signals]
            if estimated["tangent"]:
                info["tangent"], tables["tangent"], means["tangent"] = _tangent_kind(
                    signals, keys, estimator, estimator_options, common)
                info["tangent"].update(dropped)
            if estimated["groupsparse"]:
                info["groupsparse"], sparse = _group_sparse_kinds(signals, keys,
                                                                  sparse_options, common)
                info["groupsparse"].update(dropped)
                for kind in GROUP_SPARSE_KINDS:
                    tables[kind] = sparse[kind]
                    means[kind] = group_mean(list(sparse[kind].values()))
    tables = {kind: tables[kind] for kind in mean_paths}
    for kind, path in mean_paths.items():
        io.write_matrix(means[kind], names, path)
    if edgecount_path:
        io.write_matrix(counts.astype(np.float64), names, edgecount_path)
    table = long_table(tables, names, records.to_dict("records"))
    io.write_table(table, long_path)
    if info_path:
        io.write_json(info, info_path)
    log.info("%d runs of %d participants (%d excluded), %d kinds, %d rows", len(records),
             records["participant_id"].nunique(), int(excluded.sum()), len(tables), len(table))


def _present(names, keys, infos, paths):
    """(n_runs, n_regions) mask of the regions with data in each run, from the
    cleaned sidecars' ``MissingRegions``."""
    rows = []
    for run in keys:
        try:
            rows.append(present_regions(names, infos[run].get("MissingRegions")))
        except ValueError as err:
            raise InputError(str(err), path=paths[run], subject=run) from None
    return np.array(rows, dtype=bool).reshape(len(keys), len(names))


def _summary(counts, n_runs):
    """``{"min", "median", "max"}`` of the per-edge run counts (all n_runs
    when there is no edge)."""
    if counts.size == 0:
        return {"min": n_runs, "median": n_runs, "max": n_runs}
    median = float(np.median(counts))
    return {"min": int(counts.min()), "median": int(median) if median.is_integer() else median,
            "max": int(counts.max())}


def _same_regions(names, these, path, run):
    """The region names of the runs read so far (None before the first),
    checked against ``these``, those of ``run``'s file ``path``."""
    if names is not None and these != names:
        raise InputError("region names differ from the other runs'", path=path, subject=run)
    return these


def _read_sidecars(paths):
    """``{run: dict}`` of JSON sidecars given as ``{run: path}``."""
    return {run: io.read_json(path) for run, path in paths.items()}


def _tangent_kind(signals, keys, estimator, estimator_options, present):
    """(sidecar info, {run: tangent matrix}, geometric mean) of the included runs,
    on the ``present`` regions (n/a elsewhere, `connectivity.embed_regions`)."""
    try:
        tangents, mean, info = tangent_kind(signals, estimator, estimator_options)
    except ValueError as err:  # e.g. a singular covariance
        raise InputError(f"tangent space: {err}") from None
    if not info["converged"]:
        log.warning("tangent: the geometric mean did not reach tol %g in %d iterations "
                    "(gradient norm %.3g)", info["tol"], info["max_iter"],
                    info["gradient_norm"])
    log.info("tangent: geometric mean of %d covariances in %d iterations (%s)", len(keys),
             info["n_iter"], "converged" if info["converged"] else "not converged")
    return (info, {k: embed_regions(t, present) for k, t in zip(keys, tangents)},
            embed_regions(mean, present))


def _group_sparse_kinds(signals, keys, options, present):
    """(sidecar info, {kind: {run: matrix}}) of GroupSparseCovarianceCV on the
    ``present`` regions (n/a elsewhere)."""
    try:
        matrices, info = group_sparse_kinds(signals, options)
    except ValueError as err:
        raise InputError(f"group sparse covariance: {err}") from None
    log.info("group sparse: alpha %.4g chosen among %d, %.1f%% of the edges non-zero",
             info["alpha"], len(info["cv_alphas"]), 100 * info["density"])
    return info, {kind: {k: embed_regions(m, present) for k, m in zip(keys, stack)}
                  for kind, stack in matrices.items()}


def compare_groups(table_path, participants_path, labels_path, column, ttest_path,
                   classification_path, figure_paths, participant_ids=None, levels=None,
                   fdr=0.05, classify=None):
    """Compare the two levels of a phenotype column, kind by kind.

    Per participant (the mean of its runs' matrices when it has several), per
    kind: a two-sample t-test of every edge with Benjamini-Hochberg FDR
    (`comparison.edgewise_ttest`), a cross-validated LinearSVC classification
    of the phenotype from the vectorized matrices (`comparison.classify_phenotype`),
    and a matrix figure of the t values of the significant edges, ordered by
    network.  Too few subjects for a test or a classification: the tables say
    so in their ``note`` column (NaN statistics), the figure too.

    Regions without data in some runs (n/a edges in the long table): a
    participant's matrix is the mean of the runs that have each edge; each
    edge is tested on the participants that have it (``n_a``, ``n_b`` per
    edge; fewer than 2 in a group: not tested, left out of the FDR, the
    ``note`` says so); the classification uses the features every
    participant has (its ``note`` says how many were left out).

    Parameters
    ----------
    table_path : path
        The group long table (included runs only).
    participants_path : path
        The participants table: the levels of ``column`` are taken over the
        cohort's participants (``participant_ids``), excluded ones included,
        so that exclusions leave a contrast with a missing group rather than
        no contrast.
    column : str
        The phenotype column.
    figure_paths : dict
        ``{kind: path}``; the kinds compared, in order.
    levels : pair, optional
        The two levels to compare (needed when the column has more).
    fdr : float
        False discovery rate of the ``significant`` column.
    classify : dict, optional
        ``n_splits``, ``n_repeats``, ``seed`` of the classification.

    Raises
    ------
    InputError
        One line naming the column when it is absent or has fewer than 2
        levels (or more than 2 without ``levels``).
    """
    # here, not at the top: scikit-learn and scipy.stats (0.6 s of imports) are
    # this rule's alone, and aggregate_connectomes, in the same module, is on
    # every workflow's critical path
    from ..comparison import classify_phenotype, edgewise_ttest, untested_contrast

    classify = dict(classify or {})
    phenotype = read_phenotype(participants_path).drop_duplicates("participant_id")
    if participant_ids is not None:
        phenotype = phenotype[phenotype["participant_id"].isin(list(participant_ids))]
    if column not in phenotype.columns:
        shown = ", ".join(c for c in phenotype.columns if c != "participant_id") or "none"
        raise InputError(f"group.compare: phenotype column '{column}' is not in the "
                         f"participants table (phenotype columns: {shown})",
                         path=participants_path)
    try:
        level_a, level_b = contrast_levels(phenotype[column].tolist(), column, levels)
    except ValueError as err:
        raise InputError(f"group.compare: {err}", path=participants_path) from None
    by_participant = dict(zip(phenotype["participant_id"],
                              (label_text(v) for v in phenotype[column])))

    table = read_long_table(table_path)
    labels = io.read_labels(labels_path)
    names, networks = list(labels["name"]), list(labels["network"])
    ttests, classifications = [], []
    for kind, figure in figure_paths.items():
        keys, stack = matrices_from_long(table, names, kind)
        groups = [by_participant.get(k) for k in keys]
        keep = np.array([g in (level_a, level_b) for g in groups], dtype=bool)
        stack, groups = stack[keep], [g for g, k in zip(groups, keep) if k]
        present = sorted(set(groups))
        if len(present) == 2:
            result = edgewise_ttest(stack, pd.Series(groups, name=column), names=names,
                                    alpha=fdr, levels=(level_a, level_b), column=column)
            scores = classify_phenotype({kind: stack}, pd.Series(groups, name=column),
                                        column=column, **classify)
        else:
            result, scores = untested_contrast(
                stack, groups, names, (level_a, level_b), column, kind,
                n_splits=classify.get("n_splits", 5), n_repeats=classify.get("n_repeats", 10))
        result.insert(0, "kind", kind)
        ttests.append(result)
        classifications.append(scores)
        _plot_ttest(result, names, networks, figure, kind, column, fdr)
        tested = result["note"] == ""
        log.info("%s: %s %d vs %s %d, %d of %d edges tested, %d with q < %g; accuracy %s "
                 "(chance %s)", kind, level_a, groups.count(level_a), level_b,
                 groups.count(level_b), int(tested.sum()), len(result),
                 int(result["significant"].sum()), fdr,
                 _fmt(scores["accuracy_mean"].iloc[0]), _fmt(scores["chance"].iloc[0]))
        untested = int(result["note"].str.startswith("not tested: n/a").sum())
        if untested:
            log.warning("%s: %d edges not tested: fewer than 2 subjects of a group have them "
                        "(regions n/a)", kind, untested)
        if scores["note"].iloc[0]:
            log.info("%s classification: %s", kind, scores["note"].iloc[0])
    io.write_table(pd.concat(ttests, ignore_index=True), ttest_path)
    io.write_table(pd.concat(classifications, ignore_index=True), classification_path)


def _fmt(value):
    return "n/a" if value != value else f"{value:.3f}"


def _plot_ttest(result, names, networks, path, kind, column, fdr):
    """Matrix of the t values of the edges with q < fdr (0 elsewhere), by network."""
    tested = result["note"] == ""
    a, b = result["group_a"].iloc[0], result["group_b"].iloc[0]
    if not tested.any():
        plot_message(path, f"{kind}, {column}: {result['note'].iloc[0]}")
        return
    index = {name: k for k, name in enumerate(names)}
    i = result["region_i"].map(index).to_numpy()
    j = result["region_j"].map(index).to_numpy()
    t = result["t"].to_numpy(dtype=np.float64)
    significant = result["significant"].to_numpy(dtype=bool)
    matrix = np.zeros((len(names), len(names)))
    matrix[i[significant], j[significant]] = t[significant]
    matrix[j[significant], i[significant]] = t[significant]
    top = float(np.nanmax(np.abs(t[tested.to_numpy()]))) or 1.0
    plot_matrix(matrix, names, networks, path, vmin=-top, vmax=top,
                title=f"{kind}: t ({column} {a} - {b}), {int(significant.sum())} of "
                      f"{int(tested.sum())} edges with q < {fdr:g}")
