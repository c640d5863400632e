//! Machinery shared by every controller, independent of any one kind.
//!
//! - [`apply`]: server-side apply of desired objects, deleting owned objects no longer desired.
//! - [`conditions`]: Kubernetes-style conditions that keep their transition time.
//! - [`context`]: operator-wide settings and the context every reconcile receives.
//! - [`leader`]: leader election on a Lease; [`server`]: `/metrics`, `/healthz`, `/readyz`;
//!   [`telemetry`]: logging and metrics.

pub mod apply;
pub mod conditions;
pub mod context;
pub mod leader;
pub mod server;
pub mod telemetry;
