-- Quayside schema, part 5: quota management. Placeholders and conventions as in 0001.
--
-- Sizes are kept incrementally, in the transaction of the content change they account for:
-- `quota_repo_blob` counts, per repository and blob, the manifests of the repository that
-- reference the blob (a blob adds its size to the repository once, when its count leaves 0);
-- `quota_namespace_blob` counts, per namespace and blob, the repositories holding a
-- `quota_repo_blob` row for it (its size adds to the namespace once). `quota_repository_size`
-- and `quota_namespace_size` hold the sums, so a report is one row read.

-- A namespace's quota (at most one per namespace) and its limits.
CREATE TABLE quota (
    id {{ID}},
    namespace_id BIGINT NOT NULL UNIQUE REFERENCES namespace(id) ON DELETE CASCADE,
    limit_bytes BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE quota_limit (
    id {{ID}},
    quota_id BIGINT NOT NULL REFERENCES quota(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,                         -- 'Warning' | 'Reject'
    percent BIGINT NOT NULL,
    UNIQUE (quota_id, kind, percent)
);

CREATE TABLE quota_repo_blob (
    repository_id BIGINT NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    size BIGINT NOT NULL,
    refs BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);

CREATE TABLE quota_namespace_blob (
    namespace_id BIGINT NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    size BIGINT NOT NULL,
    refs BIGINT NOT NULL,
    PRIMARY KEY (namespace_id, digest)
);

CREATE TABLE quota_repository_size (
    repository_id BIGINT PRIMARY KEY REFERENCES repository(id) ON DELETE CASCADE,
    size_bytes BIGINT NOT NULL
);

-- `state` is where the namespace stood against its limits after the last change ('ok',
-- 'warning', 'reject'), so a crossing is reported once.
CREATE TABLE quota_namespace_size (
    namespace_id BIGINT PRIMARY KEY REFERENCES namespace(id) ON DELETE CASCADE,
    size_bytes BIGINT NOT NULL,
    state TEXT NOT NULL DEFAULT 'ok'
);

-- Repositories whose content predates this migration: the backfill worker computes their sizes
-- (QUOTA_BACKFILL) and deletes the row.
CREATE TABLE quota_backfill (
    repository_id BIGINT PRIMARY KEY REFERENCES repository(id) ON DELETE CASCADE
);
INSERT INTO quota_backfill (repository_id)
SELECT DISTINCT repository_id FROM manifest;
