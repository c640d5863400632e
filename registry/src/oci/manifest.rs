//! Manifest media types and parsing. `parse` turns an uploaded body plus its `Content-Type` into a
//! [`ParsedManifest`] that lists exactly what the registry must check and index: the blobs it
//! references, the child manifests of an index, its `subject`, its artifact type and annotations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_IMAGE_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Manifest media types the registry stores, in the order it prefers them.
pub const SUPPORTED: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// Largest manifest accepted (4 MiB, as in CNCF Distribution and the OCI spec's recommendation).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestKind {
    OciManifest,
    OciIndex,
    DockerManifest,
    DockerList,
}

impl ManifestKind {
    pub fn from_media_type(media_type: &str) -> Option<ManifestKind> {
        Some(match media_type {
            OCI_MANIFEST => ManifestKind::OciManifest,
            OCI_INDEX => ManifestKind::OciIndex,
            DOCKER_MANIFEST => ManifestKind::DockerManifest,
            DOCKER_LIST => ManifestKind::DockerList,
            _ => return None,
        })
    }

    pub fn media_type(self) -> &'static str {
        match self {
            ManifestKind::OciManifest => OCI_MANIFEST,
            ManifestKind::OciIndex => OCI_INDEX,
            ManifestKind::DockerManifest => DOCKER_MANIFEST,
            ManifestKind::DockerList => DOCKER_LIST,
        }
    }

    /// Whether this is a list of manifests (OCI index or Docker manifest list).
    pub fn is_list(self) -> bool {
        matches!(self, ManifestKind::OciIndex | ManifestKind::DockerList)
    }
}

/// A content descriptor (OCI image spec `descriptor.md`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

/// The fields of any supported manifest the registry cares about; unknown fields are ignored
/// (the stored bytes are always the client's own).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

/// A validated manifest.
#[derive(Clone, Debug)]
pub struct ParsedManifest {
    pub kind: ManifestKind,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    /// `artifactType` as the referrers API reports it: the manifest's own `artifactType`, else (for
    /// image manifests) the config's media type.
    pub artifact_type: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

impl ParsedManifest {
    pub fn media_type(&self) -> &'static str {
        self.kind.media_type()
    }

