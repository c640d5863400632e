//! Queries of quota management: a namespace's quota and limits, and the storage accounting
//! behind `quota_report` (see `migrations/0005_quota.sql` for the tables).
//!
//! Accounting rule: a repository's size is the sum of the distinct blobs its manifests (deleted
//! or not, until garbage collection removes them) reference; a namespace's size the sum of the
//! distinct blobs of its repositories. The counts behind that are changed in the caller's
//! transaction, together with the content change they account for.
//!
//! Lock order, which every writer of these tables follows so that concurrent writers on
//! PostgreSQL queue instead of deadlocking: the repository row (`repositories::lock`), then the
//! namespace's size row ([`lock_namespace`]), then blob counts in digest order. Holding the
//! namespace row serialises the accounting of one namespace; the rest of a push does not wait.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::db::{DbResult, Exec, Tx};

/// A namespace's quota.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaRow {
    pub id: i64,
    pub namespace_id: i64,
    pub limit_bytes: i64,
}

/// A limit of a quota: `kind` is `Warning` or `Reject`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitRow {
    pub id: i64,
    pub quota_id: i64,
    pub kind: String,
    pub percent: i64,
}

pub async fn quota_of<'c>(ex: impl Exec<'c>, namespace_id: i64) -> DbResult<Option<QuotaRow>> {
    let row =
        sqlx::query("SELECT id, namespace_id, limit_bytes FROM quota WHERE namespace_id = $1")
            .bind(namespace_id)
            .fetch_optional(ex)
            .await?;
    Ok(row
        .map(|r| -> Result<QuotaRow, sqlx::Error> {
            Ok(QuotaRow {
                id: r.try_get("id")?,
                namespace_id: r.try_get("namespace_id")?,
                limit_bytes: r.try_get("limit_bytes")?,
            })
        })
        .transpose()?)
}

/// Creates the namespace's quota; a unique violation means it already has one.
pub async fn insert<'c>(
    ex: impl Exec<'c>,
    namespace_id: i64,
    limit_bytes: i64,
    now_ms: i64,
) -> DbResult<i64> {
    let row = sqlx::query(
        "INSERT INTO quota (namespace_id, limit_bytes, created_ms) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(namespace_id)
    .bind(limit_bytes)
    .bind(now_ms)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("id")?)
}

pub async fn set_limit_bytes<'c>(
    ex: impl Exec<'c>,
    quota_id: i64,
    limit_bytes: i64,
) -> DbResult<bool> {
    let done = sqlx::query("UPDATE quota SET limit_bytes = $2 WHERE id = $1")
        .bind(quota_id)
        .bind(limit_bytes)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes a quota with its limits.
pub async fn delete<'c>(ex: impl Exec<'c>, quota_id: i64) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM quota WHERE id = $1")
        .bind(quota_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

fn limit_from_row(r: &sqlx::any::AnyRow) -> Result<LimitRow, sqlx::Error> {
    Ok(LimitRow {
        id: r.try_get("id")?,
        quota_id: r.try_get("quota_id")?,
        kind: r.try_get("kind")?,
        percent: r.try_get("percent")?,
    })
}

/// The limits of a quota, by id.
pub async fn limits<'c>(ex: impl Exec<'c>, quota_id: i64) -> DbResult<Vec<LimitRow>> {
    let rows = sqlx::query(
        "SELECT id, quota_id, kind, percent FROM quota_limit WHERE quota_id = $1 ORDER BY id",
    )
    .bind(quota_id)
    .fetch_all(ex)
    .await?;
    Ok(rows
        .iter()
        .map(limit_from_row)
        .collect::<Result<_, sqlx::Error>>()?)
}

/// Creates a limit; a unique violation means the same kind and percent exist.
pub async fn insert_limit<'c>(
    ex: impl Exec<'c>,
    quota_id: i64,
    kind: &str,
    percent: i64,
) -> DbResult<i64> {
    let row = sqlx::query(
        "INSERT INTO quota_limit (quota_id, kind, percent) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(quota_id)
    .bind(kind)
    .bind(percent)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("id")?)
}

