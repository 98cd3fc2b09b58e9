"""Group comparison of connectomes: edgewise t-tests and phenotype classification.

Two questions asked of a cohort's connectivity matrices and one phenotype
column (e.g. patient / control):

- `edgewise_ttest`: which edges differ between the two groups?  A two-sample
  t-test on every region pair (``scipy.stats.ttest_ind``), with
  Benjamini-Hochberg false discovery rate control
  (``scipy.stats.false_discovery_control``).  nilearn has no such function.
- `classify_phenotype`: can the phenotype be predicted from the whole
  connectome?  Cross-validated linear SVM accuracy per connectivity kind
  (scikit-learn's ``LinearSVC`` and ``cross_val_score``), as nilearn's
  example ``plot_group_level_connectivity`` does.

Both return a pandas DataFrame with a fixed set of columns, including a
``note`` column: a cohort too small for the analysis gives a table that says
so (empty ``note`` when the analysis ran) instead of an exception, so that a
workflow over a small or heavily censored cohort still completes.  Input
that cannot be analysed at all (e.g. a phenotype with one level) raises
ValueError.
"""

import numbers

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
from sklearn.svm import LinearSVC

from .tangent import sym_matrix_to_vec

#: Columns of `edgewise_ttest`, in order.
TTEST_COLUMNS = ("region_i", "region_j", "group_a", "group_b", "n_a", "n_b", "mean_a",
                 "mean_b", "t", "p", "q", "significant", "note")
#: Columns of `classify_phenotype`, in order.
CLASSIFY_COLUMNS = ("kind", "accuracy_mean", "accuracy_std", "n_splits", "n_repeats", "chance",
                    "n_subjects", "note")


