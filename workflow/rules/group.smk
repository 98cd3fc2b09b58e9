# Group level: every run's matrices and time series -> long table, group matrices and
# the group kinds (tangent, group sparse) -> figures; the phenotype comparison
# (group.compare). Quality control: qc.smk.
# Outputs flagged with report() make `snakemake --report results/report.html`.


rule aggregate_connectomes:
    input:
        relmats=lambda w: [relmat_path(u, k, w.atlas) for u in UNITS for k in KINDS],
        clean_sidecars=lambda w: [run_path(u, "timeseries.json", w.atlas) for u in UNITS],
        # a run excluded by estimate_connectomes (cohort.on_bad_input) says so here
        connectivity_sidecars=lambda w: [run_path(u, "connectivity.json", w.atlas) for u in UNITS],
        # the group kinds are estimated from every run's time series at once
        timeseries=lambda w: (
            [run_path(u, "timeseries.tsv", w.atlas) for u in UNITS] if GROUP_LEVEL_KINDS else []
        ),
        participants=get_participants_table(),
    output:
        table=group_path("connectomes.tsv"),
        means=expand(group_path("meas-{kind}_relmat.tsv", "{{atlas}}"), kind=ALL_KINDS),
        # per edge, the included runs that have both regions (the means are over those)
        edgecount=group_path("desc-edgecount_relmat.tsv"),
        info=report(
            group_path("connectomes.json"),
            caption="../report/group_info.rst",
            category=CATEGORY["connectomes"],
            labels={"atlas": "{atlas}", "output": "estimation"},
            subcategory="estimation",
        ),
        qc=report(
            group_path("qc.tsv"),
            caption="../report/qc_table.rst",
            category=CATEGORY["qc"],
            labels={"atlas": "{atlas}", "output": "QC table"},
            subcategory="cohort",
        ),
        exclusions=report(
            group_path("exclusions.tsv"),
            caption="../report/exclusions.rst",
            category=CATEGORY["qc"],
            labels={"atlas": "{atlas}", "output": "exclusions"},
            subcategory="cohort",
        ),
    log:
        "logs/aggregate_connectomes/atlas-{atlas}.log",
    benchmark:
        "benchmarks/aggregate_connectomes/atlas-{atlas}.tsv"
    conda:
        "../../envs/connectivity.yaml"
    resources:
        mem_mb=mem_mb_for_group,
        runtime=runtime_for_group,
    params:
        relmats=lambda w: {k: {u: relmat_path(u, k, w.atlas) for u in UNITS} for k in KINDS},
        units=get_units(),
        kinds=ALL_KINDS,
        group={
            "group_kinds": GROUP_LEVEL_KINDS,
            # tangent: the covariances of connectivity.estimator, as ConnectivityMeasure
            "estimator": config["connectivity"]["estimator"],
            "estimator_options": get_estimator_options(None) or None,
            "sparse_options": (
                dict(config["group"]["sparse_cv"]) if config["group"]["sparse"] else None
            ),
        },
    script:
        "../../scripts/aggregate_connectomes.py"


rule plot_group_connectomes:
    input:
        mean="results/group/atlas-{atlas}_meas-{kind}_relmat.tsv",
        labels=atlas_table,
    output:
        matrix=report(
            "results/group/figures/atlas-{atlas}_meas-{kind}_matrix.png",
            caption="../report/group_matrix.rst",
            category=CATEGORY["connectomes"],
            labels={"atlas": "{atlas}", "output": "matrix"},
            subcategory="{kind}",
        ),
        connectome=report(
            "results/group/figures/atlas-{atlas}_meas-{kind}_connectome.png",
            caption="../report/group_connectome.rst",
            category=CATEGORY["connectomes"],
            labels={"atlas": "{atlas}", "output": "connectome"},
            subcategory="{kind}",
        ),
    log:
        "logs/plot_group_connectomes/atlas-{atlas}_meas-{kind}.log",
    benchmark:
        "benchmarks/plot_group_connectomes/atlas-{atlas}_meas-{kind}.tsv"
    conda:
        "../../envs/plotting.yaml"
    resources:
        mem_mb=mem_mb_for_group,
        runtime=runtime_for_group,
    params:
        title=group_figure_title,
        negate=config["figures"]["negate"],
        n_edges=config["figures"]["n_edges"],
    script:
        "../../scripts/plot_group_connectomes.py"


if COMPARE:

    rule compare_groups:
        input:
            table=rules.aggregate_connectomes.output.table,
            participants=get_participants_table(),
            labels=atlas_table,
        output:
            ttest=report(
                compare_path("ttest.tsv"),
                caption="../report/compare_ttest.rst",
                category=CATEGORY["comparison"],
                labels={"atlas": "{atlas}", "output": "t-tests"},
                subcategory="tables",
            ),
            classification=report(
                compare_path("classification.tsv"),
                caption="../report/compare_classification.rst",
                category=CATEGORY["comparison"],
                labels={"atlas": "{atlas}", "output": "classification"},
                subcategory="tables",
            ),
            figures=[
                report(
                    compare_figure(k, "{atlas}"),
                    caption="../report/compare_figure.rst",
                    category=CATEGORY["comparison"],
                    labels={"atlas": "{atlas}", "output": f"{k} t-tests"},
                    subcategory=k,
                )
                for k in ALL_KINDS
            ],
        log:
            f"logs/compare_groups/atlas-{{atlas}}_compare-{COMPARE_LABEL}.log",
        benchmark:
            f"benchmarks/compare_groups/atlas-{{atlas}}_compare-{COMPARE_LABEL}.tsv"
        conda:
            "../../envs/group.yaml"
        resources:
            mem_mb=mem_mb_for_group,
            runtime=runtime_for_group,
        params:
            column=COMPARE,
            kinds=ALL_KINDS,
            participant_ids=sorted(set(COHORT["participant_id"])),
            levels=config["group"]["levels"],
            fdr=config["group"]["fdr"],
            classify=config["group"]["classify"],
        script:
            "../../scripts/compare_groups.py"
