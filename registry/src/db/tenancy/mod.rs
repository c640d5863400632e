//! Queries of tenancy: who the accounts are and how they relate.
//!
//! Order (a module uses only the root and modules listed before it): [`namespaces`] (users,
//! organizations and robots share one table), [`teams`], [`robots`], [`permissions`] (repository
//! permissions and default-permission prototypes), [`members`] (who belongs to an organization:
//! its teams' accounts and direct grants), [`apps`] (OAuth applications), [`tokens`]
//! (access tokens, stored as hashes), [`app_tokens`] (application-specific tokens, hashed and
//! sealed), [`search`] (accounts and teams by name prefix), [`sessions`] (web UI sessions,
//! stored as hashes).

pub mod app_tokens;
pub mod apps;
pub mod members;
pub mod namespaces;
pub mod permissions;
pub mod robots;
pub mod search;
pub mod sessions;
pub mod teams;
pub mod tokens;
