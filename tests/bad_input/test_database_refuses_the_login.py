"""The validation database refusing the login (a password rotated mid-cutover, a role or a
database renamed) is said in words with what to check, never as the driver's class name
(`InvalidAuthorizationSpecificationError: role "…" does not exist`), and never with the
password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from faults.test_infinite_values import runbook_with_infinity
from moves_world import cli, environ, fake_vercel

PASSWORD = "pw-s3cret-rotated"


@pytest.mark.parametrize(
    ("wrong", "said"),
    [
        ("role", 'role "nobody_here" does not exist'),
        ("database", 'database "gone_db" does not exist'),
    ],
)
def test_a_login_the_database_refuses_is_said_with_what_to_check(tmp_path, empty_dsn, wrong, said):
    book = runbook_with_infinity(tmp_path, "1")
    if wrong == "role":
        dsn = empty_dsn.replace("postgres:@", f"nobody_here:{PASSWORD}@")
    else:
        parts = urlsplit(empty_dsn.replace("postgres:@", f"postgres:{PASSWORD}@"))
        dsn = urlunsplit(parts._replace(path="/gone_db"))
    with fake_vercel() as fake:
        env = environ(fake, dsn=dsn)
        text = cli(book, env, "check")
        as_json = cli(book, env, "check", "--json")

    assert text.code == 2 and as_json.code == 2, text.output
    for ran in (text, as_json):
        assert f"the database refused the login: {said}" in ran.output, ran.output
        assert "check the role, password and database name" in ran.output
        assert "Error:" not in ran.output and PASSWORD not in ran.output
