"""Tests of cohort_connectome.plotting: the matrix heatmap and the connectome figure."""

from pathlib import Path

import numpy as np
import pytest

from cohort_connectome import plotting
from cohort_connectome.plotting import (
    _connectome_figure,
    _select_edges,
    order_by_network,
    plot_connectome,
    plot_matrix,
)

from conftest import require_shared


def _random_symmetric(n, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    m = np.tanh((a + a.T) / 3.0)
    np.fill_diagonal(m, 1.0)
    return m


def _small_case(n=12, seed=0):
    rng = np.random.default_rng(seed)
    matrix = _random_symmetric(n, seed)
    labels = [f"region {k}" for k in range(n)]
    networks = [("Vis", "DMN", "Motor")[k % 3] for k in range(n)]
    coords = rng.uniform([-60, -90, -30], [60, 60, 70], size=(n, 3))
    return matrix, labels, networks, coords


def _decode(path):
    import matplotlib.image

    return matplotlib.image.imread(path)


def _n_colours(image):
    rgb = np.round(image[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    return len(np.unique(rgb, axis=0))


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def msdl_atlas():
    """Real MSDL labels: (names, networks, coords), whitespace stripped."""
    import pandas as pd

    path = require_shared("msdl", "MSDL_rois", "msdl_rois_labels.csv")
    table = pd.read_csv(path)
    table.columns = [c.strip() for c in table.columns]
    names = [s.strip() for s in table["name"]]
    networks = [s.strip() for s in table["net name"]]
    coords = table[["x", "y", "z"]].to_numpy(dtype=float)
    return names, networks, coords


# --------------------------------------------------------------------------
# order_by_network
# --------------------------------------------------------------------------
def test_order_by_network_first_appearance_and_stable():
    networks = ["b", "a", "b", "c", "a", "b"]
    order = order_by_network(networks)
    np.testing.assert_array_equal(order, [0, 2, 5, 1, 4, 3])
    assert order.dtype.kind == "i"


def test_order_by_network_groups_contiguously_and_is_a_permutation():
    rng = np.random.default_rng(3)
    networks = list(rng.choice(["Vis", "DMN", "Motor", "Sal", "Lang"], size=60))
    order = order_by_network(networks)
    assert sorted(order.tolist()) == list(range(60))
    grouped = [networks[k] for k in order]
    runs = [grouped[0]] + [b for a, b in zip(grouped, grouped[1:]) if a != b]
    assert runs == list(dict.fromkeys(networks))  # one run per network, first-seen order
    for name in set(networks):  # stable inside each network
        members = [k for k in order if networks[k] == name]
        assert members == sorted(members)


def test_order_by_network_identity_when_already_grouped():
    np.testing.assert_array_equal(order_by_network(["x", "x", "y", 3, 3]), np.arange(5))
    assert order_by_network([]).size == 0


# --------------------------------------------------------------------------
# _select_edges
# --------------------------------------------------------------------------
def _known_matrix():
    m = np.zeros((5, 5))
    upper = {(0, 1): 0.9, (0, 2): -0.5, (0, 3): 0.5, (1, 2): 0.2, (1, 4): -0.9,
             (2, 3): 0.5, (3, 4): 0.1}  # (0, 4) and (2, 4) stay 0
    for (i, j), v in upper.items():
        m[i, j] = m[j, i] = v
    np.fill_diagonal(m, 1.0)
    return m


def test_select_edges_top_k_with_ties_in_row_major_order():
    m = _known_matrix()
    assert _select_edges(m, n_edges=2) == [(0, 1, 0.9), (1, 4, -0.9)]
    # |0.5| three-way tie between (0, 2), (0, 3), (2, 3): broken by (i, j)
    assert _select_edges(m, n_edges=3) == [(0, 1, 0.9), (1, 4, -0.9), (0, 2, -0.5)]
    assert _select_edges(m, n_edges=5)[2:] == [(0, 2, -0.5), (0, 3, 0.5), (2, 3, 0.5)]
    assert _select_edges(m, n_edges=0) == []
    # never more than the non-zero pairs, never the diagonal
    everything = _select_edges(m, n_edges=100)
    assert len(everything) == 7
    assert all(i < j for i, j, _ in everything)
    assert [abs(v) for _, _, v in everything] == sorted((abs(v) for _, _, v in everything),
                                                        reverse=True)
    # the same answer whatever the matrix's memory layout
    assert _select_edges(np.asfortranarray(m), n_edges=4) == _select_edges(m, n_edges=4)


def test_select_edges_threshold_and_percentile():
    m = _known_matrix()
    assert _select_edges(m, edge_threshold=0.5) == [
        (0, 1, 0.9), (1, 4, -0.9), (0, 2, -0.5), (0, 3, 0.5), (2, 3, 0.5)]
    assert _select_edges(m, edge_threshold=0.95) == []
    assert len(_select_edges(m, edge_threshold=0.0)) == 7  # zeros are never edges
    # both: the strongest n_edges among those passing the threshold
    assert _select_edges(m, n_edges=3, edge_threshold=0.5) == [
        (0, 1, 0.9), (1, 4, -0.9), (0, 2, -0.5)]
    # percentile of the 10 upper-triangle |values| (zeros included): 80th = 0.58
    strength = np.abs(m[np.triu_indices(5, 1)])
    cut = np.percentile(strength, 80)
    expected = [e for e in _select_edges(m, n_edges=100) if abs(e[2]) >= cut]
    assert _select_edges(m, edge_threshold="80%") == expected
    assert len(expected) == 2


def test_select_edges_default_is_top_five_percent():
    m = _random_symmetric(39)
    edges = _select_edges(m)
    assert len(edges) == int(np.ceil(0.05 * 39 * 38 / 2)) == 38
    assert edges == _select_edges(m, n_edges=38)
    assert len(_select_edges(_random_symmetric(3))) == 1  # at least one
    assert _select_edges(np.ones((1, 1))) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"n_edges": -1}, "n_edges"),
    ({"n_edges": 2.5}, "n_edges"),
    ({"edge_threshold": -0.1}, "edge_threshold"),
    ({"edge_threshold": "ninety"}, "edge_threshold"),
    ({"edge_threshold": "120%"}, "percentile"),
])
def test_select_edges_rejects_bad_rules(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _select_edges(_known_matrix(), **kwargs)


# --------------------------------------------------------------------------
# plot_matrix
# --------------------------------------------------------------------------
def test_plot_matrix_png_non_trivial_and_byte_identical(tmp_path):
    matrix, labels, networks, _ = _small_case()
    first = tmp_path / "a" / "b" / "matrix.png"  # parent folders are created
    order = plot_matrix(matrix, labels, networks, first, title="Correlation")
    np.testing.assert_array_equal(order, order_by_network(networks))
    image = _decode(first)
    assert image.ndim == 3 and image.shape[0] > 400 and image.shape[1] > 400
    assert _n_colours(image) > 50
    second = tmp_path / "again.png"
    plot_matrix(matrix, labels, networks, second, title="Correlation")
    assert first.read_bytes() == second.read_bytes()
    assert b"Software" not in first.read_bytes()
    assert _files(first.parent) == ["matrix.png"]  # no temporary left behind


def test_plot_matrix_size_grows_with_regions(tmp_path):
    small, labels, networks, _ = _small_case(12)
    big, big_labels, big_networks, _ = _small_case(60)
    plot_matrix(small, labels, networks, tmp_path / "small.png")
    plot_matrix(big, big_labels, big_networks, tmp_path / "big.png")
    assert _decode(tmp_path / "big.png").shape[0] > _decode(tmp_path / "small.png").shape[0]


def test_plot_matrix_without_networks_and_explicit_limits(tmp_path):
    matrix, _, _, _ = _small_case(8)
    order = plot_matrix(matrix, None, None, tmp_path / "m.png", vmin=-2, zero_diagonal=False)
    np.testing.assert_array_equal(order, np.arange(8))
    assert _n_colours(_decode(tmp_path / "m.png")) > 10


@pytest.mark.parametrize("change, message", [
    (lambda a: dict(a, matrix=np.zeros((3, 4))), "square"),
    (lambda a: dict(a, matrix=np.zeros((2, 2, 2))), "square"),
    (lambda a: dict(a, labels=a["labels"][:-1]), "labels has 11 entries"),
    (lambda a: dict(a, networks=a["networks"] + ["x"]), "networks has 13 entries"),
    (lambda a: dict(a, matrix=np.where(np.eye(12, k=1) > 0, np.inf, a["matrix"])),
     "non-finite"),  # NaN is n/a (drawn grey), infinity an error
    (lambda a: dict(a, matrix=np.full((12, 12), np.inf)), "non-finite"),
    (lambda a: dict(a, vmin=1.0, vmax=0.5), "vmin < vmax"),
])
def test_plot_matrix_validation(tmp_path, change, message):
    matrix, labels, networks, _ = _small_case()
    args = change(dict(matrix=matrix, labels=labels, networks=networks, vmin=None, vmax=None))
    with pytest.raises(ValueError, match=message):
        plot_matrix(path=tmp_path / "out" / "m.png", **args)
    assert not (tmp_path / "out").exists() or _files(tmp_path / "out") == []


def test_failed_save_leaves_previous_file_and_no_temporary(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    matrix, labels, networks, _ = _small_case()
    target = tmp_path / "m.png"
    target.write_bytes(b"previous")

    def broken_savefig(self, fh, **kwargs):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_matrix(matrix, labels, networks, target)
    assert target.read_bytes() == b"previous"
    assert _files(tmp_path) == ["m.png"]


# --------------------------------------------------------------------------
# plot_connectome
# --------------------------------------------------------------------------
def test_plot_connectome_png_non_trivial_and_byte_identical(tmp_path):
    matrix, _, networks, coords = _small_case()
    first = tmp_path / "deep" / "connectome.png"
    edges = plot_connectome(matrix, coords, first, networks=networks, title="t", n_edges=5)
    assert len(edges) == 5
    image = _decode(first)
    assert image.ndim == 3 and image.shape[1] > image.shape[0] > 300  # three panels wide
    assert _n_colours(image) > 50
    second = tmp_path / "again.png"
    plot_connectome(matrix, coords, second, networks=networks, title="t", n_edges=5)
    assert first.read_bytes() == second.read_bytes()
    assert _files(first.parent) == ["connectome.png"]


@pytest.mark.parametrize("k", [0, 1, 7])
def test_plot_connectome_draws_exactly_k_edges(k):
    from matplotlib.collections import LineCollection

    matrix, _, networks, coords = _small_case()
    with plotting._style():
        fig, edges = _connectome_figure(matrix, coords, networks, "", k, None, None)
    assert edges == _select_edges(matrix, k, None)
    panels = [ax for ax in fig.axes if ax.get_title() in ("sagittal", "coronal", "axial")]
    assert len(panels) == 3
    for ax in panels:
        segments = [seg for c in ax.collections if isinstance(c, LineCollection)
                    and not hasattr(c, "levels")  # contour sets are collections too
                    for seg in c.get_segments()]
        assert len(segments) == k


def test_plot_connectome_without_networks_and_threshold(tmp_path):
    matrix, _, _, coords = _small_case()
    edges = plot_connectome(matrix, coords, tmp_path / "c.png", edge_threshold=0.5,
                            node_size=20)
    assert edges == _select_edges(matrix, None, 0.5)
    assert _n_colours(_decode(tmp_path / "c.png")) > 20


@pytest.mark.parametrize("change, message", [
    (lambda a: dict(a, matrix=np.zeros((3, 4))), "square"),
    (lambda a: dict(a, matrix=a["matrix"] + np.triu(np.ones((12, 12)), 1)), "symmetric"),
    (lambda a: dict(a, matrix=np.where(np.eye(12) > 0, np.inf, a["matrix"])), "non-finite"),
    (lambda a: dict(a, coords=a["coords"][:, :2]), r"shape \(n, 3\)"),
    (lambda a: dict(a, coords=a["coords"][:-1]), "coords has 11 rows"),
    (lambda a: dict(a, coords=np.full((12, 3), np.nan)), "coords contain non-finite"),
    (lambda a: dict(a, networks=a["networks"][:3]), "networks has 3 entries"),
    (lambda a: dict(a, n_edges=-2), "n_edges"),
    (lambda a: dict(a, edge_threshold=float("nan")), "edge_threshold"),
    (lambda a: dict(a, node_size=0), "node_size"),
])
def test_plot_connectome_validation(tmp_path, change, message):
    matrix, _, networks, coords = _small_case()
    args = change(dict(matrix=matrix, coords=coords, networks=networks, n_edges=None,
                       edge_threshold=None, node_size=None))
    with pytest.raises(ValueError, match=message):
        plot_connectome(path=tmp_path / "out" / "c.png", **args)
    assert not (tmp_path / "out").exists() or _files(tmp_path / "out") == []


# --------------------------------------------------------------------------
# the real MSDL atlas (39 regions, 17 networks, MNI coordinates)
# --------------------------------------------------------------------------
def test_msdl_labels_both_figures(tmp_path, msdl_atlas):
    names, networks, coords = msdl_atlas
    assert len(names) == 39 and coords.shape == (39, 3)
    matrix = _random_symmetric(39, seed=7)

    order = plot_matrix(matrix, names, networks, tmp_path / "msdl_matrix.png",
                        title="MSDL, random symmetric matrix")
    grouped = [networks[k] for k in order]
    assert sum(a != b for a, b in zip(grouped, grouped[1:])) == len(set(networks)) - 1
    image = _decode(tmp_path / "msdl_matrix.png")
    assert min(image.shape[:2]) > 700  # 39 labels need room
    assert _n_colours(image) > 100

    edges = plot_connectome(matrix, coords, tmp_path / "msdl_connectome.png",
                            networks=networks, title="MSDL, random symmetric matrix")
    assert len(edges) == 38  # default: top 5 % of 741 pairs
    image = _decode(tmp_path / "msdl_connectome.png")
    assert image.shape[1] > 2 * image.shape[0]
    assert _n_colours(image) > 100

    # the schematic outline encloses nearly all MSDL centres (MNI mm) in every view
    outlines = plotting._outlines(plotting._OUTLINE_RESOLUTION)
    for view, h, v in plotting._VIEWS:
        first, second, mask = outlines[view]
        cols = np.clip(np.searchsorted(first, coords[:, h]), 0, first.size - 1)
        rows = np.clip(np.searchsorted(second, coords[:, v]), 0, second.size - 1)
        assert (mask[rows, cols] > 0.5).mean() > 0.9, view


@pytest.mark.parametrize("resolution", [2.0, 3.0, 1.5])
def test_outline_projections_equal_the_3d_grid(resolution):
    """The silhouettes, computed from one plane per ellipsoid, equal the
    projections of the schematic brain sampled on the whole 3D grid."""
    from cohort_connectome.template import brain_outline_projections, inside_brain

    x = np.arange(-80.0, 80.0 + resolution, resolution)
    y = np.arange(-112.0, 80.0 + resolution, resolution)
    z = np.arange(-70.0, 88.0 + resolution, resolution)
    inside = inside_brain(np.stack(np.meshgrid(x, y, z, indexing="ij"), axis=-1))
    expected = {"sagittal": (y, z, inside.any(axis=0).T),
                "coronal": (x, z, inside.any(axis=1).T),
                "axial": (x, y, inside.any(axis=2).T)}
    projections = brain_outline_projections(resolution)
    assert list(projections) == list(expected)
    for view, arrays in expected.items():
        for ours, theirs in zip(projections[view], arrays):
            assert ours.dtype == theirs.dtype
            np.testing.assert_array_equal(ours, theirs)


def test_figures_are_drawn_once(tmp_path, monkeypatch):
    """savefig draws a figure with a layout engine twice (a dry run, then the
    drawing); the frozen layout leaves none, so every figure is drawn once."""
    from matplotlib.figure import Figure

    draws = []
    draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, renderer: draws.append(1) or
                        draw(self, renderer))
    matrix, labels, networks, coords = _small_case()
    plot_matrix(matrix, labels, networks, tmp_path / "m.png", title="t")
    plot_connectome(matrix, coords, tmp_path / "c.png", networks=networks, n_edges=5)
    plotting.plot_message(tmp_path / "x.png", "run excluded")
    assert len(draws) == 3


def test_plotting_does_not_import_nilearn_or_pyplot():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(plotting))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(name.startswith("nilearn") for name in imported)
    assert "matplotlib.pyplot" not in imported


