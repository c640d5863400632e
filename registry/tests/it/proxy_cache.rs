//! Proxy cache (issue 13) against real upstreams started here: CNCF Distribution (Debian's
//! `docker-registry`, open and behind htpasswd) and a second Quayside with token auth.
//! A small TCP relay in front of Distribution can cut a response part way.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend_tests;
use crate::common::distribution::{Distribution, push_upstream};
use crate::common::oci::{self, Image};
use crate::common::tools::require;
use crate::common::{ADMIN, ADMIN_PASSWORD, Backend, Options, TestServer, error_code};

backend_tests!(
    upstreams_pass_the_ssrf_guard,
    a_fetch_killed_after_staging_leaves_nothing_visible,
    pull_through_distribution,
    pull_through_token_and_basic_auth,
    quota_evicts_the_least_recently_pulled
);

/// A TCP relay to `target`. When `cut_after` is positive, the next answer longer than that
/// many bytes is cut there (both connections closed), once.
struct Relay {
    addr: String,
    cut_after: Arc<AtomicI64>,
}

async fn relay(target: String) -> Relay {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cut_after = Arc::new(AtomicI64::new(0));
    let cut = cut_after.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            let cut = cut.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let (mut ri, mut wi) = inbound.split();
                let (mut ro, mut wo) = outbound.split();
                let up = tokio::io::copy(&mut ri, &mut wo);
                let down = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    // Bytes relayed since the cut was armed (counted per connection).
                    let mut sent: i64 = 0;
                    let mut armed = false;
                    loop {
                        let n = match ro.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let limit = cut.load(Ordering::SeqCst);
                        if limit > 0 && !armed {
                            armed = true;
                            sent = 0;
                        }
                        if limit > 0 && sent + n as i64 > limit {
                            let keep = (limit - sent).max(0) as usize;
                            let _ = wi.write_all(&buf[..keep]).await;
                            cut.store(0, Ordering::SeqCst);
                            return;
                        }
                        if wi.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        sent += n as i64;
                    }
                };
                tokio::select! {
                    _ = up => {}
                    _ = down => {}
                }
            });
        }
    });
    Relay { addr, cut_after }
}

async fn api(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    s.call(Some(token), method, path, body).await
}

async fn get_manifest(s: &TestServer, repo: &str, reference: &str) -> reqwest::Response {
    s.as_admin()
        .request(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        )
        .send()
        .await
        .unwrap()
}

async fn get_blob(s: &TestServer, repo: &str, digest: &str) -> Result<Vec<u8>, String> {
    let r = s
        .as_admin()
        .request(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != StatusCode::OK {
        return Err(format!("status {}", r.status()));
    }
    r.bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string())
}

async fn stored(s: &TestServer, digest: &str) -> bool {
    quayside::db::content::blobs::size(s.ctx().db.pool(), digest)
        .await
        .unwrap()
        .is_some()
}

fn skopeo_pull(s: &TestServer, repo_tag: &str, dest: &Path) -> std::process::Output {
    Command::new(require("skopeo"))
        .env("REGISTRY_AUTH_FILE", dest.with_extension("auth.json"))
        .args(["copy", "--src-tls-verify=false", "--src-creds"])
        .arg(format!("{ADMIN}:{ADMIN_PASSWORD}"))
        .arg(format!("docker://{}/{repo_tag}", s.host))
        .arg(format!("oci:{}:x", dest.display()))
        .output()
        .unwrap()
}

const DAY_MS: i64 = 86_400_000;

/// Upstreams in these tests listen on loopback, which the SSRF guard refuses unless allowed.
const LOOPBACK: &str = "SSRF_ALLOWED_HOSTS: [127.0.0.1]\n";

async fn loopback_server(b: Backend) -> TestServer {
    TestServer::start_with(
        b,
        Options {
            yaml: LOOPBACK.into(),
            ..Options::default()
        },
    )
    .await
}

