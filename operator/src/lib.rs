//! quayside-operator: the kube-rs controller manager for Quayside.
//!
//! Module map:
//! - [`crd`]: the custom resources, one module per kind (`crd::quayregistry`); [`crdgen`]
//!   writes them to `crds/`.
//! - [`controllers`]: one module per controller; `controllers::quayregistry` is the
//!   QuayRegistry controller, one module per pipeline step (read in `observed`, `validate`,
//!   `material` + `build`, `apply`, `status`).
//! - [`runtime`]: machinery every controller shares: `conditions`, `context`
//!   (settings shared by every reconcile), `leader` (Lease election), `server` (`/metrics`,
//!   `/healthz`, `/readyz`) and `telemetry` (logging and metrics).
//! - [`content`]: what every content controller (Organization, Robot, ...) shares: the
//!   registry connection, claims, deletion policy, conditions, events and resync.
//! - [`cli`]: the `quayside-operator` command line (`run`, `crdgen`).

pub mod cli;
pub mod content;
pub mod controllers;
pub mod crd;
pub mod crdgen;
pub mod runtime;
