-- Usage logs (issue 16): reading the audit log page by page, exporting it and archiving old
-- entries; global messages.
--
-- Pages are read newest first by keyset on (created_ms, id) within a scope: a namespace, a
-- repository or the whole installation. Each scope's index carries `kind` too, so a page and
-- the per-day counts of `aggregatelogs` are answered from the index alone.
DROP INDEX log_entry_account;
DROP INDEX log_entry_repository;
DROP INDEX log_entry_time;
CREATE INDEX log_entry_account_page ON log_entry (account_id, created_ms, id, kind);
CREATE INDEX log_entry_repository_page ON log_entry (repository_id, created_ms, id, kind);
CREATE INDEX log_entry_time_page ON log_entry (created_ms, id, kind);
-- The performer filter of a namespace's or the installation's logs.
CREATE INDEX log_entry_performer_page ON log_entry (performer_id, created_ms, id);

-- Entries counted per namespace, repository, kind and hour (0 for "none"), plus each
-- namespace's totals (repository -1) and the installation's (account and repository -1), kept
-- by the audit writer in the transaction that inserts the entries and by rotation when it
-- deletes them: `aggregatelogs` sums whole hours here and counts only the partial hours at the
-- range's ends in `log_entry`, so its cost does not grow with the number of entries.
CREATE TABLE log_count (
    account_id BIGINT NOT NULL,
    repository_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    hour BIGINT NOT NULL,                      -- created_ms / 3600000
    n BIGINT NOT NULL,
    PRIMARY KEY (account_id, repository_id, kind, hour)
);
CREATE INDEX log_count_scope ON log_count (account_id, repository_id, hour);
CREATE INDEX log_count_repository ON log_count (repository_id, hour);
INSERT INTO log_count (account_id, repository_id, kind, hour, n)
    SELECT COALESCE(account_id, 0), COALESCE(repository_id, 0), kind, created_ms / 3600000, COUNT(*)
    FROM log_entry
    GROUP BY COALESCE(account_id, 0), COALESCE(repository_id, 0), kind, created_ms / 3600000;
INSERT INTO log_count (account_id, repository_id, kind, hour, n)
    SELECT COALESCE(account_id, 0), -1, kind, created_ms / 3600000, COUNT(*)
    FROM log_entry
    GROUP BY COALESCE(account_id, 0), kind, created_ms / 3600000;
INSERT INTO log_count (account_id, repository_id, kind, hour, n)
    SELECT -1, -1, kind, created_ms / 3600000, COUNT(*)
    FROM log_entry
    GROUP BY kind, created_ms / 3600000;

-- A requested export of usage logs: a durable job the `exportlogs` worker claims
-- (`claimed_until_ms` is its lease), writes to blob storage and reports to the callback URL or
-- e-mail address. `state` is queued, running, done or failed.
CREATE TABLE log_export (
    id {{ID}},
    export_id TEXT NOT NULL UNIQUE,
    account_id BIGINT,
    namespace_name TEXT NOT NULL,
    repository_id BIGINT,
    repository_name TEXT,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    callback_url TEXT,
    callback_email TEXT,
    link_origin TEXT NOT NULL,                 -- scheme://host of the download link
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    claimed_until_ms BIGINT,
    storage_key TEXT,
    expires_ms BIGINT,
    error TEXT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX log_export_due ON log_export (state, next_attempt_ms);

-- Quay's global messages (`/api/v1/messages`), shown to every user.
CREATE TABLE global_message (
    id {{ID}},
    uuid TEXT NOT NULL UNIQUE,
    content TEXT NOT NULL,
    media_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