def edgewise_ttest(matrices, groups, names=None, alpha=0.05, levels=None, column=None,
                   equal_var=True, include_diagonal=False):
    """Two-sample t-test of every edge between the two groups of a phenotype.

    Parameters
    ----------
    matrices : array-like, shape (n_subjects, n, n), or sequence of (n, n)
        One connectivity matrix per subject (any kind; only the upper
        triangle is read).  NaN (n/a) where a subject does not have the edge
        (a region without data): each edge is tested on the subjects that
        have it.
    groups : array-like or pandas.Series, shape (n_subjects,)
        Group label of each subject, in the order of `matrices`.  Missing
        labels (None, NaN, empty string) leave the subject out.
    names : sequence of str or None, default=None
        Region names in matrix order; None uses the indices 0..n-1.
    alpha : float in (0, 1), default=0.05
        False discovery rate of the ``significant`` column.
    levels : pair of labels or None, default=None
        ``(a, b)``: the two groups, in the order of the output (t > 0 when
        group a has the larger mean).  None takes the two labels found,
        sorted.
    column : str or None, default=None
        Name of the phenotype column, for messages; None uses the name of a
        pandas Series `groups`, else ``"groups"``.
    equal_var : bool, default=True
        Student's t-test (pooled variance); False gives Welch's test.
    include_diagonal : bool, default=False
        Test the diagonal too (variances for the covariance kind; constant
        for correlations).

    Returns
    -------
    pandas.DataFrame
        One row per edge (i < j, or i <= j with `include_diagonal`), in
        row-major order of the upper triangle, with the columns
        `TTEST_COLUMNS`:

        - ``region_i``, ``region_j``: region names;
        - ``group_a``, ``group_b``: the two labels (same on every row);
          ``n_a``, ``n_b``: subjects in each that have the edge (every
          subject of the group when no value is n/a); ``mean_a``,
          ``mean_b``: the edge's group means over those (n/a for none);
        - ``t``, ``p``: ``scipy.stats.ttest_ind(a, b, equal_var=equal_var)``
          (two-sided); ``q``: Benjamini-Hochberg adjusted p-values,
          ``scipy.stats.false_discovery_control(p, method="bh")`` over the
          edges tested; ``significant``: ``q < alpha``;
        - ``note``: empty when the edge was tested, otherwise why not (t, p,
          q are then NaN and ``significant`` False).  An edge constant within
          both groups, up to rounding (spread at most 4 float64 eps times its
          largest magnitude), is not tested: its t is undefined, and it does
          not count in the FDR correction.  When a group has fewer than 2 subjects no edge
          is tested and every row says so; the means are still given.  An
          edge that fewer than 2 subjects of a group have (n/a in the others)
          is not tested either, says so, and does not count in the FDR
          correction.

    Raises
    ------
    ValueError
        Matrices not of one square shape or with infinite values; `groups` not of
        length n_subjects; a number of distinct labels other than 2 (the
        message names the column and the labels); `levels` not among the
        labels; `names` of the wrong length; `alpha` outside (0, 1).

    Notes
    -----
    Student's t-test is the default: it is the textbook mass-univariate
    edgewise test (e.g. NBS) and has the more power when the groups' variances
    are similar.  With strongly unbalanced groups whose variances differ it
    can be anti-conservative; pass ``equal_var=False`` for Welch's test.
    No correction for covariates (age, motion, site) is made.
    """
    stack = _as_matrix_stack(matrices)
    n_subjects, n_regions = stack.shape[0], stack.shape[1]
    column = _column_name(groups, column)
    labels = _labels(groups, n_subjects, column)
    if not (isinstance(alpha, numbers.Real) and 0 < alpha < 1):
        raise ValueError(f"alpha must be a float in (0, 1), got {alpha!r}")
    names = _region_names(names, n_regions)

    found = _levels_found(labels)
    if len(found) != 2:
        raise ValueError(
            f"edgewise_ttest compares exactly 2 groups, but phenotype column {column!r} has "
            f"{len(found)} level(s): {_show(found)}")
    if levels is None:
        levels = tuple(found)
    else:
        levels = tuple(levels)
        if len(levels) != 2 or set(levels) != set(found):
            raise ValueError(f"levels {_show(levels)} must be the 2 levels of phenotype column "
                             f"{column!r}: {_show(found)}")

    rows, cols = np.triu_indices(n_regions, k=0 if include_diagonal else 1)
    edges = stack[:, rows, cols]
    in_a = np.array([label == levels[0] for label in labels], dtype=bool)
    in_b = np.array([label == levels[1] for label in labels], dtype=bool)
    n_edges = edges.shape[1]
    has = ~np.isnan(edges)
    n_a = (has & in_a[:, None]).sum(axis=0)
    n_b = (has & in_b[:, None]).sum(axis=0)
    mean_a, mean_b = _present_mean(edges[in_a]), _present_mean(edges[in_b])

    t = np.full(n_edges, np.nan)
    p = np.full(n_edges, np.nan)
    q = np.full(n_edges, np.nan)
    note = np.full(n_edges, "", dtype=object)
    group_a, group_b = int(in_a.sum()), int(in_b.sum())
    if min(group_a, group_b) < 2:
        small = levels[0] if group_a < 2 else levels[1]
        note[:] = (f"not tested: group {small!r} of phenotype column {column!r} has "
                   f"{min(group_a, group_b)} subject(s); a two-sample t-test needs at least 2 "
                   "per group")
    else:
        tested = np.zeros(n_edges, dtype=bool)
        for keep, columns in _edge_patterns(has):
            a, b = edges[keep & in_a][:, columns], edges[keep & in_b][:, columns]
            index = np.arange(n_edges)[columns]
            if min(len(a), len(b)) < 2:
                small = levels[0] if len(a) < 2 else levels[1]
                note[index] = (f"not tested: n/a in {n_subjects - int(keep.sum())} subject(s) "
                               f"(a region without data); {min(len(a), len(b))} subject(s) of "
                               f"group {small!r} have the edge, a two-sample t-test needs at "
                               "least 2 per group")
                continue
            # constant up to rounding (e.g. a correlation diagonal of 1 - 1e-16)
            spread = np.maximum(np.ptp(a, axis=0), np.ptp(b, axis=0))
            scale = np.maximum(np.abs(a).max(axis=0), np.abs(b).max(axis=0))
            constant = spread <= 4 * np.finfo(np.float64).eps * scale
            note[index[constant]] = "not tested: constant within both groups"
            varying = ~constant
            if np.any(varying):
                result = stats.ttest_ind(a[:, varying], b[:, varying], axis=0,
                                         equal_var=equal_var)
                t[index[varying]] = result.statistic
                p[index[varying]] = result.pvalue
                tested[index[varying]] = True
        if np.any(tested):
            q[tested] = stats.false_discovery_control(p[tested], method="bh")

    names = np.asarray(names, dtype=object)
    table = pd.DataFrame({
        "region_i": names[rows],
        "region_j": names[cols],
        "group_a": pd.Series([levels[0]] * n_edges, dtype=object),
        "group_b": pd.Series([levels[1]] * n_edges, dtype=object),
        "n_a": n_a.astype(np.int64),
        "n_b": n_b.astype(np.int64),
        "mean_a": mean_a,
        "mean_b": mean_b,
        "t": t,
        "p": p,
        "q": q,
        "significant": np.nan_to_num(q, nan=1.0) < alpha,
        "note": note,
    })
    return table[list(TTEST_COLUMNS)]


