"""Probes against a real RLM-like server on loopback, and the pure header parsers."""

from __future__ import annotations

import doctest
import json
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest

from cutover.demo.rlm import RLMServer
from cutover.runbook.model import Probe
from cutover.runbook.templates import expand_env
from cutover.sources import deprecation, probe_checks, probes
from cutover.sources.deprecation import Link, parse_deprecation, parse_links, parse_sunset
from cutover.sources.probe_checks import check_deprecation
from cutover.sources.probes import ProbeStatus, run_probe


def health_probe(rlm: RLMServer, **overrides) -> Probe:
    return Probe(
        id="health",
        url=f"{rlm.url}/health",
        expect_json={"processors_available": True},
        **overrides,
    )


TEST_IMPORT = {"user_id": "test", "storage_path": "test.json"}


def v1_probe(rlm: RLMServer, **overrides) -> Probe:
    """As the shipped runbook's: POST a test import, read the deprecation headers."""
    fields = {"method": "POST", "json": TEST_IMPORT, "deprecation": True, **overrides}
    return Probe(id="v1_deprecated", url=f"{rlm.url}/process-full", **fields)


def test_the_parsers_doctests_hold() -> None:
    outcomes = [doctest.testmod(m) for m in (deprecation, probe_checks, probes)]
    assert all(tried > 0 for _, tried in outcomes)
    assert sum(tried for _, tried in outcomes) > 10
    assert sum(failures for failures, _ in outcomes) == 0


# ---------------------------------------------------------------- /health


async def test_a_healthy_rlm_passes_the_health_probe(rlm: RLMServer) -> None:
    result = await run_probe(health_probe(rlm))
    assert result.status is ProbeStatus.PASS and result.passed
    assert result.http_status == 200
    assert result.checks == ("✓ status 200", "✓ processors_available is true")
    assert result.warnings == ()
    assert result.url == f"{rlm.url}/health"
    assert result.summary.startswith("health: pass")
    assert rlm.hits("/health", "GET") == 1


async def test_processors_unavailable_fails_naming_the_field(rlm: RLMServer) -> None:
    rlm.processors_available = False
    result = await run_probe(health_probe(rlm))
    assert result.status is ProbeStatus.FAIL
    assert "✗ processors_available is false, want true" in result.checks
    assert "processors_available is false, want true" in result.summary


async def test_a_503_fails_naming_the_status(rlm: RLMServer) -> None:
    rlm.health_status = 503
    result = await run_probe(health_probe(rlm))
    assert result.status is ProbeStatus.FAIL
    assert result.http_status == 503
    assert result.checks[0] == "✗ status 503, want 200"
    assert "status 503, want 200" in result.summary


async def test_nested_json_is_compared_recursively_and_true_is_not_1(rlm: RLMServer) -> None:
    rlm.health_shape = "extended"  # processor counts nested in the answer
    probe = Probe(
        id="health",
        url=f"{rlm.url}/health",
        expect_json={"processors": {"total": 4, "busy": True}, "status": "ok"},
    )
    result = await run_probe(probe)
    assert result.status is ProbeStatus.FAIL
    assert "✓ processors.total is 4" in result.checks
    assert "✗ processors.busy is 1, want true" in result.checks
    assert '✓ status is "ok"' in result.checks


async def test_expected_headers_exact_or_present(rlm: RLMServer) -> None:
    probe = Probe(
        id="h",
        url=f"{rlm.url}/health",
        expect_headers={
            "Content-Type": "application/json; charset=utf-8",
            "Server": True,
            "X-Missing": True,
        },
    )
    result = await run_probe(probe)
    assert "✓ header Content-Type: application/json; charset=utf-8" in result.checks
    assert "✓ header Server present" in result.checks
    assert "✗ header X-Missing missing" in result.checks
    assert result.status is ProbeStatus.FAIL