async fn pull_through_distribution(b: Backend) {
    let mut upstream = Distribution::start(None).await;
    let relay = relay(upstream.addr.clone()).await;
    let s = loopback_server(b).await;
    let token = s.init_admin().await;
    s.create_org(&token, "proxyorg").await;
    let cfg = "/organization/proxyorg/proxycache";

    // The configuration API, in Quay's shapes.
    let (status, body) = api(&s, &token, Method::GET, cfg, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"upstream_registry": "", "expiration_s": "", "insecure": ""})
    );
    let request = json!({"org_name": "proxyorg", "upstream_registry": relay.addr, "insecure": true, "expiration_s": 86400});
    let (status, body) = api(
        &s,
        &token,
        Method::POST,
        "/organization/proxyorg/validateproxycache",
        Some(request.clone()),
    )
    .await;
    assert_eq!((status, body), (StatusCode::ACCEPTED, json!("Valid")));
    let (status, body) = api(
        &s,
        &token,
        Method::POST,
        cfg,
        Some(json!({"upstream_registry": "nothing.invalid"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error_message"],
        "Cannot resolve hostname 'nothing.invalid'"
    );
    let (status, body) = api(&s, &token, Method::POST, cfg, Some(request.clone())).await;
    assert_eq!((status, body), (StatusCode::CREATED, json!("Created")));
    let (status, body) = api(&s, &token, Method::POST, cfg, Some(request.clone())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error_message"],
        "Proxy Cache Configuration already exists"
    );
    let (status, body) = api(&s, &token, Method::GET, cfg, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"upstream_registry": relay.addr, "expiration_s": 86400, "insecure": true})
    );

    // First pull, by skopeo: the repository is created, the image cached.
    let upstream_url = format!("http://{}", upstream.addr);
    let v1 = Image::random(2);
    push_upstream(&upstream_url, None, "library/hello", "latest", &v1).await;
    let work = tempfile::tempdir().unwrap();
    let out = skopeo_pull(
        &s,
        "proxyorg/library/hello:latest",
        &work.path().join("first"),
    );
    assert!(
        out.status.success(),
        "first pull: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for blob in v1.blobs() {
        assert!(
            stored(&s, &oci::sha256(blob)).await,
            "blob cached after the first pull"
        );
    }
    let (status, repo) = api(
        &s,
        &token,
        Method::GET,
        "/repository/proxyorg/library/hello",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        repo["tags"]["latest"]["manifest_digest"],
        v1.digest.as_str()
    );
    assert!(
        repo["tags"]["latest"]["expiration"].is_string(),
        "cached tags expire: {repo}"
    );
    let missing = get_manifest(&s, "proxyorg/library/hello", "nosuchtag").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(error_code(&body), "MANIFEST_UNKNOWN");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("may not exist in the upstream registry")
    );

    // Upstream stopped: served from the cache within the staleness period, refused after it.
    upstream.stop();
    let out = skopeo_pull(
        &s,
        "proxyorg/library/hello:latest",
        &work.path().join("cached"),
    );
    assert!(
        out.status.success(),
        "cached pull: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.clock.advance_ms(DAY_MS - 60_000);
    let r = get_manifest(&s, "proxyorg/library/hello", "latest").await;
    assert_eq!(r.status(), StatusCode::OK, "still within expiration_s");
    s.clock.advance_ms(120_000);
    let r = get_manifest(&s, "proxyorg/library/hello", "latest").await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "stale: the upstream's error"
    );
    upstream.run().await;

    // The upstream moved the tag: the next pull follows, fetching only the new manifest.
    let v2 = Image::random(1);
    push_upstream(&upstream_url, None, "library/hello", "latest", &v2).await;
    let r = get_manifest(&s, "proxyorg/library/hello", "latest").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["docker-content-digest"], v2.digest.as_str());
    assert_eq!(
        get_blob(&s, "proxyorg/library/hello", &oci::sha256(&v2.layers[0]))
            .await
            .unwrap(),
        v2.layers[0]
    );

    // An administrator's push into the proxy organization is accepted and served (as in Quay).
    let pushed = s
        .as_admin()
        .push_image("proxyorg/library/hello", "pushed")
        .await;
    let r = get_manifest(&s, "proxyorg/library/hello", "pushed").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["docker-content-digest"], pushed.digest.as_str());

    // Concurrent pulls of a blob not cached yet: one upstream fetch, every client served.
    let big = Image::build(vec![oci::random_bytes(3 << 20)], "amd64", false);
    push_upstream(&upstream_url, None, "library/big", "v1", &big).await;
    assert_eq!(
        get_manifest(&s, "proxyorg/library/big", "v1")
            .await
            .status(),
        StatusCode::OK
    );
    let layer = oci::sha256(&big.layers[0]);
    let fetches = s.ctx().proxy.blob_fetches.load(Ordering::Relaxed);
    let pulls = (0..6).map(|_| get_blob(&s, "proxyorg/library/big", &layer));
    for got in futures_util::future::join_all(pulls).await {
        assert!(
            got.unwrap() == big.layers[0],
            "every client gets the verified bytes"
        );
    }
    assert_eq!(
        s.ctx().proxy.blob_fetches.load(Ordering::Relaxed) - fetches,
        1
    );

    // The upstream connection breaks mid-blob: the client sees an error, nothing partial is
    // visible, and the next pull succeeds.
    let broken = Image::build(vec![oci::random_bytes(2 << 20)], "amd64", false);
    push_upstream(&upstream_url, None, "library/broken", "v1", &broken).await;
    assert_eq!(
        get_manifest(&s, "proxyorg/library/broken", "v1")
            .await
            .status(),
        StatusCode::OK
    );
    let layer = oci::sha256(&broken.layers[0]);
    relay.cut_after.store(256 * 1024, Ordering::SeqCst);
    let first = get_blob(&s, "proxyorg/library/broken", &layer).await;
    assert!(first.is_err(), "a cut transfer is not a complete answer");
    // The fetch ends in the background.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stored(&s, &layer).await, "nothing partial is visible");
    assert!(!s.blob_path(&layer).exists(), "no bytes at the blob's key");
    let staged = std::fs::read_dir(s.data_dir().join("blobs").join("uploads"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .count();
    assert_eq!(staged, 0, "a broken fetch stages nothing");
    assert_eq!(
        get_blob(&s, "proxyorg/library/broken", &layer)
            .await
            .unwrap(),
        broken.layers[0]
    );
    assert!(stored(&s, &layer).await);

    // A range of a blob not cached yet: fetched whole, then the range served.
    let ranged = Image::random(1);
    push_upstream(&upstream_url, None, "library/ranged", "v1", &ranged).await;
    assert_eq!(
        get_manifest(&s, "proxyorg/library/ranged", "v1")
            .await
            .status(),
        StatusCode::OK
    );
    let layer = oci::sha256(&ranged.layers[0]);
    let r = s
        .as_admin()
        .request(
            Method::GET,
            &format!("/v2/proxyorg/library/ranged/blobs/{layer}"),
        )
        .header("Range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.bytes().await.unwrap().to_vec(),
        ranged.layers[0][..10].to_vec()
    );
    assert!(stored(&s, &layer).await);

    // A tag deleted upstream stops being served.
    let r = reqwest::Client::new()
        .delete(format!(
            "{upstream_url}/v2/library/broken/manifests/{}",
            broken.digest
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = get_manifest(&s, "proxyorg/library/broken", "v1").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Metrics and the configuration's end.
    let metrics = s
        .anonymous()
        .send(Method::GET, "/metrics")
        .await
        .text()
        .await
        .unwrap();
    for name in [
        "quayside_proxy_upstream_requests_total",
        "quayside_proxy_cache_hits_total",
        "quayside_proxy_cache_misses_total",
    ] {
        let value: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in /metrics"))
            .parse()
            .unwrap();
        assert!(value > 0, "{name}");
    }
    // Audit log: the configuration, the repository created by the first pull, proxied pulls.
    s.flush_audit().await;
    let kinds: Vec<String> = s
        .audit("proxyorg")
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for kind in ["create_proxy_cache_config", "create_repo", "pull_repo"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    let (status, body) = api(&s, &token, Method::DELETE, cfg, None).await;
    assert_eq!((status, body), (StatusCode::CREATED, json!("Deleted")));
    let (status, _) = api(&s, &token, Method::DELETE, cfg, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn pull_through_token_and_basic_auth(b: Backend) {
    // A second Quayside (Docker token auth) holding a private image.
    let up = loopback_server(b).await;
    let up_token = up.init_admin().await;
    up.create_org(&up_token, "team").await;
    let app = up.as_admin().push_image("team/app", "v1").await;
    // Distribution behind htpasswd (HTTP Basic).
    let basic = Distribution::start(Some(("puller", "pull-secret-1"))).await;
    let image = Image::random(1);
    push_upstream(
        &format!("http://{}", basic.addr),
        Some(("puller", "pull-secret-1")),
        "tools/cli",
        "v1",
        &image,
    )
    .await;

    let s = loopback_server(b).await;
    let token = s.init_admin().await;
    for org in ["viatoken", "viabasic", "wrongcreds"] {
        s.create_org(&token, org).await;
    }
    let create = |org: &str, registry: String, user: &str, password: &str| {
        json!({"upstream_registry": registry, "upstream_registry_username": user,
               "upstream_registry_password": password, "insecure": true})
        .as_object()
        .map(|o| {
            (
                format!("/organization/{org}/proxycache"),
                Value::Object(o.clone()),
            )
        })
        .unwrap()
    };
    let configs = [
        create(
            "viatoken",
            format!("{}/team", up.host),
            ADMIN,
            ADMIN_PASSWORD,
        ),
        create("viabasic", basic.addr.clone(), "puller", "pull-secret-1"),
        create(
            "wrongcreds",
            format!("{}/team", up.host),
            ADMIN,
            "not-the-password",
        ),
    ];
    for (path, body) in &configs {
        let (status, answer) = api(&s, &token, Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {answer}");
        // The credentials are never answered.
        let (_, got) = api(&s, &token, Method::GET, path, None).await;
        assert!(
            !got.to_string().contains("password") && !got.to_string().contains("puller"),
            "{got}"
        );
    }
    // Sealed in the database, not in the clear.
    let row = quayside::db::content::proxy_cache::by_namespace(s.ctx().db.pool(), "viabasic")
        .await
        .unwrap()
        .unwrap();
    assert!(!row.password_sealed.unwrap().contains("pull-secret-1"));

    // Validation tells good credentials from bad ones.
    let (status, body) = api(
        &s,
        &token,
        Method::POST,
        "/organization/viatoken/validateproxycache",
        Some(configs[0].1.clone()),
    )
    .await;
    assert_eq!((status, body), (StatusCode::ACCEPTED, json!("Valid")));
    let (status, body) = api(
        &s,
        &token,
        Method::POST,
        "/organization/wrongcreds/validateproxycache",
        Some(configs[2].1.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error_message"],
        "Failed login to remote registry. Please verify entered details and try again."
    );

    // Token auth with credentials: the upstream namespace is prefixed.
    let work = tempfile::tempdir().unwrap();
    let out = skopeo_pull(&s, "viatoken/app:v1", &work.path().join("token"));
    assert!(
        out.status.success(),
        "token pull: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = get_manifest(&s, "viatoken/app", "v1").await;
    assert_eq!(r.headers()["docker-content-digest"], app.digest.as_str());
    // Basic auth.
    let out = skopeo_pull(&s, "viabasic/tools/cli:v1", &work.path().join("basic"));
    assert!(
        out.status.success(),
        "basic pull: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        get_blob(&s, "viabasic/tools/cli", &oci::sha256(&image.layers[0]))
            .await
            .unwrap(),
        image.layers[0]
    );
    // Wrong credentials: Quay's error, and nothing cached.
    let r = get_manifest(&s, "wrongcreds/app", "v1").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("credentials have insufficient rights"),
        "{body}"
    );
    assert!(!body.to_string().contains("not-the-password"));
}

/// An image of one layer of `layer` random bytes.
fn image_of(layer: usize) -> Image {
    Image::build(vec![oci::random_bytes(layer)], "amd64", false)
}

async fn org_used(s: &TestServer, token: &str) -> i64 {
    let (status, body) = api(s, token, Method::GET, "/organization/proxyorg", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["quota_report"]["quota_bytes"].as_i64().unwrap()
}

async fn live_tags(s: &TestServer, token: &str, repo: &str) -> Vec<String> {
    let path = format!("/repository/proxyorg/{repo}/tag/?onlyActiveTags=true");
    let (status, body) = api(s, token, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A proxy organization with a quota: caching a new image evicts the least recently pulled
/// tags instead of refusing it (Quay's auto-pruning), the usage stays accounted exactly
/// (`quota verify` finds nothing), and an image larger than the whole quota is refused with
/// Quay's message.
async fn quota_evicts_the_least_recently_pulled(b: Backend) {
    let upstream = Distribution::start(None).await;
    let upstream_url = format!("http://{}", upstream.addr);
    let s = TestServer::start_with(
        b,
        Options {
            yaml: format!("FEATURE_QUOTA_MANAGEMENT: true\n{LOOPBACK}"),
            ..Default::default()
        },
    )
    .await;
    let token = s.init_admin().await;
    s.create_org(&token, "proxyorg").await;
    let request =
        json!({"upstream_registry": upstream.addr, "insecure": true, "expiration_s": 86400});
    let (status, _) = api(
        &s,
        &token,
        Method::POST,
        "/organization/proxyorg/proxycache",
        Some(request),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = api(
        &s,
        &token,
        Method::POST,
        "/organization/proxyorg/quota",
        Some(json!({"limit_bytes": 100_000})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    const LAYER: usize = 40_000;
    let images: Vec<(&str, Image)> = ["a", "b", "c"]
        .into_iter()
        .map(|n| (n, image_of(LAYER)))
        .collect();
    for (name, image) in &images {
        push_upstream(&upstream_url, None, name, "1", image).await;
    }
    let big = image_of(120_000);
    push_upstream(&upstream_url, None, "big", "1", &big).await;

    let work = tempfile::tempdir().unwrap();
    let pull = |s: &TestServer, repo_tag: &str, dest: &str| {
        let out = skopeo_pull(s, repo_tag, &work.path().join(dest));
        assert!(
            out.status.success(),
            "pull {repo_tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // a, then b; then a again, so b is the least recently pulled.
    pull(&s, "proxyorg/a:1", "a1");
    s.clock.advance_ms(60_000);
    pull(&s, "proxyorg/b:1", "b1");
    s.clock.advance_ms(60_000);
    pull(&s, "proxyorg/a:1", "a2");
    s.clock.advance_ms(60_000);
    let config = images[0].1.config.len() as i64;
    let both = org_used(&s, &token).await;
    assert!(
        both >= 2 * LAYER as i64 && both <= 2 * (LAYER as i64 + config) + 2_000,
        "a and b are accounted as their blobs arrived: {both}"
    );
    verify_clean(&s).await;

    // c does not fit beside both: b goes, a stays, c is cached.
    pull(&s, "proxyorg/c:1", "c1");
    assert_eq!(
        live_tags(&s, &token, "b").await,
        Vec::<String>::new(),
        "b evicted"
    );
    assert_eq!(
        live_tags(&s, &token, "a").await,
        vec!["1".to_owned()],
        "a kept"
    );
    assert_eq!(live_tags(&s, &token, "c").await, vec!["1".to_owned()]);
    let after = org_used(&s, &token).await;
    assert!(after <= 100_000, "within the quota after eviction: {after}");
    assert!(after >= 2 * LAYER as i64, "a and c are counted: {after}");
    verify_clean(&s).await;
    let metrics = s
        .anonymous()
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("quayside_proxy_cache_evictions_total 1"),
        "{metrics}"
    );

    // An evicted image is pulled through again on demand (evicting the now oldest, a).
    pull(&s, "proxyorg/b:1", "b2");
    assert_eq!(
        live_tags(&s, &token, "a").await,
        Vec::<String>::new(),
        "a evicted"
    );
    verify_clean(&s).await;

    // Larger than the whole quota: refused with Quay's message, nothing evicted.
    let r = get_manifest(&s, "proxyorg/big", "1").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_code(&body), "DENIED");
    assert!(
        body.to_string()
            .contains("Quota has been exceeded on namespace"),
        "{body}"
    );
    assert_eq!(live_tags(&s, &token, "c").await, vec!["1".to_owned()]);
    assert_eq!(live_tags(&s, &token, "b").await, vec!["1".to_owned()]);
    verify_clean(&s).await;
}

async fn verify_clean(s: &TestServer) {
    let report = quayside::service::content::quota::verify(s.ctx(), false)
        .await
        .unwrap();
    assert!(
        report.is_clean(),
        "quota verify found differences: {report:?}"
    );
}

/// Without `SSRF_ALLOWED_HOSTS`, loopback upstreams (by address or by a name that resolves to
/// one) are refused when configured and validated, and a stored one is refused at pull time
/// before any request leaves. Listing the address lets the same configuration through.
async fn upstreams_pass_the_ssrf_guard(b: Backend) {
    let upstream = Distribution::start(None).await;
    let port = upstream.addr.rsplit_once(':').unwrap().1.to_owned();
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    s.create_org(&token, "guarded").await;
    for registry in [upstream.addr.clone(), format!("localhost:{port}")] {
        let request = json!({"upstream_registry": registry, "insecure": true});
        for path in [
            "/organization/guarded/proxycache",
            "/organization/guarded/validateproxycache",
        ] {
            let (status, body) = api(&s, &token, Method::POST, path, Some(request.clone())).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {registry}: {body}");
            let message = body["error_message"].as_str().unwrap_or_default();
            assert!(
                message.starts_with("upstream_registry refused:")
                    && message.contains("non-public address"),
                "{path} {registry}: {body}"
            );
        }
    }
    // A configuration stored without the check (as before the guard existed) is refused at
    // pull time, before any request is sent.
    let namespace_id = quayside::db::tenancy::namespaces::by_name(s.ctx().db.pool(), "guarded")
        .await
        .unwrap()
        .unwrap()
        .id;
    quayside::db::content::proxy_cache::insert(
        s.ctx().db.pool(),
        &quayside::db::content::proxy_cache::ProxyCacheRow {
            namespace_id,
            upstream_registry: upstream.addr.clone(),
            username_sealed: None,
            password_sealed: None,
            insecure: true,
            expiration_s: 86400,
            created_ms: 0,
        },
    )
    .await
    .unwrap();
    let image = Image::random(1);
    push_upstream(
        &format!("http://{}", upstream.addr),
        None,
        "library/hello",
        "v1",
        &image,
    )
    .await;
    let r = get_manifest(&s, "guarded/library/hello", "v1").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(s.ctx().proxy.upstream_requests.load(Ordering::Relaxed), 0);

    // Allowed by address: the same upstream is accepted and pulled through.
    let s = loopback_server(b).await;
    let token = s.init_admin().await;
    s.create_org(&token, "allowed").await;
    let request = json!({"upstream_registry": upstream.addr, "insecure": true});
    let (status, body) = api(
        &s,
        &token,
        Method::POST,
        "/organization/allowed/proxycache",
        Some(request),
    )
    .await;
    assert_eq!((status, body), (StatusCode::CREATED, json!("Created")));
    let r = get_manifest(&s, "allowed/library/hello", "v1").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["docker-content-digest"], image.digest.as_str());
}

/// A second `quayside serve` on the same database and storage is stopped for good once it has
/// staged a fetched blob's bytes (before recording the blob), then killed with SIGKILL: the
/// blob is not visible, the next pull (another process) fetches and serves it whole, and the
/// `uploads` worker deletes the abandoned staging object once it is older than the upload
/// expiration.
async fn a_fetch_killed_after_staging_leaves_nothing_visible(b: Backend) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let upstream = Distribution::start(None).await;
    let s = loopback_server(b).await;
    let token = s.init_admin().await;
    s.create_org(&token, "proxyorg").await;
    let request = json!({"upstream_registry": upstream.addr, "insecure": true});
    let (status, _) = api(
        &s,
        &token,
        Method::POST,
        "/organization/proxyorg/proxycache",
        Some(request),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let image = Image::build(vec![oci::random_bytes(1 << 20)], "amd64", false);
    push_upstream(
        &format!("http://{}", upstream.addr),
        None,
        "library/crash",
        "v1",
        &image,
    )
    .await;
    let r = get_manifest(&s, "proxyorg/library/crash", "v1").await;
    assert_eq!(r.status(), StatusCode::OK);
    let layer = oci::sha256(&image.layers[0]);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_quayside"))
        .arg("serve")
        .arg("--config")
        .arg(s.config_path())
        .arg("--data-dir")
        .arg(s.data_dir())
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--no-workers")
        .env("QUAYSIDE_TEST_PAUSE_AT", "proxy_cache.blob_staged")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn quayside serve");
    let stderr = child.stderr.take().expect("stderr");
    let (paused_tx, paused_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if line.contains("paused at proxy_cache.blob_staged") {
                let _ = paused_tx.send(());
            }
        }
    });
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{base}/health/instance")).send().await
            && r.status().is_success()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the second server starts");
    let pull = tokio::spawn({
        let url = format!("{base}/v2/proxyorg/library/crash/blobs/{layer}");
        async move {
            let r = reqwest::Client::new()
                .get(url)
                .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if r.status() != StatusCode::OK {
                return Err(format!("status {}", r.status()));
            }
            r.bytes().await.map(|b| b.len()).map_err(|e| e.to_string())
        }
    });
    tokio::task::spawn_blocking(move || paused_rx.recv_timeout(Duration::from_secs(60)))
        .await
        .unwrap()
        .expect("the fetch reaches the staging point");
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    let cut = pull.await.unwrap();
    assert!(
        cut.as_ref().map_or(true, |n| *n < image.layers[0].len()),
        "the killed server's client never got the whole blob as an answer: {cut:?}"
    );

    // Nothing visible: no row, no bytes at the digest's key; the staged bytes lie under uploads/.
    assert!(!stored(&s, &layer).await, "no blob row");
    assert!(!s.blob_path(&layer).exists(), "no bytes at the blob's key");
    let staging = |s: &TestServer| -> Vec<std::path::PathBuf> {
        let dir = s.data_dir().join("blobs").join("uploads");
        let mut found = Vec::new();
        for upload in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(upload.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                found.push(f.path());
            }
        }
        found
    };
    let left = staging(&s);
    assert_eq!(
        left.len(),
        1,
        "one staging object left by the crash: {left:?}"
    );
    assert_eq!(
        std::fs::metadata(&left[0]).unwrap().len(),
        image.layers[0].len() as u64
    );

    // The next pull fetches again and serves the verified bytes.
    assert_eq!(
        get_blob(&s, "proxyorg/library/crash", &layer)
            .await
            .unwrap(),
        image.layers[0]
    );
    assert!(stored(&s, &layer).await);
    assert!(s.blob_path(&layer).exists());

    // The abandoned staging object goes once older than the upload expiration (not before).
    quayside::workers::run_once(s.ctx(), "uploads")
        .await
        .unwrap();
    assert_eq!(staging(&s), left, "kept while it may still be recorded");
    s.clock.advance_ms(2 * 3_600_000);
    quayside::workers::run_once(s.ctx(), "uploads")
        .await
        .unwrap();
    assert!(staging(&s).is_empty(), "{:?}", staging(&s));
    assert_eq!(
        get_blob(&s, "proxyorg/library/crash", &layer)
            .await
            .unwrap(),
        image.layers[0]
    );
}
