//! The container images (`scripts/build-images.sh`): built twice from the same (debug) binaries
//! they have the same digests; pushed into a running Quayside (the project hosting its own
//! images) they keep them; `skopeo inspect` shows the OCI labels; and the registry image runs the
//! way its configuration says (Entrypoint + Cmd, User, Env from the image config, plus the env a
//! pod would add) from its own filesystem, extracted from the pulled layers, under `chroot` as
//! the image's non-root user. Needs root (chroot), buildah and skopeo.
//!
//! Debug binaries keep this cheap enough for CI; release images are built the same way
//! (`scripts/build-images.sh` without `--profile debug`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::tools::{free_port, require, run_ok};
use crate::common::{ADMIN, ADMIN_PASSWORD, Backend, TestServer};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Runs the script; returns `(name, digest)` per image.
fn build(bin_dir: &Path, out: &Path, push: Option<&str>) -> Vec<(String, String)> {
    let mut cmd = Command::new(workspace().join("scripts/build-images.sh"));
    cmd.current_dir(workspace())
        .args(["--profile", "debug", "--bin-dir"])
        .arg(bin_dir)
        .arg("--out")
        .arg(out);
    if let Some(dest) = push {
        cmd.args([
            "--push",
            dest,
            "--creds",
            &format!("{ADMIN}:{ADMIN_PASSWORD}"),
        ])
        .arg("--tls-verify=false");
    }
    let stdout = String::from_utf8(run_ok(&mut cmd).stdout).unwrap();
    stdout
        .lines()
        .filter(|l| !l.starts_with("pushed "))
        .map(|l| {
            let (name, digest) = l.split_once(' ').unwrap();
            (
                name.split(':').next().unwrap().to_owned(),
                digest.to_owned(),
            )
        })
        .collect()
}

fn skopeo_json(args: &[&str]) -> Value {
    let out = run_ok(Command::new("skopeo").args(args));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_reproducible_hosted_and_run_from_their_config() {
    require("buildah");
    require("skopeo");
    let uid = run_ok(Command::new("id").arg("-u")).stdout;
    assert_eq!(
        String::from_utf8_lossy(&uid).trim(),
        "0",
        "building images with vfs storage and running one under chroot needs root"
    );
    // The operator binary next to this package's (the workspace's target directory).
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_quayside"))
        .parent()
        .unwrap()
        .to_owned();
    run_ok(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(workspace())
            .args([
                "build",
                "-p",
                "quayside-operator",
                "--bin",
                "quayside-operator",
            ]),
    );

    let s = TestServer::start(Backend::Sqlite).await;
    s.init_admin().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = format!("{}/{ADMIN}", s.host);
    let first = build(&bin_dir, &dir.path().join("a"), Some(&dest));
    let second = build(&bin_dir, &dir.path().join("b"), None);
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(first, second, "the same input builds the same digests");

    let version = env!("CARGO_PKG_VERSION");
    let revision = String::from_utf8(
        run_ok(
            Command::new("git")
                .current_dir(workspace())
                .args(["rev-parse", "HEAD"]),
        )
        .stdout,
    )
    .unwrap();
    let creds = format!("{ADMIN}:{ADMIN_PASSWORD}");
    for (name, digest) in &first {
        let reference = format!("docker://{dest}/{name}:{version}");
        let inspected = skopeo_json(&[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &creds,
            &reference,
        ]);
        assert_eq!(
            inspected["Digest"],
            digest.as_str(),
            "{name}: the pushed image keeps its digest"
        );
        let labels = &inspected["Labels"];
        assert_eq!(labels["org.opencontainers.image.version"], version);
        assert!(
            labels["org.opencontainers.image.revision"]
                .as_str()
                .unwrap()
                .starts_with(revision.trim()),
            "{labels}"
        );
        assert!(labels["org.opencontainers.image.source"].is_string());
        let raw = skopeo_json(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &creds,
            &reference,
        ]);
        assert_eq!(
            raw["annotations"]["org.opencontainers.image.version"], version,
            "OCI annotations on the manifest"
        );
        assert_eq!(raw["layers"].as_array().unwrap().len(), 1, "one layer");
    }

    // Pull the registry image back and run it as its config says.
    let pulled = dir.path().join("pulled");
    run_ok(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &format!("docker://{dest}/quayside:{version}"),
        &format!("dir:{}", pulled.display()),
    ]));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(pulled.join("manifest.json")).unwrap()).unwrap();
    let blob = |d: &Value| pulled.join(d["digest"].as_str().unwrap().split_once(':').unwrap().1);
    let config: Value =
        serde_json::from_slice(&std::fs::read(blob(&manifest["config"])).unwrap()).unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let gz = layer["mediaType"].as_str().unwrap().ends_with("gzip");
        run_ok(
            Command::new("tar")
                .arg(if gz { "-xzpf" } else { "-xpf" })
                .arg(blob(layer))
                .arg("-C")
                .arg(&rootfs),
        );
    }
    let c = &config["config"];
    let argv: Vec<String> = c["Entrypoint"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(c["Cmd"].as_array().into_iter().flatten())
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(argv, ["/usr/bin/quayside", "serve"]);
    let user = c["User"].as_str().unwrap();
    assert_ne!(user.split(':').next(), Some("0"), "a non-root user");
    let port = free_port();
    let mut run = Command::new(require("chroot"));
    run.arg(format!("--userspec={user}"))
        .arg(&rootfs)
        .args(&argv)
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for e in c["Env"].as_array().unwrap() {
        let (k, v) = e.as_str().unwrap().split_once('=').unwrap();
        run.env(k, v);
    }
    // What the pod adds: the address to listen on (loopback here).
    run.env("QUAYSIDE_LISTEN", format!("127.0.0.1:{port}"));
    let mut child = run.spawn().unwrap();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let healthy = loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/health/instance"))
            .send()
            .await
            && r.status() == StatusCode::OK
        {
            break true;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        healthy,
        "the image's entrypoint did not serve: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It wrote its data where its env says, as its user.
    use std::os::unix::fs::MetadataExt;
    let data_dir = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| e.as_str().unwrap().strip_prefix("QUAYSIDE_DATA_DIR="))
        .unwrap();
    let db = rootfs
        .join(data_dir.trim_start_matches('/'))
        .join("quayside.db");
    let meta = std::fs::metadata(&db).unwrap();
    assert_eq!(meta.uid().to_string(), user.split(':').next().unwrap());

    // The operator image starts too (its own libraries only): `--help` needs no cluster.
    let op = skopeo_json(&[
        "inspect",
        "--config",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{dest}/quayside-operator:{version}"),
    ]);
    assert_eq!(op["config"]["Entrypoint"][0], "/usr/bin/quayside-operator");
    assert_ne!(op["config"]["User"], "0");
}
