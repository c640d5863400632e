//! Teams of organizations, their members and pending invitations.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{DbResult, Exec};

#[derive(Clone, Debug)]
pub struct TeamRow {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    /// `admin`, `creator` or `member`.
    pub role: String,
    pub description: String,
    pub member_count: i64,
    pub repo_count: i64,
}

const SELECT: &str = "SELECT t.id, t.org_id, t.name, t.role, t.description, \
    (SELECT COUNT(*) FROM team_member m WHERE m.team_id = t.id) AS member_count, \
    (SELECT COUNT(*) FROM repo_team_permission p WHERE p.team_id = t.id) AS repo_count \
    FROM team t";

fn from_row(row: &AnyRow) -> Result<TeamRow, sqlx::Error> {
    Ok(TeamRow {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        description: row.try_get("description")?,
        member_count: row.try_get("member_count")?,
        repo_count: row.try_get("repo_count")?,
    })
}

/// Inserts a team; an existing name in the organization is a unique violation.
pub async fn insert<'c>(
    ex: impl Exec<'c>,
    org_id: i64,
    name: &str,
    role: &str,
    description: &str,
    now_ms: i64,
) -> DbResult<i64> {
    let row = sqlx::query(
        "INSERT INTO team (org_id, name, role, description, created_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(org_id)
    .bind(name)
    .bind(role)
    .bind(description)
    .bind(now_ms)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("id")?)
}

pub async fn get<'c>(ex: impl Exec<'c>, org_id: i64, name: &str) -> DbResult<Option<TeamRow>> {
    let row = sqlx::query(&format!("{SELECT} WHERE t.org_id = $1 AND t.name = $2"))
        .bind(org_id)
        .bind(name)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Teams of an organization in creation order.
pub async fn list<'c>(ex: impl Exec<'c>, org_id: i64) -> DbResult<Vec<TeamRow>> {
    let rows = sqlx::query(&format!("{SELECT} WHERE t.org_id = $1 ORDER BY t.id"))
        .bind(org_id)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

pub async fn update<'c>(ex: impl Exec<'c>, id: i64, role: &str, description: &str) -> DbResult<()> {
    sqlx::query("UPDATE team SET role = $1, description = $2 WHERE id = $3")
        .bind(role)
        .bind(description)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn delete<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<()> {
    sqlx::query("DELETE FROM team WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Adds a member; already a member is not an error. Returns whether a row was added.
pub async fn add_member<'c>(ex: impl Exec<'c>, team_id: i64, account_id: i64) -> DbResult<bool> {
    let done = sqlx::query(
        "INSERT INTO team_member (team_id, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(team_id)
    .bind(account_id)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn remove_member<'c>(ex: impl Exec<'c>, team_id: i64, account_id: i64) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM team_member WHERE team_id = $1 AND account_id = $2")
        .bind(team_id)
        .bind(account_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A team member: an account's id, name and kind (`user` or `robot`).
#[derive(Clone, Debug)]
pub struct MemberRow {
    pub account_id: i64,
    pub name: String,
    pub kind: String,
    pub email: Option<String>,
}

pub async fn members<'c>(ex: impl Exec<'c>, team_id: i64) -> DbResult<Vec<MemberRow>> {
    let rows = sqlx::query(
        "SELECT n.id, n.name, n.kind, n.email FROM team_member m JOIN namespace n ON n.id = m.account_id \
         WHERE m.team_id = $1 ORDER BY n.name",
    )
    .bind(team_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MemberRow {
                account_id: r.try_get("id")?,
                name: r.try_get("name")?,
                kind: r.try_get("kind")?,
                email: r.try_get("email")?,
            })
        })
        .collect()
}

/// The teams of `org_id` that `account_id` belongs to.
pub async fn of_account<'c>(
    ex: impl Exec<'c>,
    org_id: i64,
    account_id: i64,
) -> DbResult<Vec<TeamRow>> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE t.org_id = $1 AND t.id IN (SELECT team_id FROM team_member WHERE account_id = $2) ORDER BY t.id"
    ))
    .bind(org_id)
    .bind(account_id)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

/// Names of the admin teams of `org_id` that `account_id` belongs to.
pub async fn admin_teams_of<'c>(
    ex: impl Exec<'c>,
    org_id: i64,
    account_id: i64,
) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT t.name FROM team t JOIN team_member m ON m.team_id = t.id \
         WHERE t.org_id = $1 AND m.account_id = $2 AND t.role = 'admin'",
    )
    .bind(org_id)
    .bind(account_id)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
}

