"""`cutover report` on a recorded cutover (tests/report_world.py): the facts say what the
journal and the evidence say, exactly; every chart has its axes, threshold and marks; the
documents are the same bytes for the same record, show people's text without obeying it,
and carry no secret."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from cutover.report import charts, facts
from cutover.report.tables import Chart
from moves_world import cutover_argv
from report_world import KEY, PASSWORD, SCRIPT_NOTE, Recorded, at, record


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Recorded:
    return record(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def report(world) -> facts.Report:
    return facts.build(world.session(), every=True)


@pytest.fixture(scope="module")
def drawn(report) -> dict[tuple[str, int], list[Chart]]:
    return {(s.visit.stage, s.visit.visit): charts.stage_charts(s) for s in report.stages}


def journal_lines(world: Recorded) -> list[dict]:
    path = world.folder / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def visit(report: facts.Report, stage: str, number: int) -> facts.StageFacts:
    (found,) = [s for s in report.stages if (s.visit.stage, s.visit.visit) == (stage, number)]
    return found


def run(world: Recorded, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **world.environ}
    return subprocess.run(
        cutover_argv(world.runbook, *args),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=world.folder,
    )


# -- the facts ---------------------------------------------------------------------------


def test_the_summary_says_what_the_journal_says(world, report):
    lines = journal_lines(world)
    s = report.summary
    assert s.title == "test cutover: old → new"
    assert s.stages_passed == ["prep", "canary", "half"]
    assert s.outcome.startswith("complete: alice completed it at 2026-11-20 14:38:00Z")
    counts: dict[str, int] = {}
    for line in lines:
        counts[line["actor"].split("@")[0]] = counts.get(line["actor"].split("@")[0], 0) + 1
    assert dict(s.people) == counts
    assert [who for who, _ in s.people] == ["alice", "bob", "carol"]
    assert s.started == at(0) and s.ended == at(398)
    (rollback,) = s.rollbacks
    assert (rollback.actor.split("@")[0], rollback.from_stage, rollback.to_stage) == (
        "carol",
        "canary",
        "prep",
    )
    assert rollback.live_s == 2.8 and rollback.reason == "success dropped to 85 %"
    assert rollback.effect == "live in 2.8 s by instant rollback to dpl_0"


def test_every_visit_is_entered_and_left_when_the_moves_took_effect(report):
    seen = [(s.visit.stage, s.visit.visit, s.visit.how) for s in report.stages]
    assert seen == [
        ("prep", 1, "start"),
        ("canary", 2, "advance"),
        ("prep", 3, "rollback"),
        ("canary", 4, "advance"),
        ("half", 5, "advance"),
    ]
    canary = visit(report, "canary", 2)
    assert canary.visit.entered_at == at(10.1) and canary.visit.left_at == at(166.05)
    assert canary.visit.by.startswith("alice")
    assert visit(report, "half", 5).visit.left_at is None


def test_the_hold_restarts_where_the_evidence_broke_it_and_a_noted_gap_does_not(report):
    first = visit(report, "canary", 2)
    assert [(r.at, r.gate, r.reason.split(" ")[0]) for r in first.restarts] == [
        (at(60), "success", "WAIT"),
        (at(150), "success", "FAIL"),
    ]
    assert not first.hold.met
    second = visit(report, "canary", 4)
    assert second.restarts == []
    (gap,) = second.gaps
    assert gap.accepted_by.startswith("carol")
    assert gap.note == "watcher host rebooted <b>planned</b>"
    assert second.hold.met


def test_sign_offs_overrides_notes_and_checkpoints_come_with_their_words(report):
    canary = visit(report, "canary", 4)
    (signed,) = canary.signoffs
    assert (signed.step, signed.note, signed.override) == ("no_complaints", SCRIPT_NOTE, False)
    (override,) = canary.overrides
    assert (override.gate, override.why) == ("success", "WAIT: 12 more imports decide it")
    assert override.note == SCRIPT_NOTE
    back = visit(report, "prep", 3)
    assert [(n.what, n.actor.split("@")[0]) for n in back.notes] == [
        ("raised complaints", "bob"),
        ("cleared complaints", "bob"),
    ]
    assert [s.note for s in back.signoffs] == ["fix deployed", ""]
    first = visit(report, "canary", 2)
    assert [(c.label, c.at, c.queries, c.failed) for c in first.checkpoints] == [
        ("entry", at(11), 2, ()),
        ("checkpoint-1", at(130), 2, ()),
        ("exit", at(166), 2, ()),
    ]


def test_the_gate_series_is_every_evaluation_in_the_window(report):
    first = visit(report, "canary", 2)
    (gate,) = first.gates
    assert gate.threshold == 95
    values = {p.at: p.value for p in gate.points}
    assert values[at(150)] == 85.0 and values[at(60)] == 98.0
    assert gate.latest is not None and gate.latest.verdict == "fail"
    assert first.percent == [(at(0.0), 0), (at(10.1), 10), (at(166.05), 0)]  # the rollback
    assert (at(130), 10.2) in first.observed


def test_the_journal_head_and_its_keyed_chain(world, report):
    last = journal_lines(world)[-1]
    chain = report.chain
    assert (chain.ok, chain.keyed, chain.events) == (True, True, len(journal_lines(world)))
    assert (chain.head_seq, chain.head_hash) == (last["seq"], last["hash"])


# -- the charts --------------------------------------------------------------------------


def ids(chart: Chart) -> set[str]:
    tree = ET.fromstring(chart.svg)
    return {e.get("id") for e in tree.iter() if e.get("id")}


def test_every_chart_has_its_axes_threshold_interval_and_marks(drawn):
    first = {c.name: c for c in drawn[("canary", 2)]}
    assert set(first) == {"canary-2-gate-success", "canary-2-triggers", "canary-2-percent"}
    for chart in first.values():
        found = ids(chart)
        assert {"axes_1", "matplotlib.axis_1", "matplotlib.axis_2", "entered"} <= found
        assert "time (UTC)" in chart.svg
        assert "move-advance-0" in found and "move-rollback-1" in found
    gate = ids(first["canary-2-gate-success"])
    assert {"value", "interval", "threshold", "restarts", "verdict-wait", "verdict-fail"} <= gate
    assert "threshold ≥ 95" in first["canary-2-gate-success"].svg
    triggers = ids(first["canary-2-triggers"])
    assert {"trigger-success_low-quiet", "trigger-success_low-fired"} <= triggers
    assert "trigger-slow-pending" in triggers  # its condition held, not yet for 6 h
    assert {"configured", "observed"} <= ids(first["canary-2-percent"])
    # The accepted gap is shaded, and no value is drawn across it.
    again = {c.name: c for c in drawn[("canary", 4)]}
    assert "gap-0" in ids(again["canary-4-gate-success"])
    # A stage with no gate still shows traffic and triggers.
    assert [c.name for c in drawn[("prep", 3)]] == ["prep-3-triggers", "prep-3-percent"]


def test_a_chart_is_the_same_bytes_when_drawn_again(report, drawn):
    again = charts.stage_charts(visit(report, "canary", 2))
    assert [c.svg for c in again] == [c.svg for c in drawn[("canary", 2)]]


# -- the command -------------------------------------------------------------------------


def test_the_html_report_is_one_file_the_same_twice_inert_and_without_secrets(world):
    assert PASSWORD in (world.folder / "journal.jsonl").read_text()  # the test's premise
    out = [world.folder / "one.html", world.folder / "two.html"]
    for target in out:
        done = run(world, "report", "--all", "-o", str(target))
        assert done.returncode == 0, done.stderr
        assert "wrote" in done.stderr and "12 charts" in done.stderr
    html = out[0].read_bytes()
    assert html == out[1].read_bytes()
    text = html.decode()
    assert text.count("<svg") == 12 and text.count('<section class="stage"') == 5
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;planned&lt;/b&gt;" in text
    assert "\x1b" not in text and "^[[31mred" in text
    assert PASSWORD not in text and KEY not in text
    assert "default-src &#x27;none&#x27;" in text or "default-src 'none'" in text


def test_the_markdown_report_escapes_people_and_puts_the_charts_beside_it(world):
    target = world.folder / "ticket.md"
    done = run(world, "report", "--stage", "canary", "--format", "md", "-o", str(target))
    assert done.returncode == 0, done.stderr
    text = target.read_text()
    folder = world.folder / "ticket.charts"
    linked = [line for line in text.splitlines() if line.startswith("![")]
    assert len(linked) == 6  # two canary visits, three charts each
    for line in linked:
        name = line.split("](", 1)[1].rstrip(")")
        assert (world.folder / name).is_file() and name.startswith("ticket.charts/")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        line.split("/")[-1].rstrip(")") for line in linked
    )
    assert "\\<script\\>alert(1)\\</script\\> \\| see \\#42 second line" in text
    assert re.search(r"(?<!\\)[<>]", text) is None  # every < and > escaped
    assert "\x1b" not in text
    assert PASSWORD not in text and not any(PASSWORD in p.read_text() for p in folder.iterdir())
    assert "## Stage canary: Canary (10 %, visit 2)" in text
    assert "## Stage prep" not in text


def test_the_default_is_the_current_visit_and_a_wrong_stage_is_refused_in_words(world):
    done = run(world, "report", "--format", "md")
    assert done.returncode == 0, done.stderr
    assert "## Stage half: Half (50 %, visit 5)" in done.stdout
    assert done.stdout.count("## Stage") == 1
    assert "give `-o FILE`" in done.stdout
    bad = run(world, "report", "--stage", "nope")
    assert bad.returncode == 2
    assert "no stage 'nope' in the runbook; stages: prep, canary, half" in bad.stderr
    assert "Traceback" not in bad.stderr
    nowhere = run(world, "report", "-o", str(world.folder / "missing" / "r.html"))
    assert nowhere.returncode == 2 and "cannot write" in nowhere.stderr
    assert "Traceback" not in nowhere.stderr


def test_a_runbook_with_no_record_yet_gets_a_summary(tmp_path):
    from tui.conftest import write_runbook

    path = write_runbook(tmp_path)
    done = subprocess.run(
        cutover_argv(path, "report", "--format", "md"),
        env={**os.environ, "TEST_DSN": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "| stages passed | none yet |" in done.stdout
    assert "| head | empty journal |" in done.stdout
    assert "no stage entered in the journal yet" in done.stderr


# -- what it costs the rest ----------------------------------------------------------------


def test_only_the_report_imports_the_plotting_library(world):
    # `check` (to its end: it cannot reach the database) and the console's modules, each in
    # a fresh interpreter: matplotlib is never loaded. The report loads it only in the
    # process it forks to draw (report/drawing.py): not in its own either; the charts module
    # itself does load it (the probe sees a loaded library).
    probe = (
        "import sys; from cutover.cli.main import main; "
        "import cutover.tui.app, cutover.tui.screens; "
        "code = main(['--runbook', sys.argv[1], sys.argv[2]]) if sys.argv[2] != 'charts' "
        "else __import__('cutover.report.charts') and 0; "
        "print('LOADED' if 'matplotlib' in sys.modules else 'CLEAN', code)"
    )
    env = {**os.environ, **world.environ}
    for command, expected in (("check", "CLEAN 2"), ("report", "CLEAN 0"), ("charts", "LOADED 0")):
        done = subprocess.run(
            [sys.executable, "-c", probe, str(world.runbook), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=world.folder,
        )
        assert done.stdout.strip().splitlines()[-1] == expected, (command, done.stderr)


# -- team mode: the record on Postgres -----------------------------------------------------


def test_a_record_on_the_team_store_reports_the_same_facts(world, tmp_path, empty_dsn):
    import shutil

    from store_world import env_for

    team = tmp_path / "team"
    shutil.copytree(world.folder / "queries", team / "queries")
    shutil.copytree(world.folder / "flag", team / "flag")
    book = team / "runbook.toml"
    store = '\n[store]\nkind = "postgres"\ndsn_env = "CUTOVER_STATE_URL"\nschema = "cutover"\n'
    book.write_text(world.runbook.read_text() + store)
    env = {**env_for(empty_dsn), **world.environ}

    def team_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            cutover_argv(book, *args), env=env, capture_output=True, text=True, timeout=120
        )

    assert team_cli("store", "init").returncode == 0
    moved = team_cli("store", "import", "--from", str(world.folder / "journal.jsonl"))
    assert moved.returncode == 0, moved.stderr
    on_files = run(world, "report", "--all", "--format", "md").stdout
    on_team = team_cli("report", "--all", "--format", "md")
    assert on_team.returncode == 0, on_team.stderr

    def masked(text: str) -> list[str]:
        # A checkpoint's contents are read from the files store's folder only (the store
        # interface gives their labels): those rows say so on the team store.
        # And verify says where it verified.
        return [line for line in text.splitlines() if "| entry |" not in line
                and "| checkpoint-" not in line and "| exit |" not in line
                and "| what verify said |" not in line]  # fmt: skip

    assert masked(on_team.stdout) == masked(on_files)
    assert "| exit | — | 0 | snapshot canary.2.exit is in " in on_team.stdout
    assert "chain intact (keyed); in the state store (Postgres" in on_team.stdout
    assert PASSWORD not in on_team.stdout


def test_a_long_list_of_restarts_keeps_its_ends_and_says_how_many_it_left_out():
    from types import SimpleNamespace

    from cutover.report import tables
    from cutover.report.timeline import Restart

    many = [Restart(at(i), "flaky" if i % 2 else "steady", "WAIT") for i in range(100)]
    table = tables.restarts(SimpleNamespace(restarts=many))  # type: ignore[arg-type]
    assert table.caption == "Hold restarts (100)"
    assert len(table.rows) == 41
    first, last = table.rows[0][0], table.rows[-1][0]
    assert (first, last) == ("2026-11-20 08:00:00Z", "2026-11-20 09:39:00Z")
    assert table.rows[20] == ("…", "60 more (flaky 50, steady 50 in all)", "…")


def test_evidence_from_a_clock_ahead_is_left_out_and_said_not_stretched_to(tmp_path):
    from datetime import timedelta

    from cutover.record.evidence import TRIGGER, Evaluation

    world = record(tmp_path)
    session = world.session()
    three_years = at(60 * 24 * 365 * 3)
    ahead = session.evidence_store("skewed", clock=lambda: three_years)  # its clock, not ours
    ahead.record([Evaluation(TRIGGER, "slow", "half", "quiet", 99.0, None, "", "d", three_years)])
    ahead.flush()
    made = facts.build(world.session(), every=True, now=at(400))
    assert made.as_of is not None and made.as_of <= at(400)
    assert all(s.end <= at(400) for s in made.stages), [s.end for s in made.stages]
    (said,) = [w for w in made.warnings if "clock ahead" in w]
    assert said.startswith("1 evidence run(s) dated after this report was made (up to 2029-")
    # The same record read three years on is no longer ahead: nothing is set aside.
    later = facts.build(world.session(), every=True, now=three_years + timedelta(days=1))
    assert not [w for w in later.warnings if "clock ahead" in w]


def test_a_dollar_in_the_runbook_words_is_drawn_as_written_not_as_tex(report):
    from dataclasses import replace

    canary = visit(report, "canary", 4)
    gate = canary.gates[0]
    words = r"rate$x_$ ≥ 95 (against $\foo$)"  # bad TeX: matplotlib would raise on it
    check = replace(gate.gate.check, column="cost$eur$")
    dollars = replace(gate, words=words, gate=replace(gate.gate, check=check))
    (drawn,) = [
        c for c in charts.stage_charts(replace(canary, gates=[dollars])) if "gate" in c.title
    ]
    assert words in drawn.svg and "cost$eur$" in drawn.svg


def test_a_reading_without_a_value_breaks_the_line_and_is_marked(report):
    from dataclasses import replace
    from datetime import timedelta

    from cutover.report.timeline import Point

    canary = visit(report, "canary", 4)
    gate = canary.gates[0]
    start = canary.visit.entered_at + timedelta(minutes=5)
    # One PASS, then 50 minutes of UNKNOWN (the database down): shorter than max_gap.
    points = [Point(start, 99.5, "pass"), Point(start + timedelta(minutes=5), 99.5, "pass")]
    points += [Point(start + timedelta(minutes=m), None, "unknown") for m in range(10, 60, 5)]
    points += [Point(start + timedelta(minutes=60), 99.6, "pass")]  # back, within max_gap
    (drawn,) = [
        c
        for c in charts.stage_charts(replace(canary, gates=[replace(gate, points=points)]))
        if c.title.startswith("gate")
    ]
    svg = ET.fromstring(drawn.svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    (marked,) = svg.findall(".//s:g[@id='no-value']", ns)
    assert len(marked.findall(".//s:use", ns)) == 10  # every valueless reading
    (line,) = svg.findall(".//s:g[@id='value']/s:path", ns)
    # Two pieces: the 50 minutes without a value are not drawn as the last value held.
    assert line.get("d", "").count("M") == 2, line.get("d")
