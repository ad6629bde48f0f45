-- =============================================================
-- soulprint cutover · 08 · after a rollback
-- Read-only. The rollback checklist's gates. Both work on the real
-- schema, which has no pipeline_version (only the v2 job writes the
-- full_pass_* columns, so every such row is a v2 import), and on the
-- demo's, where only rows recorded as v2 count: to_jsonb reads the
-- column when the table has it and yields NULL when it does not.
-- =============================================================

-- v2 imports since the rollback
-- Imports that went to v2 since the latest rollback ($1, the rollback's time, which the
-- session passes; before any rollback, the last 15 minutes). After a verified rollback
-- to 0 % this must stay at 0: a v2 import now means the rollback did not reach the app
-- (a redeploy not live, a cached bundle, a client calling v2 by itself).
SELECT count(*)                  AS v2_imports,
       max(full_pass_started_at) AS last_v2_started_at
  FROM user_profiles AS p
 WHERE full_pass_started_at >= coalesce($1::timestamptz, now() - interval '15 minutes')
   AND coalesce(to_jsonb(p) ->> 'pipeline_version', 'v2') = 'v2';

-- In-flight v2 imports
-- v2 imports still processing, stuck (over 2 h) or not, whenever they started (one stuck
-- for 30 h is still in flight), and the oldest. After a rollback no new import goes to v2,
-- so this only falls: read it every 30 minutes until it is 0, every in-flight v2 job
-- finished or failed. A stuck one does not finish by itself: look it up in the RLM's logs
-- on Render and fail it by hand.
SELECT count(*)                                                        AS in_flight_imports,
       count(*) FILTER (WHERE full_pass_started_at < now() - interval '2 hours')
           AS stuck_imports,
       min(full_pass_started_at)                                       AS oldest_started_at
  FROM user_profiles AS p
 WHERE full_pass_status = 'processing'
   AND coalesce(to_jsonb(p) ->> 'pipeline_version', 'v2') = 'v2';
