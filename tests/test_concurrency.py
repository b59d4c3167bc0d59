"""One open workspace, many users, many threads: every rule holds and nothing fails but with a documented error.

The workspace is opened once; each thread acts through ``ws.as_user(name)``, as a web server's requests
will. Threads start together at a barrier, so the races the rules must survive happen: the same id added
twice at once, two proposals for one case, two verifications of one proposal, erasures during searches,
listings while others write.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import INTEGRITY_ERRORS, USER, london, raw_database, token_for

from nomina import CaseFields, PhotoInput, Provenance, ReferenceFields, Workspace
from nomina.errors import Conflict, NominaError, NotFound, PermissionDenied

pytestmark = pytest.mark.slow  # threads and processes racing: about 7 s; CI runs them

PROV = Provenance("family", "a sister", "family request")
THREADS = 16


def _reference(ws: Workspace, ident: str, faces: Path) -> None:
    ws.add_reference(ReferenceFields(f"MP-{ident}", f"Person {ident}"), [PhotoInput(london(faces, ident))], PROV)


def _run_then_close(threads: list[threading.Thread], openings: list[Workspace]) -> None:
    """Start the threads, wait for all of them, then close the openings they acted through."""
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for view in openings:
        view.close()


@pytest.fixture()
def team(ws: Workspace, faces_dir: Path) -> Workspace:
    """A workspace with four references, three searched cases, and a team: examiners, verifiers, an admin."""
    ws.add_user("ex1", "examiner")
    ws.add_user("ex2", "examiner")
    ws.add_user("ver1", "verifier")
    ws.add_user("ver2", "verifier")
    for ident in ("001", "002", "003", "004"):
        _reference(ws, ident, faces_dir)
    for ident in ("001", "002", "003"):
        ws.add_case(CaseFields(f"UP-{ident}"), [PhotoInput(london(faces_dir, ident, "smiling"))])
        ws.search(f"UP-{ident}")
    ws.as_user("ex1").propose_identification("UP-002", "MP-002", "same ears and scar")
    return ws


def test_sixteen_threads_as_different_users_keep_every_rule(team: Workspace, faces_dir: Path) -> None:
    ws = team
    barrier = threading.Barrier(THREADS)
    outcomes: list[tuple[str, str]] = []  # (task, "ok" or error code)
    unexpected: list[BaseException] = []
    lock = threading.Lock()

    def task(name: str, user: str, work: Callable[[Workspace], object], repeat: int = 1) -> Callable[[], None]:
        def run() -> None:
            me = ws.as_user(user)
            assert me.user == user
            barrier.wait()
            for _ in range(repeat):
                try:
                    work(me)
                    result = "ok"
                except (Conflict, NotFound) as exc:  # the documented outcomes of a lost race
                    result = exc.code
                except BaseException as exc:  # noqa: BLE001 - anything else is a failure of the test
                    with lock:
                        unexpected.append(exc)
                    return
                with lock:
                    outcomes.append((name, result))

        return run

    new_ids = ["010", "011", "012", "013"]
    tasks = [
        # the same new reference added by two examiners at the same moment: one wins, one gets Conflict
        task("dup-add", "ex1", lambda me: _reference(me, "020", faces_dir)),
        task("dup-add", "ex2", lambda me: _reference(me, "020", faces_dir)),
        # different new references, each added once
        *[task("add", "ex1", lambda me, i=i: _reference(me, i, faces_dir)) for i in new_ids[:2]],
        *[task("add", "ex2", lambda me, i=i: _reference(me, i, faces_dir)) for i in new_ids[2:]],
        # two proposals for one case at once: exactly one
        task("propose", "ex1", lambda me: me.propose_identification("UP-001", "MP-001", "ears")),
        task("propose", "ex2", lambda me: me.propose_identification("UP-001", "MP-001", "ears")),
        # two verifiers verify the same proposal at once: exactly one
        task("verify", "ver1", lambda me: me.verify_identification("UP-002", "same person", "ears match", "MP-002")),
        task("verify", "ver2", lambda me: me.verify_identification("UP-002", "same person", "ears match", "MP-002")),
        # searches while the gallery changes
        task("search", "ex1", lambda me: me.search("UP-003"), repeat=4),
        task("search", "ex2", lambda me: me.search("UP-003", top=3), repeat=4),
        # conclusions on the first search of a case
        task("conclude", "ex2", lambda me: me.conclude(3, 1, "possible match", "same ears"), repeat=3),
        # an admin erases a reference while others search
        task("erase", USER, lambda me: me.delete_reference("MP-004", "entered twice")),
        # listings that append to the audit trail while others write
        task("list", "ver1", lambda me: (me.references(), me.cases()), repeat=5),
        task("list", "ex1", lambda me: (me.cases(), me.searches(), me.identifications()), repeat=5),
    ]
    assert len(tasks) == THREADS
    threads = [threading.Thread(target=t) for t in tasks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread is still running: a deadlock"
    assert unexpected == [], [f"{type(e).__name__}: {e}" for e in unexpected]

    by_task = Counter(outcomes)
    assert by_task[("dup-add", "ok")] == 1 and by_task[("dup-add", "conflict")] == 1
    assert by_task[("add", "ok")] == 4
    assert by_task[("propose", "ok")] == 1 and by_task[("propose", "conflict")] == 1
    assert by_task[("verify", "ok")] == 1 and by_task[("verify", "conflict")] == 1
    assert by_task[("search", "ok")] == 8
    assert by_task[("conclude", "ok")] == 3
    assert by_task[("erase", "ok")] == 1
    assert by_task[("list", "ok")] == 10

    # the counts are what the operations that succeeded say they should be
    refs = [r.reference_id for r in ws.references()]
    assert refs == sorted(["MP-001", "MP-002", "MP-003", *(f"MP-{i}" for i in new_ids), "MP-020"])
    assert ws.identification("UP-001").status == "proposed"
    assert ws.identification("UP-002").status == "identified"
    assert len(ws.identification("UP-001").history) == 1
    assert len(ws.searches("UP-003")) == 1 + 8
    # every search recorded its candidates whole, whether it ran before or after the erasure
    for summary in ws.searches("UP-003")[1:]:
        assert ws.get_search(summary.search_id).candidates[0].reference_id == "MP-003"
    # the trail is whole: one unbroken chain, every event of the run in it
    verified = ws.audit_verify()
    assert verified.ok, verified.reason
    with raw_database(ws.path) as con:
        seqs = [r[0] for r in con.execute("SELECT seq FROM audit_events ORDER BY seq").fetchall()]
    assert seqs == list(range(1, len(seqs) + 1))


def test_as_user_views_share_the_open_workspace_and_act_as_their_own_user(team: Workspace) -> None:
    ws = team
    ben = ws.as_user("ver1")
    assert ben.user == "ver1" and ws.user == USER
    assert ben.gallery_index() is ws.gallery_index()  # one index, loaded once, for every view
    assert ben.model is ws.model
    # each call checks its own user's role: a verifier cannot search, the view it came from still can
    with pytest.raises(PermissionDenied, match="does not have the examiner role") as caught:
        ben.search("UP-001")
    assert caught.value.code == "permission_denied" and caught.value.http_status == 403
    assert ws.search("UP-001").candidates
    # a view of a user who does not exist, or was disabled, is refused when it is made
    with pytest.raises(NotFound, match="no such user"):
        ws.as_user("nobody")
    ws.disable_user("ver2")
    with pytest.raises(PermissionDenied, match="disabled"):
        ws.as_user("ver2")
    # and a view made before its user was disabled can do nothing afterwards
    ex2 = ws.as_user("ex2")
    ws.disable_user("ex2")
    with pytest.raises(PermissionDenied, match="disabled"):
        ex2.cases()


def test_a_lost_race_on_a_constraint_is_a_conflict_never_a_database_error(team: Workspace) -> None:
    """Two threads adding the same user at once: the second sees the first, or loses on the constraint."""
    ws = team
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def add() -> None:
        barrier.wait()
        try:
            ws.add_user("dee", "examiner")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1 and isinstance(errors[0], Conflict), errors
    assert isinstance(errors[0], NominaError) and "already exists" in str(errors[0])
    assert [u.name for u in ws.users()].count("dee") == 1


@pytest.mark.slow  # six processes each loading the model: about 20 s on two cores
def test_command_lines_run_at_once_on_one_workspace_all_succeed(team: Workspace) -> None:
    """Several processes listing and searching at once: each appends to the audit trail; none fails."""
    import subprocess
    import sys

    path = team.path
    team.close()
    env = {**os.environ, "NOMINA_TOKEN": token_for(path, USER) or ""}
    commands = [
        ["reference", "list"],
        ["case", "list"],
        ["search", "UP-003", "--top", "3"],
        ["reference", "list"],
        ["case", "list"],
        ["search", "list"],
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "nomina.cli", *cmd, "-w", str(path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cmd in commands
    ]
    done = [(cmd, p.communicate(timeout=120)[1], p.returncode) for cmd, p in zip(commands, procs, strict=True)]
    assert [(cmd, err) for cmd, err, code in done if code != 0] == []
    with Workspace.open(path, user=USER) as again:
        verified = again.audit_verify()
        assert verified.ok, verified.reason
        assert len(again.searches("UP-003")) == 2


def test_the_database_itself_refuses_a_second_open_identification_of_a_case(team: Workspace) -> None:
    """Whatever writes to the database (another program, a hand edit), a case has one open identification."""
    with raw_database(team.path) as con:
        row = "INSERT INTO identifications (case_id, reference_id, proposed_by, proposed_at, reasons, status) VALUES "
        try:
            with pytest.raises(INTEGRITY_ERRORS, match="(?i)unique"):
                con.execute(row + "('UP-002', 'MP-001', 'ex2', '2026-01-01 00:00:00', 'x', 'proposed')")
            con.execute(row + "('UP-002', 'MP-001', 'ex2', '2026-01-01 00:00:00', 'x', 'withdrawn')")  # allowed
        finally:
            con.rollback()


def test_a_failed_enrolment_never_removes_a_photo_another_record_committed_meanwhile(team: Workspace) -> None:
    """A failed transaction's cleanup runs under the write lock and spares files a record names by then."""
    sha = team.reference("MP-001").photos[0].sha256
    team._remove_unrecorded([sha])  # as if a failed enrolment had written these same bytes
    assert team.photos.has(sha)
    orphan, _ = team.photos.put(b"not a photo any record names")
    team._remove_unrecorded([orphan])
    assert not team.photos.has(orphan)


