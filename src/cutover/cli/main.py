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
from typing import TYPE_CHECKING

from cutover.base.errors import CutoverError
from cutover.base.inert import inert
from cutover.cli.common import (
    ERROR,
    EXIT_FOR_VERDICT,
    FAIL,
    OK,
    UsageError,
    add_demo,
    add_report,
    add_rollback,
    add_store,
    err,
    out,
    session_for,
    warn,
)
from cutover.judge.session import Session
from cutover.judge.verdicts import Verdict
from cutover.judge.wanted import queries_for
from cutover.record.events import Kind
from cutover.record.journal import iso_utc
from cutover.runbook.problems import ProblemsFound
from cutover.sources.caps import printable

if TYPE_CHECKING:  # judging is imported while Postgres runs a check's queries (_check)
    from cutover.judge.check import CheckReport

MARK = {Verdict.PASS: "✓ PASS", Verdict.FAIL: "✗ FAIL", Verdict.WAIT: "… WAIT"}
TRIGGER_MARK = {
    "fired": "! FIRED",
    "pending": "◔ PENDING",
    "suspect": "◑ SUSPECT",
    "quiet": "· quiet",
    "unknown": "? UNKNOWN",
    "off": "- off",
}


def parser() -> argparse.ArgumentParser:
    from cutover.cli.startup import Parser

    p = Parser(
        prog="cutover",
        description="Run a staged traffic cutover by "
        "hand, safely: a console and headless commands over one runbook.",
    )
    p.add_argument(
        "--runbook",
        metavar="PATH",
        help="the runbook (default: $CUTOVER_RUNBOOK, then ./runbook.toml)",
    )
    p.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    tui = sub.add_parser("tui", help="the full-screen console (the default)")
    tui.add_argument("--readonly", action="store_true", help="no action that changes anything")
    tui.add_argument("--no-mouse", action="store_true", help="leave the mouse to the terminal")
    add_demo(sub)
    validate = sub.add_parser(
        "validate",
        help="lint the runbook and its queries (and prepare them on the "
        "database when its DSN is set)",
    )
    validate.add_argument(
        "--explain",
        action="store_true",
        help="also show each query's plan and estimated cost on the database (EXPLAIN "
        "without ANALYZE: nothing runs)",
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
    adv = sub.add_parser("advance", help="guarded stage change to the next stage")
    adv.add_argument("--to", metavar="STAGE", help="the next stage's id (a check, not a skip)")
    adv.add_argument(
        "--confirm",
        type=int,
        required=True,
        metavar="PERCENT",
        help="the target stage's percent, typed out",
    )
    adv.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="GATE",
        help="advance past this gate while it WAITs (never a FAIL); needs --note; repeatable",
    )
    adv.add_argument("--note", default="", help="why an override is safe (it goes in the journal)")
    add_rollback(sub)
    sb = sub.add_parser("stepback", help="back to the previous stage's percent")
    sb.add_argument("--reason", required=True, help="why (it goes in the journal)")
    sb.add_argument("--yes", action="store_true", help="really do it")
    rs = sub.add_parser("raise", help="raise a manual trigger (what no query sees)")
    rs.add_argument("trigger", metavar="ID")
    rs.add_argument("--note", required=True, help="what was seen (it goes in the journal)")
    cl = sub.add_parser("clear", help="clear a raised manual trigger")
    cl.add_argument("trigger", metavar="ID")
    cl.add_argument("--note", required=True, help="why it is over (it goes in the journal)")
    ag = sub.add_parser(
        "accept-gap", help="accept the latest gap in the evidence, so it stops restarting the hold"
    )
    ag.add_argument("--note", required=True, help="why (it goes in the journal)")
    ev = sub.add_parser("evidence", help="the recorded evaluations of gates and triggers")
    ev.add_argument("--gate", metavar="ID", help="one gate's or trigger's evidence")
    ev.add_argument("--since", metavar="T", help="a time, or a duration ago (1h, 7d)")
    ev.add_argument("--json", action="store_true")
    dg = sub.add_parser("digest", help="what changed since you last looked (or --since)")
    dg.add_argument("--since", metavar="T", help="a time, or a duration ago (1h, 7d)")
    rc = sub.add_parser(
        "reconcile",
        help="after a drift, record what the flag reads (the journal's stage moves back to "
        "the stage that runs at that percent)",
    )
    rc.add_argument("--note", default="", help="what happened (it goes in the journal)")
    w = sub.add_parser(
        "watch",
        help="evaluate every query on its interval, record evidence, tell people what "
        "changed; roll back only where a stage arms auto_rollback",
    )
    w.add_argument(
        "--once",
        action="store_true",
        help="one full cycle (every query, probes, the flag), then exit: for cron and tests "
        "(exit 2 when the database could not be reached)",
    )
    add_report(sub)
    add_store(sub)
    sub.add_parser(
        "schema",
        help="print a JSON Schema of runbook.toml, for editors that complete and check TOML",
    )
    jr = sub.add_parser("journal", help="the audit trail")
    jr.add_argument("--verify", action="store_true", help="check the hash chain")
    jr.add_argument("--json", action="store_true")
    jr.add_argument(
        "--accept-break",
        action="store_true",
        help="after looking at a broken chain, accept it with --note (journaled; it stays on "
        "record) so advance and sign-off work again",
    )
    jr.add_argument("--note", default="", help="why the break is understood and acceptable")
    for name, action in sub.choices.items():
        if name in ACTING and "--json" not in action._option_string_actions:
            action.add_argument(
                "--json", action="store_true", help="one JSON object: exit, said, journaled"
            )
    return p


