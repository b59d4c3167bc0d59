"""Records edited behind Nomina's back, as someone holding the database file could: each edit is caught by
`audit verify`, naming the record, and reports and exports refuse records that disagree with the trail."""
# ruff: noqa: F811 (the workspace fixtures are imported from the workflow and casefile tests)

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import math
import os
import re
import shutil
import socket
import sqlite3
import struct
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import (
    USER,
    assert_one_error_line,
    current_engine,
    database_of,
    drop_trigger,
    london,
    raw_database,
    run,
    snapshot,
    sqlite_only,
)
from test_casefile import identified, identified_template  # noqa: F401 (fixtures)
from test_workflow import as_json, casework, casework_template, cli, propose  # noqa: F401 (fixtures)

from nomina import Workspace, audit, calibration
from nomina.demo import write_sample_manifest
from nomina.errors import Conflict, NominaError, NotLoggedIn, RecordTampered
from nomina.models import MODELS
from nomina.store import schema as db_schema


def tamper(ws: Path, *statements: str | tuple[str, tuple[Any, ...]]) -> None:
    """Change the database behind Nomina's back (a statement, or one with its parameters)."""
    with raw_database(ws) as db:
        for statement in statements:
            db.execute(*((statement,) if isinstance(statement, str) else statement))


def verify(capsys, ws: Path) -> tuple[int, str]:
    code, out, err = run(capsys, "audit", "verify", "-w", ws)
    return code, out + err


def verify_json(capsys, ws: Path) -> dict[str, Any]:
    code, out, _ = run(capsys, "audit", "verify", "--json", "-w", ws)
    data = json.loads(out)
    assert code == (0 if data["ok"] else 1)
    return data


def rewrite_chain(
    ws: Path,
    edit: Callable[[dict[str, Any]], None] = lambda e: None,
    drop: Callable[[dict[str, Any]], bool] | None = None,
) -> None:
    """Rewrite the whole trail as an attacker with the file could: ``edit`` each event (a dict of its
    columns, ``details`` parsed) and leave out those ``drop`` names, then renumber the events and recompute
    every hash and the head, so that the chain checks out."""
    with raw_database(ws) as db:
        drop_trigger(db, "audit_events", "audit_events_no_update")
        drop_trigger(db, "audit_events", "audit_events_no_delete")
        columns = ("seq", "at", "actor", "action", "case_id", "reference_id", "search_id", "details")
        rows = [
            dict(zip(columns, r, strict=True))
            for r in db.execute(f"SELECT {', '.join(columns)} FROM audit_events").fetchall()
        ]
        rows.sort(key=lambda r: r["seq"])
        db.execute("DELETE FROM audit_events")
        prev = audit.GENESIS
        for row in rows:
            row["details"] = json.loads(row["details"])
        rows = [row for row in rows if drop is None or not drop(row)]
        for seq, row in enumerate(rows, 1):
            row["seq"] = seq
            edit(row)
            ids = {k: row[k] for k in audit.OBJECT_IDS}
            digest = audit.link_hash(
                prev, audit.canonical(row["seq"], row["at"], row["actor"], row["action"], ids, row["details"])
            )
            db.execute(
                "INSERT INTO audit_events (seq, at, actor, action, case_id, reference_id, search_id, details, "
                "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*(row[c] for c in columns[:7]), json.dumps(row["details"]), prev, digest),
            )
            prev = digest
        db.execute(
            "UPDATE workspace_info SET value = ? WHERE key = 'audit_head'",
            (json.dumps({"hash": prev, "seq": rows[-1]["seq"]}),),
        )


# -- an untouched workspace ----------------------------------------------------------------------------
def test_an_untouched_workspace_verifies_with_every_record_checked(identified, capsys):
    code, out = verify(capsys, identified)
    assert code == 0, out
    assert "audit trail intact" in out and "records checked: each is as the trail last left it" in out
    data = verify_json(capsys, identified)
    # 3 references, 1 case, 1 search, 4 users: each compared with the trail
    assert (data["ok"], data["records"], data["records_checked"]) == (True, [], 9)


