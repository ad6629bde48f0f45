"""Where each key of a TOML document is, since tomllib gives values but no positions.

The text is assumed to parse with tomllib already; this scanner finds structure, it does not
validate it.
"""

from __future__ import annotations

import bisect
import re
import tomllib

from cutover.runbook.frozen import frozen


@frozen
class Pos:
    """1-based line and column of a key and of its value (a header's value is the header)."""

    line: int
    col: int
    value_line: int
    value_col: int


Path = tuple[str | int, ...]

START = Pos(1, 1, 1, 1)

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_INLINE_WS = " \t"
_ESCAPES = dict(zip('btnfre"\\', '\b\t\n\f\r\x1b"\\', strict=True))
_SUFFIX = re.compile(
    r"^(?P<msg>.*) \(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)$", re.S
)


def key_positions(text: str) -> dict[Path, Pos]:
    """Every key, table and array element of a TOML document, with its position.

    >>> key_positions('[flag]\\nkind = "file"')[("flag", "kind")]
    Pos(line=2, col=1, value_line=2, value_col=8)
    """
    return _Scanner(text).scan()


def nearest(positions: dict[Path, Pos], path: Path) -> Pos:
    """The position of `path`, else of its longest prefix present, else the document start.

    >>> nearest({("a",): Pos(3, 1, 3, 1)}, ("a", "b", 0))
    Pos(line=3, col=1, value_line=3, value_col=1)
    """
    for end in range(len(path), 0, -1):
        if path[:end] in positions:
            return positions[path[:end]]
    return START


def decode_error(exc: tomllib.TOMLDecodeError, text: str | None = None) -> tuple[int, int, str]:
    """(line, col, message) of a tomllib error.

    Python 3.11 only embeds the place in the message; newer versions also carry
    lineno/colno. An error "at end of document" is placed after the last character of
    `text` when given, else at 1:1.

    >>> decode_error(tomllib.TOMLDecodeError("Invalid value (at line 3, column 7)"))
    (3, 7, 'Invalid value')
    """
    message = str(getattr(exc, "msg", "") or exc)
    match = _SUFFIX.match(message)
    if match:
        message = match.group("msg")
    lineno, colno = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    if isinstance(lineno, int) and isinstance(colno, int):
        return lineno, colno, message
    if match and match.group("line"):
        return int(match.group("line")), int(match.group("col")), message
    if text is not None:
        lines = text.replace("\r\n", "\n").split("\n")
        return len(lines), len(lines[-1]) + 1, message
    return 1, 1, message


