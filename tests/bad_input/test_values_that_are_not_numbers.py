"""A trigger whose query answers something that is not a number (an age written
`now() - started_at` is an interval, a count cast for display is text) is UNKNOWN, and says
what the value is in SQL's words with the cure, never as a Python repr
(`datetime.timedelta(seconds=300)`), in `check` and its JSON."""

from __future__ import annotations

import json

import pytest

from faults.test_infinite_values import runbook_with_infinity
from moves_world import cli, environ, fake_vercel


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("interval '5 minutes'", "backlog is an interval (0:05:00), not a number: extract(epoch"),
        ("now()", "backlog is a timestamp ("),
        ("'2026-12-01'::date", "backlog is a date (2026-12-01), not a number: extract(epoch"),
        ("'12'::text", "backlog is text ('12'), not a number: cast it in the query (…::numeric)"),
        ("'twelve'::text", "backlog is text ('twelve'), not a number"),
        ("E'\\x1b[31mred'::text", "backlog is text ('\\x1b[31mred'), not a number"),  # an ESC
        ("12::money", "backlog is text ('$12.00'), not a number"),
    ],
)
def test_a_trigger_on_a_value_that_is_not_a_number_is_unknown_in_sqls_words(
    tmp_path, empty_dsn, value, said
):
    book = runbook_with_infinity(tmp_path, value)
    with fake_vercel() as fake:
        env = environ(fake, dsn=empty_dsn)
        text = cli(book, env, "check")
        as_json = cli(book, env, "check", "--json")

    assert text.code == 3 and as_json.code == 3, text.output  # unknown, never quiet
    (line,) = [line for line in text.stdout.splitlines() if "backlog_high" in line]
    assert "UNKNOWN" in line and said in line, line
    (trigger,) = [t for t in json.loads(as_json.stdout)["triggers"] if t["id"] == "backlog_high"]
    assert trigger["fired"] is None and said in trigger["reason"]
    assert "datetime." not in text.output + as_json.output
    assert "\x1b" not in text.output + as_json.output
