"""Result pages: tidy tables rendered as markdown and as self-contained HTML pages for the Snakemake report.

Snakemake's report shows a CSV only as a download link; an HTML file it shows inline. A page here carries its
description (reStructuredText, rendered with docutils as the report renders captions), each table in full, and
the CSV itself as an embedded download, so the numbers a reader sees and the file an analysis reads are the same.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

FLOAT_FORMAT = ".4g"  # 4 significant digits: p-values of 1e-5 stay readable, 0.8123 keeps its 4 digits

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.35em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; position: sticky; top: 0; }
td.text { text-align: left; }
tr.false td { color: #999; }
.scroll { overflow-x: auto; max-width: 100%; }
.note { color: #555; font-size: 0.85em; }
"""


@dataclass
class Section:
    """One part of a page: a heading, a paragraph of plain text and an optional table."""

    heading: str
    text: str = ""
    table: pd.DataFrame | None = None
    level: int = 2


def format_value(value) -> str:
    """How a cell is printed: floats to 4 significant digits, nan as an empty-looking 'nan', the rest as str."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return "nan" if not math.isfinite(float(value)) else format(float(value), FLOAT_FORMAT)
    return str(value)


def to_markdown(table: pd.DataFrame) -> str:
    """A pipe table (pandas' ``DataFrame.to_markdown``, i.e. tabulate), floats as :func:`format_value` prints them."""
    if table.empty:
        return "(no rows)\n"
    shown = table.map(format_value)  # one formatting rule for markdown and HTML; tabulate would reformat floats
    return shown.to_markdown(index=False, disable_numparse=True) + "\n"


def markdown(title: str, sections: list[Section], intro: str = "") -> str:
    """A markdown document: the title, an intro paragraph, then each section's heading, text and table."""
    out = [f"# {title}", ""] + ([intro, ""] if intro else [])
    for s in sections:
        out += ["#" * s.level + " " + s.heading, ""]
        if s.text:
            out += [s.text, ""]
        if s.table is not None:
            out += [to_markdown(s.table), ""]
    return "\n".join(out).rstrip() + "\n"


_TEXT = ' class="text"'


def _numeric(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))


def table_html(table: pd.DataFrame) -> str:
    """An HTML table; rows whose ``learnt`` (or ``beats``) column is False are greyed, as the figures mark them."""
    if table.empty:
        return "<p>(no rows)</p>"
    flag = next((c for c in ("learnt", "beats", "emerged") if c in table.columns), None)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = []
    for _, row in table.iterrows():
        cls = ' class="false"' if flag is not None and str(row[flag]) == "False" else ""
        cells = "".join(f"<td{'' if _numeric(v) else _TEXT}>{html.escape(format_value(v))}</td>" for v in row.tolist())
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def rst_to_html(text: str) -> str:
    """The HTML body of a reStructuredText fragment (docutils, as Snakemake renders report captions)."""
    if not text.strip():
        return ""
    from docutils.core import publish_parts

    return publish_parts(text, writer="html", settings_overrides={"report_level": 5})["body"]


def download_link(path: str | Path) -> str:
    """An anchor that downloads the file from inside the page (a data URI), so the page stands alone."""
    path = Path(path)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    mime = "text/csv" if path.suffix == ".csv" else "application/octet-stream"
    return f'<a download="{html.escape(path.name)}" href="data:{mime};base64,{data}">{html.escape(path.name)}</a>'


def page(title: str, sections: list[Section], intro_html: str = "", downloads: Sequence[str | Path] = ()) -> str:
    """A self-contained HTML page: title, intro (already HTML), sections, and the downloadable source files."""
    body = [f"<h1>{html.escape(title)}</h1>", intro_html]
    for s in sections:
        body.append(f"<h{s.level}>{html.escape(s.heading)}</h{s.level}>")
        if s.text:
            body.append(f"<p>{html.escape(s.text)}</p>")
        if s.table is not None:
            body.append(table_html(s.table))
    if downloads:
        body.append('<p class="note">Files: ' + ", ".join(download_link(p) for p in downloads) + "</p>")
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>\n")


def csv_page(csv_path: str | Path, title: str, description_rst: str = "") -> str:
    """The page of one tidy table: its description, every row, and the CSV as a download."""
    path = Path(csv_path)
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable CSV table ({e})") from e
    n = f"{len(table)} rows x {len(table.columns)} columns"
    return page(title, [Section(path.name, n, table)], rst_to_html(description_rst), downloads=[path])
