"""`cutover tui`, as the operator starts it, with instruments the benchmarks read: when the
first frame and the first full frame (every panel on screen has run) were drawn, every event-
loop stall, and the sizes of Textual's and Rich's render caches. They are written as JSON to
$BENCH_PROBE_OUT every few seconds and at exit; with BENCH_MEMORY_EVERY_S, where its memory is
(memory_sample) that often. Nothing in the console is changed: the app is
the shipped CutoverApp; the instruments only watch it.

Run by bench/console.py inside tmux; not a benchmark by itself.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

STARTED = time.monotonic()

from cutover.judge.session import Session  # noqa: E402
from cutover.runbook import loader as runbook_mod  # noqa: E402

OUT = Path(os.environ["BENCH_PROBE_OUT"])
STALL_S = 0.05
TICK_S = 0.005
TRACE = bool(os.environ.get("BENCH_TRACEMALLOC"))
TRACE_EVERY_S = float(os.environ.get("BENCH_TRACE_EVERY_S", "60"))
TRACE_BY = os.environ.get("BENCH_TRACE_BY", "lineno")  # or "traceback" (BENCH_TRACEMALLOC frames)


def lru_caches() -> dict[str, list]:
    """functools caches of textual and rich (Strip, Segment, Style, cell widths...):
    [entries held now, their bound (None: unbounded)], by qualified name."""
    sizes: dict[str, list] = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith(("textual", "rich")) or module is None:
            continue
        for attr, value in list(vars(module).items()):
            candidates = [value]
            if isinstance(value, type):
                candidates = [getattr(value, k, None) for k in vars(value)]
            for fn in candidates:
                fn = getattr(fn, "__func__", fn)
                info = getattr(fn, "cache_info", None)
                if callable(info):
                    qualified = getattr(fn, "__qualname__", attr)
                    bound = fn.cache_parameters()["maxsize"]
                    key = f"{getattr(fn, '__module__', name)}.{qualified}"
                    sizes[key] = [info().currsize, bound]
    return sizes


class Probe:
    def __init__(self) -> None:
        self.marks: dict[str, float] = {}  # when start-up reached each step
        self.first_paint: float | None = None
        self.full_paint: float | None = None
        self.stalls: list[tuple[float, float]] = []
        self.longest = 0.0
        self.ticks = 0
        self.app = None  # the ProbedApp, once mounted
        self.trace_start = None
        self.traced_at = 0.0
        self.growth: list = []
        self.memory: list[dict] = []  # memory_sample()s, every BENCH_MEMORY_EVERY_S
        self.types: list[dict] = []  # held_types() and widget caches, every BENCH_TYPES_EVERY_S

    def widget_caches(self) -> dict[str, list]:
        """Textual's per-widget LRU/FIFO caches, summed by attribute over every widget:
        [entries held now, the sum of their bounds]."""
        from textual.cache import FIFOCache, LRUCache

        totals: dict[str, list] = {}
        if self.app is None:
            return totals
        for screen in self.app.screen_stack:
            for widget in [screen, *screen.walk_children()]:
                for attr, value in vars(widget).items():
                    if isinstance(value, LRUCache | FIFOCache):
                        key = f"{type(widget).__name__}.{attr}"
                        held = totals.setdefault(key, [0, 0])
                        held[0] += len(value)
                        held[1] += value._maxsize
        return totals

    def dump(self, caches: bool = False) -> None:
        """What the bench reads; `caches` adds the render caches' sizes (a walk over every
        module and widget: itself a stall of tens of milliseconds, so only when asked)."""
        data = {
            "started": STARTED,
            "marks": self.marks,
            "first_paint": self.first_paint,
            "full_paint": self.full_paint,
            "stalls": self.stalls,
            "longest": self.longest,
            "ticks": self.ticks,
            "gc_pauses": GC_PAUSES,
            "at": time.monotonic(),
        }
        if caches:
            self.caches = {
                "lru": lru_caches(),
                "widgets": self.widget_caches(),
                "objects": len(gc.get_objects()),
                "caches_at": time.monotonic(),
            }
        data.update(getattr(self, "caches", {}))
        if TRACE and self.trace_start is not None:
            # A snapshot and its comparison walk every traced block: a stall of its own, so
            # only every BENCH_TRACE_EVERY_S (and at exit), not on every dump.
            import tracemalloc

            if caches or time.monotonic() - self.traced_at >= TRACE_EVERY_S:
                self.traced_at = time.monotonic()
                now = tracemalloc.take_snapshot()
                top = now.compare_to(self.trace_start, TRACE_BY)[:25]
                self.growth = [
                    [stat.size_diff, stat.count_diff, [str(f) for f in stat.traceback]]
                    for stat in top
                ]
            data["growth"] = self.growth
        if self.memory:
            data["memory"] = self.memory
        if self.types:
            data["types"] = self.types
        if getattr(self, "cleared", None):
            data["cleared"] = self.cleared
        tmp = OUT.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(OUT)

    def sample_stalls(self, path: str) -> None:
        """While the loop is stalled, where its thread is: sampled every 2 ms from another
        thread, counted by the innermost frames of our code and Textual's (a diagnosis)."""
        import collections
        import threading
        import traceback

        main = threading.main_thread().ident
        seen: collections.Counter = collections.Counter()
        self.last_tick = time.monotonic()

        def sample() -> None:
            while True:
                time.sleep(0.002)
                if time.monotonic() - self.last_tick < 0.03:
                    continue
                frame = sys._current_frames().get(main)
                if frame is None:
                    continue
                stack = traceback.extract_stack(frame)
                ours = [f for f in stack if "/cutover/" in f.filename or "/textual/" in f.filename]
                inner = [f"{Path(f.filename).name}:{f.lineno}:{f.name}" for f in stack[-2:]]
                outer = [f"{Path(f.filename).name}:{f.lineno}:{f.name}" for f in ours[-4:]]
                seen[" < ".join(reversed(inner)) + "  ||  " + " < ".join(reversed(outer))] += 1

        def dump() -> None:
            Path(path).write_text("\n".join(f"{n:5d} {k}" for k, n in seen.most_common(40)))

        import atexit

        atexit.register(dump)
        threading.Thread(target=sample, daemon=True).start()

    async def watch_loop(self) -> None:
        """The longest the loop went without running a 5 ms timer, and every gap over 50 ms."""
        if os.environ.get("BENCH_STALL_STACKS"):
            self.sample_stalls(os.environ["BENCH_STALL_STACKS"])
        slow_log = os.environ.get("BENCH_SLOW_CALLBACKS")
        if slow_log:  # which callbacks those were (a diagnosis: debug mode costs time)
            import logging

            loop = asyncio.get_running_loop()
            loop.set_debug(True)
            loop.slow_callback_duration = STALL_S
            handler = logging.FileHandler(slow_log)
            logging.getLogger("asyncio").addHandler(handler)
            logging.getLogger("asyncio").setLevel(logging.WARNING)
        while True:
            before = time.monotonic()
            await asyncio.sleep(TICK_S)
            self.last_tick = time.monotonic()
            gap = self.last_tick - before - TICK_S
            self.ticks += 1
            self.longest = max(self.longest, gap)
            if gap > STALL_S:
                self.stalls.append((before, gap))

    async def dump_every(self, seconds: float) -> None:
        caches_every = float(os.environ.get("BENCH_CACHES_EVERY_S", "0"))
        memory_every = float(os.environ.get("BENCH_MEMORY_EVERY_S", "0"))
        # Which objects the console holds, by type, and its widgets' caches: diffing two of
        # these names what accumulates (a walk over every tracked object: tens of ms).
        types_every = float(os.environ.get("BENCH_TYPES_EVERY_S", "0"))
        caches_at = memory_at = types_at = time.monotonic()
        while True:
            await asyncio.sleep(seconds)
            if memory_every > 0 and time.monotonic() - memory_at >= memory_every:
                memory_at = time.monotonic()
                self.memory.append(memory_sample())
            if types_every > 0 and time.monotonic() - types_at >= types_every:
                types_at = time.monotonic()
                self.types.append(
                    {"at": types_at, "types": held_types(), "widgets": self.widget_caches()}
                )
            due = caches_every > 0 and time.monotonic() - caches_at >= caches_every
            if due:
                caches_at = time.monotonic()
            self.dump(caches=due)


