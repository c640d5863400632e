//! End-to-end tests of the emulator, driven the way users drive a cluster: kube-rs clients and
//! controllers, `kubectl` and Helm. One test binary (linking kube-rs once keeps CI fast).

// Test code: helpers outside `#[test]` functions unwrap too (clippy.toml covers only tests).
#![allow(clippy::unwrap_used)]

mod crds;
mod kubectl_helm;
mod rbac;
mod verbs;
mod watch;
mod workloads;

use std::future::Future;
use std::time::Duration;

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `reason` and `code` of a kube-rs API error.
pub fn api_error(e: kube::Error) -> (String, u16) {
    match e {
        kube::Error::Api(s) => (s.reason.clone(), s.code),
        other => panic!("expected an API error, got {other:?}"),
    }
}