# -- each edit behind Nomina's back is named -----------------------------------------------------------
EDITS = {
    "a candidate's score": (
        ["UPDATE candidates SET score = 0.99 WHERE search_id = 1 AND rank = 2"],
        "search 1: changed behind Nomina's back since seq",
    ),
    "a candidate's rank": (
        [
            "UPDATE candidates SET rank = 99 WHERE search_id = 1 AND rank = 1",
            "UPDATE candidates SET rank = 1 WHERE search_id = 1 AND rank = 2",
            "UPDATE candidates SET rank = 2 WHERE search_id = 1 AND rank = 99",
        ],
        "search 1: changed behind Nomina's back since seq",
    ),
    "a verification's verifier": (
        ["UPDATE verifications SET verifier = 'cy'"],
        "case UP-1: changed behind Nomina's back since seq",
    ),
    "a conclusion's text": (
        ["UPDATE conclusions SET conclusion = 'excluded'"],
        "search 1: changed behind Nomina's back since seq",
    ),
    "a deleted conclusion": (["DELETE FROM conclusions"], "search 1: changed behind Nomina's back since seq"),
    "a feature checklist slipped into a conclusion": (
        ["""UPDATE conclusions SET checklist = '{"eyes": {"finding": "similar", "note": ""}}'"""],
        "search 1: changed behind Nomina's back since seq",
    ),
    "an inserted admin": (
        [
            "INSERT INTO users (name, roles, active, created_at, created_by) "
            """VALUES ('mallory', '["admin"]', TRUE, '2026-12-01 00:00:00', 'ana')"""
        ],
        "user 'mallory': no event records it: added behind Nomina's back",
    ),
    "a promoted user": (
        ["""UPDATE users SET roles = '["verifier", "admin"]' WHERE name = 'ben'"""],
        "user 'ben': changed behind Nomina's back since seq",
    ),
    "a zeroed embedding": (
        [
            (
                "UPDATE faces SET embedding = ? WHERE reference_photo_id IN "
                "(SELECT id FROM reference_photos WHERE reference_id = 'MP-013')",
                (bytes(4 * MODELS["sface"].embedding_dim),),
            )
        ],
        "reference MP-013: changed behind Nomina's back since seq",
    ),
    "a raised quality measure": (
        [
            "UPDATE faces SET sface_norm = 30.0 WHERE reference_photo_id IN "
            "(SELECT id FROM reference_photos WHERE reference_id = 'MP-013')"
        ],
        "reference MP-013: changed behind Nomina's back since seq",
    ),
    "a cleared quality measure": (
        [
            "UPDATE faces SET sface_norm = NULL WHERE reference_photo_id IN "
            "(SELECT id FROM reference_photos WHERE reference_id = 'MP-011')"
        ],
        "reference MP-011: changed behind Nomina's back since seq",
    ),
    "a quality measure given to a face of another model": (
        [
            "UPDATE faces SET arcface_norm = 30.0 WHERE case_photo_id IN "
            "(SELECT id FROM case_photos WHERE case_id = 'UP-1')"
        ],
        "case UP-1: changed behind Nomina's back since seq",
    ),
    "a changed provenance": (
        ["UPDATE reference_photos SET legal_basis = 'none' WHERE reference_id = 'MP-011'"],
        "reference MP-011: changed behind Nomina's back since seq",
    ),
    "a lowered quality gate": (
        ["""UPDATE workspace_info SET value = '"off"' WHERE key = 'setting.quality_gate'"""],
        "setting 'quality_gate': 'off', but seq .* set it to 'standard': changed behind Nomina's back",
    ),
    "a retention period given as text": (
        ["""UPDATE workspace_info SET value = '"20"' WHERE key = 'setting.retention_years'"""],
        "setting 'retention_years': '20', but seq .* set it to 20: changed behind Nomina's back",
    ),
    "a deleted setting": (
        ["DELETE FROM workspace_info WHERE key = 'setting.duplicate_score'"],
        "setting 'duplicate_score': gone, but seq .* set it to 0.5: removed behind Nomina's back",
    ),
    "an added setting": (
        ["""INSERT INTO workspace_info (key, value) VALUES ('setting.debug', 'true')"""],
        "setting 'debug': no event records it: added behind Nomina's back",
    ),
    "an unreadable setting": (
        ["""UPDATE workspace_info SET value = '{oops' WHERE key = 'setting.index'"""],
        "setting 'index': its stored value is not JSON: edited behind Nomina's back",
    ),
    "a deleted reference": (
        ["DELETE FROM \"references\" WHERE id = 'MP-011'"],
        "reference MP-011: gone, but seq .* recorded it and no erasure followed: removed behind Nomina's back",
    ),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_record_is_named_by_audit_verify(identified, capsys, edit):
    import re

    statements, finding = EDITS[edit]
    tamper(identified, *statements)
    code, out = verify(capsys, identified)
    assert code == 1, out
    assert "audit trail intact" in out  # the chain itself is untouched: the record is what changed
    assert re.search(rf"^{finding}", out, re.MULTILINE), out
    data = verify_json(capsys, identified)
    # A row deleted without its dependent rows (SQLite's command line does not cascade) also leaves those
    # rows referring to nothing, which is a finding of its own; an embedding no model makes is one too (the
    # gallery index refuses to read it).
    named = [r for r in data["records"] if "names no row of" not in r and "is not a vector of finite numbers" not in r]
    assert not data["ok"] and data["broken_seq"] is None and len(named) == 1, data["records"]


def test_an_inserted_identification_without_verification_is_caught_and_not_exported(casework, capsys, tmp_path):
    ws = casework
    tamper(
        ws,
        "INSERT INTO identifications (case_id, reference_id, search_id, proposed_by, proposed_at, reasons, status) "
        "VALUES ('UP-1', 'MP-011', 1, 'ana', '2026-12-01 00:00:00', 'trust me', 'identified')",
    )
    out = tmp_path / "export.json"
    code, _, err = cli(capsys, ws, USER, "export", "identifications", "--out", str(out))
    assert code == 1
    assert_one_error_line(err, r"^error: case UP-1: changed behind Nomina's back since seq \d+ \(case.create\)")
    assert "nothing exported" in err and "nomina audit verify" in err
    assert not out.exists()
    code, printed = verify(capsys, ws)
    assert code == 1 and "case UP-1: changed behind Nomina's back" in printed


def test_a_report_refuses_a_record_that_disagrees_with_the_trail(identified, capsys, tmp_path):
    tamper(identified, "UPDATE candidates SET score = 0.999 WHERE search_id = 1 AND rank = 1")
    out = tmp_path / "UP-1.html"
    code, _, err = cli(capsys, identified, USER, "report", "UP-1", "--out", str(out))
    assert code == 1
    assert_one_error_line(err, r"search 1: changed behind Nomina's back since seq \d+ .*report not written")
    assert not out.exists()


def test_an_untouched_workspace_is_exported(identified, capsys, tmp_path):
    out = tmp_path / "export.json"
    code, _, err = cli(capsys, identified, USER, "export", "identifications", "--out", str(out))
    assert code == 0, err
    assert [r["case_id"] for r in json.loads(out.read_text())["identifications"]] == ["UP-1"]


def test_a_later_change_does_not_take_in_an_earlier_edit(identified, capsys):
    """An edit followed by a legitimate change of the same record stays visible: the change records the
    record as it found it, which is not as the trail last left it."""
    tamper(identified, "UPDATE conclusions SET conclusion = 'excluded'")
    args = ("search", "conclude", "1", "--rank", "2", "--conclusion", "excluded", "--reasons", "other ears")
    assert cli(capsys, identified, USER, *args)[0] == 0
    code, out = verify(capsys, identified)
    assert code == 1
    assert "search 1: changed behind Nomina's back between seq" in out and "(conclusion.record)" in out


def test_an_import_batch_does_not_take_in_an_earlier_edit(identified, capsys, tmp_path, faces_dir):
    """An import reads the records it will change once for the whole batch, inside its write transaction:
    a record edited before the import still shows as edited, and the batch's other records stay sound."""
    tamper(
        identified,
        "UPDATE faces SET sharpness = 1 WHERE reference_photo_id IN "
        "(SELECT id FROM reference_photos WHERE reference_id = 'MP-011')",
    )
    rows = [("MP-013", "013", "Person 013"), ("MP-011", "011", "Person 011"), ("MP-020", "020", "Person 020")]
    manifest = tmp_path / "more.csv"
    manifest.write_text(
        "reference_id,photo,name,source,supplied_by,legal_basis\n"
        + "".join(
            f"{ref},{london(faces_dir, i, 'smiling')},{name},family,a brother,family request\n" for ref, i, name in rows
        )  # fmt: skip
    )
    code, _, err = cli(capsys, identified, USER, "reference", "import", str(manifest))
    assert code == 0, err
    data = verify_json(capsys, identified)
    assert not data["ok"]
    assert len(data["records"]) == 1 and data["records"][0].startswith("reference MP-011: changed behind Nomina's back")


def test_viewing_an_edited_record_does_not_vouch_for_it(identified, capsys):
    tamper(identified, "UPDATE candidates SET score = 0.5 WHERE search_id = 1 AND rank = 3")
    assert cli(capsys, identified, USER, "search", "show", "1")[0] == 0
    assert cli(capsys, identified, USER, "case", "show", "UP-1")[0] == 0
    assert "search 1: changed behind Nomina's back since seq" in verify(capsys, identified)[1]


def test_an_erased_case_takes_its_searches_and_the_trail_agrees(identified, capsys):
    assert cli(capsys, identified, USER, "case", "delete", "UP-1", "--reason", "entered twice")[0] == 0
    assert cli(capsys, identified, USER, "reference", "delete", "MP-011", "--reason", "consent withdrawn")[0] == 0
    data = verify_json(capsys, identified)
    assert data["ok"], data["records"]


@pytest.mark.parametrize("reused", [False, True])
def test_a_search_after_an_erasure_of_the_newest_search_keeps_the_trail_sound(
    identified, capsys, faces_dir, monkeypatch, reused
):
    """SQLite gives a new row the largest id plus one: the erased case's search id went to the next search.
    Search ids are no longer given twice; a trail in which one was (a workspace from before) still verifies."""
    from nomina import search

    assert cli(capsys, identified, USER, "case", "delete", "UP-1", "--reason", "entered twice")[0] == 0
    if reused:  # as Nomina did before
        monkeypatch.setattr(search, "_new_id", lambda s: 1)
    assert cli(capsys, identified, USER, "case", "add", "UP-2", london(faces_dir, "013", "smiling"))[0] == 0
    found = as_json(capsys, identified, USER, "search", "UP-2")
    assert found["search_id"] == (1 if reused else 2)
    data = verify_json(capsys, identified)
    assert data["ok"], data["records"]


def _rotate_references(folder: Path) -> None:
    meta = folder / "meta.json"
    data = json.loads(meta.read_text())
    data["references"] = data["references"][1:] + data["references"][:1]  # each face now names another reference
    meta.write_text(json.dumps(data))


def _one_vector_for_all(folder: Path) -> None:
    vectors = np.load(folder / "vectors.npy", mmap_mode="r+")
    vectors[:] = vectors[-1]  # every reference face scores as the last one: the others' scores are not theirs
    vectors.flush()


@pytest.mark.slow  # about a second or more
@pytest.mark.parametrize("edit", [_rotate_references, _one_vector_for_all])
def test_a_search_refuses_candidates_that_the_database_does_not_bear_out(casework, capsys, edit):
    """The gallery index's snapshot files are outside the records the trail accounts for: a candidate the
    database does not bear out is refused, nothing is recorded, and `nomina maintain` rebuilds the index."""
    assert cli(capsys, casework, USER, "maintain")[0] == 0  # a snapshot of the whole gallery
    folder = casework / "index" / "gallery"
    assert json.loads((folder / "meta.json").read_text())["rows"] == 3
    edit(folder)
    before = as_json(capsys, casework, USER, "search", "list")
    code, _, err = cli(capsys, casework, USER, "search", "UP-1")
    assert code == 1
    assert_one_error_line(
        err,
        r"^error: gallery index: (face \d+ is not a face of reference|reference MP-\d+'s score)"
        r".*maintenance rebuilds",
    )
    assert as_json(capsys, casework, USER, "search", "list") == before
    code, out = verify(capsys, casework)
    assert code == 1 and "gallery index: " in out and "its files were changed or damaged" in out, out
    assert cli(capsys, casework, USER, "maintain")[0] == 0
    found = as_json(capsys, casework, USER, "search", "UP-1")
    assert found["candidates"][0]["reference_id"] == "MP-012" and found["candidates"][0]["score"] < 0.99


def test_audit_verify_finds_a_face_hidden_from_the_gallery_index(casework, capsys):
    """A face removed from the snapshot files would never be a candidate, so no search sees it; audit verify
    compares the whole snapshot with the database."""
    assert cli(capsys, casework, USER, "maintain")[0] == 0
    assert verify(capsys, casework)[0] == 0
    folder = casework / "index" / "gallery"
    face_ids = np.load(folder / "face_ids.npy", mmap_mode="r+")
    hidden = int(face_ids[0])
    face_ids[0] = -1
    face_ids.flush()
    code, out = verify(capsys, casework)
    assert code == 1 and f"gallery index: 1 face(s) missing in its snapshot (face {hidden})" in out, out
    assert cli(capsys, casework, USER, "maintain")[0] == 0
    assert verify(capsys, casework)[0] == 0


@pytest.mark.slow  # about a second or more
def test_a_row_written_into_the_gallery_log_to_hide_a_reference_is_found(casework, capsys):
    """Every process applies the gallery log to its index: one row logging MP-012's face as removed hid the
    true match from every search, and the searches recorded it, while audit verify passed."""
    assert cli(capsys, casework, USER, "maintain")[0] == 0
    assert as_json(capsys, casework, USER, "search", "UP-1")["candidates"][0]["reference_id"] == "MP-012"
    with raw_database(casework) as con:
        [(face,)] = con.execute(
            "SELECT f.id FROM faces f JOIN reference_photos rp ON f.reference_photo_id = rp.id "
            "WHERE rp.reference_id = 'MP-012'"
        ).fetchall()
    tamper(casework, ("INSERT INTO gallery_changes (face_id, added) VALUES (?, ?)", (face, False)))
    ranked = [c["reference_id"] for c in as_json(capsys, casework, USER, "search", "UP-1")["candidates"]]
    assert "MP-012" not in ranked  # what the row does
    code, out = verify(capsys, casework)
    assert (
        code == 1
        and f"gallery log: 1 face(s) logged as removed, yet a reference face (hidden from searches) (face {face})"
        in out
    ), out


def test_a_gallery_log_row_naming_no_face_is_found_and_stops_nothing(casework, capsys):
    """SQLite keeps text in an INTEGER column: such a row in the gallery log made every search, erasure and
    opening end in a traceback, and an erasure could never finish its file steps."""
    if not isinstance(database_of(casework), Path):
        pytest.skip("PostgreSQL refuses text in an integer column")
    tamper(casework, "INSERT INTO gallery_changes (face_id, added) VALUES ('abc', 0)")
    assert as_json(capsys, casework, USER, "search", "UP-1")["candidates"][0]["reference_id"] == "MP-012"
    code, _, err = cli(capsys, casework, USER, "reference", "delete", "MP-011", "--reason", "entered twice")
    assert code == 0 and "warning" not in err, err
    with raw_database(casework) as con:
        assert con.execute("SELECT COUNT(*) FROM pending_erasures").fetchone()[0] == 0  # the file steps ran
    code, out = verify(capsys, casework)
    assert code == 1 and re.search(r"gallery log: 1 row\(s\) naming no face \(seq \d+\)", out), out


def test_a_journal_row_written_to_have_a_photo_destroyed_destroys_nothing_and_a_missing_file_is_found(casework, capsys):
    """Someone with the database alone journals a live photo for the erasure's file step (its photos row
    deleted for the moment, the links left): the next opening must not destroy the evidence; and a photo
    file removed behind Nomina's back is named by audit verify."""
    with raw_database(casework) as con:
        [(sha,)] = con.execute("SELECT photo_sha256 FROM reference_photos WHERE reference_id = 'MP-012'").fetchall()
        row = con.execute("SELECT * FROM photos WHERE sha256 = ?", (sha,)).fetchall()[0]
    [stored] = (casework / "photos").rglob(f"{sha}*")
    kept = stored.read_bytes()
    unchecked = (
        "PRAGMA foreign_keys = OFF"
        if isinstance(database_of(casework), Path)
        else (
            "SET session_replication_role = replica"  # the foreign keys are not checked: as the tables' owner can
        )
    )
    tamper(
        casework,
        unchecked,
        ("DELETE FROM photos WHERE sha256 = ?", (sha,)),
        ("INSERT INTO pending_erasures (step, photo_sha256) VALUES ('photo', ?)", (sha,)),
    )
    assert cli(capsys, casework, USER, "case", "list")[0] == 0  # an opening does the journalled file steps
    assert stored.read_bytes() == kept
    placeholders = ", ".join("?" * len(row))
    tamper(casework, ("INSERT INTO photos VALUES (" + placeholders + ")", tuple(row)))
    stored.unlink()
    code, out = verify(capsys, casework)
    assert code == 1 and f"photo store: 1 photo file(s) missing (photo {sha[:12]})" in out, out


def test_a_disagreement_an_erasure_clears_a_moment_later_is_no_finding(casework, monkeypatch):
    """An erasure that commits after audit verify's snapshot scrubs the index files before verify reads them:
    the face is in the snapshot's database and no longer in the files. Verify looks again in a new snapshot
    before reporting (the race itself cannot be timed in a test: the first look is made to disagree)."""
    from nomina.indexing import GalleryKeeper

    real, looks = GalleryKeeper.disagreements, []

    def first_disagrees(self: GalleryKeeper, s: Any) -> list[str]:
        looks.append(s)
        found = real(self, s)
        return found if len(looks) > 1 else [*found, "gallery index: 1 face(s) missing in its snapshot (face 1)"]

    monkeypatch.setattr(GalleryKeeper, "disagreements", first_disagrees)
    with Workspace.open(casework, user=USER) as ws:
        result = ws.audit_verify()
    assert result.ok, result.records
    assert len(looks) == 2 and looks[0] is not looks[1]  # a new snapshot, not the same one again


def test_an_embedding_of_the_wrong_length_is_named_not_a_crash(casework, capsys):
    tamper(
        casework,
        (
            "UPDATE faces SET embedding = ? WHERE reference_photo_id IN "
            "(SELECT id FROM reference_photos WHERE reference_id = 'MP-013')",
            (b"\x00\x01\x02",),
        ),
    )
    code, _, err = cli(capsys, casework, USER, "search", "UP-1")
    assert code == 1
    assert_one_error_line(err, r"^error: face \d+ of reference MP-013: its embedding has 3 bytes, not 512: changed")
    data = verify_json(capsys, casework)
    assert not data["ok"] and any(r.startswith("reference MP-013: changed behind") for r in data["records"])


# Values no column of Nomina's ever holds: (column, the statement that writes it, the command that reads it).
# PostgreSQL refuses text in a number or date column and JSON that does not parse; SQLite keeps them all.
_ANY_ENGINE = [
    ("users.roles", "UPDATE users SET roles = '5' WHERE name = 'ben'", ("user", "list")),
    ("users.roles", "UPDATE users SET roles = '[\"admin\", 3]' WHERE name = 'ben'", ("user", "list")),
    ("faces.landmarks", "UPDATE faces SET landmarks = '{}'", ("case", "show", "UP-1")),
]
_SQLITE = [
    ("users.roles", "UPDATE users SET roles = '[\"admin\"' WHERE name = 'ben'", ("user", "list")),
    ("candidates.score", "UPDATE candidates SET score = 'abc' WHERE rank = 1", ("search", "show", "1")),
    ("candidates.rank", "UPDATE candidates SET rank = 'zz' WHERE rank = 2", ("search", "show", "1")),
    ("users.active", "UPDATE users SET active = 'no' WHERE name = 'ben'", ("user", "list")),
    ("cases.found_on", "UPDATE cases SET found_on = 'last tuesday'", ("case", "show", "UP-1")),
    ("searches.created_at", "UPDATE searches SET created_at = 12", ("search", "show", "1")),
]


@pytest.mark.parametrize(
    ("column", "statement", "command"),
    _ANY_ENGINE + [pytest.param(*case, marks=sqlite_only("the column's type refuses the value")) for case in _SQLITE],
)
def test_a_value_no_column_holds_is_one_line_naming_the_column_not_a_crash(
    identified, capsys, column, statement, command
):
    tamper(identified, statement)
    code, _, err = cli(capsys, identified, USER, *command)
    assert code == 1
    assert_one_error_line(err, rf"^error: {re.escape(column)}: the database holds .*, which Nomina never writes there")
    data = verify_json(capsys, identified)  # the trail's check still runs, and names the record
    assert not data["ok"] and data["records"], data


def test_an_event_whose_details_do_not_parse_is_listed_as_unreadable_and_breaks_the_chain(identified, capsys):
    with raw_database(identified) as db:
        drop_trigger(db, "audit_events", "audit_events_no_update")
        db.execute("UPDATE audit_events SET details = '{not json' WHERE seq = 3")
    code, out, err = cli(capsys, identified, USER, "audit", "log", "--json")
    assert code == 0, err
    assert next(e for e in json.loads(out) if e["seq"] == 3)["details"] == {"unreadable": "'{not json'"}
    code, printed = verify(capsys, identified)
    assert code == 1 and "audit trail broken at seq 3" in printed, printed


_COLUMNS = [(table.name, column.name) for table in db_schema.Base.metadata.sorted_tables for column in table.columns]


@pytest.mark.slow
@sqlite_only("PostgreSQL's column types refuse most of these values")
@pytest.mark.parametrize("value", ["[1", 7])
@pytest.mark.parametrize(("table", "column"), _COLUMNS)
def test_no_value_edited_into_any_column_ends_a_read_in_a_traceback(identified, table, column, value):
    """Each column of the newest row of each table in turn holds text that is not JSON, or a number: every
    read either works or refuses in Nomina's own terms (an error with one line, naming what is wrong)."""
    with raw_database(identified) as con:
        for (trigger,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)
        ).fetchall():
            con.execute(f'DROP TRIGGER "{trigger}"')
        try:
            con.execute(
                f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = (SELECT max(rowid) FROM "{table}")', (value,)
            )
        except sqlite3.Error:
            return  # the database itself refuses it (a constraint): nothing to read
    with Workspace.open(identified, user=USER) as ws:
        reads: list[Callable[[], Any]] = [
            ws.audit_verify,
            ws.info,
            ws.references,
            ws.cases,
            ws.users,
            ws.audit_log,
            lambda: ws.get_search(1),
            lambda: ws.case("UP-1"),
            lambda: ws.search("UP-1"),
        ]
        for read in reads:
            try:
                read()
            except NominaError as exc:
                assert "\n" not in str(exc), str(exc)


