//! Usage logs: pages of thousands of entries with filters, `next_page` tokens (tampering refused,
//! stable under concurrent inserts), per-day aggregates, who may read what, exports delivered to
//! a loopback callback and by e-mail, and the rotation of old entries into blob storage.

use std::collections::{BTreeMap, HashSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::quay::{assert_quay_error, expect_like};
use crate::common::sink::HttpSink;
use crate::common::smtp::SmtpSink;
use crate::common::{Backend, Options, TestServer};
use quayside::db::operations::audit::{NewEntry, insert_batch};

backend_tests!(
    logs_page_through_thousands_with_filters,
    next_page_tokens_are_sealed_and_stable_under_inserts,
    who_may_read_logs,
    exports_reach_the_callback_and_the_mailbox,
    rotation_moves_old_entries_to_storage,
);

/// 2026-12-02 00:00:00 UTC.
const DAY0: i64 = 1_796_169_600_000;
const DAY: i64 = 86_400_000;

/// An entry to insert: kind, namespace, repository, performer, time, sequence number.
struct Seed<'a> {
    kind: &'static str,
    namespace: &'a str,
    repository: Option<&'a str>,
    performer: Option<&'a str>,
    at_ms: i64,
    seq: usize,
}

/// Inserts entries through the db layer (as the audit writer does), fast.
async fn insert(s: &TestServer, seeds: &[Seed<'_>]) {
    let pool = s.ctx().db.pool();
    let mut entries = Vec::new();
    for e in seeds {
        let performer_id = match e.performer {
            Some(p) => {
                let found = quayside::db::tenancy::namespaces::by_name(pool, p)
                    .await
                    .unwrap();
                if found.is_none() {
                    s.user(p).await;
                }
                let row = quayside::db::tenancy::namespaces::by_name(pool, p)
                    .await
                    .unwrap();
                Some(row.unwrap().id)
            }
            None => None,
        };
        entries.push(NewEntry {
            kind: e.kind.to_owned(),
            namespace: Some(e.namespace.to_owned()),
            repository: e.repository.map(str::to_owned),
            performer_id,
            performer: e.performer.map(str::to_owned),
            ip: Some("127.0.0.1".into()),
            metadata: json!({"namespace": e.namespace, "seq": e.seq}).to_string(),
            created_ms: e.at_ms,
        });
    }
    let mut tx = s.ctx().db.begin().await.unwrap();
    insert_batch(&mut tx, &entries).await.unwrap();
    tx.commit().await.unwrap();
}

/// A server at noon of DAY0 with organization `acme` (repository `app`), users `bob` (an
/// outsider) and `carol`; returns the admin's token.
async fn setup(s: &TestServer) -> String {
    s.clock.set_ms(DAY0 + DAY / 2);
    let token = s.init_admin().await;
    s.create_org(&token, "acme").await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository",
            Some(json!({"namespace": "acme", "repository": "app", "visibility": "private", "description": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    s.flush_audit().await;
    token
}

/// 3,000 entries over three days (DAY0 - 1 .. DAY0 + 1), in `acme` (half in `acme/app`),
/// performed by `admin` or `bob`, with a few kinds.
fn many<'a>(count: usize) -> Vec<Seed<'a>> {
    const KINDS: [&str; 3] = ["push_repo", "pull_repo", "create_tag"];
    (0..count)
        .map(|i| Seed {
            kind: KINDS[i % 3],
            namespace: "acme",
            repository: (i % 2 == 0).then_some("app"),
            performer: Some(if i % 5 == 0 { "bob" } else { "admin" }),
            // Spread over three days; some share a millisecond (ties broken by id).
            at_ms: DAY0 - DAY + (i as i64 * 3 * DAY / count as i64) / 7 * 7,
            seq: i,
        })
        .collect()
}

// Quay's metadata differs by kind; pages are compared through the first metadata value.

/// Every page of `path` (with `query`), following `next_page`; the entries' `seq`s in order.
async fn all_pages(s: &TestServer, token: &str, path: &str, query: &str) -> (Vec<i64>, usize) {
    let mut seqs = Vec::new();
    let mut pages = 0;
    let mut entries = 0;
    let mut next: Option<String> = None;
    loop {
        let mut q = query.to_owned();
        if let Some(t) = &next {
            q.push_str(&format!("&next_page={}", urlencode(t)));
        }
        let (status, body) = s
            .call(Some(token), Method::GET, &format!("{path}?{q}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        let logs = body["logs"].as_array().unwrap();
        assert!(logs.len() <= 20, "a page holds at most 20 entries");
        entries += logs.len();
        let mut last = i64::MAX;
        for l in logs {
            let at = parse_date(l["datetime"].as_str().unwrap());
            assert!(at <= last, "newest first");
            last = at;
            if let Some(seq) = l["metadata"]["seq"].as_i64() {
                seqs.push(seq);
            }
        }
        match body["next_page"].as_str() {
            Some(t) => {
                assert_eq!(logs.len(), 20, "only the last page is short");
                next = Some(t.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(
        pages,
        entries.div_ceil(20).max(1),
        "{path}?{query}: {entries} entries"
    );
    (seqs, pages)
}

/// The sum of the counts an `aggregatelogs` call answers.
async fn aggregate_total(s: &TestServer, token: &str, path: &str) -> i64 {
    let (status, body) = s.call(Some(token), Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["aggregated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["count"].as_i64().unwrap())
        .sum()
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Seconds of an RFC 2822 date as Quay writes it.
fn parse_date(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc2822(&s.replace("-0000", "+0000"))
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .timestamp()
}

async fn logs_page_through_thousands_with_filters(b: Backend) {
    let s = TestServer::start(b).await;
    let token = setup(&s).await;
    let seeds = many(3000);
    insert(&s, &seeds).await;

    // The whole organization over the three days: every entry once, newest first.
    let range = "starttime=12/01/2026&endtime=12/03/2026";
    let (seqs, pages) = all_pages(&s, &token, "/organization/acme/logs", range).await;
    assert_eq!(seqs.len(), 3000);
    assert_eq!(
        seqs.iter().collect::<HashSet<_>>().len(),
        3000,
        "no entry twice"
    );
    assert!(
        pages > 150,
        "3,000 entries and the API's own: {pages} pages"
    );

    // One day, one repository, one performer: exactly the matching entries.
    let (day1, _) = all_pages(
        &s,
        &token,
        "/repository/acme/app/logs",
        "starttime=2026-12-02&endtime=12/02/2026&performer=bob",
    )
    .await;
    let expected: HashSet<i64> = seeds
        .iter()
        .filter(|e| e.repository.is_some() && e.performer == Some("bob"))
        .filter(|e| e.at_ms >= DAY0 && e.at_ms < DAY0 + DAY)
        .map(|e| e.seq as i64)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(day1.iter().copied().collect::<HashSet<_>>(), expected);
    assert_eq!(day1.len(), expected.len());

    // An unknown performer performed nothing.
    let (none, _) = all_pages(
        &s,
        &token,
        "/organization/acme/logs",
        &format!("{range}&performer=nobody"),
    )
    .await;
    assert!(none.is_empty());

    // Quay's shapes: the repository's, the organization's, the user's, the superuser's page.
    let r = s
        .as_bearer(&token)
        .send(
            Method::GET,
            &format!("/api/v1/repository/acme/app/logs?{range}"),
        )
        .await;
    let body = expect_like(r, "more-165-repo-logs-range", &["metadata"]).await;
    assert_eq!(body["start_time"], "Tue, 01 Dec 2026 00:00:00 -0000");
    assert_eq!(body["end_time"], "Fri, 04 Dec 2026 00:00:00 -0000");
    let r = s
        .as_bearer(&token)
        .send(
            Method::GET,
            &format!("/api/v1/organization/acme/logs?{range}"),
        )
        .await;
    let body = expect_like(r, "more-169-org-logs-next", &["metadata"]).await;
    assert!(body["logs"][0]["performer"]["name"].is_string());
    assert!(body["logs"][0].get("namespace").is_none());
    // The user's own namespace: the admin created nothing there, but the page keeps its shape.
    let r = s
        .as_bearer(&token)
        .send(Method::GET, "/api/v1/user/logs")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // An entry nobody performed (a build's), newest of all: no `performer`, and in the
    // superuser's logs a `namespace`.
    insert(
        &s,
        &[Seed {
            kind: "build_dockerfile",
            namespace: "acme",
            repository: None,
            performer: None,
            at_ms: DAY0 + 2 * DAY - 1,
            seq: 99_999,
        }],
    )
    .await;
    let r = s
        .as_bearer(&token)
        .send(Method::GET, &format!("/api/v1/superuser/logs?{range}"))
        .await;
    let body = expect_like(r, "more-177-su-logs-next", &["metadata"]).await;
    assert_eq!(body["logs"][0]["kind"], "build_dockerfile");
    assert_eq!(body["logs"][0]["namespace"]["name"], "acme");
    assert_eq!(body["logs"][0]["namespace"]["kind"], "org");
    // Without a range: from a day ago to a day ahead, as Quay answers.
    let (_, body) = s
        .call(Some(&token), Method::GET, "/organization/acme/logs", None)
        .await;
    assert_eq!(body["start_time"], "Tue, 01 Dec 2026 12:00:00 -0000");
    assert_eq!(body["end_time"], "Thu, 03 Dec 2026 12:00:00 -0000");
    // Aggregates: counts per kind per day, equal to what was inserted.
    let r = s
        .as_bearer(&token)
        .send(
            Method::GET,
            &format!("/api/v1/repository/acme/app/aggregatelogs?{range}"),
        )
        .await;
    let body = expect_like(r, "more-173-repo-aggregatelogs", &[]).await;
    let mut got = BTreeMap::new();
    for a in body["aggregated"].as_array().unwrap() {
        got.insert(
            (
                a["kind"].as_str().unwrap().to_owned(),
                parse_date(a["datetime"].as_str().unwrap()),
            ),
            a["count"].as_i64().unwrap(),
        );
    }
    let mut want = BTreeMap::new();
    for e in seeds.iter().filter(|e| e.repository.is_some()) {
        let day = e.at_ms.div_euclid(DAY) * DAY / 1000;
        *want.entry((e.kind.to_owned(), day)).or_insert(0) += 1;
    }
    // The API's own create_repo entry (today): what the registry records is what it reads back.
    *want
        .entry(("create_repo".to_owned(), DAY0 / 1000))
        .or_insert(0) += 1;
    assert_eq!(got, want);
    // A range that starts and ends inside hours (the default, a day either side of now):
    // whole hours come from the hourly counts, the two partial hours from the entries.
    s.clock.set_ms(DAY0 + DAY / 2 + 1_234_567);
    let now = DAY0 + DAY / 2 + 1_234_567;
    let (_, body) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/acme/app/aggregatelogs",
            None,
        )
        .await;
    let mut got = BTreeMap::new();
    for a in body["aggregated"].as_array().unwrap() {
        got.insert(
            (
                a["kind"].as_str().unwrap().to_owned(),
                parse_date(a["datetime"].as_str().unwrap()),
            ),
            a["count"].as_i64().unwrap(),
        );
    }
    let mut want = BTreeMap::new();
    for e in seeds
        .iter()
        .filter(|e| e.repository.is_some() && e.at_ms >= now - DAY && e.at_ms < now + DAY)
    {
        let day = e.at_ms.div_euclid(DAY) * DAY / 1000;
        *want.entry((e.kind.to_owned(), day)).or_insert(0) += 1;
    }
    *want
        .entry(("create_repo".to_owned(), DAY0 / 1000))
        .or_insert(0) += 1;
    assert_eq!(got, want);
    // With a performer: counted from the entries.
    let (_, body) = s
        .call(
            Some(&token),
            Method::GET,
            "/repository/acme/app/aggregatelogs?performer=bob",
            None,
        )
        .await;
    let total: i64 = body["aggregated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["count"].as_i64().unwrap())
        .sum();
    let bobs = seeds
        .iter()
        .filter(|e| e.repository.is_some() && e.performer == Some("bob"))
        .filter(|e| e.at_ms >= now - DAY && e.at_ms < now + DAY)
        .count();
    assert_eq!(total, bobs as i64);
    let r = s
        .as_bearer(&token)
        .send(Method::GET, "/api/v1/user/aggregatelogs")
        .await;
    expect_like(r, "more-175-user-aggregatelogs", &[]).await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/acme/aggregatelogs?starttime=01/01/2026&endtime=06/01/2026",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Bad ranges are refused in Quay's error body.
    let (status, body) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/acme/logs?starttime=12/05/2026&endtime=12/01/2026",
            None,
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "End time must be after start time",
    );
    let (status, _) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/acme/logs?starttime=tomorrow",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn next_page_tokens_are_sealed_and_stable_under_inserts(b: Backend) {
    let s = TestServer::start(b).await;
    let token = setup(&s).await;
    let seeds = many(1000);
    insert(&s, &seeds).await;
    let range = "starttime=12/01/2026&endtime=12/03/2026";

    // Page through while new entries keep arriving (newer ones, and ones at the very times
    // being paged): nothing is shown twice, nothing already there is skipped.
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    let mut extra = 0;
    loop {
        let mut q = range.to_owned();
        if let Some(t) = &next {
            q.push_str(&format!("&next_page={}", urlencode(t)));
        }
        let (status, body) = s
            .call(
                Some(&token),
                Method::GET,
                &format!("/organization/acme/logs?{q}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for l in body["logs"].as_array().unwrap() {
            seen.push(l["metadata"]["seq"].as_i64().unwrap_or(-1));
        }
        // New entries while paging: the newest possible in the range, and one in the same
        // second as this page's newest entry.
        let newest = body["logs"][0]["datetime"].as_str().map(parse_date);
        let mut fresh = vec![Seed {
            kind: "push_repo",
            namespace: "acme",
            repository: None,
            performer: Some("admin"),
            at_ms: DAY0 + 2 * DAY - 1,
            seq: 100_000 + extra,
        }];
        if let Some(at) = newest {
            fresh.push(Seed {
                kind: "push_repo",
                namespace: "acme",
                repository: None,
                performer: Some("admin"),
                at_ms: at * 1000 + 999,
                seq: 200_000 + extra,
            });
        }
        insert(&s, &fresh).await;
        extra += 1;
        insert(&s, &fresh).await;
        match body["next_page"].as_str() {
            Some(t) => next = Some(t.to_owned()),
            None => break,
        }
    }
    let original: Vec<i64> = seen
        .iter()
        .copied()
        .filter(|q| (0..100_000).contains(q))
        .collect();
    assert_eq!(original.len(), 1000, "every original entry once");
    assert_eq!(original.iter().collect::<HashSet<_>>().len(), 1000);
    assert!(
        seen.iter().all(|q| *q < 100_000),
        "entries newer than the position do not appear on later pages"
    );
    assert!(extra > 40, "entries were inserted between the pages");

    // A token is opaque and sealed: altered, foreign or replayed elsewhere it is refused.
    let (_, first) = s
        .call(
            Some(&token),
            Method::GET,
            &format!("/organization/acme/logs?{range}"),
            None,
        )
        .await;
    let t = first["next_page"].as_str().unwrap().to_owned();
    assert!(!t.contains("acme") && t.len() > 20);
    let mut bytes = t.clone().into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    for (path, token_value) in [
        ("/organization/acme/logs", tampered.as_str()),
        (
            "/organization/acme/logs",
            "gAAAAABrD5hXbR6ZJIk4GSLBeL4Ds428ma1lRVBdPaek",
        ),
        ("/repository/acme/app/logs", t.as_str()),
        ("/superuser/logs", t.as_str()),
    ] {
        let (status, body) = s
            .call(
                Some(&token),
                Method::GET,
                &format!("{path}?next_page={}", urlencode(token_value)),
                None,
            )
            .await;
        assert_quay_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid next_page token",
        );
    }
}

async fn who_may_read_logs(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = setup(&s).await;
    let (_, _, bob) = s.user_with_token("bob").await;
    let (_, _, carol) = s.user_with_token("carol").await;
    // carol administers acme/app only; bob owns his organization.
    let (status, body) = s
        .call(
            Some(&admin),
            Method::PUT,
            "/repository/acme/app/permissions/user/carol",
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.create_org(&bob, "bobs").await;

    let paths = [
        "/user/logs",
        "/organization/acme/logs",
        "/organization/bobs/logs",
        "/repository/acme/app/logs",
        "/superuser/logs",
        "/user/aggregatelogs",
        "/organization/acme/aggregatelogs",
        "/repository/acme/app/aggregatelogs",
        "/superuser/aggregatelogs",
    ];
    // (caller, which paths answer 200; the others 403, or 401 without credentials)
    let cases: [(Option<&str>, &[&str]); 4] = [
        (None, &[]),
        (
            Some(&admin),
            &[
                "/user/logs",
                "/organization/acme/logs",
                "/organization/bobs/logs",
                "/repository/acme/app/logs",
                "/superuser/logs",
                "/user/aggregatelogs",
                "/organization/acme/aggregatelogs",
                "/repository/acme/app/aggregatelogs",
                "/superuser/aggregatelogs",
            ],
        ),
        (
            Some(&bob),
            &[
                "/user/logs",
                "/organization/bobs/logs",
                "/user/aggregatelogs",
            ],
        ),
        (
            Some(&carol),
            &[
                "/user/logs",
                "/repository/acme/app/logs",
                "/user/aggregatelogs",
                "/repository/acme/app/aggregatelogs",
            ],
        ),
    ];
    for (caller, allowed) in cases {
        for path in paths {
            let (status, body) = s.call(caller, Method::GET, path, None).await;
            let expected = if allowed.contains(&path) {
                StatusCode::OK
            } else if caller.is_none() {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(status, expected, "{caller:?} {path}: {body}");
        }
        // Exports follow the same rule.
        for path in [
            "/organization/acme/exportlogs",
            "/repository/acme/app/exportlogs",
        ] {
            let (status, body) = s
                .call(
                    caller,
                    Method::POST,
                    path,
                    Some(json!({"callback_email": "x@example.com"})),
                )
                .await;
            let read = path.replace("exportlogs", "logs");
            let expected = if allowed.contains(&read.as_str()) {
                StatusCode::OK
            } else if caller.is_none() {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(status, expected, "{caller:?} POST {path}: {body}");
        }
    }
    // A superuser reading a repository that does not exist hears 404.
    let (status, _) = s
        .call(
            Some(&admin),
            Method::GET,
            "/repository/acme/nothing/logs",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn exports_reach_the_callback_and_the_mailbox(b: Backend) {
    let smtp = SmtpSink::start();
    let sink = HttpSink::start().await;
    let yaml = format!(
        "FEATURE_MAILING: true\nMAIL_SERVER: 127.0.0.1\nMAIL_PORT: {}\nMAIL_DEFAULT_SENDER: quay@example.com\nSSRF_ALLOWED_HOSTS: [127.0.0.1]\n",
        smtp.port
    );
    let s = TestServer::start_with(
        b,
        Options {
            yaml,
            ..Options::default()
        },
    )
    .await;
    let token = setup(&s).await;
    // More than one batch (1,000) of the export in the repository.
    let seeds = many(2500);
    insert(&s, &seeds).await;
    let in_repo = seeds.iter().filter(|e| e.repository.is_some()).count();

    // Refused before anything is queued: a non-http URL, a non-public target, no address.
    for (body, message) in [
        (
            json!({"callback_url": "ftp://127.0.0.1/x"}),
            "Invalid callback URL",
        ),
        (
            json!({"callback_email": "not-an-address"}),
            "Invalid callback e-mail",
        ),
        (
            json!({}),
            "Must specify either callback_url or callback_email",
        ),
    ] {
        let (status, answer) = s
            .call(
                Some(&token),
                Method::POST,
                "/repository/acme/app/exportlogs",
                Some(body),
            )
            .await;
        assert_quay_error(
            status,
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            message,
        );
    }
    let (status, answer) = s
        .call(
            Some(&token),
            Method::POST,
            "/repository/acme/app/exportlogs",
            Some(json!({"callback_url": "http://169.254.169.254/latest/meta-data"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .starts_with("Invalid callback URL")
    );

    // To the callback: Quay's answer, then the worker writes the file and POSTs its link.
    let r = s
        .as_bearer(&token)
        .request(
            Method::POST,
            "/api/v1/repository/acme/app/exportlogs?starttime=11/30/2026&endtime=12/03/2026",
        )
        .json(&json!({"callback_url": format!("{}/export", sink.url)}))
        .send()
        .await
        .unwrap();
    let started = expect_like(r, "more-179-repo-exportlogs", &[]).await;
    let export_id = started["export_id"].as_str().unwrap().to_owned();
    quayside::workers::run_once(s.ctx(), "exportlogs")
        .await
        .unwrap();
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].method, Method::POST);
    assert_eq!(got[0].path, "/export");
    let callback = got[0].json();
    assert_eq!(callback["export_id"], export_id.as_str());
    assert_eq!(callback["status"], "success");
    assert_eq!(callback["namespace"], "acme");
    assert_eq!(callback["repository"], "app");
    let url = callback["exported_data_url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{}/exportedlogs/", s.url)),
        "{url}"
    );
    let file: Value = s
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(file["export_id"], export_id.as_str());
    assert_eq!(file["terminator"], "--- LOGS END ---");
    let logs = file["logs"].as_array().unwrap();
    // Every entry of the repository (plus the API's create_repo), each once.
    assert_eq!(logs.len(), in_repo + 1);
    let seqs: HashSet<i64> = logs
        .iter()
        .filter_map(|l| l["metadata"]["seq"].as_i64())
        .collect();
    assert_eq!(seqs.len(), in_repo);
    // Delivered once: another pass sends nothing.
    quayside::workers::run_once(s.ctx(), "exportlogs")
        .await
        .unwrap();
    assert_eq!(sink.received().len(), 1);

    // By e-mail: the message carries a link that works, until it expires.
    let r = s
        .as_bearer(&token)
        .request(Method::POST, "/api/v1/user/exportlogs")
        .json(&json!({"callback_email": "admin@example.com", "starttime": "12/01/2026", "endtime": "12/02/2026"}))
        .send()
        .await
        .unwrap();
    expect_like(r, "more-181-user-exportlogs", &[]).await;
    quayside::workers::run_once(s.ctx(), "exportlogs")
        .await
        .unwrap();
    let mails = smtp.wait_for(1).await;
    let mail = &mails[0];
    assert!(mail.contains("To: admin@example.com"), "{mail}");
    let link = mail
        .split_whitespace()
        .find(|w| w.contains("/exportedlogs/"))
        .unwrap_or_else(|| panic!("no link in {mail}"))
        .to_owned();
    let r = s.client.get(&link).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut forged = link.clone();
    forged.insert(forged.len() - 3, 'x');
    assert_eq!(
        s.client.get(&forged).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    s.clock.advance_ms(3_600_001);
    assert_eq!(
        s.client.get(&link).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.client.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // The worker deletes expired files from storage.
    quayside::workers::run_once(s.ctx(), "exportlogs")
        .await
        .unwrap();
    assert!(
        s.ctx()
            .store
            .list("exportedlogs/")
            .await
            .unwrap()
            .is_empty()
    );

    // A receiver that fails gets retries with backoff, then the export gives up.
    sink.answer(StatusCode::INTERNAL_SERVER_ERROR);
    let (status, _) = s
        .call(
            Some(&token),
            Method::POST,
            "/organization/acme/exportlogs",
            Some(json!({"callback_url": format!("{}/failing", sink.url)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    quayside::workers::run_once(s.ctx(), "exportlogs")
        .await
        .unwrap();
    assert_eq!(sink.wait_for(2).await.len(), 2);
    // Not due again before its backoff.
    quayside::workers::run_once(s.ctx(), "exportlogs")
        .await
        .unwrap();
    assert_eq!(sink.received().len(), 2);
    for attempt in 2..=5 {
        s.clock.advance_ms(60_000);
        quayside::workers::run_once(s.ctx(), "exportlogs")
            .await
            .unwrap();
        // Attempts 2..4 retry; the fifth fails and reports the failure once more.
        let expected = if attempt < 5 {
            1 + attempt
        } else {
            2 + attempt
        };
        assert_eq!(sink.wait_for(expected).await.len(), expected);
    }
    let last = sink.received().last().unwrap().json();
    assert_eq!(last["status"], "failed");
    assert!(last["exported_data_url"].is_null());
    s.clock.advance_ms(600_000);
    quayside::workers::run_once(s.ctx(), "exportlogs")
        .await
        .unwrap();
    assert_eq!(sink.received().len(), 7, "given up: no more attempts");
}

async fn rotation_moves_old_entries_to_storage(b: Backend) {
    let s = TestServer::start_with(
        b,
        Options {
            yaml: "FEATURE_ACTION_LOG_ROTATION: true\nACTION_LOG_ROTATION_THRESHOLD: 30d\nACTION_LOG_ARCHIVE_LOCATION: default\nACTION_LOG_ARCHIVE_PATH: archive/logs\n".into(),
            ..Options::default()
        },
    )
    .await;
    let token = setup(&s).await;
    // 2,500 entries 40 days old, 10 from yesterday.
    let old: Vec<Seed> = (0..2500)
        .map(|i| Seed {
            kind: "pull_repo",
            namespace: "acme",
            repository: Some("app"),
            performer: Some("admin"),
            at_ms: DAY0 - 40 * DAY + i as i64,
            seq: i,
        })
        .collect();
    insert(&s, &old).await;
    let recent: Vec<Seed> = (0..10)
        .map(|i| Seed {
            kind: "push_repo",
            namespace: "acme",
            repository: Some("app"),
            performer: Some("admin"),
            at_ms: DAY0 - DAY + i as i64,
            seq: 10_000 + i,
        })
        .collect();
    insert(&s, &recent).await;

    // The counts of the old days (2026-10-23) before and after.
    assert_eq!(
        aggregate_total(
            &s,
            &token,
            "/superuser/aggregatelogs?starttime=10/20/2026&endtime=10/25/2026"
        )
        .await,
        2500
    );
    let summary = quayside::workers::run_once(s.ctx(), "logrotation")
        .await
        .unwrap();
    assert_eq!(summary, "archived 2500 audit-log entries");
    assert_eq!(
        aggregate_total(
            &s,
            &token,
            "/superuser/aggregatelogs?starttime=10/20/2026&endtime=10/25/2026"
        )
        .await,
        0,
        "the hourly counts follow"
    );
    // Gone from the database, kept in storage as JSON lines.
    let (seqs, _) = all_pages(
        &s,
        &token,
        "/repository/acme/app/logs",
        "starttime=10/01/2026&endtime=12/02/2026",
    )
    .await;
    assert_eq!(seqs.len(), 10);
    let mut archived = HashSet::new();
    for entry in s.ctx().store.list("archive/logs/").await.unwrap() {
        let mut stream = s.ctx().store.get(&entry.key, None).await.unwrap();
        let mut text = Vec::new();
        use futures_util::StreamExt;
        while let Some(chunk) = stream.next().await {
            text.extend_from_slice(&chunk.unwrap());
        }
        for line in String::from_utf8(text).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["kind"], "pull_repo");
            archived.insert(v["metadata"]["seq"].as_i64().unwrap());
        }
    }
    assert_eq!(archived.len(), 2500);
    // Nothing more to do.
    let summary = quayside::workers::run_once(s.ctx(), "logrotation")
        .await
        .unwrap();
    assert_eq!(summary, "archived 0 audit-log entries");
}

/// Benchmark, run by hand on PostgreSQL (`QUAYSIDE_TEST_POSTGRES_URL=... cargo nextest run -p
/// quayside --test it --run-ignored ignored-only -E 'test(ten_million)' --no-capture`): 10 million
/// entries in one organization over 30 days (100 repositories, 5 kinds), then the p50 and p95 of
/// 200 calls each of an organization's first page, a page 50 pages deep, a repository's page,
/// and `aggregatelogs` over the default range and over 30 days. Figures in docs/benchmarks.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn ten_million_entries_page_and_aggregate() {
    const N: i64 = 10_000_000;
    let s = TestServer::start(Backend::Postgres).await;
    s.clock.set_ms(DAY0);
    let token = s.init_admin().await;
    s.create_org(&token, "bench").await;
    let pool = s.ctx().db.pool();
    let started = std::time::Instant::now();
    for statement in [
        "INSERT INTO repository (namespace_id, name, created_ms) \
         SELECT n.id, 'r' || g, 0 FROM namespace n, generate_series(0, 99) g WHERE n.name = 'bench'"
            .to_owned(),
        format!(
            "INSERT INTO log_entry (kind, account_id, namespace_name, repository_id, repository_name, \
             performer_id, performer_name, ip, metadata, created_ms) \
             SELECT (ARRAY['push_repo','pull_repo','create_tag','delete_tag','change_tag_expiration'])[1 + g % 5], \
               n.id, 'bench', r.id, r.name, a.id, 'admin', '10.0.0.1', \
               '{{\"repo\": \"' || r.name || '\", \"namespace\": \"bench\"}}', \
               {DAY0} - (g::bigint * {span}) / {N} \
             FROM generate_series(1, {N}) g \
             JOIN namespace n ON n.name = 'bench' \
             JOIN namespace a ON a.name = 'admin' \
             JOIN repository r ON r.namespace_id = n.id AND r.name = 'r' || (g % 100)",
            span = 30 * DAY
        ),
        // The hourly counts the audit writer keeps: per repository, per namespace (-1), and
        // for the installation (-1, -1).
        "INSERT INTO log_count (account_id, repository_id, kind, hour, n) \
         SELECT account_id, repository_id, kind, created_ms / 3600000, COUNT(*) \
         FROM log_entry WHERE namespace_name = 'bench' AND ip = '10.0.0.1' \
         GROUP BY account_id, repository_id, kind, created_ms / 3600000 \
         ON CONFLICT (account_id, repository_id, kind, hour) DO UPDATE SET n = log_count.n + excluded.n"
            .to_owned(),
        "INSERT INTO log_count (account_id, repository_id, kind, hour, n) \
         SELECT account_id, -1, kind, created_ms / 3600000, COUNT(*) \
         FROM log_entry WHERE namespace_name = 'bench' AND ip = '10.0.0.1' \
         GROUP BY account_id, kind, created_ms / 3600000 \
         ON CONFLICT (account_id, repository_id, kind, hour) DO UPDATE SET n = log_count.n + excluded.n"
            .to_owned(),
        "INSERT INTO log_count (account_id, repository_id, kind, hour, n) \
         SELECT -1, -1, kind, created_ms / 3600000, COUNT(*) \
         FROM log_entry WHERE namespace_name = 'bench' AND ip = '10.0.0.1' \
         GROUP BY kind, created_ms / 3600000 \
         ON CONFLICT (account_id, repository_id, kind, hour) DO UPDATE SET n = log_count.n + excluded.n"
            .to_owned(),
        "ANALYZE".to_owned(),
    ] {
        sqlx::query(&statement).execute(pool).await.unwrap();
    }
    println!("loaded {N} entries in {:?}", started.elapsed());

    // The 50th page's token, found once.
    let mut deep = String::new();
    for _ in 0..50 {
        let q = if deep.is_empty() {
            String::new()
        } else {
            format!("?next_page={}", urlencode(&deep))
        };
        let (_, body) = s
            .call(
                Some(&token),
                Method::GET,
                &format!("/organization/bench/logs{q}"),
                None,
            )
            .await;
        deep = body["next_page"].as_str().unwrap().to_owned();
    }
    let cases = [
        (
            "organization, first page",
            "/organization/bench/logs".to_owned(),
        ),
        (
            "organization, page 51",
            format!("/organization/bench/logs?next_page={}", urlencode(&deep)),
        ),
        (
            "repository, first page",
            "/repository/bench/r7/logs".to_owned(),
        ),
        ("superuser, first page", "/superuser/logs".to_owned()),
        (
            "organization aggregate, default range (2 days)",
            "/organization/bench/aggregatelogs".to_owned(),
        ),
        (
            "organization aggregate, 30 days",
            "/organization/bench/aggregatelogs?starttime=11/02/2026&endtime=12/01/2026".to_owned(),
        ),
        (
            "superuser aggregate, 30 days",
            "/superuser/aggregatelogs?starttime=11/02/2026&endtime=12/01/2026".to_owned(),
        ),
        (
            "repository aggregate, 30 days",
            "/repository/bench/r7/aggregatelogs?starttime=11/02/2026&endtime=12/01/2026".to_owned(),
        ),
    ];
    for (name, path) in cases {
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = std::time::Instant::now();
            let (status, body) = s.call(Some(&token), Method::GET, &path, None).await;
            times.push(t.elapsed());
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(
                body["logs"].as_array().is_some_and(|l| l.len() == 20)
                    || body["aggregated"].as_array().is_some_and(|a| !a.is_empty()),
                "{name}: {body}"
            );
        }
        times.sort();
        println!(
            "{name}: p50 {:.1} ms, p95 {:.1} ms",
            times[100].as_secs_f64() * 1000.0,
            times[190].as_secs_f64() * 1000.0
        );
    }
}
