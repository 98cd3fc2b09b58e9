"""Rule bids_participants: the phenotype of an fMRIPrep cohort's participants."""
from cohort_connectome.jobs.runtime import job_log
from cohort_connectome.jobs.sources import write_bids_participants

with job_log(snakemake.log[0], snakemake.rule):
    write_bids_participants(snakemake.input[0] if snakemake.input else None,
                            snakemake.params.participant_ids, snakemake.output[0])
