//! The events a repository notification can follow, with Quay's names, payloads and the sample
//! payload `POST .../notification/{uuid}/test` sends.
//!
//! Every payload starts with the repository's fields ([`repository_data`]: `repository`,
//! `namespace`, `name`, `docker_url`, `homepage`) and adds the event's own. Raised today:
//! `repo_push` (a manifest PUT by tag), `repo_image_expiry` (the worker's scan), `quota_warning`
//! and `quota_error` (a push crossing a limit). The build, mirroring and vulnerability events are
//! accepted and have their payloads here; they are raised once builds, mirroring and scanning
//! exist.

use serde_json::{Map, Value, json};

/// An event a notification can follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    RepoPush,
    RepoImageExpiry,
    VulnerabilityFound,
    BuildQueued,
    BuildStart,
    BuildSuccess,
    BuildFailure,
    BuildCancelled,
    MirrorSyncStarted,
    MirrorSyncSuccess,
    MirrorSyncFailed,
    QuotaWarning,
    QuotaError,
}

/// How a chat message about the event is coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Success,
    Warning,
    Error,
}

impl Event {
    pub const ALL: [Event; 13] = [
        Event::RepoPush,
        Event::RepoImageExpiry,
        Event::VulnerabilityFound,
        Event::BuildQueued,
        Event::BuildStart,
        Event::BuildSuccess,
        Event::BuildFailure,
        Event::BuildCancelled,
        Event::MirrorSyncStarted,
        Event::MirrorSyncSuccess,
        Event::MirrorSyncFailed,
        Event::QuotaWarning,
        Event::QuotaError,
    ];

    /// Quay's name of the event.
    pub fn name(self) -> &'static str {
        match self {
            Event::RepoPush => "repo_push",
            Event::RepoImageExpiry => "repo_image_expiry",
            Event::VulnerabilityFound => "vulnerability_found",
            Event::BuildQueued => "build_queued",
            Event::BuildStart => "build_start",
            Event::BuildSuccess => "build_success",
            Event::BuildFailure => "build_failure",
            Event::BuildCancelled => "build_cancelled",
            Event::MirrorSyncStarted => "repo_mirror_sync_started",
            Event::MirrorSyncSuccess => "repo_mirror_sync_success",
            Event::MirrorSyncFailed => "repo_mirror_sync_failed",
            Event::QuotaWarning => "quota_warning",
            Event::QuotaError => "quota_error",
        }
    }

    pub fn parse(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.name() == name)
    }

    pub fn level(self) -> Level {
        match self {
            Event::RepoPush | Event::BuildSuccess | Event::MirrorSyncSuccess => Level::Success,
            Event::BuildQueued | Event::BuildStart | Event::MirrorSyncStarted => Level::Info,
            Event::RepoImageExpiry | Event::BuildCancelled | Event::QuotaWarning => Level::Warning,
            Event::VulnerabilityFound
            | Event::BuildFailure
            | Event::MirrorSyncFailed
            | Event::QuotaError => Level::Error,
        }
    }

    /// Checks the event's `eventConfig`; the message says what is wrong.
    pub fn validate_config(self, config: &Value) -> Result<(), String> {
        if !config.is_object() {
            return Err("eventConfig must be an object".into());
        }
        match self {
            Event::RepoImageExpiry => match config.get("days") {
                Some(days) if days_of(days).is_some() => Ok(()),
                _ => Err("Missing or invalid days: a positive number of days is required".into()),
            },
            Event::VulnerabilityFound => match config.get("level") {
                None => Ok(()),
                Some(level) if level.is_string() || level.is_number() => Ok(()),
                Some(_) => Err("Invalid vulnerability level".into()),
            },
            _ => Ok(()),
        }
    }

    /// The event's own fields in the sample payload of a test delivery (Quay's samples).
    pub fn sample(self) -> Value {
        let build = |extra: Value| {
            let mut base = json!({
                "build_id": "296ec063-5f86-4706-a469-f0a400bf9df2",
                "build_name": "some-fake-build",
                "docker_tags": ["latest", "foo", "bar"],
                "trigger_kind": "github",
                "trigger_id": "38b6e180-9521-4ff7-9844-acf371340b9e",
                "trigger_metadata": {
                    "default_branch": "master",
                    "ref": "refs/heads/somebranch",
                    "commit": "42d4a62c53350993ea41069e9f2cfdefb0df097d",
                },
            });
            if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
                base.extend(extra);
            }
            base
        };
        match self {
            Event::RepoPush => {
                json!({ "updated_tags": ["latest", "foo"], "pruned_image_count": 3 })
            }
            Event::RepoImageExpiry => json!({ "tags": ["latest", "v1"], "expiring_in": "1 days" }),
            Event::VulnerabilityFound => json!({
                "tags": ["latest", "prod"],
                "image": "some-image-id",
                "vulnerability": {
                    "id": "CVE-FAKE-CVE",
                    "description": "A futurist vulnerability",
                    "link": "https://security-tracker.debian.org/tracker/CVE-FAKE-CVE",
                    "priority": "Critical",
                    "has_fix": true,
                },
            }),
            Event::BuildQueued => build(json!({ "is_manual": false })),
            Event::BuildStart => build(json!({})),
            Event::BuildSuccess => build(
                json!({ "image_id": "sha256:0339f178f26ae24930e9ad32751d6839015109eabdf1c25b3b0f2abf8934f6cb" }),
            ),
            Event::BuildFailure => {
                build(json!({ "error_message": "This is a fake error message" }))
            }
            Event::BuildCancelled => build(json!({})),
            Event::MirrorSyncStarted => json!({ "message": "TEST NOTIFICATION" }),
            Event::MirrorSyncSuccess => {
                json!({ "message": "TEST NOTIFICATION", "tags": ["latest", "foo"] })
            }
            Event::MirrorSyncFailed => {
                json!({ "message": "TEST NOTIFICATION", "tags": ["latest", "foo"] })
            }
            Event::QuotaWarning | Event::QuotaError => json!({
                "quota_bytes": 104_857_600,
                "used_bytes": 94_371_840,
            }),
        }
    }

    /// One line about what happened, for chat services and e-mail subjects.
    pub fn summary(self, data: &Value) -> String {
        let repo = text(data, "repository");
        match self {
            Event::RepoPush => format!("Repository {repo} updated"),
            Event::RepoImageExpiry => format!("Repository {repo} image(s) expiring"),
            Event::VulnerabilityFound => format!("Vulnerability found in repository {repo}"),
            Event::BuildQueued => format!("Build queued for repository {repo}"),
            Event::BuildStart => format!("Build started for repository {repo}"),
            Event::BuildSuccess => format!("Build succeeded for repository {repo}"),
            Event::BuildFailure => format!("Build failure for repository {repo}"),
            Event::BuildCancelled => format!("Build cancelled for repository {repo}"),
            Event::MirrorSyncStarted => format!("Repository mirror sync started for {repo}"),
            Event::MirrorSyncSuccess => format!("Repository mirror sync succeeded for {repo}"),
            Event::MirrorSyncFailed => format!("Repository mirror sync failed for {repo}"),
            Event::QuotaWarning => format!("Quota warning for namespace of repository {repo}"),
            Event::QuotaError => format!("Quota exceeded for namespace of repository {repo}"),
        }
    }

    /// A few sentences about what happened, in plain text.
    pub fn message(self, data: &Value) -> String {
        let url = text(data, "docker_url");
        let list = |key: &str| {
            data.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        match self {
            Event::RepoPush => format!(
                "Repository {url} has been pushed with the following tags updated: {}",
                list("updated_tags")
            ),
            Event::RepoImageExpiry => format!(
                "The following tags of repository {url} expire in {}: {}",
                text(data, "expiring_in"),
                list("tags")
            ),
            Event::VulnerabilityFound => format!(
                "A {} vulnerability ({}) was found in repository {url}, tags: {}",
                data.pointer("/vulnerability/priority")
                    .and_then(Value::as_str)
                    .unwrap_or("new"),
                data.pointer("/vulnerability/id")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                list("tags")
            ),
            Event::BuildQueued
            | Event::BuildStart
            | Event::BuildSuccess
            | Event::BuildCancelled => {
                format!(
                    "{} (build {}, tags: {})",
                    self.summary(data),
                    text(data, "build_id"),
                    list("docker_tags")
                )
            }
            Event::BuildFailure => {
                format!("{}: {}", self.summary(data), text(data, "error_message"))
            }
            Event::MirrorSyncStarted | Event::MirrorSyncSuccess | Event::MirrorSyncFailed => {
                format!("{}: {}", self.summary(data), text(data, "message"))
            }
            Event::QuotaWarning | Event::QuotaError => format!(
                "{}: {} bytes used of a quota of {} bytes",
                self.summary(data),
                data.get("used_bytes").cloned().unwrap_or(Value::Null),
                data.get("quota_bytes").cloned().unwrap_or(Value::Null),
            ),
        }
    }
}