def test_figures_are_byte_identical_across_processes(tmp_path):
    """Reruns are byte-identical: each process draws the same PNGs.

    Regression: constrained layout solved positions that differed in the last
    bits between processes, and about one process in five drew a few pixels
    differently; a same-process comparison could not see it.
    """
    import hashlib
    import subprocess
    import sys

    script = (
        "import sys, numpy as np\n"
        "from cohort_connectome.demo import demo_labels\n"
        "from cohort_connectome.plotting import plot_connectome, plot_matrix\n"
        "labels = demo_labels()\n"
        "a = np.random.default_rng(3).standard_normal((30, 30)) / 10; m = (a + a.T) / 2\n"
        "coords = labels[['x', 'y', 'z']].to_numpy(float)\n"
        "nets, names = labels['network'].tolist(), labels['name'].tolist()\n"
        "title = 'covariance, atlas demo, mean of 8 subjects'\n"
        "plot_matrix(m, names, nets, sys.argv[1] + '_m.png', title=title)\n"
        "plot_connectome(m, coords, sys.argv[1] + '_c.png', networks=nets, title=title,\n"
        "                n_edges=40)\n"
    )
    digests = set()
    for k in range(8):
        prefix = str(tmp_path / f"run{k}")
        subprocess.run([sys.executable, "-c", script, prefix], check=True)
        digests.add(tuple(hashlib.sha256(open(prefix + s, "rb").read()).hexdigest()
                          for s in ("_m.png", "_c.png")))
    assert len(digests) == 1


