//! Repositories: the row every content query hangs off ([`RepoRow`], looked up by name), creation,
//! the per-repository write lock ([`lock`]), the `/v2` catalog, and the REST API's listing with
//! Quay's filters, settings, stars and deletion.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Backend, DbResult, Exec, Tx, collate_c};

#[derive(Clone, Debug)]
pub struct RepoRow {
    pub id: i64,
    pub namespace_id: i64,
    pub namespace: String,
    pub name: String,
    /// `public` or `private`.
    pub visibility: String,
    pub description: Option<String>,
    pub kind: String,
    pub state: String,
    pub created_ms: i64,
}

impl RepoRow {
    pub fn is_public(&self) -> bool {
        self.visibility == "public"
    }
}

const SELECT: &str = "SELECT r.id, r.namespace_id, n.name AS namespace, r.name, r.visibility, \
     r.description, r.kind, r.state, r.created_ms FROM repository r JOIN namespace n ON n.id = r.namespace_id";

fn from_row(row: &AnyRow) -> Result<RepoRow, sqlx::Error> {
    Ok(RepoRow {
        id: row.try_get("id")?,
        namespace_id: row.try_get("namespace_id")?,
        namespace: row.try_get("namespace")?,
        name: row.try_get("name")?,
        visibility: row.try_get("visibility")?,
        description: row.try_get("description")?,
        kind: row.try_get("kind")?,
        state: row.try_get("state")?,
        created_ms: row.try_get("created_ms")?,
    })
}

