"""The journal: the only state. JSON Lines, append-only, hash-chained, written under a lock
and fsynced before the action it records goes ahead; plus the lock that serialises actions.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cutover.errors import CutoverError

ENVELOPE = ("seq", "ts", "actor", "host", "kind", "prev", "hash")
GENESIS = ""  # the `prev` of seq 1
# Written by the next writer after a crash left bytes that are not an event at the end of
# the file; it names those bytes exactly, so verify can tell a crash from an edit.
TORN_KIND = "journal.torn"

_TAIL_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Event:
    seq: int
    ts: datetime  # UTC, aware
    actor: str
    host: str
    kind: str
    fields: dict[str, Any]  # the event's own fields: everything except the envelope
    prev: str
    hash: str

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)


@dataclass(frozen=True)
class JournalRead:
    events: tuple[Event, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    first_bad_seq: int | None
    message: str
    first_bad_line: int | None = None  # 1-based; set when the bad spot has no readable seq


class ActionBusy(CutoverError):
    """Another process holds the action lock; `holder` says who, doing what, since when."""

    def __init__(self, holder: str):
        self.holder = holder
        super().__init__(f"another cutover action is in progress: {holder}")


def current_actor(environ: Mapping[str, str] = os.environ) -> str:
    """The login name behind this session (the human, when run through sudo), and where
    they came in from over SSH."""
    name = environ.get("SUDO_USER") or environ.get("USER") or environ.get("LOGNAME")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry, e.g. a bare container uid
            name = f"uid {os.getuid()}"
    ssh = environ.get("SSH_CONNECTION", "").split()
    return f"{name} from {ssh[0]}" if ssh else name


def iso_utc(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt.isoformat()} (give it a timezone)")
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _digest(obj: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {k: v for k, v in obj.items() if k != "hash"},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        try:
            return iso_utc(value)
        except ValueError as e:
            raise TypeError(str(e)) from None
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _plain_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields exactly as they will read back (tuples as lists, datetimes as text), so
    the Event that append returns equals the one read later."""
    clash = sorted(set(fields) & set(ENVELOPE))
    if clash:
        raise ValueError(f"journal field name(s) {', '.join(clash)} are reserved for the envelope")
    plain = {}
    for name, value in fields.items():
        try:
            text = json.dumps(value, default=_encode_value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"journal field {name!r}: {e}") from None
        plain[name] = json.loads(text)
    return plain


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, redact) for v in value]
    return value


def _parse(raw: bytes) -> Event | None:
    """An event if the line is structurally one; hashes and links are verify's business."""
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(obj, dict):
        return None
    seq = obj.get("seq")
    if type(seq) is not int or seq < 1:
        return None
    if not all(isinstance(obj.get(k), str) for k in ENVELOPE if k != "seq"):
        return None
    try:
        ts = datetime.fromisoformat(obj["ts"])
    except ValueError:
        return None
    if ts.tzinfo is None:
        return None
    return Event(
        seq=seq,
        ts=ts.astimezone(UTC),
        actor=obj["actor"],
        host=obj["host"],
        kind=obj["kind"],
        fields={k: v for k, v in obj.items() if k not in ENVELOPE},
        prev=obj["prev"],
        hash=obj["hash"],
    )


def _hash_ok(raw: bytes, event: Event) -> bool:
    try:
        return _digest(json.loads(raw)) == event.hash
    except ValueError:  # NaN/Infinity sneaked in: not something we wrote
        return False


@dataclass(frozen=True)
class _Line:
    number: int  # 1-based
    offset: int
    raw: bytes  # without the newline
    terminated: bool


def _lines(data: bytes, base: int = 0, first_number: int = 1) -> list[_Line]:
    # Split on b"\n" only: str.splitlines would also split on U+2028 and friends, which
    # ensure_ascii=False leaves raw inside values.
    out, offset, number = [], 0, first_number
    while offset < len(data):
        end = data.find(b"\n", offset)
        if end < 0:
            out.append(_Line(number, base + offset, data[offset:], terminated=False))
            break
        out.append(_Line(number, base + offset, data[offset:end], terminated=True))
        offset, number = end + 1, number + 1
    return out


@dataclass(frozen=True)
class _Walk:
    events: tuple[Event, ...]
    warnings: tuple[str, ...]
    failure: Verification | None


def _torn(line: _Line) -> str:
    return f"journal line {line.number} is torn (a crash mid-write?); skipped"


