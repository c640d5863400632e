//! Events: one resource stored once, served through two views (`core/v1` and
//! `events.k8s.io/v1`), as the apiserver does.
//!
//! Rules:
//! - Both `Event` kinds share one storage ([`crate::resources::ResourceType::store_key`] is
//!   `/events` for both); objects are stored in the `core/v1` shape.
//! - Fields are renamed on the way in and out, as the apiserver's conversion does:
//!   `regarding`↔`involvedObject`, `note`↔`message`, `reportingController`↔`reportingComponent`,
//!   `deprecatedSource`↔`source`, `deprecatedFirstTimestamp`↔`firstTimestamp`,
//!   `deprecatedLastTimestamp`↔`lastTimestamp`, `deprecatedCount`↔`count`; `eventTime`,
//!   `series`, `action`, `reason`, `type`, `related`, `reportingInstance` are common.
//! - The `core/v1` view of an event written through `events.k8s.io/v1` fills what the old
//!   fields' readers (`kubectl get events`, `kubectl describe`) need when they are absent:
//!   `source.component` from `reportingController`, `count` from `series.count` (1 without a
//!   series), `lastTimestamp` from `series.lastObservedTime` or `eventTime`, `firstTimestamp`
//!   from `eventTime`. These are part of the view only, never stored.

use serde_json::{Map, Value};

/// `(events.k8s.io/v1 name, core/v1 name)` of the renamed fields.
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(obj: &Value, to_core: bool) -> Value {
    let Some(m) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        let renamed = RENAMES.iter().find_map(|(ev, core)| {
            if to_core {
                (k == ev).then_some(*core)
            } else {
                (k == core).then_some(*ev)
            }
        });
        out.insert(renamed.unwrap_or(k).to_owned(), v.clone());
    }
    Value::Object(out)
}

fn absent(v: &Value) -> bool {
    v.is_null() || v.as_str().is_some_and(str::is_empty)
}

/// The storage (`core/v1`) shape of an object in the `events.k8s.io/v1` shape.
pub fn to_storage(events_view: &Value) -> Value {
    let mut v = rename(events_view, true);
    v["apiVersion"] = Value::String("v1".into());
    v
}

/// The `events.k8s.io/v1` view of a stored event.
pub fn events_view(stored: &Value) -> Value {
    if stored["apiVersion"] == "events.k8s.io/v1" {
        return stored.clone();
    }
    rename(stored, false)
}

/// The `core/v1` view of a stored event (with the derived fields old readers need).
pub fn core_view(stored: &Value) -> Value {
    let mut v = if stored["apiVersion"] == "events.k8s.io/v1" {
        to_storage(stored)
    } else {
        stored.clone()
    };
    if !v.is_object() {
        return v;
    }
    if absent(&v["source"]["component"]) && !absent(&v["reportingComponent"]) {
        if !v["source"].is_object() {
            v["source"] = Value::Object(Map::new());
        }
        v["source"]["component"] = v["reportingComponent"].clone();
    }
    let event_time = v["eventTime"].clone();
    if v["count"].is_null() {
        if let Some(c) = v["series"]["count"].as_i64() {
            v["count"] = c.into();
        } else if !absent(&event_time) {
            v["count"] = 1.into();
        }
    }
    if absent(&v["lastTimestamp"]) {
        let last = &v["series"]["lastObservedTime"];
        let last = if absent(last) { &event_time } else { last };
        if !absent(last) {
            v["lastTimestamp"] = Value::String(truncate_micro(last));
        }
    }
    if absent(&v["firstTimestamp"]) && !absent(&event_time) {
        v["firstTimestamp"] = Value::String(truncate_micro(&event_time));
    }
    v
}

/// `firstTimestamp`/`lastTimestamp` are whole-second `Time`s; `eventTime` is a `MicroTime`.
fn truncate_micro(t: &Value) -> String {
    let s = t.as_str().unwrap_or_default();
    match (s.find('.'), s.ends_with('Z')) {
        (Some(dot), true) => format!("{}Z", &s[..dot]),
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_view_round_trips_through_storage() {
        let ev = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "n"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hello",
            "reportingController": "ctl", "reportingInstance": "ctl-1",
            "eventTime": "2026-01-01T00:00:00.123456Z", "type": "Warning", "reason": "R",
            "action": "A", "series": {"count": 3, "lastObservedTime": "2026-01-01T00:05:00.000001Z"}
        });
        let stored = to_storage(&ev);
        assert_eq!(stored["involvedObject"]["name"], "p");
        assert_eq!(stored["message"], "hello");
        assert!(stored.get("note").is_none());
        let mut back = events_view(&stored);
        back["apiVersion"] = json!("events.k8s.io/v1");
        assert_eq!(back, ev);
        let core = core_view(&stored);
        assert_eq!(core["source"]["component"], "ctl");
        assert_eq!(core["count"], 3);
        assert_eq!(core["lastTimestamp"], "2026-01-01T00:05:00Z");
        assert_eq!(core["firstTimestamp"], "2026-01-01T00:00:00Z");
    }
}