def held_types(top: int = 60) -> dict[str, int]:
    """How many objects the collector tracks, by type (module and name), the most first."""
    import collections

    counts = collections.Counter(
        f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects()
    )
    return dict(counts.most_common(top))


def memory_sample() -> dict:
    """Where the process's memory is, to tell Python's objects from what lies outside them:
    resident set; blocks Python has allocated (every object, tracked by the collector or
    not); objects the collector tracks (not the frozen ones); glibc's heap (its size, what is
    in use, what is free inside it, what is mapped apart); pymalloc's arenas (how many, and
    the bytes in their blocks in use, free, and in empty pools). A diagnosis: a walk over
    the collector's lists, so every BENCH_MEMORY_EVERY_S at most."""
    import ctypes

    sample: dict = {"at": time.monotonic()}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS", "RssAnon", "RssFile")):
                name, value = line.split(":")
                sample[name] = int(value.split()[0])
    sample["blocks"] = sys.getallocatedblocks()
    sample["tracked"] = len(gc.get_objects())
    sample["gc_counts"] = gc.get_count()
    sample["gc_collections"] = [g["collections"] for g in gc.get_stats()]

    class Mallinfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            )
        ]

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = Mallinfo2
        info = libc.mallinfo2()
        sample["malloc"] = {
            "heap": info.arena,
            "in_use": info.uordblks,
            "free": info.fordblks,
            "mmapped": info.hblkhd,
        }
    except (OSError, AttributeError):  # not glibc
        pass
    sample["pymalloc"] = pymalloc_stats()
    # functools caches of textual and rich that hold anything: filling to their bounds is
    # growth that stops (a walk over every module: tens of milliseconds).
    sample["lru"] = {name: held for name, (held, _) in lru_caches().items() if held}
    sample["evidence"] = evidence_held()
    return sample


