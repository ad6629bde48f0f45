"""Judging one probe response, line by line: status, JSON body, headers and the deprecation
headers, each line marked ✓ (pass), ✗ (fail) or ! (a warning). Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cutover.runbook.durations import humanize
from cutover.runbook.model import Probe
from cutover.sources.deprecation import parse_deprecation, parse_links, parse_sunset

PASS_MARK, FAIL_MARK, WARN_MARK = "✓", "✗", "!"

# Link relations that tell a client where to go instead of the deprecated resource.
# successor-version is the most specific, so it is named first when several are present.
SUCCESSOR_RELS = ("successor-version", "alternate", "deprecation")


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
