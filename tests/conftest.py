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
import psycopg
import pytest
import typer.main
from sqlalchemy import Engine

from nomina import FaceModel, Workspace, load_model, load_settings
from nomina.cli import main
from nomina.settings import Settings
from nomina.store import DB_NAME, DB_URL_NAME, Database, connect, upgrade
from nomina.store import server as pg
from nomina.store.database import WRITER_LOCK

# -- the database engine every test runs on ---------------------------------------------------------------
#: Engines a run covers: `--engine sqlite` (the default), `--engine postgresql` or `--engine all`. PostgreSQL
#: needs a server: NOMINA_TEST_POSTGRESQL is the URL of a role that may create databases, without a database
#: name (`.ci/postgres start DIR` starts a throwaway one and prints it); each workspace a test makes gets a new
#: database there, dropped when the test ends.
ENGINES = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=(*ENGINES, "all"),
        default=os.environ.get("NOMINA_TEST_ENGINE") or "sqlite",
        help="database engine(s) the tests run on (PostgreSQL: set NOMINA_TEST_POSTGRESQL)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_engine" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("engine")
        engines = list(ENGINES) if chosen == "all" else [chosen]
        metafunc.parametrize("database_engine", engines, indirect=True, scope="session")


#: Markers of tests about one engine only; the reason is shown when the test is skipped on the other.
ONLY = {
    "sqlite_only": ("sqlite", "about SQLite's own files (nomina.db, its -wal and -shm)"),
    "postgresql_only": ("postgresql", "about a PostgreSQL server's own files or behaviour"),
}


def pytest_configure(config: pytest.Config) -> None:
    for marker, (_, about) in ONLY.items():
        config.addinivalue_line("markers", f"{marker}(reason): a test {about}: skipped on other engines")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked sqlite_only or postgresql_only is skipped, with its reason, when it runs on the other
    engine (each test runs once per engine the run covers: `--engine`)."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        for marker, (engine, about) in ONLY.items():
            mark = item.get_closest_marker(marker)
            if mark is not None and params.get("database_engine", engine) != engine:
                reason = mark.args[0] if mark.args else mark.kwargs.get("reason", about)
                item.add_marker(pytest.mark.skip(reason=f"{engine} only: {reason}"))


