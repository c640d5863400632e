//! The audit log: every change made through the API, and pushes, pulls and logins, with Quay's
//! log kind names (`create_repo`, `push_repo`, `org_add_team_member`, ...), the performer, the
//! client's IP and JSON metadata.
//!
//! Records are queued and written in batches (multi-row inserts) by one background task so the
//! `/v2` hot path does not wait for the database. The queue is bounded ([`QUEUE`]): when pulls
//! arrive faster than the database takes their records, [`AuditLog::record_pressed`] (used by
//! `/v2`) waits for room, slowing pulls down instead of growing memory or dropping records;
//! other callers never wait (their records are rare and queued on a task when the queue is
//! full). [`AuditLog::flush`] waits until everything queued is stored, and
//! [`AuditLog::shutdown`] (called on graceful shutdown) flushes and stops the writer, so nothing
//! is lost.
//!
//! Pulls are merged (bounded growth under pull load): the writer keeps, for the current hour,
//! the entry each repository + reference + performer's pulls go to, and adds later pulls to
//! that entry's count (`log_entry.n`) instead of writing a row each; `log_count` still counts
//! every pull, so `aggregatelogs` and the repository's stats are exact, and a pull load leaves
//! at most one entry per repository, reference, performer and hour (per writer: a replica or a
//! restart starts its own).

use std::net::IpAddr;
use std::sync::Mutex;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::db::{self, Db};
use crate::service::Principal;

tokio::task_local! {
    /// The client address of the request being served, for records made deep inside the
    /// registry services (e.g. a repository created by a push).
    pub static CLIENT_IP: Option<IpAddr>;
}

/// The client address of the current request, when the surface set one.
pub fn current_ip() -> Option<IpAddr> {
    CLIENT_IP.try_with(|ip| *ip).ok().flatten()
}

/// Most records written in one transaction.
const BATCH: usize = 2000;
/// Most messages waiting for the writer (a few MiB of records).
pub const QUEUE: usize = 8192;
/// How long the writer lets records gather when a batch is small but more are arriving.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);
/// A batch this large means records are streaming in (a lone API change writes at once).
const LINGER_FROM: usize = 8;
/// Most pull keys remembered for merging (beyond this the map starts over: more entries, still
/// correct counts).
const SAMPLES_MAX: usize = 100_000;

/// Who did something, and from where.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub ip: Option<IpAddr>,
}

impl Caller {
    pub fn new(principal: Principal, ip: Option<IpAddr>) -> Caller {
        Caller { principal, ip }
    }
}

/// One thing that happened.
#[derive(Clone, Debug)]
pub struct Event {
    /// Quay's log kind name.
    pub kind: &'static str,
    /// The namespace the entry belongs to.
    pub namespace: Option<String>,
    pub repository: Option<String>,
    pub metadata: Value,
}

impl Event {
    pub fn namespace(kind: &'static str, namespace: &str, metadata: Value) -> Event {
        Event {
            kind,
            namespace: Some(namespace.to_owned()),
            repository: None,
            metadata,
        }
    }

    pub fn repo(kind: &'static str, namespace: &str, repository: &str, metadata: Value) -> Event {
        Event {
            kind,
            namespace: Some(namespace.to_owned()),
            repository: Some(repository.to_owned()),
            metadata,
        }
    }
}

/// What a use record (`last_accessed`) is for.
#[derive(Clone, Copy)]
enum Touched {
    Robot,
    AppToken,
}

