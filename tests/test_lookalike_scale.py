"""Lookalike-id warnings on large galleries: each reference and case keeps its id's skeleton in an indexed column
(``id_skeleton``, since schema 0011), so checking a new id is one indexed query, not a read of every id.

On both engines: the warnings follow the same rule and say the same as when every id was read (two ids that
share a skeleton, not both ASCII); ids added earlier in an import batch, or in an earlier batch, are found; the
migration fills the skeletons of the rows already there without changing any record's digest; skeletons made
with other confusables data are made again, and rows without one (written behind Nomina's back) get theirs,
at the next enrolment; adding one reference to a gallery of 5,000 fetches a handful of rows.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import USER, london, raw_database
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import ORMExecuteState, Session

from nomina import CaseFields, PhotoInput, Provenance, ReferenceFields, Workspace, cases, references
from nomina.records import SKELETONS_INFO, id_skeleton, skeleton, skeleton_data, skeletons_outdated
from nomina.store import Database, upgrade
from nomina.store import schema as db
from nomina.store.database import _alembic_config, current_revision, head_revision

pytestmark = pytest.mark.slow  # galleries of thousands and migrations: about 4 s; CI runs them

PROV = Provenance("family", "a sister", "family request")
CYRILLIC_ER = "\u0420"  # looks like Latin P
CYRILLIC_EM = "\u041c"  # looks like Latin M
GREEK_RHO = "\u03a1"  # looks like Latin P
GREEK_BETA = "\u0392"  # looks like Latin B
GREEK_CHI = "\u03a7"  # looks like Latin X
CYRILLIC_O = "\u041e"  # looks like Latin O (and so like 0)
#: Ids in use in the rule tests: lookalikes across scripts, and ASCII ids that share a skeleton (O and 0).
IN_USE = ["P1", f"{GREEK_RHO}1", "B1", "PO", "P0", "I1", "l1", f"{CYRILLIC_ER}2", "A-7"]
#: New ids checked against them: Cyrillic, Greek and ASCII ids, with and without lookalikes in use.
NEW = [f"{CYRILLIC_ER}1", f"{GREEK_RHO}2", "P2", f"P{CYRILLIC_O}", "PQ", "\u04cf1", "Il", "B2", "\u0391-7", "A-8"]


def expected(kind: str, same: str, in_use: list[str], new_id: str) -> list[str]:
    """The warnings of the rule LookalikeIds documents, from every id in use (what the check used to read)."""
    alike = [
        known
        for known in in_use
        if skeleton(known) == skeleton(new_id) and known != new_id and not (known.isascii() and new_id.isascii())
    ]
    return [
        f"{kind} {new_id!r} looks like existing {kind} {known!r} (different characters); "
        f"check it is not the same {same} entered twice"
        for known in sorted(alike)
    ]


#: When the rows of these tests were made.
AT = datetime(2026, 1, 1)


def add_rows(database: Database, reference_ids: Sequence[str] = (), case_ids: Sequence[str] = ()) -> None:
    """References and cases written through SQLAlchemy (as Nomina writes them), without photos."""
    with database.write() as s:
        for ref in reference_ids:
            s.add(db.Reference(id=ref, name=f"Person {ref}", created_at=AT, updated_at=AT))
        for case in case_ids:
            s.add(db.Case(id=case, kind="deceased", created_at=AT))


def raw_insert(engine: Engine, table: str, ids: list[str], skeletons: bool) -> None:
    """Rows written with SQL of one's own, bypassing SQLAlchemy's defaults: with the skeletons a writer that
    knows of them computes, or with none (NULL)."""
    columns = {"references": "id, name, created_at, updated_at", "cases": "id, kind, created_at"}[table]
    values = {"references": ":id, :id, :at, :at", "cases": ":id, 'deceased', :at"}[table]
    if skeletons:
        columns, values = f"{columns}, id_skeleton", f"{values}, :skeleton"
    rows = [{"id": i, "at": "2026-01-01 00:00:00", "skeleton": id_skeleton(i)} for i in ids]
    with engine.begin() as conn:
        conn.execute(text(f'INSERT INTO "{table}" ({columns}) VALUES ({values})'), rows)


def stored_skeletons(engine: Engine, table: str) -> dict[str, str | None]:
    with engine.connect() as conn:
        return {i: k for i, k in conn.execute(text(f'SELECT id, id_skeleton FROM "{table}"'))}


def recorded_data(engine: Engine) -> str | None:
    with engine.connect() as conn:
        value = conn.execute(text("SELECT value FROM workspace_info WHERE key = :k"), {"k": SKELETONS_INFO}).scalar()
    return None if value is None else str(value)


def set_recorded_data(engine: Engine, value: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE workspace_info SET value = :v WHERE key = :k"), {"v": value, "k": SKELETONS_INFO})


def check(database: Database, lookalikes: Any, new_ids: list[str]) -> list[list[str]]:
    """The warnings for each of ``new_ids`` checked in one write transaction (rolled back), as a batch: the ids
    in use looked up for each new id, and read for all of them at once as an import batch reads them, which
    must warn alike."""
    with database.write(commit=False) as s:
        found = lookalikes(s)
        one_by_one = [found.add(new_id) for new_id in new_ids]
    with database.write(commit=False) as s:
        found = lookalikes(s, new_ids)
        assert [found.add(new_id) for new_id in new_ids] == one_by_one
    return one_by_one


@contextmanager
def rows_fetched() -> Iterator[list[int]]:
    """The number of rows each ORM SELECT returned while the block ran (the old check fetched every id)."""
    counts: list[int] = []

    def counted(state: ORMExecuteState) -> Any:
        if not state.is_select:
            return None
        frozen = state.invoke_statement().freeze()
        counts.append(len(frozen.data))
        return frozen()

    event.listen(Session, "do_orm_execute", counted)
    try:
        yield counts
    finally:
        event.remove(Session, "do_orm_execute", counted)


# -- the rule -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "same", "other"), [("reference", "person", "case"), ("case", "case", "reference")])
def test_the_stored_skeletons_warn_by_the_rule_as_every_id_read_did(engine, kind, same, other):
    module = {"reference": references, "case": cases}
    database = Database(engine)
    add_rows(database, **{f"{kind}_ids": IN_USE})
    for new_id in NEW:  # each on its own
        assert check(database, module[kind].lookalikes, [new_id]) == [expected(kind, same, IN_USE, new_id)], new_id
    assert check(database, module[kind].lookalikes, [f"{CYRILLIC_ER}1"]) == [
        [
            f"{kind} '\u04201' looks like existing {kind} 'P1' (different characters); "
            f"check it is not the same {same} entered twice",
            f"{kind} '\u04201' looks like existing {kind} '\u03a11' (different characters); "
            f"check it is not the same {same} entered twice",
        ]
    ]
    assert check(database, module[other].lookalikes, [f"{CYRILLIC_ER}1"]) == [[]]  # never the other kind's ids


def test_ids_added_earlier_in_a_batch_are_found_written_or_not(engine):
    database = Database(engine)
    add_rows(database, ["P1"])
    with database.write(commit=False) as s:
        found = references.lookalikes(s)
        assert found.add(f"{GREEK_BETA}7") == []  # checked before it is written (as `reference add` does)
        assert found.add("B7") == [
            "reference 'B7' looks like existing reference '\u03927' (different characters); "
            "check it is not the same person entered twice"
        ]
        s.add(db.Reference(id="X9", name="written first", created_at=AT, updated_at=AT))  # as an import does
        assert found.add("X9") == []  # the id itself, written already, is not its own lookalike
        s.add(db.Reference(id=f"{GREEK_CHI}9", name="written first", created_at=AT, updated_at=AT))
        (warning,) = found.add(f"{GREEK_CHI}9")
        assert "existing reference 'X9'" in warning
        assert found.add(f"{CYRILLIC_ER}1") == [
            "reference '\u04201' looks like existing reference 'P1' (different characters); "
            "check it is not the same person entered twice"
        ]


def _manifest(path: Path, faces_dir: Path, rows: list[tuple[str, Path]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["reference_id", "photo", "name", "source", "supplied_by", "legal_basis"])
        for ref_id, photo in rows:
            writer.writerow([ref_id, photo, f"Person {ref_id}", "family", "a sister", "request"])
    return path


def test_an_import_warns_of_ids_in_its_batch_in_earlier_batches_and_in_use(ws, faces_dir, tmp_path, monkeypatch):
    import nomina.workspace

    monkeypatch.setattr(nomina.workspace, "_IMPORT_BATCH", 3)
    ws.add_reference(ReferenceFields("P1", "Person P1"), [PhotoInput(london(faces_dir, "001"))], PROV)
    rows = [
        (f"{GREEK_BETA}7", london(faces_dir, "002")),  # line 2, batch 1
        ("X9", london(faces_dir, "003")),
        ("B7", london(faces_dir, "004")),  # like line 2, in the same batch
        (f"{CYRILLIC_ER}1", london(faces_dir, "005")),  # line 5, batch 2: like P1, in use before
        (f"{GREEK_CHI}9", london(faces_dir, "006")),  # like line 3, an earlier batch
        ("A-7", london(faces_dir, "007")),
        ("B7", london(faces_dir, "004", "smiling")),  # line 8, batch 3: a photo more for B7, no new id
    ]
    report = ws.import_references(_manifest(tmp_path / "refs.csv", faces_dir, rows))
    assert report.failures == [] and report.references_created == 6 and report.added == 7
    assert [w for w in report.warnings if " looks like " in w] == [
        "line 4: reference 'B7' looks like existing reference '\u03927' (different characters); "
        "check it is not the same person entered twice",
        "line 5: reference '\u04201' looks like existing reference 'P1' (different characters); "
        "check it is not the same person entered twice",
        "line 6: reference '\u03a79' looks like existing reference 'X9' (different characters); "
        "check it is not the same person entered twice",
    ]
    stored = stored_skeletons(ws._shared.db.engine, "references")
    assert stored == {ref: id_skeleton(ref) for ref in stored}  # every row written with its skeleton


# -- the migration ---------------------------------------------------------------------------------------
def test_the_migration_fills_the_skeletons_of_the_rows_already_there(engine):
    from alembic import command

    database = Database(engine)
    add_rows(database, ["P1", f"{GREEK_RHO}1"], ["A-7"])
    command.downgrade(_alembic_config(engine), "0010")
    assert "id_skeleton" not in stored_columns(engine, "references")
    assert recorded_data(engine) is None
    many = [f"MP-{i:05d}" for i in range(2_500)] + [f"{CYRILLIC_EM}P-{i:05d}" for i in range(0, 2_500, 500)]
    raw_insert(engine, "references", many, skeletons=False)  # more than one batch of the migration
    raw_insert(engine, "cases", [f"\u0391-{i}" for i in range(1_200)], skeletons=False)

    upgrade(engine)
    assert current_revision(engine) == head_revision()
    for table, count in (("references", 2_507), ("cases", 1_201)):
        stored = stored_skeletons(engine, table)
        assert len(stored) == count
        assert stored == {i: id_skeleton(i) for i in stored}, table
    assert recorded_data(engine) == skeleton_data()
    assert check(Database(engine), references.lookalikes, ["MP-01000", f"{CYRILLIC_EM}P-00007"]) == [
        [
            "reference 'MP-01000' looks like existing reference '\u041cP-01000' (different characters); "
            "check it is not the same person entered twice"
        ],
        [
            "reference '\u041cP-00007' looks like existing reference 'MP-00007' (different characters); "
            "check it is not the same person entered twice"
        ],
    ]


def stored_columns(engine: Engine, table: str) -> set[str]:
    from sqlalchemy import inspect

    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_filling_the_skeletons_changes_no_record_the_audit_trail_accounts_for(
    ws, faces_dir, settings, model, monkeypatch
):
    """Records written before schema 0011 have no skeleton in the digests the trail holds; the migration
    fills their skeletons (and a new confusables release would change some), and no record shows as changed."""
    from alembic import command

    import nomina.faces
    import nomina.quality
    import nomina.records

    with monkeypatch.context() as before_0011:  # written as Nomina wrote them before: without a skeleton
        before_0011.setattr(nomina.records, "id_skeleton", lambda record_id: None)
        # nor the network's output length (schemas 0012 and 0013), whose columns the downgrade below removes
        before_0011.setattr(nomina.faces, "measure", lambda *args, **lengths: nomina.quality.measure(*args))
        ws.add_reference(ReferenceFields("P1", "Person P1"), [PhotoInput(london(faces_dir, "001"))], PROV)
        ws.add_case(CaseFields("A-7"), [PhotoInput(london(faces_dir, "002", "smiling"))])
    assert set(stored_skeletons(ws._shared.db.engine, "references").values()) == {None}
    command.downgrade(_alembic_config(ws._shared.db.engine), "0010")
    ws.close()
    upgraded = Workspace.open(settings.home, settings, model=model, user=USER)
    try:
        with raw_database(upgraded.path) as con:
            assert con.execute('SELECT id_skeleton FROM "references"').fetchall() == [(id_skeleton("P1"),)]
            assert con.execute("SELECT id_skeleton FROM cases").fetchall() == [(id_skeleton("A-7"),)]
        result = upgraded.audit_verify()
        assert result.ok and result.records == [] and result.records_checked >= 3, str(result)
        added = upgraded.add_reference(
            ReferenceFields(f"{CYRILLIC_ER}1", "Person 2"), [PhotoInput(london(faces_dir, "003"))], PROV
        )
        assert added.warnings == [
            "reference '\u04201' looks like existing reference 'P1' (different characters); "
            "check it is not the same person entered twice"
        ]
        assert upgraded.audit_verify().records == []
    finally:
        upgraded.close()


# -- skeletons kept up to date ------------------------------------------------------------------------------
def test_skeletons_made_with_other_confusables_data_are_made_again_at_the_next_check(engine):
    database = Database(engine)
    add_rows(database, ["P1", "Q1"], ["C-1"])
    with engine.begin() as conn:
        conn.execute(text("UPDATE \"references\" SET id_skeleton = 'stale' WHERE id IN ('P1', 'Q1')"))
        conn.execute(text("UPDATE cases SET id_skeleton = 'stale'"))
    older = json.dumps({"rule": 1, "confusables": "3.3.0", "table": "0123456789abcdef"}, sort_keys=True)
    for recorded in (older, "not json", '{"rule": 1}'):
        set_recorded_data(engine, recorded)
        assert skeletons_outdated(recorded)
    warnings = check(database, references.lookalikes, [f"{CYRILLIC_ER}1"])  # rolled back: nothing kept
    assert warnings == [
        [
            "reference '\u04201' looks like existing reference 'P1' (different characters); "
            "check it is not the same person entered twice"
        ]
    ]
    assert stored_skeletons(engine, "references")["P1"] == "stale"
    with database.write() as s:
        references.lookalikes(s)
    assert stored_skeletons(engine, "references") == {"P1": id_skeleton("P1"), "Q1": id_skeleton("Q1")}
    assert stored_skeletons(engine, "cases") == {"C-1": id_skeleton("C-1")}  # both tables: one record of the data
    assert recorded_data(engine) == skeleton_data()
    with engine.begin() as conn:  # none recorded: made again too
        conn.execute(text("DELETE FROM workspace_info WHERE key = :k"), {"k": SKELETONS_INFO})
        conn.execute(text("UPDATE cases SET id_skeleton = 'stale'"))
    with database.write() as s:
        cases.lookalikes(s)
    assert stored_skeletons(engine, "cases") == {"C-1": id_skeleton("C-1")}
    assert recorded_data(engine) == skeleton_data()


def test_skeletons_made_with_newer_data_are_kept(engine):
    """Another server of the workspace already runs newer confusables data: this one keeps its skeletons
    rather than the two making each other's again in turn."""
    database = Database(engine)
    add_rows(database, ["P1"])
    rule = json.loads(skeleton_data())["rule"]
    newer = json.dumps({"rule": rule, "confusables": "3.10.0", "table": "0123456789abcdef"}, sort_keys=True)
    assert not skeletons_outdated(newer)
    assert skeletons_outdated(json.dumps({"rule": 0, "confusables": "9.0", "table": "x"}))
    set_recorded_data(engine, newer)
    with engine.begin() as conn:
        conn.execute(text("UPDATE \"references\" SET id_skeleton = 'theirs' WHERE id = 'P1'"))
    with database.write() as s:
        references.lookalikes(s)
    assert stored_skeletons(engine, "references") == {"P1": "theirs"}
    assert recorded_data(engine) == newer


