"""Reading the journal's lines back and checking its hash chain: what was written, in order,
unchanged, up to the head record. Pure: bytes in, events and findings out (journal.py does
the file work)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cutover.record.events import Kind
from cutover.runbook.frozen import frozen

ENVELOPE = ("seq", "ts", "actor", "host", "kind", "prev", "hash")
GENESIS = ""  # the `prev` of seq 1
KNOWN_KINDS = frozenset(k.value for k in Kind)
# Said after every chain problem, so the operator knows what still works.
CONSEQUENCE = (
    "; advance, step back and sign-off are refused until it is resolved "
    "(`cutover journal --verify` shows it); rollback still works"
)


@frozen
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


@frozen
class ChainProblem:
    """The first place where the journal stops being what cutover wrote. While one stands,
    advance, step back and sign-off refuse (naming `line`); rollback never does, and journals
    `summary`."""

    seq: int | None  # the first bad seq, when the bad spot has one
    line: int | None  # 1-based line of the bad spot; None when no line can be named
    detail: str  # what is wrong and where, in the operator's words
    summary: str  # the same in a few words, for a rollback's `chain_broken=`

    @property
    def message(self) -> str:
        return self.detail + CONSEQUENCE


@frozen
class Head:
    """The head record kept beside the journal: the last event's seq and hash and the file's
    size after it. It is what lets a reader see that the last lines were removed."""

    seq: int
    hash: str
    size: int

    def encode(self) -> bytes:
        return json.dumps({"seq": self.seq, "hash": self.hash, "size": self.size}).encode() + b"\n"

    @staticmethod
    def decode(raw: bytes) -> Head | None:
        """The record, or None when the bytes are not one (edited or corrupted)."""
        try:
            obj = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            return None
        if not isinstance(obj, dict):
            return None
        seq, digest, size = obj.get("seq"), obj.get("hash"), obj.get("size")
        if type(seq) is not int or seq < 1 or type(size) is not int or size < 0:
            return None
        if not isinstance(digest, str) or len(digest) != 64:
            return None
        return Head(seq, digest, size)


# Built once: json.dumps/loads with options build an encoder per call, which is a good part
# of what verifying a long journal costs.
_canonical = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
_decode = json.JSONDecoder().decode
_TEXT = tuple(k for k in ENVELOPE if k != "seq")


def digest(obj: Mapping[str, Any], key: bytes | None = None) -> str:
    """An event's hash: SHA-256 of its canonical form, or with a key its HMAC-SHA-256, which
    nobody without the key can recompute after rewriting the history."""
    canonical = _canonical({k: v for k, v in obj.items() if k != "hash"}).encode("utf-8")
    if key:
        return hmac.new(key, canonical, hashlib.sha256).hexdigest()
    return hashlib.sha256(canonical).hexdigest()


def event_line(
    seq: int,
    ts: datetime,
    actor: str,
    host: str,
    kind: str,
    prev: str,
    fields: dict[str, Any],
    key: bytes | None,
) -> tuple[Event, bytes]:
    """One event and its line, chained onto `prev` (hashed, or with a key HMACed): what every
    store writes, so a journal reads and verifies the same from a file or from Postgres."""
    obj: dict[str, Any] = {"seq": seq, "ts": _iso_utc(ts), "actor": actor, "host": host}
    obj["kind"] = str(kind)
    obj.update(fields)
    obj["prev"] = prev
    obj["hash"] = digest(obj, key)
    line = json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"
    ts_read = datetime.fromisoformat(obj["ts"])
    return Event(seq, ts_read, actor, host, str(kind), fields, prev, obj["hash"]), line


def _iso_utc(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt.isoformat()} (give it a timezone)")
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_line(raw: bytes) -> tuple[Event, dict[str, Any]] | None:
    """The event (and its decoded object) if the line is structurally one; hashes and links
    are the chain's business."""
    try:
        obj = _decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(obj, dict):
        return None
    seq = obj.get("seq")
    if type(seq) is not int or seq < 1:
        return None
    for name in _TEXT:
        if not isinstance(obj.get(name), str):
            return None
    try:
        ts = datetime.fromisoformat(obj["ts"])
    except ValueError:
        return None
    if ts.tzinfo is None:
        return None
    event = Event(
        seq=seq,
        ts=ts.astimezone(UTC),
        actor=obj["actor"],
        host=obj["host"],
        kind=obj["kind"],
        fields={k: v for k, v in obj.items() if k not in ENVELOPE},
        prev=obj["prev"],
        hash=obj["hash"],
    )
    return event, obj


