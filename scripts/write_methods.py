"""Rule methods: the run's methods text (results/methods.md and its HTML page)."""
from cohort_connectome.jobs.report import write_methods
from cohort_connectome.jobs.runtime import job_log

with job_log(snakemake.log[0], snakemake.rule):
    atlases = snakemake.params.atlases
    write_methods(
        snakemake.params.config,
        snakemake.params.cohort,
        snakemake.params.kinds,
        snakemake.params.versions,
        dict(zip(atlases, snakemake.input.atlases)),
        {
            a: {"info": i, "qc": q, "exclusions": e}
            for a, i, q, e in zip(
                atlases, snakemake.input.info, snakemake.input.qc, snakemake.input.exclusions
            )
        },
        snakemake.output.markdown,
        snakemake.output.html,
    )
