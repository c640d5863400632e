//! Tags with lifetimes. A tag row is one lifetime of a name: it starts at `start_ms` and ends at
//! `end_ms` once the name is moved, deleted or expired; history keeps every lifetime.
//!
//! - A lifetime is *live* while `end_ms IS NULL` and its `expiration_ms`, if any, is in the
//!   future. An expired lifetime stops being live at its expiration even before the expiration
//!   worker writes its `end_ms` ([`end_expired`]); everything here reads through `live`.
//! - At most one row per name has `end_ms IS NULL` (a partial unique index enforces it); writers
//!   of one repository's tags are serialised by [`super::repositories::lock`].
//! - When a lifetime ends (or will end) is `COALESCE(end_ms, expiration_ms)`: the time machine
//!   keeps a lifetime restorable until that moment plus the namespace's `tag_expiration_s`.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Backend, DbResult, Exec, Tx, collate_c, get_bool};

/// SQL predicate for a live tag row aliased `t`, with the current time bound at `now`.
fn live(now: &str) -> String {
    format!("t.end_ms IS NULL AND (t.expiration_ms IS NULL OR t.expiration_ms > {now})")
}

/// SQL predicate for a tag row aliased `t` that is live or ended after `cutoff` (still inside the
/// time machine window).
pub(crate) fn retained(cutoff: &str) -> String {
    format!(
        "(COALESCE(t.end_ms, t.expiration_ms) IS NULL OR COALESCE(t.end_ms, t.expiration_ms) > {cutoff})"
    )
}

/// What pointing a tag at a manifest did to the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagChange {
    /// The name had no live lifetime.
    Created,
    /// A live lifetime (pointing at this manifest or another) ended.
    Moved { from_manifest_id: i64 },
}

/// How a new lifetime starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetOptions {
    /// When the new lifetime expires.
    pub expiration_ms: Option<i64>,
    /// The lifetime restores an earlier state (the time machine).
    pub reversion: bool,
}

/// One lifetime of a tag, with what it points at.
#[derive(Clone, Debug)]
pub struct Lifetime {
    pub id: i64,
    pub repository_id: i64,
    pub name: String,
    pub manifest_id: i64,
    pub manifest_digest: String,
    pub media_type: String,
    /// The manifest's layer size (`NULL` for lists and for rows older than the column).
    pub layers_size: Option<i64>,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub expiration_ms: Option<i64>,
    pub reversion: bool,
}

impl Lifetime {
    /// When the lifetime ended or will end, if ever.
    pub fn effective_end_ms(&self) -> Option<i64> {
        self.end_ms.or(self.expiration_ms)
    }

    pub fn is_live(&self, now_ms: i64) -> bool {
        self.end_ms.is_none() && self.expiration_ms.is_none_or(|e| e > now_ms)
    }
}

const LIFETIME_COLS: &str = "t.id, t.repository_id, t.name, t.manifest_id, m.digest AS manifest_digest, \
     m.media_type, m.layers_size, t.start_ms, t.end_ms, t.expiration_ms, t.reversion";

fn lifetime(row: &AnyRow) -> Result<Lifetime, sqlx::Error> {
    Ok(Lifetime {
        id: row.try_get("id")?,
        repository_id: row.try_get("repository_id")?,
        name: row.try_get("name")?,
        manifest_id: row.try_get("manifest_id")?,
        manifest_digest: row.try_get("manifest_digest")?,
        media_type: row.try_get("media_type")?,
        layers_size: row.try_get("layers_size")?,
        start_ms: row.try_get("start_ms")?,
        end_ms: row.try_get("end_ms")?,
        expiration_ms: row.try_get("expiration_ms")?,
        reversion: get_bool(row, "reversion")?,
    })
}

/// Points `name` at `manifest_id` with no expiration: see [`set_with`].
pub async fn set(
    tx: &mut Tx,
    repository_id: i64,
    name: &str,
    manifest_id: i64,
    now_ms: i64,
) -> DbResult<TagChange> {
    set_with(
        tx,
        repository_id,
        name,
        manifest_id,
        now_ms,
        SetOptions::default(),
    )
    .await
}

