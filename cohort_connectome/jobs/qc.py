"""Jobs of the quality-control rules (workflow/rules/qc.smk): one run's QC
figure and the cohort's QC-FC.

The numerics are `cohort_connectome.group`'s (`qc_fc`: edge-motion
correlation, `qc_fc_note`, `edge_distances`) and `cohort_connectome.confounds`
(the regressors cleaning used); the figures are `cohort_connectome.plotting`'s.
"""

import numpy as np
import pandas as pd

from .. import io
from ..group import (edge_distances, matrices_from_long, qc_fc as correlate, qc_fc_note,
                     read_long_table)
from ..cohort import read_phenotype
from ..group import label_text
from ..plotting import plot_message, plot_motion_by_group, plot_qcfc, plot_run_qc
from ..qc import excluded_info, motion_by_group
from .runtime import log


def qc_fc(table_path, qc_path, labels_path, output_path, figure_path, title=""):
    """QC-FC: the correlation, across included runs, of every edge with the
    run's mean framewise displacement, per kind, and its dependence on the
    distance between the regions (a motion artefact shows as many non-zero
    correlations, stronger for close regions).

    Writes one row per kind and edge (``kind, region_i, region_j,
    distance_mm, r, p, n_runs, note``) and a figure (histogram and distance
    plot per kind).  Runs without FD are left out; with fewer than 3 runs with
    FD, the table's ``note`` and the figure say so.  An edge n/a in some runs
    (a region without data) is correlated over the runs that have it
    (``n_runs`` per edge; fewer than 3: n/a, and its ``note`` says so).
    """
    table = read_long_table(table_path)
    qc = pd.read_csv(qc_path, sep="\t", dtype=str, keep_default_na=False)
    entities = [c for c in ("session", "task", "run") if c in qc.columns]
    qc = qc[qc["excluded"] == ""]

    def unit_keys(frame):
        parts = [frame["participant_id"].astype(str)]
        parts += [frame[c].fillna("").astype(str) for c in entities]
        return pd.Series(["|".join(v) for v in zip(*parts)], index=frame.index)

    table["unit"] = unit_keys(table)
    fd_by_unit = dict(zip(unit_keys(qc), pd.to_numeric(qc["mean_fd"].replace("n/a", ""),
                                                       errors="coerce")))
    labels = io.read_labels(labels_path)
    names = list(labels["name"])
    rows, cols = np.triu_indices(len(names), k=1)
    distance = edge_distances(labels[["x", "y", "z"]].to_numpy(dtype=float))
    kinds = list(dict.fromkeys(table["kind"]))
    blocks, results = [], {}
    for kind in kinds:
        units, stack = matrices_from_long(table, names, kind, by="unit")
        fd = np.array([fd_by_unit.get(u, np.nan) for u in units], dtype=np.float64)
        r, p, n = correlate(stack[:, rows, cols], fd)
        note = qc_fc_note(fd, int(n.max()) if n.size else 0)
        edge_note = np.where(np.isfinite(r), "", note or "not computed: edge constant "
                             "across runs").astype(object)
        if not note:
            few = ~np.isfinite(r) & (n < 3)
            edge_note[few] = [f"not computed: {k} run(s) with framewise displacement have "
                              "the edge (a region n/a in the others), 3 needed"
                              for k in n[few]]
        blocks.append(pd.DataFrame({
            "kind": kind, "region_i": np.asarray(names, dtype=object)[rows],
            "region_j": np.asarray(names, dtype=object)[cols], "distance_mm": distance,
            "r": r, "p": p, "n_runs": n, "note": edge_note}))
        results[kind] = {"r": r, "p": p, "distance": distance,
                         "n": int(n.max()) if n.size else 0, "note": note}
    io.write_table(pd.concat(blocks, ignore_index=True), output_path)
    notes = {results[k]["note"] for k in kinds}
    if all(results[k]["note"] for k in kinds):
        plot_message(figure_path, f"QC-FC, {title}: {sorted(notes)[0]}")
        log.warning("QC-FC not computed: %s", "; ".join(sorted(notes)))
        return
    plot_qcfc(figure_path, {k: v for k, v in results.items() if not v["note"]},
              title=f"QC-FC, {title}")
    for kind in kinds:
        r = results[kind]["r"]
        if np.isfinite(r).any():
            log.info("%s: median |QC-FC r| %.3f over %d runs", kind,
                     np.nanmedian(np.abs(r)), results[kind]["n"])


def plot_subject_qc(raw_path, timeseries_path, sidecar_path, qc_path, labels_path,
                    figure_path, clean, confounds_path=None, title="", subject=None):
    """One run's QC figure (`plotting.plot_run_qc`) from the outputs of
    extract_timeseries and clean_timeseries: framewise displacement and
    censored volumes (the per-volume QC table), the confound regressors used
    (read again as cleaning read them), and the raw and cleaned region signals
    as carpets ordered by network."""
    # here, not at the top: the confounds reader brings scikit-learn and
    # pandas' parsers (0.45 s of imports), which qc_fc does not need
    from ..confounds import read_run_confounds

    raw, names = io.read_timeseries(raw_path, subject=subject)
    cleaned, _ = io.read_timeseries(timeseries_path, subject=subject)
    info = io.read_json(sidecar_path)
    if len(raw) == 0 and excluded_info(info):  # excluded before its data were read
        plot_message(figure_path, "{}: run excluded at {} ({})".format(
            title, *excluded_info(info)))
        log.info("QC figure: run excluded at %s", info.get("ExcludedStage"))
        return
    qc = pd.read_csv(qc_path, sep="\t", na_values=["n/a"])
    labels = io.read_labels(labels_path)
    networks = (list(labels["network"]) if list(labels["name"]) == names else None)
    confounds, confound_names = None, []
    if confounds_path and info.get("Confounds"):
        confounds, confound_names = read_run_confounds(
            confounds_path, len(raw), strategy=clean.get("strategy"),
            columns=clean.get("confounds"), subject=subject)
    plot_run_qc(figure_path, qc["framewise_displacement"].to_numpy(dtype=float),
                qc["kept"].to_numpy(dtype=bool), raw, cleaned, networks=networks,
                confounds=confounds, confound_names=confound_names,
                fd_threshold=info.get("FramewiseDisplacementThreshold"), title=title,
                excluded=info.get("Excluded"))
    log.info("QC figure: %d of %d volumes kept", int(qc["kept"].sum()), len(qc))


def plot_cohort_motion(qc_path, participants_path, figure_path, column=None, levels=None,
                       title=""):
    """The runs' mean framewise displacement by level of phenotype ``column``
    (``group.compare``; every run in one group without it), the levels compared
    (``levels``, else those of the column in table order), with a t-test."""
    qc = io.read_table(qc_path, dtype={"participant_id": str})
    if column is None:
        groups = {p: "all runs" for p in qc["participant_id"]}
    else:
        phenotype = read_phenotype(participants_path).drop_duplicates("participant_id")
        values = dict(zip(phenotype["participant_id"], map(label_text, phenotype[column])))
        wanted = [label_text(v) for v in levels] if levels else None
        groups = {p: values[p] for p in qc["participant_id"]
                  if values.get(p) is not None and (wanted is None or values[p] in wanted)}
        if wanted:
            groups = dict(sorted(groups.items(), key=lambda item: wanted.index(item[1])))
    by_group, test = motion_by_group(qc, groups)
    if column is not None:
        title = f"{title}: mean FD by {column}" if title else f"mean FD by {column}"
    plot_motion_by_group(figure_path, by_group, test, title=title)
