//! Real clients no one here wrote: skopeo, buildah and podman push to and pull from the
//! registry, and the digests they report match what the registry serves.

use std::path::Path;
use std::process::Command;

use reqwest::Method;
use serde_json::Value;

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::tools::*;
use crate::common::*;

backend_tests!(
    skopeo_copies_images_and_multi_arch_indexes,
    buildah_builds_from_scratch_and_pushes,
    podman_logs_in_pushes_and_pulls
);

/// A client command with private storage and auth file under `root`.
fn tool(program: &str, root: &Path) -> Command {
    let mut cmd = Command::new(require(program));
    cmd.env("REGISTRY_AUTH_FILE", root.join("auth.json"));
    if program != "skopeo" {
        cmd.args(["--root"])
            .arg(root.join("storage"))
            .args(["--runroot"])
            .arg(root.join("run"));
        cmd.args(["--storage-driver", "vfs"]);
        if program == "podman" {
            cmd.args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"]);
        }
    }
    cmd
}

async fn registry_digest(s: &TestServer, repo: &str, reference: &str, accept: &str) -> String {
    let r = s
        .as_admin()
        .request(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
        .header("Accept", accept)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "{repo}:{reference}: {}",
        r.status()
    );
    r.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn skopeo_copies_images_and_multi_arch_indexes(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let single = runnable_image("amd64", &[("hello", b"hello from skopeo")]);
    let amd = runnable_image("amd64", &[("arch", b"amd64")]);
    let arm = runnable_image("arm64", &[("arch", b"arm64")]);
    let idx = index(&[(&amd, "amd64"), (&arm, "arm64")], false);
    write_layout(
        &layout,
        &[("v1", &single), ("", &amd), ("", &arm)],
        Some(("multi", &idx)),
    );
    let creds = format!("{ADMIN}:{ADMIN_PASSWORD}");
    let layout_ref = |tag: &str| format!("oci:{}:{tag}", layout.display());

    // Push one image and check the registry holds exactly those bytes.
    run_ok(tool("skopeo", work.path()).args([
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &layout_ref("v1"),
        &format!("docker://{}/admin/skopeo:v1", s.host),
    ]));
    assert_eq!(
        registry_digest(&s, "admin/skopeo", "v1", OCI_MANIFEST).await,
        single.digest
    );

    // Push the multi-arch index with --all; the index and both children arrive unchanged.
    run_ok(tool("skopeo", work.path()).args([
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &layout_ref("multi"),
        &format!("docker://{}/admin/skopeo:multi", s.host),
    ]));
    assert_eq!(
        registry_digest(&s, "admin/skopeo", "multi", OCI_INDEX).await,
        sha256(&idx)
    );
    assert_eq!(
        registry_digest(&s, "admin/skopeo", &arm.digest, OCI_MANIFEST).await,
        arm.digest
    );

    // Pull both back into a fresh layout and compare digests.
    let pulled = work.path().join("pulled");
    let pulled_ref = |tag: &str| format!("oci:{}:{tag}", pulled.display());
    run_ok(tool("skopeo", work.path()).args([
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &format!("docker://{}/admin/skopeo:multi", s.host),
        &pulled_ref("multi"),
    ]));
    run_ok(tool("skopeo", work.path()).args([
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &format!("docker://{}/admin/skopeo:v1", s.host),
        &pulled_ref("v1"),
    ]));
    let index_json: Value =
        serde_json::from_slice(&std::fs::read(pulled.join("index.json")).unwrap()).unwrap();
    let digests: Vec<&str> = index_json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert!(
        digests.contains(&sha256(&idx).as_str()) && digests.contains(&single.digest.as_str()),
        "{digests:?}"
    );
    for layer in single
        .layers
        .iter()
        .chain(amd.layers.iter())
        .chain(arm.layers.iter())
    {
        let d = sha256(layer);
        let stored = std::fs::read(
            pulled
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap();
        assert_eq!(sha256(&stored), d);
    }
    // skopeo sees the tags.
    let out = run_ok(tool("skopeo", work.path()).args([
        "list-tags",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{}/admin/skopeo", s.host),
    ]));
    let tags: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["multi", "v1"]));
    // Wrong credentials are refused with the registry's message.
    let text = run_fail(tool("skopeo", work.path()).args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        "admin:wrong",
        &format!("docker://{}/admin/skopeo:v1", s.host),
    ]));
    assert!(
        text.contains("401") || text.to_lowercase().contains("unauthorized"),
        "{text}"
    );
}

