//! Domain logic. Services take a [`Principal`] and plain values, decide with [`authz::can`], and
//! use `db` and `storage`. No HTTP types here: the `api` layer maps results and errors to each
//! surface's format.

pub mod accounts;
pub mod auth;
pub mod authz;
pub mod blobs;
pub mod cache;
pub mod clock;
pub mod error;
pub mod jwt;
pub mod manifests;
pub mod repos;
pub mod uploads;

use std::sync::Arc;

pub use authz::{Action, Resource};
pub use clock::{Clock, SystemClock};
pub use error::{AccountError, RegistryError};

use crate::config::Config;
use crate::db::Db;
use crate::storage::BlobStore;

/// Everything the services share. Built once at startup; cheap to clone through `Arc`.
pub struct Ctx {
    pub config: Config,
    pub db: Db,
    pub store: Arc<dyn BlobStore>,
    pub clock: Arc<dyn Clock>,
    pub jwt: jwt::Keys,
    pub uploads: uploads::UploadState,
    pub auth_cache: auth::CredentialCache,
    pub sealer: accounts::PasswordSealer,
    /// Read-through cache of the pull path; writes call `pull_cache.invalidate()`.
    pub pull_cache: cache::PullCache,
}

impl Ctx {
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// Who is making a request.
#[derive(Clone, Debug)]
pub enum Principal {
    Anonymous,
    /// A signed-in user (basic auth, or an OAuth access token on `/api/v1`).
    User(UserRef),
    /// A `/v2` bearer token: the access it grants was decided when it was issued.
    Token(jwt::Grant),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRef {
    pub id: i64,
    pub name: String,
    pub superuser: bool,
}

impl Principal {
    pub fn is_anonymous(&self) -> bool {
        match self {
            Principal::Anonymous => true,
            Principal::User(_) => false,
            Principal::Token(g) => g.user.is_none(),
        }
    }

    /// The user behind the principal, if any.
    pub fn user(&self) -> Option<&UserRef> {
        match self {
            Principal::Anonymous => None,
            Principal::User(u) => Some(u),
            Principal::Token(g) => g.user.as_ref(),
        }
    }

    pub fn name(&self) -> Option<&str> {
        self.user().map(|u| u.name.as_str())
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

/// Hex SHA-256 of a secret, as stored in the database.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
}
