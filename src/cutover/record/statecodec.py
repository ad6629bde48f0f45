"""The replayed state as plain JSON and back, exactly: what a checkpoint keeps. No pickle: only
the state's own dataclasses are rebuilt (by name, from a fixed list, with their fields
checked), and every other value is JSON the journal's events carried, kept with its type
(a tuple stays a tuple, a dict's keys keep theirs, a time stays a time with its offset)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from cutover.record import state as st

# The dataclasses a CutoverState holds, by the name a checkpoint writes: nothing else is
# ever built from one.
CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        st.CutoverState,
        st.SignOff,
        st.Pending,
        st.Override,
        st.AfterRollback,
        st.Raised,
        st.AcceptedGap,
        st.Completed,
        st.KnownDeployment,
        st.Pinned,
    )
}
_FIELDS = {name: {f.name for f in dataclasses.fields(cls)} for name, cls in CLASSES.items()}


class Undecodable(ValueError):
    """The bytes are not a state this version wrote."""


def state_to_dict(state: st.CutoverState) -> dict[str, Any]:
    """The state as JSON-able data. A state carrying a chain problem is never kept: the
    problem belongs to the read, not to the events."""
    if state.chain is not None:
        raise ValueError("a state with a broken chain is not kept")
    return _encode(state)


def state_from_dict(data: Any) -> st.CutoverState:
    """The state back; Undecodable when the data is not one `state_to_dict` made."""
    try:
        found = _decode(data)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        raise Undecodable(f"not a kept state: {exc}") from None
    if not isinstance(found, st.CutoverState):
        raise Undecodable("not a kept state")
    return found


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return {"$f": repr(value)}  # kept exactly (JSON reals would do, but not NaN)
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if CLASSES.get(name) is not type(value):
            raise ValueError(f"{name} is not part of the state")
        return {
            "$c": name,
            "f": {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    if isinstance(value, dict):
        return {"$d": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"$t": [_encode(v) for v in value]}
    if isinstance(value, list):
        return {"$l": [_encode(v) for v in value]}
    raise ValueError(f"a {type(value).__name__} is not part of the state")


def _decode(data: Any) -> Any:
    if data is None or isinstance(data, bool | int | str):
        return data
    if not isinstance(data, dict) or len(data) not in (1, 2):
        raise ValueError(f"unexpected {type(data).__name__}")
    if "$c" in data:
        name = data["$c"]
        fields = data["f"]
        if not isinstance(name, str) or name not in CLASSES or not isinstance(fields, dict):
            raise ValueError(f"unknown class {name!r}")
        if set(fields) != _FIELDS[name]:
            raise ValueError(f"{name} with other fields")
        return CLASSES[name](**{k: _decode(v) for k, v in fields.items()})
    (tag, inner), *_ = data.items()
    if len(data) != 1:
        raise ValueError("unexpected object")
    if tag == "$f" and isinstance(inner, str):
        return float(inner)
    if tag == "$dt" and isinstance(inner, str):
        return datetime.fromisoformat(inner)
    if tag == "$d" and isinstance(inner, list):
        out = {}
        for pair in inner:
            key, value = pair  # a pair, or ValueError
            out[_decode(key)] = _decode(value)
        return out
    if tag == "$t" and isinstance(inner, list):
        return tuple(_decode(v) for v in inner)
    if tag == "$l" and isinstance(inner, list):
        return [_decode(v) for v in inner]
    raise ValueError(f"unknown tag {tag!r}")
