"""The gallery index kept in step across processes, erasure in every process, duplicate references, imports
from several processes at once. Each test runs on the suite's database engine (`--engine`): on PostgreSQL the
processes share one server, as several Nomina servers do."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import PROV, USER, london, run, token_for

from nomina import CaseFields, PhotoInput, Provenance, ReferenceFields, Workspace

FAMILY = Provenance("family", "a sister", "family request")


def other_process(ws_path: Path, code: str) -> str:
    """Run ``code`` in a new Python process with ``ws`` open (as USER) on the same workspace folder; its output."""
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from nomina import Workspace, ReferenceFields, PhotoInput, Provenance
        ws = Workspace.open(Path({str(ws_path)!r})).as_user({USER!r})
        """
    ) + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow  # other processes, each loading the model
def test_a_reference_enrolled_or_erased_in_another_process_is_seen_at_once(ws: Workspace, faces_dir: Path) -> None:
    ws.add_reference(ReferenceFields("R1", "Ana"), [PhotoInput(london(faces_dir, "001"))], FAMILY)
    ws.add_case(CaseFields("C2"), [PhotoInput(london(faces_dir, "002", "smiling"))])
    first = ws.search("C2")
    assert [c.reference_id for c in first.candidates] == ["R1"]  # this process's index is loaded now
    ws.follow_gallery(interval=0.2)

    other_process(
        ws.path,
        f"""
        ws.add_reference(ReferenceFields("R2", "Bea"), [PhotoInput(Path({str(london(faces_dir, "002"))!r}))],
                         Provenance("family", "a brother", "family request"))
        """,
    )
    # Found through this process at its very next search: the log is read before each search.
    found = ws.search("C2")
    assert found.candidates[0].reference_id == "R2"
    seq = ws.gallery_index().seq

    other_process(ws.path, 'ws.delete_reference("R2", "reported twice")')
    # Never returned once the erasure has committed: the next search applies it before ranking.
    assert [c.reference_id for c in ws.search("C2").candidates] == ["R1"]
    # And the follower thread applies it without a search too (a server's memory).
    other_process(
        ws.path,
        f"""
        ws.add_reference(ReferenceFields("R3", "Cid"), [PhotoInput(Path({str(london(faces_dir, "003"))!r}))],
                         Provenance("family", "a brother", "family request"))
        """,
    )
    deadline = time.monotonic() + 1.0
    gallery = ws._keeper().gallery
    assert gallery is not None
    while gallery.references < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gallery.references == 2 and gallery.seq > seq


@pytest.mark.slow  # other processes, each loading the model
def test_the_snapshot_on_disk_is_brought_up_to_date_by_a_new_process(ws: Workspace, faces_dir: Path) -> None:
    for ident in ("001", "002"):
        ws.add_reference(ReferenceFields(f"R{ident}", ident), [PhotoInput(london(faces_dir, ident))], FAMILY)
    ws.add_case(CaseFields("C3"), [PhotoInput(london(faces_dir, "003", "smiling"))])
    ws.search("C3")
    ws._keeper().save(ws._shared.db, lambda s: "auto")  # a snapshot holding two references
    ws.add_reference(ReferenceFields("R003", "003"), [PhotoInput(london(faces_dir, "003"))], FAMILY)
    out = other_process(
        ws.path,
        """
        g = ws.gallery_index()
        print(g.references, g.size)
        print(ws.search("C3").candidates[0].reference_id)
        """,
    )
    assert out.split() == ["3", "3", "R003"]


def test_a_new_reference_matching_another_strongly_is_warned_of_and_duplicates_lists_the_pair(
    ws: Workspace, faces_dir: Path
) -> None:
    ws.add_reference(ReferenceFields("MP-1", "Ana Example"), [PhotoInput(london(faces_dir, "001"))], FAMILY)
    ws.add_reference(ReferenceFields("MP-2", "Bea Example"), [PhotoInput(london(faces_dir, "002"))], FAMILY)
    # The same person reported again by another agency, with another photo, under another id.
    again = ws.add_reference(
        ReferenceFields("AG-77", "A. Example"),
        [PhotoInput(london(faces_dir, "001", "smiling"))],
        Provenance("official-record", "an agency", "statutory duty"),
    )
    assert len(again.warnings) == 1, again.warnings
    assert "reference 'AG-77' matches reference 'MP-1' strongly" in again.warnings[0]
    assert ws.reference("AG-77").reference_id == "AG-77"  # a warning, never a refusal

    pairs = ws.duplicates()
    assert [(p.reference_a, p.reference_b) for p in pairs] in ([("AG-77", "MP-1")], [("MP-1", "AG-77")])
    assert pairs[0].score >= ws.config()["duplicate_score"]
    assert ws.duplicates(min_score=0.99) == []
    assert len(ws.duplicates(min_score=0.0, limit=2)) == 2


