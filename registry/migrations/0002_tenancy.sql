-- Quayside schema, part 2: Quay's tenancy model. Robots, teams, repository permissions, default
-- permissions (prototypes), team invitations, OAuth applications and their tokens, stars and the
-- audit log.
--
-- Accounts share the `namespace` table as in Quay: kind 'user', 'org' or 'robot'. A robot's row
-- is named `owner+shortname` (a `+` never appears in user or organization names) and has a
-- `robot` row with what only robots have. Permissions and team memberships point at account ids,
-- so users and robots are granted access the same way.

CREATE TABLE robot (
    account_id BIGINT PRIMARY KEY REFERENCES namespace(id) ON DELETE CASCADE,
    owner_id BIGINT NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
    shortname TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    unstructured_metadata TEXT,                 -- JSON object
    token_sealed TEXT NOT NULL,                 -- the token, encrypted with the installation key
    token_hash TEXT NOT NULL,                   -- SHA-256 of the token, compared in constant time
    federation TEXT NOT NULL DEFAULT '[]',      -- JSON [{issuer, subject}]
    last_accessed_ms BIGINT,
    UNIQUE (owner_id, shortname)
);

CREATE TABLE team (
    id {{ID}},
    org_id BIGINT NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,                         -- 'admin' | 'creator' | 'member'
    description TEXT NOT NULL DEFAULT '',
    created_ms BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE team_member (
    team_id BIGINT NOT NULL REFERENCES team(id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, account_id)
);
CREATE INDEX team_member_account ON team_member (account_id);

-- Invitations to join a team (when mail is configured): for a known user, or for an e-mail.
CREATE TABLE team_invite (
    id {{ID}},
    team_id BIGINT NOT NULL REFERENCES team(id) ON DELETE CASCADE,
    account_id BIGINT REFERENCES namespace(id) ON DELETE CASCADE,
    email TEXT,
    inviter_id BIGINT REFERENCES namespace(id) ON DELETE SET NULL,
    code TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL
);
CREATE INDEX team_invite_team ON team_invite (team_id);

CREATE TABLE repo_user_permission (
    repository_id BIGINT NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
    role TEXT NOT NULL,                         -- 'read' | 'write' | 'admin'
    PRIMARY KEY (repository_id, account_id)
);
CREATE INDEX repo_user_permission_account ON repo_user_permission (account_id);

CREATE TABLE repo_team_permission (
    repository_id BIGINT NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    team_id BIGINT NOT NULL REFERENCES team(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (repository_id, team_id)
);
CREATE INDEX repo_team_permission_team ON repo_team_permission (team_id);

-- Default permissions of an organization, applied when a repository is created in it.
CREATE TABLE prototype (
    id {{ID}},
    uuid TEXT NOT NULL UNIQUE,
    org_id BIGINT NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
    activating_account_id BIGINT REFERENCES namespace(id) ON DELETE CASCADE,
    delegate_account_id BIGINT REFERENCES namespace(id) ON DELETE CASCADE,
    delegate_team_id BIGINT REFERENCES team(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX prototype_org ON prototype (org_id);

CREATE TABLE oauth_application (
    id {{ID}},
    org_id BIGINT NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL UNIQUE,
    client_secret_sealed TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    application_uri TEXT NOT NULL DEFAULT '',
    redirect_uri TEXT NOT NULL DEFAULT '',
    avatar_email TEXT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX oauth_application_org ON oauth_application (org_id);

-- Access tokens may belong to an application (tokens minted for it) and have a name.
ALTER TABLE access_token ADD COLUMN application_id BIGINT REFERENCES oauth_application(id) ON DELETE CASCADE;
ALTER TABLE access_token ADD COLUMN uuid TEXT;
ALTER TABLE access_token ADD COLUMN name TEXT;

ALTER TABLE repository ADD COLUMN badge_token TEXT;

CREATE TABLE repo_star (
    account_id BIGINT NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
    repository_id BIGINT NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, repository_id)
);

-- The audit log, with Quay's kind names. Entries outlive what they mention, so names are kept
-- next to the ids and there are no foreign keys.
CREATE TABLE log_entry (
    id {{ID}},
    kind TEXT NOT NULL,
    account_id BIGINT,                          -- the namespace the entry belongs to
    namespace_name TEXT,
    repository_id BIGINT,
    repository_name TEXT,
    performer_id BIGINT,
    performer_name TEXT,
    ip TEXT,
    metadata TEXT NOT NULL,                     -- JSON object
    created_ms BIGINT NOT NULL
);
CREATE INDEX log_entry_account ON log_entry (account_id, created_ms);
CREATE INDEX log_entry_repository ON log_entry (repository_id, created_ms);
CREATE INDEX log_entry_time ON log_entry (created_ms);