def test_two_openings_searching_at_once_never_give_a_search_id_twice(
    team: Workspace, faces_dir: Path, settings, model
) -> None:
    """Two openings of the workspace (each with its own connections and write lock, as two processes have)
    search at once right after the newest search went with its erased case: no search takes an id any
    search had before, none fails, and the trail verifies."""
    ws = team
    ws.delete_case("UP-003", "entered twice")  # search 3, the newest, goes with it
    ws.add_case(CaseFields("UP-004"), [PhotoInput(london(faces_dir, "004", "smiling"))])
    openings = [Workspace.open(ws.path, settings, model=model, user=USER) for _ in range(2)]
    barrier = threading.Barrier(len(openings))
    found: list[int] = []
    errors: list[BaseException] = []

    def run(view: Workspace, case_id: str) -> None:
        barrier.wait()
        for _ in range(3):
            try:
                found.append(view.search(case_id).search_id)
            except BaseException as exc:  # noqa: BLE001 - every failure is reported by the assertion below
                errors.append(exc)

    threads = [threading.Thread(target=run, args=pair) for pair in zip(openings, ("UP-001", "UP-004"), strict=True)]
    _run_then_close(threads, openings)
    assert errors == []
    assert len(found) == 6 and len(set(found)) == 6 and min(found) > 3, found
    verified = ws.audit_verify()
    assert verified.ok, verified.records


