"""The group level end to end on a small demo: tangent space and group sparse
kinds from the cleaned time series (an excluded run left out), the phenotype
comparison, QC figures and QC-FC, the HTML report, byte-identical reruns, and
a comparison's config error reported before any job runs.

One run of the workflow for the module (6 demo subjects, one excluded by
``clean.min_seconds``); the other tests are dry runs or read its outputs.
"""

import hashlib
import html as html_text
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from cohort_connectome.connectivity import prec_to_partial
from cohort_connectome.io import read_matrix, read_timeseries
from cohort_connectome.tangent import tangent_connectivity
from conftest import demo_atlas, snakemake
from test_workflow import job_counts

pytestmark = pytest.mark.workflow

OVERLAY = """\
cohort:
  demo:
    n_subjects: 6
clean:
  min_seconds: 300        # sub-03 (190 volumes x 1.5 s) is excluded
connectivity:
  kinds: [correlation, partialcorrelation, tangent]
group:
  sparse: true
  sparse_cv:
    alphas: 3
    n_refinements: 2
"""
KINDS = ("correlation", "partialcorrelation", "tangent", "groupsparse_precision",
         "groupsparse_partialcorrelation")
INCLUDED = ("sub-01", "sub-02", "sub-04", "sub-05", "sub-06")
GROUPS = {"sub-01": "control", "sub-02": "patient", "sub-03": "control", "sub-04": "patient",
          "sub-05": "control", "sub-06": "patient"}


def _digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "report.html"}


@pytest.fixture(scope="module")
def group_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("group")
    overlay = root / "group.yaml"
    overlay.write_text(OVERLAY)
    workdir = root / "run"
    workdir.mkdir()
    config = ("--configfile", str(overlay))
    proc = snakemake(workdir, *config)
    return workdir, config, proc


def _long(workdir):
    return pd.read_csv(workdir / "results/group/atlas-demo_connectomes.tsv", sep="\t",
                       dtype={"participant_id": str})


def _matrix(rows, names):
    index = {n: k for k, n in enumerate(names)}
    m = np.zeros((len(names), len(names)))
    i = rows["region_i"].map(index).to_numpy()
    j = rows["region_j"].map(index).to_numpy()
    m[i, j] = m[j, i] = rows["value"].to_numpy()
    return m


def test_jobs_of_the_group_level(group_run):
    """The group rules run once, plot_subject_qc once per run, the group kinds are
    drawn like the others, and estimate_connectomes does not compute them."""
    workdir, _, proc = group_run
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["aggregate_connectomes"] == 1 and counts["compare_groups"] == 1
    assert counts["qc_fc"] == 1 and counts["plot_subject_qc"] == 6
    assert counts["plot_group_connectomes"] == len(KINDS)
    func = workdir / "results/sub-01/func"
    assert not list(func.glob("*tangent*")) and not list(func.glob("*groupsparse*"))
    info = json.loads((func / "sub-01_atlas-demo_connectivity.json").read_text())
    assert "tangent" not in json.dumps(info)


def test_tangent_from_the_included_time_series(group_run):
    """Tangent rows for every included subject equal nilearn's tangent kind
    (`tangent_connectivity`, tested against nilearn) of their cleaned time
    series; the geometric mean is the group matrix; the sidecar says how it went."""
    workdir, _, _ = group_run
    table = _long(workdir)
    assert list(dict.fromkeys(table["kind"])) == list(KINDS)
    assert sorted(set(table["participant_id"])) == list(INCLUDED)
    signals = [read_timeseries(workdir / f"results/{s}/func/{s}_atlas-demo_timeseries.tsv")[0]
               for s in INCLUDED]
    names = read_timeseries(workdir / "results/sub-01/func/sub-01_atlas-demo_timeseries.tsv")[1]
    tangents, mean, _ = tangent_connectivity(signals)
    for subject, expected in zip(INCLUDED, tangents):
        rows = table[(table.kind == "tangent") & (table.participant_id == subject)]
        assert len(rows) == 30 * 31 // 2
        np.testing.assert_allclose(_matrix(rows, names), expected, rtol=1e-7, atol=1e-9)
    group, gnames = read_matrix(workdir / "results/group/atlas-demo_meas-tangent_relmat.tsv")
    assert gnames == names
    np.testing.assert_allclose(group, mean, rtol=1e-8)
    info = json.loads((workdir / "results/group/atlas-demo_connectomes.json").read_text())
    assert info["runs"] == list(INCLUDED) and info["excluded"] == ["sub-03"]
    assert info["tangent"]["converged"] is True and 1 <= info["tangent"]["n_iter"] <= 30
    assert info["tangent"]["gradient_norm"] < info["tangent"]["tol"]
    assert info["tangent"]["estimator"] == "ledoit_wolf"


