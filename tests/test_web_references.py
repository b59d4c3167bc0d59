"""The reference pages and bulk imports of the web application (nomina.web.pages_references, nomina.web.jobs)."""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import stat
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import copy_workspace, london, web_login
from fastapi.testclient import TestClient

from nomina.web import create_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PROV = {"source": "family", "supplied_by": "a sister", "legal_basis": "family request"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, _web_ws_template: Path) -> Iterator[tuple[Any, Path]]:
    """One copy of the web test workspace and its application for the module (each test adds references
    of its own ids)."""
    path = copy_workspace(_web_ws_template, tmp_path_factory.mktemp("web_references"))
    app = create_app(path)
    yield app, path
    app.state.workspace.close()


def client_as(site: tuple[Any, Path], user: str) -> tuple[TestClient, str]:
    client = TestClient(site[0])
    return client, web_login(client, user)


def text(response: Any) -> str:
    return html.unescape(response.text)


def photo_file(path: Path, name: str | None = None) -> tuple[str, tuple[str, bytes, str]]:
    return ("photos", (name or path.name, path.read_bytes(), "image/jpeg"))


def test_the_list_searches_filters_and_pages(site: tuple[Any, Path]) -> None:
    client, _ = client_as(site, "aud")
    page = client.get("/references")
    assert page.status_code == 200
    assert 'href="/references/R1"' in page.text and 'href="/references/R2"' in page.text
    assert "Ana Example" in page.text and "Bea Example" in page.text
    assert "Add a reference" not in page.text  # an auditor changes nothing
    found = client.get("/references", params={"q": "bea"})
    assert 'href="/references/R2"' in found.text and 'href="/references/R1"' not in found.text
    assert client.get("/references", params={"q": "r1"}).text.count('href="/references/R') == 1
    assert "No reference matches" in client.get("/references", params={"photos": "no"}).text
    second = client.get("/references", params={"size": 1, "page": 2, "q": "example"})
    assert 'href="/references/R2"' in second.text and 'href="/references/R1"' not in second.text
    assert "2–2 of 2" in second.text and 'rel="prev"' in second.text and "q=example" in second.text
    bad = client.get("/references", params={"born_from": "soon"})
    assert bad.status_code == 422 and 'id="err-born_from"' in bad.text and "is not a year" in text(bad)


