"""Rule plot_group_connectomes: matrix and connectome figures of one kind."""
from cohort_connectome.jobs import job_log, plot_group

kind = snakemake.wildcards.kind
with job_log(snakemake.log[0], snakemake.rule, kind):
    plot_group(
        {kind: snakemake.input.mean},
        snakemake.input.labels,
        {kind: {"matrix": snakemake.output.matrix, "connectome": snakemake.output.connectome}},
        atlas_name=snakemake.wildcards.atlas,
        n_subjects=snakemake.params.n_subjects,
        n_edges=snakemake.params.n_edges,
    )
