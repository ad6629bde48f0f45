"""What the runbook loader has already vetted, remembered between runs: a query text the SQL
guard found to be one plain read (with the calls it makes), a JSONPath that compiled, how a
.sql file splits into statements and what a runbook's TOML holds (the tokenizer and tomllib
are pure Python).

Why: vetting parses every query with libpg_query (pglast) and compiles every JSONPath, and
importing those two libraries alone is ~50 ms of every `check` and of the console's first
paint, for texts that have not changed since the last run. The memo holds only verdicts that
let a text through and what parsing a text gave (a file's statements, a runbook's TOML), keyed
by a digest of the text and of the rules that judged it (the guard's, the JSONPath check's and
the splitter's source, the libraries' and tomllib's versions): change any and it is judged
again.
A refusal is never remembered, so every error is found afresh, with its position.

Where: `$CUTOVER_CACHE_DIR`, else `$XDG_CACHE_HOME/cutover`, else `~/.cache/cutover`; 0600
in a 0700 folder. It is a cache: unreadable, garbled or unwritable, it is ignored, and
`cutover validate` never consults it (it judges every text afresh, and remembers). Whoever
can write it can also edit the runbook and its queries, so it trusts the same people.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cutover.base.private import open_private, private_dir

FILE = "vetted.json"
MAX_ENTRIES = 4096  # the oldest are dropped first; a runbook holds tens of texts
# The sources whose rules decide a verdict: ours by module, the libraries' by the file that
# carries their version.
_OURS = ("sqlguard.py", "sqltree.py", "jsonpaths.py", "sqlfile.py")
_THEIRS = (("pglast", "__init__.py"), ("jsonpath", "__about__.py"), ("tomllib", "_parser.py"))


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the memo lives.

    >>> str(cache_dir({"CUTOVER_CACHE_DIR": "/x", "XDG_CACHE_HOME": "/y"}))
    '/x'
    >>> str(cache_dir({"XDG_CACHE_HOME": "/y"}))
    '/y/cutover'
    """
    if environ.get("CUTOVER_CACHE_DIR"):
        return Path(environ["CUTOVER_CACHE_DIR"])
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cutover"


def fingerprint() -> str:
    """A digest of every source whose rules decide a verdict (read, never imported)."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    paths = [here / name for name in _OURS]
    for package, file in _THEIRS:
        spec = importlib.util.find_spec(package)
        origin = spec.origin if spec is not None else None
        paths.append(Path(origin).parent / file if origin else Path("/nonexistent"))
    for path in paths:
        digest.update(str(path.name).encode())
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"\0missing")
    return digest.hexdigest()


class Memo:
    """The verdicts that let a text through, read once per process and written as they are
    added. Safe to use from several threads."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self.consult = True  # False: judge afresh (validate), still remember
        self._lock = threading.Lock()
        self._entries: dict[str, Any] | None = None
        self._print = ""
        # Inside batch(): what keep() adds is written once, when the batch ends.
        self._batching = 0
        self._unwritten = False

    def _key(self, kind: str, text: str) -> str:
        return hashlib.sha256(f"{self._print}\0{kind}\0{text}".encode()).hexdigest()

    def _loaded(self) -> dict[str, Any]:
        if self._entries is None:
            self._print = fingerprint()
            self._entries = {}
            path = self._folder() / FILE
            try:
                # Only a memo this user wrote and nobody else can: one planted in a shared
                # folder is not trusted.
                st = path.stat()
                if st.st_uid != os.getuid() or st.st_mode & 0o077:
                    return self._entries
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return self._entries
            if isinstance(data, dict) and data.get("fingerprint") == self._print:
                entries = data.get("vetted")
                if isinstance(entries, dict):
                    self._entries = entries
        return self._entries

    def _folder(self) -> Path:
        return self.folder if self.folder is not None else cache_dir()

    def recall(self, kind: str, text: str) -> Any | None:
        """What was kept for this text under today's rules, or None."""
        if not self.consult:
            return None
        with self._lock:
            return self._loaded().get(self._key(kind, text))

    def keep(self, kind: str, text: str, value: Any, *, newest: int | None = None) -> None:
        """Remember that `text` passed, with `value` (JSON: never None). `newest`: of the
        entries of this kind (values {"kind": kind, ...}), keep only that many, the newest:
        every edit of a large text (a runbook's TOML) adds one, and every start reads the
        whole file."""
        with self._lock:
            entries = self._loaded()
            key = self._key(kind, text)
            if entries.get(key) == value:
                return
            if newest is not None:
                older = [
                    k
                    for k, v in entries.items()
                    if k != key and isinstance(v, dict) and v.get("kind") == kind
                ]
                for k in older[: max(0, len(older) - newest + 1)]:
                    del entries[k]
            entries[key] = value
            while len(entries) > MAX_ENTRIES:
                del entries[next(iter(entries))]
            if self._batching:
                self._unwritten = True
            else:
                self._write(entries)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Keep everything added meanwhile in one write, at the end: a runbook's load vets
        tens of texts on a cold memo, and the file was rewritten whole for each one (31
        rewrites of the shipped runbook's memo: 140-160 ms of a first `check` on a busy
        machine, with json.dump's encoder)."""
        with self._lock:
            self._batching += 1
        try:
            yield
        finally:
            with self._lock:
                self._batching -= 1
                if not self._batching and self._unwritten and self._entries is not None:
                    self._unwritten = False
                    self._write(self._entries)

    def _write(self, entries: dict[str, Any]) -> None:
        # Another process may write at the same moment: each writes a whole file and renames
        # it into place, so the memo is one of them, never a mix; a lost entry is parsed again.
        try:
            folder = private_dir(self._folder())
            tmp = folder / f".{FILE}.{os.getpid()}.{threading.get_ident()}"
            # dumps, not dump: json.dump encodes in pure Python, chunk by chunk (5-9 ms for
            # this file; dumps' C encoder well under 1 ms).
            text = json.dumps({"fingerprint": self._print, "vetted": entries})
            with open_private(tmp, encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, folder / FILE)
        except OSError:
            pass  # a cache that cannot be written costs a parse next time, nothing else


MEMO = Memo()
