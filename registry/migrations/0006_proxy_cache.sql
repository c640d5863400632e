-- Proxy cache (issue 13): an organization whose repositories pull through from an upstream
-- registry. At most one configuration per organization; the credentials are sealed with the
-- installation key (as robot tokens are) and never stored in the clear.
CREATE TABLE proxy_cache (
    namespace_id BIGINT PRIMARY KEY REFERENCES namespace(id) ON DELETE CASCADE,
    upstream_registry TEXT NOT NULL,
    username_sealed TEXT,
    password_sealed TEXT,
    insecure {{BOOL}} NOT NULL DEFAULT FALSE,
    expiration_s BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);

-- Tags that the proxy cache set from the upstream, with the manifest it set them to. A live tag
-- pointing elsewhere was pushed locally (an organization admin may push) and is served as it is.
CREATE TABLE proxy_cache_tag (
    repository_id BIGINT NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    PRIMARY KEY (repository_id, name)
);
