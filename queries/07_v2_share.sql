-- =============================================================
-- soulprint cutover · 07 · the share of traffic v2 actually gets
-- Read-only. Needs user_profiles.pipeline_version, which the real
-- schema lacks (see 05): without it the share waits, saying so. The
-- console compares v2_pct with the flag's percent after every change.
-- =============================================================

-- Observed v2 share, last 15 min
-- Of the imports started in the last 15 minutes, how many went to v2, in percent
-- (NULL with no imports). The app routes each import to v2 with probability
-- V2_ROLLOUT_PERCENT/100, so expect the flag's percent give or take chance: with few
-- imports the share is noisy, so look at imports before judging. A share stuck at the
-- old percent after a change means the redeploy did not take: check Vercel.
SELECT count(*)                                         AS imports,
       count(*) FILTER (WHERE pipeline_version = 'v2') AS v2_imports,
       count(*) FILTER (WHERE pipeline_version = 'v1') AS v1_imports,
       -- Not rounded: after a rollback, one v2 import in thousands must not read as 0.
       (100.0 * count(*) FILTER (WHERE pipeline_version = 'v2')
             / NULLIF(count(*), 0))::float8            AS v2_pct
  FROM user_profiles
 -- $1: "since when". The console leaves it NULL (the last 15 minutes); after a rollback
 -- it passes the rollback's time, so only imports started afterwards count.
 WHERE full_pass_started_at >= coalesce($1::timestamptz, now() - interval '15 minutes');
