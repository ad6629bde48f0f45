"""The demo's fake services, left running for days (a demo, `bench/watch.py`'s week), keep
only their latest requests: every probe and flag read used to be kept forever, which made the
watcher's week look like a leak of ~2 MB a day that was the fake RLM's."""

from __future__ import annotations

import httpx

from cutover.demo import render, rlm, vercel_api
from cutover.demo.render import FakeRender
from cutover.demo.rlm import RLMServer
from cutover.demo.vercel_api import FakeVercel


def test_the_fake_rlm_keeps_its_latest_requests_and_every_v1_call_in_its_log(monkeypatch):
    monkeypatch.setattr(rlm, "KEPT_REQUESTS", 5)
    with RLMServer() as service:
        for _ in range(12):
            httpx.get(f"{service.url}/health")
        for _ in range(3):
            httpx.post(
                f"{service.url}/process-full", json={"user_id": "u", "storage_path": "s.json"}
            )
        assert len(service.requests) == 5
        assert [r.method for r in service.requests][-3:] == ["POST"] * 3
        # the v1 log is what the fake Render serves: every call, however many requests since
        for _ in range(10):
            httpx.get(f"{service.url}/health")
        assert len(service.log_lines()) == 3


def test_the_fake_render_and_vercel_keep_only_their_latest_requests(monkeypatch):
    monkeypatch.setattr(render, "KEPT_REQUESTS", 4)
    monkeypatch.setattr(vercel_api, "KEPT_REQUESTS", 4)
    with FakeRender(api_key="k") as fake_render, FakeVercel(token="t") as fake_vercel:
        for _ in range(9):
            httpx.get(f"{fake_render.url}/v1/services")
            httpx.get(f"{fake_vercel.url}/v9/projects/x/env")
        assert len(fake_render.requests) == 4
        assert len(fake_vercel.requests) == 4
