//! The scanner's tables (`scan_layer`, `manifest_scan`, `vuln_advisory`): the per-layer index
//! cache, the per-manifest scan queue and status, and the vulnerability database.
//!
//! Rule: a manifest's scan is claimed in one statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL,
//! the single writer on SQLite) and finished only while the claim is still the caller's.

use sqlx::Row;

use crate::db::{Backend, DbResult, Exec, Tx};

#[derive(Clone, Debug)]
pub struct ScanRow {
    pub digest: String,
    pub status: String,
    pub reason: Option<String>,
    pub report: Option<String>,
    pub announced: String,
}

#[derive(Clone, Debug)]
pub struct LayerRow {
    pub state: String,
    pub reason: Option<String>,
    pub packages: String,
    pub os: Option<String>,
    pub removed: String,
}

#[derive(Clone, Debug, Default)]
pub struct AdvisoryRow {
    pub advisory_id: String,
    pub ecosystem: String,
    pub ecosystem_release: String,
    pub package: String,
    pub ranges: String,
    pub versions: String,
    pub fixed: Option<String>,
    pub severity: String,
    pub cvss_score: Option<String>,
    pub cvss_vector: Option<String>,
    pub summary: String,
    pub link: String,
    pub modified: String,
}

/// Queues a scan of `digest` unless it has one.
pub async fn enqueue<'c>(ex: impl Exec<'c>, digest: &str, now_ms: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO manifest_scan (digest, status, queued_ms) VALUES ($1, 'queued', $2) \
         ON CONFLICT (digest) DO NOTHING",
    )
    .bind(digest)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

fn scan_from(r: &sqlx::any::AnyRow) -> DbResult<ScanRow> {
    Ok(ScanRow {
        digest: r.try_get("digest")?,
        status: r.try_get("status")?,
        reason: r.try_get("reason")?,
        report: r.try_get("report")?,
        announced: r.try_get("announced")?,
    })
}

pub async fn get<'c>(ex: impl Exec<'c>, digest: &str) -> DbResult<Option<ScanRow>> {
    let row = sqlx::query(
        "SELECT digest, status, reason, report, announced FROM manifest_scan WHERE digest = $1",
    )
    .bind(digest)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(scan_from).transpose()
}

/// Every scanned manifest (for re-matching after a database change).
pub async fn scanned<'c>(ex: impl Exec<'c>) -> DbResult<Vec<ScanRow>> {
    let rows = sqlx::query(
        "SELECT digest, status, reason, report, announced FROM manifest_scan \
         WHERE status = 'scanned' ORDER BY digest",
    )
    .fetch_all(ex)
    .await?;
    rows.iter().map(scan_from).collect()
}

/// Claims the oldest queued scan (or one whose claim ran out) for `holder` until `until_ms`.
pub async fn claim(
    tx: &mut Tx,
    holder: &str,
    now_ms: i64,
    until_ms: i64,
) -> DbResult<Option<String>> {
    let lock = match tx.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let picked = sqlx::query(&format!(
        "SELECT digest FROM manifest_scan WHERE status = 'queued' \
         OR (status = 'scanning' AND claim_until_ms < $1) ORDER BY queued_ms, digest LIMIT 1 {lock}"
    ))
    .bind(now_ms)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(picked) = picked else {
        return Ok(None);
    };
    let digest: String = picked.try_get("digest")?;
    sqlx::query(
        "UPDATE manifest_scan SET status = 'scanning', claimed_by = $2, claim_until_ms = $3 \
         WHERE digest = $1",
    )
    .bind(&digest)
    .bind(holder)
    .bind(until_ms)
    .execute(&mut **tx)
    .await?;
    Ok(Some(digest))
}

/// Records a claimed scan's outcome; `false` when the claim is no longer `holder`'s.
#[allow(clippy::too_many_arguments)]
pub async fn finish<'c>(
    ex: impl Exec<'c>,
    digest: &str,
    holder: &str,
    status: &str,
    reason: Option<&str>,
    report: Option<&str>,
    announced: &str,
    now_ms: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE manifest_scan SET status = $3, reason = $4, report = $5, announced = $6, \
         scanned_ms = $7, claimed_by = NULL, claim_until_ms = NULL \
         WHERE digest = $1 AND claimed_by = $2",
    )
    .bind(digest)
    .bind(holder)
    .bind(status)
    .bind(reason)
    .bind(report)
    .bind(announced)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records what re-matching announced.
pub async fn set_announced<'c>(ex: impl Exec<'c>, digest: &str, announced: &str) -> DbResult<()> {
    sqlx::query("UPDATE manifest_scan SET announced = $2 WHERE digest = $1")
        .bind(digest)
        .bind(announced)
        .execute(ex)
        .await?;
    Ok(())
}

/// Queues every scan again (`quayside scanner rescan`).
pub async fn requeue_all<'c>(ex: impl Exec<'c>, now_ms: i64) -> DbResult<u64> {
    let done = sqlx::query(
        "UPDATE manifest_scan SET status = 'queued', queued_ms = $1, claimed_by = NULL \
         WHERE status <> 'scanning'",
    )
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

pub async fn get_layer<'c>(ex: impl Exec<'c>, digest: &str) -> DbResult<Option<LayerRow>> {
    let row = sqlx::query(
        "SELECT state, reason, packages, os, removed FROM scan_layer WHERE digest = $1",
    )
    .bind(digest)
    .fetch_optional(ex)
    .await?;
    row.map(|r| {
        Ok(LayerRow {
            state: r.try_get("state")?,
            reason: r.try_get("reason")?,
            packages: r.try_get("packages")?,
            os: r.try_get("os")?,
            removed: r.try_get("removed")?,
        })
    })
    .transpose()
}

