"""The console's evidence: what it evaluates goes into one long-lived store, and what anyone
recorded (the watcher, `check`, another console) is followed by byte offset, so judging the
hold and `for` every second costs the new lines, not a re-read of weeks of evidence.

No UI here: the benchmark (bench/console_evidence.py) drives it without a terminal."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cutover.judge.check import CheckReport, evaluations
from cutover.record.evidence import TRIGGER, Evaluation, EvidenceStore, Run, Unsigned, decode_run
from cutover.record.store.feed import FileFeed, LineFeed


class EvidenceFollower:
    """Every run in the evidence, folded by run id (the latest line wins), read
    incrementally: a poll that finds nothing new costs one stat (files) or nothing at all
    (Postgres, between notifications). It starts over when the file shrank, was replaced, or
    changed under what was read."""

    def __init__(self, source: Path | LineFeed, key: bytes | None = None) -> None:
        # A path is the files store's evidence; the Postgres store hands a feed of its rows.
        self.feed: LineFeed = FileFeed(source) if isinstance(source, Path | str) else source
        self.key = key
        self.runs: dict[str, Run] = {}
        self.warnings: list[str] = []
        self.version = 0  # bumps whenever `runs` changes

    def poll(self) -> bool:
        """Fold what was appended since the last poll; True when the runs changed."""
        batch = self.feed.read()
        restarted = False
        if batch.restarted:
            restarted = bool(self.runs) or self.version > 0
            self.runs, self.warnings = {}, []
            self.version += 1
        return self._fold(batch.lines) or restarted

    def _fold(self, lines: list[tuple[int, bytes]]) -> bool:
        changed = False
        for number, raw in lines:
            try:
                run = decode_run(raw, self.key)
            except Unsigned:
                self.warnings.append(
                    f"evidence line {number} is not signed with the journal key; ignored"
                )
                continue
            except (ValueError, KeyError, TypeError, IndexError):
                self.warnings.append(f"evidence line {number} is not evidence; skipped")
                continue
            known = self.runs.get(run.run)
            if known is None or run.last >= known.last:
                self.runs[run.run] = run
                changed = True
        if changed:
            self.version += 1
        return changed

    def prune(self, before: datetime | None) -> None:
        """Forget what can no longer change a verdict, so a tick costs the same on day 20 as
        on day 1:

        - a gate's runs that ended before the current stage was entered (a hold counts this
          visit only), and those that ended before its latest FAIL or WAIT (the hold counts
          from there: only that run says why it restarted);
        - a trigger's runs that ended before its latest quiet evaluation (only that resets
          `for`). What a trigger held before the stage began is kept: a stage change does
          not restart `for`.

        Before any stage is entered (`before` None: the prerequisites, which can sit open for
        days) the first rule has nothing to count from; the other two still apply (nothing
        was pruned then, and a flapping gate's runs piled up for as long as the console ran)."""
        quiet: dict[str, datetime] = {}
        bad: dict[tuple[str, str], datetime] = {}
        for run in self.runs.values():
            if run.what == TRIGGER and run.verdict == "quiet":
                quiet[run.name] = max(run.last, quiet.get(run.name, run.last))
            elif run.what != TRIGGER and run.verdict != "pass":
                key = (run.name, run.stage)
                bad[key] = max(run.last, bad.get(key, run.last))

        def keep(run: Run) -> bool:
            if run.what == TRIGGER:
                return run.last >= quiet.get(run.name, run.last)
            if before is not None and run.last < before:
                return False
            return run.last >= bad.get((run.name, run.stage), run.last)

        kept = {key: run for key, run in self.runs.items() if keep(run)}
        if len(kept) != len(self.runs):
            self.runs = kept
            self.version += 1


@dataclass
class EvidenceFeed:
    """The one store the console records into (flushed on exit) and the follower that reads
    everyone's evidence back; `runs()` merges the console's own open runs over the file's."""

    store: EvidenceStore
    follower: EvidenceFollower
    digests: dict[str, str]

    def __post_init__(self) -> None:
        self._said: dict[tuple[str, str], str] = {}  # latest verdict recorded, per gate/trigger
        self._recorded = 0  # bumps with every record: the open runs changed
        self._cache: tuple[tuple[int, int, datetime | None], tuple[Run, ...]] | None = None
        self._before: datetime | None = None
        self._polls_since_prune = 0

    def record(
        self, report: CheckReport, fresh: Iterable[tuple[str, str]] = (), *, changes: bool = True
    ) -> int:
        """Record the evaluations of `fresh` gates and triggers (their query just answered),
        and with `changes` any whose verdict changed since it was last recorded (data went
        stale: a verdict that changes with time alone). Returns how many were recorded."""
        wanted = set(fresh)
        chosen: list[Evaluation] = [
            ev
            for ev in evaluations(report, self.digests)
            if (ev.what, ev.name) in wanted
            or (changes and self._said.get((ev.what, ev.name)) != ev.verdict)
        ]
        if not chosen:
            return 0
        self.store.record(chosen)  # may raise OSError: the caller says so
        for ev in chosen:
            self._said[(ev.what, ev.name)] = ev.verdict
        self._recorded += 1
        return len(chosen)

    def poll(self, entered_at: datetime | None) -> None:
        """Follow the file; prune when the stage changed, and now and then as it grows."""
        grew = self.follower.poll()
        self._polls_since_prune += grew
        if entered_at != self._before or self._polls_since_prune >= 64:
            self.follower.prune(entered_at)
            self._before = entered_at
            self._polls_since_prune = 0

    def runs(self) -> tuple[Run, ...]:
        """Every run that can still matter, oldest first: the file's, with the console's
        own open runs (newer than their last written line) merged over them."""
        key = (self.follower.version, self._recorded, self._before)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        merged = dict(self.follower.runs)
        for run in self.store.open_runs():
            known = merged.get(run.run)
            if known is None or run.last >= known.last:
                merged[run.run] = run
        ordered = tuple(sorted(merged.values(), key=lambda r: (r.first, r.run)))
        self._cache = (key, ordered)
        return ordered

    def flush(self) -> None:
        self.store.flush()

    def forget_said(self) -> None:
        """After a stage change every gate and trigger is recorded afresh."""
        self._said.clear()
