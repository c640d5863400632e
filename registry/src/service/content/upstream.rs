//! The one client for pulling from another OCI/Docker registry (proxy cache, mirroring).
//!
//! Rules:
//! - An upstream is `host[:port][/namespace...]`; repository names are appended to the
//!   namespace, and Docker Hub (`docker.io`, `registry-1.docker.io`, `index.docker.io`) gets its
//!   `library/` prefix for one-component names.
//! - Authentication follows the registry's `WWW-Authenticate` challenge: Docker token auth
//!   (anonymous, or with the configured credentials as HTTP Basic on the token request), or HTTP
//!   Basic itself. Tokens are cached per scope until shortly before they expire.
//! - `insecure`: the scheme is probed once, HTTPS without certificate verification first, then
//!   plain HTTP; otherwise HTTPS with verified certificates only.
//! - Redirects (blob storage) are followed, and `reqwest` drops the `Authorization` header when
//!   one leaves the upstream's host. Connection failures, timeouts, 429 and 5xx are retried with
//!   exponential backoff; every other answer is final.
//! - Every connection passes the SSRF guard ([`crate::service::operations::ssrf`],
//!   `SSRF_ALLOWED_HOSTS`): the upstream's host is checked before the first request, token
//!   realms before they are asked, redirects before they are followed, and every name again
//!   when a connection is made (so DNS rebinding leads nowhere else). A refusal is
//!   [`UpstreamError::Refused`].
//! - Credentials never appear in `Debug` output, logs or errors.
//! - Blobs are streamed, never buffered; manifests are bounded by [`MAX_MANIFEST_BYTES`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};

use crate::oci::Digest;
use crate::oci::manifest::{
    DOCKER_LIST, DOCKER_MANIFEST, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST,
};
use crate::service::operations::ssrf;
use crate::storage::ByteStream;

/// What the client was told to connect to.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// `host[:port][/namespace]`, as Quay's `upstream_registry`.
    pub registry: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub insecure: bool,
    /// HTTP(S) proxies to reach the upstream through (a mirror's
    /// `external_registry_config.proxy`): `http_proxy` for `http` URLs, `https_proxy` for
    /// `https` ones (tunnelled with `CONNECT`), hosts in `no_proxy` reached directly.
    pub proxy: Option<quayside_client::MirrorProxy>,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("registry", &self.registry)
            .field("username", &self.username.as_ref().map(|_| "<redacted>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("insecure", &self.insecure)
            .field("proxy", &self.proxy.as_ref().map(|_| "<configured>"))
            .finish()
    }
}

/// Timeouts and retries.
#[derive(Clone, Debug)]
pub struct UpstreamOptions {
    pub connect_timeout: Duration,
    /// Longest silence while reading an answer (a blob may take long, but must keep moving).
    pub read_timeout: Duration,
    /// Tries per request (1 = no retry).
    pub attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// Counts every HTTP request sent (each try), for the metrics.
    pub requests: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    /// Where the client may connect (`SSRF_ALLOWED_HOSTS`); the default allows public
    /// addresses only.
    pub guard: ssrf::Guard,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            attempts: 3,
            backoff: Duration::from_millis(200),
            requests: None,
            guard: ssrf::Guard::default(),
        }
    }
}

/// Why an upstream request failed. Never contains credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// No answer: connection refused, DNS, TLS, timeout (after the retries).
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// The upstream refused the credentials (or anonymous access).
    #[error("upstream refused the credentials: {0}")]
    Unauthorized(String),
    /// Any other unexpected status.
    #[error("upstream answered {0}: {1}")]
    Status(u16, String),
    /// The SSRF guard refused an address the upstream (or its token realm, or a redirect)
    /// leads to; `SSRF_ALLOWED_HOSTS` lists exceptions.
    #[error("upstream address refused: {0}")]
    Refused(String),
    /// The answer was not what the protocol says (bad digest, oversized manifest, bad config).
    #[error("{0}")]
    Invalid(String),
}