pub async fn update_limit<'c>(
    ex: impl Exec<'c>,
    limit_id: i64,
    kind: &str,
    percent: i64,
) -> DbResult<bool> {
    let done = sqlx::query("UPDATE quota_limit SET kind = $2, percent = $3 WHERE id = $1")
        .bind(limit_id)
        .bind(kind)
        .bind(percent)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn delete_limit<'c>(ex: impl Exec<'c>, limit_id: i64) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM quota_limit WHERE id = $1")
        .bind(limit_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Quotas with their limits of several namespaces (for views that list namespaces).
pub async fn quotas_of<'c, E: Exec<'c> + Copy>(
    ex: E,
    namespace_ids: &[i64],
) -> DbResult<Vec<(QuotaRow, Vec<LimitRow>)>> {
    let mut out = Vec::new();
    for id in namespace_ids {
        if let Some(q) = quota_of(ex, *id).await? {
            let limits = limits(ex, q.id).await?;
            out.push((q, limits));
        }
    }
    Ok(out)
}

// ---- accounting -------------------------------------------------------------------------

/// The namespace's accounting state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceSize {
    pub size_bytes: i64,
    /// `ok`, `warning` or `reject`: where it stood after the last change.
    pub state: String,
}

/// Locks the namespace's size row (creating it) until the transaction ends and returns it.
pub async fn lock_namespace(tx: &mut Tx, namespace_id: i64) -> DbResult<NamespaceSize> {
    let row = sqlx::query(
        "INSERT INTO quota_namespace_size (namespace_id, size_bytes, state) VALUES ($1, 0, 'ok') \
         ON CONFLICT (namespace_id) DO UPDATE SET size_bytes = quota_namespace_size.size_bytes \
         RETURNING size_bytes, state",
    )
    .bind(namespace_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(NamespaceSize {
        size_bytes: row.try_get("size_bytes")?,
        state: row.try_get("state")?,
    })
}

/// Sets the namespace's state after a change (under [`lock_namespace`]).
pub async fn set_namespace_state(tx: &mut Tx, namespace_id: i64, state: &str) -> DbResult<()> {
    sqlx::query("UPDATE quota_namespace_size SET state = $2 WHERE namespace_id = $1")
        .bind(namespace_id)
        .bind(state)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn add_sizes(
    tx: &mut Tx,
    repository_id: i64,
    namespace_id: i64,
    repo: i64,
    ns: i64,
) -> DbResult<()> {
    if repo != 0 {
        sqlx::query(
            "INSERT INTO quota_repository_size (repository_id, size_bytes) VALUES ($1, $2) \
             ON CONFLICT (repository_id) DO UPDATE SET size_bytes = quota_repository_size.size_bytes + $2",
        )
        .bind(repository_id)
        .bind(repo)
        .execute(&mut **tx)
        .await?;
    }
    if ns != 0 {
        sqlx::query(
            "UPDATE quota_namespace_size SET size_bytes = size_bytes + $2 WHERE namespace_id = $1",
        )
        .bind(namespace_id)
        .bind(ns)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Adds 1 to a namespace blob count; returns the size it adds to the namespace.
async fn ns_blob_up(tx: &mut Tx, namespace_id: i64, digest: &str, size: i64) -> DbResult<i64> {
    let row = sqlx::query(
        "INSERT INTO quota_namespace_blob (namespace_id, digest, size, refs) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (namespace_id, digest) DO UPDATE SET refs = quota_namespace_blob.refs + 1 \
         RETURNING refs",
    )
    .bind(namespace_id)
    .bind(digest)
    .bind(size)
    .fetch_one(&mut **tx)
    .await?;
    let refs: i64 = row.try_get("refs")?;
    Ok(if refs == 1 { size } else { 0 })
}

/// Takes 1 from a namespace blob count; returns the size it removes from the namespace.
async fn ns_blob_down(tx: &mut Tx, namespace_id: i64, digest: &str) -> DbResult<i64> {
    let row = sqlx::query(
        "UPDATE quota_namespace_blob SET refs = refs - 1 WHERE namespace_id = $1 AND digest = $2 \
         RETURNING refs, size",
    )
    .bind(namespace_id)
    .bind(digest)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(0) };
    let refs: i64 = row.try_get("refs")?;
    if refs > 0 {
        return Ok(0);
    }
    sqlx::query("DELETE FROM quota_namespace_blob WHERE namespace_id = $1 AND digest = $2")
        .bind(namespace_id)
        .bind(digest)
        .execute(&mut **tx)
        .await?;
    Ok(row.try_get("size")?)
}

/// The distinct blobs a manifest references, with their sizes, in digest order.
async fn manifest_blobs(tx: &mut Tx, manifest_id: i64) -> DbResult<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT mb.digest, COALESCE(b.size, 0) AS size FROM manifest_blob mb \
         LEFT JOIN blob b ON b.digest = mb.digest WHERE mb.manifest_id = $1 ORDER BY mb.digest",
    )
    .bind(manifest_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("digest")?, r.try_get("size")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Accounts a newly stored manifest of the repository (under the repository lock and
/// [`lock_namespace`]). Returns the bytes it added to the namespace.
pub async fn add_manifest(
    tx: &mut Tx,
    repository_id: i64,
    namespace_id: i64,
    manifest_id: i64,
) -> DbResult<i64> {
    let (mut repo, mut ns) = (0, 0);
    for (digest, size) in manifest_blobs(tx, manifest_id).await? {
        let row = sqlx::query(
            "INSERT INTO quota_repo_blob (repository_id, digest, size, refs) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (repository_id, digest) DO UPDATE SET refs = quota_repo_blob.refs + 1 \
             RETURNING refs",
        )
        .bind(repository_id)
        .bind(&digest)
        .bind(size)
        .fetch_one(&mut **tx)
        .await?;
        let refs: i64 = row.try_get("refs")?;
        if refs == 1 {
            repo += size;
            ns += ns_blob_up(tx, namespace_id, &digest, size).await?;
        }
    }
    add_sizes(tx, repository_id, namespace_id, repo, ns).await?;
    Ok(ns)
}

/// Namespaces whose accounting holds `digest` at size 0: manifests a proxy cache stored before
/// the blob's bytes arrived (accounted at what was stored, nothing). Ordered, for locking.
pub async fn awaiting_size<'c>(ex: impl Exec<'c>, digest: &str) -> DbResult<Vec<i64>> {
    let rows = sqlx::query(
        "SELECT DISTINCT r.namespace_id FROM quota_repo_blob q \
         JOIN repository r ON r.id = q.repository_id \
         WHERE q.digest = $1 AND q.size = 0 ORDER BY r.namespace_id",
    )
    .bind(digest)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| r.try_get("namespace_id"))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Gives a blob that arrived its size in the namespace's accounting, where it was held at 0
/// (under [`lock_namespace`]). Returns the bytes added to the namespace.
pub async fn fill_size(tx: &mut Tx, namespace_id: i64, digest: &str, size: i64) -> DbResult<i64> {
    if size == 0 {
        return Ok(0);
    }
    let repos = sqlx::query(
        "UPDATE quota_repo_blob SET size = $3 WHERE digest = $2 AND size = 0 \
         AND repository_id IN (SELECT id FROM repository WHERE namespace_id = $1) \
         RETURNING repository_id",
    )
    .bind(namespace_id)
    .bind(digest)
    .bind(size)
    .fetch_all(&mut **tx)
    .await?;
    for r in &repos {
        let repository_id: i64 = r.try_get("repository_id")?;
        add_sizes(tx, repository_id, namespace_id, size, 0).await?;
    }
    let ns = sqlx::query(
        "UPDATE quota_namespace_blob SET size = $3 WHERE namespace_id = $1 AND digest = $2 AND size = 0",
    )
    .bind(namespace_id)
    .bind(digest)
    .bind(size)
    .execute(&mut **tx)
    .await?;
    let added = if ns.rows_affected() > 0 { size } else { 0 };
    add_sizes(tx, 0, namespace_id, 0, added).await?;
    Ok(added)
}

/// Takes manifests about to be deleted out of the accounting (under the repository lock and
/// [`lock_namespace`]). Returns the bytes removed from the namespace.
pub async fn release_manifests(
    tx: &mut Tx,
    repository_id: i64,
    namespace_id: i64,
    manifest_ids: &[i64],
) -> DbResult<i64> {
    // Count per digest first, so each count row is touched once and in digest order.
    let mut drops: BTreeMap<String, i64> = BTreeMap::new();
    for id in manifest_ids {
        for (digest, _) in manifest_blobs(tx, *id).await? {
            *drops.entry(digest).or_default() += 1;
        }
    }
    let (mut repo, mut ns) = (0, 0);
    for (digest, n) in drops {
        let row = sqlx::query(
            "UPDATE quota_repo_blob SET refs = refs - $3 WHERE repository_id = $1 AND digest = $2 \
             RETURNING refs, size",
        )
        .bind(repository_id)
        .bind(&digest)
        .bind(n)
        .fetch_optional(&mut **tx)
        .await?;
        // No row: content the backfill has not counted yet (it recomputes the repository).
        let Some(row) = row else { continue };
        let refs: i64 = row.try_get("refs")?;
        if refs > 0 {
            continue;
        }
        sqlx::query("DELETE FROM quota_repo_blob WHERE repository_id = $1 AND digest = $2")
            .bind(repository_id)
            .bind(&digest)
            .execute(&mut **tx)
            .await?;
        repo -= row.try_get::<i64, _>("size")?;
        ns -= ns_blob_down(tx, namespace_id, &digest).await?;
    }
    add_sizes(tx, repository_id, namespace_id, repo, ns).await?;
    Ok(-ns)
}

/// Takes a repository about to be deleted out of its namespace's accounting (under the
/// repository lock and [`lock_namespace`]). Returns the bytes removed from the namespace.
pub async fn release_repository(
    tx: &mut Tx,
    repository_id: i64,
    namespace_id: i64,
) -> DbResult<i64> {
    let rows =
        sqlx::query("SELECT digest FROM quota_repo_blob WHERE repository_id = $1 ORDER BY digest")
            .bind(repository_id)
            .fetch_all(&mut **tx)
            .await?;
    let mut ns = 0;
    for r in &rows {
        let digest: String = r.try_get("digest")?;
        ns += ns_blob_down(tx, namespace_id, &digest).await?;
    }
    sqlx::query("DELETE FROM quota_repo_blob WHERE repository_id = $1")
        .bind(repository_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM quota_repository_size WHERE repository_id = $1")
        .bind(repository_id)
        .execute(&mut **tx)
        .await?;
    add_sizes(tx, repository_id, namespace_id, 0, -ns).await?;
    Ok(ns)
}

/// Per digest: (size, count).
type Counts = BTreeMap<String, (i64, i64)>;

/// What the repository's manifests reference: per digest its size and how many manifests.
pub async fn actual_repository<'c>(ex: impl Exec<'c>, repository_id: i64) -> DbResult<Counts> {
    let rows = sqlx::query(
        "SELECT mb.digest, COALESCE(MAX(b.size), 0) AS size, COUNT(*) AS refs FROM manifest_blob mb \
         JOIN manifest m ON m.id = mb.manifest_id LEFT JOIN blob b ON b.digest = mb.digest \
         WHERE m.repository_id = $1 GROUP BY mb.digest",
    )
    .bind(repository_id)
    .fetch_all(ex)
    .await?;
    counts(&rows)
}

/// The repository's blob counts as accounted.
pub async fn recorded_repository<'c>(ex: impl Exec<'c>, repository_id: i64) -> DbResult<Counts> {
    let rows =
        sqlx::query("SELECT digest, size, refs FROM quota_repo_blob WHERE repository_id = $1")
            .bind(repository_id)
            .fetch_all(ex)
            .await?;
    counts(&rows)
}

fn counts(rows: &[sqlx::any::AnyRow]) -> DbResult<Counts> {
    let mut out = Counts::new();
    for r in rows {
        out.insert(
            r.try_get("digest")?,
            (r.try_get("size")?, r.try_get("refs")?),
        );
    }
    Ok(out)
}

/// The repository's size as accounted (0 without a row).
pub async fn repository_size<'c>(ex: impl Exec<'c>, repository_id: i64) -> DbResult<i64> {
    let row = sqlx::query("SELECT size_bytes FROM quota_repository_size WHERE repository_id = $1")
        .bind(repository_id)
        .fetch_optional(ex)
        .await?;
    Ok(row
        .map(|r| r.try_get("size_bytes"))
        .transpose()?
        .unwrap_or(0))
}

/// Sizes of several repositories as accounted (absent: 0).
pub async fn repository_sizes<'c>(ex: impl Exec<'c>, ids: &[i64]) -> DbResult<BTreeMap<i64, i64>> {
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT repository_id, size_bytes FROM quota_repository_size WHERE repository_id IN ({})",
        placeholders.join(", ")
    );
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(*id);
    }
    for r in q.fetch_all(ex).await? {
        out.insert(r.try_get("repository_id")?, r.try_get("size_bytes")?);
    }
    Ok(out)
}