def _unchecked(db: Any) -> None:
    """Let a :func:`raw_database` connection write rows that refer to nothing, as the database's owner can:
    SQLite checks references only when asked; PostgreSQL's owner turns the checks off for the session."""
    if not isinstance(db, sqlite3.Connection):
        db.execute("SET session_replication_role = replica")


@pytest.mark.parametrize("user_row", [False, True], ids=["alone", "with-user-row"])
@pytest.mark.parametrize("kind", ["token", "session"])
def test_a_credential_under_a_lookalike_of_a_user_name_acts_for_nobody_and_is_caught(
    identified, capsys, kind, user_row
):
    """A token or session written for "ben " (names typed by people are trimmed) must not act as ben, even
    with a user row "ben " written beside it, and its record, which belongs to no user, is named by audit
    verify."""
    secret = ("nmt_" if kind == "token" else "nms_") + "forged" * 7
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")  # fresh: a session idle too long ends before any user check
    table, columns, values = {
        "token": ("api_tokens", "label, created_at", f"'x', '{made}'"),
        "session": (
            "login_sessions",
            "kind, created_at, expires_at, idle_minutes",
            f"'cli', '{made}', '2099-01-01 00:00:00', 1440",
        ),
    }[kind]
    with raw_database(identified) as db:
        _unchecked(db)
        db.execute(
            f'INSERT INTO {table} ("user", secret_sha256, {columns}) VALUES (?, ?, {values})',
            ("ben ", hashlib.sha256(secret.encode()).hexdigest()),
        )
        if user_row:  # ben's row copied under "ben ", with the examiner role ben lacks
            cursor = db.execute("SELECT * FROM users WHERE name = 'ben'")
            columns = [c[0] for c in cursor.description]
            row = dict(zip(columns, cursor.fetchone(), strict=True))
            row.update(name="ben ", roles='["examiner", "verifier"]')
            names = ", ".join(f'"{c}"' for c in columns)
            db.execute(f"INSERT INTO users ({names}) VALUES ({', '.join('?' * len(columns))})", tuple(row.values()))
    with Workspace.open(identified) as ws, pytest.raises(NotLoggedIn, match="belongs to no user"):
        ws.with_credential(secret)
    data = verify_json(capsys, identified)
    assert not data["ok"] and data["broken_seq"] is None
    assert any(r.startswith("user 'ben ': no event records it: added behind Nomina's back") for r in data["records"])


