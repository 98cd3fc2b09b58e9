"""Rule plot_group_connectomes: matrix and connectome figures of one kind."""
from cohort_connectome.jobs.figures import plot_connectomes
from cohort_connectome.jobs.runtime import job_log

kind = snakemake.wildcards.kind
with job_log(snakemake.log[0], snakemake.rule, kind):
    plot_connectomes(
        {kind: snakemake.input.mean},
        snakemake.input.labels,
        {kind: {"matrix": snakemake.output.matrix, "connectome": snakemake.output.connectome}},
        title=snakemake.params.title,
        negate=snakemake.params.negate,
        n_edges=snakemake.params.n_edges,
        empty="not computed (see the group connectomes.json)",
    )