/// Makes the repository's accounting what its manifests say (under the repository lock and
/// [`lock_namespace`]): the backfill and `quota verify --fix`. Returns whether anything changed.
pub async fn recompute_repository(
    tx: &mut Tx,
    repository_id: i64,
    namespace_id: i64,
) -> DbResult<bool> {
    let actual = actual_repository(&mut **tx, repository_id).await?;
    let recorded = recorded_repository(&mut **tx, repository_id).await?;
    let total: i64 = actual.values().map(|(size, _)| size).sum();
    let recorded_total = repository_size(&mut **tx, repository_id).await?;
    let mut changed = total != recorded_total;
    let mut digests: Vec<&String> = actual.keys().chain(recorded.keys()).collect();
    digests.sort();
    digests.dedup();
    let mut ns = 0;
    for digest in digests {
        match (actual.get(digest), recorded.get(digest)) {
            (Some(a), Some(r)) if a == r => {}
            (Some((size, refs)), Some(_)) => {
                changed = true;
                sqlx::query(
                    "UPDATE quota_repo_blob SET size = $3, refs = $4 WHERE repository_id = $1 AND digest = $2",
                )
                .bind(repository_id)
                .bind(digest)
                .bind(*size)
                .bind(*refs)
                .execute(&mut **tx)
                .await?;
            }
            (Some((size, refs)), None) => {
                changed = true;
                sqlx::query(
                    "INSERT INTO quota_repo_blob (repository_id, digest, size, refs) VALUES ($1, $2, $3, $4)",
                )
                .bind(repository_id)
                .bind(digest)
                .bind(*size)
                .bind(*refs)
                .execute(&mut **tx)
                .await?;
                ns += ns_blob_up(tx, namespace_id, digest, *size).await?;
            }
            (None, Some(_)) => {
                changed = true;
                sqlx::query("DELETE FROM quota_repo_blob WHERE repository_id = $1 AND digest = $2")
                    .bind(repository_id)
                    .bind(digest)
                    .execute(&mut **tx)
                    .await?;
                ns -= ns_blob_down(tx, namespace_id, digest).await?;
            }
            (None, None) => {}
        }
    }
    sqlx::query(
        "INSERT INTO quota_repository_size (repository_id, size_bytes) VALUES ($1, $2) \
         ON CONFLICT (repository_id) DO UPDATE SET size_bytes = $2",
    )
    .bind(repository_id)
    .bind(total)
    .execute(&mut **tx)
    .await?;
    add_sizes(tx, repository_id, namespace_id, 0, ns).await?;
    Ok(changed)
}

