//! Reading the audit log (`log_entry`) for the usage-logs API, its export jobs (`log_export`)
//! and the archiving of old entries.
//!
//! Rule: a page is read newest first by keyset on `(created_ms, id)` inside one scope (a
//! namespace, a repository, the installation) and a half-open time range, using the scope's
//! `(scope, created_ms, id, kind)` index (migration 0008); no query here counts or offsets
//! through the whole table.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Backend, DbResult, Exec, Tx};

/// Whose entries to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Entries of a namespace (its `account_id`).
    Namespace(i64),
    /// Entries of a repository.
    Repository(i64),
    /// Every entry of the installation.
    All,
}

/// Which entries of a scope to read.
#[derive(Clone, Copy, Debug)]
pub struct Filter {
    /// Inclusive lower bound (ms).
    pub start_ms: i64,
    /// Exclusive upper bound (ms).
    pub end_ms: i64,
    /// Only entries performed by this account.
    pub performer_id: Option<i64>,
}

/// One entry as the API shows it: the entry and what its performer and namespace are now.
#[derive(Clone, Debug)]
pub struct LogRow {
    pub id: i64,
    pub kind: String,
    pub namespace: Option<String>,
    pub repository: Option<String>,
    pub performer: Option<String>,
    pub ip: Option<String>,
    pub metadata: String,
    pub created_ms: i64,
    /// How many events the entry stands for (pulls merged into one entry, migration 0016).
    pub n: i64,
    pub performer_email: Option<String>,
    pub performer_kind: Option<String>,
    /// `user` or `org` (of the namespace the entry belongs to), when it still exists.
    pub namespace_kind: Option<String>,
    pub namespace_email: Option<String>,
}

/// Builds the WHERE clause of a scope and filter; returns it and the next parameter number.
fn conditions(scope: Scope, filter: &Filter) -> (String, Vec<i64>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    match scope {
        Scope::Namespace(id) => {
            params.push(id);
            clauses.push(format!("l.account_id = ${}", params.len()));
        }
        Scope::Repository(id) => {
            params.push(id);
            clauses.push(format!("l.repository_id = ${}", params.len()));
        }
        Scope::All => {}
    }
    params.push(filter.start_ms);
    clauses.push(format!("l.created_ms >= ${}", params.len()));
    params.push(filter.end_ms);
    clauses.push(format!("l.created_ms < ${}", params.len()));
    if let Some(p) = filter.performer_id {
        params.push(p);
        clauses.push(format!("l.performer_id = ${}", params.len()));
    }
    (clauses.join(" AND "), params)
}

/// At most `limit` entries of `scope` matching `filter`, newest first, strictly older than
/// `before` (`(created_ms, id)` of the last entry of the previous page) when given.
pub async fn page<'c>(
    ex: impl Exec<'c>,
    scope: Scope,
    filter: &Filter,
    before: Option<(i64, i64)>,
    limit: i64,
) -> DbResult<Vec<LogRow>> {
    let (mut clause, mut params) = conditions(scope, filter);
    if let Some((ms, id)) = before {
        params.push(ms);
        let t = params.len();
        params.push(id);
        let i = params.len();
        clause.push_str(&format!(
            " AND (l.created_ms < ${t} OR (l.created_ms = ${t} AND l.id < ${i}))"
        ));
    }
    // The limit is written into the statement, not bound: with a bound limit PostgreSQL's
    // generic plan (used after a few executions of a prepared statement) assumes a large one
    // and may read every entry of the range to sort it, instead of walking the index.
    let limit = limit.clamp(1, 10_000);
    let sql = format!(
        "SELECT l.id, l.kind, l.namespace_name, l.repository_name, l.performer_name, l.ip, \
         l.metadata, l.created_ms, l.n, p.email AS performer_email, p.kind AS performer_kind, \
         a.kind AS namespace_kind, a.email AS namespace_email \
         FROM log_entry l \
         LEFT JOIN namespace p ON p.id = l.performer_id \
         LEFT JOIN namespace a ON a.id = l.account_id \
         WHERE {clause} ORDER BY l.created_ms DESC, l.id DESC LIMIT {limit}"
    );
    let mut q = sqlx::query(&sql);
    for p in params {
        q = q.bind(p);
    }
    let rows = q.fetch_all(ex).await?;
    rows.iter().map(log_row).collect()
}

