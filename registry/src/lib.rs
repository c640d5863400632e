//! Quayside: an OCI Distribution 1.1 registry with Project Quay's tenancy model and REST API.
//!
//! Layers, each knowing only the one below it:
//! - [`api`]: HTTP (axum). Routers per surface, extractors for the principal, thin handlers,
//!   and exactly one error-to-response mapping per surface. No SQL.
//! - [`service`]: domain logic (registry protocol, accounts, authorization). No axum types.
//! - [`db`] and [`storage`]: all SQL, and the blob store trait with its backends.
//! - [`workers`]: background jobs (upload cleanup, ...), leased so one replica runs each.

pub mod config;
pub mod db;
pub mod oci;
pub mod storage;

pub mod api;
pub mod builder;
pub mod cli;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod ui;
pub mod workers;
