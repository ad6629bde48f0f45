"""A stage's exit snapshot (the next stage's baseline) is written only once the move is
verified. Once, an advance refused for a mistyped percent still wrote it, and since the first
one written is the one kept, the real exit later was never recorded."""

from __future__ import annotations

from cutover.record import snapshots
from moves_world import PLAIN_STAGES, cli, environ, fake_vercel, write_runbook


def exits(folder) -> list[str]:
    found = snapshots.snapshots_dir(folder / "journal.jsonl")
    return sorted(p.name for p in found.glob("*.exit.json")) if found.is_dir() else []


def test_a_refused_advance_leaves_no_exit_snapshot_and_the_verified_one_does(
    tmp_path, soulprint_dsn
):
    book = write_runbook(tmp_path, PLAIN_STAGES)
    with fake_vercel() as fake:
        env = environ(fake, dsn=soulprint_dsn)
        typo = cli(book, env, "advance", "--confirm", "11")
        assert typo.code == 1 and "you typed 11" in typo.stderr
        assert exits(tmp_path) == []
        moved = cli(book, env, "advance", "--confirm", "10")
    assert moved.code == 0, moved.output
    assert exits(tmp_path) == ["off.1.exit.json"]
