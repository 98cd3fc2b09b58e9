"""Rule plot_subject_connectomes: one subject's matrix and connectome figures."""
from cohort_connectome.jobs.figures import plot_connectomes
from cohort_connectome.jobs.runtime import job_log

subject = snakemake.wildcards.run
kinds = snakemake.params.kinds
with job_log(snakemake.log[0], snakemake.rule, subject):
    plot_connectomes(
        dict(zip(kinds, snakemake.input.relmats)),
        snakemake.input.labels,
        {k: {"matrix": m, "connectome": c}
         for k, m, c in zip(kinds, snakemake.output.matrices, snakemake.output.connectomes)},
        title=snakemake.params.title,
        negate=snakemake.params.negate,
        n_edges=snakemake.params.n_edges,
    )
