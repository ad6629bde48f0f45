"""The journal: the only state. JSON Lines, append-only, hash-chained, written under a lock
and fsynced before the action it records goes ahead, with a head record beside it; read back
and verified incrementally; plus the lock that serialises actions.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cutover.base.errors import CutoverError
from cutover.record.chain import (
    ENVELOPE,
    GENESIS,
    Chain,
    ChainProblem,
    Event,
    Head,
    View,
    check_head,
    event_line,
    parse_line,
    split_lines,
)
from cutover.record.chain import digest as _digest  # noqa: F401  (tests forge with it)
from cutover.record.checkpoint import Mark, checkpoint_path, prefix_sha256
from cutover.record.events import Kind
from cutover.record.fields import event_fields, iso_utc
from cutover.record.identity import current_actor
from cutover.record.journal_read import Cursor, file_mark, follow, head_reached, read_head
from cutover.runbook.frozen import frozen

__all__ = [
    "ENVELOPE",
    "GENESIS",
    "TORN_KIND",
    "ActionBusy",
    "ChainProblem",
    "Event",
    "Journal",
    "JournalRead",
    "Verification",
    "current_actor",
    "iso_utc",
    "remove",
]

# Written by the next writer after a crash left a partial line at the end of the file; it
# names those bytes exactly, so verify can tell a crash from an edit.
TORN_KIND = Kind.TORN

HEAD_SUFFIX = ".head"  # the head record: the last event's seq and hash, and the file's size
LOCK_SUFFIX = ".lock"
PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700
# The folder cutover keeps its state in by default: an existing one is cutover's to make
# private. Any other folder holding a journal is the operator's: we only warn about it.
STATE_FOLDER = ".cutover"

_TAIL_CHUNK = 64 * 1024


@frozen
class JournalRead:
    events: tuple[Event, ...]
    warnings: tuple[str, ...]
    chain: ChainProblem | None = None  # the first place the chain is broken; None when whole
    notes: tuple[str, ...] = ()  # kinds this version does not know (replay skips them)

    @property
    def ok(self) -> bool:
        return self.chain is None


@frozen
class Verification:
    ok: bool
    events: int
    first_bad_seq: int | None
    message: str
    first_bad_line: int | None = None  # 1-based
    problem: ChainProblem | None = None
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, view: View, key: bytes | None, *, empty: str | None, then: str) -> Verification:
        """What a verify says of a view read from the first event (the file's or the
        store's): its first break, or how many events chain (keyed or not); `empty` instead
        when there is nothing to count, `then` after it, the view's notes last."""
        n = len(view.events)
        notes = "".join(f"; note: {note}" for note in view.notes)
        if view.problem is not None:
            p = view.problem
            return cls(False, n, p.seq, p.message + notes, p.line, p, view.notes)
        message = empty or f"{n} event{'s' if n != 1 else ''}, chain intact" + (
            " (keyed)"
            if key
            else " (not keyed: it shows accidents and careless edits, not a rewrite; "
            "set CUTOVER_JOURNAL_KEY to make the chain an HMAC)"
        )
        return cls(True, n, None, message + then + notes, notes=view.notes)


class ActionBusy(CutoverError):
    """Another process holds the action lock; `holder` says who, doing what, since when."""

    def __init__(self, holder: str, what: str = ""):
        self.holder = holder
        self.what = what  # the action the holder named ("rollback", "advance to 50 %")
        super().__init__(f"another cutover action is in progress: {holder}")


def head_path(path: Path) -> Path:
    return path.with_name(path.name + HEAD_SUFFIX)


def remove(path: Path) -> None:
    """Start over on purpose: the journal and its head record go together, or the head
    record would report the new journal's missing events as removed."""
    path = Path(path)
    # The head record first: a reader in between sees a journal without one (a warning),
    # never a head record naming events that are gone (a broken chain).
    head_path(path).unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    checkpoint_path(path).unlink(missing_ok=True)  # it names an event that is gone


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(folder: Path) -> None:
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _make_dirs(folder: Path) -> None:
    """mkdir -p, each new folder 0700 (Path.mkdir gives the parents default modes)."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for new in reversed(missing):
        try:
            os.mkdir(new, PRIVATE_DIR)
        except FileExistsError:
            if not new.is_dir():
                raise


class Journal:
    def __init__(
        self,
        path: Path,
        *,
        actor: str | None = None,
        host: str | None = None,
        clock: Callable[[], datetime] | None = None,
        redact: Callable[[str], str] | None = None,
        key: bytes | None = None,
    ):
        self.path = Path(path)
        # With a key (CUTOVER_JOURNAL_KEY) each event's hash is an HMAC: whoever can write
        # the file but lacks the key cannot rewrite the history. Without one, the chain
        # catches accidents and careless edits, not a determined editor.
        self.key = key or None
        # Every string written passes through the session's redactor: no secret reaches
        # the journal, whatever a flag command or an error message carried.
        self._redact = redact
        self.lock_path = self.path.with_name(self.path.name + LOCK_SUFFIX)
        self.head_path = head_path(self.path)
        self.actor = actor if actor is not None else current_actor()
        self.host = host if host is not None else socket.gethostname()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._cursor: Cursor | None = None
        # A checkpoint's reader: the mark it starts after and its own cursor (the events
        # after the mark only); and the chain of the last read of either, for mark().
        self._tail: tuple[Mark, Cursor] | None = None
        self._last_chain: Chain | None = None
        # What this process is doing under the action lock (None when it holds none): no
        # checkpoint is written meanwhile, so a rollback is never held up by one.
        self.acting: str | None = None
        # The cursor is one reader's memory; a rollback finishing on another thread must
        # not feed it at the same time as the console's poll.
        self._reading = threading.Lock()
        self._notices: tuple[str, ...] | None = None  # permission findings, once per instance
        self._head_trouble: str | None = None

    # -- writing ------------------------------------------------------------------------

    def append(self, kind: str, /, **fields: Any) -> Event:
        """Write one event and make it durable; returns only once it is on disk.

        Works on a broken journal too (a rollback must never be blocked): it chains onto
        the last readable event and leaves every finding where it is. It acknowledges only
        a partial last line (a crash mid-write); whole lines that are not events stay
        unexplained, and a head record the file no longer reaches is left as it is."""
        kind, plain = event_fields(kind, fields, self._redact)
        ts = self._clock()
        self._secure()
        _make_dirs(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
        try:
            # Held across reading the tail, writing, and the head record: that is what makes
            # seq/prev right when several consoles share one journal, and what a reader's
            # shared lock waits for.
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            last, end = self._find_back(fd, size, lambda e: True)
            seq = last.seq + 1 if last else 1
            prev = last.hash if last else GENESIS
            out = b""
            if size and os.pread(fd, 1, size - 1) != b"\n":
                out += b"\n"  # never glue onto a torn line: it stays torn, ours stays whole
            if end < size:
                tail = os.pread(fd, size - end, end)
                partial = tail[tail.rfind(b"\n") + 1 :]
                if partial:  # only a partial last line can be a crash's
                    ack = event_line(
                        seq,
                        ts,
                        self.actor,
                        self.host,
                        TORN_KIND,
                        prev,
                        {
                            "offset": size - len(partial),
                            "length": len(partial),
                            "sha256": hashlib.sha256(partial).hexdigest(),
                        },
                        self.key,
                    )
                    out += ack[1]
                    seq, prev = seq + 1, ack[0].hash
            event, line = event_line(seq, ts, self.actor, self.host, kind, prev, plain, self.key)
            # Accepting a break starts the head record over from this event: the break it
            # names is on record in the event itself.
            agrees = kind == Kind.CHAIN_ACCEPTED or self._head_agrees(fd, size, last)
            _write_all(fd, out + line)
            os.fsync(fd)
            if size == 0:
                _fsync_dir(self.path.parent)  # a new file is durable once its entry is
            if agrees:
                try:
                    self._write_head(Head(event.seq, event.hash, size + len(out) + len(line)))
                    self._head_trouble = None
                except OSError as exc:
                    # The event is on disk, and a record behind the file is no finding: the
                    # action goes ahead (a rollback must), and the next read says so.
                    self._head_trouble = f"the journal's head record could not be updated: {exc}"
            return event
        finally:
            os.close(fd)  # closing releases the lock

    def _head_agrees(self, fd: int, size: int, last: Event | None) -> bool:
        """May the head record move on? Only if the file still reaches the event it names:
        otherwise it is the evidence that the end of the journal was removed, and stays."""
        status, head = read_head(self.head_path)
        if status == "missing":
            return True  # a journal from before head records, or a new one: start one
        if head is None or last is None or last.seq < head.seq:
            return False
        if last.seq == head.seq:
            return last.hash == head.hash
        # A crash between an append and its head record leaves the record behind the file.
        named, _ = self._find_back(fd, size, lambda e: e.seq <= head.seq)
        return named is not None and named.seq == head.seq and named.hash == head.hash

    def _write_head(self, head: Head) -> None:
        """Replace the head record whole: written to a temporary file, fsynced, renamed
        over, and the folder fsynced. A reader (or a reboot) sees the old record or the new
        one, never half of one, so an unreadable head record is always a finding."""
        tmp = self.head_path.with_name(self.head_path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        try:
            os.fchmod(fd, PRIVATE_FILE)  # a leftover temporary may have had another mode
            _write_all(fd, head.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.head_path)
        _fsync_dir(self.head_path.parent)

    @staticmethod
    def _find_back(fd: int, size: int, match: Callable[[Event], bool]) -> tuple[Event | None, int]:
        """The last readable event that `match`es and the byte offset just past its line,
        reading backwards from the end so an append costs the same on day 7 as on day 1."""
        chunk = _TAIL_CHUNK
        while True:
            start = max(0, size - chunk)
            lines = split_lines(os.pread(fd, size - start, start), base=start)
            if start > 0:
                lines = lines[1:]  # may begin mid-line
            for line in reversed(lines):
                got = parse_line(line.raw)
                if got is not None and match(got[0]):
                    return got[0], line.end
            if start == 0:
                return None, 0
            chunk *= 4

    # -- reading ------------------------------------------------------------------------

    def read(self) -> JournalRead:
        """The journal, verified. A long-lived Journal (the console's) verifies only what
        was appended since its last read; it starts over when the file was replaced, shrank,
        or changed under what it had verified."""
        view, warnings = self._scan()
        return JournalRead(view.events, warnings, view.problem, view.notes)

    def verify(self) -> Verification:
        """Check the whole file from its first line, whatever was read before."""
        view, warnings = self._scan(afresh=True)
        empty = not view.lines and not self.path.exists()
        return Verification.of(
            view,
            self.key,
            empty="the journal is empty (no file yet)" if empty else None,
            then="".join(f"; {w}" for w in warnings),
        )

    @property
    def redactor(self) -> Callable[[str], str] | None:
        """The session's redactor, for what is written elsewhere on the journal's behalf."""
        return self._redact

    def head_words(self) -> str:
        """The chain's head as one line for a message that leaves this box (a webhook): a
        copy of it elsewhere is what shows a later rewrite of everything up to it."""
        state, head = read_head(self.head_path)
        if head is None:
            return f"journal head {state}"
        return f"journal head seq {head.seq} {head.hash}" + (" (keyed)" if self.key else "")

    def tail_since(self, seq: int) -> tuple[Event, ...]:
        """Whole-line events after `seq`, verified on the way. Polling it every second costs
        only the new bytes."""
        tail = self._tail
        view = self._read_tail(tail[0]) if tail is not None and tail[0].seq <= seq else None
        if view is None:
            view, _ = self._scan()
        events = view.events[: view.committed]
        start = len(events)
        while start and events[start - 1].seq > seq:
            start -= 1
        return events[start:]

    def read_from(self, mark: Mark) -> JournalRead | None:
        """The events after a checkpoint's mark, verified onto the chain as it stood there,
        without reading a byte before it; None (read it all instead) unless the file still
        holds the mark's event line at its place, and everything after it chains, whole, to
        the head record. Kept between reads as `read` keeps its cursor."""
        with self._reading:
            notices = self._secure()
            view = self._read_tail_locked(mark)
            if view is None:
                return None
        warnings = list(notices) + list(view.warnings)
        if self._head_trouble:
            warnings.append(self._head_trouble)
        return JournalRead(view.events, tuple(warnings), None, view.notes)

    def mark(self) -> Mark | None:
        """Where the chain of the last read stands (for a checkpoint), with the digest of
        every byte through it; None while broken, or when the file changed under it."""
        with self._reading:
            chain = self._last_chain
            return file_mark(self.path, chain) if chain is not None else None

    def _read_tail(self, mark: Mark) -> View | None:
        with self._reading:
            self._secure()
            return self._read_tail_locked(mark)

    def _read_tail_locked(self, mark: Mark) -> View | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            self._tail = None
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            st = os.fstat(fd)
            kept = self._tail[1] if self._tail is not None and self._tail[0] == mark else None

            def start() -> tuple[Chain, int] | None:
                at = mark.offset - mark.line_length
                if at < 0 or st.st_size < mark.offset:
                    return None  # shorter than the checkpoint: cut back, or another file
                line = os.pread(fd, mark.line_length, at)
                if not mark.names(line):
                    return None  # rewritten at the mark, or another journal
                if not mark.prefix_sha256 or prefix_sha256(fd, mark.offset) != mark.prefix_sha256:
                    return None  # a byte before it changed: the whole read says where
                return mark.resume(self.key, line), mark.offset

            followed = follow(fd, st, kept, start)
            view = followed[0] if followed is not None else None
            if followed is None or view is None or view.problem is not None:
                self._tail = None
                return None
            if not head_reached(
                read_head(self.head_path), view, mark, st.st_size, self.head_path.name
            ):
                self._tail = None
                return None
            self._tail = (mark, followed[1])
            self._last_chain = followed[1].chain
            return view
        finally:
            os.close(fd)

    def _scan(self, afresh: bool = False) -> tuple[View, tuple[str, ...]]:
        with self._reading:
            if afresh:
                self._cursor = None
            return self._scan_locked()

    def _scan_locked(self) -> tuple[View, tuple[str, ...]]:
        notices = self._secure()
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self._cursor = None
            return self._judge(Chain(self.key).read(b""), 0, read_head(self.head_path), notices)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # no append is half-visible, head record included
            st = os.fstat(fd)
            followed = follow(fd, st, self._cursor, lambda: (Chain(self.key), 0))
            assert followed is not None  # reading from the first byte always starts
            view, self._cursor = followed
            self._last_chain = self._cursor.chain
            return self._judge(view, st.st_size, read_head(self.head_path), notices)
        finally:
            os.close(fd)

    def _judge(
        self, view: View, size: int, head: tuple[str, Head | None], notices: tuple[str, ...]
    ) -> tuple[View, tuple[str, ...]]:
        """Add what the head record says to what the lines said."""
        status, record = head
        name = self.head_path.name
        warnings = list(notices) + list(view.warnings)
        if self._head_trouble:
            warnings.append(self._head_trouble)
        problem = view.problem
        if status == "missing":
            if view.events:
                warnings.append(
                    f"the journal has no head record ({name}) yet, so removing its last lines "
                    "would go unnoticed; the next entry writes one"
                )
        elif record is None:
            problem = problem or ChainProblem(
                None,
                None,
                f"the journal's head record ({name}) is unreadable: edited or corrupted "
                "(cutover replaces it whole, so a crash cannot leave it so); if you know why, "
                "move it aside and the next entry writes a new one",
                f"head record {name} unreadable",
            )
        else:
            problem = problem or check_head(view, record, size, name)
        if problem is not view.problem:
            view = View(
                view.events,
                view.committed,
                view.warnings,
                problem,
                view.notes,
                view.lines,
                view.line_of,
            )
        return view, tuple(warnings)

    # -- files only their owner can read --------------------------------------------------

    def _secure(self) -> tuple[str, ...]:
        """Make the journal's files 0600 and its folder 0700 once per Journal, where they
        are ours to change, and say what was done or cannot be."""
        if self._notices is not None:
            return self._notices
        me = os.geteuid()
        folder = self.path.parent
        files = (self.path, self.lock_path, self.head_path)
        tightened, loose = [], []
        for path in (folder, *files):
            try:
                st = os.stat(path)
            except OSError:
                continue
            mode = stat.S_IMODE(st.st_mode)
            if path == folder and folder.name != STATE_FOLDER:
                # The operator's own folder: 0600 files keep their contents private; only
                # a folder others can write lets them replace the journal.
                if mode & 0o022:
                    loose.append(
                        f"the journal's folder {folder} is {mode:04o}: others can replace "
                        f"the journal in it; `chmod go-w {folder}` (or keep the journal in "
                        f"a folder of its own)"
                    )
                continue
            private = PRIVATE_DIR if path == folder else PRIVATE_FILE
            if not mode & 0o077:
                continue
            if st.st_uid == me:
                try:
                    os.chmod(path, mode & private)
                except OSError:
                    pass
                else:
                    tightened.append(f"{path.name} {mode:04o} → {mode & private:04o}")
                    continue
            loose.append(
                f"{path} is {mode:04o}, so others can read it, and it belongs to uid "
                f"{st.st_uid}: ask its owner to `chmod {private:o} {path}`"
            )
        notices = []
        if tightened:
            notices.append(
                "made the journal's files private (only their owner can read them): "
                + ", ".join(tightened)
            )
        self._notices = (*notices, *loose)
        return self._notices

    # -- the action lock ----------------------------------------------------------------

    @contextmanager
    def action_lock(self, what: str) -> Iterator[None]:
        """Only one process at a time may change traffic (advance, rollback). Non-blocking:
        a second console is told who is busy rather than left waiting behind them."""
        self._secure()
        _make_dirs(self.lock_path.parent)
        # Never deleted: unlinking a flock'ed file lets two processes lock two different files.
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ActionBusy(*self._holder(fd)) from None
            holder = {
                "actor": self.actor,
                "host": self.host,
                "pid": os.getpid(),
                "what": what,
                "since": iso_utc(self._clock()),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder, ensure_ascii=False).encode("utf-8"), 0)
            self.acting = what
            try:
                yield
            finally:
                self.acting = None
                os.ftruncate(fd, 0)  # a stale name in an unheld lock would mislead
        finally:
            os.close(fd)

    @staticmethod
    def _holder(fd: int) -> tuple[str, str]:
        """Who holds the lock, in words, and what they said they are doing."""
        raw = os.pread(fd, 64 * 1024, 0)
        try:
            h = json.loads(raw)
            return (
                f"{h['actor']} on {h['host']} (pid {h['pid']}) is running "
                f"{h['what']!r} since {h['since']}",
                str(h["what"]),
            )
        except (ValueError, KeyError, TypeError):
            # Between the holder's lock and its write, or written by something else.
            text = raw.decode("utf-8", "replace").strip()
            return text or "another process (it has not said who yet)", ""
