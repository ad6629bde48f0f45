"""`cutover report`: the record (journal, evidence, snapshots) as one document for the change
ticket or the post-incident review. Pure over the record: no database, no platform. The only
command that imports the plotting library (cutover.report.charts), in the process it forks to
draw the charts (cutover.report.drawing)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cutover.cli.common import OK, UsageError, err, out, session_for


def cmd_report(args: argparse.Namespace) -> int:
    from cutover.report import drawing, facts, html, markdown

    # Forked first (before the session opens a store or a thread): the charts' process
    # imports the plotting library while this one reads the record.
    with drawing.Drawer() as drawer:
        session = session_for(args)
        if args.stage is not None and args.stage not in {s.id for s in session.runbook.stages}:
            known = ", ".join(s.id for s in session.runbook.stages)
            raise UsageError(f"no stage {args.stage!r} in the runbook; stages: {known}")
        report = facts.build(session, stage=args.stage, every=args.all)
        if not report.stages:
            what = f"no visit of {args.stage}" if args.stage else "no stage entered"
            err(f"{what} in the journal yet: the report has the summary only")
        charts = drawer.draw(report.stages)
    drawn = {(s.visit.stage, s.visit.visit): c for s, c in zip(report.stages, charts, strict=True)}
    target = Path(args.output) if args.output and args.output != "-" else None
    if args.format == "html":
        document = html.render(report, drawn)
        if target is None:
            out(document.rstrip("\n"))  # redacted and made inert like every other line
            return OK
        _write(target, session.redact(document))
        err(f"wrote {target} ({sum(len(c) for c in drawn.values())} charts)")
        return OK
    folder = None if target is None else target.with_name(target.stem + ".charts")
    document = markdown.render(report, drawn, folder.name if folder else None)
    if target is None:
        out(document.rstrip("\n"))
        return OK
    assert folder is not None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write the charts beside {target}: {exc.strerror}") from None
    for charts in drawn.values():
        for chart in charts:
            _write(folder / f"{chart.name}.svg", session.redact(chart.svg) + "\n")
    _write(target, session.redact(document))
    err(f"wrote {target} and {sum(len(c) for c in drawn.values())} charts in {folder}/")
    return OK


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a report half-written over the last one helps nobody."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
