"""Evidence: every evaluation of a gate or trigger (by the console, `check` or the watcher),
recorded beside the journal so that holds and `for` can be judged over time, not at one
moment. The journal stays the readable record of human actions; this is the machine's.

Compact: a run of evaluations with the same verdict (same stage, same SQL) is one record
with its first and last time and a count. A run's line is re-appended as it grows (at most
every `flush_s`) and when it ends, so a reader folds lines by run id and keeps the latest;
a crash loses at most `flush_s` of a run's tail, which reads as a shorter run (fail
closed). Runs break when evaluations are further apart than `break_s`, so a run never
hides a gap. Append-only, under an exclusive lock, 0600; a torn last line is skipped and
said, like the journal's.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from sys import intern
from typing import Any

from cutover.base.finite import json_safe, read_number
from cutover.base.private import FILE_MODE, private_dir
from cutover.runbook.frozen import frozen

GATE, TRIGGER = "gate", "trigger"
# A clock a little ahead (NTP settling, another host) is no forgery; more than this is. An
# evaluation dated later than now + SKEW is refused when recorded and ignored when read:
# one from a clock 30 days ahead once made every `for` trigger quiet for 30 days.
SKEW = timedelta(minutes=2)
REFUSED_KEPT = 100  # EvidenceStore.refused


class Unsigned(ValueError):
    """An evidence line without a valid MAC where the journal has a key: not trusted."""


def encode_run(run: Run, key: bytes | None = None) -> bytes:
    """One evidence line. With the journal's key it carries an HMAC of itself, so lines
    appended by someone who can write the file but lacks the key (three PASS lines that
    once faked a 24 h hold) are ignored by every reader that has the key.

    A keyed line is the text its MAC is over (the fields, keys sorted, no spaces) with the
    MAC added as its last field, so a reader checks the MAC over the line's own bytes
    instead of serialising every line again."""
    obj = run.to_json()
    if key:
        signed = _SIGNED.encode(obj).encode("utf-8")
        mac = hmac.new(key, signed, hashlib.sha256).hexdigest().encode("ascii")
        return signed[:-1] + _MAC_FIELD + mac + b'"}\n'
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"


def decode_run(raw: bytes, key: bytes | None = None) -> Run:
    """The run one line holds; ValueError (Unsigned with a key and no valid MAC) otherwise."""
    if key:
        signed = _signed_text(raw, key)
        if signed is not None:
            return Run.from_json(json.loads(signed))
    # A line written another way (before keyed lines were their canonical text, by hand, or
    # not signed at all): its fields serialised as the MAC was computed, and checked.
    obj = json.loads(raw)
    if key:
        mac = obj.pop("mac", None) if isinstance(obj, dict) else None
        if not isinstance(mac, str) or not hmac.compare_digest(mac, _mac(obj, key)):
            raise Unsigned("not signed with the journal key")
    if not isinstance(obj, dict):  # `[1, 2]` once raised AttributeError: no reader catches it
        raise ValueError("an evidence line is a JSON object")
    return Run.from_json(obj)


# What a line's MAC is computed over: the line's fields without it, keys sorted, no spaces
# (one encoder, made once: json.dumps with these options builds one for every line).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_SIGNED = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)  # the same text; a NaN is refused on its way in, as every line refuses it
_MAC_FIELD = b',"mac":"'


def _mac(obj: dict[str, Any], key: bytes) -> str:
    canonical = _CANONICAL.encode(obj)
    return hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def _signed_text(raw: bytes, key: bytes) -> bytes | None:
    """The text a keyed line as encode_run writes it was signed over, when its MAC proves
    it: the line up to its last `,"mac":"`, closed. None for any other line (which may
    still be good: the caller checks it the long way). What is returned is exactly what a
    key holder serialised, so it is read, not the line around it."""
    head, found, tail = raw.rstrip(b"\r\n").rpartition(_MAC_FIELD)
    if not found or len(tail) != 66 or not tail.endswith(b'"}'):
        return None
    signed = head + b"}"
    mac = hmac.new(key, signed, hashlib.sha256).hexdigest().encode("ascii")
    return signed if hmac.compare_digest(mac, tail[:64]) else None


def sql_digest(sql: str) -> str:
    """Which SQL text produced a verdict: a changed query starts a new run.

    >>> sql_digest("SELECT 1") == sql_digest("SELECT 1") != sql_digest("SELECT 2")
    True
    """
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()[:12]


def evidence_path(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.stem + ".evidence.jsonl")


@frozen
class Run:
    """Consecutive evaluations of one gate or trigger with one verdict."""

    run: str
    what: str  # GATE or TRIGGER
    name: str  # the gate's or trigger's id
    stage: str
    verdict: str  # pass/fail/wait for a gate; fired/quiet/unknown for a trigger
    value: float | None  # the latest evaluation's
    interval: tuple[float, float] | None
    reason: str  # the latest evaluation's
    sql: str  # sql_digest of the statement
    first: datetime
    last: datetime
    count: int
    by: str  # who evaluated: "console", "check", "watch"
    # Trials behind a proportion at the run's first and latest evaluation: how fast the
    # evidence grows ("~140 more imports, about 3 h at the last hour's rate").
    n_first: float | None = None
    n: float | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["first"] = _iso(self.first)
        out["last"] = _iso(self.last)
        out["interval"] = list(self.interval) if self.interval else None
        # ±Infinity is a value a trigger judges (∞ > 10 fires); JSON names it as text.
        return json_safe(out)

    @staticmethod
    def from_json(obj: dict[str, Any]) -> Run:
        interval = obj.get("interval")
        n_first, n = obj.get("n_first"), obj.get("n")
        # Every reader decodes every line (a week is ~27,000): the fields are set as the
        # constructor would set them, without its frozen-dataclass toll of one
        # object.__setattr__ per field, half of what a line cost. Every field, always
        # (tests/test_evidence_decode.py holds this to the constructor).
        # The words that repeat from line to line (kind, name, stage, verdict, digest,
        # evaluator) are interned: held once, not once a run, by what keeps runs for weeks.
        run = object.__new__(Run)
        run.__dict__.update(
            run=str(obj["run"]),
            what=intern(str(obj["what"])),
            name=intern(str(obj["name"])),
            stage=intern(str(obj["stage"])),
            verdict=intern(str(obj["verdict"])),
            value=read_number(obj.get("value")),
            interval=(float(interval[0]), float(interval[1])) if interval else None,
            reason=str(obj.get("reason", "")),
            sql=intern(str(obj.get("sql", ""))),
            first=_parse_ts(obj["first"]),
            last=_parse_ts(obj["last"]),
            count=int(obj["count"]),
            by=intern(str(obj.get("by", ""))),
            n_first=None if n_first is None else float(n_first),
            n=None if n is None else float(n),
        )
        return run


@frozen
class Evaluation:
    what: str
    name: str
    stage: str
    verdict: str
    value: float | None
    interval: tuple[float, float] | None
    reason: str
    sql: str
    at: datetime
    n: float | None = None  # trials, for a proportion


def from_the_future(runs: Iterable[Run], now: datetime) -> tuple[Run, ...]:
    """The runs dated later than `now` allows (beyond SKEW): written by a clock ahead.

    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> run = lambda last: Run("r", GATE, "g", "s", "pass", None, None, "", "", t, last, 1, "")
    >>> [r.last.day for r in from_the_future([run(t), run(t + timedelta(days=30))], t)]
    [31]
    """
    limit = now + SKEW
    return tuple(r for r in runs if r.last > limit)


def until_now(runs: Iterable[Run], now: datetime) -> list[Run]:
    """The runs a reader at `now` may judge on: none dated after it (beyond SKEW)."""
    limit = now + SKEW
    return [r for r in runs if r.last <= limit]


def holding_since(
    runs: Iterable[Run], trigger: str, now: datetime | None = None
) -> datetime | None:
    """Since when a trigger's condition has held, by the evidence: the first evaluation
    that found it holding after the last one that found it quiet. An unknown evaluation or
    a gap does not reset it (not knowing is no evidence of calm: a trigger fails closed, so
    it may fire early, never late). None when the latest evidence is quiet or absent.

    >>> from datetime import timedelta
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> def run(verdict, a, b):
    ...     at = lambda h: t + timedelta(hours=h)
    ...     return Run("r", TRIGGER, "slow", "s", verdict, None, None, "", "", at(a), at(b), 1, "")
    >>> holding_since([run("quiet", 0, 1), run("fired", 2, 3), run("unknown", 3, 4),
    ...                run("fired", 4, 5)], "slow") == t + timedelta(hours=2)
    True
    >>> holding_since([run("fired", 0, 1), run("quiet", 2, 2)], "slow") is None
    True
    """
    if now is not None:
        runs = until_now(runs, now)
    mine = [r for r in runs if r.what == TRIGGER and r.name == trigger]
    quiet_until = max((r.last for r in mine if r.verdict == "quiet"), default=None)
    held = [
        r for r in mine if r.verdict == "fired" and (quiet_until is None or r.last > quiet_until)
    ]
    if not held:
        return None
    first = min(r.first for r in held)
    return first if quiet_until is None else max(first, quiet_until)


@frozen
class EvidenceRead:
    runs: tuple[Run, ...]  # folded: one per run id, oldest first
    warnings: tuple[str, ...]


class EvidenceStore:
    def __init__(
        self,
        path: Path,
        *,
        by: str,
        break_s: float = 3600.0,
        flush_s: float = 300.0,
        redact: Callable[[str], str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        key: bytes | None = None,
        sink: Callable[[list[Run], list[bytes]], None] | None = None,
    ) -> None:
        self.path = Path(path)
        # Where the lines go instead of the file (the Postgres store's rows): given the runs
        # and their encoded lines; raises OSError when they cannot be written, like a disk.
        self._sink = sink
        self.key = key
        self.clock = clock
        # Evaluations refused for being dated after this store's now, the latest only: a
        # store lives as long as its console or watcher, and a clock set back would add one
        # at every evaluation for as long as it stays wrong.
        self.refused: deque[Evaluation] = deque(maxlen=REFUSED_KEPT)
        self.by = by
        self.break_s = break_s
        self.flush_s = flush_s
        self._redact = redact
        self._open: dict[tuple[str, str], Run] = {}
        self._written: dict[str, datetime] = {}  # run id -> `last` as last written

    # -- writing ---------------------------------------------------------------------------

    def record(self, items: Iterable[Evaluation]) -> list[Run]:
        """Fold evaluations into the open runs; write what must be written. Returns the
        runs that started (a verdict changed, or a gap broke a run)."""
        started: list[Run] = []
        lines: list[Run] = []
        ended: list[str] = []  # runs closed here: never extended or written again
        limit = self.clock() + SKEW
        for ev in items:
            if ev.at > limit:
                self.refused.append(ev)
                continue
            key = (ev.what, ev.name)
            run = self._open.get(key)
            reason = self._redact(ev.reason) if self._redact else ev.reason
            if run is not None and self._continues(run, ev):
                run = replace(
                    run,
                    value=ev.value,
                    interval=ev.interval,
                    reason=reason,
                    last=max(run.last, ev.at),
                    count=run.count + 1,
                    n=ev.n,
                )
                self._open[key] = run
                if (run.last - self._written.get(run.run, run.first)).total_seconds() >= (
                    self.flush_s
                ):
                    lines.append(run)
                continue
            if run is not None:
                ended.append(run.run)
                if self._written.get(run.run) != run.last:
                    lines.append(run)  # close the old run with its true end
            run = Run(
                run=os.urandom(6).hex(),  # 12 hex digits (uuid costs ~4 ms of import)
                what=ev.what,
                name=ev.name,
                stage=ev.stage,
                verdict=ev.verdict,
                value=ev.value,
                interval=ev.interval,
                reason=reason,
                sql=ev.sql,
                first=ev.at,
                last=ev.at,
                count=1,
                by=self.by,
                n_first=ev.n,
                n=ev.n,
            )
            self._open[key] = run
            started.append(run)
            lines.append(run)
        try:
            if lines:
                self._append(lines)
                for run in lines:
                    self._written[run.run] = run.last
        finally:
            # Only an open run's last written end is ever asked again: kept for every run
            # that ended, this grew by one entry at each verdict change, for as long as a
            # console or a watcher ran (a flapping gate: one a refresh).
            for gone in ended:
                self._written.pop(gone, None)
        return started

    def _continues(self, run: Run, ev: Evaluation) -> bool:
        return (
            run.verdict == ev.verdict
            and run.stage == ev.stage
            and run.sql == ev.sql
            and 0 <= (ev.at - run.last).total_seconds() <= self.break_s
        )

    def open_runs(self) -> tuple[Run, ...]:
        """The runs this store is extending, as they stand now (a line may lag by flush_s):
        a long-lived reader merges these over what the file says."""
        return tuple(self._open.values())

    def flush(self) -> None:
        """Write every open run's latest state (on exit, so its tail is not lost)."""
        pending = [r for r in self._open.values() if self._written.get(r.run) != r.last]
        if pending:
            self._append(pending)
            for run in pending:
                self._written[run.run] = run.last

    def _append(self, runs: list[Run]) -> None:
        if self._sink is not None:
            self._sink(runs, [encode_run(r, self.key) for r in runs])
            return
        # Only cutover's own `.cutover` is tightened, as the journal does: a folder the
        # operator named may hold what others must reach (the demo's database data).
        folder = self.path.parent
        private_dir(folder, tighten=folder.name == ".cutover")
        data = b"".join(encode_run(r, self.key) for r in runs)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # never glue onto a torn line
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- reading ---------------------------------------------------------------------------

    def read(self, since: datetime | None = None) -> EvidenceRead:
        return read_evidence(self.path, since, key=self.key)


