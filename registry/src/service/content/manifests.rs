//! Manifests: push (validated against what the repository holds), pull with content
//! negotiation, delete, and the referrers API.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;

use crate::db;
use crate::db::content::tags::{SetOptions, TagChange};
use crate::oci::manifest::{self, MAX_MANIFEST_BYTES, OCI_INDEX};
use crate::oci::{Digest, RepoName, validate_tag};
use crate::service::access::authz::Action;
use crate::service::content::labels;
use crate::service::content::pull_cache::{Resolved, Served};
use crate::service::content::quota;
use crate::service::operations::audit::Caller;
use crate::service::operations::notifications;
use crate::service::{
    Ctx, Internal, Principal, RegistryError, TenancyError, content::repositories, views,
};
use quayside_client as api;

/// A manifest reference from a URL: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    /// A reference to read or delete: a tag that could never have been pushed is simply not
    /// known (404 `MANIFEST_UNKNOWN`, as Distribution answers and the conformance suites
    /// expect); only a push of such a tag is refused as `TAG_INVALID`.
    pub fn parse_existing(s: &str) -> Result<Reference, RegistryError> {
        Reference::parse(s).map_err(|e| match e {
            RegistryError::TagInvalid(_) => {
                RegistryError::ManifestUnknown(format!("manifest unknown: tag {s:?}"))
            }
            other => other,
        })
    }

    pub fn parse(s: &str) -> Result<Reference, RegistryError> {
        if s.contains(':') {
            s.parse()
                .map(Reference::Digest)
                .map_err(|e: crate::oci::DigestError| RegistryError::DigestInvalid(e.to_string()))
        } else if validate_tag(s) {
            Ok(Reference::Tag(s.to_owned()))
        } else {
            Err(RegistryError::TagInvalid(format!(
                "{s:?} does not match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}"
            )))
        }
    }
}

#[derive(Debug)]
pub struct Pushed {
    pub digest: Digest,
    pub subject: Option<Digest>,
    pub tag_change: Option<TagChange>,
}

