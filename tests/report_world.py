"""A recorded cutover, built by hand and the same every time: the console tests' runbook (prep
at 0 %, a canary at 10 % with a 2 h hold, half at 50 %, an observed share, triggers with
`for` and manual ones), walked through every stage by several people, with a WAIT that
restarts the hold, a trigger firing, a rollback, a re-advance past a gap accepted with a
note, an override, and completion. Journal (keyed), evidence (signed) and snapshots, written
through cutover's own record API at fixed times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cutover.judge.session import Session
from cutover.record import snapshots
from cutover.record.evidence import GATE, TRIGGER, Evaluation
from cutover.record.journal import Journal
from cutover.runbook import loader
from cutover.sources.results import QueryResult
from tui.conftest import TIME_TRIGGERS, write_runbook

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
KEY = "report-test-key-0123456789"
# Text from people: markup, a pipe, a line break, a control: shown, never obeyed.
SCRIPT_NOTE = "ok'd by ops <script>alert(1)</script> | see #42\nsecond line \x1b[31mred"
# A secret someone pasted into a note (an older version journaled it as typed): never shown.
PASSWORD = "Hunter2-report-secret"
DSN = f"postgresql://report:{PASSWORD}@127.0.0.1:9/soulprint"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class Recorded:
    folder: Path
    runbook: Path
    environ: dict[str, str]

    def session(self) -> Session:
        return Session(loader.load(self.runbook), self.environ)


def record(folder: Path) -> Recorded:
    path = write_runbook(folder, hold="2h", observed=True, triggers=TIME_TRIGGERS)
    env = {"USER": "ops", "TEST_DSN": DSN, "CUTOVER_JOURNAL_KEY": KEY}
    session = Session(loader.load(path), env)
    now = [T0]
    journal = Journal(
        session.runbook.journal_path, actor="alice", host="box", clock=lambda: now[0],
        key=KEY.encode(),
    )  # fmt: skip
    end = at(400)
    store = session.evidence_store("watch", clock=lambda: end)
    digests = session.sql_digests()
    folder_snap = snapshots.snapshots_dir(session.runbook.journal_path)

    def write(minute: float, who: str, kind: str, **fields) -> None:
        now[0] = at(minute)
        journal.actor = who
        journal.append(kind, **fields)

    def evaluate(stage: str, start: float, stop: float, rate, verdict, trig="quiet") -> None:
        """Every 5 minutes: the gate `success` (where the stage has it) and the triggers."""
        minute = start
        while minute <= stop:
            value = rate(minute) if callable(rate) else rate
            batch = []
            if stage == "canary":
                batch.append(
                    Evaluation(GATE, "success", stage, verdict, value,
                               (value - 0.8, min(100.0, value + 0.5)), f"rate {value:g}",
                               digests["success"], at(minute), 1000.0)
                )  # fmt: skip
            for trigger in ("success_low", "slow"):
                fired = value < (90 if trigger == "success_low" else 97)
                batch.append(
                    Evaluation(TRIGGER, trigger, stage, "fired" if fired else trig, value,
                               None, f"rate {value:g}", digests["success"], at(minute))
                )  # fmt: skip
            store.record(batch)
            minute += 5
        store.flush()

    def snap(stage: str, visit: int, label: str, minute: float, share: float) -> None:
        results = {
            "share": QueryResult(
                "share", ("imports", "v2_imports", "v2_pct"), ((400, int(share * 4), share),),
                ran_at=at(minute),
            ),
            "success": QueryResult(
                "success", ("rate", "total", "stuck"), ((99.1, 1000, None),), ran_at=at(minute)
            ),
        }  # fmt: skip
        snapshots.take(folder_snap, stage, visit, label, results, at(minute))

    # prep: two people sign, alice advances to the canary.
    write(0, "alice", "signoff", stage="prep", step="ready", visit=1, note="team on call",
          override=False, probe=None)  # fmt: skip
    write(5, "bob", "signoff", stage="prep", step="backup", visit=1, note="backup 2026-11-20",
          override=False, probe=None)  # fmt: skip
    snap("prep", 1, "exit", 9, 0.0)
    write(10, "alice", "advance.intent", action="a1", from_stage="prep", to_stage="canary",
          from_percent=0, to_percent=10, reason="")  # fmt: skip
    write(10.1, "alice", "advance.done", action="a1", flag_percent=10, verified="flag reads 10 %",
          took_s=4.2, live_s=4.2, effect="live in 4.2 s by build dpl_1 READY")  # fmt: skip
    snap("canary", 2, "entry", 11, 9.5)
    # The canary: PASS, a WAIT for 10 minutes (the hold restarts), PASS, then the success rate
    # drops: the gate FAILs, both triggers' condition holds (`slow` pending on its 6 h).
    evaluate("canary", 11, 55, lambda m: 99.0 + (m % 3) / 10, "pass")
    evaluate("canary", 60, 70, 98.0, "wait")
    evaluate("canary", 75, 145, 99.2, "pass")
    snap("canary", 2, "checkpoint-1", 130, 10.2)
    evaluate("canary", 150, 165, 85.0, "fail")
    write(166, "carol", "rollback.intent", action="r1", from_stage="canary", to_stage="prep",
          from_percent=10, to_percent=0, reason="success dropped to 85 %")  # fmt: skip
    write(166.05, "carol", "rollback.done", action="r1", flag_percent=0,
          verified="flag reads 0 %", took_s=2.8, live_s=2.8,
          effect="live in 2.8 s by instant rollback to dpl_0")  # fmt: skip
    snap("canary", 2, "exit", 166, 10.0)
    # Back at prep: the fix, signed again; a manual trigger raised and cleared.
    evaluate("prep", 170, 200, 99.5, "quiet")
    write(175, "bob", "trigger.raised", trigger="complaints", note=f"two users wrote in; db {DSN}")
    write(185, "bob", "trigger.cleared", trigger="complaints", note="both were v1 imports")
    write(190, "alice", "signoff", stage="prep", step="ready", visit=3, note="fix deployed",
          override=False, probe=None)  # fmt: skip
    write(191, "bob", "signoff", stage="prep", step="backup", visit=3, note="",
          override=False, probe=None)  # fmt: skip
    write(200, "alice", "advance.intent", action="a2", from_stage="prep", to_stage="canary",
          from_percent=0, to_percent=10, reason="")  # fmt: skip
    write(200.1, "alice", "advance.done", action="a2", flag_percent=10,
          verified="flag reads 10 %", took_s=3.9, live_s=3.9, effect="live in 3.9 s")  # fmt: skip
    # The canary again: PASS with an 80-minute gap (the watcher was down), accepted.
    evaluate("canary", 201, 240, 99.4, "pass")
    evaluate("canary", 320, 380, 99.6, "pass")
    write(330, "carol", "gap.accepted", gap_start=at(236).isoformat(),
          gap_end=at(320).isoformat(), note="watcher host rebooted <b>planned</b>")  # fmt: skip
    write(381, "bob", "signoff", stage="canary", step="no_complaints", visit=4,
          note=SCRIPT_NOTE, override=False, probe=None)  # fmt: skip
    snap("canary", 4, "exit", 384, 10.1)
    write(385, "alice", "advance.intent", action="a3", from_stage="canary", to_stage="half",
          from_percent=10, to_percent=50, reason="",
          overrides=[{"gate": "success", "reason": "WAIT: 12 more imports decide it"}],
          override_note=SCRIPT_NOTE)  # fmt: skip
    write(385.1, "alice", "advance.done", action="a3", flag_percent=50,
          verified="flag reads 50 %", took_s=4.4, live_s=4.4, effect="live in 4.4 s")  # fmt: skip
    snap("half", 5, "entry", 386, 49.0)
    evaluate("half", 386, 396, 99.7, "quiet")
    write(398, "alice", "complete", stage="half")
    return Recorded(folder, path, env)
