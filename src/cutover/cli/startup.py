"""What makes a command start (and end) sooner: a parser that does not import shutil to learn
the terminal's width, `check`'s imports done on a thread while Postgres works, and an exit
whose last collections skip what the process made."""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import threading

from cutover.base.terminal import terminal_size


class HelpFormatter(argparse.HelpFormatter):
    """argparse's own, told the terminal's width as shutil would say it: argparse imports
    shutil for that (and with it bz2, lzma, fnmatch: ~8 ms of every command) as soon as a
    parser gets an argument, help or not."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = terminal_columns() - 2  # what argparse does with shutil's answer
        super().__init__(prog, indent_increment, max_help_position, width)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser with HelpFormatter, as are its subcommands' (add_subparsers makes
    them of the parser's own class)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def terminal_columns() -> int:
    """shutil.get_terminal_size().columns, without shutil (base/terminal)."""
    return terminal_size()[0]


# What a check imports after connecting: the query runner's dispatch to SQL or HTTP
# (sources.httpquery, which imports probes) and judging (judge/session.py imports it where
# it is first used). On a thread, these load while the connection and the guard's catalog
# query wait on Postgres.
JUDGING = (
    "cutover.sources.httpquery",
    "cutover.judge.check",
    "cutover.judge.compare",
    "cutover.judge.trend",
)


def import_judging() -> threading.Thread:
    """Start importing JUDGING on a thread; join it before the process ends (a thread left
    importing while the interpreter shuts down can hold an import lock)."""
    thread = threading.Thread(target=_import_all, name="cutover-judging")
    thread.start()
    return thread


def _import_all() -> None:
    try:
        for name in JUDGING:
            importlib.import_module(name)
    except Exception:  # imported again where used, which then says what is wrong
        pass


_freezing = False


def freeze_at_exit() -> None:
    """Have the interpreter's last collections skip every object the process made: they
    walk them all, ~25 ms of the end of every command (`check`: main's return to the
    process's exit, 35 -> 8.5 ms median, CPU -30 ms). At exit the objects are left to the
    operating system, as Python may leave any alive at exit anyway; every file cutover
    writes is flushed by its owner (and closed or synced where it matters), the standard
    streams by the interpreter. Once per process (main() runs many times in the tests)."""
    global _freezing
    if not _freezing:
        _freezing = True
        atexit.register(gc.freeze)  # runs before the interpreter's final collections
