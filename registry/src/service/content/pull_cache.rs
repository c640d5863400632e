//! A read-through cache for the pull hot path: repository lookups and manifest resolution
//! (`GET /v2/<name>/manifests/<reference>`), which otherwise cost two database queries each.
//!
//! Consistency rules:
//! - Every write to repositories, tags or manifests calls [`PullCache::invalidate`] after its
//!   commit, which drops all entries at once (a generation bump) here and, on PostgreSQL, in
//!   every other replica through [`crate::service::invalidation`] (`LISTEN/NOTIFY`): a tag
//!   pushed through one replica is served by the others once the notification arrives.
//!   While a replica's listener is down its cache is bypassed.
//! - An entry also lives at most `ttl` (default 1 s, `QUAYSIDE_PULL_CACHE_TTL_MS`; 0 turns the
//!   cache off): the bound for writers that send no notification (SQLite has none, and another
//!   process such as `quayside gc --now` may write there; SQL run by hand on PostgreSQL).
//! - A tag's expiration is checked on every hit, so an expired tag is never served from cache.
//! - Misses are not cached: a repository or tag that does not exist is looked up every time.
//! - Bounded: beyond [`MAX_ENTRIES`] entries or [`MAX_BYTES`] of manifest content the cache is
//!   cleared and refills with what is hot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::db::content::{manifests::ManifestRow, repositories::RepoRow};
use crate::db::{self, Db};
use crate::oci::RepoName;
use crate::service::Internal;
use crate::service::invalidation::{Invalidation, Topic};

pub const MAX_ENTRIES: usize = 10_000;
pub const MAX_BYTES: usize = 16 * 1024 * 1024;
pub const DEFAULT_TTL_MS: i64 = 1_000;

struct Stamped<T> {
    value: T,
    at_ms: i64,
    generation: u64,
}

/// A manifest as served.
#[derive(Clone, Debug)]
pub struct Served {
    pub digest: String,
    pub media_type: String,
    pub content: Bytes,
}

impl From<ManifestRow> for Served {
    fn from(m: ManifestRow) -> Self {
        Served {
            digest: m.digest,
            media_type: m.media_type,
            content: Bytes::from(m.content),
        }
    }
}

/// A resolved manifest reference, with the tag's expiration when it was a tag.
#[derive(Clone)]
pub struct Resolved {
    pub manifest: Arc<Served>,
    pub expires_ms: Option<i64>,
}

/// Resolutions by (repository id, reference), and the content bytes they hold.
#[derive(Default)]
struct Manifests {
    entries: HashMap<(i64, String), Stamped<Resolved>>,
    bytes: usize,
}

pub struct PullCache {
    ttl_ms: i64,
    bus: Arc<Invalidation>,
    repos: Mutex<HashMap<String, Stamped<Arc<RepoRow>>>>,
    manifests: Mutex<Manifests>,
}

impl PullCache {
    pub fn new(ttl_ms: i64, bus: Arc<Invalidation>) -> PullCache {
        PullCache {
            ttl_ms,
            bus,
            repos: Mutex::new(HashMap::new()),
            manifests: Mutex::new(Manifests::default()),
        }
    }

    /// TTL from `QUAYSIDE_PULL_CACHE_TTL_MS`, else [`DEFAULT_TTL_MS`].
    pub fn from_env(bus: Arc<Invalidation>) -> PullCache {
        let ttl = std::env::var("QUAYSIDE_PULL_CACHE_TTL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_TTL_MS);
        PullCache::new(ttl, bus)
    }

    /// Forgets everything, in this replica and the others; call after any committed write to
    /// repositories, tags or manifests, before answering.
    pub async fn invalidate(&self) {
        self.bus.publish(Topic::Pull).await;
    }

    fn fresh<T>(&self, entry: &Stamped<T>, now_ms: i64) -> bool {
        entry.generation == self.generation()
            && self.bus.cache_allowed()
            && now_ms - entry.at_ms < self.ttl_ms
    }

    /// The repository called `name`, if it exists.
    pub async fn repo(
        &self,
        db: &Db,
        name: &RepoName,
        now_ms: i64,
    ) -> Result<Option<Arc<RepoRow>>, Internal> {
        if self.ttl_ms > 0 {
            let repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = repos.get(name.as_str()).filter(|e| self.fresh(e, now_ms)) {
                return Ok(Some(e.value.clone()));
            }
        }
        let generation = self.generation();
        let Some(row) =
            db::content::repositories::get(db.pool(), name.namespace(), name.repository()).await?
        else {
            return Ok(None);
        };
        let row = Arc::new(row);
        if self.ttl_ms > 0 {
            let mut repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
            if repos.len() >= MAX_ENTRIES {
                repos.clear();
            }
            repos.insert(
                name.as_str().to_owned(),
                Stamped {
                    value: row.clone(),
                    at_ms: now_ms,
                    generation,
                },
            );
        }
        Ok(Some(row))
    }

    /// A cached resolution of `reference` in repository `repo_id`, if fresh and not expired.
    pub fn manifest(&self, repo_id: i64, reference: &str, now_ms: i64) -> Option<Arc<Served>> {
        if self.ttl_ms <= 0 {
            return None;
        }
        let manifests = self.manifests.lock().unwrap_or_else(|e| e.into_inner());
        let e = manifests.entries.get(&(repo_id, reference.to_owned()))?;
        (self.fresh(e, now_ms) && e.value.expires_ms.is_none_or(|x| x > now_ms))
            .then(|| e.value.manifest.clone())
    }

    /// Records a resolution read from the database at generation `generation` (taken before
    /// the read, so a concurrent invalidation is never overwritten by stale data).
    pub fn put_manifest(
        &self,
        repo_id: i64,
        reference: &str,
        resolved: Resolved,
        now_ms: i64,
        generation: u64,
    ) {
        if self.ttl_ms <= 0 {
            return;
        }
        let size = resolved.manifest.content.len();
        let mut m = self.manifests.lock().unwrap_or_else(|e| e.into_inner());
        if m.entries.len() >= MAX_ENTRIES || m.bytes + size > MAX_BYTES {
            m.entries.clear();
            m.bytes = 0;
        }
        let stamped = Stamped {
            value: resolved,
            at_ms: now_ms,
            generation,
        };
        if let Some(old) = m.entries.insert((repo_id, reference.to_owned()), stamped) {
            m.bytes -= old.value.manifest.content.len();
        }
        m.bytes += size;
    }

    pub fn generation(&self) -> u64 {
        self.bus.generation(Topic::Pull)
    }
}
