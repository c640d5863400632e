//! The audit log (`log_entry`), written in batches by `service::operations::audit`.

use std::collections::HashMap;

use sqlx::Row;

use crate::db::{Backend, DbResult, Exec, Tx};

/// One entry to write; ids are resolved from the names when missing.
#[derive(Clone, Debug)]
pub struct NewEntry {
    pub kind: String,
    pub namespace: Option<String>,
    pub repository: Option<String>,
    pub performer_id: Option<i64>,
    pub performer: Option<String>,
    pub ip: Option<String>,
    pub metadata: String,
    pub created_ms: i64,
}

/// (namespace, repository) names to their ids, resolved once per batch.
type NameIds<'a> = HashMap<(Option<&'a str>, Option<&'a str>), (Option<i64>, Option<i64>)>;

/// Rows per INSERT statement (11 parameters each, well within both databases' limits).
const ROWS_PER_STATEMENT: usize = 100;

/// The kind whose entries are merged (see [`SampleKey`]).
pub const PULL: &str = "pull_repo";

/// What makes two pulls one entry: the same repository, reference (the metadata names the tag
/// or digest, and the OAuth token when one was used), performer and hour (hours since the
/// epoch). The entry keeps the first pull's time and client address; `n` counts them all.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SampleKey {
    pub namespace: Option<String>,
    pub repository: Option<String>,
    pub metadata: String,
    pub performer_id: Option<i64>,
    pub hour: i64,
}

impl SampleKey {
    /// The key of a pull entry; `None` for entries that are never merged.
    pub fn of(e: &NewEntry) -> Option<SampleKey> {
        (e.kind == PULL && e.repository.is_some()).then(|| SampleKey {
            namespace: e.namespace.clone(),
            repository: e.repository.clone(),
            metadata: e.metadata.clone(),
            performer_id: e.performer_id,
            hour: e.created_ms.div_euclid(3_600_000),
        })
    }
}

/// The entry id each key's pulls are added to (kept by the audit writer between batches).
pub type Samples = HashMap<SampleKey, i64>;

/// Writes entries inside the caller's transaction, one row each (see [`insert_sampled`]).
pub async fn insert_batch(tx: &mut Tx, entries: &[NewEntry]) -> DbResult<()> {
    insert_sampled(tx, entries, None).await.map(|_| ())
}

