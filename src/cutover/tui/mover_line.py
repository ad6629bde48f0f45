"""The line the console keeps on screen while another process holds the move lock:

    ⟳ MOVING: bo@jump-2 pid 4242 since 10:41Z (3m 12s ago): 'advance to 10 %'

It comes within a second of the lock being taken (on Postgres the holder's notification
wakes it; on files, and on Postgres while a mover is shown or notifications are not heard,
it is read every second) and goes when the lock is freed, by its holder or by Postgres or
the kernel when the holder dies. Read off the event loop: a store that has gone silent never
stalls the screen. The names are the operator's text: shown as written, never markup."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from cutover.record.store.mover import Mover, move_holder
from cutover.runbook.durations import humanize
from cutover.tui.text import clean
from cutover.tui.time_text import at_text
from cutover.tui.widgets.header import _Steady

# On Postgres, while notifications are heard and nobody is moving, a look this often all the
# same (a notification is never lost while listening, but a look costs one round trip).
QUIET_LOOK_S = 10.0


def mover_text(mover: Mover, now: datetime, stale: str | None = None) -> Text:
    """The line, from the holder's row or lock file.

    >>> from datetime import timedelta
    >>> now = datetime(2026, 12, 6, 10, 44, 12, tzinfo=UTC)
    >>> bo = Mover("bo", "jump-[b]2[/b]", 4242, "advance to 10 %", now - timedelta(minutes=3))
    >>> print(mover_text(bo, now))
    ⟳ MOVING: bo@jump-[b]2[/b] pid 4242 since 10:41Z (3m ago): 'advance to 10 %'

    A holder whose clock runs ahead of this host's is said to, not "0s ago":

    >>> ahead = Mover("bo", "jump-2", 4242, "rollback", now + timedelta(minutes=2))
    >>> print(mover_text(ahead, now))
    ⟳ MOVING: bo@jump-2 pid 4242 since 10:46Z (2m ahead of this host's clock): 'rollback'
    """
    line = f"⟳ MOVING: {clean(mover.actor)}@{clean(mover.host)} pid {mover.pid}"
    if mover.since is not None:
        since = mover.since.astimezone(UTC)
        age = (now - since).total_seconds()
        if age > -1:
            when = f"{humanize(age)} ago"
        else:  # the holder's clock runs ahead of this one
            when = f"{humanize(-age)} ahead of this host's clock"
        line += f" since {at_text(since, now)} ({when})"
    line += f": {clean(mover.what, max_len=120)!r}"
    if stale:
        line += f" (as last read: {clean(stale, max_len=120)})"
    text = Text(line, style="bold")
    text.no_wrap, text.overflow = True, "ellipsis"
    return text


class MoverLine(_Steady):
    DEFAULT_CSS = """
    MoverLine {
        height: 1;
        background: $warning-darken-2;
        color: $text;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        display: none;
    }
    """
    WRAPS = False

    def show(self, text: Text | None) -> None:
        self.display = text is not None
        if text is not None:
            self.show_text(text)


class MoverWatch:
    """Keeps a MoverLine under the console's banners up to date. `start()` from on_mount."""

    def __init__(self, app: Any):
        self.app = app
        self.store = app.session.store
        self.line = MoverLine(id="mover-line")
        self.mover: Mover | None = None
        self.stale: str | None = None  # why the last look failed, while the mover is kept
        self.looked_at = float("-inf")
        self._looking = False
        self._again = False
        self._lock_heard: int | None = None  # the store's count of lock notifications seen

    def start(self) -> MoverWatch:
        top = self.app.main.query_one("#live-top")
        top.mount(self.line, after=top.query_one("#banner"))
        loop = asyncio.get_running_loop()

        def woken() -> None:  # from the store's thread: only schedules
            with contextlib.suppress(RuntimeError):  # the console is closing
                loop.call_soon_threadsafe(self._heard)

        self.store.on_change(woken)
        self.app.set_interval(1.0, self.tick, name="mover")
        self.look()
        return self

    def _heard(self) -> None:
        """Another process wrote: a look only when a lock was taken or freed (or the
        notifications resumed), not for every console's evidence written every few seconds."""
        generation = getattr(self.store, "generation", None)
        heard = generation("lock") if generation is not None else None
        if heard is not None and heard == self._lock_heard:
            return
        self._lock_heard = heard
        self.look()

    def tick(self) -> None:
        listening = getattr(self.store, "listening", None)
        heard = self.store.kind == "postgres" and listening is not None and listening()
        quiet = time.monotonic() - self.looked_at < QUIET_LOOK_S
        if heard and self.mover is None and quiet:
            return
        self.look()

    def look(self) -> None:
        if self.store.kind == "files":
            # A small file read (and the kernel's lock list while it names someone): done
            # here, every second, rather than a worker and a thread each time.
            self._show(self._read())
            return
        if self._looking:
            self._again = True  # one look after this one, not a queue of them
            return
        self._looking = True
        self.app.run_worker(self._look, group="mover", exit_on_error=False)

    async def _look(self) -> None:
        try:
            self._show(await asyncio.to_thread(self._read))
        finally:
            self._looking = False
            if self._again:
                self._again = False
                self.look()

    def _read(self) -> Mover | OSError | None:
        try:
            return move_holder(self.store)
        except OSError as exc:  # the store unreachable (said by the console already)
            return exc

    def _show(self, found: Mover | OSError | None) -> None:
        if isinstance(found, OSError):  # the last reading stays, marked as such
            self.stale = str(found) or type(found).__name__
        else:
            self.mover = None if found is None or found.mine() else found
            self.stale = None
        self.looked_at = time.monotonic()
        self.draw()

    def draw(self) -> None:
        mover = self.mover
        now = datetime.now(UTC)  # the holder's `since` is a wall-clock time too
        self.line.show(None if mover is None else mover_text(mover, now, self.stale))
