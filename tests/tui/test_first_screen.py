"""The console's first seconds (#20): the panels on the first screen are fetched at once, of
whatever kind; the HTTP queries below it, a flag on Vercel and the stage's probes wait until
those panels have answered, so that the HTTP stack's imports (a thread holding the
interpreter's lock) do not slow the first screen's layout and answers. A file flag needs no
HTTP: it is read at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from cutover.base.redact import Redactor
from cutover.demo.loopback import JSONHandler, Loopback
from cutover.tui import app as app_mod
from cutover.tui.app import CutoverApp
from cutover.tui.screens.moves import RollbackScreen

from .conftest import T0, scripted, session_for, until, write_runbook


class _Health(JSONHandler):
    """Says it is well, and which paths it was asked (server.paths)."""

    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        self.send_json(200, {"status": "ok"})


class Health(Loopback):
    paths: list[str]


@pytest.fixture
def health() -> Iterator[Health]:
    server = Health("health")
    server.paths = []
    server.start(_Health, paths=server.paths)
    try:
        yield server
    finally:
        server.stop()


def health_query(server: Health) -> str:
    return f"""
[queries.health]
kind = "http"
title = "Service health"
url = "{server.url}/health"
columns = {{ status = "$.status" }}
refresh = "30s"
"""


def console(tmp_path: Path, server: Health, *, first: bool):
    """A console whose SQL answers wait for `release`; its HTTP query below the SQL ones
    (off an 80×12 first screen, which has room for two panels) or, `first`, above them."""
    path = write_runbook(tmp_path, probe=True)
    text = path.read_text()
    anchor = "\n[queries.success]" if first else "\n[[stages]]"
    path.write_text(text.replace(anchor, health_query(server) + anchor, 1))
    runner = scripted(lambda: T0)
    release = asyncio.Event()
    answer = runner.answer

    async def held(query, *args):
        await release.wait()
        return answer(query)

    runner.run = held  # type: ignore[method-assign]
    app = CutoverApp(
        session_for(path), clock=lambda: T0, runner_factory=lambda: runner, probe_poll_s=None
    )
    return app, release


async def test_below_the_first_screen_http_queries_and_probes_wait_for_its_answers(
    tmp_path: Path, health: Health, monkeypatch
):
    monkeypatch.setattr(app_mod, "REST_AFTER_S", 60.0)  # only the answers start the rest
    app, release = console(tmp_path, health, first=False)
    async with app.run_test(size=(80, 12)) as pilot:
        assert list(app._parts.panels) == ["success", "errors"]  # the first screen's
        await until(pilot, lambda: app.flag_state is not None)  # a file flag: at once
        await pilot.pause(0.3)
        assert health.paths == []
        assert app.probe_results == {}
        release.set()
        await until(
            pilot,
            lambda: (
                "health" in app.results
                and "api" in app.probe_results
                and "health" in app._parts.panels
            ),
        )
        assert health.paths == ["/health"]
        assert app.results["health"].rows == (("ok",),)


async def test_an_http_panel_on_the_first_screen_is_fetched_at_once(
    tmp_path: Path, health: Health, monkeypatch
):
    monkeypatch.setattr(app_mod, "REST_AFTER_S", 60.0)
    app, release = console(tmp_path, health, first=True)
    async with app.run_test(size=(80, 12)) as pilot:
        assert list(app._parts.panels) == ["health", "success"]
        await until(pilot, lambda: "health" in app.results)  # the SQL ones still waiting
        assert "success" not in app.results and app.probe_results == {}
        release.set()
        await until(pilot, lambda: "api" in app.probe_results and "errors" in app.results)


async def test_a_flag_on_vercel_is_read_once_the_first_screen_has_answered(
    tmp_path: Path, health: Health, monkeypatch
):
    from cutover.demo.vercel_api import FakeVercel
    from cutover.judge.session import Session
    from cutover.runbook import loader

    monkeypatch.setattr(app_mod, "REST_AFTER_S", 60.0)
    held, release = console(tmp_path, health, first=False)  # its runbook, its held runner
    path = held.runbook.path
    path.write_text(
        path.read_text().replace(
            '[flag]\nkind = "file"\npath = "flag/percent"',
            '[flag]\nkind = "vercel"\nproject = "shop"\nkey = "NEW_PERCENT"',
        )
    )
    with FakeVercel(token="tok-first-0123456789", project="shop", key="NEW_PERCENT") as fake:
        env = {"USER": "ops", "VERCEL_API_URL": fake.url, "VERCEL_TOKEN": "tok-first-0123456789"}
        runner = held.refresher.runner_factory()
        app = CutoverApp(
            Session(loader.load(path), env),
            clock=lambda: T0,
            runner_factory=lambda: runner,
            probe_poll_s=None,
        )
        async with app.run_test(size=(80, 12)) as pilot:
            await pilot.pause(0.5)
            assert fake.requests == [] and app.flag_state is None
            release.set()
            await until(pilot, lambda: app.flag_state is not None)
            assert fake.requests and app.flag_state.percent == 0


async def test_the_rollback_dialog_starts_what_the_first_screen_held_back(
    tmp_path: Path, health: Health, monkeypatch
):
    # ctrl+r in the first seconds, the first screen's answers not in: the HTTP stack must not
    # wait for them (a rollback's flag on Vercel would otherwise load it on the loop, after y).
    monkeypatch.setattr(app_mod, "REST_AFTER_S", 60.0)
    app, release = console(tmp_path, health, first=False)
    async with app.run_test(size=(80, 12)) as pilot:
        await pilot.pause(0.3)
        assert health.paths == []
        await pilot.press("ctrl+r")
        await until(pilot, lambda: health.paths == ["/health"])  # the HTTP below it runs
        assert "success" not in app.results  # the first screen still waiting
        release.set()


async def test_the_rollback_dialog_opens_even_if_starting_the_rest_fails(
    tmp_path: Path, health: Health, monkeypatch
):
    # ctrl+r also starts what the first screen held back; nothing in that may keep the
    # rollback dialog from opening (it used to run first, and an exception there was a crash).
    monkeypatch.setattr(app_mod, "REST_AFTER_S", 60.0)
    app, release = console(tmp_path, health, first=False)

    # What fails there may quote a secret (a DSN in a connection error): said redacted.
    secret = "s3cret-pw-4471"
    app.session.redact = Redactor([secret])

    def broken() -> None:
        raise RuntimeError(f"can't start new thread (postgresql://ops:{secret}@db/x)")

    async with app.run_test(size=(80, 12)) as pilot:
        await pilot.pause(0.3)
        monkeypatch.setattr(app, "_start_the_rest", broken)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, RollbackScreen))
        said = [str(n.message) for n in app._notifications]
        assert any("did not start (can't start new thread" in m for m in said), said
        assert not [m for m in said if secret in m], said
        release.set()
