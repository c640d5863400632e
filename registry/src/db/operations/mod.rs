//! Queries of operations: what the installation records and shares across replicas.
//!
//! [`audit`] (the audit log), [`logs`] (reading, exporting and archiving it for the usage-logs
//! API), [`messages`] (global messages), [`settings`] (installation-wide settings and worker
//! leases), [`service_keys`] (the keys that sign and verify JWTs) and [`notifications`] (repository notifications and their delivery queue) are
//! independent of each other and of every other group.

pub mod audit;
pub mod logs;
pub mod messages;
pub mod notifications;
pub mod service_keys;
pub mod settings;
