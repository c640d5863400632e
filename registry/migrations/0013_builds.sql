-- Builds (issue 14): uploaded build contexts (Quay's "filedrop" user files), repository builds
-- with their durable queue, and the builds' log entries.
--
-- Queue: a build is `waiting` until a build manager claims it (`claimed_by`, a new build token
-- whose hash is `token_hash`, `deadline_ms` = now + SETUP_TIME) in one statement after
-- `FOR UPDATE SKIP LOCKED` on PostgreSQL (the single writer on SQLite), so one replica runs it.
-- A builder that registers moves the deadline forward with each heartbeat; a build whose
-- deadline passed is restarted (`waiting` again, `retries_remaining` - 1) or, with no retries
-- left, ends in `internalerror`.
CREATE TABLE build_file (
    -- The file id handed out by POST /filedrop/ (a random UUID).
    id TEXT PRIMARY KEY,
    mime_type TEXT NOT NULL,
    -- The account that asked for the drop.
    owner_id BIGINT REFERENCES namespace(id) ON DELETE CASCADE,
    -- Set once the PUT stored the bytes (then the file is `userfiles/<id>` in blob storage).
    size BIGINT,
    -- sha256 of the content, hex (its first 7 characters name the build, as in Quay).
    checksum TEXT,
    created_ms BIGINT NOT NULL
);

CREATE TABLE repository_build (
    id {{ID}},
    uuid TEXT NOT NULL UNIQUE,
    repository_id BIGINT NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    -- Quay's BUILD_PHASE values.
    phase TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    display_name TEXT NOT NULL,
    -- JSON: docker_tags, build_subdir, context, manual_user, archive_url, trigger_metadata.
    job_config TEXT NOT NULL,
    -- The filedrop id the build context came from (NULL for archive_url builds).
    resource_key TEXT,
    pull_robot_id BIGINT REFERENCES namespace(id) ON DELETE SET NULL,
    -- The account the build pushes as (the requesting user).
    requester_id BIGINT REFERENCES namespace(id) ON DELETE SET NULL,
    error TEXT,
    -- JSON status the builder reports while it runs (Quay's `status`).
    status_json TEXT NOT NULL DEFAULT '{}',
    -- Queue.
    retries_remaining BIGINT NOT NULL DEFAULT 3,
    claimed_by TEXT,
    token_hash TEXT,
    registered {{BOOL}} NOT NULL DEFAULT FALSE,
    deadline_ms BIGINT,
    -- Which entry of EXECUTORS runs the current attempt, and what it made (a pid, a Job name).
    executor_index BIGINT,
    executor_ref TEXT,
    -- Set when the attempt's executor resources were removed (or kept for DEBUG).
    cleaned {{BOOL}} NOT NULL DEFAULT TRUE,
    completed_ms BIGINT
);

CREATE INDEX repository_build_repo ON repository_build (repository_id, started_ms);
CREATE INDEX repository_build_phase ON repository_build (phase);

CREATE TABLE build_log (
    build_id BIGINT NOT NULL REFERENCES repository_build(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    -- The entry as Quay answers it: {"message": ..., "type": ..., "data": ...}.
    entry TEXT NOT NULL,
    PRIMARY KEY (build_id, seq)
);
