"""Nomina reports nothing to anyone: the libraries that run its networks (onnxruntime, OpenVINO) send or
store usage telemetry unless told not to (nomina.offline). Each test runs a fresh Python process, since what
these libraries do happens once a process, at import."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import london

pytestmark = pytest.mark.slow  # fresh processes that load the networks: about 3 s each; CI runs them

# Loads the default model and runs both networks on a real face, as every import and search does.
# The AF_UNIX socket at the start is a marker: strace must see it, or it saw nothing of the process.
ANALYSE = """
import socket, sys
socket.socket(socket.AF_UNIX).close()
from pathlib import Path
from nomina import FaceAnalyzer, load_model, load_settings
from nomina.imaging import decode_image
settings = load_settings()
image = decode_image(Path(sys.argv[1]).read_bytes(), sys.argv[1], settings.max_pixels)
faces = FaceAnalyzer(load_model(), settings).analyze(image)
assert len(faces) == 1 and faces[0].embedding.shape == (128,), faces
"""


def run(code: str, home: Path, *args: str, prefix: list[str] | None = None, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "ORT_", "CI"))}
    environment.update(HOME=str(home), **env)
    command = [*(prefix or []), sys.executable, "-c", code, *args]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, check=False)


def everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_the_networks_leave_nothing_in_the_home_folder(tmp_path, faces_dir):
    """onnxruntime keeps a device id and a database of usage events under ~/.cache/Microsoft, OpenVINO a
    client id and statistics under ~/intel, unless turned off before they load; asking onnxruntime for its
    telemetry does not turn it back on."""
    home = tmp_path / "home"
    home.mkdir()
    done = run(ANALYSE, home, str(london(faces_dir, "001")), ORT_DISABLE_TELEMETRY="0")
    assert done.returncode == 0, done.stderr
    assert everything_under(home) == []


def test_the_same_libraries_imported_without_nomina_write_there(tmp_path):
    """The check above can fail: without Nomina's switches, the same imports fill the home folder."""
    home = tmp_path / "home"
    home.mkdir()
    done = run("import onnxruntime, openvino", home)
    assert done.returncode == 0, done.stderr
    assert everything_under(home) != []


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (CI installs it)")
def test_no_network_connection_is_attempted_while_the_networks_load_and_run(tmp_path, faces_dir):
    home = tmp_path / "home"
    home.mkdir()
    trace = tmp_path / "trace"
    prefix = ["strace", "-f", "-qq", "-e", "trace=socket,connect,sendto,sendmsg", "-o", str(trace)]
    done = run(ANALYSE, home, str(london(faces_dir, "001")), prefix=prefix)
    assert done.returncode == 0, done.stderr
    calls = trace.read_text()
    assert "socket(AF_UNIX" in calls  # the marker: strace saw the process
    assert re.findall(r".*AF_INET.*", calls) == []


def test_onnxruntime_loaded_before_nomina_with_its_telemetry_on_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    code = "import onnxruntime\nimport nomina\nnomina.load_model()"
    done = run(code, home)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"nomina\.errors\.ModelError: onnxruntime was imported before Nomina with its usage .*", last)
    assert run(code, home, ORT_DISABLE_TELEMETRY="1").returncode == 0  # the program turned it off itself


def test_openvino_imported_after_nomina_has_only_its_converters_stub(tmp_path):
    code = (
        "import nomina, sys\nimport openvino.tools.ovc.telemetry_utils as t\n"
        "print(t.tm.__name__, sys.modules.get('openvino_telemetry'))"
    )
    done = run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["openvino.tools.ovc.telemetry_stub", "None"]
