"""Rule simulate_demo_run: one demo subject's 4D run, confounds and true signals."""
from cohort_connectome.jobs.runtime import job_log
from cohort_connectome.jobs.sources import simulate_demo_run

subject = snakemake.wildcards.subject
with job_log(snakemake.log[0], snakemake.rule, subject):
    simulate_demo_run(
        subject,
        truth_path=snakemake.input.truth,
        run_path=snakemake.output.run,
        confounds_path=snakemake.output.confounds,
        signals_path=snakemake.output.signals,
        n_subjects=snakemake.params.n_subjects,
        seed=snakemake.params.seed,
    )
