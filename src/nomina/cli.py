"""The ``nomina`` command line: a thin layer over :class:`nomina.Workspace`.

Every Nomina error becomes one line on standard error and exit code 1; usage mistakes exit with 2.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from ._version import __version__
from .errors import InvalidField, NominaError, PermissionDenied, SeveralFaces
from .files import check_output
from .settings import SETTINGS, Settings, load_settings
from .store import DB_NAME, is_workspace

if TYPE_CHECKING:
    # The library proper (numpy, OpenCV, SQLAlchemy) and rich's tables load inside the commands that use
    # them, so that `nomina --help` and `--version` start fast; tests/test_startup.py checks it.
    from rich.console import Console

    from .records import PhotoInput
    from .search import SearchResult
    from .workspace import Workspace


class _Output:
    """Standard output or error as a rich Console, made (and rich imported) when first written to."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True, markup=False)
        return self._console

    @property
    def is_terminal(self) -> bool:
        return self.console.is_terminal

    def print(self, *objects: Any, **options: Any) -> None:
        self.console.print(*objects, **options)

    def print_json(self, text: str, **options: Any) -> None:
        self.console.print_json(text, **options)


out = _Output()
err = _Output(stderr=True)


class _DefaultRunGroup(TyperGroup):
    """``nomina search CASE_ID`` runs ``search run CASE_ID``; ``search show``/``list`` are subcommands."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    name="nomina",
    help="Nomina ranks reference photos of missing people against photos of unidentified people, "
    "for trained examiners to review. It never decides that two faces are one person.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
reference_app = typer.Typer(help="Missing people's records and photos (references).", no_args_is_help=True)
case_app = typer.Typer(help="Unidentified people's records and photos (cases).", no_args_is_help=True)
search_app = typer.Typer(
    cls=_DefaultRunGroup,
    help="Search a case against every reference: `nomina search CASE_ID`; `search show ID`; `search list`.",
    no_args_is_help=True,
)
user_app = typer.Typer(
    help="Users, their roles (examiner, verifier, admin, intake, auditor) and passwords.", no_args_is_help=True
)
token_app = typer.Typer(
    help="API tokens for your scripts and programs: shown once, stored hashed, revocable; set NOMINA_TOKEN to use one.",
    no_args_is_help=True,
)
audit_app = typer.Typer(
    help="The tamper-evident audit trail of everything done in the workspace.", no_args_is_help=True
)
app.add_typer(reference_app, name="reference")
app.add_typer(case_app, name="case")
app.add_typer(search_app, name="search")
identification_app = typer.Typer(
    help="Proposed identifications and their blind verification by a second person.", no_args_is_help=True
)
export_app = typer.Typer(help="Structured records for the responsible authority.", no_args_is_help=True)
app.add_typer(identification_app, name="identification")
app.add_typer(export_app, name="export")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder [setting NOMINA_HOME, default ./nomina-data]."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
ReasonOpt = Annotated[str, typer.Option(help="Why the record is erased (kept in the audit trail).")]
AcceptQualityOpt = Annotated[
    str | None,
    typer.Option(
        help="Why photos whose face fails the workspace's quality gate are enrolled anyway (recorded with them)."
    ),
]


def _settings(workspace: Path | None, **overrides: Any) -> Settings:
    return load_settings(home=workspace, **overrides)


def _open(workspace: Path | None, signed_in: bool = True) -> Workspace:
    """The workspace, acting as the user who logged in (``nomina login``) or whose API token NOMINA_TOKEN
    holds (the token wins); with neither, as nobody, so that a command needing a user says so."""
    from .workspace import Workspace

    settings = _settings(workspace)
    ws = Workspace.open(settings.home, settings)
    _warn(ws.opening_warnings)
    if not signed_in:
        return ws
    try:
        return _signed_in(ws)
    except BaseException:
        ws.close()
        raise


def _signed_in(ws: Workspace) -> Workspace:
    import os

    from . import credentials

    token = os.environ.get("NOMINA_TOKEN", "").strip()
    if token:
        return ws.with_credential(token)
    saved = credentials.load(ws.path)
    if saved is None:
        return ws
    try:
        return ws.with_credential(saved["secret"])
    except PermissionDenied as exc:  # a session that ended, or of a disabled user: commands needing none run
        _ended_session["message"] = exc.message
        return ws


# Why the saved session no longer works, said instead of "not logged in" when a command needs a user.
_ended_session: dict[str, str] = {}


def _password(from_stdin: bool, prompt: str, confirm: bool = True) -> str | None:
    """A password: the next line of standard input with ``from_stdin``, else typed at the terminal (twice
    when ``confirm``), else None (not at a terminal)."""
    if from_stdin:
        line = sys.stdin.readline(_LONGEST_PASSWORD_LINE)  # a bounded read, whatever is piped in
        if not line:
            raise InvalidField("password: nothing on standard input (--password-stdin reads one line)")
        if len(line) >= _LONGEST_PASSWORD_LINE and not line.endswith("\n"):
            raise InvalidField("password: too long")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        return None
    import getpass

    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != first:
        raise InvalidField("password: the two entries differ")
    return first


# Longer than any password nomina.auth accepts, so that a longer line is refused there or here.
_LONGEST_PASSWORD_LINE = 4096


def _required_password(from_stdin: bool, prompt: str, confirm: bool = True) -> str:
    given = _password(from_stdin, prompt, confirm)
    if given is None:
        raise InvalidField(
            "password: needed; type it at a terminal, or give it on standard input with --password-stdin"
        )
    return given


PasswordStdinOpt = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of standard input (for scripts)."),
]


def _data(result: Any) -> Any:
    """A library result (a record or a list of records) as the plain data of its documented JSON shape;
    tables print the same values as --json."""
    from .records import plain

    return plain(result)


def _print_json(data: Any) -> None:
    from .records import plain

    out.print_json(json.dumps(plain(data), default=str), indent=2)


def _photos(
    paths: list[Path],
    face: int | None,
    eyes: str | None = None,
    photo_date: str | None = None,
    override: str | None = None,
) -> list[PhotoInput]:
    from .faces import parse_eyes
    from .records import PhotoInput

    if (face is not None or eyes is not None) and len(paths) > 1:
        option = "--face" if face is not None else "--eyes"
        raise InvalidField(f"{option}: applies to one photo; add photos with several faces one at a time")
    marked = parse_eyes(eyes) if eyes is not None else None
    return [
        PhotoInput(path=p, face=face, eyes=marked, photo_date=photo_date, quality_override=override)  # type: ignore[arg-type]
        for p in paths
    ]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nomina {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Nomina ranks reference photos of missing people against photos of unidentified people, for trained
    examiners to review. It never decides that two faces are one person.

    Commands act for the user who logged in with `nomina login`, or whose API token NOMINA_TOKEN holds."""


# -- workspace ----------------------------------------------------------------------------------------
@app.command()
def init(
    workspace: Annotated[Path | None, typer.Argument(help="Folder to create [default: NOMINA_HOME].")] = None,
    model: Annotated[str | None, typer.Option(help="Face model (see `nomina models`).")] = None,
    quality_gate: Annotated[
        str | None, typer.Option(help="Face quality gate: off, standard or strict [default: standard].")
    ] = None,
    admin: Annotated[
        str | None, typer.Option(help="Name of the first user (admin, examiner) [default: your login name].")
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            help="postgresql:// URL of the workspace's database (created when absent; a server URL without a "
            "database name gets a new one) [default: NOMINA_DATABASE, else SQLite in the folder]."
        ),
    ] = None,
    attach: Annotated[
        bool,
        typer.Option(
            "--attach",
            help="Use the existing workspace in --database's PostgreSQL database from this folder (another "
            "server of the same team; its photos/ must be the same shared folder).",
        ),
    ] = False,
    password_stdin: PasswordStdinOpt = False,
) -> None:
    """Create a workspace: database, photo store, the face model it will always use, and its first user, an
    admin, whose password is asked for. With --attach, make a folder for a workspace that already exists
    in a PostgreSQL database instead (nothing is asked)."""
    from .auth import check_password
    from .models import MODELS
    from .settings import os_user
    from .store.server import shown as shown_url
    from .workspace import Workspace

    settings = _settings(workspace, model=model)
    config = {} if quality_gate is None else {"quality_gate": quality_gate}
    manifest = MODELS.get(settings.model)
    name = admin if admin is not None else os_user()
    if is_workspace(settings.home):  # before asking for a password
        raise InvalidField(f"{settings.home}: already a Nomina workspace", field="")
    if attach:
        url = database or settings.database
        if not url:
            raise InvalidField("database: --attach needs --database postgresql://... (or NOMINA_DATABASE)", field="")
        with Workspace.attach(settings.home, url, settings) as ws:
            out.print(
                f"Attached {settings.home} to the workspace in {shown_url(url)} (model {ws.model_identity['name']})."
            )
        return
    password = _required_password(password_stdin, f"Password for {name}: ")
    check_password(name, password)
    ws = Workspace.create(
        settings.home, settings, config=config, admin=name, admin_password=password, database=database
    )
    m = ws.model_identity
    out.print(f"Created workspace {settings.home} with model {m['name']}; quality gate {ws.config()['quality_gate']}.")
    out.print(
        f"First user: {ws.user} (admin, examiner). Log in with `nomina login --user {shlex.quote(ws.user or '')}`."
    )
    if manifest is not None and manifest.restriction:
        err.print(f"licence restriction: {manifest.restriction}")
    ws.close()


