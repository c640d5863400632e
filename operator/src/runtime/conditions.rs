//! Kubernetes-style conditions that keep `lastTransitionTime` while their status holds.

use crate::crd::Condition;

/// A condition as computed, before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Computed {
    pub type_: String,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Computed {
    pub fn new(
        type_: impl Into<String>,
        status: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Computed {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

fn status_str(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// The conditions to write: each computed condition keeps the previous
/// `lastTransitionTime` when its status did not change, and gets `now` otherwise. The order
/// is the order of `computed`; previous conditions not computed again are dropped.
pub fn merge(
    previous: &[Condition],
    computed: Vec<Computed>,
    now: &str,
    generation: Option<i64>,
) -> Vec<Condition> {
    computed
        .into_iter()
        .map(|c| {
            let status = status_str(c.status).to_owned();
            let since = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == status)
                .map_or_else(|| now.to_owned(), |p| p.last_transition_time.clone());
            Condition {
                type_: c.type_,
                status,
                reason: c.reason,
                message: c.message,
                last_transition_time: since,
                observed_generation: generation,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let first = merge(
            &[],
            vec![Computed::new("Available", false, "Starting", "")],
            "t1",
            Some(1),
        );
        assert_eq!(first[0].last_transition_time, "t1");
        let same = merge(
            &first,
            vec![Computed::new("Available", false, "StillStarting", "msg")],
            "t2",
            Some(1),
        );
        assert_eq!(same[0].last_transition_time, "t1");
        assert_eq!(same[0].reason, "StillStarting");
        let flipped = merge(
            &same,
            vec![Computed::new("Available", true, "Ready", "")],
            "t3",
            Some(2),
        );
        assert_eq!(flipped[0].last_transition_time, "t3");
        assert_eq!(flipped[0].status, "True");
        assert_eq!(flipped[0].observed_generation, Some(2));
    }
}
