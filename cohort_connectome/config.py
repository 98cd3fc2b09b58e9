"""Checks of a workflow config that its JSON schema cannot express.

``workflow/schemas/config.schema.yaml`` checks each value on its own (types,
ranges, names); the functions here check the values against each other and
against the cohort (a band with ``high_pass < low_pass``, the atlas files, the
settings each ``cohort.source`` requires, the group kinds' minimum cohort, the
phenotype column of ``group.compare``), and turn a cohort that cannot be read
into a config error naming its key. ``workflow/rules/common.smk`` calls them
while the workflow is parsed: a bad config stops it before any job, with one
line naming the key. (The schema's own violations are made one line by
`cohort_connectome.schema`.)

What the user's config files and ``--config`` give (Snakemake's
``overwrite_config``) is told apart from the defaults they are merged onto:
the demo's own settings (``config/demo.yaml``) apply to the demo cohort only
(`apply_demo_settings`), and a default that the cohort cannot take is dropped
with a note where the same setting asked for is an error (`fit_group_kinds`).

No nilearn function is mirrored here: these are the workflow's own settings.
"""

import re

from cohort_connectome import bids, fetch
from cohort_connectome import cohort as cohort_table
from cohort_connectome.demo import demo_design
from cohort_connectome.errors import InputError
from cohort_connectome.group import GROUP_KINDS, GROUP_SPARSE_KINDS, contrast_levels

__all__ = [
    "ConfigError",
    "builtin_atlas_files",
    "check_atlas_names",
    "check_removed_keys",
    "check_band",
    "check_compare",
    "apply_demo_settings",
    "compare_label",
    "fit_group_kinds",
    "is_given",
    "load_cohort",
    "replace_mappings",
    "split_kinds",
]


class ConfigError(ValueError):
    """A config the workflow cannot run with.

    Its message is one line that starts with ``config <key>:``.
    """


def check_band(clean):
    """Check that the band-pass filter keeps a band.

    Parameters
    ----------
    clean : dict
        The ``clean`` section: ``high_pass`` and ``low_pass`` in Hz, or None.

    Raises
    ------
    ConfigError
        ``high_pass`` is not below ``low_pass`` (both given).
    """
    low, high = clean["low_pass"], clean["high_pass"]
    if low is not None and high is not None and high >= low:
        raise ConfigError(
            f"config clean.high_pass ({high} Hz) must be below clean.low_pass ({low} Hz)"
        )


def split_kinds(kinds, sparse):
    """The connectivity kinds by where they are estimated.

    Parameters
    ----------
    kinds : list of str
        ``connectivity.kinds``.
    sparse : bool
        ``group.sparse``: add the group sparse kinds.

    Returns
    -------
    per_run : list of str
        Estimated per run (or per subject), by ``estimate_connectomes``.
    group_level : list of str
        Estimated by the group rule from every run's time series at once
        (tangent; the group sparse kinds with ``sparse``).
    all_kinds : list of str
        ``kinds`` followed by the group sparse kinds not in it.
    """
    per_run = [k for k in kinds if k not in GROUP_KINDS]
    group_level = [k for k in kinds if k in GROUP_KINDS]
    if sparse:
        group_level += list(GROUP_SPARSE_KINDS)
    all_kinds = list(kinds) + [k for k in group_level if k not in kinds]
    return per_run, group_level, all_kinds


def load_cohort(cohort, cache_dir, demo_root, adhd_root):
    """The cohort table of ``cohort.source``, one row per run.

    Parameters
    ----------
    cohort : dict
        The ``cohort`` section of the config.
    cache_dir : str
        The download cache (ADHD-200 runs).
    demo_root, adhd_root : str
        Where the workflow writes the demo cohort and the ADHD-200 sidecars.

    Returns
    -------
    pandas.DataFrame
        See `cohort_connectome.cohort` (``demo_cohort``, ``adhd_cohort``,
        ``read_sheet``) and `cohort_connectome.bids.find_runs`.

    Raises
    ------
    ConfigError
        A setting the source requires is missing (``cohort.sheet``,
        ``cohort.bids_dir``), or the cohort cannot be read (the input error,
        after the key).
    """
    source = cohort["source"]
    if source == "demo":
        demo = cohort["demo"]
        return cohort_table.demo_cohort(demo_design(demo["n_subjects"], demo["seed"]), demo_root)
    if source == "adhd":
        adhd = cohort["adhd"]
        try:
            ids = fetch.adhd_ids(adhd["subjects"], adhd["n_subjects"])
        except InputError as err:
            raise ConfigError(f"config cohort.adhd.subjects: {err}") from None
        return cohort_table.adhd_cohort(ids, cache_dir, adhd_root)
    if source == "bids":
        if not cohort["bids_dir"]:
            raise ConfigError("config cohort.bids_dir: required when cohort.source is 'bids'")
        try:
            return bids.find_runs(cohort["bids_dir"], cohort["space"], cohort["task"])
        except InputError as err:
            raise ConfigError(f"config cohort.bids_dir: {err}") from None
    sheet = cohort.get("sheet")
    if not sheet:
        raise ConfigError("config cohort.sheet: required when cohort.source is 'sheet'")
    try:
        return cohort_table.read_sheet(sheet)
    except InputError as err:
        raise ConfigError(f"config cohort.sheet: {err}") from None


