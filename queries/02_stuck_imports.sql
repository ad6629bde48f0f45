-- =============================================================
-- soulprint cutover · 02 · stuck imports
-- Read-only. Stuck = full_pass_status 'processing' and started more
-- than 2 h ago (a healthy full pass takes minutes, not hours).
-- =============================================================

-- Stuck imports, whatever their age
-- One row per import still processing more than 2 h after it started, longest stuck
-- first, however long ago that was: an import stuck for 30 h is still stuck (the success
-- rate, 01, judges the last 24 h, so it counts only the ones started then). Any row here
-- blocks advance. Check the RLM worker logs on Render for these user_ids; a stuck import
-- does not retry by itself: fail it by hand once it is understood. Only rows still
-- processing are read, a handful: the partial index on them (indexes.sql) finds them.
SELECT user_id,
       full_pass_started_at                                              AS started_at,
       floor(extract(epoch FROM now() - full_pass_started_at) / 60)::int AS minutes_stuck
  FROM user_profiles
 WHERE full_pass_status = 'processing'
   AND full_pass_started_at < now() - interval '2 hours'
 ORDER BY full_pass_started_at
 LIMIT 100;

-- Stuck-import burst, last hour
-- Imports that became stuck within the last hour: still processing, started between
-- 3 h and 2 h ago (each crossed the 2-hour mark in the last 60 minutes).
-- More than 10 means the pipeline is wedging imports faster than users notice:
-- roll back to 0 % now, then look at RLM memory and worker restarts on Render.
SELECT count(*)                  AS newly_stuck_imports,
       min(full_pass_started_at) AS oldest_started_at
  FROM user_profiles
 WHERE full_pass_status = 'processing'
   AND full_pass_started_at <  now() - interval '2 hours'
   AND full_pass_started_at >= now() - interval '3 hours';
