"""Figures of connectivity matrices: a heatmap and a glass-brain connectome.

Plain matplotlib (object-oriented API: ``Figure`` + ``FigureCanvasAgg``, never
``pyplot``), imported lazily so that importing this module stays cheap.  The
two figures follow nilearn's example "Extracting signals of a probabilistic
atlas of rest functional regions" (``plotting.plot_matrix`` and
``plotting.plot_connectome``) in spirit, not pixel for pixel.

Regions without data (n/a rows and columns, see `signal.missing_regions`)
are drawn grey in the matrix and left out of the connectome (no node, no
edge); a figure without n/a is drawn exactly as before.

Reproducibility: every figure is drawn under matplotlib's ``"default"`` style
(so a user's matplotlibrc does not change the output), saved as PNG at a fixed
dpi with no ``Software`` tag and nothing time-dependent, so rerunning a rule
gives byte-identical files.  Files are written atomically: drawn into a
temporary file next to the target, then moved over it with ``os.replace``; a
failure leaves no partial output (and an existing file untouched).
"""

import functools
import math
from pathlib import Path

import numpy as np

from .errors import InputError
from .template import brain_outline_projections

MATRIX_DPI = 150
CONNECTOME_DPI = 150

#: Default share of the off-diagonal (upper-triangle) pairs drawn as edges by
#: `plot_connectome` when neither ``n_edges`` nor ``edge_threshold`` is given.
DEFAULT_EDGE_FRACTION = 0.05

_PNG_METADATA = {"Software": None}
_OUTLINE_RESOLUTION = 2.0  # mm
_OUTLINE_FILL = "0.94"
_OUTLINE_LINE = "0.55"
#: Colour of n/a cells in a matrix figure.
_NA_COLOUR = "0.75"


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------
def _check_matrix(matrix, allow_nan=False):
    """Float copy of a square, finite 2D matrix, or `InputError`; with
    ``allow_nan`` NaN (n/a) is accepted, infinity is not."""
    try:
        m = np.array(matrix, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"matrix is not numeric: {exc}") from None
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise InputError(f"matrix must be square 2D, got shape {m.shape}")
    if m.shape[0] == 0:
        raise InputError("matrix is empty (0 regions)")
    bad = np.isinf(m) if allow_nan else ~np.isfinite(m)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(
            f"matrix has {int(bad.sum())} non-finite value(s) (NaN or inf), "
            f"first at row {i}, column {j}: {m[i, j]}"
        )
    return m


def _check_length(values, n, what):
    """List of ``values`` after checking it has ``n`` entries."""
    if isinstance(values, (str, bytes)):
        raise InputError(f"{what} must be a sequence of {n} entries, got a string")
    values = list(values)
    if len(values) != n:
        raise InputError(f"{what} has {len(values)} entries but the matrix has {n} regions")
    return values


def _check_coords(coords, n):
    try:
        c = np.array(coords, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"coords are not numeric: {exc}") from None
    if c.ndim != 2 or c.shape[1] != 3:
        raise InputError(f"coords must have shape (n, 3), got {c.shape}")
    if c.shape[0] != n:
        raise InputError(f"coords has {c.shape[0]} rows but the matrix has {n} regions")
    if not np.isfinite(c).all():
        raise InputError("coords contain non-finite values (NaN or inf)")
    return c


def _symmetric_limits(values, vmin=None, vmax=None):
    """Colour limits, symmetric around 0 unless both are given."""
    if vmin is None and vmax is None:
        top = float(np.max(np.abs(values))) if np.size(values) else 0.0
        top = top if top > 0 else 1.0
        vmin, vmax = -top, top
    elif vmin is None:
        vmin = -abs(float(vmax))
    elif vmax is None:
        vmax = abs(float(vmin))
    vmin, vmax = float(vmin), float(vmax)
    if not (math.isfinite(vmin) and math.isfinite(vmax)) or vmin >= vmax:
        raise InputError(f"colour limits must satisfy vmin < vmax, got vmin={vmin}, vmax={vmax}")
    return vmin, vmax


def _off_diagonal(m):
    return m[~np.eye(m.shape[0], dtype=bool)]


def _finite(values):
    """``values`` without its NaN (n/a) entries; ``values`` itself when it has none."""
    nan = np.isnan(values)
    return values[~nan] if nan.any() else values


# --------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------
def _freeze_layout(fig, decimals=4):
    """Solve the constrained layout once, round every axes position, and fix it.

    The constrained-layout solver (kiwisolver) returns positions that differ
    in the last bits from one process to the next, which made about one run
    in five draw a few pixels differently.  Rounding to 1e-4 of the figure
    (a fraction of a pixel) makes the drawing byte-identical.

    The engine is then removed (`_drop_layout_engine`), so that ``savefig``
    draws the figure once.
    """
    engine = fig.get_layout_engine()
    if engine is None:
        return
    engine.execute(fig)
    _drop_layout_engine(fig)
    for ax in fig.axes:
        ax.set_position(np.round(ax.get_position().bounds, decimals))


