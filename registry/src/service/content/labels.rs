//! Manifest labels, as Quay keeps them: key/value pairs on a manifest, imported at push from the
//! image config's `Labels` and the manifest's annotations (`source_type: manifest`), or added
//! through the API (`source_type: api`, keys validated, reserved prefixes refused). The label
//! `quay.expires-after` (`1h`, `2d`, `3w`, ...; `never` for none) sets the expiration of the tags
//! a push points at the manifest.

use std::collections::BTreeMap;

use quayside_client as api;
use serde_json::json;

use crate::db::{self, content::labels::LabelRow};
use crate::oci::manifest::{DOCKER_IMAGE_CONFIG, OCI_IMAGE_CONFIG, ParsedManifest};
use crate::service::access::authz::Action;
use crate::service::content::repositories::resolve_manifest;
use crate::service::operations::audit::{Caller, Event};
use crate::service::{Ctx, Internal, TenancyError};
use crate::storage::paths;

/// The label that sets tag expiration.
pub const EXPIRES_AFTER: &str = "quay.expires-after";
/// Media types a label may have.
pub const MEDIA_TYPES: [&str; 2] = ["text/plain", "application/json"];
/// Quay's `VALID_LABEL_KEY_REGEX`, quoted in its error message.
pub const KEY_FORMAT: &str = r"^[a-z0-9](([a-z0-9]|[-.](?![.-]))*[a-z0-9])?$";
/// Largest image config read at push to import its labels.
const MAX_CONFIG_BYTES: usize = 8 * 1024 * 1024;

/// Whether `key` is a valid API label key: at most 255 characters of `[a-z0-9.-]`, starting and
/// ending with a letter or digit, with no `.` or `-` next to another (Quay's rule).
pub fn valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 {
        return false;
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let separator = |b: u8| b == b'.' || b == b'-';
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    bytes.iter().all(|b| alnum(*b) || separator(*b))
        && bytes
            .windows(2)
            .all(|w| !(separator(w[0]) && separator(w[1])))
}

/// Quay's `is_json`: an object or array that parses.
pub fn is_json(value: &str) -> bool {
    let v = value.trim_end();
    ((v.starts_with('{') && v.ends_with('}')) || (v.starts_with('[') && v.ends_with(']')))
        && serde_json::from_str::<serde_json::Value>(v).is_ok()
}

fn inferred_media_type(value: &str) -> &'static str {
    if is_json(value) {
        "application/json"
    } else {
        "text/plain"
    }
}

/// Seconds of a `quay.expires-after` value: `<n>` followed by `s`, `m`, `h`, `d`, `w` or `y`.
/// `never`, and anything else that is not such a duration, means no expiration.
pub fn parse_expires_after(value: &str) -> Option<i64> {
    let value = value.trim();
    let unit = value.chars().last()?;
    let n: i64 = value[..value.len() - unit.len_utf8()].parse().ok()?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        'y' => 365 * 86_400,
        _ => return None,
    };
    n.checked_mul(mult).filter(|s| *s > 0)
}

/// The labels a pushed manifest carries: its image config's `Labels` (image manifests only),
/// then its annotations (which win). Reading the config is best-effort: a config that cannot be
/// read or parsed contributes nothing.
pub async fn of_push(ctx: &Ctx, parsed: &ParsedManifest) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    if let Some(config) = &parsed.config
        && (config.media_type == OCI_IMAGE_CONFIG || config.media_type == DOCKER_IMAGE_CONFIG)
        && config.size >= 0
        && (config.size as usize) <= MAX_CONFIG_BYTES
    {
        match read_small(ctx, &config.digest).await {
            Ok(bytes) => labels.extend(config_labels(&bytes)),
            Err(e) => {
                tracing::warn!(digest = %config.digest, error = %e, "cannot read an image config for its labels")
            }
        }
    }
    labels.extend(
        parsed
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    // Dockerfiles can produce empty keys; they mean nothing.
    labels.retain(|k, _| !k.is_empty());
    labels
}

