"""The methods text of a run: what it did, from the config used and its outputs.

:func:`methods_document` turns the config (as Snakemake used it, defaults
filled in), the cohort, each atlas's sidecar and each atlas's group outputs
into sections of paragraphs and lists, citing the papers of the steps taken;
:func:`to_markdown` and :func:`to_html` render it (``results/methods.md`` and
the report's HTML result).  No numerics: every sentence states a config value,
a count read from the outputs, or what the code does (the cleaning order is
`signal.clean_signals`'s, the censoring `confounds.censoring_mask`'s).

Inline markup: text between backticks is code.
"""

import re

from . import html

__all__ = ["REFERENCES", "SOFTWARE", "software_versions", "group_facts", "methods_document",
           "to_markdown", "to_html"]

#: The references the text can cite, by key, in the order they are listed.
REFERENCES = {
    "nilearn": "Abraham A, Pedregosa F, Eickenberg M, Gervais P, Mueller A, Kossaifi J, "
               "Gramfort A, Thirion B, Varoquaux G (2014). Machine learning for neuroimaging "
               "with scikit-learn. Frontiers in Neuroinformatics 8:14.",
    "sklearn": "Pedregosa F, Varoquaux G, Gramfort A, et al. (2011). Scikit-learn: machine "
               "learning in Python. Journal of Machine Learning Research 12:2825-2830.",
    "snakemake": "Mölder F, Jablonski KP, Letcher B, et al. (2021). Sustainable data analysis "
                 "with Snakemake. F1000Research 10:33.",
    "power": "Power JD, Barnes KA, Snyder AZ, Schlaggar BL, Petersen SE (2012). Spurious but "
             "systematic correlations in functional connectivity MRI networks arise from "
             "subject motion. NeuroImage 59(3):2142-2154.",
    "ledoit_wolf": "Ledoit O, Wolf M (2004). A well-conditioned estimator for "
                   "large-dimensional covariance matrices. Journal of Multivariate Analysis "
                   "88(2):365-411.",
    "glasso": "Friedman J, Hastie T, Tibshirani R (2008). Sparse inverse covariance "
              "estimation with the graphical lasso. Biostatistics 9(3):432-441.",
    "tangent": "Varoquaux G, Baronnet F, Kleinschmidt A, Fillard P, Thirion B (2010). "
               "Detection of brain functional-connectivity difference in post-stroke "
               "patients using group-level covariance modeling. MICCAI 2010, LNCS 6361:200-208.",
    "group_sparse": "Varoquaux G, Gramfort A, Poline JB, Thirion B (2010). Brain covariance "
                    "selection: better individual functional connectivity models using "
                    "population prior. Advances in Neural Information Processing Systems 23.",
    "bh": "Benjamini Y, Hochberg Y (1995). Controlling the false discovery rate: a practical "
          "and powerful approach to multiple testing. Journal of the Royal Statistical "
          "Society B 57(1):289-300.",
}
_CITE = {"nilearn": "Abraham et al., 2014", "sklearn": "Pedregosa et al., 2011",
         "snakemake": "Mölder et al., 2021", "power": "Power et al., 2012",
         "ledoit_wolf": "Ledoit & Wolf, 2004", "glasso": "Friedman et al., 2008",
         "tangent": "Varoquaux et al., 2010a", "group_sparse": "Varoquaux et al., 2010b",
         "bh": "Benjamini & Hochberg, 1995"}

#: The packages whose versions the text states (distribution names).
SOFTWARE = ("snakemake", "numpy", "scipy", "scikit-learn", "nibabel", "pandas")

_KIND_WORDS = {
    "correlation": "correlation",
    "partialcorrelation": "partial correlation",
    "covariance": "covariance",
    "precision": "precision (inverse covariance)",
    "fisherz": "Fisher z of the correlation (arctanh)",
    "tangent": "tangent-space projection",
    "groupsparse_precision": "group-sparse precision",
    "groupsparse_partialcorrelation": "group-sparse partial correlation",
}
_STANDARDIZE = {
    "zscore_sample": "z-scored (centred, divided by the sample standard deviation, ddof 1)",
    "zscore": "z-scored (centred, divided by the population standard deviation, ddof 0)",
    "psc": "converted to percent signal change",
}
_STRATEGIES = {
    "none": "no confound",
    "6P": "the 6 motion parameters (preset 6P)",
    "24P": "the 6 motion parameters, their derivatives and the squares of both (preset 24P)",
    "36P": "24P plus white matter, CSF and global signal with their derivatives and squares "
           "(preset 36P)",
    "acompcor": "24P plus the anatomical CompCor components (preset acompcor)",
}


