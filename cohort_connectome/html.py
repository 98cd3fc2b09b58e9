"""Small self-contained HTML pages for the report (methods text, tables).

Snakemake's report shows a ``text/html`` result inline; these pages carry
their own style and, for tables, a tiny script that sorts a column when its
header is clicked.  No timestamps, fixed number formatting: the same inputs
give the same bytes.
"""

import html as _html

__all__ = ["escape", "page", "table", "cell"]

_STYLE = """\
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:14px;
line-height:1.45;color:#222;margin:1em 1.5em;max-width:72em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.4em}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em;background:#f3f3f3;
padding:0 .2em;border-radius:3px}
p.note{color:#555}
table{border-collapse:collapse;margin:.5em 0 1.5em 0;font-size:13px}
th,td{border:1px solid #ddd;padding:.25em .55em;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f0f0f0;position:sticky;top:0}
th.sortable{cursor:pointer}th.sortable:after{content:" \\2195";color:#999}
tr:nth-child(even) td{background:#fafafa}
tr.flag td{background:#fde8e8}"""

# Click a header to sort by its column (numbers as numbers, n/a last); again to reverse.
_SORT = """\
document.querySelectorAll("table.sortable").forEach(function(t){
t.querySelectorAll("th").forEach(function(th,i){th.classList.add("sortable");
th.addEventListener("click",function(){var b=t.tBodies[0],r=Array.from(b.rows),
d=th.dataset.dir==="1"?-1:1;th.dataset.dir=d===1?"1":"-1";
function v(x){var s=x.cells[i].textContent,n=Number(s);
return s===""||s==="n/a"?null:(isNaN(n)?s:n);}
r.sort(function(x,y){var a=v(x),c=v(y);if(a===null)return 1;if(c===null)return -1;
if(typeof a===typeof c)return a<c?-d:a>c?d:0;return typeof a==="number"?-d:d;});
r.forEach(function(x){b.appendChild(x);});});});});"""


def escape(text):
    """``text`` with ``&``, ``<``, ``>`` and quotes escaped."""
    return _html.escape(str(text), quote=True)


def page(title, body, script=False):
    """A complete HTML page: ``title`` as its heading, ``body`` (HTML) under it,
    with the sorting script when ``script``."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{escape(title)}</title>", f"<style>\n{_STYLE}\n</style>", "</head>",
             "<body>", f"<h1>{escape(title)}</h1>", body]
    if script:
        parts.append(f"<script>\n{_SORT}\n</script>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def cell(value):
    """A table cell's text: floats with 4 significant digits (``n/a`` for NaN),
    the rest as ``str`` (None as empty)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "n/a" if value != value else format(value, ".4g")
    return str(value)


def table(columns, rows, flags=None):
    """A sortable ``<table>``: header ``columns``, one row per item of ``rows``
    (sequences of values, formatted by `cell`; numbers right-aligned); a row
    whose ``flags`` entry is true is highlighted (e.g. an excluded run)."""
    import numbers

    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for k, row in enumerate(rows):
        cells = []
        for value in row:
            numeric = isinstance(value, numbers.Number) and not isinstance(value, bool)
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{escape(cell(value))}</td>")
        flag = ' class="flag"' if flags is not None and flags[k] else ""
        body.append(f"<tr{flag}>{''.join(cells)}</tr>")
    return ('<table class="sortable">\n<thead><tr>' + head + "</tr></thead>\n<tbody>\n"
            + "\n".join(body) + "\n</tbody>\n</table>")