/// The positive number of days of an image-expiry `eventConfig` (a number or a numeric string,
/// as Quay's UI sends either).
pub fn days_of(value: &Value) -> Option<i64> {
    let days = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (1.0..=3650.0).contains(&days).then_some(days as i64)
}

fn text<'a>(data: &'a Value, key: &str) -> &'a str {
    data.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The public place of the registry: `(scheme, host[:port])`.
pub struct Origin<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
}

/// The repository's fields every payload starts with, followed by `extra`'s.
pub fn repository_data(origin: &Origin<'_>, namespace: &str, name: &str, extra: Value) -> Value {
    let repository = format!("{namespace}/{name}");
    let mut data = Map::new();
    data.insert("repository".into(), json!(repository));
    data.insert("namespace".into(), json!(namespace));
    data.insert("name".into(), json!(name));
    data.insert(
        "docker_url".into(),
        json!(format!("{}/{repository}", origin.host)),
    );
    data.insert(
        "homepage".into(),
        json!(format!(
            "{}://{}/repository/{repository}",
            origin.scheme, origin.host
        )),
    );
    if let Value::Object(extra) = extra {
        data.extend(extra);
    }
    Value::Object(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in Event::ALL {
            assert_eq!(Event::parse(e.name()), Some(e));
        }
        assert_eq!(Event::parse("repo_pull"), None);
    }

    #[test]
    fn push_payload_has_quays_keys() {
        let origin = Origin {
            scheme: "http",
            host: "127.0.0.1:8081",
        };
        let data = repository_data(
            &origin,
            "w2org",
            "notify",
            json!({ "updated_tags": ["latest"] }),
        );
        assert_eq!(
            data,
            json!({
                "repository": "w2org/notify", "namespace": "w2org", "name": "notify",
                "docker_url": "127.0.0.1:8081/w2org/notify",
                "homepage": "http://127.0.0.1:8081/repository/w2org/notify",
                "updated_tags": ["latest"],
            })
        );
    }

    #[test]
    fn expiry_days_must_be_positive() {
        assert_eq!(days_of(&json!(1)), Some(1));
        assert_eq!(days_of(&json!("7")), Some(7));
        assert_eq!(days_of(&json!(0)), None);
        assert_eq!(days_of(&json!("soon")), None);
        assert!(Event::RepoImageExpiry.validate_config(&json!({})).is_err());
        assert!(Event::RepoPush.validate_config(&json!({})).is_ok());
    }
}
