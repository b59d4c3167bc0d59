"""At most ``workers`` photos are held decoded at once in a process, whoever asks (nomina.imaging.decoding_slot):
a flood of web requests for large photos cannot fill the server's memory."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_workspace, london, web_login
from fastapi.testclient import TestClient

from nomina import casefile, enrolment, imaging, workspace
from nomina.imaging import _Slots, decoding_slot
from nomina.web import create_app, media

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_no_more_than_the_limit_hold_a_slot_and_the_others_wait_their_turn():
    slots, lock = _Slots(), threading.Lock()
    inside, most, done = 0, 0, []

    def hold(i: int) -> None:
        nonlocal inside, most
        with slots(2):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.02)
            with lock:
                inside -= 1
        done.append(i)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(hold, range(12)))
    assert most == 2 and sorted(done) == list(range(12)) and slots.taken == 0


def test_a_worker_asking_again_at_once_cannot_keep_another_waiting():
    """An import's worker gives its slot back and asks again at once, for hours; a page asking meanwhile is
    served at the next turn, not whenever the worker happens to lose the race."""
    slots, started, turns = _Slots(), threading.Event(), []
    waited: list[int] = []

    def worker() -> None:
        for turn in range(60):
            with slots(1):
                turns.append(turn)
                started.set()
                time.sleep(0.005)

    def page() -> None:
        started.wait()
        asked_at = len(turns)
        with slots(1):
            waited.append(len(turns) - asked_at)

    threads = [threading.Thread(target=worker), threading.Thread(target=page)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert waited and waited[0] <= 3, waited  # the turns the page waited: one or two, not the 60


def test_a_failure_inside_gives_the_slot_back():
    slots = _Slots()
    with pytest.raises(imaging.NotAnImage), slots(1):
        imaging.decode_image(b"not a photo", "x.jpg", 10**6)
    assert slots.taken == 0
    with slots(1):  # would wait for ever had the slot been kept
        assert slots.taken == 1
        with slots(1):  # the thread holding the slot goes on in it
            assert slots.taken == 1
    assert slots.taken == 0


@pytest.fixture()
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Each decoding in the library and the web pages, as (where, slots taken at the time), recorded by the
    real decoder wrapped; each holds on briefly, so requests made at once overlap."""
    seen: list[tuple[str, int]] = []
    real = imaging.decode_image
    places = {m.__name__: m.__name__.rsplit(".", 1)[-1] for m in (enrolment, workspace, casefile, media)}

    def decode(*args: Any, **kwargs: Any) -> imaging.DecodedImage:
        frame = sys._getframe(1)  # the first caller outside the decoding helpers is where the photo is decoded
        while frame.f_globals.get("__name__") in ("nomina.imaging", "contextlib"):
            frame = frame.f_back  # type: ignore[assignment]
        seen.append((places.get(frame.f_globals.get("__name__", ""), "elsewhere"), decoding_slot.taken))
        time.sleep(0.05)
        return real(*args, **kwargs)

    monkeypatch.setattr(imaging, "decode_image", decode)
    return seen


@pytest.mark.slow
def test_every_decoding_for_a_person_holds_a_slot_and_requests_at_once_share_the_workers(
    decodes: list[tuple[str, int]], _web_ws_template: Path, tmp_path: Path, faces_dir: Path
) -> None:
    app = create_app(copy_workspace(_web_ws_template, tmp_path))
    workers = app.state.workspace.settings.workers
    try:
        eve = TestClient(app)
        csrf = web_login(eve, "eve")
        added = eve.post(
            "/references/new",
            data={"csrf": csrf, "reference_id": "R9", "name": "Cy", "source": "family", "supplied_by": "a son",
                  "legal_basis": "family request"},
            files=[("photos", ("003.jpg", london(faces_dir, "003").read_bytes(), "image/jpeg"))],
            follow_redirects=False,
        )  # fmt: skip
        assert added.status_code == 303, added.text
        eyes = {"csrf": csrf, "left_x": "330", "left_y": "200", "right_x": "250", "right_y": "200"}
        assert eve.post("/cases/C2/photos/1/eyes", data=eyes, follow_redirects=False).status_code == 303
        assert eve.get("/crops/case/C1/1").status_code == 200
        assert {where for where, _ in decodes} == {"enrolment", "workspace", "casefile"}

        decodes.clear()
        urls = ["/references/R1/photos/1", "/references/R2/photos/1", "/cases/C1/photos/1?reveal=1"] * 3

        def get(url: str) -> int:
            return eve.get(url).status_code

        with ThreadPoolExecutor(max_workers=len(urls)) as pool:
            assert list(pool.map(get, urls)) == [200] * len(urls)
        assert len(decodes) == len(urls) and {where for where, _ in decodes} == {"media"}
    finally:
        app.state.workspace.close()
    assert all(1 <= taken <= workers for _, taken in decodes), decodes
    assert decoding_slot.taken == 0
