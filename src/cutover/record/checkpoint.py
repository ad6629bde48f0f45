"""A verified checkpoint of the journal: the state replayed through event N, and where the
chain stood there, so a command reads, verifies and replays only the events after N instead
of the whole journal (#20). It is a cache, never a source of truth:

- it names the event it was made at (seq, hash, the line's SHA-256 and length, and on a
  file its byte offset), and a reader uses it only while the journal still has exactly that
  line there; the tail after it is verified onto the chain as it stood at N;
- it is made under the runbook's stages (what replay reads of the runbook) and by this
  version of cutover: another runbook or version ignores it;
- its own hash covers all of it and the event's hash (which chains to every event before
  it); with a journal key that hash is an HMAC under the key, so nobody without the key can
  write one a keyed reader takes;
- one that is missing, unreadable, altered, or made elsewhere is ignored without a word,
  and the whole journal is read as before. `journal --verify` always reads everything.

Serialised explicitly (statecodec), never pickled: the file holds JSON."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path
from typing import Any

import cutover
from cutover.record import statecodec
from cutover.record.chain import Chain, digest
from cutover.record.state import CutoverState
from cutover.runbook.frozen import frozen
from cutover.runbook.model import Runbook

FORMAT = 2  # 2: a file's mark carries the digest of every byte before it
SUFFIX = ".checkpoint"  # beside the journal: `<journal>.checkpoint`
# A command that replayed at least this many events past the last checkpoint leaves a new
# one: the next command replays fewer than this many.
EVERY = 1000


@frozen
class Mark:
    """Where a reader's chain stood just after event `seq`: enough to verify the events that
    follow it as if every line before had just been read."""

    seq: int
    hash: str  # the event's hash (an HMAC under a key): what the next event chains onto
    line_sha256: str  # of the event's line as stored, newline included
    line_length: int
    offset: int  # bytes through that line in the file (0 for the store: rows, not bytes)
    lines: int  # lines read through it (line numbers in later findings count on from here)
    keyed_seen: bool
    warnings: tuple[str, ...]  # what the lines up to it said (a crash's torn line, skipped)
    unknown: tuple[tuple[str, int, int, int], ...]  # kinds this version does not know
    accepted: tuple[str, ...]  # breaks a person accepted, as notes
    # A file's: SHA-256 of its first `offset` bytes, as they were when the chain through
    # them verified. Hashing them is ~50× cheaper than parsing and verifying them, and a
    # line changed before the mark is then found by every command, not only by `journal
    # --verify`. The store's rows cannot be changed (its trigger): "" there.
    prefix_sha256: str = ""

    @classmethod
    def of(cls, chain: Chain) -> Mark | None:
        """The mark of a chain's committed events; None while it has a problem or none."""
        seq = chain.expected_seq - 1
        if chain.problem is not None or seq < 1 or not chain.last_line:
            return None
        return cls(
            seq=seq,
            hash=chain.prev_hash,
            line_sha256=hashlib.sha256(chain.last_line).hexdigest(),
            line_length=len(chain.last_line),
            offset=chain.offset,
            lines=chain.lines,
            keyed_seen=chain.keyed_seen,
            warnings=tuple(chain.warnings),
            unknown=tuple((k, *v) for k, v in chain.unknown.items()),
            accepted=tuple(chain.accepted),
        )

    def names(self, line: bytes) -> bool:
        """Is `line` (newline included) the event line this mark was made at?"""
        return len(line) == self.line_length and hmac.compare_digest(
            hashlib.sha256(line).hexdigest(), self.line_sha256
        )

    def resume(self, key: bytes | None, line: bytes) -> Chain:
        """A chain standing where this mark was made, ready for the lines after `line`
        (the event line at the mark, already checked with `names`)."""
        chain = Chain(key)
        chain.expected_seq, chain.prev_hash = self.seq + 1, self.hash
        chain.keyed_seen = self.keyed_seen
        chain.lines, chain.offset, chain.last_line = self.lines, self.offset, line
        chain.warnings = list(self.warnings)
        chain.unknown = {k: (n, seq, at) for k, n, seq, at in self.unknown}
        chain.accepted = list(self.accepted)
        return chain


@frozen
class Checkpoint:
    mark: Mark
    state: CutoverState  # replayed through mark.seq


