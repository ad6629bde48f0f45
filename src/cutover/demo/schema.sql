-- soulprint: the user_profiles table, as on Supabase after the v2 migration.
-- Used by the test suite and the demo. One user has one profile and so one full-pass
-- import: user_id is the import's key, and a re-import overwrites the row.

CREATE TABLE IF NOT EXISTS user_profiles (
    user_id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    full_pass_status       text NOT NULL DEFAULT 'pending'
        CONSTRAINT user_profiles_full_pass_status_check
        CHECK (full_pass_status IN ('pending', 'processing', 'complete', 'failed')),
    full_pass_started_at   timestamptz,
    full_pass_completed_at timestamptz,
    full_pass_error        text,
    -- The migration column: which pipeline handled the import. Rows from before the
    -- migration were all v1, hence the default.
    pipeline_version       text NOT NULL DEFAULT 'v1'
        CONSTRAINT user_profiles_pipeline_version_check
        CHECK (pipeline_version IN ('v1', 'v2')),
    CONSTRAINT user_profiles_completed_after_started
        CHECK (full_pass_completed_at IS NULL OR full_pass_completed_at >= full_pass_started_at)
);

-- Every validation query windows on the start time (24 h, 7 days, 15 min).
CREATE INDEX IF NOT EXISTS user_profiles_started_at_idx
    ON user_profiles (full_pass_started_at);

-- The stuck-import queries look only at rows still processing, a tiny share of the table.
CREATE INDEX IF NOT EXISTS user_profiles_processing_idx
    ON user_profiles (full_pass_started_at)
    WHERE full_pass_status = 'processing';

-- The hourly timeline and the slow-import trigger window on the completion time.
CREATE INDEX IF NOT EXISTS user_profiles_completed_at_idx
    ON user_profiles (full_pass_completed_at)
    WHERE full_pass_completed_at IS NOT NULL;

-- The deprecation gate counts v1 imports over 7 days.
CREATE INDEX IF NOT EXISTS user_profiles_version_started_idx
    ON user_profiles (pipeline_version, full_pass_started_at);
