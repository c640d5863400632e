//! All SQL lives here. Services call these functions; nothing above this layer writes SQL.
//!
//! Rules:
//! - One SQL dialect for SQLite and PostgreSQL through sqlx's `Any` driver: `$N` placeholders,
//!   `ON CONFLICT`, `RETURNING`; the rare backend difference is a [`Backend`] branch here.
//! - Migrations are embedded and written once; `{{ID}}`, `{{BLOB}}`, `{{BOOL}}`, `{{COLLATE_C}}` are filled in
//!   per backend.
//! - Database constraints are the source of truth: callers insert and map a unique violation
//!   ([`DbError::is_unique_violation`]) instead of checking first.
//! - Times are passed in (milliseconds), never read from the database clock, so tests control
//!   time.
//! - Functions take any executor ([`Exec`]): the pool for single statements, a [`Tx`] for
//!   sequences that must commit together. On SQLite, write transactions are serialised in
//!   process (see [`Db::begin`]) so they never fail with `SQLITE_BUSY` on lock upgrade.
//!
//! Layout: the query modules are grouped as the services are (`crate::service`), one module per
//! table family, so the queries behind `service::content::tags` are in [`content::tags`]:
//! - [`tenancy`]: namespaces (users, organizations, robots), teams, permissions, applications and
//!   their access tokens.
//! - [`content`]: repositories and what they hold (manifests, tags, labels, blobs, uploads) and
//!   the garbage collector's graph queries.
//! - [`operations`]: the audit log (and its reading, export jobs and hourly counts for the usage
//!   logs), global messages, installation-wide settings and worker leases.
//!
//! This root holds the connection ([`Db`], [`Tx`], [`Exec`]), the migrations, and the few helpers
//! the groups share ([`Backend`] branches, `collate_c`, `get_bool`). Query modules import only
//! this root and, within a group, modules listed before them in the group's doc; no group
//! imports another.

pub mod content;
pub mod operations;
pub mod tenancy;

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Executor, Row};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Anything queries can run on: `db.pool()` or `&mut *tx`.
pub trait Exec<'c>: Executor<'c, Database = Any> {}
impl<'c, T: Executor<'c, Database = Any>> Exec<'c> for T {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DbError(#[from] sqlx::Error);

impl DbError {
    pub fn is_unique_violation(&self) -> bool {
        self.0
            .as_database_error()
            .is_some_and(|e| e.is_unique_violation())
    }
    pub fn is_foreign_key_violation(&self) -> bool {
        self.0
            .as_database_error()
            .is_some_and(|e| e.is_foreign_key_violation())
    }
}

