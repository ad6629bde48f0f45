"""The evidence decode every reader shares (the console, the watcher, `check`, the report):
a keyed line whose fields were changed after it was signed is refused, and the decode made
faster refuses exactly what the one before it refused, line for line, over lines broken in
every way a byte can break them."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta

import pytest

from cutover.record.evidence import GATE, TRIGGER, Run, Unsigned, decode_run, encode_run

KEY = b"a journal key of thirty-two bytes"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
DECODE_ERRORS = (ValueError, KeyError, TypeError, IndexError)  # what every reader catches


def reference_decode(raw: bytes, key: bytes | None = None) -> Run:
    """The decode as it was before it was made faster: json.dumps for the canonical form,
    the dataclass's own constructor."""
    obj = json.loads(raw)
    if key:
        mac = obj.pop("mac", None) if isinstance(obj, dict) else None
        canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        expected = hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()
        if not isinstance(mac, str) or not hmac.compare_digest(mac, expected):
            raise Unsigned("not signed with the journal key")
    interval = obj.get("interval")
    return Run(
        run=str(obj["run"]),
        what=str(obj["what"]),
        name=str(obj["name"]),
        stage=str(obj["stage"]),
        verdict=str(obj["verdict"]),
        value=None if obj.get("value") is None else float(obj["value"]),
        interval=(float(interval[0]), float(interval[1])) if interval else None,
        reason=str(obj.get("reason", "")),
        sql=str(obj.get("sql", "")),
        first=_ts(obj["first"]),
        last=_ts(obj["last"]),
        count=int(obj["count"]),
        by=str(obj.get("by", "")),
        n_first=None if obj.get("n_first") is None else float(obj["n_first"]),
        n=None if obj.get("n") is None else float(obj["n"]),
    )


def _ts(text: str) -> datetime:
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError("naive time")
    return dt.astimezone(UTC)


RUNS = [
    Run("a1b2c3d4e5f6", GATE, "success", "canary", "pass", 99.5, (98.1, 99.9), "", "cf0a",
        T0, T0 + timedelta(minutes=5), 11, "watch", 140.0, 152.0),
    Run("0f0f0f0f0f0f", TRIGGER, "slow", "canary", "fired", float("inf"), None,
        "p95 over 2 s — «slow»", "ecd3", T0, T0, 1, "console"),
    Run("123456abcdef", GATE, "rows", "full", "wait", None, None, "no rows yet", "9a9a",
        T0, T0 + timedelta(hours=1), 3, "check"),
]  # fmt: skip


def old_line(run: Run, key: bytes | None) -> bytes:
    """A line as encode_run wrote it before keyed lines were their canonical text: the
    fields in their order, with spaces, the MAC last. Records hold such lines for good."""
    obj = run.to_json()
    if key:
        canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        obj["mac"] = hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")


def outcome(decode, raw: bytes, key: bytes | None) -> object:
    try:
        return decode(raw, key)
    except Unsigned:
        return "unsigned"
    except (*DECODE_ERRORS, AttributeError) as exc:
        return type(exc).__name__


def broken(line: bytes) -> list[bytes]:
    """The line with each byte dropped, each byte changed to a neighbour of it, and a few
    meaningful edits (a value raised, a verdict turned, the MAC cut)."""
    out = []
    for i in range(len(line)):
        out.append(line[:i] + line[i + 1 :])
        out.append(line[:i] + bytes([(line[i] + 1) % 256]) + line[i + 1 :])
    for old, new in [
        (b'"fail"', b'"pass"'), (b'"wait"', b'"pass"'), (b"99.5", b"99.6"),
        (b'"mac": "', b'"mac": "0'), (b', "mac": ', b', "mac2": '), (b"11", b"1"),
        (b'"count": ', b'"count": "'), (b'"interval": [', b'"interval": [[]'),
        (b'"mac":"', b'"mac":"0'), (b',"mac":', b',"mac2":'), (b'"count":', b'"count":"'),
        (b'"}', b'" }'), (b'"}', b'"}}'), (b'{"by"', b'{"mac":"x","by"'),
    ]:  # fmt: skip
        if old in line:
            out.append(line.replace(old, new, 1))
    return [*out, b"[1, 2]", b'"text"', b"null", b"{}", b'{"mac": 3}']


