//! Namespaces: users and organizations share one name space.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Backend, DbResult, Exec, Tx, get_bool};

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
        self.kind == KIND_USER
    }

    pub fn is_org(&self) -> bool {
        self.kind == KIND_ORG
    }

    pub fn is_robot(&self) -> bool {
        self.kind == KIND_ROBOT
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

/// Locks a namespace's row until the transaction ends (on SQLite the write transaction already
/// excludes other writers), for changes whose checks span several rows (the last admin of an
/// organization). Returns whether it still exists.
pub async fn lock(tx: &mut Tx, id: i64) -> DbResult<bool> {
    let sql = match tx.backend() {
        Backend::Postgres => "SELECT id FROM namespace WHERE id = $1 FOR NO KEY UPDATE",
        Backend::Sqlite => "SELECT id FROM namespace WHERE id = $1",
    };
    let row = sqlx::query(sql).bind(id).fetch_optional(&mut **tx).await?;
    Ok(row.is_some())
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

pub const KIND_ROBOT: &str = "robot";

/// Marks the installation initialized (the first superuser exists); run in the transaction that
/// inserts that user. A second call, concurrent or later, is a unique violation: the singleton
/// row's primary key decides, not a check before the insert.
pub async fn claim_initialization(tx: &mut crate::db::Tx, now_ms: i64) -> DbResult<()> {
    sqlx::query("INSERT INTO initialization (id, created_ms) VALUES (1, $1)")
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Inserts an organization; a name already taken is a unique violation.
pub async fn insert_org<'c>(
    ex: impl Exec<'c>,
    name: &str,
    email: Option<&str>,
    tag_expiration_s: i64,
    now_ms: i64,
) -> DbResult<i64> {
    let row = sqlx::query(
        "INSERT INTO namespace (name, kind, email, password_hash, enabled, superuser, tag_expiration_s, created_ms) \
         VALUES ($1, 'org', $2, NULL, TRUE, FALSE, $3, $4) RETURNING id",
    )
    .bind(name)
    .bind(email)
    .bind(tag_expiration_s)
    .bind(now_ms)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("id")?)
}

/// Users (not organizations, not robots), by name; disabled ones only when `include_disabled`.
pub async fn list_users<'c>(
    ex: impl Exec<'c>,
    include_disabled: bool,
) -> DbResult<Vec<NamespaceRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM namespace WHERE kind = 'user' AND (enabled = TRUE OR $1 = 1) ORDER BY id"
    ))
    .bind(i64::from(include_disabled))
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

/// Users (`kind = 'user'`) with an id above `after_id`, by id, at most `limit` (Quay's paged
/// superuser list).
pub async fn list_users_page<'c>(
    ex: impl Exec<'c>,
    include_disabled: bool,
    after_id: i64,
    limit: i64,
) -> DbResult<Vec<NamespaceRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM namespace WHERE kind = 'user' AND (enabled = TRUE OR $1 = 1) \
         AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(i64::from(include_disabled))
    .bind(after_id)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

/// Organizations with an id above `after_id`, by id, at most `limit`.
pub async fn list_orgs_page<'c>(
    ex: impl Exec<'c>,
    after_id: i64,
    limit: i64,
) -> DbResult<Vec<NamespaceRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM namespace WHERE kind = 'org' AND id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after_id)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

/// Renames namespace `id` to `new_name` and its robots (`old+short` to `new+short`), in `tx`.
pub async fn rename(tx: &mut Tx, id: i64, new_name: &str) -> DbResult<()> {
    sqlx::query("UPDATE namespace SET name = $1 WHERE id = $2")
        .bind(new_name)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let robots = sqlx::query("SELECT account_id, shortname FROM robot WHERE owner_id = $1")
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
    for r in robots {
        let account: i64 = r.try_get("account_id")?;
        let short: String = r.try_get("shortname")?;
        sqlx::query("UPDATE namespace SET name = $1 WHERE id = $2")
            .bind(format!("{new_name}+{short}"))
            .bind(account)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Every organization, by id.
pub async fn list_orgs<'c>(ex: impl Exec<'c>) -> DbResult<Vec<NamespaceRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM namespace WHERE kind = 'org' ORDER BY id"
    ))
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

pub async fn set_email<'c>(ex: impl Exec<'c>, id: i64, email: Option<&str>) -> DbResult<()> {
    sqlx::query("UPDATE namespace SET email = $1 WHERE id = $2")
        .bind(email)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn set_enabled<'c>(ex: impl Exec<'c>, id: i64, enabled: bool) -> DbResult<()> {
    sqlx::query("UPDATE namespace SET enabled = $1 WHERE id = $2")
        .bind(enabled)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn set_password_hash<'c>(ex: impl Exec<'c>, id: i64, hash: &str) -> DbResult<()> {
    sqlx::query("UPDATE namespace SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn set_tag_expiration<'c>(ex: impl Exec<'c>, id: i64, seconds: i64) -> DbResult<()> {
    sqlx::query("UPDATE namespace SET tag_expiration_s = $1 WHERE id = $2")
        .bind(seconds)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Deletes a namespace row and the robot accounts it owns (their rows are accounts of their
/// own); repositories, teams and permissions go with them through the foreign keys.
pub async fn delete(tx: &mut crate::db::Tx, id: i64) -> DbResult<bool> {
    sqlx::query(
        "DELETE FROM namespace WHERE id IN (SELECT account_id FROM robot WHERE owner_id = $1)",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    let done = sqlx::query("DELETE FROM namespace WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Organizations the account belongs to (through any team), by name.
pub async fn orgs_of_account<'c>(
    ex: impl Exec<'c>,
    account_id: i64,
) -> DbResult<Vec<NamespaceRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {} FROM namespace n WHERE n.kind = 'org' AND n.id IN \
         (SELECT t.org_id FROM team t JOIN team_member m ON m.team_id = t.id WHERE m.account_id = $1) \
         ORDER BY n.name",
        COLS.split(", ").map(|c| format!("n.{c}")).collect::<Vec<_>>().join(", ")
    ))
    .bind(account_id)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

/// Finds users by e-mail address.
pub async fn users_by_email<'c>(ex: impl Exec<'c>, email: &str) -> DbResult<Vec<NamespaceRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM namespace WHERE kind = 'user' AND email = $1"
    ))
    .bind(email)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

/// What verifying a registry token needs to know of its account, in one indexed lookup: the
/// account itself and, for a robot, its owner.
#[derive(Clone, Debug)]
pub struct TokenAccount {
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    pub superuser: bool,
    /// A robot's owner namespace: its name and whether it is enabled.
    pub owner: Option<(String, bool)>,
}

pub async fn token_account<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<Option<TokenAccount>> {
    let row = sqlx::query(
        "SELECT n.name, n.kind, n.enabled, n.superuser, o.name AS owner_name, \
         o.enabled AS owner_enabled \
         FROM namespace n LEFT JOIN robot r ON r.account_id = n.id \
         LEFT JOIN namespace o ON o.id = r.owner_id WHERE n.id = $1",
    )
    .bind(id)
    .fetch_optional(ex)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let owner_name: Option<String> = row.try_get("owner_name")?;
    let owner = match owner_name {
        Some(name) => Some((name, get_bool(&row, "owner_enabled")?)),
        None => None,
    };
    Ok(Some(TokenAccount {
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        enabled: get_bool(&row, "enabled")?,
        superuser: get_bool(&row, "superuser")?,
        owner,
    }))
}
