"""The Python API refuses arguments of the wrong type or shape with one InvalidField naming them, and changes
nothing: a program's mistake must not erase a record, store bytes for a number, or a blank face."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import USER, london, snapshot

from nomina import CaseFields, PhotoInput, Provenance, ReferenceFields, Workspace, load_settings
from nomina.errors import InvalidField, WorkspaceError
from nomina.records import check_eyes, parse_date

PROV = Provenance("family", "a sister", "family request")


@pytest.fixture()
def enrolled(ws: Workspace, faces_dir: Path) -> Workspace:
    ws.add_reference(ReferenceFields("R1", "Ann"), [PhotoInput(london(faces_dir, "001"))], PROV)
    ws.add_case(CaseFields("C1"), [PhotoInput(london(faces_dir, "001", "smiling"))])
    return ws


@pytest.mark.slow  # an enrolment for each of the 19
@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda ws: ws.delete_reference(["R1"], "x"), "reference_id"),  # the database took ["R1"] as R1
        (lambda ws: ws.delete_case(("C1",), "x"), "case_id"),
        (lambda ws: ws.search(["C1"]), "case_id"),
        (lambda ws: ws.search("C1", top=float("inf")), "top"),
        (lambda ws: ws.search("C1", top=True), "top"),
        (lambda ws: ws.search("C1", top=10**12), "top"),
        (lambda ws: ws.search("C1", top="5"), "top"),
        (lambda ws: ws.search("C1", face=1.0), "face"),
        (lambda ws: ws.search("C1", exhaustive="no"), "exhaustive"),
        (lambda ws: ws.mark_eyes("C1", 1, np.array([[300, 200], [300, 200]])), "eyes"),
        (lambda ws: ws.mark_eyes("C1", 1, np.zeros((3, 2))), "eyes"),
        (lambda ws: ws.mark_eyes("C1", "1", np.array([[250, 200], [330, 200]])), "photo"),
        (lambda ws: ws.audit_log(limit="5"), "limit"),
        (lambda ws: ws.add_user("bob", {"admin": True}), None),
        (lambda ws: ws.add_user(b"bob", "examiner"), "name"),
        (lambda ws: ws.as_user(5), "name"),
        (lambda ws: ws.withdraw_identification("C1", b"r"), "reason"),
        (lambda ws: ws.update_reference("R1", notes="x" * 20_001), None),
        (lambda ws: ws.update_reference("R1"), "changes"),  # recorded an update of nothing
        (lambda ws: ws.add_reference(ReferenceFields(b"R9", "Bo"), [], PROV), None),
        (lambda ws: ws.add_reference({"id": "R9"}, [], PROV), "fields"),
        (lambda ws: ws.add_reference(ReferenceFields("R9", "Bo"), [Path("a.jpg")], PROV), "photos"),
        (lambda ws: ws.add_reference(ReferenceFields("R9", "Bo"), [], None), "provenance"),
        (lambda ws: ws.add_case(ReferenceFields("C9", "Bo"), []), "fields"),
    ],
)
def test_a_wrong_argument_is_refused_naming_it_and_nothing_changes(enrolled, call, field):
    before = snapshot(enrolled.settings.home)
    with pytest.raises(InvalidField) as refused:
        call(enrolled)
    assert "\n" not in refused.value.message
    if field is not None:
        assert refused.value.field == field and refused.value.message.startswith(f"{field}: ")
    assert snapshot(enrolled.settings.home) == before
    enrolled.reference("R1"), enrolled.case("C1")  # both still there


def test_a_numpy_face_number_is_stored_as_the_number_it_holds(ws, faces_dir):
    photo = PhotoInput(london(faces_dir, "002"), face=np.int64(1))
    assert type(photo.face) is int
    ws.add_reference(ReferenceFields("R2", "Bea"), [photo], PROV)
    stored = ws.reference("R2").photos[0].faces[0].number_in_photo
    assert type(stored) is int and stored == 1  # numpy's int had been stored as 8 bytes


@pytest.mark.parametrize(
    "eyes", [[[1, 2], [1, 2]], [[0, 0], [3, 0]], np.zeros((2, 3)), [[1, np.nan], [9, 9]], "1,2,3,4", None]
)
def test_eyes_that_cannot_make_a_face_are_refused(eyes):
    with pytest.raises(InvalidField) as refused:
        PhotoInput(Path("a.jpg"), eyes=eyes) if eyes is not None else check_eyes(eyes)
    assert refused.value.field == "eyes"
    assert check_eyes([[30, 5], [10, 5]]).tolist() == [[10, 5], [30, 5]]  # image-left eye first


def test_settings_given_as_arguments_are_checked_as_the_environment_is():
    for bad in ({"top": float("inf")}, {"top": 1.9}, {"workers": True}, {"topp": 5}):
        with pytest.raises(InvalidField) as refused:
            load_settings(environ={}, **bad)
        assert refused.value.message.startswith(f"setting {next(iter(bad))}: ")
    assert load_settings(environ={}, top=7.0).top == 7


def test_a_datetime_is_taken_as_its_date():
    assert parse_date(datetime(2020, 5, 6, 7, 8), "found_on") == date(2020, 5, 6)


def test_a_closed_workspace_refuses_every_call(enrolled):
    view = enrolled.as_user(USER)
    enrolled.close()
    for call in (enrolled.cases, view.cases, lambda: view.case("C1")):
        with pytest.raises(WorkspaceError, match="^workspace closed"):
            call()


def test_an_export_or_report_never_replaces_a_pipe_or_a_device(enrolled, tmp_path):
    enrolled.search("C1")
    export, report = tmp_path / "e.json", tmp_path / "r.html"
    for pipe in (export, report):
        os.mkfifo(pipe)
    before = snapshot(enrolled.settings.home)
    with pytest.raises(InvalidField, match="^out: .*e.json: not a regular file"):
        enrolled.export_identifications(export)
    with pytest.raises(InvalidField, match="^out: .*r.html: not a regular file"):
        enrolled.report("C1", report)
    assert export.is_fifo() and report.is_fifo()
    assert snapshot(enrolled.settings.home) == before


@pytest.mark.parametrize("path", [None, 3, b"x.jpg"])
def test_a_photo_that_is_no_path_is_refused(path):
    with pytest.raises(InvalidField, match="^photos: .* is not a path to a photo file$"):
        PhotoInput(path)


def test_a_face_number_and_eyes_marked_by_hand_are_not_both_taken(tmp_path):
    with pytest.raises(InvalidField, match="^face: give a face number or the eyes marked by hand, not both$"):
        PhotoInput(tmp_path / "a.jpg", face=2, eyes=np.array([[100.0, 100.0], [200.0, 100.0]]))
    assert PhotoInput(tmp_path / "a.jpg", face=2).face == 2


def test_a_workspace_folder_that_cannot_be_made_is_one_error(tmp_path):
    (tmp_path / "a file").write_text("")
    for where in (tmp_path / "a file" / "ws", f"{tmp_path}/a\x00b"):
        with pytest.raises(WorkspaceError, match="the folder cannot be made"):
            Workspace.create(where, load_settings(environ={}), admin=USER)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a file"]
