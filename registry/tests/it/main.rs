//! Integration tests: the real server, in-process on a random loopback port, driven over HTTP
//! and by real clients. Every `backend_tests!` test runs on SQLite and on PostgreSQL.

// Test helpers are plain functions called by the generated #[test]s, so clippy's
// allow-unwrap-in-tests does not reach them; unwrapping is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

mod app_tokens;
mod audit;
mod auth;
mod auth_holes;
mod authz_matrix;
mod bad_input;
mod blobs;
mod builds;
mod clients;
mod content;
mod discovery_walk;
mod expiration;
mod federation;
mod gc;
mod images;
mod integrity;
mod labels;
mod logs;
mod manifests;
mod members;
mod messages;
mod mirror;
mod notifications;
mod oauth;
mod ops;
mod orgs;
mod permissions;
mod proxy_cache;
mod quay_api;
mod quota;
mod replicas;
mod repos_api;
mod robots;
mod safety;
mod scale;
mod scanner;
mod search;
mod service_keys;
mod storage;
mod tags;
mod teams;
mod tenancy_clients;
mod ui;
