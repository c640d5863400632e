//! Named pause points, so tests can interleave concurrent operations deterministically: a test
//! arms a point, the code that reaches it stops there (still holding whatever locks it holds)
//! until the test resumes it. Points are one-shot; an unarmed point costs one uncontended lock.
//!
//! The points in the code: `gc.blob_row_deleted` (garbage collection deleted a blob's row and
//! is about to delete its bytes, holding the digest lock), `gc.links_deleted` (it deleted a
//! repository's stale blob links, holding the repository lock), `uploads.blob_checked` (an
//! upload checked whether the blob row exists, holding the digest lock).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

struct Armed {
    reached: oneshot::Sender<()>,
    resume: oneshot::Receiver<()>,
}

#[derive(Default)]
pub struct PausePoints {
    armed: Mutex<HashMap<&'static str, Armed>>,
}

/// A test's handle on an armed point.
pub struct Paused {
    reached: Option<oneshot::Receiver<()>>,
    resume: oneshot::Sender<()>,
}

impl PausePoints {
    /// Stops here if a test armed `name`, until it resumes (or drops its handle).
    pub async fn point(&self, name: &'static str) {
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
