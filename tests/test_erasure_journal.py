"""Nothing of a workspace is readable by anyone but its owner, and an erasure interrupted after its commit is
finished at the next opening or maintenance, leaving no byte of the erased photo anywhere in the folder."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from conftest import (
    USER,
    database_label,
    london,
    postgresql_only,
    raw_database,
    run,
    sqlite_only,
    take_writer_lock,
)
from test_erasure import Needle, add_ref, needles_of, photo_needle, where, workspace_files

from nomina import CaseFields, PhotoInput, Provenance, ReferenceFields, Workspace, erasure
from nomina.erasure import MaintenanceResult
from nomina.store import DB_URL_NAME, database
from nomina.store.server import shown

pytestmark = pytest.mark.slow  # processes killed mid-erasure and database rewrites: about 13 s; CI runs them

FAMILY = Provenance("family", "a sister", "family request under national missing-persons law")


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def readable_by_others(*roots: Path) -> dict[str, str]:
    """Every file and folder under ``roots`` (the roots included) that its group or others may use."""
    found = {}
    for root in roots:
        for p in [root, *root.rglob("*")] if root.is_dir() else [root]:
            mode = p.lstat().st_mode
            if mode & 0o077:
                found[str(p)] = stat.filemode(mode)
    return found


# -- permissions --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mask", [0o022, 0o002], ids=["umask-022", "umask-002"])
def test_every_file_and_folder_nomina_writes_is_its_owners_alone(tmp_path, settings, model, faces_dir, mask):
    out = tmp_path / "out"
    out.mkdir()
    with umask(mask):
        ws = Workspace.create(settings.home, settings, model=model, admin=USER)
        try:
            ws.add_reference(ReferenceFields("MP-1", name="Ana"), [PhotoInput(london(faces_dir, "001"))], FAMILY)
            ws.add_reference(ReferenceFields("MP-2", name="Bea"), [PhotoInput(london(faces_dir, "002"))], FAMILY)
            ws.add_case(CaseFields("UP-1"), [PhotoInput(london(faces_dir, "001", "smiling"))])
            ws.search("UP-1")
            ws.report("UP-1", out / "UP-1.html")
            ws.export_identifications(out / "identifications.json")
            files = {p.name for p in ws.path.rglob("*") if p.is_file()}
            database = (
                {"nomina.db", "nomina.db-wal", "nomina.db-shm"} if (ws.path / "nomina.db").exists() else {DB_URL_NAME}
            )
            assert {*database, "vectors.npy", "meta.json"} <= files
            assert readable_by_others(ws.path, out / "UP-1.html", out / "identifications.json") == {}
        finally:
            ws.close()


@sqlite_only("the modes of nomina.db, its -wal and its -shm")
def test_opening_a_workspace_takes_group_and_other_permissions_off_its_folder_and_database(ws):
    """A workspace made by an earlier version, or opened by another program that left its -wal and -shm."""
    ws.close()
    other = sqlite3.connect(ws.path / "nomina.db")  # keeps nomina.db-wal and -shm in place
    try:
        other.execute("SELECT count(*) FROM users").fetchone()
        for name, mode in [(".", 0o755), ("nomina.db", 0o644), ("nomina.db-wal", 0o664), ("nomina.db-shm", 0o644)]:
            os.chmod(ws.path / name, mode)
        with Workspace.open(ws.path, ws.settings, user=USER) as again:
            again.info()
            assert stat.S_IMODE(ws.path.stat().st_mode) == 0o700
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in ws.path.glob("nomina.db*")}
            assert modes == {"nomina.db": 0o600, "nomina.db-wal": 0o600, "nomina.db-shm": 0o600}
    finally:
        other.close()


@postgresql_only("the mode of nomina.database, the file naming the database (it may hold a password)")
def test_opening_a_workspace_takes_group_and_other_permissions_off_its_folder_and_database_file(ws):
    ws.close()
    for name, mode in [(".", 0o755), (DB_URL_NAME, 0o644)]:
        os.chmod(ws.path / name, mode)
    with Workspace.open(ws.path, ws.settings, user=USER) as again:
        again.info()
    assert stat.S_IMODE(ws.path.stat().st_mode) == 0o700
    assert stat.S_IMODE((ws.path / DB_URL_NAME).stat().st_mode) == 0o600


# -- an erasure interrupted after its commit -------------------------------------------------------------------
#: A process that erases a reference and is killed (SIGKILL: no clean-up of any kind) right after the
#: erasing transaction commits, where the file steps would begin.
ERASE_AND_DIE = """
import os, signal, sys
from nomina import Workspace, erasure