/// A namespace's blob counts as its repositories' accounting implies them: per digest, the
/// size and how many of its repositories hold it.
pub async fn implied_namespace<'c>(ex: impl Exec<'c>, namespace_id: i64) -> DbResult<Counts> {
    let rows = sqlx::query(
        "SELECT qb.digest, MAX(qb.size) AS size, COUNT(*) AS refs FROM quota_repo_blob qb \
         JOIN repository r ON r.id = qb.repository_id WHERE r.namespace_id = $1 GROUP BY qb.digest",
    )
    .bind(namespace_id)
    .fetch_all(ex)
    .await?;
    counts(&rows)
}

pub async fn recorded_namespace<'c>(ex: impl Exec<'c>, namespace_id: i64) -> DbResult<Counts> {
    let rows =
        sqlx::query("SELECT digest, size, refs FROM quota_namespace_blob WHERE namespace_id = $1")
            .bind(namespace_id)
            .fetch_all(ex)
            .await?;
    counts(&rows)
}

/// The namespace's size as accounted (0 without a row).
pub async fn namespace_size<'c>(ex: impl Exec<'c>, namespace_id: i64) -> DbResult<i64> {
    let row = sqlx::query("SELECT size_bytes FROM quota_namespace_size WHERE namespace_id = $1")
        .bind(namespace_id)
        .fetch_optional(ex)
        .await?;
    Ok(row
        .map(|r| r.try_get("size_bytes"))
        .transpose()?
        .unwrap_or(0))
}