def _hash_ok(obj: dict[str, Any], event: Event, key: bytes | None = None) -> bool:
    try:
        return hmac.compare_digest(digest(obj, key), event.hash)
    except ValueError:  # NaN/Infinity sneaked in: not something we wrote
        return False


@frozen
class Line:
    number: int  # 1-based
    offset: int
    raw: bytes  # without the newline
    terminated: bool

    @property
    def end(self) -> int:
        return self.offset + len(self.raw) + self.terminated


def split_lines(data: bytes, base: int = 0, first_number: int = 1) -> list[Line]:
    # Split on b"\n" only: str.splitlines would also split on U+2028 and friends, which
    # ensure_ascii=False leaves raw inside values.
    out, offset, number = [], 0, first_number
    while offset < len(data):
        end = data.find(b"\n", offset)
        if end < 0:
            out.append(Line(number, base + offset, data[offset:], terminated=False))
            break
        out.append(Line(number, base + offset, data[offset:end], terminated=True))
        offset, number = end + 1, number + 1
    return out


@frozen
class View:
    """The whole journal as read: its events, what to warn about, the first chain problem,
    and notes (kinds this version does not know)."""

    events: tuple[Event, ...]
    committed: int  # events[:committed] are whole lines; a last line without its newline is not
    warnings: tuple[str, ...]
    problem: ChainProblem | None
    notes: tuple[str, ...]
    lines: int  # lines in the file, the partial last one included
    line_of: tuple[int, ...]  # each event's line number


def torn_warning(number: int) -> str:
    return f"journal line {number} is torn (a crash mid-write?); skipped"


def _not_an_event(number: int) -> str:
    return f"journal line {number} is not a journal event; skipped (journal --verify reports it)"


def _after(seq: int) -> str:
    return f"after seq {seq}" if seq else "before the first event"


