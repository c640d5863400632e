//! quayside-operator: the kube-rs controller manager for Quayside.
//!
//! Module map:
//! - [`crd`]: the `QuayRegistry` custom resource; [`crdgen`] writes it to `crds/`.
//! - [`quay`]: the QuayRegistry controller, one module per pipeline step (read in
//!   `observed`, `validate`, `material` + `build`, [`apply`], `status`).
//! - [`conditions`]: Kubernetes-style conditions that keep their transition time.
//! - [`leader`]: leader election on a Lease; [`server`]: `/metrics`, `/healthz`, `/readyz`;
//!   [`telemetry`]: logging and metrics; [`context`]: settings shared by every reconcile.
//! - [`cli`]: the `quayside-operator` command line (`run`, `crdgen`).

pub mod apply;
pub mod cli;
pub mod conditions;
pub mod context;
pub mod crd;
pub mod crdgen;
pub mod leader;
pub mod quay;
pub mod server;
pub mod telemetry;