def test_group_sparse_kinds(group_run):
    """GroupSparseCovarianceCV: one support for every subject, partial
    correlations from the precisions, the chosen alpha in the sidecar, group
    means written and drawn."""
    workdir, _, _ = group_run
    table = _long(workdir)
    names = read_matrix(workdir / "results/group/atlas-demo_meas-correlation_relmat.tsv")[1]
    info = json.loads((workdir / "results/group/atlas-demo_connectomes.json").read_text())
    sparse = info["groupsparse"]
    assert sparse["alpha"] in sparse["cv_alphas"] and sparse["n_subjects"] == len(INCLUDED)
    assert sparse["options"] == {"alphas": 3, "n_refinements": 2}
    assert len(sparse["cv_scores"]) == len(sparse["cv_alphas"])
    supports, precisions = [], []
    for subject in INCLUDED:
        rows = table[(table.participant_id == subject)]
        precision = _matrix(rows[rows.kind == "groupsparse_precision"], names)
        partial = _matrix(rows[rows.kind == "groupsparse_partialcorrelation"], names)
        np.testing.assert_allclose(partial, prec_to_partial(precision), rtol=1e-6, atol=1e-8)
        supports.append(precision != 0)
        precisions.append(precision)
    assert all((s == supports[0]).all() for s in supports)
    assert 0 < sparse["density"] < 1
    assert sparse["density"] == pytest.approx(
        (supports[0].sum() - 30) / (30 * 29), abs=1e-12)
    mean, _ = read_matrix(workdir / "results/group/atlas-demo_meas-groupsparse_precision_relmat.tsv")
    np.testing.assert_allclose(mean, np.mean(precisions, axis=0), rtol=1e-6, atol=1e-8)
    for kind in ("groupsparse_precision", "groupsparse_partialcorrelation"):
        for figure in ("matrix", "connectome"):
            png = workdir / f"results/group/figures/atlas-demo_meas-{kind}_{figure}.png"
            assert png.read_bytes()[:4] == b"\x89PNG"


