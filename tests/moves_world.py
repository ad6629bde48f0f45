"""A small world for the traffic-moving tests: a runbook in a temp folder, the loopback
Vercel API, the CLI as a real subprocess, and the journal read back as plain JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from cutover.demo.vercel_api import FakeVercel

TOKEN = "vcp_T0ken-that-must-never-show-7f3a9c"
PROJECT = "soulprint-landing"
KEY = "V2_ROLLOUT_PERCENT"
V2_SHARE_SQL = Path(__file__).resolve().parents[1] / "queries" / "07_v2_share.sql"

HEAD = """\
version = 1
title = "test cutover"

[database]
dsn_env = "CUTOVER_DATABASE_URL"
statement_timeout = "5s"

[journal]
path = "journal.jsonl"

[flag]
kind = "vercel"
project = "{project}"
key = "{key}"
target = "production"
token_env = "VERCEL_TOKEN"
redeploy = true
{observed}{flag}
[queries.ok]
title = "Always fine"
file = "queries/ok.sql"
refresh = "30s"

[queries.unknown]
title = "Never decided"
file = "queries/unknown.sql"
refresh = "30s"

[queries.v2_share]
title = "Observed v2 share"
file = "queries/07_v2_share.sql"
refresh = "30s"
"""

# Three stages with no hold, no steps and no gates: advance is allowed at once.
PLAIN_STAGES = """
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

[[stages]]
id = "half"
title = "Half"
percent = 50
hold = "0s"
"""


def write_runbook(
    folder: Path, stages: str = PLAIN_STAGES, *, observed: bool = False, flag: str = ""
) -> Path:
    """A runbook in `folder` with the given [[stages]] text (and `flag`: more [flag] lines);
    returns its path."""
    queries = folder / "queries"
    queries.mkdir(parents=True, exist_ok=True)
    (queries / "ok.sql").write_text("-- Always fine\nSELECT 1 AS ok;\n")
    (queries / "unknown.sql").write_text("-- Never decided\nSELECT NULL::int AS ok;\n")
    (queries / "07_v2_share.sql").write_text(V2_SHARE_SQL.read_text())
    line = 'observed = { query = "v2_share", column = "v2_pct" }\n' if observed else ""
    path = folder / "runbook.toml"
    extra = flag.strip() + "\n" if flag.strip() else ""
    path.write_text(HEAD.format(project=PROJECT, key=KEY, observed=line, flag=extra) + stages)
    return path


def fake_vercel(build_seconds: float = 0.2, initial_value: str = "0") -> FakeVercel:
    return FakeVercel(
        token=TOKEN,
        project=PROJECT,
        key=KEY,
        initial_value=initial_value,
        build_seconds=build_seconds,
    )


def environ(fake: FakeVercel, *, dsn: str | None = None, token: str = TOKEN) -> dict[str, str]:
    """The environment a command sees: the fake's URL, the token, maybe a DSN."""
    env = {k: v for k, v in os.environ.items() if k != "CUTOVER_DATABASE_URL"}
    env.update(VERCEL_API_URL=fake.url, VERCEL_TOKEN=token, USER="tester")
    env.pop("SSH_CONNECTION", None)
    env.pop("SUDO_USER", None)
    if dsn is not None:
        env["CUTOVER_DATABASE_URL"] = dsn
    return env


def cutover_argv(runbook: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "cutover.cli", "--runbook", str(runbook), *args]


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli(runbook: Path, env: dict[str, str], *args: str, timeout: float = 60) -> Ran:
    """Run one cutover command to its end, in its own process."""
    done = subprocess.run(
        cutover_argv(runbook, *args),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=runbook.parent,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def start_cli(runbook: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        cutover_argv(runbook, *args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=runbook.parent,
    )


def journal(runbook: Path, *, deployments: bool = False) -> list[dict]:
    """Every whole line of the journal next to the runbook, as JSON; the records of what
    each deployment carries (kind "deployment") only when asked for: most tests here are
    about the moves."""
    path = runbook.parent / "journal.jsonl"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    return [e for e in events if deployments or e["kind"] != "deployment"]


def kinds(runbook: Path) -> list[str]:
    return [e["kind"] for e in journal(runbook)]


def wait_for(predicate, timeout: float = 15, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def patch_by_hand(fake: FakeVercel, percent: int) -> None:
    """Someone edits the variable in the dashboard and does not redeploy."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=fake.url, headers=headers, timeout=5) as http:
        envs = http.get(f"/v10/projects/{PROJECT}/env").json()["envs"]
        env_id = next(e["id"] for e in envs if e["key"] == KEY)
        patched = http.patch(f"/v9/projects/{PROJECT}/env/{env_id}", json={"value": str(percent)})
        patched.raise_for_status()


def set_by_hand(fake: FakeVercel, percent: int) -> None:
    """What someone does in the Vercel dashboard: edit the variable and redeploy, over the
    same HTTP API, then wait until the new deployment is live."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=fake.url, headers=headers, timeout=5) as http:
        envs = http.get(f"/v10/projects/{PROJECT}/env").json()["envs"]
        env_id = next(e["id"] for e in envs if e["key"] == KEY)
        http.patch(f"/v9/projects/{PROJECT}/env/{env_id}", json={"value": str(percent)})
        live = http.get(
            "/v6/deployments",
            params={"projectId": PROJECT, "target": "production", "state": "READY", "limit": 1},
        ).json()["deployments"][0]
        http.post(
            "/v13/deployments",
            params={"forceNew": 1},
            json={"deploymentId": live["uid"], "name": PROJECT, "target": "production"},
        ).raise_for_status()
    wait_for(lambda: fake.live_value(PROJECT, KEY) == str(percent), what="the hand redeploy")
