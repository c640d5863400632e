//! Repository permissions (for accounts and teams), the facts the authorization decision needs,
//! and default permissions (prototypes).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{DbResult, Exec};

/// What the database knows about one account's standing in a namespace and (optionally) one
/// repository of it: the input of `service::access::authz`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Roles of the account's teams in the organization (`admin`, `creator`, `member`).
    pub team_roles: Vec<String>,
    /// Direct repository roles of the account (at most one).
    pub direct_roles: Vec<String>,
    /// Repository roles granted to the account's teams.
    pub team_repo_roles: Vec<String>,
}

/// Gathers [`Facts`] in one round trip. `repository_id` is `None` for namespace-level questions.
pub async fn facts<'c>(
    ex: impl Exec<'c>,
    account_id: i64,
    namespace_id: i64,
    repository_id: Option<i64>,
) -> DbResult<Facts> {
    let rows = sqlx::query(
        "SELECT 'team' AS src, t.role AS role FROM team t JOIN team_member m ON m.team_id = t.id \
           WHERE t.org_id = $1 AND m.account_id = $2 \
         UNION ALL \
         SELECT 'direct' AS src, p.role AS role FROM repo_user_permission p \
           WHERE p.repository_id = $3 AND p.account_id = $2 \
         UNION ALL \
         SELECT 'teamrepo' AS src, tp.role AS role FROM repo_team_permission tp \
           JOIN team_member m ON m.team_id = tp.team_id \
           WHERE tp.repository_id = $3 AND m.account_id = $2",
    )
    .bind(namespace_id)
    .bind(account_id)
    .bind(repository_id.unwrap_or(-1))
    .fetch_all(ex)
    .await?;
    let mut facts = Facts::default();
    for r in rows {
        let src: String = r.try_get("src")?;
        let role: String = r.try_get("role")?;
        match src.as_str() {
            "team" => facts.team_roles.push(role),
            "direct" => facts.direct_roles.push(role),
            _ => facts.team_repo_roles.push(role),
        }
    }
    Ok(facts)
}

/// Sets (creates or changes) an account's role on a repository.
pub async fn set_user<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    account_id: i64,
    role: &str,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO repo_user_permission (repository_id, account_id, role) VALUES ($1, $2, $3) \
         ON CONFLICT (repository_id, account_id) DO UPDATE SET role = excluded.role",
    )
    .bind(repository_id)
    .bind(account_id)
    .bind(role)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn delete_user<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    account_id: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "DELETE FROM repo_user_permission WHERE repository_id = $1 AND account_id = $2",
    )
    .bind(repository_id)
    .bind(account_id)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn set_team<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    team_id: i64,
    role: &str,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO repo_team_permission (repository_id, team_id, role) VALUES ($1, $2, $3) \
         ON CONFLICT (repository_id, team_id) DO UPDATE SET role = excluded.role",
    )
    .bind(repository_id)
    .bind(team_id)
    .bind(role)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn delete_team<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    team_id: i64,
) -> DbResult<bool> {
    let done =
        sqlx::query("DELETE FROM repo_team_permission WHERE repository_id = $1 AND team_id = $2")
            .bind(repository_id)
            .bind(team_id)
            .execute(ex)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// A direct permission of an account on a repository.
#[derive(Clone, Debug)]
pub struct UserPermRow {
    pub account_id: i64,
    pub name: String,
    pub kind: String,
    pub email: Option<String>,
    pub role: String,
}

pub async fn users_of_repo<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
) -> DbResult<Vec<UserPermRow>> {
    let rows = sqlx::query(
        "SELECT n.id, n.name, n.kind, n.email, p.role FROM repo_user_permission p \
         JOIN namespace n ON n.id = p.account_id WHERE p.repository_id = $1 ORDER BY n.name",
    )
    .bind(repository_id)
    .fetch_all(ex)
    .await?;
    rows.iter().map(user_perm_from_row).collect()
}

fn user_perm_from_row(r: &AnyRow) -> DbResult<UserPermRow> {
    Ok(UserPermRow {
        account_id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        email: r.try_get("email")?,
        role: r.try_get("role")?,
    })
}

pub async fn user_of_repo<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    account_id: i64,
) -> DbResult<Option<UserPermRow>> {
    let row = sqlx::query(
        "SELECT n.id, n.name, n.kind, n.email, p.role FROM repo_user_permission p \
         JOIN namespace n ON n.id = p.account_id WHERE p.repository_id = $1 AND p.account_id = $2",
    )
    .bind(repository_id)
    .bind(account_id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(user_perm_from_row).transpose()
}

/// A team's permission on a repository.
#[derive(Clone, Debug)]
pub struct TeamPermRow {
    pub team_id: i64,
    pub team: String,
    pub role: String,
}

pub async fn teams_of_repo<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
) -> DbResult<Vec<TeamPermRow>> {
    let rows = sqlx::query(
        "SELECT t.id, t.name, p.role FROM repo_team_permission p JOIN team t ON t.id = p.team_id \
         WHERE p.repository_id = $1 ORDER BY t.name",
    )
    .bind(repository_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TeamPermRow {
                team_id: r.try_get("id")?,
                team: r.try_get("name")?,
                role: r.try_get("role")?,
            })
        })
        .collect()
}

/// A permission as listed from the grantee's side: repository name, visibility and role.
#[derive(Clone, Debug)]
pub struct GrantRow {
    pub repository: String,
    pub visibility: String,
    pub role: String,
}

fn grant_rows(rows: &[AnyRow]) -> DbResult<Vec<GrantRow>> {
    rows.iter()
        .map(|r| {
            Ok(GrantRow {
                repository: r.try_get("name")?,
                visibility: r.try_get("visibility")?,
                role: r.try_get("role")?,
            })
        })
        .collect()
}

