"""A read replaced before it started (the flag read again at once, a probe run again) is
dropped without a trace: no "coroutine … was never awaited" on the operator's terminal or
in a log, where it reads as a bug."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

from tui.conftest import fixed_app, until, visible_text


async def test_reads_replaced_before_they_start_leave_no_never_awaited_warning(
    tmp_path: Path,
):
    app = fixed_app(tmp_path, probe=True)  # the prerequisites carry a probe
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: "1/3 Prerequisites" in visible_text(app))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # Each call replaces the one before it in its group before it ran a step.
            for _ in range(3):
                app.read_flag()
                app.run_probes()
            await pilot.pause(0.3)
            gc.collect()
        assert app.flag is not None
    never = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert never == []
