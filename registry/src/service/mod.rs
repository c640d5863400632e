//! Domain logic. Services take a [`Principal`] and plain values, decide with [`authz::can`], and
//! use `db` and `storage`. No HTTP types here: the `api` layer maps results and errors to each
//! surface's format.

pub mod accounts;
pub mod apps;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod blobs;
pub mod cache;
pub mod clock;
pub mod error;
pub mod federation;
pub mod jwt;
pub mod mail;
pub mod manifests;
pub mod orgs;
pub mod permissions;
pub mod repos;
pub mod repositories;
pub mod robots;
pub mod scopes;
pub mod teams;
pub mod uploads;
pub mod views;

use std::sync::Arc;

pub use authz::{Action, Resource};
pub use clock::{Clock, SystemClock};
pub use error::{AccountError, RegistryError, TenancyError};

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
    pub audit: audit::AuditLog,
    pub federation: federation::JwksCache,
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
    /// A signed-in user (basic auth with a password).
    User(UserRef),
    /// A robot account (`owner+name` with its token, or a federated robot token).
    Robot(RobotRef),
    /// A user acting through an OAuth access token, limited to the token's scopes.
    OAuth(OAuthRef),
    /// A `/v2` bearer token: the access it grants was decided when it was issued.
    Token(jwt::Grant),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRef {
    pub id: i64,
    pub name: String,
    pub superuser: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RobotRef {
    /// The robot's account id.
    pub id: i64,
    /// `owner+shortname`.
    pub name: String,
    pub owner: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthRef {
    pub user: UserRef,
    pub scopes: scopes::Scopes,
    pub token_id: i64,
    /// The client id of the application the token was minted for, if any.
    pub application: Option<String>,
}

/// The account (user or robot) behind a principal, for decisions and audit records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub name: String,
}

impl Principal {
    pub fn is_anonymous(&self) -> bool {
        match self {
            Principal::Anonymous => true,
            Principal::User(_) | Principal::Robot(_) | Principal::OAuth(_) => false,
            Principal::Token(g) => g.user.is_none() && g.robot.is_none(),
        }
    }

    /// The user behind the principal, if any.
    pub fn user(&self) -> Option<&UserRef> {
        match self {
            Principal::Anonymous | Principal::Robot(_) => None,
            Principal::User(u) => Some(u),
            Principal::OAuth(o) => Some(&o.user),
            Principal::Token(g) => g.user.as_ref(),
        }
    }

    pub fn robot(&self) -> Option<&RobotRef> {
        match self {
            Principal::Robot(r) => Some(r),
            Principal::Token(g) => g.robot.as_ref(),
            _ => None,
        }
    }

    /// The account acting: a user or a robot.
    pub fn account(&self) -> Option<Account> {
        if let Some(u) = self.user() {
            return Some(Account {
                id: u.id,
                name: u.name.clone(),
            });
        }
        self.robot().map(|r| Account {
            id: r.id,
            name: r.name.clone(),
        })
    }

    pub fn name(&self) -> Option<&str> {
        match self.user() {
            Some(u) => Some(u.name.as_str()),
            None => self.robot().map(|r| r.name.as_str()),
        }
    }

    /// The OAuth scopes limiting this principal; `None` when it is not limited by scopes.
    pub fn scopes(&self) -> Option<scopes::Scopes> {
        match self {
            Principal::OAuth(o) => Some(o.scopes),
            _ => None,
        }
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