def killed(*args):
    os.kill(os.getpid(), signal.SIGKILL)

erasure.finish = killed
ws = Workspace.open(sys.argv[1], user=sys.argv[2])
ws.delete_reference(sys.argv[3], "the family withdrew consent")
"""


def run_and_kill(script: str, *args: object) -> None:
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr


def journal(folder: Path) -> list[tuple[str, str | None]]:
    with raw_database(folder) as con:
        return [tuple(r) for r in con.execute("SELECT step, photo_sha256 FROM pending_erasures ORDER BY id").fetchall()]


@pytest.fixture()
def interrupted(ws, faces_dir) -> tuple[Workspace, list[Needle], list[Needle]]:
    """A workspace in which MP-2's erasure was committed by a process killed before its file steps: the
    needles of MP-2 (gone) and of MP-1 and UP-1 (kept)."""
    add_ref(ws, faces_dir, "021", "MP-1")
    add_ref(ws, faces_dir, "022", "MP-2")
    ws.add_case(CaseFields("UP-1"), [PhotoInput(london(faces_dir, "021", "smiling"))])
    ws.search("UP-1")
    ws.save_gallery()
    gone = needles_of(ws, "reference", "MP-2", [london(faces_dir, "022")])
    kept = needles_of(ws, "reference", "MP-1", [london(faces_dir, "021")])
    kept += needles_of(ws, "case", "UP-1", [london(faces_dir, "021", "smiling")])
    run_and_kill(ERASE_AND_DIE, ws.path, USER, "MP-2")
    # What the killed process left: the photo file and the index that holds the vector, both journalled.
    files = workspace_files(ws.path)
    assert where(gone[0], files) and "index/gallery/vectors.npy" in where(gone[1], files)
    sha = hashlib.sha256(london(faces_dir, "022").read_bytes()).hexdigest()
    assert journal(ws.path) == [("photo", sha), ("index", None), ("settle", None)]
    return ws, gone, kept


def assert_erased(folder: Path, gone: list[Needle], kept: list[Needle]) -> None:
    files = workspace_files(folder)
    assert {n.label: where(n, files) for n in gone if where(n, files)} == {}
    assert [n.label for n in kept if not where(n, files)] == []
    assert journal(folder) == []


def test_maintenance_finishes_an_erasure_whose_process_was_killed_after_the_commit(interrupted):
    ws, gone, kept = interrupted
    done = ws.maintain()  # at once: the photo file is seconds old
    assert (done.photo_files_removed, done.index_faces, done.warnings) == (1, 1, [])
    assert_erased(ws.path, gone, kept)


def test_opening_the_workspace_finishes_an_erasure_whose_process_was_killed(interrupted):
    ws, gone, kept = interrupted
    ws.close()
    with Workspace.open(ws.path, ws.settings, user=USER):  # any command, by any user
        assert_erased(ws.path, gone, kept)


def test_a_photo_enrolled_again_before_the_erasure_is_finished_keeps_its_file(interrupted, faces_dir):
    ws, _, _ = interrupted
    add_ref(ws, faces_dir, "022", "MP-3")  # the same photo: its file was still there, so it was not written again
    assert ws.maintain().warnings == []
    assert journal(ws.path) == []
    assert ws.reference("MP-3").photos[0].sha256 == hashlib.sha256(london(faces_dir, "022").read_bytes()).hexdigest()
    assert ws.photos.read(ws.reference("MP-3").photos[0].sha256) == london(faces_dir, "022").read_bytes()


# -- an enrolment interrupted while writing its photos ---------------------------------------------------------
#: A process that enrols a reference with two photos and is killed while writing the second photo file: the
#: first is complete (its record never committed), the second a partial ``.incoming-*`` file.
ENROL_AND_DIE = """
import os, signal, sys
from pathlib import Path
from nomina import PhotoInput, Provenance, ReferenceFields, Workspace

renamed = []
real_replace = os.replace

def replace(src, dst, *args, **kwargs):
    if Path(src).name.startswith(".incoming-"):
        renamed.append(dst)
        if len(renamed) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)

