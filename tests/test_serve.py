"""`nomina serve` and `nomina demo --serve` from the command line: refusals in one line, and a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import assert_one_error_line, run


def test_serve_refuses_a_bad_workspace_port_or_worker_count_in_one_line(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "serve", "-w", tmp_path / "nothing")
    assert code == 1
    assert_one_error_line(err, r"no such workspace folder")
    for args, pattern in (
        (("--port", "0"), r"--port: 0 is not between 1 and 65535"),
        (("--workers", "0"), r"--workers: 0 is not between 1 and 64"),
        (("--host", " "), r"host: ' ' is not an address"),
    ):
        code, _, err = run(capsys, "serve", "-w", tmp_path / "nothing", *args)
        assert code == 1, args
        assert_one_error_line(err, pattern)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_answers_on_loopback_with_the_security_headers(web_ws: Path) -> None:
    port = free_port()
    env = {**os.environ, "NOMINA_HOME": str(web_ws)}
    server = subprocess.Popen(
        [sys.executable, "-m", "nomina.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as answer:
                    headers, body = answer.headers, answer.read().decode()
                break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.3)
        assert 'name="password"' in body
        assert headers["x-frame-options"] == "DENY" and "script-src 'self'" in headers["content-security-policy"]
        assert "server" not in {k.lower() for k in headers}  # the server's name and version are not announced
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=30)