/// Makes the namespace's blob counts and size what its repositories' accounting implies (under
/// [`lock_namespace`]). Returns whether anything changed.
pub async fn recompute_namespace(tx: &mut Tx, namespace_id: i64) -> DbResult<bool> {
    let implied = implied_namespace(&mut **tx, namespace_id).await?;
    let recorded = recorded_namespace(&mut **tx, namespace_id).await?;
    let total: i64 = implied.values().map(|(size, _)| size).sum();
    let mut changed = total != namespace_size(&mut **tx, namespace_id).await?;
    if implied != recorded {
        changed = true;
        sqlx::query("DELETE FROM quota_namespace_blob WHERE namespace_id = $1")
            .bind(namespace_id)
            .execute(&mut **tx)
            .await?;
        for (digest, (size, refs)) in &implied {
            sqlx::query(
                "INSERT INTO quota_namespace_blob (namespace_id, digest, size, refs) VALUES ($1, $2, $3, $4)",
            )
            .bind(namespace_id)
            .bind(digest)
            .bind(*size)
            .bind(*refs)
            .execute(&mut **tx)
            .await?;
        }
    }
    sqlx::query("UPDATE quota_namespace_size SET size_bytes = $2 WHERE namespace_id = $1")
        .bind(namespace_id)
        .bind(total)
        .execute(&mut **tx)
        .await?;
    Ok(changed)
}