fn log_row(r: &AnyRow) -> DbResult<LogRow> {
    Ok(LogRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        namespace: r.try_get("namespace_name")?,
        repository: r.try_get("repository_name")?,
        performer: r.try_get("performer_name")?,
        ip: r.try_get("ip")?,
        metadata: r.try_get("metadata")?,
        created_ms: r.try_get("created_ms")?,
        n: r.try_get("n")?,
        performer_email: r.try_get("performer_email")?,
        performer_kind: r.try_get("performer_kind")?,
        namespace_kind: r.try_get("namespace_kind")?,
        namespace_email: r.try_get("namespace_email")?,
    })
}

/// Entries of `scope` matching `filter` counted per kind and per day (days since the epoch,
/// UTC), ordered by day then kind.
pub async fn counts_per_day<'c>(
    ex: impl Exec<'c>,
    scope: Scope,
    filter: &Filter,
) -> DbResult<Vec<(String, i64, i64)>> {
    let (clause, params) = conditions(scope, filter);
    let sql = format!(
        "SELECT l.kind AS kind, l.created_ms / 86400000 AS day, CAST(SUM(l.n) AS BIGINT) AS n \
         FROM log_entry l WHERE {clause} GROUP BY l.kind, l.created_ms / 86400000 ORDER BY day, kind"
    );
    let mut q = sqlx::query(&sql);
    for p in params {
        q = q.bind(p);
    }
    let rows = q.fetch_all(ex).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("kind")?, r.try_get("day")?, r.try_get("n")?)))
        .collect()
}

/// Entries of `scope` per kind and hour (hours since the epoch) for the whole hours
/// `[start_hour, end_hour)`, from `log_count`.
pub async fn counts_per_hour<'c>(
    ex: impl Exec<'c>,
    scope: Scope,
    start_hour: i64,
    end_hour: i64,
) -> DbResult<Vec<(String, i64, i64)>> {
    // Rows with repository -1 hold a namespace's totals, rows with account -1 the
    // installation's (see `audit::count_batch`), so no scope sums more than kinds x hours.
    let (clause, first) = match scope {
        Scope::Namespace(_) => ("account_id = $3 AND repository_id = -1 AND ", true),
        Scope::Repository(_) => ("repository_id = $3 AND ", true),
        Scope::All => ("account_id = -1 AND repository_id = -1 AND ", false),
    };
    let sql = format!(
        "SELECT kind, hour, CAST(SUM(n) AS BIGINT) AS n FROM log_count \
         WHERE {clause}hour >= $1 AND hour < $2 GROUP BY kind, hour"
    );
    let mut q = sqlx::query(&sql).bind(start_hour).bind(end_hour);
    if first {
        let (Scope::Namespace(id) | Scope::Repository(id)) = scope else {
            unreachable!("scoped")
        };
        q = q.bind(id);
    }
    let rows = q.fetch_all(ex).await?;
    rows.iter()
        // SUM of a BIGINT is NUMERIC on PostgreSQL, which the Any driver cannot read: cast.
        .map(|r| Ok((r.try_get("kind")?, r.try_get("hour")?, r.try_get("n")?)))
        .collect()
}

/// An account's id and kind by name.
pub async fn account_by_name<'c>(ex: impl Exec<'c>, name: &str) -> DbResult<Option<(i64, String)>> {
    let row = sqlx::query("SELECT id, kind FROM namespace WHERE name = $1")
        .bind(name)
        .fetch_optional(ex)
        .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("kind")?)))
        .transpose()
}

/// A repository's id by namespace and name.
pub async fn repository_id<'c>(
    ex: impl Exec<'c>,
    namespace: &str,
    name: &str,
) -> DbResult<Option<i64>> {
    let row = sqlx::query(
        "SELECT r.id FROM repository r JOIN namespace n ON n.id = r.namespace_id \
         WHERE n.name = $1 AND r.name = $2",
    )
    .bind(namespace)
    .bind(name)
    .fetch_optional(ex)
    .await?;
    row.map(|r| r.try_get("id")).transpose().map_err(Into::into)
}

