//! Cross-replica invalidation of the in-process caches (the pull cache, the credential cache).
//!
//! Rule: a cache entry is valid while its topic's generation has not moved. A write that makes
//! entries stale calls [`Invalidation::publish`] after its commit and before it answers: that
//! bumps the generation here and, on PostgreSQL, sends `NOTIFY quayside_invalidate` with the
//! topic and this process's id. Every replica keeps one session `LISTEN`ing on the channel
//! ([`Invalidation::spawn_listener`]) and bumps the topic's generation when a notification from
//! another process arrives, so a tag pushed through one replica is served by the others as soon
//! as the notification crosses (no TTL to wait out).
//!
//! A notification sent while a replica's listening session is down is lost to it, so while the
//! session is not connected ([`Invalidation::cache_allowed`] is false) caches are bypassed and
//! every read goes to the database; a (re)connect bumps every topic before caching resumes.
//! SQLite has no notifications and no second server process; caches keep a short TTL as the
//! bound for writers that notify no one (`quayside gc --now` beside a server on SQLite, SQL run
//! by hand), not for replicas, which notify.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::db::{Backend, Db};

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "quayside_invalidate";

/// What a notification invalidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// Repositories, tags, manifests (`content::pull_cache`).
    Pull,
    /// Accounts' credentials and enabled state (`access::auth`'s credential cache).
    Credentials,
}

impl Topic {
    const ALL: [Topic; 2] = [Topic::Pull, Topic::Credentials];

    fn name(self) -> &'static str {
        match self {
            Topic::Pull => "pull",
            Topic::Credentials => "credentials",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Generations per topic, the process's id, and the database that carries notifications.
pub struct Invalidation {
    db: Option<Db>,
    instance: String,
    generations: [AtomicU64; 2],
    /// True on SQLite, and on PostgreSQL while the listening session is connected.
    listening: AtomicBool,
    received: AtomicU64,
    sent: AtomicU64,
}

impl Invalidation {
    /// For `db`: on PostgreSQL caching waits for [`Invalidation::spawn_listener`] to connect.
    pub fn new(db: &Db) -> Invalidation {
        let postgres = db.backend() == Backend::Postgres;
        Invalidation {
            db: postgres.then(|| db.clone()),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            generations: Default::default(),
            listening: AtomicBool::new(!postgres),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }

    /// One process alone (tests, tools): no database notifications, caching allowed.
    pub fn local() -> Invalidation {
        Invalidation {
            db: None,
            instance: uuid::Uuid::new_v4().simple().to_string(),
            generations: Default::default(),
            listening: AtomicBool::new(true),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }

    pub fn generation(&self, topic: Topic) -> u64 {
        self.generations[topic.index()].load(Ordering::SeqCst)
    }

    /// Whether caches may serve entries now (false while notifications could be missed).
    pub fn cache_allowed(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    /// Invalidates `topic` here and in every other replica. Call after the write committed.
    pub async fn publish(&self, topic: Topic) {
        self.bump(topic);
        let Some(db) = &self.db else {
            return;
        };
        let payload = format!("{}:{}", topic.name(), self.instance);
        match db.notify(CHANNEL, &payload).await {
            Ok(()) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            // The write stands; other replicas see it when their entries are next invalidated
            // or their listener reconnects. Loud, because until then they may serve stale data.
            Err(e) => {
                tracing::error!(topic = topic.name(), error = %e, "cannot notify other replicas of a cache invalidation")
            }
        }
    }

    fn bump(&self, topic: Topic) {
        self.generations[topic.index()].fetch_add(1, Ordering::SeqCst);
    }

    fn bump_all(&self) {
        for t in Topic::ALL {
            self.bump(t);
        }
    }

    /// Notifications received from other replicas and sent by this one (for `/metrics`).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.received.load(Ordering::Relaxed),
            self.sent.load(Ordering::Relaxed),
        )
    }

    fn receive(&self, payload: &str) {
        let Some((topic, instance)) = payload.split_once(':') else {
            return;
        };
        if instance == self.instance {
            return;
        }
        self.received.fetch_add(1, Ordering::Relaxed);
        match Topic::ALL.into_iter().find(|t| t.name() == topic) {
            Some(t) => self.bump(t),
            // From a newer release: invalidate everything rather than miss it.
            None => self.bump_all(),
        }
    }

    /// Keeps a session listening on [`CHANNEL`] until `shutdown`, reconnecting after failures
    /// (caches stay bypassed while it is down). Nothing to do on SQLite.
    pub fn spawn_listener(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(db) = self.db.clone() else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                match db.listen(CHANNEL).await {
                    Ok(Some(mut listener)) => {
                        this.bump_all();
                        this.listening.store(true, Ordering::SeqCst);
                        tracing::debug!("listening for cache invalidations");
                        loop {
                            tokio::select! {
                                n = listener.try_recv() => match n {
                                    Ok(Some(n)) => this.receive(n.payload()),
                                    // The session dropped (sqlx reconnects on the next call,
                                    // but notifications sent meanwhile are lost).
                                    Ok(None) => {
                                        this.listening.store(false, Ordering::SeqCst);
                                        this.bump_all();
                                        tracing::warn!("cache invalidation listener lost its connection; caches bypassed until it is back");
                                        break;
                                    }
                                    Err(e) => {
                                        this.listening.store(false, Ordering::SeqCst);
                                        tracing::warn!(error = %e, "cache invalidation listener failed; caches bypassed until it is back");
                                        break;
                                    }
                                },
                                _ = shutdown.wait_for(|stop| *stop) => return,
                            }
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        this.listening.store(false, Ordering::SeqCst);
                        tracing::warn!(error = %e, "cannot listen for cache invalidations; retrying");
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
        });
    }
}
