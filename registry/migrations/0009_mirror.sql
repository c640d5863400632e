-- Repository mirroring (issue 13). The repository's `state` (NORMAL, READ_ONLY, MIRROR) is in
-- 0001. One mirror configuration per repository; the upstream credentials are sealed with the
-- installation key (as proxy-cache credentials are) and never stored in the clear.
--
-- Scheduling: a mirror is due when it is enabled, its repository is in the MIRROR state and
-- either `sync_start_ms` (and `retry_after_ms`) has passed or `sync_status` is SYNC_NOW; a worker claims it by setting
-- `sync_status` to SYNCING, `claimed_by` and the lease `sync_expiration_ms` in one statement, so
-- one replica syncs it; a claim whose lease ran out (a crashed worker) may be claimed again.
CREATE TABLE repo_mirror (
    repository_id BIGINT PRIMARY KEY REFERENCES repository(id) ON DELETE CASCADE,
    is_enabled {{BOOL}} NOT NULL DEFAULT TRUE,
    external_reference TEXT NOT NULL,
    username_sealed TEXT,
    password_sealed TEXT,
    verify_tls {{BOOL}} NOT NULL DEFAULT TRUE,
    unsigned_images {{BOOL}} NOT NULL DEFAULT FALSE,
    -- {"http_proxy": ..., "https_proxy": ..., "no_proxy": ...} as given, or NULL.
    proxy_json TEXT,
    sync_interval_s BIGINT NOT NULL,
    -- The next scheduled sync.
    sync_start_ms BIGINT NOT NULL,
    -- While SYNCING: until when the claim holds.
    sync_expiration_ms BIGINT,
    sync_retries_remaining BIGINT NOT NULL DEFAULT 3,
    -- After a failure with retries left: not before this time (the next worker pass).
    retry_after_ms BIGINT,
    sync_status TEXT NOT NULL DEFAULT 'NEVER_RUN',
    -- What the last sync reported (the failure's reason), for logs and the operator.
    sync_message TEXT,
    claimed_by TEXT,
    -- The robot whose name the mirror pushes under (NULL once that robot is deleted).
    robot_account_id BIGINT REFERENCES namespace(id) ON DELETE SET NULL,
    -- JSON array of tag globs (Quay's root_rule of kind tag_glob_csv).
    rule_value TEXT NOT NULL,
    skopeo_timeout_s BIGINT NOT NULL DEFAULT 300,
    architecture_filter TEXT NOT NULL DEFAULT '[]',
    created_ms BIGINT NOT NULL
);

CREATE INDEX repo_mirror_due ON repo_mirror (sync_start_ms);