def _drop_layout_engine(fig):
    """Leave ``fig`` without a layout engine, so that ``savefig`` draws it once.

    ``savefig`` draws a figure that has a layout engine twice: a dry run (every
    artist and text laid out, nothing rasterized) to let the engine act, then
    the drawing itself.  ``set_layout_engine("none")`` leaves a placeholder
    engine, which still costs the dry run; ``set_layout_engine(None)``
    removes the engine under the ``"default"`` style that every figure is
    drawn in (no autolayout, no constrained layout by default).  The pixels
    are the same either way.
    """
    fig.set_layout_engine(None)


def _save_png(fig, path, dpi):
    """Save ``fig`` to ``path`` as a reproducible PNG, atomically."""
    from .io import atomic_path

    _freeze_layout(fig)
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fig.savefig(fh, format="png", dpi=dpi, metadata=_PNG_METADATA)
    return path


def _new_figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style():
    import matplotlib.style

    return matplotlib.style.context("default")


# --------------------------------------------------------------------------
# ordering
# --------------------------------------------------------------------------
def order_by_network(networks):
    """Order of region indices that groups the regions by network.

    Networks come in the order of their first appearance in ``networks`` (so
    an atlas's own ordering, e.g. MSDL's, is kept) and regions keep their
    original relative order within a network (a stable sort).  Regions that
    are already grouped therefore come back as ``arange(n)``.

    Parameters
    ----------
    networks : sequence of hashable, length n
        Network name (or id) of every region.

    Returns
    -------
    order : ndarray of int, shape (n,)
        A permutation of ``range(n)``; ``matrix[np.ix_(order, order)]`` is the
        matrix reordered by network.
    """
    if isinstance(networks, (str, bytes)):
        raise InputError("networks must be a sequence of names, got a string")
    networks = list(networks)
    rank = {}
    for name in networks:
        rank.setdefault(name, len(rank))
    keys = np.array([rank[name] for name in networks], dtype=np.int64)
    return np.argsort(keys, kind="stable").astype(np.intp)


def _network_groups(networks_in_order):
    """``[(name, start, stop), ...]`` runs of equal networks along an ordered list."""
    groups = []
    start = 0
    for k in range(1, len(networks_in_order) + 1):
        if k == len(networks_in_order) or networks_in_order[k] != networks_in_order[start]:
            groups.append((networks_in_order[start], start, k))
            start = k
    return groups


# --------------------------------------------------------------------------
# matrix heatmap
# --------------------------------------------------------------------------
def plot_matrix(matrix, labels, networks, path, title="", vmin=None, vmax=None,
                cmap="RdBu_r", zero_diagonal=True):
    """Heatmap of a square connectivity matrix, regions grouped by network.

    Rows and columns are reordered with `order_by_network`; thin lines
    separate the networks, whose names are written along the right side.  By
    default the colour limits are symmetric around 0, ``vmax = max |off-diagonal|``,
    and the diagonal is set to 0 (as nilearn's example does before calling
    ``plot_matrix``), so that it does not dominate the colour scale.

    Parameters
    ----------
    matrix : array_like, shape (n, n)
        Finite values, or NaN (n/a: drawn grey, left out of the colour
        limits; the title says "grey: n/a").  Need not be symmetric.
    labels : sequence of str, length n, or None
        Region names (shown on both axes); None numbers the regions from 0.
    networks : sequence of hashable, length n, or None
        Network of every region; None keeps the given order, with no
        separators or network names.
    path : str or os.PathLike
        Output PNG; parent folders are created.
    title : str
        Figure title.
    vmin, vmax : float, optional
        Colour limits.  Only one given: the other is its negative.
    cmap : str
        Matplotlib colormap name.
    zero_diagonal : bool
        Set the diagonal to 0 before drawing.

    Returns
    -------
    order : ndarray of int, shape (n,)
        The region order used for the rows and columns.

    Raises
    ------
    ValueError (`InputError`)
        If the matrix is not square or has infinite values, if labels / networks
        do not have one entry per region, or if the colour limits are inconsistent.
    """
    m = _check_matrix(matrix, allow_nan=True)
    has_na = bool(np.isnan(m).any())
    if has_na:
        title = f"{title} (grey: n/a)" if title else "grey: n/a"
    n = m.shape[0]
    labels = [str(i) for i in range(n)] if labels is None else _check_length(labels, n, "labels")
    labels = [str(lab).strip() for lab in labels]
    if networks is not None:
        networks = _check_length(networks, n, "networks")
        order = order_by_network(networks)
    else:
        order = np.arange(n, dtype=np.intp)
    if zero_diagonal:  # an n/a region keeps its n/a diagonal
        np.fill_diagonal(m, np.where(np.isnan(np.diag(m)), np.nan, 0.0) if has_na else 0.0)
    vmin, vmax = _symmetric_limits(_finite(_off_diagonal(m) if n > 1 else m), vmin, vmax)
    m = m[np.ix_(order, order)]
    ordered_labels = [labels[k] for k in order]

    # Geometry: ~0.12 in per row keeps 39-100 labels readable at 6-7 pt.
    side = float(np.clip(0.12 * n, 3.5, 30.0))
    fontsize = float(np.clip(side * 72.0 / n * 0.75, 2.0, 7.0))
    longest = max(len(lab) for lab in ordered_labels)
    label_in = 0.6 * fontsize / 72.0 * longest + 0.15
    net_in = 0.0
    if networks is not None:
        net_in = 0.6 * fontsize / 72.0 * max(len(str(s).strip()) for s in networks) + 0.25
    width = side + label_in + net_in + 1.4
    height = side + label_in + (0.5 if title else 0.2)

    with _style():
        fig = _new_figure((width, height))
        ax = fig.add_subplot()
        if has_na:
            from matplotlib import colormaps

            cmap = colormaps[cmap].with_extremes(bad=_NA_COLOUR)
        image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                          aspect="equal")
        ticks = np.arange(n)
        ax.set_xticks(ticks, ordered_labels, rotation=90, fontsize=fontsize)
        ax.set_yticks(ticks, ordered_labels, fontsize=fontsize)
        ax.tick_params(length=1.5, width=0.5, pad=1.5)
        for spine in ax.spines.values():
            spine.set_linewidth(0.5)

        if networks is not None:
            groups = _network_groups([networks[k] for k in order])
            for _, _, stop in groups[:-1]:
                ax.axhline(stop - 0.5, color="0.15", linewidth=0.6)
                ax.axvline(stop - 0.5, color="0.15", linewidth=0.6)
            side_ax = ax.secondary_yaxis("right")
            centres = [(start + stop - 1) / 2.0 for _, start, stop in groups]
            side_ax.set_yticks(centres, [str(name).strip() for name, _, _ in groups],
                               fontsize=fontsize, fontweight="bold")
            side_ax.tick_params(length=0, pad=2)
            side_ax.spines["right"].set_visible(False)

        cbar = fig.colorbar(image, ax=ax, shrink=0.6, aspect=25, pad=0.02)
        cbar.ax.tick_params(labelsize=7)
        cbar.outline.set_linewidth(0.5)
        if title:
            ax.set_title(title, fontsize=10)
        _save_png(fig, path, MATRIX_DPI)
    return order


