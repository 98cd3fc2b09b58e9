"""Rule aggregate_connectomes: the group long table, group matrices and group kinds."""
from cohort_connectome.jobs.group import aggregate_connectomes
from cohort_connectome.jobs.runtime import job_log

with job_log(snakemake.log[0], snakemake.rule):
    keys = [u["key"] for u in snakemake.params.units]
    aggregate_connectomes(
        snakemake.params.relmats,
        snakemake.params.units,
        snakemake.input.participants,
        dict(zip(keys, snakemake.input.clean_sidecars)),
        snakemake.output.table,
        dict(zip(snakemake.params.kinds, snakemake.output.means)),
        snakemake.output.qc,
        snakemake.output.exclusions,
        info_path=snakemake.output.info,
        timeseries=dict(zip(keys, snakemake.input.timeseries)),
        connectivity_sidecars=dict(zip(keys, snakemake.input.connectivity_sidecars)),
        edgecount_path=snakemake.output.edgecount,
        **snakemake.params.group,
    )