    /// Blobs that must exist in the repository for the manifest to be accepted: the config and
    /// every layer that is not a foreign (URL-sourced) layer.
    pub fn required_blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(
            self.layers
                .iter()
                .filter(|l| l.urls.as_ref().is_none_or(Vec::is_empty)),
        )
    }

    /// Whether this manifest's config describes a runnable container image (as opposed to an
    /// artifact such as a Helm chart or a signature).
    pub fn is_image(&self) -> bool {
        match &self.config {
            Some(c) => c.media_type == OCI_IMAGE_CONFIG || c.media_type == DOCKER_IMAGE_CONFIG,
            None => true,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("Content-Type {header:?} does not match the manifest's mediaType {body:?}")]
    MediaTypeMismatch { header: String, body: String },
    #[error("manifest schemaVersion must be 2")]
    SchemaVersion,
    #[error("manifest field {0} is missing")]
    MissingField(&'static str),
    #[error("manifest field {0} is not allowed in a {1}")]
    UnexpectedField(&'static str, &'static str),
    #[error("descriptor size must not be negative")]
    NegativeSize,
    /// The registry keeps these fields as text, which holds no NUL (see `api::edge`).
    #[error("manifest field {0} must not contain NUL characters")]
    Nul(&'static str),
}

/// The first field of a manifest that the registry keeps and that holds a NUL character.
fn nul_field(raw: &RawManifest) -> Option<&'static str> {
    let nul = |s: &str| s.contains('\0');
    let nul_map =
        |m: &Option<BTreeMap<String, String>>| m.iter().flatten().any(|(k, v)| nul(k) || nul(v));
    let descriptor_nul = |d: &Descriptor| {
        nul(&d.media_type)
            || d.artifact_type.as_deref().is_some_and(nul)
            || d.urls.iter().flatten().any(|u| nul(u))
            || nul_map(&d.annotations)
            || d.platform.as_ref().is_some_and(|p| {
                nul(&p.architecture)
                    || nul(&p.os)
                    || p.variant.as_deref().is_some_and(nul)
                    || p.os_version.as_deref().is_some_and(nul)
            })
    };
    if raw.media_type.as_deref().is_some_and(nul) {
        return Some("mediaType");
    }
    if raw.artifact_type.as_deref().is_some_and(nul) {
        return Some("artifactType");
    }
    if nul_map(&raw.annotations) {
        return Some("annotations");
    }
    let fields: [(&'static str, &[Descriptor]); 4] = [
        ("config", raw.config.as_slice()),
        ("layers", raw.layers.as_deref().unwrap_or_default()),
        ("manifests", raw.manifests.as_deref().unwrap_or_default()),
        ("subject", raw.subject.as_slice()),
    ];
    fields
        .into_iter()
        .find(|(_, ds)| ds.iter().any(descriptor_nul))
        .map(|(name, _)| name)
}

/// Strips parameters (`; charset=...`) and whitespace from a Content-Type value.
pub fn bare_media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Parses and validates a manifest body uploaded with the given `Content-Type` header.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<ParsedManifest, ManifestError> {
    let raw: RawManifest =
        serde_json::from_slice(body).map_err(|e| ManifestError::Json(e.to_string()))?;
    if let Some(field) = nul_field(&raw) {
        return Err(ManifestError::Nul(field));
    }
    let header = content_type
        .map(bare_media_type)
        .filter(|h| !h.is_empty() && *h != "application/json" && *h != "application/octet-stream");
    let media_type = match (header, raw.media_type.as_deref()) {
        (Some(h), Some(b)) if h != b => {
            return Err(ManifestError::MediaTypeMismatch {
                header: h.into(),
                body: b.into(),
            });
        }
        (Some(h), _) => h.to_owned(),
        (None, Some(b)) => b.to_owned(),
        // OCI manifests may omit mediaType; infer it from the shape.
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_owned(),
        (None, None) => OCI_MANIFEST.to_owned(),
    };
    let kind = ManifestKind::from_media_type(&media_type)
        .ok_or(ManifestError::UnsupportedMediaType(media_type))?;
    if raw.schema_version != Some(2) {
        return Err(ManifestError::SchemaVersion);
    }
    let all_descriptors = raw
        .config
        .iter()
        .chain(raw.layers.iter().flatten())
        .chain(raw.manifests.iter().flatten())
        .chain(raw.subject.iter());
    for d in all_descriptors {
        if d.size < 0 {
            return Err(ManifestError::NegativeSize);
        }
    }
    let kind_name = if kind.is_list() {
        "manifest list"
    } else {
        "image manifest"
    };
    if kind.is_list() {
        if raw.config.is_some() {
            return Err(ManifestError::UnexpectedField("config", kind_name));
        }
        if raw.layers.is_some() {
            return Err(ManifestError::UnexpectedField("layers", kind_name));
        }
        let manifests = raw
            .manifests
            .ok_or(ManifestError::MissingField("manifests"))?;
        Ok(ParsedManifest {
            kind,
            config: None,
            layers: Vec::new(),
            manifests,
            subject: raw.subject,
            artifact_type: raw.artifact_type,
            annotations: raw.annotations.unwrap_or_default(),
        })
    } else {
        if raw.manifests.is_some() {
            return Err(ManifestError::UnexpectedField("manifests", kind_name));
        }
        let config = raw.config.ok_or(ManifestError::MissingField("config"))?;
        let layers = match (kind, raw.layers) {
            (_, Some(l)) => l,
            (ManifestKind::OciManifest, None) => Vec::new(),
            (_, None) => return Err(ManifestError::MissingField("layers")),
        };
        let artifact_type = raw
            .artifact_type
            .or_else(|| Some(config.media_type.clone()));
        Ok(ParsedManifest {
            kind,
            config: Some(config),
            layers,
            manifests: Vec::new(),
            subject: raw.subject,
            artifact_type,
            annotations: raw.annotations.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image(media_type: Option<&str>) -> String {
        let mt = media_type
            .map(|m| format!(r#""mediaType":"{m}","#))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"{OCI_IMAGE_CONFIG}","digest":"{D1}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":10}},
                      {{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{D2}","size":10,"urls":["https://example.com/x"]}}]}}"#
        )
    }

    #[test]
    fn image_manifest_with_and_without_media_type() {
        let m = parse(Some(OCI_MANIFEST), image(Some(OCI_MANIFEST)).as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::OciManifest);
        assert_eq!(
            m.required_blobs().count(),
            2,
            "foreign layer is not required"
        );
        assert!(m.is_image());
        assert_eq!(m.artifact_type.as_deref(), Some(OCI_IMAGE_CONFIG));
        let m = parse(None, image(None).as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::OciManifest);
        let m = parse(
            Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
            image(None).as_bytes(),
        )
        .unwrap();
        assert_eq!(m.kind, ManifestKind::OciManifest);
    }

    #[test]
    fn mismatched_and_unsupported_types() {
        assert!(matches!(
            parse(Some(DOCKER_MANIFEST), image(Some(OCI_MANIFEST)).as_bytes()),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert!(matches!(
            parse(Some(DOCKER_SCHEMA1_SIGNED), b"{\"schemaVersion\":1}"),
            Err(ManifestError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            parse(Some(OCI_MANIFEST), b"not json"),
            Err(ManifestError::Json(_))
        ));
        assert_eq!(
            parse(Some(OCI_MANIFEST), br#"{"schemaVersion":2,"layers":[]}"#).unwrap_err(),
            ManifestError::MissingField("config")
        );
        assert_eq!(
            parse(Some(OCI_INDEX), br#"{"schemaVersion":2}"#).unwrap_err(),
            ManifestError::MissingField("manifests")
        );
        assert_eq!(
            parse(Some(OCI_INDEX), br#"{"schemaVersion":1,"manifests":[]}"#).unwrap_err(),
            ManifestError::SchemaVersion
        );
    }

    #[test]
    fn nul_in_kept_fields_is_refused() {
        let with = |from: &str, to: &str| image(Some(OCI_MANIFEST)).replacen(from, to, 1);
        assert_eq!(
            parse(
                None,
                with(
                    "\"schemaVersion\"",
                    "\"annotations\":{\"k\":\"v\\u0000\"},\"schemaVersion\""
                )
                .as_bytes()
            )
            .unwrap_err(),
            ManifestError::Nul("annotations")
        );
        assert_eq!(
            parse(
                None,
                with(
                    "\"schemaVersion\"",
                    "\"artifactType\":\"a/\\u0000\",\"schemaVersion\""
                )
                .as_bytes()
            )
            .unwrap_err(),
            ManifestError::Nul("artifactType")
        );
        assert_eq!(
            parse(
                None,
                with(OCI_IMAGE_CONFIG, "application/x\\u0000").as_bytes()
            )
            .unwrap_err(),
            ManifestError::Nul("config")
        );
        assert_eq!(
            parse(
                None,
                with("https://example.com/x", "https://example.com/\\u0000").as_bytes()
            )
            .unwrap_err(),
            ManifestError::Nul("layers")
        );
        // Unknown fields are not kept: a NUL there is the client's business.
        assert!(
            parse(
                None,
                with(
                    "\"schemaVersion\"",
                    "\"x-other\":\"\\u0000\",\"schemaVersion\""
                )
                .as_bytes()
            )
            .is_ok()
        );
    }

    #[test]
    fn index_and_artifact() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":5,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        );
        let m = parse(None, body.as_bytes()).unwrap();
        assert!(m.kind.is_list());
        assert_eq!(
            m.manifests[0].platform.as_ref().unwrap().architecture,
            "amd64"
        );

        let artifact = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.sbom","config":{{"mediaType":"{OCI_EMPTY}","digest":"{D1}","size":2}},"layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":7}}}}"#
        );
        let m = parse(Some(OCI_MANIFEST), artifact.as_bytes()).unwrap();
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.example.sbom")
        );
        assert_eq!(m.subject.as_ref().unwrap().digest.as_str(), D2);
        assert!(!m.is_image());
    }
}