def _version() -> str:
    """The installed package's version: what a bug report and `pip install cutover==` name."""
    import importlib.metadata  # ~20 ms: only when asked

    try:
        return importlib.metadata.version("cutover")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "(not installed)"


class _Version(argparse.Action):
    """--version, looked up only when given (argparse's own action wants it up front)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[override]
        print(f"cutover {_version()}")
        parser.exit()


# Commands that act: each takes --json and then prints one object (what it journaled).
ACTING = ("signoff", "advance", "stepback", "rollback", "raise", "clear", "accept-gap", "reconcile")


def main(argv: Sequence[str] | None = None) -> int:
    from cutover.cli.startup import freeze_at_exit

    freeze_at_exit()
    args = parser().parse_args(argv)
    command = args.command or "tui"
    try:
        if command in ACTING and getattr(args, "json", False):
            return _as_json(command, args)
        return command_for(command)(args)
    except ProblemsFound as exc:
        for problem in exc.problems:
            err(str(problem))
        err(f"{len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''} in the runbook")
        return ERROR
    except KeyboardInterrupt:
        err("interrupted")
        return 130
    except BrokenPipeError:  # the reader left (`| head`): nothing more to say to it
        return OK
    except (CutoverError, OSError) as exc:  # words meant for the operator; an unwritable journal
        err(f"cutover {command}: {exc}")
        return ERROR
    except Exception as exc:  # a bug: words for the operator, the traceback only on request
        if os.environ.get("CUTOVER_DEBUG"):
            raise
        err(
            f"cutover {command}: unexpected {type(exc).__name__}: {exc} (this is a bug in "
            "cutover; run again with CUTOVER_DEBUG=1 for the traceback and report it)"
        )
        return ERROR


def _as_json(command: str, args: argparse.Namespace) -> int:
    """An acting command for a program: its words go to stderr, and stdout gets one object:
    the exit code, what it said, and every journal event it wrote."""
    from cutover.cli import common

    journal = session_for(args).journal
    before = journal.read().events
    first = before[-1].seq + 1 if before else 1
    common.said = []
    try:
        code = command_for(command)(args)
    except (CutoverError, OSError) as exc:
        err(f"cutover {command}: {exc}")
        code = ERROR
    finally:
        said, common.said = common.said, None
    events = [e for e in journal.read().events if e.seq >= first]
    common.out_json(
        {
            "command": command,
            "exit": code,
            "ok": code == OK,
            "said": said,
            "journaled": [
                {"seq": e.seq, "ts": iso_utc(e.ts), "actor": e.actor, "kind": e.kind, **e.fields}
                for e in events
            ],
        }
    )
    return code


def cmd_tui(args: argparse.Namespace) -> int:
    from cutover.sources.first_answers import ask_for_console

    session = session_for(args)
    _refuse_a_malformed_dsn(session)
    # Asked now, the database works on them while the UI toolkit is imported and the screen
    # built (sources/first_answers).
    first = ask_for_console(session)
    try:
        # The only door to the UI toolkit, imported by name so that neither the import
        # contract nor a headless command ever pulls Textual in.
        run_console = importlib.import_module("cutover.tui.app").run_console
        return run_console(
            session,
            readonly=getattr(args, "readonly", False),
            mouse=not getattr(args, "no_mouse", False),
            first_answers=first,
        )
    finally:
        if first is not None:
            first.close()


def _refuse_a_malformed_dsn(session: Session) -> None:
    """A DSN that can never work is said once, before the console opens, not by every panel
    forever; without a DSN at all the console opens and says so."""
    name = session.runbook.database.dsn_env
    dsn = session.environ.get(name, "").strip()
    if dsn:
        from cutover.sources import db

        try:
            db.check_dsn(dsn, name)
        except db.DatabaseUnavailable as exc:
            raise UsageError(
                f"{exc}; or unset {name} to open the console without the database"
            ) from None


def cmd_demo(args: argparse.Namespace) -> int:
    return importlib.import_module("cutover.demo.world").run(args)


def cmd_check(args: argparse.Namespace) -> int:
    session = session_for(args)
    _settle(session)
    current, warnings = session.state()
    warn(warnings)
    stage_id = args.stage or current.stage_id
    try:
        stage = session.runbook.stage(stage_id)
    except KeyError:
        known = ", ".join(s.id for s in session.runbook.stages)
        raise UsageError(f"no stage {stage_id!r} in the runbook; stages: {known}") from None
    report = asyncio.run(_check(session, stage))
    if args.json:
        from cutover.judge.check import report_json

        out(json.dumps(report_json(report), ensure_ascii=False))
    else:
        _print_check(session, report)
    return EXIT_FOR_VERDICT[report.verdict]


async def _check(session: Session, stage) -> CheckReport:
    looked, _ = session.state()
    wanted = queries_for(session.runbook, stage, rollback=looked.after_rollback is not None)
    from cutover.cli.startup import import_judging
    from cutover.cli.waiting import Waiting, telling

    runner = Waiting(session.runner(sum(session.runbook.queries[q].kind == "sql" for q in wanted)))
    # Judging is not needed until the answers are in: imported on a thread meanwhile, it costs
    # the first query nothing (the loop waits on Postgres for most of that time).
    judging = import_judging()
    try:
        async with telling(runner, err):  # a slow database: stderr says which query
            await runner.connect()
            report, _ = await session.check(runner, stage)
        return report
    finally:
        await runner.aclose()
        # Done long since, unless the check failed at once (no database): never left
        # importing while the interpreter shuts down.
        judging.join()


def _print_check(session: Session, report: CheckReport) -> None:
    # Every text here may come from a query (an error quoting a value, a column's name):
    # each is printed bounded and inert.
    stage = session.runbook.stage(report.stage_id)
    out(printable(session.runbook.title))
    out(
        f"stage {printable(stage.id)} ({printable(stage.title)}, {stage.percent} %) · judged "
        f"{report.evaluated_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    out("gates" if report.gates else "gates: none in this stage")
    width = max(
        [len(g.id) for g in (*report.gates, *report.rollback_gates)]
        + [len(t.id) for t in report.triggers]
        + [4]
    )
    for gate in report.gates:
        gate_id, reason = printable(gate.id), printable(gate.judgement.reason)
        out(f"  {MARK[gate.verdict]}  {gate_id:<{width}}  {reason}")
    if report.rollback_gates:
        out("after the rollback (its checklist's gates; the next advance needs them)")
        for gate in report.rollback_gates:
            gate_id, reason = printable(gate.id), printable(gate.judgement.reason)
            out(f"  {MARK[gate.verdict]}  {gate_id:<{width}}  {reason}")
    out("triggers" if report.triggers else "triggers: none")
    for trigger in report.triggers:
        mark = TRIGGER_MARK[trigger.state]
        trigger_id, reason = printable(trigger.id), printable(trigger.judgement.reason)
        if trigger.pending_s is not None or trigger.suspect:
            reason = f"{trigger.pending_words()}: {reason}"
        if trigger.escalated_from:
            reason = f"escalated from {trigger.escalated_from} (held {_held(trigger)}): {reason}"
        out(f"  {mark}  {trigger_id:<{width}}  {trigger.severity:<8}  {reason}")
    out(f"verdict: {report.verdict.value.upper()}")


def _held(trigger) -> str:
    from cutover.runbook.durations import humanize

    return humanize(trigger.held_s or 0.0)


def cmd_signoff(args: argparse.Namespace) -> int:
    from cutover.traffic.signoff import SignOffRefused, sign_off

    session = session_for(args)
    _settle(session)
    warn(session.state()[1])
    report = asyncio.run(_judged_for_signoff(session, args.step))
    try:
        signed = asyncio.run(
            sign_off(session, args.step, note=args.note, override=args.override, report=report)
        )
    except SignOffRefused as exc:
        err(f"cutover signoff: {exc}")
        return FAIL
    if signed.probe is not None:  # what a remote endpoint said: one line each, inert
        for line in signed.probe.checks:
            out(f"  {inert(line)}")
    event = signed.event
    out(
        f"✓ {inert(event.get('step'))} signed by {inert(event.actor)} at {iso_utc(event.ts)} "
        f"(journal seq {event.seq})"
    )
    return OK


async def _judged_for_signoff(session: Session, step_id: str) -> CheckReport | None:
    """The stage's gates judged now, when the step vouches for any (a step is never signed
    plainly while its gate fails); None when it vouches for none or nothing can be judged
    (then only an override signs it)."""
    from cutover.sources import db
    from cutover.traffic.signoff import linked_gates

    state, _ = session.state()
    stage = session.runbook.stage(state.stage_id)
    checklist = session.runbook.rollback
    steps = [*stage.steps, *(checklist.steps if checklist and state.after_rollback else ())]
    gates = [*stage.gates, *(checklist.gates if checklist and state.after_rollback else ())]
    step = next((s for s in steps if s.id == step_id), None)
    if step is None or not linked_gates(step, gates):
        return None
    try:
        runner = session.runner()
    except db.DatabaseUnavailable as exc:
        err(f"! {step_id}'s gates cannot be judged: {exc}")
        return None
    try:
        # Looked at, not watched: the sign-off's one reading is no evidence for a hold.
        report, _ = await session.check(runner, stage, record_as=None)
        return report
    finally:
        await runner.aclose()


def cmd_journal(args: argparse.Namespace) -> int:
    session = session_for(args)
    if args.accept_break:
        return _accept_break(session, args.note)
    if not args.verify:
        _settle(session)
    if args.verify:
        verification = session.journal.verify()
        if args.json:
            out(
                json.dumps(
                    {
                        "ok": verification.ok,
                        "events": verification.events,
                        "first_bad_seq": verification.first_bad_seq,
                        "first_bad_line": verification.first_bad_line,
                        "message": verification.message,
                        "notes": list(verification.notes),
                    }
                )
            )
        else:
            out(verification.message)
        return OK if verification.ok else FAIL
    read = session.journal.read()
    warn(((read.chain.message,) if read.chain else ()) + read.warnings)
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
            # One event, one line: a note's line break must not forge the next event.
            details = " ".join(
                f"{k}={inert(v)}" for k, v in event.fields.items() if v not in (None, "")
            )
            out(
                f"{event.seq:>5}  {event.ts:%Y-%m-%d %H:%M:%S}Z  {inert(event.actor):<16} "
                f"{inert(event.kind):<16} {details}"
            )
    # A listing from a store that cannot be read now is what was read before, or nothing:
    # never the record's whole say (the warning above says why).
    return ERROR if session.store.stale is not None else OK


def _accept_break(session: Session, note: str) -> int:
    """A broken chain refuses advance, step back and sign-off until a person has looked at
    it and accepted it with a note; the acceptance names the break, so the record keeps it."""
    if not note.strip():
        raise UsageError("--accept-break needs --note: what happened, and why it is acceptable")
    current, _ = session.state()
    problem = current.chain
    if problem is None:
        out("the journal's chain is intact: nothing to accept")
        return FAIL
    event = session.journal.append(
        Kind.CHAIN_ACCEPTED,
        problem=problem.summary,
        problem_line=problem.line,
        problem_seq=problem.seq,
        detail=problem.detail,
        note=note,
    )
    out(f"accepted by {event.actor} (journal seq {event.seq}): {problem.detail}")
    after, _ = session.state()
    if after.chain is not None:
        err(f"another break remains: {after.chain.message}")
        return FAIL
    out("the journal is trusted from here on; `cutover journal --verify` shows the acceptance")
    return OK


def _settle(session: Session) -> None:
    """Before a command that reads the state: close a crashed action's intent, if any (the
    flag adapters are imported only when there is one)."""
    current, _ = session.state()
    if current.pending is not None:
        importlib.import_module("cutover.cli.moves").settle(session)


Command = Callable[[argparse.Namespace], int]

# Each command imports what it needs when it runs: `check` never pays for the flag adapters
# and their HTTP client, `status` never for the console. A "module:function" is resolved on
# demand; a function may also be given as is.
COMMANDS: dict[str, Command | str] = {
    "tui": cmd_tui,
    "demo": cmd_demo,
    "validate": "cutover.cli.runbook_commands:cmd_validate",
    "check": cmd_check,
    "status": "cutover.cli.status:cmd_status",
    "signoff": cmd_signoff,
    "journal": cmd_journal,
    "schema": "cutover.cli.runbook_commands:cmd_schema",
    "advance": "cutover.cli.moves:cmd_advance",
    "rollback": "cutover.cli.moves:cmd_rollback",
    "stepback": "cutover.cli.moves:cmd_stepback",
    "reconcile": "cutover.cli.moves:cmd_reconcile",
    "raise": "cutover.cli.time_commands:cmd_raise",
    "clear": "cutover.cli.time_commands:cmd_clear",
    "accept-gap": "cutover.cli.time_commands:cmd_accept_gap",
    "evidence": "cutover.cli.time_commands:cmd_evidence",
    "digest": "cutover.cli.time_commands:cmd_digest",
    "watch": "cutover.cli.watch:cmd_watch",
    "report": "cutover.cli.report:cmd_report",
    "store": "cutover.cli.store:cmd_store",
}


def command_for(name: str) -> Command:
    """The function that runs command `name`, importing its module on first use.

    >>> command_for("check") is cmd_check
    True
    >>> command_for("status").__name__
    'cmd_status'
    """
    found = COMMANDS[name]
    if isinstance(found, str):
        module, _, function = found.partition(":")
        found = getattr(importlib.import_module(module), function)
    return found


if __name__ == "__main__":
    sys.exit(main())
