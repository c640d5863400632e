//! Repositories.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, DbResult, Exec, collate_c};

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

/// Serialises writers of one repository's tags until the transaction ends: a row lock on
/// PostgreSQL; on SQLite write transactions are already serialised.
pub async fn lock(tx: &mut super::Tx, repository_id: i64) -> DbResult<()> {
    if tx.backend() == Backend::Postgres {
        sqlx::query("SELECT id FROM repository WHERE id = $1 FOR UPDATE")
            .bind(repository_id)
            .fetch_optional(&mut **tx)
            .await?;
    }
    Ok(())
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
