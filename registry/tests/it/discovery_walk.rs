//! Walks Quayside's own discovery document (issue 17): every operation it lists is called twice
//! as a superuser, once with the path naming entities that exist (and a minimal JSON body) and
//! once with entities that do not exist and a body of the wrong shape. No answer may be a 5xx,
//! every 4xx must be one of Quay's error bodies (the full body, `{"message": ...}` or
//! `{"detail": ...}`). The document must list more than 150 operations.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::{Backend, Options, TestServer};

backend_tests!(every_listed_operation_answers_without_5xx);

/// Whether `body` is one of the error bodies Quay answers.
fn is_quay_error(body: &Value) -> bool {
    let Some(o) = body.as_object() else {
        return false;
    };
    let full = [
        "status",
        "error_type",
        "title",
        "detail",
        "error_message",
        "type",
    ]
    .iter()
    .all(|k| o.contains_key(*k))
        && o["status"].is_u64()
        && o["type"]
            .as_str()
            .is_some_and(|t| t.contains("/api/v1/error/"));
    let message = o.len() == 1 && o.get("message").is_some_and(Value::is_string);
    let detail = o.len() == 1 && o.get("detail").is_some_and(Value::is_string);
    full || message || detail
}

async fn ok(s: &TestServer, token: &str, method: Method, path: &str, body: Value) -> Value {
    let (status, answer) = s.call(Some(token), method.clone(), path, Some(body)).await;
    assert!(status.is_success(), "{method} {path}: {status} {answer}");
    answer
}

