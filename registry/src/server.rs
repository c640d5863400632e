//! Assembles the services and serves HTTP(S). Used by `quayside serve` and by tests, which start
//! the real server in-process on a random loopback port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::api::{self, AppState, ConnScheme, PeerAddr};
use crate::config::{Config, TlsFiles};
use crate::db::{self, Db};
use crate::service::content::pull_cache::PullCache;
use crate::service::invalidation::Invalidation;
use crate::service::{
    Clock, Ctx, SystemClock, access::auth, access::jwt, access::passwords, content::uploads,
    operations::audit, tenancy::federation,
};
use crate::telemetry::Metrics;
use crate::{storage, workers};

/// How long in-flight requests may run after shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Connects the database (running migrations), opens storage and derives the keys.
pub async fn build_context(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Ctx>> {
    let db = Db::connect(&config.database_url).await.map_err(|e| {
        anyhow::Error::new(e).context(Unavailable::Database(format!(
            "cannot open the database (DB_URI {})",
            redact_url(&config.database_url)
        )))
    })?;
    db.migrate().await.map_err(|e| {
        anyhow::Error::new(e).context(Unavailable::Database(
            "database migrations failed".to_owned(),
        ))
    })?;
    let store = storage::open(&config.storage)
        .await
        .context("cannot open blob storage")?;
    wait_for_storage(store.as_ref(), config.storage_start_wait).await?;
    let secret = installation_secret(&config, &db).await?;
    let keys = jwt::Keys::new(&secret);
    keys.start(&db, clock.now_ms())
        .await
        .context("cannot register the registry's service key")?;
    tracing::info!(database = %redact_url(&config.database_url), storage = %store.describe(), "services ready");
    let invalidation = Arc::new(Invalidation::new(&db));
    Ok(Arc::new(Ctx {
        jwt: keys,
        sealer: passwords::PasswordSealer::new(&secret),
        config,
        db: db.clone(),
        store,
        clock,
        uploads: uploads::UploadState::default(),
        auth_cache: auth::CredentialCache::new(invalidation.clone()),
        audit: audit::AuditLog::start(db.clone()),
        federation: federation::JwksCache::default(),
        pull_cache: PullCache::from_env(invalidation.clone()),
        invalidation,
        proxy: Default::default(),
        pauses: Default::default(),
    }))
}

/// A dependency the registry cannot start without, as the error of [`build_context`]; `main`
/// turns it into the exit code of `quayside_client::process`, which the operator reads from the
/// container's last termination to name the failing component.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("{0}")]
    Database(String),
    #[error("{0}")]
    Storage(String),
}

impl Unavailable {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Database(_) => quayside_client::process::EXIT_DATABASE_UNAVAILABLE,
            Self::Storage(_) => quayside_client::process::EXIT_STORAGE_UNAVAILABLE,
        }
    }
}