# --------------------------------------------------------------------------
# per-run QC and QC-FC figures
# --------------------------------------------------------------------------
def _run_qc_case(n_volumes=60, n_regions=12, seed=4):
    rng = np.random.default_rng(seed)
    raw = rng.standard_normal((n_volumes, n_regions)) + np.linspace(0, 3, n_volumes)[:, None]
    fd = np.abs(rng.standard_normal(n_volumes)) * 0.2
    fd[0] = 0.0
    fd[[20, 21, 40]] = 1.2
    kept = fd < 0.5
    confounds = np.cumsum(rng.standard_normal((n_volumes, 6)), axis=0)
    networks = [("Vis", "DMN", "Motor")[k % 3] for k in range(n_regions)]
    return raw, fd, kept, confounds, networks


def test_plot_run_qc_marks_censored_volumes(tmp_path):
    raw, fd, kept, confounds, networks = _run_qc_case()
    cleaned = raw[kept] - raw[kept].mean(axis=0)
    path = plotting.plot_run_qc(tmp_path / "qc.png", fd, kept, raw, cleaned, networks=networks,
                                confounds=confounds, confound_names=list("abcdef"),
                                fd_threshold=0.5, title="sub-01")
    image = _decode(path)
    assert image.shape[1] == 800  # 8 in at 100 dpi
    # the pink of censored volumes is drawn (FD spans and blank carpet columns)
    pink = np.all(np.abs(image[..., :3] - np.array([0xf2, 0xc6, 0xc6]) / 255) < 0.02, axis=-1)
    assert pink.sum() > 500
    # excluded run, no FD, many confounds (carpet): still a figure
    plotting.plot_run_qc(tmp_path / "excluded.png", None, np.zeros(len(raw), bool), raw,
                         np.zeros((0, raw.shape[1])), confounds=np.tile(confounds, 3),
                         excluded="censoring keeps no volume")
    with pytest.raises(ValueError, match=r"cleaned signals have 60 volumes but \d+ are flagged kept"):
        plotting.plot_run_qc(tmp_path / "bad.png", fd, kept, raw, raw)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["excluded.png", "qc.png"]


