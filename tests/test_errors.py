"""Errors as data: each kind's stable code and HTTP status as errors.py documents them, the field and record
at fault through the Python API, library messages free of command-line flags, and the command line
putting its flag names back (one line, exit 1)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from conftest import ACT_AS, REPO, assert_one_error_line, london, run

from nomina import CaseFields, PhotoInput, Provenance, ReferenceFields, errors
from nomina.cli import _message
from nomina.errors import (
    HTTP_STATUS,
    Conflict,
    FileMissing,
    InvalidField,
    NominaError,
    NotFound,
    PermissionDenied,
    SeveralFaces,
    http_status,
)

KINDS = [getattr(errors, name) for name in errors.__all__ if isinstance(getattr(errors, name), type)]


# -- the documented tree -------------------------------------------------------------------------------
def documented_tree() -> dict[str, tuple[str | None, str, int]]:
    """Class name -> (parent class name, code, HTTP status), as drawn in errors.py's docstring."""
    doc = errors.__doc__ or ""
    tree: dict[str, tuple[str | None, str, int]] = {}
    parents: list[str] = []  # the newest class at each depth
    for line in doc.split("::", 1)[1].splitlines():
        found = re.match(r"^(\s*(?:[│ ]   )*(?:[├└]── )?)([A-Z]\w+)\s+([a-z_]+)\s+(\d{3})\b", line)
        if found is None:
            assert not re.search(r"[├└]──", line), f"unreadable line in the errors.py tree: {line!r}"
            continue
        prefix, name, code, status = found.groups()
        depth = (len(prefix) - 4) // 4
        assert name not in tree, f"{name} drawn twice"
        parents[depth:] = [name]
        tree[name] = (parents[depth - 1] if depth else None, code, int(status))
    return tree


def test_every_kind_has_its_own_code():
    codes = [k.code for k in KINDS]
    assert len(set(codes)) == len(codes), sorted(codes)
    assert all(re.fullmatch(r"[a-z][a-z_]*", c) for c in codes)


def test_the_docstring_tree_is_the_hierarchy_with_its_codes_and_statuses():
    tree = documented_tree()
    assert sorted(tree) == sorted(k.__name__ for k in KINDS)
    for kind in KINDS:
        parent, code, status = tree[kind.__name__]
        assert kind.__bases__[0].__name__ == (parent or "Exception"), kind
        assert (kind.code, http_status(kind)) == (code, status), kind


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (errors.InputError, 422),
        (errors.InvalidField, 422),
        (errors.FileMissing, 400),
        (errors.ManifestError, 400),
        (errors.ImageTooLarge, 413),
        (errors.PermissionDenied, 403),
        (errors.NotLoggedIn, 401),
        (errors.LoginFailed, 401),
        (errors.LockedOut, 429),
        (errors.NotFound, 404),
        (errors.Conflict, 409),
        (errors.NominaError, 500),
        (errors.ModelMissing, 500),
        (errors.AuditBroken, 500),
        (errors.NotAWorkspace, 500),
        (errors.Busy, 503),
    ],
)
def test_http_status_of_each_kind(kind, status):
    assert http_status(kind) == status
    assert kind("x: y").http_status == status


def test_a_subclass_takes_its_nearest_listed_ancestors_status():
    class TooOld(errors.NotFound):
        pass

    class Odd(errors.NominaError):
        pass

    assert TooOld.code == "too_old" and http_status(TooOld) == 404 and http_status(TooOld("gone")) == 404
    assert http_status(Odd) == 500
    assert set(HTTP_STATUS.values()) == {400, 401, 403, 404, 409, 413, 422, 429, 500, 503}


def test_to_dict_shape_and_the_field_taken_from_the_message():
    assert InvalidField("reasons: required: say what the conclusion rests on").to_dict() == {
        "code": "invalid_field",
        "message": "reasons: required: say what the conclusion rests on",
        "field": "reasons",
        "record": None,
    }
    error = NotFound("case C9: no such case", record="case C9")
    assert error.to_dict() == {
        "code": "not_found",
        "message": "case C9: no such case",
        "field": None,
        "record": "case C9",
    }
    assert json.loads(json.dumps(error.to_dict())) == error.to_dict()
    named = SeveralFaces("two.jpg: 2 faces found; choose one by its number", field="face")
    assert (named.field, str(named)) == ("face", "two.jpg: 2 faces found; choose one by its number")
    assert FileMissing("/tmp/x.jpg: no such file").field is None


