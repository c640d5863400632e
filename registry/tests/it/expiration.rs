//! Tag expiration: through the API (epoch seconds, `null` clears), from `quay.expires-after` in
//! manifest and index annotations (`never` clears) and in image config labels (a Containerfile
//! `LABEL` built and pushed with buildah). Expired tags stop being served at once; the
//! `expiration` worker then ends their lifetimes at their expiration time. Time moves with the
//! server's manual clock, never by sleeping.

use std::process::Command;

use quayside::service::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::oci::*;
use crate::common::tags::*;
use crate::common::tools::*;
use crate::common::*;

backend_tests!(
    expiration_through_the_api,
    expired_tags_stop_being_served_before_the_worker_runs,
    expiration_from_annotations_and_never,
    expiration_from_index_annotations_and_shared_child_labels,
    expiration_from_a_dockerfile_label_built_with_buildah
);

async fn set_expiration(
    s: &TestServer,
    token: &str,
    repo: &str,
    tag: &str,
    at: Value,
) -> (StatusCode, Value) {
    s.call(
        Some(token),
        Method::PUT,
        &format!("/repository/{repo}/tag/{tag}"),
        Some(json!({ "expiration": at })),
    )
    .await
}

async fn expiration_through_the_api(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    let repo = "admin/app";
    s.as_admin().push_image(repo, "v1").await;
    let start_s = s.clock.now_ms() / 1000;
    s.clock.advance_ms(2 * HOUR_MS);

    let at = start_s + 10 * 3600;
    let (status, body) = set_expiration(&s, &token, repo, "v1", json!(at)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!("Updated"));
    let h = history(&s, &token, repo, "").await;
    let tag = &h["tags"][0];
    assert_eq!(tag["end_ts"], at, "{h}");
    assert!(tag["expiration"].as_str().unwrap().ends_with(" -0000"));
    // Still live until then.
    assert!(v2_digest(&s, repo, "v1").await.is_some());
    assert_eq!(
        history(&s, &token, repo, "?onlyActiveTags=true").await["tags"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // `null` clears it; the past is refused; a string of seconds is accepted, as in the guide.
    let (status, _) = set_expiration(&s, &token, repo, "v1", Value::Null).await;
    assert_eq!(status, StatusCode::CREATED);
    let h = history(&s, &token, repo, "").await;
    assert!(h["tags"][0].get("end_ts").is_none(), "{h}");
    let (status, body) = set_expiration(&s, &token, repo, "v1", json!(start_s)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // In Quay's `{"message": ...}` shape (recorded: more-053; its text is Flask's generic one).
    let mut diffs = Vec::new();
    crate::common::quay::shape_diff(
        &body,
        &crate::common::quay::recorded("more-053-tag-expire-past").body,
        "$",
        &[],
        &mut diffs,
    );
    assert!(diffs.is_empty(), "{diffs:?} {body}");
    assert_eq!(body, json!({"message": "expiration must be in the future"}));
    let (status, _) = set_expiration(&s, &token, repo, "v1", json!(at.to_string())).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(history(&s, &token, repo, "").await["tags"][0]["end_ts"], at);

    // Quay keeps an expiration at least LABELED_EXPIRATION_MINIMUM (1h) after the tag started.
    s.as_admin().push_image(repo, "fresh").await;
    let fresh_start = s.clock.now_ms() / 1000;
    let (status, _) = set_expiration(&s, &token, repo, "fresh", json!(fresh_start + 60)).await;
    assert_eq!(status, StatusCode::CREATED);
    let h = history(&s, &token, repo, "?specificTag=fresh").await;
    assert_eq!(h["tags"][0]["end_ts"], fresh_start + 3600, "{h}");

    // Only live tags have an expiration to change.
    let (status, _) = set_expiration(&s, &token, repo, "missing", json!(at)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let entries = s.audit("admin").await;
    let changes: Vec<Value> = entries
        .iter()
        .filter(|e| e.kind == "change_tag_expiration")
        .map(|e| serde_json::from_str(&e.metadata).unwrap())
        .collect();
    assert_eq!(changes.len(), 4, "{changes:?}");
    assert!(changes.iter().any(|m| m["expiration_date"].is_null()));
}

async fn expired_tags_stop_being_served_before_the_worker_runs(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    let repo = "admin/app";
    let image = s.as_admin().push_image(repo, "v1").await;
    s.as_admin().push_image(repo, "keep").await;
    let at = s.clock.now_ms() / 1000 + 2 * 3600;
    let (status, _) = set_expiration(&s, &token, repo, "v1", json!(at)).await;
    assert_eq!(status, StatusCode::CREATED);
    // Warm the pull cache: an expired tag must never be served from it.
    assert_eq!(v2_digest(&s, repo, "v1").await, Some(image.digest.clone()));

    s.clock.advance_ms(2 * HOUR_MS + 1);
    assert_eq!(v2_digest(&s, repo, "v1").await, None);
    assert_eq!(v2_tags(&s, repo).await, ["keep"]);
    let active = history(&s, &token, repo, "?onlyActiveTags=true").await;
    assert_eq!(lifetimes(&active, "v1").len(), 0, "{active}");
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            &format!("/repository/{repo}/tag/v1"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an expired tag is not live");

    // The worker writes the end of the lifetime: its expiration, not the time it ran.
    s.clock.advance_ms(HOUR_MS);
    let summary = quayside::workers::run_once(s.ctx(), "expiration")
        .await
        .unwrap();
    assert_eq!(summary, "ended 1 expired tags");
    let repo_row = quayside::db::content::repositories::get(s.ctx().db.pool(), "admin", "app")
        .await
        .unwrap()
        .unwrap();
    let rows = quayside::db::content::tags::history(
        s.ctx().db.pool(),
        repo_row.id,
        quayside::db::content::tags::HistoryFilter {
            name: Some("v1"),
            live_only: false,
        },
        s.clock.now_ms(),
        0,
        10,
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    // Ended at the expiration (which, as in Quay, keeps the start's milliseconds).
    assert_eq!(rows[0].end_ms, rows[0].expiration_ms);
    assert_eq!(rows[0].end_ms.map(|e| e / 1000), Some(at));
    let h = history(&s, &token, repo, "?specificTag=v1").await;
    assert_eq!(h["tags"][0]["end_ts"], at);

    // Pushing the name again starts a new lifetime; restoring the expired one works inside the
    // window.
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            &format!("/repository/{repo}/tag/v1/restore"),
            Some(json!({"manifest_digest": image.digest})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(v2_digest(&s, repo, "v1").await, Some(image.digest));
}

async fn expiration_from_annotations_and_never(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    let repo = "admin/artifacts";
    let two_days = artifact(&[("quay.expires-after", "2d"), ("expiration", "2d")]);
    push_artifact(&s, repo, "test2", &two_days).await;
    let start = s.clock.now_ms() / 1000;
    let h = history(&s, &token, repo, "?specificTag=test2").await;
    assert_eq!(h["tags"][0]["end_ts"], start + 2 * 86_400, "{h}");
    assert!(h["tags"][0]["expiration"].is_string());

    // Annotations are labels of the manifest, imported with source_type manifest.
    let (status, labels) = s
        .call(
            Some(&token),
            Method::GET,
            &format!("/repository/{repo}/manifest/{}/labels", two_days.digest),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{labels}");
    let keys: Vec<&str> = labels["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            assert_eq!(l["source_type"], "manifest");
            l["key"].as_str().unwrap()
        })
        .collect();
    assert_eq!(keys, ["expiration", "quay.expires-after"]);

    // `never` on the next push leaves the new lifetime without an expiration.
    s.clock.advance_ms(HOUR_MS);
    let never = artifact(&[("quay.expires-after", "never")]);
    push_artifact(&s, repo, "test2", &never).await;
    let h = history(&s, &token, repo, "?specificTag=test2").await;
    let l = lifetimes(&h, "test2");
    assert_eq!(l.len(), 2);
    assert_eq!(l[0]["manifest_digest"], never.digest);
    assert!(
        l[0].get("end_ts").is_none() && l[0].get("expiration").is_none(),
        "{h}"
    );
    assert_eq!(l[1]["end_ts"], start + 3600);

    // Units of hours and weeks; re-pushing the same manifest starts a new lifetime with a new
    // expiration (as in Quay).
    let hour = artifact(&[("quay.expires-after", "1h")]);
    push_artifact(&s, repo, "hourly", &hour).await;
    s.clock.advance_ms(HOUR_MS / 2);
    push_artifact(&s, repo, "hourly", &hour).await;
    let now = s.clock.now_ms() / 1000;
    let h = history(&s, &token, repo, "?specificTag=hourly").await;
    let l = lifetimes(&h, "hourly");
    assert_eq!(l.len(), 2, "{h}");
    assert_eq!(l[0]["end_ts"], now + 3600);
    assert_eq!(
        l[1]["end_ts"], now,
        "the first lifetime ended at the re-push"
    );
    let weeks = artifact(&[("quay.expires-after", "3w")]);
    push_artifact(&s, repo, "weekly", &weeks).await;
    let h = history(&s, &token, repo, "?specificTag=weekly").await;
    assert_eq!(h["tags"][0]["end_ts"], now + 21 * 86_400);

    // A digest push carries no tag to expire; tagging it later through /v2 applies the label.
    let later = artifact(&[("quay.expires-after", "1h")]);
    push_artifact(&s, repo, &later.digest.clone(), &later).await;
    let r = s
        .as_admin()
        .put_manifest(repo, "later", OCI_MANIFEST, &later.manifest)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let h = history(&s, &token, repo, "?specificTag=later").await;
    assert_eq!(h["tags"][0]["end_ts"], now + 3600);
    s.clock.advance_ms(HOUR_MS + 1);
    assert_eq!(v2_digest(&s, repo, "later").await, None);
    assert_eq!(v2_digest(&s, repo, "hourly").await, None);
    assert!(v2_digest(&s, repo, "weekly").await.is_some());
    assert!(v2_digest(&s, repo, "test2").await.is_some());
}

async fn expiration_from_index_annotations_and_shared_child_labels(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    let repo = "admin/multi";
    let amd = labelled_image(&[("quay.expires-after", "1h")], false);
    let arm = labelled_image(&[("quay.expires-after", "1h")], false);
    let other = labelled_image(&[("quay.expires-after", "2d")], false);
    for img in [&amd, &arm, &other] {
        push(&s, repo, &img.digest.clone(), img).await;
    }
    let index_of = |children: &[&Image], annotations: Option<Value>| {
        let mut v: Value = serde_json::from_slice(&index(
            &children.iter().map(|c| (*c, "amd64")).collect::<Vec<_>>(),
            false,
        ))
        .unwrap();
        if let Some(a) = annotations {
            v["annotations"] = a;
        }
        serde_json::to_vec(&v).unwrap()
    };
    let put = |tag: &'static str, body: Vec<u8>| {
        let s = &s;
        async move {
            let r = s.as_admin().put_manifest(repo, tag, OCI_INDEX, &body).await;
            assert_eq!(r.status(), StatusCode::CREATED);
        }
    };
    let now = s.clock.now_ms() / 1000;
    // The index's own annotation.
    put(
        "annotated",
        index_of(&[&amd, &arm], Some(json!({"quay.expires-after": "3w"}))),
    )
    .await;
    // No annotation: the label every child shares.
    put("shared", index_of(&[&amd, &arm], None)).await;
    // Children disagree: no expiration.
    put("mixed", index_of(&[&amd, &other], None)).await;
    let end = |h: Value| h["tags"][0]["end_ts"].clone();
    assert_eq!(
        end(history(&s, &token, repo, "?specificTag=annotated").await),
        now + 21 * 86_400
    );
    assert_eq!(
        end(history(&s, &token, repo, "?specificTag=shared").await),
        now + 3600
    );
    assert_eq!(
        end(history(&s, &token, repo, "?specificTag=mixed").await),
        Value::Null
    );
    let h = history(&s, &token, repo, "?specificTag=shared").await;
    let tag = &h["tags"][0];
    assert_eq!(tag["is_manifest_list"], true);
    assert_eq!(tag["size"], Value::Null);
    assert_eq!(tag["is_sparse"], false);
    assert_eq!(tag["child_manifest_count"], 2);
    assert_eq!(tag["present_child_count"], 2);
    assert_eq!(tag["child_manifests_presence"][&amd.digest], true);
}

async fn expiration_from_a_dockerfile_label_built_with_buildah(b: Backend) {
    let s = TestServer::start(b).await;
    let token = s.init_admin().await;
    let work = tempfile::tempdir().unwrap();
    let context = work.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("message.txt"), "expires soon").unwrap();
    std::fs::write(
        context.join("Containerfile"),
        "FROM scratch\nCOPY message.txt /message.txt\nLABEL quay.expires-after=1h\nLABEL com.example.release-date=2023-11-14\n",
    )
    .unwrap();
    let image = format!("{}/admin/built:v1", s.host);
    let buildah = |args: &[&str]| {
        let mut cmd = Command::new(require("buildah"));
        cmd.env("REGISTRY_AUTH_FILE", work.path().join("auth.json"))
            .arg("--root")
            .arg(work.path().join("storage"))
            .arg("--runroot")
            .arg(work.path().join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args);
        cmd
    };
    run_ok(&mut buildah(&[
        "login",
        "--tls-verify=false",
        "-u",
        ADMIN,
        "-p",
        ADMIN_PASSWORD,
        &s.host,
    ]));
    run_ok(buildah(&["build", "--isolation", "chroot", "-t", &image]).arg(&context));
    let digest_file = work.path().join("digest");
    run_ok(
        buildah(&["push", "--tls-verify=false", "--digestfile"])
            .arg(&digest_file)
            .arg(&image),
    );
    let digest = std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_owned();
    let pushed_at = s.clock.now_ms() / 1000;

    let h = history(&s, &token, "admin/built", "").await;
    let tag = &h["tags"][0];
    assert_eq!(tag["manifest_digest"], digest);
    assert_eq!(tag["end_ts"], pushed_at + 3600, "{h}");

    // The config's labels are the manifest's labels.
    let (status, labels) = s
        .call(
            Some(&token),
            Method::GET,
            &format!("/repository/admin/built/manifest/{digest}/labels"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{labels}");
    let find = |key: &str| {
        labels["labels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no label {key} in {labels}"))
    };
    let expiry = find("quay.expires-after");
    assert_eq!(expiry["value"], "1h");
    assert_eq!(expiry["source_type"], "manifest");
    assert_eq!(expiry["media_type"], "text/plain");
    assert_eq!(find("com.example.release-date")["value"], "2023-11-14");

    s.clock.advance_ms(HOUR_MS - 1000);
    assert_eq!(
        v2_digest(&s, "admin/built", "v1").await,
        Some(digest.clone())
    );
    s.clock.advance_ms(2000);
    assert_eq!(v2_digest(&s, "admin/built", "v1").await, None);
    assert_eq!(
        quayside::workers::run_once(s.ctx(), "expiration")
            .await
            .unwrap(),
        "ended 1 expired tags"
    );
}
