"""Evidence the console cannot read or write (a directory where the file should be, a full
disk): said once, and the console keeps running: the verdicts stand, the hold counts only
what it could read, and rollback is as available as ever."""

from __future__ import annotations

from pathlib import Path

from tui.conftest import fixed_app, until, visible_text


async def test_evidence_that_cannot_be_read_or_written_is_said_and_the_console_keeps_running(
    tmp_path: Path,
):
    app = fixed_app(tmp_path, stage="canary")
    app.session.evidence_path.mkdir()  # neither readable nor writable as a file
    said: list[str] = []
    say = app.say
    app.say = lambda message, severity="information": (said.append(message), say(message))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "✓ PASS gate success" in visible_text(app))
        await until(pilot, lambda: any("evidence" in m for m in said))
        await pilot.pause(1.5)  # a tick or two later: still running, said once
        assert app.return_code is None
        troubles = [m for m in said if "evidence" in m]
        assert len(troubles) == len(set(troubles)) <= 2  # reading and recording, once each
        assert "held 0s of 1d" in visible_text(app)
        assert app.check_action("rollback", ()) is True
