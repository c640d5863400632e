//! Publishing Kubernetes Events.
//!
//! Rule: each distinct message is its own Event. kube-runtime's [`Recorder`] aggregates by
//! (type, action, reason, object) into one Event whose series count grows while its note stays
//! the first one, so a later, different message would show under a stale text. [`publish`]
//! therefore makes the action carry a short, stable digest of the note: identical messages
//! still aggregate (`x4`), different ones are listed separately. Notes are cut to the 1 KiB the
//! API allows.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

/// The Events API's limit on `note`.
const NOTE_MAX: usize = 1000;

/// `action` qualified by a digest of `note` (FNV-1a, stable across runs and builds).
pub fn action_for(action: &str, note: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in note.as_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{action}-{h:08x}")
}

fn truncate(note: &str) -> String {
    let mut cut = note.len().min(NOTE_MAX);
    while !note.is_char_boundary(cut) {
        cut -= 1;
    }
    note[..cut].to_owned()
}

/// Publishes one Event about `object`; a failure is logged, never returned (Events are
/// best-effort).
pub async fn publish(
    recorder: &Recorder,
    object: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let note = truncate(note);
    let event = Event {
        type_,
        reason: reason.into(),
        action: action_for(action, &note),
        note: Some(note),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, object).await {
        tracing::warn!(error = %e, "cannot publish an event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_differ_by_message_and_fit_the_api() {
        let a = action_for("Validate", "config.yaml is not valid YAML");
        assert_eq!(a, action_for("Validate", "config.yaml is not valid YAML"));
        assert_ne!(
            a,
            action_for("Validate", "PREFERRED_URL_SCHEME must be http or https")
        );
        assert!(a.starts_with("Validate-") && a.len() <= 128);
        assert_eq!(truncate(&"é".repeat(600)).len(), NOTE_MAX);
    }
}
