//! Every verb and patch type through kube-rs, with the outcomes a client sees.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_emulator::Emulator;
use serde_json::json;

use crate::api_error;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .unwrap()
}

#[tokio::test]
async fn create_get_update_and_conflicts() {
    let emu = Emulator::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(emu.client());

    let mut generated = cm("", json!({}));
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let created = cms
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let name = created.metadata.name.clone().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.generation, Some(1));

    let (reason, code) = api_error(
        cms.create(&PostParams::default(), &created)
            .await
            .unwrap_err(),
    );
    assert_eq!((reason.as_str(), code), ("AlreadyExists", 409));
    let (reason, code) = api_error(cms.get("missing").await.unwrap_err());
    assert_eq!((reason.as_str(), code), ("NotFound", 404));

    let mut changed = created.clone();
    changed.data = Some([("k".to_owned(), "w".to_owned())].into());
    let replaced = cms
        .replace(&name, &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(replaced.metadata.generation, Some(2));
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    // `changed` still carries the old resourceVersion: optimistic concurrency says no.
    let (reason, code) = api_error(
        cms.replace(&name, &PostParams::default(), &changed)
            .await
            .unwrap_err(),
    );
    assert_eq!((reason.as_str(), code), ("Conflict", 409));

    // Creating in a namespace that does not exist fails like the apiserver.
    let elsewhere: Api<ConfigMap> = Api::namespaced(emu.client(), "nowhere");
    let (reason, code) = api_error(
        elsewhere
            .create(&PostParams::default(), &cm("x", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((reason.as_str(), code), ("NotFound", 404));

    // Invalid names are 422 with the offending field.
    let err = cms
        .create(&PostParams::default(), &cm("Not_Valid", json!({})))
        .await
        .unwrap_err();
    let kube::Error::Api(s) = err else { panic!() };
    assert_eq!(s.code, 422);
    assert_eq!(s.details.unwrap().causes[0].field, "metadata.name");
}

#[tokio::test]
async fn list_selectors_and_pagination() {
    let emu = Emulator::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(emu.client());
    for (i, (app, tier)) in [
        ("web", "front"),
        ("web", "back"),
        ("db", "back"),
        ("cache", ""),
    ]
    .iter()
    .enumerate()
    {
        let labels = if tier.is_empty() {
            json!({"app": app})
        } else {
            json!({"app": app, "tier": tier})
        };
        cms.create(&PostParams::default(), &cm(&format!("c{i}"), labels))
            .await
            .unwrap();
    }
    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .filter(|n| n.starts_with('c'))
            .collect()
    };
    let q = |s: &str| ListParams::default().labels(s);
    assert_eq!(names(cms.list(&q("app=web")).await.unwrap()), ["c0", "c1"]);
    assert_eq!(
        names(cms.list(&q("app==web,tier!=back")).await.unwrap()),
        ["c0"]
    );
    assert_eq!(
        names(cms.list(&q("app in (db,cache)")).await.unwrap()),
        ["c2", "c3"]
    );
    assert_eq!(
        names(cms.list(&q("app notin (web)")).await.unwrap()),
        ["c2", "c3"]
    );
    assert_eq!(
        names(cms.list(&q("tier")).await.unwrap()),
        ["c0", "c1", "c2"]
    );
    assert_eq!(names(cms.list(&q("!tier")).await.unwrap()), ["c3"]);
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=c2"))
        .await
        .unwrap();
    assert_eq!(names(by_name), ["c2"]);
    let (_, code) = api_error(cms.list(&q("app in web")).await.unwrap_err());
    assert_eq!(code, 400);

    // Pages of two, following continue tokens.
    let mut seen = Vec::new();
    let mut lp = ListParams::default().labels("app").limit(2);
    loop {
        let page = cms.list(&lp).await.unwrap();
        assert!(page.items.len() <= 2);
        let token = page.metadata.continue_.clone();
        seen.extend(names(page));
        match token {
            Some(t) if !t.is_empty() => lp = lp.continue_token(&t),
            _ => break,
        }
    }
    assert_eq!(seen, ["c0", "c1", "c2", "c3"]);

    // All namespaces.
    let all: Api<ConfigMap> = Api::all(emu.client());
    assert_eq!(names(all.list(&q("app=db")).await.unwrap()), ["c2"]);
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "main", "image": "busybox:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "side", "image": "busybox:1"}
            ]}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn patch_types() {
    let emu = Emulator::start().await.unwrap();
    let deploys: Api<Deployment> = Api::default_namespaced(emu.client());
    deploys
        .create(&PostParams::default(), &deployment("d"))
        .await
        .unwrap();
    let pp = PatchParams::default();

    // Merge patch replaces lists wholesale; the spec change bumps generation.
    let merged = deploys
        .patch(
            "d",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}, "spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.spec.replicas, Some(3));
    assert_eq!(merged.metadata.generation, Some(2));
    assert_eq!(merged.metadata.labels.unwrap()["x"], "1");

    // Strategic merge patch merges containers and env by name, and deletes by directive.
    let smp = deploys
        .patch(
            "d",
            &pp,
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "main", "env": [{"name": "B", "value": "2"}]},
                {"name": "side", "$patch": "delete"}
            ]}}}})),
        )
        .await
        .unwrap();
    let containers = smp.spec.template.spec.unwrap().containers;
    assert_eq!(containers.len(), 1);
    let env: Vec<String> = containers[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(env, ["A", "B"]);
    assert_eq!(containers[0].image.as_deref(), Some("busybox:1"));

    // JSON patch, including a failing test operation (422).
    let path = "/apis/apps/v1/namespaces/default/deployments/d";
    let patched: Deployment = raw(
        &emu,
        "PATCH",
        path,
        "application/json-patch+json",
        json!([
            {"op": "replace", "path": "/spec/replicas", "value": 5},
            {"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}
        ]),
    )
    .await
    .unwrap();
    assert_eq!(patched.spec.replicas, Some(5));
    let failing = raw::<Deployment>(
        &emu,
        "PATCH",
        path,
        "application/json-patch+json",
        json!([{"op": "test", "path": "/spec/replicas", "value": 1}]),
    )
    .await;
    assert_eq!(api_error(failing.unwrap_err()).1, 422);

    // Status updates touch only status and leave generation alone; main writes keep status.
    let before = deploys.get("d").await.unwrap();
    let with_status = deploys
        .patch_status(
            "d",
            &pp,
            &Patch::Merge(json!({"spec": {"replicas": 9}, "status": {"replicas": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(with_status.status.unwrap().replicas, Some(7));
    assert_eq!(with_status.spec.replicas, Some(5));
    assert_eq!(with_status.metadata.generation, before.metadata.generation);
    let main = deploys
        .patch("d", &pp, &Patch::Merge(json!({"status": {"replicas": 1}})))
        .await
        .unwrap();
    assert_eq!(main.status.unwrap().replicas, Some(7));

    // An unknown patch content type is 415.
    let err = raw::<Deployment>(&emu, "PATCH", path, "application/x-unknown", json!({}))
        .await
        .unwrap_err();
    assert_eq!(api_error(err), ("UnsupportedMediaType".to_owned(), 415));
    // Verbs a resource does not have, and resources that do not exist.
    let err = raw::<serde_json::Value>(
        &emu,
        "PUT",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        json!({}),
    )
    .await
    .unwrap_err();
    assert_eq!(api_error(err), ("MethodNotAllowed".to_owned(), 405));
    let err = raw::<serde_json::Value>(
        &emu,
        "GET",
        "/apis/apps/v1/namespaces/default/nonsense",
        "application/json",
        json!(null),
    )
    .await
    .unwrap_err();
    assert_eq!(api_error(err), ("NotFound".to_owned(), 404));
}

/// Sends a raw request through the kube-rs client.
pub async fn raw<T: serde::de::DeserializeOwned>(
    emu: &Emulator,
    method: &str,
    path: &str,
    content_type: &str,
    body: serde_json::Value,
) -> Result<T, kube::Error> {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    emu.client().request::<T>(req).await
}

#[tokio::test]
async fn server_side_apply_tracks_managers() {
    let emu = Emulator::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(emu.client());
    let applied = |data: serde_json::Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": data});
    let alice = PatchParams::apply("alice");
    let created = cms
        .patch(
            "ssa",
            &alice,
            &Patch::Apply(applied(json!({"a": "1", "b": "2"}))),
        )
        .await
        .unwrap();
    let mf = created.metadata.managed_fields.unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("alice"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));

    // Another manager changing alice's field conflicts, unless forced.
    let bob = PatchParams::apply("bob");
    let err = cms
        .patch("ssa", &bob, &Patch::Apply(applied(json!({"a": "9"}))))
        .await
        .unwrap_err();
    let kube::Error::Api(s) = err else { panic!() };
    assert_eq!((s.reason.as_str(), s.code), ("Conflict", 409));
    assert!(s.message.contains("alice"), "{}", s.message);
    let forced = cms
        .patch(
            "ssa",
            &bob.clone().force(),
            &Patch::Apply(applied(json!({"a": "9"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["a"], "9");

    // alice stops applying `b`: it is removed; `a` now belongs to bob and stays.
    let after = cms
        .patch("ssa", &alice, &Patch::Apply(applied(json!({}))))
        .await
        .unwrap();
    let data = after.data.unwrap();
    assert_eq!(data.get("a").map(String::as_str), Some("9"));
    assert!(!data.contains_key("b"));

    // A merge patch by another manager takes ownership of what it changed.
    let edited = cms
        .patch(
            "ssa",
            &PatchParams {
                field_manager: Some("editor".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"data": {"c": "3"}})),
        )
        .await
        .unwrap();
    let managers: Vec<String> = edited
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"editor".to_owned()) && managers.contains(&"bob".to_owned()),
        "{managers:?}"
    );

    // Apply without a field manager is refused; re-applying the same config changes nothing.
    let (_, code) = api_error(
        cms.patch(
            "ssa",
            &PatchParams::default(),
            &Patch::Apply(applied(json!({}))),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, 422);
    let same = cms
        .patch(
            "ssa",
            &bob.clone().force(),
            &Patch::Apply(applied(json!({"a": "9"}))),
        )
        .await
        .unwrap();
    let again = cms
        .patch(
            "ssa",
            &bob.force(),
            &Patch::Apply(applied(json!({"a": "9"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        again.metadata.resource_version
    );

    // Secrets fold stringData into data.
    let secrets: Api<Secret> = Api::default_namespaced(emu.client());
    let s = secrets
        .patch("s", &PatchParams::apply("t"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"pw": "hunter2"}})))
        .await
        .unwrap();
    assert_eq!(s.data.unwrap()["pw"].0, b"hunter2");
}

#[tokio::test]
async fn deletion_finalizers_and_collections() {
    let emu = Emulator::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(emu.client());
    let mut held = cm("held", json!({"group": "g"}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    cms.create(&PostParams::default(), &cm("free", json!({"group": "g"})))
        .await
        .unwrap();

    let deleted = cms.delete("held", &DeleteParams::default()).await.unwrap();
    let lingering = deleted
        .left()
        .expect("the object is returned while finalizers hold it");
    assert!(lingering.metadata.deletion_timestamp.is_some());
    assert!(cms.get("held").await.is_ok());
    // Removing the last finalizer lets it go.
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_error(cms.get("held").await.unwrap_err()).1, 404);

    cms.create(&PostParams::default(), &cm("other", json!({"group": "h"})))
        .await
        .unwrap();
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("group=g"),
    )
    .await
    .unwrap();
    assert_eq!(api_error(cms.get("free").await.unwrap_err()).1, 404);
    assert!(cms.get("other").await.is_ok());

    // Preconditions.
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("wrong".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    assert_eq!(
        api_error(cms.delete("other", &dp).await.unwrap_err()).1,
        409
    );

    // Deleting a namespace removes everything in it.
    let nss: Api<Namespace> = Api::all(emu.client());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap(),
    )
    .await
    .unwrap();
    let in_ns: Api<ConfigMap> = Api::namespaced(emu.client(), "doomed");
    in_ns
        .create(&PostParams::default(), &cm("x", json!({})))
        .await
        .unwrap();
    nss.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    crate::eventually(
        "namespace gone",
        std::time::Duration::from_secs(5),
        || async { nss.get_opt("doomed").await.unwrap().is_none().then_some(()) },
    )
    .await;
    assert_eq!(api_error(in_ns.get("x").await.unwrap_err()).1, 404);
}