def test_a_reference_page_shows_its_photo_face_box_quality_and_trail(site: tuple[Any, Path], faces_dir: Path) -> None:
    client, _ = client_as(site, "eve")
    page = client.get("/references/R1")
    assert page.status_code == 200, page.text
    body = text(page)
    assert "Ana Example" in body and "a brother" in body and "family request" in body  # provenance
    svg = re.search(r'<svg class="boxes" viewBox="0 0 (\d+) (\d+)"[^>]*>(.*?)</svg>', page.text, re.S)
    assert svg, page.text
    rect = re.search(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', svg.group(3))
    assert rect and 0 < float(rect.group(3)) < int(svg.group(1))
    assert re.search(r'quality <strong class="score">[\d.]+</strong> / 100', page.text)
    assert "Audit trail" in body and "reference.create" in body  # eve may read the trail
    assert "Add photos" in body and "Edit the facts" in body
    photo = client.get("/references/R1/photos/1")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/png"
    assert photo.headers["cache-control"] == "no-store"
    pixels = cv2.imdecode(np.frombuffer(photo.content, np.uint8), cv2.IMREAD_COLOR)
    assert pixels.shape[1] == int(svg.group(1)) and pixels.shape[0] == int(svg.group(2))
    assert photo.content != london(faces_dir, "001").read_bytes()  # re-encoded, never the upload
    assert client.get("/references/R1/photos/2").status_code == 404
    assert client.get("/references/nobody").status_code == 404


def test_intake_adds_a_reference_with_two_photos_and_sees_no_audit_trail(
    site: tuple[Any, Path], faces_dir: Path
) -> None:
    client, csrf = client_as(site, "ian")
    form = client.get("/references/new")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    data = {"csrf": csrf, "reference_id": "R3", "name": "Cai Example", "sex": "male", "birth_year": "1990", **PROV}
    files = [photo_file(london(faces_dir, "003")), photo_file(london(faces_dir, "003", "smiling"))]
    answer = client.post("/references/new", data=data, files=files, follow_redirects=False)
    assert answer.status_code == 303, text(answer)
    assert answer.headers["location"] == "/references/R3?added=1"
    page = client.get(answer.headers["location"])
    body = text(page)
    assert "Reference added." in body and "Cai Example" in body and "1990" in body
    assert "003_neutral.jpg" in body and "003_smiling.jpg" in body and body.count("<rect ") == 2
    assert "Audit trail" not in body and "reference.create" not in body  # intake may not read the trail
    assert 'href="/audit"' not in page.text


def test_a_verifier_may_not_add_references(site: tuple[Any, Path], faces_dir: Path) -> None:
    client, csrf = client_as(site, "vic")
    assert client.get("/references/new").status_code == 403
    files = [photo_file(london(faces_dir, "004"))]
    data = {"csrf": csrf, "reference_id": "R4", "name": "Dee", **PROV}
    assert client.post("/references/new", data=data, files=files).status_code == 403
    assert client.get("/imports").status_code == 403
    assert client.get("/references/R4").status_code == 404
    assert "Add a reference" not in client.get("/references").text


def test_a_poor_photo_is_refused_next_to_it_and_enrolled_with_an_override(
    site: tuple[Any, Path], faces_dir: Path, tmp_path: Path
) -> None:
    client, csrf = client_as(site, "ian")
    tiny = tmp_path / "tiny.png"
    pixels = cv2.imread(str(london(faces_dir, "005")))
    cv2.imwrite(str(tiny), cv2.resize(pixels, None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA))
    data = {"csrf": csrf, "reference_id": "R5", "name": "Eda Example", **PROV}
    refused = client.post("/references/new", data=data, files=[photo_file(tiny)])
    assert refused.status_code == 422
    body = text(refused)
    assert re.search(
        r"<strong>tiny\.png</strong>: <span class=\"field-error\">tiny\.png: the face fails the standard "
        r"quality gate: face too small",
        body,
    ), body
    assert 'id="err-quality_override"' in refused.text and "attach the photos again" in body
    assert "nomina-upload-" not in body and str(tmp_path) not in body  # no server paths
    assert 'value="Eda Example"' in refused.text  # the fields are kept
    assert client.get("/references/R5").status_code == 404
    reason = "the only photo the family has"
    accepted = client.post(
        "/references/new", data={**data, "quality_override": reason}, files=[photo_file(tiny)], follow_redirects=False
    )
    assert accepted.status_code == 303, text(accepted)
    body = text(client.get("/references/R5"))
    assert f"Enrolled below the quality gate by ian: {reason}" in body
    assert "small face" in body  # the face's quality reasons


def test_a_bad_field_is_shown_next_to_it_and_nothing_is_stored(site: tuple[Any, Path], faces_dir: Path) -> None:
    client, csrf = client_as(site, "eve")
    data = {"csrf": csrf, "reference_id": "R6", "name": "Fay", "birth_year": "abc", **PROV, "supplied_by": ""}
    answer = client.post("/references/new", data=data, files=[photo_file(london(faces_dir, "006"))])
    assert answer.status_code == 422
    assert re.search(
        r'<span class="field-error" role="alert" id="err-birth_year">birth_year: \'abc\' is not a year', text(answer)
    ), text(answer)
    assert 'id="err-supplied_by"' in answer.text  # every field at fault, not just the first
    assert client.get("/references/R6").status_code == 404
    assert "R6" not in client.get("/references").text


def test_forms_without_the_csrf_token_are_refused(site: tuple[Any, Path], faces_dir: Path) -> None:
    client, _ = client_as(site, "ian")
    fields = [(k, (None, v)) for k, v in {"reference_id": "R7", "name": "Gus", **PROV}.items()]
    answer = client.post("/references/new", files=fields)  # multipart, as the form sends it, without the token
    assert answer.status_code == 403 and "CSRF" in answer.text
    photo = [photo_file(london(faces_dir, "007"))]
    assert client.post("/references/new", files=photo, headers={"x-csrf-token": "forged"}).status_code == 403
    assert client.post("/references/R1/edit", data={"name": "Changed"}).status_code == 403
    assert client.post("/imports", files=[("manifest", (None, "x"))]).status_code == 403
    assert client.get("/references/R7").status_code == 404
    assert "Ana Example" in client.get("/references/R1").text


def test_editing_changes_only_the_facts_given(site: tuple[Any, Path]) -> None:
    client, csrf = client_as(site, "ian")
    form = client.get("/references/R2/edit")
    assert 'value="Bea Example"' in form.text
    bad = client.post("/references/R2/edit", data={"csrf": csrf, "name": "Bea Example", "last_seen_on": "2999-01-01"})
    assert bad.status_code == 422 and 'id="err-last_seen_on"' in bad.text and "in the future" in text(bad)
    done = client.post(
        "/references/R2/edit",
        data={"csrf": csrf, "name": "Bea Example", "last_seen_at": "Harbour Street"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "Harbour Street" in text(client.get("/references/R2"))
    # a field sent in another encoding than UTF-8 is refused, not stored with replacement characters
    latin1 = f"csrf={csrf}&name=Bea+Example&last_seen_at=Caf%E9+Street".encode()
    garbled = client.post(
        "/references/R2/edit", content=latin1, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert garbled.status_code == 422 and 'id="err-last_seen_at"' in garbled.text and "not valid UTF-8" in garbled.text
    assert "Harbour Street" in text(client.get("/references/R2"))


# -- bulk imports ----------------------------------------------------------------------------------------
def manifest_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    w = csv.writer(out)
    w.writerow(["reference_id", "photo", "name", "source", "supplied_by", "legal_basis"])
    w.writerows(rows)
    return out.getvalue().encode()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


def test_a_bulk_import_runs_in_the_background_and_reports_failed_lines(site: tuple[Any, Path], faces_dir: Path) -> None:
    client, csrf = client_as(site, "ian")
    manifest = manifest_bytes(
        [
            ["R10", "photos/008.jpg", "Hal Example", "family", "a son", "family request"],
            ["R11", "photos/009.jpg", "Ivy Example", "family", "a son", "family request"],
            ["R12", "photos/missing.jpg", "Jo Example", "family", "a son", "family request"],
        ]
    )
    archive = zip_bytes(
        {
            "photos/008.jpg": london(faces_dir, "008").read_bytes(),
            "photos/009.jpg": london(faces_dir, "009").read_bytes(),
        }
    )
    files = {"manifest": ("batch.csv", manifest, "text/csv"), "photos": ("batch.zip", archive, "application/zip")}
    started = client.post("/imports", data={"csrf": csrf}, files=files, follow_redirects=False)
    assert started.status_code == 303, text(started)
    where = started.headers["location"]
    job = re.fullmatch(r"/imports/([0-9a-f]{32})", where)
    assert job, where
    deadline = time.monotonic() + 60
    while True:
        status = client.get(where + "/status").json()
        if status["state"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status["state"] == "done", status
    assert (status["done"], status["total"], status["added"], status["failed"]) == (3, 3, 2, 1)
    page = text(client.get(where))
    assert "<progress" in page and "batch.csv" in page and "failures.csv" in page
    assert 'http-equiv="refresh"' not in page  # only while it runs
    failures = client.get(where + "/failures.csv")
    assert failures.status_code == 200 and failures.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(failures.text)))
    assert rows[0] == ["line", "reference_id", "photo", "error"]
    assert rows[1][:3] == ["4", "R12", "photos/missing.jpg"] and rows[1][3] == "photos/missing.jpg: no such file"
    assert "Hal Example" in client.get("/references/R10").text
    folder = site[1] / "imports" / job.group(1)
    assert sorted(p.name for p in folder.iterdir()) == ["failures.csv", "status.json"]  # the photos are gone
    assert (
        oct(folder.stat().st_mode & 0o777) == "0o700"
        and oct((folder / "status.json").stat().st_mode & 0o777) == "0o600"
    )
    assert job.group(1) in client.get("/imports").text
    other, _ = client_as(site, "eve")  # another user sees neither the job nor its rows
    assert other.get(where + "/status").status_code == 404
    assert other.get(where + "/failures.csv").status_code == 404
    assert job.group(1) not in other.get("/imports").text
    assert client.get("/imports/../../etc/status").status_code == 404
    assert client.get("/imports/ABC/status").status_code == 404


def test_a_zip_leading_out_of_its_folder_is_refused(site: tuple[Any, Path], faces_dir: Path) -> None:
    client, csrf = client_as(site, "ian")
    before = sorted((site[1] / "imports").iterdir()) if (site[1] / "imports").exists() else []
    manifest = manifest_bytes([["R13", "evil.jpg", "Kim", "family", "a son", "family request"]])
    archive = zip_bytes({"../evil.jpg": london(faces_dir, "010").read_bytes()})
    files = {"manifest": ("evil.csv", manifest, "text/csv"), "photos": ("evil.zip", archive, "application/zip")}
    answer = client.post("/imports", data={"csrf": csrf}, files=files, follow_redirects=False)
    assert answer.status_code == 422
    assert re.search(r'id="err-photos">photos: \'evil.zip\' holds \'../evil.jpg\', a path leading out', text(answer))
    assert sorted((site[1] / "imports").iterdir()) == before  # the job's folder is removed again
    assert not any(p.name == "evil.jpg" for p in site[1].parent.rglob("*"))
    assert client.get("/references/R13").status_code == 404
    link = zipfile.ZipInfo("evil.jpg")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    linked = io.BytesIO()
    with zipfile.ZipFile(linked, "w") as zf:
        zf.writestr(link, "/etc/hostname")
    files["photos"] = ("link.zip", linked.getvalue(), "application/zip")
    answer = client.post("/imports", data={"csrf": csrf}, files=files, follow_redirects=False)
    assert answer.status_code == 422 and "a symbolic link; the zip was refused" in text(answer)
    # a manifest naming a file of the server (outside the zip) is refused before anything is read
    for outside in ("/etc/hostname", "../../nomina.db"):
        manifest = manifest_bytes([["R13", outside, "Kim", "family", "a son", "family request"]])
        files["manifest"] = ("evil.csv", manifest, "text/csv")
        answer = client.post("/imports", data={"csrf": csrf}, files=files, follow_redirects=False)
        assert answer.status_code == 400
        assert re.search(
            r'id="err-manifest">manifest: \'evil.csv\', line 2: photo .* is not a path inside the zip', text(answer)
        )
    assert sorted((site[1] / "imports").iterdir()) == before


def test_an_import_whose_server_stopped_shows_as_stopped(site: tuple[Any, Path]) -> None:
    client, _ = client_as(site, "ian")
    job = "ab" * 16
    folder = site[1] / "imports" / job
    folder.mkdir(parents=True)
    status = {
        "job": job,
        "user": "ian",
        "manifest": "old.csv",
        "archive": "old.zip",
        "started_at": "2026-01-01T00:00:00",
    }
    dead = max(os.getpid() + 100000, 4_000_000)  # no such process
    status |= {"state": "running", "done": 5, "total": 9, "pid": dead, "host": os.uname().nodename, "heartbeat": 0}
    (folder / "status.json").write_text(json.dumps(status))
    (folder / "photos").mkdir()
    answer = client.get(f"/imports/{job}/status").json()
    assert answer["state"] == "stopped" and "start the same manifest again" in answer["message"]
    assert "pid" not in answer
    assert not (folder / "photos").exists()


def test_an_id_that_looks_like_one_in_use_is_warned_of_at_once(site: tuple[Any, Path], faces_dir: Path) -> None:
    client, csrf = client_as(site, "eve")
    data = {"csrf": csrf, "reference_id": "R\u0661", "name": "Lookalike Example", **PROV}  # R, Arabic-Indic one
    answer = client.post("/references/new", data=data, files=[photo_file(london(faces_dir, "011"))])
    assert answer.status_code == 201, text(answer)
    body = text(answer)
    assert "Reference added." in body and "Warning:" in body and "'R1'" in body
    # found by the enrolment itself: the whole gallery was not listed again to find it
    recent = [e.action for e in site[0].state.workspace.as_user("root").audit_log(limit=5)]
    assert "reference.create" in recent and "reference.list" not in recent
