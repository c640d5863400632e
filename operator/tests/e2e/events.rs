//! Events as a user reads them: each distinct message is visible as such, identical ones
//! aggregate into one Event with a count.

use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};
use kube_emulator::Emulator;
use quayside_operator::runtime::events::publish;

#[tokio::test]
async fn distinct_messages_are_distinct_events() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "target"}})).unwrap(),
        )
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "quayside-operator".into(),
            instance: None,
        },
    );
    let object = cm.object_ref(&());
    let yaml = "config.yaml is not valid YAML";
    let scheme = "PREFERRED_URL_SCHEME must be http or https";
    for note in [yaml, scheme, scheme, scheme] {
        publish(
            &recorder,
            &object,
            EventType::Warning,
            "ConfigInvalid",
            "Validate",
            note,
        )
        .await;
    }
    // Read the way `kubectl describe` does: core/v1, by the involved object.
    let events: Api<Event> = Api::namespaced(client, "default");
    let mut seen: Vec<(String, i32)> = events
        .list(&ListParams::default().fields(&format!("involvedObject.uid={}", cm.uid().unwrap())))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.message.unwrap_or_default(), e.count.unwrap_or(1)))
        .collect();
    seen.sort();
    assert_eq!(seen, vec![(scheme.to_owned(), 3), (yaml.to_owned(), 1)]);
}
