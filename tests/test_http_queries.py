"""JSON HTTP endpoints as queries, against real loopback servers (the demo's fake Render and
RLM): JSONPath into rows and columns, errors as typed causes, secrets never shown, and the
same gates, triggers and evidence as SQL."""

from __future__ import annotations

import asyncio
import doctest
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import cutover.runbook.jsonpaths
import cutover.sources.httpquery
from cutover.demo.render import FakeRender
from cutover.demo.rlm import RLMServer
from cutover.judge.check import judge_stage
from cutover.judge.session import Session
from cutover.runbook.jsonpaths import jsonpath_problem
from cutover.runbook.loader import load
from cutover.runbook.model import Comparison, Query, Stage, Trigger
from cutover.sources.httpquery import extract, run_http
from cutover.sources.results import Cause

KEY = "rnd_the-key-that-never-shows-31c7"


def http_query(url: str, **fields) -> Query:
    return Query(
        id=fields.pop("id", "q"),
        title="q",
        file=Path("runbook.toml"),
        statement=None,
        refresh_s=30,
        kind="http",
        url=url,
        **fields,
    )


def memory_query(**fields) -> Query:
    return http_query(
        "${RENDER_API_URL}/v1/metrics/memory?resource=${SERVICE}&aggregationMethod=MAX",
        id="render_memory",
        headers={"Authorization": "Bearer ${RENDER_API_KEY}"},
        rows="$[*]",
        columns={"memory_bytes": "$.values[-1].value", "unit": "$.unit"},
        **fields,
    )


@pytest.fixture
def render() -> Iterator[FakeRender]:
    with RLMServer() as rlm, FakeRender(api_key=KEY, logs=rlm.log_lines) as fake:
        fake.rlm = rlm  # type: ignore[attr-defined]
        yield fake


def env_for(render: FakeRender, **extra: str) -> dict[str, str]:
    return {
        "RENDER_API_URL": render.url,
        "RENDER_API_KEY": KEY,
        "SERVICE": render.service_id,
        **extra,
    }


# ---------------------------------------------------------------- JSONPath, pure


def test_the_doctests_hold() -> None:
    outcomes = [doctest.testmod(m) for m in (cutover.sources.httpquery, cutover.runbook.jsonpaths)]
    assert sum(tried for _, tried in outcomes) >= 5
    assert sum(failures for failures, _ in outcomes) == 0


def test_without_rows_the_document_is_one_row_of_its_scalars() -> None:
    doc = {"status": "ok", "processors_available": True, "processors": {"total": 4}}
    assert extract(doc, None, {}) == (("status", "processors_available"), [("ok", True)])


def test_rows_and_columns_by_jsonpath_with_a_missing_one_as_null() -> None:
    doc = {"logs": [{"timestamp": "t1", "message": "a"}, {"timestamp": "t2"}]}
    columns, rows = extract(doc, "$.logs[*]", {"at": "$.timestamp", "message": "$.message"})
    assert columns == ("at", "message")
    assert rows == [("t1", "a"), ("t2", None)]


def test_a_nested_value_in_a_column_is_compact_json_text() -> None:
    _, rows = extract({"a": {"b": [1, 2]}}, None, {"b": "$.a"})
    assert rows == [('{"b":[1,2]}',)]


def test_scalar_rows_are_one_column_named_value() -> None:
    assert extract({"xs": [3, 4]}, "$.xs[*]", {}) == (("value",), [(3,), (4,)])


def test_rows_that_select_nothing_are_no_rows() -> None:
    assert extract({"logs": []}, "$.logs[*]", {"m": "$.message"}) == (("m",), [])


@pytest.mark.parametrize("path", ["values", "$.[[", "$.a[?(@.b >"])
def test_a_bad_jsonpath_is_named(path: str) -> None:
    assert jsonpath_problem(path).startswith("not a JSONPath")


# ---------------------------------------------------------------- against real servers


async def test_render_memory_reads_as_one_row_in_bytes(render: FakeRender) -> None:
    render.memory_bytes = 1_234_000_000
    result = await run_http(memory_query(), environ=env_for(render))
    assert result.ok, result.error
    assert result.columns == ("memory_bytes", "unit")
    assert result.rows == ((1_234_000_000.0, "bytes"),)
    assert result.ran_at is not None and result.duration_s is not None
    sent = render.requests[-1]
    assert sent.authorized and sent.query["aggregationMethod"] == ["MAX"]