def clear_caches() -> dict:
    """At exit, how much of what Python holds is textual's and rich's functools caches: the
    blocks and pymalloc bytes a full collection leaves, then what emptying them frees."""
    gc.collect()
    before = {"blocks": sys.getallocatedblocks(), **pymalloc_stats()}
    held = lru_caches()
    for name, module in list(sys.modules.items()):
        if not name.startswith(("textual", "rich")) or module is None:
            continue
        for value in list(vars(module).values()):
            candidates = [value]
            if isinstance(value, type):
                candidates = [getattr(value, k, None) for k in vars(value)]
            for fn in candidates:
                fn = getattr(fn, "__func__", fn)
                if callable(getattr(fn, "cache_info", None)):
                    fn.cache_clear()
    gc.collect()
    after = {"blocks": sys.getallocatedblocks(), **pymalloc_stats()}
    return {
        "entries": sum(n for n, _ in held.values()),
        "blocks_before": before["blocks"],
        "blocks_freed": before["blocks"] - after["blocks"],
        "bytes_freed": before.get("in_blocks", 0) - after.get("in_blocks", 0),
        "frozen": gc.get_freeze_count(),
    }


def evidence_held() -> dict:
    """How much of the evidence the console holds: runs followed, the trends' runs and
    readings, the store's open runs."""
    app = probe.app
    if app is None:
        return {}
    held: dict = {}
    feed = getattr(app, "evidence", None)
    if feed is not None:
        held["followed"] = len(feed.follower.runs)
        held["open"] = len(feed.store.open_runs())
        held["written"] = len(getattr(feed.store, "_written", ()))
    readings = getattr(app, "_trend_readings", None)
    if readings is not None:
        held["trend_runs"] = len(readings)
        held["trend_points"] = sum(len(s) for s in getattr(readings, "_points", {}).values())
    return held


def pymalloc_stats() -> dict:
    """sys._debugmallocstats' totals (it writes to C stderr: the terminal, here: so fd 2 is
    pointed at a file while it runs)."""
    import tempfile

    wanted = {
        "# arenas allocated current": "arenas",
        "# arenas highwater mark": "arenas_highwater",
        "# bytes in allocated blocks": "in_blocks",
        "# bytes in available blocks": "free_blocks",
        "unused pools": "unused_pools",
        "# bytes lost to pool headers": "pool_headers",
        "# bytes lost to quantization": "quantization",
        "Total": "total",  # the arenas' (the first Total; the second is the arena map's)
    }
    found: dict = {}
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile("w+b") as out:
            os.dup2(out.fileno(), 2)
            try:
                sys._debugmallocstats()
            finally:
                os.dup2(saved, 2)
            out.seek(0)
            for line in out.read().decode("ascii", "replace").splitlines():
                if "=" not in line:
                    continue
                name, _, value = line.rpartition("=")
                name = name.strip()
                for part, key in wanted.items():
                    if part in name and key not in found:
                        found[key] = int(value.strip().replace(",", ""))
    finally:
        os.close(saved)
    return found


probe = Probe()
GC_PAUSES: list[tuple[float, int, float]] = []  # (when, generation, seconds) over 10 ms


