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