/// Writes entries inside the caller's transaction: the namespace and repository ids are
/// resolved once per distinct name in the batch, then rows go in with multi-row INSERTs of
/// `ROWS_PER_STATEMENT` (a statement per row could not keep up with `pull_repo` records at
/// tens of thousands of pulls a second).
///
/// With `samples`, pulls are merged: the pulls of one [`SampleKey`] add to the entry `samples`
/// names (when it still exists) or become one new entry whose `n` counts them. Answers the new
/// entries' keys and ids, for the caller to add to `samples` once the transaction commits.
/// `log_count` counts every entry given, merged or not.
pub async fn insert_sampled(
    tx: &mut Tx,
    entries: &[NewEntry],
    samples: Option<&Samples>,
) -> DbResult<Vec<(SampleKey, i64)>> {
    let backend = tx.backend();
    let mut ids: NameIds = HashMap::new();
    for e in entries {
        let key = (e.namespace.as_deref(), e.repository.as_deref());
        if ids.contains_key(&key) {
            continue;
        }
        let account = match key.0 {
            Some(ns) => sqlx::query("SELECT id FROM namespace WHERE name = $1")
                .bind(ns)
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| r.try_get::<i64, _>("id"))
                .transpose()?,
            None => None,
        };
        let repository = match key {
            (Some(ns), Some(repo)) => sqlx::query(
                "SELECT r.id FROM repository r JOIN namespace n ON n.id = r.namespace_id \
                 WHERE n.name = $1 AND r.name = $2",
            )
            .bind(ns)
            .bind(repo)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get::<i64, _>("id"))
            .transpose()?,
            _ => None,
        };
        ids.insert(key, (account, repository));
    }
    // Rows to insert with their counts, and the merged pulls' groups.
    let mut rows: Vec<(&NewEntry, i64)> = Vec::with_capacity(entries.len());
    let mut added = Vec::new();
    match samples {
        None => rows.extend(entries.iter().map(|e| (e, 1))),
        Some(samples) => {
            let mut groups: HashMap<SampleKey, (usize, i64)> = HashMap::new();
            let mut order = Vec::new();
            for (i, e) in entries.iter().enumerate() {
                match SampleKey::of(e) {
                    None => rows.push((e, 1)),
                    Some(key) => match groups.get_mut(&key) {
                        Some((_, n)) => *n += 1,
                        None => {
                            groups.insert(key.clone(), (i, 1));
                            order.push(key);
                        }
                    },
                }
            }
            for key in order {
                let (first, n) = groups[&key];
                if let Some(id) = samples.get(&key) {
                    let done = sqlx::query("UPDATE log_entry SET n = n + $1 WHERE id = $2")
                        .bind(n)
                        .bind(*id)
                        .execute(&mut **tx)
                        .await?;
                    if done.rows_affected() == 1 {
                        continue;
                    }
                }
                // A new entry for this key (one statement each: its id is needed, and a
                // key gets a new entry at most once an hour).
                let e = &entries[first];
                let (account, repository) = ids
                    .get(&(e.namespace.as_deref(), e.repository.as_deref()))
                    .copied()
                    .unwrap_or_default();
                let row = sqlx::query(
                    "INSERT INTO log_entry (kind, account_id, namespace_name, repository_id, \
                     repository_name, performer_id, performer_name, ip, metadata, created_ms, n) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                )
                .bind(&e.kind)
                .bind(account)
                .bind(e.namespace.as_deref())
                .bind(repository)
                .bind(e.repository.as_deref())
                .bind(e.performer_id)
                .bind(e.performer.as_deref())
                .bind(e.ip.as_deref())
                .bind(&e.metadata)
                .bind(e.created_ms)
                .bind(n)
                .fetch_one(&mut **tx)
                .await?;
                added.push((key, row.try_get::<i64, _>("id")?));
            }
        }
    }
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO log_entry (kind, account_id, namespace_name, repository_id, repository_name, \
             performer_id, performer_name, ip, metadata, created_ms, n) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            let params: Vec<String> = match backend {
                // SQLite looks a named parameter up by a linear scan of the statement's names,
                // once per parameter bound: with `$N` a 1,000-parameter INSERT costs a million
                // steps. Anonymous `?` parameters are bound in order with no lookup.
                Backend::Sqlite => vec!["?".to_owned(); 11],
                Backend::Postgres => (1..=11).map(|k| format!("${}", i * 11 + k)).collect(),
            };
            sql.push('(');
            sql.push_str(&params.join(", "));
            sql.push(')');
        }
        // Only the full-size statement is worth keeping prepared: caching every partial size
        // (per connection) costs memory for statements used once.
        let mut q = sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_STATEMENT);
        for (e, n) in chunk {
            let (account, repository) = ids
                .get(&(e.namespace.as_deref(), e.repository.as_deref()))
                .copied()
                .unwrap_or_default();
            q = q
                .bind(&e.kind)
                .bind(account)
                .bind(e.namespace.as_deref())
                .bind(repository)
                .bind(e.repository.as_deref())
                .bind(e.performer_id)
                .bind(e.performer.as_deref())
                .bind(e.ip.as_deref())
                .bind(&e.metadata)
                .bind(e.created_ms)
                .bind(*n);
        }
        q.execute(&mut **tx).await?;
    }
    count_batch(tx, entries, &ids).await?;
    Ok(added)
}

/// Rows per upsert of [`count_batch`] (5 parameters each).
const COUNTS_PER_STATEMENT: usize = 100;

