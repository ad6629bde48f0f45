"""For the whole run, doctests included: cutover's memo of vetted query texts (vetted.py)
lives in a folder of this run's own, never in the home folder of whoever runs the tests."""

from __future__ import annotations

import os
import tempfile


def pytest_configure(config: object) -> None:
    os.environ["CUTOVER_CACHE_DIR"] = tempfile.mkdtemp(prefix="cutover-cache-")