def test_comparison_tables_and_figures(group_run):
    """compare-group: a t-test per kind and edge with BH FDR (2 controls left after
    the exclusion vs 3 patients), classification noted as not run (fewer
    subjects than folds), one figure per kind."""
    from scipy import stats

    workdir, _, _ = group_run
    group = workdir / "results/group"
    ttest = pd.read_csv(group / "atlas-demo_compare-group_ttest.tsv", sep="\t",
                        keep_default_na=False, na_values=["n/a"])
    assert list(dict.fromkeys(ttest["kind"])) == list(KINDS)
    assert (ttest.groupby("kind").size() == 30 * 29 // 2).all()
    assert set(ttest["group_a"]) == {"control"} and set(ttest["group_b"]) == {"patient"}
    assert set(ttest["n_a"]) == {2} and set(ttest["n_b"]) == {3}
    table = _long(workdir)
    row = ttest[ttest.kind == "tangent"].iloc[7]
    values = table[(table.kind == "tangent") & (table.region_i == row["region_i"])
                   & (table.region_j == row["region_j"])]
    a = values[values.participant_id.map(GROUPS) == "control"]["value"]
    b = values[values.participant_id.map(GROUPS) == "patient"]["value"]
    expected = stats.ttest_ind(a, b)
    assert row["t"] == pytest.approx(expected.statistic, rel=1e-6)
    assert row["p"] == pytest.approx(expected.pvalue, rel=1e-6)
    assert (ttest["significant"] == (ttest["q"] < 0.05)).all()

    scores = pd.read_csv(group / "atlas-demo_compare-group_classification.tsv", sep="\t",
                         keep_default_na=False, na_values=["n/a"])
    assert list(scores["kind"]) == list(KINDS)
    assert scores["accuracy_mean"].isna().all() and (scores["n_subjects"] == 5).all()
    assert all("fewer than n_splits=4" in note and "'group'" in note for note in scores["note"])
    for kind in KINDS:
        png = group / "figures" / f"atlas-demo_compare-group_meas-{kind}_ttest.png"
        assert png.read_bytes()[:4] == b"\x89PNG"


def test_quality_control(group_run):
    """A QC figure for every run (the excluded one too) and QC-FC per kind and edge."""
    workdir, _, _ = group_run
    for subject in GROUPS:
        png = workdir / f"results/{subject}/figures/{subject}_atlas-demo_qc.png"
        assert png.read_bytes()[:4] == b"\x89PNG"
    qcfc = pd.read_csv(workdir / "results/group/atlas-demo_qcfc.tsv", sep="\t",
                       keep_default_na=False, na_values=["n/a"])
    assert list(dict.fromkeys(qcfc["kind"])) == list(KINDS)
    assert (qcfc["n_runs"] == len(INCLUDED)).all()
    # edges outside the group sparse support are 0 in every run: no correlation
    constant = qcfc["note"] == "not computed: edge constant across runs"
    assert ((qcfc["note"] == "") | constant).all()
    assert qcfc.loc[constant, "kind"].str.startswith("groupsparse_").all()
    assert qcfc.loc[constant, "r"].isna().all() and qcfc.loc[~constant, "r"].notna().all()
    qc = pd.read_csv(workdir / "results/group/atlas-demo_qc.tsv", sep="\t")
    fd = qc.set_index("participant_id").loc[list(INCLUDED), "mean_fd"].to_numpy()
    row = qcfc[qcfc.kind == "correlation"].iloc[3]
    table = _long(workdir)
    edge = table[(table.kind == "correlation") & (table.region_i == row["region_i"])
                 & (table.region_j == row["region_j"])].set_index("participant_id")
    assert row["r"] == pytest.approx(np.corrcoef(edge.loc[list(INCLUDED), "value"], fd)[0, 1],
                                     rel=1e-6)
    assert (workdir / "results/group/figures/atlas-demo_qcfc.png").read_bytes()[:4] == b"\x89PNG"
    motion = workdir / "results/group/figures/atlas-demo_desc-motion_qc.png"
    assert motion.read_bytes()[:4] == b"\x89PNG"


def test_methods_text_of_the_run(group_run):
    """results/methods.md states this run's cohort, exclusions, atlas, cleaning,
    group kinds and comparison from the config used (the overlay's values, not
    the defaults) and this environment's versions; methods.html is its page."""
    from cohort_connectome.methods import software_versions

    workdir, _, _ = group_run
    text = (workdir / "results/methods.md").read_text()
    assert "6 subjects, 6 runs" in text
    assert "`demo`: 5 runs included, 1 excluded (1 by `clean_timeseries`)" in text
    assert "less than 300 s left after censoring was excluded" in text
    assert "30 regions, grid 40x48x35 voxels of 4x4x4 mm" in text
    assert "least-squares fit of each volume on the maps" in text
    assert "high-pass 0.01 Hz" in text and "Ledoit-Wolf shrinkage" in text
    assert "correlation and partial correlation (`connectivity.kinds`)" in text
    assert "Tangent-space connectivity" in text
    assert "`GroupSparseCovarianceCV` (`alphas=3`, `n_refinements=2`)" in text
    assert "Phenotype column `group`" in text and "at q < 0.05" in text
    for name, version in software_versions().items():
        assert f"- {name} {version}\n" in text
    page = (workdir / "results/methods.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<h2>Group level</h2>" in page


def _rows(page):
    """The body rows of the last table of an HTML page, as lists of cell texts."""
    body = page.rsplit("<tbody>", 1)[1].split("</tbody>")[0]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr.*?</tr>", body)]


def test_table_pages(group_run):
    """The QC, exclusions, classification and significant-edges tables as sortable
    HTML pages: the TSVs' rows, the excluded run flagged, each significant edge
    with its regions' networks."""
    workdir, _, _ = group_run
    group = workdir / "results/group"
    qc = (group / "atlas-demo_qc.html").read_text()
    rows = _rows(qc)
    assert [r[0] for r in rows] == list(GROUPS)
    assert re.search(r'<tr class="flag"><td>sub-03</td>', qc) and qc.count('class="flag"') == 1
    assert "<script>" in qc and "sortable" in qc
    exclusions = _rows((group / "atlas-demo_exclusions.html").read_text())
    assert [r[:2] for r in exclusions] == [["sub-03", "clean_timeseries"]]
    classification = _rows((group / "atlas-demo_compare-group_classification.html").read_text())
    assert [r[0] for r in classification] == list(KINDS)
    ttest = pd.read_csv(group / "atlas-demo_compare-group_ttest.tsv", sep="\t",
                        keep_default_na=False, na_values=["n/a"])
    labels = pd.read_csv(workdir / "results/atlases/atlas-demo/atlas-demo_probseg.tsv", sep="\t")
    network = dict(zip(labels["name"], labels["network"]))
    significant = ttest[ttest["significant"]]
    page = (group / "atlas-demo_compare-group_significant.html").read_text()
    edges = _rows(page)
    assert len(edges) == len(significant)
    for kind, a, net_a, b, net_b, t, q, *_ in edges:
        row = significant[(significant.kind == kind) & (significant.region_i == a)
                          & (significant.region_j == b)]
        assert len(row) == 1 and (net_a, net_b) == (network[a], network[b])
        assert float(t) == pytest.approx(row["t"].iloc[0], rel=1e-3)
        assert float(q) < 0.05
    counts = _rows(page.split("<h2>Significant edges</h2>")[0])
    assert [int(r[2]) for r in counts] == [int(significant.kind.eq(k).sum()) for k in KINDS]


def test_report_and_byte_identical_rerun(group_run):
    """`snakemake --report results/report.html` builds a self-contained report with
    every stage's figures and tables, by kind, and the config used; rerunning
    the group level gives the same bytes."""
    workdir, config, _ = group_run
    snakemake(workdir, *config, "--report", "results/report.html")
    html = (workdir / "results/report.html").read_text()
    categories = json.loads(re.search(r"var categories = (\{.*?\});\n", html).group(1))
    assert set(categories) == {"1 Methods", "2 Atlases", "3 Quality control",
                               "4 Group connectomes", "5 Group comparison"}
    assert "results/methods.html" in json.dumps(categories["1 Methods"])
    for page in ("qc.html", "exclusions.html"):
        assert f"results/group/atlas-demo_{page}" in categories["3 Quality control"]["cohort"]
    for page in ("significant.html", "classification.html", "classification.tsv"):
        assert (f"results/group/atlas-demo_compare-group_{page}"
                in categories["5 Group comparison"]["tables"])
    assert list(categories["2 Atlases"]) == ["demo"]
    assert set(KINDS) <= set(categories["4 Group connectomes"])
    assert set(KINDS) <= set(categories["5 Group comparison"])
    assert len(categories["3 Quality control"]["runs"]) == len(GROUPS)
    assert "results/group/atlas-demo_qcfc.tsv" in categories["3 Quality control"]["cohort"]
    # the config used, folded away below the landing page's text
    assert re.search(r"<details><summary>Configuration used.*?</summary><pre>", html, re.S)
    assert '\\"min_seconds\\": 300' in html
    assert "Licence: generated by this workflow" in html  # the atlas's provenance caption
    # each run's QC numbers beside its QC figure (the result's labels), from the QC table
    results = json.loads(re.search(r"var results = (\{.*?\});\n", html).group(1))
    qc = pd.read_csv(workdir / "results/group/atlas-demo_qc.tsv", sep="\t",
                     keep_default_na=False).set_index("participant_id")
    for subject in GROUPS:
        labels = results[f"results/{subject}/figures/{subject}_atlas-demo_qc.png"]["labels"]
        row = qc.loc[subject]
        assert labels["volumes kept"] == f"{row['n_kept']} of {row['n_volumes']}"
        assert labels["mean FD (mm)"] == f"{float(row['mean_fd']):.3f}"
        assert labels["excluded"] == (row["excluded"] or "no")
    assert "less than min_seconds 300 s" in results[
        "results/sub-03/figures/sub-03_atlas-demo_qc.png"]["labels"]["excluded"]
    assert ("results/group/figures/atlas-demo_desc-motion_qc.png"
            in categories["3 Quality control"]["cohort"])
    # the in-process rules (run: directives) show the script they run
    rules = json.loads(re.search(r"var rules = (\{.*?\});\n", html).group(1))
    assert "Rule clean_timeseries: detrend, filter" in rules["clean_timeseries"]["code"]
    assert "Rule estimate_connectomes: one subject" in rules["estimate_connectomes"]["code"]
    # the group matrix caption: no "matrix,regions"; why kinds look alike
    assert "matrix,regions" not in html and "matrix,\\nregions grouped" in html
    assert html.count("Why the correlation, covariance and tangent group matrices") == len(KINDS)

    before = _digest(workdir / "results")
    snakemake(workdir, *config, "--forcerun", "aggregate_connectomes", "plot_subject_qc",
              "methods", "plot_cohort_motion")
    after = _digest(workdir / "results")
    assert before.keys() == after.keys()
    assert [k for k in before if before[k] != after[k]] == []


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Run in the report once its app has drawn the landing page: where the workflow
# description is (upstream snakemake#3906: a landing page taller than the window is
# centred, its top out of reach) and the text/html results with their tables.
BROWSER_PROBE = """<script>
window.addEventListener("load", function () { setTimeout(function () {
  var text = null, walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    if (walker.currentNode.textContent.indexOf("resting-state connectomes of a cohort") >= 0) {
      text = walker.currentNode.parentElement; break; } }
  var pages = {};
  Object.keys(results).forEach(function (path) {
    if (results[path].mime_type === "text/html") {
      var page = atob(results[path].data_uri.split(",")[1]);
      pages[path] = (page.match(/<table/g) || []).length; } });
  var out = document.createElement("pre"); out.id = "browser-probe";
  out.textContent = JSON.stringify({top: text && text.getBoundingClientRect().top,
    scrollY: window.scrollY, height: window.innerHeight, pages: pages});
  document.body.appendChild(out);
}, 2000); });
</script>"""


@pytest.mark.skipif(CHROMIUM is None,
                    reason="no chromium on PATH (make test-browser installs Debian's)")
def test_report_in_a_browser(group_run, tmp_path):
    """Headless Chromium at 1400x1000 opens the report: the landing page's text
    starts inside the window, unscrolled, and the table pages are HTML results
    with their tables."""
    workdir, config, _ = group_run
    report = workdir / "results/report.html"
    if not report.exists():
        snakemake(workdir, *config, "--report", "results/report.html")
    page = report.read_text()
    probe = tmp_path / "report.html"
    end = page.rindex("</body>")
    probe.write_text(page[:end] + BROWSER_PROBE + page[end:])
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
         "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=300)
    found = re.search(r'<pre id="browser-probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"no probe output (chromium {proc.returncode}): {proc.stderr[-2000:]}"
    facts = json.loads(html_text.unescape(found.group(1)))
    assert facts["scrollY"] == 0 and 0 <= facts["top"] < facts["height"] / 2, facts
    group = "results/group/atlas-demo_"
    assert facts["pages"] == {
        "results/methods.html": 0,
        f"{group}qc.html": 1, f"{group}exclusions.html": 1,
        f"{group}compare-group_classification.html": 1,
        f"{group}compare-group_significant.html": 2,
    }


def test_one_level_column_of_a_sheet(tmp_path):
    """A sheet whose phenotype column has one level: the workflow stops before any
    job with the one-line error naming it (the comparison's config errors are
    unit-tested in test_config.py)."""
    sheet = tmp_path / "participants.tsv"
    sheet.write_text("participant_id\tfunc\tdiagnosis\n01\ta.nii.gz\tadhd\n02\tb.nii.gz\tadhd\n")
    config = tmp_path / "sheet.yaml"
    maps, labels, _ = demo_atlas(tmp_path)
    config.write_text(f"cohort:\n  source: sheet\n  sheet: {sheet}\n"
                      f"atlases:\n  x: {{probseg: {maps}, labels: {labels}}}\n"
                      "group:\n  compare: diagnosis\n")
    proc = snakemake(tmp_path, "-n", "--configfile", str(config), check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    lines = [line for line in output.splitlines() if "group.compare" in line]
    assert lines == [f"config group.compare: phenotype column 'diagnosis' has 1 level(s) "
                     f"('adhd'); a comparison needs 2 (in cohort sheet {sheet})"]
