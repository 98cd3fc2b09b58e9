# Group level: every subject's matrices -> long table + group means -> figures.


rule aggregate_connectomes:
    input:
        relmats=[relmat_path(r, k) for r in RUNS for k in KINDS],
        participants=get_participants_table(),
    output:
        table="results/group/atlas-{atlas}_connectomes.tsv",
        means=expand("results/group/atlas-{{atlas}}_meas-{kind}_relmat.tsv", kind=KINDS),
    log:
        "logs/aggregate_connectomes/atlas-{atlas}.log",
    benchmark:
        "benchmarks/aggregate_connectomes/atlas-{atlas}.tsv"
    params:
        relmats={k: {r: relmat_path(r, k) for r in RUNS} for k in KINDS},
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
        title=lambda w: f"atlas {w.atlas}, mean of {len(RUNS)} "
        + ("runs" if len(RUNS) > COHORT["participant_id"].nunique() else "subjects"),
        negate=config["figures"]["negate"],
        n_edges=config["figures"]["n_edges"],
    conda:
        "../../envs/plotting.yaml"
    script:
        "../../scripts/plot_group_connectomes.py"