impl UpstreamError {
    /// Whether the upstream could not be asked at all (then a cached copy may be served).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, UpstreamError::Unreachable(_))
            || matches!(self, UpstreamError::Status(s, _) if *s >= 500)
    }
}

/// A manifest as the upstream serves it.
#[derive(Clone, Debug)]
pub struct UpstreamManifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: Bytes,
}

/// A blob being read from the upstream.
pub struct UpstreamBlob {
    /// `Content-Length`, when the upstream sent one.
    pub size: Option<u64>,
    pub stream: ByteStream,
}

/// The `Accept` list for manifests: every type Quayside stores.
pub const MANIFEST_ACCEPT: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// How requests are authenticated once the upstream's challenge is known.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
    },
    Basic,
}

/// A client of one upstream registry. Cheap to share; holds its token cache.
pub struct Upstream {
    http: reqwest::Client,
    config: UpstreamConfig,
    host: String,
    namespace: Option<String>,
    docker_hub: bool,
    options: UpstreamOptions,
    /// `https` or `http`, once known.
    scheme: Mutex<Option<&'static str>>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("config", &self.config)
            .finish()
    }
}

const DOCKER_HUB_HOSTS: [&str; 3] = ["docker.io", "registry-1.docker.io", "index.docker.io"];

/// Splits `host[:port][/namespace]`, refusing what cannot be a registry address.
pub fn parse_registry(registry: &str) -> Result<(String, Option<String>), String> {
    let registry = registry.trim().trim_end_matches('/');
    if registry.contains("://") {
        return Err("upstream_registry is a host with an optional namespace, not a URL".into());
    }
    let (host, namespace) = match registry.split_once('/') {
        Some((h, ns)) => (h, Some(ns)),
        None => (registry, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !host_ok {
        return Err(format!("{host:?} is not a registry host"));
    }
    if let Some(ns) = namespace {
        let ns_ok = ns.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        });
        if !ns_ok {
            return Err(format!("{ns:?} is not a repository namespace"));
        }
    }
    Ok((host.to_ascii_lowercase(), namespace.map(str::to_owned)))
}

impl Upstream {
    pub fn new(
        config: UpstreamConfig,
        options: UpstreamOptions,
    ) -> Result<Upstream, UpstreamError> {
        let (host, namespace) = parse_registry(&config.registry).map_err(UpstreamError::Invalid)?;
        let docker_hub = DOCKER_HUB_HOSTS.contains(&host.as_str());
        let host = if docker_hub {
            "registry-1.docker.io".to_owned()
        } else {
            host
        };
        let mut builder = reqwest::Client::builder();
        for (proxy, url) in proxies(config.proxy.as_ref())? {
            builder = builder.proxy(proxy);
            tracing::debug!(upstream = %host, proxy = %redact(&url), "upstream reached through a proxy");
        }
        let http = builder
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .danger_accept_invalid_certs(config.insecure)
            .dns_resolver(options.guard.resolver())
            .redirect(options.guard.redirect_policy(10))
            .user_agent(concat!("quayside/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| UpstreamError::Invalid(format!("cannot build an HTTP client: {e}")))?;
        Ok(Upstream {
            http,
            config,
            host,
            namespace,
            docker_hub,
            options,
            scheme: Mutex::new(None),
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// The upstream's repository for a repository name below the proxy organization.
    pub fn repository(&self, name: &str) -> String {
        let name = match &self.namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_owned(),
        };
        if self.docker_hub && !name.contains('/') {
            format!("library/{name}")
        } else {
            name
        }
    }

    /// `GET /v2/`, authenticated as the configuration says: `Ok` when the upstream accepts.
    pub async fn ping(&self) -> Result<(), UpstreamError> {
        let resp = self.send(Method::GET, "/v2/", None, &[]).await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(status_error(s, "GET /v2/")),
        }
    }

    /// The digest the upstream's `reference` resolves to now (`HEAD`), `None` if it has none.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Digest>, UpstreamError> {
        let path = format!("/v2/{}/manifests/{reference}", self.repository(repository));
        let resp = self
            .send(Method::HEAD, &path, Some(repository), &MANIFEST_ACCEPT)
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let digest = resp
                    .headers()
                    .get("Docker-Content-Digest")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                match digest {
                    Some(d) => Ok(Some(d)),
                    // Without the header, only a GET tells.
                    None => Ok(self
                        .manifest(repository, reference)
                        .await?
                        .map(|m| m.digest)),
                }
            }
            s => Err(status_error(s, &format!("HEAD {path}"))),
        }
    }