#: Marks a test about SQLite's own files (on PostgreSQL it is skipped, with this reason).
def sqlite_only(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.sqlite_only(reason)


#: Marks a test about PostgreSQL's own files or behaviour (on SQLite it is skipped, with this reason).
def postgresql_only(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.postgresql_only(reason)


def postgresql_server() -> str:
    url = os.environ.get("NOMINA_TEST_POSTGRESQL", "")
    if not url:
        pytest.exit("--engine postgresql needs NOMINA_TEST_POSTGRESQL (`.ci/postgres start DIR` prints one)", 2)
    return url


@pytest.fixture(scope="session", autouse=True)
def database_engine(request: pytest.FixtureRequest) -> str:
    """The engine this test runs on ("sqlite" or "postgresql"): one parametrised fixture for the whole suite,
    which every workspace the tests make (the API's, the command line's, the templates') follows."""
    _ENGINE[0] = str(request.param)
    return _ENGINE[0]


#: The engine of the tests running now (set by database_engine, which session fixtures run after).
_ENGINE = ["sqlite"]


def database_setting(engine: str) -> str:
    """The ``database`` setting that makes new workspaces use ``engine``."""
    return postgresql_server() if engine == "postgresql" else ""


def _databases() -> set[str]:
    url = postgresql_server()
    with psycopg.connect(pg.with_database(url, "postgres")) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'nomina%'")}


#: Databases of the session's template workspaces (build_once), dropped when the session ends.
_kept_databases: set[str] = set()
#: Databases this test process created (nomina.store.server.create_database, which every path calls).
_created_databases: set[str] = set()


@pytest.fixture(scope="session", autouse=True)
def _databases_recorded() -> Iterator[None]:
    """Every database this process creates on the test server is recorded, so that after each test only
    the test's own are dropped, never those of another session running on the same server at the time; the
    session's template databases are dropped when it ends."""
    create = pg.create_database

    def recorded(url: str, name: str, template: str | None = None) -> None:
        create(url, name, template)
        _created_databases.add(name)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pg, "create_database", recorded)
        yield
    if _kept_databases:
        server = postgresql_server()
        for name in sorted(_kept_databases):
            pg.drop_database(pg.with_database(server, name))
        _kept_databases.clear()


def _named_databases(folder: Path | None) -> set[str]:
    """The databases named by the workspaces in ``folder`` (those commands run in subprocesses made)."""
    if folder is None or not folder.is_dir():
        return set()
    return {_database_name(named.parent) for named in folder.rglob(DB_URL_NAME)}


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
def settings(tmp_path: Path, database_engine: str) -> Settings:
    return load_settings(environ={}, home=tmp_path / "ws", database=database_setting(database_engine) or None)


#: The user tests act as: the first user of every test workspace (admin and examiner).
USER = "ana"
#: The password `nomina init` gives USER in command-line tests.
PASSWORD = "correct horse battery staple"


@pytest.fixture()
def engine(tmp_path: Path, database_engine: str) -> Engine:
    """A bare workspace database (the schema, nothing else), for tests below the Workspace API."""
    if database_engine == "postgresql":
        engine = connect(pg.prepare(postgresql_server(), tmp_path).url)
    else:
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
    elif (folder / DB_URL_NAME).exists():
        with raw_database(folder) as con:
            names = [r[0] for r in con.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            for name in sorted(names):
                tables[name] = sorted(con.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
    files = {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith("nomina.db")
    }
    return Snapshot(tables, files)


def database_of(folder: Path) -> Path | str | None:
    """What :func:`nomina.store.connect` opens for the workspace in ``folder``: its SQLite file, the URL its
    ``nomina.database`` names, or None when the folder holds neither."""
    named = folder / DB_URL_NAME
    if named.is_file():
        return named.read_text().strip()
    return folder / DB_NAME if (folder / DB_NAME).is_file() else None


#: What a query of :func:`raw_database` raises when the database refuses it (either engine).
DATABASE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)
#: What a query of :func:`raw_database` raises when it breaks a constraint or a trigger refuses it.
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)


class _Qmark:
    """A psycopg connection taking SQL as sqlite3 does: ``?`` placeholders, and a failed statement undone on
    its own (a savepoint each) while the transaction goes on, until ``commit``."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> Any:
        self.conn.execute("SAVEPOINT raw_statement")
        try:
            cursor = self.conn.execute(sql.replace("%", "%%").replace("?", "%s"), params)
        except psycopg.Error:
            self.conn.execute("ROLLBACK TO SAVEPOINT raw_statement")
            raise
        self.conn.execute("RELEASE SAVEPOINT raw_statement")
        return cursor

    def executescript(self, sql: str) -> None:
        self.conn.execute(sql)

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


@contextmanager
def raw_database(where: Path | Engine, read_only: bool = False) -> Iterator[Any]:
    """A DB-API connection to a workspace's database (its folder, or an engine), of either engine, as someone
    who can reach its files or its server would open it (no Nomina in between); committed when the block
    ends. Its ``execute`` takes SQL with ``?`` placeholders on both engines; a statement that fails raises
    one of DATABASE_ERRORS (INTEGRITY_ERRORS for a constraint or trigger) and leaves the transaction as it
    was, on both. ``read_only`` refuses writes."""
    if isinstance(where, Engine):
        if where.dialect.name == "sqlite":
            found: Path | str | None = Path(str(where.url.database))
        else:
            found = where.url.render_as_string(hide_password=False).replace("+psycopg", "", 1)
    else:
        found = database_of(where)
        if found is None:
            raise FileNotFoundError(f"{where}: no workspace database")
    if isinstance(found, Path):
        con = sqlite3.connect(f"file:{found}?mode=ro", uri=True) if read_only else sqlite3.connect(found)
        try:
            yield con
            con.commit()
        finally:
            con.close()
        return
    with psycopg.connect(found) as conn:
        conn.read_only = read_only
        yield _Qmark(conn)


def database_files(folder: Path) -> dict[str, bytes]:
    """The raw bytes of every file that holds the workspace's database, as someone with the machine's disks
    could read them: on SQLite ``nomina.db`` and its ``-wal`` and ``-shm`` in the folder; on PostgreSQL
    every file of the database's directory on the server (which must be on this machine, reached as a
    superuser: NOMINA_TEST_POSTGRESQL's role), after a CHECKPOINT has written every changed page to them,
    each named ``database:`` and its table or index (``_fsm``/``_vm`` for its free-space and visibility
    maps, ``.N`` for a segment after the first), or its file name when it is no relation's. The server's
    WAL (pg_wal) is not included: docs/deploy.md says what bounds it."""
    where = database_of(folder)
    if not isinstance(where, str):
        return {p.name: p.read_bytes() for p in sorted(folder.glob(DB_NAME + "*")) if p.is_file()}
    with psycopg.connect(where, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        data = Path(conn.execute("SHOW data_directory").fetchone()[0])
        oid = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
        names = {
            Path(path).name: name
            for name, path in conn.execute(
                "SELECT relname, pg_relation_filepath(oid) FROM pg_class WHERE pg_relation_filepath(oid) IS NOT NULL"
            )
        }
    files = {}
    for p in sorted((data / "base" / str(oid)).iterdir()):
        node, _, segment = p.name.partition(".")
        node, _, fork = node.partition("_")
        label = names.get(node, node) + (f"_{fork}" if fork else "") + (f".{segment}" if segment else "")
        if p.is_file():
            files[f"database:{label}"] = p.read_bytes()
    return files


def database_label(table: str) -> str:
    """The name :func:`database_files` gives the file(s) holding ``table``'s rows on the engine in use."""
    return "nomina.db" if current_engine() == "sqlite" else f"database:{table}"


def take_writer_lock(con: Any) -> None:
    """Take the workspace's write lock through a :func:`raw_database` connection, as each Nomina writer takes
    it first (SQLite's BEGIN IMMEDIATE; PostgreSQL's advisory lock), until the connection commits."""
    if isinstance(con, sqlite3.Connection):
        con.execute("BEGIN IMMEDIATE")
    else:
        con.execute("SELECT pg_advisory_xact_lock(?)", (WRITER_LOCK,))


def drop_trigger(con: Any, table: str, name: str) -> None:
    """Drop trigger ``name`` of ``table`` through a :func:`raw_database` connection, as its owner could."""
    if isinstance(con, sqlite3.Connection):
        con.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        con.execute(f'DROP TRIGGER IF EXISTS {name} ON "{table}"')


def _test_environment(monkeypatch: pytest.MonkeyPatch, cache: Path, state: Path, engine: str) -> None:
    for key in list(os.environ):
        if key.startswith("NOMINA_") and key not in ("NOMINA_TEST_FACES", "NOMINA_TEST_POSTGRESQL"):
            monkeypatch.delenv(key)
    if engine == "postgresql":
        monkeypatch.setenv("NOMINA_DATABASE", postgresql_server())
    monkeypatch.setenv("NOMINA_CACHE", str(cache))
    monkeypatch.setenv("XDG_STATE_HOME", str(state))  # login sessions (nomina.credentials)
    monkeypatch.setenv(ACT_AS, USER)


@pytest.fixture(autouse=True)
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    database_engine: str,
    request: pytest.FixtureRequest,
) -> Iterator[None]:
    """Tests see Nomina's defaults, whatever NOMINA_* variables the developer has set, except that the
    evaluation cache and the login sessions are fresh folders of the test's own (never the user's),
    commands run by :func:`run` act as USER, whom `nomina init` makes the workspace's first user, and new
    workspaces use the test's database engine. On PostgreSQL the databases a test made are dropped after it."""
    _test_environment(monkeypatch, tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("state"), database_engine)
    if database_engine != "postgresql":
        yield
        return
    folder = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    before = _databases()
    yield
    new = _databases() - before - _kept_databases
    ours = new & _created_databases
    if new - ours:  # made by a subprocess of the test's, or by another session on the same server
        ours |= new & _named_databases(folder)
    for name in sorted(ours):
        pg.drop_database(pg.with_database(postgresql_server(), name))


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
def _session_environment(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[None]:
    """The environment _clean_environment gives a test, for session fixtures (set up before it)."""
    with pytest.MonkeyPatch.context() as mp:
        _test_environment(mp, tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("state"), engine)
        yield


_built: dict[tuple[Path, str], Path] = {}


def build_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The workspace folder called ``name``, made by ``build(folder)`` once per session, in the environment
    tests see. Tests never use it directly: each takes its own copy with :func:`copy_workspace`.

    Once per session even when its session fixture is imported into several test modules (pytest then sets
    up one instance of the fixture per module): the folder is kept here by name."""
    engine = current_engine()
    key = (tmp_path_factory.getbasetemp(), f"{name}-{engine}")
    if key not in _built:
        folder = tmp_path_factory.mktemp(f"{name}-{engine}") / "ws"
        with _session_environment(tmp_path_factory, engine):
            build(folder)
        if (folder / DB_URL_NAME).exists():
            _kept_databases.add(_database_name(folder))
        _built[key] = folder
    return _built[key]


def current_engine() -> str:
    """The engine the tests running now use (database_engine)."""
    return _ENGINE[0]


def _database_name(folder: Path) -> str:
    from sqlalchemy.engine import make_url

    return str(make_url(pg.driver_url((folder / DB_URL_NAME).read_text().strip())).database)


def copy_workspace(template: Path, tmp_path: Path) -> Path:
    """The test's own copy (tmp_path / "ws") of a workspace built once: its own database (the SQLite file
    nomina.db, or a copy of the PostgreSQL database), photos/ and index, as if the test had built it; the
    workspace keeps no absolute path of itself."""
    copy = Path(shutil.copytree(template, tmp_path / "ws", symlinks=True))
    if (template / DB_URL_NAME).exists():
        server = postgresql_server()
        name = f"nomina_copy_{os.urandom(6).hex()}"
        pg.create_database(server, name, template=_database_name(template))
        (copy / DB_URL_NAME).write_text(pg.with_database(server, name) + "\n")
    return copy


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

    where = database_of(home)
    if where is None:
        return None
    known = _tokens.setdefault(user, [])
    try:
        with raw_database(home, read_only=True) as con:
            held = {
                row[0]
                for row in con.execute(
                    'SELECT secret_sha256 FROM api_tokens WHERE "user" = ? AND revoked_at IS NULL', (user,)
                ).fetchall()
            }
            active = con.execute("SELECT active FROM users WHERE name = ?", (user,)).fetchone()
    except DATABASE_ERRORS:
        return None
    found = next((secret for secret in known if auth.digest(secret) in held), None)
    if found is not None or not active or not active[0]:
        return found  # a disabled user's token stays theirs, and the command says they are disabled
    engine = connect(where)
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
        settings = load_settings(environ={}, home=folder, database=database_setting(current_engine()) or None)
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
