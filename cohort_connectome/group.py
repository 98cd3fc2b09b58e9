"""Group-level aggregation of per-subject connectivity matrices.

`group_mean` is the arithmetic mean nilearn's ``ConnectivityMeasure`` keeps as
``mean_`` for the per-run kinds; `tangent_kind` and `group_sparse_kinds` call
our reproductions of ``ConnectivityMeasure(kind="tangent")`` (`tangent`) and
``GroupSparseCovarianceCV`` (`group_sparse`); `qc_fc` (QC-FC, Ciric et al.
2017) is `scipy.stats.pearsonr` of every edge with mean framewise
displacement, and has no nilearn counterpart; the rest is the long table's
layout and the phenotype contrast.
"""

import numpy as np
import pandas as pd


def group_mean(matrices, present=None):
    """Element-wise mean of subjects' matrices, edge by edge over the subjects
    that have both regions.

    Parameters
    ----------
    matrices : sequence of ndarray, each (n, n)
    present : array-like of bool, shape (n_subjects, n), optional
        The regions with data in each subject (`present_regions`); None: all.

    Returns
    -------
    ndarray, shape (n, n), float64
        ``mean[i, j]`` over the subjects where regions i and j are both
        present (``edge_counts``); NaN where no subject has both.

    Notes
    -----
    A plain arithmetic mean: for correlations it averages r (no Fisher z), as
    nilearn's examples do when they show a group-mean correlation matrix.
    nilearn's ``ConnectivityMeasure.mean_`` needs one region set for every
    subject; here an edge present in every subject has exactly that mean
    (the same sum in the same order), one missing in some subjects the mean
    of the others (``numpy.nanmean`` semantics, but a NaN of a present edge
    still propagates, as it does today).
    """
    stack = np.stack([np.asarray(m, dtype=np.float64) for m in matrices])
    if stack.ndim != 3 or stack.shape[1] != stack.shape[2]:
        raise ValueError(f"expected square matrices of one shape, got {stack.shape[1:]}")
    if present is None:
        return stack.mean(axis=0)
    present = _check_present(present, stack.shape[0], stack.shape[1])
    if present.all():
        return stack.mean(axis=0)
    both = present[:, :, None] & present[:, None, :]
    count = both.sum(axis=0)
    total = np.where(both, stack, 0.0).sum(axis=0)
    mean = np.full(count.shape, np.nan)
    np.divide(total, count, out=mean, where=count > 0)
    return mean


def edge_counts(present):
    """Subjects that have each edge: both of its regions present.

    Parameters
    ----------
    present : array-like of bool, shape (n_subjects, n)

    Returns
    -------
    ndarray of int64, shape (n, n)
        Symmetric; the diagonal counts the subjects with the region.
    """
    present = np.asarray(present, dtype=bool)
    if present.ndim != 2:
        raise ValueError(f"present must be (n_subjects, n_regions), got shape {present.shape}")
    both = present[:, :, None] & present[:, None, :]
    return both.sum(axis=0).astype(np.int64)


def present_regions(names, missing):
    """Mask of the regions with data, from a sidecar's ``MissingRegions``.

    Parameters
    ----------
    names : list of str
        The atlas' regions, in order.
    missing : sequence of str or None
        The regions without data (None: none).

    Returns
    -------
    ndarray of bool, shape (len(names),)

    Raises
    ------
    ValueError
        A missing region that is not in ``names``.
    """
    missing = list(missing or [])
    unknown = [m for m in missing if m not in names]
    if unknown:
        raise ValueError(f"MissingRegions names region(s) not in the atlas: "
                         f"{', '.join(map(str, unknown[:5]))}")
    gone = set(missing)
    return np.array([name not in gone for name in names], dtype=bool)


def _check_present(present, n_subjects, n_regions):
    present = np.asarray(present, dtype=bool)
    if present.shape != (n_subjects, n_regions):
        raise ValueError(f"present must have shape ({n_subjects}, {n_regions}), got "
                         f"{present.shape}")
    return present