class Chain:
    """The chain checked so far, fed the file's lines in order. A reader keeps one between
    polls and feeds it only the bytes that are new since; what follows the last whole event
    line (garbage waiting for a crash's acknowledgement, a partial line) is judged afresh
    each time and never committed, so every read agrees with a fresh read of the file."""

    def __init__(self, key: bytes | None = None) -> None:
        # With a key every event must carry its HMAC: a history rewritten by someone who
        # can write the file but does not hold the key fails here.
        self.key = key
        self.keyed_seen = False  # an event with a valid HMAC has been read
        self.events: list[Event] = []
        self.line_of: list[int] = []
        self.warnings: list[str] = []
        self.problem: ChainProblem | None = None
        self.expected_seq = 1
        self.prev_hash = GENESIS
        self.lines = 0
        self.offset = 0  # bytes committed: just past the last whole event line
        self.last_line = b""  # that line, newline included: a reader checks it is unchanged
        self.unknown: dict[str, tuple[int, int, int]] = {}  # kind -> count, first seq, line
        self.accepted: list[str] = []  # breaks a person accepted, as notes
        # The last view and the uncommitted bytes it was made with: a poll that finds
        # nothing new costs a comparison, not a copy of every event.
        self._last: tuple[int, bytes, View] | None = None

    def read(self, data: bytes) -> View:
        """Feed the file's bytes from `self.offset` on; commit through the last whole event
        line and return the view of the whole file, uncommitted tail included."""
        base = self.offset
        if self._last is not None and self._last[:2] == (base, data):
            return self._last[2]
        parsed = [(line, parse_line(line.raw)) for line in split_lines(data, base, self.lines + 1)]
        cut = next(
            (
                i + 1
                for i in range(len(parsed) - 1, -1, -1)
                if parsed[i][1] and parsed[i][0].terminated
            ),
            0,
        )
        self._take(parsed[:cut], data, base)
        if cut:
            last = parsed[cut - 1][0]
            self.offset, self.last_line = last.end, last.raw + b"\n"
        committed = len(self.events)
        saved = self._save()
        self._finish(self._take(parsed[cut:], data, base))
        view = View(
            events=tuple(self.events),
            committed=committed,
            warnings=tuple(self.warnings),
            problem=self.problem,
            notes=self._notes(),
            lines=self.lines,
            line_of=tuple(self.line_of),
        )
        self._restore(saved)
        self._last = (self.offset, data[self.offset - base :], view)
        return view

    def _save(self) -> tuple:
        return (
            len(self.events),
            len(self.warnings),
            self.problem,
            self.expected_seq,
            self.prev_hash,
            self.lines,
            dict(self.unknown),
            len(self.accepted),
            self.keyed_seen,
        )

    def _restore(self, saved: tuple) -> None:
        n, w, self.problem, self.expected_seq, self.prev_hash, self.lines, self.unknown, a, k = (
            saved
        )
        self.keyed_seen = k
        del self.events[n:], self.line_of[n:], self.warnings[w:], self.accepted[a:]

    def _fail(self, seq: int | None, line: int | None, detail: str, summary: str) -> None:
        if self.problem is None:
            self.problem = ChainProblem(seq, line, detail, summary)

    def _take(self, items: list[tuple[Line, Any]], data: bytes, base: int) -> list[Line]:
        """Check each line in order; returns the unreadable lines after the last event."""
        bad: list[Line] = []
        for line, got in items:
            self.lines = line.number
            if got is None:
                bad.append(line)
                continue
            event, obj = got
            if bad:
                self._excuse(bad, line, event, data, base)
                bad = []
            self._check(line, event, obj)
        return bad

    def _excuse(self, bad: list[Line], line: Line, event: Event, data: bytes, base: int) -> None:
        """Unreadable lines before an event are a crash only if that event is the next
        writer's acknowledgement naming exactly those bytes; anything else was edited."""
        excused = len(bad)
        offset, length = event.get("offset"), event.get("length")
        if event.kind == Kind.TORN and type(offset) is int and type(length) is int:
            for i, b in enumerate(bad):
                if b.offset != offset:
                    continue
                named = data[offset - base : offset - base + length]
                if (
                    length >= 0
                    and line.offset - offset - length in (0, 1)
                    and hashlib.sha256(named).hexdigest() == event.get("sha256")
                ):
                    excused = i
                break
        for b in bad[:excused]:
            self.warnings.append(_not_an_event(b.number))
        if excused:
            first = bad[0].number
            self._fail(
                None,
                first,
                f"journal line {first} ({_after(self.expected_seq - 1)}) is not a journal "
                "event, and no crash explains it: edited or corrupted",
                f"line {first} is not a journal event",
            )
        self.warnings.extend(torn_warning(b.number) for b in bad[excused:])

    def _finish(self, bad: list[Line]) -> None:
        """Unreadable lines at the end of the file. Only a partial last line (no newline) can
        be a crash mid-write; a whole line was put there by something other than cutover."""
        for b in bad:
            if not b.terminated:
                self.warnings.append(torn_warning(b.number))
                continue
            self.warnings.append(_not_an_event(b.number))
            self._fail(
                None,
                b.number,
                f"journal line {b.number} ({_after(self.expected_seq - 1)}) is not a journal "
                "event, and no crash explains it (a crash leaves a partial last line, without "
                "its newline): added or edited by hand",
                f"line {b.number} is not a journal event",
            )

    def _check(self, line: Line, event: Event, obj: dict[str, Any]) -> None:
        n, seq, expected = line.number, event.seq, self.expected_seq
        self.events.append(event)
        self.line_of.append(n)
        sound = self._sound(line, event, obj)
        if event.kind == Kind.CHAIN_ACCEPTED and sound:
            self.accepted.append(
                f"a break ({event.get('problem')}) was accepted by {event.actor} at "
                f"{event.ts:%Y-%m-%d %H:%M}Z (seq {seq}): {event.get('note')}"
            )
            if self.problem is not None and event.get("problem") == self.problem.summary:
                # A person looked at exactly this break and accepted it: trusted from here.
                self.problem = None
        if event.kind not in KNOWN_KINDS:
            count, first_seq, first_line = self.unknown.get(event.kind, (0, seq, n))
            self.unknown[event.kind] = (count + 1, first_seq, first_line)
        if sound is None:
            pass  # said by _sound
        elif not sound:
            self._fail(
                seq,
                n,
                f"journal line {n} (seq {seq}) does not match its hash: changed after it "
                "was written"
                + ("" if self.key else " (or written with a journal key this reader lacks)"),
                f"line {n} (seq {seq}) changed after it was written",
            )
        elif seq > expected:
            span = f"seq {expected}" if seq == expected + 1 else f"seqs {expected}–{seq - 1}"
            verb = "is" if seq == expected + 1 else "are"
            self._fail(
                expected,
                n,
                f"journal line {n} (seq {seq}) follows seq {expected - 1}: {span} {verb} "
                "missing; lines were removed",
                f"line {n}: {span} missing",
            )
        elif seq < expected:
            self._fail(
                seq,
                n,
                f"journal line {n} (seq {seq}) repeats or goes back after seq {expected - 1}: "
                "lines were copied or moved",
                f"line {n} (seq {seq}) out of order",
            )
        elif event.prev != self.prev_hash:
            self._fail(
                seq,
                n,
                f"journal line {n} (seq {seq}) does not chain to the event before it: an "
                "earlier line was changed, removed or inserted",
                f"line {n} (seq {seq}) does not chain to the line before",
            )
        self.expected_seq, self.prev_hash = seq + 1, event.hash

    def _sound(self, line: Line, event: Event, obj: dict[str, Any]) -> bool | None:
        """True: the event's hash is what cutover wrote (keyed where a key is set); False:
        it does not match; None: it is a plain hash where a key is set (said here)."""
        if self.key is None:
            return _hash_ok(obj, event)
        if _hash_ok(obj, event, self.key):
            self.keyed_seen = True
            return True
        if not _hash_ok(obj, event):
            return False
        n, seq = line.number, event.seq
        if self.keyed_seen:
            self._fail(
                seq,
                n,
                f"journal line {n} (seq {seq}) is not keyed although the events before it are: "
                "written by someone without the journal key",
                f"line {n} (seq {seq}) not keyed",
            )
        else:
            # A journal begun before the key was set: a person vouches for it once, under
            # the key (`journal --accept-break`), and from there on every event is keyed.
            self._fail(
                seq,
                n,
                f"journal line {n} (seq {seq}) is not keyed, but a journal key is set: the "
                "history before the key cannot be told from a rewritten one; look at it, then "
                "`cutover journal --accept-break --note` vouches for it under the key",
                "events before the key are not keyed",
            )
        return None

    def _notes(self) -> tuple[str, ...]:
        return tuple(self.accepted) + tuple(
            f"{count} event{'s' if count != 1 else ''} of kind {kind!r}, which this version of "
            f"cutover does not know (first at seq {seq}, line {line}): replay skips "
            f"{'them' if count != 1 else 'it'}"
            for kind, (count, seq, line) in self.unknown.items()
        )