    /// The manifest `reference` names, verified against its digest when the reference is one.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<UpstreamManifest>, UpstreamError> {
        let path = format!("/v2/{}/manifests/{reference}", self.repository(repository));
        let resp = self
            .send(Method::GET, &path, Some(repository), &MANIFEST_ACCEPT)
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {}
            s => return Err(status_error(s, &format!("GET {path}"))),
        }
        let media_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| crate::oci::manifest::bare_media_type(v).to_owned())
            .unwrap_or_default();
        let header_digest: Option<Digest> = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let content = read_bounded(resp, MAX_MANIFEST_BYTES).await?;
        let expected = match reference.parse::<Digest>() {
            Ok(d) => Some(d),
            Err(_) => header_digest,
        };
        let digest = match expected {
            Some(d) => {
                let actual = Digest::of(d.algorithm(), &content);
                if actual != d {
                    return Err(UpstreamError::Invalid(format!(
                        "upstream manifest digest is {actual}, not {d}"
                    )));
                }
                d
            }
            None => Digest::sha256_of(&content),
        };
        Ok(Some(UpstreamManifest {
            digest,
            media_type,
            content,
        }))
    }

    /// Starts reading a blob; `None` if the upstream does not have it. The caller verifies the
    /// digest of what it reads.
    pub async fn blob(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<UpstreamBlob>, UpstreamError> {
        let path = format!("/v2/{}/blobs/{digest}", self.repository(repository));
        let resp = self.send(Method::GET, &path, Some(repository), &[]).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {}
            s => return Err(status_error(s, &format!("GET {path}"))),
        }
        let size = resp.content_length();
        let stream = resp
            .bytes_stream()
            .map(|r| r.map_err(|e| std::io::Error::other(describe(&e))));
        Ok(Some(UpstreamBlob {
            size,
            stream: Box::pin(stream),
        }))
    }

    /// Size of a blob (`HEAD`), `None` if the upstream does not have it.
    pub async fn blob_size(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, UpstreamError> {
        let path = format!("/v2/{}/blobs/{digest}", self.repository(repository));
        let resp = self
            .send(Method::HEAD, &path, Some(repository), &[])
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(resp.content_length()),
            s => Err(status_error(s, &format!("HEAD {path}"))),
        }
    }

    /// The upstream's referrers index of `digest` (OCI 1.1), `None` when it does not serve the
    /// referrers API or knows no such manifest.
    pub async fn referrers(
        &self,
        repository: &str,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Bytes>, UpstreamError> {
        let mut path = format!("/v2/{}/referrers/{digest}", self.repository(repository));
        if let Some(t) = artifact_type {
            path.push_str("?artifactType=");
            path.push_str(&encode_query_value(t));
        }
        let resp = self
            .send(Method::GET, &path, Some(repository), &[OCI_INDEX])
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(Some(read_bounded(resp, MAX_MANIFEST_BYTES).await?)),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::BAD_REQUEST => {
                Ok(None)
            }
            s => Err(status_error(s, &format!("GET {path}"))),
        }
    }

    /// Every tag of a repository (`GET /v2/<name>/tags/list`, following the `Link` pages), in
    /// the upstream's order; `None` when the upstream knows no such repository. At most
    /// [`MAX_TAGS`] tags are read.
    pub async fn tags(&self, repository: &str) -> Result<Option<Vec<String>>, UpstreamError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let mut path = format!("/v2/{}/tags/list?n=1000", self.repository(repository));
        let mut out: Vec<String> = Vec::new();
        loop {
            let resp = self.send(Method::GET, &path, Some(repository), &[]).await?;
            match resp.status() {
                StatusCode::NOT_FOUND if out.is_empty() => return Ok(None),
                s if s.is_success() => {}
                s => return Err(status_error(s, &format!("GET {path}"))),
            }
            let next = resp
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body = read_bounded(resp, MAX_MANIFEST_BYTES).await?;
            let page: TagList = serde_json::from_slice(&body)
                .map_err(|e| UpstreamError::Invalid(format!("upstream tag list: {e}")))?;
            out.extend(page.tags.unwrap_or_default());
            if out.len() > MAX_TAGS {
                return Err(UpstreamError::Invalid(format!(
                    "the upstream repository has more than {MAX_TAGS} tags"
                )));
            }
            match next {
                Some(n) if n != path => path = n,
                _ => return Ok(Some(out)),
            }
        }
    }

    async fn scheme(&self) -> Result<&'static str, UpstreamError> {
        if let Some(s) = *self.scheme.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(s);
        }
        self.options
            .guard
            .check(&format!("https://{}/", self.host))
            .await
            .map_err(|r| UpstreamError::Refused(r.to_string()))?;
        for url in proxy_urls(self.config.proxy.as_ref()) {
            self.options
                .guard
                .check(&redact(url))
                .await
                .map_err(|r| UpstreamError::Refused(format!("proxy: {r}")))?;
        }
        let scheme = if !self.config.insecure {
            "https"
        } else {
            // Any HTTP answer over TLS settles it; a failed handshake means plain HTTP.
            match self
                .http
                .get(format!("https://{}/v2/", self.host))
                .send()
                .await
            {
                Ok(_) => "https",
                Err(_) => "http",
            }
        };
        *self.scheme.lock().unwrap_or_else(|e| e.into_inner()) = Some(scheme);
        Ok(scheme)
    }

    /// Sends a request, answering the upstream's authentication challenge and retrying what
    /// may succeed on a second try. `repository` (already below the proxy organization) names
    /// the token scope.
    async fn send(
        &self,
        method: Method,
        path: &str,
        repository: Option<&str>,
        accept: &[&str],
    ) -> Result<reqwest::Response, UpstreamError> {
        let scheme = self.scheme().await?;
        let url = format!("{scheme}://{}{path}", self.host);
        let scope = repository.map(|r| format!("repository:{}:pull", self.repository(r)));
        let mut answered_challenge = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), &url);
            if !accept.is_empty() {
                req = req.header(header::ACCEPT, accept.join(", "));
            }
            if let Some(auth) = self.authorization(scope.as_deref()) {
                req = req.header(header::AUTHORIZATION, auth);
            }
            self.count();
            let retry_after = match req.send().await {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !answered_challenge => {
                    answered_challenge = true;
                    let challenge = parse_challenge(resp.headers()).ok_or_else(|| {
                        UpstreamError::Unauthorized(format!(
                            "{method} {path}: 401 without a usable challenge"
                        ))
                    })?;
                    self.answer(challenge, scope.as_deref()).await?;
                    continue;
                }
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    return Err(UpstreamError::Unauthorized(format!("{method} {path}: 401")));
                }
                Ok(resp)
                    if resp.status().is_server_error()
                        || resp.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    if attempt >= self.options.attempts {
                        return Ok(resp);
                    }
                    format!("{}", resp.status())
                }
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    if let Some(refusal) = refusal(&e) {
                        return Err(UpstreamError::Refused(format!(
                            "{method} {path}: {refusal}"
                        )));
                    }
                    if attempt >= self.options.attempts {
                        return Err(UpstreamError::Unreachable(format!(
                            "{method} {}{path}: {}",
                            self.host,
                            describe(&e)
                        )));
                    }
                    describe(&e)
                }
            };
            let wait = self.options.backoff * 2u32.saturating_pow(attempt - 1);
            tracing::debug!(upstream = %self.host, path, attempt, reason = %retry_after, ?wait, "retrying an upstream request");
            tokio::time::sleep(wait).await;
        }
    }

    fn count(&self) {
        if let Some(c) = &self.options.requests {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn authorization(&self, scope: Option<&str>) -> Option<HeaderValue> {
        let challenge = self
            .challenge
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let value = match challenge {
            Challenge::Basic => basic(
                self.config.username.as_deref()?,
                self.config.password.as_deref().unwrap_or_default(),
            ),
            Challenge::Bearer { .. } => {
                let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
                let (token, until) = tokens.get(scope.unwrap_or(""))?;
                if *until <= Instant::now() {
                    return None;
                }
                format!("Bearer {token}")
            }
        };
        let mut v = HeaderValue::from_str(&value).ok()?;
        v.set_sensitive(true);
        Some(v)
    }

    /// Learns how to authenticate from a challenge and, for token auth, fetches a token.
    async fn answer(&self, challenge: Challenge, scope: Option<&str>) -> Result<(), UpstreamError> {
        *self.challenge.lock().unwrap_or_else(|e| e.into_inner()) = Some(challenge.clone());
        let Challenge::Bearer { realm, service } = challenge else {
            if self.config.username.is_none() {
                return Err(UpstreamError::Unauthorized(
                    "the upstream asks for a username and password and none is configured".into(),
                ));
            }
            return Ok(());
        };
        self.options
            .guard
            .check(&realm)
            .await
            .map_err(|r| UpstreamError::Refused(format!("token realm: {r}")))?;
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = service.as_deref() {
            query.push(("service", s));
        }
        if let Some(s) = scope {
            query.push(("scope", s));
        }
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            self.count();
            let mut req = self.http.get(&realm).query(&query);
            if let Some(user) = self.config.username.as_deref() {
                req = req.basic_auth(user, self.config.password.as_deref());
            }
            match req.send().await {
                Ok(r) if r.status().is_server_error() && attempt < self.options.attempts => {}
                Ok(r) => break r,
                Err(e) if refusal(&e).is_some() => {
                    let refusal = refusal(&e).unwrap_or_default();
                    return Err(UpstreamError::Refused(format!("token server: {refusal}")));
                }
                Err(e) if attempt >= self.options.attempts => {
                    return Err(UpstreamError::Unreachable(format!(
                        "token server: {}",
                        describe(&e)
                    )));
                }
                Err(_) => {}
            }
            tokio::time::sleep(self.options.backoff * 2u32.saturating_pow(attempt - 1)).await;
        };
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(UpstreamError::Unauthorized(format!(
                    "the token server refused the {}credentials",
                    if self.config.username.is_some() {
                        ""
                    } else {
                        "anonymous "
                    }
                )));
            }
            s => return Err(status_error(s, "token server")),
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let body = read_bounded(resp, 64 * 1024).await?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| UpstreamError::Invalid(format!("token server answer: {e}")))?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| UpstreamError::Invalid("token server answered no token".into()))?;
        // Docker's default lifetime is 60 s; renew a little before it ends.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60).max(10));
        let until = Instant::now() + lifetime - Duration::from_secs(5);
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(scope.unwrap_or("").to_owned(), (token, until));
        Ok(())
    }
}

