"""Logins, sessions and API tokens (nomina.auth), tried as someone who wants to act as another user would."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import (
    ACT_AS,
    NOMINA_HASHER,
    PASSWORD,
    USER,
    _exit_code,
    assert_one_error_line,
    database_files,
    raw_database,
    run,
    snapshot,
    token_for,
)

from nomina import Workspace, auth, credentials
from nomina.cli import main
from nomina.errors import InvalidField, LockedOut, LoginFailed, NotFound, NotLoggedIn, PermissionDenied

BEN_PASSWORD = "a different long passphrase"


@pytest.fixture()
def team(ws: Workspace) -> Workspace:
    """The test workspace with ana (admin, examiner, with a password) and ben (verifier, with a password)."""
    ws.set_password(USER, PASSWORD)
    ws.add_user("ben", "verifier", password=BEN_PASSWORD)
    return ws


def _trail(ws: Workspace) -> list[dict]:
    with raw_database(ws.path) as con:
        rows = con.execute("SELECT actor, action, details FROM audit_events ORDER BY seq").fetchall()
    return [{"actor": a, "action": b, "details": json.loads(c)} for a, b, c in rows]


def _later(monkeypatch: pytest.MonkeyPatch, **delta: float) -> None:
    """Move nomina.auth's clock forward: the only way to see an expiry without waiting for it."""
    real = auth._now
    monkeypatch.setattr(auth, "_now", lambda: real() + timedelta(**delta))


# -- passwords and logins ---------------------------------------------------------------------------------
def test_a_login_opens_a_session_that_acts_as_its_user_and_is_named_in_the_trail(team: Workspace):
    result, ben = team.login("ben", BEN_PASSWORD)
    assert result.secret and result.session is not None and ben.user == "ben"
    again = team.with_credential(result.secret)
    me = again.whoami()
    assert (me.user, me.roles, me.via) == ("ben", ("verifier",), f"session {result.session.id}")
    ben.users()
    last = _trail(team)[-1]
    assert last["action"] == "login.ok" and last["details"]["context"]["via"] == "password"
    assert team.audit_verify().ok


def test_the_database_holds_no_secret_and_no_password(team: Workspace):
    result, ben = team.login("ben", BEN_PASSWORD)
    token = ben.create_token("script")
    team.close()
    data = b"".join(database_files(team.path).values())
    for secret in (result.secret, token.secret, BEN_PASSWORD, PASSWORD):
        assert secret.encode() not in data
    assert auth.digest(token.secret).encode() in data  # only the hash, by which it is found


def test_passwords_are_hashed_with_argon2id_at_the_rfc_9106_low_memory_cost(team: Workspace):
    from argon2 import Type

    (production,) = NOMINA_HASHER  # nomina.auth's own, before the tests swapped it for a cheaper one
    assert (production.type, production.time_cost, production.memory_cost, production.parallelism) == (
        Type.ID,
        3,
        65536,
        4,
    )
    with raw_database(team.path) as con:
        stored = con.execute("SELECT password_hash FROM users WHERE name = 'ben'").fetchone()[0]
    assert stored.startswith("$argon2id$v=19$") and BEN_PASSWORD not in stored


def test_a_wrong_password_and_an_unknown_user_get_the_same_refusal(team: Workspace):
    with pytest.raises(LoginFailed) as wrong:
        team.login("ben", "not his password at all")
    with pytest.raises(LoginFailed) as unknown:
        team.login("bob", "not his password at all")
    assert str(wrong.value) == str(unknown.value) == "login refused: wrong user name or password"
    assert wrong.value.http_status == 401


def test_nothing_typed_as_an_unknown_user_name_is_kept(team: Workspace):
    typed = "my secret passphrase typed in the wrong field"
    with pytest.raises(LoginFailed):
        team.login(typed, "whatever it is here")
    refused = _trail(team)[-1]
    assert refused["action"] == "login.fail" and refused["actor"] == "(anonymous)"
    assert refused["details"]["why"] == "no such user" and refused["details"].get("user") is None
    raw = b"".join(database_files(team.path).values())
    assert typed.encode() not in raw