def test_a_row_that_refers_to_nothing_is_caught(identified, capsys):
    """An identification of a case that does not exist belongs to no record, so no digest shows it; the
    reference it makes to nothing does."""
    with raw_database(identified) as db:
        _unchecked(db)
        db.execute(
            "INSERT INTO identifications (case_id, reference_id, search_id, proposed_by, proposed_at, reasons, "
            "status) VALUES ('UP-404', 'MP-011', 1, 'ana', '2026-12-01 00:00:00', 'trust me', 'identified')"
        )
    data = verify_json(capsys, identified)
    assert not data["ok"] and data["broken_seq"] is None
    assert data["records"] == [
        "identifications: 1 row(s) whose case_id names no row of cases: written behind Nomina's back"
    ]


def test_a_record_re_added_after_its_erasure_is_caught(identified, capsys):
    assert cli(capsys, identified, USER, "reference", "delete", "MP-011", "--reason", "consent withdrawn")[0] == 0
    tamper(
        identified,
        'INSERT INTO "references" (id, name, created_at, updated_at) '
        "VALUES ('MP-011', 'Person 011', '2026-12-01 00:00:00', '2026-12-01 00:00:00')",
    )
    assert "reference MP-011: present, but seq" in verify(capsys, identified)[1]


def test_a_replaced_digest_key_is_caught(identified, capsys):
    tamper(identified, f"UPDATE workspace_info SET value = '{'ab' * 32}' WHERE key = 'record_digest_key'")
    data = verify_json(capsys, identified)
    assert not data["ok"]
    assert data["records"] == [
        "the record digest key in workspace_info is not the one seq 1 used: replaced or edited; "
        "the records cannot be checked"
    ]


