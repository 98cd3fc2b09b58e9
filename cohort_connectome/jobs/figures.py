"""The connectome figures, one job function for two rules:
plot_subject_connectomes (workflow/rules/subject.smk) and
plot_group_connectomes (workflow/rules/group.smk).  The drawing is
`cohort_connectome.plotting`'s (nilearn's ``plot_matrix`` and
``plot_connectome`` in spirit, on matplotlib alone).
"""

import numpy as np

from .. import io
from ..errors import InputError
from ..plotting import plot_connectome, plot_matrix, plot_message


def plot_connectomes(matrix_paths, labels_path, figure_paths, title, negate=(),
                     n_edges=40, empty="run excluded (see the QC table)"):
    """Draw, for each kind, a matrix figure and a connectome figure.

    Regions without data (n/a rows and columns) are grey in the matrix and
    have no node nor edge in the connectome; a matrix that is n/a
    everywhere gives two figures that say ``empty`` instead.

    Parameters
    ----------
    matrix_paths : dict
        ``{kind: path}`` of matrices written by `io.write_matrix`.
    labels_path : path
        The atlas labels table (names, networks, coordinates).
    figure_paths : dict
        ``{kind: {"matrix": path, "connectome": path}}``.
    title : str
        Title suffix, e.g. ``"sub-01, atlas msdl"``.
    negate : sequence of str
        Kinds drawn with the sign flipped (nilearn's example shows -precision).
    n_edges : int
        Strongest edges drawn in each connectome figure.
    empty : str
        Why a matrix is n/a everywhere (an excluded run; a group kind not
        computed).
    """
    labels = io.read_labels(labels_path)
    coords = labels[["x", "y", "z"]].to_numpy(dtype=float)
    networks = labels["network"].tolist()
    for kind, path in matrix_paths.items():
        matrix, names = io.read_matrix(path)
        if names != list(labels["name"]):
            raise InputError("matrix region names do not match the atlas labels", path=path)
        if np.isnan(matrix).all():  # an excluded run, a group kind not computed
            for figure in figure_paths[kind].values():
                plot_message(figure, f"{kind}, {title}: {empty}")
            continue
        if kind in negate:
            matrix, label = -matrix, f"negated {kind}"
        else:
            label = kind
        plot_matrix(matrix, names, networks, figure_paths[kind]["matrix"],
                    title=f"{label}, {title}")
        plot_connectome(matrix, coords, figure_paths[kind]["connectome"], networks=networks,
                        title=f"{label}, {title}", n_edges=n_edges)