def test_five_failures_lock_the_user_out_even_with_the_right_password_until_an_admin_resets(team: Workspace):
    for _ in range(auth.MAX_FAILURES - 1):
        with pytest.raises(LoginFailed) as caught:
            team.login("ben", "guessing his password")
        assert type(caught.value) is LoginFailed
    with pytest.raises(LockedOut):
        team.login("ben", "guessing his password")
    with pytest.raises(LockedOut) as locked:
        team.login("ben", BEN_PASSWORD)  # the right one: refused without being checked
    assert locked.value.http_status == 429 and "locked out until" in str(locked.value)
    actions = [e["action"] for e in _trail(team)]
    assert actions.count("login.fail") == auth.MAX_FAILURES + 1 and actions.count("login.lockout") == 1
    assert next(u for u in team.users() if u.name == "ben").locked_until is not None
    team.set_password("ben", "a brand new passphrase")  # an admin's reset ends the lockout
    team.login("ben", "a brand new passphrase")
    assert team.audit_verify().ok


def test_a_lockout_ends_by_itself(team: Workspace, monkeypatch: pytest.MonkeyPatch):
    for _ in range(auth.MAX_FAILURES):
        with pytest.raises(LoginFailed):
            team.login("ben", "guessing his password")
    _later(monkeypatch, minutes=16)
    team.login("ben", BEN_PASSWORD)


def test_after_a_lockout_ends_the_count_starts_again(team: Workspace, monkeypatch: pytest.MonkeyPatch):
    for _ in range(auth.MAX_FAILURES):
        with pytest.raises(LoginFailed):
            team.login("ben", "guessing his password")
    _later(monkeypatch, minutes=16)
    for _ in range(auth.MAX_FAILURES - 1):  # not locked again by the first wrong password after it
        with pytest.raises(LoginFailed) as caught:
            team.login("ben", "guessing his password")
        assert type(caught.value) is LoginFailed
    with pytest.raises(LockedOut):
        team.login("ben", "guessing his password")


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", r"password: too short; use at least 12 characters"),
        ("x" * 2000, r"password: too long"),
        ("benbenbenbenben", r"password: must not contain the user name"),
        ("long enough\x00passphrase", r"password: holds a NUL character"),
    ],
)
def test_weak_passwords_are_refused_and_change_nothing(team: Workspace, password: str, message: str):
    before = snapshot(team.path)
    with pytest.raises(InvalidField, match=message):
        team.set_password("ben", password)
    with pytest.raises(InvalidField, match=message):
        team.add_user("ben2" if "ben" not in password else "ben", "verifier", password=password)
    assert snapshot(team.path) == before


def test_changing_ones_own_password_needs_the_current_one_and_only_admins_set_others(team: Workspace):
    _, ben = team.login("ben", BEN_PASSWORD)
    with pytest.raises(LoginFailed, match="current password: wrong password"):
        ben.set_password("ben", "another long passphrase", current="not the current one")
    with pytest.raises(PermissionDenied, match="does not have the admin role"):
        ben.set_password(USER, "ana's new long passphrase")
    assert ben.set_password("ben", "another long passphrase", current=BEN_PASSWORD).sessions_ended == 0
    team.login("ben", "another long passphrase")


def test_guessing_the_current_password_from_an_open_session_is_counted_recorded_and_locked_out(team: Workspace):
    """Someone who finds ben's session open cannot try passwords on the change form for ever: each wrong
    current password is a failed login in the trail, and the fifth locks ben out, the right one included."""
    _, ben = team.login("ben", BEN_PASSWORD)
    for _ in range(auth.MAX_FAILURES - 1):
        with pytest.raises(LoginFailed, match="^current password: wrong password$") as caught:
            ben.set_password("ben", "the intruder's passphrase", current="a guess at his password")
        assert type(caught.value) is LoginFailed and caught.value.field == "current_password"
    with pytest.raises(LockedOut, match="^password change refused: user 'ben' is locked out until "):
        ben.set_password("ben", "the intruder's passphrase", current="a guess at his password")
    with pytest.raises(LockedOut):
        ben.set_password("ben", "the intruder's passphrase", current=BEN_PASSWORD)  # not even checked
    with pytest.raises(LockedOut):
        team.login("ben", BEN_PASSWORD)
    refused = [e for e in _trail(team) if e["action"] == "login.fail"]
    assert [e["details"]["why"] for e in refused] == ["wrong current password"] * auth.MAX_FAILURES + [
        "locked out",
        "locked out",
    ]
    assert {e["actor"] for e in refused[:-1]} == {"ben"}  # the session's user; the last is the login page's
    assert [e["action"] for e in _trail(team)].count("login.lockout") == 1
    team.set_password("ben", "a brand new passphrase")  # an admin's reset ends the lockout
    team.login("ben", "a brand new passphrase")
    assert team.audit_verify().ok