# --------------------------------------------------------------------------
# connectome
# --------------------------------------------------------------------------
def _select_edges(matrix, n_edges=None, edge_threshold=None):
    """Strongest off-diagonal edges of a connectivity matrix.

    Only the upper triangle (``i < j``) is considered; exact zeros and n/a
    (NaN) are never edges.  Edges are ranked by decreasing ``|value|``; ties are broken
    by ``(i, j)`` in increasing (row-major) order, so the choice is
    deterministic.

    Rule:

    - ``n_edges`` given: the ``n_edges`` strongest (fewer if fewer non-zero
      pairs exist);
    - ``edge_threshold`` given: all with ``|value| >= edge_threshold``; a
      string such as ``"95%"`` is the percentile of the upper-triangle
      ``|values|`` (as in nilearn);
    - both given: the ``n_edges`` strongest among those passing the threshold;
    - neither: the ``ceil(5 %)`` strongest of the ``n (n - 1) / 2`` pairs
      (`DEFAULT_EDGE_FRACTION`), at least one; pairs that are n/a do not
      count.

    Parameters
    ----------
    matrix : ndarray, shape (n, n)
    n_edges : int, optional
    edge_threshold : float or str, optional

    Returns
    -------
    edges : list of (int, int, float)
        ``(i, j, value)`` with ``i < j``, strongest first.
    """
    m = np.asarray(matrix, dtype=np.float64)
    n = m.shape[0]
    iu, ju = np.triu_indices(n, k=1)
    values = m[iu, ju]
    strength = np.abs(values)
    # strongest first; ties by (i, j) ascending.  lexsort: last key is primary.
    # NaN (n/a) sorts last and fails "> 0".
    ranking = np.lexsort((ju, iu, -strength))
    ranking = ranking[strength[ranking] > 0]
    pairs = _finite(strength)

    if edge_threshold is not None:
        threshold = _parse_threshold(edge_threshold, pairs)
        ranking = ranking[strength[ranking] >= threshold]
    if n_edges is not None:
        if isinstance(n_edges, bool) or not isinstance(n_edges, (int, np.integer)) or n_edges < 0:
            raise InputError(f"n_edges must be a non-negative integer, got {n_edges!r}")
        ranking = ranking[: int(n_edges)]
    elif edge_threshold is None:
        count = max(1, math.ceil(DEFAULT_EDGE_FRACTION * pairs.size)) if pairs.size else 0
        ranking = ranking[:count]
    return [(int(iu[k]), int(ju[k]), float(values[k])) for k in ranking]