def software_versions():
    """``{name: version}`` of this package and `SOFTWARE` in this environment
    (``"not installed"`` for a missing one)."""
    from importlib import metadata

    from . import __version__

    versions = {"cohort_connectome": __version__}
    for name in SOFTWARE:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def group_facts(info, qc, exclusions):
    """What the methods text says of an atlas's group outputs.

    Parameters
    ----------
    info : dict
        ``results/group/atlas-<a>_connectomes.json``.
    qc, exclusions : pandas.DataFrame
        ``results/group/atlas-<a>_qc.tsv`` and ``..._exclusions.tsv``.

    Returns
    -------
    dict
        ``n_included``, ``n_excluded``, ``excluded_by`` (``{stage: count}``),
        ``mean_fd`` (mean and sample SD over the included runs having it, or
        None) and ``confound_sets`` (the distinct regressor tuples of the
        included runs), as `methods_document` takes them.
    """
    included = qc[qc["excluded"].fillna("").astype(str) == ""]
    fd = included["mean_fd"].dropna().astype(float)
    sets = {tuple(c.split(",")) if c else ()
            for c in included["confounds"].fillna("").astype(str)}
    return {
        "n_included": len(info["runs"]),
        "n_excluded": len(info["excluded"]),
        "excluded_by": {str(k): int(v) for k, v in exclusions["stage"].value_counts().items()},
        "mean_fd": (float(fd.mean()), float(fd.std(ddof=1)) if len(fd) > 1 else 0.0)
        if len(fd) else None,
        "confound_sets": sorted(sets),
    }


class _Citations:
    """The references cited so far (a `REFERENCES` key per citation)."""

    def __init__(self):
        self.used = set()

    def __call__(self, *keys):
        self.used.update(keys)
        return "(" + "; ".join(_CITE[k] for k in keys) + ")"


def _number(value):
    """A config number as written in the text: ``0.01``, ``300``, ``1e-07``."""
    return format(value, "g") if isinstance(value, float) else str(value)


def _series(words):
    words = list(words)
    if len(words) <= 2:
        return " and ".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def _options(options):
    return ", ".join(f"`{k}={v}`" for k, v in sorted((options or {}).items()))


def _cohort(config, cohort):
    source = config["cohort"]["source"]
    if source == "demo":
        where = (f"the workflow's synthetic demo cohort (generated from seed "
                 f"{config['cohort']['demo']['seed']})")
    elif source == "adhd":
        where = "nilearn's ADHD-200 resting-state subset, fetched (`cohort.source: adhd`)"
    elif source == "bids":
        where = (f"the fMRIPrep derivatives in `{config['cohort']['bids_dir']}` (space "
                 f"`{config['cohort']['space']}`, task `{config['cohort']['task']}`)")
    else:
        where = f"the runs listed in cohort sheet `{config['cohort']['sheet']}`"
    text = (f"The cohort was {where}: {_plural(cohort['n_subjects'], 'subject')}, "
            f"{_plural(cohort['n_runs'], 'run')}.")
    if cohort.get("combine_runs"):
        text += (" Each subject's runs were cleaned separately and concatenated into one "
                 "series per subject before estimation (`connectivity.combine_runs`).")
    bad = ("excluded from the group outputs and listed with the reason"
           if config["cohort"]["on_bad_input"] == "exclude" else "a failure of the workflow")
    return text + f" A run with unusable input was {bad} (`cohort.on_bad_input`)."


