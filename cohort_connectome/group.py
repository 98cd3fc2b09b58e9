"""Group-level aggregation of per-subject connectivity matrices."""

import numpy as np
import pandas as pd


def group_mean(matrices):
    """Element-wise mean of subjects' matrices.

    Parameters
    ----------
    matrices : sequence of ndarray, each (n, n)

    Returns
    -------
    ndarray, shape (n, n), float64

    Notes
    -----
    A plain arithmetic mean: for correlations it averages r (no Fisher z), as
    nilearn's examples do when they show a group-mean correlation matrix.
    """
    stack = np.stack([np.asarray(m, dtype=np.float64) for m in matrices])
    if stack.ndim != 3 or stack.shape[1] != stack.shape[2]:
        raise ValueError(f"expected square matrices of one shape, got {stack.shape[1:]}")
    return stack.mean(axis=0)


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
