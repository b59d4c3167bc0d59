"""The examiner workflow end to end, as users run it: conclusions, a proposal, blind verification by a
second person, disagreement, withdrawal, and every attempt to reach an identification another way."""

from __future__ import annotations

import json
import re
from pathlib import Path

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

from nomina import CaseFields, PhotoInput, Workspace
from nomina.errors import Conflict, InvalidField, PermissionDenied


@pytest.fixture(scope="session")
def casework_template(tmp_path_factory, faces_dir: Path) -> Path:
    def build(ws: Path) -> None:
        assert run(None, "init", ws)[0] == 0
        for ident in ("011", "012", "013"):
            args = ("reference", "add", f"MP-{ident}", london(faces_dir, ident), "--name", f"Person {ident}", *PROV)
            assert run(None, *args, "-w", ws)[0] == 0
        assert run(None, "case", "add", "UP-1", london(faces_dir, "012", "smiling"), "-w", ws)[0] == 0
        for name, roles in (("ben", "verifier"), ("cy", "examiner,verifier"), ("dee", "examiner")):
            assert run(None, "user", "add", name, "--role", roles, "-w", ws)[0] == 0
        code, out, _ = run(None, "search", "UP-1", "--json", "-w", ws)
        assert json.loads(out)["candidates"][0]["reference_id"] == "MP-012"

    return build_once(tmp_path_factory, "casework", build)


@pytest.fixture()
def casework(casework_template: Path, tmp_path: Path) -> Path:
    """ana (admin, examiner) enrols three references and one case and searches it (search 1);
    ben is a verifier, cy an examiner and verifier, dee an examiner. Made with the command line once per
    session; each test has its own copy (tmp_path / "ws")."""
    return copy_workspace(casework_template, tmp_path)


def cli(capsys, ws: Path, user: str, *args: str) -> tuple[int, str, str]:
    return run(capsys, "--as", user, *args, "-w", ws)