def test_plot_qcfc(tmp_path):
    rng = np.random.default_rng(5)
    results = {kind: {"r": np.tanh(rng.standard_normal(45) / 3), "p": rng.random(45),
                      "distance": rng.uniform(10, 120, 45), "n": 12}
               for kind in ("correlation", "tangent")}
    results["tangent"]["r"][:3] = np.nan
    first = plotting.plot_qcfc(tmp_path / "a.png", results, title="QC-FC").read_bytes()
    assert first == plotting.plot_qcfc(tmp_path / "b.png", results, title="QC-FC").read_bytes()
    with pytest.raises(ValueError, match="no kind"):
        plotting.plot_qcfc(tmp_path / "c.png", {})


def test_plot_motion_by_group(tmp_path):
    """Reproducible bytes; one column of dots per group; a group without runs drawn empty."""
    by_group = {"control": {"included": np.array([0.1, 0.2, 0.15]), "excluded": np.array([0.9])},
                "patient": {"included": np.array([0.3, 0.25]), "excluded": np.array([])}}
    test = {"t": -3.2, "p": 0.03}
    first = plotting.plot_motion_by_group(tmp_path / "a.png", by_group, test, "atlas x")
    assert first.read_bytes() == plotting.plot_motion_by_group(
        tmp_path / "b.png", by_group, test, "atlas x").read_bytes()
    assert _png_size(first.read_bytes()) == (420, 400)
    other = plotting.plot_motion_by_group(tmp_path / "c.png", by_group, None, "atlas x")
    assert other.read_bytes() != first.read_bytes()
    with pytest.raises(ValueError, match="no group"):
        plotting.plot_motion_by_group(tmp_path / "d.png", {})


