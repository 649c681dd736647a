"""Result pages: markdown and HTML renderings of tidy tables that keep every row and number."""

import base64
import re

import numpy as np
import pandas as pd
import pytest

from tdann import report


def test_markdown_renders_every_row_with_four_significant_digits():
    df = pd.DataFrame({"a": [1.0, np.nan, 1.23456e-5], "b": ["x", "y", "z"]})
    text = report.to_markdown(df)
    lines = text.strip().splitlines()
    assert len(lines) == 2 + 3  # header, rule, one line per row
    assert re.search(r"\|\s*1\s*\|\s*x\s*\|", lines[2]) and "nan" in lines[3] and "1.235e-05" in lines[4]
    assert report.to_markdown(df.iloc[:0]) == "(no rows)\n"


def test_a_document_keeps_sections_in_order():
    sections = [report.Section("First", "one", pd.DataFrame({"v": [0.5]})), report.Section("Second", level=3)]
    text = report.markdown("Title", sections, intro="why")
    assert text.index("# Title") < text.index("why") < text.index("## First") < text.index("### Second")


def test_the_html_page_carries_every_cell_greys_models_that_did_not_learn_and_embeds_the_csv(tmp_path):
    df = pd.DataFrame({"model": ["a2.5_s0", "a2.5_s1"], "task_loss": [3.1234567, 4.1], "learnt": [True, False]})
    path = tmp_path / "learning.csv"
    df.to_csv(path, index=False)
    html = report.csv_page(path, "Learning", "Loss beside **chance**.")
    assert "<strong>chance</strong>" in html  # the rst description is rendered
    assert "3.123" in html and "a2.5_s1" in html and html.count("<tr") == 3
    assert html.count('class="false"') == 1  # the row that did not learn
    data = re.search(r'href="data:text/csv;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(data) == path.read_bytes()  # the download is the file itself


def test_html_escapes_cell_text():
    html = report.table_html(pd.DataFrame({"name": ["<b>x</b>"]}))
    assert "&lt;b&gt;" in html and "<b>x</b>" not in html


def test_a_damaged_csv_is_named(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="broken.csv"):
        report.csv_page(path, "Broken")