os.replace = replace
ws = Workspace.open(sys.argv[1], user=sys.argv[2])
ws.add_reference(
    ReferenceFields("MP-9", name="Nine"),
    [PhotoInput(Path(sys.argv[3])), PhotoInput(Path(sys.argv[4]))],
    Provenance("family", "a brother", "family request"),
)
"""


@pytest.mark.slow
def test_maintenance_removes_what_a_killed_enrolment_left_at_once(ws, faces_dir):
    add_ref(ws, faces_dir, "031", "MP-1")
    first, second = london(faces_dir, "032"), london(faces_dir, "032", "smiling")
    run_and_kill(ENROL_AND_DIE, ws.path, USER, first, second)
    left = sorted(p.name.startswith(".incoming-") for p in (ws.path / "photos").rglob("*") if p.is_file())
    assert left == [False, False, True]  # MP-1's photo, the first photo, the unfinished second (.incoming-*)
    leftovers = [photo_needle(f"photo {p.name}", p.read_bytes()) for p in (first, second)]
    kept = needles_of(ws, "reference", "MP-1", [london(faces_dir, "031")])
    assert all(where(n, workspace_files(ws.path)) for n in leftovers)

    done = ws.maintain()  # the files are seconds old: the write lock, not their age, shows no one needs them
    assert (done.photo_files_removed, done.warnings) == (2, [])
    files = workspace_files(ws.path)
    assert {n.label: where(n, files) for n in leftovers if where(n, files)} == {}
    assert [n.label for n in kept if not where(n, files)] == []
    assert [r.reference_id for r in ws.references()] == ["MP-1"]


@pytest.mark.slow
def test_an_erasure_removes_what_a_killed_enrolment_left(ws, faces_dir):
    """A killed import may have written photo files of the person whose record is then erased (MP-9 never
    committed; its photos belong to no record): the erasure, holding the write lock, removes every file no
    record names, without waiting for maintenance."""
    add_ref(ws, faces_dir, "031", "MP-1")
    add_ref(ws, faces_dir, "034", "MP-2")
    first, second = london(faces_dir, "032"), london(faces_dir, "032", "smiling")
    run_and_kill(ENROL_AND_DIE, ws.path, USER, first, second)
    leftovers = [photo_needle(f"photo {p.name}", p.read_bytes()) for p in (first, second)]
    assert all(where(n, workspace_files(ws.path)) for n in leftovers)
    kept = needles_of(ws, "reference", "MP-2", [london(faces_dir, "034")])

    assert ws.delete_reference("MP-1", "consent withdrawn").warnings == []
    files = workspace_files(ws.path)
    assert {n.label: where(n, files) for n in leftovers if where(n, files)} == {}
    assert [n.label for n in kept if not where(n, files)] == []


def test_maintenance_waits_for_an_enrolment_writing_its_photos_and_leaves_them(ws, faces_dir):
    """Another process enrols a photo: it holds the write lock while writing the file, before its commit."""
    data = london(faces_dir, "033").read_bytes()
    with raw_database(ws.path) as other:
        take_writer_lock(other)
        sha, written = ws.photos.put(data)
        assert written
        finished: list[MaintenanceResult] = []
        maintaining = threading.Thread(target=lambda: finished.append(ws.maintain()))
        maintaining.start()
        maintaining.join(1.0)
        assert maintaining.is_alive() and ws.photos.has(sha)  # maintenance waits for the lock
        other.execute(
            "INSERT INTO photos (sha256, format, width, height, size_bytes, stored_at) "
            "VALUES (?, 'JPEG', 640, 480, ?, '2026-12-02 10:00:00.000000')",
            (sha, len(data)),
        )
        other.commit()
        maintaining.join(60)
    assert finished[0].photo_files_removed == 0 and ws.photos.read(sha) == data


# -- warnings that say which files may still hold erased rows --------------------------------------------------
MAINTAIN = "run maintenance when no one else is using the workspace"


@pytest.fixture()
def three_refs(ws, faces_dir, settings, model, monkeypatch) -> Workspace:
    """MP-1, MP-2 and MP-3, in a workspace opened again with a 1 s busy timeout (the checkpoint waits that
    long for other connections' reads before it gives up)."""
    for n in (1, 2, 3):
        add_ref(ws, faces_dir, f"04{n}", f"MP-{n}")
    ws.close()
    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 1)
    again = Workspace.open(settings.home, settings, model=model, user=USER)
    yield again
    again.close()


@contextmanager
def reading(folder: Path) -> Iterator[object]:
    """Another connection in the middle of a read: it holds the state of the database it began with (on
    SQLite), and the tables it read (on PostgreSQL, until it ends)."""
    if not (folder / DB_URL_NAME).exists():
        con = sqlite3.connect(folder / "nomina.db", isolation_level=None)
        try:
            con.execute("BEGIN")
            con.execute("SELECT count(*) FROM faces").fetchone()
            yield con
        finally:
            con.close()
        return
    with raw_database(folder) as con:
        con.execute("SELECT count(*) FROM faces").fetchone()
        yield con