# -- a workspace from before record digests ------------------------------------------------------------
def test_a_setting_changed_between_two_changes_is_caught_after_the_second(identified, capsys):
    """An insider lowers the quality gate, enrols what it lets in, and puts it back with `nomina config`: the
    stored value then agrees with the trail again, but the second change found what the first did not leave."""
    tamper(identified, """UPDATE workspace_info SET value = '"off"' WHERE key = 'setting.quality_gate'""")
    with Workspace.open(identified, user="ana") as ws:
        ws.set_config("quality_gate", "standard")
    code, out = verify(capsys, identified)
    assert code == 1, out
    assert re.search(
        r"^setting 'quality_gate': changed behind Nomina's back between seq \d+ and seq \d+ "
        r"\(left 'standard', found 'off'\)",
        out,
        re.MULTILINE,
    ), out


@pytest.mark.slow  # about a second or more
@pytest.mark.parametrize(
    "stored", ["{oops", '"bogus"', "NaN", "[1, 2]", json.dumps("x" * 100_000), "[" * 100_000 + "]" * 100_000, "blob"]
)
def test_a_damaged_setting_is_refused_in_one_line_and_an_admin_sets_it_again(identified, capsys, faces_dir, stored):
    """A setting written behind Nomina's back as something it cannot be is not guessed at: whatever needs it
    stops with one line naming it, and `nomina config` (which must still work) sets it again."""
    if stored == "blob":  # bytes in the text column: SQLite keeps them as given
        if current_engine() != "sqlite":
            pytest.skip("sqlite only: PostgreSQL refuses bytes in a text column")
        edit: Any = "UPDATE workspace_info SET value = CAST('garbage' AS BLOB) WHERE key = 'setting.quality_gate'"
    else:
        edit = ("UPDATE workspace_info SET value = ? WHERE key = 'setting.quality_gate'", (stored,))
    tamper(identified, edit)
    add = ("reference", "add", "MP-099", str(london(faces_dir, "099")), "--name", "Z", "--source", "family",
           "--supplied-by", "a", "--legal-basis", "consent")  # fmt: skip
    for args in (add, ("config",), ("search", "UP-1")):
        code, _, err = cli(capsys, identified, USER, *args)
        assert code == 1
        assert_one_error_line(
            err, r"workspace setting quality_gate: the stored value .* is not valid: .*`nomina config NAME VALUE`"
        )
    code, out = verify(capsys, identified)  # names it, in a line of its own
    assert code == 1 and "setting 'quality_gate': " in out and "Traceback" not in out, out
    assert max(len(line) for line in out.splitlines()) < 400
    code, _, err = cli(capsys, identified, USER, "config", "quality_gate", "strict")
    assert code == 0, err
    code, out = verify(capsys, identified)
    assert code == 1 and "setting 'quality_gate': changed behind Nomina's back between seq" in out, out
    assert max(len(line) for line in out.splitlines()) < 400  # a long value is cut
    assert cli(capsys, identified, USER, *add)[0] == 0


def test_a_workspace_made_before_its_first_settings_were_recorded_verifies_and_is_checked_from_its_next_change(
    identified, capsys
):
    """An older Nomina wrote a new workspace's settings without events: those rows are no finding, a row
    added behind Nomina's back there is not found either (docs/audit.md says so), and a setting changed
    through Nomina is compared from then on."""
    rewrite_chain(identified, drop=lambda e: e["action"] == "setting.change" and e["details"].get("initial"))
    assert verify(capsys, identified)[0] == 0
    with Workspace.open(identified, user="ana") as ws:
        ws.set_config("retention_years", 30)
    assert verify(capsys, identified)[0] == 0
    tamper(identified, """UPDATE workspace_info SET value = '5' WHERE key = 'setting.retention_years'""")
    code, out = verify(capsys, identified)
    assert code == 1 and "setting 'retention_years': 5, but seq" in out, out


#: The calibration the calibration tests add: LRs from 1/13 to 13 (log10 bounds of 1.11).
FITTED = calibration.fit([0.6, 0.7, 0.8, 0.9] * 3, [0.1, 0.2, 0.3, 0.4] * 3)
#: The same calibration with its intercept raised: every likelihood ratio it gives a hundred times stronger.
STRONGER = {**FITTED.to_dict(), "params": {**FITTED.params, "a": FITTED.params["a"] + math.log(100)}}
ANOTHER_ROW = (
    "INSERT INTO calibrations (id, model, mapping, created_at, created_by) SELECT 2, model, mapping, created_at, "
    "'ana' FROM calibrations WHERE id = 1"
)


def _calibrated(ws_path: Path) -> Workspace:
    ws = Workspace.open(ws_path, user="ana")
    ws.add_calibration(replace(FITTED, data={"model": ws.model_identity}))
    return ws


