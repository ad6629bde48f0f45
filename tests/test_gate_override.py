"""Advancing past a gate that WAITs (a column the database lacks, too little data) with a
journaled note: `advance --override GATE --note …`. Never past a FAIL, never without a
note, never a gate the stage does not have; and every later view shows it."""

from __future__ import annotations

import asyncio
import json

from moves_world import cli, environ, fake_vercel, journal, kinds, write_runbook

STAGES = """
[[stages]]
id = "off"
title = "Off"
percent = 0
hold = "0s"

  [[stages.gates]]
  id = "fine"
  query = "ok"
  column = "ok"
  op = "=="
  value = 1

  [[stages.gates]]
  id = "v2_split"
  query = "unknown"
  column = "ok"
  op = "=="
  value = 1

[[stages]]
id = "canary"
title = "Canary"
percent = 10
hold = "0s"
"""


async def run(book, env, *args):
    return await asyncio.to_thread(cli, book, env, *args)


async def test_advance_past_a_waiting_gate_with_a_note_is_journaled_and_shown_later(
    tmp_path, soulprint_dsn
):
    book = write_runbook(tmp_path, STAGES)
    with fake_vercel() as fake:
        env = environ(fake, dsn=soulprint_dsn)
        refused = await run(book, env, "advance", "--confirm", "10")
        moved = await run(
            book,
            env,
            *("advance", "--confirm", "10", "--override", "v2_split"),
            *("--note", "no pipeline_version on the real schema; v2 rate read from 01"),
        )
        status = await run(book, env, "status", "--json")
        text = await run(book, env, "status")

    assert refused.code == 1 and "gate v2_split is WAIT: NULL in ok" in refused.stderr
    assert moved.code == 0, moved.output
    assert "! advancing past gate v2_split (WAIT: NULL in ok): no pipeline_version" in moved.stdout
    intent = next(e for e in journal(book) if e["kind"] == "advance.intent")
    assert intent["overrides"] == [{"gate": "v2_split", "reason": "NULL in ok"}]
    assert intent["override_note"].startswith("no pipeline_version on the real schema")
    shown = json.loads(status.stdout)
    assert shown["stage"] == "canary"
    assert shown["overrides"] == [
        {
            "stage": "off",
            "gate": "v2_split",
            "reason": "NULL in ok",
            "by": "tester",
            "at": intent["ts"],
            "note": "no pipeline_version on the real schema; v2 rate read from 01",
        }
    ]
    assert "OVERRIDE  ⚠ off advanced past gate v2_split while it waited (NULL in ok)" in text.stdout


async def test_an_override_never_passes_a_failing_gate(tmp_path, soulprint_dsn):
    book = write_runbook(tmp_path, STAGES)
    (tmp_path / "queries" / "ok.sql").write_text("-- Always fine\nSELECT 0 AS ok;\n")
    with fake_vercel() as fake:
        env = environ(fake, dsn=soulprint_dsn)
        done = await run(
            book, env, "advance", "--confirm", "10", "--override", "fine", "--override",
            "v2_split", "--note", "it is fine",
        )  # fmt: skip
        sent = [r.method for r in fake.requests]

    assert done.code == 1
    assert "gate fine is FAIL: 0 ≠ 1 (an override passes a WAIT gate, never a FAIL)" in done.stderr
    assert "PATCH" not in sent
    assert kinds(book) == []


async def test_an_override_needs_a_note(tmp_path, soulprint_dsn):
    book = write_runbook(tmp_path, STAGES)
    with fake_vercel() as fake:
        env = environ(fake, dsn=soulprint_dsn)
        done = await run(book, env, "advance", "--confirm", "10", "--override", "v2_split")
        blank = await run(
            book, env, "advance", "--confirm", "10", "--override", "v2_split", "--note", "  "
        )
    for attempt in (done, blank):
        assert attempt.code == 1
        assert "an override needs a note" in attempt.stderr
    assert kinds(book) == []


async def test_an_override_of_a_gate_the_stage_lacks_is_refused_not_ignored(
    tmp_path, soulprint_dsn
):
    book = write_runbook(tmp_path, STAGES)
    with fake_vercel() as fake:
        env = environ(fake, dsn=soulprint_dsn)
        done = await run(
            book, env, "advance", "--confirm", "10", "--override", "v2_spilt", "--note", "x"
        )
    assert done.code == 1
    assert "no gate v2_spilt in stage off to override; its gates: fine, v2_split" in done.stderr
    assert kinds(book) == []


async def test_overriding_a_passing_gate_journals_nothing(tmp_path, soulprint_dsn):
    book = write_runbook(tmp_path, STAGES)
    (tmp_path / "queries" / "unknown.sql").write_text("-- Decided\nSELECT 1 AS ok;\n")
    with fake_vercel() as fake:
        env = environ(fake, dsn=soulprint_dsn)
        done = await run(
            book, env, "advance", "--confirm", "10", "--override", "v2_split", "--note", "x"
        )
    assert done.code == 0, done.output
    assert "gate v2_split passes: no override needed, none journaled" in done.stdout
    intent = next(e for e in journal(book) if e["kind"] == "advance.intent")
    assert "overrides" not in intent