/// Points `name` at `manifest_id`, as Quay's `retarget_tag` does: ends the current lifetime (if
/// any; an expired one at its expiration) and always starts a new one, even for the manifest it
/// already had (a re-push or a restore is a new entry in the history, with a fresh expiration).
/// A concurrent writer of the same name makes this fail with a unique violation; callers retry.
pub async fn set_with(
    tx: &mut Tx,
    repository_id: i64,
    name: &str,
    manifest_id: i64,
    now_ms: i64,
    options: SetOptions,
) -> DbResult<TagChange> {
    let current = sqlx::query(
        "SELECT id, manifest_id, expiration_ms FROM tag WHERE repository_id = $1 AND name = $2 AND end_ms IS NULL",
    )
    .bind(repository_id)
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?;
    let mut change = TagChange::Created;
    if let Some(row) = current {
        let id: i64 = row.try_get("id")?;
        let current_manifest: i64 = row.try_get("manifest_id")?;
        let expiration: Option<i64> = row.try_get("expiration_ms")?;
        // An expired lifetime ended at its expiration, not now.
        let end = match expiration {
            Some(e) if e <= now_ms => e,
            _ => {
                change = TagChange::Moved {
                    from_manifest_id: current_manifest,
                };
                now_ms
            }
        };
        sqlx::query("UPDATE tag SET end_ms = $1 WHERE id = $2")
            .bind(end)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO tag (repository_id, name, manifest_id, start_ms, expiration_ms, reversion) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(repository_id)
    .bind(name)
    .bind(manifest_id)
    .bind(now_ms)
    .bind(options.expiration_ms)
    .bind(options.reversion)
    .execute(&mut **tx)
    .await?;
    Ok(change)
}

/// One page of live tag names in byte order, strictly after `last`.
pub async fn list_live<'c>(
    ex: impl Exec<'c>,
    backend: Backend,
    repository_id: i64,
    last: Option<&str>,
    limit: i64,
    now_ms: i64,
) -> DbResult<Vec<String>> {
    let collate = collate_c(backend);
    let sql = format!(
        "SELECT t.name FROM tag t WHERE t.repository_id = $1 AND {} \
         AND ($2 IS NULL OR t.name{collate} > $2{collate}) ORDER BY t.name{collate} LIMIT $4",
        live("$3")
    );
    let rows = sqlx::query(&sql)
        .bind(repository_id)
        .bind(last)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
}

/// Which lifetimes [`history`] returns.
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryFilter<'a> {
    /// Only lifetimes of this name.
    pub name: Option<&'a str>,
    /// Only live lifetimes.
    pub live_only: bool,
}

/// Lifetimes of the repository's tags, newest first (by start, then name), `limit` from `offset`.
pub async fn history<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    filter: HistoryFilter<'_>,
    now_ms: i64,
    offset: i64,
    limit: i64,
) -> DbResult<Vec<Lifetime>> {
    let live_clause = if filter.live_only {
        format!("AND {}", live("$3"))
    } else {
        // Keep `$3` bound on both paths.
        "AND $3 = $3".to_owned()
    };
    let sql = format!(
        "SELECT {LIFETIME_COLS} FROM tag t JOIN manifest m ON m.id = t.manifest_id \
         WHERE t.repository_id = $1 AND ($2 IS NULL OR t.name = $2) {live_clause} \
         ORDER BY t.start_ms DESC, t.name, t.id DESC LIMIT $4 OFFSET $5"
    );
    let rows = sqlx::query(&sql)
        .bind(repository_id)
        .bind(filter.name)
        .bind(now_ms)
        .bind(limit)
        .bind(offset)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(lifetime(r)?)).collect()
}

/// The live lifetime of `name`, if any.
pub async fn live_one<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    name: &str,
    now_ms: i64,
) -> DbResult<Option<Lifetime>> {
    let sql = format!(
        "SELECT {LIFETIME_COLS} FROM tag t JOIN manifest m ON m.id = t.manifest_id \
         WHERE t.repository_id = $1 AND t.name = $2 AND {}",
        live("$3")
    );
    let row = sqlx::query(&sql)
        .bind(repository_id)
        .bind(name)
        .bind(now_ms)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(lifetime).transpose()?)
}

