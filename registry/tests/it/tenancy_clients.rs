//! Real clients against the tenancy model: podman and skopeo log in as a user, as a robot (with
//! its token, and with a federated one-hour token) and with an OAuth token; a robot with `read`
//! on one repository pulls it and is refused on another; anonymous pulls of public repositories
//! work and of private ones are refused. The messages are the seed's.

use std::path::Path;
use std::process::Command;

use quayside::service::Clock;
use reqwest::Method;
use serde_json::json;

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::oidc::{Alg, Issuer};
use crate::common::tools::*;
use crate::common::*;

backend_tests!(podman_and_skopeo_as_users_robots_and_tokens);

/// A client command with private storage and auth file under `root`.
fn tool(program: &str, root: &Path) -> Command {
    let mut cmd = Command::new(require(program));
    cmd.env("REGISTRY_AUTH_FILE", root.join("auth.json"));
    if program == "podman" {
        cmd.args(["--root"])
            .arg(root.join("storage"))
            .args(["--runroot"])
            .arg(root.join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ]);
    }
    cmd
}

fn login(root: &Path, host: &str, user: &str, password: &str) {
    run_ok(tool("podman", root).args([
        "login",
        "--tls-verify=false",
        "-u",
        user,
        "-p",
        password,
        host,
    ]));
}

