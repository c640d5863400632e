//! `kube-emulator`: test equipment that behaves like a Kubernetes API server (plus a
//! controller-manager and a kubelet running Pods as local processes) closely enough for
//! unmodified kube-rs clients and controllers, `kubectl` and Helm.
//!
//! Never shipped, never used by product code. See `README.md` next to this crate for what it
//! does not emulate.
//!
//! It serves HTTPS on a loopback port with a certificate generated at start ([`tls`]); the
//! kubeconfig it writes embeds that CA and an admin token, and [`Emulator::client`] is a
//! kube-rs client configured the same way.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use kube_emulator::{Emulator, Mapping};
//! let emu = Emulator::builder()
//!     .workload(Mapping::new("python", ["python3", "-m", "http.server", "{port:8080}", "--bind", "127.0.0.1"]))
//!     .start()
//!     .await?;
//! let client = emu.client();
//! let kubeconfig = emu.kubeconfig_path(); // for kubectl / Helm
//! # let _ = (client, kubeconfig); Ok(()) }
//! ```
//!
//! Module map: [`store`] (objects, resourceVersion, watch history), [`resources`] (kind
//! registry), [`events`] (the two Event views), [`api`] (verb semantics), [`patch`] and [`apply`] (patch engines, server-side
//! apply), [`schema`] (CRD validation, defaulting, pruning), [`defaults`] (built-in kinds),
//! [`selector`], [`gc`] (owner references, namespaces, CRD cleanup), [`rbac`], [`http`],
//! [`discovery`], [`table`], [`workloads`] (controllers, kubelet, service proxy).

pub mod api;
pub mod apply;
pub mod defaults;
pub mod discovery;
pub mod events;
pub mod gc;
pub mod http;
pub mod lists;
pub mod patch;
pub mod protobuf;
pub mod rbac;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod workloads;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

pub use api::Cluster;
pub use workloads::{LOCAL_ADDRESS_ANNOTATION, Mapping, PORTS_ANNOTATION};

/// Options for [`Emulator`]; start with [`Emulator::builder`].
#[derive(Debug, Clone)]
pub struct EmulatorBuilder {
    listen: SocketAddr,
    rbac: bool,
    runner: bool,
    mappings: Vec<Mapping>,
    history: usize,
    data_dir: Option<PathBuf>,
    kubeconfig: Option<PathBuf>,
    probe_period_cap: Duration,
    backoff_base: Duration,
    backoff_max: Duration,
    grace_cap: Duration,
    rewrite_service_addresses: bool,
    plain_http: bool,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            rbac: false,
            runner: false,
            mappings: Vec::new(),
            history: 10_000,
            data_dir: None,
            kubeconfig: None,
            probe_period_cap: Duration::from_secs(1),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
            grace_cap: Duration::from_secs(5),
            rewrite_service_addresses: true,
            plain_http: false,
        }
    }
}

impl EmulatorBuilder {
    /// Listen address (default `127.0.0.1:0`, an ephemeral port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Enforce RBAC for ServiceAccount tokens (the admin client is always allowed).
    pub fn rbac(mut self, on: bool) -> Self {
        self.rbac = on;
        self
    }

    /// Adds an image mapping and turns the workload runner on.
    pub fn workload(mut self, mapping: Mapping) -> Self {
        self.mappings.push(mapping);
        self.runner = true;
        self
    }

    /// Turns the workload runner (controllers + kubelet) on or off explicitly.
    pub fn workloads(mut self, on: bool) -> Self {
        self.runner = on;
        self
    }

    /// How many events the watch history keeps (older resourceVersions get `410`).
    pub fn watch_history(mut self, events: usize) -> Self {
        self.history = events;
        self
    }