/// `config.Labels` of an image config.
pub fn config_labels(config: &[u8]) -> BTreeMap<String, String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(config) else {
        return BTreeMap::new();
    };
    value["config"]["Labels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a small blob into memory.
pub async fn read_small(ctx: &Ctx, digest: &crate::oci::Digest) -> Result<Vec<u8>, Internal> {
    use futures_util::StreamExt;
    let mut stream = ctx.store.get(&paths::blob(digest), None).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(crate::storage::StorageError::from)?;
        if out.len() + chunk.len() > MAX_CONFIG_BYTES {
            return Err(Internal::Other(format!("blob {digest} is too large")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The rows importing `labels` onto a new manifest.
pub fn import_rows(manifest_id: i64, labels: &BTreeMap<String, String>) -> Vec<LabelRow> {
    labels
        .iter()
        .map(|(key, value)| LabelRow {
            uuid: uuid::Uuid::new_v4().to_string(),
            manifest_id,
            key: key.clone(),
            value: value.clone(),
            source_type: "manifest".into(),
            media_type: inferred_media_type(value).into(),
        })
        .collect()
}

fn view(label: LabelRow) -> api::Label {
    api::Label {
        id: label.uuid,
        key: label.key,
        value: label.value,
        source_type: label.source_type,
        media_type: label.media_type,
    }
}

/// `GET .../manifest/{manifestref}/labels`, optionally only keys starting with `filter`.
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    manifestref: &str,
    filter: Option<&str>,
) -> Result<api::Labels, TenancyError> {
    let (_, manifest) = resolve_manifest(
        ctx,
        caller,
        Action::Pull,
        namespace,
        repository,
        manifestref,
    )
    .await?;
    let labels = db::content::labels::list(ctx.db.pool(), manifest.id, filter).await?;
    Ok(api::Labels {
        labels: labels.into_iter().map(view).collect(),
    })
}

/// `GET .../manifest/{manifestref}/labels/{labelid}`.
pub async fn get(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    manifestref: &str,
    label_id: &str,
) -> Result<api::Label, TenancyError> {
    let (_, manifest) = resolve_manifest(
        ctx,
        caller,
        Action::Pull,
        namespace,
        repository,
        manifestref,
    )
    .await?;
    db::content::labels::get(ctx.db.pool(), manifest.id, label_id)
        .await?
        .map(view)
        .ok_or(TenancyError::NotFound)
}

/// The body of `POST .../labels`.
#[derive(Clone, Debug)]
pub struct NewLabel<'a> {
    pub key: &'a str,
    pub value: &'a str,
    /// `None` infers it from the value, as Quay does.
    pub media_type: Option<&'a str>,
}

/// `POST .../manifest/{manifestref}/labels`.
pub async fn add(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    manifestref: &str,
    new: NewLabel<'_>,
) -> Result<api::Label, TenancyError> {
    if let Some(m) = new.media_type
        && !MEDIA_TYPES.contains(&m)
    {
        return Err(TenancyError::Invalid(
            "Media type is invalid please use a valid media type: text/plain, application/json"
                .into(),
        ));
    }
    if ctx
        .config
        .reserved_label_prefixes
        .iter()
        .any(|p| new.key.starts_with(p.as_str()))
    {
        return Err(TenancyError::Refused("Label has a reserved prefix".into()));
    }
    let (repo, manifest) = resolve_manifest(
        ctx,
        caller,
        Action::Push,
        namespace,
        repository,
        manifestref,
    )
    .await?;
    crate::service::content::repositories::require_normal(&repo)?;
    if !valid_key(new.key) {
        return Err(TenancyError::Refused(format!(
            "Label is of an invalid format or missing please use {KEY_FORMAT} format for labels"
        )));
    }
    let label = LabelRow {
        uuid: uuid::Uuid::new_v4().to_string(),
        manifest_id: manifest.id,
        key: new.key.to_owned(),
        value: new.value.to_owned(),
        source_type: "api".into(),
        media_type: new
            .media_type
            .unwrap_or_else(|| inferred_media_type(new.value))
            .to_owned(),
    };
    db::content::labels::insert(ctx.db.pool(), &label, ctx.now_ms()).await?;
    ctx.audit.record(
        caller,
        Event::repo(
            "manifest_label_add",
            namespace,
            repository,
            json!({
                "id": label.uuid, "key": label.key, "value": label.value,
                "manifest_digest": manifest.digest, "media_type": label.media_type,
                "namespace": namespace, "repo": repository,
            }),
        ),
        ctx.now_ms(),
    );
    Ok(view(label))
}

/// `DELETE .../manifest/{manifestref}/labels/{labelid}`.
pub async fn delete(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    manifestref: &str,
    label_id: &str,
) -> Result<(), TenancyError> {
    let (repo, manifest) = resolve_manifest(
        ctx,
        caller,
        Action::Push,
        namespace,
        repository,
        manifestref,
    )
    .await?;
    crate::service::content::repositories::require_normal(&repo)?;
    let label = db::content::labels::delete(ctx.db.pool(), manifest.id, label_id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    ctx.audit.record(
        caller,
        Event::repo(
            "manifest_label_delete",
            namespace,
            repository,
            json!({
                "id": label.uuid, "key": label.key, "value": label.value,
                "manifest_digest": manifest.digest,
                "namespace": namespace, "repo": repository,
            }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys() {
        for good in [
            "a",
            "com.example.release-date",
            "org.opencontainers.image.url",
            "x1-2.y",
            "9",
        ] {
            assert!(valid_key(good), "{good}");
        }
        for bad in [
            "",
            "Upper",
            "-lead",
            "trail.",
            "a..b",
            "a.-b",
            "a-.b",
            "with space",
            "under_score",
            "k=v",
        ] {
            assert!(!valid_key(bad), "{bad}");
        }
        assert!(!valid_key(&"a".repeat(256)));
        assert!(valid_key(&"a".repeat(255)));
    }

    #[test]
    fn json_values_and_media_types() {
        assert!(is_json(r#"{"a": 1}"#));
        assert!(is_json("[1, 2]"));
        assert!(!is_json("{not json}"));
        assert!(!is_json("42"));
        assert_eq!(inferred_media_type("[]"), "application/json");
        assert_eq!(inferred_media_type("plain"), "text/plain");
    }

    #[test]
    fn expires_after_values() {
        assert_eq!(parse_expires_after("1h"), Some(3600));
        assert_eq!(parse_expires_after("2d"), Some(2 * 86_400));
        assert_eq!(parse_expires_after("3w"), Some(21 * 86_400));
        assert_eq!(parse_expires_after("90m"), Some(5400));
        assert_eq!(parse_expires_after("never"), None);
        assert_eq!(parse_expires_after("soon"), None);
        assert_eq!(parse_expires_after("0h"), None);
        assert_eq!(parse_expires_after("-1h"), None);
        assert_eq!(parse_expires_after(""), None);
    }

    #[test]
    fn labels_of_an_image_config() {
        let config = br#"{"architecture":"amd64","config":{"Labels":{"quay.expires-after":"2d","a":"b","n":1}}}"#;
        let labels = config_labels(config);
        assert_eq!(labels.len(), 2);
        assert_eq!(labels["quay.expires-after"], "2d");
        assert!(config_labels(b"{}").is_empty());
        assert!(config_labels(b"not json").is_empty());
    }
}
