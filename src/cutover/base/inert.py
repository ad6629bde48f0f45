"""Text made inert for a terminal: what a query, a note or an error says is shown, never
obeyed. The one rule for the console and the headless commands alike."""

from __future__ import annotations

import re

# C0 and C1 controls (ESC starts every terminal escape; 0x9b is a one-byte CSI), DEL, and
# the Unicode controls that reorder or hide text (bidi overrides and isolates, the marks).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(char: str, newline: str) -> str:
    if char == "\t":
        return " "
    if char == "\n":
        return newline
    code = ord(char)
    if code < 0x20:
        return "^" + chr(code + 0x40)
    if code == 0x7F:
        return "^?"
    if code <= 0x9F:
        return f"\\x{code:02x}"
    return f"<U+{code:04X}>"


def inert(text: object, *, max_len: int | None = None, newlines: bool = False) -> str:
    """Text safe to put on a terminal: control characters in caret notation, bidi controls
    named, so an escape sequence in a query result, a note or an error is seen, never obeyed.
    With `newlines`, line breaks stay line breaks (a multi-line message); otherwise a space.

    >>> inert("ok\\x1b[31mred")
    'ok^[[31mred'
    >>> inert("a\\tb\\nc"), inert("a\\nb", newlines=True)
    ('a b c', 'a\\nb')
    >>> inert("\\x9b2J")
    '\\\\x9b2J'
    >>> inert("evil\\u202egnp.exe")
    'evil<U+202E>gnp.exe'
    >>> inert("\\x1b]52;c;aGk=\\x07")
    '^[]52;c;aGk=^G'
    >>> inert("[bold]x[/bold]")
    '[bold]x[/bold]'
    >>> inert("abcdef", max_len=4)
    'abc…'
    >>> inert("a\\r\\nb", newlines=True)
    'a\\nb'
    """
    raw = str(text)
    if newlines:
        raw = raw.replace("\r\n", "\n")
    newline = "\n" if newlines else " "
    out = _CONTROL.sub(lambda m: _visible(m.group(), newline), raw)
    if max_len is not None and len(out) > max_len:
        out = out[: max_len - 1] + "…"
    return out
