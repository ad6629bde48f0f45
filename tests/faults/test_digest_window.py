"""`digest --since T` is a window: everything that happened in it, one's own actions marked.
Once, a manual trigger raised and cleared within the hour by the operator asking was left
out of `digest --since 1h`, as if nothing had happened."""

from __future__ import annotations

from bad_input.test_notes_stay_on_one_line import MANUAL
from moves_world import PLAIN_STAGES, cli, environ, fake_vercel, write_runbook


def test_digest_since_lists_ones_own_raise_and_clear_marked(tmp_path):
    book = write_runbook(tmp_path, PLAIN_STAGES + MANUAL)
    with fake_vercel() as fake:
        env = environ(fake)
        cli(book, env, "raise", "complaints", "--note", "3 users wrote in")
        cli(book, env, "clear", "complaints", "--note", "a known outage upstream")
        window = cli(book, env, "digest", "--since", "1h")
        away = cli(book, env, "digest")  # since I last looked: my own actions I know
    assert window.code == 0, window.output
    assert "RAISED complaints: 3 users wrote in" in window.stdout
    assert "cleared complaints: a known outage upstream" in window.stdout
    assert "(you)" in window.stdout
    assert "complaints" not in away.stdout
