//! Watches: resumption, 410 Gone, bookmarks, and kube-runtime's watcher/reflector.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube_emulator::Emulator;
use serde_json::json;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

async fn next<K: Clone>(
    s: &mut (impl futures_util::Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
) -> WatchEvent<K> {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("a watch event within 5s")
        .expect("stream open")
        .expect("no stream error")
}

#[tokio::test]
async fn watch_resumes_filters_and_expires() {
    let emu = Emulator::builder().watch_history(50).start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(emu.client());
    let a = cms
        .create(&PostParams::default(), &cm("a", json!({"w": "yes"})))
        .await
        .unwrap();
    let rv = a.metadata.resource_version.clone().unwrap();
    cms.create(&PostParams::default(), &cm("b", json!({"w": "no"})))
        .await
        .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    // Stops matching the selector: a selector watch sees it as deleted.
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"w": "no"}}})),
    )
    .await
    .unwrap();

    // Resume from `a`'s creation: only later changes to objects matching `w=yes`.
    let mut s = cms
        .watch(&WatchParams::default().labels("w=yes"), &rv)
        .await
        .unwrap()
        .boxed();
    match next(&mut s).await {
        WatchEvent::Modified(o) => assert_eq!(o.data.unwrap()["x"], "1"),
        e => panic!("expected MODIFIED, got {e:?}"),
    }
    assert!(
        matches!(next(&mut s).await, WatchEvent::Deleted(o) if o.metadata.name.as_deref() == Some("a"))
    );
    // Live events keep coming.
    cms.create(&PostParams::default(), &cm("c", json!({"w": "yes"})))
        .await
        .unwrap();
    assert!(
        matches!(next(&mut s).await, WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("c"))
    );
    cms.delete("c", &DeleteParams::default()).await.unwrap();
    assert!(
        matches!(next(&mut s).await, WatchEvent::Deleted(o) if o.metadata.name.as_deref() == Some("c"))
    );

    // Push the history past `rv`: resuming from it is 410 Gone (as an ERROR event).
    for i in 0..60 {
        cms.patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"i": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    let mut old = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match next(&mut old).await {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        e => panic!("expected a 410 ERROR event, got {e:?}"),
    }
    // A continue token from before the compaction is expired too.
    let page = cms.list(&ListParams::default().limit(1)).await.unwrap();
    let token = page.metadata.continue_.clone().unwrap();
    for i in 0..60 {
        cms.patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"j": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    let err = cms
        .list(&ListParams::default().limit(1).continue_token(&token))
        .await
        .unwrap_err();
    assert_eq!(crate::api_error(err).1, 410);
}

#[tokio::test]
async fn bookmarks_timeouts_and_single_object_watches() {
    let emu = Emulator::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(emu.client());
    let a = cms
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let rv = a.metadata.resource_version.unwrap();
    let mut s = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match next(&mut s).await {
        WatchEvent::Bookmark(b) => assert!(
            b.metadata.resource_version.parse::<u64>().unwrap() >= rv.parse::<u64>().unwrap()
        ),
        e => panic!("expected a BOOKMARK, got {e:?}"),
    }
    // timeoutSeconds ends the stream.
    let mut short = cms
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .unwrap()
        .boxed();
    let ended = tokio::time::timeout(Duration::from_secs(5), short.next())
        .await
        .expect("stream ends");
    assert!(ended.is_none());
    // A name-scoped watch (what kubectl wait does) sees only that object.
    cms.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();
    let mut one = cms
        .watch(&WatchParams::default().fields("metadata.name=a"), "0")
        .await
        .unwrap()
        .boxed();
    assert!(
        matches!(next(&mut one).await, WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("a"))
    );
    cms.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    assert!(
        matches!(next(&mut one).await, WatchEvent::Modified(o) if o.metadata.name.as_deref() == Some("a"))
    );
}

#[tokio::test]
async fn reflector_follows_the_store() {
    let emu = Emulator::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(emu.client());
    cms.create(&PostParams::default(), &cm("pre", json!({"r": "1"})))
        .await
        .unwrap();
    for cfg in [
        watcher::Config::default().labels("r=1"),
        watcher::Config::default().labels("r=1").streaming_lists(),
    ] {
        let (reader, writer) = reflector::store::<ConfigMap>();
        let stream = reflector(writer, watcher(cms.clone(), cfg)).applied_objects();
        let task = tokio::spawn(stream.try_for_each(|_| async { Ok(()) }));
        reader.wait_until_ready().await.unwrap();
        assert!(
            reader
                .state()
                .iter()
                .any(|c| c.metadata.name.as_deref() == Some("pre"))
        );
        let name = format!("live-{}", reader.state().len());
        cms.create(&PostParams::default(), &cm(&name, json!({"r": "1"})))
            .await
            .unwrap();
        crate::eventually(
            "reflector sees the new object",
            Duration::from_secs(5),
            || {
                let found = reader
                    .state()
                    .iter()
                    .any(|c| c.metadata.name.as_deref() == Some(name.as_str()));
                async move { found.then_some(()) }
            },
        )
        .await;
        cms.delete(&name, &DeleteParams::default()).await.unwrap();
        crate::eventually(
            "reflector drops the deleted object",
            Duration::from_secs(5),
            || {
                let found = reader
                    .state()
                    .iter()
                    .any(|c| c.metadata.name.as_deref() == Some(name.as_str()));
                async move { (!found).then_some(()) }
            },
        )
        .await;
        task.abort();
    }
}

#[tokio::test]
async fn metadata_only_lists_and_watches() {
    let emu = Emulator::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(emu.client());
    let mut c = cm("meta", json!({"m": "1"}));
    c.data = Some([("big".to_owned(), "x".repeat(1000))].into());
    cms.create(&PostParams::default(), &c).await.unwrap();
    let list = cms
        .list_metadata(&ListParams::default().labels("m=1"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("meta"));
    let one = cms.get_metadata("meta").await.unwrap();
    assert_eq!(one.metadata.labels.unwrap()["m"], "1");
    // A metadata watcher sees changes without the objects' contents.
    let meta_api: Api<kube::core::PartialObjectMeta<ConfigMap>> =
        Api::default_namespaced(emu.client());
    let mut events = watcher(meta_api, watcher::Config::default().labels("m=1"))
        .applied_objects()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("meta"));
    cms.create(&PostParams::default(), &cm("meta2", json!({"m": "1"})))
        .await
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.metadata.name.as_deref(), Some("meta2"));
    // What went over the wire had no data.
    let req = http::Request::get("/api/v1/namespaces/default/configmaps/meta")
        .header(
            "accept",
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        )
        .body(Vec::new())
        .unwrap();
    let raw: serde_json::Value = emu.client().request(req).await.unwrap();
    assert_eq!(raw["kind"], "PartialObjectMetadata");
    assert!(raw.get("data").is_none());
}
