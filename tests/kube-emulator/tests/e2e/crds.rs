//! Custom resources: schema enforcement, defaults, pruning, status, printer columns, and a
//! kube-runtime Controller with finalizers and owner references.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, ResourceExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::{conditions, wait::await_condition, watcher};
use kube::{CustomResource, CustomResourceExt, Resource};
use kube_emulator::Emulator;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::eventually;

/// A test kind.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "test.quayside.dev",
    version = "v1",
    kind = "Widget",
    namespaced
)]
#[kube(status = "WidgetStatus", shortname = "wd")]
#[kube(printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".spec.size"}"#)]
#[kube(printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#)]
pub struct WidgetSpec {
    #[schemars(range(min = 1, max = 10))]
    pub size: i32,
    #[schemars(regex(pattern = r"^[a-z]+$"))]
    pub color: String,
    #[serde(default = "default_mode")]
    #[schemars(default = "default_mode")]
    pub mode: String,
}

fn default_mode() -> String {
    "safe".into()
}

/// Status of a Widget.
#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
pub struct WidgetStatus {
    pub phase: String,
}

async fn install_crd(emu: &Emulator) {
    let crds: Api<CustomResourceDefinition> = Api::all(emu.client());
    crds.create(&PostParams::default(), &Widget::crd())
        .await
        .unwrap();
    let established = await_condition(
        crds,
        "widgets.test.quayside.dev",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(5), established)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn schema_validation_defaults_pruning_and_status() {
    let emu = Emulator::start().await.unwrap();
    install_crd(&emu).await;
    // Both discovery flavours list the new kind with its subresources.
    for discovery in [
        kube::Discovery::new(emu.client()).run().await.unwrap(),
        kube::Discovery::new(emu.client())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        let group = discovery
            .get("test.quayside.dev")
            .expect("group discovered");
        let (ar, caps) = group.recommended_kind("Widget").expect("kind discovered");
        assert_eq!(ar.plural, "widgets");
        assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
        assert!(
            caps.subresources
                .iter()
                .any(|(s, _)| s.plural.ends_with("status")),
            "{:?}",
            caps.subresources
        );
        assert!(
            discovery
                .get("apps")
                .unwrap()
                .recommended_kind("Deployment")
                .is_some()
        );
    }
    let widgets: Api<Widget> = Api::default_namespaced(emu.client());
    let raw = |spec: serde_json::Value| json!({"apiVersion": "test.quayside.dev/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});

    // Invalid: out of range, pattern mismatch; both reported with field paths.
    let err = widgets
        .patch(
            "w",
            &PatchParams::apply("t"),
            &Patch::Apply(raw(json!({"size": 11, "color": "Red1"}))),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(s) = err else { panic!() };
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    let fields: Vec<String> = s
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert!(
        fields.contains(&"spec.size".into()) && fields.contains(&"spec.color".into()),
        "{fields:?}"
    );
    // Missing required field.
    let err = widgets
        .patch(
            "w",
            &PatchParams::apply("t"),
            &Patch::Apply(raw(json!({"color": "red"}))),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(s) = err else { panic!() };
    assert_eq!(s.details.unwrap().causes[0].field, "spec.size");

    // Valid: defaults applied, unknown fields pruned.
    let w = widgets
        .patch(
            "w",
            &PatchParams::apply("t"),
            &Patch::Apply(raw(json!({"size": 3, "color": "red", "junk": true}))),
        )
        .await
        .unwrap();
    assert_eq!(w.spec.mode, "safe");
    let stored: serde_json::Value = crate::verbs::raw(
        &emu,
        "GET",
        "/apis/test.quayside.dev/v1/namespaces/default/widgets/w",
        "application/json",
        json!(null),
    )
    .await
    .unwrap();
    assert!(stored["spec"].get("junk").is_none());
    // Strict field validation turns pruning into an error.
    let strict = crate::verbs::raw::<serde_json::Value>(
        &emu,
        "PATCH",
        "/apis/test.quayside.dev/v1/namespaces/default/widgets/w?fieldValidation=Strict",
        "application/merge-patch+json",
        json!({"spec": {"junk": 1}}),
    )
    .await;
    assert_eq!(crate::api_error(strict.unwrap_err()).1, 400);

    // Status subresource: status writes only via /status; spec writes ignore status.
    let with_status = widgets
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(with_status.status.unwrap().phase, "Ready");
    assert_eq!(with_status.metadata.generation, Some(1));
    let ignored = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}, "status": {"phase": "Nope"}})),
        )
        .await
        .unwrap();
    assert_eq!(ignored.status.unwrap().phase, "Ready");
    assert_eq!(ignored.metadata.generation, Some(2));
    // Strategic merge patch is not supported for custom resources.
    let smp = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 5}})),
        )
        .await;
    assert_eq!(crate::api_error(smp.unwrap_err()).1, 415);

    // Printer columns in the Table kubectl asks for.
    let req = http::Request::get("/apis/test.quayside.dev/v1/namespaces/default/widgets")
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Vec::new())
        .unwrap();
    let table: serde_json::Value = emu.client().request(req).await.unwrap();
    let cols: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Size", "Phase"]);
    assert_eq!(table["rows"][0]["cells"], json!(["w", 4, "Ready"]));

    // Deleting the CRD deletes its objects and stops serving the kind.
    let crds: Api<CustomResourceDefinition> = Api::all(emu.client());
    crds.delete("widgets.test.quayside.dev", &DeleteParams::default())
        .await
        .unwrap();
    eventually("kind unserved", Duration::from_secs(5), || async {
        widgets
            .list(&Default::default())
            .await
            .is_err()
            .then_some(())
    })
    .await;
}

