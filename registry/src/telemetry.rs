//! Telemetry in one place: the `tracing` subscriber and the Prometheus metrics.
//!
//! Metrics have bounded labels only: a route label chosen by the handler (never a path or a
//! repository name) and the numeric status code.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::service::Ctx;
use crate::workers;

/// A bounded route label a handler attaches to its response, for metrics. It lives here, below
/// the HTTP surfaces, so that telemetry never depends on the api layer that records it.
#[derive(Clone, Copy, Debug)]
pub struct RouteLabel(pub &'static str);

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. The filter comes from `QUAYSIDE_LOG` (or `RUST_LOG`), e.g.
/// `info,quayside=debug`; the default is `info`.
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let spec = std::env::var("QUAYSIDE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let filter: Targets = spec
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}

const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct RouteStats {
    by_status: HashMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

/// Request metrics.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<HashMap<&'static str, RouteStats>>,
    bytes_in: Arc<AtomicU64>,
    bytes_out: Arc<AtomicU64>,
    /// Set when shutdown begins: health checks then report unavailable.
    pub draining: AtomicBool,
}

impl Metrics {
    fn observe(&self, route: &'static str, status: u16, seconds: f64) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let stats = routes.entry(route).or_default();
        *stats.by_status.entry(status).or_default() += 1;
        stats.count += 1;
        stats.sum_seconds += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                stats.buckets[i] += 1;
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, ctx: &Ctx) -> String {
        let mut out = String::with_capacity(4096);
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<&&'static str> = routes.keys().collect();
        names.sort();
        out.push_str("# HELP quayside_http_requests_total HTTP requests by route and status.\n# TYPE quayside_http_requests_total counter\n");
        for name in &names {
            let mut statuses: Vec<_> = routes[**name].by_status.iter().collect();
            statuses.sort();
            for (status, n) in statuses {
                let _ = writeln!(
                    out,
                    "quayside_http_requests_total{{route=\"{name}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP quayside_http_request_duration_seconds Time to response headers, by route.\n# TYPE quayside_http_request_duration_seconds histogram\n");
        for name in &names {
            let s = &routes[**name];
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "quayside_http_request_duration_seconds_bucket{{route=\"{name}\",le=\"{bound}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "quayside_http_request_duration_seconds_bucket{{route=\"{name}\",le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "quayside_http_request_duration_seconds_sum{{route=\"{name}\"}} {}",
                s.sum_seconds
            );
            let _ = writeln!(
                out,
                "quayside_http_request_duration_seconds_count{{route=\"{name}\"}} {}",
                s.count
            );
        }
        drop(routes);
        let _ = writeln!(
            out,
            "# HELP quayside_http_request_bytes_total Request body bytes received.\n# TYPE quayside_http_request_bytes_total counter\nquayside_http_request_bytes_total {}",
            self.bytes_in.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP quayside_http_response_bytes_total Response body bytes sent.\n# TYPE quayside_http_response_bytes_total counter\nquayside_http_response_bytes_total {}",
            self.bytes_out.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP quayside_uploads_in_progress Blob upload requests currently streaming.\n# TYPE quayside_uploads_in_progress gauge\nquayside_uploads_in_progress {}",
            ctx.uploads.in_progress.load(Ordering::Relaxed)
        );
        let proxy = &ctx.proxy;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP quayside_proxy_upstream_requests_total HTTP requests sent to proxy-cache upstreams.\n# TYPE quayside_proxy_upstream_requests_total counter\nquayside_proxy_upstream_requests_total {}\n# HELP quayside_proxy_cache_hits_total Proxy-cache pulls served from the cache.\n# TYPE quayside_proxy_cache_hits_total counter\nquayside_proxy_cache_hits_total {}\n# HELP quayside_proxy_cache_misses_total Proxy-cache pulls that fetched from the upstream.\n# TYPE quayside_proxy_cache_misses_total counter\nquayside_proxy_cache_misses_total {}\n# HELP quayside_proxy_cache_stale_total Cached manifests served while the upstream could not answer.\n# TYPE quayside_proxy_cache_stale_total counter\nquayside_proxy_cache_stale_total {}\n# HELP quayside_proxy_blob_fetches_total Blob fetches from upstreams (one per digest however many clients wait).\n# TYPE quayside_proxy_blob_fetches_total counter\nquayside_proxy_blob_fetches_total {}\n# HELP quayside_proxy_cache_evictions_total Cached tags evicted to make room under an organization's quota.\n# TYPE quayside_proxy_cache_evictions_total counter\nquayside_proxy_cache_evictions_total {}",
            load(&proxy.upstream_requests),
            load(&proxy.hits),
            load(&proxy.misses),
            load(&proxy.stale_served),
            load(&proxy.blob_fetches),
            load(&proxy.evictions)
        );
        let (hashing, _, hashes) = crate::service::access::passwords::hashing_gauges();
        let _ = writeln!(
            out,
            "# HELP quayside_password_hashes_in_progress Argon2 computations running now (at most one per core).\n# TYPE quayside_password_hashes_in_progress gauge\nquayside_password_hashes_in_progress {hashing}\n# HELP quayside_password_hashes_total Argon2 computations run.\n# TYPE quayside_password_hashes_total counter\nquayside_password_hashes_total {hashes}"
        );
        out.push_str("# HELP quayside_worker_passes_total Background worker passes this process ran.\n# TYPE quayside_worker_passes_total counter\n");
        for (worker, n) in workers::passes() {
            let _ = writeln!(
                out,
                "quayside_worker_passes_total{{worker=\"{worker}\"}} {n}"
            );
        }
        let (received, sent) = ctx.invalidation.counts();
        let _ = writeln!(
            out,
            "# HELP quayside_cache_invalidations_received_total Cache invalidations received from other replicas.\n# TYPE quayside_cache_invalidations_received_total counter\nquayside_cache_invalidations_received_total {received}\n# HELP quayside_cache_invalidations_sent_total Cache invalidations this process sent to other replicas.\n# TYPE quayside_cache_invalidations_sent_total counter\nquayside_cache_invalidations_sent_total {sent}"
        );
        out
    }
}

/// Middleware: counts bytes both ways and records each request under its route label.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let request = request.map(|b| {
        Body::new(Counted {
            inner: b,
            counter: metrics.bytes_in.clone(),
        })
    });
    let response = next.run(request).await;
    let route = match response.extensions().get::<RouteLabel>() {
        Some(label) => label.0,
        None => matched.map_or("unmatched", |m| leak_route(m.as_str())),
    };
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    metrics.observe(route, status, elapsed.as_secs_f64());
    tracing::debug!(
        route,
        status,
        micros = elapsed.as_micros() as u64,
        "request"
    );
    response.map(|b| {
        Body::new(Counted {
            inner: b,
            counter: metrics.bytes_out.clone(),
        })
    })
}

/// Route patterns are a fixed set (the router's), so interning them is bounded.
fn leak_route(pattern: &str) -> &'static str {
    static INTERNED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = interned.iter().find(|s| **s == pattern) {
        return s;
    }
    let s: &'static str = Box::leak(pattern.to_owned().into_boxed_str());
    interned.push(s);
    s
}

/// A body that adds the bytes it yields to a counter.
struct Counted {
    inner: Body,
    counter: Arc<AtomicU64>,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