/// Stores a manifest and, for a tag reference, points the tag at it.
pub async fn put(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    reference: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Pushed, RegistryError> {
    let reference = Reference::parse(reference)?;
    if body.len() > MAX_MANIFEST_BYTES {
        return Err(RegistryError::ManifestTooLarge {
            limit: MAX_MANIFEST_BYTES,
        });
    }
    let repo = repositories::for_push(ctx, principal, name).await?;
    quota::check_push(ctx, repo.namespace_id).await?;
    let parsed = manifest::parse(content_type, &body)
        .map_err(|e| RegistryError::ManifestInvalid(e.to_string()))?;
    if !ctx.config.features.general_oci_support && !parsed.kind.is_list() && !parsed.is_image() {
        return Err(RegistryError::ManifestInvalid(format!(
            "artifacts of type {:?} are not accepted: FEATURE_GENERAL_OCI_SUPPORT is off",
            parsed.artifact_type.as_deref().unwrap_or_default()
        )));
    }
    let digest = match &reference {
        Reference::Digest(d) => {
            let actual = Digest::of(d.algorithm(), &body);
            if &actual != d {
                return Err(RegistryError::DigestInvalid(format!(
                    "manifest digest is {actual}, not {d}"
                )));
            }
            actual
        }
        Reference::Tag(_) => Digest::sha256_of(&body),
    };

    let required: Vec<&str> = parsed.required_blobs().map(|d| d.digest.as_str()).collect();
    let children: Vec<&str> = parsed.manifests.iter().map(|d| d.digest.as_str()).collect();
    // Checked here for a quick answer, and again under the repository lock below.
    {
        let mut conn = ctx.db.pool().acquire().await.map_err(db::DbError::from)?;
        check_references(&mut conn, repo.id, &required, &children).await?;
    }
    // Labels (and the expiration they may set) come from the image config, read before the
    // transaction: it is small, and storage is not read under a lock.
    let labels = labels::of_push(ctx, &parsed).await;
    let own_expiry = labels.get(labels::EXPIRES_AFTER).cloned();

    let annotations = (!parsed.annotations.is_empty())
        .then(|| serde_json::to_string(&parsed.annotations).unwrap_or_default());
    let new = db::content::manifests::NewManifest {
        repository_id: repo.id,
        digest: digest.as_str(),
        media_type: parsed.media_type(),
        artifact_type: parsed.artifact_type.as_deref(),
        subject_digest: parsed.subject.as_ref().map(|s| s.digest.as_str()),
        config_digest: parsed.config.as_ref().map(|c| c.digest.as_str()),
        annotations: annotations.as_deref(),
        layers_size: (!parsed.kind.is_list())
            .then(|| parsed.layers.iter().map(|l| l.size).sum::<i64>()),
        content: &body,
        blobs: &required,
        children: &children,
    };
    // Writers of one repository's manifests and tags are serialised by a lock on the repository
    // (so concurrent pushes of one tag queue instead of failing). Garbage collection deletes a
    // repository's manifests and blob links only under the same lock, so what the references
    // check finds under it stays true until the commit. The live-tag unique index stays the last
    // line of defence, and a violation of it is retried.
    let mut attempt = 0;
    let mut crossing = None;
    let tag_change = loop {
        attempt += 1;
        let now = ctx.now_ms();
        let mut tx = ctx.db.begin().await?;
        if !db::content::repositories::lock(&mut tx, repo.id).await? {
            // Deleted since it was looked up: nothing may reference it any more.
            return Err(RegistryError::NameUnknown);
        }
        ctx.pauses.point("manifests.repository_locked").await;
        check_references(&mut tx, repo.id, &required, &children).await?;
        let existed = db::content::manifests::id_of(&mut *tx, repo.id, digest.as_str())
            .await?
            .is_some();
        let id = db::content::manifests::upsert(&mut tx, &new, now).await?;
        if !existed {
            for label in labels::import_rows(id, &labels) {
                db::content::labels::insert(&mut *tx, &label, now).await?;
            }
            crossing = quota::account_manifest(ctx, &mut tx, &repo, id).await?;
        }
        let change = match &reference {
            Reference::Tag(tag) => {
                let expiry = match &own_expiry {
                    Some(value) => Some(value.clone()),
                    None => common_child_expiry(&mut tx, repo.id, &children).await?,
                };
                let options = SetOptions {
                    expiration_ms: expiry
                        .as_deref()
                        .and_then(labels::parse_expires_after)
                        .map(|s| now.saturating_add(s.saturating_mul(1000))),
                    reversion: false,
                };
                let change = match db::content::tags::set_with(
                    &mut tx, repo.id, tag, id, now, options,
                )
                .await
                {
                    Ok(c) => c,
                    Err(e) if e.is_unique_violation() && attempt < 5 => continue,
                    Err(e) => return Err(e.into()),
                };
                // `repo_push`, queued in the push's transaction: raised exactly when the tag
                // commits, delivered later by the worker.
                notifications::raise_in(
                    ctx,
                    &mut tx,
                    &repo,
                    notifications::events::Event::RepoPush,
                    json!({ "updated_tags": [tag] }),
                    principal.account().map(|a| a.name).as_deref(),
                )
                .await?;
                Some(change)
            }
            Reference::Digest(_) => None,
        };
        match tx.commit().await {
            Ok(()) => break change,
            Err(e) if e.is_unique_violation() && attempt < 5 => continue,
            Err(e) => return Err(e.into()),
        }
    };
    ctx.pull_cache.invalidate().await;
    // Security scanning: one insert queues the manifest; the `scanner` worker reads its layers.
    if ctx.config.scanner.enabled
        && !parsed.kind.is_list()
        && let Err(e) =
            db::content::scanner::enqueue(ctx.db.pool(), digest.as_str(), ctx.now_ms()).await
    {
        tracing::warn!(%digest, error = %e, "queueing the security scan failed");
    }
    if let Some(crossing) = &crossing {
        let caller = Caller::new(
            principal.clone(),
            crate::service::operations::audit::current_ip(),
        );
        quota::crossed(ctx, &caller, crossing).await;
    }
    Ok(Pushed {
        digest,
        subject: parsed.subject.map(|s| s.digest),
        tag_change,
    })
}

/// Fails unless every blob in `required` is linked into the repository and every manifest in
/// `children` is in it.
async fn check_references(
    conn: &mut sqlx::AnyConnection,
    repository_id: i64,
    required: &[&str],
    children: &[&str],
) -> Result<(), RegistryError> {
    let present = db::content::blobs::linked_among(&mut *conn, repository_id, required).await?;
    if let Some(missing) = required.iter().find(|d| !present.iter().any(|p| p == *d)) {
        return Err(RegistryError::ManifestBlobUnknown((*missing).to_owned()));
    }
    let present =
        db::content::manifests::present_among(&mut *conn, repository_id, children).await?;
    if let Some(missing) = children.iter().find(|d| !present.iter().any(|p| p == *d)) {
        return Err(RegistryError::ManifestUnknown(format!(
            "child manifest {missing} is not in the repository"
        )));
    }
    Ok(())
}

/// The `quay.expires-after` value every child of an index agrees on (Quay applies the labels
/// an index's children share).
async fn common_child_expiry(
    tx: &mut db::Tx,
    repository_id: i64,
    children: &[&str],
) -> Result<Option<String>, RegistryError> {
    if children.is_empty() {
        return Ok(None);
    }
    let ids = db::content::manifests::ids_of(&mut **tx, repository_id, children).await?;
    let values = db::content::labels::values_of(&mut **tx, &ids, labels::EXPIRES_AFTER).await?;
    let first = values.first().map(|(_, v)| v.clone());
    Ok(first.filter(|v| values.len() == ids.len() && values.iter().all(|(_, x)| x == v)))
}

fn acceptable(accept: &[String], media_type: &str) -> bool {
    accept.is_empty() || accept.iter().any(|a| a == media_type || a == "*/*")
}

/// Fetches a manifest by tag or digest in a media type the client accepts. For a list the
/// client cannot read, falls back to its linux/amd64 image, as CNCF Distribution does.
pub async fn get(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    reference: &str,
    accept: &[String],
) -> Result<Arc<Served>, RegistryError> {
    let reference_text_raw = reference;
    let repo = repositories::existing(ctx, principal, Action::Pull, name).await?;
    let reference = Reference::parse_existing(reference)?;
    let now = ctx.now_ms();
    let row = match ctx.pull_cache.manifest(repo.id, reference_text_raw, now) {
        Some(hit) => hit,
        None => {
            let generation = ctx.pull_cache.generation();
            let resolved = match &reference {
                Reference::Tag(tag) => {
                    db::content::manifests::by_tag(ctx.db.pool(), repo.id, tag, now)
                        .await?
                        .map(|(m, expires_ms)| Resolved {
                            manifest: Arc::new(m.into()),
                            expires_ms,
                        })
                }
                Reference::Digest(d) => {
                    db::content::manifests::by_digest(ctx.db.pool(), repo.id, d.as_str())
                        .await?
                        .filter(|m| m.deleted_ms.is_none())
                        .map(|m| Resolved {
                            manifest: Arc::new(m.into()),
                            expires_ms: None,
                        })
                }
            };
            let resolved = resolved
                .ok_or_else(|| RegistryError::ManifestUnknown(reference_text(&reference)))?;
            let manifest = resolved.manifest.clone();
            ctx.pull_cache
                .put_manifest(repo.id, reference_text_raw, resolved, now, generation);
            manifest
        }
    };
    if acceptable(accept, &row.media_type) {
        return Ok(row);
    }
    let kind = manifest::ManifestKind::from_media_type(&row.media_type);
    if kind.is_some_and(|k| k.is_list())
        && let Ok(list) = manifest::parse(Some(&row.media_type), &row.content)
    {
        let child = list.manifests.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
                && acceptable(accept, &d.media_type)
        });
        if let Some(child) = child
            && let Some(m) =
                db::content::manifests::by_digest(ctx.db.pool(), repo.id, child.digest.as_str())
                    .await?
            // A child deleted by digest is gone for every path, the platform fallback too.
            && m.deleted_ms.is_none()
        {
            return Ok(Arc::new(m.into()));
        }
    }
    Err(RegistryError::ManifestUnknown(format!(
        "{} is a {} and the request accepts only {}",
        reference_text(&reference),
        row.media_type,
        accept.join(", ")
    )))
}

