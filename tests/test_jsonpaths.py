"""The JSONPaths a runbook loads are judged without the library when they have an everyday
shape (runbook/jsonpaths.py plain()): every path that shape admits must be one the library
compiles, and every other path is still the library's to judge, with its words."""

from __future__ import annotations

import jsonpath
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cutover.runbook.jsonpaths import PLAIN_MAX, jsonpath_problem, plain

PLAIN = plain()


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(st.from_regex(PLAIN, fullmatch=True).filter(lambda p: len(p) <= PLAIN_MAX))
def test_every_path_of_an_everyday_shape_compiles_in_the_library(path: str) -> None:
    # The shape says "valid" without the library: it must never say so of a path the
    # library then refuses when the query runs. (Found this way: the library refuses a name
    # starting with _ after "..", exponents like 0e-9 and slices like [0,:], all valid RFC
    # 9535; the shape leaves them to the library.)
    jsonpath.compile(path)


@pytest.mark.parametrize(
    "path",
    [
        "$.values[-1].value",
        "$[*].values[-1].value",
        "$.logs[*]",
        "$[0].unit",
        "$[?@ == true]",
        "$[?@ == 'ok']",
        "$..status",
        "$['a b'][0]",
    ],
)
def test_the_shipped_shapes_need_no_library(path: str) -> None:
    assert PLAIN.fullmatch(path)
    assert jsonpath_problem(path) is None


@pytest.mark.parametrize(
    "path", ["$.values[", "$.[[", "$.a b", "$[01]", "$.._x", "$[?@ == 0e-9]", "$[0,:]"]
)
def test_what_the_shape_does_not_admit_is_the_library_s_to_judge(path: str, monkeypatch) -> None:
    assert not PLAIN.fullmatch(path)
    asked = []
    compile_ = jsonpath.compile
    monkeypatch.setattr(jsonpath, "compile", lambda p: asked.append(p) or compile_(p))
    problem = jsonpath_problem(path)
    assert asked == [path]
    try:
        compile_(path)
    except jsonpath.JSONPathError:
        assert problem is not None and problem.startswith("not a JSONPath (")
    else:
        assert problem is None


def test_a_long_path_goes_to_the_library() -> None:
    path = "$" + ".a" * PLAIN_MAX
    assert PLAIN.fullmatch(path)  # an everyday shape, but too long to trust a regex
    assert jsonpath_problem(path) is None
    assert jsonpath_problem(path + "[") is not None
