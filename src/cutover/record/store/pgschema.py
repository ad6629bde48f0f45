"""The Postgres store's schema: versioned, created or upgraded by `cutover store init` (run as
the schema's owner), checked by every process that opens the store. One schema holds every
cutover of an organisation, each under its id.

Append-only where the record must be: events, evidence and snapshots take INSERT and SELECT
(the writer role is granted nothing else) and a trigger refuses UPDATE, DELETE and TRUNCATE
from anyone, the owner included, unless they first drop the trigger, which is itself a
visible act. Seen markers and lock holders are state, not record: they are updated."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import asyncpg

from cutover.record.store.base import StoreProblem, StoreUnavailable

VERSION = 2
# The first key of every advisory lock cutover takes ("cu"), so its locks are told apart from
# an application's in pg_locks; the second is a hash of what is locked.
LOCK_SPACE = 0x6375


def lock_key(schema: str, cutover: str, name: str) -> int:
    """The advisory lock's second key: non-negative, so pg_locks.objid shows it as it is."""
    return zlib.crc32(f"{schema}/{cutover}/{name}".encode()) & 0x7FFFFFFF


def channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of one schema; a payload names the cutover."""
    return f"cutover_{schema}"


# Each version's statements, applied in order inside one transaction. `{s}` is the schema,
# checked by the runbook loader to be a plain lowercase name.
MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE {s}.cutovers (
    id          text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- The journal: one sequence per cutover, each event the exact line that was hashed (what
-- verify reads and export writes back byte for byte); the other columns are for queries.
CREATE TABLE {s}.events (
    cutover  text NOT NULL REFERENCES {s}.cutovers (id),
    seq      bigint NOT NULL CHECK (seq >= 1),
    ts       timestamptz NOT NULL,
    kind     text NOT NULL,
    actor    text NOT NULL,
    host     text NOT NULL,
    hash     text NOT NULL,
    line     text NOT NULL,
    PRIMARY KEY (cutover, seq)
);
CREATE INDEX events_by_kind ON {s}.events (cutover, kind, seq);
-- Evidence: each line of a run as the files store appends it (a run's line is written again
-- as it grows); followers read by id, `evidence --since` and holds by `last`.
CREATE TABLE {s}.evidence (
    id          bigserial PRIMARY KEY,
    cutover     text NOT NULL REFERENCES {s}.cutovers (id),
    run         text NOT NULL,
    what        text NOT NULL,
    name        text NOT NULL,
    stage       text NOT NULL,
    verdict     text NOT NULL,
    first_at    timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    written_by  text NOT NULL,
    line        text NOT NULL
);
CREATE INDEX evidence_follow ON {s}.evidence (cutover, id);
CREATE INDEX evidence_since ON {s}.evidence (cutover, last_at);
CREATE TABLE {s}.snapshots (
    cutover  text NOT NULL REFERENCES {s}.cutovers (id),
    stage    text NOT NULL,
    visit    integer NOT NULL,
    label    text NOT NULL,
    at       timestamptz NOT NULL,
    body     text NOT NULL,
    PRIMARY KEY (cutover, stage, visit, label)
);
CREATE INDEX snapshots_by_label ON {s}.snapshots (cutover, stage, label, visit);
CREATE TABLE {s}.seen (
    cutover  text NOT NULL REFERENCES {s}.cutovers (id),
    who      text NOT NULL,
    at       timestamptz NOT NULL,
    PRIMARY KEY (cutover, who)
);
-- Who holds a lock, kept by the holder; shown only while pg_locks says the advisory lock
-- is held by `backend`, so a row left by a crash never names a holder.
CREATE TABLE {s}.locks (
    cutover  text NOT NULL REFERENCES {s}.cutovers (id),
    name     text NOT NULL,
    actor    text NOT NULL,
    host     text NOT NULL,
    pid      integer NOT NULL,
    what     text NOT NULL,
    since    timestamptz NOT NULL,
    backend  integer NOT NULL,
    PRIMARY KEY (cutover, name)
);
CREATE FUNCTION {s}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cutover: % on %.% refused: the record is append-only',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON {s}.events
    FOR EACH ROW EXECUTE FUNCTION {s}.refuse_change();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON {s}.events
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.refuse_change();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON {s}.evidence
    FOR EACH ROW EXECUTE FUNCTION {s}.refuse_change();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON {s}.evidence
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.refuse_change();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON {s}.snapshots
    FOR EACH ROW EXECUTE FUNCTION {s}.refuse_change();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON {s}.snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.refuse_change();
""",
    # Checkpoints (#20): the state replayed through an event and where the chain stood there,
    # so a reader reads only the events after it. A cache, verified by whoever reads it
    # (record/checkpoint.py), and append-only like the record: a newer one is a new row.
    2: """
CREATE TABLE {s}.checkpoints (
    cutover  text NOT NULL REFERENCES {s}.cutovers (id),
    runbook  text NOT NULL,
    seq      bigint NOT NULL CHECK (seq >= 1),
    made_at  timestamptz NOT NULL DEFAULT now(),
    body     text NOT NULL,
    PRIMARY KEY (cutover, runbook, seq)
);
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON {s}.checkpoints
    FOR EACH ROW EXECUTE FUNCTION {s}.refuse_change();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON {s}.checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.refuse_change();
""",
}