def _parse_threshold(edge_threshold, strength):
    if isinstance(edge_threshold, str):
        text = edge_threshold.strip()
        try:
            if not text.endswith("%"):
                raise ValueError
            percent = float(text[:-1])
        except ValueError:
            raise InputError(
                f"edge_threshold must be a number or a percentile string like '95%', "
                f"got {edge_threshold!r}"
            ) from None
        if not 0.0 <= percent <= 100.0:
            raise InputError(f"edge_threshold percentile must be in [0, 100], got {edge_threshold!r}")
        return float(np.percentile(strength, percent)) if strength.size else 0.0
    try:
        threshold = float(edge_threshold)
    except (TypeError, ValueError):
        raise InputError(f"edge_threshold must be a number, got {edge_threshold!r}") from None
    if not math.isfinite(threshold) or threshold < 0:
        raise InputError(f"edge_threshold must be a finite number >= 0, got {edge_threshold!r}")
    return threshold


def _network_colours(n_networks):
    """Qualitative colours, one per network (cycled past 60)."""
    from matplotlib import colormaps

    if n_networks <= 10:
        return [colormaps["tab10"](k) for k in range(n_networks)]
    palette = [colormaps["tab20"](k) for k in range(20)]
    if n_networks > 20:
        palette += [colormaps[name](k) for name in ("tab20b", "tab20c") for k in range(20)]
    return [palette[k % len(palette)] for k in range(n_networks)]


def _smooth(mask, passes=3):
    """Binomial blur of a 2D 0/1 mask, so that its 0.5 contour is a smooth curve
    instead of a voxel staircase (the boundary stays in place to within a
    sampling step)."""
    field = np.pad(mask.astype(np.float64), passes, mode="constant")
    kernel = np.array([0.25, 0.5, 0.25])
    for _ in range(passes):
        field = np.apply_along_axis(np.convolve, 0, field, kernel, mode="same")
        field = np.apply_along_axis(np.convolve, 1, field, kernel, mode="same")
    return field[passes:-passes, passes:-passes]


@functools.lru_cache(maxsize=2)
def _outlines(resolution):
    """``{view: (first, second, smoothed mask)}`` of the schematic brain."""
    return {
        view: (first, second, _smooth(mask))
        for view, (first, second, mask) in brain_outline_projections(resolution).items()
    }


# (view name, index of horizontal coord, index of vertical coord)
_VIEWS = (("sagittal", 1, 2), ("coronal", 0, 2), ("axial", 0, 1))


