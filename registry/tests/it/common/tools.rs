//! External programs the tests drive: real registry clients and an S3 server.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Finds a program on PATH or fails the test saying how to install it.
#[track_caller]
pub fn require(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{program} is not installed; the test suite needs it (`.ci/run` installs it with apt-get or pip)"
    );
}

/// Runs a command and fails the test with its output unless it succeeds.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command expected to fail; returns its combined output.
#[track_caller]
pub fn run_fail(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "{cmd:?} unexpectedly succeeded: {text}"
    );
    text
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A moto S3 server on a loopback port, killed on drop.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
    pub port: u16,
}

impl S3Server {
    pub async fn start() -> S3Server {
        let python = require("python3");
        let port = free_port();
        let child = Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto (pip install 'moto[server]')");
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if client.get(&endpoint).send().await.is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto S3 server did not start on {endpoint}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        S3Server {
            child,
            endpoint,
            port,
        }
    }

    /// Creates a bucket (moto accepts unsigned requests).
    pub async fn create_bucket(&self, name: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .expect("create bucket");
        assert!(r.status().is_success(), "create bucket: {}", r.status());
    }

    /// A Quay `DISTRIBUTED_STORAGE_CONFIG` block for this server.
    pub fn storage_yaml(&self, bucket: &str) -> String {
        format!(
            "DISTRIBUTED_STORAGE_CONFIG:\n  default:\n    - S3Storage\n    - host: 127.0.0.1\n      port: {}\n      is_secure: false\n      s3_bucket: {bucket}\n      s3_access_key: testing\n      s3_secret_key: testing\n      storage_path: /datastorage/registry\nDISTRIBUTED_STORAGE_PREFERENCE: [default]\n",
            self.port
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
