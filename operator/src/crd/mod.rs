//! The custom resources this operator serves, one module per kind (`quayside.dev/v1alpha1`).
//!
//! Rules:
//! - Each kind lives in its own module ([`quayregistry`], [`organization`], [`robot`], [`quota`],
//!   [`proxycache`]); spec
//!   fields every content kind shares live in [`content`]; types shared by several kinds
//!   (such as [`Condition`]) live here, so callers write `crate::crd::Name`.
//! - Every kind is listed in [`crate::crdgen::crds`], which writes `crds/` and the chart's copy.

pub mod content;
pub mod organization;
pub mod proxycache;
pub mod quayregistry;
pub mod quota;
pub mod robot;

pub use content::*;
pub use organization::*;
pub use proxycache::*;
pub use quayregistry::*;
pub use quota::*;
pub use robot::*;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A Kubernetes-style condition.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Available`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason for the last transition or current state.
    pub reason: String,
    /// Human-readable details.
    #[serde(default)]
    pub message: String,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The `metadata.generation` the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
