"""One result table as an HTML page for the report: its description, every row, and the CSV embedded."""

from pathlib import Path

from tdann import report
from tdann.provenance import step

with step(snakemake):
    text = report.csv_page(snakemake.input.table, snakemake.params.title, snakemake.params.description)
    Path(snakemake.output.html).write_text(text)
