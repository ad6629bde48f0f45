"""HTTP probes: fetch a URL from the runbook and judge status, JSON body, headers and the
deprecation headers (RFC 9745 Deprecation, RFC 8594 Sunset, RFC 8288 Link). Parsing is pure."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from cutover.runbook.durations import humanize
from cutover.runbook.model import Probe
from cutover.runbook.templates import VARIABLE, expand_env
from cutover.sources import httpclient

if TYPE_CHECKING:  # imported when a probe runs, not by every command that reads this module
    import httpx

    from cutover.sources.httpclient import Clients

PASS_MARK, FAIL_MARK, WARN_MARK = "✓", "✗", "!"

# Link relations that tell a client where to go instead of the deprecated resource.
# successor-version is the most specific, so it is named first when several are present.
SUCCESSOR_RELS = ("successor-version", "alternate", "deprecation")


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
        return f"{self.probe_id}: pass · HTTP {self.http_status} · {len(self.checks)} checks ok"


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


# ---------------------------------------------------------------- header parsing (pure)

_SF_DATE = re.compile(r"@(-?\d{1,15})")


@dataclass(frozen=True)
class Deprecation:
    """A parsed Deprecation header. `at` is None for the legacy `true`, which says the
    resource is deprecated but not since when."""

    at: datetime | None
    form: Literal["rfc9745", "true", "http-date"]

    @property
    def legacy(self) -> bool:
        return self.form != "rfc9745"


def parse_deprecation(value: str) -> Deprecation:
    """Parse a Deprecation header: RFC 9745's `@<epoch>`, or the draft forms `true` and
    an HTTP-date that servers still send.

    >>> parse_deprecation("@1688169599").at.isoformat()
    '2023-06-30T23:59:59+00:00'
    >>> parse_deprecation("true").legacy
    True
    >>> parse_deprecation("Sun, 11 Nov 2018 23:59:59 GMT").form
    'http-date'
    >>> parse_deprecation("soon")
    Traceback (most recent call last):
    ...
    ValueError: 'soon' is neither @<epoch seconds> (RFC 9745) nor the legacy true or HTTP-date
    """
    text = value.strip()
    # A structured-field item may carry parameters after ';'; none change the date.
    item = text.split(";", 1)[0].strip()
    if match := _SF_DATE.fullmatch(item):
        try:
            return Deprecation(datetime.fromtimestamp(int(match.group(1)), UTC), "rfc9745")
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{text!r}: @{match.group(1)} is out of range") from None
    if item.lower() in ("true", "?1"):
        return Deprecation(None, "true")
    try:
        return Deprecation(_http_date(text), "http-date")
    except ValueError:
        raise ValueError(
            f"{text!r} is neither @<epoch seconds> (RFC 9745) nor the legacy true or HTTP-date"
        ) from None


def parse_sunset(value: str) -> datetime:
    """Parse a Sunset header (RFC 8594: an HTTP-date) into an aware UTC datetime.

    >>> parse_sunset("Wed, 11 Nov 2026 23:59:59 GMT")
    datetime.datetime(2026, 11, 11, 23, 59, 59, tzinfo=datetime.timezone.utc)
    >>> parse_sunset("next week")
    Traceback (most recent call last):
    ...
    ValueError: 'next week' is not an HTTP-date
    """
    try:
        return _http_date(value.strip())
    except ValueError:
        raise ValueError(f"{value.strip()!r} is not an HTTP-date") from None


def _http_date(text: str) -> datetime:
    try:
        from email.utils import parsedate_to_datetime  # with email: ~3 ms, only here

        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        raise ValueError(text) from None
    # HTTP-dates are always GMT; the asctime form carries no zone at all.
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class Link:
    """One link of a Link header (RFC 8288). `rels` are lowercased; other parameters kept."""

    uri: str
    rels: tuple[str, ...]
    params: tuple[tuple[str, str], ...] = ()


_PARAM_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BARE_VALUE = re.compile(r"[^;,\s]*")


def parse_links(value: str) -> tuple[Link, ...]:
    """Parse a Link header, which may hold several comma-separated links.

    >>> for link in parse_links('</v2>; rel="alternate", </doc>; rel=deprecation; type=text/html'):
    ...     print(link)
    Link(uri='/v2', rels=('alternate',), params=())
    Link(uri='/doc', rels=('deprecation',), params=(('type', 'text/html'),))
    >>> parse_links('<a,b>; rel="successor-version latest-version"')[0].rels
    ('successor-version', 'latest-version')
    >>> parse_links('no brackets')
    Traceback (most recent call last):
    ...
    ValueError: expected '<' at character 1 of the Link header
    """
    links: list[Link] = []
    i, n = 0, len(value)
    while True:
        i = _skip(value, i, " \t,")
        if i >= n:
            return tuple(links)
        if value[i] != "<":
            raise ValueError(f"expected '<' at character {i + 1} of the Link header")
        end = value.find(">", i)
        if end < 0:
            raise ValueError(f"'<' at character {i + 1} of the Link header is never closed")
        uri, i = value[i + 1 : end].strip(), end + 1
        rels: tuple[str, ...] | None = None
        params: list[tuple[str, str]] = []
        while True:
            i = _skip(value, i, " \t")
            if i >= n or value[i] == ",":
                break
            if value[i] != ";":
                raise ValueError(f"expected ';' or ',' at character {i + 1} of the Link header")
            i = _skip(value, i + 1, " \t")
            match = _PARAM_NAME.match(value, i)
            if not match:
                raise ValueError(f"expected a parameter name at character {i + 1}")
            name, i = match.group().lower(), match.end()
            i = _skip(value, i, " \t")
            param = ""
            if i < n and value[i] == "=":
                i = _skip(value, i + 1, " \t")
                if i < n and value[i] == '"':
                    param, i = _quoted_string(value, i)
                else:
                    match = _BARE_VALUE.match(value, i)
                    assert match is not None  # the pattern matches the empty string
                    param, i = match.group(), match.end()
            if name == "rel":
                # RFC 8288 §3.3: only the first rel parameter counts.
                if rels is None:
                    rels = tuple(r.lower() for r in param.split())
            else:
                params.append((name, param))
        links.append(Link(uri, rels or (), tuple(params)))


def _skip(text: str, i: int, chars: str) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _quoted_string(text: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise ValueError("a quoted string in the Link header is never closed")


# ---------------------------------------------------------------- judging a response (pure)


def check_response(
    probe: Probe,
    http_status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
) -> tuple[str, ...]:
    """Every check line for one response, in the order the probe config lists them.

    >>> p = Probe(id="health", url="http://rlm/health", expect_json={"ok": True})
    >>> check_response(p, 200, {}, b'{"ok": 1}', now=datetime(2025, 1, 1, tzinfo=UTC))
    ('✓ status 200', '✗ ok is 1, want true')
    """
    lines: list[str] = []
    if probe.expect_status is None:
        lines.append(f"{PASS_MARK} status {http_status} (any status accepted)")
    elif http_status == probe.expect_status:
        lines.append(f"{PASS_MARK} status {http_status}")
    else:
        lines.append(f"{FAIL_MARK} status {http_status}, want {probe.expect_status}")

    lower = {k.lower(): v for k, v in headers.items()}
    if probe.expect_json:
        lines += _check_json(probe.expect_json, body, lower.get("content-type", ""))
    for name, want in probe.expect_headers.items():
        lines.append(_check_header(name, want, lower.get(name.lower())))
    if probe.deprecation:
        lines += check_deprecation(lower, now=now)
    return tuple(lines)


def check_deprecation(headers: Mapping[str, str], *, now: datetime) -> list[str]:
    """Check lines for Deprecation, Sunset and Link, as a deprecated endpoint should send.

    >>> now = datetime(2025, 1, 1, tzinfo=UTC)
    >>> for line in check_deprecation({"deprecation": "@1735689600"}, now=now):
    ...     print(line)
    ✓ Deprecation: @1735689600 (deprecated since 2025-01-01 00:00 UTC)
    ! Sunset header missing: clients are not told when the endpoint goes away
    ! Link header missing: no successor link
    """
    lower = {k.lower(): v for k, v in headers.items()}
    lines: list[str] = []

    deprecated_at: datetime | None = None
    raw = lower.get("deprecation")
    if raw is None:
        lines.append(f"{FAIL_MARK} Deprecation header missing")
    else:
        try:
            dep = parse_deprecation(raw)
        except ValueError as exc:
            lines.append(f"{FAIL_MARK} Deprecation: {exc}")
        else:
            deprecated_at = dep.at
            if dep.form == "rfc9745":
                assert dep.at is not None
                when = "since" if dep.at <= now else "from"
                lines.append(
                    f"{PASS_MARK} Deprecation: {raw.strip()} (deprecated {when} {_fmt(dep.at)})"
                )
            elif dep.form == "true":
                lines.append(
                    f"{WARN_MARK} Deprecation: {raw.strip()} is the legacy form; "
                    "RFC 9745 wants @<epoch>"
                )
            else:
                assert dep.at is not None
                lines.append(
                    f"{WARN_MARK} Deprecation: {raw.strip()} is the legacy form "
                    f"(an HTTP-date); RFC 9745 wants @{int(dep.at.timestamp())}"
                )

    raw = lower.get("sunset")
    if raw is None:
        lines.append(
            f"{WARN_MARK} Sunset header missing: clients are not told when the endpoint goes away"
        )
    else:
        try:
            sunset = parse_sunset(raw)
        except ValueError as exc:
            lines.append(f"{FAIL_MARK} Sunset: {exc}")
        else:
            if deprecated_at is not None and sunset < deprecated_at:
                lines.append(
                    f"{FAIL_MARK} Sunset precedes Deprecation: "
                    f"{_fmt(sunset)} is before {_fmt(deprecated_at)}"
                )
            elif sunset <= now:
                lines.append(
                    f"{WARN_MARK} sunset passed on {_fmt(sunset)}: "
                    "the endpoint may be removed at any time"
                )
            else:
                lines.append(f"{PASS_MARK} Sunset: {_fmt(sunset)} ({_until(now, sunset)})")

    raw = lower.get("link")
    if raw is None:
        lines.append(f"{WARN_MARK} Link header missing: no successor link")
    else:
        try:
            links = parse_links(raw)
        except ValueError as exc:
            lines.append(f"{WARN_MARK} Link: cannot parse ({exc}): no successor link")
        else:
            found = [(rel, link) for rel in SUCCESSOR_RELS for link in links if rel in link.rels]
            if found:
                rel, link = found[0]
                lines.append(f"{PASS_MARK} Link: successor <{link.uri}> (rel {rel})")
            else:
                lines.append(
                    f"{WARN_MARK} Link: no successor link "
                    "(rel successor-version, alternate or deprecation)"
                )
    return lines


def _check_json(expected: Mapping[str, Any], body: bytes, content_type: str) -> list[str]:
    try:
        doc = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        kind = content_type.split(";")[0].strip() or "no content type"
        return [f"{FAIL_MARK} body is not JSON ({kind}, {len(body)} bytes)"]
    if not isinstance(doc, dict):
        return [f"{FAIL_MARK} body is a JSON {type(doc).__name__}, want an object"]
    return _compare_json(expected, doc, prefix="")


def _compare_json(expected: Mapping[str, Any], actual: Mapping[str, Any], prefix: str) -> list[str]:
    lines: list[str] = []
    for key, want in expected.items():
        path = f"{prefix}{key}"
        if key not in actual:
            lines.append(f"{FAIL_MARK} {path} is missing, want {_show(want)}")
        elif isinstance(want, Mapping) and isinstance(actual[key], Mapping):
            lines += _compare_json(want, actual[key], prefix=f"{path}.")
        elif _json_equal(want, actual[key]):
            lines.append(f"{PASS_MARK} {path} is {_show(want)}")
        else:
            lines.append(f"{FAIL_MARK} {path} is {_show(actual[key])}, want {_show(want)}")
    return lines


def _json_equal(want: Any, got: Any) -> bool:
    # Python says True == 1; JSON says true is not 1, and so does the operator.
    if isinstance(want, bool) or isinstance(got, bool):
        return isinstance(want, bool) and isinstance(got, bool) and want == got
    if isinstance(want, Mapping) or isinstance(got, Mapping):
        return (
            isinstance(want, Mapping)
            and isinstance(got, Mapping)
            and want.keys() == got.keys()
            and all(_json_equal(want[k], got[k]) for k in want)
        )
    if isinstance(want, list | tuple) or isinstance(got, list | tuple):
        return (
            isinstance(want, list | tuple)
            and isinstance(got, list | tuple)
            and len(want) == len(got)
            and all(map(_json_equal, want, got))
        )
    return bool(want == got)


def _check_header(name: str, want: Any, got: str | None) -> str:
    if want is True:
        return (
            f"{PASS_MARK} header {name} present"
            if got is not None
            else f"{FAIL_MARK} header {name} missing"
        )
    if want is False:
        return (
            f"{PASS_MARK} header {name} absent"
            if got is None
            else f"{FAIL_MARK} header {name} present ({_clip(got)!r}), want it absent"
        )
    if got is None:
        return f"{FAIL_MARK} header {name} missing, want {str(want)!r}"
    if got == str(want):
        return f"{PASS_MARK} header {name}: {_clip(got)}"
    return f"{FAIL_MARK} header {name} is {_clip(got)!r}, want {str(want)!r}"


def _show(value: Any) -> str:
    return _clip(json.dumps(value, ensure_ascii=False, default=str))


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _until(now: datetime, later: datetime) -> str:
    seconds = (later - now).total_seconds()
    if seconds >= 86400:  # days away: to the hour, so 30 days reads "30d", not "29d 23h"
        seconds = round(seconds / 3600) * 3600
    return f"in {humanize(seconds)}"


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

    httpx = httpclient.httpx()  # only once there is a request to send
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
        reason = _scrub(_reason(exc), url)
        return error(shown, f"could not connect to {shown}: {reason}")
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        reason = _scrub(_reason(exc), url)
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


def _reason(exc: BaseException) -> str:
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


def _scrub(text: str, url: str) -> str:
    for secret in _secrets_in(url):
        text = text.replace(secret, "***")
    return text
