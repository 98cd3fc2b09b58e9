"""Rule aggregate_connectomes: the group long table and group-mean matrices."""
from cohort_connectome.jobs import aggregate_connectomes, job_log

with job_log(snakemake.log[0], snakemake.rule):
    relmats = snakemake.params.relmats
    aggregate_connectomes(
        relmats,
        snakemake.params.units,
        snakemake.input.participants,
        dict(zip([u["key"] for u in snakemake.params.units], snakemake.input.clean_sidecars)),
        snakemake.output.table,
        dict(zip(relmats, snakemake.output.means)),
        snakemake.output.qc,
        snakemake.output.exclusions,
    )
