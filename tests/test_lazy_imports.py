"""What a process imports before it needs it is paid on every start: the console's first
paint and every `check` (bench/console.py, bench/check_psql.py). These name what must stay
out of a fresh process until it is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def imported_after(
    statement: str, names: list[str], env: dict[str, str] | None = None
) -> dict[str, bool]:
    """In a fresh interpreter: which of `names` are in sys.modules after `statement`."""
    code = (
        f"import json, sys; {statement}; "
        f"print(json.dumps({{n: n in sys.modules for n in {names!r}}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    return json.loads(done.stdout)


def test_the_console_module_leaves_the_http_client_until_a_request():
    # The webhook notifier imported httpx at the top, and with it httpx's command-line
    # tool (click, rich.syntax, pygments): ~0.1 s of the first paint.
    found = imported_after("import cutover.tui.app", ["httpx", "httpx._main", "pygments"])
    assert found == {"httpx": False, "httpx._main": False, "pygments": False}


def test_the_headless_commands_leave_the_http_client_and_the_ui_alone():
    found = imported_after("import cutover.cli.main", ["httpx", "textual", "jsonpath"])
    assert found == {"httpx": False, "textual": False, "jsonpath": False}


def test_a_first_load_after_an_edit_leaves_the_jsonpath_library_alone(tmp_path):
    # An empty memo (the first run after a runbook edit): the shipped JSONPaths are all of
    # everyday shapes (runbook/jsonpaths.py), judged without importing the library, which
    # builds two lexers on import (~60 ms of the first `check`).
    env = {**os.environ, "CUTOVER_CACHE_DIR": str(tmp_path / "empty")}
    load = f"from cutover.runbook import loader; loader.load({str(REPO / 'runbook.toml')!r})"
    assert imported_after(load, ["jsonpath"], env) == {"jsonpath": False}


def test_check_sends_its_queries_before_judging_is_imported():
    # `check` opens the session and sends its queries with none of judging imported; a thread
    # imports it while Postgres works (cli/main.py _check). Imported with the session, it
    # was ~25-40 ms before the first query.
    judging = ["cutover.judge.check", "cutover.judge.compare", "cutover.judge.trend"]
    opened = "import cutover.cli.main, cutover.judge.session, cutover.judge.wanted"
    assert imported_after(opened, judging) == dict.fromkeys(judging, False)


def test_building_the_parser_leaves_shutil_alone():
    # argparse's HelpFormatter imports shutil (bz2, lzma, fnmatch with it: ~8 ms) to learn the
    # terminal's width, as soon as a parser gets an argument; cutover's tells it the width.
    built = "import cutover.cli.main as m; m.parser().parse_args(['check'])"
    assert imported_after(built, ["shutil", "bz2"]) == {"shutil": False, "bz2": False}


@pytest.mark.parametrize("columns", [None, "100", "0", "-3", "wide"])
def test_the_help_is_as_wide_as_shutil_would_make_it(columns, monkeypatch):
    import shutil

    from cutover.cli.startup import terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns


@pytest.mark.parametrize("lines", [None, "50", "0", "wide"])
def test_the_first_screen_is_as_tall_as_shutil_would_say(lines, monkeypatch):
    # The console's first answers are chosen by it (sources/first_answers).
    import shutil

    from cutover.base.terminal import terminal_size

    if lines is None:
        monkeypatch.delenv("LINES", raising=False)
    else:
        monkeypatch.setenv("LINES", lines)
    assert terminal_size()[1] == shutil.get_terminal_size().lines