/// Adds a batch's entries to `log_count`, in key order so concurrent writers lock rows in the
/// same order: per namespace, repository, kind and hour (0 for none), plus the namespace's
/// total (repository -1) and the installation's (account and repository -1), so that an
/// aggregate over a namespace or the installation sums kinds x hours rows, not repositories too.
async fn count_batch(tx: &mut Tx, entries: &[NewEntry], ids: &NameIds<'_>) -> DbResult<()> {
    let mut counts: std::collections::BTreeMap<(i64, i64, &str, i64), i64> = Default::default();
    for e in entries {
        let (account, repository) = ids
            .get(&(e.namespace.as_deref(), e.repository.as_deref()))
            .copied()
            .unwrap_or_default();
        let (a, r) = (account.unwrap_or(0), repository.unwrap_or(0));
        let hour = e.created_ms.div_euclid(3_600_000);
        for (a, r) in [(a, r), (a, -1), (-1, -1)] {
            *counts.entry((a, r, e.kind.as_str(), hour)).or_insert(0) += 1;
        }
    }
    let counts: Vec<_> = counts.into_iter().collect();
    for chunk in counts.chunks(COUNTS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = i * 5;
                format!(
                    "(${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO log_count (account_id, repository_id, kind, hour, n) VALUES {} \
             ON CONFLICT (account_id, repository_id, kind, hour) DO UPDATE SET n = log_count.n + excluded.n",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql).persistent(chunk.len() == COUNTS_PER_STATEMENT);
        for ((account, repository, kind, hour), n) in chunk {
            q = q
                .bind(*account)
                .bind(*repository)
                .bind(*kind)
                .bind(*hour)
                .bind(*n);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// A stored entry.
#[derive(Clone, Debug)]
pub struct EntryRow {
    pub id: i64,
    pub kind: String,
    pub account_id: Option<i64>,
    pub namespace: Option<String>,
    pub repository_id: Option<i64>,
    pub repository: Option<String>,
    pub performer_id: Option<i64>,
    pub performer: Option<String>,
    pub ip: Option<String>,
    pub metadata: String,
    pub created_ms: i64,
    /// How many events the entry stands for (merged pulls; 1 otherwise).
    pub n: i64,
}

/// Entries of a namespace, newest first (the read endpoints arrive later; tests use this).
pub async fn of_namespace<'c>(
    ex: impl Exec<'c>,
    namespace: &str,
    limit: i64,
) -> DbResult<Vec<EntryRow>> {
    let rows = sqlx::query(
        "SELECT id, kind, account_id, namespace_name, repository_id, repository_name, performer_id, performer_name, ip, metadata, created_ms, n \
         FROM log_entry WHERE namespace_name = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(namespace)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(EntryRow {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                account_id: r.try_get("account_id")?,
                namespace: r.try_get("namespace_name")?,
                repository_id: r.try_get("repository_id")?,
                repository: r.try_get("repository_name")?,
                performer_id: r.try_get("performer_id")?,
                performer: r.try_get("performer_name")?,
                ip: r.try_get("ip")?,
                metadata: r.try_get("metadata")?,
                created_ms: r.try_get("created_ms")?,
                n: r.try_get("n")?,
            })
        })
        .collect()
}

/// Pull and push entries of a repository since `since_ms` (popularity).
pub async fn action_count<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    since_ms: i64,
) -> DbResult<i64> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM log_entry WHERE repository_id = $1 AND created_ms >= $2 AND kind IN ('pull_repo', 'push_repo')",
    )
    .bind(repository_id)
    .bind(since_ms)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("n")?)
}

/// Pull and push entries of a repository per day (days since the epoch) since `since_ms`.
pub async fn daily_counts<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    since_ms: i64,
) -> DbResult<Vec<(i64, i64)>> {
    let rows = sqlx::query(
        "SELECT created_ms / 86400000 AS day, CAST(SUM(n) AS BIGINT) AS n FROM log_entry \
         WHERE repository_id = $1 AND created_ms >= $2 AND kind IN ('pull_repo', 'push_repo') \
         GROUP BY created_ms / 86400000",
    )
    .bind(repository_id)
    .bind(since_ms)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("day")?, r.try_get("n")?)))
        .collect()
}
