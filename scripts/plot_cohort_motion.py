"""Rule plot_cohort_motion: the runs' mean framewise displacement by group."""
from cohort_connectome.jobs.qc import plot_cohort_motion
from cohort_connectome.jobs.runtime import job_log

with job_log(snakemake.log[0], snakemake.rule):
    plot_cohort_motion(
        snakemake.input.qc,
        snakemake.input.participants,
        snakemake.output.figure,
        column=snakemake.params.column,
        levels=snakemake.params.levels,
        title=snakemake.params.title,
    )
