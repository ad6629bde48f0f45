-- =============================================================
-- soulprint cutover · 01 · overall success rate, last 24 h
-- Read-only. Windows on full_pass_started_at; an import is stuck
-- when it is still processing more than 2 h after it started.
-- =============================================================

-- Overall success rate, last 24 h
-- Imports started in the last 24 h that reached an outcome: complete, failed, or stuck
-- (still processing after 2 h, which counts against the rate). Imports still in flight
-- and under 2 h old are not judged yet and show in in_flight_imports only.
-- "User-specific errors don't count toward success rate": a failure whose message the
-- classes below call a user's (a broken export) is left out of total_imports and shows in
-- user_errors only; every other failure is the pipeline's. failed_imports counts those.
-- success_rate_pct = successful / total × 100, NULL when there is nothing to judge.
-- Below 95 % at 10 % traffic: roll back, then read the top errors (04) and the
-- v1-vs-v2 split (05) to see which pipeline is failing.
WITH error_classes (pattern, class) AS (
    -- Error messages (LIKE patterns) → user | system; the same table is in 04 and 05.
    -- Anything not listed is the pipeline's (system): an unknown error counts until
    -- someone says it is a user's.
    VALUES ('Invalid export archive:%',        'user'),
           ('Export is not a ChatGPT export%', 'user'),
           ('Export too large%',               'user')
),
recent AS (
    SELECT full_pass_status AS status,
           full_pass_status = 'processing'
               AND full_pass_started_at < now() - interval '2 hours' AS stuck
      FROM user_profiles
     WHERE full_pass_started_at >= now() - interval '24 hours'
),
-- The users' own failures, read apart: only failed rows have a message to classify, so the
-- pass above reads no message (an index can answer it alone: indexes.sql).
user_failures AS (
    SELECT count(*) AS n
      FROM user_profiles
     WHERE full_pass_status = 'failed'
       AND full_pass_started_at >= now() - interval '24 hours'
       AND EXISTS (SELECT 1 FROM error_classes AS c
                    WHERE c.class = 'user' AND full_pass_error LIKE c.pattern)
),
counted AS (
    SELECT count(*) FILTER (WHERE status IN ('complete', 'failed') OR stuck) AS outcomes,
           count(*) FILTER (WHERE status = 'complete')                       AS successful,
           count(*) FILTER (WHERE status = 'failed')                         AS failed,
           count(*) FILTER (WHERE stuck)                                     AS stuck,
           count(*) FILTER (WHERE status = 'processing' AND NOT stuck)       AS in_flight
      FROM recent
)
SELECT c.outcomes - u.n                                     AS total_imports,
       c.successful                                         AS successful_imports,
       c.failed - u.n                                       AS failed_imports,
       c.stuck                                              AS stuck_imports,
       c.in_flight                                          AS in_flight_imports,
       u.n                                                  AS user_errors,
       round(100.0 * c.successful / NULLIF(c.outcomes - u.n, 0), 2) AS success_rate_pct
  FROM counted AS c, user_failures AS u;
