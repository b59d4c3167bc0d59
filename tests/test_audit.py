"""The audit trail: typed events only, no biometric details, and every kind of tampering shown by verify."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from conftest import INTEGRITY_ERRORS, drop_trigger, raw_database
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nomina import audit
from nomina.errors import AuditBroken, Conflict, DetailRefused, PermissionDenied, UnknownEvent
from nomina.store import schema


def write(engine: Engine, *events: audit.Event, actor: str = "ana") -> audit.Head:
    head = audit.Head(0, audit.GENESIS)
    with Session(engine) as s, s.begin():
        for event in events:
            head = audit.record(s, actor, event)
    return head


def check(engine: Engine) -> audit.Verification:
    with Session(engine) as s:
        return audit.verify(s)


def six_events(engine: Engine) -> audit.Head:
    write(engine, audit.UserAdded(user="ana", roles=("admin", "examiner"), bootstrap=True), actor="root")
    write(engine, audit.CaseCreated(case_id="UP-17", photos=2, faces=1))
    write(engine, audit.ReferenceCreated(reference_id="MP-0001", photos=1))
    write(engine, audit.SearchRun(case_id="UP-17", search_id=1, candidates=50, gallery_references=142))
    write(
        engine,
        audit.ConclusionRecorded(
            case_id="UP-17", search_id=1, rank=1, reference_id="MP-0001", conclusion="support", examiner="ana"
        ),
    )
    return write(engine, audit.CaseViewed(case_id="UP-17"), actor="ben")


def tamper(engine: Engine, *statements: str) -> None:
    """Change the database behind Nomina's back, as someone holding its file, or its server's superuser, could."""
    engine.dispose()
    with raw_database(engine) as db:
        drop_trigger(db, "audit_events", "audit_events_no_update")
        drop_trigger(db, "audit_events", "audit_events_no_delete")
        for statement in statements:
            db.execute(statement)


# -- an untouched chain --------------------------------------------------------------------------------
def test_an_untouched_chain_verifies_and_its_head_is_the_last_hash(engine):
    last = six_events(engine)
    result = check(engine)
    assert result.ok and result.events == 6 and result.broken_seq is None
    assert result.head == last.hash and last.seq == 6
    assert str(result) == f"audit trail intact: 6 events, head {last.hash}"
    with Session(engine) as s:
        assert audit.head(s) == last


def test_an_empty_trail_verifies(engine):
    result = check(engine)
    assert (result.ok, result.events, result.head) == (True, 0, audit.GENESIS)


def test_each_hash_covers_the_previous_hash_and_the_canonical_event(engine):
    six_events(engine)
    with raw_database(engine) as db:
        rows = db.execute(
            "SELECT seq, at, actor, action, case_id, reference_id, search_id, details, prev_hash, hash "
            "FROM audit_events ORDER BY seq"
        ).fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0][8] == "0" * 64
    for before, row in zip([None, *rows], rows, strict=False):
        seq, at, actor, action, case_id, reference_id, search_id, details, prev_hash, digest = row
        assert prev_hash == (before[9] if before else "0" * 64)
        body = {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "case_id": case_id,
            "reference_id": reference_id,
            "search_id": search_id,
            "details": json.loads(details),
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert digest == hashlib.sha256((prev_hash + text).encode()).hexdigest()
    # The time reads back exactly as it was hashed: UTC with microseconds.
    assert len(rows[0][1]) == len("2026-12-07T09:00:00.000000")


def test_events_recorded_together_chain_like_events_recorded_one_by_one(engine):
    write(engine, audit.UserAdded(user="ana", roles=("admin", "examiner"), bootstrap=True), actor="root")
    events = [audit.ReferenceCreated(reference_id=f"MP-{n}", photos=1) for n in range(3)]
    with Session(engine) as s, s.begin():
        last = audit.record_all(s, "ana", events)
    result = check(engine)
    assert result.ok and result.events == 4 and result.head == last.hash and last.seq == 4
    with raw_database(engine) as db:
        rows = db.execute("SELECT reference_id, details FROM audit_events WHERE seq > 1 ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == ["MP-0", "MP-1", "MP-2"]
    contexts = [json.loads(r[1])[audit.CONTEXT] for r in rows]
    assert [list(c["records"]) for c in contexts] == [["reference MP-0"], ["reference MP-1"], ["reference MP-2"]]
    assert len({c["salt"] for c in contexts}) == 3  # each event its own salt


def test_events_recorded_together_must_change_different_records(engine):
    """Each event's *after* is read once for all of them: two changing one record would both show its last
    state, so the call is refused before anything is appended."""
    twice = [
        audit.ReferenceCreated(reference_id="MP-1", photos=1),
        audit.ReferencePhotosAdded(reference_id="MP-1", photos=1),
    ]
    with Session(engine) as s, s.begin(), pytest.raises(ValueError, match="must change different records"):
        audit.record_all(s, "ana", twice)
    assert check(engine).events == 0


# -- tampering -----------------------------------------------------------------------------------------
def test_an_edited_detail_is_found_at_its_event(engine):
    six_events(engine)
    tamper(engine, """UPDATE audit_events SET details = '{"candidates":5,"gallery_references":142}' WHERE seq = 4""")
    result = check(engine)
    assert not result.ok
    assert (result.broken_seq, result.events) == (4, 3)
    assert result.reason == "contents do not match the event's hash: event edited"
    assert str(result).startswith("audit trail broken at seq 4: ")


def test_an_edited_actor_is_found_at_its_event(engine):
    six_events(engine)
    tamper(engine, "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 5")
    result = check(engine)
    assert (result.ok, result.broken_seq) == (False, 5)
    assert "edited" in result.reason


def test_an_edited_object_id_is_found(engine):
    six_events(engine)
    tamper(engine, "UPDATE audit_events SET case_id = 'UP-18' WHERE seq = 2")
    assert check(engine).broken_seq == 2


def test_a_deleted_middle_event_is_found(engine):
    six_events(engine)
    tamper(engine, "DELETE FROM audit_events WHERE seq = 3")
    result = check(engine)
    assert (result.ok, result.broken_seq, result.events) == (False, 3, 2)
    assert result.reason == "seq 3 missing: events deleted or renumbered"


def test_a_deleted_middle_event_with_the_rest_renumbered_is_found(engine):
    six_events(engine)
    tamper(engine, "DELETE FROM audit_events WHERE seq = 3", "UPDATE audit_events SET seq = seq - 1 WHERE seq > 3")
    result = check(engine)
    assert (result.ok, result.broken_seq) == (False, 3)
    assert "prev_hash does not match seq 2's hash" in result.reason


def test_a_deleted_last_event_is_found_through_the_head(engine):
    six_events(engine)
    tamper(engine, "DELETE FROM audit_events WHERE seq = 6")
    result = check(engine)
    assert (result.ok, result.broken_seq, result.events) == (False, 6, 5)
    assert result.reason == "the head names seq 6 but the trail ends at seq 5: newest events deleted"


def test_a_deleted_head_is_found(engine):
    six_events(engine)
    tamper(engine, "DELETE FROM workspace_info WHERE key = 'audit_head'")
    result = check(engine)
    assert (result.ok, result.broken_seq) == (False, 1)
    assert "chain head" in result.reason


def test_every_event_deleted_is_found_through_the_head(engine):
    six_events(engine)
    tamper(engine, "DELETE FROM audit_events")
    result = check(engine)
    assert (result.ok, result.broken_seq, result.events) == (False, 1, 0)


def test_swapped_events_are_found_at_the_first_moved_one(engine):
    six_events(engine)
    tamper(
        engine,
        "UPDATE audit_events SET seq = -3 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = 4",
        "UPDATE audit_events SET seq = 4 WHERE seq = -3",
    )
    result = check(engine)
    assert (result.ok, result.broken_seq, result.events) == (False, 3, 2)
    assert result.reason == "prev_hash does not match seq 2's hash: events deleted, reordered or rewritten"


def test_a_rewritten_event_with_a_fresh_hash_breaks_the_next_link(engine):
    six_events(engine)
    with raw_database(engine) as db:
        seq, at, actor, action, details, prev = db.execute(
            "SELECT seq, at, actor, action, details, prev_hash FROM audit_events WHERE seq = 2"
        ).fetchone()
    forged = audit.link_hash(
        prev, audit.canonical(seq, at, "mallory", action, {"case_id": "UP-17"}, json.loads(details))
    )
    tamper(engine, f"UPDATE audit_events SET actor = 'mallory', hash = '{forged}' WHERE seq = 2")
    result = check(engine)
    assert (result.ok, result.broken_seq) == (False, 3)
    assert "rewritten" in result.reason


def test_a_rewritten_newest_event_is_found_through_the_head(engine):
    six_events(engine)
    with raw_database(engine) as db:
        seq, at, actor, action, case_id, details, prev = db.execute(
            "SELECT seq, at, actor, action, case_id, details, prev_hash FROM audit_events WHERE seq = 6"
        ).fetchone()
    forged = audit.link_hash(
        prev, audit.canonical(seq, at, "mallory", action, {"case_id": case_id}, json.loads(details))
    )
    tamper(engine, f"UPDATE audit_events SET actor = 'mallory', hash = '{forged}' WHERE seq = 6")
    result = check(engine)
    assert (result.ok, result.broken_seq) == (False, 6)
    assert result.reason == "the head's hash does not match the newest event: newest event rewritten"


def test_nothing_is_appended_after_the_newest_events_were_deleted(engine):
    six_events(engine)
    tamper(engine, "DELETE FROM audit_events WHERE seq = 6")
    with pytest.raises(AuditBroken, match=r"newest event \(seq 6\) is missing or altered"):
        write(engine, audit.CaseViewed(case_id="UP-17"))
    assert check(engine).broken_seq == 6  # the break is still there to be seen


def test_the_database_refuses_updates_and_deletes_of_events(engine):
    six_events(engine)
    engine.dispose()
    with raw_database(engine) as db:
        for statement in (
            "UPDATE audit_events SET actor = 'x' WHERE seq = 1",
            "DELETE FROM audit_events WHERE seq = 6",
        ):
            with pytest.raises(INTEGRITY_ERRORS, match="audit_events is append-only"):
                db.execute(statement)
    assert check(engine).ok


def test_the_chain_cannot_fork(engine):
    six_events(engine)
    engine.dispose()
    with raw_database(engine) as db:
        prev = db.execute("SELECT prev_hash FROM audit_events WHERE seq = 6").fetchone()[0]
        with pytest.raises(INTEGRITY_ERRORS, match="(?i)unique"):
            db.execute(
                "INSERT INTO audit_events (seq, at, actor, action, details, prev_hash, hash) "
                f"VALUES (7, '2026-01-01T00:00:00.000000', 'x', 'case.view', '{{}}', '{prev}', '{'1' * 64}')"
            )


# -- what may be recorded ------------------------------------------------------------------------------
def test_unknown_event_types_are_refused(engine):
    from dataclasses import dataclass
    from typing import ClassVar

    @dataclass(frozen=True, kw_only=True)
    class FaceExported(audit.Event):
        action: ClassVar[str] = "face.export"
        case_id: str

    @dataclass(frozen=True, kw_only=True)
    class LookAlike(audit.CaseViewed):  # a registered action name on an unregistered class
        pass

    for event in (FaceExported(case_id="UP-17"), LookAlike(case_id="UP-17")):
        with pytest.raises(UnknownEvent, match="is not a registered event type"):
            write(engine, event)
    with pytest.raises(UnknownEvent):
        write(engine, {"action": "case.view", "case_id": "UP-17"})  # type: ignore[arg-type]
    assert check(engine).events == 0


def test_the_registry_covers_the_workflow_actions():
    expected = {
        "reference.create", "reference.update", "reference.photos_add", "reference.view", "reference.list",
        "reference.delete", "case.create", "case.update", "case.view", "case.list", "case.mark_eyes",
        "case.delete", "search.run", "search.view", "search.list", "conclusion.record", "identification.propose",
        "identification.verify", "identification.withdraw", "report.create", "export.create", "user.add",
        "user.disable", "calibration.add", "setting.change", "retention.apply", "workspace.maintain", "audit.verify",
        "audit.view", "audit.baseline", "audit.checkpoint", "user.password", "login.ok", "login.fail",
        "login.lockout", "session.end", "token.create", "token.revoke", "user.roles", "user.preference",
    }  # fmt: skip
    assert set(audit.EVENT_TYPES) == expected
    assert all(cls.action == action for action, cls in audit.EVENT_TYPES.items())
    assert all(name in audit.__all__ for name in (cls.__name__ for cls in audit.EVENT_TYPES.values()))


@pytest.mark.parametrize(
    "value",
    [
        b"\xff\xd8\xff\xe0 jpeg bytes",
        bytearray(16),
        memoryview(b"abcd"),
        np.zeros(128, np.float32),
        np.float32(0.5),
        [0.1] * 128,
        [[10.0, 20.0]] * 5,  # five landmarks
        {"embedding": list(range(512))},
        "A" * 5000,  # a base64-encoded crop
        float("nan"),
        {1, 2},
    ],
    ids=["bytes", "bytearray", "memoryview", "array", "numpy-scalar", "embedding-list", "landmarks",
         "nested-list", "long-text", "nan", "set"],
)  # fmt: skip
def test_biometric_or_unreadable_details_are_refused(engine, value):
    with pytest.raises(DetailRefused, match="audit detail 'reason'"):
        audit.ReferenceDeleted(reference_id="MP-0001", photos=1, faces=1, reason=value)
    assert check(engine).events == 0


def test_small_plain_details_are_kept_as_given(engine):
    write(
        engine,
        audit.SettingChanged(setting="top", old=50, new=20),
        audit.CaseUpdated(case_id="UP-17", fields=("found_at", "notes")),
        audit.ReferenceDeleted(reference_id="MP-0001", photos=2, faces=2, reason="família pediu: retirado"),
    )
    with Session(engine) as s:
        shown = audit.events(s)
    assert [e["details"] for e in shown] == [
        {"setting": "top", "old": 50, "new": 20, "initial": False},
        {"fields": ["found_at", "notes"]},
        {"photos": 2, "faces": 2, "reason": "família pediu: retirado"},
    ]
    # verify compares the stored value with the trail's: the setting is 20, as the event left it
    assert "setting 'top': gone, but seq 1 set it to 20" in check(engine).records[0]
    with Session(engine) as s, s.begin():
        s.add(schema.WorkspaceInfo(key="setting.top", value="20"))
    assert check(engine).ok


def test_object_ids_must_be_ids():
    with pytest.raises(DetailRefused, match="audit search_id"):
        audit.SearchViewed(case_id="UP-17", search_id="1")  # type: ignore[arg-type]
    with pytest.raises(DetailRefused, match="audit case_id"):
        audit.CaseViewed(case_id="  ")


def test_a_blank_actor_is_refused(engine):
    with pytest.raises(PermissionDenied, match="no acting user"):
        write(engine, audit.CaseViewed(case_id="UP-17"), actor=" ")


def test_an_event_is_written_with_its_transaction_or_not_at_all(engine):
    with pytest.raises(RuntimeError), Session(engine) as s, s.begin():
        audit.record(s, "ana", audit.CaseViewed(case_id="UP-17"))
        raise RuntimeError("the action failed")
    assert check(engine).events == 0
    write(engine, audit.CaseViewed(case_id="UP-17"))
    assert check(engine).ok


# -- reading -------------------------------------------------------------------------------------------
def test_events_are_filtered_by_object_and_limited_to_the_newest(engine):
    six_events(engine)
    write(engine, audit.AuditViewed(count=3, case_id="UP-17"))
    with Session(engine) as s:
        everything = audit.events(s)
        case = audit.events(s, case_id="UP-17")
        reference = audit.events(s, reference_id="MP-0001")
        search = audit.events(s, search_id=1, case_id="UP-17")
        newest = audit.events(s, limit=2)
    assert [e["seq"] for e in everything] == [1, 2, 3, 4, 5, 6, 7]
    assert [e["action"] for e in case] == ["case.create", "search.run", "conclusion.record", "case.view", "audit.view"]
    assert [e["seq"] for e in reference] == [3, 5]
    assert [e["seq"] for e in search] == [4, 5]
    assert [e["seq"] for e in newest] == [6, 7]
    first = everything[0]
    assert set(first) == {
        "seq", "at", "actor", "action", "case_id", "reference_id", "search_id", "details", "hash", "os_user", "host",
        "via",
    }  # fmt: skip
    assert (first["actor"], first["details"]) == (
        "root",
        {"user": "ana", "roles": ["admin", "examiner"], "bootstrap": True},
    )
    json.dumps(everything)  # plain data, ready for --json


def test_a_head_moved_back_is_found_and_nothing_overwrites_the_newer_event(engine):
    six_events(engine)
    with raw_database(engine) as db:
        fifth = db.execute("SELECT hash FROM audit_events WHERE seq = 5").fetchone()[0]
    tamper(engine, f"""UPDATE workspace_info SET value = '{{"hash":"{fifth}","seq":5}}' WHERE key = 'audit_head'""")
    result = check(engine)
    assert (result.ok, result.broken_seq) == (False, 6)
    assert (
        result.reason
        == "the head names seq 5 but the trail goes on to seq 6: head moved back, or events added outside Nomina"
    )
    with pytest.raises(Conflict, match="^audit trail: event seq 6 already exists"):
        write(engine, audit.CaseViewed(case_id="UP-17"))
    assert check(engine).events == 6


def test_the_callers_own_errors_are_not_blamed_on_the_trail(engine):
    from sqlalchemy.exc import IntegrityError

    from nomina.store import schema as db

    with pytest.raises(IntegrityError), Session(engine) as s, s.begin():
        s.add(db.Case(id="UP-17", kind="deceased", created_at=None))  # created_at is required
        audit.record(s, "ana", audit.CaseCreated(case_id="UP-17", photos=0, faces=0))
    assert check(engine).ok


def test_a_required_object_id_cannot_be_left_out():
    with pytest.raises(DetailRefused, match="audit case_id: None is not a valid id"):
        audit.CaseViewed(case_id=None)  # type: ignore[arg-type]
    assert audit.AuditViewed(count=0).case_id is None


def test_nothing_is_appended_without_a_head_while_events_exist(engine):
    six_events(engine)
    tamper(engine, "DELETE FROM workspace_info WHERE key = 'audit_head'")
    with pytest.raises(AuditBroken, match="chain head in workspace_info is missing or unreadable"):
        write(engine, audit.CaseViewed(case_id="UP-17"))


# -- the doc ------------------------------------------------------------------------------------------
def test_the_doc_lists_every_action_and_its_example_runs(tmp_path, capsys):
    import re

    from conftest import REPO

    doc = (REPO / "docs" / "audit.md").read_text()
    missing = [action for action in audit.EVENT_TYPES if f"| `{action}` |" not in doc]
    assert missing == [], f"not in docs/audit.md: {missing}"
    example = re.findall(r"```python\n(.*?)```", doc, flags=re.S)[0]
    exec(compile(example, "docs/audit.md", "exec"), {"workspace": tmp_path})
    intact, viewed = capsys.readouterr().out.splitlines()
    assert intact.startswith("audit trail intact: 3 events, head ")
    assert viewed.split()[2:] == ["ana", "case.view", "{}"]
