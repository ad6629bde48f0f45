-- =============================================================
-- soulprint cutover · index advice for user_profiles
-- NOT a query, and NEVER applied by cutover: read it, decide with
-- whoever owns the database, and run what you choose by hand, on the
-- primary, one statement at a time (CONCURRENTLY cannot run inside a
-- transaction; it does not block writes while it builds).
--
-- `cutover validate --explain` shows each query's plan and estimated
-- cost on your database (EXPLAIN without ANALYZE: nothing runs), before
-- and after an index, so you can see what a panel will cost.
--
-- Measured on 1,000,000 rows (a week of imports, the last 24 h about
-- 140,000 of them, 2 % failed), freshly vacuumed, 2 cores, with the
-- schema's own indexes (src/cutover/demo/schema.sql) already in place:
-- medians of EXPLAIN ANALYZE's execution time. A freshly vacuumed table
-- is the best case for the covering index below: see its note.
-- =============================================================

-- Failed imports by start time
-- Serves top_errors (04, statement 1: 35 → 10 ms), the failed half of widespread_error
-- (04, statement 3) and new_errors (04, statement 2; there the regular expressions over
-- every failed import of 8 days cost more than finding them, so it gains little).
-- Costs: ~0.5 MB per million rows at 2 % failed (only failed rows are in it), and one
-- index entry written when an import fails.
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_profiles_failed_started_idx
    ON user_profiles (full_pass_started_at)
    WHERE full_pass_status = 'failed';

-- The last day's imports without reading the table
-- Serves success_rate (01: 42 → 18 ms; it is read every 30 s and by the
-- success_below_95 trigger) and duration_histogram (03, statement 1: 110 → 90 ms):
-- both read only these columns of the rows started in their window, so Postgres can
-- answer from the index alone (an index-only scan).
-- Costs: ~47 MB per million rows, and every import's status change writes a new entry
-- (those updates already change indexed columns, so it costs them no HOT update they
-- had). The gain needs the visibility map to be current: rows changed since the last
-- (auto)vacuum are still read from the table, and the last day's rows are the ones that
-- change, so expect less than the figures above on a busy table unless autovacuum
-- visits it often (autovacuum_vacuum_scale_factor for this table, say 0.01).
-- Where user_profiles has pipeline_version (not the real schema: see 05), include it
-- too and v1_vs_v2 (05, statement 1: 86 → 48 ms) is served as well (~56 MB):
--   ... INCLUDE (full_pass_status, full_pass_completed_at, pipeline_version);
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_profiles_started_covering_idx
    ON user_profiles (full_pass_started_at)
    INCLUDE (full_pass_status, full_pass_completed_at);

-- Imports still processing, by start time
-- Serves stuck_imports (02, statement 1), which counts every import processing for more
-- than 2 h whatever its age, stuck_burst (02, statement 2) and in_flight_v2 (08,
-- statement 2): without it each scans the table, since no time window bounds them any
-- more. The rows still processing are a handful at any time.
-- Costs: a few kB (only rows still processing are in it), and an index entry written when
-- an import starts and removed when it ends.
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_profiles_processing_started_idx
    ON user_profiles (full_pass_started_at)
    WHERE full_pass_status = 'processing';

-- Not advised
-- - An index for v1_traffic (05, statement 2): the schema's
--   (pipeline_version, full_pass_started_at) index already serves it since it reads
--   "= 'v1' OR IS NULL": while v1 takes most traffic it counts most rows whatever the
--   index; once v1 is rare (the deprecation stage) it reads a few index entries.
-- - An index for timeline (06): it reads the window by the start and completion time
--   indexes the schema has (86 ms); a partial index on failed imports by
--   coalesce(full_pass_completed_at, full_pass_started_at) only served the version
--   that scanned the table once per hour and column.
-- - An index on the error text for new_errors: the masking regular expressions run on
--   every failed import of 8 days whatever finds them.