@pytest.mark.parametrize("key", [KEY, None], ids=["keyed", "unkeyed"])
def test_the_decode_refuses_exactly_what_it_refused_before_over_every_broken_byte(key):
    compared = refused = 0
    for run, line in [(r, encode(r, key).rstrip(b"\n")) for r in RUNS for encode in ENCODES]:
        assert decode_run(line, key) == run
        for raw in broken(line):
            before = outcome(reference_decode, raw, key)
            if before == "AttributeError":  # see the next test
                continue
            assert outcome(decode_run, raw, key) == before, raw
            compared += 1
            refused += not isinstance(before, Run)
    assert compared > 3000 and refused > 1500, (compared, refused)


ENCODES = [encode_run, old_line]


def test_a_keyed_line_is_the_text_its_mac_is_over_and_an_older_reader_still_reads_it():
    for run in RUNS:
        line = encode_run(run, KEY)
        canonical = json.dumps(
            run.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        assert line.startswith(canonical[:-1] + b',"mac":"')
        assert reference_decode(line, KEY) == run  # another host on the version before
        assert decode_run(old_line(run, KEY), KEY) == run  # a record written before
        assert reference_decode(old_line(run, None)) == decode_run(encode_run(run)) == run


def test_a_line_that_is_json_but_no_object_is_not_evidence_where_it_was_a_crash():
    # Without a key, `[1, 2]` once reached Run.from_json and raised AttributeError, which
    # no reader catches: a traceback for one stray line.
    for raw in (b"[1, 2]", b'"text"', b"3", b"null"):
        with pytest.raises(ValueError):
            decode_run(raw)
        with pytest.raises(Unsigned):
            decode_run(raw, KEY)


def test_a_keyed_line_changed_after_it_was_signed_is_refused():
    line = encode_run(RUNS[0], KEY)
    assert decode_run(line, KEY) == RUNS[0]
    obj = json.loads(line)
    for name, value in [("verdict", "fail"), ("last", "2026-11-02T00:00:00Z"), ("count", 900),
                        ("value", 100.0), ("stage", "full")]:  # fmt: skip
        tampered = dict(obj, **{name: value})
        raw = json.dumps(tampered, ensure_ascii=False).encode("utf-8")
        with pytest.raises(Unsigned):
            decode_run(raw, KEY)
        assert getattr(decode_run(raw), name) != getattr(RUNS[0], name)  # unkeyed: read as is
    # Re-serialised differently (keys reordered, no spaces) it is still the same signed run.
    same = json.dumps(dict(reversed(list(obj.items()))), separators=(",", ":")).encode()
    assert decode_run(same, KEY) == RUNS[0]
    # Signed with another key: refused.
    with pytest.raises(Unsigned):
        decode_run(encode_run(RUNS[0], b"another key entirely, 32 bytes."), KEY)


def test_a_decoded_run_has_every_field_the_constructor_gives_and_compares_as_one():
    for run in RUNS:
        decoded = decode_run(encode_run(run))
        assert set(vars(decoded)) == {f.name for f in fields(Run)}
        assert decoded == run and hash(decoded) == hash(run) and repr(decoded) == repr(run)
        with pytest.raises(AttributeError):
            decoded.verdict = "pass"  # still frozen


def test_runs_decoded_from_separate_lines_share_their_repeated_words():
    # A console holds its last two stages' runs for the trends: a week of one gate flapping
    # at each evaluation is ~20,000 runs, whose kind, name, stage, verdict, statement digest
    # and evaluator repeat from line to line. Held once each, a week's trends hold about a
    # quarter less (measured: 29.6 → 21.3 MB).
    first = decode_run(encode_run(RUNS[0]))
    again = decode_run(encode_run(replace(RUNS[0], run="ffffffffffff")))
    for name in ("what", "name", "stage", "verdict", "sql", "by"):
        assert getattr(first, name) is getattr(again, name), name
