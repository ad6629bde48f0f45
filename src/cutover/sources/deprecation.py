"""The deprecation headers a retiring endpoint sends, parsed: RFC 9745 Deprecation, RFC 8594
Sunset and RFC 8288 Link. Pure: what they say is judged by probe_checks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

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