impl From<sqlx::migrate::MigrateError> for DbError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        DbError(sqlx::Error::Migrate(Box::new(e)))
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// The metadata database.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer; taking this before `BEGIN` keeps writers from deadlocking.
    write_lock: Option<Arc<Mutex<()>>>,
    /// The PostgreSQL URL, for the `LISTEN` connection ([`Db::listen`]).
    pg_url: Option<Arc<str>>,
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls back.
pub struct Tx {
    tx: sqlx::Transaction<'static, Any>,
    backend: Backend,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl std::ops::Deref for Tx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl Tx {
    pub async fn commit(self) -> DbResult<()> {
        self.tx.commit().await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "registry",
        include_str!("../../migrations/0001_registry.sql"),
    ),
    (
        2,
        "tenancy",
        include_str!("../../migrations/0002_tenancy.sql"),
    ),
    (3, "tags", include_str!("../../migrations/0003_tags.sql")),
    (
        4,
        "auth_holes",
        include_str!("../../migrations/0004_auth_holes.sql"),
    ),
    (5, "quota", include_str!("../../migrations/0005_quota.sql")),
    (
        6,
        "proxy_cache",
        include_str!("../../migrations/0006_proxy_cache.sql"),
    ),
    (
        7,
        "notifications",
        include_str!("../../migrations/0007_notifications.sql"),
    ),
    (
        8,
        "usage_logs",
        include_str!("../../migrations/0008_usage_logs.sql"),
    ),
    (
        9,
        "mirror",
        include_str!("../../migrations/0009_mirror.sql"),
    ),
    (
        11,
        "app_tokens_service_keys",
        include_str!("../../migrations/0011_app_tokens_service_keys.sql"),
    ),
    (
        12,
        "registry_size",
        include_str!("../../migrations/0012_registry_size.sql"),
    ),
    (
        13,
        "builds",
        include_str!("../../migrations/0013_builds.sql"),
    ),
    (
        14,
        "build_triggers",
        include_str!("../../migrations/0014_build_triggers.sql"),
    ),
    (
        15,
        "scanner",
        include_str!("../../migrations/0015_scanner.sql"),
    ),
    (
        16,
        "pull_log_samples",
        include_str!("../../migrations/0016_pull_log_samples.sql"),
    ),
    (
        17,
        "ui_sessions",
        include_str!("../../migrations/0017_ui_sessions.sql"),
    ),
];

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://...`), creating an SQLite file and its
    /// directory when missing.
    pub async fn connect(url: &str) -> DbResult<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let (url, max) = match backend {
            Backend::Sqlite => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                if let Some(dir) = std::path::Path::new(path).parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
                }
                // Writers are serialised anyway; four connections serve concurrent WAL readers.
                (format!("sqlite://{path}?mode=rwc"), 4)
            }
            Backend::Postgres => (url.to_owned(), 16),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                             PRAGMA cache_size = -1024;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let write_lock = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let pg_url = (backend == Backend::Postgres).then(|| Arc::from(url.as_str()));
        Ok(Db {
            pool,
            backend,
            write_lock,
            pg_url,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Sends `payload` on the PostgreSQL notification `channel` (`pg_notify`); every session
    /// listening on it ([`Db::listen`]) receives it. Nothing to do on SQLite.
    pub async fn notify(&self, channel: &str, payload: &str) -> DbResult<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// A dedicated PostgreSQL session listening on `channel` (`None` on SQLite, which has no
    /// notifications).
    pub async fn listen(&self, channel: &str) -> DbResult<Option<sqlx::postgres::PgListener>> {
        let Some(url) = &self.pg_url else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(channel).await?;
        Ok(Some(listener))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`: the database's write lock
    /// is taken up front, so writers in other processes on the same file (`quayside gc --now`
    /// next to a running server) queue behind it instead of failing on a lock upgrade, and a
    /// transaction's reads see what every earlier writer committed.
    pub async fn begin(&self) -> DbResult<Tx> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx {
            tx,
            backend: self.backend,
            _guard: guard,
        })
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> DbResult<()> {
        // sqlx's Any driver cannot decode SQLite's BOOLEAN declared type, so booleans are
        // INTEGER 0/1 there ([`get_bool`] reads both).
        let (id, blob, boolean) = match self.backend {
            Backend::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB", "INTEGER"),
            Backend::Postgres => (
                "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                "BYTEA",
                "BOOLEAN",
            ),
        };
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, name, sql)| {
                let sql = sql
                    .replace("{{ID}}", id)
                    .replace("{{BLOB}}", blob)
                    .replace("{{BOOL}}", boolean)
                    .replace("{{COLLATE_C}}", collate_c(self.backend));
                Migration::new(
                    *version,
                    Cow::Borrowed(name),
                    MigrationType::Simple,
                    Cow::Owned(sql),
                    false,
                )
            })
            .collect::<Vec<_>>();
        let migrator = Migrator {
            migrations: Cow::Owned(migrations),
            ignore_missing: false,
            locking: true,
            no_tx: false,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Cheap liveness query for health checks.
    pub async fn ping(&self) -> DbResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// `COLLATE "C"` on PostgreSQL so ordering is byte-wise as on SQLite.
    pub fn collate_c(&self) -> &'static str {
        collate_c(self.backend)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub fn collate_c(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " COLLATE \"C\"",
    }
}

/// Reads a boolean column portably (SQLite may hand back an integer).
pub(crate) fn get_bool(row: &AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(col) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<i64, _>(col)? != 0),
    }
}
