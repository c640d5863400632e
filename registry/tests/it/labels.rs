//! Manifests and their labels through `/api/v1`: the manifest view (Quay's recorded shape, layers
//! from the config history), labels imported from the image config, API labels with Quay's key
//! validation, reserved prefixes and media types, and their audit entries.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::quay::*;
use crate::common::tags::*;
use crate::common::*;

backend_tests!(
    manifest_view_matches_quay,
    labels_imported_added_and_deleted
);

async fn manifest_view_matches_quay(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    let image = labelled_image(&[], true);
    push(&s, "admin/hello", "v1", &image).await;
    let r = s
        .as_bearer(&token)
        .send(
            Method::GET,
            &format!("/api/v1/repository/admin/hello/manifest/{}", image.digest),
        )
        .await;
    let m = expect_like(r, "49-get-manifest-api", &[]).await;
    assert_eq!(m["digest"], image.digest);
    assert_eq!(m["is_manifest_list"], false);
    assert_eq!(
        m["manifest_data"].as_str().unwrap().as_bytes(),
        image.manifest.as_slice()
    );
    assert_eq!(m["config_media_type"], DOCKER_CONFIG);
    assert_eq!(m["layers_compressed_size"], 125);
    // One entry per history entry: the layer, then the empty LABEL layer.
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{m}");
    assert_eq!(layers[0]["index"], 0);
    assert_eq!(layers[0]["command"], json!(["ADD hello.txt /"]));
    assert_eq!(layers[0]["blob_digest"], sha256(&image.layers[0]));
    assert_eq!(layers[0]["compressed_size"], 125);
    assert_eq!(
        layers[0]["created_datetime"],
        "Mon, 01 Jan 2024 00:00:00 -0000"
    );
    assert_eq!(layers[0]["urls"], Value::Null);
    assert_eq!(layers[1]["command"], json!(["LABEL a=b"]));
    assert_eq!(
        layers[1]["blob_digest"],
        quayside::service::content::manifests::EMPTY_LAYER_DIGEST
    );

    // An image without history: one bare entry per layer.
    let plain = s.as_admin().push_image("admin/hello", "plain").await;
    let client = s.api(&token);
    let m = client
        .manifest("admin", "hello", &plain.digest)
        .await
        .unwrap();
    let layers = m.layers.unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[1].blob_digest, sha256(&plain.layers[1]));
    assert_eq!(layers[1].command, None);

    // A manifest list has no layers.
    let idx = index(&[(&plain, "amd64")], false);
    let r = s
        .as_admin()
        .put_manifest("admin/hello", "list", OCI_INDEX, &idx)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let m = client
        .manifest("admin", "hello", &sha256(&idx))
        .await
        .unwrap();
    assert!(m.is_manifest_list);
    assert_eq!(m.layers, None);
    assert_eq!(m.layers_compressed_size, 0);
    assert_eq!(m.config_media_type, None);

    // Unknown manifests and references that are not digests are not found.
    for reference in [sha256(b"nothing"), "v1".to_owned()] {
        let (status, _) = s
            .call(
                Some(&token),
                Method::GET,
                &format!("/repository/admin/hello/manifest/{reference}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{reference}");
    }
}

