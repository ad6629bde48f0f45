-- =============================================================
-- soulprint cutover · 06 · hourly timeline
-- Read-only. Clock hours; the last row is the hour in progress.
-- =============================================================

-- Hourly timeline, last 6 h
-- Per clock hour: imports started, completed and failed in that hour, and how many of
-- those started then are still processing now. Read it after a flag change: started
-- should hold steady, failed should stay flat, and in_progress should drain within the
-- hour. A climbing in_progress column for older hours means imports are sticking.
WITH hours AS (
    SELECT generate_series(date_trunc('hour', now()) - interval '5 hours',
                           date_trunc('hour', now()),
                           interval '1 hour') AS hour_start
)
SELECT h.hour_start,
       (SELECT count(*) FROM user_profiles AS p
         WHERE p.full_pass_started_at >= h.hour_start
           AND p.full_pass_started_at < h.hour_start + interval '1 hour') AS started,
       (SELECT count(*) FROM user_profiles AS p
         WHERE p.full_pass_status = 'complete'
           AND p.full_pass_completed_at >= h.hour_start
           AND p.full_pass_completed_at < h.hour_start + interval '1 hour') AS completed,
       (SELECT count(*) FROM user_profiles AS p
         WHERE p.full_pass_status = 'failed'
           AND coalesce(p.full_pass_completed_at, p.full_pass_started_at) >= h.hour_start
           AND coalesce(p.full_pass_completed_at, p.full_pass_started_at)
               < h.hour_start + interval '1 hour') AS failed,
       (SELECT count(*) FROM user_profiles AS p
         WHERE p.full_pass_status = 'processing'
           AND p.full_pass_started_at >= h.hour_start
           AND p.full_pass_started_at < h.hour_start + interval '1 hour') AS in_progress
  FROM hours AS h
 ORDER BY h.hour_start;

-- Per 10 minutes instead, for the first hour after a flag change:
-- SELECT date_bin('10 minutes', full_pass_started_at, date_trunc('hour', now())) AS slot,
--        count(*) AS started
--   FROM user_profiles
--  WHERE full_pass_started_at >= now() - interval '1 hour'
--  GROUP BY slot
--  ORDER BY slot;
