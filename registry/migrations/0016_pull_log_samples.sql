-- Bounded pull audit trail (issue 21): one `pull_repo` entry stands for every pull of the same
-- repository and reference (tag or digest, in its metadata) by the same performer within one
-- hour; `n` is how many pulls it stands for (1 for every other entry). Pages show the entry
-- (with `pull_count` in its metadata when n > 1); counts (`aggregatelogs`, the repository's
-- per-day stats, popularity) sum `n`, and `log_count` keeps counting every pull. A pull load
-- therefore adds at most 24 entries per repository, reference and performer a day.
ALTER TABLE log_entry ADD COLUMN n BIGINT NOT NULL DEFAULT 1;

-- Flat pages as a repository grows to 100,000 tags (issue 21):
-- `/v2/<repo>/tags/list` walks the live tags in byte order (COLLATE "C" on PostgreSQL, whose
-- database collation may differ, so `tag_live` cannot serve that order there) ...
CREATE INDEX tag_live_bytes ON tag (repository_id, name{{COLLATE_C}}) WHERE end_ms IS NULL;
-- ... and the API's tag list walks a repository's tags newest first instead of sorting them all.
CREATE INDEX tag_recent ON tag (repository_id, start_ms DESC, name, id DESC);