fn reference_text(r: &Reference) -> String {
    match r {
        Reference::Tag(t) => format!("tag {t}"),
        Reference::Digest(d) => d.to_string(),
    }
}

/// Deletes a manifest by digest (and every tag on it) or a tag by name. Returns the names of the
/// tags that were live and ended.
pub async fn delete(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    reference: &str,
) -> Result<Vec<String>, RegistryError> {
    let repo = repositories::existing(ctx, principal, Action::Delete, name).await?;
    let reference = Reference::parse_existing(reference)?;
    let now = ctx.now_ms();
    let ended = match &reference {
        Reference::Tag(tag) => {
            if db::content::tags::end_live(ctx.db.pool(), repo.id, tag, now)
                .await?
                .is_none()
            {
                return Err(RegistryError::ManifestUnknown(reference_text(&reference)));
            }
            vec![tag.clone()]
        }
        Reference::Digest(d) => {
            let mut tx = ctx.db.begin().await?;
            let Some(id) =
                db::content::manifests::mark_deleted(&mut *tx, repo.id, d.as_str(), now).await?
            else {
                return Err(RegistryError::ManifestUnknown(reference_text(&reference)));
            };
            let ended = db::content::tags::end_for_manifest(&mut *tx, id, now).await?;
            tx.commit().await?;
            ended
        }
    };
    ctx.pull_cache.invalidate().await;
    Ok(ended)
}

