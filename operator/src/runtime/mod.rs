//! Machinery shared by every controller, independent of any one kind.
//!
//! Rule: nothing here imports from `crate::controllers`; a controller's own pipeline steps
//! (the QuayRegistry's `apply` of its desired objects, say) live in its module.
//!
//! - [`conditions`]: Kubernetes-style conditions that keep their transition time.
//! - [`context`]: operator-wide settings and the context every reconcile receives.
//! - [`events`]: publishing Events, one per distinct message.
//! - [`leader`]: leader election on a Lease; [`server`]: `/metrics`, `/healthz`, `/readyz`;
//!   [`telemetry`]: logging and metrics.

pub mod conditions;
pub mod context;
pub mod events;
pub mod leader;
pub mod server;
pub mod telemetry;
