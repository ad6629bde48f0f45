"""The one error base: every exception whose message is safe to show the operator as it is.

A message says what failed, where (file:line:col, URL, query id) and what to do, and never
holds a secret. Code that catches `CutoverError` may print `str(exc)`; anything else that
escapes is a bug and is reported as one.
"""

from __future__ import annotations


class CutoverError(Exception):
    """An error the operator can act on; its text is safe for the screen, a log, the journal."""