def long_table(matrices, names, phenotype):
    """All subjects' edges in one long table.

    Parameters
    ----------
    matrices : dict
        ``{kind: {key: ndarray (n, n)}}`` where ``key`` names a run (or a
        participant).
    names : list of str
        Region names, in matrix order.
    phenotype : list of dict
        One record per run, each with ``participant_id`` (and ``key`` when the
        matrices are keyed by something else, e.g. the run name; ``key`` is
        not written), then any entity and phenotype columns; the table follows
        this order.

    Returns
    -------
    pandas.DataFrame
        Columns ``participant_id``, the phenotype columns, ``kind``,
        ``region_i``, ``region_j``, ``value``; one row per participant, kind
        and region pair with i ≤ j (upper triangle with the diagonal, in
        atlas order).
    """
    names = list(names)
    rows_i, rows_j = np.triu_indices(len(names))
    region_i = np.asarray(names, dtype=object)[rows_i]
    region_j = np.asarray(names, dtype=object)[rows_j]
    pheno = pd.DataFrame(list(phenotype))
    if "participant_id" not in pheno.columns:
        raise ValueError("phenotype records need a participant_id")
    keys = (pheno.pop("key") if "key" in pheno.columns else pheno["participant_id"]).tolist()
    blocks = []
    for key, record in zip(keys, pheno.to_dict("records")):
        for kind, by_key in matrices.items():
            if key not in by_key:
                raise ValueError(f"no {kind} matrix for {key}")
            block = pd.DataFrame({"kind": kind, "region_i": region_i, "region_j": region_j,
                                  "value": np.asarray(by_key[key])[rows_i, rows_j]})
            for column in reversed(pheno.columns):
                block.insert(0, column, record[column])
            blocks.append(block)
    return pd.concat(blocks, ignore_index=True)


# --------------------------------------------------------------------------
# group-level estimators: tangent space, group sparse inverse covariance
# --------------------------------------------------------------------------
#: Kinds computed by the group rule from every subject's time series at once.
GROUP_SPARSE_KINDS = ("groupsparse_precision", "groupsparse_partialcorrelation")
GROUP_KINDS = ("tangent", *GROUP_SPARSE_KINDS)


def tangent_kind(signals_list, estimator="ledoit_wolf", estimator_options=None):
    """Tangent-space connectomes of a group, with how the geometric mean went.

    Parameters
    ----------
    signals_list : sequence of ndarray (n_volumes_s, n_regions)
        Each included run's (or subject's) cleaned signals, at least 2.
    estimator, estimator_options
        The per-subject covariance estimator (``connectivity.estimator``).

    Returns
    -------
    tangents : ndarray (n_subjects, n, n)
        nilearn's ``ConnectivityMeasure(kind="tangent").fit_transform``.
    mean : ndarray (n, n)
        The geometric mean of the covariances (the reference point).
    info : dict
        ``estimator``, ``n_subjects``, ``n_iter``, ``max_iter``, ``tol``,
        ``gradient_norm`` and ``converged`` of the geometric mean.
    """
    import warnings

    from .tangent import tangent_connectivity

    info = {}
    with warnings.catch_warnings():
        # not converged: recorded in info (and logged by the caller)
        warnings.filterwarnings("ignore", message="Maximum number of iterations")
        tangents, mean, _ = tangent_connectivity(
            list(signals_list), estimator=estimator,
            estimator_options=estimator_options or None, info=info)
    info = {"estimator": estimator, "n_subjects": len(tangents), **info}
    return tangents, mean, info


def group_sparse_kinds(signals_list, options=None):
    """Group sparse inverse covariance (``GroupSparseCovarianceCV``) of a group.

    Parameters
    ----------
    signals_list : sequence of ndarray (n_volumes_s, n_regions)
        Each included run's (or subject's) cleaned signals.
    options : dict, optional
        ``GroupSparseCovarianceCV`` parameters (``alphas``, ``n_refinements``,
        ``cv``, ``tol_cv``, ``max_iter_cv``, ``tol``, ``max_iter``,
        ``early_stopping``).

    Returns
    -------
    matrices : dict
        ``{"groupsparse_precision": ndarray (n_subjects, n, n),
        "groupsparse_partialcorrelation": ndarray (n_subjects, n, n)}``.
    info : dict
        The chosen ``alpha``, the ``cv_alphas`` explored (decreasing) and their
        ``cv_scores``, the options, ``n_subjects`` and the share of
        off-diagonal coefficients that are non-zero (``density``).
    """
    from .connectivity import prec_to_partial
    from .group_sparse import GroupSparseCovarianceCV

    options = dict(options or {})
    model = GroupSparseCovarianceCV(**options).fit([np.asarray(s) for s in signals_list])
    precisions = np.moveaxis(model.precisions_, -1, 0)
    partials = np.array([prec_to_partial(p) for p in precisions])
    n = precisions.shape[1]
    off = ~np.eye(n, dtype=bool)
    info = {
        "alpha": float(model.alpha_),
        "cv_alphas": [float(a) for a in model.cv_alphas_],
        "cv_scores": [None if not np.isfinite(s) else float(s) for s in model.cv_scores_],
        "options": options,
        "n_subjects": int(precisions.shape[0]),
        "density": float(np.mean(precisions[0][off] != 0)) if n > 1 else 0.0,
    }
    return {"groupsparse_precision": precisions,
            "groupsparse_partialcorrelation": partials}, info


