//! The `quayside` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides};
use crate::server::{self, StartOptions};
use crate::service::{SystemClock, tenancy::accounts};
use crate::telemetry::{self, LogFormat};
use crate::workers;

#[derive(Parser, Debug)]
#[command(
    name = "quayside",
    version,
    about = "An OCI registry with Project Quay's tenancy model and REST API"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// A Quay-style config.yaml. Without one, Quayside runs on SQLite and local blobs in --data-dir.
    #[arg(long, env = "QUAYSIDE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the embedded database and blobs (when the config does not name others).
    #[arg(long, env = "QUAYSIDE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl Common {
    fn load(&self, listen: Option<SocketAddr>) -> anyhow::Result<Config> {
        let overrides = Overrides {
            listen,
            data_dir: self.data_dir.clone(),
        };
        Ok(Config::load(self.config.as_deref(), &overrides)?)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the registry (HTTP server and, by default, the background workers).
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on.
        #[arg(long, env = "QUAYSIDE_LISTEN", default_value = crate::config::DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Do not run background workers in this process.
        #[arg(long)]
        no_workers: bool,
    },
    /// Run background workers only.
    Worker {
        #[command(flatten)]
        common: Common,
        /// Run only these workers (repeatable).
        #[arg(long)]
        only: Vec<String>,
        /// Run one pass of each and exit.
        #[arg(long)]
        once: bool,
    },
    /// Garbage collection: `quayside gc --now` runs one full collection (including orphaned
    /// blob files) and prints what it reclaimed. The `gc` worker does the same periodically.
    /// `quayside gc --verify` checks that every blob row has its bytes in storage, removes the
    /// rows without bytes that no manifest references, and lists the ones manifests reference
    /// (push those blobs again); it exits with status 1 when any of those remain.
    Gc {
        #[command(flatten)]
        common: Common,
        /// Run one collection now.
        #[arg(long, required_unless_present = "verify")]
        now: bool,
        /// Find blob rows without bytes in storage and repair them (after the collection, with
        /// --now).
        #[arg(long)]
        verify: bool,
    },
    /// Quota accounting tools.
    Quota {
        #[command(subcommand)]
        command: QuotaCommand,
    },
    /// Security scanner tools.
    Scanner {
        #[command(subcommand)]
        command: ScannerCommand,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        common: Common,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Run one build attempt for the build manager (started by an executor; see docs/builds.md).
    /// The build token is read from QUAYSIDE_BUILD_TOKEN.
    Builder {
        /// The build manager's URL (the registry's, or BUILDMAN_HOSTNAME's).
        #[arg(long, env = "QUAYSIDE_BUILDMAN_URL")]
        manager: String,
        /// Where the context, buildah's storage and the logs go.
        #[arg(
            long,
            env = "QUAYSIDE_BUILDER_WORK_DIR",
            default_value = "/tmp/quayside-build"
        )]
        work_dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Check a config.yaml without starting anything.
    Validate {
        /// The file to check.
        path: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum ScannerCommand {
    /// Import OSV advisories (JSON files, directories of them, or zip archives) into the
    /// vulnerability database; the `scanner` worker re-matches scanned images afterwards.
    Import {
        #[command(flatten)]
        common: Common,
        /// OSV files, directories or .zip archives.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum QuotaCommand {
    /// Recompute every repository's and namespace's size from the manifests and blobs and list
    /// the ones whose accounting differs (exit status 1 when any does, without --fix). With
    /// --fix, correct them (and count repositories still waiting for the backfill).
    Verify {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        fix: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a user (a superuser with --superuser).
    CreateUser {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        username: String,
        /// The password; or set QUAYSIDE_PASSWORD.
        #[arg(long, env = "QUAYSIDE_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        superuser: bool,
        /// Also create an access token with every scope and print it.
        #[arg(long)]
        access_token: bool,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init_tracing(cli.log_format);
    match cli.command {
        Command::Serve {
            common,
            listen,
            no_workers,
        } => {
            let config = common.load(Some(listen))?;
            let running = server::start(
                config,
                StartOptions {
                    clock: Arc::new(SystemClock),
                    workers: !no_workers,
                },
            )
            .await?;
            server::termination_signal().await;
            running.stop().await;
            Ok(())
        }
        Command::Builder { manager, work_dir } => {
            let token = std::env::var("QUAYSIDE_BUILD_TOKEN")
                .map_err(|_| anyhow::anyhow!("QUAYSIDE_BUILD_TOKEN is not set"))?;
            crate::builder::run(&manager, &work_dir, token).await
        }
        Command::Worker { common, only, once } => {
            let config = common.load(None)?;
            for name in &only {
                anyhow::ensure!(
                    workers::names().contains(&name.as_str()),
                    "unknown worker {name:?} (known: {})",
                    workers::names().join(", ")
                );
            }
            let ctx = server::build_context(config, Arc::new(SystemClock)).await?;
            if once {
                let names: Vec<String> = if only.is_empty() {
                    workers::names().iter().map(|s| s.to_string()).collect()
                } else {
                    only
                };
                for name in names {
                    println!("{name}: {}", workers::run_once(&ctx, &name).await?);
                }
                return Ok(());
            }
            let (tx, rx) = tokio::sync::watch::channel(false);
            let tasks = workers::spawn(ctx, &only, rx);
            server::termination_signal().await;
            let _ = tx.send(true);
            for t in tasks {
                let _ = t.await;
            }
            Ok(())
        }
        Command::Gc {
            common,
            now,
            verify,
        } => {
            let config = common.load(None)?;
            let ctx = server::build_context(config, Arc::new(SystemClock)).await?;
            let result = gc_command(&ctx, now, verify).await;
            ctx.audit.shutdown().await;
            ctx.db.close().await;
            let unrepaired = result?;
            if unrepaired > 0 {
                anyhow::bail!(
                    "{unrepaired} blobs referenced by manifests have no bytes in storage; push them again"
                );
            }
            Ok(())
        }
        Command::Scanner {
            command: ScannerCommand::Import { common, paths },
        } => {
            let config = common.load(None)?;
            let ctx = server::build_context(config, Arc::new(SystemClock)).await?;
            let result = crate::service::content::scanner::import(&ctx, &paths).await;
            ctx.audit.shutdown().await;
            ctx.db.close().await;
            let changed = result.map_err(|e| anyhow::anyhow!("import failed: {e}"))?;
            println!("imported {changed} new or changed advisory entries");
            Ok(())
        }
        Command::Quota {
            command: QuotaCommand::Verify { common, fix },
        } => {
            let config = common.load(None)?;
            let ctx = server::build_context(config, Arc::new(SystemClock)).await?;
            let result = crate::service::content::quota::verify(&ctx, fix).await;
            ctx.audit.shutdown().await;
            ctx.db.close().await;
            let report = result.context("quota verification failed")?;
            for name in &report.repositories_off {
                println!(
                    "repository {name}: accounting differs from its manifests{}",
                    if fix { " (fixed)" } else { "" }
                );
            }
            for name in &report.namespaces_off {
                println!(
                    "namespace {name}: accounting differs from its repositories{}",
                    if fix { " (fixed)" } else { "" }
                );
            }
            println!(
                "quota verify: {} repositories, {} namespaces checked, {} differ",
                report.repositories,
                report.namespaces,
                report.repositories_off.len() + report.namespaces_off.len()
            );
            if !fix && !report.is_clean() {
                anyhow::bail!("quota accounting differs; run `quayside quota verify --fix`");
            }
            Ok(())
        }
        Command::Migrate { common } => {
            let config = common.load(None)?;
            let db = crate::db::Db::connect(&config.database_url)
                .await
                .context("cannot open the database")?;
            db.migrate().await.context("migrations failed")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Validate { path },
        } => {
            let config = Config::load(Some(&path), &Overrides::default())?;
            println!(
                "{}: valid (database {}, storage {:?}, TLS {})",
                path.display(),
                server::redact_url(&config.database_url),
                config.storage,
                if config.tls.is_some() { "on" } else { "off" }
            );
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::CreateUser {
                    common,
                    username,
                    password,
                    email,
                    superuser,
                    access_token,
                },
        } => {
            let config = common.load(None)?;
            let ctx = server::build_context(config, Arc::new(SystemClock)).await?;
            let user =
                accounts::create_user(&ctx, &username, &password, email.as_deref(), superuser)
                    .await?;
            println!(
                "created user {}{}",
                user.name,
                if superuser { " (superuser)" } else { "" }
            );
            if access_token {
                println!(
                    "{}",
                    accounts::create_access_token(&ctx, &user, accounts::ALL_SCOPES).await?
                );
            }
            ctx.audit.shutdown().await;
            ctx.db.close().await;
            Ok(())
        }
    }
}

/// `quayside gc`: the collection (`--now`) then the check (`--verify`), printing both reports.
/// Returns how many blobs the check could not repair.
async fn gc_command(ctx: &crate::service::Ctx, now: bool, verify: bool) -> anyhow::Result<usize> {
    use crate::service::content::gc;
    if now {
        let report = gc::collect(ctx, true)
            .await
            .context("garbage collection failed")?;
        println!("garbage collection: {report}");
    }
    if !verify {
        return Ok(0);
    }
    let report = gc::verify(ctx).await.context("verification failed")?;
    println!("verify: {report}");
    for (digest, repos) in &report.referenced {
        println!(
            "missing bytes: {digest} (referenced in {})",
            repos.join(", ")
        );
    }
    Ok(report.referenced.len())
}
