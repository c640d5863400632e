//! Several `quayside serve` processes on one PostgreSQL database and one S3 (moto) bucket,
//! behind a round-robin TCP proxy on loopback: read-after-write across replicas (cache
//! invalidation by `LISTEN/NOTIFY`, not a TTL: the pull cache's TTL is set to ten minutes here),
//! tokens of one replica accepted by the others, background workers run once across replicas,
//! a replica SIGKILLed mid-push, and garbage collection on one replica while others push.
//!
//! PostgreSQL only (several processes on one SQLite file is not a supported deployment).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use crate::common::oci::{self, Image};
use crate::common::sink::HttpSink;
use crate::common::tools::{S3Server, free_port};
use crate::common::{ADMIN, ADMIN_PASSWORD, PgDatabase};

/// A `quayside serve` child process.
struct Replica {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Replica {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no drain, no cleanup.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Round-robin TCP proxy: each connection goes to the next replica that accepts it.
struct Proxy {
    port: u16,
}

impl Proxy {
    async fn start(listener: TcpListener, backends: Vec<u16>) -> Proxy {
        let port = listener.local_addr().unwrap().port();
        let next = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    return;
                };
                let start = next.fetch_add(1, Ordering::Relaxed);
                let backends = backends.clone();
                tokio::spawn(async move {
                    for k in 0..backends.len() {
                        let port = backends[(start + k) % backends.len()];
                        if let Ok(mut up) = TcpStream::connect(("127.0.0.1", port)).await {
                            let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                            return;
                        }
                    }
                });
            }
        });
        Proxy { port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

struct Cluster {
    replicas: Vec<Replica>,
    proxy: Proxy,
    /// A client opening a new connection per request, so the proxy spreads requests.
    http: reqwest::Client,
    admin_token: String,
    conf: PathBuf,
    _s3: S3Server,
    _dir: tempfile::TempDir,
    // Dropped last: the replicas stop before their database goes.
    _pg: PgDatabase,
}

impl Cluster {
    /// Starts `n` replicas with `extra` config lines and environment `env`.
    async fn start(n: usize, extra: &str, env: &[(&str, &str)]) -> Cluster {
        let pg = PgDatabase::create().await;
        let s3 = S3Server::start().await;
        s3.create_bucket("quay").await;
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_port = listener.local_addr().unwrap().port();
        let conf = dir.path().join("conf");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("config.yaml"),
            format!(
                "FEATURE_USER_INITIALIZE: true\nSERVER_HOSTNAME: 127.0.0.1:{proxy_port}\n\
                 SECRET_KEY: replicas-share-this-secret-0123456789\nDB_URI: {}\n{}{extra}",
                pg.url,
                s3.storage_yaml("quay")
            ),
        )
        .unwrap();
        let mut replicas = Vec::new();
        for i in 0..n {
            let port = free_port();
            let data = dir.path().join(format!("data-{i}"));
            let log = dir.path().join(format!("replica-{i}.log"));
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_quayside"));
            cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .arg("--data-dir")
                .arg(&data)
                .arg("--config")
                .arg(conf.join("config.yaml"))
                .env("QUAYSIDE_PULL_CACHE_TTL_MS", "600000")
                .env("QUAYSIDE_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap());
            for (k, v) in env {
                cmd.env(k, v);
            }
            replicas.push(Replica {
                child: Some(cmd.spawn().expect("start quayside serve")),
                port,
                log,
            });
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        for r in &replicas {
            wait_healthy(&http, r).await;
        }
        let proxy = Proxy::start(listener, replicas.iter().map(|r| r.port).collect()).await;
        let r = http
            .post(format!("{}/api/v1/user/initialize", proxy.url()))
            .json(&json!({"username": ADMIN, "password": ADMIN_PASSWORD,
                          "email": "admin@example.com", "access_token": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let admin_token = r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        Cluster {
            replicas,
            proxy,
            http,
            admin_token,
            conf: conf.join("config.yaml"),
            _s3: s3,
            _dir: dir,
            _pg: pg,
        }
    }

    /// Creates a user with the CLI, as scripts do.
    fn create_user(&self, name: &str, password: &str) {
        crate::common::tools::run_ok(
            Command::new(env!("CARGO_BIN_EXE_quayside"))
                .args([
                    "admin",
                    "create-user",
                    "--username",
                    name,
                    "--password",
                    password,
                ])
                .env("QUAYSIDE_CONFIG", &self.conf)
                .env("QUAYSIDE_DATA_DIR", self._dir.path().join("data-cli"))
                .env("QUAYSIDE_LOG", "warn"),
        );
    }

    /// Prints the replicas' logs (shown when the test fails).
    fn dump_logs(&self) {
        for (i, r) in self.replicas.iter().enumerate() {
            let text = std::fs::read_to_string(&r.log).unwrap_or_default();
            eprintln!("--- replica {i} log ---\n{text}");
        }
    }

    /// A registry token for `scope` issued by the server at `base`.
    async fn token(&self, base: &str, scope: &str) -> String {
        let r = self
            .http
            .get(format!("{base}/v2/auth"))
            .query(&[
                ("service", format!("127.0.0.1:{}", self.proxy.port)),
                ("scope", scope.to_owned()),
            ])
            .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Metric `name{worker="..."}` values of one replica.
    async fn worker_passes(&self, r: &Replica) -> Vec<(String, u64)> {
        let text = self
            .http
            .get(format!("{}/metrics", r.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter_map(|l| l.strip_prefix("quayside_worker_passes_total{worker=\""))
            .filter_map(|l| l.split_once("\"} "))
            .map(|(w, n)| (w.to_owned(), n.trim().parse().unwrap()))
            .collect()
    }
}

async fn wait_healthy(http: &reqwest::Client, r: &Replica) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(resp) = http
            .get(format!("{}/health/instance", r.url()))
            .send()
            .await
            && resp.status() == StatusCode::OK
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica on {} did not become healthy: {}",
            r.port,
            std::fs::read_to_string(&r.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a push or pull failed with: retried by the callers that expect failures.
type Failed = String;

/// Pushes `image` as `repo:tag` through `base` with basic credentials, the way clients do:
/// skips blobs the registry has, uploads the others in `chunk`-byte PATCHes.
async fn push(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
    image: &Image,
    chunk: usize,
) -> Result<(), Failed> {
    push_with(http, base, repo, tag, image, chunk, false).await
}

/// [`push`], uploading every blob when `force` (a retry after the collector took a link).
async fn push_with(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
    image: &Image,
    chunk: usize,
    force: bool,
) -> Result<(), Failed> {
    let err = |what: &str, e: String| format!("{what}: {e}");
    for blob in image.blobs() {
        let digest = oci::sha256(blob);
        if !force {
            let head = http
                .head(format!("{base}/v2/{repo}/blobs/{digest}"))
                .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
                .send()
                .await
                .map_err(|e| err("HEAD blob", e.to_string()))?;
            if head.status() == StatusCode::OK {
                continue;
            }
        }
        let r = http
            .post(format!("{base}/v2/{repo}/blobs/uploads/"))
            .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
            .send()
            .await
            .map_err(|e| err("POST upload", e.to_string()))?;
        if r.status() != StatusCode::ACCEPTED {
            return Err(format!("POST upload: {}", r.status()));
        }
        let mut location = r.headers()["location"].to_str().unwrap().to_owned();
        for (i, part) in blob.chunks(chunk.max(1)).enumerate() {
            let start = i * chunk;
            let r = http
                .patch(abs(base, &location))
                .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
                .header("Content-Type", "application/octet-stream")
                .header(
                    "Content-Range",
                    format!("{start}-{}", start + part.len() - 1),
                )
                .body(part.to_vec())
                .send()
                .await
                .map_err(|e| err("PATCH upload", e.to_string()))?;
            if r.status() != StatusCode::ACCEPTED {
                return Err(format!(
                    "PATCH upload: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                ));
            }
            location = r.headers()["location"].to_str().unwrap().to_owned();
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let r = http
            .put(format!("{}{sep}digest={digest}", abs(base, &location)))
            .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
            .send()
            .await
            .map_err(|e| err("PUT upload", e.to_string()))?;
        if r.status() != StatusCode::CREATED {
            return Err(format!(
                "PUT upload: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ));
        }
    }
    let r = http
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
        .header("Content-Type", oci::OCI_MANIFEST)
        .body(image.manifest.clone())
        .send()
        .await
        .map_err(|e| err("PUT manifest", e.to_string()))?;
    if r.status() != StatusCode::CREATED {
        return Err(format!(
            "PUT manifest: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        ));
    }
    Ok(())
}

fn abs(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        format!("{base}{location}")
    }
}

/// Pulls `repo:tag` through `base` and checks the manifest digest and every blob's bytes.
async fn pull_check(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
    image: &Image,
) -> Result<(), Failed> {
    let r = http
        .get(format!("{base}/v2/{repo}/manifests/{tag}"))
        .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
        .header("Accept", oci::OCI_MANIFEST)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != StatusCode::OK {
        return Err(format!("GET manifest {repo}:{tag}: {}", r.status()));
    }
    let body = r.bytes().await.map_err(|e| e.to_string())?;
    if oci::sha256(&body) != image.digest {
        return Err(format!("{repo}:{tag} serves another manifest"));
    }
    for blob in image.blobs() {
        let digest = oci::sha256(blob);
        let r = http
            .get(format!("{base}/v2/{repo}/blobs/{digest}"))
            .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status() != StatusCode::OK {
            return Err(format!("GET blob {digest} of {repo}:{tag}: {}", r.status()));
        }
        let got = r.bytes().await.map_err(|e| e.to_string())?;
        if oci::sha256(&got) != digest {
            return Err(format!("blob {digest} of {repo}:{tag} has other bytes"));
        }
    }
    Ok(())
}

async fn manifest_digest(http: &reqwest::Client, base: &str, auth: &str, path: &str) -> String {
    let r = http
        .get(format!("{base}/v2/{path}"))
        .bearer_auth(auth)
        .header("Accept", oci::OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    if r.status() != StatusCode::OK {
        return format!("status {}", r.status());
    }
    r.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Read-after-write, shared tokens, credential invalidation and workers once, on one cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_read_their_writes_share_tokens_and_run_workers_once() {
    // Every worker every 300 ms (the lease is twice that); quota backfill from the start.
    let c = Cluster::start(
        3,
        "QUOTA_TOTAL_DELAY_SECONDS: 0\nSSRF_ALLOWED_HOSTS: [127.0.0.1]\n",
        &[("QUAYSIDE_WORKER_INTERVAL_MS", "300")],
    )
    .await;
    let http = &c.http;
    let [a, b, d] = [
        c.replicas[0].url(),
        c.replicas[1].url(),
        c.replicas[2].url(),
    ];

    // A token issued by replica A works on B and C (keys derive from the shared SECRET_KEY).
    let token = c.token(&a, "repository:admin/shared:push,pull").await;
    let first = Image::random(2);
    push(http, &a, "admin/shared", "v1", &first, 1 << 20)
        .await
        .unwrap();
    for base in [&b, &d] {
        assert_eq!(
            manifest_digest(http, base, &token, "admin/shared/manifests/v1").await,
            first.digest,
            "a token from replica A is accepted by {base}"
        );
    }
    // B and C now hold v1 in their pull caches (TTL ten minutes). Move the tag through A: both
    // serve the new manifest as soon as A's notification reached them (usually by the next
    // request; a loaded CI machine may delay the listener, so allow it two seconds, far below
    // the TTL), and the deleted tag is gone the same way.
    let mut slowest = Duration::ZERO;
    for round in 0..5 {
        let next = Image::random(1);
        push(http, &a, "admin/shared", "v1", &next, 1 << 20)
            .await
            .unwrap();
        let pushed = Instant::now();
        for base in [&b, &d] {
            let got = eventually(
                || manifest_digest(http, base, &token, "admin/shared/manifests/v1"),
                &next.digest,
            )
            .await;
            assert_eq!(
                got, next.digest,
                "round {round}: {base} serves the tag as moved through replica A"
            );
            slowest = slowest.max(pushed.elapsed());
            // Warm the cache again for the next round.
            manifest_digest(http, base, &token, "admin/shared/manifests/v1").await;
        }
    }
    eprintln!("slowest cross-replica read of a moved tag: {slowest:?}");
    let r = http
        .delete(format!("{a}/api/v1/repository/admin/shared/tag/v1"))
        .bearer_auth(&c.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for base in [&b, &d] {
        assert_eq!(
            eventually(
                || manifest_digest(http, base, &token, "admin/shared/manifests/v1"),
                "status 404 Not Found"
            )
            .await,
            "status 404 Not Found",
            "{base} no longer serves a tag deleted through A"
        );
    }

    // Credentials: B caches bob's password check; a password change through A makes B refuse
    // the old password at once.
    c.create_user("bob", "bob-password1");
    let auth_on = |base: String, password: &'static str| async move {
        http.get(format!("{base}/v2/auth"))
            .query(&[("service", format!("127.0.0.1:{}", c.proxy.port))])
            .basic_auth("bob", Some(password))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(auth_on(b.clone(), "bob-password1").await, StatusCode::OK);
    assert_eq!(auth_on(b.clone(), "bob-password1").await, StatusCode::OK);
    let r = http
        .put(format!("{a}/api/v1/superuser/users/bob"))
        .bearer_auth(&c.admin_token)
        .json(&json!({"password": "bob-password2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut refused = auth_on(b.clone(), "bob-password1").await;
    while refused == StatusCode::OK && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        refused = auth_on(b.clone(), "bob-password1").await;
    }
    assert_eq!(
        refused,
        StatusCode::UNAUTHORIZED,
        "replica B refuses a password changed through A (its cached check would last 60 s)"
    );
    assert_eq!(auth_on(d.clone(), "bob-password2").await, StatusCode::OK);

    // Notifications: each push through the proxy (any replica) is delivered exactly once.
    let sink = HttpSink::start().await;
    push(
        http,
        &c.proxy.url(),
        "admin/notified",
        "v0",
        &Image::random(1),
        1 << 20,
    )
    .await
    .unwrap();
    let r = http
        .post(format!(
            "{}/api/v1/repository/admin/notified/notification/",
            c.proxy.url()
        ))
        .bearer_auth(&c.admin_token)
        .json(&json!({"event": "repo_push", "method": "webhook",
                      "config": {"url": format!("{}/hook", sink.url)}, "eventConfig": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    for i in 1..=6 {
        push(
            http,
            &c.proxy.url(),
            "admin/notified",
            &format!("v{i}"),
            &Image::random(1),
            1 << 20,
        )
        .await
        .unwrap();
    }
    let got = sink.wait_for(6).await;
    // Several worker passes later, still six.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_later = sink.received();
    assert_eq!(got.len(), 6);
    assert_eq!(
        got_later.len(),
        6,
        "each push is delivered once across three replicas"
    );

    // Workers: count every replica's passes over a window. A leased worker runs on one replica
    // at a time, so all replicas together run about window / interval passes (~15); if each
    // replica ran its own, they would be three times that (~45). `mirror` is left out: it
    // claims each mirror row instead, so every replica runs its pass.
    let before: Vec<_> = futures_all(&c).await;
    let window = Duration::from_millis(4500);
    tokio::time::sleep(window).await;
    let after: Vec<_> = futures_all(&c).await;
    let expected = (window.as_millis() / 300) as u64;
    for worker in [
        "uploads",
        "expiration",
        "gc",
        "quota",
        "exportlogs",
        "logrotation",
        "notifications",
    ] {
        let total: u64 = before
            .iter()
            .zip(&after)
            .map(|(b, a)| count(a, worker) - count(b, worker))
            .sum();
        assert!(
            total >= 1 && total <= expected * 3 / 2 + 2,
            "worker {worker}: {total} passes across replicas in {window:?} (one at a time would be ~{expected})"
        );
    }
    c.dump_logs();
}

/// Polls `read` until it answers `want`, for at most two seconds; returns the last answer.
async fn eventually<F, Fut>(read: F, want: &str) -> String
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let got = read().await;
        if got == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn count(passes: &[(String, u64)], worker: &str) -> u64 {
    passes
        .iter()
        .find(|(w, _)| w == worker)
        .map_or(0, |(_, n)| *n)
}

async fn futures_all(c: &Cluster) -> Vec<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for r in &c.replicas {
        out.push(c.worker_passes(r).await);
    }
    out
}

/// A replica SIGKILLed while pushes run through the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_killed_mid_push() {
    let mut c = Cluster::start(3, "", &[]).await;
    let http = c.http.clone();
    let proxy = c.proxy.url();

    // A push in the middle of its upload on replica B when B is killed.
    let victim = c.replicas[1].url();
    let image = Image::build(vec![oci::random_bytes(300_000)], "amd64", false);
    let layer = image.blobs().last().unwrap().clone();
    let r = http
        .post(format!("{victim}/v2/admin/killed/blobs/uploads/"))
        .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = http
        .patch(abs(&victim, &location))
        .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
        .header("Content-Type", "application/octet-stream")
        .body(layer[..100_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    // Concurrent pushers through the proxy, each retrying a failed push from the start.
    let done = Arc::new(std::sync::Mutex::new(Vec::<(String, String, Image)>::new()));
    let retries = Arc::new(AtomicUsize::new(0));
    let mut pushers = Vec::new();
    for p in 0..3 {
        let (http, proxy, done, retries) =
            (http.clone(), proxy.clone(), done.clone(), retries.clone());
        pushers.push(tokio::spawn(async move {
            for i in 0..6 {
                let repo = format!("admin/load{p}");
                let tag = format!("t{i}");
                let image = Image::build(
                    vec![oci::random_bytes(200_000), oci::random_bytes(50_000)],
                    "amd64",
                    false,
                );
                let mut attempt = 0;
                loop {
                    match push(&http, &proxy, &repo, &tag, &image, 40_000).await {
                        Ok(()) => break,
                        Err(e) => {
                            attempt += 1;
                            retries.fetch_add(1, Ordering::Relaxed);
                            assert!(attempt < 8, "push {repo}:{tag} keeps failing: {e}");
                        }
                    }
                }
                done.lock().unwrap().push((repo, tag, image));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.replicas[1].kill();
    for p in pushers {
        p.await.unwrap();
    }

    // The interrupted upload: its session cannot continue on a replica that is gone; the client
    // continues it through the proxy (another replica) or, if refused, starts over, and both
    // end with a pullable image.
    let proxy_loc = location.clone();
    let resumed = http
        .patch(abs(&proxy, &proxy_loc))
        .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", format!("100000-{}", layer.len() - 1))
        .body(layer[100_000..].to_vec())
        .send()
        .await
        .unwrap();
    let resumed_ok = if resumed.status() == StatusCode::ACCEPTED {
        let loc = resumed.headers()["location"].to_str().unwrap().to_owned();
        let sep = if loc.contains('?') { '&' } else { '?' };
        let r = http
            .put(format!(
                "{}{sep}digest={}",
                abs(&proxy, &loc),
                oci::sha256(&layer)
            ))
            .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        r.status() == StatusCode::CREATED
    } else {
        // Refused cleanly, in the OCI envelope.
        let status = resumed.status();
        let body: Value = resumed.json().await.unwrap();
        assert!(
            body["errors"][0]["code"].is_string(),
            "a refused resume answers an OCI error ({status}): {body}"
        );
        false
    };
    push(&http, &proxy, "admin/killed", "v1", &image, 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("push after the kill (resumed: {resumed_ok}): {e}"));
    pull_check(&http, &proxy, "admin/killed", "v1", &image)
        .await
        .unwrap();

    // Every completed push pulls with the right digests, through every surviving replica.
    let done = done.lock().unwrap().clone();
    assert_eq!(done.len(), 18);
    for (repo, tag, image) in &done {
        for base in [c.replicas[0].url(), c.replicas[2].url()] {
            if let Err(e) = pull_check(&http, &base, repo, tag, image).await {
                c.dump_logs();
                panic!("after the kill: {e}");
            }
        }
    }
    eprintln!(
        "{} push attempts failed and were retried; interrupted upload resumed: {resumed_ok}",
        retries.load(Ordering::Relaxed)
    );
}

/// GC on one replica while another pushes the same blobs: no time machine and a two-second
/// grace period, so what nothing references is collectable two seconds after its upload, and the
/// collector runs every 200 ms (on whichever replica holds its lease).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_on_one_replica_while_another_pushes_the_same_blobs() {
    let c = Cluster::start(
        2,
        "DEFAULT_TAG_EXPIRATION: 0s\nPUSH_TEMP_TAG_EXPIRATION_SEC: 2\n",
        &[("QUAYSIDE_WORKER_INTERVAL_MS", "200")],
    )
    .await;
    let http = c.http.clone();
    // The collector's replica: the one whose gc passes grow.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let counts = [
        count(&c.worker_passes(&c.replicas[0]).await, "gc"),
        count(&c.worker_passes(&c.replicas[1]).await, "gc"),
    ];
    let pusher = if counts[0] >= counts[1] { 1 } else { 0 };
    let base = c.replicas[pusher].url();
    // Each push moves tag `g` to a manifest on the other shared layer (and sometimes a fresh
    // one): the previous layer becomes garbage, is collected a moment later, and is pushed
    // again, skipped when the registry still says it has it (as clients do). Every push that
    // succeeds must pull whole right after, while the collector keeps running.
    let shared = [oci::random_bytes(20_000), oci::random_bytes(20_000)];
    let mut refused = 0;
    let mut first_unique = None;
    let started = Instant::now();
    for i in 0..24 {
        let mut layers = vec![shared[i % 2].clone()];
        if i % 3 == 0 {
            layers.push(oci::random_bytes(1_000));
        }
        let image = Image::build(layers, "amd64", false);
        if i == 0 {
            first_unique = Some(oci::sha256(&image.layers[1]));
        }
        let mut attempt = 0;
        loop {
            match push_with(&http, &base, "admin/gc", "g", &image, 1 << 20, attempt > 0).await {
                Ok(()) => break,
                // The collector removed a link between the HEAD and the manifest: the push is
                // refused cleanly, and the retry uploads again.
                Err(e) if e.contains("MANIFEST_BLOB_UNKNOWN") && attempt < 10 => {
                    attempt += 1;
                    refused += 1;
                }
                Err(e) => {
                    c.dump_logs();
                    panic!("push {i}: {e}")
                }
            }
        }
        if let Err(e) = pull_check(&http, &base, "admin/gc", "g", &image).await {
            c.dump_logs();
            panic!("push {i}, right after it succeeded with GC running: {e}");
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        // Still whole a collection or two later (it is the tag's manifest).
        if let Err(e) = pull_check(&http, &c.proxy.url(), "admin/gc", "g", &image).await {
            c.dump_logs();
            panic!("push {i}, after collections: {e}");
        }
    }
    // The collector really ran during the pushes, on the other replica (every 200 ms when the
    // machine is idle; a few passes are enough to have raced the pushes).
    let gc_passes =
        count(&c.worker_passes(&c.replicas[1 - pusher]).await, "gc") - counts[1 - pusher];
    assert!(
        gc_passes >= 5,
        "gc ran {gc_passes} times in {:?}",
        started.elapsed()
    );
    // And it collected: the unique layer of the first manifest the tag left is gone.
    let r = http
        .get(format!(
            "{base}/v2/admin/gc/blobs/{}",
            first_unique.unwrap()
        ))
        .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "the collector reclaimed unreferenced layers"
    );
    eprintln!(
        "{refused} manifest pushes refused by a concurrent collection and retried; {gc_passes} gc passes"
    );
}
