"""Regenerate the screenshots of docs/web.md (docs/img/web-*.png).

The browser tests (tests/test_browser.py) take them while they walk through the pages, when
NOMINA_DOC_SCREENSHOTS=1: the real server on the web test workspace, the system's Chromium, a 1280x800
window, and every photo on the page blurred before the picture is taken (the sample photos' licence
terms keep them out of the repository, and the pictures show the pages, not faces).

    .venv/bin/python bench/screenshots.py            # all the pictures
    .venv/bin/python bench/screenshots.py -k lockout # the pictures of one journey

Extra arguments go to pytest. The tests' own screenshots (every page they visit, faces not blurred) stay
in NOMINA_SCREENSHOTS or .screenshots/, which is not tracked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT = 200_000  # bytes: a picture larger than this is reported


def main(argv: list[str]) -> int:
    env = dict(os.environ, NOMINA_DOC_SCREENSHOTS="1")
    command = [sys.executable, "-m", "pytest", "-q", "-m", "slow", str(REPO / "tests" / "test_browser.py"), *argv]
    code = subprocess.call(command, cwd=REPO, env=env)
    pictures = sorted((REPO / "docs" / "img").glob("web-*.png"))
    for picture in pictures:
        size = picture.stat().st_size
        note = "  (larger than 200 KB)" if size > LIMIT else ""
        print(f"{picture.relative_to(REPO)}  {size // 1024} KB{note}")
    if not pictures:
        print("no picture written", file=sys.stderr)
        return code or 1
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
