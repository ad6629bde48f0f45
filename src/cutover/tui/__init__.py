"""tui: the full-screen console face (Textual): runbook pane, live query panels, the action
bar. May import traffic and below; no other face. The cli and the demo open it, lazily."""