def unsettled(folder: Path) -> str:
    """The start of the warning of an erasure whose database could not be settled, naming where the erased
    rows may still be (on SQLite, the database file and its WAL: see the tests below)."""
    if (folder / DB_URL_NAME).exists():
        return f"{shown((folder / DB_URL_NAME).read_text().strip())}: the files of its tables may still hold "
    return f"{folder / 'nomina.db'} and {folder / 'nomina.db'}-wal may still hold "


@pytest.mark.slow
@sqlite_only("the two ways a SQLite checkpoint stops short (database file, WAL)")
def test_a_blocked_checkpoint_names_the_files_that_may_still_hold_the_erased_rows(three_refs, faces_dir, monkeypatch):
    ws = three_refs
    db = ws.path / "nomina.db"
    gone = [n for r in ("1", "2") for n in needles_of(ws, "reference", f"MP-{r}", [london(faces_dir, f"04{r}")])]

    # A reader of the state before the erasure: the zeroed pages cannot be copied into nomina.db.
    with reading(ws.path):
        erased = ws.delete_reference("MP-1", "entered twice")
    assert erased.warnings == [
        f"{db} and {db}-wal may still hold the erased rows: another connection was reading an earlier state of "
        f"the database, so the changes since could not be copied into {db}; {MAINTAIN}"
    ]
    assert "nomina.db" in where(gone[1], workspace_files(ws.path))  # MP-1's embedding: so it does
    assert journal(ws.path) == [("settle", None)]  # the checkpoint stays to do, whatever happens to this process

    # A reader of the newest state: nomina.db gets the zeroed pages, but the WAL cannot be emptied.
    settle = erasure.settle
    with reading(ws.path) as reader:

        def settle_while_reading(engine):
            reader.execute("COMMIT")
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM faces").fetchone()
            return settle(engine)

        monkeypatch.setattr(erasure, "settle", settle_while_reading)
        erased = ws.delete_reference("MP-2", "entered twice")
        monkeypatch.setattr(erasure, "settle", settle)
    assert erased.warnings == [
        f"{db}-wal may still hold earlier images of the erased rows: another connection was reading the database, "
        f"so it could not be emptied; {MAINTAIN}"
    ]
    # Only nomina.db-wal holds any of them now (MP-2's, in the page images the first erasure wrote);
    # maintenance, with no one else reading, leaves them nowhere.
    files = workspace_files(ws.path)
    assert {name for n in gone for name in where(n, files)} == {"nomina.db-wal"}
    assert ws.maintain().warnings == []
    files = workspace_files(ws.path)
    assert {n.label: where(n, files) for n in gone if where(n, files)} == {}
    assert journal(ws.path) == []


@postgresql_only("a table rewrite held up by another connection")
def test_a_blocked_rewrite_names_the_database_whose_files_may_still_hold_the_erased_rows(three_refs, faces_dir):
    ws = three_refs
    gone = needles_of(ws, "reference", "MP-1", [london(faces_dir, "041")])
    with reading(ws.path):  # a transaction that read the faces table: it cannot be rewritten until it ends
        erased = ws.delete_reference("MP-1", "entered twice")
    assert erased.warnings == [
        f"{unsettled(ws.path)}the erased rows: another connection was using those tables or reading an earlier "
        f"state of the database, so they could not be rewritten; {MAINTAIN}"
    ]
    assert database_label("faces") in where(gone[1], workspace_files(ws.path))  # MP-1's embedding: so it does
    assert journal(ws.path) == [("settle", None)]  # the rewrite stays to do, whatever happens to this process
    assert ws.maintain().warnings == []
    files = workspace_files(ws.path)
    assert {n.label: where(n, files) for n in gone if where(n, files)} == {}
    assert journal(ws.path) == []


@contextmanager
def snapshot_of_another_table(folder: Path) -> Iterator[object]:
    """Another connection holding a snapshot from before the erasure (as a long report or export holds one)
    without touching the tables the erasure deletes from: no lock stops a rewrite, but the rewrite would keep
    every row that snapshot can still see."""
    with raw_database(folder) as con:
        con.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        con.execute("SELECT count(*) FROM users").fetchone()
        yield con