def test_a_body_that_is_not_json_fails_expect_json() -> None:
    # Every route of the fake RLM speaks JSON, so this one is judged by the pure function.
    probe = Probe(id="x", url="http://rlm/health", expect_json={"ok": True})
    lines = probe_checks.check_response(
        probe, 200, {"Content-Type": "text/html"}, b"<html>oops</html>", now=datetime.now(UTC)
    )
    assert lines == ("✓ status 200", "✗ body is not JSON (text/html, 17 bytes)")


# ---------------------------------------------------------------- unreachable


async def test_a_stopped_server_is_an_error_with_a_readable_reason() -> None:
    server = RLMServer().start()
    url = f"{server.url}/health"
    server.stop()
    result = await run_probe(Probe(id="health", url=url))
    assert result.status is ProbeStatus.ERROR
    assert result.http_status is None
    assert result.summary.startswith("health: error · could not connect to http://127.0.0.1:")
    text = " ".join(result.checks)
    assert "Traceback" not in text and "Errno" not in text and "httpx" not in text


async def test_a_closed_port_is_an_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await run_probe(Probe(id="health", url=f"http://127.0.0.1:{port}/health"))
    assert result.status is ProbeStatus.ERROR
    assert result.summary.endswith(
        f"could not connect to http://127.0.0.1:{port}/health: connection refused"
    )


async def test_a_slow_server_times_out_as_an_error(rlm: RLMServer) -> None:
    rlm.slow_seconds = 5
    started = time.monotonic()
    result = await run_probe(health_probe(rlm, timeout_s=0.3))
    assert time.monotonic() - started < 2
    assert result.status is ProbeStatus.ERROR
    assert "timed out after 0.3 s" in result.summary


async def test_a_missing_variable_in_the_url_is_an_error_not_an_exception() -> None:
    result = await run_probe(Probe(id="health", url="${RLM_URL}/health"), environ={})
    assert result.status is ProbeStatus.ERROR
    assert "RLM_URL is not set" in result.summary


# ---------------------------------------------------------------- v1 deprecation


async def test_legacy_deprecation_true_passes_with_a_legacy_warning(rlm: RLMServer) -> None:
    result = await run_probe(v1_probe(rlm))
    assert result.status is ProbeStatus.PASS
    assert any("legacy form" in w and "RFC 9745" in w for w in result.warnings)
    assert "! Deprecation: true is the legacy form; RFC 9745 wants @<epoch>" in result.checks
    assert any(c.startswith("✓ Sunset:") and "in 30d" in c for c in result.checks)
    assert "✓ Link: successor </process-full-v2> (rel alternate)" in result.checks
    assert rlm.hits("/process-full", "POST") == 1
    sent = rlm.requests[-1]
    assert json.loads(sent.body) == TEST_IMPORT
    assert ("Content-Type", "application/json") in sent.headers


async def test_a_get_of_v1_is_a_bare_405_so_the_old_get_probe_fails(rlm: RLMServer) -> None:
    # As the real service: the headers are set inside the POST handler; a GET never gets
    # there. The probe the runbook used to ship (GET, expect 405) read "missing" here.
    result = await run_probe(v1_probe(rlm, method="GET", json=None, expect_status=405))
    assert result.status is ProbeStatus.FAIL
    assert "✓ status 405" in result.checks
    assert "✗ Deprecation header missing" in result.checks


async def test_a_post_without_the_test_import_is_refused_before_the_handler(
    rlm: RLMServer,
) -> None:
    result = await run_probe(v1_probe(rlm, json=None))
    assert result.status is ProbeStatus.FAIL
    assert result.checks[0] == "✗ status 422, want 200"
    assert "✗ Deprecation header missing" in result.checks  # validation ran, the handler did not
    assert rlm.log_lines() == ()  # and the handler logged nothing


async def test_every_call_the_v1_handler_takes_is_logged_as_the_real_one_logs(
    rlm: RLMServer,
) -> None:
    await run_probe(v1_probe(rlm))
    await run_probe(v1_probe(rlm))
    assert [line for _, line in rlm.log_lines()] == ["[DEPRECATED] /process-full called"] * 2


