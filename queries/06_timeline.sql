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
),
-- One pass over the imports that started or finished in the window (both times are
-- indexed), each counted in the hour of the time its column is about; date_trunc's hours
-- are the clock hours the series steps through.
recent AS (
    SELECT full_pass_status                                          AS status,
           date_trunc('hour', full_pass_started_at)                  AS started_hour,
           date_trunc('hour', full_pass_completed_at)                AS completed_hour,
           date_trunc('hour', coalesce(full_pass_completed_at, full_pass_started_at))
               AS ended_hour
      FROM user_profiles
     WHERE full_pass_started_at >= date_trunc('hour', now()) - interval '5 hours'
        OR full_pass_completed_at >= date_trunc('hour', now()) - interval '5 hours'
)
SELECT h.hour_start,
       count(*) FILTER (WHERE r.started_hour = h.hour_start)                 AS started,
       count(*) FILTER (WHERE r.status = 'complete' AND r.completed_hour = h.hour_start)
           AS completed,
       count(*) FILTER (WHERE r.status = 'failed' AND r.ended_hour = h.hour_start)
           AS failed,
       count(*) FILTER (WHERE r.status = 'processing' AND r.started_hour = h.hour_start)
           AS in_progress
  FROM hours AS h
  LEFT JOIN recent AS r ON h.hour_start IN (r.started_hour, r.completed_hour, r.ended_hour)
 GROUP BY h.hour_start
 ORDER BY h.hour_start;

-- Per 10 minutes instead, for the first hour after a flag change:
-- SELECT date_bin('10 minutes', full_pass_started_at, date_trunc('hour', now())) AS slot,
--        count(*) AS started
--   FROM user_profiles
--  WHERE full_pass_started_at >= now() - interval '1 hour'
--  GROUP BY slot
--  ORDER BY slot;

-- Traffic drop, last hour against the five before
-- Imports started in the last 60 minutes, of those started in the last 6 hours, and that
-- share in percent (NULL with none). An even hour is a sixth, 16.7 %; a share far below it
-- means imports stopped arriving (the app failing before it writes a row, a route broken
-- by the flag change): the traffic_drop trigger fires when the share, as an interval, is
-- below half of that. On the real schema only v2 writes these rows, so a rollback to 0 %
-- drops them on purpose: the trigger is live only while traffic is on v2.
SELECT count(*) FILTER (WHERE full_pass_started_at >= now() - interval '1 hour')
           AS started_last_hour,
       count(*)                                                         AS started_6h,
       round(100.0 * count(*) FILTER (WHERE full_pass_started_at >= now() - interval '1 hour')
             / NULLIF(count(*), 0), 1)                                  AS last_hour_pct
  FROM user_profiles
 WHERE full_pass_started_at >= now() - interval '6 hours'
   AND full_pass_started_at <= now();
