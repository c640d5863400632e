//! The controllers, one module per custom resource kind: [`quayregistry`], and the content
//! kinds [`organization`], [`robot`], [`quota`] and [`proxycache`] (built on
//! [`crate::content`]).
//!
//! Rules:
//! - A controller module owns its kind's pipeline and exposes
//!   `run_controller(ctx, namespace, shutdown)`, which watches one namespace (or all, for
//!   `None`) and returns once `shutdown` completes.
//! - Wiring a new controller is one line in [`run_all`]: every controller runs concurrently,
//!   once per watched namespace, under the manager's single leader election and shutdown
//!   (see [`crate::cli`]).

pub mod organization;
pub mod proxycache;
pub mod quayregistry;
pub mod quota;
pub mod robot;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::join_all;
use tokio::sync::watch;

use crate::runtime::context::Context;

/// Runs every controller, once per watched namespace (all namespaces when `namespaces` is
/// empty), until `stop` turns true.
pub async fn run_all(ctx: Arc<Context>, namespaces: &[String], stop: watch::Receiver<bool>) {
    let until = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().cloned().map(Some).collect()
    };
    let mut runs: Vec<Pin<Box<dyn Future<Output = ()> + Send>>> = Vec::new();
    for ns in scopes {
        runs.push(Box::pin(quayregistry::run_controller(
            ctx.clone(),
            ns.clone(),
            until(stop.clone()),
        )));
        runs.push(Box::pin(organization::run_controller(
            ctx.clone(),
            ns.clone(),
            until(stop.clone()),
        )));
        runs.push(Box::pin(robot::run_controller(
            ctx.clone(),
            ns.clone(),
            until(stop.clone()),
        )));
        runs.push(Box::pin(quota::run_controller(
            ctx.clone(),
            ns.clone(),
            until(stop.clone()),
        )));
        runs.push(Box::pin(proxycache::run_controller(
            ctx.clone(),
            ns,
            until(stop.clone()),
        )));
    }
    join_all(runs).await;
}