class _Scanner:
    """One pass over the text, recording positions as keys and headers go by."""

    def __init__(self, text: str):
        # tomllib does the same before parsing, so its columns and ours agree.
        self.src = text.replace("\r\n", "\n")
        self.i = 0
        self.line_starts = [0, *(m.end() for m in re.finditer("\n", self.src))]
        self.positions: dict[Path, Pos] = {}
        # Arrays of tables, by their concrete path, to the index of their latest element.
        self.latest: dict[Path, int] = {}

    def scan(self) -> dict[Path, Pos]:
        table: Path = ()
        src, n = self.src, len(self.src)
        while self.i < n:
            self._skip(_INLINE_WS + "\n")
            if self.i >= n:
                break
            c = src[self.i]
            if c == "#":
                self._skip_comment()
            elif c == "[":
                table = self._header()
            else:
                self._key_value(table)
            self._skip(_INLINE_WS)
            if self.i < n and src[self.i] == "#":
                self._skip_comment()
            # Whatever is left of the line is not structure we understand; don't loop on it.
            if self.i < n and src[self.i] != "\n":
                newline = src.find("\n", self.i)
                self.i = n if newline < 0 else newline
        return self.positions

    # --- structure ---

    def _header(self) -> Path:
        start = self.i
        array = self.src.startswith("[[", self.i)
        self.i += 2 if array else 1
        keys = [key for key, _ in self._key()]
        self._skip(_INLINE_WS)
        self.i += 2 if array else 1
        pos = self._pos(start, start)
        path: Path = ()
        for depth, key in enumerate(keys):
            path = (*path, key)
            last = depth == len(keys) - 1
            if last and array:
                index = self.latest.get(path, -1) + 1
                self.latest[path] = index
                self.positions.setdefault(path, pos)
                path = (*path, index)
            elif path in self.latest:
                self.positions.setdefault(path, pos)
                path = (*path, self.latest[path])
            if last:
                self.positions[path] = pos
            else:
                self.positions.setdefault(path, pos)
        return path

    def _key_value(self, table: Path) -> None:
        keys = self._key()
        self._skip(_INLINE_WS)
        if not keys or not self.src.startswith("=", self.i):
            return
        self.i += 1
        self._skip(_INLINE_WS)
        value_at = self.i
        path = table
        for depth, (key, key_at) in enumerate(keys):
            path = (*path, key)
            pos = self._pos(key_at, value_at)
            if depth == len(keys) - 1:
                self.positions[path] = pos
            else:
                self.positions.setdefault(path, pos)
        self._value(path)

    def _value(self, path: Path) -> None:
        src = self.src
        if src.startswith(('"""', "'''"), self.i):
            self._multiline_string(src[self.i])
        elif src.startswith('"', self.i):
            self._string('"')
        elif src.startswith("'", self.i):
            self._string("'")
        elif src.startswith("[", self.i):
            self._array(path)
        elif src.startswith("{", self.i):
            self._inline_table(path)
        else:
            # Numbers, booleans and dates (which may hold a space) end where structure resumes.
            while self.i < len(src) and src[self.i] not in ",]}\n#":
                self.i += 1

    def _array(self, path: Path) -> None:
        self.i += 1
        index = 0
        while self.i < len(self.src):
            self._skip_blank()
            if self.src.startswith("]", self.i):
                self.i += 1
                return
            value_at = self.i
            self.positions[(*path, index)] = self._pos(value_at, value_at)
            self._value((*path, index))
            index += 1
            self._skip_blank()
            if self.src.startswith(",", self.i):
                self.i += 1

    def _inline_table(self, path: Path) -> None:
        self.i += 1
        while self.i < len(self.src):
            self._skip_blank()
            if self.src.startswith("}", self.i):
                self.i += 1
                return
            before = self.i
            self._key_value(path)
            self._skip_blank()
            if self.src.startswith(",", self.i):
                self.i += 1
            elif self.i == before:
                self.i += 1  # not a key: step over it rather than loop forever

    # --- lexical ---

    def _key(self) -> list[tuple[str, int]]:
        """A dotted key as (part, offset) pairs; quoted parts may hold dots."""
        parts: list[tuple[str, int]] = []
        src = self.src
        while True:
            self._skip(_INLINE_WS)
            at = self.i
            if src.startswith('"', at):
                end = self._string('"')
                parts.append((_unescape(src[at + 1 : end - 1]), at))
            elif src.startswith("'", at):
                end = self._string("'")
                parts.append((src[at + 1 : end - 1], at))
            elif bare := _BARE_KEY.match(src, at):
                self.i = bare.end()
                parts.append((bare.group(), at))
            else:
                return parts
            self._skip(_INLINE_WS)
            if not src.startswith(".", self.i):
                return parts
            self.i += 1

    def _string(self, quote: str) -> int:
        """Skip a one-line string starting at its opening quote; return the end offset."""
        src, i = self.src, self.i + 1
        while i < len(src) and src[i] not in (quote, "\n"):
            i += 2 if quote == '"' and src[i] == "\\" else 1
        self.i = min(i + 1, len(src))
        return self.i

    def _multiline_string(self, quote: str) -> None:
        src, delimiter = self.src, quote * 3
        i = self.i + 3
        while i < len(src) and not src.startswith(delimiter, i):
            i += 2 if quote == '"' and src[i] == "\\" else 1
        i += 3
        # Up to two quotes may sit right before the closing delimiter: """a""""" ends late.
        for _ in range(2):
            if i < len(src) and src[i] == quote:
                i += 1
        self.i = min(i, len(src))

    def _skip(self, chars: str) -> None:
        while self.i < len(self.src) and self.src[self.i] in chars:
            self.i += 1

    def _skip_comment(self) -> None:
        newline = self.src.find("\n", self.i)
        self.i = len(self.src) if newline < 0 else newline

    def _skip_blank(self) -> None:
        """Whitespace, newlines and comments, as allowed inside arrays."""
        while self.i < len(self.src):
            self._skip(_INLINE_WS + "\n")
            if self.src.startswith("#", self.i):
                self._skip_comment()
            else:
                return

    def _pos(self, key_at: int, value_at: int) -> Pos:
        return Pos(*self._line_col(key_at), *self._line_col(value_at))

    def _line_col(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1


def _unescape(body: str) -> str:
    r"""Decode a basic-string key.

    >>> _unescape(r'a\"b\u00e9')
    'a"bé'
    """
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\" or i + 1 >= len(body):
            out.append(c)
            i += 1
            continue
        code = body[i + 1]
        width = {"u": 4, "U": 8, "x": 2}.get(code)
        if width:
            out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            i += 2 + width
        else:
            out.append(_ESCAPES.get(code, code))
            i += 2
    return "".join(out)
