"""Read a text file the operator wrote (the runbook, a .sql file): UTF-8, a byte-order mark
skipped, and a byte that is not UTF-8 named at its line:col, not as a byte offset."""

from __future__ import annotations

import codecs
from pathlib import Path

from cutover.base.errors import CutoverError


class NotUtf8(CutoverError):
    """A byte that is not UTF-8, at a 1-based line and column (in characters)."""

    def __init__(self, line: int, col: int, byte: int):
        self.line, self.col, self.byte = line, col, byte
        guess = bytes([byte]).decode("latin-1")
        looks = f" (in latin-1 it would be {guess!r})" if guess.isprintable() else ""
        super().__init__(
            f"byte 0x{byte:02x} is not UTF-8{looks}; save the file as UTF-8 and try again"
        )


def read_text(path: Path) -> str:
    """The file's text, lines ending in "\\n" (as Python's text mode reads them).

    Raises NotUtf8 for a byte that is not UTF-8, OSError when the file cannot be read."""
    return decode(path.read_bytes())


def decode(raw: bytes) -> str:
    r"""Decode UTF-8 with or without a byte-order mark.

    >>> decode(codecs.BOM_UTF8 + b"a = 1\r\n")
    'a = 1\n'
    >>> try:
    ...     decode("title = 'Änderung'\n".encode("latin-1"))
    ... except NotUtf8 as exc:
    ...     print(exc.line, exc.col, exc)
    1 10 byte 0xc4 is not UTF-8 (in latin-1 it would be 'Ä'); save the file as UTF-8 and try again
    """
    body = raw[len(codecs.BOM_UTF8) :] if raw.startswith(codecs.BOM_UTF8) else raw
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        line_start = body.rfind(b"\n", 0, exc.start) + 1
        # Everything before the bad byte decoded, so the column counts characters.
        col = len(body[line_start : exc.start].decode("utf-8")) + 1
        raise NotUtf8(line, col, body[exc.start]) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")
