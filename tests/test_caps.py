"""A row as cutover keeps it: the quick way through cap_row (every cell a short text or a plain
scalar) gives exactly what capping each cell gives, whatever the row holds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from cutover.sources.caps import cap_cell, cap_row


class Label(str):
    """A str subclass: not one of the exact types the quick path trusts."""


CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.decimals(allow_nan=False),
    st.datetimes(),
    st.dates(),
    st.timedeltas(),
    st.uuids(),
    st.text(max_size=12),
    st.text(max_size=12).map(Label),
    st.binary(max_size=12),
    st.lists(st.integers(), max_size=6),
    st.tuples(st.text(max_size=4)),
)


@given(st.lists(CELLS, max_size=6), st.integers(min_value=1, max_value=10))
def test_a_row_is_capped_as_its_cells_are(row, limit):
    expected = tuple(cap_cell(v, limit) for v in row)
    got = cap_row(row, limit)
    assert got == expected
    assert [type(v) for v in got] == [type(v) for v in expected]


def test_a_long_text_after_plain_cells_is_still_cut():
    long = "x" * 5_000
    row = (1, dt.datetime(2026, 1, 1), Decimal("1.5"), UUID(int=0), None, long)
    got = cap_row(row)
    assert got[:5] == row[:5]
    assert got[5] == "x" * 2_000 + "… (5,000 chars)"
