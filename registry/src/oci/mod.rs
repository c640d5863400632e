//! OCI primitives shared by every layer: digests, repository and tag names, media types and manifest
//! parsing. Nothing here touches HTTP, the database or storage; everything is pure and unit-tested.

pub mod digest;
pub mod manifest;
pub mod names;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use manifest::{Descriptor, ManifestError, ManifestKind, ParsedManifest};
pub use names::{NameError, RepoName, validate_tag};
