//! Operations: what the installation records and sends about what happens.
//!
//! Rule: these are sinks. Domain services call them (`ctx.audit.record(...)`, a mail to send);
//! they never call back into content or tenancy, so every group above may use them.
//!
//! Modules: [`audit`] (the batched audit log Quay's usage logs read), [`mail`] (outgoing SMTP),
//! [`ssrf`] (the guard on every request to a URL a user chose), independent of each other; then,
//! using them and independent of each other, [`notifications`] (repository events delivered by
//! webhook, chat, e-mail or in-app), [`logs`] (the usage-logs API, exports and rotation) and
//! [`messages`] (global messages) and [`service_keys`] (superusers' management of the keys that
//! sign and verify JWTs).

pub mod audit;
pub mod logs;
pub mod mail;
pub mod messages;
pub mod notifications;
pub mod service_keys;
pub mod ssrf;
