"""`cutover report --format html`: one self-contained file: inline SVG charts, inline CSS, no
script, nothing fetched (a Content-Security-Policy says so to the browser), laid out to print
cleanly to PDF. Every text from the record is escaped: a note can hold anything."""

from __future__ import annotations

from collections.abc import Callable
from html import escape as _escape

from cutover.base.inert import inert
from cutover.report.facts import Report, StageFacts
from cutover.report.tables import Chart, Table, chain, rollbacks, stage_tables, summary

STYLE = """
body { font: 13px/1.4 "DejaVu Sans", system-ui, sans-serif; margin: 2em; color: #111; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #999; margin-top: 2em; }
h3 { font-size: 1em; margin: 1.2em 0 .3em; }
table { border-collapse: collapse; margin: .3em 0 1em; width: 100%; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #eee; }
td { overflow-wrap: anywhere; white-space: pre-wrap; }
p.none { color: #555; font-style: italic; margin: .2em 0 1em; }
figure.chart { margin: .5em 0 1.2em; }
figure.chart svg { max-width: 100%; height: auto; }
figcaption { font-size: .9em; color: #333; }
.bad { font-weight: bold; }
@page { size: A4; margin: 12mm; }
@media print {
  body { margin: 0; font-size: 10px; }
  section.stage { break-before: page; }
  figure.chart, table { break-inside: avoid; }
}
"""
# Nothing may be fetched or run: a chart or a note that tried would be refused.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _text(redact: Callable[[str], str]) -> Callable[[object], str]:
    """Text from the record as HTML: secrets redacted, controls shown (caret notation),
    markup escaped; line breaks stay (the cells wrap them)."""

    def say(text: object) -> str:
        return _escape(inert(redact(str(text)), newlines=True))

    return say


def _table(table: Table, escape: Callable[[object], str]) -> str:
    out = [f"<h3>{escape(table.caption)}</h3>"]
    if not table.rows:
        out.append(f'<p class="none">{escape(table.empty)}</p>')
        return "\n".join(out)
    out.append("<table>")
    if any(table.head):
        out.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in table.head) + "</tr>")
    for row in table.rows:
        cells = "".join(f"<td>{escape(cell)}</td>" for cell in row)
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def _figure(chart: Chart, escape: Callable[[object], str]) -> str:
    return (
        f'<figure class="chart" id="chart-{escape(chart.name)}">\n{chart.svg}\n'
        f"<figcaption>{escape(chart.title)}</figcaption></figure>"
    )


def _stage(stage: StageFacts, charts: list[Chart], escape: Callable[[object], str]) -> str:
    v = stage.visit
    anchor = escape(f"{v.stage}-{v.visit}")
    parts = [
        f'<section class="stage" id="stage-{anchor}">',
        f"<h2>Stage {escape(stage.stage.id)}: {escape(stage.stage.title)} "
        f"({v.percent} %, visit {v.visit})</h2>",
    ]
    parts += [_table(t, escape) for t in stage_tables(stage)]
    parts.append("<h3>Charts</h3>")
    parts += [_figure(c, escape) for c in charts]
    parts.append("</section>")
    return "\n".join(parts)


def render(report: Report, charts: dict[tuple[str, int], list[Chart]]) -> str:
    say = _text(report.redact)
    title = f"cutover report: {report.runbook.title}"
    body = [
        f"<h1>{say(title)}</h1>",
        f"<p>From the record alone (journal, evidence, snapshots) as of its last entry; "
        f"runbook {say(report.runbook.path.name)}.</p>",
        _table(summary(report), say),
        _table(rollbacks(report), say),
    ]
    if report.warnings:
        body.append("<h3>Warnings</h3><ul>")
        body += [f"<li>{say(w)}</li>" for w in report.warnings]
        body.append("</ul>")
    for stage in report.stages:
        body.append(_stage(stage, charts.get((stage.visit.stage, stage.visit.visit), []), say))
    body.append('<section id="journal">' + _table(chain(report), say) + "</section>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n'
        f"<title>{say(title)}</title>\n<style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
