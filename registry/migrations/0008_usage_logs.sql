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
