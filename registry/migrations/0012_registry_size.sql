-- The registry's total size (issue 17, Quay's `quotaregistrysize`): one row, id 1, written when a
-- superuser asks for a calculation (`POST /api/v1/superuser/registrysize/`) and read by
-- `GET /api/v1/superuser/registrysize/`. `size_bytes` is the sum of the stored blobs' sizes at
-- `completed_ms`; `queued`/`running` mark a calculation asked for or in progress, since
-- `started_ms` (a calculation whose process died is taken over once it is old).
CREATE TABLE registry_size (
    id BIGINT PRIMARY KEY,
    size_bytes BIGINT NOT NULL DEFAULT 0,
    queued {{BOOL}} NOT NULL DEFAULT FALSE,
    running {{BOOL}} NOT NULL DEFAULT FALSE,
    started_ms BIGINT,
    completed_ms BIGINT
);