async def test_probe_headers_come_from_the_environment_and_never_show(rlm: RLMServer) -> None:
    probe = health_probe(rlm, headers={"Authorization": "Bearer ${RLM_TOKEN}"})
    result = await run_probe(probe, environ={"RLM_TOKEN": "tok-hidden-4417"})
    assert result.passed
    assert ("Authorization", "Bearer tok-hidden-4417") in rlm.requests[-1].headers
    assert "tok-hidden-4417" not in repr(result)


async def test_a_probe_header_whose_variable_is_unset_is_an_error_naming_it(
    rlm: RLMServer,
) -> None:
    probe = health_probe(rlm, headers={"Authorization": "Bearer ${RLM_TOKEN}"})
    result = await run_probe(probe, environ={})
    assert result.status is ProbeStatus.ERROR
    assert "header Authorization needs environment variable RLM_TOKEN" in result.summary
    assert rlm.hits("/health") == 0  # nothing sent without its credential


def test_only_a_get_or_head_probe_is_safe_to_repeat_on_a_timer() -> None:
    assert Probe(id="h", url="http://x/health").safe
    assert not Probe(id="v1", url="http://x/process-full", method="POST").safe


async def test_the_rfc9745_form_passes_without_warnings(rlm: RLMServer) -> None:
    rlm.deprecation_style = "rfc9745"
    result = await run_probe(v1_probe(rlm))
    assert result.status is ProbeStatus.PASS
    assert result.warnings == ()
    epoch = int(rlm.deprecated_at.timestamp())
    assert any(c.startswith(f"✓ Deprecation: @{epoch} (deprecated since") for c in result.checks)


async def test_an_http_date_deprecation_is_legacy_too(rlm: RLMServer) -> None:
    rlm.deprecation_style = "http-date"
    result = await run_probe(v1_probe(rlm))
    assert result.status is ProbeStatus.PASS
    assert any("legacy form (an HTTP-date)" in w for w in result.warnings)


async def test_missing_deprecation_header_fails(rlm: RLMServer) -> None:
    rlm.deprecation_style = "none"
    result = await run_probe(v1_probe(rlm))
    assert result.status is ProbeStatus.FAIL
    assert "✗ Deprecation header missing" in result.checks


async def test_removed_v1_answers_404_and_a_probe_expecting_it_passes(rlm: RLMServer) -> None:
    rlm.v1_removed = True
    expecting_404 = Probe(id="v1_removed", url=f"{rlm.url}/process-full", expect_status=404)
    assert (await run_probe(expecting_404)).passed
    still_deprecated = await run_probe(v1_probe(rlm))
    assert still_deprecated.status is ProbeStatus.FAIL
    assert still_deprecated.checks[0] == "✗ status 404, want 200"


async def test_sunset_before_deprecation_fails(rlm: RLMServer) -> None:
    now = datetime.now(UTC)
    rlm.deprecation_style = "rfc9745"
    rlm.deprecated_at = now + timedelta(days=60)
    rlm.sunset_at = now + timedelta(days=30)
    result = await run_probe(v1_probe(rlm))
    assert result.status is ProbeStatus.FAIL
    assert "Sunset precedes Deprecation" in result.summary


async def test_a_sunset_in_the_past_is_a_warning(rlm: RLMServer) -> None:
    now = datetime.now(UTC)
    rlm.deprecation_style = "rfc9745"
    rlm.deprecated_at = now - timedelta(days=40)
    rlm.sunset_at = now - timedelta(days=2)
    result = await run_probe(v1_probe(rlm))
    assert result.status is ProbeStatus.PASS
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("sunset passed on ")
    assert result.summary.startswith("v1_deprecated: pass · ! sunset passed on")