/// Direct repository permissions of an account (e.g. a robot).
pub async fn of_account<'c>(ex: impl Exec<'c>, account_id: i64) -> DbResult<Vec<GrantRow>> {
    let rows = sqlx::query(
        "SELECT r.name, r.visibility, p.role FROM repo_user_permission p JOIN repository r ON r.id = p.repository_id \
         WHERE p.account_id = $1 ORDER BY r.name",
    )
    .bind(account_id)
    .fetch_all(ex)
    .await?;
    grant_rows(&rows)
}

pub async fn of_team<'c>(ex: impl Exec<'c>, team_id: i64) -> DbResult<Vec<GrantRow>> {
    let rows = sqlx::query(
        "SELECT r.name, r.visibility, p.role FROM repo_team_permission p JOIN repository r ON r.id = p.repository_id \
         WHERE p.team_id = $1 ORDER BY r.name",
    )
    .bind(team_id)
    .fetch_all(ex)
    .await?;
    grant_rows(&rows)
}

#[derive(Clone, Debug)]
pub struct PrototypeRow {
    pub id: i64,
    pub uuid: String,
    pub org_id: i64,
    pub activating_account_id: Option<i64>,
    pub activating_name: Option<String>,
    pub activating_kind: Option<String>,
    pub delegate_account_id: Option<i64>,
    pub delegate_name: Option<String>,
    pub delegate_kind: Option<String>,
    pub delegate_team_id: Option<i64>,
    pub delegate_team: Option<String>,
    pub role: String,
}

const PROTO_SELECT: &str = "SELECT p.id, p.uuid, p.org_id, p.activating_account_id, a.name AS activating_name, \
    a.kind AS activating_kind, p.delegate_account_id, d.name AS delegate_name, d.kind AS delegate_kind, \
    p.delegate_team_id, t.name AS delegate_team, p.role FROM prototype p \
    LEFT JOIN namespace a ON a.id = p.activating_account_id \
    LEFT JOIN namespace d ON d.id = p.delegate_account_id \
    LEFT JOIN team t ON t.id = p.delegate_team_id";

fn proto_from_row(r: &AnyRow) -> Result<PrototypeRow, sqlx::Error> {
    Ok(PrototypeRow {
        id: r.try_get("id")?,
        uuid: r.try_get("uuid")?,
        org_id: r.try_get("org_id")?,
        activating_account_id: r.try_get("activating_account_id")?,
        activating_name: r.try_get("activating_name")?,
        activating_kind: r.try_get("activating_kind")?,
        delegate_account_id: r.try_get("delegate_account_id")?,
        delegate_name: r.try_get("delegate_name")?,
        delegate_kind: r.try_get("delegate_kind")?,
        delegate_team_id: r.try_get("delegate_team_id")?,
        delegate_team: r.try_get("delegate_team")?,
        role: r.try_get("role")?,
    })
}

pub struct NewPrototype<'a> {
    pub uuid: &'a str,
    pub org_id: i64,
    pub activating_account_id: Option<i64>,
    pub delegate_account_id: Option<i64>,
    pub delegate_team_id: Option<i64>,
    pub role: &'a str,
}

pub async fn insert_prototype<'c>(
    ex: impl Exec<'c>,
    p: &NewPrototype<'_>,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO prototype (uuid, org_id, activating_account_id, delegate_account_id, delegate_team_id, role, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(p.uuid)
    .bind(p.org_id)
    .bind(p.activating_account_id)
    .bind(p.delegate_account_id)
    .bind(p.delegate_team_id)
    .bind(p.role)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn prototypes<'c>(ex: impl Exec<'c>, org_id: i64) -> DbResult<Vec<PrototypeRow>> {
    let rows = sqlx::query(&format!("{PROTO_SELECT} WHERE p.org_id = $1 ORDER BY p.id"))
        .bind(org_id)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(proto_from_row(r)?)).collect()
}

pub async fn prototype<'c>(
    ex: impl Exec<'c>,
    org_id: i64,
    uuid: &str,
) -> DbResult<Option<PrototypeRow>> {
    let row = sqlx::query(&format!(
        "{PROTO_SELECT} WHERE p.org_id = $1 AND p.uuid = $2"
    ))
    .bind(org_id)
    .bind(uuid)
    .fetch_optional(ex)
    .await?;
    Ok(row.as_ref().map(proto_from_row).transpose()?)
}

pub async fn set_prototype_role<'c>(ex: impl Exec<'c>, id: i64, role: &str) -> DbResult<()> {
    sqlx::query("UPDATE prototype SET role = $1 WHERE id = $2")
        .bind(role)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn delete_prototype<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<()> {
    sqlx::query("DELETE FROM prototype WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// The roles `account_id` holds on the repository: its own permission, then those of the teams
/// it is on (by team name), as Quay lists them for `.../transitive`.
pub async fn roles_of_account<'c>(
    ex: impl Exec<'c>,
    repository_id: i64,
    account_id: i64,
) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT role, 0 AS via_team, '' AS team FROM repo_user_permission \
         WHERE repository_id = $1 AND account_id = $2 \
         UNION ALL SELECT p.role, 1 AS via_team, t.name AS team FROM repo_team_permission p \
         JOIN team t ON t.id = p.team_id JOIN team_member m ON m.team_id = p.team_id \
         WHERE p.repository_id = $1 AND m.account_id = $2 ORDER BY via_team, team",
    )
    .bind(repository_id)
    .bind(account_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| r.try_get("role"))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
