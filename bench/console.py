"""The console as an operator meets it, in a real terminal (tmux, 120×40) on 1,000,000
`user_profiles` rows with the demo's fake Vercel, RLM and Render on loopback:

- first full paint (every panel on screen has run), against `python -c "import textual.app"`;
- `y` in the rollback dialog → the PATCH arriving at the fake Vercel (it stamps arrivals with
  time.monotonic(), this process's clock), with an empty journal and a 5,000-event one,
  against a warm client's GET + PATCH;
- key → screen (`?` opens help) and event-loop stalls over 50 ms, every panel refreshing at
  1 s (one of them a 10,000-row log shifting by one row each second), against a bare Textual
  app opening a help screen in the same terminal at the same time;
- bytes to the terminal per second while that data refreshes, against the same console
  paused;
- RSS over a soak at 1 s refresh, against a console at the shipped intervals running beside it.

Run: .venv/bin/python bench/console.py [paint] [rollback] [keys] [soak]
     ROUNDS=5 KEYS_S=30 SOAK_S=900 BENCH_ROWS=1000000 BENCH_PGDATA=dir
     BENCH_DATA=demo: on `cutover demo`'s database instead (its traffic flowing)
"""

from __future__ import annotations

import json
import os
import random
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import (
    CUTOVER,
    PYTHON,
    ROOT,
    BigDatabase,
    Platform,
    Row,
    Samples,
    Terminal,
    Watcher,
    bench_database,
    bytecode_env,
    compile_bytecode,
    print_table,
    rss_kb,
    runbook_copy,
    scratch,
    sweep_sockets,
    wait,
    write_journal,
)

PROBE = str(ROOT / "bench" / "console_probe.py")
MINIMAL = str(ROOT / "bench" / "minimal_app.py")
HELP_MARKER = b"Esc closes"


class World:
    """The database, the platform and a scratch folder; consoles are started in it."""

    def __init__(self, database: BigDatabase, folder: Path) -> None:
        self.database = database
        self.folder = folder
        self.platform = Platform().start()

    def env(self, book: Path, **extra: str) -> dict[str, str]:
        env = {
            "CUTOVER_DATABASE_URL": self.database.dsn,
            "CUTOVER_RUNBOOK": str(book),
            "USER": "bench",
            "TERM": "xterm-256color",
            **self.platform.env(),
            **extra,
        }
        for name in ("BENCH_STALL_STACKS", "BENCH_SLOW_CALLBACKS"):  # diagnoses, when asked
            if os.environ.get(name):
                env[name] = os.environ[name]
        return env

    def command(self, program: list[str], env: dict[str, str]) -> str:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        keep = {k: v for k, v in bytecode_env().items() if k in ("PATH", "HOME", "LANG")}
        base = " ".join(f"{k}={shlex.quote(v)}" for k, v in keep.items())
        return f"exec env -i {base} {exports} {' '.join(map(shlex.quote, program))}"

    def stop(self) -> None:
        self.platform.stop()