/// The proxy URLs a configuration names (blank ones left out).
pub fn proxy_urls(proxy: Option<&quayside_client::MirrorProxy>) -> Vec<&str> {
    proxy
        .into_iter()
        .flat_map(|p| [p.http_proxy.as_deref(), p.https_proxy.as_deref()])
        .flatten()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// The `reqwest` proxies of a configuration, each with its URL.
fn proxies(
    proxy: Option<&quayside_client::MirrorProxy>,
) -> Result<Vec<(reqwest::Proxy, String)>, UpstreamError> {
    let Some(p) = proxy else {
        return Ok(Vec::new());
    };
    let no_proxy = p
        .no_proxy
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .and_then(reqwest::NoProxy::from_string);
    let bad = |which: &str| UpstreamError::Invalid(format!("{which} is not a valid proxy URL"));
    let mut out = Vec::new();
    fn blank(s: &Option<String>) -> Option<&str> {
        s.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    if let Some(url) = blank(&p.http_proxy) {
        let proxy = reqwest::Proxy::http(url).map_err(|_| bad("http_proxy"))?;
        out.push((proxy.no_proxy(no_proxy.clone()), url.to_owned()));
    }
    if let Some(url) = blank(&p.https_proxy) {
        let proxy = reqwest::Proxy::https(url).map_err(|_| bad("https_proxy"))?;
        out.push((proxy.no_proxy(no_proxy.clone()), url.to_owned()));
    }
    Ok(out)
}

/// A URL without its credentials, for logs.
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<invalid>".into(),
    }
}