def _atlas_item(name, sidecar, cite):
    kind = sidecar["Kind"]
    shape = "x".join(str(n) for n in sidecar["Shape"][:3])
    voxel = "x".join(_number(float(v)) for v in sidecar["VoxelSizeMillimetres"])
    what = "probabilistic maps" if kind == "probseg" else "deterministic labels"
    text = (f"`{name}`: {sidecar.get('Description') or sidecar['Source']}; {what} "
            f"({kind}), {_plural(sidecar['NumberOfRegions'], 'region')}, grid {shape} voxels "
            f"of {voxel} mm; source `{sidecar['Source']}`; licence: "
            f"{sidecar.get('Licence') or 'not given'}.")
    if sidecar.get("Reference"):
        cite.used.add(("atlas", sidecar["Reference"]))
        text += f" Reference: {sidecar['Reference']}."
    return text


def _extraction(config, atlases):
    kinds = {s["Kind"] for s in atlases.values()}
    parts = []
    if "probseg" in kinds:
        parts.append("for probabilistic maps, the least-squares fit of each volume on the "
                     "maps (nilearn's `NiftiMapsMasker`)")
    if "dseg" in kinds:
        strategies = sorted({s.get("Strategy") or "mean" for s in atlases.values()
                             if s["Kind"] == "dseg"})
        parts.append(f"for labels, the {'/'.join(strategies)} of each region's voxels "
                     "(nilearn's `NiftiLabelsMasker`)")
    resampling = []
    if "probseg" in kinds:
        resampling.append("maps by trilinear interpolation")
    if "dseg" in kinds:
        resampling.append("labels by nearest neighbour")
    return (f"Each atlas was resampled onto the voxel grid of each run on another grid "
            f"({_series(resampling)}, as nilearn's `resample_img`), and the region signals "
            "were extracted from one read "
            f"of each run for all atlases: {'; '.join(parts)}. A region covering less than "
            f"{_number(config['extraction']['min_coverage'])} of itself (voxels of labels, "
            "weight of maps) inside a run's field of view and brain mask was left n/a in that "
            "run (`extraction.min_coverage`).")


def _confounds_words(clean, confound_sets):
    if clean.get("confounds"):
        chosen = f"the columns {', '.join(f'`{c}`' for c in clean['confounds'])}"
    elif clean.get("strategy"):
        chosen = _STRATEGIES[clean["strategy"]]
    else:
        chosen = "every column of each run's confounds table"
    if len(confound_sets) == 1:
        (names,) = confound_sets
        used = (f"{_plural(len(names), 'regressor')}: {', '.join(f'`{n}`' for n in names)}"
                if names else "no regressor")
        return f"{chosen}; every run had the same {used}"
    return f"{chosen} (the regressors of each run are in the QC table)"


def _censoring(clean, cite):
    steps = []
    if clean.get("dummy_scans"):
        steps.append(f"the first {clean['dummy_scans']} volumes (`clean.dummy_scans`, merged "
                     "with fMRIPrep's non-steady-state outliers)")
    else:
        steps.append("fMRIPrep's non-steady-state outlier volumes, where flagged")
    if clean.get("fd_threshold") is not None:
        fd = (f"the volumes whose framewise displacement {cite('power')} exceeded "
              f"{_number(clean['fd_threshold'])} mm (`clean.fd_threshold`; the table's "
              "`framewise_displacement` column, else computed from the 6 motion parameters "
              "with a 50 mm head radius)")
        if clean.get("min_segment"):
            fd += (f", and the kept segments shorter than {clean['min_segment']} volumes "
                   "(`clean.min_segment`)")
        steps.append(fd)
    text = f"Censoring removed {_series(steps)}."
    if clean.get("fd_threshold") is None:
        text += " No volume was censored for motion (`clean.fd_threshold` is null)."
    if clean.get("min_seconds"):
        text += (f" A run with less than {_number(clean['min_seconds'])} s left after "
                 "censoring was excluded (`clean.min_seconds`).")
    return text


