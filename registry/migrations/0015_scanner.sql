-- Security scanning (issue 19): the per-layer index cache, per-manifest scan status and the
-- vulnerability database the built-in scanner matches against.
--
-- A layer is indexed once per digest, whatever number of manifests share it (`scan_layer`):
-- what it adds (`packages`, JSON) and what its whiteouts remove (`removed`, JSON paths).
CREATE TABLE scan_layer (
    digest TEXT PRIMARY KEY,
    -- 'indexed' | 'failed'
    state TEXT NOT NULL,
    reason TEXT,
    -- JSON: [{"name","version","format","source","path"}]; the OS found, if any.
    packages TEXT NOT NULL DEFAULT '[]',
    os TEXT,
    -- JSON: whiteout paths (".wh.x" -> "x", opaque dirs -> "dir/").
    removed TEXT NOT NULL DEFAULT '[]',
    indexed_ms BIGINT NOT NULL
);

-- One row per manifest digest (shared by the repositories that hold it): queued on push,
-- claimed by one scanner worker, then scanned / failed / unsupported (with a reason).
CREATE TABLE manifest_scan (
    digest TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    reason TEXT,
    -- JSON: the resulting features (packages after whiteouts) and the OS.
    report TEXT,
    -- The vulnerability database generation the report's matches were notified at.
    matched_generation BIGINT NOT NULL DEFAULT 0,
    -- JSON array of the vulnerability ids already announced (vulnerability_found).
    announced TEXT NOT NULL DEFAULT '[]',
    claimed_by TEXT,
    claim_until_ms BIGINT,
    queued_ms BIGINT NOT NULL,
    scanned_ms BIGINT
);
CREATE INDEX manifest_scan_status ON manifest_scan (status, queued_ms);

-- Advisories, one row per (advisory, ecosystem, package) affected entry (OSV's `affected`).
CREATE TABLE vuln_advisory (
    id {{ID}},
    advisory_id TEXT NOT NULL,
    -- OSV ecosystem without release ("Debian", "Alpine", "PyPI", "npm", "Go", "crates.io").
    ecosystem TEXT NOT NULL,
    -- The release part of the ecosystem ("12" of "Debian:12"), '' when none.
    ecosystem_release TEXT NOT NULL DEFAULT '',
    package TEXT NOT NULL,
    -- JSON: [{"type","events":[{"introduced"|"fixed"|"last_affected"|"limit": v}]}]
    ranges TEXT NOT NULL,
    -- JSON: the explicit `versions` list.
    versions TEXT NOT NULL DEFAULT '[]',
    fixed TEXT,
    severity TEXT NOT NULL,
    cvss_score TEXT,
    cvss_vector TEXT,
    summary TEXT NOT NULL DEFAULT '',
    link TEXT NOT NULL DEFAULT '',
    modified TEXT NOT NULL DEFAULT '',
    UNIQUE (advisory_id, ecosystem, ecosystem_release, package)
);
CREATE INDEX vuln_advisory_match ON vuln_advisory (ecosystem, package);
