-- Quayside schema, part 3: tag history and the time machine, tag expiration, manifest labels and
-- garbage collection. Placeholders and conventions as in 0001.

-- When a manifest was last pushed (created, or revived by pushing the same digest again). An
-- untagged manifest is kept for a grace period after it, so a manifest pushed by digest ahead of
-- the index or tag that will reference it is not collected in between.
ALTER TABLE manifest ADD COLUMN pushed_ms BIGINT;
-- Sum of the compressed sizes of an image manifest's layers: Quay's `size` of a tag. NULL for
-- manifest lists (and for rows written before this migration, computed from the content then).
ALTER TABLE manifest ADD COLUMN layers_size BIGINT;
UPDATE manifest SET pushed_ms = created_ms;

-- Garbage collection and the expiration worker look tags up by when their lifetime ends.
CREATE INDEX tag_end ON tag (end_ms);
CREATE INDEX tag_expiring ON tag (expiration_ms) WHERE end_ms IS NULL AND expiration_ms IS NOT NULL;
-- Which indexes keep a child manifest alive.
CREATE INDEX manifest_child_digest ON manifest_child (child_digest);
-- Blob links old enough to be collected when nothing references them.
CREATE INDEX repo_blob_created ON repo_blob (created_ms);
CREATE INDEX blob_created ON blob (created_ms);

-- Labels of a manifest: imported from the image config (`source_type` 'manifest') or added through
-- the API ('api'). `uuid` is the id the API shows.
CREATE TABLE manifest_label (
    id {{ID}},
    uuid TEXT NOT NULL UNIQUE,
    manifest_id BIGINT NOT NULL REFERENCES manifest(id) ON DELETE CASCADE,
    label_key TEXT NOT NULL,
    value TEXT NOT NULL,
    source_type TEXT NOT NULL,                  -- 'manifest' | 'api'
    media_type TEXT NOT NULL,                   -- 'text/plain' | 'application/json'
    created_ms BIGINT NOT NULL
);
CREATE INDEX manifest_label_manifest ON manifest_label (manifest_id, label_key);
