"""`cutover`: the headless commands, and the door to the console. Never imports the UI
toolkit itself: the console is imported only when asked for."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cutover import db
from cutover import runbook as runbook_mod
from cutover.check import CheckReport, report_json
from cutover.durations import humanize
from cutover.gates import Verdict
from cutover.journal import iso_utc
from cutover.problems import ProblemsFound
from cutover.session import Session

OK, FAIL, ERROR, WAIT = 0, 1, 2, 3
EXIT_FOR_VERDICT = {Verdict.PASS: OK, Verdict.FAIL: FAIL, Verdict.WAIT: WAIT}
MARK = {Verdict.PASS: "✓ PASS", Verdict.FAIL: "✗ FAIL", Verdict.WAIT: "… WAIT"}


class UsageError(Exception):
    """The operator asked for something that cannot be: exit 2 with this message."""


def out(text: str = "") -> None:
    print(text, flush=True)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cutover",
        description="Run a staged traffic cutover by "
        "hand, safely: a console and headless commands over one runbook.",
    )
    p.add_argument(
        "--runbook",
        metavar="PATH",
        help="the runbook (default: $CUTOVER_RUNBOOK, then ./runbook.toml)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    tui = sub.add_parser("tui", help="the full-screen console (the default)")
    tui.add_argument("--readonly", action="store_true", help="no action that changes anything")
    tui.add_argument("--no-mouse", action="store_true", help="leave the mouse to the terminal")
    demo = sub.add_parser(
        "demo",
        help="the whole world on this machine (embedded Postgres, simulated traffic, a local "
        "Vercel-compatible API, health and v1 endpoints) and the console on it",
    )
    demo.add_argument(
        "--headless",
        action="store_true",
        help="start the world, print the environment for other shells, run until Ctrl-C",
    )
    demo.add_argument(
        "--keep", action="store_true", help="keep the last demo's journal instead of a fresh one"
    )
    demo.add_argument(
        "--rate", type=float, default=30.0, metavar="N", help="imports per minute (default 30)"
    )
    demo.add_argument(
        "--build-seconds",
        type=float,
        default=5.0,
        metavar="S",
        help="how long a redeploy takes to turn READY (default 5)",
    )
    demo.add_argument(
        "--dir",
        default=".cutover/demo",
        metavar="PATH",
        help="where the demo keeps its database, journal and demo.env (default .cutover/demo)",
    )
    sub.add_parser(
        "validate",
        help="lint the runbook and its queries (and prepare them on the "
        "database when its DSN is set)",
    )
    check = sub.add_parser(
        "check", help="run the queries once; judge the stage's gates and every trigger"
    )
    check.add_argument("--stage", metavar="ID", help="judge this stage (default: the current one)")
    check.add_argument("--json", action="store_true")
    status = sub.add_parser("status", help="stage, percent, hold, sign-offs, last verdicts")
    status.add_argument("--json", action="store_true")
    signoff = sub.add_parser("signoff", help="record a sign-off of a step of the current stage")
    signoff.add_argument("step", metavar="STEP")
    signoff.add_argument("--note", default="", help="what you checked")
    signoff.add_argument(
        "--override",
        action="store_true",
        help="sign a probe step whose probe does not pass (needs --note)",
    )
    jr = sub.add_parser("journal", help="the audit trail")
    jr.add_argument("--verify", action="store_true", help="check the hash chain")
    jr.add_argument("--json", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = args.command or "tui"
    try:
        return COMMANDS[command](args)
    except ProblemsFound as exc:
        for problem in exc.problems:
            err(str(problem))
        err(f"{len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''} in the runbook")
        return ERROR
    except (UsageError, db.DatabaseUnavailable) as exc:
        err(f"cutover {command}: {exc}")
        return ERROR
    except KeyboardInterrupt:
        err("interrupted")
        return 130


def _session(args: argparse.Namespace) -> Session:
    path = runbook_mod.resolve_runbook_path(args.runbook, os.environ)
    return Session(runbook_mod.load(path, shown_as=str(path)))


def _warn(warnings: Sequence[str]) -> None:
    for warning in warnings:
        err(f"warning: {warning}")


def cmd_tui(args: argparse.Namespace) -> int:
    # The only door to the UI toolkit, imported by name so that neither the import contract
    # nor a headless command ever pulls Textual in.
    run_console = importlib.import_module("cutover.tui.app").run_console
    return run_console(
        _session(args),
        readonly=getattr(args, "readonly", False),
        mouse=not getattr(args, "no_mouse", False),
    )


def cmd_demo(args: argparse.Namespace) -> int:
    return importlib.import_module("cutover.demo.world").run(args)


def cmd_validate(args: argparse.Namespace) -> int:
    path = runbook_mod.resolve_runbook_path(args.runbook, os.environ)
    book = runbook_mod.load(path, shown_as=str(path))
    dsn_env = book.database.dsn_env
    if not os.environ.get(dsn_env):
        out(
            f"{path}: ok ({len(book.stages)} stages, {len(book.queries)} queries); "
            f"{dsn_env} is not set, so the queries were not prepared on Postgres"
        )
        return OK
    problems = asyncio.run(_prepare_all(book, str(path)))
    if problems:
        raise ProblemsFound(problems)
    out(
        f"{path}: ok ({len(book.stages)} stages, {len(book.queries)} queries, all prepared "
        "on Postgres)"
    )
    return OK


async def _prepare_all(book, shown: str) -> list:
    runner = db.QueryRunner(book.database, db.dsn_from_env(book.database, os.environ))
    try:
        problems = []
        for query in book.queries.values():
            shown_file = runbook_mod.shown_sql_path(Path(shown), book.path, query.file)
            problem = await runner.prepare(query, shown_file)
            if problem:
                problems.append(problem)
        return problems
    finally:
        await runner.aclose()


def cmd_check(args: argparse.Namespace) -> int:
    session = _session(args)
    current, warnings = session.state()
    _warn(warnings)
    stage_id = args.stage or current.stage_id
    try:
        stage = session.runbook.stage(stage_id)
    except KeyError:
        known = ", ".join(s.id for s in session.runbook.stages)
        raise UsageError(f"no stage {stage_id!r} in the runbook; stages: {known}") from None
    report = asyncio.run(_check(session, stage))
    if args.json:
        out(json.dumps(report_json(report), ensure_ascii=False))
    else:
        _print_check(session, report)
    return EXIT_FOR_VERDICT[report.verdict]


async def _check(session: Session, stage) -> CheckReport:
    runner = session.runner()
    try:
        await runner.connect()
        report, _ = await session.check(runner, stage)
        return report
    finally:
        await runner.aclose()


def _print_check(session: Session, report: CheckReport) -> None:
    stage = session.runbook.stage(report.stage_id)
    out(f"{session.runbook.title}")
    out(
        f"stage {stage.id} ({stage.title}, {stage.percent} %) · judged "
        f"{report.evaluated_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    out("gates" if report.gates else "gates: none in this stage")
    width = max([len(g.id) for g in report.gates] + [len(t.id) for t in report.triggers] + [4])
    for gate in report.gates:
        out(f"  {MARK[gate.verdict]}  {gate.id:<{width}}  {gate.judgement.reason}")
    out("triggers" if report.triggers else "triggers: none")
    for trigger in report.triggers:
        mark = "! FIRED" if trigger.fired else "· quiet"
        out(f"  {mark}  {trigger.id:<{width}}  {trigger.severity:<8}  {trigger.judgement.reason}")
    out(f"verdict: {report.verdict.value.upper()}")


def cmd_status(args: argparse.Namespace) -> int:
    session = _session(args)
    current, warnings = session.state()
    _warn(warnings)
    book = session.runbook
    stage = book.stage(current.stage_id)
    now = datetime.now(UTC)
    signoffs = [
        {
            "step": s.id,
            "text": s.text,
            "signed": s.id in current.signoffs,
            "by": current.signoffs[s.id].actor if s.id in current.signoffs else None,
            "at": iso_utc(current.signoffs[s.id].at) if s.id in current.signoffs else None,
            "note": current.signoffs[s.id].note if s.id in current.signoffs else None,
        }
        for s in stage.steps
    ]
    pending = None
    if current.pending:
        p = current.pending
        pending = {
            "action": p.action,
            "move": p.move,
            "by": p.actor,
            "since": iso_utc(p.at),
            "from_percent": p.from_percent,
            "to_percent": p.to_percent,
        }
    status = {
        "stage": stage.id,
        "title": stage.title,
        "visit": current.visit,
        "percent": {"stage": stage.percent, "set": current.percent, "read": None, "observed": None},
        "hold": {
            "required_s": stage.hold_s,
            "elapsed_s": round(current.hold_elapsed_s(now)),
            "since": iso_utc(current.entered_at) if current.entered_at else None,
        },
        "signoffs": signoffs,
        "pending": pending,
        "journal": {"events": current.last_seq, "warnings": list(warnings)},
    }
    if args.json:
        out(json.dumps(status, ensure_ascii=False))
        return OK
    hold = status["hold"]
    out(book.title)
    out(f"stage     {stage.id} ({stage.title}), visit {current.visit}")
    out(f"percent   stage {stage.percent} % · set {current.percent} % (journal)")
    left = max(0.0, stage.hold_s - hold["elapsed_s"])
    out(
        f"hold      {humanize(hold['elapsed_s'])} of {humanize(stage.hold_s)}"
        + (f" · {humanize(left)} left" if left else " · elapsed")
    )
    for s in signoffs:
        mark = "✓" if s["signed"] else "☐"
        who = (
            f"  — {s['by']} {s['at']}" + (f": {s['note']}" if s["note"] else "")
            if s["signed"]
            else ""
        )
        out(f"  {mark} {s['step']}: {s['text']}{who}")
    if pending:
        out(
            f"pending   {pending['move']} by {pending['by']} since {pending['since']} "
            f"({pending['from_percent']} % → {pending['to_percent']} %)"
        )
    return OK


def cmd_signoff(args: argparse.Namespace) -> int:
    session = _session(args)
    current, warnings = session.state()
    _warn(warnings)
    stage = session.runbook.stage(current.stage_id)
    steps = {s.id: s for s in stage.steps}
    if args.step not in steps:
        known = ", ".join(steps) or "none"
        raise UsageError(f"no step {args.step!r} in stage {stage.id}; its steps: {known}")
    if args.step in current.signoffs:
        signed = current.signoffs[args.step]
        err(
            f"{args.step} is already signed in this visit of {stage.id} by {signed.actor} at "
            f"{iso_utc(signed.at)}"
        )
        return FAIL
    step = steps[args.step]
    if args.override and not args.note.strip():
        raise UsageError("--override needs --note saying why the probe's result is accepted")
    event = session.journal.append(
        "signoff",
        stage=stage.id,
        step=step.id,
        visit=current.visit,
        note=args.note,
        override=bool(args.override),
        probe=None,
    )
    out(f"✓ {step.id} signed by {event.actor} at {iso_utc(event.ts)} (journal seq {event.seq})")
    return OK


def cmd_journal(args: argparse.Namespace) -> int:
    session = _session(args)
    if args.verify:
        verification = session.journal.verify()
        if args.json:
            out(
                json.dumps(
                    {
                        "ok": verification.ok,
                        "events": verification.events,
                        "first_bad_seq": verification.first_bad_seq,
                        "message": verification.message,
                    }
                )
            )
        else:
            out(verification.message)
        return OK if verification.ok else FAIL
    read = session.journal.read()
    _warn(read.warnings)
    for event in read.events:
        if args.json:
            out(
                json.dumps(
                    {
                        "seq": event.seq,
                        "ts": iso_utc(event.ts),
                        "actor": event.actor,
                        "host": event.host,
                        "kind": event.kind,
                        **event.fields,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            details = " ".join(f"{k}={v}" for k, v in event.fields.items() if v not in (None, ""))
            out(
                f"{event.seq:>5}  {event.ts:%Y-%m-%d %H:%M:%S}Z  {event.actor:<16} "
                f"{event.kind:<16} {details}"
            )
    return OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "tui": cmd_tui,
    "demo": cmd_demo,
    "validate": cmd_validate,
    "check": cmd_check,
    "status": cmd_status,
    "signoff": cmd_signoff,
    "journal": cmd_journal,
}

if __name__ == "__main__":
    sys.exit(main())
