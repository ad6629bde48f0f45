"""The README's walk through the demo, driven from a second shell as the README says (source
demo.env, then cutover's headless commands and curl): sign, advance, break the world with a
knob, see the trigger fire, roll back, recover, and go on to "complete". The tmux test uses
it beside the console; by hand it measures the walk:

    source .cutover/demo.env && .venv/bin/python tests/demo_walk.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

CUTOVER = str(Path(sys.executable).with_name("cutover"))
BREAK = {"v2_failure_rate": 1}  # the README's break: every v2 import fails
MEND = {"v2_failure_rate": 0.005}  # the knob's default again: the fix is deployed
BROKEN_BY = "success_below_95"


class Shell:
    """A second shell that sourced demo.env."""

    def __init__(self, env: Mapping[str, str], say: Callable[[str], None] = print):
        self.env = {**os.environ, **env}
        self.say = say
        self.started = time.monotonic()

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [CUTOVER, *args], env=self.env, capture_output=True, text=True, timeout=180
        )

    def status(self) -> dict:
        ran = self("status", "--json")
        return json.loads(ran.stdout)

    def knobs(self, changes: dict) -> None:
        url = self.env["CUTOVER_DEMO_CONTROL_URL"] + "/knobs"
        httpx.post(url, json=changes, timeout=10).raise_for_status()

    def rlm(self, changes: dict) -> None:
        url = self.env["CUTOVER_DEMO_CONTROL_URL"] + "/rlm"
        httpx.post(url, json=changes, timeout=10).raise_for_status()

    def mark(self, what: str) -> None:
        self.say(f"{time.monotonic() - self.started:7.1f} s  {what}")


def percents() -> dict[str, int]:
    from cutover.runbook.loader import load

    book = load(Path(os.environ.get("CUTOVER_RUNBOOK", "runbook.toml")))
    return {stage.id: stage.percent for stage in book.stages}


def next_percent(stage: str, order: list[str], percent: dict[str, int]) -> int:
    at = order.index(stage)
    return percent[order[min(at + 1, len(order) - 1)]]


def sign_what_can_be_signed(shell: Shell, looked: dict) -> None:
    steps = [s["step"] for s in looked["signoffs"] if not s["signed"]]
    checklist = looked.get("rollback_checklist") or {}
    steps += [s["step"] for s in checklist.get("steps", []) if not s.get("signed")]
    for step in steps:
        # Refused while its `after` has not come or its gate does not pass: tried again.
        shell("signoff", step, "--note", "demo walk")


def advance_once(shell: Shell, order: list[str], percent: dict[str, int], deadline: float) -> str:
    """Sign what can be signed and advance as soon as the runbook allows; the new stage."""
    while time.monotonic() < deadline:
        looked = shell.status()
        if looked.get("completed"):
            return "complete"
        sign_what_can_be_signed(shell, looked)
        target = next_percent(looked["stage"], order, percent)
        ran = shell("advance", "--confirm", str(target))
        if ran.returncode == 0:
            after = shell.status()
            return "complete" if after.get("completed") else after["stage"]
        time.sleep(1)
    raise AssertionError(f"no advance before the deadline; last status: {shell.status()}")


def wait_for_trigger(shell: Shell, trigger: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        fired = {t["id"] for t in shell.status()["triggers"] if t.get("fired")}
        if trigger in fired:
            return
        time.sleep(1)
    raise AssertionError(f"{trigger} did not fire; last status: {shell.status()}")


def walk(
    shell: Shell,
    *,
    rollback: Callable[[], None] | None = None,
    budget_s: float = 1800,
    hold_first: bool = True,
) -> None:
    """demo → canary → break → rollback → recover → canary … → complete. Without
    `hold_first` the world breaks as soon as the canary is entered, not once its hold is
    met: the canary passing on v2's own imports is still proven, by its second entry,
    which must hold (on the window the broken imports had to leave) before the ramp."""
    deadline = time.monotonic() + budget_s
    percent = percents()
    order = list(percent)
    shell.mark("start: signing the prerequisites")
    stage = advance_once(shell, order, percent, deadline)
    shell.mark(f"advanced to {stage}")
    # The canary's gates pass on v2's own imports first: the world breaks after that.
    while hold_first and shell.status()["hold"].get("met") is not True:
        if time.monotonic() > deadline:
            raise AssertionError(f"the canary did not hold; last status: {shell.status()}")
        time.sleep(1)
    shell.mark("breaking v2 " + json.dumps(BREAK))
    shell.knobs(BREAK)
    wait_for_trigger(shell, BROKEN_BY, deadline)
    shell.mark(f"{BROKEN_BY} fired: rolling back")
    if rollback is None:
        ran = shell("rollback", "--reason", "demo walk: v2 failing", "--yes")
        assert ran.returncode == 0, ran.stdout + ran.stderr
    else:
        rollback()
    shell.mark("rolled back: mending v2 " + json.dumps(MEND))
    shell.knobs(MEND)
    shell.rlm({"v1_removed": False})
    while stage != "complete":
        if stage == "deprecation":
            shell.rlm({"v1_removed": True})  # the last stage's step: v1 is removed
        stage = advance_once(shell, order, percent, deadline)
        shell.mark(f"advanced to {stage}")
    shell.mark("complete")


if __name__ == "__main__":
    walk(Shell({}))
