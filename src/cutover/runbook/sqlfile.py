"""Read a .sql file into its statements, each with the title and help of the comment above it.

Also says whether a statement is a single read-only query (by Postgres's own parser, in
`sqlguard`), and maps Postgres error and parse-tree positions back to the file.
"""

from __future__ import annotations

import bisect
import functools
import re
from pathlib import Path
from typing import NamedTuple

from cutover.runbook import sqlguard, textfile
from cutover.runbook.frozen import frozen
from cutover.runbook.vetted import MEMO

# Token kinds. Only WORD, SEMICOLON and the comment kinds carry meaning for the splitter; the
# rest exist so that nothing inside them is mistaken for structure.
SPACE = "space"
LINE_COMMENT = "line_comment"
BLOCK_COMMENT = "block_comment"
STRING = "string"
QUOTED_IDENT = "quoted_ident"
DOLLAR = "dollar"
WORD = "word"
NUMBER = "number"
SEMICOLON = "semicolon"
OTHER = "other"

_COMMENTS = frozenset({LINE_COMMENT, BLOCK_COMMENT})
_NOT_CODE = frozenset({SPACE, LINE_COMMENT, BLOCK_COMMENT})

# Postgres identifiers may contain '$' after the first character, and any non-ASCII letter.
# Written as "everything but the ASCII that may not appear": the same sets as
# [A-Za-z_\u0080-\U0010ffff] and [A-Za-z0-9_$\u0080-\U0010ffff], but a class spanning all of
# Unicode takes the re compiler ~12 ms at import, on every command (tests/test_sqlfile.py
# checks the two agree on every code point).
_IDENT_START = r"[^\x00-\x40\[-\^`{-\x7f]"  # A-Z, a-z, _, non-ASCII
_IDENT_REST = r"[^\x00-\x23\x25-\x2f\x3a-\x40\[-\^`{-\x7f]"  # and 0-9, $
_TAG_REST = r"[^\x00-\x2f\x3a-\x40\[-\^`{-\x7f]"  # and 0-9 (a $ ends the tag)
_WORD = re.compile(_IDENT_START + _IDENT_REST + "*")
_NUMBER = re.compile(r"[0-9][0-9A-Za-z_.]*")
_DOLLAR_TAG = re.compile(r"\$(?:" + _IDENT_START + _TAG_REST + r"*)?\$")
_SPACE = re.compile(r"\s+")
_DECORATIVE = re.compile(r"[=\-*#~\s]*")


class Token(NamedTuple):
    # A named tuple, not a frozen dataclass: a file is hundreds of tokens, and a frozen
    # dataclass's __init__ sets each field through object.__setattr__ (tokenizing the
    # shipped queries took a third longer).
    kind: str
    start: int
    end: int


def tokenize(source: str) -> list[Token]:
    """Cut SQL into tokens; unterminated strings and comments run to the end.

    >>> [t.kind for t in tokenize("SELECT 'a;b'; -- c")]
    ['word', 'space', 'string', 'semicolon', 'space', 'line_comment']
    """
    tokens: list[Token] = []
    n = len(source)
    i = 0
    while i < n:
        start = i
        c = source[i]
        nxt = source[i + 1] if i + 1 < n else ""
        if c.isspace():
            i = _SPACE.match(source, i).end()
            kind = SPACE
        elif c == "-" and nxt == "-":
            newline = source.find("\n", i)
            i = n if newline < 0 else newline
            kind = LINE_COMMENT
        elif c == "/" and nxt == "*":
            i = _block_comment_end(source, i)
            kind = BLOCK_COMMENT
        elif c == "'":
            i = _quoted_end(source, i + 1, "'", backslash=False)
            kind = STRING
        elif c == '"':
            i = _quoted_end(source, i + 1, '"', backslash=False)
            kind = QUOTED_IDENT
        elif c == ";":
            i += 1
            kind = SEMICOLON
        elif c == "$" and (tag := _DOLLAR_TAG.match(source, i)):
            close = source.find(tag.group(), tag.end())
            i = n if close < 0 else close + len(tag.group())
            kind = DOLLAR
        elif word := _WORD.match(source, i):
            i = word.end()
            kind = WORD
            if word.group() in ("E", "e") and i < n and source[i] == "'":
                # E'...' is the one string form where a backslash escapes the quote.
                i = _quoted_end(source, i + 1, "'", backslash=True)
                kind = STRING
        elif c.isdigit():
            i = _NUMBER.match(source, i).end()
            kind = NUMBER
        else:
            i += 1
            kind = OTHER
        tokens.append(Token(kind, start, i))
    return tokens


