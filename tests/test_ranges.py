"""Numbers too big for the database (SQLite holds integers up to 2**63 - 1) are refused with one message
naming the field, never passed to SQLite to fail with an OverflowError; the workspace is left as it was.

Through the Python API, and through the command line (`search conclude`, `audit log`; `search show` is in
tests/test_bad_inputs_table.py).
"""

from __future__ import annotations

import pytest
from conftest import assert_one_error_line, london, run, snapshot

from nomina import CaseFields, PhotoInput, Provenance, ReferenceFields
from nomina.errors import InvalidField, NotFound

HUGE = 99999999999999999999999


@pytest.fixture()
def searched(ws, faces_dir):
    """The workspace with one reference, one case and one search of it (search 1)."""
    prov = Provenance("family", "a sister", "family request")
    ws.add_reference(ReferenceFields("R1", "Ana"), [PhotoInput(london(faces_dir, "001"))], prov)
    ws.add_case(CaseFields("C1"), [PhotoInput(london(faces_dir, "001", "smiling"))])
    assert ws.search("C1").search_id == 1
    return ws


@pytest.mark.parametrize("search_id", [HUGE, -HUGE, 2**63, 0])
def test_a_search_number_the_database_cannot_hold_is_refused(searched, search_id):
    before = snapshot(searched.path)
    pattern = rf"^search_id: {search_id} is not a record number \(1 to 9223372036854775807\)$"
    with pytest.raises(InvalidField, match=pattern):
        searched.get_search(search_id)
    with pytest.raises(InvalidField, match=pattern):
        searched.conclude(search_id, 1, "excluded", "different ears")
    assert snapshot(searched.path) == before


def test_the_largest_search_number_is_looked_up(searched):
    with pytest.raises(NotFound, match=r"^search 9223372036854775807: no such search$"):
        searched.get_search(2**63 - 1)


@pytest.mark.parametrize("rank", [HUGE, -HUGE, 2**63])
def test_a_rank_the_database_cannot_hold_is_refused(searched, rank):
    before = snapshot(searched.path)
    with pytest.raises(InvalidField, match=rf"^rank: search 1 has no candidate at rank {rank} \(1-1\)$"):
        searched.conclude(1, rank, "excluded", "different ears")
    assert snapshot(searched.path) == before


def test_an_audit_limit_the_database_cannot_hold_is_refused(searched):
    with pytest.raises(InvalidField, match=r"^limit: "):
        searched.audit_log(limit=HUGE)


CONCLUDE = ("search", "conclude", "--conclusion", "excluded", "--reasons", "different ears")


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        ((*CONCLUDE, str(HUGE), "--rank", "1"), rf"^error: search_id: {HUGE} is not a record number"),
        ((*CONCLUDE, "1", "--rank", str(HUGE)), rf"^error: --rank: search 1 has no candidate at rank {HUGE} \(1-1\)$"),
    ],
)
def test_the_command_line_refuses_huge_numbers_in_one_line(cli_ws, capsys, args, pattern):
    assert run(capsys, "search", "C1", "-w", cli_ws)[0] == 0
    before = snapshot(cli_ws)
    code, out, err = run(capsys, *args, "-w", cli_ws)
    assert code == 1 and out == ""
    assert_one_error_line(err, pattern)
    assert snapshot(cli_ws) == before


def test_audit_log_refuses_a_huge_limit_in_one_line(cli_ws, capsys):
    code, _, err = run(capsys, "audit", "log", "--limit", str(HUGE), "-w", cli_ws)
    assert code == 1
    assert_one_error_line(err, r"^error: --limit: 9+ is not")