async def test_the_rlm_health_endpoint_as_a_query(render: FakeRender) -> None:
    rlm: RLMServer = render.rlm  # type: ignore[attr-defined]
    query = http_query("${RLM_URL}/health")
    result = await run_http(query, environ={"RLM_URL": rlm.url})
    row = result.first_row()
    assert row is not None
    assert (row["status"], row["processors_available"]) == ("ok", True)
    rlm.processors_available = False
    result = await run_http(query, environ={"RLM_URL": rlm.url})
    assert result.first_row()["processors_available"] is False


async def test_render_logs_count_the_v1_calls(render: FakeRender) -> None:
    rlm: RLMServer = render.rlm  # type: ignore[attr-defined]
    query = http_query(
        "${RENDER_API_URL}/v1/logs?ownerId=tea-demo&resource=${SERVICE}"
        "&text=%5BDEPRECATED%5D%20%2Fprocess-full%20called&limit=100",
        headers={"Authorization": "Bearer ${RENDER_API_KEY}"},
        rows="$.logs[*]",
        columns={"at": "$.timestamp", "message": "$.message"},
    )
    assert (await run_http(query, environ=env_for(render))).rows == ()
    for _ in range(3):
        await asyncio.to_thread(_post_v1, rlm.url)
    result = await run_http(query, environ=env_for(render))
    assert [r[1] for r in result.rows] == ["[DEPRECATED] /process-full called"] * 3


def _post_v1(base: str) -> None:
    import httpx

    httpx.post(f"{base}/process-full", json={"user_id": "u", "storage_path": "s.json"})


async def test_a_wrong_key_is_a_failed_query_saying_401_without_the_key(
    render: FakeRender,
) -> None:
    env = env_for(render, RENDER_API_KEY="rnd_wrong-and-secret-77aa")
    result = await run_http(memory_query(), environ=env)
    assert result.cause is Cause.FAILED
    assert result.error.startswith("HTTP 401 from GET http://127.0.0.1:")
    assert result.error.endswith(": Unauthorized")
    assert "rnd_wrong" not in result.error


async def test_an_unset_header_variable_fails_naming_it_and_sends_nothing(
    render: FakeRender,
) -> None:
    env = env_for(render)
    del env["RENDER_API_KEY"]
    result = await run_http(memory_query(), environ=env)
    assert result.cause is Cause.FAILED
    assert "header Authorization needs environment variable RENDER_API_KEY" in result.error
    assert render.requests == ()


async def test_an_unset_url_variable_fails_naming_it(render: FakeRender) -> None:
    env = env_for(render)
    del env["SERVICE"]
    result = await run_http(memory_query(), environ=env)
    assert "environment variable SERVICE is not set" in result.error
    assert render.requests == ()


async def test_a_closed_port_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = await run_http(http_query(f"http://127.0.0.1:{port}/health"), environ={})
    assert result.cause is Cause.UNREACHABLE
    assert result.error.startswith(f"unreachable: GET http://127.0.0.1:{port}/health")
    assert "connection refused" in result.error


async def test_a_slow_endpoint_times_out(render: FakeRender) -> None:
    rlm: RLMServer = render.rlm  # type: ignore[attr-defined]
    rlm.slow_seconds = 5
    query = http_query(f"{rlm.url}/health", timeout_s=0.3)
    result = await run_http(query, environ={})
    assert result.cause is Cause.TIMEOUT
    assert result.error.startswith("timed out after 0.3s: GET")


class _Odd(BaseHTTPRequestHandler):
    """Answers what a JSON endpoint should not: HTML, a huge body, a 500."""

    def do_GET(self) -> None:
        if self.path == "/html":
            body, status = b"<html>maintenance</html>", 200
        elif self.path == "/huge":
            body, status = b"[" + b"0," * (5 * 1024 * 1024) + b"0]", 200
        else:
            body, status = json.dumps({"message": "boom \x1b[31m"}).encode(), 500
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def odd() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Odd)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_a_body_that_is_not_json_fails_saying_so(odd: str) -> None:
    result = await run_http(http_query(f"{odd}/html"), environ={})
    assert result.cause is Cause.FAILED
    assert result.error == f"GET {odd}/html did not answer JSON (24 bytes)"