@pytest.mark.parametrize(
    ("edit", "finding"),
    [
        (
            ("UPDATE calibrations SET mapping = ? WHERE id = 1", (json.dumps(STRONGER),)),
            "calibration 1: changed behind Nomina's back since seq",
        ),
        ("DELETE FROM calibrations WHERE id = 1", "calibration 1: gone, but seq .* removed behind Nomina's back"),
    ],
    ids=["stronger", "deleted"],
)
def test_an_edited_or_deleted_calibration_is_caught_and_not_used(identified, capsys, edit, finding):
    """The calibration in use puts its likelihood ratios into every search and report: one edited or written
    behind Nomina's back is named by verify, and searches and compare refuse to use it."""
    with _calibrated(identified) as ws:
        assert ws.calibration() is not None
        searched = ws.search("UP-1").search_id
        assert ws.get_search(searched).calibration is not None
    assert verify(capsys, identified)[0] == 0
    tamper(identified, edit)
    code, out = verify(capsys, identified)
    assert code == 1 and re.search(rf"^{finding}", out, re.MULTILINE), out
    with Workspace.open(identified, user="ana") as ws:
        with pytest.raises(RecordTampered, match=r"calibration not used: run nomina audit verify"):
            ws.search("UP-1")
        with pytest.raises(RecordTampered):
            ws.calibration()
        # the searches made with it are not shown, nor reported, with likelihood ratios of an edited calibration
        with pytest.raises(RecordTampered):
            ws.get_search(searched)


@pytest.mark.parametrize("number", [2, 1000, "largest"])
def test_a_calibration_row_added_behind_nominas_back_is_never_used(identified, capsys, number):
    """The calibration in use is the one the trail added last, not the highest id: a row written behind
    Nomina's back (a higher id, even the largest SQLite gives) is named by verify and never used, and the
    next calibration added through Nomina is used, whatever id the database gave it."""
    if number == "largest":  # the largest id the column holds: SQLite then picks the next ids at random
        number = 2**63 - 1 if current_engine() == "sqlite" else 2**31 - 1
    with _calibrated(identified):
        pass
    tamper(identified, ANOTHER_ROW.replace("SELECT 2,", f"SELECT {number},"))
    assert f"calibration {number}: no event records it" in verify(capsys, identified)[1]
    with Workspace.open(identified, user="ana") as ws:
        assert ws.calibration()[0] == 1  # type: ignore[index]
        assert ws.search("UP-1").calibration["id"] == 1  # type: ignore[index]
        fitted = replace(FITTED, data={"model": ws.model_identity})
        try:
            added = ws.add_calibration(fitted).id
        except Conflict:  # PostgreSQL's sequence gave the inserted row's id; it moves on, and again works
            assert current_engine() == "postgresql" and number == 2
            added = ws.add_calibration(fitted).id
        assert added != number and ws.calibration()[0] == added  # type: ignore[index]
        assert ws.search("UP-1").calibration["id"] == added  # type: ignore[index]


def test_a_calibration_added_before_calibrations_had_digests_is_accounted_for_by_its_event(identified, capsys):
    """A workspace whose calibration.add event holds no digest (an earlier Nomina's) verifies, and its
    calibration is used; a calibration row that no event names at all is still caught."""
    with _calibrated(identified):
        pass

    def undigested(event: dict[str, Any]) -> None:
        context = event["details"].get("context", {})
        if event["action"] == "calibration.add":
            context.pop("records")
            context.pop("key")

    rewrite_chain(identified, undigested)
    assert verify(capsys, identified)[0] == 0
    with Workspace.open(identified, user="ana") as ws:
        assert ws.calibration() is not None
    tamper(identified, ANOTHER_ROW)
    assert "calibration 2: no event records it: added behind Nomina's back" in verify(capsys, identified)[1]


def test_a_trail_from_before_record_digests_gets_one_baseline(casework, capsys):
    ws = casework

    def strip(event: dict[str, Any]) -> None:  # as written by a Nomina without contexts
        event["details"].pop("context", None)

    rewrite_chain(ws, strip)
    tamper(ws, "DELETE FROM workspace_info WHERE key = 'record_digest_key'")
    data = verify_json(capsys, ws)
    assert (data["ok"], data["records_checked"]) == (True, 0)  # nothing to compare with yet
    events = data["events"]  # verify records itself: the first event with a context, so a baseline first

    trail = as_json(capsys, ws, USER, "audit", "log")
    assert [e["action"] for e in trail[events:]][:2] == ["audit.baseline", "audit.verify"]
    assert trail[events]["details"] == {"records": 3 + 1 + 1 + 4}
    data = verify_json(capsys, ws)
    assert data["ok"] and data["records_checked"] == 9, data
    tamper(ws, "UPDATE candidates SET score = 0.5 WHERE search_id = 1 AND rank = 2")
    assert "search 1: changed behind Nomina's back since seq" in verify(capsys, ws)[1]


# -- who, and where ------------------------------------------------------------------------------------
def test_every_event_names_the_os_user_and_the_host_under_the_hash(identified, capsys):
    trail = as_json(capsys, identified, USER, "audit", "log")
    assert trail and all((e["os_user"], e["host"]) == (getpass.getuser(), socket.gethostname()) for e in trail)
    assert {e["actor"] for e in trail} >= {USER, "ben"}  # the Nomina user, as before
    with raw_database(identified) as db:
        details = [json.loads(r[0]) for r in db.execute("SELECT details FROM audit_events").fetchall()]
    assert all(d["context"]["os_user"] == getpass.getuser() for d in details)  # hashed with the event
    assert all("context" not in e["details"] for e in trail)  # shown apart from the event's own details
    code, out, _ = cli(capsys, identified, USER, "audit", "log", "--limit", "1")
    assert f"({getpass.getuser()}@{socket.gethostname()}, token " in out  # and how ana proved who she is


def test_a_blind_verifier_does_not_see_who_concluded_on_the_hidden_events(casework, capsys):
    propose(capsys, casework)
    trail = as_json(capsys, casework, "ben", "audit", "log", "--case", "UP-1")
    hidden = [e for e in trail if e["action"] == "identification.propose"]
    assert hidden and all(e["os_user"] is None and e["host"] is None for e in hidden)


# -- signed checkpoints --------------------------------------------------------------------------------
@pytest.fixture()
def keys(tmp_path: Path, capsys) -> tuple[Path, Path]:
    """The authority's key pair, made with `audit keygen` outside the workspace."""
    code, out, err = run(capsys, "audit", "keygen", "--out", tmp_path / "authority")
    assert code == 0, err
    private, public = tmp_path / "authority.key", tmp_path / "authority.pub"
    assert private.stat().st_mode & 0o077 == 0  # the private key is its owner's alone
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    return private, public


def checkpoint(capsys, ws: Path, private: Path, out: Path) -> dict[str, Any]:
    code, printed, err = run(capsys, "audit", "checkpoint", "--key", private, "--out", out, "-w", ws)
    assert code == 0, err
    assert printed.startswith(f"Wrote {out}: checkpoint of seq ")
    return json.loads(out.read_text())


def verify_against(capsys, ws: Path, cp: Path, public: Path) -> tuple[int, str, str]:
    return run(capsys, "audit", "verify", "--checkpoint", cp, "--public-key", public, "-w", ws)


