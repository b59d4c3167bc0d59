"""`nomina --help` and `nomina --version` start without the heavy libraries (OpenCV, numpy, SQLAlchemy),
and so does importing the package or its error classes: each runs in a fresh interpreter here, and the test
asserts on the modules it loaded, never on timings (bench/startup.py measures those). They do without rich
too, which the commands load to print tables: it takes a fifth of the 0.3 s that `--help` may take."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

import nomina

HEAVY = {"cv2", "numpy", "sqlalchemy"}
WATCHED = HEAVY | {"rich"}

# Appended to the code under test: prints, as the last line of standard error, the watched modules loaded.
REPORT = (
    "\nimport json, sys\n"
    f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(WATCHED)!r}))), file=sys.stderr)"
)


def python(code: str) -> tuple[int, str, list[str]]:
    """Run ``code`` in a fresh interpreter: its exit code, standard output and the watched modules it loaded."""
    done = subprocess.run([sys.executable, "-c", code + REPORT], capture_output=True, text=True, timeout=120)
    assert done.stderr.strip(), done.stdout
    *_, last = done.stderr.strip().splitlines()
    return done.returncode, done.stdout, json.loads(last)


# Runs the command line as the `nomina` script does; a non-zero exit fails the code (exit code 1).
ENTRY = """
from nomina.cli import main
try:
    main({args!r})
except SystemExit as exc:
    assert not exc.code
"""


def entry_point(*args: str) -> str:
    return ENTRY.format(args=list(args))


def test_help_loads_no_heavy_library():
    code, out, loaded = python(entry_point("--help"))
    assert code == 0
    assert "Usage: nomina" in out and "reference" in out and "search" in out
    assert loaded == []


def test_version_loads_no_heavy_library():
    code, out, loaded = python(entry_point("--version"))
    assert (code, out.strip(), loaded) == (0, f"nomina {nomina.__version__}", [])


@pytest.mark.parametrize("module", ["nomina", "nomina.errors", "nomina.settings", "nomina.cli"])
def test_importing_the_light_modules_loads_no_heavy_library(module):
    code, _, loaded = python(f"import {module}")
    assert (code, loaded) == (0, [])


def test_the_installed_script_loads_no_heavy_library():
    """The `nomina` script itself (what a user runs), watched through Python's import-time report."""
    script = Path(sys.executable).parent / "nomina"
    if not script.exists():
        pytest.skip("the nomina script is not installed beside this Python")
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    for args in (["--help"], ["--version"]):
        done = subprocess.run([str(script), *args], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        report = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
        loaded = {line.rsplit("|", 1)[-1].strip() for line in report}
        assert "nomina.cli" in loaded
        assert {m.split(".")[0] for m in loaded} & WATCHED == set(), args


@pytest.mark.slow
def test_the_public_names_still_load_on_first_use():
    code, out, loaded = python(
        "import nomina\n"
        "print(nomina.__version__, sorted(n for n in nomina.__all__ if getattr(nomina, n, None) is None))\n"
        "from nomina import *\n"
        "from nomina.workspace import Workspace as W\n"
        "assert Workspace is W and nomina.Workspace is W\n"
        "assert set(nomina.__all__) <= set(dir(nomina))"
    )
    assert code == 0
    assert out.split() == [nomina.__version__, "[]"]
    assert HEAVY <= set(loaded)  # the library proper, loaded when a name is used


@pytest.mark.slow  # about a second or more
def test_no_module_takes_the_version_from_the_package_root():
    """`__version__` comes from nomina._version: a module importing it from the package root would load
    every public name with it, and would depend upward on the package."""
    upward = []
    for path in sorted((REPO / "src" / "nomina").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and any(a.name == "__version__" for a in node.names):
                from_root = node.module is None if node.level else node.module == "nomina"
                if from_root:
                    upward.append(str(path.relative_to(REPO)))
    assert upward == []