async fn labels_imported_added_and_deleted(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    let image = labelled_image(
        &[
            (
                "org.opencontainers.image.url",
                "https://github.com/docker-library/busybox",
            ),
            ("com.example.config", "{\"a\": [1, 2]}"),
        ],
        false,
    );
    push(&s, "admin/app", "v1", &image).await;
    let base = format!("/repository/admin/app/manifest/{}/labels", image.digest);

    // Imported from the config, with the media type inferred from the value.
    let (status, body) = s.call(Some(&token), Method::GET, &base, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let labels = body["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 2, "{body}");
    for l in labels {
        assert_eq!(l["source_type"], "manifest");
        assert_eq!(l.as_object().unwrap().len(), 5, "{l}");
        assert!(uuid::Uuid::parse_str(l["id"].as_str().unwrap()).is_ok());
    }
    let json_label = labels
        .iter()
        .find(|l| l["key"] == "com.example.config")
        .unwrap();
    assert_eq!(json_label["media_type"], "application/json");
    let url = labels
        .iter()
        .find(|l| l["key"] == "org.opencontainers.image.url")
        .unwrap();
    assert_eq!(url["media_type"], "text/plain");

    // Adding one: 201, Location, source_type api.
    let r = s
        .as_bearer(&token)
        .request(Method::POST, &format!("/api/v1{base}"))
        .json(&json!({"key": "example-key", "value": "example-value", "media_type": "text/plain"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let added: Value = r.json().await.unwrap();
    let id = added["label"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        added,
        json!({"label": {"id": id, "key": "example-key", "value": "example-value",
                         "source_type": "api", "media_type": "text/plain"}})
    );
    assert_eq!(location, format!("/api/v1{base}/{id}"));
    let (status, one) = s
        .call(Some(&token), Method::GET, &format!("{base}/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, added["label"]);

    // A prefix filter.
    let (_, filtered) = s
        .call(
            Some(&token),
            Method::GET,
            &format!("{base}?filter=example"),
            None,
        )
        .await;
    assert_eq!(
        filtered["labels"].as_array().unwrap().len(),
        1,
        "{filtered}"
    );
    // A null media type is inferred.
    let client = s.api(&token);
    let inferred = client
        .add_label(
            "admin",
            "app",
            &image.digest,
            &quayside_client::AddLabelRequest {
                key: "com.example.list".into(),
                value: "[1]".into(),
                media_type: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(inferred.label.media_type, "application/json");

    // Invalid keys, reserved prefixes and media types are refused; the first two with Quay's
    // `{"message": ...}` (recorded: more-075), media types with its full error body (more-073).
    let add = |body: Value| {
        let s = &s;
        let token = token.clone();
        let base = base.clone();
        async move { s.call(Some(&token), Method::POST, &base, Some(body)).await }
    };
    for key in ["Bad_Key", "a..b", "-x", ""] {
        let (status, body) =
            add(json!({"key": key, "value": "v", "media_type": "text/plain"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({"message": format!(
                "Label is of an invalid format or missing please use {} format for labels",
                quayside::service::content::labels::KEY_FORMAT
            )})
        );
    }
    for key in [
        "io.quay.thing",
        "quay.expires-after",
        "org.opencontainers.x",
    ] {
        let (status, body) =
            add(json!({"key": key, "value": "v", "media_type": "text/plain"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, json!({"message": "Label has a reserved prefix"}));
    }
    let (status, body) = add(json!({"key": "ok", "value": "v", "media_type": "image/png"})).await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Media type is invalid please use a valid media type: text/plain, application/json",
    );
    let (status, _) = add(json!({"value": "v"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Strangers may not read or write; unknown manifests and labels are not found.
    let (_, _, stranger) = s.user_with_token("stranger").await;
    let (status, _) = s.call(Some(&stranger), Method::GET, &base, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(
            Some(&token),
            Method::GET,
            &format!("/repository/admin/app/manifest/{}/labels", sha256(b"x")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .call(
            Some(&token),
            Method::GET,
            &format!("{base}/no-such-label"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Deleting.
    let (status, _) = s
        .call(Some(&token), Method::DELETE, &format!("{base}/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .call(Some(&token), Method::GET, &format!("{base}/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .call(Some(&token), Method::DELETE, &format!("{base}/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let entries = s.audit("admin").await;
    let added: Vec<Value> = entries
        .iter()
        .filter(|e| e.kind == "manifest_label_add")
        .map(|e| serde_json::from_str(&e.metadata).unwrap())
        .collect();
    assert_eq!(added.len(), 2);
    let deleted: Vec<Value> = entries
        .iter()
        .filter(|e| e.kind == "manifest_label_delete")
        .map(|e| serde_json::from_str(&e.metadata).unwrap())
        .collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["key"], "example-key");
    assert_eq!(deleted[0]["manifest_digest"], image.digest);
}