def test_a_right_current_password_clears_the_failures_before_it(team: Workspace):
    _, ben = team.login("ben", BEN_PASSWORD)
    for _ in range(auth.MAX_FAILURES - 1):
        with pytest.raises(LoginFailed):
            team.login("ben", "guessing his password")
    ben.set_password("ben", "another long passphrase", current=BEN_PASSWORD)
    with pytest.raises(LoginFailed) as caught:
        team.login("ben", "guessing again")
    assert type(caught.value) is LoginFailed  # a first failure again, not the fifth


# -- sessions -----------------------------------------------------------------------------------------------
def test_a_session_ends_at_logout_and_its_secret_opens_nothing_after(team: Workspace):
    result, ben = team.login("ben", BEN_PASSWORD)
    assert ben.logout() is True
    with pytest.raises(NotLoggedIn, match="ended \\(logout\\)"):
        ben.users()  # the view made before the logout: every call checks its session again
    with pytest.raises(NotLoggedIn):
        team.with_credential(result.secret)
    assert _trail(team)[-1]["action"] == "session.end"


def test_sessions_expire_absolutely_and_when_idle(team: Workspace, monkeypatch: pytest.MonkeyPatch):
    _, ben = team.login("ben", BEN_PASSWORD, hours=8, idle_minutes=30)
    with monkeypatch.context() as m:
        _later(m, minutes=29)
        ben.users()
    with monkeypatch.context() as m:
        _later(m, minutes=31)
        with pytest.raises(NotLoggedIn, match="ended after 30 minutes without use"):
            ben.users()
    result, _ = team.login("ben", BEN_PASSWORD, hours=1, idle_minutes=120)
    with monkeypatch.context() as m:
        _later(m, minutes=61)
        with pytest.raises(NotLoggedIn, match="expired at"):
            team.with_credential(result.secret)


def test_setting_a_password_ends_the_users_sessions(team: Workspace):
    _, ben = team.login("ben", BEN_PASSWORD)
    team.set_password("ben", "reset by the admin now")
    with pytest.raises(NotLoggedIn, match="ended \\(password set\\)"):
        ben.users()


def test_an_admins_reset_revokes_the_users_tokens_and_ones_own_change_keeps_them(team: Workspace):
    """A reset takes an account back: a token made by whoever held it (or stole its password) must stop
    with it, on every open view, and the trail says who revoked it."""
    _, ben = team.login("ben", BEN_PASSWORD)
    scripts = [ben.create_token(label) for label in ("nightly", "other")]
    ben.revoke_token(scripts[1].token.id)  # already revoked: left as it was
    views = [team.with_credential(t.secret) for t in scripts[:1]]
    own = ben.set_password("ben", "his own new passphrase", current=BEN_PASSWORD)
    assert (own.sessions_ended, own.tokens_revoked) == (0, 0)
    assert views[0].whoami().user == "ben"  # his own change keeps his scripts running
    done = team.set_password("ben", "reset by the admin now")
    assert (done.user, done.sessions_ended, done.tokens_revoked) == ("ben", 1, 1)
    with pytest.raises(NotLoggedIn, match="revoked"):
        views[0].whoami()
    with pytest.raises(NotLoggedIn):
        team.with_credential(scripts[0].secret)
    tokens = {t.id: t for t in team.tokens(everyone=True) if t.user == "ben"}
    assert tokens[scripts[0].token.id].revoked_by == USER and tokens[scripts[1].token.id].revoked_by == "ben"
    trail = _trail(team)[-2:]
    assert [e["action"] for e in trail] == ["user.password", "token.revoke"]
    assert trail[1]["actor"] == USER and trail[1]["details"]["token"] == scripts[0].token.id
    assert team.audit_verify().ok


def test_a_disabled_users_sessions_and_tokens_stop_at_once(team: Workspace):
    _, ben = team.login("ben", BEN_PASSWORD)
    token = ben.create_token("script")
    scripted = team.with_credential(token.secret)
    team.disable_user("ben")
    for view in (ben, scripted):
        with pytest.raises(PermissionDenied, match="user 'ben' is disabled"):
            view.users()
    with pytest.raises(LoginFailed):
        team.login("ben", BEN_PASSWORD)