def _time_collections() -> None:
    """Every cyclic-GC pass over 10 ms, for the stall rows: a stall the console's own code
    did not cause may be the collector walking every object Textual keeps."""
    began: list[float] = [0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            began[0] = time.monotonic()
        else:
            took = time.monotonic() - began[0]
            if took > 0.01:
                GC_PAUSES.append((began[0], int(info.get("generation", -1)), took))

    gc.callbacks.append(callback)


_time_collections()


def probed_app_class() -> type:
    """The shipped CutoverApp with the probe's instruments: Textual is imported here, as
    `cutover tui` imports it (cli/main.cmd_tui), once the runbook is loaded and its first queries
    asked."""
    from cutover.tui import app as app_mod
    from cutover.tui.widgets.query_panel import QueryPanel

    class ProbedApp(app_mod.CutoverApp):
        CSS_PATH = str(Path(app_mod.__file__).with_name("cutover.tcss"))

        def on_mount(self) -> None:
            # Textual runs every class's on_mount in turn, this one first: the console's own
            # comes next (calling it here too ran it twice, every bench with it).
            probe.marks["mount"] = time.monotonic()
            self.call_next(lambda: probe.marks.setdefault("mounted", time.monotonic()))
            probe.app = self
            self.call_after_refresh(self._painted)
            self.run_worker(probe.watch_loop(), name="bench stalls", exit_on_error=False)
            self.run_worker(probe.dump_every(1.0), name="bench dump", exit_on_error=False)
            if TRACE:
                import tracemalloc

                tracemalloc.start(10)

                def begin() -> None:
                    probe.trace_start = tracemalloc.take_snapshot()

                self.set_timer(float(os.environ.get("BENCH_WARMUP_S", "60")), begin)

        def _painted(self) -> None:
            if probe.first_paint is None:
                probe.first_paint = time.monotonic()

        def on_query_finished(self, message) -> None:
            # As with on_mount, Textual runs the console's own handler after this one: calling it
            # here too (super()) took every answer in twice, judged and recorded twice, in every
            # console bench.
            probe.marks.setdefault(f"answer {message.result.query_id}", time.monotonic())
            if not self._asking:  # from the first answer on, every frame is asked
                self._asking = True
                self.call_after_refresh(self._check_full_paint)

        _asking = False

        def _check_full_paint(self) -> None:
            """After each frame: the first full paint is the first frame in which every panel on
            screen shows its answer (its rows in its table). Asked of the frame drawn, not of
            the layout before an answer: a panel that an answer above it pushes off the screen
            is not waited for, and one whose rows are still going in is not counted."""
            if probe.full_paint is not None:
                return
            screen = self.main
            height = screen.size.height
            shown = [p for p in screen.query(QueryPanel) if p.region.height and p.region.y < height]
            if shown and all(self._drawn(p) for p in shown):
                probe.full_paint = time.monotonic()
                probe.dump()
            else:
                self.call_after_refresh(self._check_full_paint)

        @staticmethod
        def _drawn(panel: QueryPanel) -> bool:
            result = panel.result
            if result is None:
                return False
            if result.error:
                return True
            return panel.table.row_count == len(panel.shown_rows(result))

    return ProbedApp


def trace_layouts() -> None:
    """Count who asks for a full layout, by widget and caller (a diagnosis, not a bench)."""
    import atexit
    import collections
    import traceback

    from textual.widget import Widget

    counts: collections.Counter = collections.Counter()
    original = Widget.refresh

    def refresh(self, *regions, repaint=True, layout=False, recompose=False):
        if layout:
            frames = traceback.extract_stack(limit=6)[:-1]
            where = " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames))
            counts[f"{type(self).__name__}: {where}"] += 1
        return original(self, *regions, repaint=repaint, layout=layout, recompose=recompose)

    Widget.refresh = refresh
    atexit.register(
        lambda: Path(os.environ["BENCH_LAYOUT_TRACE"]).write_text(
            "\n".join(f"{n:6d} {k}" for k, n in counts.most_common(40))
        )
    )


def main() -> int:

    if os.environ.get("BENCH_LAYOUT_TRACE"):
        trace_layouts()

    profile_to = os.environ.get("BENCH_PROFILE")
    if profile_to:  # where the console's own thread spends its time (a diagnosis, not a bench)
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            return _run()
        finally:
            profiler.disable()
            profiler.dump_stats(profile_to)
    return _run()


def _run() -> int:
    from cutover.cli.common import use_redactor
    from cutover.sources.first_answers import ask_for_console

    path = runbook_mod.resolve_runbook_path(None, os.environ)
    session = Session(runbook_mod.load(path, shown_as=str(path)))
    use_redactor(session.redact)
    probe.marks["loaded"] = time.monotonic()
    first = ask_for_console(session)  # as `cutover tui` does (cmd_tui): before Textual's import
    probed_app = probed_app_class()
    from cutover.tui import app as app_mod

    probe.marks["imported"] = time.monotonic()
    app = probed_app(session, first_answers=first)
    probe.marks["app"] = time.monotonic()
    try:
        return app_mod.run_app(app)
    finally:
        if os.environ.get("BENCH_CLEAR_CACHES_AT_EXIT"):
            probe.cleared = clear_caches()
        probe.dump(caches=True)
        if first is not None:
            first.close()


if __name__ == "__main__":
    sys.exit(main())
