//! Repository notifications, end to end: the REST API against Quay's recorded answers and its
//! permission checks, the SSRF refusal on create, then deliveries to real receivers started here
//! (an HTTP sink for webhooks and chat services, an SMTP sink for e-mail): a skopeo push raises
//! `repo_push` with the pushed tag, `/test` sends the event's sample payload, a failing receiver
//! gets retries and a failure count until the limit and a reset, an image due to expire raises
//! `repo_image_expiry` on the manual clock, a quota Warning crossing raises `quota_warning`.
//! The `notifications` worker runs one pass at a time (`workers::run_once`), so nothing waits;
//! two passes at once deliver each event once.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::quay::*;
use crate::common::sink::HttpSink;
use crate::common::smtp::SmtpSink;
use crate::common::tags::*;
use crate::common::tools::*;
use crate::common::*;

backend_tests!(
    notification_api_answers_as_quay_for_repository_admins_only,
    notifications_are_delivered_retried_and_reset
);

const HOUR_MS: i64 = 3_600_000;
const REPO: &str = "w2org/notify";

async fn start(extra: &str, b: Backend) -> TestServer {
    TestServer::start_with(
        b,
        Options {
            yaml: format!(
                "SSRF_ALLOWED_HOSTS: [127.0.0.1]\nFEATURE_QUOTA_MANAGEMENT: true\n\
                 NOTIFICATION_TASK_RUN_MINIMUM_INTERVAL_MINUTES: 60\n{extra}"
            ),
            ..Default::default()
        },
    )
    .await
}

/// Creates a notification on `REPO` and returns its uuid.
async fn create(s: &TestServer, token: &str, event: &str, method: &str, config: Value) -> String {
    create_with(s, token, event, method, config, json!({})).await
}

