"""A command flag's script that talks too much (`set -x`, curl -v) must not put the database
password or an API token on the screen, in the journal or in the console's notifications;
and a variable the runbook does not list for the commands is not even visible to them."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from cutover.judge.session import Session
from cutover.runbook import loader as runbook
from cutover.tui.app import CutoverApp
from cutover.tui.screens.moves import AdvanceScreen
from moves_world import cli
from tui.conftest import ScriptedRunner, until

DB_PASSWORD = "Pa55w0rd-never-on-screen"
DSN = f"postgresql://app:{DB_PASSWORD}@127.0.0.1:9/soulprint"
TOKEN = "vcp_T0ken-never-on-screen-91c2"
DEPLOY_KEY = "dk-listed-secret-5e7d1a"
UNLISTED = "unlisted-secret-3b8f40"
SECRETS = (DB_PASSWORD, TOKEN, DEPLOY_KEY, UNLISTED)

# Everything a careless deploy script echoes: the shell's own trace, a curl -v header, a
# connection string, a password cut out of it, and a variable nobody listed.
LEAKY_SET = """\
set -x
pw=${CUTOVER_DATABASE_URL#*://*:}; pw=${pw%%@*}
env > "$(dirname "$0")/env-seen"
printf '%s\\n' "> Authorization: Bearer $VERCEL_TOKEN" "dsn $CUTOVER_DATABASE_URL pw $pw" >&2
printf '%s\\n' "key $DEPLOY_KEY unlisted $UNLISTED_SECRET token $VERCEL_TOKEN" >&2
exit 7
"""

RUNBOOK = """\
version = 1
title = "a leaky flag script"

[database]
dsn_env = "CUTOVER_DATABASE_URL"
statement_timeout = "5s"

[journal]
path = "journal.jsonl"

[flag]
kind = "command"
get = "cat {percent_file}"
set = "sh {script} {{percent}}"
env = ["DEPLOY_KEY", "CUTOVER_DATABASE_URL"]

[queries.ok]
title = "Always fine"
file = "queries/ok.sql"
refresh = "30s"

[[stages]]
id = "off"
title = "Off"
percent = 0
hold = "0s"

[[stages]]
id = "canary"
title = "Canary"
percent = 10
hold = "0s"
"""


def leaky_world(folder: Path, percent: int = 0) -> Path:
    (folder / "queries").mkdir(parents=True, exist_ok=True)
    (folder / "queries" / "ok.sql").write_text("-- Always fine\nSELECT 1 AS ok;\n")
    (folder / "percent").write_text(f"{percent}\n")
    (folder / "set-flag.sh").write_text(LEAKY_SET)
    path = folder / "runbook.toml"
    path.write_text(
        RUNBOOK.format(
            percent_file=shlex.quote(str(folder / "percent")),
            script=shlex.quote(str(folder / "set-flag.sh")),
        )
    )
    return path


def secret_environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_CONNECTION", "SUDO_USER")}
    env.update(
        USER="tester",
        CUTOVER_DATABASE_URL=DSN,
        VERCEL_TOKEN=TOKEN,
        DEPLOY_KEY=DEPLOY_KEY,
        UNLISTED_SECRET=UNLISTED,
    )
    return env


def written_by_cutover(folder: Path) -> str:
    """Every file cutover wrote beside the runbook (the journal, its lock, any sidecar)."""
    ours = {"runbook.toml", "percent", "set-flag.sh", "env-seen"}
    return "\n".join(
        p.read_text(encoding="utf-8", errors="replace")
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in ours and "queries" not in p.parts
    )


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into {where}"


def test_a_leaky_flag_script_never_shows_the_password_or_the_token(tmp_path: Path):
    book = leaky_world(tmp_path)
    env = secret_environ()
    advanced = cli(book, env, "advance", "--confirm", "10")
    assert advanced.code != 0, advanced.output
    assert "exited 7" in advanced.output  # the failure is shown, its secrets are not
    assert "***" in advanced.output  # the listed DEPLOY_KEY and the DSN were cut out
    assert_no_secret(advanced.output, "the CLI's output")
    for command in (("journal",), ("journal", "--json"), ("status",), ("status", "--json")):
        ran = cli(book, env, *command)
        assert_no_secret(ran.output, f"`cutover {' '.join(command)}`")
    journal_text = (tmp_path / "journal.jsonl").read_text(encoding="utf-8")
    assert "exited 7" in journal_text  # the failure is journaled …
    assert_no_secret(written_by_cutover(tmp_path), "the journal's files")  # … without them


def test_a_flag_command_sees_only_the_variables_the_runbook_lists(tmp_path: Path):
    book = leaky_world(tmp_path)
    cli(book, secret_environ(), "advance", "--confirm", "10")
    seen = dict(
        line.split("=", 1)
        for line in (tmp_path / "env-seen").read_text().splitlines()
        if "=" in line
    )
    # Listed: given. The safe base: given. Anything else, the platform token included: not.
    assert seen["DEPLOY_KEY"] == DEPLOY_KEY and seen["CUTOVER_DATABASE_URL"] == DSN
    assert seen["PATH"] == os.environ["PATH"] and seen["USER"] == "tester"
    assert "VERCEL_TOKEN" not in seen and "UNLISTED_SECRET" not in seen
    assert TOKEN not in str(seen) and UNLISTED not in str(seen)
    assert not {"PYTHONPATH", "VIRTUAL_ENV", "SSH_AUTH_SOCK"} & set(seen)


async def test_the_console_never_shows_what_a_leaky_flag_script_says(tmp_path: Path):
    book = leaky_world(tmp_path)
    session = Session(runbook.load(book), secret_environ())

    def clock() -> datetime:
        return datetime.now(UTC)

    app = CutoverApp(
        session,
        clock=clock,
        runner_factory=lambda: ScriptedRunner(rows={"ok": (("ok",), ((1,),))}, clock=clock),
        probe_poll_s=None,
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.check_action("advance", ()) is True)
        await pilot.press("a")
        dialog = app.screen
        assert isinstance(dialog, AdvanceScreen)
        await pilot.press(*"10", "enter")
        # The dialog answers with dismiss(); the app reopens one attached to the move.
        await until(pilot, lambda: isinstance(app.screen, AdvanceScreen) and app.screen.done)
        dialog = app.screen
        shown = [str(n.message) for n in app._notifications]
        shown += dialog.query_one("#progress").lines
        shown.append(str(dialog.query_one("#result").render()))
        assert any("exited 7" in line for line in shown)  # the failure is on screen …
        assert_no_secret("\n".join(map(str, shown)), "the console")  # … its secrets are not
    assert_no_secret(written_by_cutover(tmp_path), "the journal's files")


def run_cliutil(book: Path, code: str, *argv: str, **env: str) -> subprocess.CompletedProcess:
    """`code` after opening the runbook's session the way every command does."""
    opened = (
        "import argparse, json, sys; from cutover.cli import common as cliutil; "
        f"cliutil.session_for(argparse.Namespace(runbook={str(book)!r})); "
    )
    return subprocess.run(
        [sys.executable, "-c", opened + code, *argv],
        env={**secret_environ(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_line_the_cli_prints_passes_through_the_sessions_redactor(tmp_path: Path):
    """Whatever path a text takes to the terminal (a platform's error, an exception), the
    one choke point cuts the runbook's secrets out of it."""
    book = leaky_world(tmp_path)
    code = "cliutil.out('dsn ' + sys.argv[1]); cliutil.err('key ' + sys.argv[2])"
    done = run_cliutil(book, code, DSN, DEPLOY_KEY)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "dsn ***\n" and done.stderr == "key ***\n"


def test_a_secret_with_a_quote_is_cut_out_of_json_output_too(tmp_path: Path):
    """--json prints a secret holding a quote JSON-escaped; the redactor knows that form."""
    book = leaky_world(tmp_path)
    tricky = 'dk-"quoted"-key-77'
    code = "cliutil.out(json.dumps({'said': 'curl: ' + sys.argv[1]}))"
    done = run_cliutil(book, code, tricky, DEPLOY_KEY=tricky)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"said": "curl: ***"}