// ---- archiving ----

/// At most `limit` of the oldest entries created before `before_ms`, oldest first.
pub async fn oldest_before<'c>(
    ex: impl Exec<'c>,
    before_ms: i64,
    limit: i64,
) -> DbResult<Vec<LogRow>> {
    let rows = sqlx::query(
        "SELECT l.id, l.kind, l.namespace_name, l.repository_name, l.performer_name, l.ip, \
         l.metadata, l.created_ms, l.n, NULL AS performer_email, NULL AS performer_kind, \
         NULL AS namespace_kind, NULL AS namespace_email \
         FROM log_entry l WHERE l.created_ms < $1 ORDER BY l.created_ms, l.id LIMIT $2",
    )
    .bind(before_ms)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter().map(log_row).collect()
}

/// Deletes the entries with these ids (at most a few thousand at a time) and takes them off
/// `log_count`, in the caller's transaction.
pub async fn delete_ids(tx: &mut Tx, ids: &[i64]) -> DbResult<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let list: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let list = list.join(", ");
    let sql = format!(
        "SELECT COALESCE(account_id, 0) AS a, COALESCE(repository_id, 0) AS r, kind, \
         created_ms / 3600000 AS hour, CAST(SUM(n) AS BIGINT) AS n FROM log_entry WHERE id IN ({list}) \
         GROUP BY COALESCE(account_id, 0), COALESCE(repository_id, 0), kind, created_ms / 3600000 \
         ORDER BY 1, 2, 3, 4"
    );
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(*id);
    }
    let groups = q.fetch_all(&mut **tx).await?;
    let mut decrements: std::collections::BTreeMap<(i64, i64, String, i64), i64> =
        Default::default();
    for g in &groups {
        let (a, r, kind, hour, n): (i64, i64, String, i64, i64) = (
            g.try_get("a")?,
            g.try_get("r")?,
            g.try_get("kind")?,
            g.try_get("hour")?,
            g.try_get("n")?,
        );
        // The entry's own row, its namespace's total and the installation's total.
        for key in [(a, r), (a, -1), (-1, -1)] {
            *decrements
                .entry((key.0, key.1, kind.clone(), hour))
                .or_insert(0) += n;
        }
    }
    for ((a, r, kind, hour), n) in decrements {
        sqlx::query(
            "UPDATE log_count SET n = n - $5 \
             WHERE account_id = $1 AND repository_id = $2 AND kind = $3 AND hour = $4",
        )
        .bind(a)
        .bind(r)
        .bind(&kind)
        .bind(hour)
        .bind(n)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("DELETE FROM log_count WHERE n <= 0")
        .execute(&mut **tx)
        .await?;
    let sql = format!("DELETE FROM log_entry WHERE id IN ({list})");
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.execute(&mut **tx).await?.rows_affected())
}

// ---- export jobs ----

/// A requested export.
#[derive(Clone, Debug)]
pub struct ExportRow {
    pub id: i64,
    pub export_id: String,
    pub account_id: Option<i64>,
    pub namespace: String,
    pub repository_id: Option<i64>,
    pub repository: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub callback_url: Option<String>,
    pub callback_email: Option<String>,
    pub link_origin: String,
    pub state: String,
    pub attempts: i64,
    pub storage_key: Option<String>,
    pub expires_ms: Option<i64>,
}

/// What a new export asks for.
#[derive(Clone, Debug)]
pub struct NewExport<'a> {
    pub export_id: &'a str,
    pub account_id: i64,
    pub namespace: &'a str,
    pub repository_id: Option<i64>,
    pub repository: Option<&'a str>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub callback_url: Option<&'a str>,
    pub callback_email: Option<&'a str>,
    pub link_origin: &'a str,
}

pub async fn insert_export<'c>(ex: impl Exec<'c>, e: &NewExport<'_>, now_ms: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO log_export (export_id, account_id, namespace_name, repository_id, \
         repository_name, start_ms, end_ms, callback_url, callback_email, link_origin, state, \
         attempts, next_attempt_ms, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $11, 'queued', 0, $10, $10)",
    )
    .bind(e.export_id)
    .bind(e.account_id)
    .bind(e.namespace)
    .bind(e.repository_id)
    .bind(e.repository)
    .bind(e.start_ms)
    .bind(e.end_ms)
    .bind(e.callback_url)
    .bind(e.callback_email)
    .bind(now_ms)
    .bind(e.link_origin)
    .execute(ex)
    .await?;
    Ok(())
}

