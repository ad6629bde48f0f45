"""Durations as operators write them (`30s`, `10m`, `24h`, `7d`) and as they read them."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
# No hold, refresh or timeout of a cutover is meant to last ten years; a longer one is a typo,
# and a far longer one overflows the clock arithmetic (timedelta) that judges it.
MAX_DAYS = 3650
MAX_SECONDS = MAX_DAYS * 86400.0


def parse_duration(text: str) -> float:
    """Seconds in a duration, at most MAX_DAYS; ValueError with a hint otherwise.

    >>> parse_duration("30s"), parse_duration("10m"), parse_duration("24h"), parse_duration("7d")
    (30.0, 600.0, 86400.0, 604800.0)
    >>> parse_duration("1.5h")
    5400.0
    >>> parse_duration("99999999999999999999d")
    Traceback (most recent call last):
    ValueError: '99999999999999999999d' is longer than 3650d (10 years); write a shorter duration
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; write it like 30s, 10m, 24h or 7d")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not seconds <= MAX_SECONDS:  # also refuses inf, which a long enough number becomes
        raise ValueError(
            f"{text!r} is longer than {MAX_DAYS}d (10 years); write a shorter duration"
        )
    return seconds


def humanize(seconds: float) -> str:
    """A short, rounded duration for the screen.

    >>> humanize(0), humanize(42), humanize(61), humanize(3 * 3600 + 120)
    ('0s', '42s', '1m 1s', '3h 2m')
    >>> humanize(86400 * 2 + 3600 * 5)
    '2d 5h'
    """
    seconds = max(0, round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    return f"{secs}s"
