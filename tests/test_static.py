"""Static checks: mypy --strict on the library, ruff on everything (settings in pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

# mypy alone takes about 20 s from a cold cache: run by CI (`pytest -m slow`), not by the default run.
pytestmark = pytest.mark.slow


def test_mypy_strict_passes_on_the_library(monkeypatch):
    api = pytest.importorskip("mypy.api", reason="mypy comes with the dev extra")
    monkeypatch.chdir(REPO)
    out, err, status = api.run(["--no-error-summary", "--config-file", str(REPO / "pyproject.toml")])
    assert status == 0, out + err


def test_ruff_finds_nothing_to_fix():
    import shutil
    import subprocess
    import sys

    beside = Path(sys.executable).parent / "ruff"  # the environment running the tests
    ruff = str(beside) if beside.exists() else shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff comes with the dev extra")
    for args in (["check"], ["format", "--check"]):
        done = subprocess.run([ruff, *args, "src", "tests", "bench"], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
