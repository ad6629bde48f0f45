"""`cutover report --format md`: for pasting into a ticket or a pull request: tables, and the
charts as SVG files beside the document, linked by relative path. Text from the record is
escaped so that a note cannot break a table, open a link or inject HTML."""

from __future__ import annotations

import re
from collections.abc import Callable

from cutover.base.inert import inert
from cutover.report.facts import Report, StageFacts
from cutover.report.tables import Chart, Table, chain, rollbacks, stage_tables, summary

_SPECIAL = re.compile(r"([\\`*_\[\]{}<>|#!~])")


def cell(text: object, redact: Callable[[str], str] = str) -> str:
    """One table cell: one line, secrets redacted, controls shown, markdown's and HTML's
    specials escaped.

    >>> cell("a|b <script> *x*\\nnext\\x1b[31m")
    'a\\\\|b \\\\<script\\\\> \\\\*x\\\\* next^\\\\[\\\\[31m'
    """
    flat = " ".join(inert(redact(str(text))).split())
    return _SPECIAL.sub(r"\\\1", flat)


def _table(table: Table, say: Callable[[object], str]) -> str:
    out = [f"### {say(table.caption)}", ""]
    if not table.rows:
        return "\n".join([*out, f"_{say(table.empty)}_", ""])
    head = table.head if any(table.head) else ("", "")
    out.append("| " + " | ".join(say(h) for h in head) + " |")
    out.append("|" + "---|" * len(head))
    out += ["| " + " | ".join(say(c) for c in row) + " |" for row in table.rows]
    out.append("")
    return "\n".join(out)


def _stage(
    stage: StageFacts, charts: list[Chart], folder: str | None, say: Callable[[object], str]
) -> str:
    v = stage.visit
    parts = [
        f"## Stage {say(stage.stage.id)}: {say(stage.stage.title)} "
        f"({v.percent} %, visit {v.visit})",
        "",
    ]
    parts += [_table(t, say) for t in stage_tables(stage)]
    parts += ["### Charts", ""]
    if folder is None:
        parts.append("_charts are written beside the file: give `-o FILE`_")
    else:
        parts += [f"![{say(c.title)}]({folder}/{c.name}.svg)" for c in charts]
    parts.append("")
    return "\n".join(parts)


def render(report: Report, charts: dict[tuple[str, int], list[Chart]], folder: str | None) -> str:
    """The document; `folder`: where the charts' files are, relative to it (None: none)."""

    def say(text: object) -> str:
        return cell(text, report.redact)

    body = [
        f"# cutover report: {say(report.runbook.title)}",
        "",
        "From the record alone (journal, evidence, snapshots) as of its last entry.",
        "",
        _table(summary(report), say),
        _table(rollbacks(report), say),
    ]
    if report.warnings:
        body += ["### Warnings", ""] + [f"- {say(w)}" for w in report.warnings] + [""]
    for stage in report.stages:
        key = (stage.visit.stage, stage.visit.visit)
        body.append(_stage(stage, charts.get(key, []), folder, say))
    body.append(_table(chain(report), say))
    return "\n".join(body)