def _cleaning(config, confound_sets, cite):
    clean = config["clean"]
    filtering = clean.get("low_pass") is not None or clean.get("high_pass") is not None
    steps = []
    if filtering:
        steps.append("the censored volumes, if any, were replaced by a cubic-spline "
                     "interpolation of the kept ones (removed again after filtering)")
    else:
        steps.append("the censored volumes, if any, were removed")
    if clean.get("detrend"):
        steps.append("the signals and confounds were detrended (mean and linear trend "
                     "removed; `clean.detrend`)")
    if filtering:
        band = [f"high-pass {_number(clean['high_pass'])} Hz" if clean.get("high_pass")
                is not None else None,
                f"low-pass {_number(clean['low_pass'])} Hz" if clean.get("low_pass")
                is not None else None]
        steps.append(f"signals and confounds were filtered by a zero-phase order-5 "
                     f"Butterworth filter ({', '.join(b for b in band if b)}; "
                     "`clean.high_pass`, `clean.low_pass`)")
    scaled = ("z-scored" if clean.get("standardize_confounds")
              else "divided by their maximum absolute value")
    steps.append(f"the confounds ({_confounds_words(clean, confound_sets)}) were {scaled} "
                 "and projected out of the signals")
    if clean.get("standardize"):
        steps.append(f"the signals were {_STANDARDIZE[clean['standardize']]} "
                     "(`clean.standardize`)")
    if clean.get("t_r") is not None:
        t_r = f"{_number(clean['t_r'])} s for every run (`clean.t_r`)"
    else:
        t_r = "each run's (cohort sheet, JSON sidecar, else the NIfTI header)"
    numbered = " ".join(f"({k}) {s};" for k, s in enumerate(steps, 1))[:-1]
    return (f"Each run's region signals were then cleaned as nilearn's `signal.clean` "
            f"{cite('nilearn')}, in this order: {numbered}. The repetition time was {t_r}. "
            "A region with a constant signal was set to 0 and a region without data left "
            "n/a.")


def _estimation(config, per_run, cite):
    conn = config["connectivity"]
    estimator = conn["estimator"]
    if estimator == "ledoit_wolf":
        how = f"Ledoit-Wolf shrinkage {cite('ledoit_wolf')}"
    elif estimator == "empirical":
        how = "the empirical (maximum-likelihood) estimator"
    else:
        options = _options(conn.get("graphical_lasso_cv"))
        how = (f"scikit-learn's `GraphicalLassoCV` {cite('glasso', 'sklearn')}"
               + (f" ({options})" if options else ""))
        if conn.get("fallback"):
            how += (f", with {conn['fallback']} where it failed on a run (recorded in the QC "
                    "table; `connectivity.fallback`)")
            if conn["fallback"] == "ledoit_wolf":
                how += " " + cite("ledoit_wolf")
    text = (f"Each {'subject' if conn.get('combine_runs') else 'run'}'s covariance was "
            f"estimated by {how} (`connectivity.estimator`), as nilearn's "
            "`ConnectivityMeasure`")
    if per_run:
        text += (f"; the per-run kinds were {_series(_KIND_WORDS[k] for k in per_run)} "
                 "(`connectivity.kinds`)")
    return text + "."


def _group(config, group_kinds, groups, cite):
    """The group level, per atlas (``groups``: {atlas: its outputs' facts})."""
    items = []
    for name, facts in groups.items():
        line = (f"`{name}`: {_plural(facts['n_included'], 'run')} included, "
                f"{facts['n_excluded']} excluded")
        if facts["excluded_by"]:
            line += " (" + ", ".join(f"{n} by `{stage}`"
                                     for stage, n in sorted(facts["excluded_by"].items())) + ")"
        if facts.get("mean_fd") is not None:
            line += (f"; mean framewise displacement {cite('power')} of the included runs "
                     f"{facts['mean_fd'][0]:.3f} mm (SD {facts['mean_fd'][1]:.3f})")
        items.append(line + ".")
    text = ["The group matrices of the per-run kinds are the element-wise means over the "
            "included runs having both regions."]
    if "tangent" in group_kinds:
        text.append(f"Tangent-space connectivity {cite('tangent')}: each run's covariance "
                    f"({config['connectivity']['estimator']}) was projected onto the tangent "
                    "space at the group's geometric (Riemannian) mean, computed by gradient "
                    "descent (tolerance 1e-7, at most 30 iterations), which is the tangent "
                    "group matrix.")
    if config["group"]["sparse"]:
        options = _options(config["group"].get("sparse_cv"))
        text.append(f"Group-sparse precision matrices {cite('group_sparse')} were fitted on "
                    "every included run's signals at once by `GroupSparseCovarianceCV`"
                    + (f" ({options})" if options else " (nilearn's defaults)")
                    + ", one support shared by all runs; partial correlations follow from them.")
    compare = config["group"]["compare"]
    if compare:
        levels = config["group"]["levels"]
        text.append(
            f"Phenotype column `{compare}`"
            + (f" (levels {levels[0]} and {levels[1]})" if levels else "")
            + " was compared per kind and edge by two-sample Student's t-tests (pooled "
            "variance; a subject with several runs entered with the mean of its runs), with "
            f"Benjamini-Hochberg false discovery rate control {cite('bh')} at q < "
            f"{_number(config['group']['fdr'])} (`group.fdr`) over each kind's tested edges.")
        c = config["group"]["classify"]
        text.append(f"Each kind's vectorized connectomes classified `{compare}` with "
                    f"scikit-learn's `LinearSVC` {cite('sklearn')}, scored by accuracy over "
                    f"{c['n_repeats']} repeats of stratified {c['n_splits']}-fold "
                    f"cross-validation (seed {c['seed']}; `group.classify`).")
    return " ".join(text), items


