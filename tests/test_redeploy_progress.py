"""A redeploy in flight says its state and how long it has run against how long the last
build took, so a long wait at the advance dialog (or in `cutover advance`) is seen moving;
against a real local HTTP server speaking Vercel's API (FakeVercel)."""

from __future__ import annotations

import re

from cutover.demo.vercel_api import FakeVercel
from cutover.traffic.flags import VercelFlag

TOKEN = "vcp_s3cr3t-token-never-shown-0123456789"


async def test_a_long_build_says_how_long_against_the_last_one():
    with FakeVercel(
        token=TOKEN, project="p", key="K", initial_value="0", build_seconds=1.5
    ) as fake:
        flag = VercelFlag(
            project="p", key="K", token=TOKEN, base_url=fake.url, poll_interval_s=0.05,
            retry_base_s=0.01, timeout_s=2.0, rollback="redeploy",
        )  # fmt: skip
        flag.progress_every_s = 0.3  # the build is 1.5 s: several lines while it runs
        said: list[str] = []
        try:
            await flag.set(10)  # a first build of 1.5 s: the one the next is measured against
            state = await flag.set(50, progress=said.append)
        finally:
            await flag.aclose()
    assert state.percent == 50 and state.live_percent == 50
    building = [line for line in said if " for " in line and "the last build took" in line]
    assert building, said
    assert all(
        re.fullmatch(r"dpl_\S+ \w+ for \d+ s \(the last build took 2 s\)", b) for b in building
    )
    assert said.index(building[0]) < next(i for i, s in enumerate(said) if "READY" in s)
    assert all(TOKEN not in line for line in said)
