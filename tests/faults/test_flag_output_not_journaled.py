"""What a flag's command prints never reaches the journal. Once, a command flag's stderr was
journaled with derived forms of a secret (its base64, its first half) although the exact
value was redacted; the journal now gets the exit code and a fixed sentence, and the
redacted stderr is shown on screen only. And each flag kind says its own remedy."""

from __future__ import annotations

import base64

from faults.test_secrets_flag_env import DEPLOY_KEY, leaky_world, secret_environ
from moves_world import cli

DERIVED = (base64.b64encode(DEPLOY_KEY.encode()).decode(), DEPLOY_KEY[: len(DEPLOY_KEY) // 2])

ENCODING_SET = """\
printf 'auth %s\\n' "$(printf '%s' "$DEPLOY_KEY" | base64)" >&2
printf 'prefix %s\\n' "$(printf '%s' "$DEPLOY_KEY" | cut -c1-11)" >&2
exit 9
"""


def test_a_failing_set_command_journals_its_exit_code_never_its_output(tmp_path):
    book = leaky_world(tmp_path)
    (tmp_path / "set-flag.sh").write_text(ENCODING_SET)
    advanced = cli(book, secret_environ(), "advance", "--confirm", "10")
    assert advanced.code != 0
    assert "exited 9" in advanced.output and "stderr: auth" in advanced.output  # on screen
    journal = (tmp_path / "journal.jsonl").read_text(encoding="utf-8")
    assert "exited 9" in journal
    assert "stderr" not in journal
    for derived in DERIVED:
        assert derived not in journal


def test_a_missing_file_flag_says_to_create_it(tmp_path):
    from moves_world import environ, fake_vercel
    from tui.conftest import write_runbook

    book = write_runbook(tmp_path)
    (tmp_path / "flag" / "percent").unlink()
    with fake_vercel() as fake:
        ran = cli(book, environ(fake), "reconcile")
    assert "create" in ran.output and "flag/percent with 0" in ran.output, ran.output
    assert "redeploy" not in ran.output