/// The referrers of `digest`: an OCI image index of the manifests whose `subject` it is,
/// optionally only those of `artifact_type`. Returns the JSON body and whether a filter applied.
pub async fn referrers(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    digest: &str,
    artifact_type: Option<&str>,
) -> Result<(Vec<u8>, bool), RegistryError> {
    let digest: Digest = digest
        .parse()
        .map_err(|e: crate::oci::DigestError| RegistryError::DigestInvalid(e.to_string()))?;
    let repo = repositories::existing(ctx, principal, Action::Pull, name).await?;
    let rows = db::content::manifests::referrers(ctx.db.pool(), repo.id, digest.as_str()).await?;
    let descriptors: Vec<serde_json::Value> = rows
        .into_iter()
        .filter(|r| artifact_type.is_none_or(|t| r.artifact_type.as_deref() == Some(t)))
        .map(|r| {
            let mut d = json!({ "mediaType": r.media_type, "digest": r.digest, "size": r.size });
            if let Some(t) = r.artifact_type {
                d["artifactType"] = json!(t);
            }
            if let Some(a) = r
                .annotations
                .and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok())
            {
                d["annotations"] = a;
            }
            d
        })
        .collect();
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors });
    Ok((
        serde_json::to_vec(&index).unwrap_or_default(),
        artifact_type.is_some(),
    ))
}

/// Quay's digest of the empty layer a config history entry with `empty_layer` stands for.
pub const EMPTY_LAYER_DIGEST: &str =
    "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";
const EMPTY_LAYER_SIZE: i64 = 32;

