"""A header's secret (the Render API key) never reaches the screen, the journal or the
evidence, even when the endpoint echoes it back in its error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

KEY = "rnd_Echoed-secret-key-0b7c41f9"

RUNBOOK = """\
version = 1
title = "echo"

[flag]
kind = "file"
path = "flag"

[queries.memory]
kind = "http"
url = "${ECHO_URL}/v1/metrics/memory"
headers = { Authorization = "Bearer ${RENDER_API_KEY}" }
rows = "$[*]"
columns = { memory_bytes = "$.values[-1].value" }

[[stages]]
id = "zero"
percent = 0

  [[stages.gates]]
  id = "memory_ok"
  query = "memory"
  column = "memory_bytes"
  op = "<"
  value = 1
"""


class _Echo(BaseHTTPRequestHandler):
    """A careless endpoint: its 401 quotes the credential it was sent."""

    def do_GET(self) -> None:
        said = self.headers.get("Authorization", "")
        body = json.dumps({"message": f"token not valid: {said}"}).encode()
        self.send_response(401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_echoed_key_is_redacted_from_check_json_and_the_evidence(
    tmp_path: Path, echo: str, empty_dsn: str
):
    (tmp_path / "flag").write_text("0\n")
    (tmp_path / "runbook.toml").write_text(RUNBOOK)
    env = {**os.environ, "ECHO_URL": echo, "RENDER_API_KEY": KEY}
    env["CUTOVER_DATABASE_URL"] = empty_dsn
    outputs = []
    for args in (["check"], ["check", "--json"], ["evidence", "--json"], ["status", "--json"]):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "cutover.cli",
                "--runbook",
                str(tmp_path / "runbook.toml"),
                *args,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        outputs.append(done.stdout + done.stderr)
    assert "HTTP 401" in outputs[0] and "token not valid: Bearer ***" in outputs[0]
    for shown in outputs:
        assert KEY not in shown
    for path in (tmp_path / ".cutover").iterdir():
        assert KEY not in path.read_text(errors="replace"), path.name
