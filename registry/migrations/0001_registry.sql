-- Quayside schema, part 1: namespaces, repositories, blobs, uploads, manifests, tags, tokens.
-- Written once for both backends: {{ID}}, {{BLOB}}, {{BOOL}} are filled in per backend at startup.
-- Times are milliseconds since the Unix epoch (BIGINT); booleans are {{BOOL}} (INTEGER 0/1 on SQLite).

CREATE TABLE namespace (
    id {{ID}},
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,                         -- 'user' | 'org'
    email TEXT,
    password_hash TEXT,
    enabled {{BOOL}} NOT NULL DEFAULT TRUE,
    superuser {{BOOL}} NOT NULL DEFAULT FALSE,
    tag_expiration_s BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE repository (
    id {{ID}},
    namespace_id BIGINT NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    visibility TEXT NOT NULL DEFAULT 'private', -- 'private' | 'public'
    description TEXT,
    kind TEXT NOT NULL DEFAULT 'image',
    state TEXT NOT NULL DEFAULT 'NORMAL',
    created_ms BIGINT NOT NULL,
    UNIQUE (namespace_id, name)
);

-- Content-addressed blobs, shared by every repository. A row exists only once the bytes are
-- stored under the digest's key and verified.
CREATE TABLE blob (
    digest TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);

-- Which repositories may serve a blob (uploaded to, mounted into, or pulled through).
CREATE TABLE repo_blob (
    repository_id BIGINT NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    digest TEXT NOT NULL REFERENCES blob(digest),
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repo_blob_digest ON repo_blob (digest);

-- Unfinished uploads; each PATCH (or the final PUT body) is one stored part.
CREATE TABLE upload (
    uuid TEXT PRIMARY KEY,
    repository_id BIGINT NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    size BIGINT NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX upload_updated ON upload (updated_ms);

CREATE TABLE upload_part (
    upload_uuid TEXT NOT NULL REFERENCES upload(uuid) ON DELETE CASCADE,
    start_offset BIGINT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (upload_uuid, start_offset)
);

CREATE TABLE manifest (
    id {{ID}},
    repository_id BIGINT NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    artifact_type TEXT,
    subject_digest TEXT,
    config_digest TEXT,
    annotations TEXT,                           -- JSON object, for the referrers API
    size BIGINT NOT NULL,                       -- length of content
    content {{BLOB}} NOT NULL,
    created_ms BIGINT NOT NULL,
    deleted_ms BIGINT,                          -- deleted through /v2; kept for the time machine
    UNIQUE (repository_id, digest)
);
CREATE INDEX manifest_subject ON manifest (repository_id, subject_digest);

-- Blobs a manifest references (config and layers).
CREATE TABLE manifest_blob (
    manifest_id BIGINT NOT NULL REFERENCES manifest(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    PRIMARY KEY (manifest_id, digest)
);
CREATE INDEX manifest_blob_digest ON manifest_blob (digest);

-- Child manifests of an index / manifest list.
CREATE TABLE manifest_child (
    manifest_id BIGINT NOT NULL REFERENCES manifest(id) ON DELETE CASCADE,
    child_digest TEXT NOT NULL,
    PRIMARY KEY (manifest_id, child_digest)
);

-- Tags with lifetimes: a tag is live while end_ms IS NULL (and its expiration, if any, is in
-- the future). Moving or deleting a tag ends the lifetime; history keeps every lifetime.
CREATE TABLE tag (
    id {{ID}},
    repository_id BIGINT NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    manifest_id BIGINT NOT NULL REFERENCES manifest(id) ON DELETE CASCADE,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT,
    expiration_ms BIGINT,
    reversion {{BOOL}} NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX tag_live ON tag (repository_id, name) WHERE end_ms IS NULL;
CREATE INDEX tag_history ON tag (repository_id, name, start_ms);
CREATE INDEX tag_manifest ON tag (manifest_id);

-- OAuth-style access tokens (e.g. the one /api/v1/user/initialize returns). Only a SHA-256 of
-- the token is stored.
CREATE TABLE access_token (
    id {{ID}},
    token_hash TEXT NOT NULL UNIQUE,
    namespace_id BIGINT NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT
);

-- Installation-wide settings that all replicas share (e.g. the generated token signing key).
CREATE TABLE instance_setting (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Leases that let exactly one replica run a periodic worker at a time.
CREATE TABLE worker_lease (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
