"""The trigger banner under load (#20): a line that comes and goes every few seconds (a
trigger's query stale, then fresh, then stale) must not lay the whole screen out each time.
A banner that loses a line keeps its height for a while; one that grows grows at once."""

from __future__ import annotations

from textual.app import App, ComposeResult

from cutover.tui.widgets.header import TriggerBanner


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class OneBanner(App[None]):
    def compose(self) -> ComposeResult:
        yield TriggerBanner(id="banner")


async def test_a_banner_that_loses_a_line_keeps_its_height_then_shrinks():
    app = OneBanner()
    async with app.run_test(size=(80, 12)) as pilot:
        banner = app.query_one(TriggerBanner)
        clock = Clock()
        banner.clock = clock
        banner.show((), ["first notice", "second notice"])
        await pilot.pause()
        assert banner.size.height == 2
        clock.now += 5
        banner.show((), ["first notice"])
        await pilot.pause()
        shown = str(banner.render())
        assert "first notice" in shown and "second notice" not in shown
        assert banner.size.height == 2  # kept: no layout of the screen for it
        clock.now += 5
        banner.show((), ["first notice", "second notice", "third notice"])
        await pilot.pause()
        assert banner.size.height == 3  # growing is at once
        clock.now += TriggerBanner.KEEP_S + 1
        banner.show((), ["first notice"])
        await pilot.pause()
        assert banner.size.height == 1  # and after a while it gives the room back
        banner.show((), [])
        await pilot.pause()
        assert not banner.display