def classify_phenotype(vectors_by_kind, labels, n_splits=5, n_repeats=10, seed=0,
                       column=None):
    """Cross-validated accuracy of predicting a phenotype from connectomes.

    Parameters
    ----------
    vectors_by_kind : dict of str to array-like
        ``kind -> features``: either vectors, shape (n_subjects, n_features),
        or matrices, shape (n_subjects, n, n), which are vectorized as nilearn's
        ``ConnectivityMeasure(vectorize=True)`` does (`sym_matrix_to_vec`:
        lower triangle with the diagonal divided by sqrt(2)).  Rows follow
        `labels`.  A feature n/a (NaN) in any subject with a label (an edge
        of a region without data in that subject) is left out for every
        subject: the classifier needs one feature set.
    labels : array-like or pandas.Series, shape (n_subjects,)
        Phenotype label of each subject (2 or more classes).  Missing labels
        (None, NaN, empty string) leave the subject out.
    n_splits : int >= 2, default=5
        Folds of each stratified K-fold.
    n_repeats : int >= 1, default=10
        Repetitions with different shuffles.
    seed : int, default=0
        ``random_state`` of the splits and of the classifier.
    column : str or None, default=None
        Name of the phenotype column, for messages; None uses the name of a
        pandas Series `labels`, else ``"labels"``.

    Returns
    -------
    pandas.DataFrame
        One row per kind, in the order of `vectors_by_kind`, with the columns
        `CLASSIFY_COLUMNS`:

        - ``kind``;
        - ``accuracy_mean``, ``accuracy_std``: mean and standard deviation
          (``ddof=0``) of the test accuracy over all ``n_splits * n_repeats``
          folds;
        - ``n_splits``, ``n_repeats``: as requested;
        - ``chance``: the majority-class rate, the accuracy of always
          predicting the most frequent class;
        - ``n_subjects``: the subjects with a label;
        - ``note``: empty when the classification ran on every feature;
          when features with n/a were left out, how many (e.g. "ran on 36
          of 78 features: 42 n/a in some subject left out"); otherwise why
          not (accuracies are then NaN): fewer subjects in the smallest class
          than `n_splits`, or no feature present in every subject.

    Raises
    ------
    ValueError
        Fewer than 2 distinct labels (the message names the column), a
        feature array whose number of rows differs from the number of labels
        or with infinite values, bad `n_splits` / `n_repeats`.

    Notes
    -----
    The classifier is scikit-learn's ``LinearSVC(random_state=seed)`` with its
    default settings (squared hinge loss, C=1, ``dual="auto"``) on the raw
    features, as in nilearn's example *"Classification of age groups using
    functional connectivity"* (``plot_group_level_connectivity``); the splits
    are ``RepeatedStratifiedKFold(n_splits, n_repeats, random_state=seed)``.
    The result is deterministic for a given seed.

    Features are taken as given: for the tangent kind they should come from
    one embedding of all subjects (nilearn's example also embeds the pooled
    groups once).  That reference is computed without the labels, so no
    label information leaks into the test folds, but the test subjects do
    take part in it.  liblinear's ``ConvergenceWarning`` is not silenced.
    """
    if not isinstance(vectors_by_kind, dict) or not vectors_by_kind:
        raise ValueError("vectors_by_kind must be a non-empty dict of kind -> features")
    for name, value in (("n_splits", n_splits), ("n_repeats", n_repeats)):
        minimum = 2 if name == "n_splits" else 1
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    column = _column_name(labels, column, default="labels")
    labels_kept = _labels(labels, None, column)
    n_total = len(labels_kept)
    found = _levels_found(labels_kept)
    if len(found) < 2:
        raise ValueError(
            f"classify_phenotype needs at least 2 classes, but phenotype column {column!r} has "
            f"{len(found)} level(s): {_show(found)}")
    keep = np.array([not _missing(label) for label in labels_kept], dtype=bool)
    y_labels = [label for label, k in zip(labels_kept, keep) if k]
    y = np.array([found.index(label) for label in y_labels])
    counts = np.bincount(y, minlength=len(found))
    chance = float(counts.max() / counts.sum())
    smallest = int(np.argmin(counts))

    features = {}
    for kind, value in vectors_by_kind.items():
        x = np.asarray(value)
        if x.dtype.kind not in "biuf":
            raise ValueError(f"features of kind {kind!r} must be real numbers, got dtype {x.dtype}")
        if x.ndim == 3:
            x = sym_matrix_to_vec(x)
        if x.ndim != 2:
            raise ValueError(f"features of kind {kind!r} must be (n_subjects, n_features) vectors "
                             f"or (n_subjects, n, n) matrices, got shape {x.shape}")
        if x.shape[0] != n_total:
            raise ValueError(f"features of kind {kind!r} have {x.shape[0]} rows but phenotype "
                             f"column {column!r} has {n_total} labels")
        x = x[keep].astype(np.float64)
        if np.isinf(x).any():
            raise ValueError(f"features of kind {kind!r} contain infinite values")
        features[kind] = x

    rows = []
    for kind, x in features.items():
        row = {"kind": kind, "accuracy_mean": np.nan, "accuracy_std": np.nan,
               "n_splits": int(n_splits), "n_repeats": int(n_repeats), "chance": chance,
               "n_subjects": int(len(y)), "note": ""}
        complete = ~np.isnan(x).any(axis=0)
        if not complete.all():
            x = x[:, complete]
            row["note"] = (f"ran on {int(complete.sum())} of {complete.size} features: "
                           f"{int((~complete).sum())} n/a in some subject left out")
        if x.shape[1] == 0:
            row["note"] = f"not run: every one of the {complete.size} features is n/a in " \
                          "some subject"
        elif counts[smallest] < n_splits:
            row["note"] = (f"not run: class {found[smallest]!r} of phenotype column {column!r} "
                           f"has {int(counts[smallest])} subject(s), fewer than "
                           f"n_splits={n_splits}")
        else:
            cv = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats,
                                         random_state=seed)
            scores = cross_val_score(LinearSVC(random_state=seed), x, y, cv=cv,
                                     scoring="accuracy")
            row["accuracy_mean"] = float(np.mean(scores))
            row["accuracy_std"] = float(np.std(scores))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(CLASSIFY_COLUMNS))