# -- library messages speak of fields, not flags -------------------------------------------------------
FLAG = re.compile(r"--[a-z]|`nomina\b")


def flag_mentions(path: Path, root: Path = REPO) -> list[str]:
    """Strings in ``raise`` statements (and the module constants and parameter defaults they use) that
    name a command-line flag or a `nomina ...` command."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {
        t.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    found = []
    for func in [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]:
        raises = [n for n in ast.walk(func) if isinstance(n, ast.Raise) and n.exc is not None]
        texts = []
        for r in raises:
            for n in ast.walk(r.exc):
                if isinstance(n, ast.Constant) and isinstance(n.value, str):
                    texts.append((n.lineno, n.value))
                elif isinstance(n, ast.Name) and n.id in constants:
                    texts.append((n.lineno, constants[n.id]))
        if raises and isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defaults = [*func.args.defaults, *(d for d in func.args.kw_defaults if d is not None)]
            texts += [(d.lineno, d.value) for d in defaults if isinstance(d, ast.Constant) and isinstance(d.value, str)]
        found += [f"{path.relative_to(root)}:{line}: {text!r}" for line, text in texts if FLAG.search(text)]
    return sorted(set(found))


@pytest.mark.slow
def test_no_library_message_names_a_command_line_flag():
    library = REPO / "src" / "nomina"
    found = [hit for p in sorted(library.rglob("*.py")) if p.name != "cli.py" for hit in flag_mentions(p)]
    assert found == [], "library messages that name command-line flags or commands:\n" + "\n".join(found)


def test_the_scan_finds_a_flag_in_a_message(tmp_path):
    (tmp_path / "m.py").write_text(
        "X = 'see `nomina inspect`'\n"
        "def f(v, field='--rank'):\n"
        "    if v:\n"
        "        raise ValueError(f'--top: {v} must be at least 1')\n"
        "    raise ValueError(X)\n"
    )
    assert flag_mentions(tmp_path / "m.py", tmp_path) == [
        "m.py:2: '--rank'",
        "m.py:4: '--top: '",
        "m.py:5: 'see `nomina inspect`'",
    ]


# -- through the Python API ----------------------------------------------------------------------------
PROVENANCE = Provenance("family", "a brother", "family request")


@pytest.fixture()
def searched(ws, faces_dir):
    """ws with reference R1 and case C1 (the same person), and search 1 of C1."""
    ws.add_reference(ReferenceFields("R1", "Ana"), [PhotoInput(london(faces_dir, "001"))], PROVENANCE)
    ws.add_case(CaseFields("C1"), [PhotoInput(london(faces_dir, "001", "smiling"))])
    return ws, ws.search("C1").search_id


def test_api_errors_name_their_field(searched, tmp_path):
    ws, search_id = searched
    cases = [
        (lambda: ws.add_user("dan", []), "invalid_field", "role"),
        (lambda: ws.add_user("dan", "boss"), "invalid_field", "role"),
        (lambda: ws.conclude(search_id, 1, "excluded", "  "), "invalid_field", "reasons"),
        (lambda: ws.conclude(search_id, 1, "maybe", "ears"), "invalid_field", "conclusion"),
        (lambda: ws.conclude(search_id, 9, "excluded", "ears"), "invalid_field", "rank"),
        (lambda: ws.propose_identification("C1", "R1", ""), "invalid_field", "reasons"),
        (lambda: ws.withdraw_identification("C1", " "), "invalid_field", "reason"),
        (lambda: ws.export_identifications(tmp_path / "x.xml", "xml"), "invalid_field", "format"),
        (lambda: ws.report("C1", tmp_path / "report.txt"), "invalid_field", "out"),
        (lambda: PhotoInput(tmp_path / "a.jpg", face=0), "invalid_field", "face"),
    ]
    for call, code, field in cases:
        with pytest.raises(NominaError) as caught:
            call()
        error = caught.value
        assert (error.code, error.field) == (code, field), error
        assert str(error).startswith(f"{field}: "), error
        assert error.http_status == 422
        assert not FLAG.search(str(error)), error


def test_api_errors_name_their_record(searched):
    ws, search_id = searched
    with pytest.raises(NotFound) as caught:
        ws.case("C9")
    assert caught.value.to_dict() == {
        "code": "not_found",
        "message": "case C9: no such case",
        "field": None,
        "record": "case C9",
    }
    with pytest.raises(InvalidField) as caught:
        ws.conclude(search_id, 9, "excluded", "ears")
    assert caught.value.record == f"search {search_id}"
    with pytest.raises(Conflict) as caught:
        ws.add_user("ana", "examiner")
    assert (caught.value.code, caught.value.record, caught.value.http_status) == ("conflict", "user 'ana'", 409)
    with pytest.raises(Conflict) as caught:
        ws.withdraw_identification("C1", "a mistake")
    assert caught.value.record == "case C1"
    with pytest.raises(NotFound) as caught:
        ws.propose_identification("C1", "R9", "ears")
    assert caught.value.record == "reference R9"
    with pytest.raises(NotFound) as caught:
        ws.as_user("nobody").cases()
    assert (caught.value.record, caught.value.http_status) == ("user 'nobody'", 404)
    ws.add_user("ben", "examiner")
    ws.disable_user("ben")
    with pytest.raises(PermissionDenied) as caught:
        ws.as_user("ben").cases()
    assert (caught.value.code, caught.value.record, caught.value.http_status) == (
        "permission_denied",
        "user 'ben'",
        403,
    )


def test_several_faces_ask_for_a_face_number_without_naming_a_flag(ws, two_faces):
    with pytest.raises(SeveralFaces) as caught:
        ws.add_reference(ReferenceFields("R1", "X"), [PhotoInput(two_faces)], PROVENANCE)
    error = caught.value
    assert (error.code, error.field) == ("several_faces", "face")
    assert str(error).endswith("two_people.jpg: 2 faces found; choose one by its number")


# -- through the command line --------------------------------------------------------------------------
@pytest.fixture()
def cli_searched(cli_ws, capsys):
    assert run(capsys, "search", "C1", "-w", cli_ws)[0] == 0
    return cli_ws


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (
            ["user", "add", "dan", "--role", ""],
            r"^error: --role: required \(one or more of examiner, verifier, admin, intake, auditor\)$",
        ),
        (
            ["user", "add", "dan", "--role", "boss"],
            r"^error: --role: 'boss' is not one of examiner, verifier, admin, intake, auditor$",
        ),
        (
            ["search", "conclude", "1", "--rank", "1", "--conclusion", "excluded", "--reasons", " "],
            r"^error: --reasons: required: say what the conclusion rests on$",
        ),
        (
            ["search", "conclude", "1", "--rank", "1", "--conclusion", "maybe", "--reasons", "ears"],
            r"^error: --conclusion: 'maybe' is not one of excluded, possible-match, insufficient-information$",
        ),
        (
            ["search", "conclude", "1", "--rank", "9", "--conclusion", "excluded", "--reasons", "ears"],
            r"^error: --rank: search 1 has no candidate at rank 9 \(1-1\)$",
        ),
        (["identification", "propose", "C1", "R1", "--reasons", ""], r"^error: --reasons: required"),
        (["identification", "withdraw", "C1", "--reason", " "], r"^error: --reason: required"),
        (["search", "C1", "--top", "0"], r"^error: --top: 0 is not a whole number from 1 to 1,000$"),
        (["search", "C1", "--face", "5"], r"^error: --face: case C1 has 1 face\(s\); got 5$"),
        (["identification", "list", "--status", "lost"], r"^error: --status: 'lost' is not one of"),
        (["report", "C1", "--out", "{tmp}/report.txt"], r"^error: --out: .*report\.txt must end in \.html or \.pdf$"),
        (["export", "identifications", "--out", "{tmp}/x.xml", "--format", "xml"], r"^error: --format: 'xml'"),
        (["reference", "update", "R1", "--birth-year", "1700"], r"^error: --birth-year: 1700 is not a plausible year$"),
        (["reference", "update", "R1", "--retain-until", "2001-01-01"], r"^error: --retain-until: 2001-01-01 is in"),
        (["reference", "update", "R1", "--name", " "], r"^error: --name: required$"),
        (["case", "mark-eyes", "C1", "--eyes", "1,2,3"], r"^error: --eyes: expected X1,Y1,X2,Y2"),
        (["case", "mark-eyes", "C1", "--photo", "3", "--eyes", "1,2,30,2"], r"^error: --photo: case C1 has 1 photo"),
        (["case", "show", "C9"], r"^error: case C9: no such case$"),
    ],
)
def test_the_command_line_names_the_flags(args, pattern, cli_searched, tmp_path, capsys):
    code, _, err = run(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in args], "-w", cli_searched)
    assert code == 1
    assert_one_error_line(err, pattern)


@pytest.mark.slow  # about a second
def test_the_command_line_says_which_command_to_run(tmp_path, cli_ws, two_faces, faces_dir, capsys, monkeypatch):
    code, _, err = run(capsys, "case", "list", "-w", tmp_path / "nowhere")
    assert code == 1
    assert_one_error_line(err, r"nowhere: no such workspace folder \(create one with `nomina init`\)$")
    code, _, err = run(capsys, "case", "list", "-w", tmp_path)
    assert_one_error_line(err, r": not a Nomina workspace \(no nomina\.db; create one with `nomina init`\)$")
    code, _, err = run(capsys, "case", "add", "C2", two_faces, "-w", cli_ws)
    assert code == 1
    assert_one_error_line(
        err, r"two_people\.jpg: 2 faces found; choose one with --face N \(numbers shown by `nomina inspect`\)$"
    )
    one_face = london(faces_dir, "001")
    for photos, option in (((two_faces, one_face), "--face-a"), ((one_face, two_faces), "--face-b")):
        code, _, err = run(capsys, "compare", *photos)
        assert code == 1
        assert_one_error_line(err, rf"two_people\.jpg: 2 faces found; choose one with {option} N \(numbers shown")
    monkeypatch.delenv(ACT_AS)
    code, _, err = run(capsys, "case", "list", "-w", cli_ws)
    assert_one_error_line(err, r"^error: not logged in: log in with `nomina login`, or set NOMINA_TOKEN")


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (InvalidField("legal_basis: required"), "--legal-basis: required"),
        # fields that are no option of any command keep their own names
        (InvalidField("quality_gate: 'x' is not one of off"), "quality_gate: 'x' is not one of off"),
        (InvalidField("case_id: 'a b' has spaces"), "case_id: 'a b' has spaces"),
        # a flag only in place of the field the message starts with
        (InvalidField("top: not a workspace setting", field="setting"), "top: not a workspace setting"),
        (InvalidField("x.jpg: eyes: outside the 9x9 photo", field="eyes"), "x.jpg: --eyes: outside the 9x9 photo"),
        (
            Conflict("case C1: an identification as R1 is already proposed; withdraw it first"),
            "case C1: an identification as R1 is already proposed; withdraw it first "
            "(`nomina identification withdraw`)",
        ),
        (NotFound("reference R9: no such reference", record="reference R9"), "reference R9: no such reference"),
    ],
)
def test_how_the_command_line_shows_a_message(error, shown):
    assert _message(error) == shown


def test_every_command_hint_replaces_words_the_library_says():
    """A hint whose words the library no longer says would silently stop showing."""
    from nomina.cli import _HINTS
    from nomina.store import DB_NAME

    library = "".join(p.read_text() for p in (REPO / "src" / "nomina").rglob("*.py") if p.name != "cli.py")
    library = library.replace("{DB_NAME}", DB_NAME)
    for key, hints in _HINTS.items():
        for said, shown in hints:
            assert said.strip(": ") in library, (key, said)
            assert said != shown


def test_usage_mistakes_still_exit_2(cli_ws, capsys):
    code, _, err = run(capsys, "search", "conclude", "1", "--rank", "one", "-w", cli_ws)
    assert code == 2
    assert "Traceback" not in err


def test_docs_errors_md_lists_every_kind_with_its_code_and_status():
    rows = re.findall(r"^\| `(\w+)` \| `([a-z_]+)` \| (\d{3}) \|", (REPO / "docs" / "errors.md").read_text(), re.M)
    assert sorted(rows) == sorted((k.__name__, k.code, str(http_status(k))) for k in KINDS)
