"""The workflow end to end: dry run, the whole demo, byte-identical reruns,
reruns after a config change, config errors and broken subjects.

Snakemake runs as a subprocess with ``--directory`` in a temporary folder, so
the repository is never written to.
"""

import json
import re

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cohort_connectome import demo
from cohort_connectome.io import read_matrix, read_timeseries
from conftest import REPO_ROOT, demo_atlas, snakemake, tree_digest

KINDS = ("correlation", "partialcorrelation", "covariance", "precision")

pytestmark = pytest.mark.workflow


def job_counts(output):
    """Parse snakemake's 'Job stats' table into {rule: count}."""
    counts = {}
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Job stats"))
    except StopIteration:
        return counts
    for line in lines[start + 3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """One full run of the default (demo) configuration."""
    workdir = tmp_path_factory.mktemp("demo")
    proc = snakemake(workdir)
    (workdir / "first_run.log").write_text(proc.stdout + proc.stderr)
    return workdir


def test_dry_run_builds_the_dag(tmp_path):
    """`snakemake -n` lists every rule of the DAG with the expected job counts."""
    proc = snakemake(tmp_path, "-n")
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts == {
        "aggregate_connectomes": 1, "all": 1, "clean_timeseries": 8, "compare_groups": 1,
        "estimate_connectomes": 8, "extract_timeseries": 8, "plot_group_connectomes": 5,
        "plot_subject_qc": 8, "prepare_atlas": 1, "qc_fc": 1, "resample_atlas": 1,
        "simulate_demo_atlas": 1, "simulate_demo_run": 8, "methods": 1,
        "plot_cohort_motion": 1, "report_qc_tables": 1, "report_comparison_tables": 1,
        "total": 56,
    }
    assert not (tmp_path / "results").exists()


def test_run_rules_without_force_use_threads_say_so(tmp_path):
    """clean_timeseries and estimate_connectomes are run: rules, cheap only in
    the Snakemake process (force-use-threads, set by profiles/default): a run
    without the profile says what it costs; the default run does not."""
    warning = "WARNING: run without force-use-threads"
    args = ("--until", "simulate_demo_atlas")
    plain = snakemake(tmp_path / "plain", "--workflow-profile", "none", *args)
    assert warning in plain.stderr
    default = snakemake(tmp_path / "default", *args)
    assert warning not in default.stderr
    assert "force-use-threads" in (REPO_ROOT / "profiles" / "default" / "config.yaml").read_text()


def test_demo_outputs(demo_dir):
    """Every contract output exists with the documented layout."""
    design = demo.demo_design(8, 20261124)
    names = list(demo.demo_labels()["name"])
    for _, row in design.iterrows():
        sub = f"sub-{row['participant_id']}"
        func = demo_dir / "results" / sub / "func"
        signals, header = read_timeseries(func / f"{sub}_atlas-demo_timeseries.tsv")
        assert header == names
        assert signals.shape == (row["n_volumes"], len(names))
        # zscore_sample: zero mean, unit sample SD per region
        np.testing.assert_allclose(signals.mean(axis=0), 0, atol=1e-6)
        np.testing.assert_allclose(signals.std(axis=0, ddof=1), 1, atol=1e-6)
        sidecar = json.loads((func / f"{sub}_atlas-demo_timeseries.json").read_text())
        assert sidecar["RepetitionTime"] == pytest.approx(row["t_r"])
        assert sidecar["RepetitionTimeSource"] == "NIfTI header"
        assert sidecar["Confounds"] == list(demo.CONFOUND_NAMES)
        for kind in KINDS:
            matrix, mnames = read_matrix(func / f"{sub}_atlas-demo_meas-{kind}_relmat.tsv")
            assert mnames == names and matrix.shape == (30, 30)
            np.testing.assert_allclose(matrix, matrix.T, atol=1e-9)
        info = json.loads((func / f"{sub}_atlas-demo_connectivity.json").read_text())
        assert info["estimator"] == "ledoit_wolf"
        for rule in ("extract_timeseries", "clean_timeseries", "estimate_connectomes"):
            # one extraction job per run for all atlases; the later jobs per atlas
            stem = sub if rule == "extract_timeseries" else f"{sub}_atlas-demo"
            assert (demo_dir / "logs" / rule / sub / f"{stem}.log").stat().st_size > 0
            assert (demo_dir / "benchmarks" / rule / sub / f"{stem}.tsv").is_file()

    group = demo_dir / "results" / "group"
    table = pd.read_csv(group / "atlas-demo_connectomes.tsv", sep="\t", dtype={"participant_id": str})
    assert list(table.columns) == ["participant_id", "group", "age", "sex", "kind",
                                   "region_i", "region_j", "value"]
    # the four per-run kinds, then tangent (group rule)
    assert list(dict.fromkeys(table["kind"])) == [*KINDS, "tangent"]
    assert len(table) == 8 * 5 * (30 * 31 // 2)
    assert set(table["participant_id"]) == {f"sub-{i:02d}" for i in range(1, 9)}
    for kind in KINDS:
        mean, mnames = read_matrix(group / f"atlas-demo_meas-{kind}_relmat.tsv")
        subjects = [read_matrix(demo_dir / "results" / s / "func" /
                                f"{s}_atlas-demo_meas-{kind}_relmat.tsv")[0]
                    for s in sorted(set(table["participant_id"]))]
        np.testing.assert_allclose(mean, np.mean(subjects, axis=0), rtol=1e-8, atol=1e-12)
        # the long table holds the same numbers as the per-subject files
        rows = table[(table["kind"] == kind) & (table["participant_id"] == "sub-01")]
        i = [mnames.index(r) for r in rows["region_i"]]
        j = [mnames.index(r) for r in rows["region_j"]]
        np.testing.assert_allclose(rows["value"].to_numpy(), subjects[0][i, j], rtol=1e-9)
        for figure in ("matrix", "connectome"):
            png = group / "figures" / f"atlas-demo_meas-{kind}_{figure}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = (demo_dir / "first_run.log").read_text()
    assert "results/group/figures/" in log  # the closing summary says where things are


def test_demo_group_level(demo_dir):
    """The default demo's group level: tangent group matrix and figures, the
    comparison of its two groups (true precisions differ: every kind is
    classified above chance; t-tests with BH FDR), QC figures and QC-FC.
    tests/test_group_workflow.py checks the numbers in detail."""
    group = demo_dir / "results" / "group"
    for figure in ("matrix", "connectome"):
        assert (group / "figures" / f"atlas-demo_meas-tangent_{figure}.png").is_file()
    info = json.loads((group / "atlas-demo_connectomes.json").read_text())
    assert info["tangent"]["converged"] and info["groupsparse"] is None
    scores = pd.read_csv(group / "atlas-demo_compare-group_classification.tsv", sep="\t",
                         keep_default_na=False)
    assert list(scores["kind"]) == [*KINDS, "tangent"]
    assert (scores["note"] == "").all() and (scores["n_subjects"] == 8).all()
    assert (scores["chance"] == 0.5).all()
    assert (scores["accuracy_mean"] > 0.75).all(), scores
    ttest = pd.read_csv(group / "atlas-demo_compare-group_ttest.tsv", sep="\t",
                        keep_default_na=False)
    assert len(ttest) == 5 * 30 * 29 // 2 and set(ttest["n_a"]) == {4}
    assert ttest.loc[ttest.kind == "correlation", "significant"].any()
    for sub in range(1, 9):
        assert (demo_dir / f"results/sub-{sub:02d}/figures/sub-{sub:02d}_atlas-demo_qc.png"
                ).is_file()
    qcfc = pd.read_csv(group / "atlas-demo_qcfc.tsv", sep="\t", keep_default_na=False)
    assert len(qcfc) == 5 * 30 * 29 // 2 and (qcfc["n_runs"] == 8).all()


def test_demo_recovers_ground_truth(demo_dir):
    """The estimated partial correlations find the true sparse support
    (ROC AUC of |partial correlation| against the true non-zero edges ≥ 0.9
    for every subject)."""
    from sklearn.metrics import roc_auc_score

    design = demo.demo_design(8, 20261124)
    truth = {g: read_matrix(demo_dir / "resources" / "demo" / "truth" /
                            f"group-{g}_precision.tsv")[0] for g in demo.GROUPS}
    upper = np.triu_indices(30, 1)
    aucs = []
    for _, row in design.iterrows():
        sub = f"sub-{row['participant_id']}"
        partial, _ = read_matrix(demo_dir / "results" / sub / "func" /
                                 f"{sub}_atlas-demo_meas-partialcorrelation_relmat.tsv")
        support = truth[row["group"]][upper] != 0
        aucs.append(roc_auc_score(support, np.abs(partial[upper])))
    assert min(aucs) >= 0.9, aucs


def test_rerun_is_byte_identical(demo_dir):
    """Forcing every job again reproduces every output byte for byte."""
    before = tree_digest(demo_dir)
    snakemake(demo_dir, "--forceall")
    after = tree_digest(demo_dir)
    assert before.keys() == after.keys()
    changed = [k for k in before if before[k] != after[k]]
    assert not changed, changed


def test_changing_low_pass_reruns_cleaning_not_extraction(demo_dir, tmp_path):
    """After changing clean.low_pass, cleaning and everything downstream rerun,
    extraction and resampling do not."""
    overlay = tmp_path / "lowpass.yaml"
    overlay.write_text("clean:\n  low_pass: 0.12\n")
    proc = snakemake(demo_dir, "-n", "--configfile", str(overlay))
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts.get("clean_timeseries") == 8
    assert counts.get("estimate_connectomes") == 8
    assert counts.get("aggregate_connectomes") == 1
    assert counts.get("plot_group_connectomes") == 5
    assert counts.get("compare_groups") == 1 and counts.get("qc_fc") == 1
    assert counts.get("plot_subject_qc") == 8
    for rule in ("extract_timeseries", "resample_atlas", "simulate_demo_run"):
        assert rule not in counts

    raw = demo_dir / "work" / "sub-01" / "sub-01_atlas-demo_desc-raw_timeseries.tsv"
    cleaned = demo_dir / "results" / "sub-01" / "func" / "sub-01_atlas-demo_timeseries.tsv"
    raw_mtime, cleaned_bytes = raw.stat().st_mtime_ns, cleaned.read_bytes()
    snakemake(demo_dir, "--configfile", str(overlay))
    assert raw.stat().st_mtime_ns == raw_mtime
    assert cleaned.read_bytes() != cleaned_bytes
    assert json.loads(cleaned.with_suffix(".json").read_text())["LowPass"] == 0.12
    # nothing left to do with the new value
    proc = snakemake(demo_dir, "-n", "--configfile", str(overlay))
    assert "Nothing to be done" in proc.stdout + proc.stderr


# Each config error is unit-tested in test_config.py; these prove that the
# workflow reports both kinds (schema; cohort_connectome.config) before any job.
@pytest.mark.parametrize("overlay, key", [
    ("clean:\n  low_pass: -0.1\n", "low_pass"),
    ("clean:\n  high_pass: 0.1\n  low_pass: 0.08\n",
     "config clean.high_pass (0.1 Hz) must be below clean.low_pass (0.08 Hz)"),
])
def test_config_errors_fail_before_any_job(tmp_path, overlay, key):
    """A bad config value stops the workflow before any job, naming the key."""
    path = tmp_path / "bad.yaml"
    path.write_text(overlay)
    proc = snakemake(tmp_path, "--configfile", str(path), check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert key in output
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results").exists()


# Every kind of config error is one line naming the key path, the bad value and what
# is allowed (the nearest key or value for a typo), without jsonschema's dump of the
# schema; each message is unit-tested in test_config.py.
ONE_LINE_ERRORS = [
    ("cohort:\n  n_subjects: 3\n",     # unknown key
     "config cohort: unknown key 'n_subjects' (did you mean cohort.adhd.n_subjects or "
     "cohort.demo.n_subjects?); allowed: source, sheet, on_bad_input, bids_dir, space, task, "
     "participants, demo, adhd"),
    ("figures:\n  n_edges: many\n",    # wrong type
     "config figures.n_edges: 'many' is a string; allowed: an integer >= 1"),
    ("cohort:\n  demo:\n    n_subjects: 65\n",  # out of range
     "config cohort.demo.n_subjects: 65 is out of range; allowed: an integer from 2 to 64"),
    ("connectivity:\n  estimator: lasso\n",  # bad enum value
     "config connectivity.estimator: unknown value 'lasso'; allowed: one of ledoit_wolf, "
     "empirical, graphical_lasso_cv"),
    ("cohort:\n  source: sheet\n",     # missing companion key
     "config cohort.sheet: required when cohort.source is 'sheet'"),
    ("atlases:\n  mine: {probseg: maps.nii.gz}\n",
     "config atlases.mine.labels: required with probseg (a TSV/CSV with index, name and "
     "optional network, x, y, z)"),
]


@pytest.mark.parametrize("overlay, line", ONE_LINE_ERRORS)
def test_config_errors_are_one_line(tmp_path, overlay, line):
    path = tmp_path / "bad.yaml"
    path.write_text(overlay)
    proc = snakemake(tmp_path, "-n", "--configfile", str(path), check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert [text for text in output.splitlines() if text.startswith("config")] == [line]
    for dump in ("Failed validating", "additionalProperties", "$schema", "On instance"):
        assert dump not in output
    assert len(output.splitlines()) < 10, output  # Snakemake's 4 lines of where, and ours
    assert "Job stats" not in output


# --------------------------------------------------------------------------
# own cohorts through a sheet, including broken subjects
# --------------------------------------------------------------------------
SMALL_SHAPE = (25, 31, 24)
SMALL_AFFINE = np.array([[-6.0, 0, 0, 72], [0, 6.0, 0, -108], [0, 0, 6.0, -60], [0, 0, 0, 1]])


def _small_run(path, n_volumes, seed, affine=SMALL_AFFINE, t_r=2.0, shape=SMALL_SHAPE):
    """A small synthetic run on a 6 mm grid (fast), signal inside the demo maps."""
    rng = np.random.default_rng(seed)
    maps = demo.evaluate_maps(shape, affine).reshape(-1, len(demo.REGIONS))
    signals = rng.standard_normal((n_volumes, len(demo.REGIONS)))
    data = maps @ signals.T * 20 + rng.standard_normal((maps.shape[0], n_volumes)) + 100
    img = nib.Nifti1Image(data.reshape(shape + (n_volumes,)).astype(np.float32), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms((6.0, 6.0, 6.0, t_r))
    img.to_filename(path)
    return img


@pytest.fixture(scope="module")
def sheet_cohort(tmp_path_factory):
    """A sheet cohort: two good subjects (one written with the sub- prefix, one
    .nii) and four broken ones; the atlas is the demo atlas, given as files."""
    root = tmp_path_factory.mktemp("sheet")
    data = root / "data"
    data.mkdir()
    demo_atlas(data)
    labels = demo.demo_labels().rename(columns={"network": "net name"})
    labels.to_csv(data / "labels.csv", index=False)

    _small_run(data / "good1.nii.gz", 80, 1)
    _small_run(data / "good2.nii", 70, 2, t_r=2.5)
    pd.DataFrame(np.random.default_rng(3).standard_normal((80, 2)), columns=["a", "b"]) \
        .to_csv(data / "good1_conf.tsv", sep="\t", index=False)
    pd.DataFrame(np.random.default_rng(4).standard_normal((70, 2)), columns=["a", "b"]) \
        .to_csv(data / "good2_conf.csv", index=False)
    img3d = _small_run(data / "tmp.nii.gz", 5, 5)
    nib.Nifti1Image(img3d.get_fdata()[..., 0], SMALL_AFFINE).to_filename(data / "three_d.nii.gz")
    _small_run(data / "short_conf.nii.gz", 60, 6)
    pd.DataFrame(np.zeros((59, 1)), columns=["a"]).to_csv(data / "short_conf.tsv",
                                                          sep="\t", index=False)
    far = SMALL_AFFINE.copy()
    far[:3, 3] += 2000.0
    _small_run(data / "far.nii.gz", 60, 7, affine=far)
    sheet = pd.DataFrame({
        "participant_id": ["sub-01", "02", "03", "04", "05", "06"],
        "func": ["data/good1.nii.gz", "data/good2.nii", "data/three_d.nii.gz",
                 "data/missing.nii.gz", "data/short_conf.nii.gz", "data/far.nii.gz"],
        "confounds": ["data/good1_conf.tsv", "data/good2_conf.csv", "", "",
                      "data/short_conf.tsv", ""],
        "t_r": [np.nan, 2.5, np.nan, np.nan, np.nan, np.nan],
        "diagnosis": ["a", "b", "a", "b", "a", "b"],
    })
    sheet.to_csv(root / "participants.tsv", sep="\t", index=False)
    config = root / "cohort.yaml"
    config.write_text(
        f"cohort:\n  source: sheet\n  sheet: {root / 'participants.tsv'}\n"
        f"atlases:\n  test:\n    probseg: {data / 'atlas.nii.gz'}\n"
        f"    labels: {data / 'labels.csv'}\n"
        "clean:\n  high_pass: 0.01\n  low_pass: 0.2\n"
        "connectivity:\n  kinds: [correlation, partialcorrelation, fisherz]\n"
        "figures:\n  subjects: true\n  negate: [partialcorrelation]\n"
        "group:\n  compare: diagnosis\n")
    workdir = root / "run"
    workdir.mkdir()
    # cohort.on_bad_input: exclude (the default)
    proc = snakemake(workdir, "--configfile", str(config), check=False)
    return workdir, proc, config


# the broken subjects of `sheet_cohort`: the rule that finds the problem, the
# file and the problem. sub-06 is alone on its grid: the atlas resampling for
# that grid finds that no region of the atlas has a voxel on it.
BROKEN = [
    ("sub-03", "extract_timeseries", "three_d.nii.gz", "image is 3D"),
    ("sub-04", "extract_timeseries", "missing.nii.gz", "file not found"),
    ("sub-05", "clean_timeseries", "short_conf.tsv", "59 rows"),
    ("sub-06", "resample_atlas", "far.nii.gz", "atlas test: no region has a voxel in the run's "
     "field of view"),
]


def _error_lines(workdir, sub, rule):
    """The ERROR lines of the log of the job of ``rule`` that found ``sub`` broken."""
    if rule == "resample_atlas":
        logs = [p for p in (workdir / "logs" / rule).glob("grid-*_atlas-test.log")
                if sub in p.read_text()]
        assert len(logs) == 1
        log = logs[0].read_text()
    elif rule == "extract_timeseries":  # one job per run for every atlas
        log = (workdir / "logs" / rule / sub / f"{sub}.log").read_text()
    else:
        log = (workdir / "logs" / rule / sub / f"{sub}_atlas-test.log").read_text()
    assert "Traceback" not in log
    return [line for line in log.splitlines() if " ERROR " in line]


def test_sheet_cohort_good_subjects_finish(sheet_cohort):
    """Good subjects of a sheet cohort get all outputs; `sub-01` written with
    the prefix is not named `sub-sub-01`; the sheet t_r wins over the header."""
    workdir, proc, _ = sheet_cohort
    assert proc.returncode == 0, proc.stderr[-4000:]  # broken subjects are excluded
    for sub, n in (("sub-01", 80), ("sub-02", 70)):
        func = workdir / "results" / sub / "func"
        signals, _ = read_timeseries(func / f"{sub}_atlas-test_timeseries.tsv")
        assert signals.shape == (n, 30)
        for kind in ("correlation", "partialcorrelation", "fisherz"):
            assert (func / f"{sub}_atlas-test_meas-{kind}_relmat.tsv").is_file()
            for figure in ("matrix", "connectome"):  # figures.subjects: true
                png = workdir / "results" / sub / "figures" / \
                    f"{sub}_atlas-test_meas-{kind}_{figure}.png"
                assert png.read_bytes()[:4] == b"\x89PNG"
    assert not list(workdir.glob("results/sub-sub-*"))
    side2 = json.loads((workdir / "results/sub-02/func/sub-02_atlas-test_timeseries.json")
                       .read_text())
    assert side2["RepetitionTime"] == 2.5 and side2["RepetitionTimeSource"] == "cohort sheet"
    assert side2["Confounds"] == ["a", "b"]
    z, _ = read_matrix(workdir / "results/sub-01/func/sub-01_atlas-test_meas-fisherz_relmat.tsv")
    r, _ = read_matrix(workdir / "results/sub-01/func/sub-01_atlas-test_meas-correlation_relmat.tsv")
    off = ~np.eye(len(r), dtype=bool)
    np.testing.assert_allclose(np.tanh(z[off]), r[off], rtol=1e-8)
    side1 = json.loads((workdir / "results/sub-01/func/sub-01_atlas-test_timeseries.json")
                       .read_text())
    assert side1["RepetitionTimeSource"] == "NIfTI header"


@pytest.mark.parametrize("sub, rule, file, problem", BROKEN)
def test_broken_subject_is_excluded_with_one_line(sheet_cohort, sub, rule, file, problem):
    """cohort.on_bad_input: exclude (default): a broken subject's job logs one
    line naming subject, file and problem, writes placeholders that hold no
    data, and the exclusions table gives the stage and the reason."""
    workdir, proc, _ = sheet_cohort
    errors = _error_lines(workdir, sub, rule)
    assert len(errors) == 1, errors
    assert re.search(rf"{sub}: \S*{re.escape(file)}: .*{problem}", errors[0]), errors[0]
    assert re.search(rf"{sub}: \S*{re.escape(file)}: .*{problem}", proc.stderr)
    func = workdir / "results" / sub / "func"
    signals, names = read_timeseries(func / f"{sub}_atlas-test_timeseries.tsv")
    assert signals.shape == (0, 30) and len(names) == 30
    for kind in ("correlation", "partialcorrelation", "fisherz"):
        matrix, _ = read_matrix(func / f"{sub}_atlas-test_meas-{kind}_relmat.tsv")
        assert np.isnan(matrix).all()
    figure = (workdir / "results" / sub / "figures" / f"{sub}_atlas-test_qc.png").read_bytes()
    width, height = int.from_bytes(figure[16:20], "big"), int.from_bytes(figure[20:24], "big")
    if rule != "clean_timeseries":  # no data read: a message, not an empty QC figure
        assert width > 3 * height
    side = json.loads((func / f"{sub}_atlas-test_timeseries.json").read_text())
    assert side["ExcludedStage"] == rule and re.search(rf"{re.escape(file)}: .*{problem}",
                                                        side["Excluded"])
    exclusions = pd.read_csv(workdir / "results/group/atlas-test_exclusions.tsv", sep="\t")
    assert list(exclusions.columns) == ["participant_id", "stage", "reason"]
    row = exclusions.set_index("participant_id").loc[sub]
    assert row["stage"] == rule and re.search(rf"{re.escape(file)}: .*{problem}",
                                              row["reason"])


def test_group_level_uses_the_subjects_that_succeeded(sheet_cohort):
    """The group rules aggregate sub-01 and sub-02 only; the end-of-run summary
    names the excluded subjects."""
    workdir, proc, _ = sheet_cohort
    exclusions = pd.read_csv(workdir / "results/group/atlas-test_exclusions.tsv", sep="\t")
    assert sorted(exclusions["participant_id"]) == [b[0] for b in BROKEN]
    table = pd.read_csv(workdir / "results/group/atlas-test_connectomes.tsv", sep="\t")
    assert sorted(set(table["participant_id"])) == ["sub-01", "sub-02"]
    qc = pd.read_csv(workdir / "results/group/atlas-test_qc.tsv", sep="\t",
                     keep_default_na=False)
    assert list(qc["excluded_stage"]) == ["", ""] + [b[1] for b in BROKEN]
    info = json.loads((workdir / "results/group/atlas-test_connectomes.json").read_text())
    assert info["runs"] == ["sub-01", "sub-02"]
    assert info["excluded"] == [b[0] for b in BROKEN]
    out = proc.stdout + proc.stderr
    assert ("EXCLUDED            4 of 6, listed in results/group/atlas-test_exclusions.tsv:"
            in out)
    for sub, rule, file, problem in BROKEN:
        assert re.search(rf"    {sub} at {rule}: \S*{re.escape(file)}: .*{problem}", out)


@pytest.fixture(scope="module")
def sheet_cohort_fail(sheet_cohort):
    """The same cohort with cohort.on_bad_input: fail and --keep-going."""
    _, _, config = sheet_cohort
    overlay = config.parent / "fail.yaml"
    overlay.write_text("cohort:\n  on_bad_input: fail\n")
    workdir = config.parent / "run-fail"
    workdir.mkdir()
    proc = snakemake(workdir, "--configfile", str(config), str(overlay), "--keep-going",
                     check=False)
    return workdir, proc


@pytest.mark.parametrize("sub, rule, file, problem", BROKEN)
def test_broken_subject_fails_with_one_line(sheet_cohort_fail, sub, rule, file, problem):
    """cohort.on_bad_input: fail: a broken subject's job fails with one line
    naming subject, file and problem, and leaves no partial output; with
    --keep-going the good subjects still finish."""
    workdir, proc = sheet_cohort_fail
    assert proc.returncode != 0
    errors = _error_lines(workdir, sub, rule)
    assert len(errors) == 1, errors
    assert re.search(rf"{sub}: \S*{re.escape(file)}: .*{problem}", errors[0]), errors[0]
    # only the outputs of the rules before the failing one: extraction's coverage table
    # (in results/) when cleaning fails
    left = [p.name for p in (workdir / "results").glob(f"{sub}/**/*.tsv")]
    assert left == ([f"{sub}_atlas-test_stat-coverage_bold.tsv"] if rule == "clean_timeseries"
                    else [])
    assert not list((workdir / "work").glob(f"{sub}/*{rule.split('_')[0]}*"))
    assert re.search(rf"{sub}: \S*{re.escape(file)}: .*{problem}", proc.stderr)
    for good in ("sub-01", "sub-02"):
        assert (workdir / "results" / good / "func" /
                f"{good}_atlas-test_meas-correlation_relmat.tsv").is_file()
    assert not (workdir / "results/group").exists()


def test_fixing_a_broken_subject_reruns_it_and_the_group(sheet_cohort):
    """An excluded subject whose file is fixed (here: the missing run appears)
    is rerun, with the group level, and nothing else (dry run)."""
    workdir, _, config = sheet_cohort
    data = config.parent / "data"
    fixed = data / "missing.nii.gz"
    fixed.write_bytes((data / "good1.nii.gz").read_bytes())
    try:
        proc = snakemake(workdir, "--configfile", str(config), "-n")
    finally:
        fixed.unlink()
    counts = job_counts(proc.stdout)
    assert counts["extract_timeseries"] == counts["clean_timeseries"] == 1
    assert counts["estimate_connectomes"] == counts["aggregate_connectomes"] == 1
    assert "resample_atlas" not in counts
    assert re.findall(r"output: work/(sub-\d+)/\S+_desc-raw_timeseries.tsv", proc.stdout) \
        == ["sub-04"]


# --------------------------------------------------------------------------
# a minimal config of one's own: a cohort sheet and an atlas, nothing else
# --------------------------------------------------------------------------
NEUTRAL_KINDS = ("correlation", "partialcorrelation", "covariance", "precision")
TANGENT_NOTE = ("cohort_connectome: note: tangent are estimated across runs and need at "
                "least 2, the cohort has 1: skipped (a default; to make this an error, ask "
                "for them in your config's connectivity.kinds or group.sparse)")


def _minimal_config(root, n_runs, extra=""):
    """``n_runs`` small runs listed in a sheet of ``participant_id`` and ``func`` only
    (no phenotype, no confounds, no t_r) and a config naming only that sheet and an
    atlas (the demo's maps as user files); returns the config's path."""
    data = root / "data"
    data.mkdir(parents=True)
    maps, labels, _ = demo_atlas(data)
    for k in range(n_runs):
        _small_run(data / f"run{k + 1}.nii.gz", 60, 20 + k)
    pd.DataFrame({"participant_id": [f"{k + 1:02d}" for k in range(n_runs)],
                  "func": [f"data/run{k + 1}.nii.gz" for k in range(n_runs)]}) \
        .to_csv(root / "runs.tsv", sep="\t", index=False)
    config = root / "my.yaml"
    config.write_text(f"cohort: {{source: sheet, sheet: {root / 'runs.tsv'}}}\n"
                      f"atlases:\n  mine: {{probseg: {maps}, labels: {labels}}}\n{extra}")
    return config


def test_minimal_config_on_one_run(tmp_path):
    """One run: the default tangent kind is skipped with a note (said once), there is
    no comparison (the demo's is the demo's), and the run goes through to the group
    level and its figures."""
    config = _minimal_config(tmp_path, 1)
    proc = snakemake(tmp_path / "run", "--configfile", str(config))
    assert proc.stderr.splitlines().count(TANGENT_NOTE) == 1
    counts = job_counts(proc.stdout + proc.stderr)
    assert "compare_groups" not in counts and counts["aggregate_connectomes"] == 1
    assert counts["plot_group_connectomes"] == len(NEUTRAL_KINDS)
    results = tmp_path / "run" / "results"
    for kind in NEUTRAL_KINDS:
        matrix, _ = read_matrix(results / "sub-01" / "func"
                                / f"sub-01_atlas-mine_meas-{kind}_relmat.tsv")
        assert matrix.shape == (30, 30) and np.isfinite(matrix).all()
        assert (results / "group" / f"atlas-mine_meas-{kind}_relmat.tsv").is_file()
    assert not list(results.rglob("*tangent*")) and not list(results.rglob("*compare-*"))


def test_minimal_config_on_several_runs(tmp_path):
    """Three runs without phenotype columns, end to end: every default kind,
    tangent included, no comparison, no note."""
    config = _minimal_config(tmp_path, 3)
    proc = snakemake(tmp_path / "run", "--configfile", str(config))
    counts = job_counts(proc.stdout + proc.stderr)
    assert "note:" not in proc.stderr and "compare_groups" not in counts
    assert counts["extract_timeseries"] == counts["estimate_connectomes"] == 3
    assert counts["aggregate_connectomes"] == 1
    assert counts["plot_group_connectomes"] == len(NEUTRAL_KINDS) + 1  # and tangent
    group = tmp_path / "run" / "results" / "group"
    for kind in (*NEUTRAL_KINDS, "tangent"):
        matrix, _ = read_matrix(group / f"atlas-mine_meas-{kind}_relmat.tsv")
        assert matrix.shape == (30, 30) and np.isfinite(matrix).all()
    assert not list(group.rglob("*compare-*"))


def test_tangent_asked_for_on_one_run_is_an_error(tmp_path):
    """Tangent listed in the user's connectivity.kinds: one run stops the workflow
    before any job with the one-line error."""
    config = _minimal_config(tmp_path, 1, "connectivity:\n  kinds: [correlation, tangent]\n")
    proc = snakemake(tmp_path / "run", "-n", "--configfile", str(config), check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert [line for line in output.splitlines() if line.startswith("config")] == [
        "config connectivity.kinds: tangent are estimated across runs and need at least 2, "
        "the cohort has 1"]
    assert "note:" not in output
