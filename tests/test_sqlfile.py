"""A .sql file as teams keep it reads into the statements, headings and positions it holds."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from cutover.runbook import sqlguard
from cutover.runbook.sqlfile import Statement, read_only_problem, read_sql_file, split_statements

TEAM_FILE = """\
-- =====================================
-- soulprint cutover: validation queries
-- =====================================

-- Success rate, last 24 h
-- Total, successful, failed and stuck imports; success % is NULL with no rows.
SELECT count(*) AS total_imports,
       count(*) FILTER (WHERE status = 'done') AS successful_imports
  FROM imports
 WHERE created_at > now() - interval '24 hours';

-- Old version, kept for reference:
-- SELECT count(*) FROM imports_v1;

/* V2 share
 * Share of imports served by v2, in percent. */
SELECT 100.0 * avg((pipeline = 'v2')::int) AS v2_pct FROM imports
"""


def one(sql: str) -> Statement:
    statements = split_statements(sql)
    assert len(statements) == 1, statements
    return statements[0]


# --- splitting ---


def test_team_file_holds_two_statements_and_skips_the_commented_out_one():
    statements = split_statements(TEAM_FILE)
    assert [s.index for s in statements] == [1, 2]
    assert statements[0].text.startswith("SELECT count(*) AS total_imports")
    assert statements[0].text.endswith("interval '24 hours'")
    assert statements[1].text.startswith("SELECT 100.0")


def test_nearest_comment_paragraph_is_the_title_not_the_file_banner():
    first = split_statements(TEAM_FILE)[0]
    assert first.title == "Success rate, last 24 h"
    assert first.help == (
        "Total, successful, failed and stuck imports; success % is NULL with no rows."
    )


def test_block_comment_heading_gives_title_and_help_without_its_margin():
    second = split_statements(TEAM_FILE)[1]
    assert second.title == "V2 share"
    assert second.help == "Share of imports served by v2, in percent."


def test_heading_separated_from_its_statement_by_a_blank_line_still_counts():
    stmt = one("-- Stuck imports\n\nSELECT 1")
    assert stmt.title == "Stuck imports"
    assert stmt.help == ""


def test_statement_without_a_comment_above_has_no_title():
    stmt = split_statements("SELECT 1;\nSELECT 2;")[1]
    assert stmt.title is None
    assert stmt.help == ""


def test_comment_trailing_the_previous_statement_is_not_the_next_ones_title():
    stmt = split_statements("SELECT 1; -- one\nSELECT 2;")[1]
    assert stmt.title is None


def test_decorative_lines_are_not_title_or_help():
    stmt = one("-- ----------\n-- Failed imports\n-- **********\n-- by error code\nSELECT 1")
    assert stmt.title == "Failed imports"
    assert stmt.help == "by error code"


def test_comment_inside_the_statement_stays_in_its_text():
    stmt = one("SELECT a, -- the key\n  b FROM t;")
    assert stmt.text == "SELECT a, -- the key\n  b FROM t"


def test_trailing_comment_before_the_semicolon_is_not_part_of_the_text():
    # Otherwise wrapping the text (as a prepare or a subquery would) comments out the rest.
    assert one("SELECT 1 -- note\n;").text == "SELECT 1"


def test_last_statement_needs_no_semicolon():
    statements = split_statements("SELECT 1;\nSELECT 2\n")
    assert [s.text for s in statements] == ["SELECT 1", "SELECT 2"]


def test_file_of_only_comments_has_no_statements():
    assert split_statements("-- SELECT 1;\n/* SELECT 2; */\n;\n  ;") == []


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'a;b'",
        "SELECT 'it''s; fine'",
        "SELECT E'it\\'s; fine'",
        'SELECT 1 AS "odd;name"',
        'SELECT 1 AS "a""; b"',
        "SELECT $$ a; b $$",
        "SELECT $fn$ a; $$ ; b $fn$",
        "SELECT 1 /* a; /* nested; */ still; */ + 1",
    ],
    ids=[
        "single_quoted",
        "doubled_quote_escape",
        "e_string_backslash_escape",
        "double_quoted_identifier",
        "doubled_double_quote",
        "dollar_quoted",
        "tagged_dollar_quoted_containing_plain_dollars",
        "nested_block_comment",
    ],
)
def test_semicolon_inside_quotes_or_comments_does_not_split(sql: str):
    assert one(sql + ";").text == sql


def test_semicolon_inside_dollar_quoted_body_does_not_split():
    sql = "DO $body$ BEGIN PERFORM 1; PERFORM 2; END $body$"
    assert one(sql).text == sql


def test_positional_parameter_is_not_a_dollar_quote():
    statements = split_statements("SELECT $1; SELECT $2")
    assert [s.text for s in statements] == ["SELECT $1", "SELECT $2"]


def test_statement_starting_mid_line_knows_its_line_and_column():
    stmt = split_statements("SELECT 1;\n\n   SELECT 2;")[1]
    assert (stmt.line, stmt.col) == (3, 4)


def test_columns_count_characters_not_bytes():
    stmt = split_statements("SELECT '→≥'; SELECT 2")[1]
    assert (stmt.line, stmt.col) == (1, 14)


# --- positions ---


def test_error_position_on_the_first_line_is_offset_from_the_statements_column():
    stmt = split_statements("SELECT 1;  SELECT nope FROM t")[1]
    assert stmt.col == 12
    # Postgres: position 8 is the 'n' of "nope".
    assert stmt.file_position(8) == (1, 19)


def test_error_position_on_a_later_line_counts_from_that_lines_start():
    source = "-- Heading\n    SELECT a,\n           b\n      FROM t\n  ORDER BY total"
    stmt = one(source)
    position = stmt.text.index("total") + 1
    line, col = stmt.file_position(position)
    assert source.split("\n")[line - 1][col - 1 :].startswith("total")
    assert (line, col) == (5, 12)


def test_error_position_past_the_end_is_clamped_to_just_after_the_text():
    stmt = one("SELECT 1")
    assert stmt.file_position(999) == (1, 9)
    assert stmt.file_position(0) == (1, 1)


# --- keyword and file ---


@pytest.mark.parametrize(
    ("sql", "keyword"),
    [("select 1", "SELECT"), ("  with x as (select 1) table x", "WITH"), ("(SELECT 1)", "SELECT")],
)
def test_keyword_is_the_first_word_upper_case(sql: str, keyword: str):
    assert one(sql).keyword == keyword


def test_read_sql_file_reads_utf8(tmp_path: Path):
    path = tmp_path / "q.sql"
    path.write_text("-- Pfeil → rechts\nSELECT '≥';\n", encoding="utf-8")
    [stmt] = read_sql_file(path)
    assert stmt.title == "Pfeil → rechts"
    assert stmt.text == "SELECT '≥'"
    assert (stmt.line, stmt.col) == (2, 1)


# --- read-only (by Postgres's own parser) ---


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT updated_at, deleted_by FROM imports",
        "SELECT 'DELETE FROM x' AS hint",
        'SELECT "update" FROM t',
        "SELECT 1 -- DROP TABLE imports",
        "SELECT $$INSERT$$",
        "WITH recent AS (SELECT * FROM imports) SELECT count(*) FROM recent",
        "VALUES (1), (2)",
        "TABLE imports",
        "SELECT format_for_update FROM t",
        # A column that happens to be called like a keyword is a read, not a TRUNCATE.
        "SELECT 1 FROM t WHERE EXISTS (SELECT 1) AND x IN (SELECT 2) OR truncate",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "SELECT now(), clock_timestamp() - interval '1 hour'",
    ],
)
def test_read_only_queries_are_allowed(sql: str):
    assert read_only_problem(one(sql)) is None


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("DELETE FROM imports", "DELETE"),
        ("update imports SET x = 1", "UPDATE"),
        ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN"),
        ("SET statement_timeout = 0", "SET"),
        ("WITH x AS (SELECT 1) DELETE FROM imports", "DELETE"),
        ("DO $$ BEGIN PERFORM 1; END $$", "DO"),
        ("CALL refresh_stats()", "CALL"),
        ("COPY imports TO STDOUT", "COPY"),
        ("LISTEN imports", "LISTEN"),
        ("NOTIFY imports", "NOTIFY"),
    ],
)
def test_a_statement_that_is_not_a_query_is_refused_by_name(sql: str, named: str):
    problem = read_only_problem(one(sql))
    assert problem is not None
    assert named in problem


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("WITH gone AS (DELETE FROM imports RETURNING *) SELECT * FROM gone", "DELETE"),
        ("WITH t AS (INSERT INTO log VALUES (1) RETURNING 1) SELECT 1", "INSERT"),
        (
            "WITH a AS (WITH b AS (UPDATE t SET x = 1 RETURNING 1) SELECT * FROM b) SELECT 1",
            "UPDATE",
        ),
    ],
)
def test_a_data_modifying_cte_is_refused_by_name(sql: str, named: str):
    problem = read_only_problem(one(sql))
    assert problem is not None
    assert named in problem


def test_select_into_is_refused_because_it_creates_a_table():
    problem = read_only_problem(one("SELECT * INTO backup FROM imports"))
    assert problem is not None
    assert "INTO" in problem


@pytest.mark.parametrize(
    "clause", ["FOR UPDATE", "FOR SHARE", "FOR NO KEY UPDATE", "FOR KEY SHARE"]
)
def test_locking_clause_is_refused_by_name(clause: str):
    problem = read_only_problem(one(f"SELECT * FROM imports {clause.lower()} SKIP LOCKED"))
    assert problem is not None
    assert clause in problem


def test_a_locking_clause_in_a_subquery_is_refused_too():
    problem = read_only_problem(one("SELECT * FROM (SELECT * FROM imports FOR UPDATE) AS x"))
    assert problem is not None
    assert "FOR UPDATE" in problem


def test_two_statements_in_one_text_are_refused():
    stmt = Statement(1, "SELECT 1; SELECT 2", None, "", 1, 1)
    problem = read_only_problem(stmt)
    assert problem is not None
    assert "one statement" in problem


def test_sql_that_does_not_parse_is_named_with_postgres_words():
    problem = read_only_problem(one("SELECT 1 FRM imports"))
    assert problem is not None
    assert "not valid SQL: syntax error" in problem


def test_a_refusal_points_at_the_call_in_the_file():
    [stmt] = split_statements("-- t\nSELECT a,\n       dblink('x', 'y')\n  FROM t;\n")
    refused = sqlguard.refusal(stmt.text)
    assert refused is not None
    assert stmt.position_of(refused.offset) == (3, 8)


def test_a_file_with_a_byte_order_mark_reads_like_one_without(tmp_path: Path):
    path = tmp_path / "q.sql"
    path.write_bytes(codecs.BOM_UTF8 + b"-- One\nSELECT 1;\n")
    [stmt] = read_sql_file(path)
    assert (stmt.title, stmt.text, stmt.line, stmt.col) == ("One", "SELECT 1", 2, 1)


def test_identifier_and_dollar_tag_patterns_accept_what_postgres_does_on_every_code_point():
    # The patterns are written as "all but the ASCII that may not appear" (cheap to compile);
    # they must accept exactly what the plain Unicode ranges do.
    import re

    from cutover.runbook import sqlfile

    word = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*")
    tag = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")
    differ = []
    for point in range(0x110000):
        c = chr(point)
        for text in (c, "a" + c):
            if bool(word.fullmatch(text)) != bool(sqlfile._WORD.fullmatch(text)):
                differ.append(("word", text))
        for text in ("$" + c + "$", "$a" + c + "$"):
            if bool(tag.fullmatch(text)) != bool(sqlfile._DOLLAR_TAG.fullmatch(text)):
                differ.append(("tag", text))
    assert differ == []
