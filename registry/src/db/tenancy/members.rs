//! Who belongs to an organization: the accounts on its teams and the accounts holding direct
//! permissions on its repositories (the queries behind `service::tenancy::members`).

use sqlx::Row;

use crate::db::{DbResult, Exec, Tx};

/// An account on a team of the organization (one row per team).
#[derive(Clone, Debug)]
pub struct Membership {
    pub account_id: i64,
    pub name: String,
    pub kind: String,
    pub email: Option<String>,
    pub team: String,
}

/// An account's direct permission on a repository of the organization.
#[derive(Clone, Debug)]
pub struct DirectGrant {
    pub account_id: i64,
    pub name: String,
    pub kind: String,
    pub email: Option<String>,
    pub repository: String,
}

/// Team memberships in the organization, by account name then team name; `account_id` narrows
/// them to one account.
pub async fn memberships<'c>(
    ex: impl Exec<'c>,
    org_id: i64,
    account_id: Option<i64>,
) -> DbResult<Vec<Membership>> {
    let rows = sqlx::query(
        "SELECT n.id, n.name, n.kind, n.email, t.name AS team FROM team_member m \
         JOIN team t ON t.id = m.team_id JOIN namespace n ON n.id = m.account_id \
         WHERE t.org_id = $1 AND ($2 IS NULL OR n.id = $2) ORDER BY n.name, t.name",
    )
    .bind(org_id)
    .bind(account_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Membership {
                account_id: r.try_get("id")?,
                name: r.try_get("name")?,
                kind: r.try_get("kind")?,
                email: r.try_get("email")?,
                team: r.try_get("team")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Direct repository permissions in the organization, by account name then repository name;
/// `account_id` narrows them to one account.
pub async fn direct_grants<'c>(
    ex: impl Exec<'c>,
    org_id: i64,
    account_id: Option<i64>,
) -> DbResult<Vec<DirectGrant>> {
    let rows = sqlx::query(
        "SELECT n.id, n.name, n.kind, n.email, r.name AS repository FROM repo_user_permission p \
         JOIN repository r ON r.id = p.repository_id JOIN namespace n ON n.id = p.account_id \
         WHERE r.namespace_id = $1 AND ($2 IS NULL OR n.id = $2) ORDER BY n.name, r.name",
    )
    .bind(org_id)
    .bind(account_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DirectGrant {
                account_id: r.try_get("id")?,
                name: r.try_get("name")?,
                kind: r.try_get("kind")?,
                email: r.try_get("email")?,
                repository: r.try_get("repository")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Ids of the users (not robots) on the organization's admin teams.
pub async fn admin_user_ids<'c>(ex: impl Exec<'c>, org_id: i64) -> DbResult<Vec<i64>> {
    let rows = sqlx::query(
        "SELECT DISTINCT n.id FROM team_member m JOIN team t ON t.id = m.team_id \
         JOIN namespace n ON n.id = m.account_id \
         WHERE t.org_id = $1 AND t.role = 'admin' AND n.kind = 'user' ORDER BY n.id",
    )
    .bind(org_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Takes the account off every team of the organization and every permission on its
/// repositories; returns how many rows went.
pub async fn remove(tx: &mut Tx, org_id: i64, account_id: i64) -> DbResult<u64> {
    let grants = sqlx::query(
        "DELETE FROM repo_user_permission WHERE account_id = $2 \
         AND repository_id IN (SELECT id FROM repository WHERE namespace_id = $1)",
    )
    .bind(org_id)
    .bind(account_id)
    .execute(&mut **tx)
    .await?;
    let teams = sqlx::query(
        "DELETE FROM team_member WHERE account_id = $2 \
         AND team_id IN (SELECT id FROM team WHERE org_id = $1)",
    )
    .bind(org_id)
    .bind(account_id)
    .execute(&mut **tx)
    .await?;
    Ok(grants.rows_affected() + teams.rows_affected())
}