@pytest.mark.parametrize(
    "secret",
    ["", "nms_", "nms_" + "A" * 43, "nmt_" + "A" * 43, "ben", "x" * 10_000, "nms_\x1b[31m", "Bearer nmt_abc"],
)
def test_made_up_secrets_open_nothing(team: Workspace, secret: str):
    with pytest.raises(NotLoggedIn) as caught:
        team.with_credential(secret)
    assert caught.value.http_status == 401 and len(str(caught.value)) < 200 and "\x1b" not in str(caught.value)


# -- API tokens ---------------------------------------------------------------------------------------------
def test_a_token_acts_with_its_users_roles_until_revoked(team: Workspace):
    _, ben = team.login("ben", BEN_PASSWORD)
    made = ben.create_token("nightly export", expires_days=30)
    scripted = team.with_credential(made.secret)
    assert scripted.whoami().via == f"token {made.token.id}" and scripted.whoami().roles == ("verifier",)
    with pytest.raises(PermissionDenied, match="does not have the examiner role"):
        scripted.search("anything")
    assert [t.id for t in ben.tokens()] == [made.token.id]
    ben.revoke_token(made.token.id)
    with pytest.raises(NotLoggedIn, match="revoked"):
        scripted.users()  # the view made before the revocation
    with pytest.raises(NotLoggedIn, match="revoked"):
        team.with_credential(made.secret)


def test_only_the_owner_or_an_admin_revokes_a_token_and_only_admins_list_everyones(team: Workspace):
    ana_token = team.create_token("ana's script")
    _, ben = team.login("ben", BEN_PASSWORD)
    with pytest.raises(NotFound):
        ben.revoke_token(ana_token.token.id)
    with pytest.raises(NotFound):
        ben.revoke_token(10**30)
    with pytest.raises(PermissionDenied, match="admin"):
        ben.tokens(everyone=True)
    ben_token = ben.create_token("ben's script")
    assert {t.id for t in team.tokens(everyone=True)} == {ana_token.token.id, ben_token.token.id}
    assert team.revoke_token(ben_token.token.id).revoked_by == USER


def test_a_token_expires(team: Workspace, monkeypatch: pytest.MonkeyPatch):
    made = team.create_token("short-lived", expires_days=1)
    _later(monkeypatch, days=1, seconds=1)
    with pytest.raises(NotLoggedIn, match="expired"):
        team.with_credential(made.secret)


@pytest.mark.parametrize(("label", "days"), [("", None), ("x" * 101, None), ("tab\there\x1b", None), ("ok", 0)])
def test_bad_token_requests_are_refused(team: Workspace, label: str, days: int | None):
    with pytest.raises(InvalidField):
        team.create_token(label, days)


# -- behind Nomina's back -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "edit",
    [
        'INSERT INTO login_sessions ("user", secret_sha256, kind, created_at, expires_at, idle_minutes) '
        "VALUES ('ben', '{sha}', 'cli', '2026-01-01 00:00:00', '2099-01-01 00:00:00', 30)",
        'INSERT INTO api_tokens ("user", secret_sha256, label, created_at) '
        "VALUES ('ben', '{sha}', 'x', '2026-01-01 00:00:00')",
        "UPDATE users SET password_hash = '{sha}' WHERE name = 'ben'",
        "UPDATE users SET locked_until = NULL, failed_logins = NULL WHERE name = 'ben'",
    ],
    ids=["inserted-session", "inserted-token", "changed-password-hash", "lockout-lifted"],
)
def test_credentials_written_behind_ninas_back_show_in_audit_verify(team: Workspace, edit: str):
    for _ in range(auth.MAX_FAILURES):
        with pytest.raises(LoginFailed):
            team.login("ben", "guessing his password")
    secret = "nms_" + "k" * 43
    with raw_database(team.path) as con:
        con.execute(edit.format(sha=auth.digest(secret)))
    verified = team.audit_verify()
    assert not verified.ok and any("user 'ben'" in line for line in verified.records), verified


def test_a_view_named_by_a_program_is_marked_as_such_in_the_trail(team: Workspace):
    team.as_user("ben").users()
    team.create_token("for the record")
    assert _trail(team)[-1]["details"]["context"]["via"] == "library"


