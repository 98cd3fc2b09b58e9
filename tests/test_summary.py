"""The end-of-run summary (cohort_connectome.summary), from explicit arguments."""

from cohort_connectome.summary import exclusions_summary, results_summary


def write_exclusions(path, rows):
    lines = ["participant_id\tsession\tstage\treason"]
    lines += ["\t".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_no_exclusions_table_no_line(tmp_path):
    assert exclusions_summary(str(tmp_path / "exclusions.tsv"), 8) == []


def test_no_excluded_run_one_line(tmp_path):
    path = write_exclusions(tmp_path / "exclusions.tsv", [])
    assert exclusions_summary(path, 8) == ["  exclusions          none"]


def test_excluded_runs_are_named_up_to_the_limit(tmp_path):
    rows = [(f"sub-0{i}", "1" if i == 1 else "", "extract_timeseries", f"f{i}.nii.gz: image is 3D")
            for i in range(1, 5)]
    path = write_exclusions(tmp_path / "exclusions.tsv", rows)
    assert exclusions_summary(path, 6, limit=3) == [
        f"  EXCLUDED            4 of 6, listed in {path}:",
        "    sub-01 1 at extract_timeseries: f1.nii.gz: image is 3D",
        "    sub-02 at extract_timeseries: f2.nii.gz: image is 3D",
        "    sub-03 at extract_timeseries: f3.nii.gz: image is 3D",
        "    ... and 1 more",
    ]


def test_excluded_runs_name_the_atlas(tmp_path):
    """A config with several atlases has an exclusions table per atlas
    (``results/group/atlas-<name>_exclusions.tsv``): each summary names its atlas."""
    path = write_exclusions(tmp_path / "atlas-aal_exclusions.tsv", [])
    assert exclusions_summary(path, 8, atlas="aal") == ["  exclusions          none (atlas aal)"]
    path = write_exclusions(tmp_path / "atlas-aal_exclusions.tsv",
                            [("sub-02", "", "resample_atlas", "f2.nii.gz: atlas aal: no region")])
    assert exclusions_summary(path, 8, atlas="aal") == [
        f"  EXCLUDED            1 of 8 (atlas aal), listed in {path}:",
        "    sub-02 at resample_atlas: f2.nii.gz: atlas aal: no region"]


def test_results_summary():
    text = results_summary(n_subjects=2, n_runs=3, atlases=["demo"],
                           kinds=["correlation", "tangent"], subject_figures=False,
                           comparison=[], exclusions=["  exclusions          none"])
    lines = text.split("\n")
    assert lines[0] == "" and lines[-1] == ""
    assert lines[1] == "cohort_connectome: 2 subjects, 3 runs, atlas demo, kinds correlation, tangent"
    assert "  atlases as used     results/atlases/atlas-demo/" in lines
    assert "  figures             results/group/figures/" in lines
    assert "  methods text        results/methods.md" in lines
    assert not any(line.startswith("  comparison") for line in lines)
    assert lines[-2] == "  exclusions          none"

    text = results_summary(2, 3, ["msdl"], ["correlation"], True, ["a.tsv", "b.tsv"], [])
    lines = text.split("\n")
    assert "  figures             results/group/figures/  results/sub-*/[ses-*/]figures/" in lines
    assert "  comparison          a.tsv, b.tsv" in lines
    assert ("  region time series  results/sub-*/[ses-*/]func/sub-*_atlas-msdl_timeseries.tsv"
            in lines)
    assert lines[-2] == "  report              snakemake --report results/report.html"


def test_results_summary_several_atlases():
    """Several atlases: all named on the first line, paths with ``<atlas>``."""
    text = results_summary(2, 3, ["msdl", "aal"], ["correlation"], False, [],
                           ["  exclusions          none (atlas msdl)",
                            "  exclusions          none (atlas aal)"])
    lines = text.split("\n")
    assert lines[1] == "cohort_connectome: 2 subjects, 3 runs, atlases msdl, aal, kinds correlation"
    assert "  atlases as used     results/atlases/atlas-<atlas>/" in lines
    assert ("  group tables        results/group/atlas-<atlas>_connectomes.tsv and "
            "results/group/atlas-<atlas>_meas-*_relmat.tsv" in lines)
    assert lines[-3:-1] == ["  exclusions          none (atlas msdl)",
                            "  exclusions          none (atlas aal)"]