/// Most tags [`Upstream::tags`] reads from one repository.
pub const MAX_TAGS: usize = 100_000;

/// The path of a `Link: <...>; rel="next"` header (a relative reference, or an absolute one
/// whose path is kept: the next page is asked of the same upstream).
fn next_link(v: &str) -> Option<String> {
    v.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        if !params.replace(' ', "").contains("rel=\"next\"") {
            return None;
        }
        let path = match target.split_once("://") {
            Some((_, rest)) => &rest[rest.find('/')?..],
            None => target,
        };
        path.starts_with("/v2/").then(|| path.to_owned())
    })
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn status_error(status: StatusCode, what: &str) -> UpstreamError {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            UpstreamError::Unauthorized(format!("{what}: {status}"))
        }
        s => UpstreamError::Status(s.as_u16(), what.to_owned()),
    }
}

/// The SSRF guard's refusal behind a failed request (by the resolver or the redirect policy).
fn refusal(e: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<ssrf::Refusal>() {
            return Some(r.to_string());
        }
        source = s.source();
    }
    None
}

/// An error's message with its causes (reqwest's top line alone says little), never a URL's
/// credentials (none are ever put in URLs).
fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

async fn read_bounded(resp: reqwest::Response, limit: usize) -> Result<Bytes, UpstreamError> {
    if resp.content_length().is_some_and(|l| l > limit as u64) {
        return Err(UpstreamError::Invalid(format!(
            "upstream answer is larger than {limit} bytes"
        )));
    }
    let mut stream = resp.bytes_stream();
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| UpstreamError::Unreachable(describe(&e)))?;
        if out.len() + chunk.len() > limit {
            return Err(UpstreamError::Invalid(format!(
                "upstream answer is larger than {limit} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// The first challenge of `WWW-Authenticate` this client can answer.
fn parse_challenge(headers: &HeaderMap) -> Option<Challenge> {
    headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_challenge_value)
}

fn parse_challenge_value(v: &str) -> Option<Challenge> {
    let v = v.trim();
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let realm = params.get("realm")?.clone();
    if !(realm.starts_with("https://") || realm.starts_with("http://")) {
        return None;
    }
    Some(Challenge::Bearer {
        realm,
        service: params.get("service").cloned(),
    })
}

/// `key="value", key=token, ...` (RFC 9110 §11.2 auth-params), keys lower-cased.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        out.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(registry: &str) -> Upstream {
        Upstream::new(
            UpstreamConfig {
                registry: registry.into(),
                username: Some("u".into()),
                password: Some("secret-pw".into()),
                insecure: false,
                proxy: None,
            },
            UpstreamOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn registry_addresses() {
        assert_eq!(
            parse_registry("Registry.example.com:5000/library/").unwrap(),
            ("registry.example.com:5000".into(), Some("library".into()))
        );
        assert_eq!(
            parse_registry("127.0.0.1:5000").unwrap(),
            ("127.0.0.1:5000".into(), None)
        );
        assert!(parse_registry("https://r.example.com").is_err());
        assert!(parse_registry("").is_err());
        assert!(parse_registry("r.example.com/Bad Ns").is_err());
        assert!(parse_registry("r.example.com//x").is_err());
        assert!(parse_registry("user@r.example.com").is_err());
    }

    #[test]
    fn repository_names_get_namespace_and_library_prefix() {
        assert_eq!(upstream("docker.io").repository("alpine"), "library/alpine");
        assert_eq!(
            upstream("docker.io").repository("bitnami/redis"),
            "bitnami/redis"
        );
        assert_eq!(upstream("r.example.com").repository("alpine"), "alpine");
        assert_eq!(upstream("r.example.com/team").repository("app"), "team/app");
        assert_eq!(
            upstream("docker.io/library").repository("alpine"),
            "library/alpine"
        );
        assert_eq!(upstream("docker.io").host, "registry-1.docker.io");
    }

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge_value(
                r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into())
            })
        );
        assert_eq!(
            parse_challenge_value(r#"bearer realm="http://127.0.0.1:1/v2/auth", service="a,b""#),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/v2/auth".into(),
                service: Some("a,b".into())
            })
        );
        assert_eq!(
            parse_challenge_value(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        // A realm that is not an HTTP URL is not followed.
        assert_eq!(
            parse_challenge_value(r#"Bearer realm="file:///etc/passwd""#),
            None
        );
        assert_eq!(parse_challenge_value("Negotiate"), None);
        let p = parse_params(r#"a="x\"y", b=plain , c="""#);
        assert_eq!(p["a"], "x\"y");
        assert_eq!(p["b"], "plain");
        assert_eq!(p["c"], "");
    }

    #[test]
    fn tag_list_pages() {
        assert_eq!(
            next_link(r#"</v2/a/b/tags/list?last=x&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/b/tags/list?last=x&n=2")
        );
        assert_eq!(
            next_link(r#"<https://r.example.com/v2/a/tags/list?last=y>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=y")
        );
        assert_eq!(next_link(r#"</v2/a/tags/list?last=x>; rel="prev""#), None);
        assert_eq!(next_link(r#"</elsewhere>; rel="next""#), None);
    }

    #[test]
    fn debug_never_shows_credentials() {
        let u = upstream("r.example.com");
        let shown = format!("{u:?} {:?}", u.config());
        assert!(!shown.contains("secret-pw"), "{shown}");
        assert!(shown.contains("r.example.com"));
    }

    #[test]
    fn unreachable_classification() {
        assert!(UpstreamError::Unreachable("x".into()).is_unreachable());
        assert!(UpstreamError::Status(503, "x".into()).is_unreachable());
        assert!(!UpstreamError::Status(400, "x".into()).is_unreachable());
        assert!(!UpstreamError::Unauthorized("x".into()).is_unreachable());
    }

    /// Loopback upstreams are refused by the SSRF guard unless allowed, before any request.
    #[tokio::test]
    async fn the_guard_refuses_non_public_upstreams() {
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        for registry in ["127.0.0.1:1", "localhost:1", "169.254.169.254"] {
            let u = Upstream::new(
                UpstreamConfig {
                    registry: registry.into(),
                    username: None,
                    password: None,
                    insecure: true,
                    proxy: None,
                },
                UpstreamOptions {
                    requests: Some(requests.clone()),
                    ..UpstreamOptions::default()
                },
            )
            .unwrap();
            let err = u.ping().await.unwrap_err();
            assert!(
                matches!(err, UpstreamError::Refused(_)),
                "{registry}: {err}"
            );
        }
        assert_eq!(requests.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    /// Retries with backoff against a port nothing listens on: the configured number of tries,
    /// then `Unreachable`.
    #[tokio::test]
    async fn unreachable_after_retries() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let u = Upstream::new(
            UpstreamConfig {
                registry: format!("127.0.0.1:{port}"),
                username: None,
                password: None,
                insecure: true,
                proxy: None,
            },
            UpstreamOptions {
                attempts: 3,
                backoff: Duration::from_millis(20),
                guard: ssrf::Guard::new(&["127.0.0.1"]),
                ..UpstreamOptions::default()
            },
        )
        .unwrap();
        let started = Instant::now();
        let err = u.ping().await.unwrap_err();
        assert!(err.is_unreachable(), "{err}");
        // Two waits: 20 ms + 40 ms.
        assert!(started.elapsed() >= Duration::from_millis(60));
    }
}