def _connectome_figure(m, coords, networks, title, n_edges, edge_threshold, node_size):
    """Draw the connectome; returns (figure, edges)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D
    from matplotlib import colormaps

    n = m.shape[0]
    edges = _select_edges(m, n_edges, edge_threshold)
    vmin, vmax = _symmetric_limits(_finite(_off_diagonal(m) if n > 1 else m))
    absent = np.isnan(m).all(axis=1)  # regions without data: no node
    norm = Normalize(vmin=vmin, vmax=vmax)
    cmap = colormaps["RdBu_r"]
    if node_size is None:
        node_size = float(np.clip(2000.0 / n, 12.0, 50.0))

    if networks is not None:
        names = list(dict.fromkeys(networks))  # first-appearance order
        palette = dict(zip(names, _network_colours(len(names))))
        node_colours = [palette[name] for name in networks]
    else:
        names, palette = [], {}
        node_colours = ["0.2"] * n

    outlines = _outlines(_OUTLINE_RESOLUTION)
    limits = []
    for view, h, v in _VIEWS:
        first, second, _ = outlines[view]
        lo_h = min(first[0], coords[:, h].min() - 5)
        hi_h = max(first[-1], coords[:, h].max() + 5)
        lo_v = min(second[0], coords[:, v].min() - 5)
        hi_v = max(second[-1], coords[:, v].max() + 5)
        limits.append(((lo_h, hi_h), (lo_v, hi_v)))
    ratios = [(hh[1] - hh[0]) / (vv[1] - vv[0]) for hh, vv in limits]

    panel_h = 3.4
    legend_rows = math.ceil(len(names) / 6) if names else 0
    width = panel_h * sum(ratios) + 1.3
    height = panel_h + 0.22 * legend_rows + (0.45 if title else 0.15)

    # weakest first so the strongest edges are drawn on top
    drawn = edges[::-1]
    values = np.array([e[2] for e in drawn], dtype=np.float64)
    top = max(abs(vmin), abs(vmax))
    # thinner lines when many edges are drawn, so that dense graphs stay legible
    thin = min(1.0, math.sqrt(50.0 / max(len(drawn), 1)))
    widths = (0.4 + 2.4 * np.abs(values) / top) * max(thin, 0.35)
    colours = cmap(norm(values)) if drawn else np.zeros((0, 4))
    if len(drawn) > 50:
        colours[:, 3] = 0.8

    fig = _new_figure((width, height))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": ratios})
    for ax, (view, h, v), (xlim, ylim) in zip(axes, _VIEWS, limits):
        first, second, mask = outlines[view]
        filled = mask
        ax.contourf(first, second, filled, levels=[0.5, 1.5], colors=[_OUTLINE_FILL], zorder=0)
        ax.contour(first, second, filled, levels=[0.5], colors=[_OUTLINE_LINE],
                   linewidths=0.8, zorder=1)
        if drawn:
            segments = [((coords[i, h], coords[i, v]), (coords[j, h], coords[j, v]))
                        for i, j, _ in drawn]
            ax.add_collection(LineCollection(segments, colors=colours, linewidths=widths,
                                             capstyle="round", zorder=2), autolim=False)
        if absent.any():
            shown = np.flatnonzero(~absent)
            ax.scatter(coords[shown, h], coords[shown, v], s=node_size,
                       c=[node_colours[k] for k in shown], edgecolors="0.1", linewidths=0.5,
                       zorder=3)
        else:
            ax.scatter(coords[:, h], coords[:, v], s=node_size, c=node_colours,
                       edgecolors="0.1", linewidths=0.5, zorder=3)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_title(view, fontsize=8, color="0.3", pad=2)
        if view != "sagittal":
            ax.text(0.02, 0.98, "L", transform=ax.transAxes, ha="left", va="top",
                    fontsize=9, color="0.3")
            ax.text(0.98, 0.98, "R", transform=ax.transAxes, ha="right", va="top",
                    fontsize=9, color="0.3")
        else:
            ax.text(0.02, 0.98, "P", transform=ax.transAxes, ha="left", va="top",
                    fontsize=9, color="0.3")
            ax.text(0.98, 0.98, "A", transform=ax.transAxes, ha="right", va="top",
                    fontsize=9, color="0.3")

    mappable = ScalarMappable(norm=norm, cmap=cmap)
    cbar = fig.colorbar(mappable, ax=list(axes), shrink=0.75, aspect=20, pad=0.01)
    cbar.ax.tick_params(labelsize=7)
    cbar.outline.set_linewidth(0.5)
    label = f"edge value ({len(edges)} edges shown)"
    if absent.any():
        label = f"edge value ({len(edges)} edges shown; {int(absent.sum())} regions n/a)"
    cbar.set_label(label, fontsize=7)

    if names:
        handles = [Line2D([], [], linestyle="", marker="o", markersize=6,
                          markerfacecolor=palette[name], markeredgecolor="0.1",
                          markeredgewidth=0.5, label=str(name).strip())
                   for name in names]
        ncol = min(6, len(names))
        # matplotlib fills legend columns first; permute so that it reads row by row
        handles = [handles[k] for j in range(ncol) for k in range(j, len(handles), ncol)]
        fig.legend(handles=handles, loc="outside lower center", ncol=ncol,
                   fontsize=7, frameon=False, handletextpad=0.2, columnspacing=1.2)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig, edges


def plot_message(path, message):
    """A small PNG that says why there is no figure (e.g. an excluded run).

    Saved like the other figures: reproducible bytes, atomic write.
    """
    with _style():
        fig = _new_figure((6.0, 1.2))
        _drop_layout_engine(fig)  # text only: nothing to lay out
        fig.text(0.5, 0.5, str(message), ha="center", va="center", fontsize=9, wrap=True)
        _save_png(fig, path, MATRIX_DPI)
    return Path(path)


def plot_connectome(matrix, coords, path, networks=None, title="", n_edges=None,
                    edge_threshold=None, node_size=None):
    """Glass-brain connectome in three projections over the brain outline.

    Sagittal (y vs z, anterior to the right), coronal (x vs z) and axial
    (x vs y) panels, left hemisphere on the left (neurological convention, as
    nilearn), drawn over the silhouettes of the schematic MNI brain
    (`cohort_connectome.template.brain_outline_projections`).  Nodes are
    coloured by network (qualitative palette, legend below the panels); edges
    are coloured by value (``RdBu_r``, limits symmetric at
    ``max |off-diagonal|``), their width grows with ``|value|``.

    Edges drawn (see `_select_edges`; upper triangle, exact zeros never
    drawn, ties broken by ``(i, j)``):

    - ``n_edges`` given: the ``n_edges`` strongest ``|values|``;
    - else ``edge_threshold`` given: every edge with ``|value| >= edge_threshold``
      (a number, or a percentile string such as ``"95%"``);
    - else (default): the strongest 5 % of the ``n (n - 1) / 2`` pairs,
      rounded up (e.g. 38 of 741 pairs for the 39 MSDL regions).

    Parameters
    ----------
    matrix : array_like, shape (n, n)
        Symmetric, finite or NaN (n/a: never an edge; a region whose row is
        all n/a has no node, and the colour bar says how many).
    coords : array_like, shape (n, 3)
        Node positions in world (MNI) millimetres.
    path : str or os.PathLike
        Output PNG; parent folders are created.
    networks : sequence of hashable, length n, optional
        Network of every region, for the node colours and the legend.
    title : str
        Figure title.
    n_edges : int, optional
        Number of edges to draw.
    edge_threshold : float or str, optional
        Minimum ``|value|`` of a drawn edge.  With ``n_edges`` too, the
        ``n_edges`` strongest of those passing the threshold.
    node_size : float, optional
        Marker area in points^2; default ``clip(2000 / n, 12, 50)``.

    Returns
    -------
    edges : list of (int, int, float)
        The edges drawn, ``(i, j, value)`` with ``i < j``, strongest first.

    Raises
    ------
    ValueError (`InputError`)
        If the matrix is not square or symmetric or has infinite values, if coords is not
        (n, 3) and finite, if networks does not have n entries, or if
        n_edges / edge_threshold are invalid.
    """
    m = _check_matrix(matrix, allow_nan=True)
    n = m.shape[0]
    if not np.allclose(m, m.T, rtol=1e-5, atol=1e-8, equal_nan=True):
        raise InputError("matrix must be symmetric to be drawn as a connectome")
    c = _check_coords(coords, n)
    if networks is not None:
        networks = _check_length(networks, n, "networks")
    if node_size is not None:
        node_size = float(node_size)
        if not math.isfinite(node_size) or node_size <= 0:
            raise InputError(f"node_size must be a positive number, got {node_size!r}")
    with _style():
        fig, edges = _connectome_figure(m, c, networks, title, n_edges, edge_threshold,
                                        node_size)
        _save_png(fig, path, CONNECTOME_DPI)
    return edges


# --------------------------------------------------------------------------
# per-run QC
# --------------------------------------------------------------------------
QC_DPI = 100
#: Kinds drawn one under the other in the QC-FC figure before a second column starts.
QCFC_ROWS = 4


def _segments(mask):
    """``[(start, stop), ...]`` runs of True in a 1D boolean array."""
    mask = np.asarray(mask, dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _zscore_columns(x):
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x
    centred = x - x.mean(axis=0)
    sd = centred.std(axis=0)
    sd[sd == 0] = 1.0
    return centred / sd


def _carpet(ax, data, order, networks, title, n_volumes, vlim=2.0, missing=None):
    """Regions (rows, grouped by network) x volumes; NaN columns drawn as censored,
    the rows of ``missing`` regions (no data: n/a) grey."""
    from matplotlib import colormaps

    cmap = colormaps["gray"].with_extremes(bad="#f2c6c6")
    image = np.ma.masked_invalid(data[:, order].T)
    ax.imshow(image, cmap=cmap, vmin=-vlim, vmax=vlim, aspect="auto",
              interpolation="nearest", extent=(-0.5, n_volumes - 0.5, len(order) - 0.5, -0.5))
    if missing is not None and missing.any():
        for row in np.flatnonzero(np.asarray(missing)[order]):
            ax.axhspan(row - 0.5, row + 0.5, color=_NA_COLOUR, linewidth=0, zorder=2)
        title = f"{title}; {int(missing.sum())} regions without data (grey)"
    if networks is not None:
        groups = _network_groups([networks[k] for k in order])
        for _, _, stop in groups[:-1]:
            ax.axhline(stop - 0.5, color="#1f77b4", linewidth=0.5)
        ax.set_yticks([(start + stop - 1) / 2.0 for _, start, stop in groups],
                      [str(name).strip() for name, _, _ in groups], fontsize=5)
    else:
        ax.set_yticks([])
    ax.tick_params(length=1.5, width=0.5, pad=1)
    ax.set_ylabel("regions", fontsize=7)
    ax.set_title(title, fontsize=8, loc="left")


def plot_run_qc(path, fd, kept, raw, cleaned, networks=None, confounds=None,
                confound_names=(), fd_threshold=None, title="", excluded=None):
    """One run's quality-control figure, four panels on a shared volume axis.

    1. framewise displacement (mm) with the censoring threshold; censored
       volumes shaded in every panel;
    2. the confound regressors used (z-scored lines, or a carpet beyond 8);
    3. the raw region signals (z-scored per region, ±2 in grey levels),
       regions grouped by network;
    4. the cleaned region signals on the same axis, censored volumes blank
       (pink).

    Regions without data (raw columns n/a in every volume) are flat grey
    rows of both carpets, and their titles count them.

    Parameters
    ----------
    path : output PNG.
    fd : ndarray (n_volumes,) or None
        Framewise displacement; None or all NaN when the run has no motion.
    kept : ndarray of bool (n_volumes,)
        Volumes kept by censoring.
    raw : ndarray (n_volumes, n_regions)
    cleaned : ndarray (n_kept, n_regions)
        Empty for an excluded run.
    networks : sequence of str, optional
        Network of each region (ordering of the carpets).
    confounds : ndarray (n_volumes, k) or None
    confound_names : sequence of str
    fd_threshold : float or None
    title : str
    excluded : str or None
        Why the run is excluded, if it is.
    """
    raw = np.asarray(raw, dtype=np.float64)
    n_volumes, n_regions = raw.shape
    kept = np.asarray(kept, dtype=bool)
    if kept.shape != (n_volumes,):
        raise InputError(f"kept flags ({kept.size}) and raw signals ({n_volumes} volumes) "
                         "differ in length")
    cleaned = np.asarray(cleaned, dtype=np.float64).reshape(-1, n_regions)
    order = (order_by_network(_check_length(networks, n_regions, "networks"))
             if networks is not None else np.arange(n_regions))
    censored = _segments(~kept)
    volumes = np.arange(n_volumes)
    missing = np.isnan(raw).all(axis=0) if n_volumes else np.zeros(n_regions, dtype=bool)

    with _style():
        fig = _new_figure((8.0, 7.5))
        axes = fig.subplots(4, 1, sharex=True,
                            gridspec_kw={"height_ratios": [1.0, 1.2, 2.0, 2.0]})
        ax_fd, ax_conf, ax_raw, ax_clean = axes
        for ax in (ax_fd, ax_conf):
            for start, stop in censored:
                ax.axvspan(start - 0.5, stop - 0.5, color="#f2c6c6", linewidth=0, zorder=0)
            ax.tick_params(labelsize=6, length=1.5, width=0.5, pad=1)
        has_fd = fd is not None and np.isfinite(np.asarray(fd, dtype=np.float64)).any()
        if has_fd:
            fd = np.asarray(fd, dtype=np.float64)
            ax_fd.plot(volumes, fd, color="0.15", linewidth=0.7)
            if fd_threshold is not None:
                ax_fd.axhline(fd_threshold, color="#d62728", linewidth=0.7, linestyle="--")
            ax_fd.set_ylabel("FD (mm)", fontsize=7)
            summary = f"mean FD {np.nanmean(fd[1:]) if n_volumes > 1 else np.nan:.3f} mm"
        else:
            ax_fd.text(0.5, 0.5, "no framewise displacement (no motion columns in the "
                       "confounds)", transform=ax_fd.transAxes, ha="center", va="center",
                       fontsize=7, color="0.3")
            ax_fd.set_yticks([])
            summary = "no FD"
        ax_fd.set_title(f"framewise displacement: {summary}; {int(kept.sum())} of {n_volumes} "
                        "volumes kept (censored shaded)", fontsize=8, loc="left")

        if confounds is not None and np.size(confounds):
            conf = _zscore_columns(confounds)
            names = [str(c) for c in confound_names] or [str(k) for k in range(conf.shape[1])]
            if conf.shape[1] <= 8:
                colours = _network_colours(conf.shape[1])
                for k in range(conf.shape[1]):
                    ax_conf.plot(volumes, conf[:, k], linewidth=0.6, color=colours[k],
                                 label=names[k])
                ax_conf.legend(fontsize=5, ncol=conf.shape[1], loc="lower right",
                               bbox_to_anchor=(1.0, 1.0), frameon=False, handlelength=1.0,
                               columnspacing=0.8, borderaxespad=0.1)
                ax_conf.set_ylabel("z", fontsize=7)
            else:
                ax_conf.imshow(np.clip(conf.T, -3, 3), cmap="RdBu_r", vmin=-3, vmax=3,
                               aspect="auto", interpolation="nearest",
                               extent=(-0.5, n_volumes - 0.5, conf.shape[1] - 0.5, -0.5))
                ax_conf.set_ylabel("regressor", fontsize=7)
            ax_conf.set_title(f"confounds regressed out ({conf.shape[1]}, z-scored)",
                              fontsize=8, loc="left")
        else:
            ax_conf.text(0.5, 0.5, "no confounds", transform=ax_conf.transAxes,
                         ha="center", va="center", fontsize=7, color="0.3")
            ax_conf.set_yticks([])
            ax_conf.set_title("confounds", fontsize=8, loc="left")

        _carpet(ax_raw, _zscore_columns(raw), order, networks,
                "raw region signals (z-scored per region)", n_volumes, missing=missing)
        placed = np.full((n_volumes, n_regions), np.nan)
        if excluded or len(cleaned) == 0:
            _carpet(ax_clean, placed, order, networks,
                    f"cleaned region signals: run excluded ({excluded or 'no volume kept'})",
                    n_volumes)
        else:
            if len(cleaned) != int(kept.sum()):
                raise InputError(f"cleaned signals have {len(cleaned)} volumes but "
                                 f"{int(kept.sum())} are flagged kept")
            placed[kept] = _zscore_columns(cleaned)
            _carpet(ax_clean, placed, order, networks,
                    "cleaned region signals (censored volumes blank)", n_volumes,
                    missing=missing)
        ax_clean.set_xlabel("volume", fontsize=7)
        ax_clean.set_xlim(-0.5, n_volumes - 0.5)
        for ax in (ax_raw, ax_clean):
            ax.tick_params(axis="x", labelsize=6)
        if title:
            fig.suptitle(title, fontsize=10)
        _save_png(fig, path, QC_DPI)
    return Path(path)


# --------------------------------------------------------------------------
# QC-FC
# --------------------------------------------------------------------------
def plot_motion_by_group(path, by_group, test=None, title=""):
    """Each run's mean framewise displacement by group (`qc.motion_by_group`):
    included runs as dots (spread sideways in a fixed pattern), excluded runs
    as crosses, the included runs' mean as a bar; the t-test in the title."""
    levels = list(by_group)
    if not levels:
        raise InputError("no group to draw")
    with _style():
        fig = _new_figure((1.6 + 1.3 * len(levels), 4.0))
        ax = fig.subplots()
        for x, level in enumerate(levels):
            for key, marker in (("included", "o"), ("excluded", "x")):
                values = np.asarray(by_group[level][key], dtype=np.float64)
                spread = ((np.arange(len(values)) * 0.618) % 1.0 - 0.5) * 0.4
                ax.scatter(x + spread, values, s=14, marker=marker,
                           c="0.25" if key == "included" else "tab:red", linewidths=0.8,
                           label=key if x == 0 else None)
            included = np.asarray(by_group[level]["included"], dtype=np.float64)
            if included.size:
                ax.hlines(included.mean(), x - 0.3, x + 0.3, color="tab:blue", linewidth=1.5)
        ax.set_xticks(range(len(levels)),
                      [f"{g}\n({len(by_group[g]['included'])} runs)" for g in levels],
                      fontsize=7)
        ax.set_xlim(-0.6, len(levels) - 0.4)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("mean framewise displacement (mm)", fontsize=7)
        ax.tick_params(labelsize=6, length=1.5, width=0.5, pad=1)
        if any(len(by_group[g]["excluded"]) for g in levels):
            ax.legend(fontsize=6, frameon=False, loc="upper right")
        text = ("t-test of the included runs: "
                f"t = {test['t']:.2f}, p = {test['p']:.3g}" if test else "")
        ax.set_title("\n".join(t for t in (title, text) if t), fontsize=8)
        _save_png(fig, path, QC_DPI)
    return Path(path)


