//! Operations: what the installation records and sends about what happens.
//!
//! Rule: these are sinks. Domain services call them (`ctx.audit.record(...)`, a mail to send);
//! they never call back into content or tenancy, so every group above may use them.
//!
//! Modules: [`audit`] (the batched audit log Quay's usage logs read), [`mail`] (outgoing SMTP),
//! [`ssrf`] (the guard on every request to a URL a user chose), independent of each other; then
//! [`notifications`] (repository events delivered by webhook, chat, e-mail or in-app), which
//! uses all three. The usage-logs API belongs here when it arrives.

pub mod audit;
pub mod mail;
pub mod notifications;
pub mod ssrf;
