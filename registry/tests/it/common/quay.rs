//! Helpers for the `/api/v1` tests: the recorded Quay answers and a shape comparison.

use reqwest::StatusCode;
use serde_json::Value;

/// A recorded Quay answer (see `fixtures/quay/README.md`).
pub struct Recorded {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Value,
    pub request_body: Value,
}

#[track_caller]
pub fn recorded(name: &str) -> Recorded {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures/quay")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).expect("fixture json");
    Recorded {
        status: v["status"].as_u64().expect("status") as u16,
        content_type: v["content_type"].as_str().map(str::to_owned),
        body: v["body"].clone(),
        request_body: v["request"]["body"].clone(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Differences in structure between `actual` and `expected`: key names, nesting and value
/// types. Arrays are compared by their first elements; objects whose keys are data (maps keyed
/// by names) are compared through their first values when `at` ends in one of `maps`.
pub fn shape_diff(
    actual: &Value,
    expected: &Value,
    at: &str,
    maps: &[&str],
    out: &mut Vec<String>,
) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) if maps.iter().any(|m| at.ends_with(m)) => {
            if let (Some(av), Some(ev)) = (a.values().next(), e.values().next()) {
                shape_diff(av, ev, &format!("{at}.*"), maps, out);
            }
        }
        (Value::Object(a), Value::Object(e)) => {
            for k in e.keys() {
                if !a.contains_key(k) {
                    out.push(format!("{at}.{k}: missing"));
                }
            }
            for k in a.keys() {
                if !e.contains_key(k) {
                    out.push(format!("{at}.{k}: not in Quay's answer"));
                }
            }
            for (k, ev) in e {
                if let Some(av) = a.get(k) {
                    shape_diff(av, ev, &format!("{at}.{k}"), maps, out);
                }
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            if let (Some(av), Some(ev)) = (a.first(), e.first()) {
                shape_diff(av, ev, &format!("{at}[0]"), maps, out);
            }
        }
        (a, e) if kind(a) != kind(e) => {
            out.push(format!("{at}: {} where Quay has {}", kind(a), kind(e)));
        }
        _ => {}
    }
}

/// Asserts that a response matches a recorded Quay answer in status, content type and shape;
/// returns the body.
pub async fn expect_like(r: reqwest::Response, name: &str, maps: &[&str]) -> Value {
    let rec = recorded(name);
    let status = r.status();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(
        status,
        StatusCode::from_u16(rec.status).unwrap(),
        "{name}: status (body {body})"
    );
    if let Some(ct) = &rec.content_type {
        assert_eq!(
            content_type.as_deref(),
            Some(ct.as_str()),
            "{name}: content type"
        );
    }
    let mut diffs = Vec::new();
    shape_diff(&body, &rec.body, "$", maps, &mut diffs);
    assert!(
        diffs.is_empty(),
        "{name}: shape differs from Quay's:\n{}\nbody: {body:#}",
        diffs.join("\n")
    );
    body
}

/// Asserts Quay's error body with this status, error type and message.
#[track_caller]
pub fn assert_quay_error(
    status: StatusCode,
    body: &Value,
    expected_status: StatusCode,
    error_type: &str,
    message: &str,
) {
    assert_eq!(status, expected_status, "status (body {body})");
    assert_eq!(body["error_type"], error_type, "{body}");
    assert_eq!(body["title"], error_type, "{body}");
    assert_eq!(body["status"], expected_status.as_u16(), "{body}");
    assert_eq!(body["detail"], message, "{body}");
    assert_eq!(body["error_message"], message, "{body}");
    let t = body["type"].as_str().unwrap_or_default();
    assert!(
        t.starts_with("http://") && t.ends_with(&format!("/api/v1/error/{error_type}")),
        "{body}"
    );
}
