//! Operations: what the installation records and sends about what happens.
//!
//! Rule: these are sinks. Domain services call them (`ctx.audit.record(...)`, a mail to send);
//! they never call back into content or tenancy, so every group above may use them.
//!
//! Modules (independent of each other): [`audit`] (the batched audit log Quay's usage logs read),
//! [`mail`] (outgoing SMTP), [`ssrf`] (the guard on every request to a URL a user chose). Notifications (delivery of repository events) and the usage-logs
//! API belong here when they arrive.

pub mod audit;
pub mod mail;
pub mod ssrf;