@app.command()
def config(
    name: Annotated[str | None, typer.Argument(help="Workspace setting to show or change.")] = None,
    value: Annotated[str | None, typer.Argument(help="New value.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the workspace's own settings, or change one: `nomina config quality_gate strict`."""
    from .settings import WORKSPACE_SETTINGS

    with _open(workspace) as ws:
        if name is not None and value is not None:
            values = ws.set_config(name, value)
        else:
            values = ws.config()
            if name is not None and name not in values:
                raise InvalidField(f"{name}: not a workspace setting (known: {', '.join(values)})")
    if as_json:
        _print_json(values if name is None else {name: values[name]})
        return
    for s in WORKSPACE_SETTINGS:
        if name is None or s.name == name:
            out.print(f"{s.name} = {values[s.name]}\n    {s.help}")


@app.command()
def info(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Show the workspace: model, counts of references, cases, faces and searches."""
    with _open(workspace) as ws:
        data = _data(ws.info())
    if as_json:
        _print_json(data)
        return
    for key, value in data.items():
        if key == "model":
            value = value["name"] + "  " + "  ".join(f"{k}={v[:16]}…" for k, v in value["files"].items())
        out.print(f"{key:>17}: {value}")


@app.command()
def models() -> None:
    """List the face models Nomina knows, with their licences and file hashes."""
    from .models import MODELS

    for m in MODELS.values():
        out.print(f"{m.name}: {m.description}\n  licence: {m.licence}\n  source: {m.source}")
        for f in m.files:
            out.print(f"  {f.role}: {f.name} sha256={f.sha256}")


@app.command()
def settings() -> None:
    """List every setting with its environment variable, current value and help."""
    current = load_settings()
    for s in SETTINGS:
        out.print(f"{s.env_var} = {getattr(current, s.name)}  ({current.sources[s.name]})\n    {s.help}")


# -- references ---------------------------------------------------------------------------------------
@reference_app.command("add")
def reference_add(
    reference_id: Annotated[str, typer.Argument(help="Unique id of the missing person's record.")],
    photos: Annotated[list[Path], typer.Argument(help="One or more photos of the person.")],
    name: Annotated[str, typer.Option(help="The person's name.")],
    source: Annotated[str, typer.Option(help="Where the photos come from: family, official-record or other.")],
    supplied_by: Annotated[str, typer.Option(help="Who supplied the photos (person or body).")],
    legal_basis: Annotated[str, typer.Option(help="Legal basis for processing these photos.")],
    consent: Annotated[str | None, typer.Option(help="Consent given, if any (free text).")] = None,
    sex: Annotated[str | None, typer.Option(help="female, male, other or unknown.")] = None,
    birth_year: Annotated[int | None, typer.Option(help="Year of birth.")] = None,
    last_seen_on: Annotated[str | None, typer.Option(help="Date last seen, YYYY-MM-DD.")] = None,
    last_seen_at: Annotated[str | None, typer.Option(help="Place last seen.")] = None,
    photo_date: Annotated[str | None, typer.Option(help="Date the photos were taken, YYYY-MM-DD.")] = None,
    notes: Annotated[str | None, typer.Option(help="Free-text notes.")] = None,
    face: Annotated[int | None, typer.Option(help="Face number to take from a photo with several faces.")] = None,
    accept_quality: AcceptQualityOpt = None,
    retain_until: Annotated[
        str | None, typer.Option(help="Date after which the record is erased, YYYY-MM-DD [default: retention_years].")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Enrol a missing person with photos and their provenance (source and legal basis required)."""
    from .records import Provenance, ReferenceFields

    fields = ReferenceFields(reference_id, name, sex, birth_year, last_seen_on, last_seen_at, notes, retain_until)  # type: ignore[arg-type]
    prov = Provenance(source, supplied_by, legal_basis, consent)
    with _open(workspace) as ws:
        ref = _data(
            ws.add_reference(fields, _photos(photos, face, photo_date=photo_date, override=accept_quality), prov)
        )
    kept = f"; retained until {ref['retain_until']}" if ref["retain_until"] else "; no retention date"
    out.print(f"Added reference {ref['reference_id']} ({ref['name']}) with {len(ref['photos'])} photo(s){kept}.")
    _warn(ref["warnings"])


@reference_app.command("add-photos")
def reference_add_photos(
    reference_id: Annotated[str, typer.Argument(help="Existing reference id.")],
    photos: Annotated[list[Path], typer.Argument(help="One or more photos of the person.")],
    source: Annotated[str, typer.Option(help="family, official-record or other.")],
    supplied_by: Annotated[str, typer.Option(help="Who supplied the photos.")],
    legal_basis: Annotated[str, typer.Option(help="Legal basis for processing these photos.")],
    consent: Annotated[str | None, typer.Option(help="Consent given, if any.")] = None,
    photo_date: Annotated[str | None, typer.Option(help="Date the photos were taken, YYYY-MM-DD.")] = None,
    face: Annotated[int | None, typer.Option(help="Face number in a photo with several faces.")] = None,
    accept_quality: AcceptQualityOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Add photos, with their provenance, to an existing reference."""
    from .records import Provenance

    prov = Provenance(source, supplied_by, legal_basis, consent)
    with _open(workspace) as ws:
        ref = _data(
            ws.add_reference_photos(
                reference_id, _photos(photos, face, photo_date=photo_date, override=accept_quality), prov
            )
        )
    out.print(f"Reference {reference_id} now has {len(ref['photos'])} photo(s).")
    _warn(ref.get("warnings", []))


@reference_app.command("import")
def reference_import(
    manifest: Annotated[Path, typer.Argument(help="CSV manifest, one row per photo (docs/manifest.md).")],
    failures: Annotated[
        Path | None, typer.Option(help="Where to write failed rows [default: MANIFEST.failures.csv].")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Enrol references from a CSV manifest; re-running it adds nothing twice."""
    from .importing import check_failures_file

    if failures is not None:
        check_failures_file(failures, [manifest])  # refused now, not after good rows are kept
    with _open(workspace) as ws, _progress("enrolling") as progress:
        report = ws.import_references(manifest, progress=progress)
    out.print(
        f"{report.rows} rows: {report.added} photo(s) added ({report.references_created} new reference(s)), "
        f"{report.already_present} already present, {len(report.failures)} failed."
    )
    _warn(report.warnings)
    if report.failures:
        for f in report.failures:
            err.print(_printable(f"line {f.line}: {f.error}"), markup=False)
        target = failures or manifest.with_name(manifest.stem + ".failures.csv")
        try:
            check_failures_file(target, [manifest])  # the default file, beside a manifest kept in a workspace
            report.write_failures(target)
        except NominaError as exc:  # beside the manifest, on a read-only medium: the lines above say it all
            err.print(_printable(f"{len(report.failures)} row(s) failed; not written: {_message(exc)}"), markup=False)
            raise typer.Exit(1) from None
        err.print(_printable(f"{len(report.failures)} row(s) failed; written to {target}"), markup=False)
        raise typer.Exit(1)


@reference_app.command("duplicates")
def reference_duplicates(
    min_score: Annotated[
        float | None, typer.Option(help="Lowest score of a pair shown [default: the workspace's duplicate_score].")
    ] = None,
    limit: Annotated[int, typer.Option(help="Most pairs shown.")] = 100,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List likely duplicate references (the same person reported twice under two ids): pairs whose faces
    match strongly, best first, across the whole gallery. Nothing is merged: compare each pair yourself."""
    from rich.table import Table

    with _open(workspace) as ws:
        pairs = [vars(p) for p in ws.duplicates(min_score, limit)]
    if as_json:
        _print_json(pairs)
        return
    if not pairs:
        out.print("No likely duplicate references.")
        return
    table = Table("reference", "face", "reference", "face", "score")
    for p in pairs:
        table.add_row(p["reference_a"], str(p["face_a"]), p["reference_b"], str(p["face_b"]), f"{p['score']:.3f}")
    out.print(table)


@reference_app.command("list")
def reference_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List references."""
    from rich.table import Table

    with _open(workspace) as ws:
        refs = _data(ws.references())
    if as_json:
        _print_json(refs)
        return
    table = Table("reference", "name", "sex", "born", "last seen", "photos", "retain until")
    for r in refs:
        seen = " ".join(x for x in (r["last_seen_on"], r["last_seen_at"]) if x)
        table.add_row(
            r["reference_id"],
            r["name"],
            r["sex"] or "",
            str(r["birth_year"] or ""),
            seen,
            str(r["photos"]),
            r["retain_until"] or "",
        )
    out.print(table)
    out.print(f"{len(refs)} reference(s)")


@reference_app.command("show")
def reference_show(reference_id: str, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Show a reference with its photos, provenance and faces."""
    with _open(workspace) as ws:
        ref = _data(ws.reference(reference_id))
    if as_json:
        _print_json(ref)
        return
    _print_record(ref, skip=("photos",))
    for i, p in enumerate(ref["photos"], 1):
        prov = p["provenance"]
        out.print(
            f"photo {i}: {p['file_name']}  sha256={p['sha256']}\n"
            f"  source={prov['source']} supplied_by={prov['supplied_by']} legal_basis={prov['legal_basis']}"
            + (f" consent={prov['consent']}" if prov["consent"] else "")
        )
        if p["quality_override"]:
            o = p["quality_override"]
            out.print(f"  enrolled below the quality gate by {o['by']}: {o['reason']}")
        for f in p["faces"]:
            out.print("  " + _quality_line(f))


@reference_app.command("update")
def reference_update(
    reference_id: str,
    name: Annotated[str | None, typer.Option()] = None,
    sex: Annotated[str | None, typer.Option()] = None,
    birth_year: Annotated[int | None, typer.Option()] = None,
    last_seen_on: Annotated[str | None, typer.Option()] = None,
    last_seen_at: Annotated[str | None, typer.Option()] = None,
    notes: Annotated[str | None, typer.Option()] = None,
    retain_until: Annotated[str | None, typer.Option(help="Retention date, YYYY-MM-DD.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Change fields of a reference (only the options given)."""
    given = dict(
        name=name,
        sex=sex,
        birth_year=birth_year,
        last_seen_on=last_seen_on,
        last_seen_at=last_seen_at,
        notes=notes,
        retain_until=retain_until,
    )
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        raise InvalidField("update: give at least one field to change (see --help)")
    with _open(workspace) as ws:
        ws.update_reference(reference_id, **changes)
    out.print(f"Updated reference {reference_id}: {', '.join(changes)}.")


@reference_app.command("delete")
def reference_delete(reference_id: str, reason: ReasonOpt, workspace: WorkspaceOpt = None) -> None:
    """Erase a reference with its faces, vectors and any photo bytes no other record uses (admin)."""
    with _open(workspace) as ws:
        gone = _data(ws.delete_reference(reference_id, reason))
    out.print(
        f"Deleted reference {reference_id}: {gone['faces_removed']} face(s), "
        f"{gone['photos_removed']} photo file(s) removed."
    )
    _warn(gone["warnings"])


# -- cases --------------------------------------------------------------------------------------------
@case_app.command("add")
def case_add(
    case_id: Annotated[str, typer.Argument(help="Unique id of the unidentified person's case.")],
    photos: Annotated[list[Path], typer.Argument(help="One or more photos.")],
    kind: Annotated[str, typer.Option(help="deceased or living.")] = "deceased",
    found_on: Annotated[str | None, typer.Option(help="Date found, YYYY-MM-DD.")] = None,
    found_at: Annotated[str | None, typer.Option(help="Place found.")] = None,
    notes: Annotated[str | None, typer.Option(help="Condition and other notes.")] = None,
    photo_date: Annotated[str | None, typer.Option(help="Date the photos were taken, YYYY-MM-DD.")] = None,
    face: Annotated[int | None, typer.Option(help="Face number in a photo with several faces.")] = None,
    eyes: Annotated[
        str | None, typer.Option(help="Eye centres marked by hand, X1,Y1,X2,Y2 in photo pixels (one photo).")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Register an unidentified person. A photo with no detected face is kept and flagged."""
    from .records import CaseFields

    fields = CaseFields(case_id, kind, found_on, found_at, notes)  # type: ignore[arg-type]
    with _open(workspace) as ws:
        case = _data(ws.add_case(fields, _photos(photos, face, eyes, photo_date)))
    out.print(f"Added case {_printable(case['case_id'])} with {len(case['photos'])} photo(s), {case['faces']} face(s).")
    _warn(case["warnings"])
    for p in case["photos"]:
        if p["no_face_detected"]:
            err.print(
                f"warning: {p['file_name']}: no face detected; photo kept and flagged. Mark the eyes with "
                f"`nomina case mark-eyes {shlex.quote(case['case_id'])} --photo {p['number']} --eyes X1,Y1,X2,Y2`"
            )


@case_app.command("mark-eyes")
def case_mark_eyes(
    case_id: str,
    eyes: Annotated[str, typer.Option(help="Eye centres X1,Y1,X2,Y2 in photo pixels (upright photo).")],
    photo: Annotated[int, typer.Option(help="Photo number in the case (see `case show`).")] = 1,
    workspace: WorkspaceOpt = None,
) -> None:
    """Add a face to a case photo from eye centres marked by hand (for photos that defeat the detector)."""
    from .faces import parse_eyes

    with _open(workspace) as ws:
        case = _data(ws.mark_eyes(case_id, photo, parse_eyes(eyes)))
    out.print(f"Case {case_id}: face marked by hand on photo {photo}; the case has {case['faces']} face(s).")


@case_app.command("list")
def case_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List cases."""
    from rich.table import Table

    with _open(workspace) as ws:
        cases = _data(ws.cases())
    if as_json:
        _print_json(cases)
        return
    table = Table("case", "status", "kind", "found on", "found at", "photos", "faces", "no face")
    for c in cases:
        table.add_row(
            c["case_id"],
            c["status"],
            c["kind"],
            c["found_on"] or "",
            c["found_at"] or "",
            str(c["photos"]),
            str(c["faces"]),
            str(c["photos_without_face"] or ""),
        )
    out.print(table)
    out.print(f"{len(cases)} case(s)")


@case_app.command("show")
def case_show(case_id: str, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Show a case with its photos, faces (numbered for `search --face`) and searches."""
    with _open(workspace) as ws:
        case = _data(ws.case(case_id))
    if as_json:
        _print_json(case)
        return
    _print_record(case, skip=("photos", "searches", "identification"))
    if case["identification"] is not None:
        _print_identification(case["identification"])
    for p in case["photos"]:
        flag = "  [no face detected]" if p["no_face_detected"] and not p["faces"] else ""
        out.print(f"photo {p['number']}: {p['file_name']}  sha256={p['sha256']}{flag}")
        for f in p["faces"]:
            out.print(f"  case face {f['case_face']}: " + _quality_line(f))
    for sr in case["searches"]:
        out.print(f"search {sr['search_id']} at {sr['created_at']}")


@case_app.command("delete")
def case_delete(case_id: str, reason: ReasonOpt, workspace: WorkspaceOpt = None) -> None:
    """Erase a case with its faces, searches and any photo bytes no other record uses (admin)."""
    with _open(workspace) as ws:
        gone = _data(ws.delete_case(case_id, reason))
    out.print(
        f"Deleted case {case_id}: {gone['faces_removed']} face(s), {gone['searches_removed']} search(es), "
        f"{gone['photos_removed']} photo file(s) removed."
    )
    _warn(gone["warnings"])


# -- search -------------------------------------------------------------------------------------------
@search_app.command("run")
def search_run(
    case_id: Annotated[str, typer.Argument(help="Case to search.")],
    face: Annotated[int | None, typer.Option(help="Case face number (see `case show`); default: all.")] = None,
    top: Annotated[int | None, typer.Option(help="Candidates to keep [setting NOMINA_TOP, default 50].")] = None,
    exhaustive: Annotated[
        bool,
        typer.Option(
            "--exhaustive",
            help="Compare every reference face even on a gallery using its approximate index (slower; finds "
            "weak matches of hard photos that index can miss).",
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rank every reference against the case's face(s); the search is recorded."""
    with _open(workspace) as ws:
        result = ws.search(case_id, face=face, top=top, exhaustive=exhaustive)
    _show_search(result, as_json)


@search_app.command("show")
def search_show(search_id: int, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Show a recorded search again."""
    from .records import record_number

    record_number(search_id, "search_id")
    with _open(workspace) as ws:
        result = ws.get_search(search_id)
    _show_search(result, as_json)


@search_app.command("list")
def search_list(
    case_id: Annotated[str | None, typer.Option("--case", help="Only this case's searches.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List recorded searches."""
    from rich.table import Table

    with _open(workspace) as ws:
        rows = _data(ws.searches(case_id))
    if as_json:
        _print_json(rows)
        return
    table = Table("search", "case", "time (UTC)", "user", "candidates", "rank 1")
    for r in rows:
        table.add_row(
            str(r["search_id"]),
            r["case_id"],
            r["created_at"],
            r["user"] or r["os_user"],
            str(r["candidates"]),
            r["top_reference"] or "",
        )
    out.print(table)


@search_app.command("conclude")
def search_conclude(
    search_id: Annotated[int, typer.Argument(help="The search (see `search list`).")],
    rank: Annotated[int, typer.Option(help="The candidate's rank in that search.")],
    conclusion: Annotated[str, typer.Option(help="excluded, possible-match or insufficient-information.")],
    reasons: Annotated[str, typer.Option(help="What the conclusion rests on.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Record an examiner's conclusion on one candidate of a search (a later one supersedes it)."""
    with _open(workspace) as ws:
        c = _data(ws.conclude(search_id, rank, conclusion, reasons))
    out.print(f"Search {search_id}, rank {rank} ({c['reference_id']}): {c['conclusion']}, by {c['examiner']}.")


def _show_search(result: SearchResult, as_json: bool) -> None:
    from rich.table import Table

    from .calibration import Evidence, lr_text

    if as_json:
        _print_json(result.to_dict())
        return
    out.print(
        f"Search {result.search_id} of case {result.case_id} at {result.created_at.isoformat()} UTC "
        f"by {result.user or result.os_user}"
    )
    out.print(
        f"Model {result.model['name']}; gallery of {result.gallery['references']} references "
        f"({result.gallery['faces']} faces); case face(s) {', '.join(str(f.number) for f in result.case_faces)}"
    )
    out.print(f"CANDIDATES FOR REVIEW - NOT AN IDENTIFICATION. {result.notice}")
    for warning in result.warnings:
        out.print(f"warning: {warning}")
    # Columns only when they say something, so the table fits a terminal; --json has everything.
    several_faces = len(result.case_faces) > 1
    concluded = any(c.conclusions for c in result.candidates)
    warned = any(c.warnings for c in result.candidates)
    columns = ["rank", "reference", "name", "score"]
    if result.calibration is not None:
        columns += ["LR", "log10 LR", "evidence"]
    columns += ["case face"] * several_faces + ["conclusion"] * concluded + ["warnings"] * warned
    table = Table(*columns)
    for c in result.candidates:
        cells = [str(c.rank), c.reference_id, c.name if c.name is not None else "(deleted)", f"{c.score:.3f}"]
        if c.evidence is not None:
            e = Evidence(c.evidence["log10_lr"], c.evidence["verbal"])
            cells += [lr_text(e.lr), f"{e.log10_lr:+.2f}", e.verbal]
        if several_faces:
            cells.append(str(c.case_face))
        if concluded:
            last = c.conclusions[-1] if c.conclusions else None
            cells.append(f"{last.conclusion} ({last.examiner})" if last else "")
        if warned:
            cells.append("; ".join(c.warnings))
        table.add_row(*cells)
    out.print(table)
    if result.conclusions_hidden:
        out.print("Conclusions hidden: an identification of this case awaits your verification (blind).")
    out.print("Score: cosine similarity of the best pair of faces (-1 to 1); higher ranks first.")
    out.print(_evidence_note(result.calibration))


def _evidence_note(calibration: dict[str, Any] | None) -> str:
    if calibration is None:
        return (
            "Uncalibrated: the score is a similarity, not a likelihood ratio and not a probability "
            "(`nomina calibrate` stores a calibration in the workspace)."
        )
    return (
        f"LR: likelihood ratio, how much more probable the score is if the faces are of the same person than "
        f"if they are of different people (never a probability that they are). Calibration {calibration['id']}: "
        f"{calibration['description']}."
    )


# -- identifications ----------------------------------------------------------------------------------
@identification_app.command("propose")
def identification_propose(
    case_id: Annotated[str, typer.Argument(help="The case.")],
    reference_id: Annotated[str, typer.Argument(help="The reference it is proposed to be (one of its candidates).")],
    reasons: Annotated[str, typer.Option(help="What the proposal rests on.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Propose that a case is a reference (examiner); a different person must then verify it."""
    with _open(workspace) as ws:
        ws.propose_identification(case_id, reference_id, reasons)
    out.print(
        f"Proposed: case {case_id} is reference {reference_id}. Not an identification until a different person "
        "with the verifier role verifies it: "
        f"`nomina identification verify {shlex.quote(case_id)} --reference {shlex.quote(reference_id)}`."
    )


@identification_app.command("verify")
def identification_verify(
    case_id: Annotated[str, typer.Argument(help="The case whose proposed identification to verify.")],
    conclusion: Annotated[
        str, typer.Option(help="Your own conclusion: same-person, different-people or inconclusive.")
    ],
    reasons: Annotated[str, typer.Option(help="What your conclusion rests on.")],
    reference: Annotated[
        str,
        typer.Option(
            help="The reference you compared the case with: refused if the proposal changed to another meanwhile."
        ),
    ],
    workspace: WorkspaceOpt = None,
) -> None:
    """Verify a proposed identification blind (verifier, not the proposer): your conclusion is recorded
    before you see the examiner's. Agreement identifies the case; anything else sends it back to review."""
    with _open(workspace) as ws:
        found = _data(ws.verify_identification(case_id, conclusion, reasons, reference))
    if found["status"] == "identified":
        out.print(f"Case {case_id} is identified as reference {found['reference_id']} (verified).")
    else:
        out.print(f"Case {case_id}: not agreed; back to review with both conclusions kept (disputed).")
    _print_identification(found)


@identification_app.command("withdraw")
def identification_withdraw(
    case_id: Annotated[str, typer.Argument(help="The case.")],
    reason: Annotated[str, typer.Option(help="Why the identification is withdrawn.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Withdraw a case's identification, proposed, disputed or verified (examiner); the case is open again."""
    with _open(workspace) as ws:
        found = _data(ws.withdraw_identification(case_id, reason))
    out.print(f"Withdrawn: case {case_id} as reference {found['reference_id']}; the case is open again.")


@identification_app.command("show")
def identification_show(case_id: str, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """A case's status and identifications (the examiner's reasons stay hidden until verification)."""
    with _open(workspace) as ws:
        data = _data(ws.identification(case_id))
    if as_json:
        _print_json(data)
        return
    out.print(f"Case {case_id}: {data['status']}")
    for i in data["history"]:
        _print_identification(i)
    if data["hidden"]:
        out.print(f"{data['hidden']} earlier identification(s) hidden until the proposed one is verified")


@identification_app.command("list")
def identification_list(
    status: Annotated[
        str | None, typer.Option(help="Only this status: proposed, identified, disputed, withdrawn.")
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List identifications."""
    from rich.table import Table

    with _open(workspace) as ws:
        found = _data(ws.identifications(status))
    if as_json:
        _print_json(found)
        return
    table = Table("case", "reference", "status", "proposed by", "proposed at", "verified by", "verifier's conclusion")
    for i in found:
        v = i["verification"] or {}
        table.add_row(
            i["case_id"],
            i["reference_id"],
            i["status"],
            i["proposed_by"] or "(hidden)",
            i["proposed_at"],
            v.get("verifier", ""),
            v.get("conclusion", ""),
        )
    out.print(table)


def _print_identification(i: dict[str, Any]) -> None:
    who = f"by {i['proposed_by']} " if i["proposed_by"] else ""
    out.print(f"identification {i['identification_id']}: reference {i['reference_id']}, {i['status']}")
    out.print(f"  proposed {who}at {i['proposed_at']}" + (f": {_indented(i['reasons'])}" if i["reasons"] else ""))
    if i["blind"]:
        out.print("  the proposer and reasons are hidden until the identification is verified")
    v = i["verification"]
    if v is not None:
        out.print(f"  verified by {v['verifier']} at {v['at']}: {v['conclusion']}: {_indented(v['reasons'])}")
    if i["closed_at"]:
        out.print(f"  withdrawn by {i['closed_by']} at {i['closed_at']}: {_indented(i['close_reason'])}")


def _indented(text: object) -> str:
    """Reasons of several lines, each line after the first set under the item it belongs to: a line of a
    reason must not read as another item (a "verified by ..." typed into a proposal's reasons)."""
    return str(text).replace("\n", "\n      | ")


def _logged(value: object) -> str:
    """An audit event's detail value on its one log line: text holding spaces, line breaks, '=' or quotes
    is quoted as JSON, so that no reason can end the line or pass for another detail or event."""
    if isinstance(value, str):
        plain = value and not any(c.isspace() or c in '="\\' for c in value)
        return value if plain else json.dumps(value, ensure_ascii=False)
    return (
        str(value) if isinstance(value, int | float | bool) or value is None else json.dumps(value, ensure_ascii=False)
    )


# -- reports and exports ------------------------------------------------------------------------------
@app.command()
def report(
    case_id: Annotated[str, typer.Argument(help="The case to report on.")],
    out_path: Annotated[Path, typer.Option("--out", help="FILE.html or FILE.pdf.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Write the case's identification report for the responsible authority (HTML or PDF)."""
    with _open(workspace) as ws:
        done = _data(ws.report(case_id, out_path))
    out.print(f"Wrote {done['path']} ({done['format'].upper()}, sha256 {done['sha256']}); recorded in the audit trail.")


@export_app.command("identifications")
def export_identifications(
    out_path: Annotated[Path, typer.Option("--out", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="json or csv.")] = "json",
    workspace: WorkspaceOpt = None,
) -> None:
    """Write every verified identification for transmission to the responsible authority."""
    with _open(workspace) as ws:
        done = _data(ws.export_identifications(out_path, fmt))
    out.print(
        f"Wrote {done['identifications']} verified identification(s) to {done['path']} "
        f"(sha256 {done['sha256']}); recorded in the audit trail."
    )


# -- users --------------------------------------------------------------------------------------------
@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The user's name (a short id without spaces).")],
    role: Annotated[
        list[str],
        typer.Option(help="examiner, verifier, admin, intake or auditor; repeat or separate with commas for several."),
    ],
    workspace: WorkspaceOpt = None,
    password_stdin: PasswordStdinOpt = False,
) -> None:
    """Add a user (by an admin), with a first password, asked for at a terminal; they change it with
    `nomina user passwd`. Not at a terminal and without --password-stdin, the user has no password and
    cannot log in until an admin sets one."""
    with _open(workspace) as ws:
        password = _password(password_stdin, f"First password for {name}: ")
        user = _data(ws.add_user(name, role, password))
    out.print(f"Added user {user['name']} ({', '.join(user['roles'])}).")
    if not user["has_password"]:
        out.print(
            f"{user['name']} has no password yet and cannot log in: set one with "
            f"`nomina user passwd {shlex.quote(user['name'])}`."
        )


@user_app.command("passwd")
def user_passwd(
    name: Annotated[str | None, typer.Argument(help="Whose password [default: yours]; an admin sets anyone's.")] = None,
    workspace: WorkspaceOpt = None,
    password_stdin: PasswordStdinOpt = False,
) -> None:
    """Set a password: your own (give the current one first) or, as an admin, another user's (which ends
    their lockout and revokes their API tokens). Ends the user's other sessions. With --password-stdin, your
    own change reads two lines (current, then new)."""
    with _open(workspace) as ws:
        me = ws.whoami()
        whose = me.user if name is None else name
        current = None
        if whose == me.user and next((u.has_password for u in ws.users() if u.name == whose), False):
            current = _required_password(password_stdin, "Current password: ", confirm=False)
        password = _required_password(password_stdin, f"New password for {whose}: ")
        done = ws.set_password(whose, password, current)
    revoked = f"; {done.tokens_revoked} API token(s) revoked" if done.tokens_revoked else ""
    out.print(f"Password set for {whose}; {done.sessions_ended} other session(s) ended{revoked}.")


@user_app.command("list")
def user_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List users with their roles."""
    from rich.table import Table

    with _open(workspace) as ws:
        found = _data(ws.users())
    if as_json:
        _print_json(found)
        return
    table = Table("user", "roles", "active", "password", "added (UTC)", "added by", "disabled by")
    for u in found:
        locked = f"locked until {u['locked_until']}" if u["locked_until"] else ""
        table.add_row(
            u["name"],
            ", ".join(u["roles"]),
            "yes" if u["active"] else "no",
            locked or ("set" if u["has_password"] else "none"),
            u["created_at"],
            u["created_by"],
            u["disabled_by"] or "",
        )
    out.print(table)


@user_app.command("disable")
def user_disable(name: str, workspace: WorkspaceOpt = None) -> None:
    """Disable a user (by an admin). Users are never deleted: the audit trail names them."""
    with _open(workspace) as ws:
        ws.disable_user(name)
    out.print(f"Disabled user {name}.")


@user_app.command("roles")
def user_roles(
    name: str,
    role: Annotated[
        list[str],
        typer.Option(
            "--role",
            help="The user's roles from now on: examiner, verifier, admin, intake, auditor; repeat or separate "
            "with commas for several.",
        ),
    ],
    workspace: WorkspaceOpt = None,
) -> None:
    """Give a user exactly these roles (by an admin); the last active admin keeps the admin role."""
    with _open(workspace) as ws:
        user = ws.set_roles(name, role)
    out.print(f"User {user.name}: {', '.join(user.roles)}.")


# -- logins and tokens ----------------------------------------------------------------------------------
@app.command()
def login(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Your Nomina user name [asked for].")] = None,
    workspace: WorkspaceOpt = None,
    password_stdin: PasswordStdinOpt = False,
) -> None:
    """Log in: asks for your password and keeps a session for this workspace in a file only you can read.
    The session ends after 8 hours, after 30 minutes without a command, or with `nomina logout`."""
    from . import credentials

    if user is None:
        if password_stdin or not sys.stdin.isatty():
            raise InvalidField("--user: required when not at a terminal", field="user")
        user = typer.prompt("User")
    password = _required_password(password_stdin, "Password: ", confirm=False)
    with _open(workspace, signed_in=False) as ws:
        previous = _saved_session(ws)
        result, view = ws.login(user, password, "cli")
        assert result.session is not None and result.secret is not None
        expires = f"{result.session.expires_at:%Y-%m-%d %H:%M}"
        try:
            credentials.save(ws.path, result.secret, view.user or "", expires)
        except OSError as exc:
            view.logout()  # a session nobody holds is ended at once
            where = credentials.path_for(ws.path)
            raise InvalidField(f"session file {where}: cannot be written ({exc.strerror})", field="") from None
        if previous is not None:
            previous.logout()
        roles = ", ".join(view.whoami().roles)
    out.print(
        f"Logged in as {view.user} ({roles}) until {expires} UTC; the session ends after "
        f"{result.session.idle_minutes} minutes without a command. `nomina logout` ends it."
    )


def _saved_session(ws: Workspace) -> Workspace | None:
    """The view of the session saved for ``ws``, when there is one still open."""
    from . import credentials

    try:
        saved = credentials.load(ws.path)
        return None if saved is None else ws.with_credential(saved["secret"])
    except PermissionDenied:  # ended, unreadable, or a disabled user's: nothing to end
        return None


@app.command()
def logout(workspace: WorkspaceOpt = None) -> None:
    """End your session on this workspace and remove its file."""
    from . import credentials

    with _open(workspace, signed_in=False) as ws:
        session = _saved_session(ws)
        if session is not None:
            session.logout()
        removed = credentials.forget(ws.path)
    out.print("Logged out." if removed else "Not logged in.")


@app.command()
def whoami(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Show who commands act as: the user, their roles, and the session or API token used."""
    with _open(workspace) as ws:
        me = _data(ws.whoami())
    if as_json:
        _print_json(me)
        return
    until = ""
    if me["session"]:
        until = f" until {me['session']['expires_at']} UTC"
    elif me["token"]:
        until = f" ({me['token']['label']})"
    out.print(f"{me['user']} ({', '.join(me['roles'])}), with {me['via']}{until}")


@token_app.command("create")
def token_create(
    label: Annotated[str, typer.Option(help="What will use the token (a script's or program's name).")],
    expires_days: Annotated[int | None, typer.Option(help="Days until it expires [default: never].")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make an API token for yourself; it is printed once and stored only as a hash. Programs use it through
    NOMINA_TOKEN (or, with the server, an Authorization: Bearer header) and act with your roles."""
    with _open(workspace) as ws:
        made = _data(ws.create_token(label, expires_days))
    if as_json:
        _print_json(made)
        return
    token = made["token"]
    expiry = f", expires {token['expires_at']} UTC" if token["expires_at"] else ""
    err.print(f"API token {token['id']} ({token['label']}{expiry}); store it now, it is not shown again:")
    out.print(made["secret"], markup=False, highlight=False)


@token_app.command("list")
def token_list(
    everyone: Annotated[bool, typer.Option("--all", help="Every user's tokens (admin).")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List your API tokens (never their secrets), or everyone's with --all."""
    from rich.table import Table

    with _open(workspace) as ws:
        found = _data(ws.tokens(everyone))
    if as_json:
        _print_json(found)
        return
    table = Table("id", "user", "label", "created (UTC)", "expires (UTC)", "revoked")
    for tk in found:
        revoked = f"{tk['revoked_at']} by {tk['revoked_by']}" if tk["revoked_at"] else ""
        table.add_row(str(tk["id"]), tk["user"], tk["label"], tk["created_at"], tk["expires_at"] or "never", revoked)
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's number (see `nomina token list`).")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Revoke an API token: yours, or anyone's as an admin. Programs using it are refused at once."""
    with _open(workspace) as ws:
        done = ws.revoke_token(token_id)
    out.print(f"Revoked API token {done.id} of {done.user}.")


# -- audit --------------------------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Also prove the trail still leads to this signed checkpoint (needs --public-key)."),
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="The PEM public key that verifies the checkpoint's signature.")
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the audit trail's hash chain and every record against it; report the first broken link and each
    record changed, added or removed behind Nomina's back (exit 1 when any)."""
    if (checkpoint is None) != (public_key is None):
        # a usage mistake, as a missing option is (exit 2)
        raise typer.BadParameter(
            "--checkpoint and --public-key go together: the public key verifies the checkpoint",
            param_hint="'--checkpoint' / '--public-key'",
        )
    with _open(workspace) as ws:
        against = (
            None if checkpoint is None or public_key is None else ws.audit_verify_checkpoint(checkpoint, public_key)
        )
        result = ws.audit_verify()
    ok = result.ok and (against is None or against.ok)
    if as_json:
        _print_json({**result.to_dict(), **({} if against is None else {"checkpoint": against.to_dict()})})
    else:
        out.print(str(result))
        if result.ok and result.records_checked:
            out.print(f"{result.records_checked} records checked: each is as the trail last left it.")
        elif result.ok and result.events:
            out.print(
                "Records not checked: the trail predates record digests; the next action recorded vouches for them."
            )
        if against is not None:
            out.print(str(against))
        if ok:
            out.print("Keep this head hash elsewhere: a later trail that does not lead to it has been rewritten.")
    if not ok:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    key: Annotated[
        Path,
        typer.Option(
            help="The Ed25519 private key (PEM, PKCS#8) of the responsible authority, kept outside the workspace."
        ),
    ],
    out_path: Annotated[Path, typer.Option("--out", help="The checkpoint file to write (JSON).")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign the trail's head and every record's digest into a checkpoint file, to keep outside the workspace;
    `audit verify --checkpoint` later proves the trail still leads there. Refused on a trail that does not verify."""
    with _open(workspace) as ws:
        done = ws.audit_checkpoint(key, out_path)
    if as_json:
        _print_json(done)
        return
    out.print(
        f"Wrote {done.path}: checkpoint of seq {done.seq} (head {done.hash}) and {done.records} records, signed with "
        f"{done.public_key} (sha256 {done.sha256}); recorded in the audit trail."
    )


@audit_app.command("keygen")
def audit_keygen(
    prefix: Annotated[
        Path, typer.Option("--out", help="Writes PREFIX.key (private, PEM PKCS#8) and PREFIX.pub (public, PEM).")
    ],
) -> None:
    """Make an Ed25519 key pair for signing checkpoints. Keep the private key away from the workspace and
    its users; give the public key to whoever verifies."""
    from .checkpoints import generate_keys, write_keys

    private, public = generate_keys()
    paths = write_keys(prefix, private, public)
    out.print(f"Wrote {paths[0]} (private: keep it away from the workspace) and {paths[1]} (public).")


@audit_app.command("log")
def audit_log(
    case_id: Annotated[str | None, typer.Option("--case", help="Only events about this case.")] = None,
    reference_id: Annotated[str | None, typer.Option("--reference", help="Only events about this reference.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the newest N events.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show who did what and when, oldest first (the reading is itself recorded)."""
    with _open(workspace) as ws:
        found = _data(ws.audit_log(case_id=case_id, reference_id=reference_id, limit=limit))
    if as_json:
        _print_json(found)
        return
    for e in found:  # one line per event: the trail reads as a log, however narrow the terminal
        ids = " ".join(f"{k}={e[f'{k}_id']}" for k in ("case", "reference", "search") if e[f"{k}_id"] is not None)
        details = " ".join(f"{k}={_logged(v)}" for k, v in e["details"].items())
        where = f" ({e['os_user']}@{e['host']}{', ' + e['via'] if e.get('via') else ''})" if e.get("os_user") else ""
        line = f"{e['seq']:>5}  {e['at'][:19].replace('T', ' ')}  {e['actor']}{where}  {e['action']}  {ids}  {details}"
        out.print(_printable(line), markup=False)  # what the trail holds was typed by people: shown, never obeyed


# -- faces --------------------------------------------------------------------------------------------
@app.command()
def inspect(
    photo: Annotated[Path, typer.Argument(help="Photo to analyse (nothing is stored).")],
    out_path: Annotated[Path | None, typer.Option("--out", help="Write an annotated copy (JPEG or PNG).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the faces in a photo, numbered left to right, with box and quality measures."""
    from .faces import FaceAnalyzer
    from .imaging import decode_image, read_photo
    from .models import load_model
    from .quality import assess

    settings = load_settings()
    if out_path is not None:
        check_output(out_path, "--out", [photo])  # the photo examined is evidence: never written over
    image = decode_image(read_photo(photo), str(photo), settings.max_pixels)
    analyzer = FaceAnalyzer(load_model(settings.model, settings.model_dir), settings)
    faces = analyzer.analyze(image, any_orientation=analyzer.turns(reference_photo=False))
    if out_path is not None:
        _write_annotated(image.pixels, faces, out_path)
    if as_json:
        _print_json(
            {
                "photo": str(photo),
                "sha256": image.sha256,
                "width": image.width,
                "height": image.height,
                "faces": [
                    {
                        "number": f.number,
                        "box": [round(v, 1) for v in f.box],
                        "landmarks": f.landmarks.round(1).tolist(),
                        "quality": f.quality.as_dict(),
                    }
                    for f in faces
                ],
            }
        )
        return
    out.print(_printable(f"{photo}: {image.width}x{image.height} {image.format}, {len(faces)} face(s)"))
    for f in faces:
        x, y, w, h = f.box
        q = f.quality
        a = assess(q)
        out.print(
            f"face {f.number}: box x={x:.0f} y={y:.0f} w={w:.0f} h={h:.0f}  quality {a.score:.0f}/100"
            + (f" ({'; '.join(a.reasons)})" if a.reasons else "")
        )
        out.print(
            f"    detector score={q.detector_score:.2f}  eyes {q.inter_eye_px:.0f} px apart  "
            f"sharpness={q.sharpness:.0f}  brightness={q.brightness:.0f}  "
            f"yaw={_degrees(q.yaw)} pitch={_degrees(q.pitch)} roll={_degrees(q.roll)} deg"
        )
    if out_path is not None:
        out.print(_printable(f"Annotated copy written to {out_path}"))


def _write_annotated(bgr: Any, faces: list[Any], path: Path) -> None:
    import cv2

    canvas = bgr.copy()
    thick = max(1, round(max(canvas.shape[:2]) / 400))
    for f in faces:
        x, y, w, h = (int(round(v)) for v in f.box)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 200, 0), thick)
        for px, py in f.landmarks:
            cv2.circle(canvas, (int(px), int(py)), thick + 1, (0, 0, 255), -1)
        cv2.putText(
            canvas, str(f.number), (x, max(0, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, (0, 200, 0), thick
        )
    if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        raise InvalidField(f"--out: {path} must end in .jpg, .jpeg or .png")
    ok, buf = cv2.imencode(path.suffix.lower(), canvas)
    if not ok:
        raise InvalidField(f"--out: cannot encode {path}")
    try:
        path.write_bytes(buf.tobytes())
    except OSError as exc:
        raise InvalidField(f"--out: {path}: {exc.strerror}") from None


@app.command()
def compare(
    photo_a: Path,
    photo_b: Path,
    face_a: Annotated[int | None, typer.Option(help="Face number in PHOTO_A when it has several.")] = None,
    face_b: Annotated[int | None, typer.Option(help="Face number in PHOTO_B when it has several.")] = None,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            help="Workspace whose model and calibration to use [default: NOMINA_HOME when it is a workspace].",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the similarity of the faces in two photos, with its likelihood ratio when the workspace is
    calibrated (nothing is stored)."""
    from .faces import FaceAnalyzer, compare_photos
    from .models import load_model
    from .records import PhotoInput
    from .search import calibration_summary
    from .workspace import Workspace

    settings = _settings(workspace)
    calibration = None
    if workspace is not None or is_workspace(settings.home):
        with Workspace.open(settings.home, settings) as ws:
            analyzer = ws.analyzer()
            calibration = ws.calibration()
    else:
        analyzer = FaceAnalyzer(load_model(settings.model, settings.model_dir), settings)
    try:
        score = compare_photos(analyzer, PhotoInput(photo_a, face_a), PhotoInput(photo_b, face_b))
    except SeveralFaces as exc:  # compare's options name the photo: --face-a, --face-b
        option = "--face-a" if exc.message.startswith(f"{photo_a}:") else "--face-b"
        hint = f"choose one with {option} N (numbers shown by `nomina inspect`)"
        raise SeveralFaces(exc.message.replace("choose one by its number", hint), field=option) from None
    evidence = None if calibration is None else calibration[1].evidence(score)
    if as_json:
        _print_json(
            {
                "photo_a": str(photo_a),
                "photo_b": str(photo_b),
                "model": analyzer.model.name,
                "score": round(score, 6),
                "evidence": None if evidence is None else evidence.as_dict(),
                "calibration": None if calibration is None else calibration_summary(*calibration),
            }
        )
        return
    out.print(f"similarity {score:.3f} (cosine, -1 to 1, model {analyzer.model.name})")
    if evidence is not None:
        out.print(evidence.text())
    out.print(_evidence_note(None if calibration is None else calibration_summary(*calibration)))


# -- retention and maintenance --------------------------------------------------------------------------
retention_app = typer.Typer(
    help="Erase references whose retention date has passed (docs/erasure.md).", no_args_is_help=True
)
app.add_typer(retention_app, name="retention")


@retention_app.command("apply")
def retention_apply(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be erased; change nothing, not even the audit trail.")
    ] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Erase every reference whose retention date is before today, as `reference delete` does (admin)."""
    from rich.table import Table

    with _open(workspace) as ws:
        done = _data(ws.apply_retention(dry_run=dry_run))
    if as_json:
        _print_json(done)
    else:
        refs = done["references"]
        if dry_run:
            out.print(
                f"Dry run: {len(refs)} reference(s) have a retention date before {done['due_before']} and would "
                "be erased; nothing was changed."
            )
        else:
            out.print(
                f"Retention applied: {len(refs)} reference(s) erased, their retention date before {done['due_before']}."
            )
        if refs:
            table = Table("reference", "retain until", "faces", "photo files")
            for r in refs:
                table.add_row(r["reference_id"], r["retain_until"], str(r["faces_removed"]), str(r["photos_removed"]))
            out.print(table)
        if done["held"]:
            out.print(f"Held past their retention date (an open identification names them): {', '.join(done['held'])}")
    _warn(done["warnings"])


@app.command()
def maintain(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """The workspace's normal maintenance (admin): remove leftover photo files, rebuild the index and the
    database file so that nothing of erased records stays; exit 1 if a step could not be completed."""
    with _open(workspace) as ws:
        done = _data(ws.maintain())
    if as_json:
        _print_json(done)
    else:
        out.print(
            f"Maintenance done: {done['photo_files_removed']} leftover photo file(s) removed; index rebuilt with "
            f"{done['index_faces']} face(s); database {done['database_bytes_before']:,} -> "
            f"{done['database_bytes_after']:,} bytes."
        )
    _warn(done["warnings"])
    if done["warnings"]:
        raise typer.Exit(1)


# What to run, in commands, for what the library's warnings say in words (as _HINTS does for errors).
_WARNING_HINTS = (("run maintenance when", "run `nomina maintain` when"),)


def _warn(warnings: list[str]) -> None:
    for line in warnings:
        for said, shown in _WARNING_HINTS:
            line = line.replace(said, shown)
        err.print(_printable(f"warning: {line}"), markup=False)


# -- calibration --------------------------------------------------------------------------------------
@app.command()
def calibrate(
    dataset: Annotated[Path, typer.Argument(help="Folder with one folder of photos per identity (LFW layout).")],
    method: Annotated[str, typer.Option(help="logistic (regression) or pav (pool-adjacent-violators).")] = "logistic",
    folds: Annotated[int, typer.Option(help="Folds for the held-out measure of the calibration (Cllr).")] = 5,
    impostors: Annotated[
        int, typer.Option(help="Most different-person pairs used; more are sampled down to this.")
    ] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Seed of the impostor-pair sample and of the folds.")] = 0,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the embedding cache.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit a score-to-likelihood-ratio calibration on labelled photos and store it in the workspace."""
    from rich.table import Table

    from .calibration import METHODS, lr_text
    from .evaluation.runner import EvaluateOptions, fit_calibration

    if method not in METHODS:
        raise InvalidField(f"--method: {method!r} is not one of {', '.join(METHODS)}")
    if folds < 2:
        raise InvalidField(f"--folds: {folds} must be at least 2")
    if impostors < 1:
        raise InvalidField(f"--impostors: {impostors} must be at least 1")
    with _open(workspace) as ws:
        options = EvaluateOptions(dataset, impostors=impostors, seed=seed, use_cache=not no_cache)
        with _progress("analysing") as progress:
            fitted = fit_calibration(options, ws.settings, ws.model, method, folds, progress)
        stored = _data(ws.add_calibration(fitted))
    if as_json:
        _print_json({**stored, "calibration": fitted.to_dict()})
        return
    cllr = "n/a" if fitted.cllr is None else f"{fitted.cllr:.3f}"
    cllr_min = "n/a" if fitted.cllr_min is None else f"{fitted.cllr_min:.3f}"
    out.print(f"Calibration {stored['id']} stored; searches use it from now on.")
    out.print(stored["description"])
    out.print(f"Cllr {cllr} bits on held-out folds (Cllr-min {cllr_min}: 0 is perfect, 1 says nothing).")
    table = Table("score", "LR", "log10 LR", "evidence")
    for score in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        e = fitted.evidence(score)
        table.add_row(f"{score:.1f}", lr_text(e.lr), f"{e.log10_lr:+.2f}", e.verbal)
    out.print(table)


# -- evaluation ---------------------------------------------------------------------------------------
@app.command()
def evaluate(
    dataset: Annotated[Path, typer.Argument(help="Folder with one folder of photos per identity (LFW layout).")],
    pairs: Annotated[
        Path | None, typer.Option(help="Pairs file in the LFW pairs.txt format: adds the k-fold pairs protocol.")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="CSV with a photo path column and group columns: adds error rates per group.")
    ] = None,
    group_columns: Annotated[
        str | None, typer.Option(help="Comma-separated group columns of --labels [default: every group column].")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for metrics.json, the plots (PNG) and report.html.")
    ] = None,
    impostors: Annotated[
        int, typer.Option(help="Most different-person pairs compared; more are sampled down to this.")
    ] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Seed of the impostor-pair sample.")] = 0,
    model: Annotated[str | None, typer.Option(help="Face model to evaluate [setting NOMINA_MODEL].")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the embedding cache.")] = False,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            help="Evaluate this workspace's model and, when it has one, its calibration (adds a calibration block).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure detection, verification and identification on a folder of labelled photos."""
    from .evaluation.report import check_out_dir, metrics_json, write_outputs
    from .evaluation.runner import EvaluateOptions, run_evaluation
    from .models import load_model

    if impostors < 1:
        raise InvalidField(f"--impostors: {impostors} must be at least 1")
    if out_dir is not None:
        check_out_dir(out_dir)
    columns = [c.strip() for c in group_columns.split(",") if c.strip()] if group_columns else None
    options = EvaluateOptions(dataset, pairs, labels, columns, impostors, seed, use_cache=not no_cache)
    if workspace is not None:
        if model is not None:
            raise InvalidField("--model: a workspace's model is fixed; give --model or --workspace, not both")
        with _open(workspace) as ws:
            settings, face_model, calibration = ws.settings, ws.model, ws.calibration()
    else:
        settings = load_settings(model=model)
        face_model, calibration = load_model(settings.model, settings.model_dir), None
    with _progress("analysing") as progress:
        evaluation = run_evaluation(options, settings, face_model, progress, calibration)
    if out_dir is not None:
        written = write_outputs(evaluation, out_dir, settings.max_pixels)
        err.print(f"wrote {', '.join(p.name for p in written)} to {out_dir}")
    if as_json:
        out.print(metrics_json(evaluation), markup=False)
    else:
        _print_evaluation(evaluation.metrics)
    if evaluation.unreadable:
        for f in evaluation.unreadable:
            err.print(f"error: {f.reason}")
        err.print(f"{len(evaluation.unreadable)} file(s) could not be read as images; they count as failures")
        raise typer.Exit(1)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _print_evaluation(m: dict[str, Any]) -> None:
    d, v, i = m["detection"], m["verification"], m["identification"]
    out.print(
        f"Dataset {m['dataset']['path']}: {m['dataset']['identities']} identities, {m['dataset']['photos']} photos"
    )
    out.print(f"Model {m['model']['name']}")
    out.print(f"Detection: {d['failures']} failure(s) of {d['photos']} photos; {d['several_faces']} with several faces")
    tars = "  ".join(f"TAR@FAR {k} {_pct(t)}" for k, t in v["tar_at_far"].items())
    auc = "n/a" if v["auc"] is None else f"{v['auc']:.4f}"
    out.print(
        f"Verification: {v['genuine_pairs']} genuine / {v['impostor_pairs']} impostor pairs; "
        f"AUC {auc}  EER {_pct(v['eer'])}  {tars}"
    )
    if "pairs" in m:
        p = m["pairs"]
        out.print(
            f"Pairs protocol: accuracy {_pct(p['accuracy_mean'])} +/- {_pct(p['accuracy_std'])} over {p['folds']} folds"
        )
    ranks = "  ".join(f"rank-{k} {_pct(r)}" for k, r in i["rank"].items())
    fnir = "  ".join(f"FNIR@FPIR {k} {_pct(r)}" for k, r in i["fnir_at_fpir"].items())
    out.print(f"Identification: gallery {i['gallery']}, {i['probes']} searches; {ranks}; {fnir}")
    for column, values in m.get("groups", {}).items():
        rates = "  ".join(f"{value}: FNMR {_pct(r['fnmr'])} FMR {_pct(r['fmr'])}" for value, r in values.items())
        out.print(f"Group {column}: {rates}")
    if "calibration" in m:
        c = m["calibration"]
        misleading = c["misleading"] or {}
        out.print(
            f"Calibration {c['id']}: Cllr {_num(c['cllr'])} bits, Cllr-min {_num(c['cllr_min'])}, refitted here "
            f"{_num(c['cllr_refitted'])}; misleading LRs: same person {_pct(misleading.get('genuine_lr_below_1'))}, "
            f"different people {_pct(misleading.get('impostor_lr_above_1'))}"
        )
        for note in c["notes"]:
            out.print(f"note: {note}")
    t = m["timing"]
    speed = f"{t['photos_per_second']} photos/s" if t["photos_per_second"] else "all from the cache"
    out.print(f"Timing: {t['photos_analysed']} photos analysed ({speed}), {t['photos_from_cache']} from the cache")
    for note in v.get("notes", []) + i.get("notes", []):
        out.print(f"note: {note}")


# -- demo ---------------------------------------------------------------------------------------------
@app.command()
def demo(
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", help="Folder for the demo workspace [default: a temporary folder]."),
    ] = None,
    samples: Annotated[Path | None, typer.Option(help="Sample photo folder [setting NOMINA_SAMPLES].")] = None,
    serve_it: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Then add a demo user for each role and serve the workspace (Ctrl-C stops; see docs/web.md).",
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="With --serve: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="With --serve: port to listen on.")] = 8000,
) -> None:
    """Enrol the sample references, add the sample cases, search each and summarise the ranks; with --serve,
    then serve the demo workspace to a browser."""
    import shutil
    import tempfile

    from .demo import add_demo_users, run_demo

    settings = load_settings(samples=samples)

    def step(message: str) -> None:
        err.print(message)

    if not serve_it:
        out.print(run_demo(settings, workspace, step).text())
        return
    _check_address(host, port)
    folder = workspace if workspace is not None else Path(tempfile.mkdtemp(prefix="nomina-demo-")) / "workspace"
    try:
        out.print(run_demo(settings, folder, step).text())
        passwords = add_demo_users(folder, settings)
        out.print(f"\nServing the demo workspace {folder} at http://{_url_host(host)}:{port}/ (Ctrl-C stops it).")
        out.print("Demo users (passwords made for this run; the workspace is a demo, never real data):")
        for name, (roles, password) in passwords.items():
            out.print(f"  {name:<9} {password}   {', '.join(roles)}")
        _serve(folder, host, port, workers=1, secure_cookies=None, forwarded_allow_ips=None)
    finally:
        if workspace is None:
            shutil.rmtree(folder.parent, ignore_errors=True)


@app.command()
def serve(
    workspace: WorkspaceOpt = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on: loopback by default; put a TLS proxy in front for a network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (each opens the workspace).")] = 1,
    secure_cookies: Annotated[
        bool | None,
        typer.Option(
            "--secure-cookies/--no-secure-cookies",
            help="Mark the session cookie Secure [default: when the request came over HTTPS].",
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Addresses of the reverse proxy whose X-Forwarded-For/-Proto headers are trusted (docs/deploy.md)."
        ),
    ] = None,
) -> None:
    """Serve the workspace to browsers (the web application) and programs (the REST API under /api/v1)."""
    from .workspace import Workspace

    settings = _settings(workspace)
    if not 1 <= workers <= 64:
        raise InvalidField(f"workers: {workers} is not between 1 and 64", field="workers")
    _check_address(host, port)
    Workspace.open(settings.home, settings).close()  # a bad workspace is one line here, not a traceback per worker
    if host not in ("127.0.0.1", "::1", "localhost"):
        err.print(
            f"serving on {host}: anyone who can reach it can try to log in; use TLS (a reverse proxy, docs/deploy.md)"
        )
    out.print(f"Serving {settings.home} at http://{_url_host(host)}:{port}/ (Ctrl-C stops it).")
    _serve(settings.home, host, port, workers, secure_cookies, forwarded_allow_ips)


def _check_address(host: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise InvalidField(f"port: {port} is not between 1 and 65535", field="port")
    if not host.strip() or any(c.isspace() for c in host):
        raise InvalidField(f"host: {host!r} is not an address", field="host")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _serve(
    home: Path, host: str, port: int, workers: int, secure_cookies: bool | None, forwarded_allow_ips: str | None
) -> None:
    """Run uvicorn on the application factory (nomina.web.app.factory reads the workspace from NOMINA_HOME)."""
    import uvicorn

    os.environ["NOMINA_HOME"] = str(Path(home).resolve())
    if secure_cookies is not None:
        os.environ["NOMINA_SECURE_COOKIES"] = "1" if secure_cookies else "0"
    uvicorn.run(
        "nomina.web.app:factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        date_header=True,
        log_level="info",
    )


# -- helpers ------------------------------------------------------------------------------------------
@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on standard error (only on a terminal), fed by a ``(done, total)`` callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err.console,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print_record(record: dict[str, Any], skip: tuple[str, ...]) -> None:
    for key, value in record.items():
        if key not in skip and value not in (None, ""):
            out.print(f"{key}: {value}")


def _degrees(angle: float | None) -> str:
    """A pose angle as a signed whole number; "n/a" when the landmarks do not give it (a mouth above the eyes)."""
    return "n/a" if angle is None else f"{angle:+.0f}"


def _quality_line(f: dict[str, Any]) -> str:
    q = f["quality"]
    how = "marked by hand" if f["manual"] else f"detector score {q['detector_score']:.2f}"
    pose = "" if q["yaw"] is None else f"  yaw={_degrees(q['yaw'])} pitch={_degrees(q['pitch'])}"
    why = f" ({'; '.join(q['reasons'])})" if q["reasons"] else ""
    return (
        f"face ({how}): quality {q['score']:.0f}/100{why}\n    eyes {q['inter_eye_px']:.0f} px apart  "
        f"sharpness={q['sharpness']:.0f}  brightness={q['brightness']:.0f}  roll={q['roll']:+.0f}{pose}"
    )


# The library's messages name fields as the Python API and manifests do ("reasons: required ..."); the
# command line puts back the option each field comes from. A field not listed is shown by its own name.
_FLAGS: dict[str, str] = {
    "name": "--name",
    "source": "--source",
    "supplied_by": "--supplied-by",
    "legal_basis": "--legal-basis",
    "sex": "--sex",
    "birth_year": "--birth-year",
    "last_seen_on": "--last-seen-on",
    "retain_until": "--retain-until",
    "photo_date": "--photo-date",
    "quality_override": "--accept-quality",
    "kind": "--kind",
    "found_on": "--found-on",
    "face": "--face",
    "eyes": "--eyes",
    "photo": "--photo",
    "top": "--top",
    "rank": "--rank",
    "conclusion": "--conclusion",
    "reasons": "--reasons",
    "reason": "--reason",
    "status": "--status",
    "out": "--out",
    "format": "--format",
    "role": "--role",
    "group_columns": "--group-columns",
    "failures": "--failures",
    "limit": "--limit",
    "label": "--label",
    "expires_days": "--expires-days",
    "min_score": "--min-score",
    "notes": "--notes",
    "last_seen_at": "--last-seen-at",
    "found_at": "--found-at",
    "workers": "--workers",
    "port": "--port",
}

# What to do next, in commands, for what the library says in words: (code, field) -> (the library's
# words, the command line's). The field None matches an error of that code whatever its field.
_HINTS: dict[tuple[str, str | None], tuple[tuple[str, str], ...]] = {
    ("not_a_workspace", None): (
        ("no such workspace folder", "no such workspace folder (create one with `nomina init`)"),
        (f"(no {DB_NAME})", f"(no {DB_NAME}; create one with `nomina init`)"),
    ),
    ("not_logged_in", "user"): (
        ("every action is done by a user who has logged in", "log in with `nomina login`, or set NOMINA_TOKEN"),
    ),
    ("permission_denied", "user"): (
        ("add the first user, an admin", "add the first, an admin: `nomina user add NAME --role admin,examiner`"),
    ),
    ("several_faces", "face"): (
        ("choose one by its number", "choose one with --face N (numbers shown by `nomina inspect`)"),
    ),
    ("quality_too_low", "quality_override"): (
        ("give the reason for accepting its quality", "give the reason with --accept-quality"),
    ),
    ("no_face_found", "face"): (("mark the eyes by hand", "mark the eyes by hand with `nomina case mark-eyes`"),),
    ("invalid_field", "eyes"): ((": eyes: ", ": --eyes: "),),
    ("conflict", "reference_id"): (("add photos to it instead", "use `reference add-photos`"),),
    ("conflict", None): (("withdraw it first", "withdraw it first (`nomina identification withdraw`)"),),
    ("file_missing", "samples"): (("set NOMINA_SAMPLES", "set NOMINA_SAMPLES or --samples"),),
    ("workspace_error", None): (
        (
            "an admin sets it again, and the audit trail's verification shows what it was",
            "an admin sets it again with `nomina config NAME VALUE`; `nomina audit verify` shows what it was",
        ),
    ),
}


def _message(exc: NominaError) -> str:
    """The error's message as the command line shows it: with option names for fields, and commands."""
    text = exc.message
    if (exc.code, exc.field) == ("not_logged_in", "user") and "message" in _ended_session:
        return _ended_session["message"]
    flag = _FLAGS.get(exc.field or "")
    if flag is not None and text.startswith(f"{exc.field}: "):
        text = flag + text[len(exc.field or "") :]
    for key in dict.fromkeys([(exc.code, exc.field), (exc.code, None)]):
        for said, shown in _HINTS.get(key, ()):
            text = text.replace(said, shown, 1)
    return text


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``nomina`` script: one line per error and a non-zero exit, never a traceback.

    Usage mistakes are reported by the command-line parser (exit 2); Nomina's errors exit with 1.
    """
    _ended_session.clear()
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show a character gets it escaped
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    args = sys.argv[1:] if argv is None else argv
    try:
        for number, arg in enumerate(args, 1):
            if any("\udc80" <= c <= "\udcff" for c in arg):  # bytes that are not UTF-8, kept as surrogates
                raise InvalidField(
                    f"argument {number} ({_printable(os.fsencode(arg).decode('utf-8', 'backslashreplace'))}) "
                    "is not UTF-8 text: rename the file or type the text again",
                    field="",
                )
        app(args=args, prog_name="nomina")
    except NominaError as exc:
        text = _message(exc)
        if len(text) > _LONGEST_MESSAGE:  # a value the library echoed whole (an id looked up, say)
            text = text[: _LONGEST_MESSAGE - 1] + "\u2026"
        err.print(_printable(f"error: {text}"), markup=False)
        raise SystemExit(1) from None
    except UnicodeError:  # a password on standard input, or NOMINA_TOKEN, that is not UTF-8
        err.print("error: text given on standard input or in the environment is not UTF-8", markup=False)
        raise SystemExit(1) from None
    except BrokenPipeError:  # the reader of the output went away (`| head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None
    except OSError as exc:  # a file named on the command line, or the output, that the system refused
        where = exc.filename if exc.filename is not None else "output"
        err.print(_printable(f"error: {where}: {exc.strerror or exc}"), markup=False)
        raise SystemExit(1) from None


# The longest error message printed; a longer one is cut with an ellipsis.
_LONGEST_MESSAGE = 500


def _printable(text: str) -> str:
    """``text`` with every character a terminal would act on (escapes, bidirectional overrides,
    zero-width and other control or format characters, line breaks) written as Python writes it in a
    string literal (``\\x1b``, ``\\u202e``), so that no message can move the cursor, recolour the
    terminal or reorder what it shows."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


if __name__ == "__main__":  # pragma: no cover
    main()
