# Group level: every subject's matrices -> long table + group means -> figures.


rule aggregate_connectomes:
    input:
        relmats=[relmat_path(u, k) for u in UNITS for k in KINDS],
        clean_sidecars=[run_path(u, "timeseries.json") for u in UNITS],
        participants=get_participants_table(),
    output:
        table=f"results/group/atlas-{ATLAS}_connectomes.tsv",
        means=[f"results/group/atlas-{ATLAS}_meas-{k}_relmat.tsv" for k in KINDS],
        qc=f"results/group/atlas-{ATLAS}_qc.tsv",
        exclusions="results/group/exclusions.tsv",
    log:
        f"logs/aggregate_connectomes/atlas-{ATLAS}.log",
    benchmark:
        f"benchmarks/aggregate_connectomes/atlas-{ATLAS}.tsv"
    params:
        relmats={k: {u: relmat_path(u, k) for u in UNITS} for k in KINDS},
        units=get_units(),
    conda:
        "../../envs/numerics.yaml"
    script:
        "../../scripts/aggregate_connectomes.py"


rule plot_group_connectomes:
    input:
        mean="results/group/atlas-{atlas}_meas-{kind}_relmat.tsv",
        labels=ATLAS_LABELS,
    output:
        matrix=report(
            "results/group/figures/atlas-{atlas}_meas-{kind}_matrix.png",
            caption="../report/group_matrix.rst",
            category="Group connectomes",
            subcategory="{kind}",
        ),
        connectome=report(
            "results/group/figures/atlas-{atlas}_meas-{kind}_connectome.png",
            caption="../report/group_connectome.rst",
            category="Group connectomes",
            subcategory="{kind}",
        ),
    log:
        "logs/plot_group_connectomes/atlas-{atlas}_meas-{kind}.log",
    benchmark:
        "benchmarks/plot_group_connectomes/atlas-{atlas}_meas-{kind}.tsv"
    params:
        title=lambda w: f"atlas {w.atlas}, mean of {len(UNITS)} "
        + ("runs" if len(UNITS) > COHORT["participant_id"].nunique() else "subjects"),
        negate=config["figures"]["negate"],
        n_edges=config["figures"]["n_edges"],
    conda:
        "../../envs/plotting.yaml"
    script:
        "../../scripts/plot_group_connectomes.py"
