-- Application-specific tokens and service keys (issue 17).
--
-- An application-specific token is a user's password for registry logins (user name `$app`).
-- It is stored as its SHA-256 hash (what a login is checked against) and sealed with the
-- installation key (what `GET /user/apptoken/{uuid}` shows), never in the clear.
CREATE TABLE app_specific_token (
    id {{ID}},
    uuid TEXT NOT NULL UNIQUE,
    namespace_id BIGINT NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    token_sealed TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    -- NULL: never expires (APP_SPECIFIC_TOKEN_EXPIRATION unset).
    expires_ms BIGINT,
    last_accessed_ms BIGINT
);
CREATE INDEX app_specific_token_owner ON app_specific_token (namespace_id, id);
CREATE INDEX app_specific_token_expiry ON app_specific_token (expires_ms);

-- Service keys (Quay's `servicekey` and `servicekeyapproval` in one row): public keys, by key
-- id, that verify JWTs of a service. The keys of service `quay` sign and verify this registry's
-- own tokens; for those the registry holds the private key, either derived from the
-- installation secret (origin `config`, never stored) or sealed with it here
-- (`private_sealed`). A key is usable while approved (`approval_type` set) and unexpired.
CREATE TABLE service_key (
    id {{ID}},
    kid TEXT NOT NULL UNIQUE,
    service TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    -- The public JWK, JSON.
    jwk TEXT NOT NULL,
    -- JSON object.
    metadata TEXT NOT NULL DEFAULT '{}',
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT,
    rotation_duration_s BIGINT,
    -- 'config' for the key derived from the installation secret, 'generated' for keys created
    -- through the API.
    origin TEXT NOT NULL,
    private_sealed TEXT,
    approval_type TEXT,
    approver_id BIGINT REFERENCES namespace(id) ON DELETE SET NULL,
    approved_ms BIGINT,
    approval_notes TEXT
);
CREATE INDEX service_key_service ON service_key (service, created_ms);