struct Ctx {
    client: kube::Client,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ReconcileError(String);

const FINALIZER: &str = "widgets.test.quayside.dev/cleanup";

async fn reconcile(w: Arc<Widget>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let ns = w.namespace().unwrap();
    let widgets: Api<Widget> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&widgets, FINALIZER, w, |event| async {
        match event {
            Finalizer::Apply(w) => {
                let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
                let owner = w.controller_owner_ref(&()).unwrap();
                let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("{}-cfg", w.name_any()), "ownerReferences": [owner]},
                    "data": {"size": w.spec.size.to_string()}});
                cms.patch(&format!("{}-cfg", w.name_any()), &PatchParams::apply("widget-ctl").force(), &Patch::Apply(cm))
                    .await
                    .map_err(|e| ReconcileError(e.to_string()))?;
                widgets
                    .patch_status(&w.name_any(), &PatchParams::apply("widget-ctl").force(), &Patch::Apply(json!({
                        "apiVersion": "test.quayside.dev/v1", "kind": "Widget", "status": {"phase": "Ready"}})))
                    .await
                    .map_err(|e| ReconcileError(e.to_string()))?;
                Ok(Action::requeue(Duration::from_secs(300)))
            }
            Finalizer::Cleanup(w) => {
                let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
                cms.create(&PostParams::default(), &serde_json::from_value(json!({
                    "metadata": {"name": format!("{}-cleaned", w.name_any())}})).unwrap())
                    .await
                    .map_err(|e| ReconcileError(e.to_string()))?;
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e: kube::runtime::finalizer::Error<ReconcileError>| ReconcileError(e.to_string()))
}

#[tokio::test]
async fn controller_reconciles_with_finalizers_and_owned_objects() {
    let emu = Emulator::start().await.unwrap();
    install_crd(&emu).await;
    let client = emu.client();
    let widgets: Api<Widget> = Api::default_namespaced(client.clone());
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let ctl = Controller::new(widgets.clone(), watcher::Config::default())
        .owns(cms.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_millis(200)),
            Arc::new(Ctx {
                client: client.clone(),
            }),
        )
        .for_each(|_| async {});
    let task = tokio::spawn(ctl);

    widgets
        .create(
            &PostParams::default(),
            &Widget::new(
                "gizmo",
                WidgetSpec {
                    size: 2,
                    color: "blue".into(),
                    mode: "safe".into(),
                },
            ),
        )
        .await
        .unwrap();
    let w = eventually("widget Ready", Duration::from_secs(10), || async {
        let w = widgets.get("gizmo").await.unwrap();
        (w.status.as_ref().map(|s| s.phase.as_str()) == Some("Ready")).then_some(w)
    })
    .await;
    assert_eq!(w.finalizers(), [FINALIZER]);
    let owned = cms.get("gizmo-cfg").await.unwrap();
    assert_eq!(owned.data.unwrap()["size"], "2");

    // A spec change is reconciled into the owned object.
    widgets
        .patch(
            "gizmo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 7}})),
        )
        .await
        .unwrap();
    eventually(
        "owned ConfigMap updated",
        Duration::from_secs(10),
        || async {
            (cms.get("gizmo-cfg").await.unwrap().data.unwrap()["size"] == "7").then_some(())
        },
    )
    .await;
    // Deleting an owned object makes the controller recreate it.
    cms.delete("gizmo-cfg", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "owned ConfigMap recreated",
        Duration::from_secs(10),
        || async { cms.get_opt("gizmo-cfg").await.unwrap() },
    )
    .await;

    // Deletion runs the finalizer's cleanup, then the object and (by GC) its dependents go.
    widgets
        .delete("gizmo", &DeleteParams::default())
        .await
        .unwrap();
    eventually("widget gone", Duration::from_secs(10), || async {
        widgets
            .get_opt("gizmo")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(cms.get_opt("gizmo-cleaned").await.unwrap().is_some());
    eventually(
        "owned ConfigMap collected",
        Duration::from_secs(10),
        || async {
            cms.get_opt("gizmo-cfg")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    task.abort();
}

#[tokio::test]
async fn garbage_collection_foreground_and_orphan() {
    let emu = Emulator::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(emu.client());
    let mk = |name: &str, owner: Option<&ConfigMap>| -> ConfigMap {
        let mut c: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        if let Some(o) = owner {
            let mut r = o.controller_owner_ref(&()).unwrap();
            r.block_owner_deletion = Some(true);
            c.metadata.owner_references = Some(vec![r]);
        }
        c
    };
    let parent = cms
        .create(&PostParams::default(), &mk("parent", None))
        .await
        .unwrap();
    let child = cms
        .create(&PostParams::default(), &mk("child", Some(&parent)))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &mk("grandchild", Some(&child)))
        .await
        .unwrap();
    // Foreground: the parent waits (with its finalizer) for the whole chain.
    let res = cms
        .delete("parent", &DeleteParams::foreground())
        .await
        .unwrap();
    let pending = res.left().unwrap();
    assert_eq!(pending.finalizers(), ["foregroundDeletion"]);
    eventually("chain collected", Duration::from_secs(5), || async {
        let gone = cms.get_opt("grandchild").await.unwrap().is_none()
            && cms.get_opt("child").await.unwrap().is_none()
            && cms.get_opt("parent").await.unwrap().is_none();
        gone.then_some(())
    })
    .await;
    // Orphan: dependents stay, without the owner reference.
    let parent = cms
        .create(&PostParams::default(), &mk("p2", None))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &mk("c2", Some(&parent)))
        .await
        .unwrap();
    cms.delete("p2", &DeleteParams::orphan()).await.unwrap();
    eventually("owner gone", Duration::from_secs(5), || async {
        cms.get_opt("p2").await.unwrap().is_none().then_some(())
    })
    .await;
    let orphan = cms.get("c2").await.unwrap();
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
}
