//! Security scanning (issue 19): images built here with real package metadata (this machine's
//! own dpkg database and os-release, an Alpine `installed` file, Python `.dist-info`
//! directories, an npm tree), OSV fixtures written from real advisories (real ids, ranges and
//! fixed versions) and imported with `quayside scanner import`, the `scanner` worker's pass, and
//! Quay's security endpoint. Also: a later layer's whiteout removes a package, a database
//! update adds a vulnerability and queues `vulnerability_found`, and hostile or broken layers
//! end `failed` with a reason.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::tools::run_ok;
use crate::common::{Backend, Options, TestServer};

backend_tests!(scans_real_package_metadata_and_raises_vulnerability_found);

/// A gzipped tar of `files` (parents created), made with the system `tar`.
fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    for (name, content) in files {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let out = dir.path().join("l.tar.gz");
    run_ok(
        Command::new("tar")
            .args([
                "--sort=name",
                "--mtime=2024-01-01",
                "--owner=0",
                "--group=0",
                "-czf",
            ])
            .arg(&out)
            .arg("-C")
            .arg(&root)
            .arg("."),
    );
    std::fs::read(out).unwrap()
}

/// A ustar header (for hand-made hostile archives).
fn header(name: &str, size: usize) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const APK: &[u8] = b"C:Q1abc=\nP:busybox\nV:1.36.1-r0\nA:x86_64\no:busybox\n\nC:Q1def=\nP:zlib\nV:1.3.1-r0\nA:x86_64\no:zlib\n";

fn metadata(name: &str, version: &str) -> Vec<u8> {
    format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: x\n\n").into_bytes()
}

/// Real advisories, as OSV publishes them (ids, packages, ranges, fixed versions, CVSS).
fn osv_initial() -> Vec<(&'static str, Value)> {
    vec![
        (
            "GHSA-35jh-r3h4-6jhm.json",
            json!({
                "id": "GHSA-35jh-r3h4-6jhm", "modified": "2024-03-12T00:00:00Z",
                "aliases": ["CVE-2021-23337"],
                "summary": "Command Injection in lodash",
                "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"}],
                "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
                    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]}],
                "references": [{"type": "ADVISORY", "url": "https://nvd.nist.gov/vuln/detail/CVE-2021-23337"}],
                "database_specific": {"severity": "HIGH"}
            }),
        ),
        (
            "GHSA-9wx4-h78v-vm56.json",
            json!({
                "id": "GHSA-9wx4-h78v-vm56", "modified": "2024-06-10T00:00:00Z",
                "aliases": ["CVE-2024-35195"],
                "summary": "Requests `Session` object does not verify requests after making first request with verify=False",
                "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N"}],
                "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.32.0"}]}]}],
                "references": [{"type": "ADVISORY", "url": "https://nvd.nist.gov/vuln/detail/CVE-2024-35195"}],
                "database_specific": {"severity": "MODERATE"}
            }),
        ),
        // Alpine's entry for the busybox netstat overflow: fixed in 1.36.1-r1 on v3.18.
        (
            "ALPINE-CVE-2022-48174.json",
            json!({
                "id": "CVE-2022-48174", "modified": "2024-01-01T00:00:00Z",
                "details": "There is a stack overflow vulnerability in ash.c:6030 in busybox before 1.35.",
                "affected": [{"package": {"ecosystem": "Alpine:v3.18", "name": "busybox"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.36.1-r1"}]}]}],
                "references": [{"type": "ADVISORY", "url": "https://security.alpinelinux.org/vuln/CVE-2022-48174"}],
                "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
            }),
        ),
        // Debian's glibc iconv overflow, fixed in bookworm by DSA-5673-1 (2.36-9+deb12u6): the
        // machine's libc6 is newer, so it must not be reported.
        (
            "DEBIAN-CVE-2024-2961.json",
            json!({
                "id": "CVE-2024-2961", "modified": "2024-05-01T00:00:00Z",
                "details": "The iconv() function in the GNU C Library overflows the output buffer (ISO-2022-CN-EXT).",
                "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u6"}]}]}]
            }),
        ),
    ]
}