async fn create_with(
    s: &TestServer,
    token: &str,
    event: &str,
    method: &str,
    config: Value,
    event_config: Value,
) -> String {
    let (status, body) = s
        .call(
            Some(token),
            Method::POST,
            &format!("/repository/{REPO}/notification/"),
            Some(json!({ "event": event, "method": method, "config": config, "eventConfig": event_config })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["uuid"].as_str().unwrap().to_owned()
}

async fn notification(s: &TestServer, token: &str, uuid: &str) -> Value {
    let (status, body) = s
        .call(
            Some(token),
            Method::GET,
            &format!("/repository/{REPO}/notification/{uuid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// One pass of the delivery worker.
async fn deliver(s: &TestServer) -> String {
    quayside::workers::run_once(s.ctx(), "notifications")
        .await
        .unwrap()
}

/// What Quay sends for `extra` on `repo` of this server (the recorded payloads' keys).
fn payload(s: &TestServer, repo: &str, extra: Value) -> Value {
    let (namespace, name) = repo.split_once('/').unwrap();
    let mut v = json!({
        "repository": repo, "namespace": namespace, "name": name,
        "docker_url": format!("{}/{repo}", s.host),
        "homepage": format!("http://{}/repository/{repo}", s.host),
    });
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    v
}

async fn notification_api_answers_as_quay_for_repository_admins_only(b: Backend) {
    let s = start("", b).await;
    let token = s.init_admin().await;
    s.create_org(&token, "w2org").await;
    s.as_admin().push_image(REPO, "latest").await;
    let sink = HttpSink::start().await;
    let api = s.as_bearer(&token);
    let path = format!("/api/v1/repository/{REPO}/notification/");

    let r = api.send(Method::GET, &path).await;
    assert_eq!(
        expect_like(r, "more-085-notif-list-empty", &[]).await,
        json!({"notifications": []})
    );
    let r = api
        .request(Method::POST, &path)
        .json(&recorded("more-087-notif-create-missing-url").request_body)
        .send()
        .await
        .unwrap();
    let body = expect_like(r, "more-087-notif-create-missing-url", &[]).await;
    assert_eq!(body["error_message"], "Missing webhook URL");

    // Created in Quay's order: the webhook, then the in-app notification.
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/repository/{REPO}/notification/"),
            Some(json!({
                "event": "repo_push", "method": "webhook", "title": "w2 hook",
                "config": { "url": format!("{}/hook", sink.url) }, "eventConfig": {},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let hook = body["uuid"].as_str().unwrap().to_owned();
    let quay = recorded("more-089-notif-create-quay");
    let mut request = quay.request_body.clone();
    request["config"]["target"]["name"] = json!(ADMIN);
    let r = api
        .request(Method::POST, &path)
        .json(&request)
        .send()
        .await
        .unwrap();
    let created = expect_like(r, "more-089-notif-create-quay", &[]).await;
    assert_eq!(created["title"], "w2 quay");
    assert_eq!(created["config"], request["config"]);
    assert_eq!(created["number_of_failures"], 0);
    let r = api.send(Method::GET, &path).await;
    let list = expect_like(r, "more-091-notif-list", &[]).await;
    let uuids: Vec<&str> = list["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(uuids, [hook.as_str(), created["uuid"].as_str().unwrap()]);
    let r = api
        .send(
            Method::GET,
            &format!("{path}00000000-0000-0000-0000-000000000000"),
        )
        .await;
    expect_like(r, "more-093-notif-get-unknown", &[]).await;

    // Quay's messages for configs it refuses; the SSRF guard refuses private and link-local
    // targets (only 127.0.0.1 is allowed here).
    for (event, method, config, event_config, message) in [
        (
            "repo_push",
            "webhook",
            json!({"url": "http://10.1.2.3/hook"}),
            json!({}),
            "Invalid webhook URL: the host 10.1.2.3 resolves to a non-public address (10.1.2.3), which is not allowed",
        ),
        (
            "repo_push",
            "slack",
            json!({"url": "http://169.254.169.254/latest/meta-data"}),
            json!({}),
            "Invalid Slack Callback URL: the host 169.254.169.254 resolves to a non-public address (169.254.169.254), which is not allowed",
        ),
        (
            "repo_push",
            "slack",
            json!({}),
            json!({}),
            "Missing Slack Callback URL",
        ),
        (
            "repo_push",
            "email",
            json!({}),
            json!({}),
            "Missing e-mail address",
        ),
        (
            "repo_push",
            "email",
            json!({"email": "ops@example.com"}),
            json!({}),
            "The specified e-mail address is not authorized to receive notifications for this repository",
        ),
        (
            "repo_push",
            "flowdock",
            json!({}),
            json!({}),
            "Missing Flowdock API Token",
        ),
        (
            "repo_push",
            "hipchat",
            json!({"notification_token": "t"}),
            json!({}),
            "Missing Hipchat Room ID",
        ),
        (
            "repo_push",
            "quay_notification",
            json!({}),
            json!({}),
            "Missing target",
        ),
        (
            "repo_push",
            "quay_notification",
            json!({"target": {"kind": "team", "name": "nope"}}),
            json!({}),
            "Unknown team nope",
        ),
        (
            "repo_push",
            "quay_notification",
            json!({"target": {"kind": "user", "name": "nobody"}}),
            json!({}),
            "Unknown user nobody",
        ),
        (
            "repo_push",
            "webhook",
            json!({"url": format!("{}/h", sink.url), "template": "{not json"}),
            json!({}),
            "Invalid POST JSON body template: not valid JSON",
        ),
        (
            "repo_image_expiry",
            "webhook",
            json!({"url": format!("{}/h", sink.url)}),
            json!({}),
            "Missing or invalid days: a positive number of days is required",
        ),
        (
            "repo_pull",
            "webhook",
            json!({"url": format!("{}/h", sink.url)}),
            json!({}),
            "Unknown event: repo_pull",
        ),
        (
            "repo_push",
            "sms",
            json!({}),
            json!({}),
            "Unknown method: sms",
        ),
    ] {
        let (status, body) = s
            .call(Some(&token), Method::POST, &format!("/repository/{REPO}/notification/"),
                Some(json!({"event": event, "method": method, "config": config, "eventConfig": event_config})))
            .await;
        assert_quay_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            message,
        );
    }
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/repository/{REPO}/notification/"),
            Some(json!({"event": "repo_push", "method": "webhook"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Only repository administrators (and superusers) see and change notifications.
    let (_, _, reader) = s.user_with_token("reader").await;
    let (_, _, repo_admin) = s.user_with_token("repoadmin").await;
    let (_, _, outsider) = s.user_with_token("outsider").await;
    for (user, role) in [("reader", "read"), ("repoadmin", "admin")] {
        let (status, body) = s
            .call(
                Some(&token),
                Method::PUT,
                &format!("/repository/{REPO}/permissions/user/{user}"),
                Some(json!({ "role": role })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let one = format!("/repository/{REPO}/notification/{hook}");
    for (who, expected) in [
        (Some(repo_admin.as_str()), StatusCode::OK),
        (Some(reader.as_str()), StatusCode::FORBIDDEN),
        (Some(outsider.as_str()), StatusCode::FORBIDDEN),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        for (method, path) in [
            (Method::GET, format!("/repository/{REPO}/notification/")),
            (Method::GET, one.clone()),
            (Method::POST, format!("{one}/test")),
        ] {
            let (status, body) = s.call(who, method.clone(), &path, None).await;
            assert_eq!(status, expected, "{method} {path}: {body}");
        }
    }
    let (status, _) = s.call(Some(&reader), Method::DELETE, &one, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s
        .call(
            Some(&reader),
            Method::POST,
            &format!("/repository/{REPO}/notification/"),
            Some(json!({"event": "repo_push", "method": "webhook", "config": {"url": format!("{}/x", sink.url)}, "eventConfig": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Deleted: not found on GET, Quay's 400 on test and reset.
    let r = api.send(Method::DELETE, &format!("/api/v1{one}")).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = api.send(Method::GET, &format!("/api/v1{one}")).await;
    expect_like(r, "more-101-notif-get-deleted", &[]).await;
    let r = api.send(Method::POST, &format!("/api/v1{one}/test")).await;
    let body = expect_like(r, "more-103-notif-test-deleted", &[]).await;
    assert_eq!(
        body["error_message"],
        format!("No repository notification found for: w2org, notify, {hook}")
    );
    let (status, body) = s.call(Some(&token), Method::POST, &one, None).await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &format!("No repository notification found for: w2org, notify, {hook}"),
    );
    // Nothing was sent: creating and testing only queue.
    assert!(sink.received().is_empty());
}

/// A small OCI layout holding one runnable image under `tag`.
fn layout_with(dir: &std::path::Path, tag: &str) {
    let image = runnable_image("amd64", &[("hello", b"hello notifications")]);
    write_layout(dir, &[(tag, &image)], None);
}

async fn notifications_are_delivered_retried_and_reset(b: Backend) {
    let smtp = SmtpSink::start();
    let sink = HttpSink::start().await;
    let s = start(
        &format!(
            "FEATURE_MAILING: true\nMAIL_SERVER: 127.0.0.1\nMAIL_PORT: {}\n\
             FLOWDOCK_API_URL: {url}/flowdock\nHIPCHAT_API_URL: {url}/hipchat\n",
            smtp.port,
            url = sink.url
        ),
        b,
    )
    .await;
    let token = s.init_admin().await;
    s.create_org(&token, "w2org").await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository",
            Some(json!({"namespace": "w2org", "repository": "notify", "visibility": "private", "description": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // One notification per method, all on `repo_push`.
    let hook = create(
        &s,
        &token,
        "repo_push",
        "webhook",
        json!({"url": format!("{}/hook", sink.url)}),
    )
    .await;
    create(
        &s,
        &token,
        "repo_push",
        "webhook",
        json!({"url": format!("{}/templated", sink.url), "template": r#"{"text": "${repository} got ${updated_tags}", "tags": "${updated_tags}"}"#}),
    )
    .await;
    create(
        &s,
        &token,
        "repo_push",
        "slack",
        json!({"url": format!("{}/slack", sink.url)}),
    )
    .await;
    create(
        &s,
        &token,
        "repo_push",
        "flowdock",
        json!({"flow_api_token": "flowtoken"}),
    )
    .await;
    create(
        &s,
        &token,
        "repo_push",
        "hipchat",
        json!({"notification_token": "roomsecret", "room_id": "42"}),
    )
    .await;
    create(
        &s,
        &token,
        "repo_push",
        "quay_notification",
        json!({"target": {"kind": "user", "name": ADMIN}}),
    )
    .await;

    // E-mail: the address is confirmed through the link Quay mails, then accepted.
    let email = format!("/repository/{REPO}/authorizedemail/ops@example.com");
    let (status, body) = s.call(Some(&token), Method::POST, &email, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"email": "ops@example.com", "repository": "notify", "namespace": "w2org", "confirmed": false})
    );
    let mail = smtp.wait_for(1).await.remove(0);
    assert!(mail.contains("To: ops@example.com"), "{mail}");
    let code = mail
        .split("authrepoemail?code=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let r = s
        .client
        .get(format!("{}/authrepoemail?code={code}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .client
        .get(format!("{}/authrepoemail?code=wrong", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (_, body) = s.call(Some(&token), Method::GET, &email, None).await;
    assert_eq!(body["confirmed"], true, "{body}");
    create(
        &s,
        &token,
        "repo_push",
        "email",
        json!({"email": "ops@example.com"}),
    )
    .await;

    // A skopeo push of one tag: one `repo_push` per notification, with that tag, only once the
    // worker runs (the push itself only queued).
    let work = tempfile::tempdir().unwrap();
    layout_with(&work.path().join("layout"), "latest");
    run_ok(
        Command::new(require("skopeo"))
            .env("REGISTRY_AUTH_FILE", work.path().join("auth.json"))
            .args(["copy", "--dest-tls-verify=false", "--dest-creds"])
            .arg(format!("{ADMIN}:{ADMIN_PASSWORD}"))
            .arg(format!(
                "oci:{}:latest",
                work.path().join("layout").display()
            ))
            .arg(format!("docker://{}/{REPO}:latest", s.host)),
    );
    assert!(sink.received().is_empty(), "delivered during the push");
    let summary = deliver(&s).await;
    assert!(summary.contains("delivered 7, failed 0"), "{summary}");
    let got = sink.received();
    let at = |path: &str| {
        let found: Vec<_> = got.iter().filter(|r| r.path.starts_with(path)).collect();
        assert_eq!(
            found.len(),
            1,
            "{path}: {:?}",
            got.iter().map(|r| &r.path).collect::<Vec<_>>()
        );
        found[0].clone()
    };
    let push = at("/hook");
    assert_eq!(push.method, Method::POST);
    assert_eq!(push.headers["content-type"], "application/json");
    let recorded_push = recorded("more-097-sink-push-payload").body["body"].clone();
    let expected = payload(&s, REPO, json!({"updated_tags": ["latest"]}));
    let mut diffs = Vec::new();
    shape_diff(&push.json(), &recorded_push, "$", &[], &mut diffs);
    assert!(diffs.is_empty(), "{diffs:?}");
    assert_eq!(push.json(), expected);
    assert_eq!(
        at("/templated").json(),
        json!({"text": "w2org/notify got latest", "tags": ["latest"]})
    );
    let slack = at("/slack").json();
    assert_eq!(slack["text"], "Repository w2org/notify updated");
    assert_eq!(slack["attachments"][0]["color"], "good");
    let flowdock = at("/flowdock/v1/messages/team_inbox/flowtoken").json();
    assert_eq!(flowdock["subject"], "Repository w2org/notify updated");
    assert_eq!(flowdock["tags"], json!(["#repo_push"]));
    let hipchat = at("/hipchat/v2/room/42/notification?auth_token=roomsecret").json();
    assert_eq!(hipchat["color"], "green");
    assert!(
        hipchat["message"].as_str().unwrap().contains("latest"),
        "{hipchat}"
    );
    let mail = smtp.wait_for(2).await.remove(1);
    assert!(
        mail.contains("Subject: [Quay] Repository w2org/notify updated"),
        "{mail}"
    );
    assert!(mail.contains("tags updated: latest"), "{mail}");

    // The in-app notification, and dismissing it.
    let (_, notes) = s
        .call(Some(&token), Method::GET, "/user/notifications", None)
        .await;
    let note = notes["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "repo_push")
        .unwrap_or_else(|| panic!("{notes}"))
        .clone();
    assert_eq!(note["metadata"], expected);
    assert_eq!(note["dismissed"], false);
    let (status, dismissed) = s
        .call(
            Some(&token),
            Method::PUT,
            &format!("/user/notifications/{}", note["id"].as_str().unwrap()),
            Some(json!({"dismissed": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dismissed}");
    assert_eq!(dismissed["dismissed"], true);
    let (_, notes) = s
        .call(Some(&token), Method::GET, "/user/notifications", None)
        .await;
    assert!(
        !notes["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "repo_push"),
        "{notes}"
    );
    let (status, _) = s
        .call(
            None,
            Method::PUT,
            &format!("/user/notifications/{}", note["id"].as_str().unwrap()),
            Some(json!({"dismissed": true})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // `/test` sends the event's sample payload (Quay's, recorded).
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/repository/{REPO}/notification/{hook}/test"),
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    deliver(&s).await;
    let test = sink.received().pop().unwrap();
    assert_eq!(test.path, "/hook");
    let recorded_test = recorded("more-095-sink-test-payload").body["body"].clone();
    assert_eq!(
        test.json(),
        payload(
            &s,
            REPO,
            json!({"updated_tags": recorded_test["updated_tags"], "pruned_image_count": recorded_test["pruned_image_count"]})
        )
    );

    // A receiver answering 500: each attempt counts a failure and is retried after a backoff;
    // at 3 failures delivery stops until a reset.
    let failing = HttpSink::start().await;
    failing.answer(StatusCode::INTERNAL_SERVER_ERROR);
    let broken = create(
        &s,
        &token,
        "repo_push",
        "webhook",
        json!({"url": format!("{}/broken", failing.url)}),
    )
    .await;
    s.call(
        Some(&token),
        Method::POST,
        &format!("/repository/{REPO}/notification/{broken}/test"),
        None,
    )
    .await;
    let mut attempts = Vec::new();
    for _ in 0..6 {
        deliver(&s).await;
        attempts.push((
            failing.received().len(),
            notification(&s, &token, &broken).await["number_of_failures"]
                .as_i64()
                .unwrap(),
        ));
        // Retried only once the backoff has passed.
        deliver(&s).await;
        assert_eq!(failing.received().len(), attempts.last().unwrap().0);
        s.clock.advance_ms(HOUR_MS);
    }
    assert_eq!(attempts, [(1, 1), (2, 2), (3, 3), (3, 3), (3, 3), (3, 3)]);
    failing.answer(StatusCode::OK);
    let r = s
        .as_bearer(&token)
        .send(
            Method::POST,
            &format!("/api/v1/repository/{REPO}/notification/{broken}"),
        )
        .await;
    expect_like(r, "more-099-notif-reset-failures", &[]).await;
    assert_eq!(
        notification(&s, &token, &broken).await["number_of_failures"],
        0
    );
    deliver(&s).await;
    let got = failing.received();
    assert_eq!(
        got.len(),
        4,
        "the queued event is delivered after the reset"
    );
    assert_eq!(got[3].json()["pruned_image_count"], 3);
    assert_eq!(
        notification(&s, &token, &broken).await["number_of_failures"],
        0
    );

    // Image expiry: a tag expiring in 3 days, a notification 1 day ahead. Nothing until the tag
    // is within a day of its expiration, then one event listing it, once.
    let expiring = HttpSink::start().await;
    create_with(
        &s,
        &token,
        "repo_image_expiry",
        "webhook",
        json!({"url": format!("{}/expiry", expiring.url)}),
        json!({"days": 1}),
    )
    .await;
    let three_days = artifact(&[("quay.expires-after", "3d")]);
    push_artifact(&s, REPO, "short-lived", &three_days).await;
    s.clock.advance_ms(2 * HOUR_MS);
    deliver(&s).await;
    assert!(expiring.received().is_empty());
    s.clock.advance_ms(48 * HOUR_MS);
    let summary = deliver(&s).await;
    assert!(
        summary.starts_with("raised 1 image-expiry events"),
        "{summary}"
    );
    let got = expiring.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].json(),
        payload(
            &s,
            REPO,
            json!({"tags": ["short-lived"], "expiring_in": "1 days"})
        )
    );
    s.clock.advance_ms(2 * HOUR_MS);
    deliver(&s).await;
    assert_eq!(
        expiring.received().len(),
        1,
        "raised once per tag and expiration"
    );

    // A push that takes the namespace over its Warning limit raises `quota_warning`.
    let quota = HttpSink::start().await;
    create(
        &s,
        &token,
        "quota_warning",
        "webhook",
        json!({"url": format!("{}/quota", quota.url)}),
    )
    .await;
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            "/organization/w2org/quota",
            Some(json!({"limit_bytes": 1_000_000})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, quotas) = s
        .call(Some(&token), Method::GET, "/organization/w2org/quota", None)
        .await;
    let id = quotas[0]["id"].as_i64().unwrap();
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/organization/w2org/quota/{id}/limit"),
            Some(json!({"type": "Warning", "threshold_percent": 50})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    deliver(&s).await;
    assert!(quota.received().is_empty());
    let big = Image::build(vec![random_bytes(600_000)], "amd64", false);
    let api = s.as_admin();
    for blob in big.blobs() {
        api.push_blob(REPO, blob).await;
    }
    let r = api
        .put_manifest(REPO, "big", big.media_type, &big.manifest)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    deliver(&s).await;
    let got = quota.received();
    assert_eq!(got.len(), 1);
    let body = got[0].json();
    assert_eq!(body["repository"], REPO);
    assert_eq!(body["quota_bytes"], 1_000_000);
    assert!(body["used_bytes"].as_i64().unwrap() >= 600_000, "{body}");

    // Two workers at once (as on two replicas) deliver each queued event exactly once.
    let many = HttpSink::start().await;
    let uuid = create(
        &s,
        &token,
        "repo_push",
        "webhook",
        json!({"url": format!("{}/many", many.url)}),
    )
    .await;
    for _ in 0..30 {
        let (status, _) = s
            .call(
                Some(&token),
                Method::POST,
                &format!("/repository/{REPO}/notification/{uuid}/test"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    tokio::join!(deliver(&s), deliver(&s));
    deliver(&s).await;
    assert_eq!(many.received().len(), 30);
}
