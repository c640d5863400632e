//! The JSON types of Quayside's REST API (`/api/v1`, Quay's shapes) and, with the default
//! `client` feature, a small async client for it.
//!
//! One module per API area holds that area's request and response bodies and, with `client`,
//! the [`Client`] calls of its endpoints. Every type is also re-exported at the crate root, so
//! callers write `quayside_client::Team` whatever area it lives in.
//!
//! The server depends on this crate for the types (without the client), so what the server
//! answers and what the client reads cannot drift apart. Field names are Quay's; optional fields
//! that Quay omits in some answers are `Option` and skipped when absent.

pub mod app_tokens;
pub mod apps;
pub mod builds;
pub mod common;
pub mod labels;
pub mod logs;
pub mod manifests;
pub mod messages;
pub mod mirror;
pub mod notifications;
pub mod orgs;
pub mod permissions;
pub mod process;
pub mod prototypes;
pub mod proxy_cache;
pub mod quota;
pub mod repositories;
pub mod robots;
pub mod search;
pub mod service_keys;
pub mod tags;
pub mod teams;
pub mod users;

#[cfg(feature = "client")]
mod client;

#[cfg(feature = "client")]
pub use client::{Client, ClientError};

pub use app_tokens::*;
pub use apps::*;
pub use builds::*;
pub use common::*;
pub use labels::*;
pub use logs::*;
pub use manifests::*;
pub use messages::*;
pub use mirror::*;
pub use notifications::*;
pub use orgs::*;
pub use permissions::*;
pub use prototypes::*;
pub use proxy_cache::*;
pub use quota::*;
pub use repositories::*;
pub use robots::*;
pub use search::*;
pub use service_keys::*;
pub use tags::*;
pub use teams::*;
pub use users::*;