/// Repositories (id, namespace id) after `after`, by id, `limit` at a time.
pub async fn repositories_after<'c>(
    ex: impl Exec<'c>,
    after: i64,
    limit: i64,
) -> DbResult<Vec<(i64, i64)>> {
    let rows =
        sqlx::query("SELECT id, namespace_id FROM repository WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(ex)
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("namespace_id")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Namespaces (users and organizations) after `after`, by id, with their names.
pub async fn namespaces_after<'c>(
    ex: impl Exec<'c>,
    after: i64,
    limit: i64,
) -> DbResult<Vec<(i64, String)>> {
    let rows = sqlx::query(
        "SELECT id, name FROM namespace WHERE id > $1 AND kind IN ('user', 'org') ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

// ---- backfill ---------------------------------------------------------------------------

/// Up to `limit` repositories waiting for the backfill: (repository id, namespace id).
pub async fn backfill_pending<'c>(ex: impl Exec<'c>, limit: i64) -> DbResult<Vec<(i64, i64)>> {
    let rows = sqlx::query(
        "SELECT r.id, r.namespace_id FROM quota_backfill q JOIN repository r ON r.id = q.repository_id \
         ORDER BY r.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("namespace_id")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Marks a repository for the backfill (content stored while accounting was off).
pub async fn mark_for_backfill(tx: &mut Tx, repository_id: i64) -> DbResult<()> {
    sqlx::query("INSERT INTO quota_backfill (repository_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(repository_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Marks a repository backfilled; false when another replica did it first.
pub async fn backfill_done(tx: &mut Tx, repository_id: i64) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM quota_backfill WHERE repository_id = $1")
        .bind(repository_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Whether any repository of the namespace waits for the backfill.
/// Costs nothing once the backfill is over (the table is empty), whatever the namespace holds.
pub async fn backfill_waiting<'c>(ex: impl Exec<'c>, namespace_id: i64) -> DbResult<bool> {
    let row = sqlx::query(
        "SELECT 1 AS one FROM quota_backfill q WHERE EXISTS (SELECT 1 FROM quota_backfill) \
         AND EXISTS (SELECT 1 FROM repository r WHERE r.id = q.repository_id AND r.namespace_id = $1) \
         LIMIT 1",
    )
    .bind(namespace_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.is_some())
}

/// Whether the namespace has an accounting row (Quay reports `waiting` until it does).
pub async fn namespace_accounted<'c>(ex: impl Exec<'c>, namespace_id: i64) -> DbResult<bool> {
    let row = sqlx::query("SELECT 1 AS one FROM quota_namespace_size WHERE namespace_id = $1")
        .bind(namespace_id)
        .fetch_optional(ex)
        .await?;
    Ok(row.is_some())
}

/// Whether the repository waits for the backfill.
pub async fn backfill_pending_for<'c>(ex: impl Exec<'c>, repository_id: i64) -> DbResult<bool> {
    let row = sqlx::query("SELECT 1 AS one FROM quota_backfill WHERE repository_id = $1")
        .bind(repository_id)
        .fetch_optional(ex)
        .await?;
    Ok(row.is_some())
}

/// `namespace/name` of a repository.
pub async fn repository_full_name<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
) -> DbResult<Option<String>> {
    let row = sqlx::query(
        "SELECT n.name AS ns, r.name AS name FROM repository r JOIN namespace n ON n.id = r.namespace_id \
         WHERE r.id = $1",
    )
    .bind(repository_id)
    .fetch_optional(ex)
    .await?;
    row.map(|r| -> Result<String, sqlx::Error> {
        Ok(format!(
            "{}/{}",
            r.try_get::<String, _>("ns")?,
            r.try_get::<String, _>("name")?
        ))
    })
    .transpose()
    .map_err(Into::into)
}

/// The namespace of a repository.
pub async fn namespace_of<'c>(ex: impl Exec<'c>, repository_id: i64) -> DbResult<Option<i64>> {
    let row = sqlx::query("SELECT namespace_id FROM repository WHERE id = $1")
        .bind(repository_id)
        .fetch_optional(ex)
        .await?;
    Ok(row.map(|r| r.try_get("namespace_id")).transpose()?)
}

/// A repository's accounted size and its namespace's quota (`None` without one).
pub async fn repository_report<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
) -> DbResult<(i64, Option<i64>)> {
    let row = sqlx::query(
        "SELECT COALESCE(s.size_bytes, 0) AS size, q.limit_bytes FROM repository r \
         LEFT JOIN quota_repository_size s ON s.repository_id = r.id \
         LEFT JOIN quota q ON q.namespace_id = r.namespace_id WHERE r.id = $1",
    )
    .bind(repository_id)
    .fetch_optional(ex)
    .await?;
    match row {
        Some(r) => Ok((r.try_get("size")?, r.try_get("limit_bytes")?)),
        None => Ok((0, None)),
    }
}
