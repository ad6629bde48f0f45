"""The import contract covers every core module: a new module outside the console and the
demo must be listed (so it can never pull Textual into `cutover check`), and a listed one
must exist (a stale entry hides nothing)."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import cutover

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
UI_AND_DEMO = ("cutover.tui", "cutover.demo")


def test_every_core_module_is_under_the_no_ui_contract():
    config = tomllib.loads(PYPROJECT.read_text())
    contract = next(
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if "textual" in c.get("forbidden_modules", [])
    )
    listed = set(contract["source_modules"])
    core = {
        m.name
        for m in pkgutil.walk_packages(cutover.__path__, "cutover.")
        if not m.name.startswith(UI_AND_DEMO) and m.name != "cutover.__main__"
    }
    # A listed package covers its modules (import-linter checks a package's descendants).
    missing = {m for m in core - listed if not any(m.startswith(p + ".") for p in listed)}
    assert missing == set(), f"core modules missing from the contract: {missing}"
    assert listed - core == set(), f"contract lists modules that do not exist: {listed - core}"


def test_a_headless_command_imports_only_what_it_uses():
    # Each command imports its own module when it runs: opening the CLI and loading the
    # shipped runbook pulls neither the console, nor the flag adapters, nor an HTTP client
    # (`check` paid ~0.2 s for them on every run).
    import subprocess
    import sys

    probe = (
        "import sys; from pathlib import Path; import cutover.cli as cli; "
        "from cutover import runbook; "
        f"runbook.load(Path({str(PYPROJECT.parent / 'runbook.toml')!r})); "
        "cli.command_for('check'); "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'textual', 'rich', 'click', 'pygments') or m.startswith("
        "('cutover.flags.', 'cutover.cli_', 'cutover.tui')))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == []
