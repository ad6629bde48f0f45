"""An http query's answer counts only when the endpoint says it succeeded (2xx). Once, a 302
with a JSON body (a login page's redirect, a proxy's) PASSed a gate on the body it carried."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cutover.judge.gates import judge
from cutover.runbook.model import Comparison, Query
from cutover.sources.httpquery import run_http
from cutover.sources.results import Cause


class _Answers(BaseHTTPRequestHandler):
    """Every path answers `{"rate": 99.9}`; the path's number is the status it comes with."""

    def do_GET(self) -> None:
        status = int(self.path.strip("/"))
        body = json.dumps({"rate": 99.9}).encode()
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/login")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def rate_query(url: str) -> Query:
    return Query(
        id="rate",
        title="rate",
        file=Path("runbook.toml"),
        statement=None,
        refresh_s=30,
        kind="http",
        url=url,
        columns={"rate": "$.rate"},
    )


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_with_a_json_body_is_a_failed_query_and_the_gate_waits(
    endpoint: str, status: int
) -> None:
    result = await run_http(rate_query(f"{endpoint}/{status}"), environ={})
    assert result.cause is Cause.FAILED and result.rows == ()
    assert result.error.startswith(f"HTTP {status} from GET {endpoint}/{status}")
    gate = judge(Comparison(query="rate", op=">=", value=95, column="rate"), result)
    assert gate.holds is None and gate.trigger_fired is None


async def test_a_200_with_the_same_body_is_read(endpoint: str) -> None:
    result = await run_http(rate_query(f"{endpoint}/200"), environ={})
    assert result.error is None and result.rows == ((99.9,),)
