-- Repository notifications (issue 16): what to tell whom when something happens in a repository,
-- the durable queue their deliveries go through, and the in-app notifications of users.
-- Placeholders and conventions as in 0001.

-- One notification of a repository: an event (`repo_push`, ...), a method (`webhook`, ...) with
-- its JSON `config`, the event's JSON `event_config`. `number_of_failures` counts failed
-- deliveries since the last success or reset; at Quay's limit (3) nothing more is delivered.
CREATE TABLE repo_notification (
    id {{ID}},
    uuid TEXT NOT NULL UNIQUE,
    repository_id BIGINT NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    method TEXT NOT NULL,
    title TEXT,
    config TEXT NOT NULL,
    event_config TEXT NOT NULL,
    number_of_failures BIGINT NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL
);
CREATE INDEX repo_notification_event ON repo_notification (repository_id, event);

-- One delivery to make: the event's payload for one notification. A worker claims due rows
-- (`FOR UPDATE SKIP LOCKED` on PostgreSQL; one conditional UPDATE on SQLite) by setting
-- `claimed_until_ms`, so replicas never deliver one twice and a crashed worker's claim lapses.
-- `state`: 'pending' until delivered ('done') or out of attempts ('failed').
CREATE TABLE notification_delivery (
    id {{ID}},
    notification_id BIGINT NOT NULL REFERENCES repo_notification(id) ON DELETE CASCADE,
    event_data TEXT NOT NULL,
    performer TEXT,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    available_ms BIGINT NOT NULL,
    claimed_until_ms BIGINT,
    last_error TEXT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX notification_delivery_due ON notification_delivery (available_ms) WHERE state = 'pending';
CREATE INDEX notification_delivery_notification ON notification_delivery (notification_id);
-- Finished deliveries are forgotten after a week.
CREATE INDEX notification_delivery_created ON notification_delivery (created_ms);

-- Tags an image-expiry notification has been raised for, per expiration: each tag once for
-- each expiration it is given.
CREATE TABLE notification_expiry_sent (
    notification_id BIGINT NOT NULL REFERENCES repo_notification(id) ON DELETE CASCADE,
    tag_id BIGINT NOT NULL REFERENCES tag(id) ON DELETE CASCADE,
    expiration_ms BIGINT NOT NULL,
    PRIMARY KEY (notification_id, tag_id, expiration_ms)
);

-- In-app notifications (`quay_notification`), one row per receiving user; `GET
-- /api/v1/user/notifications` lists them, `PUT .../{uuid}` dismisses one.
CREATE TABLE user_notification (
    id {{ID}},
    uuid TEXT NOT NULL UNIQUE,
    account_id BIGINT NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    organization TEXT,
    metadata TEXT NOT NULL,
    dismissed {{BOOL}} NOT NULL DEFAULT FALSE,
    created_ms BIGINT NOT NULL
);
CREATE INDEX user_notification_account ON user_notification (account_id, created_ms);

-- E-mail addresses allowed to receive a repository's e-mail notifications (Quay verifies each
-- address per repository): `code` is the secret of the confirmation link mailed to it.
CREATE TABLE repo_authorized_email (
    id {{ID}},
    repository_id BIGINT NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    code TEXT NOT NULL UNIQUE,
    confirmed {{BOOL}} NOT NULL DEFAULT FALSE,
    created_ms BIGINT NOT NULL,
    UNIQUE (repository_id, email)
);