def read_evidence(
    path: Path, since: datetime | None = None, *, key: bytes | None = None
) -> EvidenceRead:
    """Every run, folded by id (the latest line wins), oldest first; `since` keeps the runs
    that were still going at or after it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return EvidenceRead((), ())
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        data = os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)
    return fold_lines(_lines(data), since, key=key)


def fold_lines(
    lines: Iterable[tuple[int, bytes, bool]], since: datetime | None = None, *, key: bytes | None
) -> EvidenceRead:
    """Evidence lines (number, raw, whole) folded by run id, the latest line winning; oldest
    first; `since` keeps the runs still going at or after it. The files store reads its file
    into these; the Postgres store its rows."""
    runs: dict[str, Run] = {}
    warnings: list[str] = []
    for number, raw, whole in lines:
        try:
            run = decode_run(raw, key)
        except Unsigned:
            warnings.append(f"evidence line {number} is not signed with the journal key; ignored")
            continue
        except (ValueError, KeyError, TypeError, IndexError):
            what = "torn (a crash mid-write?)" if not whole else "not evidence"
            warnings.append(f"evidence line {number} is {what}; skipped")
            continue
        known = runs.get(run.run)
        if known is None or run.last >= known.last:
            runs[run.run] = run
    ordered = sorted(runs.values(), key=lambda r: (r.first, r.run))
    if since is not None:
        ordered = [r for r in ordered if r.last >= since]
    return EvidenceRead(tuple(ordered), tuple(warnings))


def _lines(data: bytes) -> Iterator[tuple[int, bytes, bool]]:
    start, number = 0, 1
    while start < len(data):
        end = data.find(b"\n", start)
        if end < 0:
            yield number, data[start:], False
            return
        if end > start:
            yield number, data[start:end], True
        start, number = end + 1, number + 1


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_ts(text: str) -> datetime:
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError("naive time")
    return dt.astimezone(UTC)