/// `GET /api/v1/repository/{repo}/manifest/{digest}`: the manifest with its layers, described
/// from the image config's history as Quay does.
pub async fn describe(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    manifestref: &str,
) -> Result<api::Manifest, TenancyError> {
    let (_, row) = repositories::resolve_manifest(
        ctx,
        caller,
        Action::Pull,
        namespace,
        repository,
        manifestref,
    )
    .await?;
    let manifest_data = String::from_utf8_lossy(&row.content).into_owned();
    let parsed = manifest::parse(Some(&row.media_type), &row.content).map_err(|e| {
        Internal::Other(format!(
            "stored manifest {} does not parse: {e}",
            row.digest
        ))
    })?;
    if parsed.kind.is_list() {
        return Ok(api::Manifest {
            digest: row.digest,
            is_manifest_list: true,
            manifest_data,
            config_media_type: None,
            layers_compressed_size: 0,
            layers: None,
        });
    }
    let history = match &parsed.config {
        Some(c) if parsed.is_image() => match labels::read_small(ctx, &c.digest).await {
            Ok(bytes) => config_history(&bytes),
            Err(e) => {
                tracing::warn!(digest = %c.digest, error = %e, "cannot read an image config for its history");
                Vec::new()
            }
        },
        _ => Vec::new(),
    };
    Ok(api::Manifest {
        digest: row.digest,
        is_manifest_list: false,
        manifest_data,
        config_media_type: parsed.config.as_ref().map(|c| c.media_type.clone()),
        layers_compressed_size: parsed.layers.iter().map(|l| l.size).sum(),
        layers: Some(layer_views(&parsed.layers, &history)),
    })
}

/// One entry of an image config's `history`.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct HistoryEntry {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

fn config_history(config: &[u8]) -> Vec<HistoryEntry> {
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        history: Vec<HistoryEntry>,
    }
    serde_json::from_slice::<Config>(config)
        .map(|c| c.history)
        .unwrap_or_default()
}

/// Quay's layer list: one entry per history entry (empty ones as the empty layer), paired in
/// order with the manifest's layers; without a history that fits, one bare entry per layer.
pub fn layer_views(
    layers: &[crate::oci::manifest::Descriptor],
    history: &[HistoryEntry],
) -> Vec<api::ManifestLayer> {
    let date = |created: &Option<String>| {
        created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|d| views::format_date(d.timestamp() * 1000))
    };
    let command = |created_by: &Option<String>| {
        created_by
            .as_ref()
            .map(|c| serde_json::from_str::<Vec<String>>(c).unwrap_or_else(|_| vec![c.clone()]))
    };
    let bare = |index: usize, l: &crate::oci::manifest::Descriptor| api::ManifestLayer {
        index: index as i64,
        compressed_size: l.size,
        is_remote: l.urls.as_ref().is_some_and(|u| !u.is_empty()),
        urls: l.urls.clone().filter(|u| !u.is_empty()),
        command: None,
        comment: None,
        author: None,
        blob_digest: l.digest.to_string(),
        created_datetime: None,
    };
    let non_empty = history.iter().filter(|h| !h.empty_layer).count();
    if history.is_empty() || non_empty != layers.len() {
        return layers.iter().enumerate().map(|(i, l)| bare(i, l)).collect();
    }
    let mut next = layers.iter();
    history
        .iter()
        .enumerate()
        .map(|(index, h)| {
            let layer = if h.empty_layer { None } else { next.next() };
            let mut view = match layer {
                Some(l) => bare(index, l),
                None => api::ManifestLayer {
                    index: index as i64,
                    compressed_size: EMPTY_LAYER_SIZE,
                    is_remote: false,
                    urls: None,
                    command: None,
                    comment: None,
                    author: None,
                    blob_digest: EMPTY_LAYER_DIGEST.to_owned(),
                    created_datetime: None,
                },
            };
            view.command = command(&h.created_by);
            view.comment = h.comment.clone();
            view.author = h.author.clone();
            view.created_datetime = date(&h.created);
            view
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(
            Reference::parse("latest").unwrap(),
            Reference::Tag("latest".into())
        );
        assert!(matches!(
            Reference::parse(&Digest::sha256_of(b"x").to_string()).unwrap(),
            Reference::Digest(_)
        ));
        assert!(matches!(
            Reference::parse("sha256:zz"),
            Err(RegistryError::DigestInvalid(_))
        ));
        assert!(matches!(
            Reference::parse("-bad"),
            Err(RegistryError::TagInvalid(_))
        ));
    }
}