def builtin_atlas_files(name, cache_dir, demo_root, parameters=None):
    """Where the workflow writes a built-in or library atlas (``atlases.<x>.fetch``).

    Parameters
    ----------
    name : str
        ``demo``, ``msdl`` or a library atlas (`fetch.atlas_library.LIBRARY`).
    cache_dir : str
        The download cache (MSDL and the library atlases).
    demo_root : str
        Where the workflow writes the demo atlas.
    parameters : dict, optional
        A library atlas's parameters.

    Returns
    -------
    (str, str)
        The image and its region table.
    """
    from .fetch.atlas_library import LIBRARY, library_paths

    if name == "msdl":
        paths = fetch.msdl_paths(cache_dir)
        return str(paths["maps"]), str(paths["labels"])
    if name == "demo":
        return f"{demo_root}/atlas/atlas-demo_maps.nii.gz", f"{demo_root}/atlas/atlas-demo_labels.tsv"
    if name in LIBRARY:
        paths = library_paths(cache_dir, name, parameters or {})
        return str(paths["image"]), str(paths["labels"])
    raise ValueError(f"no built-in atlas {name!r}")


#: Keys of older configs, and what to write instead.
REMOVED_KEYS = {
    "atlas": ("replaced by 'atlases', a mapping of name to atlas: write "
              "atlases: {<name>: {probseg: <maps.nii.gz>, labels: <labels.tsv>}} "
              "(4D maps; {dseg: ..., labels: ...} for 3D labels; {fetch: msdl} for the "
              "built-in MSDL; the old atlas.name becomes <name>)"),
}


def check_removed_keys(config):
    """Refuse keys of older configs with what to write instead.

    Raises
    ------
    ConfigError
        ``config <key>: replaced by ...``, before the schema (which would only
        say the key is not allowed).
    """
    for key, advice in REMOVED_KEYS.items():
        if key in config:
            raise ConfigError(f"config {key}: {advice}")


def check_atlas_names(paths):
    """Refuse two atlases with one name in a config file.

    YAML loaders keep the last of two equal keys silently, so a config with
    two ``aal:`` entries under ``atlases`` would lose one; names that differ
    only in case would write outputs that clash on a case-insensitive file
    system.

    Parameters
    ----------
    paths : iterable of str
        The config files (the default and the ``--configfile`` ones).

    Raises
    ------
    ConfigError
        ``config atlases: two atlases named 'aal' in my.yaml (lines 3 and 5)``.
    """
    import yaml

    for path in paths:
        try:
            with open(path) as handle:
                root = yaml.compose(handle)
        except (OSError, yaml.YAMLError):
            continue  # Snakemake reports unreadable config files itself
        if not isinstance(root, yaml.MappingNode):
            continue
        for key, value in root.value:
            if key.value != "atlases" or not isinstance(value, yaml.MappingNode):
                continue
            seen = {}
            for name, _ in value.value:
                folded = str(name.value).lower()
                if folded in seen:
                    first = seen[folded]
                    same = first.value == name.value
                    what = (f"two atlases named '{name.value}'" if same else
                            f"atlases '{first.value}' and '{name.value}' differ only in "
                            "case (their outputs would clash on a case-insensitive file "
                            "system)")
                    raise ConfigError(f"config atlases: {what} in {path} (lines "
                                      f"{first.start_mark.line + 1} and "
                                      f"{name.start_mark.line + 1})")
                seen[folded] = name


def replace_mappings(config, overwrite, keys=("atlases",)):
    """Give mappings from the user's config files precedence as a whole.

    Snakemake merges a ``--configfile`` into the default config key by key,
    so ``atlases: {aal: ...}`` would be added to the default's
    ``atlases: {demo: ...}``.  For ``keys`` the user's mapping replaces the
    default's instead.

    Parameters
    ----------
    config : dict
        The merged config (modified in place).
    overwrite : dict
        What the command line gave (``--configfile``/``--config``, merged).
    """
    import copy

    for key in keys:
        if isinstance(overwrite, dict) and key in overwrite:
            config[key] = copy.deepcopy(overwrite[key])


