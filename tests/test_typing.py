"""The library's type hints hold (mypy --strict on src/nomina, settings in pyproject.toml)."""

from __future__ import annotations

import pytest

from conftest import REPO


def test_mypy_strict_passes_on_the_library(monkeypatch):
    api = pytest.importorskip("mypy.api", reason="mypy comes with the dev extra")
    monkeypatch.chdir(REPO)
    out, err, status = api.run(["--no-error-summary", "--config-file", str(REPO / "pyproject.toml")])
    assert status == 0, out + err
