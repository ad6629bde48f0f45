"""Time to effect: from the operator's confirming `y` (or the start of `cutover rollback`) to
production serving a deployment that carries 0 %, on the demo's loopback Vercel, beside the
platform's build time in the same run.

- instant rollback, `y` in the console (tmux, 120×40) → production re-pointed at the
  deployment the journal knows carries 0 %, with a 45 s build time (that nothing waits for),
  with an empty journal and a 5,000-event one; the baseline is the build time a rollback by
  redeploy would wait for at the least;
- the same from the CLI (`cutover rollback --yes`, process start included);
- the fallback (the platform refuses the instant rollback, as a Hobby plan does for anything
  but the previous production deployment: PATCH + redeploy) against today's path
  (`--redeploy`), interleaved, with a BENCH_BUILD_S build (default 5 s).

Production serving 0 % is read from the fake itself (its clock is this process's).

Run: .venv/bin/python bench/rollback.py   ROUNDS=5 BENCH_BUILD_S=5 BENCH_ROWS=1000000
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import (
    CUTOVER,
    BigDatabase,
    Row,
    Samples,
    Terminal,
    print_table,
    runbook_copy,
    scratch,
    wait,
    write_journal,
)

KEY = "V2_ROLLOUT_PERCENT"
INSTANT_BUILD_S = 45.0


def scene(world, journal: Path, events: int, *, hobby: bool = False) -> str:
    """Production at 10 %, serving a build of the live commit that carries 10; the
    deployment before it carries 0, and the journal knows both (they served production).
    With `hobby`, another 10 % build came between them: the 0 % one is not the previous
    production deployment, so a Hobby plan refuses to go back to it. Returns its id."""
    from cutover.demo.vercel_state import Deployment
    from cutover.record.journal import Journal

    fake = world.platform.vercel
    now_ms = int(time.time() * 1000)
    with fake._lock:
        project = fake.project
        first = project.deployments[0]
        first.env[KEY], first.build_seconds = "0", 0
        first.created_at = now_ms - 4 * 3_600_000
        env = fake._env_for(KEY, "production")
        env.value, env.updated_at = "10", now_ms - 3 * 3_600_000
        later = [
            Deployment(
                uid="dpl_" + secrets.token_hex(12),
                name=project.name,
                project_id=project.id,
                target="production",
                created_at=now_ms - (2 - i) * 3_600_000,
                started=time.monotonic() - 3600,
                build_seconds=0,
                fails=False,
                meta=dict(first.meta),
                env={KEY: "10"},
            )
            for i in range(2 if hobby else 1)
        ]
        project.deployments = [first, *later]
        project.served = [d.uid for d in project.deployments]
        project.pinned = False
        project._ended = set(project.served)
        fake.hobby = hobby
        fake.fail_builds = fake.next_deployment_fails = False
    # At the canary (10 %) either way: a short journal is a sign-off and a few moves.
    write_journal(journal, max(events, 3))
    for extra in journal.parent.glob("journal.jsonl.*"):
        if extra.name != "journal.jsonl.head":
            extra.unlink()
    record = Journal(journal, actor="bench", host="bench")
    served = datetime.now(UTC) - timedelta(hours=1)
    for deployment in project.deployments:
        record.append(
            "deployment",
            deployment=deployment.uid,
            percent=int(deployment.env[KEY]),
            served_at=served,
            created_at=datetime.fromtimestamp(deployment.created_at / 1000, UTC),
            commit=deployment.meta.get("githubCommitSha"),
            seen="read",
        )
    return first.uid


def production_at_zero(fake) -> bool:
    return fake.live_value(fake.project.name, KEY) == "0"


def until_zero(fake, started: float, timeout: float) -> float:
    wait(lambda: production_at_zero(fake), timeout, 0.001, "production serving 0 %")
    return time.monotonic() - started


# ----------------------------------------------------------------------------- y → 0 %


def console_instant(world, rounds: int, events: int) -> Row:
    from console import quit_console

    folder = world.folder / f"instant-{events}"
    book = runbook_copy(folder)
    fake = world.platform.vercel
    ours, build = Samples(), Samples()
    for number in range(rounds + 1):
        target = scene(world, folder / "journal.jsonl", events)
        fake.build_seconds = INSTANT_BUILD_S
        term = Terminal(world.folder)
        term.run(world.command([CUTOVER, "tui"], world.env(book)))
        try:
            wait(lambda t=term: "read 10 %" in t.screen(), 60, 0.2, "the flag read at 10 %")
            time.sleep(3)  # an operator's console has been open a while
            term.keys("C-r")
            wait(lambda t=term: "How: instant" in t.screen(), 10, 0.05, "the dialog's plan")
            time.sleep(0.5)
            pressed = time.monotonic()
            term.keys("y")
            took = until_zero(fake, pressed, 30)
            assert fake.production_id == target, "went back to another deployment"
            wait(lambda t=term: "verified" in t.screen(), 60, 0.2, "the rollback verified")
        finally:
            quit_console(term)
        if number == 0:
            continue
        ours.add(took)
        build.add(INSTANT_BUILD_S)
    size = f"{events:,}-event journal" if events else "short journal"
    return Row(
        f"y → production serving 0 %, instant, {size}",
        ours,
        build,
        "the build a redeploy waits",
        unit="s",
        goal="≤ 2 s",
        met=ours.median <= 2.0,
        note=f"{ours.median / INSTANT_BUILD_S:.2%} of the build time"
        + (
            ""
            if events
            else "; console in tmux; 45 s builds; from send-keys y to the fake serving the "
            "deployment the journal knows carries 0 % (no build)"
        ),
    )


# ----------------------------------------------------------------------------- the CLI


def cli_rollback(world, book: Path, *flags: str) -> tuple[float, subprocess.CompletedProcess]:
    fake = world.platform.vercel
    env = {**os.environ, **world.env(book)}
    started = time.monotonic()
    proc = subprocess.Popen(
        [CUTOVER, "rollback", "--yes", "--reason", "bench", "--observe", "0", *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        took = until_zero(fake, started, 300)
    finally:
        out, err = proc.communicate(timeout=300)
    return took, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def cli_instant(world, rounds: int) -> Row:
    folder = world.folder / "cli-instant"
    book = runbook_copy(folder)
    fake = world.platform.vercel
    ours, build = Samples(), Samples()
    for number in range(rounds + 1):
        scene(world, folder / "journal.jsonl", 0)
        fake.build_seconds = INSTANT_BUILD_S
        took, ran = cli_rollback(world, book)
        assert ran.returncode == 0 and "instant rollback" in ran.stdout, ran.stdout + ran.stderr
        if number:
            ours.add(took)
            build.add(INSTANT_BUILD_S)
    return Row(
        "`cutover rollback` start → production serving 0 %",
        ours,
        build,
        "the build a redeploy waits",
        unit="s",
        goal="≤ 2 s",
        met=ours.median <= 2.0,
        note=f"{ours.median / INSTANT_BUILD_S:.2%} of the build time; instant; the "
        "process's start and imports included",
    )


def fallback(world, rounds: int, build_s: float) -> Row:
    """The platform refuses the instant rollback (Hobby): PATCH + redeploy, against today's
    path (rollback by redeploy, never asking), interleaved round by round."""
    folder = world.folder / "fallback"
    book = runbook_copy(folder)
    fake = world.platform.vercel
    ours, today = Samples(), Samples()
    for number in range(rounds + 1):
        scene(world, folder / "journal.jsonl", 0, hobby=True)
        fake.build_seconds = build_s
        took, ran = cli_rollback(world, book)
        assert "Vercel refused the instant rollback" in ran.stdout, ran.stdout + ran.stderr
        scene(world, folder / "journal.jsonl", 0, hobby=True)
        fake.build_seconds = build_s
        base, ran = cli_rollback(world, book, "--redeploy")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        if number:
            ours.add(took)
            today.add(base)
    return Row(
        f"rollback refused instant → 0 % by build ({build_s:g} s)",
        ours,
        today,
        "today's PATCH + redeploy",
        unit="s",
        goal="≤ today",
        met=ours.median <= today.median * 1.05,
        note=f"the loopback Vercel's Hobby rule refuses (HTTP 402); builds take {build_s:g} s "
        "and are polled every 2 s, as on Vercel; CLI start to the fake serving 0 %",
    )


def measure(world, rounds: int) -> list[Row]:
    build_s = float(os.environ.get("BENCH_BUILD_S", "5"))
    try:
        return [
            console_instant(world, rounds, 0),
            console_instant(world, rounds, 5000),
            cli_instant(world, rounds),
            fallback(world, rounds, build_s),
        ]
    finally:
        world.platform.vercel.build_seconds = 1.0
        world.platform.vercel.hobby = False


def main() -> None:
    from console import World

    rounds = int(os.environ.get("ROUNDS", "5"))
    database = BigDatabase().start()
    try:
        with scratch() as folder:
            world = World(database, folder)
            try:
                rows = measure(world, rounds)
            finally:
                world.stop()
    finally:
        database.stop()
    print_table(rows, title=f"time to effect of a rollback, {rounds} rounds")


if __name__ == "__main__":
    main()
