//! Operator-wide settings and the shared context every reconcile receives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::runtime::telemetry::Metrics;

/// Default image of the registry (its tag is the version reported in `status.currentVersion`).
pub const DEFAULT_REGISTRY_IMAGE: &str =
    concat!("ghcr.io/quayside/quayside:", env!("CARGO_PKG_VERSION"));
/// Default image of the managed database (the official PostgreSQL image's conventions:
/// `POSTGRES_USER`, `POSTGRES_PASSWORD`, `POSTGRES_DB`, `PGDATA`).
pub const DEFAULT_POSTGRES_IMAGE: &str = "docker.io/library/postgres:15";

/// Settings that apply to every QuayRegistry this operator reconciles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Image of the registry, the migration Job and the mirror workers.
    pub registry_image: String,
    /// Image of the managed PostgreSQL.
    pub postgres_image: String,
    /// Base domain for derived host names (`<name>-quay-<namespace>.<base domain>`) when the
    /// bundle sets no `SERVER_HOSTNAME`.
    pub base_domain: Option<String>,
    /// `spec.ingressClassName` of the Ingresses the route component makes.
    pub ingress_class_name: Option<String>,
    /// The cluster's DNS domain (for in-cluster Service names in the configuration).
    pub cluster_domain: String,
    /// Validity of operator-made serving certificates, in days.
    pub certificate_days: i64,
    /// Renew a serving certificate this many days before it expires.
    pub renew_before_days: i64,
    /// How often content resources re-read the registry to correct drift (a resource's
    /// `spec.resyncInterval` overrides it).
    pub resync_interval: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            registry_image: DEFAULT_REGISTRY_IMAGE.into(),
            postgres_image: DEFAULT_POSTGRES_IMAGE.into(),
            base_domain: None,
            ingress_class_name: None,
            cluster_domain: "cluster.local".into(),
            certificate_days: 365,
            renew_before_days: 30,
            resync_interval: std::time::Duration::from_secs(300),
        }
    }
}

/// Resolves an in-cluster Service address (`namespace`, `service`, `port`) to a socket
/// address. In a cluster DNS does this and the resolver is unset; the test bench sets it to the
/// emulator's Service proxy.
pub type ServiceResolver =
    Arc<dyn Fn(&str, &str, u16) -> Option<std::net::SocketAddr> + Send + Sync>;

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// Consecutive failures per object (`namespace/name`), for the retry back-off.
    pub failures: Mutex<HashMap<String, u32>>,
    /// See [`ServiceResolver`].
    pub resolver: Option<ServiceResolver>,
}

impl Context {
    /// Counts one more failure of `key` and returns how long to wait before retrying it:
    /// 1 s, 2 s, 4 s, ... up to 5 minutes. A success forgets the count ([`Context::succeeded`]).
    pub fn backoff(&self, key: &str) -> (u32, std::time::Duration) {
        let attempts = self
            .failures
            .lock()
            .map(|mut f| {
                let n = f.entry(key.to_owned()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            })
            .unwrap_or(1);
        let delay = std::time::Duration::from_secs(1u64 << attempts.min(9).saturating_sub(1))
            .min(std::time::Duration::from_secs(300));
        (attempts, delay)
    }

    /// Forgets the failures of `key` (see [`Context::backoff`]).
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(key);
        }
    }

    pub fn new(client: Client, settings: Settings, metrics: Arc<Metrics>) -> Arc<Self> {
        Context::build(client, settings, metrics, None)
    }

    /// The same context with Service addresses resolved by `resolver` (see
    /// [`ServiceResolver`]).
    pub fn with_resolver(
        client: Client,
        settings: Settings,
        metrics: Arc<Metrics>,
        resolver: ServiceResolver,
    ) -> Arc<Self> {
        Context::build(client, settings, metrics, Some(resolver))
    }

    fn build(
        client: Client,
        settings: Settings,
        metrics: Arc<Metrics>,
        resolver: Option<ServiceResolver>,
    ) -> Arc<Self> {
        let reporter = Reporter {
            controller: "quayside-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Arc::new(Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            metrics,
            failures: Mutex::new(HashMap::new()),
            resolver,
        })
    }
}
