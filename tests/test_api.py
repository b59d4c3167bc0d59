"""The REST API (/api/v1): the whole workflow through it alone, its one error shape, paging, tokens, and
its description (/api/v1/openapi.json and the /api-docs page).

One workspace (a copy of the web test workspace) and one client serve the whole module; the tests that add
records use ids of their own, and the others count what is there rather than assume it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest
from conftest import WEB_PASSWORD, copy_workspace, london, web_login
from fastapi.testclient import TestClient

from nomina import Workspace
from nomina.roles import roles_for
from nomina.web import api as api_module
from nomina.web import create_app

API = "/api/v1"
PROVENANCE = {"source": "family", "supplied_by": "a sister", "legal_basis": "family request"}


@pytest.fixture(scope="module")
def api_ws(_web_ws_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workspace(_web_ws_template, tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def client(api_ws: Path) -> Iterator[TestClient]:
    app = create_app(api_ws)
    with TestClient(app) as test_client:
        yield test_client
    app.state.workspace.close()


@pytest.fixture(scope="module")
def tokens(client: TestClient) -> dict[str, dict[str, str]]:
    """An Authorization header for each user of the web test workspace."""
    ws: Workspace = client.app.state.workspace  # type: ignore[attr-defined]
    return {
        user: {"authorization": f"Bearer {ws.as_user(user).create_token('api tests').secret}"}
        for user in ("eve", "vic", "ian", "adm", "aud")
    }


def keys(data: Any) -> set[str]:
    """Every key of every object in ``data``, however deep."""
    if isinstance(data, dict):
        return set(data) | {k for v in data.values() for k in keys(v)}
    if isinstance(data, list):
        return {k for v in data for k in keys(v)}
    return set()


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    """``response`` is the API's one error shape, exactly, with ``status`` and ``code`` (and ``field``)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"], body
    assert set(body["error"]) == {"code", "message", "field"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    if field is not None:
        assert body["error"]["field"] == field, body
    return body["error"]


def degraded(faces_dir: Path, folder: Path) -> Path:
    """London 003 smiling as a poorer photo of the same person: scaled down, blurred, recompressed."""
    image = cv2.imread(str(london(faces_dir, "003", "smiling")))
    h, w = image.shape[:2]
    small = cv2.resize(image, (w * 3 // 5, h * 3 // 5), interpolation=cv2.INTER_AREA)
    path = folder / "found-003.jpg"
    cv2.imwrite(str(path), cv2.GaussianBlur(small, (0, 0), 1.2), [cv2.IMWRITE_JPEG_QUALITY, 70])
    return path


@pytest.mark.slow  # over a second
def test_the_whole_workflow_through_the_api(
    client: TestClient, tokens: dict[str, dict[str, str]], faces_dir: Path, tmp_path: Path
) -> None:
    eve, vic = tokens["eve"], tokens["vic"]
    neutral, smiling = london(faces_dir, "003"), london(faces_dir, "003", "smiling")

    # an examiner enrols a missing person with two photos
    files = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in (neutral, smiling)]
    fields = {"reference_id": "R3", "name": "Cara Example", "sex": "female", "birth_year": "1990", **PROVENANCE}
    added = client.post(f"{API}/references", headers=eve, data=fields, files=files)
    assert added.status_code == 201, added.text
    reference = added.json()
    assert reference["reference_id"] == "R3" and reference["birth_year"] == 1990
    assert [p["file_name"] for p in reference["photos"]] == [neutral.name, smiling.name]
    assert all(p["provenance"]["supplied_by"] == "a sister" and p["faces"] for p in reference["photos"])
    assert not keys(reference) & {"embedding", "vector", "data", "password_hash"}
    photo = client.get(f"{API}/references/R3/photos/1", headers=eve)
    assert photo.status_code == 200 and photo.content == neutral.read_bytes()
    assert photo.headers["content-type"] == "image/jpeg"
    assert photo.headers["content-disposition"] == f'attachment; filename="{neutral.name}"'

    # a case from another, poorer photo of the same person; searched
    found = degraded(faces_dir, tmp_path)
    case = client.post(
        f"{API}/cases",
        headers=eve,
        data={"case_id": "C3", "kind": "living", "found_at": "a station"},
        files=[("photos", (found.name, found.read_bytes(), "image/jpeg"))],
    )
    assert case.status_code == 201, case.text
    assert case.json()["case_id"] == "C3" and case.json()["faces"] == 1
    search = client.post(f"{API}/cases/C3/searches", headers=eve, json={"top": 10})
    assert search.status_code == 201, search.text
    result = search.json()
    assert result["case_id"] == "C3" and result["settings"]["top"] == 10
    ranks = {c["reference_id"]: c["rank"] for c in result["candidates"]}
    assert "R3" in ranks, result["candidates"]
    assert ranks["R3"] == 1, ranks
    search_id = result["search_id"]

    # the examiner's conclusion, with a checklist, then the proposal
    checklist = {"eyes": {"finding": "similar", "note": "same eyelid crease"}, "ears": {"finding": "not visible"}}
    concluded = client.post(
        f"{API}/searches/{search_id}/conclusions",
        headers=eve,
        json={"rank": ranks["R3"], "conclusion": "possible match", "reasons": "ear and chin", "checklist": checklist},
    )
    assert concluded.status_code == 201, concluded.text
    assert concluded.json()["checklist"] == {
        "eyes": {"finding": "similar", "note": "same eyelid crease"},
        "ears": {"finding": "not visible", "note": ""},
    }
    proposed = client.post(
        f"{API}/cases/C3/identification", headers=eve, json={"reference_id": "R3", "reasons": "see conclusion"}
    )
    assert proposed.status_code == 201, proposed.text
    assert proposed.json()["status"] == "proposed" and proposed.json()["proposed_by"] == "eve"

    # the verifier sees the proposal blind: no proposer, no reasons, no examiner's conclusion
    seen = client.get(f"{API}/cases/C3/identification", headers=vic).json()
    assert seen["status"] == "proposed"
    assert seen["current"]["blind"] is True
    assert seen["current"]["proposed_by"] is None and seen["current"]["reasons"] is None
    assert "eve" not in json.dumps(seen) and "see conclusion" not in json.dumps(seen)
    shown = client.get(f"{API}/searches/{search_id}", headers=vic).json()
    assert shown["conclusions_hidden"] is True
    assert all(c["conclusions"] == [] for c in shown["candidates"])
    assert "ear and chin" not in json.dumps(shown)
    listed = client.get(f"{API}/identifications", headers=vic, params={"status": "proposed"}).json()
    assert [(i["case_id"], i["proposed_by"]) for i in listed["items"]] == [("C3", None)]
    trail = client.get(f"{API}/audit", headers=vic, params={"case_id": "C3"}).json()
    assert "ear and chin" not in json.dumps(trail)

    # the proposer may not verify their own proposal; the verifier does
    assert_error(
        client.post(
            f"{API}/cases/C3/identification/verification",
            headers=eve,
            json={"conclusion": "same person", "reasons": "x", "reference_id": "R3"},
        ),
        403,
        "permission_denied",
    )
    answer = {"conclusion": "same person", "reasons": "ears, chin and eyelids agree"}
    # the verifier names the reference they compared: without it nothing is recorded
    unnamed = client.post(f"{API}/cases/C3/identification/verification", headers=vic, json=answer)
    assert_error(unnamed, 422, "invalid_field", "reference_id")
    stale = {**answer, "reference_id": "R1"}  # not what is proposed now: refused, not recorded against R3
    assert_error(
        client.post(f"{API}/cases/C3/identification/verification", headers=vic, json=stale),
        409,
        "conflict",
        "reference_id",
    )
    verified = client.post(
        f"{API}/cases/C3/identification/verification", headers=vic, json={**answer, "reference_id": "R3"}
    )
    assert verified.status_code == 201, verified.text
    assert verified.json()["status"] == "identified" and verified.json()["verification"]["verifier"] == "vic"
    assert verified.json()["proposed_by"] == "eve"  # no longer blind once verified

    # the report and the export, as files
    report = client.get(f"{API}/cases/C3/report", headers=eve, params={"format": "html"})
    assert report.status_code == 200, report.text
    assert report.headers["content-type"].startswith("text/html")
    assert report.headers["content-disposition"] == 'attachment; filename="nomina-report-C3.html"'
    assert "C3" in report.text and "R3" in report.text
    assert "same eyelid crease" in report.text  # the checklist of the conclusion
    exported = client.get(f"{API}/export", headers=eve, params={"format": "json"})
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/json"
    assert "attachment; filename=" in exported.headers["content-disposition"]
    rows = exported.json()["identifications"]
    assert [(r["case_id"], r["reference_id"]) for r in rows] == [("C3", "R3")]
    as_csv = client.get(f"{API}/export", headers=eve, params={"format": "csv"})
    assert [(r["case_id"], r["reference_id"]) for r in csv.DictReader(io.StringIO(as_csv.text))] == [("C3", "R3")]

    # all of it is in the audit trail, whose chain verifies
    events = client.get(f"{API}/audit", headers=tokens["aud"], params={"case_id": "C3", "limit": 500}).json()
    actions = [e["action"] for e in events["items"]]
    for action in ("conclusion.record", "identification.propose", "identification.verify", "report.create"):
        assert action in actions, actions
    verify = client.get(f"{API}/audit/verify", headers=tokens["aud"]).json()
    assert verify["ok"] is True and len(verify["head"]) == 64

    # an exhaustive search is recorded as one; the flag is a JSON boolean
    thorough = client.post(f"{API}/cases/C3/searches", headers=eve, json={"top": 10, "exhaustive": True})
    assert thorough.status_code == 201, thorough.text
    assert thorough.json()["settings"]["exhaustive"] is True and "exhaustive" not in result["settings"]
    bad = client.post(f"{API}/cases/C3/searches", headers=eve, json={"exhaustive": "yes"})
    assert bad.status_code == 422 and "exhaustive" in bad.text


@pytest.mark.slow  # about a second or more
def test_the_error_shape(
    client: TestClient, tokens: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    eve = tokens["eve"]
    # 401: no token, a malformed header, a session's secret instead of a token, the session cookie
    assert_error(client.get(f"{API}/me"), 401, "not_logged_in", "authorization")
    assert_error(client.get(f"{API}/me", headers={"authorization": "Basic ZXZlOng="}), 401, "not_logged_in")
    ws: Workspace = client.app.state.workspace  # type: ignore[attr-defined]
    session, _ = ws.login("eve", WEB_PASSWORD, "web")
    assert session.secret is not None
    assert_error(client.get(f"{API}/me", headers={"authorization": f"Bearer {session.secret}"}), 401, "not_logged_in")
    browser = TestClient(client.app)
    browser.cookies.set("nomina_session", session.secret)
    assert_error(browser.get(f"{API}/me"), 401, "not_logged_in")
    assert_error(client.get(f"{API}/me", headers={"authorization": "Bearer nmt_forged"}), 401, "not_logged_in")
    # 403: an intake clerk may not search, nor read cases; before the body is even looked at
    assert_error(client.post(f"{API}/cases/C1/searches", headers=tokens["ian"], json={}), 403, "permission_denied")
    assert_error(
        client.post(f"{API}/cases/C1/searches", headers=tokens["ian"], content=b"{not json"), 403, "permission_denied"
    )
    assert_error(client.get(f"{API}/cases", headers=tokens["ian"]), 403, "permission_denied")
    assert_error(
        client.post(f"{API}/users", headers=eve, json={"name": "x", "roles": "admin"}), 403, "permission_denied"
    )
    # 404: an unknown record, an unknown route
    assert_error(client.get(f"{API}/cases/NOPE", headers=eve), 404, "not_found")
    assert_error(client.get(f"{API}/references/R1/photos/9", headers=eve), 404, "not_found", "number")
    assert_error(client.get(f"{API}/nothing-here", headers=eve), 404, "not_found")
    assert_error(client.put(f"{API}/cases/C1", headers=eve), 405, "method_not_allowed")
    # 422: a field that is wrong, however it is wrong
    bad_year = client.post(
        f"{API}/references", headers=eve, data={"reference_id": "RX", "name": "X", "birth_year": "soon"}
    )
    assert_error(bad_year, 422, "invalid_field", "birth_year")
    assert_error(client.get(f"{API}/references", headers=eve, params={"size": 501}), 422, "invalid_field", "size")
    assert_error(client.get(f"{API}/references", headers=eve, params={"page": 0}), 422, "invalid_field", "page")
    assert_error(client.get(f"{API}/searches/{2**70}", headers=eve), 422, "invalid_field", "search_id")
    url = f"{API}/searches/1/conclusions"
    assert_error(client.post(url, headers=eve, json=[1, 2]), 422, "invalid_field", "body")
    oops = client.post(url, headers={**eve, "content-type": "application/json"}, content=b"{oops")
    assert_error(oops, 422, "invalid_field", "body")
    assert_error(
        client.post(url, headers={**eve, "content-type": "application/json"}, content=b'{"rank": NaN}'),
        422,
        "invalid_field",
        "body",
    )
    # 413: a JSON body over 1 MB, whether declared or only counted as it arrives
    long_reasons = json.dumps({"rank": 1, "conclusion": "excluded", "reasons": "x" * 1024**2}).encode()
    declared = client.post(url, headers={**eve, "content-type": "application/json"}, content=long_reasons)
    assert "over 1,048,576 bytes" in assert_error(declared, 413, "image_too_large", "body")["message"]
    chunked = client.post(url, headers={**eve, "content-type": "application/json"}, content=iter([long_reasons]))
    assert_error(chunked, 413, "image_too_large", "body")
    twice = b'{"rank": 1, "rank": 2, "conclusion": "excluded", "reasons": "ears"}'  # which rank was meant?
    refused = client.post(url, headers={**eve, "content-type": "application/json"}, content=twice)
    assert "'rank' is given twice" in assert_error(refused, 422, "invalid_field", "body")["message"]
    good = {"conclusion": "excluded", "reasons": "different ears"}
    assert_error(client.post(url, headers=eve, json={**good, "rank": "1"}), 422, "invalid_field", "rank")
    assert_error(client.post(url, headers=eve, json={**good, "rank": True}), 422, "invalid_field", "rank")
    assert_error(client.post(url, headers=eve, json={**good, "rank": 10**30}), 422, "invalid_field", "rank")
    assert_error(client.post(url, headers=eve, json={**good, "rank": 1, "extra": 1}), 422, "invalid_field", "extra")
    assert_error(client.post(url, headers=eve, json={"rank": 1, "reasons": "x"}), 422, "invalid_field", "conclusion")
    checklist = {"rank": 1, **good, "checklist": {"tail": {"finding": "similar"}}}
    assert_error(client.post(url, headers=eve, json=checklist), 422, "invalid_field", "checklist")
    assert_error(client.patch(f"{API}/references/R1", headers=eve, json={"name": ["a"]}), 422, "invalid_field", "name")
    assert_error(client.patch(f"{API}/references/R1", headers=eve, json={"id": "R9"}), 422, "invalid_field", "id")
    adm, users = tokens["adm"], f"{API}/users"  # errors name the body's keys, not the library's arguments
    assert_error(
        client.post(users, headers=adm, json={"name": "", "roles": ["examiner"]}), 422, "invalid_field", "name"
    )
    assert_error(client.post(users, headers=adm, json={"name": "zed", "roles": ["god"]}), 422, "invalid_field", "roles")
    spaced = assert_error(
        client.post(users, headers=adm, json={"name": "a b", "roles": ["examiner"]}), 422, "invalid_field"
    )
    assert spaced["field"] == "name" and spaced["message"].startswith("name: "), spaced
    for key in ("reference_id", "self"):  # the names of the library call's own parameters
        assert_error(client.patch(f"{API}/references/R1", headers=eve, json={key: "R9"}), 422, "invalid_field", key)
    for digit in ("\u00b2", "\u0661"):  # a superscript two, an Arabic-Indic one: digits, but not 0-9
        superscript = client.post(
            f"{API}/references/R1/photos",
            headers=eve,
            data={"face": digit, **PROVENANCE},
            files=[("photos", ("a.jpg", b"not analysed", "image/jpeg"))],
        )
        assert_error(superscript, 422, "invalid_field", "face")
    eyes = {"left": [10, 10], "right": [11, 10]}
    assert_error(client.post(f"{API}/cases/C2/photos/1/eyes", headers=eve, json=eyes), 422, "invalid_field", "eyes")
    far = client.post(
        f"{API}/cases/C2/photos/1/eyes",
        headers={**eve, "content-type": "application/json"},
        content=b'{"left": [10, 10], "right": [1e999, 10]}',  # JSON's number read as infinity
    )
    assert "right: [inf, 10.0] is not a point" in assert_error(far, 422, "invalid_field", "right")["message"]
    assert_error(
        client.get(f"{API}/cases/C1/report", headers=eve, params={"format": "docx"}), 422, "invalid_field", "format"
    )
    # 409: a reference id that exists (refused before the photo is even analysed)
    duplicate = client.post(
        f"{API}/references",
        headers=eve,
        data={"reference_id": "R1", "name": "Ana Again", **PROVENANCE},
        files=[("photos", ("a.jpg", b"not analysed", "image/jpeg"))],
    )
    assert_error(duplicate, 409, "conflict")
    # 413: a photo over the size limit; the library's errors name the file, never the temporary folder
    monkeypatch.setattr(api_module, "MAX_PHOTO_BYTES", 1000)
    big = client.post(
        f"{API}/references",
        headers=eve,
        data={"reference_id": "RB", "name": "Big", **PROVENANCE},
        files=[("photos", ("big.jpg", b"x" * 1001, "image/jpeg"))],
    )
    assert_error(big, 413, "image_too_large", "photos")
    monkeypatch.undo()
    broken = client.post(
        f"{API}/references",
        headers=eve,
        data={"reference_id": "RB", "name": "Broken", **PROVENANCE},
        files=[("photos", ("../../broken.jpg", b"\xff\xd8\xff not really", "image/jpeg"))],
    )
    error = assert_error(broken, 422, "not_an_image", "photos")
    assert error["message"].startswith("broken.jpg:"), error
    assert "nomina-upload" not in error["message"]


def test_paging(client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    eve = tokens["eve"]
    everything = client.get(f"{API}/references", headers=eve, params={"size": 500}).json()
    total = everything["total"]
    assert total >= 2 and len(everything["items"]) == total
    ids = [r["reference_id"] for r in everything["items"]]
    pages = [client.get(f"{API}/references", headers=eve, params={"size": 1, "page": n}).json() for n in (1, 2)]
    assert [(p["page"], p["size"], p["total"]) for p in pages] == [(1, 1, total), (2, 1, total)]
    assert [p["items"][0]["reference_id"] for p in pages] == ids[:2]
    beyond = client.get(f"{API}/references", headers=eve, params={"size": 50, "page": 99}).json()
    assert beyond["items"] == [] and beyond["total"] == total
    assert [r["reference_id"] for r in client.get(f"{API}/references?q=BEA", headers=eve).json()["items"]] == ["R2"]
    assert [r["reference_id"] for r in client.get(f"{API}/references?q=r1", headers=eve).json()["items"]] == ["R1"]
    cases = client.get(f"{API}/cases", headers=eve, params={"status": "open", "size": 1}).json()
    assert cases["size"] == 1 and len(cases["items"]) == 1 and cases["total"] >= 2
    assert_error(client.get(f"{API}/cases", headers=eve, params={"status": "closed"}), 422, "invalid_field", "status")
    trail = client.get(f"{API}/audit", headers=eve, params={"limit": 3}).json()
    assert len(trail["items"]) == 3 and trail["next_before"] == trail["items"][0]["seq"]
    older = client.get(f"{API}/audit", headers=eve, params={"limit": 3, "before": trail["next_before"]}).json()
    assert all(e["seq"] < trail["next_before"] for e in older["items"]) and len(older["items"]) == 3


def test_tokens_users_and_eyes(client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    eve, adm = tokens["eve"], tokens["adm"]
    me = client.get(f"{API}/me", headers=eve).json()
    assert me["user"] == "eve" and me["roles"] == ["examiner"] and me["token"]["label"] == "api tests"
    made = client.post(f"{API}/tokens", headers=eve, json={"label": "a script", "expires_days": 30})
    assert made.status_code == 201, made.text
    secret, token_id = made.json()["secret"], made.json()["token"]["id"]
    own = client.get(f"{API}/tokens", headers={"authorization": f"Bearer {secret}"}).json()
    assert {t["label"] for t in own["items"]} >= {"a script", "api tests"} and "secret" not in keys(own)
    assert all(t["user"] == "eve" for t in own["items"])
    assert_error(client.get(f"{API}/tokens?all=true", headers=eve), 403, "permission_denied")
    assert_error(client.delete(f"{API}/tokens/{token_id}", headers=tokens["vic"]), 404, "not_found")  # not vic's
    assert client.delete(f"{API}/tokens/{token_id}", headers=eve).json()["revoked_by"] == "eve"
    assert_error(client.get(f"{API}/me", headers={"authorization": f"Bearer {secret}"}), 401, "not_logged_in")
    assert_error(
        client.post(f"{API}/tokens", headers=eve, json={"label": "x", "expires_days": 9999}), 422, "invalid_field"
    )
    for label, why in (("", "label: required"), ("x" * 101, "label: 101 characters"), ("a\u202eb", "not printable")):
        refused = client.post(f"{API}/tokens", headers=eve, json={"label": label})
        assert why in assert_error(refused, 422, "invalid_field", "label")["message"]

    added = client.post(
        f"{API}/users", headers=adm, json={"name": "zed", "roles": ["intake"], "password": WEB_PASSWORD}
    )
    assert added.status_code == 201, added.text
    assert added.json()["roles"] == ["intake"] and not keys(added.json()) & {"password", "password_hash"}
    assert client.put(f"{API}/users/zed/roles", headers=adm, json={"roles": ["auditor"]}).json()["roles"] == ["auditor"]
    reset = client.post(f"{API}/users/zed/password", headers=adm, json={"password": "another long password 456"})
    assert reset.json() == {"user": "zed", "sessions_ended": 0, "tokens_revoked": 0}
    ws: Workspace = client.app.state.workspace  # type: ignore[attr-defined]
    zed = {"authorization": f"Bearer {ws.as_user('zed').create_token('zed script').secret}"}
    assert client.get(f"{API}/me", headers=zed).json()["user"] == "zed"
    assert client.post(f"{API}/users/zed/disable", headers=adm).json()["active"] is False
    # a disabled user's token is known but acts no more: 403, not a request to log in again
    assert "disabled" in assert_error(client.get(f"{API}/audit", headers=zed), 403, "permission_denied")["message"]
    assert_error(client.post(f"{API}/users/zed/disable", headers=eve), 403, "permission_denied")
    users = client.get(f"{API}/users", headers=tokens["ian"], params={"size": 500}).json()
    assert "zed" in {u["name"] for u in users["items"]} and not keys(users) & {"password_hash", "password"}

    changed = client.patch(f"{API}/references/R2", headers=tokens["ian"], json={"last_seen_at": "Leeds", "sex": None})
    assert changed.status_code == 200, changed.text
    assert changed.json()["last_seen_at"] == "Leeds"

    marked = client.post(f"{API}/cases/C2/photos/1/eyes", headers=eve, json={"left": [360, 200], "right": [300, 201]})
    assert marked.status_code == 201, marked.text
    assert marked.json()["faces"] == 1 and marked.json()["photos"][0]["faces"][0]["manual"] is True

    # erasure: an admin's, with a reason
    erase = f"{API}/cases/C1"
    assert_error(client.request("DELETE", erase, headers=eve, json={"reason": "x"}), 403, "permission_denied")
    assert_error(client.request("DELETE", erase, headers=adm, json={"reason": " "}), 422, "invalid_field", "reason")
    erased = client.request("DELETE", erase, headers=adm, json={"reason": "entered twice"})
    assert erased.status_code == 200, erased.text
    assert erased.json()["case_id"] == "C1" and erased.json()["faces_removed"] == 1
    assert_error(client.get(erase, headers=eve), 404, "not_found")


def test_the_api_describes_itself(client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    schema = client.get(f"{API}/openapi.json", headers=tokens["ian"])
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert paths and all(p.startswith(f"{API}/") for p in paths)
    operations = [(m, p, op) for p, ops in paths.items() for m, op in ops.items()]
    assert len(operations) == sum(len(r.methods) for r in api_module.router.routes) >= 30  # type: ignore[attr-defined]
    for method, path, op in operations:
        assert op["x-nomina-roles"] == list(roles_for(op["x-nomina-action"])), (method, path)
        assert "Roles: " in op["description"], (method, path)
    assert paths[f"{API}/cases/{{case_id}}/searches"]["post"]["x-nomina-roles"] == ["examiner"]
    body = paths[f"{API}/searches/{{search_id}}/conclusions"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["schema"]["properties"]) == {"rank", "conclusion", "reasons", "checklist"}
    assert_error(client.get(f"{API}/openapi.json"), 401, "not_logged_in")
    assert client.get("/docs").status_code == 404 and client.get("/openapi.json").status_code == 404

    page_client = TestClient(client.app)
    web_login(page_client, "ian")
    page = page_client.get("/api-docs")
    assert page.status_code == 200, page.text
    assert f"{API}/cases/{{case_id}}/identification/verification" in page.text
    assert "identification.verify" in page.text and "<script>" not in page.text
    assert TestClient(client.app).get("/api-docs", follow_redirects=False).status_code == 303


def test_text_fields_of_an_upload_are_read_up_to_their_own_limit(
    client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    """A multipart field is refused by its own length check (in characters, naming it), not by the size of its
    part in bytes: 19,000 emoji are within the 20,000-character limit though they take 76,000 bytes."""
    eve = tokens["eve"]
    photo = [("photos", ("a.jpg", b"\xff\xd8\xff not analysed", "image/jpeg"))]
    within = client.post(
        f"{API}/cases", headers=eve, data={"case_id": "CT1", "notes": "\U0001f600" * 19_000}, files=photo
    )
    assert_error(within, 422, "not_an_image", "photos")  # the notes were read; the photo is what is wrong
    over = client.post(f"{API}/cases", headers=eve, data={"case_id": "CT1", "notes": "n" * 30_000}, files=photo)
    assert "notes: " in assert_error(over, 422, "invalid_field", "notes")["message"]
    huge = client.post(f"{API}/cases", headers=eve, data={"case_id": "CT1", "notes": "n" * 100_000}, files=photo)
    message = assert_error(huge, 422, "invalid_field")["message"]
    assert "text fields hold at most 20,000 characters" in message and "photos" not in message
    assert_error(client.get(f"{API}/cases/CT1", headers=eve), 404, "not_found")


def test_a_face_number_and_eyes_marked_by_hand_together_are_refused(
    client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    eve = tokens["eve"]
    photo = [("photos", ("a.jpg", b"\xff\xd8\xff not analysed", "image/jpeg"))]
    both = client.post(
        f"{API}/cases", headers=eve, data={"case_id": "CT2", "face": "1", "eyes": "100,100,200,100"}, files=photo
    )
    assert "not both" in assert_error(both, 422, "invalid_field", "face")["message"]
    assert_error(client.get(f"{API}/cases/CT2", headers=eve), 404, "not_found")


def test_photos_sent_as_text_or_as_no_file_are_named_for_what_they_are(
    client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    eve = tokens["eve"]
    as_text = client.post(f"{API}/cases", headers=eve, data={"case_id": "CT3", "photos": "a.jpg"})
    assert "send each photo as a file" in assert_error(as_text, 422, "invalid_field", "photos")["message"]
    nothing_chosen = client.post(
        f"{API}/cases", headers=eve, data={"case_id": "CT3"}, files=[("photos", ("", b"", "application/octet-stream"))]
    )
    assert (
        "at least one photo file is required" in assert_error(nothing_chosen, 422, "invalid_field", "photos")["message"]
    )
    assert_error(client.get(f"{API}/cases/CT3", headers=eve), 404, "not_found")
