"""The library holds the role table too: intake and auditor, role changes, display settings and the feature
checklist, checked inside each call whatever front end makes it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import WEB_PASSWORD, copy_workspace

from nomina import Workspace
from nomina.errors import Conflict, InvalidField, LoginFailed, PermissionDenied
from nomina.records import CaseFields, PhotoInput, Provenance, ReferenceFields
from nomina.workflow import FEATURES

PROV = Provenance(source="family", supplied_by="a sister", legal_basis="family request")


@pytest.fixture()
def team(_web_ws_template: Path, tmp_path: Path) -> Workspace:
    ws = Workspace.open(copy_workspace(_web_ws_template, tmp_path))
    yield ws
    ws.close()


def test_intake_records_references_and_never_sees_cases(team: Workspace, faces_dir: Path) -> None:
    ian = team.as_user("ian")
    photo = faces_dir / "london" / "005" / "005_neutral.jpg"
    ian.add_reference(ReferenceFields("R5", name="Eli Example"), [PhotoInput(photo)], PROV)
    assert ian.update_reference("R5", notes="seen at the market").notes == "seen at the market"
    assert "R5" in {r.reference_id for r in ian.references()}
    for call in (
        ian.cases,
        lambda: ian.case("C1"),
        lambda: ian.search("C1"),
        lambda: ian.get_search(1),
        lambda: ian.identification("C1"),
        lambda: ian.audit_log(),
        lambda: ian.add_case(CaseFields("C9"), [PhotoInput(photo)]),
    ):
        with pytest.raises(PermissionDenied, match="does not have"):
            call()


def test_the_auditor_reads_everything_and_changes_nothing(team: Workspace, faces_dir: Path) -> None:
    aud = team.as_user("aud")
    assert aud.case("C1").case_id == "C1" and aud.get_search(1).case_id == "C1"
    assert aud.audit_log(case_id="C1") and aud.audit_verify().ok
    photo = faces_dir / "london" / "005" / "005_neutral.jpg"
    for call in (
        lambda: aud.add_reference(ReferenceFields("R6", name="X"), [PhotoInput(photo)], PROV),
        lambda: aud.update_reference("R1", notes="changed"),
        lambda: aud.search("C1"),
        lambda: aud.conclude(1, 1, "excluded", "r"),
        lambda: aud.verify_identification("C1", "same person", "r", "R1"),
        lambda: aud.set_config("quality_gate", "off"),
        lambda: aud.delete_reference("R1", "r"),
        lambda: aud.set_roles("eve", "verifier"),
    ):
        with pytest.raises(PermissionDenied):
            call()


def test_roles_change_at_once_and_the_last_admin_keeps_admin(team: Workspace) -> None:
    eve_session = team.as_user("eve")
    root = team.as_user("root")
    assert root.set_roles("eve", ["verifier"]).roles == ("verifier",)
    with pytest.raises(PermissionDenied, match="does not have the examiner role"):
        eve_session.search("C1")  # a view opened before the change obeys it
    assert root.audit_log()[-1].details["new"] == ["verifier"]
    with pytest.raises(PermissionDenied, match="admin"):
        team.as_user("eve").set_roles("eve", "admin")  # nobody gives themself a role
    root.disable_user("adm")
    with pytest.raises(Conflict, match="last active admin"):
        root.set_roles("root", "examiner")
    with pytest.raises(InvalidField, match="role"):
        root.set_roles("eve", "boss")


def test_display_settings_are_each_users_own(team: Workspace) -> None:
    eve, vic = team.as_user("eve"), team.as_user("vic")
    assert eve.preferences() == {"show_post_mortem": False}
    assert eve.set_preference("show_post_mortem", True) == {"show_post_mortem": True}
    assert vic.preferences() == {"show_post_mortem": False}
    with pytest.raises(InvalidField, match="preference"):
        eve.set_preference("admin", True)
    with pytest.raises(InvalidField, match="true or false"):
        eve.set_preference("show_post_mortem", "yes")  # type: ignore[arg-type]


def test_a_checklist_is_checked_and_kept_with_the_conclusion(team: Workspace) -> None:
    eve = team.as_user("eve")
    checklist = {
        "eyes": {"finding": "similar", "note": "same eyelid fold"},
        "face shape": {"finding": "not-visible", "note": ""},
        "ears": {"finding": "", "note": ""},  # not filled: left out
    }
    done = eve.conclude(1, 1, "possible match", "features agree", checklist=checklist)
    assert list(done.checklist) == ["face shape", "eyes"]  # in the examiners' order
    assert done.checklist["face shape"] == {"finding": "not visible", "note": ""}
    for bad, message in (
        ({"nose job": {"finding": "similar"}}, "not one of the features"),
        ({"nose": {"finding": "same"}}, "is not one of similar, different, not-visible"),
        ({"nose": {"finding": "similar", "note": "x" * 1001}}, "at most 1000"),
        ({"nose": {"finding": "similar", "extra": 1}}, "a finding and a note"),
        (["nose"], "must map features"),
    ):
        with pytest.raises(InvalidField, match=message):
            eve.conclude(1, 1, "excluded", "r", checklist=bad)  # type: ignore[arg-type]
    assert len(FEATURES) == 10 and FEATURES[0] == "face shape" and FEATURES[-1].startswith("marks")
    assert team.as_user("aud").audit_verify().ok  # the checklist is in the search's record digest, and it verifies


def test_a_user_disabled_while_their_read_runs_gets_nothing(team: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """An audited read returns its records only once their viewing is recorded, by a user still allowed."""
    from nomina import references

    real = references.record
    eve = team.as_user("eve")

    def disabled_meanwhile(s: Any, reference_id: str, viewer: str | None = None) -> Any:
        found = real(s, reference_id, viewer)
        team.as_user("root").disable_user("eve")  # another session commits while the read's snapshot is open
        return found

    def views() -> int:
        return sum(e.action == "reference.view" for e in team.as_user("root").audit_log(reference_id="R1"))

    before = views()
    monkeypatch.setattr(references, "record", disabled_meanwhile)
    with pytest.raises(PermissionDenied, match="disabled"):
        eve.reference("R1")
    assert views() == before  # nothing was shown, so no viewing is recorded


def test_a_password_changed_while_a_login_checks_it_is_checked_again(
    team: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password hash is checked outside the write lock; a check of a hash replaced meanwhile is not used."""
    from nomina import auth

    real = auth.verified

    def reset_meanwhile(found: auth.Checked, password: str) -> auth.Checked:
        checked = real(found, password)  # the old password matches the old hash
        team.as_user("root").set_password("eve", "a brand new password 456")
        return checked

    monkeypatch.setattr(auth, "verified", reset_meanwhile)
    with pytest.raises(LoginFailed):
        team.login("eve", WEB_PASSWORD)
    monkeypatch.setattr(auth, "verified", real)
    assert team.login("eve", "a brand new password 456")[0].session is not None


def test_two_admins_taking_admin_from_each_other_at_once_leave_one(team: Workspace) -> None:
    team.as_user("root").disable_user("adm")
    team.as_user("root").add_user("ada", "admin", password=WEB_PASSWORD)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def demote(actor: str, target: str) -> None:
        view = team.as_user(actor)
        barrier.wait()
        try:
            view.set_roles(target, "examiner")
            outcomes.append("done")
        except (Conflict, PermissionDenied) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=demote, args=pair) for pair in (("root", "ada"), ("ada", "root"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 2 and outcomes.count("done") == 1, outcomes
    admins = [u.name for u in team.as_user("eve").users() if u.active and "admin" in u.roles]
    assert len(admins) == 1  # never none: the workspace can still manage its users
    assert team.as_user("aud").audit_verify().ok
