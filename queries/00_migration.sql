-- =============================================================
-- soulprint cutover · 00 · the v2 migration is in place
-- Read-only. Runs against information_schema, not the data.
-- =============================================================

-- Migration columns present on user_profiles
-- present_columns counts which of the columns the cutover reads exist on user_profiles
-- (in the connection's current schema, public on Supabase); expected_columns is how
-- many there should be. missing_columns names any that are absent: pipeline_version
-- missing means the migration has not run, and the v1-vs-v2 comparison, the observed
-- v2 share and the deprecation gate cannot work. Run the migration before advancing.
WITH expected (column_name) AS (
    VALUES ('user_id'),
           ('full_pass_status'),
           ('full_pass_started_at'),
           ('full_pass_completed_at'),
           ('full_pass_error'),
           ('pipeline_version')
)
SELECT count(c.column_name)                    AS present_columns,
       count(*)                                AS expected_columns,
       string_agg(e.column_name, ', ' ORDER BY e.column_name)
           FILTER (WHERE c.column_name IS NULL) AS missing_columns
  FROM expected AS e
  LEFT JOIN information_schema.columns AS c
         ON c.table_schema = current_schema()
        AND c.table_name = 'user_profiles'
        AND c.column_name = e.column_name;
