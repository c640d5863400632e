-- Bounded pull audit trail (issue 21): one `pull_repo` entry stands for every pull of the same
-- repository and reference (tag or digest, in its metadata) by the same performer within one
-- hour; `n` is how many pulls it stands for (1 for every other entry). Pages show the entry
-- (with `pull_count` in its metadata when n > 1); counts (`aggregatelogs`, the repository's
-- per-day stats, popularity) sum `n`, and `log_count` keeps counting every pull. A pull load
-- therefore adds at most 24 entries per repository, reference and performer a day.
ALTER TABLE log_entry ADD COLUMN n BIGINT NOT NULL DEFAULT 1;
