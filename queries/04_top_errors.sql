-- =============================================================
-- soulprint cutover · 04 · what failed imports say
-- Read-only. Error messages are grouped by pattern: uuids and numbers
-- are masked (<id>, N) so "timeout after 301s" and "timeout after
-- 305s" count as one pattern; digits inside a name ("v2") are kept.
-- =============================================================

-- Top 10 error patterns, last 24 h
-- Failed imports started in the last 24 h, grouped by error pattern, most frequent
-- first. share_pct is the pattern's share of all failed imports in the window;
-- affected_users is how many users hit it (one import per user, so it equals failures
-- unless the data says otherwise). A pattern that is new or jumps at a new stage is
-- the first thing to read after a rollback.
WITH failed AS (
    SELECT user_id,
           regexp_replace(
               regexp_replace(
                   coalesce(nullif(btrim(full_pass_error), ''), '(no error message)'),
                   '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'gi'),
               '(?<![a-z_])[0-9]+', 'N', 'gi') AS error_pattern
      FROM user_profiles
     WHERE full_pass_status = 'failed'
       AND full_pass_started_at >= now() - interval '24 hours'
)
SELECT error_pattern,
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
-- the 7 days before had. Any row means the new traffic fails in a way v1 never did:
-- the gate waits for zero rows. Read the pattern, then the v1-vs-v2 split (05).
WITH failed AS (
    SELECT full_pass_started_at AS started_at,
           regexp_replace(
               regexp_replace(
                   coalesce(nullif(btrim(full_pass_error), ''), '(no error message)'),
                   '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'gi'),
               '(?<![a-z_])[0-9]+', 'N', 'gi') AS error_pattern
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
