"""On the real soulprint schema (no pipeline_version) the observed share can never be
read: a rollback must say so and finish, not sit watching it until --observe runs out and
then exit "WAIT" as if traffic still went to v2."""

from __future__ import annotations

import asyncio

import asyncpg

from moves_world import cli, environ, fake_vercel, kinds, write_runbook

REAL_SCHEMA = """
CREATE TABLE user_profiles (user_id uuid PRIMARY KEY DEFAULT gen_random_uuid());
ALTER TABLE user_profiles
    ADD COLUMN full_pass_status text DEFAULT 'pending',
    ADD COLUMN full_pass_started_at timestamptz,
    ADD COLUMN full_pass_completed_at timestamptz,
    ADD COLUMN full_pass_error text;
"""

NEEDS = 'needs = { pipeline_version = "add it to see the v1/v2 split" }\n'


async def test_a_rollback_on_the_real_schema_says_the_share_cannot_be_watched(tmp_path, empty_dsn):
    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute(REAL_SCHEMA)
    finally:
        await conn.close()
    book = write_runbook(tmp_path, observed=True)
    text = book.read_text().replace(
        'file = "queries/07_v2_share.sql"\n', 'file = "queries/07_v2_share.sql"\n' + NEEDS
    )
    book.write_text(text)
    with fake_vercel() as fake:
        env = environ(fake, dsn=empty_dsn)
        moved = await asyncio.to_thread(cli, book, env, "advance", "--confirm", "10")
        back = await asyncio.to_thread(
            cli, book, env, "rollback", "--yes", "--reason", "drill", "--observe", "8"
        )
    assert moved.code == 0, moved.output
    assert back.code == 0, back.output
    assert (
        "! cannot watch traffic: v2_share: needs column pipeline_version; add it to see the "
        "v1/v2 split" in back.stderr
    )
    assert "does not show it yet" not in back.stderr
    assert kinds(book)[-2:] == ["rollback.intent", "rollback.done"]
