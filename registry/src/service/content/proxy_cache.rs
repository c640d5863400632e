//! Proxy cache: an organization whose repositories pull through from an upstream registry
//! (Quay's "Project Quay as a proxy cache").
//!
//! Rules:
//! - Configuration (`/api/v1/organization/{org}/proxycache`): one per organization, members may
//!   read it, administrators create, validate and delete it. The upstream credentials are sealed
//!   with the installation key and never logged or answered.
//! - A manifest pulled by tag is fetched from upstream on first pull and tagged with an
//!   expiration of `expiration_s`. Each later pull asks the upstream for the tag's digest
//!   (`HEAD`): unchanged renews the expiration, changed fetches only the new manifest, gone ends
//!   the tag. When the upstream cannot answer, the cached tag is served until its expiration (the
//!   staleness period since the last successful check), and the error after. A tag that was
//!   pushed locally (an administrator may push, as in Quay) is served as any tag is.
//! - A manifest pulled by digest is fetched once (digests never change).
//! - A blob not yet in the repository is fetched once however many clients ask at once (single
//!   flight per digest): the first client receives the bytes while they are written to storage,
//!   its last chunk only once the digest is verified and the blob recorded; the others wait for
//!   that and are served from storage. A broken or wrong fetch leaves nothing visible.
//! - Repositories are created (private) on first pull by whoever may pull there; proxied pulls
//!   are audit-logged by the `/v2` surface like any pull, and counted in the metrics below.
//! - Referrers are passed through from the upstream when it serves the referrers API.
//!
//! - Manifests stored here count toward the organization's quota as pushes do (blobs from their
//!   arrival). With a quota, a new image evicts the least recently pulled cached tags instead
//!   of being refused ([`make_room`]).
//!
//! - A fetched blob is written to a staging key under `uploads/` (the store writes it whole or
//!   not at all) and renamed to its digest's key only once verified and recorded. A broken
//!   upstream connection leaves nothing; a crash between staging and recording leaves a staging
//!   object no upload owns, invisible to pulls, which the `uploads` worker (at start and every
//!   minute, any replica) deletes once it is older than the upload expiration.
//!
//! Not here yet: a client that accepts no
//! list type gets the linux/amd64 child of a cached list only once that child was pulled by
//! digest (manifests are fetched with every type accepted).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use quayside_client as api;
use serde_json::json;

use crate::db;
use crate::db::content::proxy_cache::ProxyCacheRow;
use crate::db::content::repositories::RepoRow;
use crate::db::content::tags::SetOptions;
use crate::oci::manifest;
use crate::oci::{Digest, Hasher, RepoName};
use crate::service::access::authz::{self, Action, Resource};
use crate::service::content::gc;
use crate::service::content::manifests::Reference;
use crate::service::content::quota;
use crate::service::content::repositories;
use crate::service::content::upstream::{
    Upstream, UpstreamConfig, UpstreamError, UpstreamManifest, UpstreamOptions,
};
use crate::service::operations::audit::{Caller, Event};
use crate::service::operations::ssrf;
use crate::service::{Ctx, Internal, Principal, RegistryError, TenancyError};
use crate::storage::{ByteStream, paths};

/// Quay's answer when the upstream has no such image (or refuses the credentials).
pub const NOT_IN_UPSTREAM: &str = "the requested image may not exist in the upstream registry, or the configured Quay organization credentials have insufficient rights to access it";

/// How long a looked-up configuration is trusted (writes in this process drop it at once).
const CONFIG_TTL: Duration = Duration::from_secs(1);

/// In-process proxy-cache state: configurations, upstream clients (with their token caches),
/// blob fetches in flight, and counters.
#[derive(Default)]
pub struct ProxyState {
    configs: Mutex<HashMap<String, Looked>>,
    inflight: Mutex<HashMap<String, tokio::sync::watch::Receiver<Fetch>>>,
    /// HTTP requests sent to upstreams (each try counts).
    pub upstream_requests: Arc<AtomicU64>,
    /// Pulls served from the cache (manifest unchanged upstream, blob already stored).
    pub hits: AtomicU64,
    /// Pulls that fetched from the upstream.
    pub misses: AtomicU64,
    /// Cached manifests served because the upstream could not answer.
    pub stale_served: AtomicU64,
    /// Blob fetches started (one per digest however many clients ask at once).
    pub blob_fetches: AtomicU64,
    /// Cached tags evicted to make room under the organization's quota.
    pub evictions: AtomicU64,
}

