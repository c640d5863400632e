//! Domain logic. Services take a [`Principal`] and plain values, decide with
//! [`access::authz::can`], and use `db` and `storage`. No HTTP types here: the `api` layer maps
//! results and errors to each surface's format.
//!
//! # Map
//!
//! A behaviour is two hops away: its group, then the module named after its concept.
//!
//! - The kernel, here: [`Ctx`] (what every service is handed), [`Principal`] ([`principal`]),
//!   OAuth [`scopes`], the [`clock`], the [`error`] types, small shared [`views`], test [`pause`]
//!   points, cross-replica cache [`invalidation`], and secret helpers ([`random_token`], [`hash_secret`], [`constant_time_eq`]).
//! - [`access`]: who is calling and what they may do: credentials ([`access::auth`]), registry
//!   tokens ([`access::jwt`]), password hashing ([`access::passwords`]), decisions
//!   ([`access::authz`]).
//! - [`operations`]: what the installation records and sends: the audit log, mail, the SSRF
//!   guard of outbound requests, repository notifications. Home of usage logs.
//! - [`content`]: repositories and what they hold: manifests, tags, labels, blobs, uploads, the
//!   pull cache, garbage collection. Home of quota, proxy cache, mirroring, builds and scanning.
//! - [`tenancy`]: accounts, organizations, teams, robots, permissions, OAuth applications, robot
//!   federation.
//!
//! Background jobs are functions of the group they belong to (`content::gc::worker_pass`,
//! `content::tags::expire`, `content::uploads::clean_expired`,
//! `operations::notifications::delivery::worker_pass`); `crate::workers` schedules them.
//!
//! # Dependency order
//!
//! kernel ← [`access`] ← [`operations`] ← [`content`] ← [`tenancy`]: a module imports only from
//! the kernel, from groups to its left, and from modules its own group's doc lists before it.
//! Content never asks about organizations, teams or robots (authorization decides access, and
//! the database applies permission prototypes); tenancy looks repositories up (permissions on
//! a repository). The one reference up is [`Ctx`], the composition root: it holds each group's
//! state (`ctx.pull_cache`, `ctx.audit`, ...), which is how a service reaches a lower group's
//! state, never a higher one's.

pub mod access;
pub mod clock;
pub mod content;
pub mod error;
pub mod invalidation;
#[cfg(test)]
mod layering;
pub mod operations;
pub mod pause;
pub mod principal;
pub mod scopes;
pub mod tenancy;
pub mod views;

use std::sync::Arc;

pub use clock::{Clock, SystemClock};
pub use error::{AccountError, RegistryError, TenancyError};
pub use principal::{Access, Account, Grant, OAuthRef, Principal, RobotRef, UserRef};

use crate::config::Config;
use crate::db::Db;
use crate::storage::BlobStore;
use access::{auth, jwt, passwords};
use content::{pull_cache, uploads};
use operations::audit;
use tenancy::federation;

/// Everything the services share. Built once at startup; cheap to clone through `Arc`.
pub struct Ctx {
    pub config: Config,
    pub db: Db,
    pub store: Arc<dyn BlobStore>,
    pub clock: Arc<dyn Clock>,
    pub jwt: jwt::Keys,
    pub uploads: uploads::UploadState,
    pub auth_cache: auth::CredentialCache,
    pub sealer: passwords::PasswordSealer,
    pub audit: audit::AuditLog,
    pub federation: federation::JwksCache,
    /// Cross-replica cache invalidation (`LISTEN/NOTIFY` on PostgreSQL).
    pub invalidation: Arc<invalidation::Invalidation>,
    /// Read-through cache of the pull path; writes call `pull_cache.invalidate()`.
    pub pull_cache: pull_cache::PullCache,
    /// Proxy-cache organizations: configurations, upstream clients, blob fetches in flight.
    pub proxy: content::proxy_cache::ProxyState,
    /// Pause points for tests that interleave concurrent operations.
    pub pauses: pause::PausePoints,
}

impl Ctx {
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// Internal failures: never the caller's fault, logged and reported as a 500.
#[derive(Debug, thiserror::Error)]
pub enum Internal {
    #[error("database: {0}")]
    Db(#[from] crate::db::DbError),
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("{0}")]
    Other(String),
}

impl From<sqlx::Error> for Internal {
    fn from(e: sqlx::Error) -> Self {
        Internal::Db(e.into())
    }
}

/// Random token material: `len` characters of upper-case letters and digits (Quay's format).
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = vec![0u8; len];
    // 256 is a multiple of 36 * 7 = 252 plus 4: reject the top 4 values to stay unbiased.
    let mut out = String::with_capacity(len);
    while out.len() < len {
        getrandom::getrandom(&mut bytes).unwrap_or_else(|_| fallback_random(&mut bytes));
        for b in &bytes {
            if *b < 252 && out.len() < len {
                out.push(ALPHABET[(*b % 36) as usize] as char);
            }
        }
    }
    out
}

fn fallback_random(buf: &mut [u8]) {
    use ring::rand::SecureRandom;
    let _ = ring::rand::SystemRandom::new().fill(buf);
}

/// Compares two secrets (or their digests) in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hex SHA-256 of a secret, as stored in the database.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
}
