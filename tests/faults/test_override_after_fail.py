"""An override is for "cannot decide", never for "decided no". Once, a gate that FAILed in
all 9 evaluations over 75 s and then WAITed for one second was overridden ("query flaky"),
the advance went to 50 %, and the hold was judged without that gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cutover.record.evidence import GATE, Evaluation, EvidenceStore, evidence_path
from moves_world import environ, fake_vercel, kinds, write_runbook
from test_gate_override import STAGES, run


async def test_an_override_is_refused_for_a_gate_that_failed_during_the_hold(
    tmp_path, soulprint_dsn
):
    # FAIL in all 9 evaluations over 75 s, then one WAIT: "cannot decide" it is not.
    book = write_runbook(tmp_path, STAGES)
    store = EvidenceStore(evidence_path(tmp_path / "journal.jsonl"), by="watch", flush_s=1)
    now = datetime.now(UTC)
    for i in range(9):
        at = now - timedelta(seconds=80 - i * 9)
        store.record([Evaluation(GATE, "v2_split", "off", "fail", 0.0, None, "0 ≠ 1", "", at)])
    store.flush()
    with fake_vercel() as fake:
        env = environ(fake, dsn=soulprint_dsn)
        done = await run(
            book, env, "advance", "--confirm", "10", "--override", "v2_split",
            "--note", "query flaky",
        )  # fmt: skip
        sent = [r.method for r in fake.requests]
    assert done.code == 1, done.output
    assert "gate v2_split FAILed during the current hold" in done.stderr
    assert "never for one that decided no" in done.stderr
    assert "PATCH" not in sent and "advance.intent" not in kinds(book)
