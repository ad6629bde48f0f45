"""The keys line at the bottom of every screen: Textual's footer, rebuilt only when what it
shows changed."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeyBar(Footer):
    """Textual's footer mounts all its keys again whenever the screen's bindings are said to
    have changed, which Textual says on every screen shown again and every focus change:
    opening the help and closing it rebuilt the help's keys and then the console's (a dozen
    widgets mounted and the screen laid out, about a third of what a `?` cost). Here they are
    rebuilt only when a shown key, its words, or whether it is dimmed, changed."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self._shown: tuple | None = None

    def shown_keys(self, screen: Screen) -> tuple:
        """What the footer draws of the screen's keys (its compose reads the same)."""
        return tuple(
            (binding.key, binding.action, binding.description, binding.group, enabled, tooltip)
            for _, binding, enabled, tooltip in screen.active_bindings.values()
            if binding.show
        )

    def bindings_changed(self, screen: Screen) -> None:
        if screen is self.screen and screen is not self.app.screen:
            # Under a dialog every key but a few answers nothing: a footer nobody sees is
            # not rebuilt for that, and again when its screen is shown (Textual says so then).
            return
        # Only when the footer would rebuild (its screen, mounted, the terminal focused) is
        # what it will show remembered; otherwise Textual's own rule decides.
        if screen is self.screen and self.is_attached and self.app.app_focus:
            shown = self.shown_keys(screen)
            if shown == self._shown and self.children:
                return
            self._shown = shown
        super().bindings_changed(screen)
