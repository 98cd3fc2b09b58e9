# The report's own results: the methods text of this run (from the config used
# and the group outputs) and the group tables as HTML pages (Snakemake's report
# shows HTML inline; the TSVs stay downloadable beside them).


rule methods:
    input:
        atlases=[atlas_output(a, "json") for a in ATLAS_NAMES],
        info=[group_path("connectomes.json", a) for a in ATLAS_NAMES],
        qc=[group_path("qc.tsv", a) for a in ATLAS_NAMES],
        exclusions=[group_path("exclusions.tsv", a) for a in ATLAS_NAMES],
    output:
        markdown="results/methods.md",
        html=report(
            "results/methods.html",
            caption="../report/methods.rst",
            category=CATEGORY["methods"],
            labels={"output": "methods"},
        ),
    log:
        "logs/methods.log",
    benchmark:
        "benchmarks/methods.tsv"
    resources:
        mem_mb=mem_mb_for_group,
        runtime=runtime_for_group,
    params:
        # the whole config: a changed value reruns this rule (params are compared)
        config=config,
        atlases=ATLAS_NAMES,
        cohort={
            "n_subjects": int(COHORT["participant_id"].nunique()),
            "n_runs": len(RUNS),
            "combine_runs": COMBINE,
        },
    script:
        "../../scripts/write_methods.py"


rule report_qc_tables:
    input:
        qc=rules.aggregate_connectomes.output.qc,
        exclusions=rules.aggregate_connectomes.output.exclusions,
    output:
        qc=report(
            group_path("qc.html"),
            caption="../report/qc_table.rst",
            category=CATEGORY["qc"],
            labels={"atlas": "{atlas}", "output": "QC table (page)"},
            subcategory="cohort",
        ),
        exclusions=report(
            group_path("exclusions.html"),
            caption="../report/exclusions.rst",
            category=CATEGORY["qc"],
            labels={"atlas": "{atlas}", "output": "exclusions (page)"},
            subcategory="cohort",
        ),
    log:
        "logs/report_qc_tables/atlas-{atlas}.log",
    benchmark:
        "benchmarks/report_qc_tables/atlas-{atlas}.tsv"
    resources:
        mem_mb=mem_mb_for_group,
        runtime=runtime_for_group,
    params:
        pages=lambda w: {
            "qc": {
                "title": f"QC table, atlas {w.atlas}",
                "note": "One row per run; excluded runs highlighted.",
                "flag": "excluded",
            },
            "exclusions": {
                "title": f"Exclusions, atlas {w.atlas}",
                "note": "The runs left out of the group tables and why.",
            },
        },
    script:
        "../../scripts/report_tables.py"


if COMPARE:

    rule report_comparison_tables:
        input:
            ttest=rules.compare_groups.output.ttest,
            classification=rules.compare_groups.output.classification,
            labels=atlas_table,
        output:
            significant=report(
                compare_path("significant.html"),
                caption="../report/compare_significant.rst",
                category=CATEGORY["comparison"],
                labels={"atlas": "{atlas}", "output": "significant edges"},
                subcategory="tables",
            ),
            classification=report(
                compare_path("classification.html"),
                caption="../report/compare_classification.rst",
                category=CATEGORY["comparison"],
                labels={"atlas": "{atlas}", "output": "classification (page)"},
                subcategory="tables",
            ),
        log:
            f"logs/report_comparison_tables/atlas-{{atlas}}_compare-{COMPARE_LABEL}.log",
        benchmark:
            f"benchmarks/report_comparison_tables/atlas-{{atlas}}_compare-{COMPARE_LABEL}.tsv"
        resources:
            mem_mb=mem_mb_for_group,
            runtime=runtime_for_group,
        params:
            fdr=config["group"]["fdr"],
            pages=lambda w: {
                "significant": {"title": f"Significant edges of {COMPARE}, atlas {w.atlas}"},
                "classification": {
                    "title": f"Classification of {COMPARE}, atlas {w.atlas}",
                    "note": "Cross-validated accuracy per kind, with the chance level.",
                },
            },
        script:
            "../../scripts/report_tables.py"


# Snakemake's report shows a rule's code from its script: (shell:, wrapper:,
# notebook:) directive; for a run: directive it shows none ("no easy way yet to
# obtain the actual uncompiled source code", snakemake/report/__init__.py). The
# in-process rules (run_in_process, common.smk) run scripts/<rule>.py: while
# the report is built, and only then (a script: rule would run in its own process
# and be benchmarked there), their rules name that script, so that their panel
# shows it.
_create_report = workflow.create_report


def _create_report_with_in_process_code(*args, **kwargs):
    for in_process in workflow.rules:
        if in_process.is_run and in_process.name in ("clean_timeseries", "estimate_connectomes"):
            in_process.script = f"../../scripts/{in_process.name}.py"
    return _create_report(*args, **kwargs)


workflow.create_report = _create_report_with_in_process_code