impl ProxyState {
    fn forget_configs(&self) {
        self.configs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// A configuration looked up at a time (`None`: the namespace is no proxy cache).
type Looked = (Instant, Option<Arc<Proxy>>);

/// The state of one blob fetch, as followers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fetch {
    Running,
    Done(Result<(), String>),
}

/// One organization's proxy cache, ready to pull.
pub struct Proxy {
    pub namespace_id: i64,
    pub expiration_s: i64,
    pub upstream: Upstream,
}

/// The configuration of `namespace`, if it is a proxy-cache organization.
pub async fn proxy_for(ctx: &Ctx, namespace: &str) -> Result<Option<Arc<Proxy>>, Internal> {
    if let Some((at, p)) = ctx
        .proxy
        .configs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(namespace)
        && at.elapsed() < CONFIG_TTL
    {
        return Ok(p.clone());
    }
    let row = db::content::proxy_cache::by_namespace(ctx.db.pool(), namespace).await?;
    let proxy = match row {
        None => None,
        Some(row) => Some(Arc::new(Proxy {
            namespace_id: row.namespace_id,
            expiration_s: row.expiration_s,
            upstream: upstream_of(ctx, &row)?,
        })),
    };
    let mut configs = ctx.proxy.configs.lock().unwrap_or_else(|e| e.into_inner());
    if configs.len() > 10_000 {
        configs.clear();
    }
    // Keep the client already built for the same configuration (its tokens stay cached).
    let proxy = match (configs.get(namespace), proxy) {
        (Some((_, Some(old))), Some(new))
            if old.namespace_id == new.namespace_id
                && old.expiration_s == new.expiration_s
                && old.upstream.config() == new.upstream.config() =>
        {
            Some(old.clone())
        }
        (_, new) => new,
    };
    configs.insert(namespace.to_owned(), (Instant::now(), proxy.clone()));
    Ok(proxy)
}

fn options(ctx: &Ctx) -> UpstreamOptions {
    UpstreamOptions {
        requests: Some(ctx.proxy.upstream_requests.clone()),
        guard: ssrf::Guard::new(&ctx.config.ssrf_allowed_hosts),
        ..UpstreamOptions::default()
    }
}

fn upstream_of(ctx: &Ctx, row: &ProxyCacheRow) -> Result<Upstream, Internal> {
    let open = |sealed: &Option<String>| sealed.as_deref().and_then(|s| ctx.sealer().open(s));
    Upstream::new(
        UpstreamConfig {
            registry: row.upstream_registry.clone(),
            username: open(&row.username_sealed),
            password: open(&row.password_sealed),
            insecure: row.insecure,
            proxy: None,
        },
        options(ctx),
    )
    .map_err(|e| Internal::Other(format!("stored proxy-cache configuration: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Configuration (`/api/v1`)

async fn org_id(ctx: &Ctx, org: &str) -> Result<i64, TenancyError> {
    db::tenancy::namespaces::by_name(ctx.db.pool(), org)
        .await?
        .filter(|n| n.is_org())
        .map(|n| n.id)
        .ok_or(TenancyError::NotFound)
}

/// `GET .../proxycache` (members of the organization).
pub async fn get_config(
    ctx: &Ctx,
    caller: &Caller,
    org: &str,
) -> Result<api::ProxyCacheConfig, TenancyError> {
    authz::require(
        ctx,
        &caller.principal,
        Action::ViewNamespace,
        Resource::Namespace(org),
    )
    .await?;
    let id = org_id(ctx, org).await?;
    Ok(
        match db::content::proxy_cache::get(ctx.db.pool(), id).await? {
            Some(row) => api::ProxyCacheConfig {
                upstream_registry: row.upstream_registry,
                expiration_s: Some(row.expiration_s),
                insecure: Some(row.insecure),
            },
            None => api::ProxyCacheConfig::default(),
        },
    )
}

/// Checks a request's fields; returns the upstream configuration and the expiration.
async fn checked_request(
    ctx: &Ctx,
    request: &api::ProxyCacheRequest,
) -> Result<(UpstreamConfig, i64), TenancyError> {
    let (host, _) = crate::service::content::upstream::parse_registry(&request.upstream_registry)
        .map_err(TenancyError::Invalid)?;
    let expiration_s = request
        .expiration_s
        .unwrap_or(api::DEFAULT_PROXY_CACHE_EXPIRATION_S);
    if expiration_s <= 0 {
        return Err(TenancyError::Invalid(
            "expiration_s must be a positive number of seconds".into(),
        ));
    }
    let blank = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let username = blank(&request.upstream_registry_username);
    let password = blank(&request.upstream_registry_password);
    if password.is_some() && username.is_none() {
        return Err(TenancyError::Invalid(
            "upstream_registry_password needs upstream_registry_username".into(),
        ));
    }
    // As Quay does: an upstream whose name does not resolve is refused.
    let name = host.rsplit_once(':').map_or(host.as_str(), |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) && !h.is_empty() {
            h
        } else {
            host.as_str()
        }
    });
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if tokio::net::lookup_host((name, 443)).await.is_err() {
        return Err(TenancyError::Invalid(format!(
            "Cannot resolve hostname '{name}'"
        )));
    }
    ssrf::Guard::new(&ctx.config.ssrf_allowed_hosts)
        .check(&format!("https://{host}/"))
        .await
        .map_err(|r| TenancyError::Invalid(format!("upstream_registry refused: {r}")))?;
    Ok((
        UpstreamConfig {
            registry: request
                .upstream_registry
                .trim()
                .trim_end_matches('/')
                .to_owned(),
            username,
            password,
            insecure: request.insecure.unwrap_or(false),
            proxy: None,
        },
        expiration_s,
    ))
}

/// `POST .../proxycache` (administrators): 400 if the organization already has one.
pub async fn create_config(
    ctx: &Ctx,
    caller: &Caller,
    org: &str,
    request: &api::ProxyCacheRequest,
) -> Result<(), TenancyError> {
    authz::require(
        ctx,
        &caller.principal,
        Action::AdminNamespace,
        Resource::Namespace(org),
    )
    .await?;
    let id = org_id(ctx, org).await?;
    if db::content::proxy_cache::get(ctx.db.pool(), id)
        .await?
        .is_some()
    {
        return Err(TenancyError::Invalid(
            "Proxy Cache Configuration already exists".into(),
        ));
    }
    let (config, expiration_s) = checked_request(ctx, request).await?;
    let seal = |s: &Option<String>| s.as_deref().map(|s| ctx.sealer().seal(s));
    let row = ProxyCacheRow {
        namespace_id: id,
        upstream_registry: config.registry.clone(),
        username_sealed: seal(&config.username),
        password_sealed: seal(&config.password),
        insecure: config.insecure,
        expiration_s,
        created_ms: ctx.now_ms(),
    };
    match db::content::proxy_cache::insert(ctx.db.pool(), &row).await {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => {
            return Err(TenancyError::Invalid(
                "Proxy Cache Configuration already exists".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    ctx.proxy.forget_configs();
    ctx.audit.record(
        caller,
        Event::namespace(
            "create_proxy_cache_config",
            org,
            json!({ "upstream_registry": config.registry }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}

/// `DELETE .../proxycache` (administrators): 404 if there is none. Cached repositories stay.
pub async fn delete_config(ctx: &Ctx, caller: &Caller, org: &str) -> Result<(), TenancyError> {
    authz::require(
        ctx,
        &caller.principal,
        Action::AdminNamespace,
        Resource::Namespace(org),
    )
    .await?;
    let id = org_id(ctx, org).await?;
    if !db::content::proxy_cache::delete(ctx.db.pool(), id).await? {
        return Err(TenancyError::NotFound);
    }
    ctx.proxy.forget_configs();
    ctx.audit.record(
        caller,
        Event::namespace("delete_proxy_cache_config", org, json!({})),
        ctx.now_ms(),
    );
    Ok(())
}

/// What `POST .../validateproxycache` found (both answer 202).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    /// The upstream accepted the credentials (or needs none).
    Valid,
    /// No credentials were given and the upstream asks for authentication (anonymous pulls
    /// may still be allowed by its token server).
    Anonymous,
}

/// `POST .../validateproxycache` (administrators): asks the upstream's `/v2/`, storing nothing.
pub async fn validate(
    ctx: &Ctx,
    caller: &Caller,
    org: &str,
    request: &api::ProxyCacheRequest,
) -> Result<Validation, TenancyError> {
    authz::require(
        ctx,
        &caller.principal,
        Action::AdminNamespace,
        Resource::Namespace(org),
    )
    .await?;
    org_id(ctx, org).await?;
    let (config, _) = checked_request(ctx, request).await?;
    let anonymous = config.username.is_none();
    let upstream =
        Upstream::new(config, options(ctx)).map_err(|e| TenancyError::Invalid(e.to_string()))?;
    let failed = || TenancyError::Invalid("Failed to validate Proxy cache configuration".into());
    match upstream.ping().await {
        Ok(()) => Ok(Validation::Valid),
        Err(UpstreamError::Unauthorized(_)) if anonymous => Ok(Validation::Anonymous),
        Err(UpstreamError::Refused(e)) => Err(TenancyError::Invalid(format!(
            "upstream_registry refused: {e}"
        ))),
        Err(UpstreamError::Unauthorized(e)) => {
            tracing::info!(org, error = %e, "proxy-cache validation: upstream refused the credentials");
            Err(TenancyError::Invalid(
                "Failed login to remote registry. Please verify entered details and try again."
                    .into(),
            ))
        }
        Err(e) => {
            tracing::info!(org, error = %e, "proxy-cache validation failed");
            Err(failed())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pull-through (`/v2`)

/// The repository a pull through the proxy names, created on first pull. Whoever may pull
/// there, or create repositories in the organization, may pull through.
async fn repo_for_pull(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
) -> Result<RepoRow, RegistryError> {
    if let Some(repo) =
        db::content::repositories::get(ctx.db.pool(), name.namespace(), name.repository()).await?
    {
        repositories::authorize(ctx, principal, Action::Pull, name).await?;
        return Ok(repo);
    }
    if !authz::can(ctx, principal, Action::Pull, Resource::Repo(name)).await?
        && !authz::can(ctx, principal, Action::CreateRepo, Resource::Repo(name)).await?
    {
        return repositories::authorize(ctx, principal, Action::Pull, name)
            .await
            .and(Err(RegistryError::Denied));
    }
    repositories::create_on_push(ctx, principal, name).await
}

fn not_in_upstream(detail: Option<&UpstreamError>) -> RegistryError {
    match detail {
        None => RegistryError::ManifestUnknown(format!("{NOT_IN_UPSTREAM} (404)")),
        Some(e) => RegistryError::ManifestUnknown(format!("{NOT_IN_UPSTREAM} ({e})")),
    }
}

/// Brings the cached copy of `reference` up to date before a manifest `GET`/`HEAD` serves it
/// from the repository. Returns `false` (doing nothing) outside proxy-cache organizations.
pub async fn prepare_manifest(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    reference: &str,
) -> Result<bool, RegistryError> {
    let Some(proxy) = proxy_for(ctx, name.namespace()).await? else {
        return Ok(false);
    };
    let reference = Reference::parse_existing(reference)?;
    let repo = repo_for_pull(ctx, principal, name).await?;
    match reference {
        Reference::Tag(tag) => refresh_tag(ctx, principal, &proxy, &repo, name, &tag).await?,
        Reference::Digest(d) => {
            let present = db::content::manifests::by_digest(ctx.db.pool(), repo.id, d.as_str())
                .await?
                .is_some_and(|m| m.deleted_ms.is_none());
            if present {
                ctx.proxy.hits.fetch_add(1, Ordering::Relaxed);
            } else {
                let fetched = proxy
                    .upstream
                    .manifest(name.repository(), d.as_str())
                    .await
                    .map_err(|e| not_in_upstream(Some(&e)))?
                    .ok_or_else(|| not_in_upstream(None))?;
                ctx.proxy.misses.fetch_add(1, Ordering::Relaxed);
                store_manifest(ctx, principal, &repo, &fetched, None).await?;
            }
        }
    }
    Ok(true)
}

async fn refresh_tag(
    ctx: &Ctx,
    principal: &Principal,
    proxy: &Proxy,
    repo: &RepoRow,
    name: &RepoName,
    tag: &str,
) -> Result<(), RegistryError> {
    let pool = ctx.db.pool();
    let now = ctx.now_ms();
    let local = db::content::tags::live_one(pool, repo.id, tag, now).await?;
    let marker = db::content::proxy_cache::cached_tag(pool, repo.id, tag).await?;
    if let Some(l) = &local
        && marker.as_deref() != Some(l.manifest_digest.as_str())
    {
        // Pushed here, not cached from upstream.
        return Ok(());
    }
    let expiration = |now: i64| Some(now.saturating_add(proxy.expiration_s.saturating_mul(1000)));
    match proxy.upstream.manifest_digest(name.repository(), tag).await {
        Ok(Some(d))
            if local
                .as_ref()
                .is_some_and(|l| l.manifest_digest == d.as_str()) =>
        {
            let l = local.as_ref().expect("checked");
            db::content::tags::change_expiration(pool, l.id, l.expiration_ms, expiration(now))
                .await?;
            ctx.pull_cache.invalidate().await;
            ctx.proxy.hits.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Ok(Some(d)) => {
            let fetched = proxy
                .upstream
                .manifest(name.repository(), d.as_str())
                .await
                .map_err(|e| not_in_upstream(Some(&e)))?
                .ok_or_else(|| not_in_upstream(None))?;
            ctx.proxy.misses.fetch_add(1, Ordering::Relaxed);
            let tag = Some((tag, expiration(ctx.now_ms())));
            store_manifest(ctx, principal, repo, &fetched, tag).await
        }
        Ok(None) => {
            if local.is_some() {
                let mut tx = ctx.db.begin().await?;
                db::content::tags::end_live(&mut *tx, repo.id, tag, now).await?;
                db::content::proxy_cache::forget_cached_tag(&mut *tx, repo.id, tag).await?;
                tx.commit().await?;
                ctx.pull_cache.invalidate().await;
                tracing::info!(repository = %name, tag, "tag deleted upstream: no longer served");
            }
            Err(not_in_upstream(None))
        }
        Err(e) => match local {
            Some(_) => {
                tracing::warn!(repository = %name, tag, error = %e, "upstream unavailable: serving the cached tag");
                ctx.proxy.stale_served.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            None => {
                tracing::warn!(repository = %name, tag, error = %e, "upstream unavailable and nothing cached");
                Err(not_in_upstream(Some(&e)))
            }
        },
    }
}

/// Stores a manifest fetched from upstream (its blobs come later, when pulled) and, with a tag,
/// points the tag at it with the given expiration. A new manifest is accounted in the
/// organization's quota like a push (its blobs count once they arrive), after room was made
/// for it ([`make_room`]).
async fn store_manifest(
    ctx: &Ctx,
    principal: &Principal,
    repo: &RepoRow,
    fetched: &UpstreamManifest,
    tag: Option<(&str, Option<i64>)>,
) -> Result<(), RegistryError> {
    let content_type = (!fetched.media_type.is_empty()).then_some(fetched.media_type.as_str());
    let parsed = manifest::parse(content_type, &fetched.content).map_err(|e| {
        RegistryError::ManifestInvalid(format!("the upstream's manifest does not parse: {e}"))
    })?;
    let required: Vec<&str> = parsed.required_blobs().map(|d| d.digest.as_str()).collect();
    let children: Vec<&str> = parsed.manifests.iter().map(|d| d.digest.as_str()).collect();
    let annotations = (!parsed.annotations.is_empty())
        .then(|| serde_json::to_string(&parsed.annotations).unwrap_or_default());
    let new = db::content::manifests::NewManifest {
        repository_id: repo.id,
        digest: fetched.digest.as_str(),
        media_type: parsed.media_type(),
        artifact_type: parsed.artifact_type.as_deref(),
        subject_digest: parsed.subject.as_ref().map(|s| s.digest.as_str()),
        config_digest: parsed.config.as_ref().map(|c| c.digest.as_str()),
        annotations: annotations.as_deref(),
        layers_size: (!parsed.kind.is_list())
            .then(|| parsed.layers.iter().map(|l| l.size).sum::<i64>()),
        content: &fetched.content,
        blobs: &required,
        children: &children,
    };
    let known = db::content::manifests::id_of(ctx.db.pool(), repo.id, fetched.digest.as_str())
        .await?
        .is_some();
    if !known && !parsed.kind.is_list() {
        make_room(ctx, repo, parsed.layers.iter().map(|l| l.size).sum()).await?;
    }
    let mut attempt = 0;
    let mut crossing;
    loop {
        attempt += 1;
        let now = ctx.now_ms();
        let mut tx = ctx.db.begin().await?;
        if !db::content::repositories::lock(&mut tx, repo.id).await? {
            return Err(RegistryError::NameUnknown);
        }
        let existed = db::content::manifests::id_of(&mut *tx, repo.id, fetched.digest.as_str())
            .await?
            .is_some();
        let id = db::content::manifests::upsert(&mut tx, &new, now).await?;
        crossing = match existed {
            true => None,
            false => quota::account_manifest(ctx, &mut tx, repo, id).await?,
        };
        if let Some((tag, expiration_ms)) = tag {
            let options = SetOptions {
                expiration_ms,
                reversion: false,
            };
            match db::content::tags::set_with(&mut tx, repo.id, tag, id, now, options).await {
                Ok(_) => {}
                Err(e) if e.is_unique_violation() && attempt < 5 => continue,
                Err(e) => return Err(e.into()),
            }
            db::content::proxy_cache::set_cached_tag(
                &mut *tx,
                repo.id,
                tag,
                fetched.digest.as_str(),
            )
            .await?;
        }
        match tx.commit().await {
            Ok(()) => break,
            Err(e) if e.is_unique_violation() && attempt < 5 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    ctx.pull_cache.invalidate().await;
    // Security scanning: the first pull through the cache queues the manifest's scan.
    if ctx.config.scanner.enabled
        && !parsed.kind.is_list()
        && let Err(e) =
            db::content::scanner::enqueue(ctx.db.pool(), fetched.digest.as_str(), ctx.now_ms())
                .await
    {
        tracing::warn!(digest = %fetched.digest, error = %e, "queueing the security scan failed");
    }
    if let Some(crossing) = &crossing {
        let caller = Caller::new(
            principal.clone(),
            crate::service::operations::audit::current_ip(),
        );
        quota::crossed(ctx, &caller, crossing).await;
    }
    Ok(())
}

/// Makes room for an image of `incoming` layer bytes in a proxy-cache organization with a quota
/// (feature on), as Quay's auto-pruning does: while the organization's usage plus the image
/// would exceed the quota, the least recently pulled cached tag of the organization is evicted
/// and its repository collected at once, so the usage read next is what remains. An image
/// larger than the whole quota, or one that does not fit once nothing cached is left, is
/// refused (`DENIED`, Quay's quota message) without evicting anything more. Tags pushed to
/// the organization are never evicted.
async fn make_room(ctx: &Ctx, repo: &RepoRow, incoming: i64) -> Result<(), RegistryError> {
    if !ctx.config.quota.enabled {
        return Ok(());
    }
    let pool = ctx.db.pool();
    let Some(quota) = db::content::quota::quota_of(pool, repo.namespace_id).await? else {
        return Ok(());
    };
    if incoming > quota.limit_bytes {
        return Err(RegistryError::QuotaExceeded);
    }
    loop {
        let used = db::content::quota::namespace_size(pool, repo.namespace_id).await?;
        if used.saturating_add(incoming) <= quota.limit_bytes {
            return Ok(());
        }
        let now = ctx.now_ms();
        let Some(victim) =
            db::content::proxy_cache::least_recently_pulled(pool, repo.namespace_id, now, 1)
                .await?
                .pop()
        else {
            return Err(RegistryError::QuotaExceeded);
        };
        let window_ms = db::content::gc::window_s(pool, victim.repository_id)
            .await?
            .unwrap_or(0)
            .saturating_mul(1000);
        let grace_ms = ctx.config.gc.grace.as_millis() as i64;
        let gone_ms = now - window_ms - grace_ms - 1;
        let mut tx = ctx.db.begin().await?;
        if !db::content::repositories::lock(&mut tx, victim.repository_id).await? {
            continue;
        }
        let evicted = db::content::proxy_cache::evict(&mut tx, &victim, gone_ms).await?;
        tx.commit().await?;
        ctx.pull_cache.invalidate().await;
        if evicted {
            ctx.proxy.evictions.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                namespace = %repo.namespace,
                repository_id = victim.repository_id,
                tag = %victim.name,
                "cached tag evicted to make room under the quota"
            );
            gc::sweep_manifests(ctx, victim.repository_id).await?;
        }
    }
}

/// Where a blob `GET`/`HEAD` in a proxy-cache organization is served from.
pub enum BlobSource {
    /// The repository has it (now): serve it as any blob.
    Local,
    /// `HEAD` of a blob only the upstream has yet.
    Upstream { digest: Digest, size: u64 },
    /// Streaming from the upstream while it is stored.
    Streaming {
        digest: Digest,
        size: Option<u64>,
        stream: ByteStream,
    },
}

/// Decides how to serve a blob of a proxy-cache repository, fetching it from upstream when the
/// repository does not have it. `None` outside proxy-cache organizations.
pub async fn prepare_blob(
    ctx: &Arc<Ctx>,
    principal: &Principal,
    name: &RepoName,
    digest: &str,
    head: bool,
    ranged: bool,
) -> Result<Option<BlobSource>, RegistryError> {
    let Some(proxy) = proxy_for(ctx, name.namespace()).await? else {
        return Ok(None);
    };
    let digest = crate::service::content::blobs::parse_digest(digest)?;
    let repo = repositories::existing(ctx, principal, Action::Pull, name).await?;
    if db::content::blobs::size_in_repo(ctx.db.pool(), repo.id, digest.as_str())
        .await?
        .is_some()
        || link_if_stored(ctx, repo.id, &digest).await?
    {
        ctx.proxy.hits.fetch_add(1, Ordering::Relaxed);
        return Ok(Some(BlobSource::Local));
    }
    if head {
        let size = proxy
            .upstream
            .blob_size(name.repository(), &digest)
            .await
            .map_err(|e| blob_unknown(&digest, Some(&e)))?
            .ok_or_else(|| blob_unknown(&digest, None))?;
        return Ok(Some(BlobSource::Upstream { digest, size }));
    }
    // Join a fetch in flight, or start one.
    let (follower, sender) = {
        let mut inflight = ctx.proxy.inflight.lock().unwrap_or_else(|e| e.into_inner());
        match inflight.get(digest.as_str()) {
            Some(rx) => (Some(rx.clone()), None),
            None => {
                let (tx, rx) = tokio::sync::watch::channel(Fetch::Running);
                inflight.insert(digest.as_str().to_owned(), rx);
                (None, Some(tx))
            }
        }
    };
    if let Some(mut rx) = follower {
        let outcome = rx
            .wait_for(|f| *f != Fetch::Running)
            .await
            .map(|f| f.clone())
            .unwrap_or(Fetch::Done(Err("the fetch was abandoned".into())));
        return match outcome {
            Fetch::Done(Ok(())) => {
                ctx.proxy.hits.fetch_add(1, Ordering::Relaxed);
                Ok(Some(BlobSource::Local))
            }
            _ => Err(blob_unknown(&digest, None)),
        };
    }
    let sender = sender.expect("a leader has the sender");
    ctx.proxy.misses.fetch_add(1, Ordering::Relaxed);
    ctx.proxy.blob_fetches.fetch_add(1, Ordering::Relaxed);
    let started = match proxy.upstream.blob(name.repository(), &digest).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            finish(ctx, &digest, sender, Err("not in upstream".into()));
            return Err(blob_unknown(&digest, None));
        }
        Err(e) => {
            finish(ctx, &digest, sender, Err(e.to_string()));
            return Err(blob_unknown(&digest, Some(&e)));
        }
    };
    let size = started.size;
    // The client's channel: bounded, so a slow client slows the fetch rather than filling memory.
    let (client_tx, client_rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    let task_ctx = ctx.clone();
    let task_digest = digest.clone();
    let repository_id = repo.id;
    let task = async move {
        let outcome = store_fetched(
            &task_ctx,
            repository_id,
            &task_digest,
            size,
            started.stream,
            client_tx,
        )
        .await;
        if let Err(e) = &outcome {
            tracing::warn!(digest = %task_digest, error = %e, "proxy-cache blob fetch failed: nothing stored");
        }
        finish(&task_ctx, &task_digest, sender, outcome);
    };
    tokio::spawn(task);
    if ranged {
        // A range of a blob not stored yet: wait for it, then serve the range from storage.
        let mut rx = client_rx;
        while let Some(chunk) = rx.recv().await {
            if chunk.is_err() {
                return Err(blob_unknown(&digest, None));
            }
        }
        return Ok(Some(BlobSource::Local));
    }
    let stream = futures_util::stream::unfold(client_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(Some(BlobSource::Streaming {
        digest,
        size,
        stream: Box::pin(stream),
    }))
}

/// Ends a fetch: followers learn the outcome, and the next request starts afresh.
fn finish(
    ctx: &Ctx,
    digest: &Digest,
    sender: tokio::sync::watch::Sender<Fetch>,
    outcome: Result<(), String>,
) {
    ctx.proxy
        .inflight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(digest.as_str());
    let _ = sender.send(Fetch::Done(outcome));
}

fn blob_unknown(digest: &Digest, detail: Option<&UpstreamError>) -> RegistryError {
    if let Some(e) = detail {
        tracing::warn!(%digest, error = %e, "cannot fetch a blob from the upstream");
    }
    RegistryError::BlobUnknown(digest.to_string())
}

/// Links a blob stored for another repository into this one; `false` if it is not stored.
async fn link_if_stored(
    ctx: &Ctx,
    repository_id: i64,
    digest: &Digest,
) -> Result<bool, RegistryError> {
    if db::content::blobs::size(ctx.db.pool(), digest.as_str())
        .await?
        .is_none()
    {
        return Ok(false);
    }
    let mut tx = ctx.db.begin().await?;
    if !db::content::repositories::hold(&mut tx, repository_id).await? {
        return Err(RegistryError::NameUnknown);
    }
    db::content::blobs::lock_digest(&mut tx, digest.as_str()).await?;
    if db::content::blobs::size(&mut *tx, digest.as_str())
        .await?
        .is_none()
    {
        return Ok(false);
    }
    db::content::blobs::link(&mut *tx, repository_id, digest.as_str(), ctx.now_ms()).await?;
    tx.commit().await?;
    Ok(true)
}

/// Writes the upstream's bytes to a staging key while handing them to the client, verifies the
/// digest (and the announced size), then makes the blob visible. The client's last chunk is
/// held back until then, and on any failure the client's stream ends with an error.
async fn store_fetched(
    ctx: &Ctx,
    repository_id: i64,
    digest: &Digest,
    size: Option<u64>,
    upstream: ByteStream,
    client: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> Result<(), String> {
    let staged = paths::upload_staged(&uuid::Uuid::new_v4().to_string());
    let hasher = Arc::new(Mutex::new(Hasher::new(digest.algorithm())));
    let pending: Arc<tokio::sync::Mutex<Option<Bytes>>> = Arc::default();
    let tee = {
        let hasher = hasher.clone();
        let pending = pending.clone();
        let client = client.clone();
        upstream.then(move |chunk| {
            let hasher = hasher.clone();
            let pending = pending.clone();
            let client = client.clone();
            async move {
                let chunk = chunk?;
                hasher
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .update(&chunk);
                // Hand the previous chunk on; a client that left does not stop the fetch.
                if let Some(previous) = pending.lock().await.replace(chunk.clone()) {
                    let _ = client.send(Ok(previous)).await;
                }
                Ok(chunk)
            }
        })
    };
    let fail = |message: String| {
        let client = client.clone();
        async move {
            let _ = client
                .send(Err(std::io::Error::other(message.clone())))
                .await;
            Err::<(), String>(message)
        }
    };
    let written = match ctx.store.put(&staged, Box::pin(tee)).await {
        Ok(n) => n,
        Err(e) => return fail(format!("reading or storing the upstream's bytes: {e}")).await,
    };
    let actual = std::mem::replace(
        &mut *hasher.lock().unwrap_or_else(|e| e.into_inner()),
        Hasher::new(digest.algorithm()),
    )
    .finish();
    if &actual != digest || size.is_some_and(|s| s != written) {
        let _ = ctx.store.delete(&staged).await;
        return fail(format!(
            "the upstream sent {written} bytes with digest {actual}, not {digest}"
        ))
        .await;
    }
    ctx.pauses.point("proxy_cache.blob_staged").await;
    if let Err(e) = commit_blob(ctx, repository_id, digest, &staged, written).await {
        let _ = ctx.store.delete(&staged).await;
        return fail(format!("recording the blob: {e}")).await;
    }
    if let Some(last) = pending.lock().await.take() {
        let _ = client.send(Ok(last)).await;
    }
    Ok(())
}

async fn commit_blob(
    ctx: &Ctx,
    repository_id: i64,
    digest: &Digest,
    staged: &str,
    size: u64,
) -> Result<(), RegistryError> {
    let mut tx = ctx.db.begin().await?;
    if !db::content::repositories::hold(&mut tx, repository_id).await? {
        return Err(RegistryError::NameUnknown);
    }
    db::content::blobs::lock_digest(&mut tx, digest.as_str()).await?;
    let now = ctx.now_ms();
    let row = db::content::blobs::size(&mut *tx, digest.as_str())
        .await?
        .is_some();
    let stored = row && ctx.store.stat(&paths::blob(digest)).await?.is_some();
    if stored {
        ctx.store.delete(staged).await?;
    } else {
        ctx.store.rename(staged, &paths::blob(digest)).await?;
        if !row {
            db::content::blobs::insert(&mut *tx, digest.as_str(), size as i64, now).await?;
        }
    }
    db::content::blobs::link(&mut *tx, repository_id, digest.as_str(), now).await?;
    tx.commit().await?;
    if !row {
        quota::blob_arrived(ctx, digest.as_str(), size as i64).await?;
    }
    Ok(())
}

/// The referrers of `digest` from the upstream, when it serves them (else `None`: the local
/// answer stands).
pub async fn upstream_referrers(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    digest: &str,
    artifact_type: Option<&str>,
) -> Result<Option<Bytes>, RegistryError> {
    let Some(proxy) = proxy_for(ctx, name.namespace()).await? else {
        return Ok(None);
    };
    let digest = crate::service::content::blobs::parse_digest(digest)?;
    repositories::existing(ctx, principal, Action::Pull, name).await?;
    match proxy
        .upstream
        .referrers(name.repository(), &digest, artifact_type)
        .await
    {
        Ok(found) => Ok(found),
        Err(e) => {
            tracing::debug!(repository = %name, error = %e, "upstream referrers unavailable");
            Ok(None)
        }
    }
}