/// Every live lifetime of the repository, by name.
pub async fn live_all<'c>(
    ex: impl Exec<'c>,
    backend: Backend,
    repository_id: i64,
    now_ms: i64,
) -> DbResult<Vec<Lifetime>> {
    let collate = collate_c(backend);
    let sql = format!(
        "SELECT {LIFETIME_COLS} FROM tag t JOIN manifest m ON m.id = t.manifest_id \
         WHERE t.repository_id = $1 AND {} ORDER BY t.name{collate}",
        live("$2")
    );
    let rows = sqlx::query(&sql)
        .bind(repository_id)
        .bind(now_ms)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(lifetime(r)?)).collect()
}

/// Ends the live lifetime of `name`; returns the manifest it pointed at, if there was one.
pub async fn end_live<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    name: &str,
    now_ms: i64,
) -> DbResult<Option<i64>> {
    let sql = format!(
        "UPDATE tag SET end_ms = $1 WHERE repository_id = $2 AND name = $3 AND id IN \
         (SELECT t.id FROM tag t WHERE t.repository_id = $2 AND t.name = $3 AND {}) RETURNING manifest_id",
        live("$1")
    );
    let row = sqlx::query(&sql)
        .bind(now_ms)
        .bind(repository_id)
        .bind(name)
        .fetch_optional(ex)
        .await?;
    row.map(|r| Ok(r.try_get("manifest_id")?)).transpose()
}

/// Ends every current lifetime pointing at a manifest (an expired one at its expiration);
/// returns the names of those that were live.
pub async fn end_for_manifest<'c>(
    ex: impl Exec<'c>,
    manifest_id: i64,
    now_ms: i64,
) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "UPDATE tag SET end_ms = CASE WHEN expiration_ms IS NOT NULL AND expiration_ms <= $1 \
         THEN expiration_ms ELSE $1 END WHERE manifest_id = $2 AND end_ms IS NULL \
         RETURNING name, expiration_ms",
    )
    .bind(now_ms)
    .bind(manifest_id)
    .fetch_all(ex)
    .await?;
    let mut names = Vec::new();
    for r in rows {
        let expiration: Option<i64> = r.try_get("expiration_ms")?;
        if expiration.is_none_or(|e| e > now_ms) {
            names.push(r.try_get("name")?);
        }
    }
    Ok(names)
}

/// Changes the expiration of the live lifetime `id` from `old` to `new`; false when the lifetime
/// changed meanwhile (moved, ended, or given another expiration).
pub async fn change_expiration<'c>(
    ex: impl Exec<'c>,
    id: i64,
    old: Option<i64>,
    new: Option<i64>,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE tag SET expiration_ms = $1 WHERE id = $2 AND end_ms IS NULL \
         AND (expiration_ms = $3 OR (expiration_ms IS NULL AND $3 IS NULL))",
    )
    .bind(new)
    .bind(id)
    .bind(old)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether a lifetime of the repository that points at `manifest_id` is live or ended after
/// `cutoff_ms`: the manifest is inside the time machine window.
pub async fn within_window<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    manifest_id: i64,
    cutoff_ms: i64,
) -> DbResult<bool> {
    let sql = format!(
        "SELECT 1 AS one FROM tag t WHERE t.repository_id = $1 AND t.manifest_id = $2 AND {} LIMIT 1",
        retained("$3")
    );
    let row = sqlx::query(&sql)
        .bind(repository_id)
        .bind(manifest_id)
        .bind(cutoff_ms)
        .fetch_optional(ex)
        .await?;
    Ok(row.is_some())
}

/// An expired lifetime the expiration worker ended.
#[derive(Clone, Debug)]
pub struct Expired {
    pub repository_id: i64,
    pub name: String,
    pub manifest_id: i64,
    pub expiration_ms: i64,
}

/// Ends up to `limit` lifetimes whose expiration has passed, at their expiration time.
pub async fn end_expired<'c>(ex: impl Exec<'c>, now_ms: i64, limit: i64) -> DbResult<Vec<Expired>> {
    let rows = sqlx::query(
        "UPDATE tag SET end_ms = expiration_ms WHERE id IN (SELECT id FROM tag \
         WHERE end_ms IS NULL AND expiration_ms IS NOT NULL AND expiration_ms <= $1 LIMIT $2) \
         RETURNING repository_id, name, manifest_id, expiration_ms",
    )
    .bind(now_ms)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Expired {
                repository_id: r.try_get("repository_id")?,
                name: r.try_get("name")?,
                manifest_id: r.try_get("manifest_id")?,
                expiration_ms: r.try_get("expiration_ms")?,
            })
        })
        .collect()
}