def is_given(given, *path):
    """Whether the user's config gives the key ``path`` (e.g. ``"group", "compare"``).

    Parameters
    ----------
    given : dict
        What the command line gave (``--configfile``/``--config``, merged:
        ``workflow.config_settings.overwrite_config``).
    *path : str
        The key, one name per level.
    """
    node = given
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def apply_demo_settings(config, given, demo):
    """Add the demo's own settings when the cohort is the demo.

    ``config/demo.yaml`` says what the demo's analysis adds to the defaults of
    ``config/config.yaml`` (the comparison of its two groups). It applies when
    ``cohort.source`` is ``demo`` (the default); the keys the user's config
    gives win. Any other cohort keeps the neutral defaults.

    Parameters
    ----------
    config : dict
        The merged config (modified in place).
    given : dict
        What the command line gave (`is_given`).
    demo : dict
        ``config/demo.yaml``.
    """
    import copy

    from snakemake.utils import update_config

    cohort = config.get("cohort")
    if isinstance(cohort, dict) and cohort.get("source", "demo") == "demo":
        update_config(config, copy.deepcopy(demo))
        update_config(config, copy.deepcopy(given or {}))


def fit_group_kinds(config, n_units, given):
    """Fit the group-level kinds to the cohort's size.

    Tangent and the group sparse kinds are estimated across runs and need at
    least 2 (runs, or subjects with runs combined). Asked for in the user's
    config (``tangent`` in its ``connectivity.kinds``; its ``group.sparse``)
    they stop the workflow on a smaller cohort; coming from the defaults they
    are dropped, with a note.

    Parameters
    ----------
    config : dict
        The validated config; ``connectivity.kinds`` and ``group.sparse`` are
        changed in place when the defaults' group kinds are dropped.
    n_units : int
        Runs (or subjects, runs combined) in the cohort.
    given : dict
        What the command line gave (`is_given`).

    Returns
    -------
    str or None
        The note: what was dropped and why.

    Raises
    ------
    ConfigError
        Group-level kinds asked for and fewer than 2 units; the key is
        ``connectivity.kinds`` when tangent is asked for, else ``group.sparse``.
    """
    kinds, sparse = config["connectivity"]["kinds"], config["group"]["sparse"]
    group_level = split_kinds(kinds, sparse)[1]
    if not group_level or n_units >= 2:
        return None
    need = (f"{', '.join(group_level)} are estimated across runs and need at least 2, the "
            f"cohort has {n_units}")
    asked = [key for key, wanted in (("connectivity.kinds", "tangent" in kinds),
                                     ("group.sparse", sparse))
             if wanted and is_given(given, *key.split("."))]
    if asked:
        raise ConfigError(f"config {asked[0]}: {need}")
    config["connectivity"]["kinds"] = [k for k in kinds if k not in GROUP_KINDS]
    config["group"]["sparse"] = False
    return (f"note: {need}: skipped (a default; to make this an error, ask for them in "
            "your config's connectivity.kinds or group.sparse)")


def compare_label(column):
    """The name of ``group.compare`` in output file names: its letters and digits.

    Parameters
    ----------
    column : str or None
        ``group.compare``.

    Returns
    -------
    str
        Empty for None.

    Raises
    ------
    ConfigError
        The column has no letter or digit.
    """
    label = re.sub(r"[^A-Za-z0-9]", "", column or "")
    if column and not label:
        raise ConfigError(
            f"config group.compare: '{column}' has no letter or digit to name its outputs"
        )
    return label


def check_compare(table, where, column, levels):
    """Check that ``group.compare`` names a phenotype column with 2 levels to compare.

    Parameters
    ----------
    table : pandas.DataFrame
        The phenotype table (``participant_id`` and phenotype columns).
    where : str
        Where the table comes from, for the message (e.g. ``"the demo cohort"``).
    column : str
        ``group.compare``.
    levels : list or None
        ``group.levels``.

    Raises
    ------
    ConfigError
        The column is not in the table, or has not 2 levels to compare (see
        `cohort_connectome.group.contrast_levels`).
    """
    phenotype_columns = [c for c in table.columns if c != "participant_id"]
    if column not in phenotype_columns:
        raise ConfigError(
            f"config group.compare: phenotype column '{column}' is not in {where} "
            f"(phenotype columns: {', '.join(phenotype_columns) or 'none'}); set "
            "group.compare to one of them, or to null for no comparison"
        )
    try:
        contrast_levels(table[column].tolist(), column, levels)
    except ValueError as err:
        raise ConfigError(f"config group.compare: {err} (in {where})") from None
