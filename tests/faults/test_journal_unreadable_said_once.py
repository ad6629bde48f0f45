"""A journal file the console cannot read any more (its path taken by a folder, a disk gone:
what root cannot read either) is said once, not at every journal poll (one a second), and
its return is said; what was read before stays on screen."""

from __future__ import annotations

import shutil
from pathlib import Path

from tui.conftest import fixed_app, spy_on_what_it_says, until, visible_text


async def test_a_journal_that_cannot_be_read_is_said_once_and_its_return_too(tmp_path: Path):
    app = fixed_app(tmp_path, stage="canary")
    said = spy_on_what_it_says(app)
    journal = app.session.runbook.journal_path
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: "2/3 Canary" in visible_text(app))
        shutil.move(journal, tmp_path / "journal.moved")
        journal.mkdir()  # reading it now fails, as a lost disk would, even for root
        await until(pilot, lambda: any("cannot read the journal" in m for m in said))
        await pilot.pause(2.5)  # two more polls at least
        assert len([m for m in said if "cannot read the journal" in m]) == 1, said
        assert "2/3 Canary" in visible_text(app)  # the record read before stays

        journal.rmdir()
        shutil.move(tmp_path / "journal.moved", journal)
        await until(pilot, lambda: any("can be read again" in m for m in said))
        assert len([m for m in said if "cannot read the journal" in m]) == 1, said
