"""A keyed chain: with CUTOVER_JOURNAL_KEY (or a key file named by the runbook) every event's
hash is an HMAC and every evidence line carries one, so whoever can write the files but lacks
the key cannot rewrite history. Once, recomputing the plain chain after backdating the canary
passed `journal --verify`, and three appended PASS lines made the hold read "1d met" 12 s
after entering it. Without a key the chain says it shows accidents only."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from cutover.judge.session import Session
from cutover.record.chain import digest
from cutover.record.events import Kind
from cutover.record.evidence import GATE, Evaluation, Run, evidence_path
from cutover.runbook import loader as runbook
from cutover.sources.notify import Notifier, Webhook
from faults.test_journal_tamper import (
    HOLD,
    T0,
    Clock,
    drill,
    into_canary,
    lines_of,
    write_lines,
)
from watch_world import receiver

KEY = "k3y-for-the-journal-9f2c41"


def keyed_session(path: Path, key: str | None = KEY) -> Session:
    env = {"USER": "ana", "PATH": os.environ.get("PATH", "")}
    if key:
        env["CUTOVER_JOURNAL_KEY"] = key
    return Session(runbook.load(path), env)


def rewrite_history(path: Path, key: bytes | None = None) -> None:
    """What someone who can write the file does: backdate the canary's entry by a day and
    recompute every hash and link (with the key they have, if any)."""
    prev = ""
    lines = []
    for raw in lines_of(path):
        obj = json.loads(raw)
        if obj["seq"] == 3:
            obj["ts"] = (T0 - HOLD - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        obj["prev"] = prev
        obj["hash"] = digest(obj, key)
        prev = obj["hash"]
        lines.append(json.dumps(obj, ensure_ascii=False))
    write_lines(path, lines)
    head = path.with_name(path.name + ".head")
    if head.exists():
        last = json.loads(lines[-1])
        size = path.stat().st_size
        head.write_text(json.dumps({"seq": last["seq"], "hash": last["hash"], "size": size}))


def cutover(runbook_path: Path, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_CONNECTION", "SUDO_USER")}
    env.pop("CUTOVER_JOURNAL_KEY", None)
    if key:
        env["CUTOVER_JOURNAL_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "cutover.cli", "--runbook", str(runbook_path), *args],
        capture_output=True,
        text=True,
        env={**env, "USER": "ana"},
        timeout=60,
    )


def test_a_history_rewritten_without_the_key_fails_verification(tmp_path):
    path = drill(tmp_path)
    session = keyed_session(path)
    journal = session.journal
    journal.clock = Clock()
    into_canary(journal)
    assert session.journal.verify().ok
    assert "(keyed)" in session.journal.verify().message

    rewrite_history(session.runbook.journal_path)  # the plain chain, recomputed
    state, _ = keyed_session(path).state()
    assert state.chain is not None
    assert "not keyed" in state.chain.message
    ran = cutover(path, "journal", "--verify")
    assert ran.returncode == 1 and "not keyed" in ran.stdout
    assert KEY not in ran.stdout + ran.stderr


def test_a_history_rewritten_with_a_guessed_key_fails_verification(tmp_path):
    path = drill(tmp_path)
    session = keyed_session(path)
    session.journal.clock = Clock()
    into_canary(session.journal)
    rewrite_history(session.runbook.journal_path, b"a guess")
    state, _ = keyed_session(path).state()
    assert state.chain is not None and "does not match its hash" in state.chain.message


def test_without_a_key_the_same_rewrite_passes_and_verify_says_the_chain_is_not_keyed(tmp_path):
    path = drill(tmp_path)
    session = keyed_session(path, key=None)
    session.journal.clock = Clock()
    into_canary(session.journal)
    rewrite_history(session.runbook.journal_path)
    ran = cutover(path, "journal", "--verify", key=None)
    assert ran.returncode == 0
    assert "not keyed: it shows accidents and careless edits, not a rewrite" in ran.stdout


def test_evidence_lines_appended_without_the_key_are_ignored(tmp_path):
    path = drill(tmp_path)
    session = keyed_session(path)
    session.journal.clock = Clock()
    into_canary(session.journal)
    store = session.evidence_store("watch", clock=lambda: T0 + timedelta(days=2))
    store.record([Evaluation(GATE, "g", "canary", "fail", 1.0, None, "", "", T0)])
    store.flush()
    # Three PASS lines spanning a day, appended by hand.
    forged = [
        Run(f"f{i}", GATE, "g", "canary", "pass", 99.0, None, "", "", T0, T0 + HOLD, 9, "watch")
        for i in range(3)
    ]
    with evidence_path(session.runbook.journal_path).open("a") as f:
        for run in forged:
            f.write(json.dumps(run.to_json()) + "\n")
    read = keyed_session(path).read_evidence()
    assert [r.verdict for r in read.runs] == ["fail"]
    assert sum("not signed with the journal key" in w for w in read.warnings) == 3


def test_a_journal_begun_before_the_key_is_vouched_for_once_then_keyed(tmp_path):
    path = drill(tmp_path)
    unkeyed = keyed_session(path, key=None)
    unkeyed.journal.clock = Clock()
    into_canary(unkeyed.journal)

    state, _ = keyed_session(path).state()
    assert state.chain is not None
    assert "is not keyed, but a journal key is set" in state.chain.message
    refused = cutover(path, "signoff", "complaints")
    assert refused.returncode == 1

    vouched = cutover(path, "journal", "--accept-break", "--note", "read it: it is ours")
    assert vouched.returncode == 0, vouched.stdout + vouched.stderr
    later = keyed_session(path)
    later.journal.append(Kind.SIGNOFF, stage="canary", step="complaints", visit=1, note="")
    assert later.journal.verify().ok, later.journal.verify().message
    # …and from there on an event written without the key is caught.
    keyed_session(path, key=None).journal.append("probe.ran", n=1)
    state, _ = keyed_session(path).state()
    assert state.chain is not None and "not keyed although the events before it are" in (
        state.chain.message
    )


def test_a_key_file_named_by_the_runbook_keys_the_journal_and_a_missing_one_is_said(tmp_path):
    path = drill(tmp_path)
    path.write_text(
        path.read_text().replace("[flag]", '[journal]\nkey_file = "journal.key"\n\n[flag]', 1)
    )
    missing = cutover(path, "status", key=None)
    assert missing.returncode == 2
    assert "journal.key" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "journal.key").write_text(KEY + "\n")
    assert cutover(path, "signoff", "ready", key=None).returncode == 0
    ran = cutover(path, "journal", "--verify", key=None)
    assert ran.returncode == 0 and "(keyed)" in ran.stdout


def test_every_webhook_message_carries_the_journals_head(tmp_path):
    path = drill(tmp_path)
    session = keyed_session(path)
    session.journal.clock = Clock()
    into_canary(session.journal)

    async def post() -> None:
        with receiver() as hook:
            notifier = Notifier([Webhook("HOOK", hook.url)], head=session.journal.head_words)
            notifier.start()
            notifier.send("trigger stuck_burst FIRED")
            await notifier.aclose(drain_s=5)
            told = hook.received()
        head = json.loads(session.journal.head_path.read_text())
        assert f"journal head seq 3 {head['hash']} (keyed)" in told

    asyncio.run(post())