    /// Directory for pod directories and volume claims (default: a temporary directory
    /// removed with the emulator).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Where to write the kubeconfig (default: inside the emulator's temporary directory).
    pub fn kubeconfig_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig = Some(path.into());
        self
    }

    /// Upper bound on probe periods (default 1 s).
    pub fn probe_period_cap(mut self, d: Duration) -> Self {
        self.probe_period_cap = d;
        self
    }

    /// Container restart back-off: first delay and maximum (default 500 ms, 10 s).
    pub fn restart_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// Longest wait between SIGTERM and SIGKILL when stopping a container (default 5 s).
    pub fn termination_grace_cap(mut self, d: Duration) -> Self {
        self.grace_cap = d;
        self
    }

    /// Rewrite Service DNS addresses (`svc.ns.svc.cluster.local:port`) inside Pods to the
    /// Services' local addresses (default on).
    pub fn rewrite_service_addresses(mut self, on: bool) -> Self {
        self.rewrite_service_addresses = on;
        self
    }

    /// Serve plain HTTP instead of HTTPS. kube-rs sends tokens either way, but kubectl and
    /// Helm (client-go) send no credentials over plain HTTP, so they act as
    /// `system:anonymous` (which RBAC mode refuses).
    pub fn plain_http(mut self, on: bool) -> Self {
        self.plain_http = on;
        self
    }

    /// Starts the emulator.
    pub async fn start(self) -> anyhow::Result<Emulator> {
        let tmp = tempfile::Builder::new()
            .prefix("kube-emulator-")
            .tempdir()?;
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| tmp.path().join("data"));
        for d in [data_dir.join("pods"), data_dir.join("pvcs")] {
            std::fs::create_dir_all(d)?;
        }
        // Processes may run as other users (`runAsUser`): let them reach their directories.
        {
            use std::os::unix::fs::PermissionsExt as _;
            for d in [
                tmp.path().to_owned(),
                data_dir.clone(),
                data_dir.join("pods"),
                data_dir.join("pvcs"),
            ] {
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
            }
        }
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .with_context(|| format!("binding {}", self.listen))?;
        let address = listener.local_addr()?;
        let cert = if self.plain_http {
            None
        } else {
            Some(tls::ServerCert::generate()?)
        };
        let url = match cert {
            Some(_) => format!("https://{address}"),
            None => format!("http://{address}"),
        };
        let ca_pem = cert.as_ref().map(|c| c.cert_pem.clone());
        let cluster = Cluster::new(self.history);
        let runner = self.runner.then(|| {
            workloads::Runner::start(
                cluster.clone(),
                workloads::RunnerConfig {
                    mappings: self.mappings.clone(),
                    root: data_dir.clone(),
                    probe_period_cap: self.probe_period_cap,
                    backoff_base: self.backoff_base,
                    backoff_max: self.backoff_max,
                    grace_cap: self.grace_cap,
                    rewrite_service_addresses: self.rewrite_service_addresses,
                    api_address: address.to_string(),
                    api_url: url.clone(),
                    api_ca_pem: ca_pem.clone(),
                },
            )
        });
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let app = http::App {
            cluster: cluster.clone(),
            address: address.to_string(),
            rbac: self.rbac,
            runner: runner.clone(),
            shutdown: shutdown_rx.clone(),
        };
        let router = http::router(app);
        let server = match cert.clone() {
            Some(cert) => tokio::spawn(tls::serve(listener, cert, router)),
            None => {
                let mut rx = shutdown_rx;
                tokio::spawn(async move {
                    let _ = axum::serve(listener, router)
                        .with_graceful_shutdown(async move {
                            let _ = rx.wait_for(|s| *s).await;
                        })
                        .await;
                })
            }
        };
        let gc = tokio::spawn(gc::run(cluster.clone()));
        let kubeconfig = self
            .kubeconfig
            .clone()
            .unwrap_or_else(|| tmp.path().join("kubeconfig"));
        let emu = Emulator {
            address,
            url,
            cert,
            cluster,
            runner,
            tasks: vec![server, gc],
            shutdown: shutdown_tx,
            kubeconfig,
            _tmp: tmp,
        };
        emu.write_kubeconfig(&emu.kubeconfig, rbac::ADMIN_TOKEN)?;
        Ok(emu)
    }
}

/// A running emulator. Dropping it stops the server and kills every workload process.
#[derive(Debug)]
pub struct Emulator {
    address: SocketAddr,
    url: String,
    cert: Option<tls::ServerCert>,
    cluster: Arc<Cluster>,
    runner: Option<Arc<workloads::Runner>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    shutdown: tokio::sync::watch::Sender<bool>,
    kubeconfig: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Emulator {
    /// Starts an emulator with default options (no RBAC, no workload runner).
    pub async fn start() -> anyhow::Result<Self> {
        Self::builder().start().await
    }

    /// Options.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// `127.0.0.1:port` of the API server.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `https://127.0.0.1:port` (`http://` with [`EmulatorBuilder::plain_http`]).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// PEM of the server certificate clients must trust (`None` for plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        self.cert.as_ref().map(|c| c.cert_pem.as_str())
    }

    /// The kubeconfig written at start (admin credentials, namespace `default`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The shared cluster state (for white-box assertions).
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// A kube-rs client with administrator rights, default namespace `default`.
    ///
    /// # Panics
    /// Only if kube-rs cannot build a client (it has no reason to for plain HTTP).
    pub fn client(&self) -> kube::Client {
        self.client_with_token(rbac::ADMIN_TOKEN)
    }

    /// A kube-rs client authenticated as a ServiceAccount (subject to RBAC in RBAC mode).
    pub fn client_for_service_account(&self, namespace: &str, name: &str) -> kube::Client {
        self.client_with_token(&rbac::service_account_token(namespace, name))
    }

    /// The bearer token of a ServiceAccount.
    pub fn service_account_token(namespace: &str, name: &str) -> String {
        rbac::service_account_token(namespace, name)
    }