pub async fn put_layer<'c>(
    ex: impl Exec<'c>,
    digest: &str,
    layer: &LayerRow,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO scan_layer (digest, state, reason, packages, os, removed, indexed_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (digest) DO UPDATE SET \
         state = $2, reason = $3, packages = $4, os = $5, removed = $6, indexed_ms = $7",
    )
    .bind(digest)
    .bind(&layer.state)
    .bind(&layer.reason)
    .bind(&layer.packages)
    .bind(&layer.os)
    .bind(&layer.removed)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

/// Inserts or replaces an advisory's affected entry; `true` when it was new or changed.
pub async fn upsert_advisory(tx: &mut Tx, a: &AdvisoryRow) -> DbResult<bool> {
    let existing = sqlx::query(
        "SELECT modified, ranges, versions FROM vuln_advisory WHERE advisory_id = $1 \
         AND ecosystem = $2 AND ecosystem_release = $3 AND package = $4",
    )
    .bind(&a.advisory_id)
    .bind(&a.ecosystem)
    .bind(&a.ecosystem_release)
    .bind(&a.package)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(r) = &existing {
        let (m, ranges, versions): (String, String, String) = (
            r.try_get("modified")?,
            r.try_get("ranges")?,
            r.try_get("versions")?,
        );
        if m == a.modified && ranges == a.ranges && versions == a.versions {
            return Ok(false);
        }
    }
    sqlx::query(
        "INSERT INTO vuln_advisory (advisory_id, ecosystem, ecosystem_release, package, ranges, \
         versions, fixed, severity, cvss_score, cvss_vector, summary, link, modified) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (advisory_id, ecosystem, ecosystem_release, package) DO UPDATE SET \
         ranges = $5, versions = $6, fixed = $7, severity = $8, cvss_score = $9, \
         cvss_vector = $10, summary = $11, link = $12, modified = $13",
    )
    .bind(&a.advisory_id)
    .bind(&a.ecosystem)
    .bind(&a.ecosystem_release)
    .bind(&a.package)
    .bind(&a.ranges)
    .bind(&a.versions)
    .bind(&a.fixed)
    .bind(&a.severity)
    .bind(&a.cvss_score)
    .bind(&a.cvss_vector)
    .bind(&a.summary)
    .bind(&a.link)
    .bind(&a.modified)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

/// The affected entries of `package` in `ecosystem` (every release).
pub async fn advisories_for<'c>(
    ex: impl Exec<'c>,
    ecosystem: &str,
    package: &str,
) -> DbResult<Vec<AdvisoryRow>> {
    let rows = sqlx::query(
        "SELECT advisory_id, ecosystem, ecosystem_release, package, ranges, versions, fixed, \
         severity, cvss_score, cvss_vector, summary, link, modified FROM vuln_advisory \
         WHERE ecosystem = $1 AND package = $2 ORDER BY advisory_id",
    )
    .bind(ecosystem)
    .bind(package)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AdvisoryRow {
                advisory_id: r.try_get("advisory_id")?,
                ecosystem: r.try_get("ecosystem")?,
                ecosystem_release: r.try_get("ecosystem_release")?,
                package: r.try_get("package")?,
                ranges: r.try_get("ranges")?,
                versions: r.try_get("versions")?,
                fixed: r.try_get("fixed")?,
                severity: r.try_get("severity")?,
                cvss_score: r.try_get("cvss_score")?,
                cvss_vector: r.try_get("cvss_vector")?,
                summary: r.try_get("summary")?,
                link: r.try_get("link")?,
                modified: r.try_get("modified")?,
            })
        })
        .collect()
}

/// `(repository id, namespace, repository, live tags)` of every repository holding the
/// manifest `digest` (not deleted).
pub async fn holders<'c>(
    ex: impl Exec<'c>,
    digest: &str,
) -> DbResult<Vec<(i64, String, String, Vec<String>)>> {
    let rows = sqlx::query(
        "SELECT r.id, n.name AS ns, r.name AS repo, t.name AS tag FROM manifest m \
         JOIN repository r ON r.id = m.repository_id JOIN namespace n ON n.id = r.namespace_id \
         LEFT JOIN tag t ON t.manifest_id = m.id AND t.end_ms IS NULL \
         WHERE m.digest = $1 AND m.deleted_ms IS NULL ORDER BY r.id, t.name",
    )
    .bind(digest)
    .fetch_all(ex)
    .await?;
    let mut out: Vec<(i64, String, String, Vec<String>)> = Vec::new();
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let tag: Option<String> = r.try_get("tag")?;
        match out.last_mut() {
            Some(last) if last.0 == id => last.3.extend(tag),
            _ => out.push((
                id,
                r.try_get("ns")?,
                r.try_get("repo")?,
                tag.into_iter().collect(),
            )),
        }
    }
    Ok(out)
}

/// `(media type, content)` of the manifest `digest` in any repository.
pub async fn manifest_content<'c>(
    ex: impl Exec<'c>,
    digest: &str,
) -> DbResult<Option<(String, Vec<u8>)>> {
    let row = sqlx::query(
        "SELECT media_type, content FROM manifest WHERE digest = $1 AND deleted_ms IS NULL \
         ORDER BY id LIMIT 1",
    )
    .bind(digest)
    .fetch_optional(ex)
    .await?;
    row.map(|r| Ok((r.try_get("media_type")?, r.try_get("content")?)))
        .transpose()
}