/// Account ids of every member of any team of the organization.
pub async fn org_member_ids<'c>(ex: impl Exec<'c>, org_id: i64) -> DbResult<Vec<i64>> {
    let rows = sqlx::query(
        "SELECT DISTINCT m.account_id FROM team_member m JOIN team t ON t.id = m.team_id WHERE t.org_id = $1",
    )
    .bind(org_id)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("account_id")?)).collect()
}

#[derive(Clone, Debug)]
pub struct InviteRow {
    pub id: i64,
    pub team_id: i64,
    pub team: String,
    pub org: String,
    pub account_id: Option<i64>,
    pub account_name: Option<String>,
    pub email: Option<String>,
    pub inviter: Option<String>,
    pub code: String,
    pub created_ms: i64,
}

const INVITE_SELECT: &str = "SELECT i.id, i.team_id, t.name AS team, o.name AS org, i.account_id, \
    a.name AS account_name, i.email, v.name AS inviter, i.code, i.created_ms \
    FROM team_invite i JOIN team t ON t.id = i.team_id JOIN namespace o ON o.id = t.org_id \
    LEFT JOIN namespace a ON a.id = i.account_id LEFT JOIN namespace v ON v.id = i.inviter_id";

fn invite_from_row(r: &AnyRow) -> Result<InviteRow, sqlx::Error> {
    Ok(InviteRow {
        id: r.try_get("id")?,
        team_id: r.try_get("team_id")?,
        team: r.try_get("team")?,
        org: r.try_get("org")?,
        account_id: r.try_get("account_id")?,
        account_name: r.try_get("account_name")?,
        email: r.try_get("email")?,
        inviter: r.try_get("inviter")?,
        code: r.try_get("code")?,
        created_ms: r.try_get("created_ms")?,
    })
}

pub async fn insert_invite<'c>(
    ex: impl Exec<'c>,
    team_id: i64,
    account_id: Option<i64>,
    email: Option<&str>,
    inviter_id: Option<i64>,
    code: &str,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO team_invite (team_id, account_id, email, inviter_id, code, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(team_id)
    .bind(account_id)
    .bind(email)
    .bind(inviter_id)
    .bind(code)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn invites_of_team<'c>(ex: impl Exec<'c>, team_id: i64) -> DbResult<Vec<InviteRow>> {
    let rows = sqlx::query(&format!(
        "{INVITE_SELECT} WHERE i.team_id = $1 ORDER BY i.id"
    ))
    .bind(team_id)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(invite_from_row(r)?)).collect()
}

/// Invitations addressed to a user, by account or by (verified) e-mail.
pub async fn invites_for<'c>(
    ex: impl Exec<'c>,
    account_id: i64,
    email: Option<&str>,
) -> DbResult<Vec<InviteRow>> {
    let rows = sqlx::query(&format!(
        "{INVITE_SELECT} WHERE i.account_id = $1 OR (i.email IS NOT NULL AND i.email = $2) ORDER BY i.id"
    ))
    .bind(account_id)
    .bind(email.unwrap_or_default())
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(invite_from_row(r)?)).collect()
}

pub async fn invite_by_code<'c>(ex: impl Exec<'c>, code: &str) -> DbResult<Option<InviteRow>> {
    let row = sqlx::query(&format!("{INVITE_SELECT} WHERE i.code = $1"))
        .bind(code)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(invite_from_row).transpose()?)
}

pub async fn delete_invite<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<()> {
    sqlx::query("DELETE FROM team_invite WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Deletes the invitations of a team for an account; returns how many.
pub async fn delete_account_invites<'c>(
    ex: impl Exec<'c>,
    team_id: i64,
    account_id: i64,
) -> DbResult<u64> {
    let done = sqlx::query("DELETE FROM team_invite WHERE team_id = $1 AND account_id = $2")
        .bind(team_id)
        .bind(account_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected())
}

pub async fn delete_email_invites<'c>(
    ex: impl Exec<'c>,
    team_id: i64,
    email: &str,
) -> DbResult<u64> {
    let done = sqlx::query("DELETE FROM team_invite WHERE team_id = $1 AND email = $2")
        .bind(team_id)
        .bind(email)
        .execute(ex)
        .await?;
    Ok(done.rows_affected())
}