def test_rows_written_without_a_skeleton_get_theirs_and_crash_nothing(ws, faces_dir):
    engine = ws._shared.db.engine
    raw_insert(engine, "references", ["P1", "Q1"], skeletons=False)
    raw_insert(engine, "cases", ["C1"], skeletons=False)
    assert set(stored_skeletons(engine, "references").values()) == {None}
    assert [r.reference_id for r in ws.references()] == ["P1", "Q1"]
    added = ws.add_reference(ReferenceFields(f"{CYRILLIC_ER}1", "Bea"), [PhotoInput(london(faces_dir, "001"))], PROV)
    assert added.warnings == [
        "reference '\u04201' looks like existing reference 'P1' (different characters); "
        "check it is not the same person entered twice"
    ]
    assert stored_skeletons(engine, "references") == {i: id_skeleton(i) for i in ("P1", "Q1", f"{CYRILLIC_ER}1")}
    added_case = ws.add_case(CaseFields("\u04211"), [PhotoInput(london(faces_dir, "002", "smiling"))])  # Cyrillic Es
    assert added_case.warnings == [
        "case '\u04211' looks like existing case 'C1' (different characters); "
        "check it is not the same case entered twice"
    ]
    assert stored_skeletons(engine, "cases") == {"C1": id_skeleton("C1"), "\u04211": id_skeleton("\u04211")}


