//! Global messages: anyone lists them, superusers create and delete them, Quay's validation.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::backend_tests;
use crate::common::quay::{assert_quay_error, expect_like, recorded};
use crate::common::{Backend, TestServer};

backend_tests!(global_messages);

async fn global_messages(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    let (_, _, bob) = s.user_with_token("bob").await;

    // Nobody needs to sign in to read them.
    let r = s.anonymous().send(Method::GET, "/api/v1/messages").await;
    expect_like(r, "more-201-messages-list-after", &[]).await;

    // Quay's request; 201 with an empty body.
    let create = recorded("more-197-message-create").request_body;
    let r = s
        .as_bearer(&admin)
        .request(Method::POST, "/api/v1/messages")
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.text().await.unwrap().is_empty());
    let r = s.anonymous().send(Method::GET, "/api/v1/messages").await;
    let listed = expect_like(r, "more-199-messages-list", &[]).await;
    let message = &listed["messages"][0];
    assert_eq!(message["content"], "w2 maintenance");
    assert_eq!(message["severity"], "info");
    assert_eq!(message["media_type"], "text/plain");
    let uuid = message["uuid"].as_str().unwrap().to_owned();

    // Only superusers write.
    for (token, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(bob.as_str()), StatusCode::FORBIDDEN),
    ] {
        let (got, body) = s
            .call(token, Method::POST, "/messages", Some(create.clone()))
            .await;
        assert_eq!(got, status, "{body}");
        let (got, body) = s
            .call(token, Method::DELETE, &format!("/message/{uuid}"), None)
            .await;
        assert_eq!(got, status, "{body}");
    }

    // Quay's schema errors.
    for (body, message) in [
        (json!({}), "'message' is a required property"),
        (
            json!({"message": "hello"}),
            "\"hello\" is not of type 'object'",
        ),
        (
            json!({"message": {"media_type": "text/plain", "severity": "info"}}),
            "'content' is a required property",
        ),
        (
            json!({"message": {"content": "x", "media_type": "text/html", "severity": "info"}}),
            "'text/html' is not one of ['text/markdown', 'text/plain']",
        ),
        (
            json!({"message": {"content": "x", "media_type": "text/markdown", "severity": "critical"}}),
            "'critical' is not one of ['info', 'warning', 'error']",
        ),
        (
            json!({"message": {"content": 5, "media_type": "text/markdown", "severity": "info"}}),
            "5 is not of type 'string'",
        ),
    ] {
        let (status, answer) = s
            .call(Some(&admin), Method::POST, "/messages", Some(body))
            .await;
        assert_quay_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            message,
        );
    }

    // Markdown and every severity are accepted.
    for severity in ["warning", "error"] {
        let (status, _) = s
            .call(
                Some(&admin),
                Method::POST,
                "/messages",
                Some(json!({"message": {"content": "**down**", "media_type": "text/markdown", "severity": severity}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, listed) = s.call(None, Method::GET, "/messages", None).await;
    assert_eq!(listed["messages"].as_array().unwrap().len(), 3);

    // Deleting answers 204, also for a message already gone (as Quay).
    for _ in 0..2 {
        let r = s
            .as_bearer(&admin)
            .send(Method::DELETE, &format!("/api/v1/message/{uuid}"))
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let (_, listed) = s.call(None, Method::GET, "/messages", None).await;
    let left: Vec<&str> = listed["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["severity"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["warning", "error"]);
}