enum Msg {
    Entry(db::operations::audit::NewEntry),
    TouchRobot { account_id: i64, now_ms: i64 },
    TouchAppToken { id: i64, now_ms: i64 },
    Flush(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
}

pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl AuditLog {
    /// Starts the writer task.
    pub fn start(db: Db) -> AuditLog {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(writer(db, rx));
        AuditLog {
            tx,
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues a record of `event` performed by `caller` at `now_ms`, without waiting.
    pub fn record(&self, caller: &Caller, event: Event, now_ms: i64) {
        let kind = event.kind;
        match self.tx.try_send(Msg::Entry(entry(caller, event, now_ms))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                // Rare (the queue is full of pull records): hand the record to a task that
                // waits for room.
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    if tx.send(msg).await.is_err() {
                        tracing::error!(kind, "audit log writer has stopped; entry lost");
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!(kind, "audit log writer has stopped; entry lost");
            }
        }
    }

    /// Queues a record, waiting for room when the queue is full (back-pressure for `/v2`).
    pub async fn record_pressed(&self, caller: &Caller, event: Event, now_ms: i64) {
        let kind = event.kind;
        if self
            .tx
            .send(Msg::Entry(entry(caller, event, now_ms)))
            .await
            .is_err()
        {
            tracing::error!(kind, "audit log writer has stopped; entry lost");
        }
    }

    /// Records that a robot was used (its `last_accessed`).
    pub fn touch_robot(&self, account_id: i64, now_ms: i64) {
        let _ = self.tx.try_send(Msg::TouchRobot { account_id, now_ms });
    }

    /// Records that an application-specific token was used (its `last_accessed`).
    pub fn touch_app_token(&self, id: i64, now_ms: i64) {
        let _ = self.tx.try_send(Msg::TouchAppToken { id, now_ms });
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Writes everything queued and stops the writer.
    pub async fn shutdown(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Stop(ack)).await.is_ok() {
            let _ = done.await;
        }
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// The row for one record.
fn entry(caller: &Caller, event: Event, now_ms: i64) -> db::operations::audit::NewEntry {
    let mut metadata = match event.metadata {
        Value::Object(m) => Value::Object(m),
        Value::Null => json!({}),
        other => json!({ "value": other }),
    };
    if let Principal::OAuth(o) = &caller.principal {
        metadata["oauth_token_id"] = json!(o.token_id);
        if let Some(app) = &o.application {
            metadata["oauth_token_application_id"] = json!(app);
        }
    }
    let account = caller.principal.account();
    db::operations::audit::NewEntry {
        kind: event.kind.to_owned(),
        namespace: event.namespace,
        repository: event.repository,
        performer_id: account.as_ref().map(|a| a.id),
        performer: account.map(|a| a.name),
        ip: caller.ip.map(|ip| ip.to_string()),
        metadata: metadata.to_string(),
        created_ms: now_ms,
    }
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Msg>) {
    let mut entries = Vec::new();
    let mut touches = Vec::new();
    let mut acks = Vec::new();
    let mut samples = db::operations::audit::Samples::new();
    let mut stop = None;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut lingered = false;
        while let Some(msg) = next.take() {
            match msg {
                Msg::Entry(e) => entries.push(e),
                Msg::TouchRobot { account_id, now_ms } => {
                    touches.push((Touched::Robot, account_id, now_ms))
                }
                Msg::TouchAppToken { id, now_ms } => touches.push((Touched::AppToken, id, now_ms)),
                Msg::Flush(ack) => acks.push(ack),
                Msg::Stop(ack) => {
                    acks.push(ack);
                    stop = Some(());
                }
            }
            if entries.len() < BATCH && stop.is_none() {
                next = rx.try_recv().ok();
            }
            if next.is_none() && !lingered && lingering(&entries, &acks, stop.is_some()) {
                // A steady stream of pulls: let records gather for a moment (once per batch)
                // so that one transaction, and one wake-up of this task, carries many of them.
                lingered = true;
                tokio::time::sleep(LINGER).await;
                next = rx.try_recv().ok();
            }
        }
        write(&db, &mut entries, &mut touches, &mut samples).await;
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
        if stop.is_some() {
            break;
        }
    }
}

/// Whether the writer should wait for more records before writing: only while records
/// stream in (the batch is under way but small) and nobody is waiting on a flush or stop.
fn lingering(
    entries: &[db::operations::audit::NewEntry],
    acks: &[oneshot::Sender<()>],
    stopping: bool,
) -> bool {
    !stopping && acks.is_empty() && entries.len() >= LINGER_FROM && entries.len() < BATCH / 4
}

async fn write(
    db: &Db,
    entries: &mut Vec<db::operations::audit::NewEntry>,
    touches: &mut Vec<(Touched, i64, i64)>,
    samples: &mut db::operations::audit::Samples,
) {
    if !entries.is_empty() {
        // Keys of past hours never match again.
        if let Some(hour) = entries
            .iter()
            .map(|e| e.created_ms.div_euclid(3_600_000))
            .max()
        {
            samples.retain(|k, _| k.hour >= hour);
        }
        if samples.len() > SAMPLES_MAX {
            samples.clear();
        }
        // A failed batch (e.g. the database was briefly unavailable) is retried a few times.
        for attempt in 1..=5 {
            let result = async {
                let mut tx = db.begin().await?;
                let added =
                    db::operations::audit::insert_sampled(&mut tx, entries, Some(samples)).await?;
                tx.commit().await?;
                Ok::<_, db::DbError>(added)
            }
            .await;
            match result {
                Ok(added) => {
                    // Only committed entries are remembered (a rolled-back id may be reused).
                    samples.extend(added);
                    break;
                }
                Err(e) if attempt < 5 => {
                    tracing::warn!(error = %e, attempt, "writing audit log entries failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, count = entries.len(), "writing audit log entries failed; entries lost");
                }
            }
        }
        entries.clear();
    }
    for (what, id, now_ms) in touches.drain(..) {
        let done = match what {
            Touched::Robot => db::tenancy::robots::touch(db.pool(), id, now_ms).await,
            Touched::AppToken => db::tenancy::app_tokens::touch(db.pool(), id, now_ms).await,
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, "recording robot or token use failed");
        }
    }
}