def _walk(data: bytes) -> _Walk:
    """Read and check the whole chain in one pass; read() and verify() share it."""
    events: list[Event] = []
    warnings: list[str] = []
    failure: Verification | None = None
    expected_seq, prev_hash = 1, GENESIS
    bad: list[_Line] = []  # unreadable lines since the last event

    def fail(seq: int | None, line: int | None, message: str) -> None:
        nonlocal failure
        if failure is None:
            failure = Verification(False, 0, seq, message, line)

    for line in _lines(data):
        event = _parse(line.raw)
        if event is None:
            bad.append(line)
            continue
        if bad:
            start = bad[0].offset
            acked = (
                event.kind == TORN_KIND
                and event.get("offset") == start
                and isinstance(event.get("length"), int)
                and line.offset - start - event.get("length") in (0, 1)
                and hashlib.sha256(data[start : start + event.get("length")]).hexdigest()
                == event.get("sha256")
            )
            for b in bad:
                if acked:
                    warnings.append(_torn(b))
                else:
                    warnings.append(
                        f"journal line {b.number} is not a journal event; skipped "
                        "(journal --verify reports it)"
                    )
            if not acked:
                fail(
                    None,
                    bad[0].number,
                    f"journal line {bad[0].number} (after seq {expected_seq - 1}) is not "
                    "a journal event, and no crash explains it: edited or corrupted",
                )
            bad = []
        events.append(event)
        if not _hash_ok(line.raw, event):
            fail(
                event.seq,
                line.number,
                f"seq {event.seq} (line {line.number}) does not match its hash: "
                "changed after it was written",
            )
        elif event.seq > expected_seq:
            missing = (
                f"seq {expected_seq} is"
                if event.seq == expected_seq + 1
                else f"seqs {expected_seq}–{event.seq - 1} are"
            )
            fail(
                expected_seq,
                line.number,
                f"{missing} missing: seq {event.seq} (line {line.number}) follows "
                f"seq {expected_seq - 1}; lines were removed",
            )
        elif event.seq < expected_seq:
            fail(
                event.seq,
                line.number,
                f"seq {event.seq} (line {line.number}) repeats or goes back after "
                f"seq {expected_seq - 1}",
            )
        elif event.prev != prev_hash:
            fail(
                event.seq,
                line.number,
                f"seq {event.seq} (line {line.number}) does not chain to the event before "
                "it: an earlier line was changed, removed or inserted",
            )
        expected_seq, prev_hash = event.seq + 1, event.hash
    # Unreadable bytes after the last event: a crash mid-write that no one appended after.
    warnings.extend(_torn(b) for b in bad)
    return _Walk(tuple(events), tuple(warnings), failure)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Journal:
    def __init__(
        self,
        path: Path,
        *,
        actor: str | None = None,
        host: str | None = None,
        clock: Callable[[], datetime] | None = None,
        redact: Callable[[str], str] | None = None,
    ):
        self.path = Path(path)
        # Every string written passes through the session's redactor: no secret reaches
        # the journal, whatever a flag command or an error message carried.
        self._redact = redact
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.actor = actor if actor is not None else current_actor()
        self.host = host if host is not None else socket.gethostname()
        self._clock = clock or (lambda: datetime.now(UTC))
        # tail_since resumes here: (inode, byte offset just past the last whole line, last seq)
        self._tail: tuple[int, int, int] | None = None

    # -- writing ------------------------------------------------------------------------

    def append(self, kind: str, /, **fields: Any) -> Event:
        """Write one event and make it durable; returns only once it is on disk."""
        if not kind:
            raise ValueError("journal event kind is empty")
        plain = _plain_fields(fields)
        if self._redact is not None:
            plain = {k: _redacted(v, self._redact) for k, v in plain.items()}
        ts = self._clock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            # Held across reading the tail and writing: that is what makes seq/prev right
            # when several consoles share one journal.
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            last, end = self._last_event(fd, size)
            seq = last.seq + 1 if last else 1
            prev = last.hash if last else GENESIS
            out = b""
            if size and os.pread(fd, 1, size - 1) != b"\n":
                out += b"\n"  # never glue onto a torn line: it stays torn, ours stays whole
            if end < size:
                junk = os.pread(fd, size - end, end)
                ack = self._record(
                    seq,
                    ts,
                    TORN_KIND,
                    prev,
                    {
                        "offset": end,
                        "length": len(junk),
                        "sha256": hashlib.sha256(junk).hexdigest(),
                    },
                )
                out += ack[1]
                seq, prev = seq + 1, ack[0].hash
            event, line = self._record(seq, ts, kind, prev, plain)
            _write_all(fd, out + line)
            os.fsync(fd)
            if size == 0:
                self._fsync_dir()  # a new file is only durable once its directory entry is
            return event
        finally:
            os.close(fd)  # closing releases the lock

    def _record(
        self, seq: int, ts: datetime, kind: str, prev: str, fields: dict[str, Any]
    ) -> tuple[Event, bytes]:
        obj: dict[str, Any] = {
            "seq": seq,
            "ts": iso_utc(ts),
            "actor": self.actor,
            "host": self.host,
            "kind": kind,
        }
        obj.update(fields)
        obj["prev"] = prev
        obj["hash"] = _digest(obj)
        line = json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"
        event = Event(
            seq,
            datetime.fromisoformat(obj["ts"]),
            self.actor,
            self.host,
            kind,
            fields,
            prev,
            obj["hash"],
        )
        return event, line

    @staticmethod
    def _last_event(fd: int, size: int) -> tuple[Event | None, int]:
        """The last readable event and the byte offset just past its line, reading backwards
        from the end so an append costs the same on day 7 as on day 1."""
        chunk = _TAIL_CHUNK
        while True:
            start = max(0, size - chunk)
            data = os.pread(fd, size - start, start)
            lines = _lines(data, base=start)
            if start > 0:
                lines = lines[1:]  # may begin mid-line
            for line in reversed(lines):
                event = _parse(line.raw)
                if event is not None:
                    return event, line.offset + len(line.raw) + line.terminated
            if start == 0:
                return None, 0
            chunk *= 4

    def _fsync_dir(self) -> None:
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    # -- reading ------------------------------------------------------------------------

    def _read_bytes(self, offset: int = 0) -> tuple[bytes, int, int] | None:
        """(bytes from offset, or from 0 if the file is now shorter; the offset used; inode),
        under a shared lock so no append is half-visible. None when there is no journal."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            st = os.fstat(fd)
            if offset > st.st_size:
                offset = 0
            return os.pread(fd, st.st_size - offset, offset), offset, st.st_ino
        finally:
            os.close(fd)

    def read(self) -> JournalRead:
        got = self._read_bytes()
        if got is None:
            return JournalRead((), ())
        walk = _walk(got[0])
        return JournalRead(walk.events, walk.warnings)

    def verify(self) -> Verification:
        got = self._read_bytes()
        if got is None:
            return Verification(True, 0, None, "the journal is empty (no file yet)")
        walk = _walk(got[0])
        n = len(walk.events)
        if walk.failure is not None:
            f = walk.failure
            return Verification(False, n, f.first_bad_seq, f.message, f.first_bad_line)
        message = f"{n} event{'s' if n != 1 else ''}, chain intact"
        if walk.warnings:
            message += "; " + "; ".join(walk.warnings)
        return Verification(True, n, None, message)

    def tail_since(self, seq: int) -> tuple[Event, ...]:
        """Events after `seq`. Reads on from where the last call stopped, so polling it
        every second costs only the new bytes."""
        inode, offset, seen = self._tail or (0, 0, 0)
        if seq < seen:
            offset = 0  # asked for older events than the remembered spot: start over
        got = self._read_bytes(offset)
        if got is not None and got[1] and got[2] != inode:
            got = self._read_bytes(0)  # the file was replaced: start over
        if got is None:
            self._tail = None
            return ()
        data, offset, inode = got
        if offset == 0:
            seen = 0
        # A line without its newline is left for the next call: only whole lines count.
        whole = data[: data.rfind(b"\n") + 1]
        events = [e for e in map(_parse, (ln.raw for ln in _lines(whole))) if e is not None]
        self._tail = (inode, offset + len(whole), max([seen, *(e.seq for e in events)]))
        return tuple(e for e in events if e.seq > seq)

    # -- the action lock ----------------------------------------------------------------

    @contextmanager
    def action_lock(self, what: str) -> Iterator[None]:
        """Only one process at a time may change traffic (advance, rollback). Non-blocking:
        a second console is told who is busy rather than left waiting behind them."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        # Never deleted: unlinking a flock'ed file lets two processes lock two different files.
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ActionBusy(self._holder(fd)) from None
            holder = {
                "actor": self.actor,
                "host": self.host,
                "pid": os.getpid(),
                "what": what,
                "since": iso_utc(self._clock()),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder, ensure_ascii=False).encode("utf-8"), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)  # a stale name in an unheld lock would mislead
        finally:
            os.close(fd)

    @staticmethod
    def _holder(fd: int) -> str:
        raw = os.pread(fd, 64 * 1024, 0)
        try:
            h = json.loads(raw)
            return (
                f"{h['actor']} on {h['host']} (pid {h['pid']}) is running "
                f"{h['what']!r} since {h['since']}"
            )
        except (ValueError, KeyError, TypeError):
            # Between the holder's lock and its write, or written by something else.
            text = raw.decode("utf-8", "replace").strip()
            return text or "another process (it has not said who yet)"
