//! The audit log: what is recorded (Quay's kind names, performer, IP, metadata) and that queued
//! records survive a graceful shutdown.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::*;

backend_tests!(
    records_survive_graceful_shutdown,
    catalog_and_records_for_robots,
    a_burst_larger_than_the_queue_is_stored_whole,
    pulls_leave_one_entry_per_reference_and_hour
);

async fn records_survive_graceful_shutdown(b: Backend) {
    let mut s = TestServer::start(b).await;
    let token = s.init_admin().await;
    s.call(
        Some(&token),
        Method::POST,
        "/organization/",
        Some(json!({"name": "acme"})),
    )
    .await;
    s.as_admin().push_image("acme/app", "v1").await;
    // Pulls with a registry token: recorded without a database write on the request path.
    let t = s
        .token(Some((ADMIN, ADMIN_PASSWORD)), &["repository:acme/app:pull"])
        .await;
    for _ in 0..20 {
        assert_eq!(
            s.as_bearer(&t)
                .send(Method::GET, "/v2/acme/app/manifests/v1")
                .await
                .status(),
            StatusCode::OK
        );
    }
    // Stop without flushing first: shutdown writes what is queued.
    s.restart().await;
    let entries = quayside::db::operations::audit::of_namespace(s.ctx().db.pool(), "acme", 1000)
        .await
        .unwrap();
    let pulls: Vec<_> = entries.iter().filter(|e| e.kind == "pull_repo").collect();
    // The 20 pulls of one tag by one user within the hour are one entry counting 20.
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].n, 20);
    let pull = pulls[0];
    assert_eq!(pull.performer.as_deref(), Some(ADMIN));
    assert_eq!(pull.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(pull.repository.as_deref(), Some("app"));
    assert!(pull.repository_id.is_some() && pull.account_id.is_some());
    let metadata: Value = serde_json::from_str(&pull.metadata).unwrap();
    assert_eq!(
        metadata,
        json!({"repo": "app", "namespace": "acme", "tag": "v1"})
    );
    let push = entries.iter().find(|e| e.kind == "push_repo").unwrap();
    let metadata: Value = serde_json::from_str(&push.metadata).unwrap();
    assert_eq!(metadata["tag"], "v1");
    assert!(
        metadata["manifest_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    // The namespace's records outlive the repository they mention.
    s.call(Some(&token), Method::DELETE, "/repository/acme/app", None)
        .await;
    let entries = s.audit("acme").await;
    let deleted = entries.iter().find(|e| e.kind == "delete_repo").unwrap();
    assert_eq!(deleted.repository.as_deref(), Some("app"));
    let pulls: i64 = entries
        .iter()
        .filter(|e| e.kind == "pull_repo")
        .map(|e| e.n)
        .sum();
    assert_eq!(pulls, 20);
    // Failed logins are recorded against the namespace they tried.
    let r = s
        .client
        .get(format!("{}/v2/auth", s.url))
        .basic_auth(ADMIN, Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let entries = s.audit(ADMIN).await;
    let failure = entries.iter().find(|e| e.kind == "login_failure").unwrap();
    assert!(failure.performer.is_none());
    assert!(
        !failure.metadata.contains("nope"),
        "no secret in the log: {}",
        failure.metadata
    );
}

async fn catalog_and_records_for_robots(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    s.call(
        Some(&token),
        Method::POST,
        "/organization/",
        Some(json!({"name": "acme"})),
    )
    .await;
    s.as_admin().push_image("acme/granted", "v1").await;
    s.as_admin().push_image("acme/hidden", "v1").await;
    let robot = s
        .api(&token)
        .create_robot(Some("acme"), "lister", &Default::default())
        .await
        .unwrap();
    s.api(&token)
        .set_user_permission("acme", "granted", "acme+lister", "read")
        .await
        .unwrap();
    // The catalog shows a robot (and a user) what it was granted.
    let t = s
        .token(
            Some(("acme+lister", robot.token.as_deref().unwrap())),
            &["registry:catalog:*"],
        )
        .await;
    let catalog: Value = s
        .as_bearer(&t)
        .send(Method::GET, "/v2/_catalog")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(catalog["repositories"], json!(["acme/granted"]));
    // As in Quay, a token minted with no scope at all still lists what its account may see.
    let t = s
        .token(Some(("acme+lister", robot.token.as_deref().unwrap())), &[])
        .await;
    let r = s.as_bearer(&t).send(Method::GET, "/v2/_catalog").await;
    assert_eq!(r.status(), StatusCode::OK);
    let catalog: Value = r.json().await.unwrap();
    assert_eq!(catalog["repositories"], json!(["acme/granted"]));
    let (_, _, alice) = s.user_with_token("alice").await;
    let _ = alice;
    s.api(&token)
        .set_user_permission("acme", "hidden", "alice", "read")
        .await
        .unwrap();
    let catalog: Value = s
        .as_basic("alice", "alice-password1")
        .send(Method::GET, "/v2/_catalog")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(catalog["repositories"], json!(["acme/hidden"]));
}

/// More records than the queue holds, produced faster than they can be written: producers wait
/// for room (back-pressure) and every record is stored, in multi-row inserts.
async fn a_burst_larger_than_the_queue_is_stored_whole(b: Backend) {
    use quayside::service::operations::audit::{Caller, Event, QUEUE};
    let s = TestServer::start(b).await;
    s.init_admin().await;
    s.as_admin().push_image("admin/burst", "v1").await;
    let ctx = s.ctx();
    let caller = Caller::new(quayside::service::Principal::Anonymous, None);
    let total = QUEUE * 2 + 123;
    let producers = (0..4).map(|p| {
        let caller = caller.clone();
        async move {
            for i in (p..total).step_by(4) {
                let event = Event::repo(
                    "pull_repo",
                    "admin",
                    "burst",
                    json!({ "tag": format!("t{i}") }),
                );
                ctx.audit.record_pressed(&caller, event, ctx.now_ms()).await;
            }
        }
    });
    futures_util::future::join_all(producers).await;
    ctx.audit.flush().await;
    let row = sqlx::query("SELECT COUNT(*) AS n, COUNT(DISTINCT metadata) AS d FROM log_entry WHERE kind = 'pull_repo' AND repository_id IS NOT NULL")
        .fetch_one(ctx.db.pool())
        .await
        .unwrap();
    let (n, d): (i64, i64) = (sqlx::Row::get(&row, "n"), sqlx::Row::get(&row, "d"));
    assert_eq!(n as usize, total);
    assert_eq!(
        d as usize, total,
        "each record stored once, with its own metadata"
    );
}

/// A pull load leaves O(1) entries: one per repository, reference (tag or digest), performer
/// and hour, counting its pulls, across the writer's batches; the logs page shows the entry
/// with its count, and `aggregatelogs` still counts every pull.
async fn pulls_leave_one_entry_per_reference_and_hour(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    s.create_org(&token, "acme").await;
    let image = s.as_admin().push_image("acme/app", "v1").await;
    let t = s
        .token(Some((ADMIN, ADMIN_PASSWORD)), &["repository:acme/app:pull"])
        .await;
    let digest = image.digest.clone();
    let pulls = |reference: String, count: usize| {
        let s = &s;
        let t = &t;
        async move {
            for _ in 0..count {
                let r = s
                    .as_bearer(t)
                    .send(Method::GET, &format!("/v2/acme/app/manifests/{reference}"))
                    .await;
                assert_eq!(r.status(), StatusCode::OK);
            }
        }
    };
    let rows = || async {
        s.flush_audit().await;
        let row = sqlx::query(
            "SELECT COUNT(*) AS rows, CAST(COALESCE(SUM(n), 0) AS BIGINT) AS pulls FROM log_entry \
             WHERE kind = 'pull_repo' AND repository_name = 'app'",
        )
        .fetch_one(s.ctx().db.pool())
        .await
        .unwrap();
        let rows: i64 = sqlx::Row::get(&row, "rows");
        let pulls: i64 = sqlx::Row::get(&row, "pulls");
        (rows, pulls)
    };
    // Two rounds, flushed in between: the second adds to the first's entries.
    futures_util::future::join(pulls("v1".into(), 150), pulls(digest.clone(), 50)).await;
    assert_eq!(rows().await, (2, 200));
    futures_util::future::join(pulls("v1".into(), 100), pulls(digest.clone(), 50)).await;
    let (entries, counted) = rows().await;
    // Both rounds fall in one hour unless the clock crossed an hour meanwhile.
    assert!(entries == 2 || entries == 4, "{entries} pull entries");
    assert_eq!(counted, 350);
    // The repository's logs show the entries and their counts.
    let (status, body) = s
        .call(Some(&token), Method::GET, "/repository/acme/app/logs", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let shown: Vec<&Value> = body["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "pull_repo")
        .collect();
    assert_eq!(shown.len() as i64, entries, "{body}");
    let by_tag: i64 = shown
        .iter()
        .filter(|l| l["metadata"]["tag"] == "v1")
        .map(|l| l["metadata"]["pull_count"].as_i64().unwrap_or(1))
        .sum();
    assert_eq!(by_tag, 250, "{body}");
    assert_eq!(shown[0]["metadata"]["repo"], "app");
    // aggregatelogs counts every pull (today's, whether from the hourly rollup or the entries).
    let (status, body) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/acme/app/aggregatelogs",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pulled: i64 = body["aggregated"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "pull_repo")
        .map(|a| a["count"].as_i64().unwrap())
        .sum();
    assert_eq!(pulled, 350, "{body}");
    // The performer filter reads the entries themselves (not the rollup): same total.
    let (_, body) = s
        .call(
            Some(&token),
            Method::GET,
            &format!("/repository/acme/app/aggregatelogs?performer={ADMIN}"),
            None,
        )
        .await;
    let pulled: i64 = body["aggregated"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "pull_repo")
        .map(|a| a["count"].as_i64().unwrap())
        .sum();
    assert_eq!(pulled, 350, "{body}");
    // Popularity and per-day stats read the counts too.
    let repo_id = quayside::db::operations::logs::repository_id(s.ctx().db.pool(), "acme", "app")
        .await
        .unwrap()
        .unwrap();
    let n = quayside::db::operations::audit::action_count(s.ctx().db.pool(), repo_id, 0)
        .await
        .unwrap();
    assert_eq!(n, 351, "350 pulls and the push");
}
