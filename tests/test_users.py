"""Users and roles: the first user bootstraps the workspace, admins manage the rest, all of it audited."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nomina import audit, users
from nomina.errors import Conflict, InvalidField, NotFound, PermissionDenied
from nomina.settings import os_user


def add(engine: Engine, name: str, roles: str | list[str], actor: str | None) -> users.User:
    with Session(engine) as s, s.begin():
        return users.add_user(s, name, roles, actor)


def disable(engine: Engine, name: str, actor: str | None) -> users.User:
    with Session(engine) as s, s.begin():
        return users.disable_user(s, name, actor)


def require(engine: Engine, name: str | None, role: str | None = None) -> users.User:
    with Session(engine) as s:
        return users.require_user(s, name, role)


def trail(engine: Engine) -> list[tuple[str, str, dict[str, object]]]:
    with Session(engine) as s:
        return [(e["actor"], e["action"], e["details"]) for e in audit.events(s)]


@pytest.fixture()
def team(engine: Engine) -> Engine:
    """ana (admin, examiner), ben (examiner), cleo (verifier)."""
    add(engine, "ana", ["admin", "examiner"], None)
    add(engine, "ben", "examiner", "ana")
    add(engine, "cleo", ["verifier"], "ana")
    return engine


# -- bootstrap -----------------------------------------------------------------------------------------
def test_the_first_user_is_added_by_anyone_and_recorded_as_the_os_user(engine):
    with Session(engine) as s:
        assert not users.has_users(s)
    ana = add(engine, "ana", ["examiner", "admin"], None)
    assert (ana.name, ana.roles, ana.active, ana.created_by) == ("ana", ("examiner", "admin"), True, os_user())
    assert trail(engine) == [
        (os_user(), "user.add", {"user": "ana", "roles": ["examiner", "admin"], "bootstrap": True})
    ]


def test_the_first_user_must_be_an_admin(engine):
    with pytest.raises(InvalidField, match="^role: the first user must have the admin role"):
        add(engine, "ben", "examiner", None)
    with Session(engine) as s:
        assert users.list_users(s) == []
    assert trail(engine) == []


def test_after_the_first_user_an_actor_is_required(team):
    with pytest.raises(
        PermissionDenied,
        match=r"^not logged in: every action is done by a user who has logged in \(this needs the admin role\)$",
    ):
        add(team, "dan", "examiner", None)


# -- admin rule ----------------------------------------------------------------------------------------
def test_only_an_admin_adds_users(team):
    with pytest.raises(PermissionDenied, match="^user 'ben' does not have the admin role \\(roles: examiner\\)$"):
        add(team, "dan", "examiner", "ben")
    with pytest.raises(NotFound, match="^user 'zoe': no such user$"):
        add(team, "dan", "examiner", "zoe")
    with Session(team) as s:
        assert [u.name for u in users.list_users(s)] == ["ana", "ben", "cleo"]


def test_only_an_admin_disables_users(team):
    with pytest.raises(PermissionDenied, match="'cleo' does not have the admin role"):
        disable(team, "ben", "cleo")
    assert require(team, "ben").active


def test_a_duplicate_user_is_a_conflict(team):
    with pytest.raises(Conflict, match="^user 'ben' already exists$"):
        add(team, "ben", "verifier", "ana")


def test_names_and_roles_are_validated_naming_the_field(team):
    with pytest.raises(InvalidField, match="^role: 'boss' is not one of examiner, verifier, admin, intake, auditor$"):
        add(team, "dan", ["examiner", "boss"], "ana")
    with pytest.raises(InvalidField, match="^role: required"):
        add(team, "dan", [], "ana")
    with pytest.raises(InvalidField, match="^user: 'dan smith' must be a short id without spaces$"):
        add(team, "dan smith", "examiner", "ana")
    assert users.parse_roles(["Verifier, examiner", "examiner"]) == ("examiner", "verifier")


@pytest.mark.parametrize(
    "name",
    # Cyrillic o, capitals, Cyrillic es, Greek omicron, a dot above the l, an accent on the e
    ["cle\u043e", "Cleo", "CLEO", "\u0441leo", "cle\u03bf", "cl\u0307eo", "cl\u00e9o"],
)
def test_a_name_that_reads_like_an_existing_user_is_refused(team, name):
    """A verification by 'cleо' must not pass for one by 'cleo' in the trail, a report or an export."""
    with pytest.raises(Conflict, match=f"^name: '{name}' looks like the existing user 'cleo'; choose a name"):
        add(team, name, "verifier", "ana")
    with Session(team) as s:
        assert [u.name for u in users.list_users(s)] == ["ana", "ben", "cleo"]
    assert add(team, "cleon", "verifier", "ana").name == "cleon"  # alike is not the same


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("(anonymous)", r"^user: .* may not begin with '\('$"),
        ("(library)", r"^user: .* may not begin with '\('$"),
        ("a/b", r"^user: 'a/b' holds '/', which a web address reads as a separator"),
    ],
)
def test_a_name_the_trail_or_the_web_addresses_use_otherwise_is_refused(team, name, message):
    with pytest.raises(InvalidField, match=message):
        add(team, name, "examiner", "ana")


# -- disabled users and roles --------------------------------------------------------------------------
def test_a_disabled_user_is_refused_everywhere(team):
    ben = disable(team, "ben", "ana")
    assert (ben.active, ben.disabled_by) == (False, "ana") and ben.disabled_at is not None
    with pytest.raises(PermissionDenied, match="^user 'ben' is disabled$"):
        require(team, "ben", "examiner")
    with pytest.raises(PermissionDenied, match="^user 'ben' is disabled$"):
        require(team, "ben")
    with pytest.raises(Conflict, match="^user 'ben' is already disabled$"):
        disable(team, "ben", "ana")
    with pytest.raises(Conflict, match="already exists"):  # a name is never reused for someone else
        add(team, "ben", "examiner", "ana")


def test_a_disabled_admin_can_no_longer_manage_users(team):
    add(team, "dan", "admin", "ana")
    disable(team, "ana", "dan")
    with pytest.raises(PermissionDenied, match="'ana' is disabled"):
        add(team, "eve", "examiner", "ana")


def test_require_user_checks_the_role(team):
    assert require(team, "cleo", "verifier").name == "cleo"
    assert require(team, "ana", "examiner").has_role("admin")
    with pytest.raises(PermissionDenied, match="^user 'ben' does not have the verifier role"):
        require(team, "ben", "verifier")
    with pytest.raises(
        PermissionDenied,
        match=r"^not logged in: every action is done by a user who has logged in \(this needs the verifier role\)$",
    ):
        require(team, "", "verifier")
    with pytest.raises(NotFound):
        require(team, "nobody")
    with pytest.raises(InvalidField, match="^role: 'boss' is not one of"):
        require(team, "ana", "boss")


# -- the last admin ------------------------------------------------------------------------------------
def test_the_last_active_admin_cannot_disable_themselves(team):
    with pytest.raises(Conflict, match="^user 'ana' is the last active admin; add another admin first$"):
        disable(team, "ana", "ana")
    assert require(team, "ana", "admin").active


def test_an_admin_may_step_down_when_another_admin_remains(team):
    add(team, "dan", ["admin"], "ana")
    disable(team, "ana", "ana")
    assert require(team, "dan", "admin").name == "dan"
    with pytest.raises(Conflict, match="'dan' is the last active admin"):
        disable(team, "dan", "dan")


def test_disabling_an_unknown_user_is_not_found(team):
    with pytest.raises(NotFound, match="^user 'zoe': no such user$"):
        disable(team, "zoe", "ana")


# -- the trail of user changes -------------------------------------------------------------------------
def test_each_user_change_is_audited_in_its_own_transaction(team):
    disable(team, "ben", "ana")
    with pytest.raises(Conflict):
        add(team, "cleo", "admin", "ana")
    assert trail(team) == [
        (os_user(), "user.add", {"user": "ana", "roles": ["examiner", "admin"], "bootstrap": True}),
        ("ana", "user.add", {"user": "ben", "roles": ["examiner"], "bootstrap": False}),
        ("ana", "user.add", {"user": "cleo", "roles": ["verifier"], "bootstrap": False}),
        ("ana", "user.disable", {"user": "ben"}),
    ]
    with Session(team) as s:
        assert audit.verify(s).ok


def test_a_user_change_rolls_back_with_its_transaction(engine):
    with pytest.raises(RuntimeError), Session(engine) as s, s.begin():
        users.add_user(s, "ana", "admin", None)
        raise RuntimeError("the caller's work failed")
    with Session(engine) as s:
        assert users.list_users(s) == [] and audit.events(s) == []


@pytest.mark.parametrize("name", ["v\\ic", "o'neil", 'say"hi', 'it\'s"quoted"', "tab\\t"])
def test_a_name_with_quotes_or_backslashes_leaves_the_trail_intact(team, name):
    """The trail keys a user's record by the name written as a Python string literal (escapes and all); it
    is read back exactly, so a name Nomina accepts never reads as a record changed behind its back."""
    add(team, name, "verifier", "ana")
    disable(team, name, "ana")
    with Session(team) as s:
        result = audit.verify(s)
    assert result.ok and not result.records, result.records
