-- =============================================================
-- soulprint cutover · 04 · what failed imports say
-- Read-only. Error messages are grouped by pattern: uuids and numbers
-- are masked (<id>, N) so "timeout after 301s" and "timeout after
-- 305s" count as one pattern; digits inside a name ("v2") are kept, and
-- so are short constants that say which error it is: a status code
-- after HTTP, status or code ("HTTP 404" is not "HTTP 500"), an errno
-- or signal number, and a number alone in parentheses ("(429)").
-- Each message is also classed user | system by the table in every
-- statement below (the same as 01's and 05's): a user's broken export
-- is the user's; anything not listed is the pipeline's.
-- =============================================================

-- Top 10 error patterns, last 24 h
-- Failed imports started in the last 24 h, grouped by error pattern, most frequent
-- first, each with its class (user: the user's own export, left out of the success rate;
-- system: the pipeline's). share_pct is the pattern's share of all failed imports in the
-- window; affected_users is how many users hit it (one import per user, so it equals
-- failures unless the data says otherwise). A pattern that is new or jumps at a new stage
-- is the first thing to read after a rollback.
WITH error_classes (pattern, class) AS (
    VALUES ('Invalid export archive:%',        'user'),
           ('Export is not a ChatGPT export%', 'user'),
           ('Export too large%',               'user')
),
failed AS (
    SELECT user_id,
           EXISTS (SELECT 1 FROM error_classes AS c
                    WHERE c.class = 'user' AND full_pass_error LIKE c.pattern) AS user_error,
           regexp_replace(
               regexp_replace(
                   coalesce(nullif(btrim(full_pass_error), ''), '(no error message)'),
                   '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'gi'),
               '(?<![a-z_0-9])(?<!(?:http|status|code|errno|signal):? )(?<!\()[0-9]+', 'N',
               'gi') AS error_pattern
      FROM user_profiles
     WHERE full_pass_status = 'failed'
       AND full_pass_started_at >= now() - interval '24 hours'
)
SELECT error_pattern,
       CASE WHEN bool_or(user_error) THEN 'user' ELSE 'system' END AS class,
       count(*)                                          AS failures,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS share_pct,
       count(DISTINCT user_id)                           AS affected_users
  FROM failed
 GROUP BY error_pattern
 ORDER BY failures DESC, error_pattern
 LIMIT 10;

-- The raw messages, before masking; kept for digging by hand.
-- SELECT full_pass_error, count(*) AS failures
--   FROM user_profiles
--  WHERE full_pass_status = 'failed'
--    AND full_pass_started_at >= now() - interval '24 hours'
--  GROUP BY full_pass_error
--  ORDER BY failures DESC;

-- New error patterns, last 24 h
-- Error patterns of imports started in the last 24 h that no failed import started in
-- the 7 days before had. Read it, do not gate on it: a pattern that has recurred for
-- 30 hours is no longer "new" here, however wrong it is. The runbook's "no new error
-- types" compares every pattern (statement 4) with the previous stage's baseline instead,
-- and "no systemic errors" counts the users a pattern hits (the next statement).
WITH failed AS (
    SELECT full_pass_started_at AS started_at,
           regexp_replace(
               regexp_replace(
                   coalesce(nullif(btrim(full_pass_error), ''), '(no error message)'),
                   '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'gi'),
               '(?<![a-z_0-9])(?<!(?:http|status|code|errno|signal):? )(?<!\()[0-9]+', 'N',
               'gi') AS error_pattern
      FROM user_profiles
     WHERE full_pass_status = 'failed'
       AND full_pass_started_at >= now() - interval '8 days'
)
SELECT error_pattern,
       count(*)        AS failures,
       min(started_at) AS first_seen
  FROM failed
 GROUP BY error_pattern
HAVING min(started_at) >= now() - interval '24 hours'
 ORDER BY failures DESC, error_pattern;

-- The most widespread error pattern, last 24 h
-- The system error pattern that hit the most distinct users among the imports judged in
-- the last 24 h (complete, failed, or stuck: the success rate's 01 definition, which
-- leaves out users whose import failed on their own export), and what share of those users
-- it hit. One user's broken export is that user's; a pattern hitting a growing share of
-- users is systemic, a fault in the pipeline: the gate holds the share (as an interval,
-- like the success rate) under the runbook's threshold. Always one row: affected_users
-- is 0 and error_pattern NULL when nothing failed.
WITH error_classes (pattern, class) AS (
    VALUES ('Invalid export archive:%',        'user'),
           ('Export is not a ChatGPT export%', 'user'),
           ('Export too large%',               'user')
),
judged AS (
    SELECT user_id,
           full_pass_status AS status,
           full_pass_error  AS error
      FROM user_profiles
     WHERE full_pass_started_at >= now() - interval '24 hours'
       AND (full_pass_status IN ('complete', 'failed')
            OR (full_pass_status = 'processing'
                AND full_pass_started_at < now() - interval '2 hours'))
       AND NOT (full_pass_status = 'failed'
                AND EXISTS (SELECT 1 FROM error_classes AS c
                             WHERE c.class = 'user' AND full_pass_error LIKE c.pattern))
),
patterns AS (
    SELECT regexp_replace(
               regexp_replace(
                   coalesce(nullif(btrim(error), ''), '(no error message)'),
                   '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'gi'),
               '(?<![a-z_0-9])(?<!(?:http|status|code|errno|signal):? )(?<!\()[0-9]+', 'N',
               'gi') AS error_pattern,
           count(DISTINCT user_id)              AS affected_users
      FROM judged
     WHERE status = 'failed'
     GROUP BY 1
),
worst AS (
    SELECT error_pattern, affected_users
      FROM patterns
     ORDER BY affected_users DESC, error_pattern
     LIMIT 1
),
users AS (
    SELECT count(DISTINCT user_id) AS importing_users FROM judged
)
SELECT w.error_pattern,
       coalesce(w.affected_users, 0)                                    AS affected_users,
       u.importing_users,
       round(100.0 * coalesce(w.affected_users, 0) / NULLIF(u.importing_users, 0), 2)
           AS affected_pct
  FROM users AS u
  LEFT JOIN worst AS w ON true;

-- Every system error pattern, last 24 h
-- Each error pattern the pipeline is to blame for (not a user's, by the classes above),
-- once, with its failures: the whole set, never cut at a LIMIT, so that "no new error
-- types" against the previous stage's baseline sees every pattern there is (a top-10 list
-- would hide the 11th, and show an old one as new when it climbs into the ten).
WITH error_classes (pattern, class) AS (
    VALUES ('Invalid export archive:%',        'user'),
           ('Export is not a ChatGPT export%', 'user'),
           ('Export too large%',               'user')
),
failed AS (
    SELECT regexp_replace(
               regexp_replace(
                   coalesce(nullif(btrim(full_pass_error), ''), '(no error message)'),
                   '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'gi'),
               '(?<![a-z_0-9])(?<!(?:http|status|code|errno|signal):? )(?<!\()[0-9]+', 'N',
               'gi') AS error_pattern
      FROM user_profiles
     WHERE full_pass_status = 'failed'
       AND full_pass_started_at >= now() - interval '24 hours'
       AND NOT EXISTS (SELECT 1 FROM error_classes AS c
                        WHERE c.class = 'user' AND full_pass_error LIKE c.pattern)
)
SELECT error_pattern,
       count(*) AS failures
  FROM failed
 GROUP BY error_pattern
 ORDER BY failures DESC, error_pattern;