def test_a_long_id_is_stored_and_found_by_the_hash_of_its_skeleton(engine):
    long_id = "".join(chr(0xAC00 + (i * 7919) % 11172) for i in range(200))  # 200 Hangul syllables
    assert len(skeleton(long_id).encode()) > 2_000 and id_skeleton(long_id).startswith("sha256:")
    database = Database(engine)
    add_rows(database, [long_id], [long_id])
    assert stored_skeletons(engine, "references") == {long_id: id_skeleton(long_id)}
    with database.write(commit=False) as s:
        assert list(s.scalars(text('SELECT id FROM "references" WHERE id_skeleton = :k'), {"k": id_skeleton(long_id)}))
        assert references.lookalikes(s).add(long_id) == []  # itself, never its own lookalike


# -- the cost --------------------------------------------------------------------------------------------
def test_adding_to_a_gallery_of_5000_fetches_a_handful_of_rows(ws, faces_dir):
    engine = ws._shared.db.engine
    raw_insert(engine, "references", [f"MP-{i:06d}" for i in range(5_000)], skeletons=True)
    raw_insert(engine, "cases", [f"UP-{i:06d}" for i in range(5_000)], skeletons=True)
    ws.add_reference(ReferenceFields("WARM", "warm up"), [PhotoInput(london(faces_dir, "010"))], PROV)
    with rows_fetched() as counts:
        added = ws.add_reference(
            ReferenceFields(f"{CYRILLIC_EM}P-000042", "Bea"), [PhotoInput(london(faces_dir, "001"))], PROV
        )
    assert added.warnings == [
        "reference '\u041cP-000042' looks like existing reference 'MP-000042' (different characters); "
        "check it is not the same person entered twice"
    ]
    assert counts and max(counts) < 50 and sum(counts) < 500, counts
    with rows_fetched() as counts:
        added_case = ws.add_case(
            CaseFields(f"U{CYRILLIC_ER}-000042"), [PhotoInput(london(faces_dir, "002", "smiling"))]
        )
    assert added_case.warnings == [
        "case 'U\u0420-000042' looks like existing case 'UP-000042' (different characters); "
        "check it is not the same case entered twice"
    ]
    assert counts and max(counts) < 50 and sum(counts) < 500, counts