def grants(schema: str, role: str) -> list[str]:
    """What the writer role (every console and watcher) needs, and nothing more: the record
    INSERT and SELECT only; seen markers and lock holders also UPDATE and DELETE."""
    s, r = schema, _ident(role)
    return [
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
        f"GRANT SELECT ON {s}.meta TO {r}",
        f"GRANT SELECT, INSERT ON {s}.cutovers, {s}.events, {s}.evidence, {s}.snapshots, "
        f"{s}.checkpoints TO {r}",
        f"GRANT USAGE ON SEQUENCE {s}.evidence_id_seq TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {s}.seen, {s}.locks TO {r}",
    ]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def version(conn: asyncpg.Connection, schema: str) -> int | None:
    """The schema's version, or None when there is no cutover schema there yet."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.meta")
    if not exists:
        return None
    return await conn.fetchval(f"SELECT max(version) FROM {schema}.meta")


async def init(conn: asyncpg.Connection, schema: str, grant_to: str | None = None) -> list[str]:
    """Create or upgrade the schema to VERSION; what was done, in words. Idempotent, and
    safe to run twice at once (the second waits for the first, then finds nothing to do)."""
    said = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_SPACE, 0)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.meta (version integer NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now(), "
            "applied_by text NOT NULL DEFAULT current_user)"
        )
        at = await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {schema}.meta")
        if at > VERSION:
            raise ValueError(
                f"schema {schema} is at version {at}, newer than this cutover knows "
                f"({VERSION}): upgrade cutover instead"
            )
        for number in range(at + 1, VERSION + 1):
            await conn.execute(MIGRATIONS[number].format(s=schema))
            await conn.execute(f"INSERT INTO {schema}.meta (version) VALUES ($1)", number)
            said.append(f"schema {schema}: version {number} applied")
        if at == VERSION:
            said.append(f"schema {schema} is at version {VERSION}: nothing to do")
        if grant_to:
            for statement in grants(schema, grant_to):
                await conn.execute(statement)
            said.append(
                f"granted {grant_to} what a console and a watcher need (INSERT and SELECT on "
                "the record; seen markers and lock holders also UPDATE and DELETE)"
            )
    return said


def init_now(dsn: str, schema: str, grant_to: str | None, words: Callable[[str], str]) -> list[str]:
    """`cutover store init`: `init` on a connection of its own, its errors in words."""
    from cutover.record.store.pglink import UNPARSED_DSN, UNREACHABLE, run

    async def go() -> list[str]:
        try:
            conn = await asyncpg.connect(dsn, timeout=10, statement_cache_size=0)
        except asyncpg.InterfaceError:
            raise
        except ValueError:  # its words can quote a piece of the DSN: see pglink
            raise asyncpg.InterfaceError(UNPARSED_DSN) from None
        try:
            return await init(conn, schema, grant_to)
        finally:
            await conn.close()

    try:
        return run(go(), 60)
    except UNREACHABLE as exc:
        raise StoreUnavailable(words(str(exc) or type(exc).__name__)) from None
    except asyncpg.PostgresError as exc:
        raise StoreProblem(words(f"the state store refused: {exc}")) from None
    except ValueError as exc:
        raise StoreProblem(str(exc)) from None
