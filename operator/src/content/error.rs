//! Why a content reconcile failed, as a condition reason a person can act on.
//!
//! Rule: every failure of a content controller is one [`ContentError`]; its
//! [`reason`](ContentError::reason) is the condition reason, and [`retry`](ContentError::retry)
//! says whether to back off and retry (transient) or wait for the resource to change.

use quayside_client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// `registryRef.name` names no QuayRegistry, or a Secret it needs is missing.
    #[error("{0}")]
    RegistryNotFound(String),
    /// The QuayRegistry exists but is not Available yet (or has no admin credentials yet).
    #[error("{0}")]
    RegistryNotReady(String),
    /// The registry's API could not be reached.
    #[error("{0}")]
    RegistryUnreachable(String),
    /// The registry refused the credentials (401/403).
    #[error("{0}")]
    Unauthorized(String),
    /// The spec cannot be applied as written (the registry refused it with 400/404, or the
    /// operator's own checks failed).
    #[error("{0}")]
    InvalidSpec(String),
    /// Another resource claims the same registry object.
    #[error("{0}")]
    Conflict(String),
    /// The Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The registry answered with an unexpected error (5xx, ...).
    #[error("{0}")]
    Registry(String),
    /// The registry could not reach (or validate) an upstream registry the spec names
    /// (ProxyCache); transient, retried.
    #[error("{0}")]
    UpstreamUnreachable(String),
}

impl ContentError {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ContentError::RegistryNotFound(_) => "RegistryNotFound",
            ContentError::RegistryNotReady(_) => "RegistryNotReady",
            ContentError::RegistryUnreachable(_) => "RegistryUnreachable",
            ContentError::Unauthorized(_) => "Unauthorized",
            ContentError::InvalidSpec(_) => "InvalidSpec",
            ContentError::Conflict(_) => "Conflict",
            ContentError::Kube(_) => "KubernetesError",
            ContentError::Registry(_) => "RegistryError",
            ContentError::UpstreamUnreachable(_) => "UpstreamUnreachable",
        }
    }

    /// Whether to retry with back-off; otherwise wait for a change (of the resource, or of
    /// what it references, which the controller watches) or the next resync.
    pub fn retry(&self) -> bool {
        !matches!(
            self,
            ContentError::InvalidSpec(_) | ContentError::Conflict(_)
        )
    }

    /// Classifies a registry API error; `what` says which call failed.
    pub fn from_api(what: &str, e: ClientError) -> ContentError {
        let message = format!("{what}: {}", describe(&e));
        match e.status().map(|s| s.as_u16()) {
            Some(401 | 403) => ContentError::Unauthorized(message),
            Some(400 | 404 | 409 | 422) => ContentError::InvalidSpec(message),
            Some(_) => ContentError::Registry(message),
            None => ContentError::RegistryUnreachable(message),
        }
    }
}

/// The registry's own words: Quay's `error_message` (or `message`/`detail`) when the body has
/// one, the status and body otherwise.
pub fn describe(e: &ClientError) -> String {
    match e {
        ClientError::Api { status, body } => {
            let said = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    ["error_message", "message", "detail"]
                        .iter()
                        .find_map(|k| v.get(*k).and_then(|m| m.as_str()).map(str::to_owned))
                })
                .unwrap_or_else(|| body.chars().take(300).collect());
            format!("{} {said}", status.as_u16())
        }
        ClientError::Http(e) => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                source = inner.source();
            }
            s
        }
    }
}

/// `?` on a registry call inside a sync: the call's name goes into the message.
pub trait ApiResultExt<T> {
    fn ctx(self, what: &str) -> Result<T, ContentError>;
}

impl<T> ApiResultExt<T> for Result<T, ClientError> {
    fn ctx(self, what: &str) -> Result<T, ContentError> {
        self.map_err(|e| ContentError::from_api(what, e))
    }
}

/// `Ok(None)` for a 404, so "does it exist?" reads are one call.
pub fn found<T>(r: Result<T, ClientError>, what: &str) -> Result<Option<T>, ContentError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.status().map(|s| s.as_u16()) == Some(404) => Ok(None),
        Err(e) => Err(ContentError::from_api(what, e)),
    }
}
