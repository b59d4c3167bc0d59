"""Erasure leaves no biometric trace anywhere in the workspace folder; retention and maintenance erase the
same way. The scan reads the raw bytes of every file, so it would find the data wherever it was left."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    PROV,
    assert_one_error_line,
    database_files,
    database_label,
    london,
    raw_database,
    run,
    snapshot,
)

from nomina import CaseFields, PhotoInput, Provenance, ReferenceFields, Workspace, erasure
from nomina.errors import Conflict, InvalidField, NotFound, PermissionDenied, RecordTampered
from nomina.references import ReferenceRecord

FAMILY = Provenance("family", "a sister", "family request under national missing-persons law")
WINDOW = 64


# -- what to look for -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Needle:
    """Bytes that show a record's data is present: a label for messages, and pieces any one of which counts."""

    label: str
    pieces: tuple[bytes, ...]


def photo_needle(label: str, data: bytes, count: int = 8) -> Needle:
    """``count`` 64-byte windows spread over the back three quarters of a photo file (JPEG files from
    one camera share their headers, so the windows come from the compressed image data)."""
    starts = [len(data) // 4 + i * (len(data) * 3 // 4 - WINDOW) // (count - 1) for i in range(count)]
    return Needle(label, tuple(data[s : s + WINDOW] for s in starts))


def embedding_needle(label: str, embedding: bytes) -> Needle:
    """Every 64-byte window of the embedding as stored (float32), so a partial copy counts too."""
    assert len(embedding) % WINDOW == 0
    return Needle(label, tuple(embedding[s : s + WINDOW] for s in range(0, len(embedding), WINDOW)))


def text_needle(label: str, text: str) -> Needle:
    return Needle(label, (text.encode(),))


def workspace_files(folder: Path) -> dict[str, bytes]:
    """The raw bytes of every file under the workspace folder and of every file holding its database: on
    SQLite the database, its WAL and shared memory are in the folder; on PostgreSQL the database's files on
    the server (conftest.database_files)."""
    found = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    return found if "nomina.db" in found else {**found, **database_files(folder)}


def where(needle: Needle, files: dict[str, bytes]) -> list[str]:
    """The files holding any piece of the needle."""
    return [name for name, data in files.items() if any(piece in data for piece in needle.pieces)]


def faces_of(folder: Path, owner: str, record_id: str) -> list[tuple[bytes, str]]:
    """(embedding bytes, landmarks as stored) of every face of a reference or case, read from the database."""
    link = "reference_photos" if owner == "reference" else "case_photos"
    with raw_database(folder) as con:
        rows = con.execute(
            f"SELECT f.embedding, CAST(f.landmarks AS TEXT) FROM faces f JOIN {link} l ON f.{owner}_photo_id = l.id "
            f"WHERE l.{owner}_id = ? ORDER BY f.id",
            (record_id,),
        ).fetchall()
    return [(bytes(embedding), landmarks) for embedding, landmarks in rows]


def needles_of(ws: Workspace, owner: str, record_id: str, photos: list[Path]) -> list[Needle]:
    found = [photo_needle(f"{owner} {record_id} photo {p.name}", p.read_bytes()) for p in photos]
    for n, (embedding, landmarks) in enumerate(faces_of(ws.path, owner, record_id), 1):
        found.append(embedding_needle(f"{owner} {record_id} face {n} embedding", embedding))
        found.append(text_needle(f"{owner} {record_id} face {n} landmarks", landmarks))
    return found


def add_ref(ws: Workspace, faces_dir: Path, ident: str, ref_id: str, **fields: object) -> ReferenceRecord:
    fields.setdefault("name", f"Person {ident}")
    return ws.add_reference(ReferenceFields(ref_id, **fields), [PhotoInput(london(faces_dir, ident))], FAMILY)  # type: ignore[arg-type]


def trail(ws: Workspace, **filters: str) -> list[tuple[str, dict]]:
    """(action, details) of the audit trail, the readings of the trail itself left out."""
    return [(e.action, e.details) for e in ws.audit_log(**filters) if e.action != "audit.view"]


def erase_after_the_next_snapshot(ws: Workspace, reference_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference erased (as by another process) right after the next read snapshot of ``ws`` ends, once."""
    reading, armed = ws._reading, [True]

    @contextmanager
    def erased_after_the_snapshot() -> Iterator[Any]:
        with reading() as s:
            yield s
        if armed.pop() if armed else False:
            ws.delete_reference(reference_id, "consent withdrawn")

    monkeypatch.setattr(ws, "_reading", erased_after_the_snapshot)


def runs(ws: Workspace, action: str) -> list[dict]:
    return [details for name, details in trail(ws) if name == action]


# -- the scan ---------------------------------------------------------------------------------------------
def test_erasure_leaves_no_photo_byte_or_embedding_in_any_file_of_the_workspace(ws, faces_dir, database_engine):
    kept_refs = {"MP-001": "001", "MP-003": "003", "MP-004": "004"}
    for ref_id, ident in kept_refs.items():
        add_ref(ws, faces_dir, ident, ref_id)
    add_ref(ws, faces_dir, "002", "MP-002", name="Zofia Erasmus-Quill", notes="Last seen near the old rope works")
    ws.add_case(CaseFields("UP-1", found_at="North pier"), [PhotoInput(london(faces_dir, "003", "smiling"))])
    ws.add_case(
        CaseFields("UP-2", notes="Tattoo of a swallow on the left wrist"),
        [PhotoInput(london(faces_dir, "005", "smiling"))],
    )
    before_search = ws.search("UP-1")
    assert "MP-002" in [c.reference_id for c in before_search.candidates]
    ws.search("UP-2")
    ws.save_gallery()  # the index snapshot on disk holds every reference vector

    gone = needles_of(ws, "reference", "MP-002", [london(faces_dir, "002")])
    gone += needles_of(ws, "case", "UP-2", [london(faces_dir, "005", "smiling")])
    gone += [
        text_needle("reference MP-002 name", "Zofia Erasmus-Quill"),
        text_needle("reference MP-002 notes", "Last seen near the old rope works"),
        text_needle("case UP-2 notes", "Tattoo of a swallow on the left wrist"),
    ]
    kept = [
        n
        for ref_id, ident in kept_refs.items()
        for n in needles_of(ws, "reference", ref_id, [london(faces_dir, ident)])
    ]
    kept += needles_of(ws, "case", "UP-1", [london(faces_dir, "003", "smiling")])
    assert len([n for n in gone if "embedding" in n.label]) == 2 and len(kept) == 12
    # Before erasure the scan finds every piece of data, the erased ones included: it can see them.
    files = workspace_files(ws.path)
    assert [n.label for n in gone + kept if not where(n, files)] == []
    assert where(gone[1], files) and "index/gallery/vectors.npy" in where(gone[1], files)

    case_gone = ws.delete_case("UP-2", "entered twice")
    assert case_gone.to_dict() == {
        "case_id": "UP-2",
        "faces_removed": 1,
        "photos_removed": 1,
        "searches_removed": 1,
        "warnings": [],
    }
    assert (ws.path / "index" / "gallery").is_dir()  # a case's faces are not in the index: it stays
    ref_gone = ws.delete_reference("MP-002", "the family withdrew consent")
    assert ref_gone.to_dict() == {"reference_id": "MP-002", "faces_removed": 1, "photos_removed": 1, "warnings": []}
    assert (ws.path / "index" / "gallery" / "vectors.npy").is_file()  # scrubbed in place at once (the scan below)
    if database_engine == "sqlite":
        assert (ws.path / "nomina.db-wal").stat().st_size == 0  # checkpointed and truncated

    # Erasure alone leaves nothing: not in the database (its WAL on SQLite, its tables' files on PostgreSQL),
    # the index or the photo store.
    files = workspace_files(ws.path)
    if database_engine == "sqlite":
        assert {"nomina.db", "nomina.db-wal", "nomina.db-shm"} <= set(files)
    else:
        assert {"database:faces", "database:references", "database:cases"} <= set(files)
    assert {n.label: where(n, files) for n in gone if where(n, files)} == {}
    assert [n.label for n in kept if not where(n, files)] == []

    # The normal maintenance, after which the scan is repeated with the index rebuilt.
    done = ws.maintain()
    assert (done.photo_files_removed, done.index_faces, done.warnings) == (0, 3, [])
    files = workspace_files(ws.path)
    assert {database_label("faces"), "index/gallery/vectors.npy"} <= set(files)
    assert sum(name.startswith("photos/") for name in files) == 4
    assert {n.label: where(n, files) for n in gone if where(n, files)} == {}
    assert [n.label for n in kept if not where(n, files)] == []
    for n in kept:
        if n.label.startswith("reference") and "embedding" in n.label:
            assert set(where(n, files)) == {database_label("faces"), "index/gallery/vectors.npy"}, n.label

    # The audit trail keeps the tombstones, with the reasons and counts, and nothing else of the records.
    assert trail(ws, reference_id="MP-002")[-1] == (
        "reference.delete",
        {"photos": 1, "faces": 1, "reason": "the family withdrew consent"},
    )
    assert trail(ws, case_id="UP-2")[-1] == (
        "case.delete",
        {"photos": 1, "faces": 1, "searches": 1, "reason": "entered twice"},
    )
    with raw_database(ws.path) as con:
        details = [r[0] for r in con.execute("SELECT details FROM audit_events").fetchall()]
        assert not any("Zofia" in d or "landmarks" in d or "embedding" in d for d in details)
        # What stays, on purpose: the earlier search of a kept case still names the erased reference, with
        # its score and the SHA-256 of the photo that gave it (docs/erasure.md says why).
        kept_row = con.execute(
            "SELECT rank, score, photo_sha256 FROM candidates WHERE search_id = ? AND reference_id = 'MP-002'",
            (before_search.search_id,),
        ).fetchone()
    erased = next(c for c in before_search.candidates if c.reference_id == "MP-002")
    assert kept_row == (erased.rank, pytest.approx(erased.score, abs=1e-5), erased.photo_sha256)
    assert next(c for c in ws.get_search(before_search.search_id).candidates if c.reference_id == "MP-002").name is None
    assert ws.audit_verify().ok

    # A new search no longer finds the erased reference.
    after = ws.search("UP-1")
    assert [c.reference_id for c in after.candidates][:1] == ["MP-003"]
    assert "MP-002" not in [c.reference_id for c in after.candidates]
    assert after.gallery == {"references": 3, "faces": 3}


def test_maintenance_completes_an_erasure_interrupted_after_its_commit(ws, faces_dir, monkeypatch):
    """A crash between the database commit and the file steps leaves the photo file and the index files;
    maintenance removes both at once (the erasure journalled them), and rebuilds the database file.
    tests/test_erasure_journal.py kills a real process at that point."""
    add_ref(ws, faces_dir, "011", "MP-011")
    add_ref(ws, faces_dir, "012", "MP-012")
    ws.add_case(CaseFields("UP-1"), [PhotoInput(london(faces_dir, "011", "smiling"))])
    ws.search("UP-1")
    ws.save_gallery()
    gone = needles_of(ws, "reference", "MP-012", [london(faces_dir, "012")])
    monkeypatch.setattr(erasure, "finish", lambda *args: (0, []))  # the file steps never run
    monkeypatch.setattr(erasure, "sweep", lambda *args: (0, []))
    ws.delete_reference("MP-012", "entered twice")
    monkeypatch.undo()
    files = workspace_files(ws.path)
    assert where(gone[0], files) and "index/gallery/vectors.npy" in where(gone[1], files)

    done = ws.maintain()
    assert (done.photo_files_removed, done.index_faces, done.warnings) == (1, 1, [])
    files = workspace_files(ws.path)
    assert {n.label: where(n, files) for n in gone if where(n, files)} == {}
    assert runs(ws, "workspace.maintain") == [{"photo_files_removed": 1, "index_faces": 1}]


def test_maintenance_leaves_foreign_files_and_clears_photo_and_index_leftovers(ws, faces_dir, database_engine):
    add_ref(ws, faces_dir, "013", "MP-013")
    photos = ws.path / "photos"
    recent = photos / "ab" / ("ab" + "0" * 62)  # written a moment ago by an enrolment that never committed
    recent.parent.mkdir(exist_ok=True)
    recent.write_bytes(b"new photo")
    incoming = photos / "ab" / ".incoming-x1y2"  # an unfinished write
    incoming.write_bytes(b"half a photo")
    foreign = photos / "ab" / "notes.txt"  # not a name the store uses
    foreign.write_bytes(b"someone's notes")
    (ws.path / "index" / "exact").mkdir(parents=True)  # an older Nomina's index
    (ws.path / "index" / "exact" / "vectors.npy").write_bytes(b"old vectors")
    (ws.path / "index" / ".gallery-abc").mkdir()  # an interrupted snapshot write

    done = ws.maintain()
    assert done.photo_files_removed == 2 and done.warnings == []
    assert foreign.exists() and not recent.exists() and not incoming.exists()
    assert sorted(p.name for p in (ws.path / "index").iterdir() if not p.name.endswith(".lock")) == ["gallery"]
    if database_engine == "sqlite":  # rebuilt from its live rows, the WAL emptied: never larger
        assert 0 < done.database_bytes_after <= done.database_bytes_before
        assert not (ws.path / "nomina.db-wal").exists() or (ws.path / "nomina.db-wal").stat().st_size == 0
    else:  # the tables shrink to their live rows, but rewriting them adds rows to the server's own catalogs
        assert done.database_bytes_before > 0 and done.database_bytes_after > 0


def test_shared_photo_bytes_stay_with_the_record_that_still_uses_them(ws, faces_dir):
    photo = london(faces_dir, "014")
    add_ref(ws, faces_dir, "014", "MP-014")
    ws.add_case(CaseFields("UP-1"), [PhotoInput(photo)])
    assert ws.delete_reference("MP-014", "entered twice").photos_removed == 0
    files = workspace_files(ws.path)
    assert where(photo_needle("shared photo", photo.read_bytes()), files)
    assert ws.delete_case("UP-1", "entered twice").photos_removed == 1
    assert not where(photo_needle("shared photo", photo.read_bytes()), workspace_files(ws.path))


# -- retention --------------------------------------------------------------------------------------------
@pytest.fixture()
def dated(ws: Workspace, faces_dir: Path) -> Workspace:
    """MP-021 kept until in 10 days, MP-022 in 400 days, MP-024 the default 20 years, MP-025 with no date."""
    today = date.today()
    add_ref(ws, faces_dir, "021", "MP-021", retain_until=today + timedelta(days=10))
    add_ref(ws, faces_dir, "022", "MP-022", retain_until=today + timedelta(days=400))
    add_ref(ws, faces_dir, "024", "MP-024")
    ws.set_config("retention_years", 0)
    add_ref(ws, faces_dir, "025", "MP-025")
    ws.add_case(CaseFields("UP-1"), [PhotoInput(london(faces_dir, "021", "smiling"))])
    ws.search("UP-1")
    return ws


def retention_dates(ws: Workspace) -> dict[str, date | None]:
    return {r.reference_id: r.retain_until for r in ws.references()}


def test_references_past_their_retention_date_are_erased_and_the_rest_kept(dated, faces_dir):
    today = date.today()
    assert retention_dates(dated)["MP-024"].year == today.year + 20  # retention_years
    assert retention_dates(dated)["MP-025"] is None
    gone = needles_of(dated, "reference", "MP-021", [london(faces_dir, "021")])
    due = today + timedelta(days=30)

    done = dated.apply_retention(today=due)
    retain = (today + timedelta(days=10)).isoformat()
    assert done.to_dict() == {
        "due_before": due.isoformat(),
        "dry_run": False,
        "references": [{"reference_id": "MP-021", "retain_until": retain, "faces_removed": 1, "photos_removed": 1}],
        "held": [],
        "warnings": [],
    }
    assert set(retention_dates(dated)) == {"MP-022", "MP-024", "MP-025"}
    assert {n.label: where(n, workspace_files(dated.path)) for n in gone if where(n, workspace_files(dated.path))} == {}
    assert trail(dated, reference_id="MP-021")[-1] == (
        "reference.delete",
        {"photos": 1, "faces": 1, "reason": f"retention date {retain} passed"},
    )
    assert runs(dated, "retention.apply") == [{"due_before": due.isoformat(), "references": 1, "cases": 0}]
    assert "MP-021" not in [c.reference_id for c in dated.search("UP-1").candidates]
    assert dated.case("UP-1").case_id == "UP-1"  # cases carry no retention date

    # Applied again the same day, nothing is due; the run is still recorded.
    again = dated.apply_retention(today=due)
    assert again.references == [] and again.warnings == []
    assert runs(dated, "retention.apply")[-1] == {"due_before": due.isoformat(), "references": 0, "cases": 0}
    # Decades later every dated reference is due; the one without a date never is.
    later = dated.apply_retention(today=today + timedelta(days=365 * 21))
    assert [r.reference_id for r in later.references] == ["MP-022", "MP-024"]
    assert set(retention_dates(dated)) == {"MP-025"}


def test_a_reference_an_open_identification_names_is_held_past_its_date(dated):
    dated.add_user("ben", "verifier")
    dated.propose_identification("UP-1", "MP-021", "same scar")
    due = date.today() + timedelta(days=30)
    held = dated.apply_retention(today=due)
    assert held.references == [] and held.held == ["MP-021"]
    assert "MP-021" in retention_dates(dated)
    dated.withdraw_identification("UP-1", "DNA excluded him")
    assert [r.reference_id for r in dated.apply_retention(today=due).references] == ["MP-021"]


@pytest.mark.slow  # over a second
def test_the_report_of_a_case_whose_proposed_reference_was_deleted_says_so(dated, tmp_path):
    dated.add_user("ben", "verifier")
    dated.propose_identification("UP-1", "MP-021", "same scar")
    dated.delete_reference("MP-021", "the family withdrew the report")
    written = dated.report("UP-1", tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert "(reference deleted since the proposal)" in html and "(reference deleted since the search)" in html
    created = [e for e in dated.audit_log(case_id="UP-1") if e.action == "report.create"]
    assert created[-1].details["sha256"] == written.sha256
    assert created[-1].reference_id is None  # no event names a record after its tombstone
    assert dated.audit_verify().ok


@pytest.mark.slow  # over a second
def test_a_report_whose_proposed_reference_is_erased_while_it_is_read_is_not_left_behind(dated, tmp_path, monkeypatch):
    """The report reads in one snapshot and records itself in a later transaction: a reference erased in
    between (another process) leaves no report file and no report event after its tombstone."""
    dated.add_user("ben", "verifier")
    dated.propose_identification("UP-1", "MP-021", "same scar")
    erase_after_the_next_snapshot(dated, "MP-021", monkeypatch)
    with pytest.raises(NotFound, match="reference MP-021: no such reference"):
        dated.report("UP-1", tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()
    actions = [action for action, _ in trail(dated)]
    assert actions[-1] == "reference.delete" and "report.create" not in actions
    assert dated.audit_verify().ok


def test_a_reference_is_kept_on_its_retention_date_and_erased_the_day_after(dated):
    retain = date.today() + timedelta(days=10)
    assert dated.apply_retention(today=retain).references == []
    assert [r.reference_id for r in dated.apply_retention(today=retain + timedelta(days=1)).references] == ["MP-021"]


def test_a_dry_run_reports_exactly_what_would_be_erased_and_changes_nothing(dated):
    due = date.today() + timedelta(days=500)
    before = snapshot(dated.path)
    preview = dated.apply_retention(today=due, dry_run=True)
    assert snapshot(dated.path) == before  # every table, the audit trail included, and every file
    assert preview.dry_run is True and preview.warnings == []
    assert [r.reference_id for r in preview.references] == ["MP-021", "MP-022"]
    done = dated.apply_retention(today=due)
    assert done.references == preview.references


def test_a_retention_date_changed_behind_nomina_s_back_erases_nothing(dated):
    """An erasure cannot be undone: someone who can reach the database must not be able to have a reference
    erased by moving its retention date into the past."""
    with raw_database(dated.path) as db:
        db.execute("""UPDATE "references" SET retain_until = '2001-01-01' WHERE id = 'MP-024'""")
    before = snapshot(dated.path)
    with pytest.raises(RecordTampered, match="^reference MP-024: .*nothing erased"):
        dated.apply_retention()
    with pytest.raises(RecordTampered, match="^reference MP-024: "):
        dated.apply_retention(dry_run=True)
    assert snapshot(dated.path) == before
    assert "MP-024" in {r.reference_id for r in dated.references()}


def test_only_an_admin_applies_retention_or_maintains(dated, settings, model):
    dated.add_user("ben", "examiner")
    ben = Workspace.open(settings.home, settings, model=model, user="ben")
    before = snapshot(dated.path)
    for call in (
        lambda: ben.apply_retention(today=date.today() + timedelta(days=500)),
        lambda: ben.apply_retention(dry_run=True),
        ben.maintain,
    ):
        with pytest.raises(PermissionDenied, match="user 'ben' does not have the admin role"):
            call()
    assert snapshot(dated.path) == before
    ben.close()


def test_a_retention_date_in_the_past_is_refused(dated, faces_dir):
    before = snapshot(dated.path)
    with pytest.raises(InvalidField, match=r"retain_until: 2001-02-03 is in the past"):
        add_ref(dated, faces_dir, "026", "MP-026", retain_until="2001-02-03")
    with pytest.raises(InvalidField, match=r"retain_until: 2001-02-03 is in the past"):
        dated.update_reference("MP-022", retain_until="2001-02-03")
    with pytest.raises(InvalidField, match=r"today: 'soon' is not a date"):
        dated.apply_retention(today="soon")  # type: ignore[arg-type]
    assert snapshot(dated.path) == before
    today = date.today().isoformat()
    assert dated.update_reference("MP-022", retain_until=today).retain_until == date.fromisoformat(today)


# -- the command line -------------------------------------------------------------------------------------
def live_in(monkeypatch: pytest.MonkeyPatch, year: int) -> None:
    """Let the commands run in process believe today is 1 January of ``year``: the passing of time, not an edit
    of the retention dates (which retention refuses, as a change behind Nomina's back)."""
    import nomina.workspace

    class Later(date):
        @classmethod
        def today(cls) -> date:
            return date(year, 1, 1)

    monkeypatch.setattr(nomina.workspace, "date", Later)


@pytest.mark.slow  # about a second
def test_retention_and_maintain_commands(cli_ws, faces_dir, capsys, monkeypatch):
    assert run(capsys, "reference", "add", "R2", london(faces_dir, "002"), "--name", "B", *PROV,
               "--retain-until", "2999-12-31", "-w", cli_ws)[0] == 0  # fmt: skip
    code, out, _ = run(capsys, "reference", "list", "-w", cli_ws)
    assert code == 0 and "retain until" in out and "2999-12-31" in out
    code, out, _ = run(capsys, "reference", "show", "R2", "-w", cli_ws)
    assert "retain_until: 2999-12-31" in out
    r1 = json.loads(run(capsys, "reference", "show", "R1", "--json", "-w", cli_ws)[1])["retain_until"]
    live_in(monkeypatch, int(r1[:4]) + 1)  # R1's date has passed, R2's not

    before = snapshot(cli_ws)
    code, out, err = run(capsys, "retention", "apply", "--dry-run", "-w", cli_ws)
    assert (code, err) == (0, "")
    assert "Dry run: 1 reference(s)" in out and "nothing was changed" in out and "R1" in out and r1 in out
    assert snapshot(cli_ws) == before

    code, out, err = run(capsys, "retention", "apply", "--json", "-w", cli_ws)
    assert (code, err) == (0, "")
    done = json.loads(out)
    assert done["dry_run"] is False and done["due_before"] == f"{int(r1[:4]) + 1}-01-01"
    assert done["references"] == [{"reference_id": "R1", "retain_until": r1, "faces_removed": 1, "photos_removed": 1}]
    code, out, _ = run(capsys, "retention", "apply", "-w", cli_ws)
    assert code == 0 and "Retention applied: 0 reference(s) erased" in out

    code, out, err = run(capsys, "maintain", "-w", cli_ws)
    assert (code, err) == (0, "")
    assert "Maintenance done: 0 leftover photo file(s) removed; index rebuilt with 1 face(s)" in out
    code, out, _ = run(capsys, "maintain", "--json", "-w", cli_ws)
    assert set(json.loads(out)) == {
        "photo_files_removed", "index_faces", "database_bytes_before", "database_bytes_after", "warnings",
    }  # fmt: skip
    code, out, _ = run(capsys, "audit", "log", "--json", "-w", cli_ws)
    actions = [e["action"] for e in json.loads(out)]
    assert actions.count("retention.apply") == 2 and actions.count("workspace.maintain") == 2


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--as", "ben", "retention", "apply"], r"user 'ben' does not have the admin role"),
        (["--as", "ben", "retention", "apply", "--dry-run"], r"user 'ben' does not have the admin role"),
        (["--as", "ben", "maintain"], r"user 'ben' does not have the admin role"),
        (["--as", "ben", "reference", "delete", "R1", "--reason", "duplicate"], r"does not have the admin role"),
        (["reference", "delete", "R1", "--reason", " "], r"--reason: required"),
        (["reference", "update", "R1", "--retain-until", "2001-02-03"], r"--retain-until: 2001-02-03 is in the past"),
        (["reference", "update", "R1", "--retain-until", "2030-02-30"], r"--retain-until: '2030-02-30' is not a date"),
        (
            ["reference", "add", "R2", "{photo}", "--name", "B", *PROV, "--retain-until", "yesterday"],
            r"--retain-until: 'yesterday' is not a date",
        ),
    ],
)
def test_bad_erasure_and_retention_input_is_one_line_and_changes_nothing(cli_ws, faces_dir, capsys, args, pattern):
    assert run(capsys, "user", "add", "ben", "--role", "examiner", "-w", cli_ws)[0] == 0
    before = snapshot(cli_ws)
    code, _, err = run(capsys, *[str(london(faces_dir, "002")) if a == "{photo}" else a for a in args], "-w", cli_ws)
    assert code == 1
    assert_one_error_line(err, pattern)
    assert snapshot(cli_ws) == before


def test_an_unknown_retention_option_is_a_usage_error(cli_ws, capsys):
    before = snapshot(cli_ws)
    code, _, _ = run(capsys, "retention", "apply", "--today", "2999-01-01", "-w", cli_ws)
    assert code == 2
    assert snapshot(cli_ws) == before


# -- ids that searches keep are never given to someone else -------------------------------------------------
@pytest.mark.slow  # about a second or more
def test_an_erased_face_id_is_never_given_to_another_face(ws, faces_dir):
    add_ref(ws, faces_dir, "031", "MP-031")
    add_ref(ws, faces_dir, "032", "MP-032")
    ws.add_case(CaseFields("UP-1"), [PhotoInput(london(faces_dir, "031", "smiling"))])
    search = ws.search("UP-1")
    erased_face = next(c.reference_face_id for c in search.candidates if c.reference_id == "MP-032")
    ws.delete_reference("MP-032", "entered twice")
    new = add_ref(ws, faces_dir, "033", "MP-033")
    assert new.photos[0].faces[0].face_id > erased_face
    ws.delete_case("UP-1", "entered twice")
    case = ws.add_case(CaseFields("UP-2"), [PhotoInput(london(faces_dir, "034", "smiling"))])
    assert case.photos[0].faces[0].face_id > new.photos[0].faces[0].face_id


def test_the_upgrade_to_schema_0005_keeps_every_face_and_starts_above_erased_ids(
    ws, faces_dir, settings, model, database_engine
):
    from alembic import command

    from nomina.store.database import _alembic_config

    ws.add_case(CaseFields("UP-1"), [PhotoInput(london(faces_dir, "031", "smiling"))])
    add_ref(ws, faces_dir, "031", "MP-031")
    add_ref(ws, faces_dir, "032", "MP-032")
    search = ws.search("UP-1")
    erased_face = max(c.reference_face_id for c in search.candidates)
    command.downgrade(_alembic_config(ws._shared.db.engine), "0004")
    ws.close()
    with raw_database(ws.path) as con:
        if database_engine == "sqlite":  # on PostgreSQL, ids come from a sequence, which never goes back
            assert "AUTOINCREMENT" not in faces_table_sql(con)
            con.execute("PRAGMA foreign_keys = ON")
        # An erasure under schema 0004: the face with the largest id goes, its id stays in the search.
        con.execute("DELETE FROM faces WHERE id = ?", (erased_face,))
        con.commit()
        cursor = con.execute("SELECT * FROM faces ORDER BY id")
        before = cursor.fetchall()
        columns = ", ".join(d[0] for d in cursor.description)  # later schemas add columns

    upgraded = Workspace.open(settings.home, settings, model=model, user="ana")
    with raw_database(upgraded.path) as con:
        assert con.execute(f"SELECT {columns} FROM faces ORDER BY id").fetchall() == before
        if database_engine == "sqlite":
            assert "AUTOINCREMENT" in faces_table_sql(con)
    new = add_ref(upgraded, faces_dir, "033", "MP-033")
    assert new.photos[0].faces[0].face_id == erased_face + 1
    upgraded.close()


def faces_table_sql(con: object) -> str:
    """The statement that created the faces table (SQLite)."""
    return con.execute("SELECT sql FROM sqlite_master WHERE name = 'faces'").fetchone()[0]  # type: ignore[attr-defined]


def test_an_erased_reference_id_is_not_given_to_a_new_reference(ws, faces_dir, tmp_path):
    add_ref(ws, faces_dir, "038", "MP-035")
    ws.delete_reference("MP-035", "the family withdrew consent")
    before = snapshot(ws.path)
    with pytest.raises(Conflict, match=r"reference MP-035: the id of a reference erased on \d{4}-\d\d-\d\d; give"):
        add_ref(ws, faces_dir, "036", "MP-035")
    assert snapshot(ws.path) == before
    manifest = tmp_path / "refs.csv"
    manifest.write_text(
        "reference_id,name,photo,source,supplied_by,legal_basis\n"
        f"MP-035,Someone,{london(faces_dir, '036')},family,a sister,family request\n"
        f"MP-036,Someone else,{london(faces_dir, '036')},family,a sister,family request\n"
    )
    report = ws.import_references(manifest)
    assert (report.added, [f.line for f in report.failures]) == (1, [2])
    assert "the id of a reference erased on" in report.failures[0].error
    # A case's id may be given again: nothing but the audit trail keeps it, and it shows the erasure first.
    ws.add_case(CaseFields("UP-1"), [PhotoInput(london(faces_dir, "036", "smiling"))])
    ws.delete_case("UP-1", "wrong photos")
    ws.add_case(CaseFields("UP-1"), [PhotoInput(london(faces_dir, "037", "smiling"))])
    assert [a for a, _ in trail(ws, case_id="UP-1")] == ["case.create", "case.delete", "case.create"]


# -- reading while an erasure commits ----------------------------------------------------------------------
def test_a_record_erased_while_it_was_read_is_not_handed_out_nor_viewed_after_its_tombstone(ws, faces_dir, monkeypatch):
    """A view reads in one snapshot and records its event in a later transaction: an erasure committing in
    between must leave the reader with nothing, and the trail with no view or report after the erasure."""
    add_ref(ws, faces_dir, "014", "MP-014")
    ws.add_case(CaseFields("UP-1"), [PhotoInput(london(faces_dir, "014", "smiling"))])
    ws.search("UP-1")
    erase_after_the_next_snapshot(ws, "MP-014", monkeypatch)
    with pytest.raises(NotFound, match="reference MP-014: no such reference"):
        ws.reference("MP-014")
    actions = [action for action, _ in trail(ws)]
    assert actions[-1] == "reference.delete" and "reference.view" not in actions
    assert ws.audit_verify().ok


def test_a_photo_file_gone_since_its_record_was_read_is_not_found_not_a_crash(ws, faces_dir):
    record = add_ref(ws, faces_dir, "014", "MP-014")
    sha = record.photos[0].sha256
    ws.photos.path(sha).unlink()  # what an erasure committing after the record was read leaves
    with pytest.raises(NotFound, match=rf"photo {sha[:12]}: not in the photo store"):
        ws.photos.read(sha)


def test_an_erasure_whose_file_steps_find_the_workspace_busy_says_it_is_recorded(ws, faces_dir, monkeypatch):
    """Another change holding the write lock right after the erasure's commit made the command say "nothing
    was changed, try again" and exit 1, while the erasure stood; trying again then said "no such reference"."""
    from nomina.store import database

    record = add_ref(ws, faces_dir, "014", "MP-014")
    photo = ws.photos.path(record.photos[0].sha256)
    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.2)
    finish = ws._finish_erasure

    def busy_meanwhile() -> list[str]:
        with ws._shared.db._writer:  # another change is being written when the file steps begin
            return finish()

    monkeypatch.setattr(ws, "_finish_erasure", busy_meanwhile)
    (warning,) = ws.delete_reference("MP-014", "consent withdrawn").warnings
    assert warning.startswith("the erasure is recorded, but the workspace stayed busy") and "nomina maintain" in warning
    assert photo.exists()  # the file step waits in the journal
    monkeypatch.undo()
    with pytest.raises(NotFound):
        ws.reference("MP-014")
    ws.maintain()
    assert not photo.exists()
    with raw_database(ws.path) as con:
        assert con.execute("SELECT COUNT(*) FROM pending_erasures").fetchone()[0] == 0
