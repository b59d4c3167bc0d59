"""The comparison page and the face crops: crops are guarded, aligned and blurred for post-mortem cases;
the page shows both faces and the tools; the checklist and conclusion are saved by examiners only, with
mistakes shown next to their field; the saved checklist reaches the identification report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import web_login
from fastapi.testclient import TestClient

from nomina import Workspace
from nomina.workflow import FEATURES, FINDINGS

PAGE = "/searches/1/candidates/1/compare"


def png(answer: Any) -> np.ndarray:
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["cache-control"] == "no-store"
    image = cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "-wal" not in p.name}


def test_crops_are_aligned_pngs_guarded_and_blurred_for_post_mortem_cases(web_app: Any, web_ws: Path) -> None:
    with Workspace.open(web_ws) as ws:
        r1_face = ws.as_user("eve").reference("R1").photos[0].faces[0].face_id
        r2_face = ws.as_user("eve").reference("R2").photos[0].faces[0].face_id
    before = files(web_ws)
    eve = TestClient(web_app)
    csrf = web_login(eve, "eve")

    blurred = png(eve.get("/crops/case/C1/1"))
    revealed = png(eve.get("/crops/case/C1/1?reveal=1"))
    assert blurred.shape == revealed.shape == (112, 112, 3)
    assert sharpness(revealed) > 5 * sharpness(blurred)  # C1 is post-mortem: blurred unless asked for
    large = png(eve.get("/crops/case/C1/1?reveal=1&size=336"))
    assert large.shape == (336, 336, 3)
    small_again = cv2.resize(large, (112, 112), interpolation=cv2.INTER_AREA)
    assert np.abs(small_again.astype(int) - revealed.astype(int)).mean() < 6  # the same face, scaled up

    reference = png(eve.get(f"/crops/reference/R1/{r1_face}"))
    assert reference.shape == (112, 112, 3) and sharpness(reference) > 5 * sharpness(blurred)
    assert not np.array_equal(reference, png(eve.get(f"/crops/reference/R2/{r2_face}")))

    # a face of another reference, a face number the case lacks, a size out of range
    assert eve.get(f"/crops/reference/R2/{r1_face}").status_code == 404
    assert eve.get(f"/crops/reference/R1/{r2_face}").status_code == 404
    assert eve.get("/crops/case/C1/2").status_code == 404
    assert eve.get("/crops/case/C1/0").status_code == 404
    assert eve.get("/crops/case/C9/1").status_code == 404
    assert eve.get("/crops/case/C1/1?size=1000").status_code == 422
    assert eve.get("/crops/case/C2/1").status_code == 404  # a photo with no face: no crop

    # the viewer's setting shows post-mortem crops unblurred without asking each time
    answer = eve.post("/account/preferences", data={"csrf": csrf, "show_post_mortem": "on"}, follow_redirects=False)
    assert answer.status_code == 303
    assert np.array_equal(png(eve.get("/crops/case/C1/1")), revealed)

    # intake never sees cases, but does see references; nobody unlogged sees anything
    ian = TestClient(web_app)
    web_login(ian, "ian")
    assert ian.get("/crops/case/C1/1?reveal=1").status_code == 403
    assert ian.get(f"/crops/reference/R1/{r1_face}").status_code == 200
    assert TestClient(web_app).get("/crops/case/C1/1", follow_redirects=False).status_code == 303
    assert files(web_ws) == before  # nothing cached on disk


def features_in(page: str) -> list[str]:
    return re.findall(r'<th scope="row">([^<]+)</th>', page)


def checked(page: str, name: str) -> str | None:
    found = re.search(rf'name="{name}" value="([^"]+)"[^>]*\bchecked\b', page)
    return found.group(1) if found else None


@pytest.mark.slow  # over a second
def test_the_page_compares_and_an_examiner_saves_the_checklist_and_conclusion(
    web_app: Any, web_ws: Path, tmp_path: Path
) -> None:
    eve = TestClient(web_app)
    csrf = web_login(eve, "eve")
    page = eve.get(PAGE)
    assert page.status_code == 200
    text = page.text
    assert 'src="/crops/case/C1/1?size=336"' in text and "/crops/reference/R1/" in text
    assert text.count('type="range"') == 3  # overlay opacity, wipe, flicker rate
    for word in ("overlay", "wipe", "flicker", "Zoom in", "Stop", "Show the faces"):
        assert word in text, word
    assert '<script src="/static/compare.js"></script>' in text and "style=" not in text
    assert features_in(text) == list(FEATURES)
    for i in range(len(FEATURES)):
        for finding in FINDINGS:
            assert f'name="finding-{i}" value="{finding}"' in text
    assert "Ana Example" in text and "0.9" in text and "Propose this identification" in text
    assert 'action="/cases/C1/identification"' in text and 'name="reference_id" value="R1"' in text
    assert eve.get("/searches/1/candidates/99/compare").status_code == 404

    form = {"csrf": csrf, "conclusion": "possible match", "reasons": "ears and nose alike"}
    form |= {"finding-0": "similar", "note-0": "oval", "finding-6": "similar", "note-6": "attached lobes"}
    form |= {"finding-9": "not visible"}

    # a finding that is not one of the choices: shown next to the checklist and its feature, form refilled
    bad = eve.post(PAGE, data={**form, "finding-4": "alike"}, follow_redirects=False)
    assert bad.status_code == 422
    assert re.search(r'id="err-checklist">[^<]*finding is not one of', bad.text)
    eyes = r"id=\"err-finding-4\">eyes: &#39;alike&#39; is not one of similar, different, not visible"
    assert re.search(eyes, bad.text)
    assert "ears and nose alike" in bad.text and checked(bad.text, "finding-6") == "similar"
    # no reasons: shown next to the reasons
    missing = eve.post(PAGE, data={**form, "reasons": " "}, follow_redirects=False)
    assert missing.status_code == 422 and re.search(r'id="err-reasons">reasons: required', missing.text)
    assert checked(missing.text, "conclusion") == "possible match"
    # no CSRF token, or a verifier, or intake: refused, nothing saved
    assert eve.post(PAGE, data={k: v for k, v in form.items() if k != "csrf"}).status_code == 403
    vic = TestClient(web_app)
    vic_csrf = web_login(vic, "vic")
    assert vic.post(PAGE, data={**form, "csrf": vic_csrf}, follow_redirects=False).status_code == 403
    vic_page = vic.get(PAGE).text
    assert "Save the conclusion" not in vic_page and "Propose this identification" not in vic_page
    ian = TestClient(web_app)
    web_login(ian, "ian")
    assert ian.get(PAGE).status_code == 403
    with Workspace.open(web_ws) as ws:
        assert ws.as_user("eve").get_search(1).candidates[0].conclusions == []

    saved = eve.post(PAGE, data=form, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/searches/1"
    with Workspace.open(web_ws) as ws:
        (conclusion,) = ws.as_user("eve").get_search(1).candidates[0].conclusions
    assert (conclusion.examiner, conclusion.conclusion) == ("eve", "possible match")
    assert conclusion.reasons == form["reasons"]
    assert conclusion.checklist == {
        "face shape": {"finding": "similar", "note": "oval"},
        "ears": {"finding": "similar", "note": "attached lobes"},
        "marks, scars, tattoos": {"finding": "not visible", "note": ""},
    }
    again = eve.get(PAGE).text  # the conclusion is listed, and the form starts from it
    assert "attached lobes" in again and checked(again, "finding-6") == "similar"

    # the checklist reaches the identification report
    with Workspace.open(web_ws) as ws:
        written = ws.as_user("eve").report("C1", tmp_path / "report.html")
    report = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", Path(written.path).read_text()))
    assert "Feature-by-feature comparison recorded by eve" in report
    assert "face shape similar oval ears similar attached lobes marks, scars, tattoos not visible" in report

    # once eve proposes the identification, the others are blind: no conclusion, no reasons
    with Workspace.open(web_ws) as ws:
        ws.as_user("eve").propose_identification("C1", "R1", "the ears")
    for user in ("vic", "root"):
        client = vic if user == "vic" else TestClient(web_app)
        if user == "root":
            web_login(client, "root")
        blind = client.get(PAGE).text
        assert "Hidden until the proposed identification" in blind
        assert "ears and nose alike" not in blind and "attached lobes" not in blind
    assert "attached lobes" in eve.get(PAGE).text