async def test_a_500_fails_with_the_endpoints_message_made_inert(odd: str) -> None:
    result = await run_http(http_query(f"{odd}/boom"), environ={})
    assert result.error == f"HTTP 500 from GET {odd}/boom: boom ^[[31m"


async def test_a_body_past_the_cap_is_refused_not_read_whole(odd: str) -> None:
    result = await run_http(http_query(f"{odd}/huge"), environ={})
    assert result.cause is Cause.FAILED
    assert "answered more than 8 MiB" in result.error


async def test_rows_past_the_cap_are_cut_and_said(render: FakeRender) -> None:
    # The memory series over a day at 60 s resolution: 1,440 samples, one row each.
    query = http_query(
        "${RENDER_API_URL}/v1/metrics/memory?resource=${SERVICE}&startTime="
        + str(int((datetime.now(UTC) - timedelta(days=1)).timestamp())),
        headers={"Authorization": "Bearer ${RENDER_API_KEY}"},
        rows="$[0].values[*]",
    )
    result = await run_http(query, environ=env_for(render))
    assert len(result.rows) == 1000 and result.truncated


# ---------------------------------------------------------------- as SQL is: judged, recorded


async def test_a_trigger_on_an_http_query_fires_unknown_or_quiet_like_sql(
    render: FakeRender,
) -> None:
    query = memory_query()
    memory = Trigger(
        id="memory_high",
        check=Comparison(query="render_memory", op=">", value=1.8e9, column="memory_bytes"),
    )
    stage = Stage(id="canary", title="Canary", percent=10)
    book = _book_with(query, memory, stage)
    env = env_for(render)

    async def fired() -> bool | None:
        result = await run_http(query, environ=env)
        report = judge_stage(book, stage, {"render_memory": result})
        return report.triggers[0].fired

    assert await fired() is False
    render.memory_bytes = 1.9e9
    assert await fired() is True
    render.stop()
    assert await fired() is None  # an endpoint nobody can read is not a quiet one


def _book_with(query: Query, trigger: Trigger, stage: Stage):
    from cutover.runbook.model import Database, Flag, Runbook

    return Runbook(
        path=Path("runbook.toml"),
        title="t",
        version=1,
        database=Database(),
        journal_path=Path("journal.jsonl"),
        flag=Flag(kind="file"),
        probes={},
        queries={query.id: query},
        stages=(stage,),
        triggers=(trigger,),
    )


HTTP_RUNBOOK = """\
version = 1
title = "http"

[flag]
kind = "file"
path = "flag"

[queries.memory]
kind = "http"
title = "Memory"
url = "${RENDER_API_URL}/v1/metrics/memory?resource=${SERVICE}&aggregationMethod=MAX"
headers = { Authorization = "Bearer ${RENDER_API_KEY}" }
rows = "$[*]"
columns = { memory_bytes = "$.values[-1].value" }

[[stages]]
id = "zero"
percent = 0

[[stages]]
id = "canary"
percent = 10

  [[stages.gates]]
  id = "memory_ok"
  query = "memory"
  column = "memory_bytes"
  op = "<"
  value = 1_800_000_000
"""


async def test_a_session_checks_an_http_gate_without_any_database(
    tmp_path: Path, render: FakeRender
) -> None:
    (tmp_path / "flag").write_text("0\n")
    (tmp_path / "runbook.toml").write_text(HTTP_RUNBOOK)
    book = load(tmp_path / "runbook.toml")
    session = Session(book, {"USER": "ops", **env_for(render)})
    report, results = await session.check(None, book.stage("canary"))  # type: ignore[arg-type]
    assert report.gates[0].verdict.value == "pass"
    assert results["memory"].rows == ((640_000_000.0,),)
    # recorded as evidence, digested by what it fetches
    evidence = (tmp_path / ".cutover" / "journal.evidence.jsonl").read_text()
    assert '"name": "memory_ok"' in evidence and '"verdict": "pass"' in evidence
    assert KEY not in evidence
    assert session.sql_digests()["memory"]
    # the key is a secret of this session: redacted from anything it shows
    assert session.redact(f"curl -H 'Authorization: Bearer {KEY}'").count(KEY) == 0