async def test_no_successor_link_is_a_warning(rlm: RLMServer) -> None:
    rlm.deprecation_style = "rfc9745"
    rlm.link = '<https://docs.example/changelog>; rel="help"'
    result = await run_probe(v1_probe(rlm))
    assert result.status is ProbeStatus.PASS
    assert any(w.startswith("Link: no successor link") for w in result.warnings)


def test_an_unparseable_sunset_fails() -> None:
    lines = check_deprecation({"Deprecation": "true", "Sunset": "soon"}, now=datetime.now(UTC))
    assert "✗ Sunset: 'soon' is not an HTTP-date" in lines


# ---------------------------------------------------------------- parsers


def test_link_header_with_several_links() -> None:
    header = (
        '<https://api.example/v2/process?a=1,2>; rel="successor-version latest-version", '
        '</docs/deprecation>;rel=deprecation;type="text/html" , '
        '<//cdn.example/x>; title="say \\"hi\\""; rel=preload'
    )
    assert parse_links(header) == (
        Link("https://api.example/v2/process?a=1,2", ("successor-version", "latest-version")),
        Link("/docs/deprecation", ("deprecation",), (("type", "text/html"),)),
        Link("//cdn.example/x", ("preload",), (("title", 'say "hi"'),)),
    )
    lines = check_deprecation({"deprecation": "@0", "link": header}, now=datetime.now(UTC))
    assert (
        "✓ Link: successor <https://api.example/v2/process?a=1,2> (rel successor-version)" in lines
    )


def test_only_the_first_rel_counts_and_rel_is_case_insensitive() -> None:
    (link,) = parse_links('</a>; rel="Alternate"; rel="next"')
    assert link.rels == ("alternate",)


def test_deprecation_forms() -> None:
    assert parse_deprecation("@0").at == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_deprecation("@1735689600;reason=x").form == "rfc9745"
    assert parse_deprecation(" TRUE ").form == "true"
    with pytest.raises(ValueError):
        parse_deprecation("@abc")


def test_sunset_accepts_every_http_date_form() -> None:
    want = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)
    assert parse_sunset("Sun, 06 Nov 1994 08:49:37 GMT") == want
    assert parse_sunset("Sunday, 06-Nov-94 08:49:37 GMT") == want
    assert parse_sunset("Sun Nov  6 08:49:37 1994") == want


# ---------------------------------------------------------------- env and secrets


def test_expand_env_uses_defaults_and_names_the_missing_variable() -> None:
    env = {"RLM_HOST": "rlm.internal", "EMPTY": ""}
    assert expand_env("https://${RLM_HOST}/health", env) == "https://rlm.internal/health"
    assert expand_env("${RLM_PORT:-8000}", env) == "8000"
    assert expand_env("${EMPTY:-fallback}", env) == "fallback"
    assert expand_env("${RLM_HOST:-x}", env) == "rlm.internal"
    with pytest.raises(ValueError, match="RLM_TOKEN"):
        expand_env("https://x/?token=${RLM_TOKEN}", env)
    with pytest.raises(ValueError, match="malformed"):
        expand_env("https://${not closed", env)


async def test_credentials_never_appear_in_the_result_url(rlm: RLMServer) -> None:
    host = rlm.url.removeprefix("http://")
    probe = Probe(
        id="health",
        url=f"http://bot:${{RLM_PASSWORD}}@{host}/health?token=${{RLM_TOKEN}}&v=1",
        expect_json={"processors_available": True},
    )
    env = {"RLM_PASSWORD": "hunter2", "RLM_TOKEN": "s3cr3t"}
    result = await run_probe(probe, environ=env)
    assert result.passed
    assert result.url == f"{rlm.url}/health?v=1"
    # the token really went over the wire; it just is not shown
    assert rlm.requests[-1].path == "/health?token=s3cr3t&v=1"

    rlm.stop()
    failed = await run_probe(probe, environ=env)
    assert failed.status is ProbeStatus.ERROR
    shown = repr(failed) + failed.summary
    assert "hunter2" not in shown and "s3cr3t" not in shown