@pytest.mark.slow  # about a second or more
def test_a_checkpoint_signs_the_head_and_the_records_and_later_changes_still_lead_to_it(
    identified, capsys, keys, tmp_path
):
    private, public = keys
    cp = tmp_path / "checkpoint.json"
    signed = checkpoint(capsys, identified, private, cp)
    assert signed["format"] == "nomina-audit-checkpoint/1" and len(signed["records"]) == 9
    assert "search 1" in signed["records"] and signed["public_key"].startswith("ed25519:")
    trail = as_json(capsys, identified, USER, "audit", "log")
    written = [e for e in trail if e["action"] == "audit.checkpoint"]
    assert written and written[-1]["details"]["seq"] == signed["head"]["seq"]
    # Work goes on through Nomina: a conclusion changes search 1, a new reference is added.
    args = ("search", "conclude", "1", "--rank", "2", "--conclusion", "excluded", "--reasons", "other ears")
    assert cli(capsys, identified, USER, *args)[0] == 0
    assert cli(capsys, identified, USER, "user", "add", "eve", "--role", "verifier")[0] == 0
    code, out, err = verify_against(capsys, identified, cp, public)
    assert code == 0, out + err
    assert f"checkpoint of seq {signed['head']['seq']}" in out and "the trail still leads to it" in out
    data = json.loads(run(capsys, "audit", "verify", "--json", "--checkpoint", cp, "--public-key", public, "-w",
                          identified)[1])  # fmt: skip
    assert data["ok"] and data["checkpoint"]["ok"] and data["checkpoint"]["findings"] == []


def test_a_checkpoint_covers_calibrations_and_one_written_before_them_still_verifies(
    identified, capsys, keys, tmp_path
):
    """A checkpoint signs the calibrations (and says which kinds of record it covers); one written by a
    Nomina before calibrations were records (no ``kinds``, no calibration) still verifies against the same
    trail, and leaves the calibration to audit verify, which still names an edit of it."""
    from nomina import checkpoints

    private, public = keys
    with _calibrated(identified):
        pass
    cp = tmp_path / "checkpoint.json"
    signed = checkpoint(capsys, identified, private, cp)
    assert signed["kinds"] == ["case", "reference", "search", "user", "calibration"]
    assert "calibration 1" in signed["records"] and len(signed["records"]) == 10
    older = {k: v for k, v in signed.items() if k not in ("kinds", "signature")}
    older["records"] = {k: v for k, v in signed["records"].items() if not k.startswith("calibration ")}
    older["signature"] = base64.b64encode(checkpoints.private_key(private).sign(checkpoints._canonical(older))).decode()
    old_cp = tmp_path / "older.json"
    old_cp.write_text(json.dumps(older))
    for which in (cp, old_cp):
        code, out, err = verify_against(capsys, identified, which, public)
        assert code == 0, out + err
    tamper(identified, ("UPDATE calibrations SET mapping = ? WHERE id = 1", (json.dumps(STRONGER),)))
    code, out, _ = verify_against(capsys, identified, cp, public)
    assert code == 1 and "calibration 1: differs from the checkpoint, and no later event changed it" in out, out
    code, out, _ = verify_against(capsys, identified, old_cp, public)
    assert code == 1 and "calibration 1: changed behind Nomina's back since seq" in out, out
    assert "differs from the checkpoint" not in out, out


def test_a_whole_chain_rewrite_passes_the_bare_check_but_not_the_checkpoint(identified, capsys, keys, tmp_path):
    from sqlalchemy.orm import Session

    from nomina import digests
    from nomina.store import connect

    private, public = keys
    cp = tmp_path / "checkpoint.json"
    checkpoint(capsys, identified, private, cp)
    # The attacker changes a score, then rewrites the record's digest in its newest event and every hash
    # after it, head included: everything the database itself holds agrees again.
    tamper(identified, "UPDATE candidates SET score = 0.999 WHERE search_id = 1 AND rank = 3")
    engine = connect(database_of(identified))
    with Session(engine) as s:
        secret = digests.key(s)
        assert secret is not None
        forged = digests.digests(s, secret, ["search 1"])["search 1"]
    engine.dispose()
    with raw_database(identified) as db:
        newest = max(
            seq
            for seq, details in db.execute("SELECT seq, details FROM audit_events").fetchall()
            if "search 1" in json.loads(details).get("context", {}).get("records", {})
        )

    def forge(event: dict[str, Any]) -> None:
        if event["seq"] == newest:
            event["details"]["context"]["records"]["search 1"][1] = forged

    rewrite_chain(identified, forge)
    code, out = verify(capsys, identified)
    assert code == 0 and "audit trail intact" in out, out  # the bare chain and the records agree

    code, out, err = verify_against(capsys, identified, cp, public)
    assert code == 1
    assert "the trail no longer leads to the checkpoint's head; it was rewritten" in out, out + err


def test_a_record_edited_after_a_checkpoint_is_named_against_it(identified, capsys, keys, tmp_path):
    private, public = keys
    cp = tmp_path / "checkpoint.json"
    checkpoint(capsys, identified, private, cp)
    tamper(identified, "UPDATE verifications SET verifier = 'cy'")
    code, out, _ = verify_against(capsys, identified, cp, public)
    assert code == 1
    assert "case UP-1: changed behind Nomina's back since seq" in out  # from the trail
    assert "case UP-1: differs from the checkpoint, and no later event changed it" in out  # from the checkpoint


@pytest.mark.parametrize("what", ["another key", "an edited checkpoint", "a private key as the public key"])
def test_a_checkpoint_that_does_not_verify_with_the_key_is_refused(identified, capsys, keys, tmp_path, what):
    private, public = keys
    cp = tmp_path / "checkpoint.json"
    signed = checkpoint(capsys, identified, private, cp)
    if what == "another key":
        assert run(capsys, "audit", "keygen", "--out", tmp_path / "other")[0] == 0
        public, pattern = tmp_path / "other.pub", "the signature does not verify with public key ed25519:"
    elif what == "an edited checkpoint":
        signed["records"]["search 1"] = "0" * 64  # hide a change to come
        cp.write_text(json.dumps(signed))
        pattern = "the signature does not verify .*: a different key, or the file was edited"
    else:
        public, pattern = private, "not a PEM \\(SubjectPublicKeyInfo\\) public key"
    code, _, err = verify_against(capsys, identified, cp, public)
    assert code == 1
    assert_one_error_line(err, pattern)


def test_checkpoint_mistakes_are_one_line_errors(identified, capsys, keys, tmp_path):
    private, public = keys
    cp = tmp_path / "checkpoint.json"
    code, _, err = run(capsys, "audit", "checkpoint", "--key", public, "--out", cp, "-w", identified)
    assert code == 1 and not cp.exists()
    assert_one_error_line(err, "authority.pub: not an unencrypted PEM \\(PKCS#8\\) private key")
    code, _, err = run(capsys, "audit", "checkpoint", "--key", tmp_path / "nope.key", "--out", cp, "-w", identified)
    assert_one_error_line(err, "nope.key: no such private key file")
    code, _, err = run(capsys, "audit", "verify", "--checkpoint", cp, "-w", identified)
    assert code == 2 and "--checkpoint and --public-key go together" in err
    code, _, err = run(capsys, "audit", "keygen", "--out", tmp_path / "authority")
    assert code == 1
    assert_one_error_line(err, "authority.key: already exists; not overwriting a key")
    # A tampered workspace is not signed: a signature must never vouch for it.
    tamper(identified, "DELETE FROM conclusions")
    code, _, err = run(capsys, "audit", "checkpoint", "--key", private, "--out", cp, "-w", identified)
    assert code == 1 and not cp.exists()
    assert_one_error_line(err, "search 1: changed behind Nomina's back since seq .*no checkpoint written")