@postgresql_only("a table rewrite keeps the rows an older snapshot can still see")
def test_a_rewrite_waits_for_older_snapshots_and_says_so_when_one_stays(three_refs, faces_dir):
    ws = three_refs
    gone = needles_of(ws, "reference", "MP-1", [london(faces_dir, "041")])
    with snapshot_of_another_table(ws.path):
        erased = ws.delete_reference("MP-1", "entered twice")
    assert erased.warnings == [
        f"{unsettled(ws.path)}the erased rows: another connection was using those tables or reading an earlier "
        f"state of the database, so they could not be rewritten; {MAINTAIN}"
    ]
    assert database_label("faces") in where(gone[1], workspace_files(ws.path))
    assert journal(ws.path) == [("settle", None)]
    assert ws.maintain().warnings == []
    files = workspace_files(ws.path)
    assert {n.label: where(n, files) for n in gone if where(n, files)} == {}
    assert journal(ws.path) == []


@postgresql_only("a table rewrite keeps the rows an older snapshot can still see")
def test_a_rewrite_waits_for_a_short_older_snapshot_to_end(three_refs, faces_dir):
    ws = three_refs  # a busy timeout of 1 s: the reader below ends well within it
    gone = needles_of(ws, "reference", "MP-1", [london(faces_dir, "041")])
    with snapshot_of_another_table(ws.path) as reader:
        ending = threading.Timer(0.3, reader.commit)
        ending.start()
        try:
            erased = ws.delete_reference("MP-1", "entered twice")
        finally:
            ending.join()
    assert erased.warnings == []
    files = workspace_files(ws.path)
    assert {n.label: where(n, files) for n in gone if where(n, files)} == {}
    assert journal(ws.path) == []


def test_a_checkpoint_an_erasure_could_not_make_is_made_by_the_next_opening(three_refs, faces_dir, settings, model):
    ws = three_refs
    gone = needles_of(ws, "reference", "MP-1", [london(faces_dir, "041")])
    with reading(ws.path):
        assert ws.delete_reference("MP-1", "entered twice").warnings  # the process then stops
    ws.close()
    assert journal(ws.path) == [("settle", None)]
    with Workspace.open(ws.path, settings, model, user=USER) as again:
        assert again.opening_warnings == []
    assert journal(ws.path) == []
    files = workspace_files(ws.path)
    assert {n.label: where(n, files) for n in gone if where(n, files)} == {}


def test_the_command_line_says_which_command_finishes_the_erasure(three_refs, capsys):
    ws = three_refs
    ws.close()
    with reading(ws.path):
        code, out, err = run(capsys, "reference", "delete", "MP-3", "--reason", "entered twice", "-w", ws.path)
    assert code == 0 and out.startswith("Deleted reference MP-3")
    assert err.startswith(f"warning: {unsettled(ws.path)}") and err.count("\n") == 1
    assert err.rstrip().endswith("run `nomina maintain` when no one else is using the workspace")


@postgresql_only("PostgreSQL's statistics catalogue keeps sample values of the columns it analyses")
def test_postgresql_keeps_no_statistics_of_personal_values_and_the_upgrade_drops_those_kept(
    three_refs, settings, model
):
    """ANALYZE (autovacuum runs it by itself) copied whole embeddings, names and file names into pg_statistic,
    where an erasure never reached them. Only the keys joins use are sampled now; statistics kept before
    schema 0014 go with the upgrade."""
    import importlib

    from alembic import command
    from sqlalchemy import inspect

    from nomina.store.database import _alembic_config

    erased = importlib.import_module("nomina.store.migrations.versions.0014_no_statistics_of_personal_data").ERASED
    ws = three_refs

    def sampled() -> set[tuple[str, str]]:
        with raw_database(ws.path) as con:
            con.execute("ANALYZE")
            rows = con.execute(
                "SELECT tablename, attname FROM pg_stats WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            ).fetchall()
        return {(t, c) for t, c in rows if t in erased}

    engine = ws._shared.db.engine
    keys = inspect(engine)
    allowed = {
        (t, c)
        for t in erased
        for c in {*keys.get_pk_constraint(t)["constrained_columns"]}
        | {c for fk in keys.get_foreign_keys(t) for c in fk["constrained_columns"]}
    }
    now = sampled()
    assert ("faces", "id") in now and now <= allowed, now - allowed  # analysed, but keys only

    command.downgrade(_alembic_config(engine), "0013")  # as a workspace made before 0014
    before = sampled()
    assert {("faces", "embedding"), ("references", "name"), ("reference_photos", "file_name")} <= before
    ws.close()
    Workspace.open(settings.home, settings, model=model, user=USER).close()  # opening upgrades it
    assert sampled() <= allowed
