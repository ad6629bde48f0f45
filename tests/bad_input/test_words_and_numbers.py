"""Words an operator reads: counted nouns agree with their number. Once, a probe said
"1 checks ok"."""

from __future__ import annotations

from datetime import UTC, datetime

from cutover.sources.probes import ProbeResult, ProbeStatus


def result(checks: tuple[str, ...]) -> ProbeResult:
    at = datetime(2026, 11, 20, tzinfo=UTC)
    return ProbeResult("health", ProbeStatus.PASS, "http://rlm/health", 200, checks, (), at, 0.1)


def test_a_probe_counts_its_checks_in_words_that_agree():
    assert result(("✓ status 200",)).summary.endswith("HTTP 200 · 1 check ok")
    assert result(("✓ status 200", "✓ body")).summary.endswith("HTTP 200 · 2 checks ok")


def test_the_observed_share_is_rounded_for_people():
    # Once, `status` said "observed 1.3468 %".
    from cutover.sources.observe import share_from
    from cutover.sources.results import QueryResult

    at = datetime(2026, 11, 20, tzinfo=UTC)
    result = QueryResult("v2_share", ("imports", "v2_pct"), ((412, 1.3468),), ran_at=at)
    assert share_from(result, "v2_pct").detail == "1.3 % (v2_share.v2_pct; imports 412)"


def test_a_rollback_with_nothing_to_roll_back_keeps_the_stage_and_opens_no_checklist(tmp_path):
    # Once, a 0 → 0 rollback at the prerequisites opened the rollback checklist ("rolled back
    # from prerequisites") and re-entered the stage, dropping its sign-offs.
    from faults.test_signoff_against_the_gate import CHECKLIST
    from moves_world import PLAIN_STAGES, cli, environ, fake_vercel, write_runbook

    book = write_runbook(tmp_path, PLAIN_STAGES)
    head, stages = book.read_text().split("[[stages]]", 1)
    queries, rollback = CHECKLIST.split("[rollback]", 1)
    book.write_text(head + queries + "\n[[stages]]" + stages + "\n[rollback]" + rollback)
    (tmp_path / "queries" / "in_flight.sql").write_text("SELECT 0 AS n;\n")
    with fake_vercel() as fake:
        env = environ(fake)
        ran = cli(book, env, "rollback", "--yes", "--reason", "drill", "--observe", "0")
        status = cli(book, env, "status", "--json")
    assert ran.code == 0 and "already reads 0 %" in ran.stdout
    import json

    shown = json.loads(status.stdout)
    assert shown["rollback_checklist"] is None
    assert shown["stage"] == "off"


def test_a_step_back_is_said_in_words_not_by_its_id(tmp_path):
    # Once, the progress said "stepback: 10 → 0 %" and a refused key "stepback refused".
    from moves_world import cli, environ, fake_vercel, write_runbook

    book = write_runbook(tmp_path)
    with fake_vercel() as fake:
        env = environ(fake)
        assert cli(book, env, "advance", "--confirm", "10").code == 0
        back = cli(book, env, "stepback", "--reason", "drill", "--yes")
    assert back.code == 0, back.stderr
    said = back.stdout + back.stderr
    assert "step back: 10 % → 0 %" in said and "step back to 0 % verified" in said
    assert "stepback" not in said


def test_journaled_events_and_refused_keys_are_said_in_words():
    from cutover.record.events import Kind, event_words
    from cutover.tui.keys import ACTION_WORDS, EXPLAINED

    # every key that can be refused, and every event a console announces, has words
    assert all(" " not in a or a in ACTION_WORDS for a in EXPLAINED.values())
    assert {ACTION_WORDS.get(a, a) for a in EXPLAINED.values()} == {
        "advance", "step back", "sign-off", "rollback", "raise / clear", "accept gap",
    }  # fmt: skip
    for kind in (Kind.SIGNOFF, Kind.STEPBACK_INTENT, Kind.TRIGGER_RAISED, Kind.GAP_ACCEPTED):
        assert "_" not in event_words(kind) and "." not in event_words(kind)


def test_bytes_are_judged_and_said_in_gigabytes_not_ten_digit_numbers():
    # Once, the memory trigger said "1,950,000,000 > 1,800,000,000".
    from cutover.judge.gates import judge
    from cutover.runbook.model import Comparison
    from cutover.sources.results import QueryResult

    at = datetime(2026, 11, 20, tzinfo=UTC)
    check = Comparison("render_memory", ">", 1_800_000_000, column="memory_bytes")
    busy = QueryResult("render_memory", ("memory_bytes",), ((1_950_000_000,),), ran_at=at)
    assert judge(check, busy, now=at).reason == "1.95 GB > 1.8 GB"
    # one byte over is not rounded to look like the limit
    edge = QueryResult("render_memory", ("memory_bytes",), ((1_800_000_001,),), ran_at=at)
    assert judge(check, edge, now=at).reason == "1.800000001 GB > 1.8 GB"
