"""Helpers of the browser tests (tests/test_browser.py) and of bench/screenshots.py.

- :func:`chromium` finds the system's Chromium (``NOMINA_CHROMIUM`` names another); Playwright drives it
  with ``executable_path``: no browser is ever downloaded.
- :func:`serve` runs the real application under uvicorn in a background thread, on a free local port.
- :class:`Shots` writes a screenshot of each page a test visits, and the pictures of the documentation
  (faces blurred) when asked to.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

#: The variables that steer the browser tests, read when this module is imported: the tests' own
#: environment has every NOMINA_* variable removed (tests/conftest.py).
SETTINGS = {
    name: os.environ.get(name)
    for name in ("NOMINA_CHROMIUM", "NOMINA_SKIP_BROWSER", "NOMINA_SCREENSHOTS", "NOMINA_DOC_SCREENSHOTS")
}

#: Where the system's Chromium usually is (Debian's chromium-headless-shell, then chromium).
CHROMIUM_CANDIDATES = ("/usr/bin/chromium-headless-shell", "/usr/bin/chromium", "/usr/bin/chromium-browser")

#: Blurs every picture of the page before a documentation screenshot: no face of the sample photos may be
#: shown there. Set through the CSSOM (element.style), which the pages' Content-Security-Policy allows,
#: where an injected <style> element would be refused.
BLUR_FACES = """() => {
  for (const e of document.querySelectorAll("img, image, canvas, video")) {
    const radius = Math.max(24, Math.round((e.clientWidth || 0) / 8));  // stronger on large pictures
    e.style.setProperty("filter", `blur(${radius}px)`, "important");
  }
}"""


def chromium() -> str | None:
    """The Chromium binary to drive: NOMINA_CHROMIUM, else the first of CHROMIUM_CANDIDATES present."""
    named = SETTINGS["NOMINA_CHROMIUM"]
    if named:
        return named if Path(named).is_file() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-headless-shell")


@contextmanager
def serve(workspace: Path, port: int = 0) -> Iterator[str]:
    """The application on ``workspace``, served by uvicorn in a thread (on a free port unless ``port`` is
    given); yields its base URL, and stops the server at the end."""
    import uvicorn

    from nomina.web import create_app

    app = create_app(workspace)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="nomina-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            app.state.workspace.close()
            raise RuntimeError(f"the test server did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    bound: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        app.state.workspace.close()


def screenshot_dir() -> Path:
    """Where the tests' screenshots go: NOMINA_SCREENSHOTS, else <repo>/.screenshots (not tracked)."""
    folder = Path(SETTINGS["NOMINA_SCREENSHOTS"] or REPO / ".screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Shots:
    """Screenshots of the pages a test visits: ``<folder>/<test>/<nn>-<name>.png``.

    With ``docs`` set (a folder, such as docs/img), :meth:`doc` also writes the documentation's picture
    ``web-<name>.png`` of the page, with every image blurred first."""

    def __init__(self, test: str, docs: Path | None = None) -> None:
        self.folder = screenshot_dir() / re.sub(r"[^A-Za-z0-9_.-]+", "_", test)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.docs = docs
        self.count = 0

    def __call__(self, page: Any, name: str) -> Path:
        """A full-page screenshot of ``page`` as it is now."""
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def doc(self, page: Any, name: str, shot: str | None = None, full_page: bool = False) -> Path | None:
        """The test's screenshot (called ``shot``, else ``name``), and when documentation pictures are asked
        for, ``web-<name>.png`` with every picture blurred (the sample photos must never appear in the
        repository)."""
        self(page, shot or name)
        if self.docs is None:
            return None
        page.evaluate(BLUR_FACES)
        page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
        page.wait_for_timeout(150)  # let the filter paint
        self.docs.mkdir(parents=True, exist_ok=True)
        path = self.docs / f"web-{name}.png"
        small_png(page.screenshot(full_page=full_page), path)
        return path


def small_png(data: bytes, path: Path) -> None:
    """Write the screenshot ``data`` as a PNG of 256 colours at most (a page's flat colours keep; the
    documentation's pictures stay well under 200 KB)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.convert("RGB").quantize(colors=256).save(path, optimize=True)


def skip_browser() -> bool:
    """NOMINA_SKIP_BROWSER=1: leave the browser tests out (they fail without a browser otherwise)."""
    return SETTINGS["NOMINA_SKIP_BROWSER"] == "1"


def docs_folder() -> Path | None:
    """docs/img when NOMINA_DOC_SCREENSHOTS=1 (the tests then also write the documentation's pictures)."""
    if SETTINGS["NOMINA_DOC_SCREENSHOTS"] == "1":
        return REPO / "docs" / "img"
    return None
