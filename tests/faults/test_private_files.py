"""What cutover writes that holds data or secrets is for this user only: a panel's export
and the demo's demo.env (its token and DSN) are 0600 inside 0700 folders, whatever the
umask, and a wider file or folder left by an older version is narrowed."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable

from cutover.base.redact import Redactor
from cutover.demo import world as demo_world
from cutover.tui.widgets.query_panel import QueryPanel
from tui.conftest import fixed_app


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual 022: without care, files come out 0644 in 0755 folders."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


async def test_an_export_is_readable_by_its_owner_only(tmp_path: Path, open_umask: None):
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        app.query_one("#panel-success", QueryPanel).query_one(DataTable).focus()
        await pilot.press("e")
    (export,) = (tmp_path / ".cutover" / "exports").glob("success-*.csv")
    assert mode(export) == 0o600
    assert mode(export.parent) == 0o700


async def test_an_export_folder_left_open_is_narrowed(tmp_path: Path, open_umask: None):
    exports = tmp_path / ".cutover" / "exports"
    exports.mkdir(parents=True, mode=0o755)
    os.chmod(exports, 0o755)
    app = fixed_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        app.query_one("#panel-success", QueryPanel).query_one(DataTable).focus()
        await pilot.press("e")
    assert mode(exports) == 0o700
    assert [mode(p) for p in exports.iterdir()] == [0o600]


def test_demo_env_is_0600_in_a_0700_folder(tmp_path: Path, open_umask: None):
    env_file = tmp_path / ".cutover" / "demo.env"
    demo_world.write_env_file(env_file, {"VERCEL_TOKEN": "fake-token-for-the-demo"})
    assert mode(env_file) == 0o600
    assert mode(env_file.parent) == 0o700


def test_an_old_open_cutover_folder_is_narrowed_for_demo_env(tmp_path: Path, open_umask: None):
    folder = tmp_path / ".cutover"
    folder.mkdir(mode=0o755)
    (folder / "demo.env").write_text("old\n")
    os.chmod(folder / "demo.env", 0o644)
    demo_world.write_env_file(folder / "demo.env", {"VERCEL_TOKEN": "fake-token-for-the-demo"})
    assert mode(folder) == 0o700 and mode(folder / "demo.env") == 0o600


def test_a_folder_the_operator_named_is_left_as_it_is(tmp_path: Path, open_umask: None):
    """`--dir /srv/x` puts demo.env in /srv: cutover must not chmod a folder it does not own;
    the file itself is still private."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    demo_world.write_env_file(shared / "demo.env", {"VERCEL_TOKEN": "fake-token-for-the-demo"})
    assert mode(shared) == 0o755 and mode(shared / "demo.env") == 0o600


def test_the_demo_log_is_private_and_keeps_the_worlds_secrets_out(tmp_path: Path, open_umask: None):
    demo_dir = tmp_path / ".cutover" / "demo"
    logger = logging.getLogger("cutover.demo")
    before = list(logger.handlers)
    token = "fake-but-secret-demo-token"
    try:
        log_format = demo_world._configure_logging(demo_dir, headless=False)
        log_format.redact = Redactor([token])  # what run() sets once the world is up
        try:
            raise RuntimeError(f"the API refused {token}")
        except RuntimeError:
            logger.exception("stopping FakeVercel with %s", token)
    finally:
        for handler in set(logger.handlers) - set(before):
            handler.close()
            logger.removeHandler(handler)
    log = (demo_dir / "world.log").read_text()
    assert "RuntimeError: the API refused ***" in log and token not in log
    assert mode(demo_dir / "world.log") == 0o600
    assert mode(demo_dir) == 0o700 and mode(demo_dir.parent) == 0o700
