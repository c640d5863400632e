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

/// A team found by `GET /api/v1/find/all`, with its organization.
#[derive(Clone, Debug)]
pub struct FoundTeam {
    pub id: i64,
    pub name: String,
    pub org_name: String,
    pub org_email: Option<String>,
}

/// Teams whose name starts with `prefix`: with `admined` false those `account_id` is on, with
/// `admined` true those of the organizations it administers (is on an `admin` team of). By
/// organization and name, at most `limit`.
pub async fn teams_of_account<'c>(
    ex: impl Exec<'c>,
    account_id: i64,
    prefix: &str,
    admined: bool,
    limit: i64,
) -> DbResult<Vec<FoundTeam>> {
    let scope = match admined {
        false => "t.id IN (SELECT team_id FROM team_member WHERE account_id = $1)",
        true => {
            "t.org_id IN (SELECT a.org_id FROM team a JOIN team_member m ON m.team_id = a.id \
             WHERE m.account_id = $1 AND a.role = 'admin')"
        }
    };
    let rows = sqlx::query(&format!(
        "SELECT t.id, t.name, o.name AS org_name, o.email AS org_email FROM team t \
         JOIN namespace o ON o.id = t.org_id \
         WHERE {scope} AND LOWER(t.name) LIKE $2 ESCAPE '\\' ORDER BY o.name, t.name LIMIT $3"
    ))
    .bind(account_id)
    .bind(like_prefix(prefix))
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(FoundTeam {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                org_name: r.try_get("org_name")?,
                org_email: r.try_get("org_email")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Robots whose short name starts with `prefix`, owned by `account_id` itself or by an
/// organization it administers. By name, at most `limit`.
pub async fn robots_of_account<'c>(
    ex: impl Exec<'c>,
    account_id: i64,
    prefix: &str,
    limit: i64,
) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT n.name FROM robot r JOIN namespace n ON n.id = r.account_id \
         WHERE (r.owner_id = $1 OR r.owner_id IN (SELECT a.org_id FROM team a \
         JOIN team_member m ON m.team_id = a.id WHERE m.account_id = $1 AND a.role = 'admin')) \
         AND LOWER(r.shortname) LIKE $2 ESCAPE '\\' ORDER BY n.name LIMIT $3",
    )
    .bind(account_id)
    .bind(like_prefix(prefix))
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| r.try_get("name"))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