def probe_data(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def written_since(path: Path, started: float) -> dict:
    """The probe's data, only when the process spawned at `started` wrote it: a console
    closing from the round before may still write its last dump into the same file."""
    data = probe_data(path)
    return data if data.get("started", -1.0) >= started else {}


def start_probe(world: World, book: Path, name: str, **extra: str) -> tuple[Terminal, Path, float]:
    out = world.folder / f"{name}.json"
    out.unlink(missing_ok=True)
    term = Terminal(world.folder)
    started = time.monotonic()
    env = world.env(book, BENCH_PROBE_OUT=str(out), **extra)
    term.run(world.command([PYTHON, PROBE], env))
    return term, out, started


def quit_console(term: Terminal) -> None:
    term.keys("q")
    time.sleep(0.5)
    term.close()


# ----------------------------------------------------------------------------- first paint


IMPORTED = (
    "import json, os, time; import textual.app; "
    "open(os.environ['BENCH_PROBE_OUT'], 'w').write(json.dumps({'imported': time.monotonic()}))"
)


# A bare Textual app's first paint, marked as the console's is (bench/console_probe.py:
# call_after_refresh from on_mount), then it leaves.
BARE_PAINT = """
import json, os, time
from textual.app import App
from textual.widgets import Static

class Bare(App):
    def compose(self):
        yield Static("bare")

    def on_mount(self):
        self.call_after_refresh(self.painted)

    def painted(self):
        out = os.environ["BENCH_PROBE_OUT"]
        open(out, "w").write(json.dumps({"imported": time.monotonic()}))
        self.exit()

Bare().run()
"""


def import_in_terminal(world: World, script: str = IMPORTED) -> float:
    """`import textual.app` (or another script that writes its mark), timed as the
    console's paint is: spawned in a tmux pane, marked from inside the process
    (time.monotonic() is one clock for every process here)."""
    out = world.folder / "imported.json"
    out.unlink(missing_ok=True)
    term = Terminal(world.folder)
    started = time.monotonic()
    term.run(world.command([PYTHON, "-c", script], {"BENCH_PROBE_OUT": str(out)}))
    try:
        wait(lambda: probe_data(out).get("imported"), 60, what="the baseline's mark")
        return probe_data(out)["imported"] - started
    finally:
        term.close()


def first_paint(world: World, rounds: int) -> list[Row]:
    book_dir = world.folder / "paint"
    book = runbook_copy(book_dir)
    # The vetted memo of this run's own (warmed by the warm-up round), as an operator's is
    # between two starts of an unchanged runbook: the user's shared one is rewritten by any
    # other cutover process whose guard sources differ (another checkout, a cold-memo bench),
    # and the next console then parses every query again.
    memo = str(world.folder / "memo")
    baseline, bare, first, full = Samples(), Samples(), Samples(), Samples()
    for number in range(rounds + 1):
        (book_dir / "journal.jsonl").unlink(missing_ok=True)
        base = import_in_terminal(world)
        bare_paint = import_in_terminal(world, BARE_PAINT)
        term, out, started = start_probe(world, book, "paint", CUTOVER_CACHE_DIR=memo)
        try:
            wait(
                lambda o=out, s=started: written_since(o, s).get("full_paint"),
                60,
                what="the first full paint",
            )
            data = written_since(out, started)
        finally:
            quit_console(term)
        if number == 0:
            continue  # warm-up: the OS caches, the database's buffers
        baseline.add(base)
        bare.add(bare_paint)
        first.add(data["first_paint"] - started)
        full.add(data["full_paint"] - started)
    full_ok = full.median <= 1.0
    return [
        Row(
            "first full paint (every panel on screen ran)",
            full,
            baseline,
            "import textual.app, in tmux alike",
            unit="s",
            goal="≤ 1.0 s",
            met=full_ok,
            note=f"shipped runbook and intervals, {world.database.rows:,} rows; from spawning the "
            "console in tmux",
        ),
        Row(
            "first paint (header, runbook, panel frames)",
            first,
            bare,
            "a bare Textual app's first paint",
            unit="s",
        ),
    ]


# ----------------------------------------------------------------------------- y → PATCH


def warm_patch(platform: Platform) -> float:
    """A warm client's GET of the env list + PATCH of the value: the round trips a rollback
    needs at the least, from the first byte sent to the PATCH's arrival."""
    from cutover.sources.httpclient import httpx

    fake = platform.vercel
    headers = {"Authorization": f"Bearer {fake.token}"}
    project = fake.project.name
    with httpx().Client(base_url=fake.url, headers=headers) as client:
        client.get(f"/v10/projects/{project}/env")  # warm
        fake.clear_requests()
        started = time.monotonic()
        envs = client.get(f"/v10/projects/{project}/env").json()["envs"]
        env_id = envs[0]["id"]
        client.patch(f"/v9/projects/{project}/env/{env_id}", json={"value": "10"})
    arrived = next(r.at for r in fake.requests if r.method == "PATCH")
    return arrived - started


def rollback_latency(world: World, rounds: int, events: int) -> Row:
    book_dir = world.folder / f"rollback-{events}"
    book = runbook_copy(book_dir)
    fake = world.platform.vercel
    ours, baseline = Samples(), Samples()
    for number in range(rounds + 1):
        world.platform.set_flag(10)
        write_journal(book_dir / "journal.jsonl", events)
        for extra in book_dir.glob("journal.jsonl.*"):
            if extra.name != "journal.jsonl.head":
                extra.unlink()
        term = Terminal(world.folder)
        term.run(world.command([CUTOVER, "tui"], world.env(book)))
        try:
            wait(lambda t=term: "read 10 %" in t.screen(), 60, 0.2, "the flag read at 10 %")
            time.sleep(3)  # an operator's console has been open a while
            term.keys("C-r")
            wait(lambda t=term: "EMERGENCY ROLLBACK" in t.screen(), 10, 0.05, "the dialog")
            time.sleep(0.5)
            fake.clear_requests()
            pressed = time.monotonic()
            term.keys("y")
            wait(lambda: any(r.method == "PATCH" for r in fake.requests), 30, 0.001, "PATCH")
            patched = next(r.at for r in fake.requests if r.method == "PATCH")
            wait(lambda t=term: "verified" in t.screen(), 60, 0.2, "the rollback verified")
        finally:
            quit_console(term)
        base = warm_patch(world.platform)
        if number == 0:
            continue
        ours.add(patched - pressed)
        baseline.add(base)
    return Row(
        f"y → PATCH at the platform, {events:,}-event journal",
        ours,
        baseline,
        "warm GET+PATCH",
        unit="ms",
        goal="≤ 100 ms",
        met=ours.median <= 0.1,
        note="" if events else "from tmux send-keys y to the fake Vercel stamping the PATCH",
    )


# ----------------------------------------------------------------------------- keys, stalls


def key_to_screen(term: Terminal, watcher: Watcher) -> float:
    watcher.skip()
    pressed = time.monotonic()
    term.keys("?")
    shown = watcher.until(HELP_MARKER, 10)
    term.keys("Escape")
    return shown - pressed


def keys_and_stalls(world: World, seconds: float) -> list[Row]:
    book_dir = world.folder / "keys"
    book = runbook_copy(book_dir, every_s=1, shifting=True)
    (book_dir / "journal.jsonl").unlink(missing_ok=True)
    console, out, _ = start_probe(world, book, "keys")
    bare = Terminal(world.folder)
    bare_out = world.folder / "bare.json"
    bare.run(
        world.command(
            [PYTHON, MINIMAL], {"TERM": "xterm-256color", "BENCH_PROBE_OUT": str(bare_out)}
        )
    )
    try:
        wait(lambda: probe_data(out).get("full_paint"), 60, what="the first full paint")
        time.sleep(5)  # every panel has refreshed a few times
        # Bytes while data refreshes, then paused (the clock and ages only), 10 s each.
        quiet_s = 10.0
        before = console.written()
        time.sleep(quiet_s)
        refreshing = (console.written() - before) / quiet_s
        console.keys("Space")
        time.sleep(2)
        before = console.written()
        time.sleep(quiet_s)
        paused = (console.written() - before) / quiet_s
        console.keys("Space")
        time.sleep(3)
        ours, floor = Samples(), Samples()
        ours_watch, floor_watch = Watcher(console.bytes_log), Watcher(bare.bytes_log)
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            floor.add(key_to_screen(bare, floor_watch))
            time.sleep(random.uniform(0.1, 0.3))
            ours.add(key_to_screen(console, ours_watch))
            time.sleep(random.uniform(0.2, 0.5))  # a random phase against the 1 s refreshes
        ended = time.monotonic()
        time.sleep(0.5)
        data = probe_data(out)
        deadline = time.monotonic() + 10
        while data.get("at", 0) < ended and time.monotonic() < deadline:
            time.sleep(0.5)
            data = probe_data(out)
    finally:
        quit_console(console)
        quit_console(bare)
    timed_stalls = [(at, gap) for at, gap in data.get("stalls", []) if began <= at <= ended]
    stalls = [gap for _, gap in timed_stalls]
    pauses = data.get("gc_pauses", [])
    # Which stalls the cyclic collector was running in (a diagnosis: the rest are ours).
    in_gc = sum(
        any(at <= when <= at + gap + 0.01 for when, _, _ in pauses) for at, gap in timed_stalls
    )
    by_generation: dict[int, list[float]] = {}
    for when, generation, took in pauses:
        if began <= when <= ended:
            by_generation.setdefault(generation, []).append(took)
    collections = ", ".join(
        f"gen {g}: {len(t)} over 10 ms, longest {max(t) * 1e3:.0f} ms"
        for g, t in sorted(by_generation.items())
    )
    bare_stalls = [
        gap for at, gap in probe_data(bare_out).get("stalls", []) if began <= at <= ended
    ]
    p50, p99 = Samples([ours.quantile(0.5)]), Samples([ours.quantile(0.99)])
    f50, f99 = Samples([floor.quantile(0.5)]), Samples([floor.quantile(0.99)])
    return [
        Row(
            f"key → screen p50 (? opens help), n={len(ours.values)}",
            p50,
            f50,
            "bare Textual app",
            unit="ms",
        ),
        Row(
            "key → screen p99",
            p99,
            f99,
            "bare Textual app",
            unit="ms",
            goal="≤ bare + 20 ms",
            met=p99.median <= f99.median + 0.02,
            note="every panel at 1 s, one a 10,000-row log shifting each second (fetch capped "
            "at 1,000 rows)",
        ),
        Row(
            f"event-loop stalls > 50 ms in {seconds:g} s (one window)",
            Samples([float(len(stalls))]),
            Samples([float(len(bare_stalls))]),
            "bare Textual app",
            unit="n",
            goal="≤ bare + 2",
            met=len(stalls) <= len(bare_stalls) + 2,
            note=f"longest {max(stalls, default=0) * 1e3:.0f} ms (the bare app's "
            f"{max(bare_stalls, default=0) * 1e3:.0f} ms); {in_gc} of them while the cyclic "
            f"garbage collector ran ({collections or 'no pass over 10 ms'})",
        ),
        Row(
            "bytes to the terminal per second, data refreshing",
            Samples([refreshing]),
            Samples([paused]),
            "same console paused",
            unit="B/s",
        ),
    ]


# ----------------------------------------------------------------------------- soak


def soak(world: World, seconds: float) -> list[Row]:
    fast_dir, shipped_dir = world.folder / "soak-1s", world.folder / "soak-shipped"
    fast = runbook_copy(fast_dir, every_s=1, shifting=True)
    shipped = runbook_copy(shipped_dir)
    # The caches' sizes once a minute (the walk is a stall of its own: not in the keys run).
    a, a_out, _ = start_probe(world, fast, "soak-1s", BENCH_CACHES_EVERY_S="60")
    b, b_out, _ = start_probe(world, shipped, "soak-shipped")
    samples: dict[str, list[tuple[float, int]]] = {"1s": [], "shipped": []}
    try:
        wait(lambda: probe_data(a_out).get("full_paint"), 60, what="the first full paint")
        wait(lambda: probe_data(b_out).get("full_paint"), 60, what="the first full paint")
        pids = {"1s": a.pid, "shipped": b.pid}
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            for name, pid in pids.items():
                samples[name].append((time.monotonic() - began, rss_kb(pid)))
            time.sleep(5)
        caches = probe_data(a_out)
    finally:
        quit_console(a)
        quit_console(b)
    warm = seconds * 0.2  # growth is counted after the first fifth (caches filling)

    def growth(name: str) -> float:
        """MB over the soak after warm-up by the least-squares slope of every sample, not
        the difference of two (one collection's timing moves either end by megabytes)."""
        after = [(at, kb / 1024) for at, kb in samples[name] if at >= warm]
        if len(after) < 2:
            return 0.0
        slope = statistics.linear_regression([a for a, _ in after], [m for _, m in after]).slope
        return slope * (after[-1][0] - after[0][0])

    grow_fast, grow_shipped = growth("1s"), growth("shipped")
    peak = max(kb for _, kb in samples["1s"]) / 1024
    held = {**caches.get("lru", {}), **caches.get("widgets", {})}
    unbounded = sorted(k for k, (n, bound) in held.items() if bound is None and n > 50)
    biggest = sorted(held.items(), key=lambda kv: -kv[1][0])[:5]
    cache_note = (
        f"render caches at the end: {len(held)}, "
        + ("every one bounded" if not unbounded else f"UNBOUNDED: {', '.join(unbounded)}")
        + "; fullest: "
        + ", ".join(f"{k.split('.')[-1]} {n:,}/{b:,}" for k, (n, b) in biggest if b)
    )
    minutes = seconds / 60
    return [
        Row(
            f"RSS growth after warm-up (slope × time), {minutes:g} min soak at 1 s",
            Samples([grow_fast]),
            Samples([grow_shipped]),
            "shipped intervals",
            unit="MB",
            goal="flat (±2 MB)",
            met=abs(grow_fast) <= 2.0,
            note=f"peak {peak:.0f} MB; warm-up: the first {warm / 60:g} min; {cache_note}",
        )
    ]


def main(argv: list[str]) -> None:
    wanted = set(argv) or {"paint", "rollback", "keys", "soak"}
    rounds = int(os.environ.get("ROUNDS", "5"))
    sweep_sockets()
    compile_bytecode()
    database = bench_database().start()
    rows: list[Row] = []
    with scratch() as folder:
        world = World(database, folder)
        try:
            if "paint" in wanted:
                rows += first_paint(world, rounds)
            if "rollback" in wanted:
                rows.append(rollback_latency(world, rounds, 0))
                rows.append(rollback_latency(world, rounds, 5000))
            if "keys" in wanted:
                rows += keys_and_stalls(world, float(os.environ.get("KEYS_S", "30")))
            if "soak" in wanted:
                rows += soak(world, float(os.environ.get("SOAK_S", "900")))
        finally:
            world.stop()
            database.stop()
    print_table(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
