-- =============================================================
-- soulprint cutover · 00 · the v2 migration is in place
-- Read-only. Runs against information_schema, not the data.
-- =============================================================

-- Migration columns present on user_profiles
-- present_columns counts which of the four columns the v2 migration adds exist on
-- user_profiles (in the connection's current schema, public on Supabase):
-- full_pass_status, full_pass_started_at, full_pass_completed_at and full_pass_error.
-- expected_columns is how many there should be; missing_columns names any that are
-- absent. Every validation query reads them: run the migration before advancing.
-- pipeline_version is not one of them: the real schema has no such column. The queries
-- that split v1 from v2 by it wait until it exists and say so; nothing else needs it.
WITH expected (column_name) AS (
    VALUES ('full_pass_status'),
           ('full_pass_started_at'),
           ('full_pass_completed_at'),
           ('full_pass_error')
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