def plot_qcfc(path, results, title=""):
    """QC-FC figure: per kind, the histogram of edge-motion correlations and
    their dependence on the distance between the regions.

    Parameters
    ----------
    path : output PNG.
    results : dict
        ``{kind: {"r": ndarray, "p": ndarray, "distance": ndarray, "n": int}}``.
    title : str
    """
    kinds = list(results)
    if not kinds:
        raise InputError("no kind to draw")
    # at most QCFC_ROWS kinds down (the figure stays under ~900 px), more side by side
    pairs = -(-len(kinds) // QCFC_ROWS)
    rows = -(-len(kinds) // pairs)
    with _style():
        fig = _new_figure((8.0 if pairs == 1 else 7.0 * pairs, 0.6 + 2.0 * rows))
        grid = np.atleast_2d(fig.subplots(rows, 2 * pairs))
        axes = [grid[k % rows, 2 * (k // rows):2 * (k // rows) + 2] for k in range(len(kinds))]
        for k in range(len(kinds), rows * pairs):  # an empty slot of the last column
            for ax in grid[k % rows, 2 * (k // rows):2 * (k // rows) + 2]:
                ax.set_axis_off()
        bins = np.linspace(-1.0, 1.0, 41)
        for (ax_hist, ax_dist), kind in zip(axes, kinds):
            r = np.asarray(results[kind]["r"], dtype=np.float64)
            p = np.asarray(results[kind]["p"], dtype=np.float64)
            distance = np.asarray(results[kind]["distance"], dtype=np.float64)
            ok = np.isfinite(r)
            ax_hist.hist(r[ok], bins=bins, color="0.45", edgecolor="none")
            ax_hist.axvline(0.0, color="0.1", linewidth=0.6)
            ax_hist.set_xlim(-1, 1)
            if ok.any():
                share = float(np.mean(p[ok] < 0.05)) * 100
                text = (f"median |r| {np.median(np.abs(r[ok])):.3f}\n"
                        f"p < 0.05: {share:.1f}% of {int(ok.sum())} edges")
            else:
                text = "no edge tested"
            ax_hist.text(0.02, 0.96, text, transform=ax_hist.transAxes, ha="left", va="top",
                         fontsize=6)
            ax_hist.set_title(f"{kind}: QC-FC over {results[kind]['n']} runs",
                              fontsize=8, loc="left")
            ax_hist.set_ylabel("edges", fontsize=7)
            ax_dist.scatter(distance[ok], r[ok], s=2, c="0.3", linewidths=0)
            ax_dist.axhline(0.0, color="0.1", linewidth=0.6)
            if ok.sum() > 2 and np.ptp(distance[ok]) > 0:
                rho = np.corrcoef(distance[ok], r[ok])[0, 1]
                ax_dist.text(0.98, 0.96, f"r(distance, QC-FC) = {rho:.3f}",
                             transform=ax_dist.transAxes, ha="right", va="top", fontsize=6)
            ax_dist.set_ylim(-1, 1)
            ax_dist.set_ylabel("QC-FC r", fontsize=7)
            for ax in (ax_hist, ax_dist):
                ax.tick_params(labelsize=6, length=1.5, width=0.5, pad=1)
        for pair in range(pairs):
            last = min(rows, len(kinds) - pair * rows) - 1
            grid[last, 2 * pair].set_xlabel("correlation of edge with mean FD across runs",
                                            fontsize=7)
            grid[last, 2 * pair + 1].set_xlabel("distance between regions (mm)", fontsize=7)
        if title:
            fig.suptitle(title, fontsize=10)
        _save_png(fig, path, QC_DPI)
    return Path(path)