def test_an_import_onto_a_chain_whose_head_was_altered_writes_nothing(identified, tmp_path, faces_dir, capsys):
    """Every row of an import is recorded; when the trail refuses to be extended (its head no longer matches
    its newest event), the batch is refused whole: no row is kept unrecorded, none is reported as refused
    for a reason of its own, and no photo file stays behind."""
    with raw_database(identified) as db:
        value = json.loads(db.execute("SELECT value FROM workspace_info WHERE key = 'audit_head'").fetchone()[0])
        db.execute(
            "UPDATE workspace_info SET value = ? WHERE key = 'audit_head'",
            (json.dumps({**value, "hash": "0" * 64}),),
        )
    before = snapshot(identified)
    manifest = write_sample_manifest(
        [(f"MP-9{n}", london(faces_dir, f"0{n}", "smiling")) for n in (21, 22, 24)], tmp_path / "more.csv"
    )
    code, out, err = cli(capsys, identified, USER, "reference", "import", str(manifest))
    assert code != 0
    assert_one_error_line(err, r"audit trail: the newest event \(seq \d+\) is missing or altered; not appending")
    assert "refused" not in out and "imported" not in out
    assert snapshot(identified) == before


@pytest.mark.parametrize("named", ["absolute", "relative"])
def test_an_erasure_journal_row_naming_a_file_outside_the_store_removes_nothing(casework, tmp_path, capsys, named):
    """The erasure journal is followed by the next command any user runs: a row written into it by hand must
    not make Nomina overwrite and remove a file of the insider's choosing (a report, another workspace)."""
    victim = Path(tempfile.mkdtemp(prefix="nv", dir="/tmp")) / "victim.txt"  # short: PostgreSQL's column holds 64
    victim.write_text("precious")
    value = str(victim) if named == "absolute" else os.path.relpath(victim, casework / "photos" / "ab")
    tamper(casework, ("INSERT INTO pending_erasures (step, photo_sha256) VALUES ('photo', ?)", (value,)))
    code, _, err = cli(capsys, casework, USER, "case", "list")
    assert code == 0 and victim.read_text() == "precious"
    assert "is not a photo's SHA-256; ignored and removed (the database was changed outside Nomina)" in err
    with raw_database(casework) as con:
        assert con.execute("SELECT COUNT(*) FROM pending_erasures").fetchone()[0] == 0
    shutil.rmtree(victim.parent)


def test_a_photo_record_naming_a_file_outside_the_store_is_never_read(casework, tmp_path):
    """A photo's SHA-256 is its file's name in the store: one changed into a path is refused, not followed."""
    secret = Path(tempfile.mkdtemp(prefix="ns", dir="/tmp")) / "secret.txt"  # short: PostgreSQL's column holds 64
    secret.write_text("not a photo")
    with raw_database(casework) as con:
        [(sha,)] = con.execute("SELECT photo_sha256 FROM reference_photos WHERE reference_id = 'MP-012'").fetchall()
    unchecked = (
        "PRAGMA foreign_keys = OFF"
        if isinstance(database_of(casework), Path)
        else "SET session_replication_role = replica"
    )
    tamper(
        casework,
        unchecked,
        ("UPDATE photos SET sha256 = ? WHERE sha256 = ?", (str(secret), sha)),
        ("UPDATE reference_photos SET photo_sha256 = ? WHERE photo_sha256 = ?", (str(secret), sha)),
    )
    with Workspace.open(casework, user=USER) as ws:
        [photo] = ws.reference("MP-012").photos  # as the API's photo download finds it
        assert photo.sha256 == str(secret)
        with pytest.raises(RecordTampered, match="not a SHA-256"):
            ws.photos.read(photo.sha256)
    shutil.rmtree(secret.parent)


@pytest.mark.parametrize(
    "vector",
    [
        struct.pack("<f", math.nan) + struct.pack("<f", 0.5) * 127,
        struct.pack("<f", math.inf) * 128,
        bytes(4 * 128),
    ],
    ids=["nan", "inf", "zero"],
)
@pytest.mark.parametrize("whose", ["reference", "case"])
def test_a_stored_embedding_that_no_model_makes_refuses_searches_by_name(casework, capsys, vector, whose):
    """One NaN in one reference face made every score NaN and every search empty, with exit 0; a zeroed one
    dropped its face from every list. A vector a model cannot have made is named instead."""
    with raw_database(casework) as con:
        if whose == "reference":
            [(face_id,)] = con.execute(
                "SELECT f.id FROM faces f JOIN reference_photos rp ON rp.id = f.reference_photo_id "
                "WHERE rp.reference_id = 'MP-012'"
            ).fetchall()
        else:
            face_id = con.execute(
                "SELECT f.id FROM faces f JOIN case_photos cp ON cp.id = f.case_photo_id WHERE cp.case_id = 'UP-1'"
            ).fetchall()[0][0]
        assert len(con.execute("SELECT embedding FROM faces WHERE id = ?", (face_id,)).fetchone()[0]) == len(vector)
        con.execute("UPDATE faces SET embedding = ? WHERE id = ?", (vector, face_id))
    code, out, err = cli(capsys, casework, USER, "search", "UP-1")
    assert code != 0
    named = "reference MP-012" if whose == "reference" else "case UP-1"
    assert_one_error_line(
        err, rf"face {face_id} of {named}: its embedding is not a vector of finite numbers of length 1"
    )


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "[]",
        '{"name": "sface"}',
        '{"name": "sface", "files": "x"}',
        '{"name": "arcface", "files": {}}',
        '{"name": "no-such-model", "files": {"x.onnx": "0f7a1b"}}',
    ],  # fmt: skip
)
def test_a_model_record_changed_behind_nomina_s_back_is_one_clear_refusal(casework, capsys, value):
    """The workspace's model record decides which model loads and what reports name: one of another shape
    is refused in one line by every command that reads it, not a traceback or a report naming a model
    the searches never used."""
    tamper(casework, ("UPDATE workspace_info SET value = ? WHERE key = 'model'", (value,)))
    for command in (["info"], ["search", "UP-1"], ["report", "UP-1", "--out", str(casework.parent / "r.html")]):
        code, _, err = cli(capsys, casework, USER, *command)
        assert code == 1, command
        assert_one_error_line(err, "workspace record 'model': .*(is not a model Nomina records|does not know)")


@pytest.mark.parametrize(("column", "value"), [("score", "1e999"), ("score", "5.0"), ("rank", "-1")])
def test_a_candidate_no_search_records_is_named_not_shown(casework, capsys, column, value):
    """An infinite score crashed search show with a traceback; a score of 5 was shown with a very strong
    likelihood ratio. Scores are cosines, ranks count from 1."""
    number = float(value) if column == "score" else int(value)
    tamper(casework, (f"UPDATE candidates SET {column} = ? WHERE search_id = 1 AND rank = 2", (number,)))
    for form in ([], ["--json"]):
        code, _, err = cli(capsys, casework, USER, "search", "show", "1", *form)
        assert code == 1
        assert_one_error_line(err, r"search 1: candidate at rank -?\d+ has score .*, which no search records")


def test_a_schema_version_moved_back_is_one_clear_refusal(casework, capsys):
    """The recorded schema version moved back makes the opening try migrations already applied: a 109-line
    database traceback on every command before; one line now, and the database as it was."""
    tamper(casework, "UPDATE alembic_version SET version_num = '0001'")
    before = snapshot(casework)
    code, _, err = cli(capsys, casework, USER, "info")
    assert code == 1
    assert_one_error_line(err, r"cannot bring the database from schema 0001 to \w+ \(.*\): its tables do not match")
    assert snapshot(casework) == before
