//! The `quayside-operator` command line: `run` (the controller manager) and `crdgen`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::sync::watch;

use crate::runtime::context::{Context, DEFAULT_POSTGRES_IMAGE, DEFAULT_REGISTRY_IMAGE, Settings};
use crate::runtime::leader::{Elector, LeaseConfig};
use crate::runtime::server::{self, Health};
use crate::runtime::telemetry::{self, LogFormat, Metrics};

#[derive(Parser, Debug)]
#[command(
    name = "quayside-operator",
    version,
    about = "Kubernetes operator for Quayside registries"
)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "QUAYSIDE_OPERATOR_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller manager.
    Run(Box<RunArgs>),
    /// Write the CRDs (one YAML file per kind) into directories, or check them.
    Crdgen {
        /// Directories to write (default: `crds` and `charts/quayside-operator/crds`).
        #[arg(long = "out")]
        out: Vec<PathBuf>,
        /// Compare instead of writing; exit 1 when a file differs.
        #[arg(long)]
        check: bool,
        /// Print the CRDs on stdout instead.
        #[arg(long)]
        stdout: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Namespaces to watch (comma-separated); all namespaces when empty.
    #[arg(long, env = "QUAYSIDE_OPERATOR_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(
        long,
        env = "QUAYSIDE_OPERATOR_METRICS_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub metrics_addr: SocketAddr,
    /// Elect a leader on a Lease before reconciling (needed with more than one replica).
    #[arg(long, env = "QUAYSIDE_OPERATOR_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Namespace of the leader Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the leader Lease.
    #[arg(
        long,
        env = "QUAYSIDE_OPERATOR_LEASE_NAME",
        default_value = "quayside-operator-leader"
    )]
    pub lease_name: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Registry image (its tag is the version reported in the status).
    #[arg(long, env = "QUAYSIDE_REGISTRY_IMAGE", default_value = DEFAULT_REGISTRY_IMAGE)]
    pub registry_image: String,
    /// PostgreSQL image of the managed database.
    #[arg(long, env = "QUAYSIDE_POSTGRES_IMAGE", default_value = DEFAULT_POSTGRES_IMAGE)]
    pub postgres_image: String,
    /// Base domain for derived registry host names (`<name>-quay-<namespace>.<domain>`).
    #[arg(long, env = "QUAYSIDE_BASE_DOMAIN")]
    pub base_domain: Option<String>,
    /// `ingressClassName` of the Ingresses made by the route component.
    #[arg(long, env = "QUAYSIDE_INGRESS_CLASS_NAME")]
    pub ingress_class_name: Option<String>,
    /// The cluster's DNS domain.
    #[arg(long, env = "QUAYSIDE_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// How often content resources (Organization, Robot) re-read the registry to correct drift
    /// (e.g. 5m, 1h); a resource's spec.resyncInterval overrides it.
    #[arg(long, env = "QUAYSIDE_OPERATOR_RESYNC_INTERVAL", default_value = "5m", value_parser = resync_interval)]
    pub resync_interval: std::time::Duration,
}

fn resync_interval(text: &str) -> Result<std::time::Duration, String> {
    crate::content::duration::parse(text).and_then(|d| {
        if d.is_zero() {
            Err("the resync interval must be longer than 0s".into())
        } else {
            Ok(d)
        }
    })
}

impl RunArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            registry_image: self.registry_image.clone(),
            postgres_image: self.postgres_image.clone(),
            base_domain: self.base_domain.clone().filter(|s| !s.is_empty()),
            ingress_class_name: self.ingress_class_name.clone().filter(|s| !s.is_empty()),
            cluster_domain: self.cluster_domain.clone(),
            resync_interval: self.resync_interval,
            ..Settings::default()
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init_tracing(cli.log_format);
    match cli.command {
        Command::Crdgen { out, check, stdout } => {
            if stdout {
                for (_, text) in crate::crdgen::files()? {
                    print!("---\n{text}");
                }
                return Ok(());
            }
            let dirs = if out.is_empty() {
                vec![
                    PathBuf::from("crds"),
                    PathBuf::from("charts/quayside-operator/crds"),
                ]
            } else {
                out
            };
            for dir in dirs {
                if check {
                    let problems = crate::crdgen::differences(&dir)?;
                    anyhow::ensure!(problems.is_empty(), "{}", problems.join("\n"));
                } else {
                    for p in crate::crdgen::write(&dir)? {
                        tracing::info!(file = %p.display(), "written");
                    }
                }
            }
            Ok(())
        }
        Command::Run(args) => run_manager(*args).await,
    }
}

/// A channel that turns true on SIGTERM or Ctrl-C.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        let _ = tx.send(true);
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}

async fn run_manager(args: RunArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let mut shutdown = shutdown_signal();
    let health = Health {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    let server = {
        let mut rx = shutdown.clone();
        let addr = args.metrics_addr;
        tokio::spawn(async move {
            server::serve(addr, health, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
        })
    };
    client.apiserver_version().await?;
    ready.store(true, Ordering::Relaxed);

    let ctx = Context::new(client.clone(), args.settings(), metrics.clone());
    let mut args = args;
    args.namespaces.retain(|n| !n.trim().is_empty());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut lost = false;
    if args.leader_elect {
        let identity = args
            .identity
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| format!("quayside-operator-{}", std::process::id()));
        let mut elector = Elector::new(
            client.clone(),
            LeaseConfig {
                namespace: args.lease_namespace.clone(),
                name: args.lease_name.clone(),
                identity: identity.clone(),
                lease_duration: Duration::from_secs(15),
                renew_every: Duration::from_secs(2),
            },
        );
        tracing::info!(%identity, lease = %args.lease_name, "waiting for leadership");
        if !elector.acquire(&mut shutdown).await {
            let _ = server.await;
            return Ok(());
        }
        metrics.set_leader(true);
        tracing::info!(%identity, "leading");
        let controllers = tokio::spawn({
            let ctx = ctx.clone();
            let namespaces = args.namespaces.clone();
            async move { crate::controllers::run_all(ctx, &namespaces, stop_rx).await }
        });
        lost = elector.hold(&mut shutdown).await;
        metrics.set_leader(false);
        let _ = stop_tx.send(true);
        let _ = controllers.await;
    } else {
        metrics.set_leader(true);
        let forward = {
            let mut rx = shutdown.clone();
            tokio::spawn(async move {
                let _ = rx.wait_for(|s| *s).await;
                let _ = stop_tx.send(true);
            })
        };
        crate::controllers::run_all(ctx, &args.namespaces, stop_rx).await;
        forward.abort();
    }
    if lost {
        anyhow::bail!("lost the leader Lease; exiting so a new leader takes over");
    }
    let _ = server.await;
    Ok(())
}
