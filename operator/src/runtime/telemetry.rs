//! Telemetry in one place: logging setup and the Prometheus metrics of the operator.
//!
//! Metrics (text exposition format 0.0.4 on `/metrics`):
//! - `quayside_operator_reconciliations_total` and `quayside_operator_reconcile_failures_total`
//!   (`error` = `api` | `client` | `internal`, a bounded set),
//! - `quayside_operator_reconcile_duration_seconds` (histogram),
//! - `quayside_operator_objects_written_total`, `quayside_operator_objects_deleted_total`,
//! - `quayside_operator_leader` (1 while this replica holds the leader Lease).

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Log format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber (logs on stderr); the filter comes from
/// `QUAYSIDE_OPERATOR_LOG` or `RUST_LOG` (`info` by default, `target=level,...` syntax).
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let spec = std::env::var("QUAYSIDE_OPERATOR_LOG")
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

const BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
const ERRORS: [&str; 3] = ["api", "client", "internal"];

/// The operator's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    reconciliations: AtomicU64,
    failures: [AtomicU64; 3],
    duration: Mutex<Histogram>,
    written: AtomicU64,
    deleted: AtomicU64,
    leader: AtomicU64,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; 10],
    count: u64,
    sum: f64,
}

impl Metrics {
    /// Records one reconcile and, when it failed, its error class.
    pub fn reconciled(&self, took: Duration, error: Option<&str>) {
        self.reconciliations.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = error
            && let Some(i) = ERRORS.iter().position(|x| *x == e)
        {
            self.failures[i].fetch_add(1, Ordering::Relaxed);
        }
        let s = took.as_secs_f64();
        let mut h = self.duration.lock().unwrap_or_else(|e| e.into_inner());
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum += s;
    }

    /// Records objects written and deleted by one apply.
    pub fn objects(&self, written: usize, deleted: usize) {
        self.written.fetch_add(written as u64, Ordering::Relaxed);
        self.deleted.fetch_add(deleted as u64, Ordering::Relaxed);
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.store(u64::from(leader), Ordering::Relaxed);
    }

    /// Number of reconciles so far.
    pub fn reconciliations(&self) -> u64 {
        self.reconciliations.load(Ordering::Relaxed)
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP quayside_operator_reconciliations_total Reconciles run.\n# TYPE quayside_operator_reconciliations_total counter\nquayside_operator_reconciliations_total{{controller=\"quayregistry\"}} {}",
            self.reconciliations.load(Ordering::Relaxed)
        );
        out.push_str("# HELP quayside_operator_reconcile_failures_total Reconciles that failed, by error class.\n# TYPE quayside_operator_reconcile_failures_total counter\n");
        for (i, e) in ERRORS.iter().enumerate() {
            let _ = writeln!(
                out,
                "quayside_operator_reconcile_failures_total{{controller=\"quayregistry\",error=\"{e}\"}} {}",
                self.failures[i].load(Ordering::Relaxed)
            );
        }
        let h = self.duration.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str("# HELP quayside_operator_reconcile_duration_seconds Time per reconcile.\n# TYPE quayside_operator_reconcile_duration_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "quayside_operator_reconcile_duration_seconds_bucket{{controller=\"quayregistry\",le=\"{b}\"}} {}",
                h.buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "quayside_operator_reconcile_duration_seconds_bucket{{controller=\"quayregistry\",le=\"+Inf\"}} {c}\nquayside_operator_reconcile_duration_seconds_sum{{controller=\"quayregistry\"}} {s}\nquayside_operator_reconcile_duration_seconds_count{{controller=\"quayregistry\"}} {c}",
            c = h.count,
            s = h.sum
        );
        let _ = writeln!(
            out,
            "# HELP quayside_operator_objects_written_total Objects created or changed.\n# TYPE quayside_operator_objects_written_total counter\nquayside_operator_objects_written_total {}",
            self.written.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP quayside_operator_objects_deleted_total Objects deleted as no longer desired.\n# TYPE quayside_operator_objects_deleted_total counter\nquayside_operator_objects_deleted_total {}",
            self.deleted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP quayside_operator_leader Whether this replica is the leader.\n# TYPE quayside_operator_leader gauge\nquayside_operator_leader {}",
            self.leader.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_counts_reconciles_failures_and_durations() {
        let m = Metrics::default();
        m.reconciled(Duration::from_millis(30), None);
        m.reconciled(Duration::from_secs(3), Some("api"));
        let text = m.render();
        assert!(
            text.contains("quayside_operator_reconciliations_total{controller=\"quayregistry\"} 2")
        );
        assert!(text.contains("quayside_operator_reconcile_failures_total{controller=\"quayregistry\",error=\"api\"} 1"));
        assert!(text.contains("quayside_operator_reconcile_duration_seconds_bucket{controller=\"quayregistry\",le=\"0.05\"} 1"));
        assert!(text.contains(
            "quayside_operator_reconcile_duration_seconds_count{controller=\"quayregistry\"} 2"
        ));
    }
}
