"""The layout is the architecture: every module lives in a layer's folder, every folder is a
layer of the import contracts (so a new one cannot slip past them), and each folder says in
its first two lines what it holds and what it may import."""

from __future__ import annotations

import ast
import pkgutil
import tomllib
from pathlib import Path

import cutover

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PACKAGE = Path(cutover.__file__).parent
MAX_LINES = 600


def contracts() -> list[dict]:
    return tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]


def layered() -> set[str]:
    (layers,) = [c for c in contracts() if c["type"] == "layers" and "containers" not in c]
    return {name.strip() for layer in layers["layers"] for name in layer.split("|")}


def test_every_module_lives_in_a_layer_folder():
    loose = {
        m.name
        for m in pkgutil.iter_modules(cutover.__path__, "cutover.")
        if not m.ispkg and m.name != "cutover.__main__"
    }
    assert loose == set(), f"modules outside any layer's folder: {loose}"


def test_every_folder_is_a_layer_of_the_contract_and_every_layer_exists():
    folders = {m.name for m in pkgutil.iter_modules(cutover.__path__, "cutover.") if m.ispkg}
    assert folders - layered() == set(), f"folders in no layer: {folders - layered()}"
    assert layered() - folders == set(), f"layers with no folder: {layered() - folders}"


def test_the_ui_toolkit_is_kept_out_of_every_layer_but_the_console_and_the_demo():
    (no_ui,) = [c for c in contracts() if "textual" in c.get("forbidden_modules", [])]
    assert set(no_ui["source_modules"]) == layered() - {"cutover.tui", "cutover.demo"}


def test_each_folder_opens_with_two_lines_on_what_it_holds_and_may_import():
    for folder in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        assert doc, f"{folder.name}/__init__.py has no docstring"
        assert len(doc.splitlines()) == 2, f"{folder.name}: {doc!r}"
        assert "import" in doc.lower(), f"{folder.name} does not say what it may import: {doc!r}"


def test_no_module_outside_the_console_is_over_600_lines():
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these by what they do: {long}"


def test_a_headless_command_imports_only_what_it_uses():
    # Each command imports its own module when it runs: opening the CLI and loading the
    # shipped runbook pulls neither the console, nor the flag adapters, nor an HTTP client
    # (`check` paid ~0.2 s for them on every run).
    import subprocess
    import sys

    probe = (
        "import sys; from pathlib import Path; import cutover.cli.main as cli; "
        "from cutover.runbook import loader; "
        f"loader.load(Path({str(PYPROJECT.parent / 'runbook.toml')!r})); "
        "cli.command_for('check'); "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'textual', 'rich', 'click', 'pygments') or m.startswith("
        "('cutover.traffic.flags.', 'cutover.tui', 'cutover.watch', 'cutover.demo')) or "
        "(m.startswith('cutover.cli.') and m not in ('cutover.cli.main', 'cutover.cli.common'))"
        ")))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == []
