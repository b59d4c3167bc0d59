"""Reports and exports for the authority, access by named users with roles, and the audit trail, through
the command line: what a user does, what is written, and what the trail records and catches."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import (
    ACT_AS,
    PROV,
    USER,
    assert_one_error_line,
    build_once,
    copy_workspace,
    drop_trigger,
    london,
    raw_database,
    run,
    snapshot,
)
from test_workflow import as_json, casework, casework_template, cli, propose  # noqa: F401 (fixtures)

from nomina import Workspace


@pytest.fixture(scope="session")
def identified_template(casework_template, tmp_path_factory) -> Path:  # noqa: F811
    def build(ws: Path) -> None:
        copy_workspace(casework_template, ws.parent)
        args = ("search", "conclude", "1", "--rank", "1", "--conclusion", "possible-match", "--reasons", "ear shape")
        assert cli(None, ws, USER, *args)[0] == 0
        propose(None, ws)
        verify = ("identification", "verify", "UP-1", "--conclusion", "same-person", "--reasons", "same ears",
                  "--reference", "MP-012")  # fmt: skip
        assert cli(None, ws, "ben", *verify)[0] == 0

    return build_once(tmp_path_factory, "identified", build)


@pytest.fixture()
def identified(identified_template, tmp_path) -> Path:
    """casework with UP-1 proposed by ana as MP-012 (possible match on rank 1) and verified by ben; built
    once per session, copied for each test (tmp_path / "ws")."""
    return copy_workspace(identified_template, tmp_path)


@pytest.mark.slow  # over a second
def test_the_html_report_shows_the_aligned_faces_conclusions_model_and_trail(identified, tmp_path, capsys):
    with Workspace.open(identified, user=USER) as ws:
        head = ws.audit_head()  # the trail's newest event when the report is written
    out = tmp_path / "UP-1.html"
    code, printed, err = cli(capsys, identified, "dee", "report", "UP-1", "--out", str(out))  # an examiner
    assert code == 0, err
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert sha in printed
    html = out.read_text()
    for text in ("UP-1", "MP-012", "Person 012", "identified", "ear shape", "same ears", "ben", USER, head):
        assert text in html, text
    model = as_json(capsys, identified, USER, "info")["model"]
    assert all(h in html for h in model["files"].values())
    # faces are the 112 x 112 aligned crops, never the whole photo
    sizes = {cv2.imdecode(np.frombuffer(base64.b64decode(b), np.uint8), cv2.IMREAD_COLOR).shape[:2]
             for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)}  # fmt: skip
    assert sizes == {(112, 112)}
    # the writing is recorded with the file's SHA-256
    created = [e for e in as_json(capsys, identified, USER, "audit", "log", "--case", "UP-1")
               if e["action"] == "report.create"]  # fmt: skip
    assert created[-1]["details"] == {"format": "html", "sha256": sha} and created[-1]["actor"] == "dee"


@pytest.mark.slow
def test_the_pdf_report_is_a_real_a4_document_with_the_case_and_its_faces(identified, tmp_path, capsys):
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 comes with the dev extra")
    out = tmp_path / "UP-1.pdf"
    code, _, err = cli(capsys, identified, USER, "report", "UP-1", "--out", str(out))
    assert code == 0, err
    pdf = pdfium.PdfDocument(str(out))
    first = pdf[0]
    assert (round(first.get_width()), round(first.get_height())) == (595, 842)  # A4 in points
    text = " ".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    assert "UP-1" in text and "identified" in text and "Person 012" in text
    pixels = np.asarray(pdf[1].render(scale=1).to_pil().convert("L"), dtype=np.float64)
    assert pixels.std() > 20  # the page with the case face is not blank


def test_nobody_but_the_proposer_gets_a_report_while_verification_is_pending(casework, tmp_path, capsys):  # noqa: F811
    propose(capsys, casework)
    out = tmp_path / "early.html"
    code, _, err = cli(capsys, casework, "dee", "report", "UP-1", "--out", str(out))  # an examiner, not the proposer
    assert code == 1
    assert_one_error_line(err, r"case UP-1: an identification awaits verification")
    assert not out.exists()
    assert cli(capsys, casework, USER, "report", "UP-1", "--out", str(out))[0] == 0  # the proposer may


def test_bad_report_requests_are_one_line_errors_and_write_nothing(identified, tmp_path, capsys):
    before = snapshot(identified)
    for args, message in [
        (("report", "UP-1", "--out", str(tmp_path / "r.docx")), r"--out: .*r\.docx must end in \.html or \.pdf"),
        (("report", "UP-1", "--out", str(tmp_path / "no" / "r.html")), r"--out: .*no is not a folder"),
        (("report", "UP-9", "--out", str(tmp_path / "r.html")), r"case UP-9: no such case"),
        (("export", "identifications", "--format", "xml", "--out", str(tmp_path / "e.xml")),
         r"--format: 'xml' is not one of json, csv"),
    ]:  # fmt: skip
        code, _, err = cli(capsys, identified, USER, *args)
        assert code == 1
        assert_one_error_line(err, message)
    assert snapshot(identified) == before
    assert list(tmp_path.glob("r.*")) == [] and not (tmp_path / "e.xml").exists()


def test_the_export_holds_verified_identifications_with_their_people_and_report(identified, tmp_path, capsys):
    report = tmp_path / "UP-1.html"
    assert cli(capsys, identified, USER, "report", "UP-1", "--out", str(report))[0] == 0
    out = tmp_path / "ids.json"
    code, _, err = cli(capsys, identified, USER, "export", "identifications", "--out", str(out))
    assert code == 0, err
    data = json.loads(out.read_text())
    [record] = data["identifications"]
    assert (record["case_id"], record["reference_id"], record["name"]) == ("UP-1", "MP-012", "Person 012")
    assert (record["proposed_by"], record["verified_by"], record["verification"]) == (USER, "ben", "same person")
    assert record["report_sha256"] == hashlib.sha256(report.read_bytes()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", data["audit_head"]) and "DNA" in data["notice"]
    code, _, _ = cli(capsys, identified, USER, "export", "identifications", "--format", "csv", "--out",
                     str(tmp_path / "ids.csv"))  # fmt: skip
    with (tmp_path / "ids.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["case_id"], r["reference_id"], r["verified_by"]) for r in rows] == [("UP-1", "MP-012", "ben")]
    exports = [e for e in as_json(capsys, identified, USER, "audit", "log") if e["action"] == "export.create"]
    assert [e["details"]["sha256"] for e in exports] == [
        hashlib.sha256(p.read_bytes()).hexdigest() for p in (out, tmp_path / "ids.csv")
    ]


def test_a_proposal_not_yet_verified_is_not_exported(casework, tmp_path, capsys):  # noqa: F811
    propose(capsys, casework)
    out = tmp_path / "ids.json"
    assert cli(capsys, casework, USER, "export", "identifications", "--out", str(out))[0] == 0
    assert json.loads(out.read_text())["identifications"] == []


# -- users and roles on the command line ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("user", "args", "message"),
    [
        ("", ("case", "list"), r"not logged in: log in with `nomina login`, or set NOMINA_TOKEN"),
        ("", ("reference", "show", "R1"), r"not logged in"),
        ("ghost", ("case", "show", "C1"), r"not logged in"),  # a made-up name has no credentials
        (
            "vic",
            ("reference", "add", "R2", "{photo}", "--name", "Bo", *PROV),
            r"does not have the examiner or intake role",
        ),
        ("vic", ("search", "C1"), r"does not have the examiner role"),
        ("eve", ("reference", "delete", "R1", "--reason", "test"), r"does not have the admin role"),
        ("eve", ("case", "delete", "C1", "--reason", "test"), r"does not have the admin role"),
        ("eve", ("user", "add", "mal", "--role", "admin"), r"does not have the admin role"),
        ("eve", ("config", "quality_gate", "off"), r"does not have the admin role"),
        ("vic", ("report", "C1", "--out", "{out}"), r"does not have the examiner or auditor role"),
        ("vic", ("export", "identifications", "--out", "{out}"), r"does not have the examiner role"),
        ("old", ("case", "list"), r"user 'old' is disabled"),
    ],
)
def test_commands_refuse_without_a_user_holding_the_role(cli_ws, faces_dir, capsys, monkeypatch, user, args, message):
    for name, role in (("vic", "verifier"), ("eve", "examiner"), ("old", "examiner")):
        assert run(capsys, "user", "add", name, "--role", role, "-w", cli_ws)[0] == 0
    assert run(capsys, "user", "disable", "old", "-w", cli_ws)[0] == 0
    monkeypatch.delenv(ACT_AS)
    before = snapshot(cli_ws)
    stand_in = {"{photo}": str(london(faces_dir, "002")), "{out}": str(cli_ws.parent / "out.html")}
    args = tuple(stand_in.get(a, a) for a in args)
    code, _, err = run(capsys, *(("--as", user) if user else ()), *args, "-w", cli_ws)
    assert code == 1
    assert_one_error_line(err, message)
    assert snapshot(cli_ws) == before
    assert not (cli_ws.parent / "out.html").exists()


def test_init_makes_the_first_admin_then_only_admins_manage_users(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(ACT_AS)
    ws = tmp_path / "ws"
    code, out, _ = run(capsys, "init", ws, "--admin", "zoe", "--password-stdin", stdin="a long passphrase\n")
    assert code == 0 and "First user: zoe (admin, examiner)" in out
    code, _, err = run(capsys, "user", "add", "yan", "--role", "examiner", "-w", ws)
    assert_one_error_line(err, r"not logged in: log in with `nomina login`, or set NOMINA_TOKEN")
    assert run(capsys, "--as", "zoe", "user", "add", "yan", "--role", "examiner,verifier", "-w", ws)[0] == 0
    code, _, err = run(capsys, "--as", "yan", "user", "add", "mal", "--role", "admin", "-w", ws)
    assert_one_error_line(err, r"user 'yan' does not have the admin role")
    code, _, err = run(capsys, "--as", "zoe", "user", "disable", "zoe", "-w", ws)
    assert_one_error_line(err, r"user 'zoe' is the last active admin")
    users = {u["name"]: u for u in json.loads(run(capsys, "user", "list", "--json", "--as", "yan", "-w", ws)[1])}
    assert users["yan"]["roles"] == ["examiner", "verifier"] and users["yan"]["created_by"] == "zoe"
    assert users["zoe"]["has_password"] and not users["yan"]["has_password"]  # yan was added by a script


# -- the audit trail on the command line ---------------------------------------------------------------
def test_every_action_is_in_the_trail_in_order(cli_ws, faces_dir, capsys):
    steps = [
        ("reference", "show", "R1"),
        ("reference", "update", "R1", "--notes", "tattoo on left arm"),
        ("search", "C1"),
        ("search", "show", "1"),
        ("case", "show", "C1"),
        ("config", "quality_gate", "strict"),
    ]
    for step in steps:
        code, _, err = run(capsys, *step, "-w", cli_ws)
        assert code == 0, (step, err)
    trail = json.loads(run(capsys, "audit", "log", "--json", "-w", cli_ws)[1])
    actions = [e["action"] for e in trail]
    # the workspace's first settings are in the trail from the start, each by whoever made it
    made = ["setting.change"] * 4
    assert actions == [
        "user.add", *made, "token.create", "reference.create", "case.create", "reference.view", "reference.update",
        "search.run", "search.view", "case.view", "setting.change",
    ]  # fmt: skip
    assert [e["details"]["initial"] for e in trail if e["action"] == "setting.change"] == [True] * 4 + [False]
    assert all(e["actor"] == USER for e in trail[5:])  # the first user and settings by the OS user
    assert trail[9]["details"] == {"fields": ["notes"]}  # the field's name, never its value
    assert "tattoo" not in json.dumps(trail)
    assert [e["seq"] for e in trail] == list(range(1, 15))
    code, out, _ = run(capsys, "audit", "verify", "-w", cli_ws)
    assert code == 0 and re.search(r"audit trail intact: 15 events, head [0-9a-f]{64}", out)


@pytest.mark.parametrize(
    ("tamper", "broken"),
    [
        ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3", r"broken at seq 3: contents do not match"),
        ("DELETE FROM audit_events WHERE seq = 2", r"broken at seq 2: seq 2 missing"),
        ("DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)", r"newest events deleted"),
    ],
)
def test_audit_verify_names_the_first_broken_link_and_exits_1(cli_ws, capsys, tamper, broken):
    assert run(capsys, "search", "C1", "-w", cli_ws)[0] == 0
    with raw_database(cli_ws) as db:  # as someone holding the file, or the server's superuser, could
        drop_trigger(db, "audit_events", "audit_events_no_update")
        drop_trigger(db, "audit_events", "audit_events_no_delete")
        db.execute(tamper)
    code, out, _ = run(capsys, "audit", "verify", "-w", cli_ws)
    assert code == 1
    assert re.search(broken, out), out
