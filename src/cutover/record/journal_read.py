"""Reading a journal file on from where a reader stopped: the cursor a long-lived reader keeps
between reads, or a checkpoint's mark (#20), so only the bytes after it are read and
verified; and the head record beside the file, as read and as checked against such a tail."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from cutover.record.chain import Chain, Head, View, check_head
from cutover.record.checkpoint import Mark, prefix_sha256
from cutover.runbook.frozen import frozen


def read_head(path: Path) -> tuple[str, Head | None]:
    """("missing", None), ("unreadable", None) or ("ok", head)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return "missing", None
    except OSError:  # a folder in its place, no permission
        return "unreadable", None
    head = Head.decode(raw)
    return ("ok", head) if head else ("unreadable", None)


@frozen
class Cursor:
    """Where the incremental reader stopped: the same file (inode), unchanged (the last
    whole line it verified still reads the same, and a file of the same size was not
    written since), so only the bytes after `chain.offset` are new."""

    dev: int
    inode: int
    size: int
    mtime_ns: int
    chain: Chain  # its last_line is re-read and compared each time


def follow(
    fd: int,
    st: os.stat_result,
    cursor: Cursor | None,
    start: Callable[[], tuple[Chain, int] | None],
) -> tuple[View, Cursor] | None:
    """Read on from `cursor` when it still applies (only the new bytes), else from what
    `start` gives (a fresh chain and the offset it reads from; None: it cannot)."""
    data = None
    if (
        cursor is not None
        and (cursor.dev, cursor.inode) == (st.st_dev, st.st_ino)
        and st.st_size >= cursor.chain.offset
        and (st.st_size != cursor.size or st.st_mtime_ns == cursor.mtime_ns)
    ):
        verified = cursor.chain.last_line
        begin = cursor.chain.offset - len(verified)
        data = os.pread(fd, st.st_size - begin, begin)
        if data.startswith(verified):
            data = data[len(verified) :]
            chain = cursor.chain
        else:
            data = None  # what was verified changed under us
    if data is None:
        started = start()
        if started is None:
            return None
        chain, offset = started
        data = os.pread(fd, st.st_size - offset, offset)
    view = chain.read(data)
    return view, Cursor(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, chain)


def head_reached(
    head: tuple[str, Head | None], view: View, mark: Mark, size: int, name: str
) -> bool:
    """The head record's check on a tail read after `mark` alone: it names the mark's event,
    or one after it that the tail holds. Anything else (no head record, one behind the mark,
    one the tail does not reach) is left to a whole read, which says what it is."""
    status, record = head
    if status != "ok" or record is None or record.seq < mark.seq:
        return False
    if record.seq == mark.seq:
        return record.hash == mark.hash and size >= record.size
    return check_head(view, record, size, name) is None


def file_mark(path: Path, chain: Chain) -> Mark | None:
    """A checkpoint's mark for a journal file whose chain verified through `chain`, with the
    digest of every byte through its last event; None while the chain is broken, or when
    the file no longer holds that event's line where it was verified (no checkpoint blesses
    what changed since)."""
    mark = Mark.of(chain)
    if mark is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        if not mark.names(os.pread(fd, mark.line_length, mark.offset - mark.line_length)):
            return None
        prefix = prefix_sha256(fd, mark.offset)
    except OSError:
        return None
    finally:
        os.close(fd)
    return replace(mark, prefix_sha256=prefix) if prefix is not None else None