async fn buildah_builds_from_scratch_and_pushes(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let work = tempfile::tempdir().unwrap();
    let context = work.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("message.txt"), "built by buildah").unwrap();
    std::fs::write(
        context.join("Containerfile"),
        "FROM scratch\nCOPY message.txt /message.txt\nLABEL org.example.test=yes\n",
    )
    .unwrap();
    let image = format!("{}/admin/built:v1", s.host);
    run_ok(tool("buildah", work.path()).args([
        "login",
        "--tls-verify=false",
        "-u",
        ADMIN,
        "-p",
        ADMIN_PASSWORD,
        &s.host,
    ]));
    run_ok(
        tool("buildah", work.path())
            .args(["build", "--isolation", "chroot", "-t", &image])
            .arg(&context),
    );
    let digest_file = work.path().join("digest");
    run_ok(
        tool("buildah", work.path())
            .args(["push", "--tls-verify=false", "--digestfile"])
            .arg(&digest_file)
            .arg(&image),
    );
    let pushed = std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_owned();
    let served = registry_digest(&s, "admin/built", "v1", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json").await;
    assert_eq!(served, pushed);
    // The layer holds the file.
    let manifest: Value = s
        .as_admin()
        .send(Method::GET, "/v2/admin/built/manifests/v1")
        .await
        .json()
        .await
        .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let bytes = s
        .as_admin()
        .send(Method::GET, &format!("/v2/admin/built/blobs/{layer}"))
        .await
        .bytes()
        .await
        .unwrap();
    let tar = Command::new("tar")
        .args(["-xzO", "-f", "-", "message.txt"])
        .stdin_bytes_output(&bytes);
    assert_eq!(tar, b"built by buildah");
}

async fn podman_logs_in_pushes_and_pulls(b: Backend) {
    let s = TestServer::start(b).await;
    s.init_admin().await;
    let (alice, alice_pw) = s.user("alice").await;
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let img = runnable_image("amd64", &[("hello", b"hello from podman")]);
    write_layout(&layout, &[("v1", &img)], None);
    // A relative path: podman names the image after it, and temp dirs have upper-case letters.
    let source = "oci:layout:v1";
    let text = run_fail(tool("podman", work.path()).args([
        "login",
        "--tls-verify=false",
        "-u",
        &alice,
        "-p",
        "wrong-password",
        &s.host,
    ]));
    assert!(text.contains("invalid username/password"), "{text}");
    run_ok(tool("podman", work.path()).args([
        "login",
        "--tls-verify=false",
        "-u",
        &alice,
        "-p",
        &alice_pw,
        &s.host,
    ]));
    let target = format!("{}/alice/hello:v1", s.host);
    run_ok(
        tool("podman", work.path())
            .args(["pull", source])
            .current_dir(work.path()),
    );
    let out =
        run_ok(tool("podman", work.path()).args(["images", "--format", "{{.Id}}", "--noheading"]));
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_owned();
    run_ok(tool("podman", work.path()).args(["tag", &id, &target]));
    let digest_file = work.path().join("digest");
    run_ok(
        tool("podman", work.path())
            .args(["push", "--tls-verify=false", "--digestfile"])
            .arg(&digest_file)
            .arg(&target),
    );
    let pushed = std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(registry_digest(&s, "alice/hello", "v1", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json").await, pushed);

    // A fresh store pulls it back by tag and by digest.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::copy(
        work.path().join("auth.json"),
        fresh.path().join("auth.json"),
    )
    .unwrap();
    run_ok(tool("podman", fresh.path()).args(["pull", "--tls-verify=false", &target]));
    run_ok(tool("podman", fresh.path()).args([
        "pull",
        "--tls-verify=false",
        &format!("{}/alice/hello@{pushed}", s.host),
    ]));
    let out = run_ok(tool("podman", fresh.path()).args([
        "image",
        "inspect",
        "--format",
        "{{.Digest}}",
        &target,
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pushed);
    // Another user cannot pull Alice's private image.
    let (bob, bob_pw) = s.user("bob").await;
    let other = tempfile::tempdir().unwrap();
    run_ok(tool("podman", other.path()).args([
        "login",
        "--tls-verify=false",
        "-u",
        &bob,
        "-p",
        &bob_pw,
        &s.host,
    ]));
    let text = run_fail(tool("podman", other.path()).args(["pull", "--tls-verify=false", &target]));
    assert!(
        text.contains("unauthorized") || text.contains("denied"),
        "{text}"
    );
}

trait StdinOutput {
    fn stdin_bytes_output(&mut self, input: &[u8]) -> Vec<u8>;
}

impl StdinOutput for Command {
    fn stdin_bytes_output(&mut self, input: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut child = self
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        out.stdout
    }
}
