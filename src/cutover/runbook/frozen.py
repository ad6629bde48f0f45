"""`@frozen`: `@dataclass(frozen=True)`, the very same class, for less of every start.

Why: dataclasses writes each class's methods (__init__, __repr__, __eq__, __hash__,
__setattr__, __delattr__) as source text and compiles each one with `exec`: ~1 ms a class,
most of it compiling, and every command (and the console) defines the runbook's and the
state's tens of classes before it can do anything else (#20).

How: while `@frozen` runs, the `exec` dataclasses calls runs code compiled from the same
text on an earlier run, when there is some: the same text always compiles to the same code
(the flags are exec's own: none inherited, the interpreter's optimization level). Nothing
else changes; the class is what `@dataclass(frozen=True)` makes of it.

Where: beside the vetted memo (vetted.cache_dir()), 0600 in a 0700 folder, keyed by the
interpreter's bytecode magic as .pyc files are. Only a file this user wrote and nobody else
can is read (whoever can write it can already run code as this user). Unreadable, garbled or
another interpreter's, it is ignored: each text is compiled afresh and the file written once,
when the process ends.
"""

from __future__ import annotations

import atexit
import dataclasses
import importlib.util
import marshal
import os
import sys
import threading
from types import CodeType
from typing import Any, TypeVar, dataclass_transform

from cutover.base.private import open_private, private_dir
from cutover.runbook.vetted import cache_dir

FILE = "classes.marshal"
T = TypeVar("T")

_lock = threading.RLock()
_codes: dict[str, CodeType] | None = None
_written_at_exit = False
compiled = 0  # texts compiled by this process (the rest were kept): for the tests


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def frozen(cls: type[T]) -> type[T]:
    """`@dataclass(frozen=True)`, its methods' code compiled once across runs."""
    with _lock:
        dataclasses.exec = _exec  # type: ignore[attr-defined]  # found before the builtin
        try:
            return dataclasses.dataclass(frozen=True)(cls)
        finally:
            del dataclasses.exec  # type: ignore[attr-defined]


def _key() -> bytes:
    """What the code depends on besides the text: the bytecode and the -O level."""
    return importlib.util.MAGIC_NUMBER + bytes([sys.flags.optimize])


def _exec(source: Any, globals: Any = None, locals: Any = None, /, **more: Any) -> None:
    """`exec` as dataclasses calls it, a text compiled on an earlier run taken as kept."""
    global compiled, _written_at_exit
    if globals is None:  # what exec would use: its caller's, dataclasses'
        globals = vars(dataclasses)
    if isinstance(source, str):
        codes = _kept()
        code = codes.get(source)
        if code is None:
            # dont_inherit: this module's `from __future__ import annotations` must not reach
            # the code (exec, called from dataclasses, compiles with no future flags).
            code = codes[source] = compile(source, "<string>", "exec", dont_inherit=True)
            compiled += 1
            if not _written_at_exit:
                _written_at_exit = True
                atexit.register(_write)
        source = code
    exec(source, globals, locals, **more)


def _kept() -> dict[str, CodeType]:
    global _codes
    if _codes is None:
        _codes = {}
        try:
            path = cache_dir() / FILE
            st = path.stat()
            if st.st_uid != os.getuid() or st.st_mode & 0o077:
                return _codes
            key, codes = marshal.loads(path.read_bytes())
        except Exception:  # not there, not ours, not marshal, no home: compiled afresh
            return _codes
        if key == _key() and isinstance(codes, dict):
            _codes = {s: c for s, c in codes.items() if type(s) is str and type(c) is CodeType}
    return _codes


def _write() -> None:
    with _lock:
        data = marshal.dumps((_key(), dict(_kept())))
    try:
        folder = private_dir(cache_dir())
        tmp = folder / f".{FILE}.{os.getpid()}.{threading.get_ident()}"
        with open_private(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, folder / FILE)  # whole, never a mix of two processes' files
    except Exception:
        pass  # a cache that cannot be written costs compiling next time, nothing else
