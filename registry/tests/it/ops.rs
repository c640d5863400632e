//! Operations: health, metrics, TLS, configuration, the command line and graceful shutdown.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::backend_tests;
use crate::common::tools::*;
use crate::common::*;

backend_tests!(
    health_and_metrics,
    tls_from_config_directory_and_public_hostname
);

const BIN: &str = env!("CARGO_BIN_EXE_quayside");

async fn health_and_metrics(b: Backend) {
    let s = TestServer::start(b).await;
    let r = s.anonymous().send(Method::GET, "/health/instance").await;
    assert_eq!(r.status(), StatusCode::OK);
    let health: Value = r.json().await.unwrap();
    assert_eq!(health["status_code"], 200);
    assert_eq!(health["data"]["services"]["database"], true);
    assert_eq!(health["data"]["services"]["storage"], true);

    s.init_admin().await;
    s.as_admin().push_image("admin/m", "v1").await;
    s.anonymous().send(Method::GET, "/v2/").await;
    let text = s
        .anonymous()
        .send(Method::GET, "/metrics")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("quayside_http_requests_total{route=\"v2_manifest\",status=\"201\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("quayside_http_requests_total{route=\"v2_base\",status=\"401\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "quayside_http_request_duration_seconds_bucket{route=\"v2_upload_start\",le=\"+Inf\"}"
        ),
        "{text}"
    );
    assert!(text.contains("quayside_uploads_in_progress 0"));
    let bytes_in: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("quayside_http_request_bytes_total "))
        .and_then(|v| v.parse().ok())
        .expect("bytes in");
    assert!(bytes_in > 2000, "uploaded bytes are counted ({bytes_in})");
}

fn self_signed(host: &str) -> (String, String) {
    let cert =
        rcgen::generate_simple_self_signed(vec![host.to_owned(), "127.0.0.1".to_owned()]).unwrap();
    (cert.cert.pem(), cert.signing_key.serialize_pem())
}

async fn tls_from_config_directory_and_public_hostname(b: Backend) {
    let (cert, key) = self_signed("registry.example.com");
    let options = Options {
        yaml: "SERVER_HOSTNAME: registry.example.com:8443\nPREFERRED_URL_SCHEME: https\n".into(),
        files: vec![("ssl.cert".into(), cert), ("ssl.key".into(), key)],
        ..Default::default()
    };
    let s = TestServer::start_with(b, options).await;
    assert!(s.url.starts_with("https://"));
    let r = s.anonymous().send(Method::GET, "/v2/").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"https://registry.example.com:8443/v2/auth\",service=\"registry.example.com:8443\""
    );
    s.init_admin().await;
    s.as_admin().push_image("admin/tls", "v1").await;
    // Plain HTTP on the TLS port is refused.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/v2/", s.host))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != StatusCode::UNAUTHORIZED);
}

#[test]
fn config_validate_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "SERVER_HOSTNAME: quay.example.com\nDB_URI: postgresql://u:p@db/quay\nSOME_UNKNOWN_KEY: 1\n").unwrap();
    let out = run_ok(Command::new(BIN).args(["config", "validate"]).arg(&good));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("valid") && text.contains("postgres://u:***@db/quay"),
        "{text}"
    );
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "FEATURE_GENERAL_OCI_SUPPORT: sometimes\n").unwrap();
    let text = run_fail(Command::new(BIN).args(["config", "validate"]).arg(&bad));
    assert!(text.contains("FEATURE_GENERAL_OCI_SUPPORT"), "{text}");
    let text = run_fail(
        Command::new(BIN)
            .args(["config", "validate"])
            .arg(dir.path().join("missing.yaml")),
    );
    assert!(text.contains("missing.yaml"), "{text}");
    // A bad value stops `serve` at startup too, naming the key.
    std::fs::write(
        &bad,
        "DISTRIBUTED_STORAGE_CONFIG: {default: [S3Storage, {s3_bucket: b}]}\n",
    )
    .unwrap();
    let text = run_fail(
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&bad),
    );
    assert!(
        text.contains("DISTRIBUTED_STORAGE_CONFIG.default.s3_access_key"),
        "{text}"
    );
}

/// A start whose database or storage does not answer exits with the code naming it
/// (`quayside_client::process`), the dependency's error as its last line: what the operator
/// reads from a crashed container to say which component is down.
#[test]
fn a_start_without_its_database_or_storage_exits_with_the_code_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // A loopback port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let storage = dir.path().join("storage.yaml");
    std::fs::write(
        &storage,
        format!(
            "STORAGE_START_WAIT_SECONDS: 2\nDISTRIBUTED_STORAGE_PREFERENCE: [default]\n\
             DISTRIBUTED_STORAGE_CONFIG:\n  default:\n    - S3Storage\n    - {{host: 127.0.0.1, port: {closed}, is_secure: false, \
             s3_bucket: quay, s3_access_key: a, s3_secret_key: b, storage_path: /r}}\n"
        ),
    )
    .unwrap();
    // A SQLite file under a regular file: it cannot be opened (and fails at once, where an
    // unreachable PostgreSQL is retried for the pool's 30 s acquire timeout).
    let database = dir.path().join("database.yaml");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    std::fs::write(
        &database,
        format!("DB_URI: sqlite://{}/sub/quay.db\n", file.display()),
    )
    .unwrap();
    for (config, code, words) in [
        (
            &storage,
            quayside_client::process::EXIT_STORAGE_UNAVAILABLE,
            format!("cannot reach blob storage (S3 bucket quay at http://127.0.0.1:{closed}"),
        ),
        (
            &database,
            quayside_client::process::EXIT_DATABASE_UNAVAILABLE,
            format!(
                "cannot open the database (DB_URI sqlite://{}",
                file.display()
            ),
        ),
    ] {
        let out = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(config)
            .env("QUAYSIDE_LOG", "error")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ") && last.contains(&words),
            "{stderr}"
        );
    }
}

