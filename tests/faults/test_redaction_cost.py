"""Redaction is on every output path (every journal field, every printed line): a long
word once took it quadratic time (40,000 characters: 17 s), so a sign-off note or a query's
error of a few hundred kilobytes would have hung the rollback that journals it."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from cutover.base.redact import Redactor
from cutover.sources.db import redact
secret = "postgresql://app:s3cret-pw@db:5432/x"
r = Redactor([secret])
word = "a" * 400_000
assert r(word) == word and redact(word, secret) == word
assert "s3cret-pw" not in r(word + " " + secret + " " + word)
print("ok")
"""


def test_redacting_a_long_word_finishes():
    # A generous bound: linear redaction takes milliseconds, the quadratic one took hours.
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