# --------------------------------------------------------------------------
# helpers

def _as_matrix_stack(matrices):
    try:
        stack = np.asarray(matrices)
    except ValueError:
        raise ValueError("matrices must all have one square shape") from None
    if stack.dtype.kind not in "biuf":
        raise ValueError(f"matrices must be real numbers (one square shape), got dtype "
                         f"{stack.dtype}")
    if stack.ndim != 3 or stack.shape[1] != stack.shape[2]:
        raise ValueError(f"matrices must have shape (n_subjects, n, n), got {stack.shape}")
    stack = stack.astype(np.float64)
    if np.isinf(stack).any():
        raise ValueError("matrices contain non-finite values (infinite; n/a is NaN)")
    return stack


def _present_mean(values):
    """Column means of (n_subjects, n_edges) over the non-NaN values: NaN
    for a column without any; ``values.mean(axis=0)`` itself when no value
    is NaN."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] == 0:
        return np.full(values.shape[1], np.nan)
    nan = np.isnan(values)
    if not nan.any():
        return values.mean(axis=0)
    count = (~nan).sum(axis=0)
    mean = np.full(values.shape[1], np.nan)
    np.divide(np.where(nan, 0.0, values).sum(axis=0), count, out=mean, where=count > 0)
    return mean


def _edge_patterns(has):
    """The edges grouped by the subjects that have them (`group._patterns`)."""
    from .group import _patterns

    return _patterns(has)


def _column_name(values, column, default="groups"):
    if column is not None:
        return str(column)
    if isinstance(values, pd.Series) and values.name is not None:
        return str(values.name)
    return default


def _labels(values, n_subjects, column):
    """Labels as a list of Python objects, missing values as None; `n_subjects`
    (None: any) is the expected length."""
    if isinstance(values, pd.Series):
        values = values.astype(object).tolist()
    elif isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"phenotype column {column!r} must be 1D, got shape {values.shape}")
        values = values.tolist()
    elif isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ValueError(f"phenotype column {column!r} must be a sequence of labels, got "
                         f"{type(values).__name__}")
    values = list(values)
    if n_subjects is not None and len(values) != n_subjects:
        raise ValueError(f"phenotype column {column!r} has {len(values)} labels for "
                         f"{n_subjects} subjects")
    return [None if _missing(v) else v for v in values]


def _missing(value):
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    return isinstance(value, numbers.Real) and value != value


def _levels_found(labels):
    found = []
    for label in labels:
        if label is not None and label not in found:
            found.append(label)
    try:
        return sorted(found)
    except TypeError:
        return sorted(found, key=str)


def _show(levels):
    return "[" + ", ".join(repr(v) for v in levels) + "]"


def _region_names(names, n_regions):
    if names is None:
        return list(range(n_regions))
    names = list(names)
    if len(names) != n_regions:
        raise ValueError(f"names has {len(names)} entries for {n_regions} regions")
    return names


# --------------------------------------------------------------------------
# a contrast with a missing group
# --------------------------------------------------------------------------
def untested_contrast(matrices, groups, names, levels, column, kind, n_splits=5,
                      n_repeats=10):
    """The t-test and classification tables of a contrast that cannot be run.

    When the included subjects cover only one of the two levels (or none),
    the tables keep their columns: the group sizes and the mean of each edge
    in the group present (over the subjects that have the edge, as in
    `edgewise_ttest`), NaN statistics, and a ``note`` naming the missing
    group.

    Parameters
    ----------
    matrices : ndarray (n_subjects, n_regions, n_regions)
    groups : sequence of str
        Each subject's level (one of ``levels``).
    names : sequence of str
        Region names.
    levels : pair of str
        ``(group_a, group_b)``.
    column : str
        The phenotype column.
    kind : str
        The connectivity kind (a column of the classification table).
    n_splits, n_repeats : int
        The classification settings, recorded.

    Returns
    -------
    ttest : pandas.DataFrame
        `TTEST_COLUMNS`, one row per edge i < j.
    classification : pandas.DataFrame
        `CLASSIFY_COLUMNS`, one row.
    """
    level_a, level_b = levels
    matrices = np.asarray(matrices, dtype=np.float64)
    missing = level_a if level_a not in set(groups) else level_b
    note = f"not tested: no included subject in group '{missing}' of phenotype column '{column}'"
    rows, cols = np.triu_indices(len(names), k=1)
    in_a = np.array([g == level_a for g in groups], dtype=bool)
    ttest = pd.DataFrame({
        "region_i": np.asarray(names, dtype=object)[rows],
        "region_j": np.asarray(names, dtype=object)[cols],
        "group_a": level_a, "group_b": level_b,
        "n_a": (~np.isnan(matrices[in_a][:, rows, cols])).sum(axis=0),
        "n_b": (~np.isnan(matrices[~in_a][:, rows, cols])).sum(axis=0),
        "mean_a": _present_mean(matrices[in_a][:, rows, cols]),
        "mean_b": _present_mean(matrices[~in_a][:, rows, cols]),
        "t": np.nan, "p": np.nan, "q": np.nan, "significant": False, "note": note,
    })[list(TTEST_COLUMNS)]
    classification = pd.DataFrame([{
        "kind": kind, "accuracy_mean": np.nan, "accuracy_std": np.nan,
        "n_splits": int(n_splits), "n_repeats": int(n_repeats),
        "chance": np.nan, "n_subjects": len(groups),
        "note": note.replace("not tested", "not run")}])[list(CLASSIFY_COLUMNS)]
    return ttest, classification
