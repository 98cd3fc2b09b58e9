"""Jobs of the report rules (workflow/rules/report.smk): the methods text and
the group tables as HTML pages for Snakemake's report.

The text is `cohort_connectome.methods`'; the pages `cohort_connectome.html`'s.
"""

from pathlib import Path

from .. import html, io, methods


def write_methods(config, cohort, kinds, versions, atlas_sidecars, group_outputs,
                  markdown_path, html_path):
    """Write the run's methods text as Markdown and as an HTML page.

    Parameters
    ----------
    config : dict
        The config as used.
    cohort : dict
        ``n_subjects``, ``n_runs``, ``combine_runs``.
    kinds : pair of lists
        The kinds estimated per run and at the group level.
    versions : dict
        ``{package: version}`` of the environment that ran the workflow
        (`methods.software_versions` in the Snakemake process).
    atlas_sidecars : dict
        ``{atlas: path}`` of each atlas's JSON sidecar, in config order.
    group_outputs : dict
        ``{atlas: {"info": path, "qc": path, "exclusions": path}}``: its
        ``connectomes.json``, ``qc.tsv`` and ``exclusions.tsv``.
    markdown_path, html_path : path
        The outputs.
    """
    atlases = {name: io.read_json(path) for name, path in atlas_sidecars.items()}
    groups = {
        name: methods.group_facts(io.read_json(paths["info"]),
                                  io.read_table(paths["qc"], dtype={"participant_id": str}),
                                  io.read_table(paths["exclusions"], dtype=str))
        for name, paths in group_outputs.items()
    }
    sections = methods.methods_document(config, cohort, kinds, atlases, groups, versions)
    _write_page(methods.to_markdown(sections), markdown_path)
    _write_page(methods.to_html(sections), html_path)


def _write_page(text, path):
    with io.atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def table_page(table_path, html_path, title, note="", flag_column=None):
    """Write a TSV of the workflow as a sortable HTML page.

    Parameters
    ----------
    table_path, html_path : path
    title : str
        The page's heading.
    note : str
        A sentence under it (plain text).
    flag_column : str, optional
        Rows with a non-empty value there are highlighted (the QC table's
        ``excluded``).
    """
    table = io.read_table(table_path, dtype={"participant_id": str})
    flags = None
    if flag_column is not None:
        flags = table[flag_column].fillna("").astype(str).ne("").tolist()
    rows = list(table.itertuples(index=False, name=None))
    body = (f'<p class="note">{html.escape(note)} {_plural_rows(len(rows))}; the TSV: '
            f"<code>{html.escape(Path(table_path).name)}</code>.</p>\n"
            + html.table(list(table.columns), rows, flags))
    _write_page(html.page(title, body, script=True), html_path)


def _plural_rows(n):
    return f"{n} row{'' if n == 1 else 's'}"


#: The columns of the significant edges page, in order.
SIGNIFICANT_COLUMNS = ("kind", "region_i", "network_i", "region_j", "network_j", "t", "q",
                       "mean_a", "mean_b", "n_a", "n_b")


def significant_edges_page(ttest_path, labels_path, html_path, title, fdr):
    """Write the significant edges of a comparison (``significant`` true in
    its t-test table) as a sortable page: per kind, the edges tested and
    significant, then one row per significant edge (regions and their
    networks, t, q, the group means and sizes), by kind then q."""
    ttest = io.read_table(ttest_path)
    networks = dict(zip(*(io.read_labels(labels_path)[c] for c in ("name", "network"))))
    kinds = list(dict.fromkeys(ttest["kind"]))
    significant = ttest["significant"].astype(str).eq("True")
    tested = ttest["q"].notna()
    counts = html.table(["kind", "edges tested", f"significant (q < {fdr:g})"],
                        [(k, int((tested & ttest["kind"].eq(k)).sum()),
                          int((significant & ttest["kind"].eq(k)).sum())) for k in kinds])
    edges = ttest[significant].copy()
    edges["network_i"] = edges["region_i"].map(networks)
    edges["network_j"] = edges["region_j"].map(networks)
    edges["order"] = edges["kind"].map({k: i for i, k in enumerate(kinds)})
    edges = edges.sort_values(["order", "q"], kind="mergesort")
    groups = ""
    if len(ttest):
        groups = (f" Group a is {html.escape(ttest['group_a'].iloc[0])}, group b "
                  f"{html.escape(ttest['group_b'].iloc[0])}; t is positive when a is larger.")
    body = (f'<p class="note">Edges with Benjamini-Hochberg q below {fdr:g}, per kind.{groups} '
            f"Every edge: <code>{html.escape(Path(ttest_path).name)}</code>.</p>\n" + counts
            + "\n<h2>Significant edges</h2>\n"
            + html.table(list(SIGNIFICANT_COLUMNS),
                         list(edges[list(SIGNIFICANT_COLUMNS)].itertuples(index=False,
                                                                           name=None))))
    _write_page(html.page(title, body, script=True), html_path)
