"""HTTP probes: fetch a runbook URL once and judge the response (probe_checks), with the URL
and headers built from the environment and credentials kept out of everything shown."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from cutover.runbook.model import Probe
from cutover.runbook.templates import VARIABLE, expand_env
from cutover.sources import httpclient
from cutover.sources.probe_checks import FAIL_MARK, WARN_MARK, check_response

if TYPE_CHECKING:  # imported when a probe runs, not by every command that reads this module
    import httpx

    from cutover.sources.httpclient import Clients


class ProbeStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"  # could not reach the endpoint, timed out, or the URL could not be built


@dataclass(frozen=True)
class ProbeResult:
    """What one probe run found. `checks` holds every line shown to the operator, each
    starting with ✓, ✗ or ! (a warning); `warnings` repeats the ! lines without the mark."""

    probe_id: str
    status: ProbeStatus
    url: str  # expanded, with userinfo and token/key/secret query parameters removed
    http_status: int | None
    checks: tuple[str, ...]
    warnings: tuple[str, ...]
    ran_at: datetime  # UTC
    duration_s: float

    @property
    def passed(self) -> bool:
        return self.status is ProbeStatus.PASS

    @property
    def summary(self) -> str:
        """One short line for the runbook pane, e.g. `health: fail · processors_available
        is false, want true`."""
        failures = [c[1:].strip() for c in self.checks if c.startswith(FAIL_MARK)]
        if self.status is not ProbeStatus.PASS:
            detail = failures[0] if failures else "no reason recorded"
            more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
            return f"{self.probe_id}: {self.status} · {detail}{more}"
        if self.warnings:
            more = f" (+{len(self.warnings) - 1} more)" if len(self.warnings) > 1 else ""
            return f"{self.probe_id}: pass · ! {self.warnings[0]}{more}"
        n = len(self.checks)
        checks = f"{n} check{'s' if n != 1 else ''}"
        return f"{self.probe_id}: pass · HTTP {self.http_status} · {checks} ok"


# ---------------------------------------------------------------- environment and URLs


def expand_headers(headers: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Header values from their templates; ValueError naming the variable (never a value)
    when one is not set or empty: an empty credential is no credential.

    >>> expand_headers({"Authorization": "Bearer ${TOKEN}"}, {"TOKEN": "abc"})
    {'Authorization': 'Bearer abc'}
    """
    out = {}
    for name, template in headers.items():
        for var in VARIABLE.finditer(template):
            if not environ.get(var.group(1), "").strip():
                raise ValueError(
                    f"header {name} needs environment variable {var.group(1)}, which is not set"
                )
        out[name] = expand_env(template, environ)
    return out


_SECRET_PARAM = re.compile(r"token|key|secret|passw|signature|auth", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL without userinfo and without query parameters that look like credentials.

    >>> redact_url("https://bot:hunter2@rlm.example/health?token=abc&verbose=1&api_key=x")
    'https://rlm.example/health?verbose=1'
    >>> redact_url("http://127.0.0.1:8000/health")
    'http://127.0.0.1:8000/health'
    """
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        kept = [
            (k, v)
            for k, v in parse_qsl(query, keep_blank_values=True)
            if not _SECRET_PARAM.search(k)
        ]
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in kept)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secrets_in(url: str) -> list[str]:
    """The values redact_url hides, so error messages can be scrubbed of them too."""
    parts = urlsplit(url)
    found = [p for p in (parts.password, parts.username) if p]
    found += [
        v
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if v and _SECRET_PARAM.search(k)
    ]
    return found


# ---------------------------------------------------------------- running a probe (I/O)


async def run_probe(
    probe: Probe,
    *,
    client: httpx.AsyncClient | None = None,
    environ: Mapping[str, str] = os.environ,
    now: datetime | None = None,
    clients: Clients | None = None,
) -> ProbeResult:
    """Fetch the probe's URL once and judge the response. Never raises for a network
    problem or a bad URL: those come back as ERROR with a reason the operator can read.
    `now` (aware UTC) stands in for the clock: it is `ran_at` and the reference for Sunset.
    `clients`: the session's clients, one per destination (without, one for this request)."""
    ran_at = now or datetime.now(UTC)
    started = time.perf_counter()

    def error(url: str, reason: str) -> ProbeResult:
        return ProbeResult(
            probe.id,
            ProbeStatus.ERROR,
            url,
            None,
            (f"{FAIL_MARK} {reason}",),
            (),
            ran_at,
            time.perf_counter() - started,
        )

    try:
        url = expand_env(probe.url, environ)
        shown = redact_url(url)
    except ValueError as exc:
        # Show the template, not the expansion: it holds variable names, not their values.
        try:
            template = redact_url(probe.url)
        except ValueError:
            template = "(unparseable)"
        return error(template, f"url {template}: {exc}")
    try:
        headers = expand_headers(probe.headers, environ)
    except ValueError as exc:
        return error(shown, str(exc))
    request: dict[str, Any] = {"headers": headers}
    if probe.json is not None:
        request["json"] = probe.json

    await httpclient.ready()  # only once there is a request to send, and off the loop
    httpx = httpclient.httpx()
    try:
        async with asyncio.timeout(probe.timeout_s):
            if client is None and clients is not None:
                client = clients.for_url(url)
            if client is None:
                async with httpclient.client(timeout=probe.timeout_s) as own:
                    response = await own.request(probe.method, url, **request)
            else:
                response = await client.request(
                    probe.method, url, timeout=probe.timeout_s, **request
                )
    except (TimeoutError, httpx.TimeoutException):
        return error(shown, f"timed out after {probe.timeout_s:g} s: {probe.method} {shown}")
    except httpx.ConnectError as exc:
        reason = scrub_secrets(failure_reason(exc), url)
        return error(shown, f"could not connect to {shown}: {reason}")
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        reason = scrub_secrets(failure_reason(exc), url)
        return error(shown, f"request failed: {probe.method} {shown}: {reason}")

    lines = check_response(
        probe, response.status_code, response.headers, response.content, now=ran_at
    )
    failed = any(line.startswith(FAIL_MARK) for line in lines)
    warnings = tuple(line[1:].strip() for line in lines if line.startswith(WARN_MARK))
    return ProbeResult(
        probe_id=probe.id,
        status=ProbeStatus.FAIL if failed else ProbeStatus.PASS,
        url=shown,
        http_status=response.status_code,
        checks=lines,
        warnings=warnings,
        ran_at=ran_at,
        duration_s=time.perf_counter() - started,
    )


def failure_reason(exc: BaseException) -> str:
    """The most specific cause in the chain: httpx says "All connection attempts failed"
    where the operator needs "connection refused" or "name or service not known"."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno is not None:
            # asyncio puts "Connect call failed (addr)" in strerror; the errno says why.
            # Resolver errors have negative numbers that only their own strerror explains.
            text = os.strerror(cause.errno) if cause.errno > 0 else cause.strerror
            return (text or type(cause).__name__).lower()
        cause = cause.__cause__ or cause.__context__
    text = str(exc) or type(exc).__name__
    return re.sub(r"^\[Errno -?\d+\]\s*", "", text)


def scrub_secrets(text: str, url: str) -> str:
    for secret in _secrets_in(url):
        text = text.replace(secret, "***")
    return text