def check_head(view: View, head: Head, size: int, name: str) -> ChainProblem | None:
    """Does the journal still reach the head record's event? The head is written after each
    append, so it may lag the file (a crash in between) but never lead it."""
    events = view.events
    at = next((i for i in range(len(events) - 1, -1, -1) if events[i].seq == head.seq), None)
    if at is None:
        last = max((e.seq for e in events), default=0)
        if last >= head.seq:
            return ChainProblem(
                head.seq,
                None,
                f"seq {head.seq}, which the head record ({name}) names as the last event "
                "written, is not in the journal: lines were removed",
                f"seq {head.seq} named by the head record is missing",
            )
        count = head.seq - last
        if not events:
            return ChainProblem(
                1,
                1,
                f"the journal holds no events, but its head record ({name}) says seq "
                f"{head.seq} was written: all {count} events were removed (if a new journal "
                f"was started on purpose, move {name} aside too)",
                f"all {count} events removed",
            )
        span = f"seq {last + 1}" if count == 1 else f"seq {last + 1}–{head.seq}"
        what = "the last event" if count == 1 else f"the last {count} events"
        return ChainProblem(
            last + 1,
            view.lines + 1,
            f"{what} ({span}) {'was' if count == 1 else 'were'} removed: the head record "
            f"({name}) says seq {head.seq}, but the journal ends at seq {last} "
            f"(line {view.lines})",
            f"{span} removed from the end",
        )
    if events[at].hash != head.hash:
        line = view.line_of[at]
        return ChainProblem(
            head.seq,
            line,
            f"journal line {line} (seq {head.seq}) is not the event its head record ({name}) "
            "names: the journal was cut back and written on, or rewritten",
            f"line {line} (seq {head.seq}) is not the event the head record names",
        )
    if size < head.size:
        return ChainProblem(
            None,
            None,
            f"the journal is {head.size - size} bytes shorter than its head record ({name}) "
            f"says it was at seq {head.seq}: lines were changed",
            "journal shorter than its head record",
        )
    return None
