"""For the whole run, doctests included: the suite is hermetic. A shell that sourced the
demo's `.cutover/demo.env` (as the README says to) exports RENDER_*, VERCEL_*, RLM_* and
CUTOVER_* variables; the tests must not inherit them (they failed when they did). And
cutover's memo of vetted query texts (vetted.py) lives in a folder of this run's own, never
in the home folder of whoever runs the tests."""

from __future__ import annotations

import os
import tempfile

INHERITED = ("CUTOVER_", "VERCEL_", "RENDER_", "RLM_")


def pytest_configure(config: object) -> None:
    for name in [n for n in os.environ if n.startswith(INHERITED)]:
        del os.environ[name]
    os.environ["CUTOVER_CACHE_DIR"] = tempfile.mkdtemp(prefix="cutover-cache-")