def _quoted_end(source: str, i: int, quote: str, *, backslash: bool) -> int:
    """Index just past the closing quote; a doubled quote is an escaped one."""
    n = len(source)
    while i < n:
        c = source[i]
        if backslash and c == "\\":
            i += 2
        elif c == quote:
            if i + 1 < n and source[i + 1] == quote:
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n


def _block_comment_end(source: str, i: int) -> int:
    # Postgres block comments nest, unlike C's.
    depth = 0
    n = len(source)
    while i < n:
        pair = source[i : i + 2]
        if pair == "/*":
            depth += 1
            i += 2
        elif pair == "*/":
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


@frozen
class Statement:
    """One executable statement of a .sql file, with the heading written above it."""

    index: int
    text: str
    title: str | None
    help: str
    line: int
    col: int

    def file_position(self, position: int) -> tuple[int, int]:
        """Map a Postgres error position (1-based characters into `text`) to (line, col).

        >>> Statement(1, "SELECT a,\\n  b FROM t", None, "", 3, 5).file_position(13)
        (4, 3)
        """
        offset = min(max(position, 1), len(self.text) + 1) - 1
        before = self.text[:offset]
        newlines = before.count("\n")
        if newlines == 0:
            return self.line, self.col + offset
        return self.line + newlines, offset - before.rindex("\n")

    def position_of(self, offset: int | None) -> tuple[int, int]:
        """(line, col) of a 0-based character offset into `text` (None: the start).

        >>> Statement(1, "SELECT\\n  dblink()", None, "", 7, 1).position_of(9)
        (8, 3)
        """
        return (self.line, self.col) if offset is None else self.file_position(offset + 1)

    @property
    def keyword(self) -> str:
        """The first SQL keyword, upper-case ("" if there is none)."""
        words = _words(self.text)
        return words[0] if words else ""


def split_statements(source: str) -> list[Statement]:
    """Split SQL source on ';' outside quotes, dollar bodies and comments."""
    # Each chunk keeps where it starts (just past the previous ';') to tell a comment that
    # trails the previous statement from one that heads the next.
    chunks: list[tuple[int, list[Token]]] = [(0, [])]
    for token in tokenize(source):
        if token.kind == SEMICOLON:
            chunks.append((token.end, []))
        else:
            chunks[-1][1].append(token)

    line_starts = _line_starts(source)
    statements: list[Statement] = []
    for chunk_start, chunk in chunks:
        code = [i for i, t in enumerate(chunk) if t.kind not in _NOT_CODE]
        if not code:
            continue
        first, last = chunk[code[0]], chunk[code[-1]]
        # Trailing comments are dropped so the text can be wrapped or followed by more SQL.
        text = source[first.start : last.end]
        line, col = _line_col(line_starts, first.start)
        title, help_ = _heading(source, chunk[: code[0]], chunk_start, after_code=chunk_start > 0)
        statements.append(Statement(len(statements) + 1, text, title, help_, line, col))
    return statements


def read_sql_file(path: Path) -> list[Statement]:
    """The statements of a UTF-8 .sql file (a byte-order mark is ignored).

    Raises textfile.NotUtf8 (with line and column) for a byte that is not UTF-8."""
    return list(_split_once(textfile.read_text(path)))