# --------------------------------------------------------------------------
# from the long table back to matrices
# --------------------------------------------------------------------------
def matrices_from_long(table, names, kind, by="participant_id"):
    """Symmetric matrices of one kind from the long table, one per ``by`` value.

    Rows with several entries per ``by`` value (runs of one participant) are
    averaged.  Returns ``(keys, stack (n_keys, n, n))`` with keys in order of
    first appearance; pairs absent from the table are NaN.
    """
    index = {name: k for k, name in enumerate(names)}
    rows = table[table["kind"] == kind]
    keys = list(dict.fromkeys(rows[by]))
    stack = np.full((len(keys), len(names), len(names)), np.nan)
    if not keys:
        return keys, stack
    grouped = rows.groupby([by, "region_i", "region_j"], sort=False)["value"].mean()
    position = {key: k for k, key in enumerate(keys)}
    subject = np.array([position[k] for k in grouped.index.get_level_values(0)])
    i = np.array([index[r] for r in grouped.index.get_level_values(1)])
    j = np.array([index[r] for r in grouped.index.get_level_values(2)])
    values = grouped.to_numpy(dtype=np.float64)
    stack[subject, i, j] = values
    stack[subject, j, i] = values
    return keys, stack


# --------------------------------------------------------------------------
# phenotype contrasts
# --------------------------------------------------------------------------
def label_text(value):
    """A phenotype value as text for comparisons (1, 1.0 and "1" alike); None when missing."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (float, np.floating)):
        if value != value:
            return None
        if float(value).is_integer():
            return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    text = str(value).strip()
    return text or None


def _level_order(text):
    """Numbers in numeric order, before text in text order."""
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def contrast_levels(values, column, levels=None):
    """The two levels of a phenotype column that are compared.

    Parameters
    ----------
    values : sequence
        The column's values over the cohort (missing values ignored).
    column : str
        Its name, for messages.
    levels : pair or None
        The two levels to compare, needed when the column has more than two.

    Returns
    -------
    (str, str)
        The two levels as text (`label_text`), in the order of ``levels``,
        else sorted (numbers in numeric order).

    Raises
    ------
    ValueError
        One line naming the column: fewer than 2 levels, more than 2 and
        ``levels`` not given, or ``levels`` not found in the column.
    """
    found = sorted({t for t in (label_text(v) for v in values) if t is not None},
                   key=_level_order)
    shown = ", ".join(repr(v) for v in found[:10]) + (", ..." if len(found) > 10 else "")
    if len(found) < 2:
        raise ValueError(f"phenotype column '{column}' has {len(found)} level(s) "
                         f"({shown or 'all values missing'}); a comparison needs 2")
    if levels is None:
        if len(found) > 2:
            raise ValueError(f"phenotype column '{column}' has {len(found)} levels ({shown}); "
                             "choose the 2 to compare with group.levels")
        return found[0], found[1]
    wanted = [label_text(v) for v in levels]
    if len(wanted) != 2 or wanted[0] == wanted[1]:
        raise ValueError(f"group.levels must be 2 different levels of phenotype column "
                         f"'{column}', got {list(levels)}")
    missing = [w for w in wanted if w not in found]
    if missing:
        raise ValueError(f"group.levels {', '.join(map(repr, missing))} not found in phenotype "
                         f"column '{column}' (levels: {shown})")
    return wanted[0], wanted[1]


# --------------------------------------------------------------------------
# QC-FC: edges against head motion
# --------------------------------------------------------------------------
def qc_fc(edges, mean_fd):
    """Correlation of every edge with mean framewise displacement across runs.

    Parameters
    ----------
    edges : ndarray (n_runs, n_edges)
        NaN where a run does not have the edge (a region without data): the
        edge is correlated over the runs that have it.
    mean_fd : ndarray (n_runs,)
        NaN where a run has no framewise displacement: that run is left out.

    Returns
    -------
    r, p : ndarray (n_edges,)
        Pearson correlation and its two-sided p-value
        (`scipy.stats.pearsonr`); NaN for an edge (or a motion vector) that
        is constant, or constant but for rounding noise (range within a few
        float64 units of its values, where pearsonr would correlate the noise),
        or that has fewer than 3 runs.
    n : ndarray of int (n_edges,)
        Runs used for each edge: those with framewise displacement and the
        edge.  The same for every edge when no edge is n/a.

    Notes
    -----
    The edges are grouped by the set of runs that have them, and each group
    is `scipy.stats.pearsonr` of those runs: an edge present in every run
    gives exactly the value it gives when no edge is n/a.
    """
    # scipy.stats (0.35 s to import) is QC-FC's alone: the group rule, on every
    # workflow's critical path, imports this module without needing it
    from scipy import stats

    edges = np.asarray(edges, dtype=np.float64)
    fd = np.asarray(mean_fd, dtype=np.float64)
    r = np.full(edges.shape[1], np.nan)
    p = np.full(edges.shape[1], np.nan)
    valid = np.isfinite(fd)[:, None] & np.isfinite(edges)
    n = valid.sum(axis=0).astype(np.int64)
    for keep, columns in _patterns(valid):
        x, y = edges[keep][:, columns], fd[keep]
        count = int(keep.sum())
        if count < 3 or np.ptp(y) == 0:
            continue
        spread = np.sqrt(((x - x.mean(axis=0)) ** 2).sum(axis=0))
        ok = spread > (4 * np.finfo(np.float64).eps
                       * np.maximum(np.abs(x).max(axis=0), 1e-300) * count)
        if ok.any():
            result = stats.pearsonr(x[:, ok], y[:, None], axis=0)
            index = np.arange(edges.shape[1])[columns][ok]
            r[index], p[index] = result.statistic, result.pvalue
    return r, p, n


def _patterns(valid):
    """``[(rows, columns)]``: the columns of a boolean (n_rows, n_columns)
    array grouped by their pattern of True rows, in order of first column.

    One group (every column, as a slice) when all columns share a pattern.
    """
    if valid.shape[1] == 0:
        return []
    if (valid == valid[:, :1]).all():
        return [(valid[:, 0], slice(None))]
    patterns, inverse = np.unique(valid.T, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = sorted(range(len(patterns)), key=lambda g: int(np.argmax(inverse == g)))
    return [(patterns[g], np.flatnonzero(inverse == g)) for g in order]


# --------------------------------------------------------------------------
# reading the long table back
# --------------------------------------------------------------------------
def read_long_table(path):
    """The group long table written by `long_table` (aggregate_connectomes).

    Parameters
    ----------
    path : path
        The TSV: ``n/a`` is missing; ids and entities (``participant_id``,
        ``session``, ``task``, ``run``) are read as text (``"01"`` stays
        ``"01"``).

    Returns
    -------
    pandas.DataFrame
    """
    return pd.read_csv(path, sep="\t", dtype={"participant_id": str, "session": str,
                                              "task": str, "run": str},
                       na_values=["n/a"], keep_default_na=True, low_memory=False)


# --------------------------------------------------------------------------
# QC-FC: what the table says besides the correlations
# --------------------------------------------------------------------------
def edge_distances(coords):
    """Euclidean distance between the regions of every edge (i < j).

    Parameters
    ----------
    coords : ndarray (n_regions, 3)
        Region coordinates (mm).

    Returns
    -------
    ndarray (n_regions * (n_regions - 1) / 2,)
        In the order of ``np.triu_indices(n_regions, k=1)``.
    """
    coords = np.asarray(coords, dtype=np.float64)
    rows, cols = np.triu_indices(len(coords), k=1)
    return np.linalg.norm(coords[rows] - coords[cols], axis=1)


def qc_fc_note(mean_fd, n):
    """Why QC-FC is not computed for a kind, or ``""`` when it is.

    Parameters
    ----------
    mean_fd : ndarray (n_runs,)
        Mean framewise displacement of the runs (NaN: none).
    n : int
        Runs used by `qc_fc`.

    Returns
    -------
    str
        No framewise displacement at all, fewer than 3 runs with it, or the
        same value for every run; else ``""``.
    """
    fd = np.asarray(mean_fd, dtype=np.float64)
    if not np.isfinite(fd).any():
        return "no framewise displacement (the confounds have no motion columns)"
    if n < 3:
        return f"not computed: {n} run(s) with framewise displacement, 3 needed"
    if np.ptp(fd[np.isfinite(fd)]) == 0:
        return "not computed: mean framewise displacement is the same for every run"
    return ""
