"""Rule simulate_demo_atlas: the demo atlas, ground truth and participants table."""
from cohort_connectome.jobs.runtime import job_log
from cohort_connectome.jobs.sources import simulate_demo_atlas

with job_log(snakemake.log[0], snakemake.rule):
    simulate_demo_atlas(
        maps_path=snakemake.output.maps,
        labels_path=snakemake.output.labels,
        truth_paths=dict(zip(snakemake.params.groups, snakemake.output.truth)),
        participants_path=snakemake.output.participants,
        n_subjects=snakemake.params.n_subjects,
        seed=snakemake.params.seed,
        demo_root=snakemake.params.demo_root,
    )
