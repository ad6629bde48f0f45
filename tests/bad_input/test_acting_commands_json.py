"""Every command that acts takes --json: stdout is then one JSON object (its exit code, what
it said, every journal event it wrote) and the words for people go to stderr."""

from __future__ import annotations

import json

from moves_world import PLAIN_STAGES, cli, environ, fake_vercel, write_runbook

MANUAL = """
[[triggers]]
id = "complaints"
kind = "manual"
severity = "high"
respond_within = "1h"
"""


def test_moves_and_raises_print_one_json_object_each(tmp_path, empty_dsn):
    book = write_runbook(tmp_path, PLAIN_STAGES + MANUAL)
    with fake_vercel() as fake:
        env = environ(fake, dsn=empty_dsn)
        runs = {
            "advance": cli(book, env, "advance", "--confirm", "10", "--json"),
            "raise": cli(book, env, "raise", "complaints", "--note", "3 users", "--json"),
            "rollback": cli(book, env, "rollback", "--yes", "--reason", "x", "--observe", "0",
                            "--json"),
            "refused": cli(book, env, "advance", "--confirm", "99", "--json"),
        }  # fmt: skip
    docs = {name: json.loads(ran.stdout) for name, ran in runs.items()}
    assert [e["kind"] for e in docs["advance"]["journaled"]][-1] == "advance.done"
    assert docs["advance"]["ok"] is True and docs["advance"]["exit"] == 0
    assert docs["raise"]["journaled"][0]["kind"] == "trigger.raised"
    assert docs["rollback"]["journaled"][-1]["kind"] == "rollback.done"
    assert any("verified" in line for line in docs["rollback"]["said"])
    assert "verified" in runs["rollback"].stderr  # the words, for people
    assert docs["refused"] == {
        "command": "advance", "exit": 1, "ok": False, "said": [], "journaled": []
    }  # fmt: skip