def as_json(capsys, ws: Path, user: str, *args: str) -> dict:
    code, out, err = cli(capsys, ws, user, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def propose(capsys, ws: Path, user: str = USER, reference: str = "MP-012") -> None:
    code, _, err = cli(capsys, ws, user, "identification", "propose", "UP-1", reference, "--reasons", "ears, scar")
    assert code == 0, err


@pytest.mark.slow  # over a second
def test_agreement_after_blind_verification_identifies_the_case(casework, capsys):
    ws = casework
    for rank, conclusion in ((1, "possible-match"), (2, "excluded")):
        code, _, err = cli(capsys, ws, USER, "search", "conclude", "1", "--rank", str(rank), "--conclusion",
                           conclusion, "--reasons", "compared eyes, nose, ears")  # fmt: skip
        assert code == 0, err
    propose(capsys, ws)
    assert as_json(capsys, ws, USER, "case", "show", "UP-1")["status"] == "proposed"

    # ben, the verifier, sees the case and the proposed reference but not ana's conclusions or reasons
    seen = as_json(capsys, ws, "ben", "search", "show", "1")
    assert seen["conclusions_hidden"] is True and all(c["conclusions"] == [] for c in seen["candidates"])
    pending = as_json(capsys, ws, "ben", "identification", "show", "UP-1")["current"]
    assert pending["reference_id"] == "MP-012" and pending["blind"] is True
    assert pending["proposed_by"] is None and pending["reasons"] is None
    trail = as_json(capsys, ws, "ben", "audit", "log", "--case", "UP-1")
    hidden = [e for e in trail if e["action"] in ("conclusion.record", "identification.propose")]
    assert len(hidden) == 3 and all(e["actor"] == "(hidden until verified)" for e in hidden)
    assert "possible match" not in json.dumps(trail) and "ears, scar" not in json.dumps(trail)
    # ana, the proposer, is not blind
    mine = as_json(capsys, ws, USER, "search", "show", "1")
    assert mine["candidates"][0]["conclusions"][0]["conclusion"] == "possible match"

    code, out, err = cli(capsys, ws, "ben", "identification", "verify", "UP-1", "--conclusion", "same-person",
                         "--reasons", "same ear shape", "--reference", "MP-012")  # fmt: skip
    assert code == 0, err
    assert "Case UP-1 is identified as reference MP-012 (verified)" in out
    done = as_json(capsys, ws, "ben", "identification", "show", "UP-1")
    assert done["status"] == "identified"
    assert done["current"]["proposed_by"] == USER and done["current"]["reasons"] == "ears, scar"
    assert done["current"]["verification"]["verifier"] == "ben"
    assert as_json(capsys, ws, "ben", "search", "show", "1")["conclusions_hidden"] is False
    assert as_json(capsys, ws, USER, "case", "list")[0]["status"] == "identified"
    actions = [e["action"] for e in as_json(capsys, ws, USER, "audit", "log", "--case", "UP-1")]
    assert actions.count("conclusion.record") == 2
    assert "identification.propose" in actions and "identification.verify" in actions


def test_disagreement_keeps_both_conclusions_and_sends_the_case_back_to_review(casework, capsys):
    ws = casework
    propose(capsys, ws)
    code, out, _ = cli(capsys, ws, "ben", "identification", "verify", "UP-1", "--conclusion", "different-people",
                       "--reasons", "different nose", "--reference", "MP-012")  # fmt: skip
    assert code == 0 and "back to review" in out
    data = as_json(capsys, ws, USER, "identification", "show", "UP-1")
    assert data["status"] == "disputed"
    assert data["current"]["reasons"] == "ears, scar"
    assert data["current"]["verification"]["conclusion"] == "different people"
    # back to review: a new proposal needs the disputed one withdrawn first
    code, _, err = cli(capsys, ws, USER, "identification", "propose", "UP-1", "MP-011", "--reasons", "x")
    assert code == 1
    assert_one_error_line(err, r"case UP-1: an identification as MP-012 is already disputed; withdraw it first")
    code, _, err = cli(capsys, ws, "dee", "identification", "withdraw", "UP-1", "--reason", "verifier disagreed")
    assert code == 0, err
    assert as_json(capsys, ws, USER, "case", "show", "UP-1")["status"] == "open"
    propose(capsys, ws, "dee", "MP-012")
    history = as_json(capsys, ws, "dee", "identification", "show", "UP-1")["history"]
    assert [h["status"] for h in history] == ["withdrawn", "proposed"]
    assert history[0]["verification"]["verifier"] == "ben"  # the earlier conclusions are kept


def test_a_proposal_whose_reference_was_erased_cannot_be_verified(casework, capsys):
    """The verifier compares the case with the proposed reference's photos: once they are erased, no
    conclusion, agreeing or not, can be recorded; an examiner withdraws the proposal."""
    ws = casework
    propose(capsys, ws)
    code, _, err = cli(capsys, ws, USER, "reference", "delete", "MP-012", "--reason", "consent withdrawn")
    assert code == 0, err
    before = snapshot(ws)
    for conclusion in ("same-person", "different-people"):
        code, _, err = cli(capsys, ws, "ben", "identification", "verify", "UP-1", "--conclusion", conclusion,
                           "--reasons", "r", "--reference", "MP-012")  # fmt: skip
        assert code == 1
        assert_one_error_line(err, r"^error: case UP-1: reference MP-012, which this identification proposes, has "
                                   r"been erased: .* an examiner withdraws the identification")  # fmt: skip
    assert snapshot(ws) == before
    assert cli(capsys, ws, "dee", "identification", "withdraw", "UP-1", "--reason", "reference erased")[0] == 0
    assert as_json(capsys, ws, USER, "case", "show", "UP-1")["status"] == "open"


def test_a_verification_is_refused_when_the_proposal_changed_to_another_reference_meanwhile(casework, capsys):
    """The verifier compares UP-1 with MP-012; meanwhile the examiner withdraws and proposes MP-013. The
    verifier's "same person" must not be recorded against MP-013, a comparison they never made."""
    ws = casework
    propose(capsys, ws)
    shown = as_json(capsys, ws, "ben", "identification", "show", "UP-1")["current"]["reference_id"]
    assert shown == "MP-012"
    assert cli(capsys, ws, USER, "identification", "withdraw", "UP-1", "--reason", "wrong reference")[0] == 0
    propose(capsys, ws, reference="MP-013")
    before = snapshot(ws)
    code, _, err = cli(capsys, ws, "ben", "identification", "verify", "UP-1", "--conclusion", "same-person",
                       "--reasons", "ears", "--reference", shown)  # fmt: skip
    assert code == 1
    assert_one_error_line(err, r"^error: case UP-1: the identification awaiting verification is not of "
                               r"reference 'MP-012' .*look at the case again$")  # fmt: skip
    assert snapshot(ws) == before
    code, _, err = cli(capsys, ws, "ben", "identification", "verify", "UP-1", "--conclusion", "different-people",
                       "--reasons", "chin", "--reference", "MP-013")  # fmt: skip
    assert code == 0, err
    assert as_json(capsys, ws, USER, "case", "show", "UP-1")["status"] == "disputed"


def test_a_verification_that_does_not_name_the_reference_compared_is_refused(casework, capsys):
    """Without the reference, a verification would apply to whatever proposal is open when it is saved."""
    ws = casework
    propose(capsys, ws)
    before = snapshot(ws)
    code, _, err = cli(capsys, ws, "ben", "identification", "verify", "UP-1", "--conclusion", "same-person",
                       "--reasons", "ears")  # fmt: skip
    assert code == 2 and "Missing option '--reference'" in err
    assert snapshot(ws) == before
    with Workspace.open(ws, user="ben") as ben, pytest.raises(TypeError):
        ben.verify_identification("UP-1", "same person", "ears")  # type: ignore[call-arg]
    assert snapshot(ws) == before


@pytest.mark.slow  # over a second
def test_a_new_proposal_hides_the_earlier_ones_from_its_verifier(casework, capsys, tmp_path):
    """The earlier proposal of the same reference, its verifier's conclusion and the reason it was withdrawn
    would tell the next verifier what others concluded: they are hidden everywhere until the new proposal is
    verified, and an audit log of one user's events does not name its actor by listing hidden events."""
    ws = casework
    code, _, err = cli(capsys, ws, USER, "search", "conclude", "1", "--rank", "1", "--conclusion", "possible-match",
                       "--reasons", "SECRET-CONCLUSION")  # fmt: skip
    assert code == 0, err
    propose(capsys, ws)
    code, _, err = cli(capsys, ws, "ben", "identification", "verify", "UP-1", "--conclusion", "different-people",
                       "--reasons", "SECRET-VERIFIER", "--reference", "MP-012")  # fmt: skip
    assert code == 0, err
    code, _, err = cli(capsys, ws, "dee", "identification", "withdraw", "UP-1", "--reason", "SECRET-WITHDRAWAL")
    assert code == 0, err
    propose(capsys, ws, "dee", "MP-012")
    # only the proposer can write the report now: its event would name them
    assert cli(capsys, ws, "dee", "report", "UP-1", "--out", str(tmp_path / "UP-1.html"))[0] == 0
    secrets = ("SECRET-CONCLUSION", "SECRET-VERIFIER", "SECRET-WITHDRAWAL", "ears, scar", "different people")

    seen = as_json(capsys, ws, "cy", "identification", "show", "UP-1")
    assert [h["status"] for h in seen["history"]] == ["proposed"] and seen["hidden"] == 1
    listed = as_json(capsys, ws, "cy", "identification", "list")
    assert [i["status"] for i in listed] == ["proposed"]
    code, out, _ = cli(capsys, ws, "cy", "identification", "show", "UP-1")
    assert code == 0 and "1 earlier identification(s) hidden" in out
    trail = as_json(capsys, ws, "cy", "audit", "log", "--case", "UP-1")
    told = [e for e in trail if e["action"].startswith(("identification.", "conclusion.", "report."))]
    assert len(told) == 6 and all(e["actor"] == "(hidden until verified)" for e in told)
    with Workspace.open(ws, user="cy") as view:
        for user in (USER, "ben", "dee"):
            theirs = view.audit_log(user=user)
            assert not any(e.action.startswith(("identification.", "conclusion.")) for e in theirs), user
    shown = json.dumps([seen, listed, trail])
    assert not any(secret in shown for secret in secrets)

    # the proposer sees everything; once verified, everyone does
    mine = as_json(capsys, ws, "dee", "identification", "show", "UP-1")
    assert [h["status"] for h in mine["history"]] == ["withdrawn", "proposed"] and mine["hidden"] == 0
    code, _, err = cli(capsys, ws, "cy", "identification", "verify", "UP-1", "--conclusion", "same-person",
                       "--reasons", "ears", "--reference", "MP-012")  # fmt: skip
    assert code == 0, err
    after = as_json(capsys, ws, "cy", "identification", "show", "UP-1")
    assert after["hidden"] == 0 and after["history"][0]["verification"]["reasons"] == "SECRET-VERIFIER"
    with Workspace.open(ws, user="cy") as view:
        assert any(e.action == "identification.propose" for e in view.audit_log(user="dee"))


@pytest.mark.parametrize(
    ("user", "args", "message"),
    [
        # ana proposed: she may not verify (and has no verifier role either)
        (USER, ("identification", "verify", "UP-1"), r"user 'ana' does not have the verifier role"),
        # dee is an examiner only
        ("dee", ("identification", "verify", "UP-1"), r"user 'dee' does not have the verifier role"),
        # ben is a verifier only: he can neither propose nor record conclusions
        ("ben", ("identification", "propose", "UP-1", "MP-011", "--reasons", "x"), r"does not have the examiner role"),
        ("ben", ("search", "conclude", "1", "--rank", "1", "--conclusion", "excluded", "--reasons", "x"),
         r"does not have the examiner role"),
        # nobody named: refused
        ("", ("identification", "verify", "UP-1"), r"not logged in: log in with `nomina login`, or set NOMINA_TOKEN"),
        ("nobody", ("identification", "verify", "UP-1"), r"not logged in"),
    ],
)  # fmt: skip
def test_only_a_different_verifier_can_verify(casework, capsys, monkeypatch, user, args, message):
    ws = casework
    propose(capsys, ws)
    if user == "":
        monkeypatch.delenv(ACT_AS)
    before = snapshot(ws)
    if args[1] == "verify":
        args = (*args, "--conclusion", "same-person", "--reasons", "looks alike", "--reference", "MP-012")
    code, _, err = run(capsys, *(("--as", user) if user else ()), *args, "-w", ws)
    assert code == 1
    assert_one_error_line(err, message)
    assert snapshot(ws) == before


def test_the_proposer_can_never_verify_their_own_proposal_even_with_the_verifier_role(casework, capsys):
    ws = casework
    propose(capsys, ws, "cy")
    before = snapshot(ws)
    code, _, err = cli(capsys, ws, "cy", "identification", "verify", "UP-1", "--conclusion", "same-person",
                       "--reasons", "mine", "--reference", "MP-012")  # fmt: skip
    assert code == 1
    assert_one_error_line(err, r"case UP-1: cy proposed this identification; a different person must verify it")
    assert snapshot(ws) == before


def test_a_disabled_verifier_is_refused_and_a_verification_happens_once(casework, capsys):
    ws = casework
    propose(capsys, ws)
    assert cli(capsys, ws, USER, "user", "disable", "ben")[0] == 0
    verify = ("identification", "verify", "UP-1", "--conclusion", "same-person", "--reasons", "alike", "--reference",
              "MP-012")  # fmt: skip
    code, _, err = cli(capsys, ws, "ben", *verify)
    assert code == 1
    assert_one_error_line(err, r"user 'ben' is disabled")
    assert cli(capsys, ws, "cy", *verify)[0] == 0
    code, _, err = cli(capsys, ws, "cy", *verify)
    assert code == 1
    assert_one_error_line(err, r"an identification that is identified; there is nothing awaiting verification")


def test_identifications_only_come_from_reviewed_candidates(casework, faces_dir, capsys):
    ws = casework
    code, _, err = cli(capsys, ws, USER, "identification", "verify", "UP-1", "--conclusion", "same-person",
                       "--reasons", "x", "--reference", "MP-012")  # fmt: skip
    assert code == 1  # nothing proposed: nothing to verify (ana is no verifier either; cy is)
    code, _, err = cli(capsys, ws, "cy", "identification", "verify", "UP-1", "--conclusion", "same-person",
                       "--reasons", "x", "--reference", "MP-012")  # fmt: skip
    assert_one_error_line(err, r"case UP-1: no identification; there is nothing awaiting verification")
    code, _, err = cli(capsys, ws, USER, "identification", "propose", "UP-1", "MP-404", "--reasons", "x")
    assert_one_error_line(err, r"reference MP-404: no such reference")
    args = ("reference", "add", "MP-099", london(faces_dir, "014"), "--name", "Late", *PROV)
    assert cli(capsys, ws, USER, *args)[0] == 0  # enrolled after the search: never a candidate of it
    code, _, err = cli(capsys, ws, USER, "identification", "propose", "UP-1", "MP-099", "--reasons", "x")
    assert_one_error_line(err, r"reference MP-099 is not a candidate of any of its searches")
    code, _, err = cli(capsys, ws, USER, "search", "conclude", "1", "--rank", "9", "--conclusion", "excluded",
                       "--reasons", "x")  # fmt: skip
    assert_one_error_line(err, r"--rank: search 1 has no candidate at rank 9")
    code, _, err = cli(capsys, ws, USER, "search", "conclude", "1", "--rank", "1", "--conclusion", "match",
                       "--reasons", "x")  # fmt: skip
    assert_one_error_line(
        err, r"--conclusion: 'match' is not one of excluded, possible-match, insufficient-information"
    )
    code, _, err = cli(capsys, ws, USER, "search", "conclude", "1", "--rank", "1", "--conclusion", "excluded",
                       "--reasons", " ")  # fmt: skip
    assert_one_error_line(err, r"--reasons: required")


def test_no_other_api_call_changes_a_case_to_identified(ws, faces_dir):
    ws.add_case(CaseFields("UP-2"), [PhotoInput(london(faces_dir, "020", "smiling"))])
    with pytest.raises(InvalidField):
        ws.update_reference("nope", status="identified")
    with pytest.raises((PermissionDenied, Conflict)):
        ws.verify_identification("UP-2", "same person", "no proposal, no verifier role", "MP-020")
    assert ws.case("UP-2").status == "open"
    # In the library, only nomina.workflow.verify sets an identification's status to identified.
    src = Path(__file__).resolve().parents[1] / "src" / "nomina"
    setters = [
        f"{path.name}:{n}"
        for path in sorted(src.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"""\bstatus\s*=\s*(["']identified["']|.*["']identified["']\s+if\b)""", line)
    ]
    assert setters == ["workflow.py:" + str(_verify_line(src / "workflow.py"))], setters


def _verify_line(path: Path) -> int:
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def verify("))
    return next(i for i, line in enumerate(lines[start:], start + 1) if 'status = "identified"' in line)


@pytest.mark.slow
def test_one_users_events_are_paged_past_many_hidden_ones(casework, capsys):
    """A page of one user's events, for a blind verifier, is read a batch at a time until it is full: the
    proposer's newest visible event is found behind more hidden events than one batch holds."""
    ws = casework
    as_json(capsys, ws, "dee", "reference", "show", "MP-011")  # visible to ben: not the proposed reference
    propose(capsys, ws, "dee")
    with Workspace.open(ws, user="dee") as dee:
        for _ in range(230):  # views of the case under verification: hidden from ben
            dee.case("UP-1")
    with Workspace.open(ws, user="ben") as ben:
        (newest,) = ben.audit_log(user="dee", limit=1)
        assert (newest.action, newest.reference_id) == ("reference.view", "MP-011")
        assert [e.action for e in ben.audit_log(user="dee", limit=3)][-1] == "reference.view"
        assert all(e.case_id != "UP-1" for e in ben.audit_log(user="dee"))


@pytest.mark.slow  # about a second
def test_a_blind_verifier_cannot_tell_the_proposer_by_who_searched_or_looked_at_the_case(casework, capsys):
    """The proposer searches and looks at the case just before and after proposing: those events, and who ran
    the search, would name them next to the hidden proposal. Until the verification, the verifier sees
    no one's name on the case but their own."""
    ws = casework
    searched = as_json(capsys, ws, "dee", "search", "UP-1")["search_id"]
    as_json(capsys, ws, "dee", "case", "show", "UP-1")
    as_json(capsys, ws, "dee", "reference", "show", "MP-012")  # the proposed reference, looked at closely
    propose(capsys, ws, "dee")
    as_json(capsys, ws, "dee", "search", "show", str(searched))
    as_json(capsys, ws, "ben", "case", "show", "UP-1")

    with Workspace.open(ws, user="ben") as ben:
        trail = ben.audit_log(case_id="UP-1")
        assert {e.actor for e in trail} == {"ben", "(hidden until verified)"}
        # who looked at the reference proposed is hidden as well; another reference's trail is not
        assert {e.actor for e in ben.audit_log(reference_id="MP-012")} == {"(hidden until verified)"}
        assert "ana" in {e.actor for e in ben.audit_log(reference_id="MP-011")}
        # nor who enrolled it (often the proposer); another reference's photos still say
        assert {p.added_by for p in ben.reference("MP-012").photos} == {"(hidden until verified)"}
        assert {p.added_by for p in ben.reference("MP-011").photos} == {"ana"}
        assert all(e.os_user is None for e in trail if e.actor != "ben")
        assert not [e for e in ben.audit_log(user="dee") if e.case_id == "UP-1"]
        assert {s.user for s in ben.searches("UP-1")} == {"(hidden until verified)"}
        shown = ben.get_search(searched)
        assert (shown.user, shown.os_user) == ("(hidden until verified)", "(hidden until verified)")
        assert '"dee"' not in json.dumps([e.to_dict() for e in trail], default=str)  # (hashes may hold d-e-e)
        assert {p.added_by for p in ben.case("UP-1").photos} == {"(hidden until verified)"}
        # one user's newest events, a page at a time: the hidden ones are left out before the page is cut, so
        # a page is never short (or empty) because dee's newest event is one ben must not see
        (newest,) = ben.audit_log(user="dee", limit=1)
        assert newest.case_id != "UP-1" and newest.actor == "dee"
        assert ben.audit_log(user="dee", limit=1, before=trail[-1].seq) == [newest]
        # a hidden event's hash, which the log shows, cannot be matched by hashing guesses of who acted and
        # how: 128 random bits the log never shows are under it
        with raw_database(ws) as con:
            stored = [json.loads(d) for (d,) in con.execute("SELECT details FROM audit_events WHERE actor = 'dee'")]
        salts = [d["context"]["salt"] for d in stored]
        assert all(len(x) == 32 for x in salts) and len(set(salts)) == len(salts) >= 4
        assert not any(x in json.dumps([e.to_dict() for e in trail], default=str) for x in salts)
        ben.verify_identification("UP-1", "same person", "same ears", "MP-012")
        assert "dee" in {e.actor for e in ben.audit_log(case_id="UP-1")}  # no longer blind
        assert "dee" in {e.actor for e in ben.audit_log(reference_id="MP-012")}
        assert {p.added_by for p in ben.reference("MP-012").photos} == {"ana"}
        assert ben.get_search(searched).user == "dee"
    with Workspace.open(ws, user="dee") as dee:  # the proposer was never blind
        assert dee.searches("UP-1")[-1].user == "dee"


@pytest.mark.parametrize("first", ["cy", "dee"], ids=["cy-proposed", "cy-withdrew"])
def test_whoever_proposed_or_withdrew_an_earlier_identification_cannot_verify_the_next(casework, capsys, first):
    """cy, an examiner and verifier, withdraws a proposal (reading its proposer and reasons), or proposes and
    withdraws it; another examiner proposes the same again: cy is not blind to the case and cannot verify."""
    propose(capsys, casework, first)
    code, _, err = cli(capsys, casework, "cy", "identification", "withdraw", "UP-1", "--reason", "to look again")
    assert code == 0, err
    propose(capsys, casework, "ana")

    def verify(user: str) -> tuple[int, str]:
        code, _, err = cli(capsys, casework, user, "identification", "verify", "UP-1", "--conclusion", "same-person",
                           "--reasons", "ears match", "--reference", "MP-012")  # fmt: skip
        return code, err

    code, err = verify("cy")
    assert code != 0
    assert_one_error_line(err, "cy proposed or withdrew an earlier identification of this case")
    assert verify("ben") == (0, "")


@pytest.mark.parametrize(
    ("field", "value"),
    [("case_id", "UP-1\x1b[31m"), ("reference_id", "\u202eevil"), ("reference_id", "y" * 60_000), ("user", "ben\x00")],
)
def test_audit_log_filters_are_ids_and_nothing_else_reaches_the_trail(casework, field, value):
    """The filters of an audit reading are recorded in the trail, which keeps what it is given for good: a value
    that is no id (terminal escapes, bidirectional overrides, 60 KB) is refused by name and records nothing."""
    with Workspace.open(casework, user=USER) as ws:
        before = ws.audit_head()
        with pytest.raises(InvalidField, match=f"^{field}: "):
            ws.audit_log(**{field: value})
        assert ws.audit_head() == before


def test_audit_log_shows_what_the_trail_holds_without_obeying_it(casework, capsys):
    """Events written before ids were checked (or behind Nomina's back) may hold terminal escapes: the log
    shows them written out."""
    tamper_events = "UPDATE audit_events SET details = ? WHERE seq = (SELECT MAX(seq) FROM audit_events)"
    with raw_database(casework) as db:
        drop_trigger(db, "audit_events", "audit_events_no_update")
        db.execute(tamper_events, (json.dumps({"note": "\x1b[31mred\u202e"}),))
    code, out, _ = cli(capsys, casework, USER, "audit", "log", "--limit", "2")
    assert code == 0 and "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[31mred\\u202e" in out


def test_a_withdrawal_rewritten_in_the_database_does_not_make_its_withdrawer_a_verifier(casework, capsys):
    """cy withdrew dee's proposal, then writes someone else's name over the withdrawal in the database to pass
    the rule: the case is no longer as the trail left it, and the verification is refused."""
    propose(capsys, casework, "dee")
    code, _, err = cli(capsys, casework, "cy", "identification", "withdraw", "UP-1", "--reason", "to look again")
    assert code == 0, err
    propose(capsys, casework, "ana")
    with raw_database(casework) as db:
        db.execute("UPDATE identifications SET closed_by = 'ben' WHERE status = 'withdrawn'")
    code, _, err = cli(capsys, casework, "cy", "identification", "verify", "UP-1", "--conclusion", "same-person",
                       "--reasons", "ears match", "--reference", "MP-012")  # fmt: skip
    assert code != 0
    assert_one_error_line(err, r"^error: case UP-1: changed behind Nomina's back .*; not verified")