@functools.lru_cache(maxsize=64)
def _split_once(source: str) -> tuple[Statement, ...]:
    # A file holding several statements is read once per query that names one of them; a
    # file split on an earlier run is not tokenized again (the memo, vetted.py: the
    # tokenizer was 40 % of loading the shipped runbook, on every command).
    kept = _remembered_split(source)
    if kept is not None:
        return kept
    statements = tuple(split_statements(source))
    MEMO.keep("split", source, [[s.text, s.title, s.help, s.line, s.col] for s in statements])
    return statements


def _remembered_split(source: str) -> tuple[Statement, ...] | None:
    """The statements of `source` as an earlier run split it, or None: not remembered, or
    not in the shape _split_once keeps, or a text that is not this file's at the line and
    column it claims (then the file is split afresh)."""
    kept = MEMO.recall("split", source)
    if not isinstance(kept, list):
        return None
    line_starts = _line_starts(source)
    found = []
    for index, entry in enumerate(kept, 1):
        if not isinstance(entry, list) or len(entry) != 5:
            return None
        text, title, help_, line, col = entry
        if (
            not isinstance(text, str)
            or not text
            or not (title is None or isinstance(title, str))
            or not isinstance(help_, str)
            or type(line) is not int
            or type(col) is not int
            or not 1 <= line <= len(line_starts)
            or col < 1
            or not source.startswith(text, line_starts[line - 1] + col - 1)
        ):
            return None
        found.append(Statement(index, text, title, help_, line, col))
    return tuple(found)


def read_only_problem(stmt: Statement) -> str | None:
    """None for a single read-only query, else why it may not run (see `sqlguard`).

    >>> read_only_problem(Statement(1, "SELECT updated_at FROM t", None, "", 1, 1)) is None
    True
    """
    refusal = sqlguard.refusal(stmt.text)
    return None if refusal is None else refusal.reason


def _words(text: str, tokens: list[Token] | None = None) -> list[str]:
    """The bare words of SQL, upper-case; quoted names, strings and comments are not words."""
    return [text[t.start : t.end].upper() for t in tokens or tokenize(text) if t.kind == WORD]


def _heading(
    source: str, leading: list[Token], chunk_start: int, *, after_code: bool
) -> tuple[str | None, str]:
    """Title and help from the nearest comment paragraph above a statement."""
    paragraphs: list[list[str]] = []
    previous_end = chunk_start
    for token in leading:
        if token.kind not in _COMMENTS:
            continue
        gap = source[previous_end : token.start]
        if after_code and not paragraphs and "\n" not in gap:
            # Same line as the previous ';': it annotates that statement, not this one.
            previous_end = token.end
            continue
        if not paragraphs or gap.count("\n") >= 2:
            paragraphs.append([])
        paragraphs[-1].extend(_comment_lines(source[token.start : token.end], token.kind))
        previous_end = token.end
    for paragraph in reversed(paragraphs):
        meaningful = [line for line in paragraph if not _DECORATIVE.fullmatch(line)]
        if meaningful:
            return meaningful[0], "\n".join(meaningful[1:])
    return None, ""


def _comment_lines(comment: str, kind: str) -> list[str]:
    """The words of a comment, one entry per line, markers and margins removed.

    >>> _comment_lines("/* Title\\n * more */", BLOCK_COMMENT)
    ['Title', 'more']
    """
    if kind == LINE_COMMENT:
        return [comment[2:].strip()]
    body = comment[2:-2] if comment.endswith("*/") else comment[2:]
    lines = []
    for line in body.split("\n"):
        line = line.strip()
        # A leading '*' is the margin of a boxed block comment, unless the line is all stars.
        if line.startswith("*") and not _DECORATIVE.fullmatch(line):
            line = line[1:].strip()
        lines.append(line)
    return lines


def _line_starts(source: str) -> list[int]:
    return [0, *(m.end() for m in re.finditer("\n", source))]


def _line_col(line_starts: list[int], offset: int) -> tuple[int, int]:
    index = bisect.bisect_right(line_starts, offset) - 1
    return index + 1, offset - line_starts[index] + 1
