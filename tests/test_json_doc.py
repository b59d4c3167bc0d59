"""docs/json.md is what `--json` prints: every key a command prints is documented, and the search table
names exactly the keys a search prints."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, run

DOC = (REPO / "docs" / "json.md").read_text()


def _words_in_code() -> set[str]:
    """Every identifier the doc writes as code (inside backticks or a ```json block)."""
    blocks = re.findall(r"```json\n(.*?)```", DOC, flags=re.S)
    spans = re.findall(r"`([^`]+)`", re.sub(r"```json\n.*?```", "", DOC, flags=re.S))
    return {w for span in spans + blocks for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span)}


def _keys(data: Any, prefix: str = "") -> set[str]:
    """Key paths of ``data``: ``a``, ``a.b``, ``list[].c``."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}{key}"
            found.add(path)
            if key not in ("details", "model", "calibration", "settings") or not isinstance(value, dict):
                found |= _keys(value, path + ".")
    elif isinstance(data, list):
        for item in data:
            found |= _keys(item, prefix.rstrip(".") + "[].")
    return found


def _table_keys(heading: str) -> set[str]:
    """The backticked keys in the first column of the table under ``heading``."""
    section = DOC.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (.+?) \|", section, flags=re.M)
    return {k for row in rows for k in re.findall(r"`([^`]+)`", row)}


@pytest.fixture()
def worked(cli_ws: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The CLI workspace with a search, a conclusion and a proposed identification."""
    for args in (
        ("user", "add", "ben", "--role", "verifier"),
        ("search", "C1"),
        ("search", "conclude", "1", "--rank", "1", "--conclusion", "possible-match", "--reasons", "ears"),
        ("identification", "propose", "C1", "R1", "--reasons", "ears, scar"),
    ):
        code, _, err = run(capsys, *args, "-w", cli_ws)
        assert code == 0, err
    return cli_ws


def _json(capsys: pytest.CaptureFixture[str], ws: Path, *args: str) -> Any:
    code, out, err = run(capsys, *args, "--json", "-w", ws)
    assert code == 0, err
    return json.loads(out)


def test_the_search_table_names_exactly_the_keys_a_search_prints(worked: Path, capsys: pytest.CaptureFixture[str]):
    printed = _json(capsys, worked, "search", "show", "1")
    table = _table_keys("## `nomina search CASE_ID --json`")
    documented_top = {k for k in table if "." not in k and "[" not in k}
    documented_candidate = {k.split("[].", 1)[1] for k in table if k.startswith("candidates[].")}
    assert set(printed) == documented_top
    assert set(printed["candidates"][0]) == documented_candidate


COMMANDS = [
    ("search", "C1"),
    ("search", "list"),
    ("reference", "show", "R1"),
    ("reference", "list"),
    ("case", "show", "C1"),
    ("case", "list"),
    ("identification", "show", "C1"),
    ("identification", "list"),
    ("user", "list"),
    ("whoami",),
    ("token", "create", "--label", "a script"),
    ("token", "list"),
    ("audit", "log"),
    ("audit", "verify"),
    ("info",),
    ("config",),
]


@pytest.mark.slow
def test_every_key_a_command_prints_is_in_the_json_doc(worked: Path, capsys: pytest.CaptureFixture[str]):
    documented = _words_in_code()
    missing = {}
    for args in COMMANDS:
        printed = _json(capsys, worked, *args)
        assert printed, f"nomina {' '.join(args)} --json printed nothing to check"
        keys = sorted(p for p in _keys(printed) if p.rsplit(".", 1)[-1].removesuffix("[]") not in documented)
        if keys:
            missing[" ".join(args)] = keys
    assert missing == {}, f"keys printed by --json that docs/json.md does not name: {missing}"
