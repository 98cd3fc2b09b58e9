"""Rule compare_groups: edge-wise t-tests and classification of a phenotype."""
from cohort_connectome.jobs.group import compare_groups
from cohort_connectome.jobs.runtime import job_log

with job_log(snakemake.log[0], snakemake.rule, snakemake.params.column):
    compare_groups(
        snakemake.input.table,
        snakemake.input.participants,
        snakemake.input.labels,
        snakemake.params.column,
        snakemake.output.ttest,
        snakemake.output.classification,
        dict(zip(snakemake.params.kinds, snakemake.output.figures)),
        participant_ids=snakemake.params.participant_ids,
        levels=snakemake.params.levels,
        fdr=snakemake.params.fdr,
        classify=dict(snakemake.params.classify),
    )
