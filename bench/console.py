"""The console as an operator over SSH meets it, measured in a real terminal (tmux) on the
demo world: time to first paint and to the first full paint (every visible panel has run),
and the bytes it sends to the terminal, at start and per second while idle, which is what a
slow link pays. Times are given as ratios to `cutover --help` (the cost of starting Python
and the package) measured in the same run.

Run: .venv/bin/python bench/console.py   (needs tmux; takes about a minute)
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CUTOVER = str(Path(sys.executable).with_name("cutover"))
SOCKET = f"cutover-bench-{os.getpid()}"
IDLE_S = 20


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True).stdout


def wait(ok, timeout: float, step: float = 0.02) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if ok():
            return time.monotonic() - started
        time.sleep(step)
    raise SystemExit("timed out")


def env_from(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line[7:].partition("=")
            env[name] = shlex.split(value)[0]
    return env


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="cutover-bench-"))
    world = subprocess.Popen(
        [
            CUTOVER,
            "--runbook",
            str(ROOT / "runbook.toml"),
            "demo",
            "--headless",
            "--dir",
            str(folder / "demo"),
            # BENCH_RATE=0.01: (almost) no live traffic, to tell data changes from redraws
            "--rate",
            os.environ.get("BENCH_RATE", "30"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait(lambda: (folder / "demo.env").exists(), 120, 0.2)
        env = {**os.environ, **env_from(folder / "demo.env")}
        helps = []
        for _ in range(5):
            started = time.monotonic()
            subprocess.run([CUTOVER, "--help"], capture_output=True, env=env)
            helps.append(time.monotonic() - started)
        baseline = min(helps)

        log = folder / "terminal.bytes"
        exports = " ".join(
            f"{k}={shlex.quote(v)}" for k, v in env_from(folder / "demo.env").items()
        )
        tmux("new-session", "-d", "-s", "c", "-x", "120", "-y", "40", "bash --norc --noprofile")
        tmux("pipe-pane", "-o", "-t", "c", f"cat >> {shlex.quote(str(log))}")
        started = time.monotonic()
        tmux("send-keys", "-t", "c", f"env {exports} {CUTOVER} tui", "Enter")
        first = wait(lambda: "Prerequisites" in tmux("capture-pane", "-p", "-t", "c"), 60)
        full = wait(lambda: tmux("capture-pane", "-p", "-t", "c").count(" ran ") >= 3, 60)
        full = max(first, time.monotonic() - started)
        time.sleep(1)
        at_start = log.stat().st_size
        time.sleep(IDLE_S)
        idle_rate = (log.stat().st_size - at_start) / IDLE_S
        if os.environ.get("BENCH_KEEP_LOG"):
            print(f"terminal bytes kept in {log} (idle from byte {at_start})")
        tmux("send-keys", "-t", "c", "q")
        time.sleep(1)
    finally:
        tmux("kill-server")
        world.terminate()
        world.wait(30)
    print(f"{'measure':<44} {'value':>12} {'vs cutover --help':>18}")
    print(f"{'cutover --help (baseline)':<44} {baseline * 1e3:>10.0f}ms {1:>17.1f}×")
    print(
        f"{'first paint (header and runbook)':<44} {first * 1e3:>10.0f}ms "
        f"{first / baseline:>17.1f}×"
    )
    print(
        f"{'first full paint (panels have run)':<44} {full * 1e3:>10.0f}ms "
        f"{full / baseline:>17.1f}×"
    )
    print(f"{'bytes to the terminal, first 1 s after full paint':<44} {at_start:>10,d} B")
    print(f"{f'bytes per second while idle ({IDLE_S} s)':<44} {idle_rate:>10,.0f} B")


if __name__ == "__main__":
    main()
