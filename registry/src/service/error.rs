//! Domain errors. Each surface maps them to its own format in exactly one place
//! (`api::v2::error` for the OCI envelope, `api::quay::error` for Quay's error body).

use super::Internal;

/// Errors of the registry protocol services (blobs, uploads, manifests, tags, referrers).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid repository name: {0}")]
    NameInvalid(String),
    #[error("repository name not known to registry")]
    NameUnknown,
    #[error("invalid tag: {0}")]
    TagInvalid(String),
    #[error("provided digest is invalid: {0}")]
    DigestInvalid(String),
    #[error("blob unknown to registry")]
    BlobUnknown(String),
    #[error("blob upload unknown to registry")]
    UploadUnknown,
    #[error("blob upload invalid: {0}")]
    UploadInvalid(String),
    /// A chunk did not start where the upload ends; `size` is what the registry has.
    #[error("requested range not satisfiable: upload is at offset {size}")]
    RangeInvalid { size: u64 },
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest references a blob unknown to the repository: {0}")]
    ManifestBlobUnknown(String),
    #[error("manifest is larger than {limit} bytes")]
    ManifestTooLarge { limit: usize },
    #[error("the operation is unsupported: {0}")]
    Unsupported(String),
    /// Authentication is required (anonymous caller, or a token without the scope).
    #[error("access to the requested resource is not authorized")]
    Unauthorized,
    /// The caller is authenticated but may not do this.
    #[error("requested access to the resource is denied")]
    Denied,
    /// The namespace is at or over a Reject quota limit (`DENIED`, Quay's message).
    #[error("Quota has been exceeded on namespace")]
    QuotaExceeded,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<crate::db::DbError> for RegistryError {
    fn from(e: crate::db::DbError) -> Self {
        RegistryError::Internal(Internal::Db(e))
    }
}

impl From<crate::storage::StorageError> for RegistryError {
    fn from(e: crate::storage::StorageError) -> Self {
        RegistryError::Internal(Internal::Storage(e))
    }
}

/// Errors of account management (users, tokens).
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The request is well-formed but not allowed in this state (e.g. users already exist).
    #[error("{0}")]
    NotAllowed(String),
    /// A field is invalid; the message names it.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<crate::db::DbError> for AccountError {
    fn from(e: crate::db::DbError) -> Self {
        AccountError::Internal(Internal::Db(e))
    }
}

/// Errors of the tenancy services behind `/api/v1` (organizations, teams, robots, repositories,
/// permissions, default permissions, applications, federation). `api::quay::error` maps them to
/// Quay's answers.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// A bad request; answered with Quay's error body (`invalid_request`, 400).
    #[error("{0}")]
    Invalid(String),
    /// A refused operation that Quay answers as `{"message": ...}` with 400 (its data-model
    /// errors, e.g. "Could not find robot with specified username").
    #[error("{0}")]
    Refused(String),
    #[error("Not Found")]
    NotFound,
    /// Not possible in the repository's state (read-only or mirror): Quay's 503 with
    /// `{"message": ...}`.
    #[error("{0}")]
    Unavailable(String),
    /// Not allowed: 401 for anonymous callers, 403 for known ones.
    #[error("Unauthorized")]
    Forbidden { anonymous: bool },
    #[error(transparent)]
    Internal(#[from] Internal),
}

/// A foreign-key violation means a row the request names (an organization, a team, an account)
/// was deleted between its read and the write that references it: the caller is told it does
/// not exist, as it would be a moment later, rather than 500.
impl From<crate::db::DbError> for TenancyError {
    fn from(e: crate::db::DbError) -> Self {
        if e.is_foreign_key_violation() {
            return TenancyError::NotFound;
        }
        TenancyError::Internal(Internal::Db(e))
    }
}

impl From<AccountError> for TenancyError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NotAllowed(m) | AccountError::Conflict(m) => TenancyError::Invalid(m),
            AccountError::Invalid { message, .. } => TenancyError::Invalid(message),
            AccountError::NotFound(_) => TenancyError::NotFound,
            AccountError::Internal(i) => TenancyError::Internal(i),
        }
    }
}
