//! Quotas: the API against the recorded Quay answers (status codes, shapes, error messages);
//! accounting (each blob once per repository and per namespace) through pushes, tag deletes,
//! repository deletes and garbage collection, checked after every step by `quota verify`;
//! concurrent pushes into one namespace; the backfill; enforcement at upload start and manifest
//! PUT (also with skopeo); the audit entries of crossings; `quayside quota verify --fix`.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::quay::*;
use crate::common::tags::*;
use crate::common::tools::*;
use crate::common::*;
use quayside::service::content::quota;

backend_tests!(
    quota_api_matches_quay,
    accounting_through_pushes_deletes_and_gc,
    concurrent_pushes_into_one_namespace,
    backfill_and_verify_fix,
    accounting_off_then_backfilled_when_turned_on,
    pushes_over_a_reject_limit_are_refused,
    skopeo_push_is_refused_over_quota
);

const BIN: &str = env!("CARGO_BIN_EXE_quayside");

async fn start(b: Backend, extra: &str) -> TestServer {
    TestServer::start_with(
        b,
        Options {
            yaml: format!("FEATURE_QUOTA_MANAGEMENT: true\n{extra}"),
            ..Default::default()
        },
    )
    .await
}

/// Sends `method path` with a JSON body (or none) as `token` and compares with a recording.
async fn like(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    name: &str,
) -> Value {
    let mut req = s
        .as_bearer(token)
        .request(method, &format!("/api/v1{path}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    expect_like(req.send().await.unwrap(), name, &[]).await
}

#[track_caller]
fn assert_clean(report: &quota::VerifyReport) {
    assert!(
        report.is_clean(),
        "quota verify found differences: {report:?}"
    );
}

async fn verify_clean(s: &TestServer) {
    let report = quota::verify(s.ctx(), false).await.unwrap();
    assert_clean(&report);
}

async fn org_used(s: &TestServer, token: &str, org: &str) -> i64 {
    let (status, body) = s
        .call(
            Some(token),
            Method::GET,
            &format!("/organization/{org}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["quota_report"]["quota_bytes"].as_i64().unwrap()
}

async fn repo_used(s: &TestServer, token: &str, org: &str) -> Vec<(String, i64)> {
    let (status, body) = s
        .call(
            Some(token),
            Method::GET,
            &format!("/repository?namespace={org}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut out: Vec<(String, i64)> = body["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["quota_report"]["quota_bytes"].as_i64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Total size of the distinct blobs of `images`.
fn distinct(images: &[&Image]) -> i64 {
    let mut seen = BTreeSet::new();
    images
        .iter()
        .flat_map(|i| i.blobs())
        .filter(|b| seen.insert(sha256(b)))
        .map(|b| b.len() as i64)
        .sum()
}

async fn quota_api_matches_quay(b: Backend) {
    let s = start(b, "").await;
    let token = s.init_admin().await;
    s.create_org(&token, "w2org").await;
    let q = "/organization/w2org/quota";

    like(
        &s,
        &token,
        Method::GET,
        q,
        None,
        "more-009-quota-list-empty",
    )
    .await;
    like(
        &s,
        &token,
        Method::POST,
        q,
        Some(json!({"limit_bytes": 104857600})),
        "15-create-quota",
    )
    .await;
    let dup = like(
        &s,
        &token,
        Method::POST,
        q,
        Some(json!({"limit_bytes": 104857600})),
        "more-011-quota-create-dup",
    )
    .await;
    assert_eq!(
        dup["error_message"],
        "Organization quota for 'w2org' already exists"
    );
    let list = like(&s, &token, Method::GET, q, None, "16-list-quota").await;
    let id = list[0]["id"].as_i64().unwrap();
    assert_eq!(list[0]["limit"], "100.0 MiB");
    let one = like(
        &s,
        &token,
        Method::GET,
        &format!("{q}/{id}"),
        None,
        "more-013-quota-get",
    )
    .await;
    assert_eq!(one, list[0]);
    let changed = like(
        &s,
        &token,
        Method::PUT,
        &format!("{q}/{id}"),
        Some(json!({"limit_bytes": 209715200})),
        "more-015-quota-update",
    )
    .await;
    assert_eq!(
        (changed["limit_bytes"].as_i64(), changed["limit"].as_str()),
        (Some(209715200), Some("200.0 MiB"))
    );
    let bad = like(
        &s,
        &token,
        Method::PUT,
        &format!("{q}/{id}"),
        Some(json!({"limit": "lots"})),
        "more-017-quota-update-bad-unit",
    )
    .await;
    assert_eq!(
        bad["error_message"],
        recorded("more-017-quota-update-bad-unit").body["error_message"]
    );
    // The human form is accepted too.
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            &format!("{q}/{id}"),
            Some(json!({"limit": "300 MiB"})),
        )
        .await;
    assert_eq!(
        (status, body["limit_bytes"].as_i64()),
        (StatusCode::OK, Some(314572800)),
        "{body}"
    );

    // Limits.
    let limits = format!("{q}/{id}/limit");
    like(
        &s,
        &token,
        Method::POST,
        &limits,
        Some(json!({"type": "Warning", "threshold_percent": 60})),
        "17-create-quota-limit",
    )
    .await;
    like(
        &s,
        &token,
        Method::POST,
        &limits,
        Some(json!({"type": "Reject", "threshold_percent": 90})),
        "more-019-quota-limit-create-reject",
    )
    .await;
    let listed = like(
        &s,
        &token,
        Method::GET,
        &limits,
        None,
        "more-021-quota-limit-list",
    )
    .await;
    assert_eq!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (
                l["type"].as_str().unwrap(),
                l["limit_percent"].as_i64().unwrap()
            ))
            .collect::<Vec<_>>(),
        [("Warning", 60), ("Reject", 90)]
    );
    like(
        &s,
        &token,
        Method::GET,
        &format!("{limits}/999999"),
        None,
        "more-023-quota-limit-get-unknown",
    )
    .await;
    like(
        &s,
        &token,
        Method::GET,
        q,
        None,
        "more-029-quota-list-after-push",
    )
    .await;
    for (body, message) in [
        (
            json!({"type": "Warning", "threshold_percent": 101}),
            "Invalid quota limit threshold 101: must be between 1 and 100 percent",
        ),
        (
            json!({"type": "Warning", "threshold_percent": 60}),
            "Quota limit already exists",
        ),
        (
            json!({"type": "Reject", "threshold_percent": 95}),
            "Only one quota limit of type 'Reject' allowed.",
        ),
        (
            json!({"type": "Hard", "threshold_percent": 95}),
            "Invalid quota limit type 'Hard': must be 'Warning' or 'Reject'",
        ),
    ] {
        let (status, answer) = s
            .call(Some(&token), Method::POST, &limits, Some(body))
            .await;
        assert_quay_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            message,
        );
    }
    // Unknown quota ids and ids that are not numbers: Quay's 404.
    for path in [
        format!("{q}/999999"),
        format!("{q}/abc/limit"),
        "/organization/nope/quota".to_owned(),
    ] {
        let (status, answer) = s.call(Some(&token), Method::GET, &path, None).await;
        assert_quay_error(
            status,
            &answer,
            StatusCode::NOT_FOUND,
            "not_found",
            "Not Found",
        );
    }

    // An organization view lists the quota; the repository list reports it.
    let (_, org) = s
        .call(Some(&token), Method::GET, "/organization/w2org", None)
        .await;
    assert_eq!(org["quotas"][0]["limit_bytes"], 314572800);
    assert_eq!(org["quotas"][0]["limits"].as_array().unwrap().len(), 2);
    assert_eq!(org["quota_report"]["configured_quota"], 314572800);
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository",
            Some(json!({"namespace": "w2org", "repository": "app", "visibility": "private", "description": "w2 app repo"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let image = s.as_admin().push_image("w2org/app", "v1").await;
    let listed = like(
        &s,
        &token,
        Method::GET,
        "/repository?namespace=w2org&last_modified=true&popularity=true",
        None,
        "more-027-repo-list-quota",
    )
    .await;
    let report = &listed["repositories"][0]["quota_report"];
    assert_eq!(report["quota_bytes"], distinct(&[&image]));
    assert_eq!(report["configured_quota"], 314572800);

    // A member who is not an administrator reads; an administrator who is not a superuser may
    // not create limits (Quay: only superusers, unless DEFAULT_SYSTEM_REJECT_QUOTA_BYTES is 0).
    let (_, _, user_token) = s.user_with_token("orgadmin").await;
    let (status, _) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/w2org/team/owners/members/orgadmin",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = s
        .call(
            Some(&user_token),
            Method::POST,
            &limits,
            Some(json!({"type": "Warning", "threshold_percent": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, answer) = s
        .call(
            Some(&user_token),
            Method::DELETE,
            &format!("{limits}/1"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (_, _, stranger) = s.user_with_token("stranger").await;
    let (status, _) = s.call(Some(&stranger), Method::GET, q, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(
            Some(&stranger),
            Method::GET,
            "/superuser/users/admin/quota",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // User quotas: the superuser sets them, the user reads them.
    like(
        &s,
        &token,
        Method::GET,
        "/user/quota",
        None,
        "more-037-user-quota-list-empty",
    )
    .await;
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            "/superuser/users/admin/quota",
            Some(json!({"limit_bytes": 52428800})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let su = like(
        &s,
        &token,
        Method::GET,
        "/superuser/users/admin/quota",
        None,
        "more-039-su-user-quota-list",
    )
    .await;
    let uid = su[0]["id"].as_i64().unwrap();
    like(
        &s,
        &token,
        Method::GET,
        &format!("/user/quota/{uid}"),
        None,
        "more-041-user-quota-get",
    )
    .await;
    let (status, answer) = s
        .call(
            Some(&token),
            Method::GET,
            &format!("/user/quota/{id}"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the organization's quota is not the user's: {answer}"
    );
    like(
        &s,
        &token,
        Method::PUT,
        &format!("/superuser/users/admin/quota/{uid}"),
        Some(json!({"limit_bytes": 62914560})),
        "more-043-su-user-quota-update",
    )
    .await;
    like(
        &s,
        &token,
        Method::DELETE,
        &format!("/superuser/users/admin/quota/{uid}"),
        None,
        "more-045-su-user-quota-delete",
    )
    .await;
    let (status, _) = s
        .call(
            Some(&token),
            Method::GET,
            "/superuser/organization/w2org/quota",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The superuser's view of every organization's usage.
    let orgs = like(
        &s,
        &token,
        Method::GET,
        "/superuser/organizations/",
        None,
        "more-193-su-orgs-list",
    )
    .await;
    assert_eq!(
        orgs["organizations"][0]["quota_report"]["quota_bytes"],
        distinct(&[&image])
    );
    assert_eq!(
        orgs["organizations"][0]["quotas"][0]["limit_bytes"],
        314572800
    );

    like(
        &s,
        &token,
        Method::PUT,
        &format!("{q}/{id}"),
        Some(json!({"limit_bytes": 104857600})),
        "more-033-quota-restore",
    )
    .await;
    like(
        &s,
        &token,
        Method::DELETE,
        &format!("{limits}/2"),
        None,
        "more-035-quota-limit-delete",
    )
    .await;
    like(
        &s,
        &token,
        Method::DELETE,
        &format!("{q}/{id}"),
        None,
        "more-241-quota-delete",
    )
    .await;
    let final_list = like(
        &s,
        &token,
        Method::GET,
        "/repository?namespace=w2org",
        None,
        "more-243-repo-list-final",
    )
    .await;
    assert_eq!(
        final_list["repositories"][0]["quota_report"]["configured_quota"],
        Value::Null
    );
    let kinds: Vec<String> = s.audit("w2org").await.into_iter().map(|e| e.kind).collect();
    for kind in [
        "org_create_quota",
        "org_change_quota",
        "org_create_quota_limit",
        "org_delete_quota_limit",
        "org_delete_quota",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

async fn accounting_through_pushes_deletes_and_gc(b: Backend) {
    let s = start(b, "").await;
    let token = s.init_admin().await;
    org(&s, &token, "acct", 0).await;
    let shared = random_bytes(3000);
    let a1 = Image::build(vec![shared.clone(), random_bytes(1000)], "amd64", false);
    let a2 = Image::build(vec![shared.clone(), random_bytes(700)], "amd64", false);
    let b1 = Image::build(vec![shared.clone(), random_bytes(500)], "amd64", false);

    push(&s, "acct/a", "one", &a1).await;
    push(&s, "acct/a", "two", &a2).await;
    // The same manifest under a second tag and pushed again counts nothing more.
    push(&s, "acct/a", "again", &a1).await;
    push(&s, "acct/b", "one", &b1).await;
    verify_clean(&s).await;
    assert_eq!(
        repo_used(&s, &token, "acct").await,
        [
            ("a".to_owned(), distinct(&[&a1, &a2])),
            ("b".to_owned(), distinct(&[&b1]))
        ]
    );
    assert_eq!(
        org_used(&s, &token, "acct").await,
        distinct(&[&a1, &a2, &b1])
    );

    // A manifest list counts through its children.
    let amd = Image::build(vec![random_bytes(400)], "amd64", false);
    let arm = Image::build(vec![shared.clone(), random_bytes(300)], "arm64", false);
    push(&s, "acct/b", &amd.digest, &amd).await;
    push(&s, "acct/b", &arm.digest, &arm).await;
    let idx = index(&[(&amd, "amd64"), (&arm, "arm64")], false);
    let r = s
        .as_admin()
        .put_manifest("acct/b", "multi", OCI_INDEX, &idx)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    verify_clean(&s).await;
    assert_eq!(
        org_used(&s, &token, "acct").await,
        distinct(&[&a1, &a2, &b1, &amd, &arm])
    );

    // Deleting tags changes nothing until garbage collection reclaims the manifests.
    for tag in ["two", "again"] {
        let (status, _) = s
            .call(
                Some(&token),
                Method::DELETE,
                &format!("/repository/acct/a/tag/{tag}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    assert_eq!(
        org_used(&s, &token, "acct").await,
        distinct(&[&a1, &a2, &b1, &amd, &arm])
    );
    s.clock.advance_ms(2 * HOUR_MS);
    gc_now(&s).await;
    verify_clean(&s).await;
    assert_eq!(
        repo_used(&s, &token, "acct").await[0],
        ("a".to_owned(), distinct(&[&a1]))
    );
    assert_eq!(
        org_used(&s, &token, "acct").await,
        distinct(&[&a1, &b1, &amd, &arm])
    );

    // Deleting a repository takes it out of the namespace at once; shared blobs stay counted.
    let (status, _) = s
        .call(Some(&token), Method::DELETE, "/repository/acct/b", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    verify_clean(&s).await;
    assert_eq!(org_used(&s, &token, "acct").await, distinct(&[&a1]));
    // Pushing again after it all, and collecting everything.
    push(&s, "acct/b", "back", &b1).await;
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/repository/acct/a/tag/one",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    s.clock.advance_ms(2 * HOUR_MS);
    gc_now(&s).await;
    verify_clean(&s).await;
    assert_eq!(org_used(&s, &token, "acct").await, distinct(&[&b1]));
    assert_eq!(
        quota::bytes_over_limit(s.ctx(), ns_id(&s, "acct").await)
            .await
            .unwrap(),
        None
    );
}

async fn ns_id(s: &TestServer, name: &str) -> i64 {
    quayside::db::tenancy::namespaces::by_name(s.ctx().db.pool(), name)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn concurrent_pushes_into_one_namespace(b: Backend) {
    let s = Arc::new(start(b, "").await);
    let token = s.init_admin().await;
    org(&s, &token, "busy", 0).await;
    let shared = random_bytes(2000);
    let images: Vec<Image> = (0..6)
        .map(|i| Image::build(vec![shared.clone(), random_bytes(100 + i)], "amd64", false))
        .collect();
    let mut tasks = Vec::new();
    for (i, image) in images.iter().enumerate() {
        let (s, image) = (s.clone(), image.clone());
        // Two repositories, three pushes each, all at once.
        tasks.push(tokio::spawn(async move {
            push(&s, &format!("busy/r{}", i % 2), &format!("t{i}"), &image).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    verify_clean(&s).await;
    let all: Vec<&Image> = images.iter().collect();
    assert_eq!(org_used(&s, &token, "busy").await, distinct(&all));
    // Repository deletes racing pushes into the other repository.
    let more: Vec<Image> = (0..3)
        .map(|i| Image::build(vec![shared.clone(), random_bytes(50 + i)], "amd64", false))
        .collect();
    let mut tasks = Vec::new();
    for (i, image) in more.iter().enumerate() {
        let (s, image) = (s.clone(), image.clone());
        tasks.push(tokio::spawn(async move {
            push(&s, "busy/r1", &format!("m{i}"), &image).await
        }));
    }
    let (status, _) = s
        .call(Some(&token), Method::DELETE, "/repository/busy/r0", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for t in tasks {
        t.await.unwrap();
    }
    verify_clean(&s).await;
    let r1: Vec<&Image> = images
        .iter()
        .skip(1)
        .step_by(2)
        .chain(more.iter())
        .collect();
    assert_eq!(org_used(&s, &token, "busy").await, distinct(&r1));
}

async fn backfill_and_verify_fix(b: Backend) {
    let s = start(b, "").await;
    let token = s.init_admin().await;
    org(&s, &token, "old", 0).await;
    let a = Image::random(2);
    let c = Image::random(1);
    push(&s, "old/a", "v1", &a).await;
    push(&s, "old/c", "v1", &c).await;
    // Content from before accounting: no counts, and the repositories wait for the backfill
    // (what migration 0005 leaves behind).
    let pool = s.ctx().db.pool();
    for sql in [
        "DELETE FROM quota_repo_blob",
        "DELETE FROM quota_namespace_blob",
        "DELETE FROM quota_repository_size",
        "DELETE FROM quota_namespace_size",
        "INSERT INTO quota_backfill (repository_id) SELECT DISTINCT repository_id FROM manifest",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
    let (_, org_view) = s
        .call(Some(&token), Method::GET, "/organization/old", None)
        .await;
    assert_eq!(org_view["quota_report"]["backfill_status"], "waiting");
    // A push and a collection while the backfill waits do not confuse it.
    let d = Image::random(1);
    push(&s, "old/a", "v2", &d).await;
    verify_clean(&s).await;
    assert_eq!(quota::backfill_pass(s.ctx()).await.unwrap(), 2);
    verify_clean(&s).await;
    assert_eq!(org_used(&s, &token, "old").await, distinct(&[&a, &c, &d]));
    let (_, org_view) = s
        .call(Some(&token), Method::GET, "/organization/old", None)
        .await;
    assert_eq!(org_view["quota_report"]["backfill_status"], "complete");
    assert_eq!(quota::backfill_pass(s.ctx()).await.unwrap(), 0);

    // Skewed totals are found, and `quayside quota verify --fix` repairs them.
    sqlx::query("UPDATE quota_namespace_size SET size_bytes = size_bytes + 5")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE quota_repo_blob SET refs = refs + 1")
        .execute(pool)
        .await
        .unwrap();
    let report = quota::verify(s.ctx(), false).await.unwrap();
    assert_eq!(report.namespaces_off, ["old"]);
    assert_eq!(report.repositories_off, ["old/a", "old/c"]);
    let config = s.config_path();
    let text = run_fail(
        Command::new(BIN)
            .args(["quota", "verify", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(s.data_dir()),
    );
    assert!(
        text.contains("repository old/a: accounting differs"),
        "{text}"
    );
    let out = run_ok(
        Command::new(BIN)
            .args(["quota", "verify", "--fix", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(s.data_dir()),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(fixed)"));
    verify_clean(&s).await;
    assert_eq!(org_used(&s, &token, "old").await, distinct(&[&a, &c, &d]));
}

/// Rows the accounting holds for the namespace's repositories, and how many of them wait for
/// the backfill.
async fn accounting_rows(s: &TestServer, namespace_id: i64) -> (i64, i64, i64) {
    let pool = s.ctx().db.pool();
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(namespace_id)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    (
        count(
            "SELECT COUNT(*) FROM quota_repo_blob q JOIN repository r ON r.id = q.repository_id \
             WHERE r.namespace_id = $1",
        )
        .await,
        count("SELECT COUNT(*) FROM quota_namespace_blob WHERE namespace_id = $1").await,
        count(
            "SELECT COUNT(*) FROM quota_backfill q JOIN repository r ON r.id = q.repository_id \
             WHERE r.namespace_id = $1",
        )
        .await,
    )
}

/// With `FEATURE_QUOTA_MANAGEMENT` off nothing is counted on push or collection (the
/// repositories are only marked for the backfill, which does not run); turned on, the backfill
/// counts what is there then, and the sizes are what verify computes from scratch.
async fn accounting_off_then_backfilled_when_turned_on(b: Backend) {
    let mut s = TestServer::start(b).await;
    let token = s.init_admin().await;
    org(&s, &token, "off", 0).await;
    let ns = ns_id(&s, "off").await;
    let shared = random_bytes(3000);
    let a1 = Image::build(vec![shared.clone(), random_bytes(1000)], "amd64", false);
    let a2 = Image::build(vec![shared.clone(), random_bytes(700)], "amd64", false);
    let b1 = Image::build(vec![shared.clone(), random_bytes(500)], "amd64", false);
    push(&s, "off/a", "one", &a1).await;
    push(&s, "off/a", "two", &a2).await;
    push(&s, "off/b", "one", &b1).await;
    assert_eq!(accounting_rows(&s, ns).await, (0, 0, 2), "nothing counted");
    assert!(
        !quayside::db::content::quota::namespace_accounted(s.ctx().db.pool(), ns)
            .await
            .unwrap()
    );
    // A collection while off counts nothing either; the backfill worker does not run.
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/repository/off/a/tag/two",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    s.clock.advance_ms(2 * HOUR_MS);
    let report = gc_now(&s).await;
    assert!(report.manifests > 0, "{report:?}");
    let said = quayside::workers::run_once(s.ctx(), "quota").await.unwrap();
    assert!(said.contains("FEATURE_QUOTA_MANAGEMENT: false"), "{said}");
    assert_eq!(accounting_rows(&s, ns).await, (0, 0, 2));

    // Turned on: the backfill counts what is there now.
    s.config_yaml_push("FEATURE_QUOTA_MANAGEMENT: true\n");
    s.restart().await;
    let (_, view) = s
        .call(Some(&token), Method::GET, "/organization/off", None)
        .await;
    assert_eq!(view["quota_report"]["backfill_status"], "waiting", "{view}");
    let said = quayside::workers::run_once(s.ctx(), "quota").await.unwrap();
    assert!(said.contains("2 repositories"), "{said}");
    verify_clean(&s).await;
    assert_eq!(org_used(&s, &token, "off").await, distinct(&[&a1, &b1]));
    assert_eq!(
        repo_used(&s, &token, "off").await,
        [
            ("a".to_owned(), distinct(&[&a1])),
            ("b".to_owned(), distinct(&[&b1]))
        ]
    );
    // And pushes are counted again as they happen.
    push(&s, "off/b", "two", &a2).await;
    verify_clean(&s).await;
    assert_eq!(
        org_used(&s, &token, "off").await,
        distinct(&[&a1, &a2, &b1])
    );
}

async fn pushes_over_a_reject_limit_are_refused(b: Backend) {
    let s = start(b, "DEFAULT_SYSTEM_REJECT_QUOTA_BYTES: 6000\n").await;
    let token = s.init_admin().await;
    org(&s, &token, "full", 0).await;
    let limit = 6000;
    let (_, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/organization/full/quota",
            Some(json!({"limit_bytes": limit})),
        )
        .await;
    assert_eq!(body, Value::String("Created".into()));
    let (_, list) = s
        .call(Some(&token), Method::GET, "/organization/full/quota", None)
        .await;
    let id = list[0]["id"].as_i64().unwrap();
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/organization/full/quota/{id}/limit"),
            Some(json!({"type": "Warning", "threshold_percent": 50})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/organization/full/quota/{id}/limit"),
            Some(json!({"type": "Reject", "threshold_percent": 100})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Over the Warning limit, under the Reject one: pushes go on.
    let first = Image::build(vec![random_bytes(4000)], "amd64", false);
    push(&s, "full/app", "v1", &first).await;
    assert!(distinct(&[&first]) >= limit / 2 && distinct(&[&first]) < limit);
    // This push takes the namespace over the Reject limit.
    let second = Image::build(vec![random_bytes(2000)], "amd64", false);
    push(&s, "full/app", "v2", &second).await;
    // Over it: upload start and manifest PUT are refused with Quay's answer.
    let api = s.as_admin();
    let r = api.send(Method::POST, "/v2/full/app/blobs/uploads/").await;
    expect_like(r, "more-031-v2-upload-start-over-quota", &[]).await;
    let r = api
        .send(Method::POST, "/v2/full/other/blobs/uploads/")
        .await;
    let body = expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    assert_eq!(body["errors"][0]["message"], quota::EXCEEDED);
    let third = Image::build(vec![random_bytes(10)], "amd64", false);
    let r = api
        .put_manifest("full/app", "v3", third.media_type, &third.manifest)
        .await;
    let body = expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    assert_eq!(
        body["errors"][0]["message"],
        "Quota has been exceeded on namespace"
    );
    // The crossings were logged once each.
    let kinds: Vec<String> = s.audit("full").await.into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "quota_warning").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "quota_error").count(),
        1,
        "{kinds:?}"
    );
    let ns = ns_id(&s, "full").await;
    assert_eq!(
        quota::bytes_over_limit(s.ctx(), ns).await.unwrap(),
        Some(distinct(&[&first, &second]) - limit)
    );
    // Raising the limit lets pushes through again.
    let (status, _) = s
        .call(
            Some(&token),
            Method::PUT,
            &format!("/organization/full/quota/{id}"),
            Some(json!({"limit": "1 MiB"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    push(&s, "full/app", "v3", &third).await;

    // A namespace without its own quota falls under DEFAULT_SYSTEM_REJECT_QUOTA_BYTES.
    let big = Image::build(vec![random_bytes(6500)], "amd64", false);
    push(&s, "admin/big", "v1", &big).await;
    let r = api.send(Method::POST, "/v2/admin/big/blobs/uploads/").await;
    expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    let (_, quotas) = s
        .call(Some(&token), Method::GET, "/organization/full/quota", None)
        .await;
    assert_eq!(quotas[0]["default_config_exists"], true);
    verify_clean(&s).await;
}

async fn skopeo_push_is_refused_over_quota(b: Backend) {
    let s = start(b, "").await;
    let token = s.init_admin().await;
    org(&s, &token, "tight", 0).await;
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            "/organization/tight/quota",
            Some(json!({"limit_bytes": 1000})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = s
        .call(Some(&token), Method::GET, "/organization/tight/quota", None)
        .await;
    let id = list[0]["id"].as_i64().unwrap();
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/organization/tight/quota/{id}/limit"),
            Some(json!({"type": "Reject", "threshold_percent": 80})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    push(
        &s,
        "tight/app",
        "v1",
        &Image::build(vec![random_bytes(900)], "amd64", false),
    )
    .await;

    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = runnable_image("amd64", &[("hello", b"over quota")]);
    write_layout(&layout, &[("v1", &image)], None);
    let mut cmd = Command::new(require("skopeo"));
    cmd.env("REGISTRY_AUTH_FILE", work.path().join("auth.json"))
        .args([
            "copy",
            "--retry-times",
            "0",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("{ADMIN}:{ADMIN_PASSWORD}"),
            &format!("oci:{}:v1", layout.display()),
            &format!("docker://{}/tight/app:v2", s.host),
        ]);
    let text = run_fail(&mut cmd);
    assert!(
        text.contains("denied: Quota has been exceeded on namespace"),
        "{text}"
    );
}

/// Benchmark, run by hand (`cargo nextest run -p quayside --test it --run-ignored only -E
/// 'test(namespace_report_time)' --no-capture`): a namespace's report reads one row whatever
/// the number of its repositories. Prints the mean time of the report for 10 and 10,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn namespace_report_time_does_not_grow_with_repositories() {
    let s = start(Backend::Sqlite, "").await;
    let token = s.init_admin().await;
    let mut means = Vec::new();
    for (org_name, repos) in [("small", 10), ("large", 10_000)] {
        s.create_org(&token, org_name).await;
        let ns = ns_id(&s, org_name).await;
        let mut tx = s.ctx().db.begin().await.unwrap();
        for i in 0..repos {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO repository (namespace_id, name, created_ms) VALUES ($1, $2, 0) RETURNING id",
            )
            .bind(ns)
            .bind(format!("r{i}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO quota_repository_size (repository_id, size_bytes) VALUES ($1, 10)",
            )
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        sqlx::query("INSERT INTO quota_namespace_size (namespace_id, size_bytes) VALUES ($1, $2)")
            .bind(ns)
            .bind(10 * repos)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let rounds = 2000;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            let report = quota::namespace_report(s.ctx(), ns).await.unwrap();
            assert_eq!(report.quota_bytes, 10 * repos);
        }
        let mean = started.elapsed() / rounds;
        println!("namespace report, {repos} repositories: {mean:?} per call");
        means.push(mean);
    }
    assert!(means[1] < means[0] * 3, "{means:?}");
}
