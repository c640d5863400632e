//! An async client of the `/api/v1` endpoints, authenticated with an OAuth access token.

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What went wrong talking to the registry.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The registry answered with an error status; `body` is what it said.
    #[error("{status}: {body}")]
    Api { status: StatusCode, body: String },
}

impl ClientError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::Http(e) => e.status(),
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A client of one registry.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Option<Auth>,
}

/// How requests authenticate.
#[derive(Clone)]
enum Auth {
    Bearer(String),
    Basic(String, String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Auth::Basic(u, _) => write!(f, "Basic({u}, <redacted>)"),
        }
    }
}

pub(crate) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// `base` is the registry's origin, e.g. `https://quay.example.com`.
    pub fn new(base: impl Into<String>) -> Client {
        Client::with_http(reqwest::Client::new(), base)
    }

    pub fn with_http(http: reqwest::Client, base: impl Into<String>) -> Client {
        Client {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
            auth: None,
        }
    }

    /// Authenticates further requests with an OAuth access token.
    pub fn with_token(mut self, token: impl Into<String>) -> Client {
        self.auth = Some(Auth::Bearer(token.into()));
        self
    }

    /// Authenticates further requests with a username and password (HTTP Basic).
    pub fn with_basic(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Client {
        self.auth = Some(Auth::Basic(username.into(), password.into()));
        self
    }

    /// The registry's origin.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<reqwest::Response> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        match &self.auth {
            Some(Auth::Bearer(t)) => req = req.bearer_auth(t),
            Some(Auth::Basic(u, p)) => req = req.basic_auth(u, Some(p)),
            None => {}
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            Err(ClientError::Api { status, body })
        }
    }

    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T> {
        Ok(self.send(method, path, body).await?.json().await?)
    }

    pub(crate) async fn unit(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<()> {
        self.send(method, path, body).await.map(|_| ())
    }

    pub(crate) const NONE: Option<&'static ()> = None;
}

/// `/repository/{namespace}/{name}`, each part escaped.
pub(crate) fn repo_path(namespace: &str, name: &str) -> String {
    format!("/repository/{}/{}", seg(namespace), seg(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(seg("org+robot"), "org+robot");
        assert_eq!(seg("a b/c@d"), "a%20b%2Fc%40d");
    }
}