def test_settings_and_calibrations_changed_at_once_by_two_openings_stay_as_the_trail_says(
    team: Workspace, settings, model
) -> None:
    """Two openings (two processes' worth of connections and write locks) change the same setting and add
    calibrations at once while a third searches: every change is recorded with the value it found, the stored
    value is the newest event's, the calibration in use is the one added last, and the trail verifies."""
    from nomina import calibration

    fitted = calibration.fit([0.6, 0.7, 0.8, 0.9] * 3, [0.1, 0.2, 0.3, 0.4] * 3, data={"model": team.model_identity})
    openings = [Workspace.open(team.path, settings, model=model, user=USER) for _ in range(3)]
    barrier = threading.Barrier(len(openings))
    errors: list[BaseException] = []

    def change(view: Workspace, years: int) -> None:
        barrier.wait()
        for n in range(6):
            try:
                view.set_config("retention_years", years + n)
                view.add_calibration(fitted)
            except BaseException as exc:  # noqa: BLE001 - every failure is reported by the assertion below
                errors.append(exc)

    def search(view: Workspace) -> None:
        barrier.wait()
        for _ in range(6):
            try:
                view.search("UP-001")
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [
        threading.Thread(target=change, args=(openings[0], 10)),
        threading.Thread(target=change, args=(openings[1], 30)),
        threading.Thread(target=search, args=(openings[2],)),
    ]
    _run_then_close(threads, openings)
    assert errors == []
    trail = team.audit_log()
    changes = [e.details for e in trail if e.action == "setting.change" and e.details["setting"] == "retention_years"]
    assert len(changes) == 1 + 12  # the workspace's first value, then each change
    assert all(a["new"] == b["old"] for a, b in zip(changes, changes[1:], strict=False))  # each found the last one
    assert team.config()["retention_years"] == changes[-1]["new"]
    added = [e.details["calibration_id"] for e in trail if e.action == "calibration.add"]
    assert len(added) == 12 and team.calibration()[0] == added[-1]  # type: ignore[index]
    verified = team.audit_verify()
    assert verified.ok, verified.records
