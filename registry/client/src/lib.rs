//! The JSON types of Quayside's REST API (`/api/v1`, Quay's shapes) and, with the default
//! `client` feature, a small async client for it.
//!
//! The server depends on this crate for the types (without the client), so what the server
//! answers and what the client reads cannot drift apart.

pub mod types;

#[cfg(feature = "client")]
mod client;

#[cfg(feature = "client")]
pub use client::{Client, ClientError};
