//! Repository queries of the REST API: listing with Quay's filters, settings, stars, deletion.
//! (The registry protocol's lookups are in [`super::repos`].)

use sqlx::Row;

use super::{DbResult, Exec};

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
pub async fn list<'c>(ex: impl Exec<'c>, q: &ListQuery<'_>) -> DbResult<Vec<ListedRepo>> {
    let visible = if q.superuser {
        "TRUE".to_owned()
    } else {
        let public = if q.include_public || q.namespace.is_some() || q.starred_only {
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
    };
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
    rows.iter()
        .map(|r| {
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
        })
        .collect()
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
