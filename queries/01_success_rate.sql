-- =============================================================
-- soulprint cutover · 01 · overall success rate, last 24 h
-- Read-only. Windows on full_pass_started_at; an import is stuck
-- when it is still processing more than 2 h after it started.
-- =============================================================

-- Overall success rate, last 24 h
-- Imports started in the last 24 h that reached an outcome: complete, failed, or stuck
-- (still processing after 2 h, which counts against the rate). Imports still in flight
-- and under 2 h old are not judged yet and show in in_flight_imports only.
-- success_rate_pct = successful / total × 100, NULL when there is nothing to judge.
-- Below 95 % at 10 % traffic: roll back, then read the top errors (04) and the
-- v1-vs-v2 split (05) to see which pipeline is failing.
WITH recent AS (
    SELECT full_pass_status AS status,
           full_pass_status = 'processing'
               AND full_pass_started_at < now() - interval '2 hours' AS stuck
      FROM user_profiles
     WHERE full_pass_started_at >= now() - interval '24 hours'
)
SELECT count(*) FILTER (WHERE status IN ('complete', 'failed') OR stuck) AS total_imports,
       count(*) FILTER (WHERE status = 'complete')                       AS successful_imports,
       count(*) FILTER (WHERE status = 'failed')                         AS failed_imports,
       count(*) FILTER (WHERE stuck)                                     AS stuck_imports,
       count(*) FILTER (WHERE status = 'processing' AND NOT stuck)       AS in_flight_imports,
       round(100.0 * count(*) FILTER (WHERE status = 'complete')
             / NULLIF(count(*) FILTER (WHERE status IN ('complete', 'failed') OR stuck), 0),
             2)                                                          AS success_rate_pct
  FROM recent;
