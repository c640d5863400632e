//! Manifests: push (validated against what the repository holds), pull with content
//! negotiation, delete, and the referrers API.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;

use super::authz::Action;
use super::cache::Resolved;
use super::{Ctx, Principal, RegistryError, repos};
use crate::db::{self, manifests::ManifestRow, tags::TagChange};
use crate::oci::manifest::{self, MAX_MANIFEST_BYTES, OCI_INDEX};
use crate::oci::{Digest, RepoName, validate_tag};

/// A manifest reference from a URL: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
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
    let repo = repos::for_push(ctx, principal, name).await?;
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
    let present = db::blobs::linked_among(ctx.db.pool(), repo.id, &required).await?;
    if let Some(missing) = required.iter().find(|d| !present.iter().any(|p| p == *d)) {
        return Err(RegistryError::ManifestBlobUnknown((*missing).to_owned()));
    }
    let children: Vec<&str> = parsed.manifests.iter().map(|d| d.digest.as_str()).collect();
    let present = db::manifests::present_among(ctx.db.pool(), repo.id, &children).await?;
    if let Some(missing) = children.iter().find(|d| !present.iter().any(|p| p == *d)) {
        return Err(RegistryError::ManifestUnknown(format!(
            "child manifest {missing} is not in the repository"
        )));
    }

    let annotations = (!parsed.annotations.is_empty())
        .then(|| serde_json::to_string(&parsed.annotations).unwrap_or_default());
    let new = db::manifests::NewManifest {
        repository_id: repo.id,
        digest: digest.as_str(),
        media_type: parsed.media_type(),
        artifact_type: parsed.artifact_type.as_deref(),
        subject_digest: parsed.subject.as_ref().map(|s| s.digest.as_str()),
        config_digest: parsed.config.as_ref().map(|c| c.digest.as_str()),
        annotations: annotations.as_deref(),
        content: &body,
        blobs: &required,
        children: &children,
    };
    // Tag writers of one repository are serialised by a lock on the repository (so concurrent
    // pushes of one tag queue instead of failing); the live-tag unique index stays the last
    // line of defence, and a violation of it is retried.
    let mut attempt = 0;
    let tag_change = loop {
        attempt += 1;
        let now = ctx.now_ms();
        let mut tx = ctx.db.begin().await?;
        if matches!(reference, Reference::Tag(_)) {
            db::repos::lock(&mut tx, repo.id).await?;
        }
        let id = db::manifests::upsert(&mut tx, &new, now).await?;
        let change = match &reference {
            Reference::Tag(tag) => match db::tags::set(&mut tx, repo.id, tag, id, now).await {
                Ok(c) => Some(c),
                Err(e) if e.is_unique_violation() && attempt < 5 => continue,
                Err(e) => return Err(e.into()),
            },
            Reference::Digest(_) => None,
        };
        match tx.commit().await {
            Ok(()) => break change,
            Err(e) if e.is_unique_violation() && attempt < 5 => continue,
            Err(e) => return Err(e.into()),
        }
    };
    ctx.pull_cache.invalidate();
    Ok(Pushed {
        digest,
        subject: parsed.subject.map(|s| s.digest),
        tag_change,
    })
}

/// A manifest as served.
#[derive(Clone, Debug)]
pub struct Served {
    pub digest: String,
    pub media_type: String,
    pub content: Bytes,
}

impl From<ManifestRow> for Served {
    fn from(m: ManifestRow) -> Self {
        Served {
            digest: m.digest,
            media_type: m.media_type,
            content: Bytes::from(m.content),
        }
    }
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
    let reference = Reference::parse(reference)?;
    let repo = repos::existing(ctx, principal, Action::Pull, name).await?;
    let now = ctx.now_ms();
    let row = match ctx.pull_cache.manifest(repo.id, reference_text_raw, now) {
        Some(hit) => hit,
        None => {
            let generation = ctx.pull_cache.generation();
            let resolved = match &reference {
                Reference::Tag(tag) => db::manifests::by_tag(ctx.db.pool(), repo.id, tag, now)
                    .await?
                    .map(|(m, expires_ms)| Resolved {
                        manifest: Arc::new(m.into()),
                        expires_ms,
                    }),
                Reference::Digest(d) => {
                    db::manifests::by_digest(ctx.db.pool(), repo.id, d.as_str())
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
                db::manifests::by_digest(ctx.db.pool(), repo.id, child.digest.as_str()).await?
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

/// Deletes a manifest by digest (and every tag on it) or a tag by name.
pub async fn delete(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
    reference: &str,
) -> Result<(), RegistryError> {
    let reference = Reference::parse(reference)?;
    let repo = repos::existing(ctx, principal, Action::Delete, name).await?;
    let now = ctx.now_ms();
    match &reference {
        Reference::Tag(tag) => {
            if !db::tags::end_live(ctx.db.pool(), repo.id, tag, now).await? {
                return Err(RegistryError::ManifestUnknown(reference_text(&reference)));
            }
        }
        Reference::Digest(d) => {
            let mut tx = ctx.db.begin().await?;
            let Some(id) = db::manifests::mark_deleted(&mut *tx, repo.id, d.as_str(), now).await?
            else {
                return Err(RegistryError::ManifestUnknown(reference_text(&reference)));
            };
            db::tags::end_for_manifest(&mut *tx, id, now).await?;
            tx.commit().await?;
        }
    }
    ctx.pull_cache.invalidate();
    Ok(())
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
    let repo = repos::existing(ctx, principal, Action::Pull, name).await?;
    let rows = db::manifests::referrers(ctx.db.pool(), repo.id, digest.as_str()).await?;
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