async fn every_listed_operation_answers_without_5xx(b: Backend) {
    let options = Options {
        yaml: "FEATURE_QUOTA_MANAGEMENT: true\nFEATURE_REPO_MIRROR: true\n".into(),
        ..Options::default()
    };
    let s = TestServer::start_with(b, options).await;
    let admin = s.init_admin().await;
    s.user("walkuser").await;
    s.create_org(&admin, "walkorg").await;
    s.create_org(&admin, "walkspare").await;
    for (method, path, body) in [
        (
            Method::PUT,
            "/organization/walkorg/team/walkteam",
            json!({"role": "member"}),
        ),
        (
            Method::PUT,
            "/organization/walkorg/team/walkteam/members/walkuser",
            json!({}),
        ),
        (
            Method::PUT,
            "/organization/walkorg/robots/walkbot",
            json!({}),
        ),
    ] {
        ok(&s, &admin, method, path, body).await;
    }
    let image = s.as_admin().push_image("walkorg/walkrepo", "latest").await;
    let digest = image.digest.clone();
    let app = ok(
        &s,
        &admin,
        Method::POST,
        "/organization/walkorg/applications",
        json!({"name": "walkapp"}),
    )
    .await;
    ok(
        &s,
        &admin,
        Method::POST,
        "/organization/walkorg/quota",
        json!({"limit_bytes": 1_000_000_000}),
    )
    .await;
    let quotas = ok(
        &s,
        &admin,
        Method::GET,
        "/organization/walkorg/quota",
        json!({}),
    )
    .await;
    let quota_id = quotas[0]["id"].to_string();
    ok(
        &s,
        &admin,
        Method::POST,
        &format!("/organization/walkorg/quota/{quota_id}/limit"),
        json!({"type": "Warning", "threshold_percent": 80}),
    )
    .await;
    let limits = ok(
        &s,
        &admin,
        Method::GET,
        &format!("/organization/walkorg/quota/{quota_id}/limit"),
        json!({}),
    )
    .await;
    let prototype = ok(
        &s,
        &admin,
        Method::POST,
        "/organization/walkorg/prototypes",
        json!({"role": "read", "delegate": {"name": "walkuser", "kind": "user"}}),
    )
    .await;
    let label = ok(
        &s,
        &admin,
        Method::POST,
        &format!("/repository/walkorg/walkrepo/manifest/{digest}/labels"),
        json!({"key": "walk", "value": "v", "media_type": "text/plain"}),
    )
    .await;
    let notification = ok(
        &s,
        &admin,
        Method::POST,
        "/repository/walkorg/walkrepo/notification/",
        json!({"event": "repo_push", "method": "quay_notification", "title": "walk", "eventConfig": {},
               "config": {"target": {"name": "admin", "kind": "user"}}}),
    )
    .await;
    // A service key of a service other than the registry's own, so the walk's DELETE of it
    // leaves the registry's signing keys alone; and an application token of the admin.
    let service_key = ok(
        &s,
        &admin,
        Method::POST,
        "/superuser/keys",
        json!({"service": "walk_service", "expiration": null, "name": "walk"}),
    )
    .await;
    let app_token = ok(
        &s,
        &admin,
        Method::POST,
        "/user/apptoken",
        json!({"title": "walk"}),
    )
    .await;

    let existing: BTreeMap<&str, String> = [
        ("namespace", "walkorg".to_owned()),
        ("repository", "walkrepo".to_owned()),
        ("orgname", "walkorg".to_owned()),
        ("teamname", "walkteam".to_owned()),
        ("membername", "walkuser".to_owned()),
        ("username", "walkuser".to_owned()),
        ("robot_shortname", "walkbot".to_owned()),
        ("client_id", app["client_id"].as_str().unwrap().to_owned()),
        (
            "token_uuid",
            app_token["token"]["uuid"]
                .as_str()
                .unwrap_or_else(|| panic!("{app_token}"))
                .to_owned(),
        ),
        (
            "kid",
            service_key["kid"]
                .as_str()
                .unwrap_or_else(|| panic!("{service_key}"))
                .to_owned(),
        ),
        ("quota_id", quota_id.clone()),
        (
            "limit_id",
            limits
                .pointer("/limits/0/id")
                .or_else(|| limits.pointer("/0/id"))
                .unwrap_or_else(|| panic!("{limits}"))
                .to_string(),
        ),
        ("prototypeid", prototype["id"].as_str().unwrap().to_owned()),
        ("tag", "latest".to_owned()),
        ("manifestref", digest.clone()),
        ("labelid", label["label"]["id"].as_str().unwrap().to_owned()),
        ("uuid", notification["uuid"].as_str().unwrap().to_owned()),
        ("email", "walk@example.com".to_owned()),
        ("prefix", "walk".to_owned()),
        ("name", "walkspare".to_owned()),
        ("error_type", "not_found".to_owned()),
        ("code", "somecode".to_owned()),
        // Builds are off in this walk (no builder runs here): their operations answer Quay's 404,
        // which the walk still checks for shape; `builds.rs` tests them with the feature on.
        (
            "build_uuid",
            "00000000-0000-4000-8000-000000000000".to_owned(),
        ),
        ("file_id", "00000000-0000-4000-8000-000000000000".to_owned()),
        // Triggers need builds too: Quay's 404 with the feature off.
        (
            "trigger_uuid",
            "00000000-0000-4000-8000-000000000000".to_owned(),
        ),
    ]
    .into_iter()
    .collect();
    let missing = |param: &str| -> String {
        match param {
            "manifestref" => format!("sha256:{}", "0".repeat(64)),
            "quota_id" | "limit_id" => "999999".to_owned(),
            "email" => "not-an-email".to_owned(),
            _ => "no-such-thing".to_owned(),
        }
    };

    let (status, discovery) = s.call(Some(&admin), Method::GET, "/discovery", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut operations = Vec::new();
    for (path, item) in discovery["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if method.starts_with("x-") {
                continue;
            }
            operations.push((
                method.to_uppercase(),
                path.clone(),
                op["operationId"].as_str().unwrap().to_owned(),
            ));
        }
    }
    assert!(operations.len() > 150, "{} operations", operations.len());
    // Deletions last, deepest paths first, so the others find their entities.
    operations.sort_by_key(|(m, p, _)| {
        let delete = m == "DELETE";
        (delete, if delete { usize::MAX - p.len() } else { 0 })
    });

    let fill = |path: &str, value: &dyn Fn(&str) -> String| -> String {
        let mut out = String::new();
        let mut rest = path.strip_prefix("/api/v1").unwrap();
        while let Some(start) = rest.find('{') {
            let end = rest[start..].find('}').unwrap() + start;
            out.push_str(&rest[..start]);
            out.push_str(&value(&rest[start + 1..end]));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    };
    let mut failures = Vec::new();
    let mut refused_valid = Vec::new();
    for (method, path, id) in &operations {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let takes_body = method == Method::POST || method == Method::PUT;
        let valid = fill(path, &|p| {
            existing
                .get(p)
                .cloned()
                .unwrap_or_else(|| panic!("{id}: no value for {{{p}}}"))
        });
        let invalid = fill(path, &|p| missing(p));
        for (kind, target, body) in [
            ("valid", &valid, takes_body.then(|| json!({}))),
            ("invalid", &invalid, takes_body.then(|| json!([1, "wrong"]))),
        ] {
            let (status, answer) = s.call(Some(&admin), method.clone(), target, body).await;
            let line = format!("{id} {kind}: {method} {target} -> {status} {answer}");
            if status.is_server_error() {
                failures.push(line);
            } else if status.is_client_error() {
                if !is_quay_error(&answer) {
                    failures.push(format!("not Quay's error body: {line}"));
                }
                if kind == "valid" {
                    refused_valid.push(line);
                }
            }
        }
    }
    // What the minimal valid calls were refused for (bodies the operation needs, states):
    // printed for the report, not a failure.
    eprintln!(
        "{} operations; {} minimal valid calls answered 4xx:\n{}",
        operations.len(),
        refused_valid.len(),
        refused_valid.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
