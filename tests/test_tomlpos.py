"""Every key of a runbook has a file position, so every runbook error can name line and column."""

from __future__ import annotations

import tomllib

import pytest

from cutover.runbook.tomlpos import Pos, decode_error, key_positions, nearest

RUNBOOK = """\
version = 1
title = "soulprint: v1 → v2 full-pass pipeline"

[flag]                             # where the rollout percent lives
kind = "vercel"
observed = { query = "v2_share", column = "v2_pct" }  # optional

[queries.success_rate]
title = "Overall success rate, last 24 h ≥ 95"
file = "queries/01_success_rate.sql"

[[stages]]
id = "canary"
percent = 10

  [[stages.steps]]
  id = "no_complaints"

  [[stages.steps]]
  id = "rlm_healthy"
  probe = "health"

  [[stages.gates]]
  id = "success"
  op = ">="

[[stages]]
id = "half"
percent = 50

  [[stages.steps]]
  id = "dashboards"

[[triggers]]
id = "success_below_95"
severity = "critical"
"""


@pytest.fixture(scope="module")
def runbook() -> dict:
    tomllib.loads(RUNBOOK)  # the scanner assumes valid TOML; make sure the fixture is
    return key_positions(RUNBOOK)


# --- the runbook ---


def test_top_level_key_has_its_own_and_its_values_position(runbook):
    assert runbook[("version",)] == Pos(1, 1, 1, 11)


def test_table_header_position_is_its_opening_bracket(runbook):
    assert runbook[("queries", "success_rate")] == Pos(8, 1, 8, 1)


def test_key_under_a_table_header_gets_the_tables_path(runbook):
    assert runbook[("queries", "success_rate", "file")] == Pos(10, 1, 10, 8)


def test_columns_count_characters_not_bytes():
    positions = key_positions('t = { a = "→≥", b = 1 }')
    # Counted in UTF-8 bytes, "b" would be at column 21.
    assert positions[("t", "b")] == Pos(1, 17, 1, 21)


def test_inline_table_keys_have_their_own_positions(runbook):
    assert runbook[("flag", "observed")] == Pos(6, 1, 6, 12)
    assert runbook[("flag", "observed", "query")] == Pos(6, 14, 6, 22)
    assert runbook[("flag", "observed", "column")] == Pos(6, 34, 6, 43)


def test_nth_array_of_tables_header_is_element_n(runbook):
    assert (runbook[("stages", 0)].line, runbook[("stages", 1)].line) == (12, 27)
    assert runbook[("stages", 1, "percent")].line == 29


def test_indented_step_headers_count_steps_within_their_own_stage(runbook):
    assert runbook[("stages", 0, "steps", 0)] == Pos(16, 3, 16, 3)
    assert runbook[("stages", 0, "steps", 1, "probe")] == Pos(21, 3, 21, 11)
    assert runbook[("stages", 1, "steps", 0)] == Pos(31, 3, 31, 3)
    assert runbook[("stages", 1, "steps", 0, "id")].line == 32
    assert ("stages", 1, "steps", 1) not in runbook


def test_gates_are_counted_apart_from_steps(runbook):
    assert runbook[("stages", 0, "gates", 0, "op")] == Pos(25, 3, 25, 8)
    assert ("stages", 0, "gates", 1) not in runbook


def test_every_key_tomllib_sees_has_a_position(runbook):
    def paths(value, prefix=()):
        if isinstance(value, dict):
            for key, sub in value.items():
                yield (*prefix, key)
                yield from paths(sub, (*prefix, key))
        elif isinstance(value, list):
            for index, sub in enumerate(value):
                yield (*prefix, index)
                yield from paths(sub, (*prefix, index))

    assert set(paths(tomllib.loads(RUNBOOK))) <= set(runbook)


# --- edge cases ---


def test_dotted_key_is_a_nested_path_and_each_part_has_a_position():
    positions = key_positions("[flag]\nobserved.query = 'v2_share'\n")
    assert positions[("flag", "observed")] == Pos(2, 1, 2, 18)
    assert positions[("flag", "observed", "query")] == Pos(2, 10, 2, 18)


