//! Named pause points, so tests can interleave concurrent operations deterministically: a test
//! arms a point, the code that reaches it stops there (still holding whatever locks it holds)
//! until the test resumes it. Points are one-shot; an unarmed point costs one uncontended lock.
//!
//! The points in the code: `gc.blob_row_deleted` (garbage collection committed the deletion of
//! a blob's row and is about to delete its bytes; no lock held), `gc.links_deleted` (it deleted a
//! repository's stale blob links, holding the repository lock), `uploads.blob_checked` (an
//! upload checked whether the blob row exists, holding the digest lock),
//! `gc.blob_bytes_deleted` (garbage collection deleted a blob's bytes, its row already gone),
//! `manifests.repository_locked` (a manifest push holds its repository's lock, before it
//! writes), `proxy_cache.blob_staged` (a proxy-cache blob fetch stored and verified its bytes
//! under a staging key, before it records the blob).
//!
//! A process can also be stopped for good at a point, so a test can `kill -9` it exactly there:
//! `QUAYSIDE_TEST_PAUSE_AT=<point>` (or `<point>#<n>`, the n-th time it is reached) makes it
//! print `paused at <point>` on stderr and wait forever. Unset (always, outside tests), it
//! costs one atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use tokio::sync::oneshot;

struct Armed {
    reached: oneshot::Sender<()>,
    resume: oneshot::Receiver<()>,
}

#[derive(Default)]
pub struct PausePoints {
    armed: Mutex<HashMap<&'static str, Armed>>,
}

/// `QUAYSIDE_TEST_PAUSE_AT`, parsed once: the point and on which hit (from 1) to stop.
fn env_point() -> &'static Option<(String, u64)> {
    static POINT: OnceLock<Option<(String, u64)>> = OnceLock::new();
    POINT.get_or_init(|| {
        let value = std::env::var("QUAYSIDE_TEST_PAUSE_AT").ok()?;
        Some(match value.split_once('#') {
            Some((name, n)) => (name.to_owned(), n.parse().unwrap_or(1)),
            None => (value, 1),
        })
    })
}

static ENV_HITS: AtomicU64 = AtomicU64::new(0);

/// A test's handle on an armed point.
pub struct Paused {
    reached: Option<oneshot::Receiver<()>>,
    resume: oneshot::Sender<()>,
}

impl PausePoints {
    /// Stops here if a test armed `name`, until it resumes (or drops its handle).
    pub async fn point(&self, name: &'static str) {
        if let Some((at, nth)) = env_point()
            && at == name
            && ENV_HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth
        {
            eprintln!("paused at {name}");
            std::future::pending::<()>().await;
        }
        let armed = self
            .armed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        if let Some(armed) = armed {
            tracing::debug!(point = name, "paused");
            let _ = armed.reached.send(());
            let _ = armed.resume.await;
            tracing::debug!(point = name, "resumed");
        }
    }

    /// Arms `name`: the next execution to reach it waits for the returned handle.
    pub fn arm(&self, name: &'static str) -> Paused {
        let (reached_tx, reached_rx) = oneshot::channel();
        let (resume_tx, resume_rx) = oneshot::channel();
        self.armed.lock().unwrap_or_else(|e| e.into_inner()).insert(
            name,
            Armed {
                reached: reached_tx,
                resume: resume_rx,
            },
        );
        Paused {
            reached: Some(reached_rx),
            resume: resume_tx,
        }
    }
}

impl Paused {
    /// Waits until some execution stops at the point.
    pub async fn reached(&mut self) {
        if let Some(rx) = self.reached.take() {
            let _ = rx.await;
        }
    }

    /// Lets the stopped execution continue.
    pub fn resume(self) {
        let _ = self.resume.send(());
    }
}