pub async fn get<'c>(ex: impl Exec<'c>, namespace: &str, name: &str) -> DbResult<Option<RepoRow>> {
    let row = sqlx::query(&format!("{SELECT} WHERE n.name = $1 AND r.name = $2"))
        .bind(namespace)
        .bind(name)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

pub async fn by_id<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<Option<RepoRow>> {
    let row = sqlx::query(&format!("{SELECT} WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Inserts a repository; an existing one is a unique violation.
pub async fn insert<'c>(
    ex: impl Exec<'c>,
    namespace_id: i64,
    name: &str,
    visibility: &str,
    description: Option<&str>,
    now_ms: i64,
) -> DbResult<i64> {
    let row = sqlx::query(
        "INSERT INTO repository (namespace_id, name, visibility, description, created_ms) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(namespace_id)
    .bind(name)
    .bind(visibility)
    .bind(description)
    .bind(now_ms)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("id")?)
}

/// Serialises writers of one repository's manifests and tags, and garbage collection of it,
/// until the transaction ends: a row lock on PostgreSQL (`FOR NO KEY UPDATE`, so inserts that
/// merely reference the repository, such as blob links, do not queue behind it); on SQLite
/// write transactions are already serialised.
///
/// Returns whether the repository still exists. A caller must stop (`NotFound`) when it does
/// not: the repository was deleted since it was looked up, and anything it inserted would
/// violate a foreign key. Once this answered `true`, a concurrent delete waits for the
/// transaction to end.
///
/// On PostgreSQL the namespace row is share-locked first (`FOR KEY SHARE`, what a foreign-key
/// check of a row referencing it takes): a namespace delete locks the namespace and then, by
/// cascade, its repositories, so a writer that locked the repository and only later touched a
/// row referencing the namespace (the quota accounting) would deadlock with it. Taking the
/// locks in the deleter's order makes the writer wait for the delete and then find nothing.
pub async fn lock(tx: &mut Tx, repository_id: i64) -> DbResult<bool> {
    if tx.backend() == Backend::Postgres {
        let namespace = sqlx::query(
            "SELECT n.id FROM namespace n JOIN repository r ON r.namespace_id = n.id \
             WHERE r.id = $1 FOR KEY SHARE OF n",
        )
        .bind(repository_id)
        .fetch_optional(&mut **tx)
        .await?;
        if namespace.is_none() {
            return Ok(false);
        }
    }
    let sql = match tx.backend() {
        Backend::Postgres => "SELECT id FROM repository WHERE id = $1 FOR NO KEY UPDATE",
        Backend::Sqlite => "SELECT id FROM repository WHERE id = $1",
    };
    let row = sqlx::query(sql)
        .bind(repository_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

/// Keeps the repository from being deleted until the transaction ends, without serialising
/// other writers (`FOR KEY SHARE` on PostgreSQL, the lock a foreign-key check takes; on SQLite
/// the write transaction already excludes a delete). Returns whether it still exists: rows that
/// reference it (uploads, blob links) may be inserted only when it does.
pub async fn hold(tx: &mut Tx, repository_id: i64) -> DbResult<bool> {
    let sql = match tx.backend() {
        Backend::Postgres => "SELECT id FROM repository WHERE id = $1 FOR KEY SHARE",
        Backend::Sqlite => "SELECT id FROM repository WHERE id = $1",
    };
    let row = sqlx::query(sql)
        .bind(repository_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

/// Who is listing repositories: decides which rows the catalog may show.
#[derive(Clone, Copy, Debug)]
pub enum Viewer {
    Anonymous,
    /// A user or robot (by account id): public repositories, those in the user's namespace, those
    /// granted directly or through a team, and all of organizations the account administers.
    User(i64),
    /// Sees everything.
    Superuser,
}

/// One page of full repository names (`namespace/name`) visible to `viewer`, in byte order,
/// strictly after `last`.
pub async fn catalog_page<'c>(
    ex: impl Exec<'c>,
    backend: Backend,
    viewer: Viewer,
    last: Option<&str>,
    limit: i64,
) -> DbResult<Vec<String>> {
    let collate = collate_c(backend);
    let full = "(n.name || '/' || r.name)";
    let visible = match viewer {
        Viewer::Superuser => "TRUE",
        Viewer::Anonymous => "r.visibility = 'public'",
        Viewer::User(_) => {
            "(r.visibility = 'public' OR r.namespace_id = $3 \
             OR r.id IN (SELECT repository_id FROM repo_user_permission WHERE account_id = $3) \
             OR r.id IN (SELECT p.repository_id FROM repo_team_permission p JOIN team_member m ON m.team_id = p.team_id WHERE m.account_id = $3) \
             OR r.namespace_id IN (SELECT t.org_id FROM team t JOIN team_member m ON m.team_id = t.id WHERE m.account_id = $3 AND t.role = 'admin'))"
        }
    };
    let sql = format!(
        "SELECT {full} AS full_name FROM repository r JOIN namespace n ON n.id = r.namespace_id \
         WHERE {visible} AND ($1 IS NULL OR {full}{collate} > $1{collate}) \
         ORDER BY {full}{collate} LIMIT $2"
    );
    let mut q = sqlx::query(&sql).bind(last).bind(limit);
    if let Viewer::User(id) = viewer {
        q = q.bind(id);
    }
    let rows = q.fetch_all(ex).await?;
    rows.iter().map(|r| Ok(r.try_get("full_name")?)).collect()
}

/// One repository of a listing.
#[derive(Clone, Debug)]
pub struct ListedRepo {
    pub id: i64,
    pub namespace: String,
    pub name: String,
    pub visibility: String,
    pub description: Option<String>,
    pub kind: String,
    pub state: String,
    pub starred: bool,
}

/// Who lists and what they asked for.
pub struct ListQuery<'a> {
    /// The listing account (user or robot), if signed in.
    pub viewer: Option<i64>,
    /// Sees every repository.
    pub superuser: bool,
    pub namespace: Option<&'a str>,
    pub starred_only: bool,
    pub include_public: bool,
    /// Only repositories with an id above this (pagination).
    pub after_id: i64,
    pub limit: i64,
}

/// Repositories visible to the viewer, in id order: public ones (when asked, or in the given
/// namespace), ones in the viewer's own namespace, ones granted directly or through a team, and
/// all of an organization the viewer administers.
/// SQL predicate on a repository aliased `r`: the account bound as `$1` (-1 for anonymous) sees
/// it, public ones included when asked.
fn visible_to(superuser: bool, include_public: bool) -> String {
    if superuser {
        return "TRUE".to_owned();
    }
    let public = if include_public {
        "r.visibility = 'public' OR "
    } else {
        ""
    };
    format!(
        "({public} r.namespace_id = $1 \
         OR r.id IN (SELECT repository_id FROM repo_user_permission WHERE account_id = $1) \
         OR r.id IN (SELECT p.repository_id FROM repo_team_permission p JOIN team_member m ON m.team_id = p.team_id WHERE m.account_id = $1) \
         OR r.namespace_id IN (SELECT t.org_id FROM team t JOIN team_member m ON m.team_id = t.id WHERE m.account_id = $1 AND t.role = 'admin'))"
    )
}

pub async fn list<'c>(ex: impl Exec<'c>, q: &ListQuery<'_>) -> DbResult<Vec<ListedRepo>> {
    let visible = visible_to(
        q.superuser,
        q.include_public || q.namespace.is_some() || q.starred_only,
    );
    let sql = format!(
        "SELECT r.id, n.name AS namespace, r.name, r.visibility, r.description, r.kind, r.state, \
         CAST(CASE WHEN EXISTS (SELECT 1 FROM repo_star s WHERE s.repository_id = r.id AND s.account_id = $1) THEN 1 ELSE 0 END AS BIGINT) AS starred \
         FROM repository r JOIN namespace n ON n.id = r.namespace_id \
         WHERE {visible} AND ($2 = '' OR n.name = $2) \
         AND ($3 = 0 OR EXISTS (SELECT 1 FROM repo_star s WHERE s.repository_id = r.id AND s.account_id = $1)) \
         AND r.id > $4 ORDER BY r.id LIMIT $5"
    );
    let rows = sqlx::query(&sql)
        .bind(q.viewer.unwrap_or(-1))
        .bind(q.namespace.unwrap_or_default())
        .bind(i64::from(q.starred_only))
        .bind(q.after_id)
        .bind(q.limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(listed_from_row).collect()
}

/// Repositories the viewer (`None`: anonymous) sees, public ones included, whose name or
/// description contains `term` (case-insensitively), in namespace then name order.
pub async fn search<'c>(
    ex: impl Exec<'c>,
    viewer: Option<i64>,
    term: &str,
    offset: i64,
    limit: i64,
) -> DbResult<Vec<ListedRepo>> {
    let pattern = format!(
        "%{}%",
        term.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let sql = format!(
        "SELECT r.id, n.name AS namespace, r.name, r.visibility, r.description, r.kind, r.state, \
         CAST(0 AS BIGINT) AS starred FROM repository r JOIN namespace n ON n.id = r.namespace_id \
         WHERE {} AND (LOWER(r.name) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(r.description, '')) LIKE $2 ESCAPE '\\') \
         ORDER BY n.name, r.name LIMIT $3 OFFSET $4",
        visible_to(false, true)
    );
    let rows = sqlx::query(&sql)
        .bind(viewer.unwrap_or(-1))
        .bind(pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(ex)
        .await?;
    rows.iter().map(listed_from_row).collect()
}

/// Users and organizations whose name starts with `prefix` (lowercased) and that hold a
/// repository the viewer (`None`: anonymous) sees, public ones included: name, email and
/// whether it is an organization. By name, at most `limit`.
pub async fn namespaces_with_visible<'c>(
    ex: impl Exec<'c>,
    viewer: Option<i64>,
    prefix: &str,
    limit: i64,
) -> DbResult<Vec<(String, Option<String>, bool)>> {
    let pattern = format!(
        "{}%",
        prefix
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let sql = format!(
        "SELECT n.name, n.email, n.kind FROM namespace n WHERE n.kind IN ('user', 'org') \
         AND n.enabled = TRUE AND LOWER(n.name) LIKE $2 ESCAPE '\\' \
         AND EXISTS (SELECT 1 FROM repository r WHERE r.namespace_id = n.id AND {}) \
         ORDER BY n.name LIMIT $3",
        visible_to(false, true)
    );
    let rows = sqlx::query(&sql)
        .bind(viewer.unwrap_or(-1))
        .bind(pattern)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("name")?,
                r.try_get("email")?,
                r.try_get::<String, _>("kind")? == "org",
            ))
        })
        .collect()
}

fn listed_from_row(r: &sqlx::any::AnyRow) -> DbResult<ListedRepo> {
    Ok(ListedRepo {
        id: r.try_get("id")?,
        namespace: r.try_get("namespace")?,
        name: r.try_get("name")?,
        visibility: r.try_get("visibility")?,
        description: r.try_get("description")?,
        kind: r.try_get("kind")?,
        state: r.try_get("state")?,
        starred: r.try_get::<i64, _>("starred")? != 0,
    })
}

/// Start of the most recent tag lifetime in the repository (milliseconds).
pub async fn last_modified<'c>(ex: impl Exec<'c>, repository_id: i64) -> DbResult<Option<i64>> {
    let row = sqlx::query("SELECT MAX(start_ms) AS m FROM tag WHERE repository_id = $1")
        .bind(repository_id)
        .fetch_one(ex)
        .await?;
    Ok(row.try_get("m")?)
}

pub async fn set_description<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    description: &str,
) -> DbResult<()> {
    sqlx::query("UPDATE repository SET description = $1 WHERE id = $2")
        .bind(description)
        .bind(repository_id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn set_visibility<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    visibility: &str,
) -> DbResult<()> {
    sqlx::query("UPDATE repository SET visibility = $1 WHERE id = $2")
        .bind(visibility)
        .bind(repository_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// The repository's badge token, created on first use.
pub async fn badge_token<'c, E: Exec<'c> + Copy>(
    ex: E,
    repository_id: i64,
    candidate: &str,
) -> DbResult<String> {
    sqlx::query("UPDATE repository SET badge_token = $1 WHERE id = $2 AND badge_token IS NULL")
        .bind(candidate)
        .bind(repository_id)
        .execute(ex)
        .await?;
    let row = sqlx::query("SELECT badge_token FROM repository WHERE id = $1")
        .bind(repository_id)
        .fetch_one(ex)
        .await?;
    Ok(row
        .try_get::<Option<String>, _>("badge_token")?
        .unwrap_or_default())
}

/// Deletes a repository with everything in it (tags, manifests, blob links, permissions).
pub async fn delete<'c>(ex: impl Exec<'c>, repository_id: i64) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM repository WHERE id = $1")
        .bind(repository_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn star<'c>(
    ex: impl Exec<'c>,
    account_id: i64,
    repository_id: i64,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO repo_star (account_id, repository_id, created_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(account_id)
    .bind(repository_id)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

/// How many accounts starred the repository.
pub async fn star_count<'c>(ex: impl Exec<'c>, repository_id: i64) -> DbResult<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM repo_star WHERE repository_id = $1")
        .bind(repository_id)
        .fetch_one(ex)
        .await?;
    Ok(row.try_get("n")?)
}

pub async fn unstar<'c>(ex: impl Exec<'c>, account_id: i64, repository_id: i64) -> DbResult<()> {
    sqlx::query("DELETE FROM repo_star WHERE account_id = $1 AND repository_id = $2")
        .bind(account_id)
        .bind(repository_id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn is_starred<'c>(
    ex: impl Exec<'c>,
    account_id: i64,
    repository_id: i64,
) -> DbResult<bool> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM repo_star WHERE account_id = $1 AND repository_id = $2",
    )
    .bind(account_id)
    .bind(repository_id)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Live tags of a repository with their manifest digest, size and start, by name.
#[derive(Clone, Debug)]
pub struct TagInfo {
    pub name: String,
    pub digest: String,
    pub size: i64,
    pub start_ms: i64,
    pub expiration_ms: Option<i64>,
}

pub async fn live_tags<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    now_ms: i64,
    limit: i64,
) -> DbResult<Vec<TagInfo>> {
    let rows = sqlx::query(
        "SELECT t.name, m.digest, \
         CAST(m.size + COALESCE((SELECT SUM(b.size) FROM manifest_blob mb JOIN blob b ON b.digest = mb.digest WHERE mb.manifest_id = m.id), 0) AS BIGINT) AS total, \
         t.start_ms, t.expiration_ms \
         FROM tag t JOIN manifest m ON m.id = t.manifest_id \
         WHERE t.repository_id = $1 AND t.end_ms IS NULL AND (t.expiration_ms IS NULL OR t.expiration_ms > $2) \
         ORDER BY t.name LIMIT $3",
    )
    .bind(repository_id)
    .bind(now_ms)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TagInfo {
                name: r.try_get("name")?,
                digest: r.try_get("digest")?,
                size: r.try_get("total")?,
                start_ms: r.try_get("start_ms")?,
                expiration_ms: r.try_get("expiration_ms")?,
            })
        })
        .collect()
}

/// Sets a repository's state (`NORMAL`, `READ_ONLY` or `MIRROR`).
pub async fn set_state<'c>(ex: impl Exec<'c>, repository_id: i64, state: &str) -> DbResult<()> {
    sqlx::query("UPDATE repository SET state = $1 WHERE id = $2")
        .bind(state)
        .bind(repository_id)
        .execute(ex)
        .await?;
    Ok(())
}