    fn client_with_token(&self, token: &str) -> kube::Client {
        let uri: ::http::Uri = self.url().parse().unwrap_or_default();
        let mut config = kube::Config::new(uri);
        config.default_namespace = "default".into();
        config.root_cert = self.cert.as_ref().map(|c| vec![c.cert_der.clone()]);
        if let Ok(v) = ::http::HeaderValue::from_str(&format!("Bearer {token}")) {
            config.headers.push((::http::header::AUTHORIZATION, v));
        }
        match kube::Client::try_from(config) {
            Ok(c) => c,
            Err(e) => panic!("kube-emulator: cannot build a kube client: {e}"),
        }
    }

    /// Writes a kubeconfig for this emulator with the given bearer token.
    pub fn write_kubeconfig(&self, path: &Path, token: &str) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(
            path,
            kubeconfig_yaml(&self.url, self.ca_pem(), "default", token),
        )
    }

    /// Writes (in the emulator's directory) and returns a kubeconfig for a ServiceAccount.
    pub fn kubeconfig_for_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> std::io::Result<PathBuf> {
        let path = self
            ._tmp
            .path()
            .join(format!("kubeconfig-{namespace}-{name}"));
        self.write_kubeconfig(&path, &rbac::service_account_token(namespace, name))?;
        Ok(path)
    }

    /// What cluster DNS does for programs outside the emulator's pods: the local address of a
    /// Service port (`namespace`, `service`, `port`), usable after the emulator is gone (it then
    /// answers `None`).
    pub fn service_resolver(
        &self,
    ) -> impl Fn(&str, &str, u16) -> Option<SocketAddr> + Send + Sync + 'static {
        let runner = self.runner.clone();
        move |namespace, service, port| {
            runner
                .as_ref()?
                .services
                .address(namespace, service, i64::from(port))
        }
    }

    /// The local address forwarding to a Service port (`None`: its first port), once the
    /// workload runner has set it up.
    pub fn service_address(
        &self,
        namespace: &str,
        service: &str,
        port: Option<i64>,
    ) -> Option<SocketAddr> {
        let runner = self.runner.as_ref()?;
        let port = match port {
            Some(p) => p,
            None => {
                let st = self.cluster.lock();
                let rt = st.rt("", "services");
                let svc = st.find(&rt, namespace, service)?;
                svc["spec"]["ports"][0]["port"].as_i64()?
            }
        };
        runner.services.address(namespace, service, port)
    }

    /// Waits until a Service port has a local address and a ready endpoint behind it.
    pub async fn wait_for_service(
        &self,
        namespace: &str,
        service: &str,
        port: Option<i64>,
        timeout: Duration,
    ) -> anyhow::Result<SocketAddr> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(addr) = self.service_address(namespace, service, port) {
                let ready = {
                    let st = self.cluster.lock();
                    let rt = st.rt("", "services");
                    st.find(&rt, namespace, service).is_some_and(|svc| {
                        let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
                        let p = ports
                            .iter()
                            .find(|p| port.is_none_or(|n| p["port"] == n))
                            .cloned()
                            .unwrap_or(Value::Null);
                        workloads::proxy::endpoint(&st, &svc, &p).is_some()
                    })
                };
                if ready {
                    return Ok(addr);
                }
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "service {namespace}/{service} has no ready endpoint after {timeout:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The output of a Pod's container so far (`None`: its first container).
    pub fn pod_logs(&self, namespace: &str, pod: &str, container: Option<&str>) -> String {
        let Some(runner) = &self.runner else {
            return String::new();
        };
        let st = self.cluster.lock();
        let rt = st.rt("", "pods");
        let Some(p) = st.find(&rt, namespace, pod) else {
            return String::new();
        };
        let container = container
            .map(str::to_owned)
            .or_else(|| {
                p["spec"]["containers"][0]["name"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        runner.logs(namespace, pod, api::uid_of(&p), &container, None)
    }

    /// Stops the server and kills all workload processes (also done on drop).
    pub fn stop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(r) = &self.runner {
            r.shutdown();
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

/// A kubeconfig with one cluster, one context and one token user.
pub(crate) fn kubeconfig_yaml(
    url: &str,
    ca_pem: Option<&str>,
    namespace: &str,
    token: &str,
) -> String {
    use base64::Engine as _;
    let ca = ca_pem
        .map(|pem| {
            format!(
                "\n    certificate-authority-data: {}",
                base64::engine::general_purpose::STANDARD.encode(pem)
            )
        })
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-emulator\n  cluster:\n    server: {url}{ca}\ncontexts:\n- name: kube-emulator\n  context:\n    cluster: kube-emulator\n    user: kube-emulator\n    namespace: {namespace}\ncurrent-context: kube-emulator\nusers:\n- name: kube-emulator\n  user:\n    token: {token}\n"
    )
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}