def test_duplicates_from_the_command_line(cli_ws: Path, faces_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "reference", "add", "R9", london(faces_dir, "001", "smiling"), "--name", "Ana", *PROV, "-w", cli_ws
    )
    assert code == 0 and "reference 'R9' matches reference 'R1' strongly" in err
    code, out, _ = run(capsys, "reference", "duplicates", "--json", "-w", cli_ws)
    assert code == 0 and '"reference_a"' in out and "R9" in out and "R1" in out
    code, out, err = run(capsys, "reference", "duplicates", "--min-score", "2", "-w", cli_ws)
    assert code != 0 and err.startswith("error: --min-score: 2")


@pytest.mark.slow
def test_two_processes_importing_one_manifest_at_once_add_each_row_once(
    ws: Workspace, faces_dir: Path, tmp_path: Path
) -> None:
    idents = [p.name for p in sorted((faces_dir / "london").iterdir())[:8]]
    lines = ["reference_id,photo,name,source,supplied_by,legal_basis"]
    for ident in idents:
        for expression in ("neutral", "smiling"):
            photo = london(faces_dir, ident, expression)
            lines.append(f"MP-{ident},{photo},Person {ident},family,a sister,family request")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "NOMINA_TOKEN": token_for(ws.path, USER) or "", "NOMINA_WORKERS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "nomina.cli", "reference", "import", str(manifest), "-w", str(ws.path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    refs = ws.references()
    assert sorted(r.reference_id for r in refs) == sorted(f"MP-{i}" for i in idents)
    assert all(r.photos == 2 for r in refs)
    added = sum(int(out.split("rows: ")[1].split(" photo")[0]) for out, _ in outs)
    assert added == 2 * len(idents)  # each row added by exactly one of the two
    assert ws.audit_verify().ok


def add_filler_faces(ws: Workspace, count: int, seed: int = 7) -> None:
    """``count`` reference faces of random unit vectors (references FILL-n, one face each), written into the
    database directly (enrolling thousands of photos would take minutes), sharing a photo already stored."""
    from sqlalchemy import insert, select

    from nomina.records import now
    from nomina.store import schema as db

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    at = now()
    with ws._shared.db.write() as s:
        sha = s.scalars(select(db.Photo.sha256)).first()
        first_photo = int(s.scalar(select(db.ReferencePhoto.id).order_by(db.ReferencePhoto.id.desc())) or 0) + 1
        s.execute(
            insert(db.Reference),
            [{"id": f"FILL-{i}", "name": "x", "created_at": at, "updated_at": at} for i in range(count)],
        )
        s.execute(
            insert(db.ReferencePhoto),
            [
                {
                    "id": first_photo + i,
                    "reference_id": f"FILL-{i}",
                    "photo_sha256": sha,
                    "file_name": "f.jpg",
                    "source": "other",
                    "supplied_by": "tests",
                    "legal_basis": "tests",
                    "added_at": at,
                    "added_by": USER,
                }
                for i in range(count)
            ],
        )
        s.execute(
            insert(db.Face),
            [
                {
                    "reference_photo_id": first_photo + i,
                    "number_in_photo": 1,
                    "box": [0, 0, 10, 10],
                    "landmarks": [[1, 1]] * 5,
                    "manual": False,
                    "detector_score": 0.9,
                    "inter_eye_px": 40.0,
                    "sharpness": 100.0,
                    "brightness": 120.0,
                    "roll": 0.0,
                    "model": "sface",
                    "embedding": vectors[i].tobytes(),
                    "added_at": at,
                }
                for i in range(count)
            ],
        )
        s.commit()