async fn podman_and_skopeo_as_users_robots_and_tokens(b: Backend) {
    let issuer = Issuer::start().await;
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    s.call(
        Some(&admin),
        Method::POST,
        "/organization/",
        Some(json!({"name": "fedorg", "email": "fed@example.com"})),
    )
    .await;
    // Push two images with skopeo as the admin (user credentials).
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = runnable_image("amd64", &[("hello", b"hello tenancy")]);
    write_layout(&layout, &[("v1", &image)], None);
    for repo in ["allowed", "denied", "public"] {
        run_ok(tool("skopeo", work.path()).args([
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("{ADMIN}:{ADMIN_PASSWORD}"),
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{}/fedorg/{repo}:v1", s.host),
        ]));
    }
    s.api(&admin)
        .change_visibility("fedorg", "public", "public")
        .await
        .unwrap();
    let robot = s
        .api(&admin)
        .create_robot(Some("fedorg"), "robot1", &Default::default())
        .await
        .unwrap();
    let robot_token = robot.token.unwrap();
    s.api(&admin)
        .set_user_permission("fedorg", "allowed", "fedorg+robot1", "read")
        .await
        .unwrap();

    // A robot with read on one repository pulls it and is refused on the other.
    let r = tempfile::tempdir().unwrap();
    login(r.path(), &s.host, "fedorg+robot1", &robot_token);
    run_ok(tool("podman", r.path()).args([
        "pull",
        "--tls-verify=false",
        &format!("{}/fedorg/allowed:v1", s.host),
    ]));
    let text = run_fail(tool("podman", r.path()).args([
        "pull",
        "--tls-verify=false",
        &format!("{}/fedorg/denied:v1", s.host),
    ]));
    assert!(
        text.contains("unauthorized: access to the requested resource is not authorized"),
        "{text}"
    );
    // skopeo with the robot's credentials: same answers.
    run_ok(tool("skopeo", r.path()).args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("fedorg+robot1:{robot_token}"),
        &format!("docker://{}/fedorg/allowed:v1", s.host),
    ]));
    let text = run_fail(tool("skopeo", r.path()).args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("fedorg+robot1:{robot_token}"),
        &format!("docker://{}/fedorg/denied:v1", s.host),
    ]));
    assert!(
        text.contains("unauthorized") || text.contains("denied"),
        "{text}"
    );
    // A wrong robot token: podman's "invalid username/password".
    let text = run_fail(tool("podman", r.path()).args([
        "login",
        "--tls-verify=false",
        "-u",
        "fedorg+robot1",
        "-p",
        "WRONGTOKEN",
        &s.host,
    ]));
    assert!(text.contains("invalid username/password"), "{text}");

    // Keyless: an OIDC ID token is exchanged for a one-hour robot token podman logs in with.
    let subject = "service-account-quaydev";
    s.api(&admin)
        .set_robot_federation(
            Some("fedorg"),
            "robot1",
            &[quayside_client::FederationEntry {
                issuer: issuer.url.clone(),
                subject: subject.into(),
            }],
        )
        .await
        .unwrap();
    let id_token = issuer.id_token(Alg::Rs256, subject, s.clock.now_ms() / 1000);
    let exchanged: serde_json::Value = s
        .client
        .get(format!("{}/oauth2/federation/robot/token", s.url))
        .basic_auth("fedorg+robot1", Some(&id_token))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let quay_token = exchanged["token"].as_str().unwrap();
    let f = tempfile::tempdir().unwrap();
    login(f.path(), &s.host, "fedorg+robot1", quay_token);
    run_ok(tool("podman", f.path()).args([
        "pull",
        "--tls-verify=false",
        &format!("{}/fedorg/allowed:v1", s.host),
    ]));
    let text = run_fail(tool("podman", f.path()).args([
        "pull",
        "--tls-verify=false",
        &format!("{}/fedorg/denied:v1", s.host),
    ]));
    assert!(
        text.contains("unauthorized: access to the requested resource is not authorized"),
        "{text}"
    );

    // An OAuth token ($oauthtoken) with repo:read and repo:write.
    let (_, app) = s
        .call(
            Some(&admin),
            Method::POST,
            "/organization/fedorg/applications",
            Some(json!({"name": "ci"})),
        )
        .await;
    let client_id = app["client_id"].as_str().unwrap();
    let (_, minted) = s
        .call(
            Some(&admin),
            Method::POST,
            &format!("/organization/fedorg/applications/{client_id}/tokens"),
            Some(json!({"name": "podman", "scope": "repo:read repo:write"})),
        )
        .await;
    let oauth = minted["token"].as_str().unwrap();
    let o = tempfile::tempdir().unwrap();
    login(o.path(), &s.host, "$oauthtoken", oauth);
    run_ok(tool("podman", o.path()).args([
        "pull",
        "--tls-verify=false",
        &format!("{}/fedorg/denied:v1", s.host),
    ]));
    run_ok(tool("skopeo", o.path()).args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("$oauthtoken:{oauth}"),
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/fedorg/allowed:v2", s.host),
    ]));

    // Anonymous: a public repository pulls, a private one is refused.
    let a = tempfile::tempdir().unwrap();
    std::fs::write(a.path().join("auth.json"), "{}").unwrap();
    run_ok(tool("podman", a.path()).args([
        "pull",
        "--tls-verify=false",
        &format!("{}/fedorg/public:v1", s.host),
    ]));
    let text = run_fail(tool("podman", a.path()).args([
        "pull",
        "--tls-verify=false",
        &format!("{}/fedorg/denied:v1", s.host),
    ]));
    assert!(text.contains("unauthorized"), "{text}");
    run_ok(tool("skopeo", a.path()).args([
        "inspect",
        "--tls-verify=false",
        "--no-creds",
        &format!("docker://{}/fedorg/public:v1", s.host),
    ]));

    // The user's own login and push work as before (creating a private repository).
    let u = tempfile::tempdir().unwrap();
    login(u.path(), &s.host, ADMIN, ADMIN_PASSWORD);
    let repo = s.api(&admin).repository("fedorg", "allowed").await.unwrap();
    assert!(!repo.is_public);
    assert!(repo.tags.unwrap().contains_key("v2"));

    // Robots disallowed: podman's login fails with the seed's message in the debug log.
    let mut s = s;
    s.config_yaml_push("ROBOTS_DISALLOW: true\n");
    s.restart().await;
    let d = tempfile::tempdir().unwrap();
    let text = run_fail(tool("podman", d.path()).args([
        "login",
        "--log-level=debug",
        "--tls-verify=false",
        "-u",
        "fedorg+robot1",
        "-p",
        &robot_token,
        &s.host,
    ]));
    assert!(text.contains("invalid username/password"), "{text}");
    assert!(
        text.contains("Robot accounts have been disabled. Please contact your administrator."),
        "{text}"
    );
}
