//! The custom resources this operator serves, one module per kind (`quayside.dev/v1alpha1`).
//!
//! Rules:
//! - Each kind lives in its own module (today [`quayregistry`]); types shared by several kinds
//!   (for example `Condition`) are re-exported here, so callers write `crate::crd::Name`.
//! - Every kind is listed in [`crate::crdgen::crds`], which writes `crds/` and the chart's copy.

pub mod quayregistry;

pub use quayregistry::*;
