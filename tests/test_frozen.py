"""`@frozen` makes the class `@dataclass(frozen=True)` makes, its methods' code compiled once
across runs (runbook/frozen.py): the same behaviour, the same code, and a kept file that
is used when it is this user's and ignored when it is not."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import subprocess
import sys
from dataclasses import InitVar, field
from pathlib import Path

import pytest

from cutover.record.state import CutoverState
from cutover.runbook.frozen import FILE, frozen
from cutover.runbook.model import Query, Runbook


def sample(decorate):
    """One class body of every kind of field dataclasses writes code for, decorated."""

    @decorate
    class Sample:
        """A sample."""

        name: str
        count: int = 0
        tags: tuple[str, ...] = ()
        extra: dict = field(default_factory=dict, repr=False, compare=False)
        hidden: float = field(default=1.5, init=False)
        seed: InitVar[int | None] = None

        def __post_init__(self, seed: int | None) -> None:
            if seed is not None:
                object.__setattr__(self, "hidden", float(seed))

    return Sample


OURS, THEIRS = sample(frozen), sample(dataclasses.dataclass(frozen=True))


@pytest.mark.parametrize("method", ["__init__", "__repr__", "__eq__", "__hash__", "__setattr__"])
def test_each_method_is_the_code_dataclass_writes(method):
    ours, theirs = getattr(OURS, method), getattr(THEIRS, method)
    assert ours.__code__ == theirs.__code__
    assert ours.__qualname__.replace("OURS", "") == theirs.__qualname__.replace("THEIRS", "")
    # Compiled without this module's or frozen.py's `from __future__ import annotations`.
    assert ours.__annotations__ == theirs.__annotations__


def test_it_behaves_as_a_frozen_dataclass():
    assert str(inspect.signature(OURS)) == str(inspect.signature(THEIRS))
    assert OURS.__dataclass_params__.__repr__() == THEIRS.__dataclass_params__.__repr__()
    assert [f.name for f in dataclasses.fields(OURS)] == [
        "name",
        "count",
        "tags",
        "extra",
        "hidden",
    ]
    a, b = OURS("a", 2, ("x",), seed=7), OURS("a", 2, ("x",), {"other": 1}, seed=7)
    assert a == b and hash(a) == hash(b) and a.hidden == 7.0
    assert repr(a) == repr(THEIRS("a", 2, ("x",), seed=7))
    assert a != OURS("b") and a.extra == {} and a.extra is not OURS("c").extra
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.count = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del a.name
    assert dataclasses.replace(a, count=5, seed=None) == OURS("a", 5, ("x",))
    assert OURS.__match_args__ == THEIRS.__match_args__


def test_the_runbook_and_state_classes_are_frozen_dataclasses():
    for cls in (Runbook, Query, CutoverState):
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
        assert "exec" not in vars(dataclasses)  # frozen's own exec is gone once it is done


PROBE = """
import json, cutover.record.state, cutover.runbook.model, sys
print(json.dumps(sys.modules["cutover.runbook.frozen"].compiled))
"""


def compiled_in_a_fresh_process(cache: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "CUTOVER_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def test_a_second_run_compiles_nothing(tmp_path):
    cache = tmp_path / "cache"
    assert compiled_in_a_fresh_process(cache) > 20  # the model's and the state's classes
    kept = cache / FILE
    assert kept.stat().st_mode & 0o777 == 0o600
    assert compiled_in_a_fresh_process(cache) == 0


def test_a_kept_file_others_can_write_or_garbled_is_compiled_afresh(tmp_path):
    cache = tmp_path / "cache"
    first = compiled_in_a_fresh_process(cache)
    kept = cache / FILE
    kept.chmod(0o666)
    assert compiled_in_a_fresh_process(cache) == first  # not trusted: written anew, 0600
    assert kept.stat().st_mode & 0o777 == 0o600
    kept.write_bytes(b"\x00garbled")
    assert compiled_in_a_fresh_process(cache) == first
    assert compiled_in_a_fresh_process(cache) == 0  # and rewritten whole
