"""Rule plot_subject_qc: one run's QC figure (motion, censoring, carpets)."""
from cohort_connectome.jobs.qc import plot_subject_qc
from cohort_connectome.jobs.runtime import job_log

subject = snakemake.wildcards.run
with job_log(snakemake.log[0], snakemake.rule, subject):
    plot_subject_qc(
        snakemake.input.raw,
        snakemake.input.timeseries,
        snakemake.input.sidecar,
        snakemake.input.qc,
        snakemake.input.labels,
        snakemake.output.figure,
        clean=dict(snakemake.params.clean),
        confounds_path=snakemake.params.confounds or None,
        title=snakemake.params.title,
        subject=subject,
    )
