-- Build triggers (issue 14): Quay's `repositorybuildtrigger`. A trigger belongs to a
-- repository and a service (`custom-git`, `github`, `gitlab`); it is created inactive and
-- activated with its config, which generates its SSH deploy key (the private part sealed with
-- the installation secret, as robot tokens) and the secret of its webhook URL (sealed too: the
-- GitHub kind checks `X-Hub-Signature-256` with it). Builds a trigger starts point at it.
CREATE TABLE build_trigger (
    id {{ID}},
    uuid TEXT NOT NULL UNIQUE,
    repository_id BIGINT NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    -- The admin who created it (Quay's `connected_user`); its builds push as this account.
    connected_user_id BIGINT REFERENCES namespace(id) ON DELETE SET NULL,
    -- JSON: Quay's trigger config (build_source, dockerfile_path, context, branchtag_regex,
    -- default_tag_from_ref, latest_for_default_branch, tag_templates, credentials).
    config TEXT NOT NULL DEFAULT '{}',
    pull_robot_id BIGINT REFERENCES namespace(id) ON DELETE SET NULL,
    -- OpenSSH private key, sealed (set at activation).
    private_key_sealed TEXT,
    -- The webhook secret, sealed (set at activation).
    secret_sealed TEXT,
    enabled {{BOOL}} NOT NULL DEFAULT TRUE,
    disabled_reason TEXT,
    created_ms BIGINT NOT NULL
);

CREATE INDEX build_trigger_repo ON build_trigger (repository_id);

ALTER TABLE repository_build ADD COLUMN trigger_id BIGINT REFERENCES build_trigger(id) ON DELETE SET NULL;

CREATE INDEX repository_build_trigger ON repository_build (trigger_id, started_ms);
