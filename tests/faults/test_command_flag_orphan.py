"""A move's flag command must not outlive an unsettled journal. Once, kill -9 of cutover
during a command-flag advance left the command running (it has a session of its own); the
next command settled the move "failed … did not take effect", and 12 s later the orphan
wrote 10 % (drift). The running command is recorded beside the journal; an interrupted move
settles only once it has exited, by what the flag then reads."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

from moves_world import cli, journal

RUNBOOK = """\
version = 1
title = "a slow flag command"

[journal]
path = "journal.jsonl"

[flag]
kind = "command"
get = "cat {percent}"
set = "sh {script} {{percent}}"

[[stages]]
id = "off"
title = "Off"
percent = 0

[[stages]]
id = "canary"
title = "Canary"
percent = 10
"""

SLOW_SET = 'sleep 3\nprintf "%s\\n" "$1" > "$(dirname "$0")/percent"\n'


def test_an_orphaned_set_command_is_waited_for_not_settled_as_failed(tmp_path):
    (tmp_path / "percent").write_text("0\n")
    (tmp_path / "set.sh").write_text(SLOW_SET)
    book = tmp_path / "runbook.toml"
    book.write_text(
        RUNBOOK.format(
            percent=shlex.quote(str(tmp_path / "percent")),
            script=shlex.quote(str(tmp_path / "set.sh")),
        )
    )
    env = {**os.environ, "USER": "tester"}
    mover = subprocess.Popen(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(book), "advance", "--confirm", "10"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    record = tmp_path / "journal.jsonl.child"
    deadline = time.monotonic() + 30
    while not record.exists():
        assert time.monotonic() < deadline, "the set command never started"
        time.sleep(0.05)
    os.kill(mover.pid, signal.SIGKILL)  # cutover dies; its set command does not
    mover.wait()

    early = cli(book, env, "status")
    assert "its flag command" in early.output and "is still running" in early.output
    assert [e["kind"] for e in journal(book)] == ["advance.intent"]  # not settled as failed

    # The orphan finishes its work (the record of it stays: its cutover died); then the
    # next command, seeing it gone, settles the move.
    deadline = time.monotonic() + 30
    while (tmp_path / "percent").read_text().strip() != "10":
        assert time.monotonic() < deadline, "the set command never finished"
        time.sleep(0.1)
    later = cli(book, env, "status")
    while "was interrupted but took effect" not in later.output:
        assert time.monotonic() < deadline, later.output  # its shell has not exited yet
        time.sleep(0.2)
        later = cli(book, env, "status")
    assert journal(book)[-1]["kind"] == "advance.done"
    assert (tmp_path / "percent").read_text().strip() == "10"
