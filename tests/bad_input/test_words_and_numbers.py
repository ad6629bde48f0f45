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
