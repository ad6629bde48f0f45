-- =============================================================
-- soulprint cutover · 05 · v1 against v2
-- Read-only. Needs user_profiles.pipeline_version ('v1' | 'v2'), which
-- the real soulprint schema does not have: its migration adds only the
-- four full_pass_* columns (00). Without the column these statements
-- WAIT and say so (the runbook lists it in their `needs`); add it to see
-- the split. On the real service only the v2 job writes the full_pass_*
-- columns: a v1 import leaves no row here, so every row is a v2 import
-- and v1 traffic shows only in the RLM's logs (the runbook reads them).
-- The split below is real where the app records both pipelines, as the
-- demo's schema does.
-- =============================================================

-- v1 vs v2 success, last 24 h
-- One row per pipeline, always both, with the same definitions as the overall rate
-- (01): total counts complete, failed and stuck imports, leaving out failures on the
-- user's own export (the classes below, as in 01); success_rate_pct is NULL for a
-- pipeline that judged nothing. v2 markedly below v1 at the same time of day is the
-- clearest sign the new pipeline is at fault: roll back and read its errors (04).
WITH error_classes (pattern, class) AS (
    VALUES ('Invalid export archive:%',        'user'),
           ('Export is not a ChatGPT export%', 'user'),
           ('Export too large%',               'user')
),
pipelines (pipeline_version) AS (
    VALUES ('v1'), ('v2')
),
recent AS (
    SELECT pipeline_version,
           full_pass_status AS status,
           full_pass_status = 'processing'
               AND full_pass_started_at < now() - interval '2 hours' AS stuck
      FROM user_profiles
     WHERE full_pass_started_at >= now() - interval '24 hours'
       AND NOT (full_pass_status = 'failed'
                AND EXISTS (SELECT 1 FROM error_classes AS c
                             WHERE c.class = 'user' AND full_pass_error LIKE c.pattern))
)
SELECT p.pipeline_version,
       count(r.status) FILTER (WHERE r.status IN ('complete', 'failed') OR r.stuck)
           AS total_imports,
       count(r.status) FILTER (WHERE r.status = 'complete') AS successful_imports,
       count(r.status) FILTER (WHERE r.status = 'failed')   AS failed_imports,
       count(r.status) FILTER (WHERE r.stuck)               AS stuck_imports,
       round(100.0 * count(r.status) FILTER (WHERE r.status = 'complete')
             / NULLIF(count(r.status) FILTER (WHERE r.status IN ('complete', 'failed')
                                                 OR r.stuck), 0),
             2) AS success_rate_pct
  FROM pipelines AS p
  LEFT JOIN recent AS r ON r.pipeline_version = p.pipeline_version
 GROUP BY p.pipeline_version
 ORDER BY p.pipeline_version;

-- v1 traffic, last 7 days
-- Imports recorded here as v1 in the last 7 days, and the latest one. Not the deprecation
-- gate: on the real service the v1 path writes nothing to user_profiles, so zero here
-- proves nothing; the gate counts "[DEPRECATED] /process-full called" in the RLM's logs.
-- Where the app does record v1 imports here, any of them means a client still calls v1
-- (a stale deployment, a cached bundle, a script). An import with no recorded version
-- counts as v1: only a recorded 'v2' proves otherwise.
SELECT count(*)                  AS v1_imports_7d,
       max(full_pass_started_at) AS last_v1_started_at
  FROM user_profiles
 -- The column holds 'v1', 'v2' or NULL (the migration's CHECK): this is "IS DISTINCT FROM
 -- 'v2'" written so the (pipeline_version, full_pass_started_at) index finds the rows.
 -- Once v1 is rare, when this is read, that is a few index entries, not a table scan.
 WHERE (pipeline_version = 'v1' OR pipeline_version IS NULL)
   AND full_pass_started_at >= now() - interval '7 days';
