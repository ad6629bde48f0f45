"""The report's charts drawn in a process of its own, forked before the record is read: it
imports the plotting library (~0.5 s) while this process reads the record, then draws what
it is sent, half of it in a process it forks in turn once its first chart is drawn (two
cores draw what one would). A thread would overlap none of it: all of it is Python holding
the interpreter's lock. Only the charts cross between the processes (the facts pickled one
way, the SVG text the other), so the documents are the same bytes as when drawn here.
Where no process can be forked, they are drawn here, as before.

The fork happens before anything opens a connection or starts a thread (`cutover report`
forks first): the child reads nothing but its pipe and ends with os._exit, so no handler,
buffer or connection of this process runs twice."""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from cutover.report.facts import StageFacts
from cutover.report.tables import Chart

# How long a drawing process has to take the facts and answer with every chart (a week's
# take about a second): one that is stopped (SIGSTOP, a debugger) or wedged is killed and
# its charts drawn here, rather than a report that never ends.
ANSWER_WITHIN_S = 60.0


class _NoAnswer(Exception):
    """The drawing process did not take the facts or answer within ANSWER_WITHIN_S."""


class Drawer:
    """`with Drawer() as drawer: …read the record…; drawn = drawer.draw(stages)`."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._send: int | None = None
        self._receive: int | None = None

    def __enter__(self) -> Drawer:
        to_child, from_parent = os.pipe()
        from_child, to_parent = os.pipe()
        sys.stdout.flush()  # what is buffered is this process's to write, not the child's
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError:  # no process to be had (a limit): the charts are drawn here
            for fd in (to_child, from_parent, from_child, to_parent):
                os.close(fd)
            return self
        if pid == 0:  # pragma: no cover - the child: measured by its output, in the parent
            os.close(from_parent)
            os.close(from_child)
            _child(to_child, to_parent)
        os.close(to_child)
        os.close(to_parent)
        self._pid, self._send, self._receive = pid, from_parent, from_child
        return self

    def draw(self, stages: Sequence[StageFacts]) -> list[list[Chart]]:
        """Each stage's charts, in order."""
        if self._pid is None:
            from cutover.report import charts

            return [charts.stage_charts(s) for s in stages]
        assert self._send is not None and self._receive is not None
        deadline = time.monotonic() + ANSWER_WITHIN_S
        try:
            send, self._send = self._send, None
            _write_all(send, pickle.dumps(list(stages), pickle.HIGHEST_PROTOCOL), deadline)
            receive, self._receive = self._receive, None
            outcome, value = pickle.loads(_read_all(receive, deadline))
        except (EOFError, pickle.UnpicklingError, BrokenPipeError, _NoAnswer):
            # The drawing process died without an answer (killed, out of memory) or gave
            # none in time (stopped, wedged): the charts are drawn here, the same bytes,
            # rather than a report that stops or never ends.
            self._reap(kill=True)
            from cutover.report import charts

            return [charts.stage_charts(s) for s in stages]
        if outcome != "drawn":
            raise value  # what drawing raised, as drawing here would have
        return value

    def __exit__(self, *exc: object) -> None:
        asked = self._send is None
        for fd in (self._send, self._receive):
            if fd is not None:
                os.close(fd)
        # Stopped before the charts (a wrong stage, a bug): not waited for.
        self._reap(kill=not asked)

    def _reap(self, *, kill: bool) -> None:
        if self._pid is not None:
            if kill:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = None


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    """All of `data` into the pipe, then closed; _NoAnswer if the reader has not taken it
    by `deadline` (a full pipe would otherwise block this process for good)."""
    try:
        os.set_blocking(fd, False)
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise _NoAnswer
            with contextlib.suppress(BlockingIOError):
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _read_all(fd: int, deadline: float) -> bytes:
    """Everything the pipe holds until its writer closes it, then closed; _NoAnswer if that
    has not happened by `deadline`."""
    chunks: list[bytes] = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise _NoAnswer
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def _child(stages_in: int, charts_out: int) -> None:  # pragma: no cover - runs forked
    code = 0
    try:
        result: tuple[str, Any]
        try:
            from cutover.report import charts  # while the parent reads the record

            try:
                with os.fdopen(stages_in, "rb") as source:
                    stages = pickle.load(source)
            except EOFError:  # the parent stopped before it had charts to ask for
                return
            jobs = [
                ((number, order), job)
                for number, stage in enumerate(stages)
                for order, job in enumerate(charts.stage_jobs(stage))
            ]
            drawn = _drawn_by_two(jobs)
            per_stage: list[list[Chart]] = [[] for _ in stages]
            for key, _ in jobs:
                if drawn[key] is not None:  # a stage without triggers has no triggers' chart
                    per_stage[key[0]].append(drawn[key])
            result = ("drawn", per_stage)
        except BaseException as exc:  # sent back whole: the parent raises it
            result = ("raised", _sendable(exc))
        with os.fdopen(charts_out, "wb") as sink:
            pickle.dump(result, sink, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _sendable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"drawing the charts failed: {type(exc).__name__}: {exc}")
    return exc


def _drawn_by_two(jobs: list[tuple[tuple[int, int], Any]]) -> dict[tuple[int, int], Any]:
    """Every chart job drawn, the first here (it pays what a first chart costs once: fonts,
    the SVG backend), then the rest split with a process forked from this one, which
    inherits all that: two cores draw what one would."""
    if not jobs:
        return {}
    (first_key, first), rest = jobs[0], jobs[1:]
    drawn = {first_key: first()}
    theirs, mine = rest[1::2], rest[0::2]
    if not theirs:
        drawn.update((key, job()) for key, job in mine)
        return drawn
    receive, send = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(receive)
        os.close(send)
        drawn.update((key, job()) for key, job in rest)
        return drawn
    if pid == 0:
        os.close(receive)
        code = 0
        try:
            try:
                result: tuple[str, Any] = ("drawn", {key: job() for key, job in theirs})
            except BaseException as exc:
                result = ("raised", _sendable(exc))
            with os.fdopen(send, "wb") as sink:
                pickle.dump(result, sink, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(send)
    try:
        drawn.update((key, job()) for key, job in mine)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.close(receive)
        os.waitpid(pid, 0)
        raise
    try:
        # Half the parent's wait, counted from now: this process must give up on its own
        # helper, and draw its share, before the parent gives up on this one.
        outcome, value = pickle.loads(_read_all(receive, time.monotonic() + ANSWER_WITHIN_S / 2))
    except (EOFError, pickle.UnpicklingError, _NoAnswer):  # no answer (died, stopped): drawn here
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        outcome, value = "drawn", {key: job() for key, job in theirs}
    os.waitpid(pid, 0)
    if outcome != "drawn":
        raise value
    drawn.update(value)
    return drawn