def _png_size(data):
    import struct

    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("n_kinds, size", [(2, (800, 460)), (4, (800, 860)),
                                           (5, (1400, 660)), (8, (1400, 860))])
def test_plot_qcfc_fits_a_window(tmp_path, n_kinds, size):
    """At most 4 kinds one under the other (under 900 px), more in a second column."""
    rng = np.random.default_rng(5)
    results = {f"kind{k}": {"r": np.tanh(rng.standard_normal(45) / 3), "p": rng.random(45),
                            "distance": rng.uniform(10, 120, 45), "n": 12}
               for k in range(n_kinds)}
    png = plotting.plot_qcfc(tmp_path / "a.png", results, title="QC-FC").read_bytes()
    assert _png_size(png) == size


def test_qc_figures_identical_across_processes(tmp_path):
    """The QC figure has the same bytes in every process (frozen layout)."""
    import hashlib
    import subprocess
    import sys

    script = (
        "import sys, numpy as np\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from test_plotting import _run_qc_case\n"
        "from cohort_connectome.plotting import plot_run_qc\n"
        "raw, fd, kept, conf, nets = _run_qc_case()\n"
        "plot_run_qc(sys.argv[1], fd, kept, raw, raw[kept], networks=nets, confounds=conf,\n"
        "            fd_threshold=0.5, title='sub-01, atlas demo')\n"
    )
    digests = set()
    for k in range(4):
        path = str(tmp_path / f"run{k}.png")
        subprocess.run([sys.executable, "-c", script, path, str(Path(__file__).parent)],
                       check=True)
        digests.add(hashlib.sha256(open(path, "rb").read()).hexdigest())
    assert len(digests) == 1


