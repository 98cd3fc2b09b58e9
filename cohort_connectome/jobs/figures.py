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
                     n_edges=40):
    """Draw, for each kind, a matrix figure and a connectome figure.

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
    """
    labels = io.read_labels(labels_path)
    coords = labels[["x", "y", "z"]].to_numpy(dtype=float)
    networks = labels["network"].tolist()
    for kind, path in matrix_paths.items():
        matrix, names = io.read_matrix(path)
        if names != list(labels["name"]):
            raise InputError("matrix region names do not match the atlas labels", path=path)
        if np.isnan(matrix).all():  # an excluded run
            for figure in figure_paths[kind].values():
                plot_message(figure, f"{kind}, {title}: run excluded (see the QC table)")
            continue
        if kind in negate:
            matrix, label = -matrix, f"negated {kind}"
        else:
            label = kind
        plot_matrix(matrix, names, networks, figure_paths[kind]["matrix"],
                    title=f"{label}, {title}")
        plot_connectome(matrix, coords, figure_paths[kind]["connectome"], networks=networks,
                        title=f"{label}, {title}", n_edges=n_edges)