def runbook_digest(runbook: Runbook) -> str:
    """What replay reads of the runbook: its stages' ids and percents, in order."""
    stages = [[s.id, s.percent] for s in runbook.stages]
    return hashlib.sha256(json.dumps(stages, sort_keys=True).encode("utf-8")).hexdigest()


def encode(point: Checkpoint, runbook: Runbook, key: bytes | None) -> bytes:
    """The checkpoint as one JSON object whose `hash` covers everything else (an HMAC under
    the journal key where there is one). ValueError when the state cannot be kept."""
    m = point.mark
    if point.state.last_seq != m.seq:
        raise ValueError("the state is not the one replayed through the mark")
    obj: dict[str, Any] = {
        "format": FORMAT,
        "cutover": cutover.__version__,
        "runbook": runbook_digest(runbook),
        "keyed": bool(key),
        "seq": m.seq,
        "event_hash": m.hash,
        "line_sha256": m.line_sha256,
        "line_length": m.line_length,
        "offset": m.offset,
        "lines": m.lines,
        "keyed_seen": m.keyed_seen,
        "warnings": list(m.warnings),
        "unknown": [list(u) for u in m.unknown],
        "accepted": list(m.accepted),
        "prefix_sha256": m.prefix_sha256,
        "state": statecodec.state_to_dict(point.state),
    }
    obj["hash"] = digest(obj, key)
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"


def decode(raw: bytes, runbook: Runbook, key: bytes | None) -> Checkpoint | None:
    """The checkpoint, if these bytes are one this version made for this runbook, with this
    key (or, both, without one), unaltered; None otherwise."""
    try:
        obj = json.loads(raw.decode("utf-8"))
        if not isinstance(obj, dict) or not isinstance(obj.get("hash"), str):
            return None
        if not hmac.compare_digest(digest(obj, key), obj["hash"]):
            return None  # altered, or made with another key (or without one)
        if (
            obj["format"] != FORMAT
            or obj["cutover"] != cutover.__version__
            or obj["runbook"] != runbook_digest(runbook)
            or obj["keyed"] is not bool(key)
        ):
            return None
        mark = Mark(
            seq=_int(obj["seq"], 1),
            hash=_text(obj["event_hash"]),
            line_sha256=_text(obj["line_sha256"]),
            line_length=_int(obj["line_length"], 1),
            offset=_int(obj["offset"], 0),
            lines=_int(obj["lines"], 1),
            keyed_seen=obj["keyed_seen"] is True,
            warnings=tuple(_text(w) for w in obj["warnings"]),
            unknown=tuple(
                (_text(k), _int(n, 1), _int(s, 1), _int(at, 1)) for k, n, s, at in obj["unknown"]
            ),
            accepted=tuple(_text(a) for a in obj["accepted"]),
            prefix_sha256=_text(obj["prefix_sha256"]),
        )
        state = statecodec.state_from_dict(obj["state"])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError):
        # RecursionError: a file of nested brackets (json.loads nests as deep as the text
        # does) would otherwise crash every command, a rollback's included, before the hash
        return None
    if state.last_seq != mark.seq or state.chain is not None:
        return None
    return Checkpoint(mark, state)


def _int(value: Any, least: int) -> int:
    if type(value) is not int or value < least:
        raise ValueError("not a count")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not text")
    return value


# -- the files store's checkpoint: one file beside the journal --------------------------------


def prefix_sha256(fd: int, length: int) -> str | None:
    """SHA-256 of the first `length` bytes of the open file, read in pieces (flat memory);
    None when the file is shorter."""
    hashed, at = hashlib.sha256(), 0
    while at < length:
        piece = os.pread(fd, min(1 << 20, length - at), at)
        if not piece:
            return None
        hashed.update(piece)
        at += len(piece)
    return hashed.hexdigest()


def checkpoint_path(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name + SUFFIX)


def read_file(path: Path) -> bytes | None:
    """The checkpoint file's bytes; None when there is none or it cannot be read (a folder in
    its place, no permission, another owner's file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or not stat.S_ISREG(st.st_mode):
            return None  # only a regular file of ours: another user's could say anything
        if st.st_size > 64 * 1024 * 1024:
            return None
        return os.read(fd, st.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes) -> None:
    """Replace the checkpoint whole: a temporary file beside it, fsynced, renamed over. A
    reader sees the old one or the new one; a crash leaves at worst the temporary file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