/// Waits until the store answers a probe, for at most `wait`. A registry that cannot reach its
/// storage cannot serve a single pull; failing the start with the backend's error puts that
/// error where a person looks first (the log's last line, the pod's termination message)
/// instead of leaving a pod that runs but never becomes ready.
async fn wait_for_storage(store: &dyn storage::BlobStore, wait: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let attempt = Duration::from_secs(5).min(wait);
        let error = match storage::probe(store, attempt).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if tokio::time::Instant::now() + Duration::from_secs(1) >= deadline {
            return Err(Unavailable::Storage(format!(
                "cannot reach blob storage ({}) for {} s: {error}",
                store.describe(),
                wait.as_secs()
            ))
            .into());
        }
        tracing::warn!(storage = %store.describe(), %error, "blob storage does not answer; retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// File in the data directory holding the installation secret when `SECRET_KEY` is not set.
pub const SECRET_FILE: &str = "installation-secret";
/// Where releases before the secret file kept it (in the database it protects).
const LEGACY_SECRET_SETTING: &str = "secret_key";

/// The installation secret, from which the registry-token signing key and the key sealing robot
/// tokens and encrypted passwords are derived.
///
/// Rule: it never lives in the database it protects (whoever reads a database dump must not be
/// able to forge tokens or unseal robot tokens). It is the configuration's `SECRET_KEY`, or the
/// file [`SECRET_FILE`] in the data directory, readable by its owner only (mode 0600), created
/// with a random value on first start. A secret a previous release kept in the database is moved
/// to the file (so existing robot tokens keep working) and removed from the database. Several
/// replicas must share one `SECRET_KEY` (the operator sets it); the file is per data directory.
pub async fn installation_secret(config: &Config, db: &Db) -> anyhow::Result<Vec<u8>> {
    if let Some(key) = &config.secret_key {
        return Ok(key.clone().into_bytes());
    }
    let path = config.data_dir.join(SECRET_FILE);
    let legacy = db::operations::settings::get(db.pool(), LEGACY_SECRET_SETTING).await?;
    let secret = match read_secret_file(&path)? {
        Some(secret) => secret,
        None => {
            let candidate = match &legacy {
                Some(old) => old.clone(),
                None => {
                    let mut fresh = [0u8; 32];
                    getrandom::getrandom(&mut fresh).context("no system randomness")?;
                    base64::engine::general_purpose::STANDARD.encode(fresh)
                }
            };
            create_secret_file(&path, &candidate)?
        }
    };
    if legacy.is_some() {
        db::operations::settings::delete(db.pool(), LEGACY_SECRET_SETTING).await?;
        tracing::info!(file = %path.display(), "installation secret moved out of the database");
    }
    Ok(secret.into_bytes())
}

fn read_secret_file(path: &std::path::Path) -> anyhow::Result<Option<String>> {
    let secret = match std::fs::read_to_string(path) {
        Ok(s) => s.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    anyhow::ensure!(
        !secret.is_empty(),
        "{} is empty: restore it from a backup, or remove it to start with a new secret \
         (robot tokens and encrypted passwords are then invalid)",
        path.display()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(file = %path.display(), mode = format!("{:o}", mode & 0o777), "installation secret was readable by others; set to 0600");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(Some(secret))
}

/// Writes `candidate` to `path` with mode 0600, atomically: the file appears complete or not at
/// all, and if another process created it first, its value wins.
fn create_secret_file(path: &std::path::Path, candidate: &str) -> anyhow::Result<String> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".{SECRET_FILE}.{}", uuid::Uuid::new_v4()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(candidate.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(candidate.to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_secret_file(path)?
            .with_context(|| format!("{} vanished while starting", path.display())),
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// Hides the password of a database URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &url[..s], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

fn tls_acceptor(files: &TlsFiles) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(&files.cert)
            .with_context(|| format!("ssl.cert: cannot read {}", files.cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .context("ssl.cert: not a PEM certificate chain")?;
    anyhow::ensure!(
        !certs.is_empty(),
        "ssl.cert: no certificate found in {}",
        files.cert.display()
    );
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(&files.key)
            .with_context(|| format!("ssl.key: cannot read {}", files.key.display()))?,
    ))
    .context("ssl.key: not a PEM private key")?
    .with_context(|| format!("ssl.key: no private key found in {}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("ssl.cert/ssl.key: the key does not match the certificate")?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

/// A server running in this process.
pub struct Running {
    pub addr: SocketAddr,
    pub ctx: Arc<Ctx>,
    pub tls: bool,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// Stops accepting, lets in-flight requests finish (up to the grace period), stops workers,
    /// writes the queued audit log entries.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        self.ctx.audit.shutdown().await;
        self.ctx.db.close().await;
    }
}

/// Options for [`start`].
pub struct StartOptions {
    pub clock: Arc<dyn Clock>,
    /// Run the background workers in this process.
    pub workers: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            clock: Arc::new(SystemClock),
            workers: true,
        }
    }
}

/// Binds `config.listen` and serves until [`Running::stop`].
pub async fn start(config: Config, options: StartOptions) -> anyhow::Result<Running> {
    let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // The bound address (not a requested port 0) is the registry's service name when no
    // SERVER_HOSTNAME is set.
    let mut config = config;
    config.listen = addr;
    let ctx = build_context(config, options.clock).await?;
    let (tx, rx) = watch::channel(false);
    ctx.invalidation.spawn_listener(rx.clone());
    let metrics = Arc::new(Metrics::default());
    let mut worker_tasks = if options.workers {
        workers::spawn(ctx.clone(), &[], rx.clone())
    } else {
        Vec::new()
    };
    let state = AppState {
        ctx: ctx.clone(),
        metrics,
    };
    let has_tls = tls.is_some();
    let mut shutdown_rx = rx;
    let task = tokio::spawn(async move {
        let signal = async move {
            let _ = shutdown_rx.wait_for(|stop| *stop).await;
        };
        serve(state, listener, tls, signal).await;
        for t in worker_tasks.drain(..) {
            let _ = t.await;
        }
    });
    tracing::info!(%addr, tls = has_tls, "quayside listening");
    Ok(Running {
        addr,
        ctx,
        tls: has_tls,
        shutdown: tx,
        task,
    })
}

/// The accept loop. Returns after `shutdown` resolves and connections have drained.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let router = api::router(state.clone());
    let graceful = GracefulShutdown::new();
    let scheme = ConnScheme(if tls.is_some() { "https" } else { "http" });
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request.extensions_mut().insert(scheme);
                api::prepare(&mut request);
                router.clone().oneshot(request)
            },
        );
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(60))
            .keep_alive(true);
        let watcher = graceful.watcher();
        match &tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                tokio::spawn(async move {
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let tls_stream = match tokio::time::timeout(
                        Duration::from_secs(30),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            return tracing::debug!(error = %e, %peer, "TLS handshake failed");
                        }
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                    let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                });
            }
        }
    }
    state.metrics.draining.store(true, Ordering::Relaxed);
    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        "shutting down: draining connections"
    );
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing remaining connections");
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn termination_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("termination signal received");
}
