"""An event's fields as they will read back: JSON values only (times as UTC text, numbers
JSON cannot hold as text), secrets redacted, the envelope's names reserved."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from cutover.base.finite import json_safe
from cutover.record.chain import ENVELOPE


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        try:
            return iso_utc(value)
        except ValueError as e:
            raise TypeError(str(e)) from None
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def plain_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields exactly as they will read back (tuples as lists, datetimes as text), so
    the Event that append returns equals the one read later."""
    clash = sorted(set(fields) & set(ENVELOPE))
    if clash:
        raise ValueError(f"journal field name(s) {', '.join(clash)} are reserved for the envelope")
    plain = {}
    for name, value in fields.items():
        try:
            text = json.dumps(
                json_safe(value), default=_encode_value, ensure_ascii=False, allow_nan=False
            )
        except (TypeError, ValueError) as e:
            raise ValueError(f"journal field {name!r}: {e}") from None
        plain[name] = json.loads(text)
    return plain


def event_fields(
    kind: str, fields: Mapping[str, Any], redact: Callable[[str], str] | None
) -> tuple[str, dict[str, Any]]:
    """An event's kind and fields as every journal writes them (a file or the store): the
    kind never empty, the fields plain and with secrets redacted."""
    kind = str(kind)
    if not kind:
        raise ValueError("journal event kind is empty")
    plain = plain_fields(fields)
    if redact is not None:
        plain = {k: redacted(v, redact) for k, v in plain.items()}
    return kind, plain


def redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redacted(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, redact) for v in value]
    return value


def iso_utc(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt.isoformat()} (give it a timezone)")
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")
