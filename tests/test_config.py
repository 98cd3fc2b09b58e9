"""Config errors, in milliseconds: the schema (workflow/schemas/config.schema.yaml)
on each value, and cohort_connectome.config on the values together and the
cohort. Every error is one line naming its key; common.smk runs these checks
while the workflow is parsed (test_workflow.py and test_group_workflow.py prove
end to end that a bad config stops the workflow before any job)."""

import copy

import pytest
import yaml
from snakemake.utils import update_config

from cohort_connectome import cohort, config
from cohort_connectome.atlases import atlas_specs
from cohort_connectome.config import ConfigError
from cohort_connectome.demo import demo_design
from cohort_connectome.schema import describe, validate_config
from conftest import REPO_ROOT

SCHEMA = yaml.safe_load((REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
DEFAULTS = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())
DEMO = yaml.safe_load((REPO_ROOT / "config" / "demo.yaml").read_text())


def validate(settings):
    """The schema's check and defaults, as common.smk applies them."""
    validate_config(settings, copy.deepcopy(SCHEMA))


def with_overlay(overlay):
    """The default config with a YAML overlay, as ``--configfile`` merges it."""
    merged = copy.deepcopy(DEFAULTS)
    update_config(merged, yaml.safe_load(overlay))
    return merged


def test_default_config_passes_every_check(tmp_path):
    settings = with_overlay("{}")
    config.apply_demo_settings(settings, {}, DEMO)
    validate(settings)
    config.check_band(settings["clean"])
    table = config.load_cohort(settings["cohort"], str(tmp_path), "resources/demo",
                               "resources/adhd")
    assert len(table) == settings["cohort"]["demo"]["n_subjects"]
    specs = atlas_specs(settings["atlases"],
                        lambda name, parameters: config.builtin_atlas_files(
                            name, str(tmp_path), "resources/demo", parameters))
    assert [(s.name, s.kind, s.image, s.labels) for s in specs.values()] == [
        ("demo", "probseg", "resources/demo/atlas/atlas-demo_maps.nii.gz",
         "resources/demo/atlas/atlas-demo_labels.tsv")]
    config.check_compare(cohort.phenotype(table), "the demo cohort",
                         settings["group"]["compare"], settings["group"]["levels"])


KEYS_OF_COHORT = "source, sheet, on_bad_input, bids_dir, space, task, participants, demo, adhd"
KINDS = "correlation, partialcorrelation, covariance, precision, fisherz, tangent"


@pytest.mark.parametrize("overlay, message", [
    # unknown key: the keys of the mapping, the nearest one(s) for a typo
    ("cohort:\n  n_subjects: 3\n",
     "config cohort: unknown key 'n_subjects' (did you mean cohort.adhd.n_subjects or "
     f"cohort.demo.n_subjects?); allowed: {KEYS_OF_COHORT}"),
    ("connectivity:\n  estimtor: empirical\n",
     "config connectivity: unknown key 'estimtor' (did you mean connectivity.estimator?); "
     "allowed: kinds, estimator, fallback, combine_runs, graphical_lasso_cv"),
    ("group:\n  n_splits: 3\n",
     "config group: unknown key 'n_splits' (did you mean group.classify.n_splits?); "
     "allowed: sparse, sparse_cv, compare, levels, fdr, classify"),
    ("atlass: {}\n",
     "config: unknown key 'atlass' (did you mean atlases?); allowed: cohort, atlases, "
     "extraction, fetch, clean, connectivity, figures, group"),
    ("figures:\n  colour: red\n",
     "config figures: unknown key 'colour'; allowed: n_edges, negate, subjects, qc"),
    # wrong type
    ("clean:\n  detrend: 'yes'\n",
     "config clean.detrend: 'yes' is a string; allowed: true or false"),
    ("cohort:\n  source: adhd\n  adhd:\n    subjects: [0010042]\n",  # YAML: octal 4130
     "config cohort.adhd.subjects[0]: 4130 is an integer; allowed: a string matching "
     "^(sub-)?[0-9]{7}$"),
    ("clean:\n  low_pass: fast\n",
     "config clean.low_pass: 'fast' is a string; allowed: a number > 0 or null"),
    # out of range
    ("clean:\n  low_pass: -0.1\n",
     "config clean.low_pass: -0.1 is out of range; allowed: a number > 0 or null"),
    ("clean:\n  min_segment: -1\n",
     "config clean.min_segment: -1 is out of range; allowed: an integer >= 0"),
    ("cohort:\n  source: adhd\n  adhd:\n    n_subjects: 41\n",
     "config cohort.adhd.n_subjects: 41 is out of range; allowed: an integer from 1 to 40"),
    ("group:\n  fdr: 1\n",
     "config group.fdr: 1 is out of range; allowed: a number > 0 and < 1"),
    # bad enum value
    ("clean:\n  standardize: zscores\n",
     "config clean.standardize: unknown value 'zscores' (did you mean 'zscore'?); allowed: "
     "one of zscore_sample, zscore, psc, false, null"),
    ("connectivity:\n  kinds: [correlation, tangentz]\n",
     "config connectivity.kinds[1]: unknown value 'tangentz' (did you mean 'tangent'?); "
     f"allowed: one of {KINDS}"),
    ("cohort:\n  source: spreadsheet\n",
     "config cohort.source: unknown value 'spreadsheet' (did you mean 'sheet'?); allowed: "
     "one of demo, sheet, adhd, bids"),
    ("cohort:\n  source: table\n",
     "config cohort.source: unknown value 'table'; allowed: one of demo, sheet, adhd, bids"),
    # the other rules: list length and repeats, patterns, names, either-or
    ("group:\n  levels: [a]\n",
     "config group.levels: [a] has 1 item(s); allowed: a list (each a string or a number or "
     "true or false; exactly 2 items) or null"),
    ("connectivity:\n  kinds: [correlation, correlation]\n",
     "config connectivity.kinds: [correlation, correlation] repeats an item; allowed: a list "
     f"(each one of {KINDS}; at least 1 item; no repeats)"),
    ("cohort:\n  space: MNI 152\n",
     "config cohort.space: 'MNI 152' does not match ^[A-Za-z0-9]+$; allowed: a string "
     "matching ^[A-Za-z0-9]+$"),
    ("atlases:\n  my-maps: {fetch: msdl}\n",
     "config atlases: the name 'my-maps' is not allowed; allowed: names matching "
     "^[A-Za-z0-9]+$"),
    ("atlases:\n  a: {fetch: difumo, resolutoin: 2}\n",
     "config atlases.a: unknown key 'resolutoin' (did you mean atlases.a.resolution or "
     "atlases.a.resolution_mm?); allowed: fetch, dimension, resolution_mm, n_rois, "
     "yeo_networks, atlas_name, symmetric_split, version, resolution, mirror, resting, "
     "n_networks, thickness, atlas_type, probseg, dseg, labels, strategy, background, url, "
     "licence, description"),
    ("atlases:\n  d: {fetch: difumo, dimension: many}\n",
     "config atlases.d.dimension: 'many' is a string; allowed: an integer"),
    ("group:\n  sparse_cv: {alphas: 1}\n",
     "config group.sparse_cv.alphas: 1 is not allowed; allowed: an integer >= 2 or a list "
     "(each a number > 0; at least 1 item)"),
])
def test_schema_errors_are_one_line(overlay, message):
    """Each kind of schema violation: one line naming the key path, the bad value, what is
    allowed, and the nearest valid key or value for a typo; no schema."""
    settings = with_overlay(overlay)
    config.replace_mappings(settings, yaml.safe_load(overlay))
    with pytest.raises(ConfigError) as err:
        validate(settings)
    assert str(err.value) == message


def test_schema_required_key():
    """A key the schema requires (the workflow's schema gives every required key a
    default, so a small schema shows the message)."""
    schema = {"type": "object", "properties": {
        "cohort": {"type": "object", "required": ["sheet"],
                   "properties": {"sheet": {"type": "string"}}}}}
    with pytest.raises(ConfigError) as err:
        validate_config({"cohort": {}}, schema)
    assert str(err.value) == "config cohort.sheet: required, missing; allowed: a string"


def test_schema_fills_in_defaults():
    """The schema's defaults, deep in the config too, as snakemake.utils.validate;
    the schema itself is left as it was."""
    schema = copy.deepcopy(SCHEMA)
    settings = {"cohort": {"source": "sheet", "sheet": "s.tsv"},
                "atlases": {"a": {"fetch": "msdl"}}}
    validate_config(settings, schema)
    assert settings["cohort"]["demo"] == {"n_subjects": 8, "seed": 20261124}
    assert settings["fetch"] == {"cache_dir": None, "mirror": None, "registry": None, "retries": 3}
    assert settings["group"]["classify"] == {"n_splits": 5, "n_repeats": 10, "seed": 0}
    assert settings["connectivity"]["kinds"] == ["correlation", "partialcorrelation",
                                                 "covariance", "precision", "tangent"]
    assert schema == SCHEMA


def test_schema_defaults_are_the_default_config():
    """The schema's defaults (all a config gets where config/config.yaml is not read,
    e.g. a host workflow's `module`) are config/config.yaml's values."""
    from_schema, from_file = {}, copy.deepcopy(DEFAULTS)
    validate(from_schema)
    validate(from_file)
    assert from_schema == from_file


@pytest.mark.parametrize("subschema, words", [
    ({"type": "integer", "minimum": 2, "maximum": 64}, "an integer from 2 to 64"),
    ({"type": ["number", "null"], "exclusiveMinimum": 0}, "a number > 0 or null"),
    ({"type": "string", "minLength": 1}, "a string (not empty)"),
    ({"enum": ["cd", "lars"]}, "one of cd, lars"),
    ({"type": "object", "properties": {"a": {}, "b": {}}}, "a mapping with keys a, b"),
    ({"type": "array", "items": {"type": "string"}, "maxItems": 1},
     "a list (each a string; at most 1 item)"),
])
def test_describe(subschema, words):
    assert describe(subschema) == words


def test_band_must_be_a_band():
    with pytest.raises(ConfigError) as err:
        config.check_band({"high_pass": 0.1, "low_pass": 0.08})
    assert str(err.value) == ("config clean.high_pass (0.1 Hz) must be below "
                              "clean.low_pass (0.08 Hz)")
    for band in ({"high_pass": 0.01, "low_pass": 0.1}, {"high_pass": None, "low_pass": 0.1},
                 {"high_pass": 0.1, "low_pass": None}):
        config.check_band(band)


def test_split_kinds():
    assert config.split_kinds(["correlation", "tangent"], False) == (
        ["correlation"], ["tangent"], ["correlation", "tangent"])
    per_run, group, all_kinds = config.split_kinds(["correlation"], True)
    assert per_run == ["correlation"]
    assert group == ["groupsparse_precision", "groupsparse_partialcorrelation"]
    assert all_kinds == ["correlation", *group]


LIBRARY_NAMES = "difumo, schaefer, harvard_oxford, aal, basc, smith, yeo, pauli"


def builtin(name, parameters):
    return config.builtin_atlas_files(name, "/cache", "resources/demo", parameters)


@pytest.mark.parametrize("atlases, message", [
    ({}, "config atlases: name at least one atlas, e.g. atlases: {msdl: {fetch: msdl}}"),
    ({"a": {"probseg": "m.nii.gz"}},
     "config atlases.a.labels: required with probseg (a TSV/CSV with index, name and "
     "optional network, x, y, z)"),
    ({"a": {"labels": "l.tsv"}},
     "config atlases.a: give exactly one of fetch (a built-in or library atlas), probseg "
     "(4D maps) or dseg (3D labels); got none"),
    ({"a": {"probseg": "m.nii.gz", "dseg": "d.nii.gz", "labels": "l.tsv"}},
     "config atlases.a: give exactly one of fetch (a built-in or library atlas), probseg "
     "(4D maps) or dseg (3D labels); got probseg and dseg"),
    ({"a": {"fetch": "msld"}},
     "config atlases.a.fetch: unknown atlas 'msld' (did you mean 'msdl'?); "
     "built-in: demo, msdl; library: " + LIBRARY_NAMES),
    ({"a": {"fetch": "Schaeffer"}},
     "config atlases.a.fetch: unknown atlas 'Schaeffer' (did you mean 'schaefer'?); "
     "built-in: demo, msdl; library: " + LIBRARY_NAMES),
    ({"a": {"fetch": "msdl", "labels": "l.tsv"}},
     "config atlases.a.labels: not used with fetch (the atlas 'msdl' has its own)"),
    ({"a": {"fetch": "msdl", "dimension": 64}},
     "config atlases.a.dimension: the built-in atlas 'msdl' has no parameters"),
    ({"a": {"fetch": "difumo", "dimension": 100}},
     "config atlases.a.dimension: unknown value '100' for difumo; one of 64, 128, 256, 512, "
     "1024"),
    ({"a": {"fetch": "difumo", "resolution": 2}},
     "config atlases.a.resolution: not a parameter of difumo (did you mean 'resolution_mm'?); "
     "its parameters: dimension, resolution_mm"),
    ({"a": {"fetch": "harvard_oxford", "atlas_name": "cort-maxprob-thr25-3mm"}},
     "config atlases.a.atlas_name: unknown value 'cort-maxprob-thr25-3mm' for harvard_oxford "
     "(did you mean 'cort-maxprob-thr25-2mm'?); one of " + ", ".join(
         f"{p}-{k}-{r}" for p in ("cort", "cortl", "sub")
         for k in ("maxprob-thr0", "maxprob-thr25", "maxprob-thr50", "prob")
         for r in ("1mm", "2mm"))),
    ({"a": {"fetch": "harvard_oxford", "atlas_name": "cort-prob-2mm", "symmetric_split": True}},
     "config atlases.a.symmetric_split: not available for the probabilistic cort-prob-2mm "
     "(as nilearn: only for maxprob atlases)"),
    ({"a": {"fetch": "schaefer", "labels": "l.tsv"}},
     "config atlases.a.labels: not used with fetch (the atlas 'schaefer' has its own)"),
    ({"a": {"fetch": "schaefer", "background": 1}},
     "config atlases.a.background: not used with fetch (the atlas 'schaefer' has its own)"),
    ({"a": {"fetch": "difumo", "strategy": "median"}},
     "config atlases.a.strategy: only for a dseg ('difumo' with these parameters is a "
     "probseg)"),
    ({"a": {"dseg": "d.nii.gz", "labels": "l.tsv", "n_rois": 100}},
     "config atlases.a.n_rois: a parameter of the atlas library, only with fetch: <library "
     "atlas>"),
    ({"a": {"probseg": "m.nii.gz", "labels": "l.tsv", "strategy": "median"}},
     "config atlases.a.strategy: only for a dseg (a probseg's signals are least-squares "
     "fits of its maps)"),
    ({"a": {"dseg": "d.nii.gz", "labels": "l.tsv", "strategy": "avg"}},
     "config atlases.a.strategy: unknown 'avg'; one of mean, median, sum, minimum, "
     "maximum, standard_deviation, variance"),
])
def test_atlas_errors(atlases, message):
    with pytest.raises(ConfigError) as err:
        atlas_specs(atlases, builtin)
    assert str(err.value) == message


def test_library_atlases_through_the_schema():
    """The three-atlas config of the README: MSDL, DiFuMo-256 and Schaefer-400, plus a
    Harvard-Oxford probseg and a library dseg with its own strategy."""
    settings = with_overlay("{}")
    settings["atlases"] = yaml.safe_load(   # a config file's atlases replace the default's
        "msdl: {fetch: msdl}\ndifumo: {fetch: difumo, dimension: 256}\n"
        "schaefer: {fetch: schaefer, n_rois: 400, strategy: median}\n"
        "hoprob: {fetch: harvard_oxford, atlas_name: sub-prob-2mm}\n")
    validate(settings)
    specs = atlas_specs(settings["atlases"], builtin)
    assert [(s.name, s.kind, s.fetch, s.strategy) for s in specs.values()] == [
        ("msdl", "probseg", "msdl", "mean"), ("difumo", "probseg", "difumo", "mean"),
        ("schaefer", "dseg", "schaefer", "median"),
        ("hoprob", "probseg", "harvard_oxford", "mean")]
    assert specs["difumo"].parameters == (("dimension", 256), ("resolution_mm", 2))
    assert specs["difumo"].image == \
        "/cache/atlases/difumo/dimension-256_resolution_mm-2/image.nii.gz"
    assert specs["schaefer"].labels == \
        "/cache/atlases/schaefer/n_rois-400_yeo_networks-7_resolution_mm-1/regions.tsv"
    assert specs["msdl"].parameters == () and not specs["msdl"].library


def test_atlas_specs_in_config_order():
    specs = atlas_specs({"msdl": {"fetch": "msdl"},
                         "aal": {"dseg": "aal.nii", "labels": "aal.tsv", "strategy": "median",
                                 "background": -1},
                         "maps": {"probseg": "m.nii.gz", "labels": "m.tsv"}}, builtin)
    assert list(specs) == ["msdl", "aal", "maps"]
    assert specs["msdl"].image == "/cache/msdl/MSDL_rois/msdl_rois.nii"
    assert specs["msdl"].labels == "/cache/msdl/MSDL_rois/msdl_rois_labels.csv"
    assert (specs["aal"].kind, specs["aal"].strategy, specs["aal"].background) == \
        ("dseg", "median", -1)
    assert (specs["maps"].kind, specs["maps"].strategy, specs["maps"].background) == \
        ("probseg", "mean", 0)


def test_old_atlas_key_is_refused_with_what_to_write():
    with pytest.raises(ConfigError) as err:
        config.check_removed_keys({"atlas": {"name": "msdl"}})
    assert str(err.value).startswith("config atlas: replaced by 'atlases', a mapping of "
                                     "name to atlas: write atlases: {<name>: ")


def test_user_atlases_replace_the_default_mapping():
    merged = with_overlay("atlases:\n  aal: {dseg: a.nii, labels: a.tsv}\n")
    assert list(merged["atlases"]) == ["demo", "aal"]  # Snakemake's merge
    config.replace_mappings(merged, {"atlases": {"aal": {"dseg": "a.nii", "labels": "a.tsv"}}})
    assert list(merged["atlases"]) == ["aal"]


@pytest.mark.parametrize("overlay, message", [
    ("cohort:\n  source: sheet\n", "config cohort.sheet: required when cohort.source is 'sheet'"),
    ("cohort:\n  source: bids\n",
     "config cohort.bids_dir: required when cohort.source is 'bids'"),
    ("cohort:\n  source: adhd\n  adhd:\n    subjects: ['1234567']\n",
     "config cohort.adhd.subjects: unknown ADHD-200 subject id '1234567'"),
])
def test_cohort_source_errors(overlay, message):
    settings = with_overlay(overlay)
    validate(settings)
    with pytest.raises(ConfigError) as err:
        config.load_cohort(settings["cohort"], "cache", "resources/demo", "resources/adhd")
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_unreadable_cohort_names_the_key(tmp_path):
    """A sheet or a BIDS folder that cannot be read: the input error after the key."""
    settings = with_overlay(f"cohort:\n  source: sheet\n  sheet: {tmp_path / 'none.tsv'}\n")
    with pytest.raises(ConfigError, match=r"^config cohort\.sheet: \S*none\.tsv: "):
        config.load_cohort(settings["cohort"], "cache", "resources/demo", "resources/adhd")
    settings = with_overlay(f"cohort:\n  source: bids\n  bids_dir: {tmp_path / 'nowhere'}\n")
    validate(settings)  # its defaults: cohort.space, cohort.task
    with pytest.raises(ConfigError, match=r"^config cohort\.bids_dir: "):
        config.load_cohort(settings["cohort"], "cache", "resources/demo", "resources/adhd")


def test_demo_settings_on_the_demo_cohort_only():
    """config/demo.yaml (the demo's comparison) is added on the demo cohort, under the
    user's keys; another cohort keeps the neutral defaults of config/config.yaml."""
    assert (DEFAULTS["group"]["compare"], DEFAULTS["group"]["classify"]["n_splits"]) == (None, 5)
    settings = with_overlay("{}")
    config.apply_demo_settings(settings, {}, DEMO)
    assert settings["group"]["compare"] == "group"
    assert settings["group"]["classify"] == {"n_splits": 4, "n_repeats": 10, "seed": 0}

    given = yaml.safe_load("cohort: {demo: {n_subjects: 4}}\ngroup: {classify: {n_splits: 2}}")
    settings = with_overlay(yaml.safe_dump(given))
    config.apply_demo_settings(settings, given, DEMO)
    assert settings["group"]["compare"] == "group"
    assert settings["group"]["classify"]["n_splits"] == 2
    assert settings["cohort"]["demo"]["n_subjects"] == 4

    for overlay in ("cohort: {source: sheet, sheet: s.tsv}", "cohort: {source: adhd}"):
        given = yaml.safe_load(overlay)
        settings = with_overlay(overlay)
        config.apply_demo_settings(settings, given, DEMO)
        assert settings["group"]["compare"] is None
        assert settings["group"]["classify"]["n_splits"] == 5


def test_is_given():
    given = {"connectivity": {"kinds": ["tangent"]}, "group": None}
    assert config.is_given(given, "connectivity", "kinds")
    assert config.is_given(given, "group")
    assert not config.is_given(given, "group", "sparse")
    assert not config.is_given(given, "cohort")
    assert not config.is_given({}, "connectivity", "kinds")


def _kinds_config(kinds, sparse=False):
    return {"connectivity": {"kinds": list(kinds)}, "group": {"sparse": sparse}}


@pytest.mark.parametrize("kinds, sparse, given, key", [
    (["correlation", "tangent"], False, {"connectivity": {"kinds": ["correlation", "tangent"]}},
     "connectivity.kinds"),
    (["tangent"], True, {"connectivity": {"kinds": ["tangent"]}, "group": {"sparse": True}},
     "connectivity.kinds"),
    (["correlation"], True, {"group": {"sparse": True}}, "group.sparse"),
    (["correlation", "tangent"], True, {"group": {"sparse": True}}, "group.sparse"),
])
def test_group_kinds_asked_for_need_two_units(kinds, sparse, given, key):
    """Group-level kinds the user's config asks for: a cohort of 1 is a one-line error."""
    group_level = config.split_kinds(kinds, sparse)[1]
    with pytest.raises(ConfigError) as err:
        config.fit_group_kinds(_kinds_config(kinds, sparse), 1, given)
    assert str(err.value) == (f"config {key}: {', '.join(group_level)} are estimated across "
                              "runs and need at least 2, the cohort has 1")
    settings = _kinds_config(kinds, sparse)
    assert config.fit_group_kinds(settings, 2, given) is None
    assert settings == _kinds_config(kinds, sparse)


def test_default_group_kinds_are_skipped_with_a_note():
    """Group-level kinds from the defaults: dropped on a cohort of 1, with a note; kept on 2."""
    kinds = DEFAULTS["connectivity"]["kinds"]
    assert "tangent" in kinds
    for given in ({}, {"cohort": {"source": "sheet"}},
                  {"connectivity": {"estimator": "empirical"}}):
        settings = _kinds_config(kinds)
        note = config.fit_group_kinds(settings, 1, given)
        assert note == ("note: tangent are estimated across runs and need at least 2, the "
                        "cohort has 1: skipped (a default; to make this an error, ask for them "
                        "in your config's connectivity.kinds or group.sparse)")
        assert settings == _kinds_config(["correlation", "partialcorrelation", "covariance",
                                          "precision"])
    settings = _kinds_config(["correlation"], sparse=True)   # group.sparse from a default
    assert config.fit_group_kinds(settings, 0, {"connectivity": {"kinds": ["correlation"]}}) \
        .startswith("note: groupsparse_precision, groupsparse_partialcorrelation are estimated")
    assert settings == _kinds_config(["correlation"])
    settings = _kinds_config(kinds)
    assert config.fit_group_kinds(settings, 2, {}) is None
    assert settings == _kinds_config(kinds)
    assert config.fit_group_kinds(_kinds_config(["correlation"]), 1, {}) is None


def test_compare_label():
    assert config.compare_label("diagnosis_2") == "diagnosis2"
    assert config.compare_label(None) == ""
    with pytest.raises(ConfigError) as err:
        config.compare_label("_-_")
    assert str(err.value) == "config group.compare: '_-_' has no letter or digit to name its outputs"


@pytest.fixture(scope="module")
def demo_phenotype():
    settings = DEFAULTS["cohort"]["demo"]
    table = cohort.demo_cohort(demo_design(settings["n_subjects"], settings["seed"]),
                               "resources/demo")
    return cohort.phenotype(table)


@pytest.mark.parametrize("column, levels, message", [
    ("diagnosis", None,
     "config group.compare: phenotype column 'diagnosis' is not in the demo cohort"),
    ("age", None, "config group.compare: phenotype column 'age' has 6 levels"),
    ("age", [9, 99], "group.levels '99' not found"),
])
def test_comparison_errors(demo_phenotype, column, levels, message):
    """A phenotype column that is absent, or without 2 levels to compare: one line
    naming the column and where the table comes from."""
    with pytest.raises(ConfigError) as err:
        config.check_compare(demo_phenotype, "the demo cohort", column, levels)
    assert message in str(err.value)
    assert str(err.value).startswith("config group.compare: ")
    assert "\n" not in str(err.value)


def test_one_level_column_of_a_sheet(tmp_path):
    sheet = tmp_path / "participants.tsv"
    sheet.write_text("participant_id\tfunc\tdiagnosis\n01\ta.nii.gz\tadhd\n02\tb.nii.gz\tadhd\n")
    table = cohort.phenotype(cohort.read_sheet(sheet))
    with pytest.raises(ConfigError) as err:
        config.check_compare(table, f"cohort sheet {sheet}", "diagnosis", None)
    assert str(err.value) == (f"config group.compare: phenotype column 'diagnosis' has 1 "
                              f"level(s) ('adhd'); a comparison needs 2 (in cohort sheet {sheet})")


def test_two_atlases_with_one_name_are_refused(tmp_path):
    """YAML keeps the last of two equal keys silently: the config file is read
    again to find them (and names that differ only in case)."""
    same = tmp_path / "same.yaml"
    same.write_text("atlases:\n  aal: {fetch: msdl}\n  aal: {fetch: demo}\n")
    with pytest.raises(ConfigError) as err:
        config.check_atlas_names([str(same)])
    assert str(err.value) == f"config atlases: two atlases named 'aal' in {same} (lines 2 and 3)"
    case = tmp_path / "case.yaml"
    case.write_text("cohort: {source: demo}\natlases:\n  AAL: {fetch: msdl}\n  aal: {fetch: demo}\n")
    with pytest.raises(ConfigError, match="atlases 'AAL' and 'aal' differ only in case"):
        config.check_atlas_names([str(case)])
    fine = tmp_path / "fine.yaml"
    fine.write_text("atlases:\n  aal: {fetch: msdl}\n  ho: {fetch: demo}\n")
    config.check_atlas_names([str(fine), str(tmp_path / "absent.yaml")])
