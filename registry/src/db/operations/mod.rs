//! Queries of operations: what the installation records and shares across replicas.
//!
//! [`audit`] (the audit log) and [`settings`] (installation-wide settings and worker leases) are
//! independent of each other and of every other group.

pub mod audit;
pub mod settings;