fn osv_update() -> Value {
    json!({
        "id": "GHSA-29mw-wpgm-hmr9", "modified": "2024-01-01T00:00:00Z",
        "aliases": ["CVE-2020-28500"],
        "summary": "Regular Expression Denial of Service (ReDoS) in lodash",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}],
        "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "4.0.0"}, {"fixed": "4.17.21"}]}]}],
        "database_specific": {"severity": "MODERATE"}
    })
}

async fn push(s: &TestServer, repo: &str, tag: &str, layers: Vec<Vec<u8>>) -> String {
    let image = Image::build(layers, "amd64", false);
    let api = s.as_admin();
    for b in image.blobs() {
        api.push_blob(repo, b).await;
    }
    let r = api
        .put_manifest(repo, tag, image.media_type, &image.manifest)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    image.digest
}

async fn security(s: &TestServer, token: &str, repo: &str, digest: &str, vulns: bool) -> Value {
    let (status, body) = s
        .call(
            Some(token),
            Method::GET,
            &format!("/repository/{repo}/manifest/{digest}/security?vulnerabilities={vulns}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn scan(s: &TestServer) -> String {
    quayside::workers::run_once(s.ctx(), "scanner")
        .await
        .unwrap()
}

fn import(s: &TestServer, path: &std::path::Path) {
    let out = run_ok(
        Command::new(env!("CARGO_BIN_EXE_quayside"))
            .args(["scanner", "import", "--config"])
            .arg(s.config_path())
            .arg("--data-dir")
            .arg(s.data_dir())
            .arg(path),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported"));
}

async fn deliveries(s: &TestServer) -> Vec<Value> {
    let rows = sqlx::query(
        "SELECT d.event_data FROM notification_delivery d JOIN repo_notification n \
         ON n.id = d.notification_id WHERE n.event = 'vulnerability_found' ORDER BY d.id",
    )
    .fetch_all(s.ctx().db.pool())
    .await
    .unwrap();
    rows.iter()
        .map(|r| serde_json::from_str(&r.get::<String, _>("event_data")).unwrap())
        .collect()
}

fn features(report: &Value) -> Vec<(String, String, String)> {
    report["data"]["Layer"]["Features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["VersionFormat"].as_str().unwrap().to_owned(),
                f["Name"].as_str().unwrap().to_owned(),
                f["Version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn scans_real_package_metadata_and_raises_vulnerability_found(b: Backend) {
    let s = TestServer::start_with(
        b,
        Options {
            yaml: "FEATURE_SECURITY_SCANNER: true\n".into(),
            ..Default::default()
        },
    )
    .await;
    let token = s.init_admin().await;
    let repo = "admin/scanned";

    // The image: this machine's dpkg database and os-release, an Alpine database, Python
    // distributions (urllib3 removed again by the second layer), an npm tree.
    let status = std::fs::read("/var/lib/dpkg/status").unwrap();
    let os_release = std::fs::read("/etc/os-release").unwrap();
    let base = layer(&[
        ("etc/os-release", &os_release),
        ("var/lib/dpkg/status", &status),
        ("lib/apk/db/installed", APK),
        (
            "usr/lib/python3/site-packages/requests-2.31.0.dist-info/METADATA",
            &metadata("requests", "2.31.0"),
        ),
        (
            "usr/lib/python3/site-packages/urllib3-2.0.7.dist-info/METADATA",
            &metadata("urllib3", "2.0.7"),
        ),
        (
            "app/node_modules/lodash/package.json",
            br#"{"name":"lodash","version":"4.17.20"}"#,
        ),
        (
            "app/node_modules/lodash/fp/package.json",
            br#"{"main":"../fp.js"}"#,
        ),
    ]);
    let upper = layer(&[(
        "usr/lib/python3/site-packages/.wh.urllib3-2.0.7.dist-info",
        b"",
    )]);
    let digest = push(&s, repo, "v1", vec![base.clone(), upper.clone()]).await;

    // A notification at Medium (Quay's level index 3) before the first scan.
    let (st, body) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/repository/{repo}/notification/"),
            Some(json!({"event": "vulnerability_found", "method": "quay_notification",
                "config": {"target": {"name": "admin", "kind": "user"}}, "eventConfig": {"level": 3}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");

    // Queued on push, as Quay answers before indexing.
    assert_eq!(
        security(&s, &token, repo, &digest, true).await,
        json!({"status": "queued", "data": null})
    );

    let dir = tempfile::tempdir().unwrap();
    let osv = dir.path().join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    for (name, doc) in osv_initial() {
        std::fs::write(osv.join(name), doc.to_string()).unwrap();
    }
    import(&s, &osv);
    let summary = scan(&s).await;
    assert!(summary.contains("scanned 1 manifests"), "{summary}");

    let report = security(&s, &token, repo, &digest, true).await;
    assert_eq!(report["status"], "scanned");
    let layer_view = &report["data"]["Layer"];
    assert_eq!(layer_view["Name"], digest);
    assert_eq!(layer_view["NamespaceName"], "debian:12");
    let got: BTreeSet<_> = features(&report).into_iter().collect();
    // Exactly dpkg's own view of the installed packages, plus the others.
    let listed = run_ok(Command::new("dpkg-query").args([
        "-W",
        "-f",
        "${db:Status-Status} ${Package} ${Version}\n",
    ]));
    let mut expected: BTreeSet<(String, String, String)> = String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("installed "))
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            ("dpkg".into(), n.into(), v.into())
        })
        .collect();
    assert!(expected.len() > 50, "the machine's dpkg database");
    for (f, n, v) in [
        ("apk", "busybox", "1.36.1-r0"),
        ("apk", "zlib", "1.3.1-r0"),
        ("python", "requests", "2.31.0"),
        ("npm", "lodash", "4.17.20"),
    ] {
        expected.insert((f.into(), n.into(), v.into()));
    }
    assert_eq!(got, expected);
    // AddedBy names the layer that brought the package.
    let lodash = layer_view["Features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["Name"] == "lodash")
        .unwrap()
        .clone();
    assert_eq!(lodash["AddedBy"], sha256(&base));
    assert_eq!(lodash["BaseScores"], json!([7.2]));

    // Exactly the expected vulnerabilities, with their fixed versions.
    let vulns: BTreeSet<(String, String, String, String)> = layer_view["Features"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| {
            let name = f["Name"].as_str().unwrap().to_owned();
            f["Vulnerabilities"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |v| {
                    (
                        name.clone(),
                        v["Name"].as_str().unwrap().to_owned(),
                        v["FixedBy"].as_str().unwrap().to_owned(),
                        v["Severity"].as_str().unwrap().to_owned(),
                    )
                })
        })
        .collect();
    let want: BTreeSet<(String, String, String, String)> = [
        ("busybox", "CVE-2022-48174", "1.36.1-r1", "Critical"),
        ("lodash", "GHSA-35jh-r3h4-6jhm", "4.17.21", "High"),
        ("requests", "GHSA-9wx4-h78v-vm56", "2.32.0", "Medium"),
    ]
    .iter()
    .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
    .collect();
    // busybox is matched against Alpine v3.18 only when the OS says so; this image's OS is
    // Debian, so the Alpine advisory does not apply.
    let want: BTreeSet<_> = want.into_iter().filter(|v| v.0 != "busybox").collect();
    assert_eq!(vulns, want);
    let v = &lodash["Vulnerabilities"][0];
    for key in [
        "Severity",
        "NamespaceName",
        "Link",
        "FixedBy",
        "Description",
        "Name",
        "Metadata",
    ] {
        assert!(v.get(key).is_some(), "{key} in {v}");
    }
    // Without vulnerabilities, features carry none.
    let light = security(&s, &token, repo, &digest, false).await;
    assert!(
        light["data"]["Layer"]["Features"][0]
            .get("Vulnerabilities")
            .is_none()
    );

    // The first scan announced the worst vulnerability at or above Medium.
    let sent = deliveries(&s).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["vulnerability"]["id"], "GHSA-35jh-r3h4-6jhm");
    assert_eq!(sent[0]["tags"], json!(["v1"]));
    assert_eq!(sent[0]["vulnerability"]["has_fix"], true);

    // A database update: re-matched without re-indexing, a new vulnerability, a new event.
    std::fs::write(dir.path().join("update.json"), osv_update().to_string()).unwrap();
    import(&s, &dir.path().join("update.json"));
    let summary = scan(&s).await;
    assert!(
        summary.contains("scanned 0 manifests") && summary.contains("re-matched 1"),
        "{summary}"
    );
    let sent = deliveries(&s).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1]["vulnerability"]["id"], "GHSA-29mw-wpgm-hmr9");
    assert_eq!(sent[1]["vulnerability"]["priority"], "Medium");
    let report = security(&s, &token, repo, &digest, true).await;
    assert!(report.to_string().contains("GHSA-29mw-wpgm-hmr9"));
    // Nothing changed: no re-match, no event.
    let summary = scan(&s).await;
    assert!(summary.contains("re-matched 0"), "{summary}");

    // An Alpine image: the Alpine advisory applies there.
    let alpine = layer(&[
        ("etc/os-release", b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"Alpine Linux v3.18\"\n"),
        ("lib/apk/db/installed", APK),
    ]);
    let alpine_digest = push(&s, "admin/alpine", "3.18", vec![alpine]).await;
    scan(&s).await;
    let report = security(&s, &token, "admin/alpine", &alpine_digest, true).await;
    assert_eq!(report["data"]["Layer"]["NamespaceName"], "alpine:3.18.4");
    let busybox = report["data"]["Layer"]["Features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["Name"] == "busybox")
        .unwrap()
        .clone();
    assert_eq!(busybox["Vulnerabilities"][0]["Name"], "CVE-2022-48174");
    assert_eq!(busybox["Vulnerabilities"][0]["FixedBy"], "1.36.1-r1");
    assert_eq!(busybox["Vulnerabilities"][0]["Severity"], "Critical");

    // Hostile and broken layers: failed with a reason.
    let mut absolute = header("/etc/passwd", 1);
    absolute.extend_from_slice(&[b'x'; 512]);
    absolute.extend_from_slice(&[0; 1024]);
    let mut dotdot = header("a/../../etc/shadow", 1);
    dotdot.extend_from_slice(&[b'x'; 512]);
    dotdot.extend_from_slice(&[0; 1024]);
    let mut huge = header("././@LongLink", 10 << 20);
    huge[156] = b'L';
    // Fix the checksum after changing the type flag.
    huge[148..156].copy_from_slice(b"        ");
    let sum: u32 = huge.iter().map(|b| *b as u32).sum();
    huge[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    huge.extend_from_slice(&[b'a'; 4096]);
    let full = gzip(&{
        let mut t = header("var/lib/dpkg/status", 100_000);
        t.extend_from_slice(&[b'P'; 100_000]);
        t
    });
    let truncated = full[..full.len() / 2].to_vec();
    let malformed = layer(&[("var/lib/dpkg/status", b"Package: x\nthis is not a field\n")]);
    for (name, bytes, reason) in [
        ("absolute", gzip(&absolute), "absolute path"),
        ("dotdot", gzip(&dotdot), "escaping the root"),
        ("huge", gzip(&huge), "extended header"),
        ("truncated", truncated, "truncated"),
        ("malformed", malformed, "malformed dpkg database"),
    ] {
        let d = push(&s, &format!("admin/{name}"), "v1", vec![bytes]).await;
        scan(&s).await;
        let r = security(&s, &token, &format!("admin/{name}"), &d, true).await;
        assert_eq!(r["status"], "failed", "{name}: {r}");
        assert!(
            r["reason"].as_str().unwrap().contains(reason),
            "{name}: {r}"
        );
    }

    // An index: per platform, as Quay.
    let child = Image::build(
        vec![layer(&[("etc/os-release", &os_release)])],
        "arm64",
        false,
    );
    let api = s.as_admin();
    for b in child.blobs() {
        api.push_blob("admin/multi", b).await;
    }
    api.put_manifest(
        "admin/multi",
        &child.digest,
        child.media_type,
        &child.manifest,
    )
    .await;
    let idx = index(&[(&child, "arm64")], false);
    let r = api.put_manifest("admin/multi", "v1", OCI_INDEX, &idx).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = security(&s, &token, "admin/multi", &sha256(&idx), true).await;
    assert_eq!(r, json!({"status": "unsupported", "data": null}));
    scan(&s).await;
    let r = security(&s, &token, "admin/multi", &child.digest, true).await;
    assert_eq!(r["status"], "scanned");
}
