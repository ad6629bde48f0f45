"""A step is never signed plainly while its gate says otherwise. Once, the rollback
checklist's `in_flight_drained` was signed while its gate read ✗ 7 ≠ 0, without a word; now
it is signed only as an override with a note, which the journal keeps with what it said."""

from __future__ import annotations

from moves_world import PLAIN_STAGES, cli, environ, fake_vercel, journal, write_runbook

CHECKLIST = """
[queries.in_flight]
title = "v2 imports still in flight"
file = "queries/in_flight.sql"
refresh = "30s"

[rollback]
title = "After a rollback"

  [[rollback.steps]]
  id = "in_flight_drained"
  text = "Every in-flight v2 job has finished"

  [[rollback.gates]]
  id = "in_flight_drained"
  query = "in_flight"
  column = "n"
  op = "=="
  value = 0
"""


def test_a_checklist_step_whose_gate_fails_is_signed_only_as_an_override(tmp_path, empty_dsn):
    book = write_runbook(tmp_path, PLAIN_STAGES)
    head, stages = book.read_text().split("[[stages]]", 1)
    queries, rollback = CHECKLIST.split("[rollback]", 1)
    book.write_text(head + queries + "\n[[stages]]" + stages + "\n[rollback]" + rollback)
    (tmp_path / "queries" / "in_flight.sql").write_text("SELECT 7 AS n;\n")
    with fake_vercel() as fake:
        env = environ(fake, dsn=empty_dsn)
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        rolled = cli(book, env, "rollback", "--yes", "--reason", "drill", "--observe", "0")
        assert rolled.code == 0, rolled.output
        plain = cli(book, env, "signoff", "in_flight_drained")
        bare = cli(book, env, "signoff", "in_flight_drained", "--override")
        forced = cli(
            book, env, "signoff", "in_flight_drained", "--override", "--note", "drained by hand"
        )
    assert plain.code == 1 and "gate in_flight_drained is FAIL: 7 ≠ 0" in plain.stderr
    assert "override" in plain.stderr
    assert bare.code == 1 and "needs a note" in bare.stderr
    assert forced.code == 0, forced.output
    signed = journal(book)[-1]
    assert signed["kind"] == "signoff" and signed["override"] is True
    assert signed["contradicted"] == ["gate in_flight_drained is FAIL: 7 ≠ 0"]
