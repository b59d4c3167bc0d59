"""The Python API with the real model, real photos and a real SQLite workspace."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from conftest import USER, london, postgresql_only, raw_database, snapshot

from nomina import CaseFields, PhotoInput, Provenance, ReferenceFields, Workspace
from nomina.errors import (
    Conflict,
    FaceNumberInvalid,
    InvalidField,
    ModelMismatch,
    NoFaceFound,
    NotAWorkspace,
    NotFound,
    SeveralFaces,
)
from nomina.references import ReferenceRecord

PROV = Provenance("family", "a sister", "family request under national missing-persons law")


def add_ref(ws: Workspace, faces_dir: Path, ident: str, ref_id: str | None = None) -> ReferenceRecord:
    return ws.add_reference(
        ReferenceFields(ref_id or f"R{ident}", f"Person {ident}"), [PhotoInput(london(faces_dir, ident))], PROV
    )


def test_reference_is_stored_with_provenance_face_and_photo_bytes(ws, faces_dir):
    path = london(faces_dir, "001")
    ref = ws.add_reference(
        ReferenceFields("R1", "Ana Example", sex="female", birth_year=1990, last_seen_on="2025-06-01"),
        [PhotoInput(path, photo_date="2024-12-24")],
        Provenance("official-record", "civil registry", "statutory duty", consent="n/a"),
    )
    photo = ref.photos[0]
    assert photo.provenance.to_dict() == {
        "source": "official-record",
        "supplied_by": "civil registry",
        "legal_basis": "statutory duty",
        "consent": "n/a",
    }
    assert photo.photo_date == date(2024, 12, 24)
    # chain of custody: the stored bytes are exactly the supplied bytes, named by their SHA-256
    assert ws.photos.read(photo.sha256) == path.read_bytes()
    face = photo.faces[0].quality
    assert 40 < face["inter_eye_px"] < 90  # 400x400 studio portraits
    assert face["detector_score"] >= 0.7
    assert abs(face["roll"]) < 10 and abs(face["yaw"]) < 20


def test_same_bytes_are_stored_once(ws, faces_dir):
    path = london(faces_dir, "003")
    ws.add_reference(ReferenceFields("R1", "One"), [PhotoInput(path)], PROV)
    ws.add_reference(ReferenceFields("R2", "Two"), [PhotoInput(path)], PROV)
    stored = [p for p in (ws.path / "photos").rglob("*") if p.is_file()]
    assert len(stored) == 1
    # deleting one record keeps the bytes the other still uses
    assert ws.delete_reference("R1", "entered twice").photos_removed == 0
    assert ws.photos.has(ws.reference("R2").photos[0].sha256)
    assert ws.delete_reference("R2", "entered twice").photos_removed == 1
    assert not [p for p in (ws.path / "photos").rglob("*") if p.is_file()]


def test_added_photos_are_in_the_record_returned(ws, faces_dir):
    ws.add_reference(ReferenceFields("R1", "One"), [PhotoInput(london(faces_dir, "003"))], PROV)
    more = ws.add_reference_photos("R1", [PhotoInput(london(faces_dir, "003", "smiling"))], PROV)
    assert [p.file_name for p in more.photos] == ["003_neutral.jpg", "003_smiling.jpg"]
    assert more.to_dict() == ws.reference("R1").to_dict()


def test_search_ranks_the_true_person_first_and_is_recorded(ws, faces_dir):
    for ident in ("001", "002", "003", "004", "005"):
        add_ref(ws, faces_dir, ident)
    ws.add_case(CaseFields("C1", kind="deceased"), [PhotoInput(london(faces_dir, "004", "smiling"))])
    result = ws.search("C1", top=3)
    assert [c.rank for c in result.candidates] == [1, 2, 3]
    assert result.candidates[0].reference_id == "R004"
    assert result.candidates[0].score > result.candidates[1].score
    assert result.gallery == {"references": 5, "faces": 5}
    assert "not an identification" in result.notice
    again = ws.get_search(result.search_id)
    assert again.to_dict() == result.to_dict()
    assert result.model["files"]["face_recognition_sface_2021dec_int8bq.onnx"].startswith("fb143eea")


def test_best_face_per_reference_is_kept(ws, faces_dir):
    # R1 has a photo of 006 and of 007; a case of 007 must rank R1 first through its 007 photo.
    ws.add_reference(
        ReferenceFields("R1", "Two photos"),
        [PhotoInput(london(faces_dir, "006")), PhotoInput(london(faces_dir, "007"))],
        PROV,
    )
    add_ref(ws, faces_dir, "008")
    ws.add_case(CaseFields("C"), [PhotoInput(london(faces_dir, "007", "smiling"))])
    best = ws.search("C").candidates[0]
    assert best.reference_id == "R1"
    assert best.photo_sha256 == ws.reference("R1").photos[1].sha256
    assert len(ws.search("C").candidates) == 2  # one candidate per reference, not per face


def test_several_faces_need_a_choice_and_are_numbered_left_to_right(ws, faces_dir, two_faces):
    before = snapshot(ws.path)
    with pytest.raises(SeveralFaces, match=r"two_people\.jpg: 2 faces found; choose one by its number"):
        ws.add_reference(ReferenceFields("R1", "X"), [PhotoInput(two_faces)], PROV)
    with pytest.raises(FaceNumberInvalid, match="face 3 asked for, but 2 face"):
        ws.add_reference(ReferenceFields("R1", "X"), [PhotoInput(two_faces, face=3)], PROV)
    assert snapshot(ws.path) == before
    ws.add_reference(ReferenceFields("R2", "Right-hand person"), [PhotoInput(two_faces, face=2)], PROV)
    add_ref(ws, faces_dir, "001")
    ws.add_case(CaseFields("C"), [PhotoInput(london(faces_dir, "002", "smiling"))])
    assert ws.search("C").candidates[0].reference_id == "R2"  # face 2 is the person on the right


def test_reference_without_a_face_is_refused_case_is_kept_and_flagged(ws, faces_dir):
    fox = faces_dir / "noface" / "fox-715588_640.jpg"
    before = snapshot(ws.path)
    with pytest.raises(NoFaceFound, match="fox-715588_640.jpg: no face detected"):
        ws.add_reference(ReferenceFields("R1", "X"), [PhotoInput(fox)], PROV)
    assert snapshot(ws.path) == before
    case = ws.add_case(CaseFields("C1"), [PhotoInput(fox)])
    assert case.photos[0].no_face_detected is True
    assert case.photos_without_face == 1
    assert ws.photos.read(case.photos[0].sha256) == fox.read_bytes()
    add_ref(ws, faces_dir, "001")
    with pytest.raises(NoFaceFound, match="case C1: no face to search; mark the eyes"):
        ws.search("C1")


def test_eyes_marked_by_hand_make_an_undetected_face_searchable(tmp_path, model, faces_dir):
    """Post-mortem photos often defeat the detector; here a detection threshold no face reaches does.

    The case photo is a neutral photo, whose pupil centres are known (london/pupils.csv); the references
    are the smiling photos.
    """
    from nomina import load_settings

    blind = Workspace.create(
        tmp_path / "ws", load_settings(environ={}, detection_threshold=0.999), model=model, admin=USER
    )
    normal = Workspace.open(tmp_path / "ws", load_settings(environ={}), model=model, user=USER)
    for ident in ("010", "011", "012", "013"):
        normal.add_reference(
            ReferenceFields(f"R{ident}", ident), [PhotoInput(london(faces_dir, ident, "smiling"))], PROV
        )
    with (faces_dir / "london" / "pupils.csv").open() as fh:
        row = next(r for r in csv.DictReader(fh) if r["path"] == "london/012/012_neutral.jpg")
    eyes = np.array(
        [[float(row["pupil1_x"]), float(row["pupil1_y"])], [float(row["pupil2_x"]), float(row["pupil2_y"])]]
    )

    case = blind.add_case(CaseFields("PM-1"), [PhotoInput(london(faces_dir, "012"))])
    assert case.photos[0].no_face_detected is True
    case = blind.mark_eyes("PM-1", 1, eyes)
    face = case.photos[0].faces[0]
    assert face.manual is True and face.quality["detector_score"] is None
    assert blind.search("PM-1").candidates[0].reference_id == "R012"
    # the same with the eyes given when the case is added
    blind.add_case(CaseFields("PM-2"), [PhotoInput(london(faces_dir, "012"), eyes=eyes)])
    assert blind.search("PM-2").candidates[0].reference_id == "R012"
    with pytest.raises(InvalidField, match="eye centres must lie inside the 400x400 photo"):
        blind.mark_eyes("PM-1", 1, eyes + 1000)
    blind.close()
    normal.close()


def test_all_case_faces_are_searched_unless_one_is_chosen(ws, faces_dir):
    for ident in ("020", "021", "022"):
        add_ref(ws, faces_dir, ident)
    ws.add_case(
        CaseFields("C"),
        [PhotoInput(london(faces_dir, "021", "smiling")), PhotoInput(london(faces_dir, "022", "smiling"))],
    )
    both = ws.search("C")
    assert {c.reference_id for c in both.candidates[:2]} == {"R021", "R022"}
    assert [f.number for f in both.case_faces] == [1, 2]
    only_second = ws.search("C", face=2)
    assert only_second.candidates[0].reference_id == "R022"
    assert only_second.candidates[0].case_face == 2
    with pytest.raises(FaceNumberInvalid, match="case C has 2 face"):
        ws.search("C", face=3)


def test_duplicate_and_unknown_ids(ws, faces_dir):
    add_ref(ws, faces_dir, "001", "R1")
    ws.add_case(CaseFields("C1"), [PhotoInput(london(faces_dir, "001", "smiling"))])
    before = snapshot(ws.path)
    with pytest.raises(Conflict, match="reference R1: already exists"):
        add_ref(ws, faces_dir, "002", "R1")
    with pytest.raises(Conflict, match="case C1: already exists"):
        ws.add_case(CaseFields("C1"), [PhotoInput(london(faces_dir, "002"))])
    for call, message in [
        (lambda: ws.reference("nope"), "reference nope: no such reference"),
        (lambda: ws.delete_reference("nope", "entered twice"), "reference nope: no such reference"),
        (lambda: ws.update_reference("nope", name="x"), "reference nope: no such reference"),
        (lambda: ws.case("nope"), "case nope: no such case"),
        (lambda: ws.delete_case("nope", "entered twice"), "case nope: no such case"),
        (lambda: ws.search("nope"), "case nope: no such case"),
        (lambda: ws.get_search(999), "search 999: no such search"),
    ]:
        with pytest.raises(NotFound, match=message):
            call()
    assert snapshot(ws.path) == before


def test_missing_provenance_is_refused():
    with pytest.raises(InvalidField, match="legal_basis: required"):
        Provenance("family", "a sister", "")
    with pytest.raises(InvalidField, match="source: 'web' is not one of family, official-record, other"):
        Provenance("web", "a sister", "consent")
    with pytest.raises(InvalidField, match="supplied_by: required"):
        Provenance("family", " ", "consent")


def test_update_and_delete_reference(ws, faces_dir):
    add_ref(ws, faces_dir, "030", "R1")
    updated = ws.update_reference("R1", name="New Name", last_seen_at="Harbour", birth_year="1971")
    assert (updated.name, updated.last_seen_at, updated.birth_year) == ("New Name", "Harbour", 1971)
    with pytest.raises(InvalidField, match="last_seen_on: '2025-13-01' is not a date"):
        ws.update_reference("R1", last_seen_on="2025-13-01")
    sha = updated.photos[0].sha256
    gone = ws.delete_reference("R1", "entered twice")
    assert gone.to_dict() == {"reference_id": "R1", "faces_removed": 1, "photos_removed": 1, "warnings": []}
    assert not ws.photos.has(sha)
    with raw_database(ws.path) as con:
        assert con.execute("SELECT count(*) FROM faces").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM photos").fetchone() == (0,)


def test_deleted_reference_leaves_the_gallery(ws, faces_dir):
    add_ref(ws, faces_dir, "041", "R41x")
    add_ref(ws, faces_dir, "042", "R42")
    ws.add_case(CaseFields("C"), [PhotoInput(london(faces_dir, "041", "smiling"))])
    assert ws.search("C").candidates[0].reference_id == "R41x"
    ws.delete_reference("R41x", "entered twice")
    result = ws.search("C")
    assert [c.reference_id for c in result.candidates] == ["R42"]


def test_delete_case_removes_its_searches_and_photos(ws, faces_dir):
    add_ref(ws, faces_dir, "044")
    ws.add_case(CaseFields("C"), [PhotoInput(london(faces_dir, "044", "smiling"))])
    search_id = ws.search("C").search_id
    gone = ws.delete_case("C", "entered twice")
    assert gone.to_dict() == {
        "case_id": "C",
        "faces_removed": 1,
        "photos_removed": 1,
        "searches_removed": 1,
        "warnings": [],
    }
    with pytest.raises(NotFound):
        ws.get_search(search_id)


def test_not_a_workspace(tmp_path):
    with pytest.raises(NotAWorkspace, match="not a Nomina workspace"):
        Workspace.open(tmp_path)
    with pytest.raises(NotAWorkspace, match="no such workspace folder"):
        Workspace.open(tmp_path / "missing")
    (tmp_path / "nomina.db").write_bytes(b"not a database at all, just text")
    with pytest.raises(NotAWorkspace, match="not a Nomina database"):
        Workspace.open(tmp_path)
    assert (tmp_path / "nomina.db").read_bytes() == b"not a database at all, just text"


def test_workspace_built_with_another_model_is_refused(ws, faces_dir, settings, model):
    add_ref(ws, faces_dir, "061")
    ws.close()
    with raw_database(settings.home) as con:
        con.execute(
            "UPDATE workspace_info SET value = ? WHERE key = 'model'",
            ('{"files": {"face_recognition_sface_2021dec.onnx": "0f7a1b"}, "name": "sface"}',),
        )
    other = Workspace.open(settings.home, settings, model=model, user=USER)
    before = snapshot(settings.home)
    with pytest.raises(ModelMismatch, match="workspace built with model sface .*embeddings of different models"):
        add_ref(other, faces_dir, "062")
    assert snapshot(settings.home) == before
    other.close()


def test_existing_workspace_is_not_recreated(ws, settings, model):
    with pytest.raises(Conflict, match="already a Nomina workspace"):
        Workspace.create(settings.home, settings, model=model)


@postgresql_only("the collation of a database given by name")
def test_a_database_that_sorts_text_by_a_language_is_refused(tmp_path, settings, model):
    """Listings (references, cases, users) are ordered by the database: on a database whose collation follows a
    language's rules ('mp-1' before 'MP-9') they would come in another order than on SQLite."""
    import secrets

    import psycopg

    from nomina.errors import WorkspaceError
    from nomina.store import server

    name = f"nomina_icu_{secrets.token_hex(4)}"
    with psycopg.connect(server.with_database(settings.database, "postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} LOCALE_PROVIDER icu ICU_LOCALE 'en' TEMPLATE template0")
    url = server.with_database(settings.database, name)
    try:
        with pytest.raises(WorkspaceError, match="sorts text by a language's rules, not by code point"):
            Workspace.create(tmp_path / "icu", settings, model=model, database=url)
        assert not (tmp_path / "icu").exists()
    finally:
        server.drop_database(url)


def test_case_photo_of_a_face_lying_sideways_is_searched_upright(ws, faces_dir, tmp_path):
    import cv2

    for ident in ("064", "066", "067", "068"):
        add_ref(ws, faces_dir, ident)
    for turn in (cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE):
        path = tmp_path / f"lying-{turn}.png"
        cv2.imwrite(str(path), cv2.rotate(cv2.imread(str(london(faces_dir, "067", "smiling"))), turn))
        case = ws.add_case(CaseFields(f"C{turn}"), [PhotoInput(path)])
        roll = case.photos[0].faces[0].quality["roll"]
        assert 75 < abs(roll) < 105  # measured on the photo as supplied: the face lies sideways
        result = ws.search(f"C{turn}")
        assert result.candidates[0].reference_id == "R067"
        assert result.candidates[0].score > 0.6