const EXPORT_COLUMNS: &str = "id, export_id, account_id, namespace_name, repository_id, \
     repository_name, start_ms, end_ms, callback_url, callback_email, link_origin, state, \
     attempts, storage_key, expires_ms";

fn export_row(r: &AnyRow) -> DbResult<ExportRow> {
    Ok(ExportRow {
        id: r.try_get("id")?,
        export_id: r.try_get("export_id")?,
        account_id: r.try_get("account_id")?,
        namespace: r.try_get("namespace_name")?,
        repository_id: r.try_get("repository_id")?,
        repository: r.try_get("repository_name")?,
        start_ms: r.try_get("start_ms")?,
        end_ms: r.try_get("end_ms")?,
        callback_url: r.try_get("callback_url")?,
        callback_email: r.try_get("callback_email")?,
        link_origin: r.try_get("link_origin")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        storage_key: r.try_get("storage_key")?,
        expires_ms: r.try_get("expires_ms")?,
    })
}

/// Claims one due export (queued and due, or running with an expired lease) until
/// `lease_until_ms`, counting the attempt. On PostgreSQL the row is locked with `SKIP LOCKED`
/// so replicas never claim the same job; SQLite has one writer.
pub async fn claim_export<'c>(
    ex: impl Exec<'c>,
    backend: Backend,
    now_ms: i64,
    lease_until_ms: i64,
) -> DbResult<Option<ExportRow>> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE log_export SET state = 'running', claimed_until_ms = $2, attempts = attempts + 1 \
         WHERE id = (SELECT id FROM log_export \
           WHERE (state = 'queued' AND next_attempt_ms <= $1) \
              OR (state = 'running' AND claimed_until_ms < $1) \
           ORDER BY id LIMIT 1{lock}) \
         RETURNING {EXPORT_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(now_ms)
        .bind(lease_until_ms)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(export_row).transpose()
}

/// Marks an export written (to `storage_key`, its link valid until `expires_ms`).
pub async fn export_written<'c>(
    ex: impl Exec<'c>,
    id: i64,
    storage_key: &str,
    expires_ms: i64,
) -> DbResult<()> {
    sqlx::query("UPDATE log_export SET storage_key = $2, expires_ms = $3 WHERE id = $1")
        .bind(id)
        .bind(storage_key)
        .bind(expires_ms)
        .execute(ex)
        .await?;
    Ok(())
}

/// Ends an export: `done`, `failed`, or back to `queued` for a retry at `next_attempt_ms`.
pub async fn export_finished<'c>(
    ex: impl Exec<'c>,
    id: i64,
    state: &str,
    error: Option<&str>,
    next_attempt_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE log_export SET state = $2, error = $3, next_attempt_ms = $4, claimed_until_ms = NULL \
         WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(error)
    .bind(next_attempt_ms)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn export_by_id<'c>(ex: impl Exec<'c>, export_id: &str) -> DbResult<Option<ExportRow>> {
    let sql = format!("SELECT {EXPORT_COLUMNS} FROM log_export WHERE export_id = $1");
    let row = sqlx::query(&sql).bind(export_id).fetch_optional(ex).await?;
    row.as_ref().map(export_row).transpose()
}

/// Exports whose links expired before `now_ms` and whose files are still stored.
pub async fn expired_exports<'c>(ex: impl Exec<'c>, now_ms: i64) -> DbResult<Vec<ExportRow>> {
    let sql = format!(
        "SELECT {EXPORT_COLUMNS} FROM log_export \
         WHERE storage_key IS NOT NULL AND expires_ms < $1 ORDER BY id LIMIT 100"
    );
    let rows = sqlx::query(&sql).bind(now_ms).fetch_all(ex).await?;
    rows.iter().map(export_row).collect()
}

pub async fn export_file_removed<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<()> {
    sqlx::query("UPDATE log_export SET storage_key = NULL WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}
