//! Namespaces: users and organizations share one name space.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbResult, Exec, get_bool};

#[derive(Clone, Debug)]
pub struct NamespaceRow {
    pub id: i64,
    pub name: String,
    /// `user` or `org`.
    pub kind: String,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub enabled: bool,
    pub superuser: bool,
    pub tag_expiration_s: i64,
    pub created_ms: i64,
}

impl NamespaceRow {
    pub fn is_user(&self) -> bool {
        self.kind == "user"
    }
}

pub const KIND_USER: &str = "user";
pub const KIND_ORG: &str = "org";

const COLS: &str =
    "id, name, kind, email, password_hash, enabled, superuser, tag_expiration_s, created_ms";

fn from_row(row: &AnyRow) -> Result<NamespaceRow, sqlx::Error> {
    Ok(NamespaceRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        enabled: get_bool(row, "enabled")?,
        superuser: get_bool(row, "superuser")?,
        tag_expiration_s: row.try_get("tag_expiration_s")?,
        created_ms: row.try_get("created_ms")?,
    })
}

pub async fn by_name<'c>(ex: impl Exec<'c>, name: &str) -> DbResult<Option<NamespaceRow>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM namespace WHERE name = $1"))
        .bind(name)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

pub async fn by_id<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<Option<NamespaceRow>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM namespace WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

pub async fn count_users<'c>(ex: impl Exec<'c>) -> DbResult<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM namespace WHERE kind = 'user'")
        .fetch_one(ex)
        .await?;
    Ok(row.try_get("n")?)
}

pub struct NewUser<'a> {
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub superuser: bool,
    pub tag_expiration_s: i64,
}

/// Inserts a user; a name already taken (by a user or an organization) is a unique violation.
pub async fn insert_user<'c>(ex: impl Exec<'c>, user: &NewUser<'_>, now_ms: i64) -> DbResult<i64> {
    let row = sqlx::query(
        "INSERT INTO namespace (name, kind, email, password_hash, enabled, superuser, tag_expiration_s, created_ms) \
         VALUES ($1, 'user', $2, $3, TRUE, $4, $5, $6) RETURNING id",
    )
    .bind(user.name)
    .bind(user.email)
    .bind(user.password_hash)
    .bind(user.superuser)
    .bind(user.tag_expiration_s)
    .bind(now_ms)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("id")?)
}