def test_quoted_key_with_a_dot_is_one_key():
    positions = key_positions('"a.b" = 1\n\'c.d\' = 2\n"e\\"f" = 3')
    assert set(positions) == {("a.b",), ("c.d",), ('e"f',)}


def test_nested_inline_tables_give_nested_paths():
    positions = key_positions("x = { a = { b = 1 } }")
    assert positions[("x", "a", "b")] == Pos(1, 13, 1, 17)


def test_array_of_inline_tables_gives_indexed_paths():
    positions = key_positions("x = [{a=1}, {a=2}]")
    assert positions[("x", 0, "a")] == Pos(1, 7, 1, 9)
    assert positions[("x", 1, "a")] == Pos(1, 14, 1, 16)


def test_multiline_array_with_comments_is_one_value():
    text = "x = [\n  1,  # first, [not a table]\n  2,\n]\ny = 3\n"
    positions = key_positions(text)
    assert positions[("x", 1)] == Pos(3, 3, 3, 3)
    assert positions[("y",)] == Pos(5, 1, 5, 5)


@pytest.mark.parametrize("quote", ['"""', "'''"])
def test_brackets_and_equals_inside_multiline_strings_are_not_structure(quote: str):
    text = f"help = {quote}\n[not.a.table]\nfake = 1\n# not a comment{quote}\nreal = 2\n"
    tomllib.loads(text)
    positions = key_positions(text)
    assert set(positions) == {("help",), ("real",)}
    assert positions[("real",)].line == 5


def test_multiline_string_may_end_with_extra_quotes():
    text = 'a = """x""""\nb = 1\n'
    assert tomllib.loads(text) == {"a": 'x"', "b": 1}
    assert key_positions(text)[("b",)] == Pos(2, 1, 2, 5)


def test_escaped_quote_does_not_end_a_basic_string():
    text = 'a = "say \\"b = 1\\"" # c = 2\nd = 3'
    assert set(key_positions(text)) == {("a",), ("d",)}


def test_hash_inside_a_string_is_not_a_comment():
    positions = key_positions('a = "#1"\nb = 2\n')
    assert positions[("b",)] == Pos(2, 1, 2, 5)


def test_crlf_line_endings_give_the_same_columns_as_lf():
    assert key_positions("a = 1\r\nb = 2\r\n") == key_positions("a = 1\nb = 2\n")


# --- nearest ---


def test_nearest_is_the_path_itself_when_present(runbook):
    path = ("stages", 0, "gates", 0, "op")
    assert nearest(runbook, path) == runbook[path]


def test_nearest_falls_back_to_the_longest_present_prefix(runbook):
    # e.g. a missing key: the error points at the table it should be in.
    assert nearest(runbook, ("stages", 1, "gates", 0, "id")) == runbook[("stages", 1)]


def test_nearest_falls_back_to_the_document_start():
    assert nearest({}, ("anything",)) == Pos(1, 1, 1, 1)


# --- decode errors ---


def test_decode_error_gives_line_column_and_message_without_the_suffix():
    with pytest.raises(tomllib.TOMLDecodeError) as caught:
        tomllib.loads('a = 1\nb = "→" x\n')
    line, col, message = decode_error(caught.value)
    assert (line, col) == (2, 9)
    assert "(at" not in message
    assert message


def test_decode_error_uses_lineno_and_colno_when_the_exception_has_them():
    exc = tomllib.TOMLDecodeError("Bad thing (at line 9, column 9)")
    exc.msg, exc.lineno, exc.colno = "Bad thing", 4, 2
    assert decode_error(exc) == (4, 2, "Bad thing")


def test_decode_error_at_end_of_document_points_after_the_last_character():
    text = 'a = 1\nb = "open'
    with pytest.raises(tomllib.TOMLDecodeError) as caught:
        tomllib.loads(text)
    line, col, message = decode_error(caught.value, text)
    assert (line, col) == (2, 10)
    assert "end of document" not in message
