//! Robot accounts: an account row (`namespace`, kind `robot`, named `owner+shortname`) plus what
//! only robots have.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{DbResult, Exec, Tx};

#[derive(Clone, Debug)]
pub struct RobotRow {
    pub account_id: i64,
    pub owner_id: i64,
    pub owner: String,
    /// `owner+shortname`.
    pub name: String,
    pub shortname: String,
    pub description: String,
    pub unstructured_metadata: Option<String>,
    pub token_sealed: String,
    pub token_hash: String,
    pub federation: String,
    pub created_ms: i64,
    pub last_accessed_ms: Option<i64>,
}

const SELECT: &str = "SELECT r.account_id, r.owner_id, o.name AS owner, a.name, r.shortname, \
    r.description, r.unstructured_metadata, r.token_sealed, r.token_hash, r.federation, \
    a.created_ms, r.last_accessed_ms \
    FROM robot r JOIN namespace a ON a.id = r.account_id JOIN namespace o ON o.id = r.owner_id";

fn from_row(row: &AnyRow) -> Result<RobotRow, sqlx::Error> {
    Ok(RobotRow {
        account_id: row.try_get("account_id")?,
        owner_id: row.try_get("owner_id")?,
        owner: row.try_get("owner")?,
        name: row.try_get("name")?,
        shortname: row.try_get("shortname")?,
        description: row.try_get("description")?,
        unstructured_metadata: row.try_get("unstructured_metadata")?,
        token_sealed: row.try_get("token_sealed")?,
        token_hash: row.try_get("token_hash")?,
        federation: row.try_get("federation")?,
        created_ms: row.try_get("created_ms")?,
        last_accessed_ms: row.try_get("last_accessed_ms")?,
    })
}

pub struct NewRobot<'a> {
    pub owner_id: i64,
    pub name: &'a str,
    pub shortname: &'a str,
    pub description: &'a str,
    pub unstructured_metadata: Option<&'a str>,
    pub token_sealed: &'a str,
    pub token_hash: &'a str,
}

/// Inserts a robot; an existing name is a unique violation.
pub async fn insert(tx: &mut Tx, robot: &NewRobot<'_>, now_ms: i64) -> DbResult<i64> {
    let row = sqlx::query(
        "INSERT INTO namespace (name, kind, email, password_hash, enabled, superuser, tag_expiration_s, created_ms) \
         VALUES ($1, 'robot', NULL, NULL, TRUE, FALSE, 0, $2) RETURNING id",
    )
    .bind(robot.name)
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await?;
    let id: i64 = row.try_get("id")?;
    sqlx::query(
        "INSERT INTO robot (account_id, owner_id, shortname, description, unstructured_metadata, token_sealed, token_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(robot.owner_id)
    .bind(robot.shortname)
    .bind(robot.description)
    .bind(robot.unstructured_metadata)
    .bind(robot.token_sealed)
    .bind(robot.token_hash)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

pub async fn by_name<'c>(ex: impl Exec<'c>, name: &str) -> DbResult<Option<RobotRow>> {
    let row = sqlx::query(&format!("{SELECT} WHERE a.name = $1"))
        .bind(name)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

pub async fn by_id<'c>(ex: impl Exec<'c>, account_id: i64) -> DbResult<Option<RobotRow>> {
    let row = sqlx::query(&format!("{SELECT} WHERE r.account_id = $1"))
        .bind(account_id)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Robots of an owner, by name.
pub async fn list<'c>(ex: impl Exec<'c>, owner_id: i64, limit: i64) -> DbResult<Vec<RobotRow>> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE r.owner_id = $1 ORDER BY a.name LIMIT $2"
    ))
    .bind(owner_id)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

pub async fn set_token<'c>(
    ex: impl Exec<'c>,
    account_id: i64,
    token_sealed: &str,
    token_hash: &str,
) -> DbResult<()> {
    sqlx::query("UPDATE robot SET token_sealed = $1, token_hash = $2 WHERE account_id = $3")
        .bind(token_sealed)
        .bind(token_hash)
        .bind(account_id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn set_federation<'c>(ex: impl Exec<'c>, account_id: i64, json: &str) -> DbResult<()> {
    sqlx::query("UPDATE robot SET federation = $1 WHERE account_id = $2")
        .bind(json)
        .bind(account_id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn touch<'c>(ex: impl Exec<'c>, account_id: i64, now_ms: i64) -> DbResult<()> {
    sqlx::query("UPDATE robot SET last_accessed_ms = $1 WHERE account_id = $2")
        .bind(now_ms)
        .bind(account_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Deletes a robot account (its permissions and memberships go with it).
pub async fn delete<'c>(ex: impl Exec<'c>, account_id: i64) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM namespace WHERE id = $1 AND kind = 'robot'")
        .bind(account_id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}
