"""Shared fixtures: the real sample photos, the real default model, real workspace files."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import typer.main
from sqlalchemy import Engine

from nomina import FaceModel, Workspace, load_model, load_settings
from nomina.cli import main
from nomina.settings import Settings
from nomina.store import DB_NAME, Database, connect, upgrade

REPO = Path(__file__).resolve().parents[1]
#: Provenance options for `reference add` in command-line tests.
PROV = ["--source", "family", "--supplied-by", "a brother", "--legal-basis", "family request"]


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """The sample photos (../shared/faces), or the folder named by NOMINA_TEST_FACES."""
    folder = Path(os.environ.get("NOMINA_TEST_FACES") or REPO.parent / "shared" / "faces")
    if not (folder / "london").is_dir():
        pytest.fail(f"sample photos not found at {folder}; set NOMINA_TEST_FACES", pytrace=False)
    return folder


@pytest.fixture(scope="session")
def model() -> FaceModel:
    return load_model()


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return load_settings(environ={}, home=tmp_path / "ws")


#: The user tests act as: the first user of every test workspace (admin and examiner).
USER = "ana"
#: The password `nomina init` gives USER in command-line tests.
PASSWORD = "correct horse battery staple"


@pytest.fixture()
def engine(tmp_path: Path) -> Engine:
    """A bare workspace database (the schema, nothing else), for tests below the Workspace API."""
    engine = connect(tmp_path / DB_NAME)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture()
def ws(settings: Settings, model: FaceModel) -> Workspace:
    workspace = Workspace.create(settings.home, settings, model=model, admin=USER)
    yield workspace
    workspace.close()


def london(faces_dir: Path, ident: str, expression: str = "neutral") -> Path:
    return faces_dir / "london" / ident / f"{ident}_{expression}.jpg"


@pytest.fixture()
def two_faces(tmp_path: Path, faces_dir: Path) -> Path:
    """One photo with two people side by side: london 001 on the left, 002 on the right."""
    left = cv2.imread(str(london(faces_dir, "001")))
    right = cv2.imread(str(london(faces_dir, "002")))
    path = tmp_path / "two_people.jpg"
    cv2.imwrite(str(path), np.hstack([left, right]))
    return path


@dataclass(frozen=True)
class Snapshot:
    """Everything a workspace holds: every table's rows and every file with its hash."""

    tables: dict[str, list[tuple[object, ...]]]
    files: dict[str, str]


def snapshot(folder: Path) -> Snapshot:
    tables: dict[str, list[tuple[object, ...]]] = {}
    db = folder / "nomina.db"
    if db.exists():
        con = sqlite3.connect(db)
        try:
            names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for name in sorted(names):
                tables[name] = sorted(con.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
        finally:
            con.close()
    files = {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith("nomina.db")
    }
    return Snapshot(tables, files)


def _test_environment(monkeypatch: pytest.MonkeyPatch, cache: Path, state: Path) -> None:
    for key in list(os.environ):
        if key.startswith("NOMINA_") and key != "NOMINA_TEST_FACES":
            monkeypatch.delenv(key)
    monkeypatch.setenv("NOMINA_CACHE", str(cache))
    monkeypatch.setenv("XDG_STATE_HOME", str(state))  # login sessions (nomina.credentials)
    monkeypatch.setenv(ACT_AS, USER)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests see Nomina's defaults, whatever NOMINA_* variables the developer has set, except that the
    evaluation cache and the login sessions are fresh folders of the test's own (never the user's), and
    commands run by :func:`run` act as USER, whom `nomina init` makes the workspace's first user."""
    _test_environment(monkeypatch, tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="session", autouse=True)
def _quick_password_hashes() -> Iterator[None]:
    """Passwords hashed with argon2id at its cheapest (1 pass over 8 MiB) instead of Nomina's 3 passes over
    64 MiB (0.3 s each, which tests pay hundreds of times); the same code, only the cost differs.
    tests/test_logins.py checks the parameters Nomina itself uses."""
    from argon2 import PasswordHasher

    from nomina import auth

    NOMINA_HASHER.append(auth._hasher)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
        yield


#: The password hasher Nomina itself uses (kept by _quick_password_hashes).
NOMINA_HASHER: list[object] = []


# -- workspaces built once per session, copied for each test ---------------------------------------------
@contextmanager
def _session_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The environment _clean_environment gives a test, for session fixtures (set up before it)."""
    with pytest.MonkeyPatch.context() as mp:
        _test_environment(mp, tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("state"))
        yield


_built: dict[tuple[Path, str], Path] = {}


def build_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The workspace folder called ``name``, made by ``build(folder)`` once per session, in the environment
    tests see. Tests never use it directly: each takes its own copy with :func:`copy_workspace`.

    Once per session even when its session fixture is imported into several test modules (pytest then sets
    up one instance of the fixture per module): the folder is kept here by name."""
    key = (tmp_path_factory.getbasetemp(), name)
    if key not in _built:
        folder = tmp_path_factory.mktemp(name) / "ws"
        with _session_environment(tmp_path_factory):
            build(folder)
        _built[key] = folder
    return _built[key]