# --------------------------------------------------------------------------
# n/a regions (no data in a run, or in every run of a group edge)
# --------------------------------------------------------------------------
def _with_missing(matrix, missing=(2, 7)):
    m = matrix.copy()
    m[list(missing)] = np.nan
    m[:, list(missing)] = np.nan
    return m


def test_plot_matrix_draws_na_grey(tmp_path):
    matrix, labels, networks, _ = _small_case()
    plot_matrix(_with_missing(matrix), labels, networks, tmp_path / "m.png", title="t")
    image = np.round(_decode(tmp_path / "m.png")[..., :3] * 255).astype(int)
    grey = round(float(plotting._NA_COLOUR) * 255)
    assert (np.abs(image - grey).max(axis=-1) <= 1).sum() > 100  # whole rows and columns
    # the limits come from the values that are there
    plot_matrix(np.full((3, 3), np.nan), None, None, tmp_path / "all.png")
    assert (tmp_path / "all.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_connectome_skips_na_nodes_and_edges():
    from matplotlib.collections import LineCollection, PathCollection

    matrix, _, networks, coords = _small_case()
    with_na = _with_missing(matrix)
    with plotting._style():
        fig, edges = _connectome_figure(with_na, coords, networks, "", 10, None, None)
    assert len(edges) == 10 and not {2, 7} & {k for i, j, _ in edges for k in (i, j)}
    assert edges == [e for e in _select_edges(matrix, 100) if not {2, 7} & set(e[:2])][:10]
    panel = next(ax for ax in fig.axes if ax.get_title() == "axial")
    nodes = [c for c in panel.collections if isinstance(c, PathCollection)]
    assert len(nodes) == 1 and len(nodes[0].get_offsets()) == 10
    assert all(np.isfinite(seg).all() for c in panel.collections
               if isinstance(c, LineCollection) and not hasattr(c, "levels")
               for seg in c.get_segments())
    # default count: 5 % of the 45 pairs the 10 regions with data have, rounded up
    assert len(_select_edges(with_na)) == 3


def test_connectomes_job_draws_na_and_says_why_when_all_na(tmp_path):
    """The figures job: an n/a region drawn, an all-n/a matrix a message."""
    import pandas as pd

    from cohort_connectome import io
    from cohort_connectome.jobs.figures import plot_connectomes

    matrix, labels, networks, coords = _small_case()
    io.write_table(pd.DataFrame({"name": labels, "network": networks, "x": coords[:, 0],
                                 "y": coords[:, 1], "z": coords[:, 2]}),
                   tmp_path / "labels.tsv")
    io.write_matrix(_with_missing(matrix), labels, tmp_path / "a.tsv")
    io.write_matrix(np.full((12, 12), np.nan), labels, tmp_path / "b.tsv")
    figures = {k: {"matrix": tmp_path / f"{k}_m.png", "connectome": tmp_path / f"{k}_c.png"}
               for k in "ab"}
    plot_connectomes({"a": tmp_path / "a.tsv", "b": tmp_path / "b.tsv"},
                     tmp_path / "labels.tsv", figures, "group", empty="not computed")
    assert _decode(tmp_path / "a_c.png").shape[1] > _decode(tmp_path / "b_c.png").shape[1]
    assert _n_colours(_decode(tmp_path / "a_m.png")) > 50


def test_plot_run_qc_with_regions_without_data(tmp_path):
    """Raw and cleaned columns n/a in every volume: grey rows, no failure."""
    raw, fd, kept, confounds, networks = _run_qc_case()
    raw = raw.copy()
    raw[:, [0, 3]] = np.nan
    cleaned = raw[kept] - raw[kept].mean(axis=0)
    path = plotting.plot_run_qc(tmp_path / "qc.png", fd, kept, raw, cleaned, networks=networks,
                                confounds=confounds, fd_threshold=0.5, title="sub-01")
    image = np.round(_decode(path)[..., :3] * 255).astype(int)
    grey = round(float(plotting._NA_COLOUR) * 255)
    assert (np.abs(image - grey).max(axis=-1) <= 1).sum() > 500
