//! Operations: what the installation records and sends about what happens.
//!
//! Rule: these are sinks. Domain services call them (`ctx.audit.record(...)`, a mail to send);
//! they never call back into content or tenancy, so every group above may use them.
//!
//! Modules (independent of each other): [`audit`] (the batched audit log Quay's usage logs read),
//! [`mail`] (outgoing SMTP), [`ssrf`] (the guard on every request to a URL a user chose),
//! [`messages`] (global messages). Above them, [`logs`] (the usage-logs API, exports and
//! rotation) uses `mail` and `ssrf`. Notifications (delivery of repository events) belong here
//! when they arrive.

pub mod audit;
pub mod logs;
pub mod mail;
pub mod messages;
pub mod ssrf;
