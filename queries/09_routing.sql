-- =============================================================
-- soulprint cutover · 09 · where imports went, from the rows
-- Read-only. Works on the real schema, where only the v2 job writes
-- the full_pass_* columns (every such row is a v2 import and v1 leaves
-- none), and on one that records pipeline_version too (the demo's):
-- to_jsonb reads the column when the table has it, NULL when not. The
-- runbook's routed_share adds the v1 calls the RLM logs (Render's logs
-- API) to tell the share the flag gives v2, the day it is set.
-- =============================================================

-- Imports recorded as v2 and as v1, last hour
-- Imports started in the last hour (or since $1, the latest rollback's time, when the
-- share is watched falling after one): v2_imports are rows the v2 job wrote (every row on
-- the real schema), v1_imports rows recorded as v1 (always 0 on the real schema, where v1
-- traffic is only in the RLM's logs). The same hour as the logs API's default window.
SELECT count(*) FILTER (WHERE coalesce(to_jsonb(p) ->> 'pipeline_version', 'v2') = 'v2')
           AS v2_imports,
       count(*) FILTER (WHERE to_jsonb(p) ->> 'pipeline_version' = 'v1')  AS v1_imports
  FROM user_profiles AS p
 WHERE full_pass_started_at >= coalesce($1::timestamptz, now() - interval '1 hour');