/// The binary: `admin create-user`, `migrate`, `serve` with the two flags, and SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    run_ok(
        Command::new(BIN)
            .arg("migrate")
            .arg("--data-dir")
            .arg(&data),
    );
    let out = run_ok(
        Command::new(BIN)
            .args([
                "admin",
                "create-user",
                "--username",
                "ops",
                "--password",
                "ops-password1",
                "--superuser",
                "--access-token",
                "--data-dir",
            ])
            .arg(&data),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("created user ops (superuser)"), "{stdout}");
    let token = stdout.lines().last().unwrap().trim().to_owned();
    assert_eq!(token.len(), 40);
    let text = run_fail(
        Command::new(BIN)
            .args([
                "admin",
                "create-user",
                "--username",
                "ops",
                "--password",
                "ops-password1",
                "--data-dir",
            ])
            .arg(&data),
    );
    assert!(text.contains("already exists"), "{text}");

    let port = free_port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .get(format!("{base}/health/instance"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = client
        .get(format!("{base}/v2/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(data.join("quayside.db").exists() && data.join("blobs").exists());

    run_ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("termination signal received"), "{stderr}");
}

/// A slow upload in flight when shutdown starts is allowed to finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_uploads_finish() {
    let mut s = TestServer::start(Backend::Sqlite).await;
    s.init_admin().await;
    let data = crate::common::oci::random_bytes(64 * 1024);
    let digest = crate::common::oci::sha256(&data);
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = data
        .chunks(8 * 1024)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let slow = futures_util::StreamExt::then(futures_util::stream::iter(chunks), |c| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        c
    });
    let request = s
        .as_admin()
        .request(
            Method::POST,
            &format!("/v2/admin/slow/blobs/uploads/?digest={digest}"),
        )
        .body(reqwest::Body::wrap_stream(slow));
    let upload = tokio::spawn(async move { request.send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let blob_path = s.blob_path(&digest);
    s.stop().await;
    assert_eq!(upload.await.unwrap().unwrap(), StatusCode::CREATED);
    assert_eq!(std::fs::read(blob_path).unwrap(), data);
}

/// Starts the binary on a free port and waits for it to be healthy.
async fn spawn_server(
    config: &std::path::Path,
    data: &std::path::Path,
) -> (std::process::Child, String) {
    let port = free_port();
    let child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{base}/health/instance"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, base)
}

/// A server killed (SIGKILL) in the middle of writing a chunk leaves no visible blob, and the
/// upload-cleanup worker removes what the crash left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_upload_leaves_no_partial_blob() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config.yaml");
    // Uploads idle for any time count as abandoned, so the sweep below needs no waiting.
    std::fs::write(&config, "QUAYSIDE_UPLOAD_EXPIRATION_S: 0\n").unwrap();
    run_ok(
        Command::new(BIN)
            .args([
                "admin",
                "create-user",
                "--username",
                "crash",
                "--password",
                "crash-password1",
                "--config",
            ])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data),
    );
    let (mut child, base) = spawn_server(&config, &data).await;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/v2/crash/repo/blobs/uploads/"))
        .basic_auth("crash", Some("crash-password1"))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let blob = crate::common::oci::random_bytes(2_000_000);
    let digest = crate::common::oci::sha256(&blob);

    // Send half of a chunk and keep the connection open while the server writes it.
    let host = base.trim_start_matches("http://").to_owned();
    let auth = format!("Basic {}", base64_encode("crash:crash-password1"));
    let mut stream = std::net::TcpStream::connect(&host).unwrap();
    write!(stream, "PATCH {location} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n", blob.len()).unwrap();
    stream.write_all(&blob[..1_000_000]).unwrap();
    let tmp = data.join("blobs").join("_tmp");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&tmp).unwrap().count() == 0 {
        assert!(Instant::now() < deadline, "the chunk never reached storage");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stream);
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        1,
        "the crash left a partial temporary file"
    );

    // After a restart nothing of the partial chunk is visible.
    let (mut child, base) = spawn_server(&config, &data).await;
    let r = client
        .get(format!("{base}{location}"))
        .basic_auth("crash", Some("crash-password1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["range"], "0-0");
    let r = client
        .head(format!("{base}/v2/crash/repo/blobs/{digest}"))
        .basic_auth("crash", Some("crash-password1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    run_ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    child.wait().unwrap();

    // The cleanup worker removes the abandoned upload and the crash's leftovers.
    let out = run_ok(
        Command::new(BIN)
            .args(["worker", "--only", "uploads", "--once", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed 1 abandoned uploads"));
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The sample configurations under config/registry/ stay valid.
#[test]
fn sample_configurations_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/registry");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let out = run_ok(Command::new(BIN).args(["config", "validate"]).arg(&path));
            assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
            checked += 1;
        }
    }
    assert!(checked >= 3, "found {checked} samples in {}", dir.display());
}
