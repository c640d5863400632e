//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas are safe.
//!
//! Rules (as client-go's leader election):
//! - A replica holds the Lease when `holderIdentity` names it. It renews `renewTime` every
//!   `renew_every`; writes use the Lease's resourceVersion, so two replicas never both win.
//! - Another holder's Lease counts as expired when it has not changed for `lease_duration`
//!   as measured on this replica's clock (no trust in other clocks).
//! - A leader that cannot renew for `lease_duration` steps down (its controllers stop and the
//!   process exits, to be restarted as a follower). On shutdown the leader releases the Lease
//!   so a follower takes over at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

/// Where the Lease lives and how long it lasts.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (its Pod name, by default).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_every: Duration,
}

/// Outcome of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// This replica holds the Lease.
    Held,
    /// Someone else does.
    Other,
}

/// An elector for one Lease.
pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    /// Last resourceVersion seen and when it was first seen.
    seen: Option<(String, Instant)>,
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl Elector {
    pub fn new(client: Client, cfg: LeaseConfig) -> Self {
        Elector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            seen: None,
        }
    }

    fn duration_secs(&self) -> i32 {
        i32::try_from(self.cfg.lease_duration.as_secs()).unwrap_or(15)
    }

    /// Tries once to acquire or renew the Lease.
    pub async fn try_acquire(&mut self) -> kube::Result<Attempt> {
        let Some(lease) = self.api.get_opt(&self.cfg.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.cfg.identity.clone()),
                    lease_duration_seconds: Some(self.duration_secs()),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Held),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::Other),
                Err(e) => Err(e),
            };
        };
        let rv = lease.metadata.resource_version.clone().unwrap_or_default();
        let changed = self.seen.as_ref().is_none_or(|(v, _)| *v != rv);
        if changed {
            self.seen = Some((rv, Instant::now()));
        }
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.cfg.identity;
        let duration = spec
            .lease_duration_seconds
            .map_or(self.cfg.lease_duration, |s| {
                Duration::from_secs(u64::try_from(s).unwrap_or(15))
            });
        let expired = self
            .seen
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() > duration);
        if !(mine || holder.is_empty() || expired) {
            return Ok(Attempt::Other);
        }
        let mut next = lease.clone();
        let mut s = spec;
        if !mine {
            s.acquire_time = Some(now());
            s.lease_transitions = Some(s.lease_transitions.unwrap_or(0) + 1);
        }
        s.holder_identity = Some(self.cfg.identity.clone());
        s.lease_duration_seconds = Some(self.duration_secs());
        s.renew_time = Some(now());
        next.spec = Some(s);
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &next)
            .await
        {
            Ok(l) => {
                self.seen = l.metadata.resource_version.map(|v| (v, Instant::now()));
                Ok(Attempt::Held)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::Other),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this replica holds it.
    pub async fn release(&mut self) -> kube::Result<()> {
        let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(&self.cfg.identity) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) | Err(kube::Error::Api(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica holds the Lease; `false` when `shutdown` came first.
    pub async fn acquire(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        loop {
            match self.try_acquire().await {
                Ok(Attempt::Held) => return true,
                Ok(Attempt::Other) => {}
                Err(e) => tracing::warn!(error = %e, "leader election: cannot read the Lease"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.renew_every) => {}
                _ = shutdown.wait_for(|s| *s) => return false,
            }
        }
    }

    /// Renews until the Lease is lost (returns) or `shutdown` (releases it, then returns).
    /// Returns `true` when leadership was lost.
    pub async fn hold(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        let mut last_ok = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.renew_every) => {}
                _ = shutdown.wait_for(|s| *s) => {
                    if let Err(e) = self.release().await {
                        tracing::warn!(error = %e, "leader election: cannot release the Lease");
                    }
                    return false;
                }
            }
            match self.try_acquire().await {
                Ok(Attempt::Held) => last_ok = Instant::now(),
                Ok(Attempt::Other) => return true,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: cannot renew the Lease");
                    if last_ok.elapsed() > self.cfg.lease_duration {
                        return true;
                    }
                }
            }
        }
    }
}
