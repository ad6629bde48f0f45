"""The report's charts drawn in forked processes (report/drawing.py): the same bytes as drawn
in this one; what drawing raises, in either process, reaches the caller as itself; a report
stopped before its charts leaves no process behind; where no process can be forked they are
drawn here."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from cutover.report import charts, drawing, facts
from report_world import record


@pytest.fixture(scope="module")
def stages(tmp_path_factory) -> list[facts.StageFacts]:
    world = record(tmp_path_factory.mktemp("drawing"))
    return facts.build(world.session(), every=True).stages


def children() -> set[int]:
    """This process's children still in the process table (a zombie among them); a test
    compares with those it began with (a worker may run a database of its own)."""
    me = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                found.add(int(entry))
    return found


def test_charts_drawn_in_the_forked_process_are_the_bytes_drawn_here(stages):
    here = [charts.stage_charts(s) for s in stages]
    before = children()
    with drawing.Drawer() as drawer:
        assert drawer._pid is not None and drawer._pid in children() - before
        there = drawer.draw(stages)
    assert there == here and sum(len(c) for c in there) == 12
    assert children() <= before


def test_what_drawing_raises_reaches_the_caller_as_itself(stages):
    broken = replace(stages[0], window_start=None)  # no axis to draw on
    before = children()
    with pytest.raises(TypeError), drawing.Drawer() as drawer:
        drawer.draw([broken])
    assert children() <= before
    with pytest.raises(TypeError):
        charts.stage_charts(broken)  # as drawn here


def test_what_the_second_drawing_process_raises_reaches_the_caller_too(stages):
    # Jobs: gate, gate, gate (broken), triggers, percent. The first is drawn by the forked
    # process before it forks again; the second and the fourth of the rest, the broken
    # gate's among them, by the process it forks.
    canary = next(s for s in stages if s.gates)
    gate = canary.gates[0]
    three = replace(canary, gates=[gate, gate, replace(gate, threshold="95")])
    before = children()
    with pytest.raises(ValueError), drawing.Drawer() as drawer:
        drawer.draw([three])
    assert children() <= before
    with pytest.raises(ValueError):
        charts.stage_charts(three)  # as drawn here
    good = replace(canary, gates=[gate, gate, gate])
    with drawing.Drawer() as drawer:
        assert drawer.draw([good]) == [charts.stage_charts(good)]


def test_a_report_stopped_before_its_charts_leaves_no_process(stages):
    before = children()
    with pytest.raises(LookupError), drawing.Drawer() as drawer:
        assert drawer._pid in children() - before
        raise LookupError("no stage 'x' in the runbook")
    assert children() <= before


def test_where_no_process_can_be_forked_the_charts_are_drawn_here(stages, monkeypatch):
    def refused() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refused)
    with drawing.Drawer() as drawer:
        assert drawer._pid is None
        drawn = drawer.draw(stages[:1])
    assert drawn == [charts.stage_charts(stages[0])]


def _dead(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_drawing_process_killed_leaves_the_charts_drawn_here(stages):
    """kill -9 (the OOM killer) of the drawing process: no EOFError for the operator, the
    charts drawn here, the same bytes, and the dead process reaped."""
    before = children()
    with drawing.Drawer() as drawer:
        pid = drawer._pid
        assert pid is not None
        os.kill(pid, 9)
        while not _dead(pid):
            os.sched_yield()
        drawn = drawer.draw(stages)
    assert drawn == [charts.stage_charts(s) for s in stages]
    assert children() <= before


def test_a_second_drawing_process_that_dies_leaves_its_charts_to_the_first(monkeypatch):
    me = os.getpid()

    def job(n: int):
        def draw() -> charts.Chart:
            if os.getppid() != me:  # only in the process the drawing process forks
                os._exit(3)
            return charts.Chart(str(n), str(n), f"<svg>{n}</svg>")

        return draw

    monkeypatch.setattr(charts, "stage_jobs", lambda stage: [job(n) for n in range(4)])
    with drawing.Drawer() as drawer:
        drawn = drawer.draw(["a stage"])
    assert [c.svg for c in drawn[0]] == [f"<svg>{n}</svg>" for n in range(4)]


def test_a_stopped_drawing_process_leaves_the_charts_drawn_here(stages, monkeypatch):
    """A drawing process that never answers (SIGSTOP, a debugger) used to hold `cutover
    report` forever: it is killed once ANSWER_WITHIN_S has passed, reaped, and its charts
    drawn here, the same bytes."""
    monkeypatch.setattr(drawing, "ANSWER_WITHIN_S", 1.0)
    before = children()
    with drawing.Drawer() as drawer:
        pid = drawer._pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        drawn = drawer.draw(stages)
    assert drawn == [charts.stage_charts(s) for s in stages]
    assert children() <= before


def test_a_stopped_second_drawing_process_leaves_its_charts_to_the_first(monkeypatch):
    """The drawing process gives up on the one it forked in half the time the report waits
    for it, so it draws that share itself and the report still gets its charts from it."""
    me = os.getpid()
    monkeypatch.setattr(drawing, "ANSWER_WITHIN_S", 6.0)
    drawn_here: list[int] = []

    def job(n: int):
        def draw() -> charts.Chart:
            if os.getpid() == me:
                drawn_here.append(n)  # the report's own fallback: not what is tested
            elif os.getppid() != me:  # only in the process the drawing process forks
                os.kill(os.getpid(), signal.SIGSTOP)
            return charts.Chart(str(n), str(n), f"<svg>{n}</svg>")

        return draw

    monkeypatch.setattr(charts, "stage_jobs", lambda stage: [job(n) for n in range(4)])
    before = children()
    with drawing.Drawer() as drawer:
        drawn = drawer.draw(["a stage"])
    assert [c.svg for c in drawn[0]] == [f"<svg>{n}</svg>" for n in range(4)]
    assert drawn_here == []  # the drawing process answered, with its helper's share
    assert children() <= before
