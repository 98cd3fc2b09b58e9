"""Rules report_qc_tables and report_comparison_tables: group tables as HTML pages."""
from cohort_connectome.jobs.report import significant_edges_page, table_page
from cohort_connectome.jobs.runtime import job_log

with job_log(snakemake.log[0], snakemake.rule):
    pages = snakemake.params.pages
    for name, page in pages.items():
        if name == "significant":
            significant_edges_page(
                snakemake.input.ttest,
                snakemake.input.labels,
                snakemake.output.significant,
                page["title"],
                snakemake.params.fdr,
            )
        else:
            table_page(
                getattr(snakemake.input, name),
                getattr(snakemake.output, name),
                page["title"],
                page["note"],
                flag_column=page.get("flag"),
            )