@pytest.mark.slow
def test_erasure_leaves_no_vector_or_code_of_the_erased_faces_in_the_approximate_index(
    ws: Workspace, faces_dir: Path
) -> None:
    from nomina.store import schema as db

    ws.add_reference(ReferenceFields("MP-1", "Ana"), [PhotoInput(london(faces_dir, "001"))], FAMILY)
    add_filler_faces(ws, 6000)
    ws.set_config("index", "approximate")
    ws.add_case(CaseFields("C1"), [PhotoInput(london(faces_dir, "001", "smiling"))])
    gallery = ws.gallery_index()
    assert gallery.wait(60)  # the approximate layer is built in the background; the exact index serves meanwhile
    assert gallery.kind == "approximate"
    assert ws.search("C1").candidates[0].reference_id == "MP-1"
    with ws._shared.db.read() as s:
        face = s.query(db.Face).join(db.ReferencePhoto).filter(db.ReferencePhoto.reference_id == "MP-1").one()
        face_id, vector = face.id, bytes(face.embedding)
    row = int(gallery.rows.rows_of(np.array([face_id]))[0])
    code = gallery.layer.codes.data[row].tobytes()
    assert code.strip(b"\0")
    ws._keeper().save(ws._shared.db, lambda s: "approximate")
    index_files = lambda: {p: p.read_bytes() for p in (ws.path / "index").rglob("*") if p.is_file()}  # noqa: E731
    before = index_files()
    assert any(vector in data for data in before.values()) and any(code in data for data in before.values())

    ws.delete_reference("MP-1", "reported twice")

    after = index_files()
    assert after, "the snapshot is scrubbed in place, not removed"
    assert [str(p) for p, data in after.items() if vector in data or code in data] == []
    # Nor in this process's memory: the float row and the code row are zeros, the face gone from its list.
    assert gallery.rows.gather(np.array([row])).tobytes() == bytes(len(vector))
    assert gallery.layer.codes.data[row].tobytes() == bytes(len(code))
    entries, _ = (
        gallery.layer.list_entries(int(gallery.layer.lists.data[row]))
        if gallery.layer.lists.data[row] >= 0
        else (np.zeros(0), None)
    )
    assert row not in set(np.asarray(entries).tolist())
    assert all(c.reference_id != "MP-1" for c in ws.search("C1").candidates)


@pytest.mark.slow
def test_audit_verify_finds_a_face_moved_to_another_list_of_the_approximate_index(
    ws: Workspace, faces_dir: Path
) -> None:
    """A face moved to a list no probe near it reads (or given a code that scores it low) is never a
    candidate, and the searches that miss it are recorded as genuine: audit verify re-encodes every face of
    the snapshot from its own vector."""
    from nomina.store import schema as db

    ws.add_reference(ReferenceFields("MP-1", "Ana"), [PhotoInput(london(faces_dir, "001"))], FAMILY)
    add_filler_faces(ws, 6000)
    ws.set_config("index", "approximate")
    assert ws.gallery_index().wait(60) and ws.gallery_index().kind == "approximate"
    ws._keeper().save(ws._shared.db, lambda s: "approximate")
    folder = ws.path / "index" / "gallery"
    with ws._shared.db.read() as s:
        face_id = s.query(db.Face.id).join(db.ReferencePhoto).filter(db.ReferencePhoto.reference_id == "MP-1").scalar()

    def hidden_line() -> list[str]:
        return [line for line in ws.audit_verify().records if "hidden from searches" in line]

    assert hidden_line() == []
    face_ids = np.load(folder / "face_ids.npy")
    row = int(np.flatnonzero(face_ids == face_id)[0])
    for name, edit in (("lists", lambda a: (a + 1) % 64), ("codes", lambda a: a ^ 0x77)):
        array = np.load(folder / f"{name}.npy", mmap_mode="r+")
        kept = np.array(array[row])
        array[row] = edit(array[row])
        array.flush()
        (line,) = hidden_line()
        assert line.startswith("gallery index: 1 face(s) in a list or with a code their vector does not give")
        assert f"(face {face_id})" in line, line
        array[row] = kept
        array.flush()
        del array
    assert hidden_line() == []
