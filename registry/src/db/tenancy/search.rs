//! The queries behind `service::tenancy::search`: accounts and teams by name prefix.

use sqlx::Row;

use crate::db::{DbResult, Exec};

/// An account found by prefix; `org_member` is whether it is on a team of the organization the
/// search was scoped to.
#[derive(Clone, Debug)]
pub struct FoundAccount {
    pub name: String,
    pub kind: String,
    pub email: Option<String>,
    pub org_member: bool,
}

fn like_prefix(prefix: &str) -> String {
    format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// Enabled users whose name starts with `prefix`, and the robots of `robot_namespace` whose
/// short name does; `org_id` marks members of that organization. By name, at most `limit`.
pub async fn accounts<'c>(
    ex: impl Exec<'c>,
    prefix: &str,
    robot_namespace: Option<&str>,
    org_id: Option<i64>,
    limit: i64,
) -> DbResult<Vec<FoundAccount>> {
    let robots = robot_namespace.map(|ns| like_prefix(&format!("{ns}+{prefix}")));
    let rows = sqlx::query(
        "SELECT n.name, n.kind, n.email, CAST(CASE WHEN EXISTS (SELECT 1 FROM team_member m \
         JOIN team t ON t.id = m.team_id WHERE m.account_id = n.id AND t.org_id = $3) THEN 1 ELSE 0 END AS BIGINT) AS org_member \
         FROM namespace n WHERE n.enabled = TRUE AND ((n.kind = 'user' AND LOWER(n.name) LIKE $1 ESCAPE '\\') \
         OR (n.kind = 'robot' AND $2 <> '' AND n.name LIKE $2 ESCAPE '\\')) ORDER BY n.name LIMIT $4",
    )
    .bind(like_prefix(prefix))
    .bind(robots.unwrap_or_default())
    .bind(org_id.unwrap_or(-1))
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(FoundAccount {
                name: r.try_get("name")?,
                kind: r.try_get("kind")?,
                email: r.try_get("email")?,
                org_member: r.try_get::<i64, _>("org_member")? != 0,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Names of the organization's teams starting with `prefix`, by name.
pub async fn teams<'c>(ex: impl Exec<'c>, org_id: i64, prefix: &str) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT name FROM team WHERE org_id = $1 AND LOWER(name) LIKE $2 ESCAPE '\\' ORDER BY name",
    )
    .bind(org_id)
    .bind(like_prefix(prefix))
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| r.try_get("name"))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