def copy_workspace(template: Path, tmp_path: Path) -> Path:
    """The test's own copy (tmp_path / "ws") of a workspace built once: its own SQLite file (nomina.db),
    photos/ and index, as if the test had built it; the workspace keeps no absolute path of itself."""
    return Path(shutil.copytree(template, tmp_path / "ws", symlinks=True))


# -- the command line, as a user runs it ---------------------------------------------------------------
@pytest.fixture(scope="session", autouse=True)
def _command_tree_built_once() -> Iterator[None]:
    """Typer turns the command functions into a click command tree on every call of the app (about 0.1 s:
    it reads every command's annotations), a large part of an in-process command's time in these tests, which
    run commands hundreds of times. Here the tree is built once per app and reused: it is the same tree each
    call would build, and `nomina.cli.main` runs as it is. The `nomina` script builds it on each run, as in
    tests/test_startup.py and the multi-process tests."""
    build = typer.main.get_command
    built: dict[int, tuple[typer.Typer, object]] = {}

    def get_command(app: typer.Typer) -> object:
        if id(app) not in built:
            built[id(app)] = (app, build(app))  # the app is kept, so its id is never reused
        return built[id(app)][1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(typer.main, "get_command", get_command)
        yield


#: The environment variable naming the user :func:`run` acts as (unset: nobody, as before a login).
ACT_AS = "NOMINA_TEST_USER"


def run(capsys: pytest.CaptureFixture[str] | None, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run the command line: exit code, standard output, standard error. Session fixtures, which cannot
    use capsys, pass None; the output is then caught here.

    The command acts as the user ``--as NAME`` names (taken out of the arguments; the command line has no
    such option) or else as the user NOMINA_TEST_USER names, with an API token of theirs in NOMINA_TOKEN
    (:func:`token_for`), as a script would. ``init`` without ``--admin`` makes that user the first admin,
    with the password PASSWORD. ``stdin`` is what the command reads on standard input."""
    args, user = _acting(tuple(str(a) for a in args))
    if args[:1] == ("init",) and "--admin" not in args and user:
        args, stdin = (*args, "--admin", user, "--password-stdin"), PASSWORD + "\n"
    token = token_for(_home(args), user) if user else None
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        if token is not None:
            mp.setenv("NOMINA_TOKEN", token)
        if stdin is not None:
            mp.setattr("sys.stdin", io.StringIO(stdin))
        if capsys is None:
            with redirect_stdout(out), redirect_stderr(err):
                code = _exit_code(main, args)
        else:
            code = _exit_code(main, args)
    if code == 0 and args[:2] == ("user", "add"):
        token_for(_home(args), args[2])  # the new user's token, before a test takes a snapshot
    elif code == 0 and args[:1] == ("init",):
        token_for(_home(args), args[args.index("--admin") + 1])
    if capsys is None:
        return code, out.getvalue(), err.getvalue()
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _acting(args: tuple[str, ...]) -> tuple[tuple[str, ...], str | None]:
    """The arguments without ``--as NAME``, and the user to act as."""
    if "--as" in args:
        i = args.index("--as")
        return args[:i] + args[i + 2 :], args[i + 1] or None
    return args, os.environ.get(ACT_AS) or None


def _home(args: tuple[str, ...]) -> Path:
    """The workspace a command's arguments name (-w, --workspace), else NOMINA_HOME, else the default."""
    for i, arg in enumerate(args[:-1]):
        if arg in ("-w", "--workspace"):
            return Path(args[i + 1])
        if arg.startswith("--workspace="):
            return Path(arg.split("=", 1)[1])
    if args[:1] == ("init",) and len(args) > 1 and not args[1].startswith("-"):
        return Path(args[1])
    return Path(os.environ.get("NOMINA_HOME") or "nomina-data")


# Tokens made by token_for, by user: a workspace copied from one where a token was made holds it too.
_tokens: dict[str, list[str]] = {}


def token_for(home: Path, user: str) -> str | None:
    """An API token of ``user`` in the workspace ``home``, made (as `nomina token create` would, through the
    library) when the workspace holds none of those made before; None when there is no such active user."""
    from nomina import audit, auth

    path = home / DB_NAME
    if not path.is_file():
        return None
    known = _tokens.setdefault(user, [])
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            held = {
                row[0]
                for row in con.execute(
                    "SELECT secret_sha256 FROM api_tokens WHERE user = ? AND revoked_at IS NULL", (user,)
                )
            }
            active = con.execute("SELECT active FROM users WHERE name = ?", (user,)).fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    found = next((secret for secret in known if auth.digest(secret) in held), None)
    if found is not None or not active or not active[0]:
        return found  # a disabled user's token stays theirs, and the command says they are disabled
    engine = connect(path)
    try:
        with Database(engine).write() as s:
            s.info[audit.VIA] = "library"
            secret = auth.create_token(s, user, "tests").secret
    except Exception:  # noqa: BLE001 - a workspace the test broke on purpose: the command says how
        return None
    finally:
        engine.dispose()
    known.append(secret)
    return secret


def _exit_code(entry: Callable[[list[str]], None], args: tuple[str, ...]) -> int:
    try:
        entry([str(a) for a in args])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def assert_one_error_line(err: str, pattern: str) -> None:
    import re

    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert re.search(pattern, lines[0]), lines[0]


@pytest.fixture(scope="session")
def _cli_ws_template(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Path:
    def build(ws: Path) -> None:
        assert run(None, "init", ws)[0] == 0
        assert run(None, "reference", "add", "R1", london(faces_dir, "001"), "--name", "Ana", *PROV, "-w", ws)[0] == 0
        assert run(None, "case", "add", "C1", london(faces_dir, "001", "smiling"), "-w", ws)[0] == 0

    return build_once(tmp_path_factory, "cli_ws", build)


@pytest.fixture()
def cli_ws(_cli_ws_template: Path, tmp_path: Path) -> Path:
    """A workspace (tmp_path / "ws") holding one reference (R1) and one case (C1), made with the command
    line (`init`, `reference add`, `case add`) once per session and copied for each test."""
    return copy_workspace(_cli_ws_template, tmp_path)


# -- the web application --------------------------------------------------------------------------------
#: The users of the web test workspace, one per role, and their password.
WEB_USERS = {"adm": "admin", "eve": "examiner", "vic": "verifier", "ian": "intake", "aud": "auditor"}
WEB_PASSWORD = "a long web password 123"


@pytest.fixture(scope="session")
def _web_ws_template(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Path:
    """Users of every role (WEB_USERS, and root: admin and examiner); references R1 (london 001) and R2 (002);
    case C1 (001 smiling) searched once; case C2 (a photo with no face, for eye marking); built once per
    session."""
    from nomina.records import CaseFields, PhotoInput, Provenance, ReferenceFields

    def build(folder: Path) -> None:
        settings = load_settings(environ={}, home=folder)
        first = Workspace.create(folder, settings, admin="root", admin_password=WEB_PASSWORD)
        with first:
            for name, role in WEB_USERS.items():
                first.as_user("root").add_user(name, role, password=WEB_PASSWORD)
            eve = first.as_user("eve")
            prov = Provenance(source="family", supplied_by="a brother", legal_basis="family request")
            eve.add_reference(ReferenceFields("R1", name="Ana Example"), [PhotoInput(london(faces_dir, "001"))], prov)
            eve.add_reference(ReferenceFields("R2", name="Bea Example"), [PhotoInput(london(faces_dir, "002"))], prov)
            eve.add_case(CaseFields("C1", kind="deceased"), [PhotoInput(london(faces_dir, "001", "smiling"))])
            eve.search("C1")
            noface = sorted((faces_dir / "noface").glob("*.jpg"))[0]
            eve.add_case(CaseFields("C2", kind="deceased"), [PhotoInput(noface)])

    return build_once(tmp_path_factory, "web_ws", build)


@pytest.fixture()
def web_ws(_web_ws_template: Path, tmp_path: Path) -> Path:
    """The test's own copy of the web test workspace (see _web_ws_template)."""
    return copy_workspace(_web_ws_template, tmp_path)


@pytest.fixture()
def web_app(web_ws: Path) -> Iterator[Any]:
    """The web application on the test's own copy of the web test workspace."""
    from nomina.web import create_app

    app = create_app(web_ws)
    yield app
    app.state.workspace.close()


def web_login(client: Any, user: str, password: str = WEB_PASSWORD) -> str:
    """Log ``client`` (a TestClient) in as ``user`` through the login form; the session's CSRF token."""
    from nomina.web.access import SESSION_COOKIE, csrf_token

    page = client.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert token, page.text
    answer = client.post(
        "/login", data={"name": user, "password": password, "login_token": token.group(1)}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    return csrf_token(client.cookies[SESSION_COOKIE])


def web_token(web_ws: Path, user: str) -> str:
    """A new API token of ``user`` in the web test workspace."""
    with Workspace.open(web_ws) as ws:
        return ws.as_user(user).create_token("tests").secret