# -- the command line -----------------------------------------------------------------------------------------
@pytest.fixture()
def logged_out(cli_ws: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The command-line workspace (ana's password is PASSWORD), used without any token: as a person would."""
    monkeypatch.delenv(ACT_AS)
    return cli_ws


def test_login_keeps_an_owner_only_session_file_and_logout_ends_it(logged_out: Path, capsys):
    old = os.umask(0o022)
    try:
        code, out, err = run(
            capsys, "login", "--user", USER, "--password-stdin", "-w", logged_out, stdin=PASSWORD + "\n"
        )
    finally:
        os.umask(old)
    assert code == 0, err
    assert f"Logged in as {USER}" in out
    saved = credentials.path_for(logged_out)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    code, out, _ = run(capsys, "whoami", "-w", logged_out)
    assert code == 0 and out.startswith(f"{USER} (examiner, admin), with session ")
    secret = json.loads(saved.read_text())["secret"]
    assert run(capsys, "logout", "-w", logged_out)[1].strip() == "Logged out."
    assert not saved.exists()
    saved.write_text(json.dumps({"secret": secret}))  # the secret kept by someone who copied the file
    saved.chmod(0o600)
    code, _, err = run(capsys, "reference", "list", "-w", logged_out)
    assert code == 1
    assert_one_error_line(err, r"session \d+: ended \(logout\); log in again")
    assert run(capsys, "logout", "-w", logged_out)[1].strip() == "Logged out."
    assert run(capsys, "logout", "-w", logged_out)[1].strip() == "Not logged in."


def test_a_session_file_others_can_read_is_refused(logged_out: Path, capsys):
    assert run(capsys, "login", "-u", USER, "--password-stdin", "-w", logged_out, stdin=PASSWORD + "\n")[0] == 0
    credentials.path_for(logged_out).chmod(0o644)
    code, _, err = run(capsys, "case", "list", "-w", logged_out)
    assert code == 1
    assert_one_error_line(err, r"session file .*: others may read it \(mode 644\); remove it and log in again")


def test_the_proposer_cannot_verify_by_naming_someone_else(logged_out: Path, capsys, monkeypatch):
    """The hole this closes: the proposer ran `NOMINA_USER=ben nomina identification verify` and it worked."""
    assert run(capsys, "--as", USER, "user", "add", "ben", "--role", "verifier", "-w", logged_out)[0] == 0
    assert run(capsys, "--as", USER, "search", "C1", "-w", logged_out)[0] == 0
    assert (
        run(capsys, "--as", USER, "identification", "propose", "C1", "R1", "--reasons", "ears", "-w", logged_out)[0]
        == 0
    )
    assert run(capsys, "login", "-u", USER, "--password-stdin", "-w", logged_out, stdin=PASSWORD + "\n")[0] == 0
    before = snapshot(logged_out)
    monkeypatch.setenv("NOMINA_USER", "ben")
    verify = ("identification", "verify", "C1", "--conclusion", "same-person", "--reasons", "alike",
              "--reference", "R1", "-w", logged_out)  # fmt: skip
    code, _, err = run(capsys, *verify)
    assert code == 1
    assert_one_error_line(err, r"user 'ana' does not have the verifier role")
    assert _exit_code(main, ("--as", "ben", *verify)) == 2  # no option names another user
    assert "No such option: --as" in capsys.readouterr().err
    code, _, err = run(capsys, "login", "-u", "ben", "--password-stdin", "-w", logged_out, stdin="a guess at it\n")
    assert code == 1
    assert_one_error_line(err, r"^error: login refused: wrong user name or password$")
    after = snapshot(logged_out)
    assert {k: v for k, v in after.tables.items() if k not in ("audit_events", "workspace_info", "users")} == {
        k: v for k, v in before.tables.items() if k not in ("audit_events", "workspace_info", "users")
    }  # the refusal counted against ben, nothing else changed


@pytest.mark.parametrize(
    ("args", "stdin", "pattern"),
    [
        (("login", "-u", USER, "--password-stdin"), "", r"password: nothing on standard input"),
        (("login", "-u", USER, "--password-stdin"), "x" * 100_000, r"password: too long"),
        (("login", "--password-stdin"), PASSWORD + "\n", r"--user: required when not at a terminal"),
        (("login", "-u", USER), None, r"password: needed; type it at a terminal, or give it on standard input"),
        (("token", "create", "--label", " "), None, r"not logged in"),
        (("whoami",), None, r"not logged in: log in with `nomina login`, or set NOMINA_TOKEN"),
        (("user", "passwd"), None, r"not logged in"),
    ],
)
def test_bad_login_input_is_one_line_and_changes_nothing(logged_out: Path, capsys, args, stdin, pattern):
    before = snapshot(logged_out)
    code, _, err = run(capsys, *args, "-w", logged_out, stdin=stdin)
    assert code == 1
    assert_one_error_line(err, pattern)
    assert snapshot(logged_out) == before


def test_a_bad_nomina_token_is_one_line(logged_out: Path, capsys, monkeypatch):
    monkeypatch.setenv("NOMINA_TOKEN", "nmt_" + "z" * 43)
    code, _, err = run(capsys, "case", "list", "-w", logged_out)
    assert code == 1
    assert_one_error_line(err, r"API token: unknown to this workspace")


def test_init_without_a_password_creates_nothing(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.delenv(ACT_AS)
    code, _, err = run(capsys, "init", tmp_path / "ws", "--admin", "zed")
    assert code == 1
    assert_one_error_line(err, r"password: needed")
    code, _, err = run(capsys, "init", tmp_path / "ws", "--admin", "zed", "--password-stdin", stdin="zed is short\n")
    assert_one_error_line(err, r"password: must not contain the user name")
    assert not (tmp_path / "ws").exists()


def test_tokens_on_the_command_line(logged_out: Path, capsys, monkeypatch):
    assert run(capsys, "login", "-u", USER, "--password-stdin", "-w", logged_out, stdin=PASSWORD + "\n")[0] == 0
    code, out, err = run(capsys, "token", "create", "--label", "nightly", "-w", logged_out)
    assert code == 0 and "store it now, it is not shown again" in err
    secret = out.strip()
    listed = json.loads(run(capsys, "token", "list", "--json", "-w", logged_out)[1])
    listed = [t for t in listed if t["label"] != "tests"]  # run() made one for ana, as a script would
    assert [(t["label"], t["revoked_at"]) for t in listed] == [("nightly", None)] and secret not in json.dumps(listed)
    assert run(capsys, "logout", "-w", logged_out)[0] == 0
    monkeypatch.setenv("NOMINA_TOKEN", secret)
    code, out, _ = run(capsys, "whoami", "-w", logged_out)
    assert code == 0 and f"with token {listed[0]['id']} (nightly)" in out
    assert run(capsys, "token", "revoke", str(listed[0]["id"]), "-w", logged_out)[0] == 0
    code, _, err = run(capsys, "case", "list", "-w", logged_out)
    assert_one_error_line(err, rf"API token {listed[0]['id']}: revoked")


def _ten_wrong_at_once(team: Workspace, guess: Callable[[int], object]) -> None:
    """``guess(k)`` for k = 0..9 in ten threads released at the same moment, each a wrong password: each is
    refused and counted, the fifth locks the user out (those after it are LockedOut), and the lockout is
    written once."""
    import threading

    barrier = threading.Barrier(10)
    refusals: list[type] = []

    def run(k: int) -> None:
        barrier.wait()
        try:
            guess(k)
        except LoginFailed as exc:
            refusals.append(type(exc))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(refusals) == 10 and refusals.count(LockedOut) == 10 - (auth.MAX_FAILURES - 1)
    actions = [e["action"] for e in _trail(team)]
    assert actions.count("login.fail") == 10 and actions.count("login.lockout") == 1


def test_failed_logins_at_once_lock_out_exactly_once(team: Workspace):
    """Ten wrong passwords at the same moment: each is counted, and the lockout is written once."""
    _ten_wrong_at_once(team, lambda k: team.login("ben", "guessing his password"))
    assert team.audit_verify().ok


def test_guesses_on_the_login_page_and_the_password_form_at_once_share_one_count(team: Workspace):
    """Five wrong current passwords from ben's open session and five wrong logins, all at the same moment:
    one count of ten failures, one lockout, and the right password refused after it on either path."""
    _, ben = team.login("ben", BEN_PASSWORD)

    def guess(k: int) -> object:
        if k % 2 == 0:
            return ben.set_password("ben", "the intruder's passphrase", current="a guess at his password")
        return team.login("ben", "guessing his password")

    _ten_wrong_at_once(team, guess)
    with pytest.raises(LockedOut):
        ben.set_password("ben", "the intruder's passphrase", current=BEN_PASSWORD)
    with pytest.raises(LockedOut):
        team.login("ben", BEN_PASSWORD)
    assert team.audit_verify().ok


def test_a_workspace_from_a_newer_version_is_refused_in_one_line(cli_ws: Path, capsys):
    with raw_database(cli_ws) as con:
        con.execute("UPDATE alembic_version SET version_num = '9999'")
    code, _, err = run(capsys, "case", "list", "-w", cli_ws)
    assert code == 1
    assert_one_error_line(err, r"made by a newer version of Nomina \(schema 9999\); upgrade Nomina to open it")


def test_an_ended_session_still_lets_commands_that_need_no_user_run(logged_out: Path, capsys, monkeypatch):
    assert run(capsys, "login", "-u", USER, "--password-stdin", "-w", logged_out, stdin=PASSWORD + "\n")[0] == 0
    _later(monkeypatch, hours=9)
    assert run(capsys, "info", "-w", logged_out)[0] == 0
    code, _, err = run(capsys, "case", "list", "-w", logged_out)
    assert code == 1
    assert_one_error_line(err, r"^error: session \d+: expired at .* UTC; log in again$")


def test_a_session_file_that_cannot_be_written_is_one_line_and_the_session_is_ended(logged_out, capsys, monkeypatch):
    blocked = logged_out.parent / "state"
    blocked.write_text("a file where the state folder should be")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocked))
    code, _, err = run(capsys, "login", "-u", USER, "--password-stdin", "-w", logged_out, stdin=PASSWORD + "\n")
    assert code == 1
    assert_one_error_line(err, r"session file .*: cannot be written")
    with raw_database(logged_out) as con:
        open_sessions = con.execute("SELECT count(*) FROM login_sessions WHERE ended_at IS NULL").fetchone()[0]
    assert open_sessions == 0


def test_a_disabled_users_saved_session_can_still_be_logged_out(logged_out: Path, capsys):
    assert run(capsys, "--as", USER, "user", "add", "ben", "--role", "verifier", "--password-stdin", "-w", logged_out,
               stdin=BEN_PASSWORD + "\n")[0] == 0  # fmt: skip
    assert run(capsys, "login", "-u", "ben", "--password-stdin", "-w", logged_out, stdin=BEN_PASSWORD + "\n")[0] == 0
    assert run(capsys, "--as", USER, "user", "disable", "ben", "-w", logged_out)[0] == 0
    assert run(capsys, "info", "-w", logged_out)[0] == 0
    code, _, err = run(capsys, "case", "list", "-w", logged_out)
    assert_one_error_line(err, r"^error: user 'ben' is disabled$")
    assert run(capsys, "logout", "-w", logged_out)[1].strip() == "Logged out."
    assert not credentials.path_for(logged_out).exists()


def test_an_admins_reset_on_the_command_line_says_what_it_revoked(logged_out: Path, capsys, monkeypatch):
    add = ("user", "add", "ben", "--role", "verifier", "--password-stdin", "-w", logged_out)
    assert run(capsys, "--as", USER, *add, stdin=BEN_PASSWORD + "\n")[0] == 0  # run() gives ben a token
    bens = token_for(logged_out, "ben")
    reset = ("user", "passwd", "ben", "--password-stdin", "-w", logged_out)
    code, out, err = run(capsys, "--as", USER, *reset, stdin="a new passphrase for him\n")
    assert code == 0, err
    assert "Password set for ben; 0 other session(s) ended; 1 API token(s) revoked." in out
    monkeypatch.setenv("NOMINA_TOKEN", bens)
    code, _, err = run(capsys, "whoami", "-w", logged_out)
    assert code == 1
    assert_one_error_line(err, r"API token \d+: revoked")


def test_user_roles_takes_every_role_given_as_user_add_does(logged_out: Path, capsys):
    """A repeated --role kept only the last one: a user quietly lost the others (an admin too)."""
    assert run(capsys, "--as", USER, "user", "add", "cy", "--role", "verifier", "-w", logged_out)[0] == 0
    code, out, err = run(capsys, "--as", USER, "user", "roles", "cy", "--role", "examiner", "--role", "verifier",
                         "-w", logged_out)  # fmt: skip
    assert code == 0, err
    assert "User cy: examiner, verifier." in out
    code, out, _ = run(capsys, "--as", USER, "user", "roles", "cy", "--role", "intake,auditor", "-w", logged_out)
    assert code == 0 and "User cy: intake, auditor." in out