def methods_document(config, cohort, kinds, atlases, groups, versions):
    """The methods text of a run, as sections.

    Parameters
    ----------
    config : dict
        The config as used (Snakemake's, the schema's defaults filled in).
    cohort : dict
        ``n_subjects``, ``n_runs``, ``combine_runs`` (bool).
    kinds : pair of lists
        The kinds estimated per run and at the group level
        (`config.split_kinds`'s first two).
    atlases : dict
        ``{atlas: its JSON sidecar}`` (``results/atlases/atlas-<a>/…json``), config order.
    groups : dict
        ``{atlas: facts}`` from its group outputs: ``n_included``, ``n_excluded``,
        ``excluded_by`` (``{stage: n}``), ``mean_fd`` (``(mean, sd)`` over the
        included runs, or None), ``confound_sets`` (the distinct tuples of
        regressors of the included runs): `group_facts`.
    versions : dict
        ``{package: version}`` (`software_versions` of the environment that
        ran the workflow).

    Returns
    -------
    list of (str, list)
        ``(heading, blocks)``; a block is a paragraph (str) or a list of items
        (list of str).
    """
    cite = _Citations()
    confound_sets = sorted({s for g in groups.values() for s in g["confound_sets"]})
    per_run, group_kinds = kinds
    group_text, group_items = _group(config, group_kinds, groups, cite)
    sections = [
        ("Participants", [_cohort(config, cohort)]),
        ("Atlases", [[_atlas_item(name, s, cite) for name, s in atlases.items()]]),
        ("Region signals", [_extraction(config, atlases)]),
        ("Censoring and cleaning", [_censoring(config["clean"], cite),
                                    _cleaning(config, confound_sets, cite)]),
        ("Connectivity", [_estimation(config, per_run, cite)]),
        ("Group level", [group_text, group_items]),
    ]
    software = (f"The workflow ran on cohort_connectome {versions['cohort_connectome']} "
                f"(its numerics reproduce nilearn 0.13.1 {cite('nilearn')}) with Snakemake "
                f"{versions['snakemake']} {cite('snakemake')}. Versions of the environment that "
                "ran Snakemake (with `--use-conda`, the rules' environments in `envs/` have "
                "their own):")
    sections.append(("Software", [software, [f"{name} {version}"
                                             for name, version in versions.items()]]))
    references = [REFERENCES[k] for k in REFERENCES if k in cite.used]
    references += sorted(entry[1] for entry in cite.used if isinstance(entry, tuple))
    sections.append(("References", [references]))
    return sections


_CODE = re.compile(r"`([^`]*)`")


def to_markdown(sections, title="Methods"):
    """Markdown of `methods_document`'s sections."""
    lines = [f"# {title}", ""]
    for heading, blocks in sections:
        lines += [f"## {heading}", ""]
        for block in blocks:
            lines += [f"- {item}" for item in block] if isinstance(block, list) else [block]
            lines.append("")
    return "\n".join(lines)


def _inline(text):
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html.escape(text))


def to_html(sections, title="Methods"):
    """A self-contained HTML page of `methods_document`'s sections."""
    body = []
    for heading, blocks in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        for block in blocks:
            if isinstance(block, list):
                body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block) + "</ul>")
            else:
                body.append(f"<p>{_inline(block)}</p>")
    return html.page(title, "\n".join(body))
