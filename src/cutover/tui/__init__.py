"""The full-screen console (Textual). Only `cutover.cli` imports it, and only when asked."""
