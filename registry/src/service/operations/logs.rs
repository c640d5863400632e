//! Usage logs: the audit log read back through Quay's API — pages of entries, counts per kind
//! and day, exports to blob storage delivered to a callback URL or an e-mail address, and the
//! rotation of old entries into blob storage.
//!
//! Rules:
//! - Who reads what: a user their own namespace's logs, organization administrators the
//!   organization's, repository administrators the repository's, superusers everything
//!   (`/superuser/logs`, and any namespace or repository).
//! - The range is `[starttime, endtime + 1 day)` (dates `MM/DD/YYYY`, or `YYYY-MM-DD` as the
//!   seeds also show, midnight UTC); without them the last day up to a day ahead, as Quay answers.
//!   A date that is neither format, or an end before the start, is refused (400).
//! - Pages hold [`PAGE`] entries, newest first. `next_page` is the position after the page's last
//!   entry, `(datetime, id)`, sealed with the installation secret (AES-GCM) together with the
//!   scope it belongs to: a token cannot be read, altered or replayed on another scope (400), and
//!   entries inserted while a client pages are never shown twice nor make it skip one, since
//!   the position is a key, not an offset.
//! - Exports are durable jobs (`log_export`) the `exportlogs` worker claims; the file is written
//!   to blob storage, then the callback URL (checked by [`super::ssrf`] when requested and
//!   before the call) receives a POST, or the address an e-mail, with a link that expires after
//!   [`EXPORT_LINK_TTL_MS`]. A failed delivery is retried with backoff up to
//!   [`EXPORT_ATTEMPTS`] times.
//! - Rotation (`FEATURE_ACTION_LOG_ROTATION`): entries older than
//!   `ACTION_LOG_ROTATION_THRESHOLD` are written as JSON lines under `ACTION_LOG_ARCHIVE_PATH`
//!   in blob storage, then deleted from the database, in batches; an entry is deleted only after
//!   its batch is stored.

use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use quayside_client as api;
use serde_json::{Value, json};

use crate::db::operations::logs::{self as db_logs, ExportRow, Filter, LogRow, Scope};
use crate::service::access::authz::{self, Action, Resource};
use crate::service::operations::audit::Caller;
use crate::service::operations::mail;
use crate::service::operations::ssrf;
use crate::service::views::{avatar, format_date};
use crate::service::{Ctx, Internal, TenancyError};

/// Entries per page (Quay's).
pub const PAGE: i64 = 20;
const DAY_MS: i64 = 86_400_000;
/// The longest range `aggregatelogs` counts over (Quay refuses a month or more).
const AGGREGATE_MAX_MS: i64 = 31 * DAY_MS;
/// How long an export's download link works (Quay's default: an hour).
pub const EXPORT_LINK_TTL_MS: i64 = 3_600_000;
/// Delivery attempts of an export before it is given up.
pub const EXPORT_ATTEMPTS: i64 = 5;
/// How long a worker holds a claimed export before another may take it over.
const EXPORT_LEASE_MS: i64 = 10 * 60_000;
/// Entries read from the database per query while exporting or archiving.
const BATCH: i64 = 1000;

/// Whose logs.
#[derive(Clone, Copy, Debug)]
pub enum Of<'a> {
    /// The signed-in user's namespace.
    User,
    Organization(&'a str),
    Repository(&'a str, &'a str),
    /// The whole installation (superusers).
    Installation,
}

/// The query of a logs call.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub starttime: Option<String>,
    pub endtime: Option<String>,
    pub performer: Option<String>,
    pub next_page: Option<String>,
}

/// A resolved scope: the rows' filter and a name to bind page tokens to.
struct Resolved {
    scope: Scope,
    /// `n:<id>`, `r:<id>` or `*`.
    tag: String,
    namespace: Option<String>,
    repository: Option<String>,
}

fn invalid(message: impl Into<String>) -> TenancyError {
    TenancyError::Invalid(message.into())
}

/// Checks the caller may read `of`'s logs and finds its scope.
async fn resolve(ctx: &Ctx, caller: &Caller, of: Of<'_>) -> Result<Resolved, TenancyError> {
    let pool = ctx.db.pool();
    match of {
        Of::User => {
            let user = caller
                .principal
                .user()
                .ok_or(TenancyError::Forbidden { anonymous: true })?;
            Ok(Resolved {
                scope: Scope::Namespace(user.id),
                tag: format!("n:{}", user.id),
                namespace: Some(user.name.clone()),
                repository: None,
            })
        }
        Of::Organization(org) => {
            authz::require(
                ctx,
                &caller.principal,
                Action::AdminNamespace,
                Resource::Namespace(org),
            )
            .await?;
            match db_logs::account_by_name(pool, org).await? {
                Some((id, kind)) if kind == "org" => Ok(Resolved {
                    scope: Scope::Namespace(id),
                    tag: format!("n:{id}"),
                    namespace: Some(org.to_owned()),
                    repository: None,
                }),
                _ => Err(TenancyError::NotFound),
            }
        }
        Of::Repository(ns, name) => {
            let repo_name = crate::oci::RepoName::parse(&format!("{ns}/{name}"))
                .map_err(|_| TenancyError::NotFound)?;
            authz::require(
                ctx,
                &caller.principal,
                Action::Admin,
                Resource::Repo(&repo_name),
            )
            .await?;
            let id = db_logs::repository_id(pool, ns, name)
                .await?
                .ok_or(TenancyError::NotFound)?;
            Ok(Resolved {
                scope: Scope::Repository(id),
                tag: format!("r:{id}"),
                namespace: Some(ns.to_owned()),
                repository: Some(name.to_owned()),
            })
        }
        Of::Installation => {
            authz::require(
                ctx,
                &caller.principal,
                Action::SuperUser,
                Resource::Registry,
            )
            .await?;
            Ok(Resolved {
                scope: Scope::All,
                tag: "*".into(),
                namespace: None,
                repository: None,
            })
        }
    }
}

/// A date of a logs query: `MM/DD/YYYY` (Quay's) or `YYYY-MM-DD`, at midnight UTC.
fn parse_date(key: &str, text: &str) -> Result<i64, TenancyError> {
    let text = text.trim();
    let date = NaiveDate::parse_from_str(text, "%m/%d/%Y")
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y-%m-%d"))
        .map_err(|_| {
            invalid(format!(
                "Invalid {key}: {text:?} is not a date (MM/DD/YYYY)"
            ))
        })?;
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .ok_or_else(|| invalid(format!("Invalid {key}")))?;
    Ok(Utc.from_utc_datetime(&midnight).timestamp_millis())
}

/// The range `[start, end)` of a query, as the module doc says.
pub fn range(
    starttime: Option<&str>,
    endtime: Option<&str>,
    now_ms: i64,
) -> Result<(i64, i64), TenancyError> {
    let start = match starttime.filter(|s| !s.trim().is_empty()) {
        Some(s) => parse_date("starttime", s)?,
        None => now_ms - DAY_MS,
    };
    let end = match endtime.filter(|s| !s.trim().is_empty()) {
        Some(s) => parse_date("endtime", s)? + DAY_MS,
        None => now_ms + DAY_MS,
    };
    if end < start {
        return Err(invalid("End time must be after start time"));
    }
    Ok((start, end))
}

async fn filter(
    ctx: &Ctx,
    query: &Query,
    start_ms: i64,
    end_ms: i64,
) -> Result<Filter, TenancyError> {
    let performer_id = match query.performer.as_deref().filter(|p| !p.is_empty()) {
        // An unknown performer performed nothing: the filter matches no entry.
        Some(name) => Some(
            db_logs::account_by_name(ctx.db.pool(), name)
                .await?
                .map_or(-1, |(id, _)| id),
        ),
        None => None,
    };
    Ok(Filter {
        start_ms,
        end_ms,
        performer_id,
    })
}

fn seal_token(ctx: &Ctx, tag: &str, created_ms: i64, id: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(ctx.sealer().seal(&format!("logs:{tag}:{created_ms}:{id}")))
}

fn open_token(ctx: &Ctx, tag: &str, token: &str) -> Result<(i64, i64), TenancyError> {
    use base64::Engine;
    let refused = || invalid("Invalid next_page token");
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| refused())?;
    let text = std::str::from_utf8(&sealed)
        .ok()
        .and_then(|s| ctx.sealer().open(s))
        .ok_or_else(refused)?;
    let rest = text
        .strip_prefix("logs:")
        .and_then(|r| r.strip_prefix(tag))
        .and_then(|r| r.strip_prefix(':'))
        .ok_or_else(refused)?;
    let (ms, id) = rest.split_once(':').ok_or_else(refused)?;
    Ok((
        ms.parse().map_err(|_| refused())?,
        id.parse().map_err(|_| refused())?,
    ))
}

/// An entry in Quay's shape.
fn view(row: &LogRow, include_namespace: bool) -> api::LogEntry {
    let mut metadata = serde_json::from_str::<Value>(&row.metadata)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    if row.n > 1 {
        // Pulls merged into this entry (see `audit`): how many it stands for.
        metadata["pull_count"] = json!(row.n);
    }
    let performer = row.performer.as_ref().map(|name| {
        let is_robot = row.performer_kind.as_deref() == Some("robot") || name.contains('+');
        api::LogAccount {
            kind: "user".into(),
            name: name.clone(),
            is_robot: Some(is_robot),
            avatar: avatar(
                name,
                row.performer_email.as_deref(),
                if is_robot { "robot" } else { "user" },
            ),
        }
    });
    let namespace = row
        .namespace
        .as_ref()
        .filter(|_| include_namespace)
        .map(|name| {
            let kind = if row.namespace_kind.as_deref() == Some("org") {
                "org"
            } else {
                "user"
            };
            api::LogAccount {
                kind: kind.into(),
                name: name.clone(),
                is_robot: None,
                avatar: avatar(name, row.namespace_email.as_deref(), kind),
            }
        });
    api::LogEntry {
        kind: row.kind.clone(),
        metadata,
        ip: row.ip.clone(),
        datetime: format_date(row.created_ms),
        performer,
        namespace,
    }
}

/// `GET .../logs`: one page.
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    of: Of<'_>,
    query: &Query,
) -> Result<api::LogPage, TenancyError> {
    let resolved = resolve(ctx, caller, of).await?;
    let (start_ms, end_ms) = range(
        query.starttime.as_deref(),
        query.endtime.as_deref(),
        ctx.now_ms(),
    )?;
    let before = query
        .next_page
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(|t| open_token(ctx, &resolved.tag, t))
        .transpose()?;
    let filter = filter(ctx, query, start_ms, end_ms).await?;
    let mut rows = db_logs::page(ctx.db.pool(), resolved.scope, &filter, before, PAGE + 1).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let next_page = more
        .then(|| rows.last())
        .flatten()
        .map(|r| seal_token(ctx, &resolved.tag, r.created_ms, r.id));
    let include_namespace = resolved.scope == Scope::All;
    Ok(api::LogPage {
        start_time: format_date(start_ms),
        end_time: format_date(end_ms),
        logs: rows.iter().map(|r| view(r, include_namespace)).collect(),
        next_page,
    })
}

/// `GET .../aggregatelogs`: entries per kind per day.
pub async fn aggregate(
    ctx: &Ctx,
    caller: &Caller,
    of: Of<'_>,
    query: &Query,
) -> Result<api::AggregatedLogs, TenancyError> {
    let resolved = resolve(ctx, caller, of).await?;
    let (start_ms, end_ms) = range(
        query.starttime.as_deref(),
        query.endtime.as_deref(),
        ctx.now_ms(),
    )?;
    if end_ms - start_ms > AGGREGATE_MAX_MS {
        return Err(invalid(
            "Cannot lookup aggregated logs over a period longer than a month",
        ));
    }
    let filter = filter(ctx, query, start_ms, end_ms).await?;
    let counts = counts_per_day(ctx, resolved.scope, &filter).await?;
    Ok(api::AggregatedLogs {
        aggregated: counts
            .into_iter()
            .map(|((day, kind), count)| api::AggregatedLog {
                kind,
                count,
                datetime: format_date(day * DAY_MS),
            })
            .collect(),
    })
}

fn add_counts(
    rows: Vec<(String, i64, i64)>,
    out: &mut std::collections::BTreeMap<(i64, String), i64>,
) {
    for (kind, day, n) in rows {
        *out.entry((day, kind)).or_insert(0) += n;
    }
}

/// Entries per (day, kind) in the filter's range: whole hours from the `log_count` rollup, the
/// partial hours at both ends (and any performer filter, which the rollup does not carry)
/// counted in `log_entry`.
async fn counts_per_day(
    ctx: &Ctx,
    scope: Scope,
    filter: &Filter,
) -> Result<std::collections::BTreeMap<(i64, String), i64>, TenancyError> {
    const HOUR_MS: i64 = 3_600_000;
    let pool = ctx.db.pool();
    let mut out = std::collections::BTreeMap::new();
    let first_hour =
        filter.start_ms.div_euclid(HOUR_MS) + i64::from(filter.start_ms.rem_euclid(HOUR_MS) != 0);
    let end_hour = filter.end_ms.div_euclid(HOUR_MS);
    if filter.performer_id.is_some() || first_hour >= end_hour {
        let rows = db_logs::counts_per_day(pool, scope, filter).await?;
        add_counts(rows, &mut out);
        return Ok(out);
    }
    for (start_ms, end_ms) in [
        (filter.start_ms, first_hour * HOUR_MS),
        (end_hour * HOUR_MS, filter.end_ms),
    ] {
        if start_ms < end_ms {
            let edge = Filter {
                start_ms,
                end_ms,
                performer_id: None,
            };
            let rows = db_logs::counts_per_day(pool, scope, &edge).await?;
            add_counts(rows, &mut out);
        }
    }
    for (kind, hour, n) in db_logs::counts_per_hour(pool, scope, first_hour, end_hour).await? {
        *out.entry(((hour * HOUR_MS).div_euclid(DAY_MS), kind))
            .or_insert(0) += n;
    }
    out.retain(|_, n| *n > 0);
    Ok(out)
}

/// `POST .../exportlogs`: queues an export; answers its id. `origin` is the registry's public
/// `scheme://host` for the download link.
pub async fn request_export(
    ctx: &Ctx,
    caller: &Caller,
    of: Of<'_>,
    request: &api::ExportLogsRequest,
    query: &Query,
    origin: &str,
) -> Result<api::ExportLogsStarted, TenancyError> {
    if !ctx.config.action_logs.export {
        return Err(TenancyError::NotFound);
    }
    if matches!(of, Of::Installation) {
        return Err(TenancyError::NotFound);
    }
    let resolved = resolve(ctx, caller, of).await?;
    let callback_url = request.callback_url.as_deref().filter(|u| !u.is_empty());
    let callback_email = request.callback_email.as_deref().filter(|e| !e.is_empty());
    if let Some(url) = callback_url {
        if !url.starts_with("https://") && !url.starts_with("http://") {
            return Err(invalid("Invalid callback URL"));
        }
        ssrf::Guard::new(&ctx.config.ssrf_allowed_hosts)
            .check(url)
            .await
            .map_err(|e| invalid(format!("Invalid callback URL: {e}")))?;
    }
    if let Some(email) = callback_email
        && (!email.contains('@') || email.contains(['\r', '\n', '<', '>']))
    {
        return Err(invalid("Invalid callback e-mail"));
    }
    if callback_url.is_none() && callback_email.is_none() {
        return Err(invalid(
            "Must specify either callback_url or callback_email",
        ));
    }
    let (start_ms, end_ms) = range(
        request.starttime.as_deref().or(query.starttime.as_deref()),
        request.endtime.as_deref().or(query.endtime.as_deref()),
        ctx.now_ms(),
    )?;
    let (account_id, repository_id) = match resolved.scope {
        Scope::Namespace(id) => (id, None),
        Scope::Repository(id) => {
            let ns = resolved.namespace.as_deref().unwrap_or_default();
            let account = db_logs::account_by_name(ctx.db.pool(), ns)
                .await?
                .ok_or(TenancyError::NotFound)?;
            (account.0, Some(id))
        }
        Scope::All => return Err(TenancyError::NotFound),
    };
    let export_id = uuid::Uuid::new_v4().to_string();
    db_logs::insert_export(
        ctx.db.pool(),
        &db_logs::NewExport {
            export_id: &export_id,
            account_id,
            namespace: resolved.namespace.as_deref().unwrap_or_default(),
            repository_id,
            repository: resolved.repository.as_deref(),
            start_ms,
            end_ms,
            callback_url,
            callback_email,
            link_origin: origin,
        },
        ctx.now_ms(),
    )
    .await?;
    Ok(api::ExportLogsStarted { export_id })
}

/// The token of an export's download link: the export id and the link's expiry, sealed.
fn link_token(ctx: &Ctx, export_id: &str, expires_ms: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        ctx.sealer()
            .seal(&format!("export:{export_id}:{expires_ms}")),
    )
}

/// What `GET /exportedlogs/{token}` serves.
pub enum Download {
    File(crate::storage::ByteStream),
    /// Unknown, tampered with, or expired.
    Gone,
}

/// `GET /exportedlogs/{token}`: the exported file while its link is valid.
pub async fn download(ctx: &Ctx, token: &str) -> Result<Download, Internal> {
    use base64::Engine;
    let opened = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| ctx.sealer().open(&s));
    let Some(text) = opened else {
        return Ok(Download::Gone);
    };
    let Some((export_id, expires)) = text
        .strip_prefix("export:")
        .and_then(|r| r.rsplit_once(':'))
    else {
        return Ok(Download::Gone);
    };
    if expires.parse::<i64>().map_or(true, |e| e < ctx.now_ms()) {
        return Ok(Download::Gone);
    }
    let Some(row) = db_logs::export_by_id(ctx.db.pool(), export_id).await? else {
        return Ok(Download::Gone);
    };
    let Some(key) = row.storage_key else {
        return Ok(Download::Gone);
    };
    match ctx.store.get(&key, None).await {
        Ok(stream) => Ok(Download::File(stream)),
        Err(crate::storage::StorageError::NotFound(_)) => Ok(Download::Gone),
        Err(e) => Err(e.into()),
    }
}

/// One pass of the `exportlogs` worker: runs every due export, deletes files whose links have
/// expired. Returns how many exports were delivered.
pub async fn export_pass(ctx: &Ctx) -> Result<usize, Internal> {
    for stale in db_logs::expired_exports(ctx.db.pool(), ctx.now_ms()).await? {
        if let Some(key) = &stale.storage_key {
            match ctx.store.delete(key).await {
                Ok(()) | Err(crate::storage::StorageError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        db_logs::export_file_removed(ctx.db.pool(), stale.id).await?;
    }
    let mut delivered = 0;
    loop {
        let now = ctx.now_ms();
        let Some(job) =
            db_logs::claim_export(ctx.db.pool(), ctx.db.backend(), now, now + EXPORT_LEASE_MS)
                .await?
        else {
            break;
        };
        match run_export(ctx, &job).await {
            Ok(()) => {
                db_logs::export_finished(ctx.db.pool(), job.id, "done", None, now).await?;
                delivered += 1;
            }
            Err(e) => {
                let message = e.to_string();
                tracing::warn!(export_id = %job.export_id, attempt = job.attempts, error = %message, "log export failed");
                let (state, next) = if job.attempts >= EXPORT_ATTEMPTS {
                    ("failed", now)
                } else {
                    // 1 s, 2 s, 4 s, ... between attempts.
                    (
                        "queued",
                        now + 1000 * (1 << (job.attempts - 1).clamp(0, 10)),
                    )
                };
                db_logs::export_finished(ctx.db.pool(), job.id, state, Some(&message), next)
                    .await?;
                if state == "failed" {
                    report_failure(ctx, &job).await;
                }
            }
        }
    }
    Ok(delivered)
}

/// Why an export attempt failed.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error(transparent)]
    Internal(#[from] Internal),
    #[error("callback: {0}")]
    Callback(String),
    #[error("mail: {0}")]
    Mail(String),
}

impl From<crate::db::DbError> for ExportError {
    fn from(e: crate::db::DbError) -> Self {
        ExportError::Internal(Internal::Db(e))
    }
}

impl From<crate::storage::StorageError> for ExportError {
    fn from(e: crate::storage::StorageError) -> Self {
        ExportError::Internal(Internal::Storage(e))
    }
}

/// Writes the file (once; a retry reuses it) and delivers the link.
async fn run_export(ctx: &Ctx, job: &ExportRow) -> Result<(), ExportError> {
    let (key, expires_ms) = match (&job.storage_key, job.expires_ms) {
        (Some(key), Some(expires)) => (key.clone(), expires),
        _ => {
            let key = write_export(ctx, job).await?;
            let expires = ctx.now_ms() + EXPORT_LINK_TTL_MS;
            db_logs::export_written(ctx.db.pool(), job.id, &key, expires).await?;
            (key, expires)
        }
    };
    let _ = key;
    let url = format!(
        "{}/exportedlogs/{}",
        job.link_origin,
        link_token(ctx, &job.export_id, expires_ms)
    );
    deliver(ctx, job, Some(&url), "success").await
}

/// Streams the export's entries into one JSON document in blob storage.
async fn write_export(ctx: &Ctx, job: &ExportRow) -> Result<String, ExportError> {
    let scope = match job.repository_id {
        Some(id) => Scope::Repository(id),
        None => Scope::Namespace(job.account_id.unwrap_or(-1)),
    };
    let filter = Filter {
        start_ms: job.start_ms,
        end_ms: job.end_ms,
        performer_id: None,
    };
    let header = json!({
        "start_time": format_date(job.start_ms),
        "end_time": format_date(job.end_ms),
        "namespace": job.namespace,
        "repository": job.repository,
    });
    let head = format!(
        "{{\"export_id\": {}, \"details\": {header}, \"logs\": [",
        json!(job.export_id)
    );
    // The document is streamed to storage one batch of entries at a time, never held whole.
    enum Step {
        Head,
        Batch(Option<(i64, i64)>),
        Done,
    }
    let db = ctx.db.clone();
    let body = futures_util::stream::unfold((Step::Head, true), move |(step, first)| {
        let db = db.clone();
        let head = head.clone();
        async move {
            match step {
                Step::Head => Some((Ok(bytes::Bytes::from(head)), (Step::Batch(None), first))),
                Step::Batch(before) => {
                    let rows = match db_logs::page(db.pool(), scope, &filter, before, BATCH).await {
                        Ok(rows) => rows,
                        Err(e) => {
                            return Some((
                                Err(std::io::Error::other(e.to_string())),
                                (Step::Done, first),
                            ));
                        }
                    };
                    let mut chunk = Vec::new();
                    let mut first = first;
                    for row in &rows {
                        if !first {
                            chunk.extend_from_slice(b", ");
                        }
                        first = false;
                        if let Err(e) = serde_json::to_writer(&mut chunk, &view(row, false)) {
                            return Some((Err(std::io::Error::other(e)), (Step::Done, first)));
                        }
                    }
                    let next = match rows.last() {
                        Some(last) if rows.len() as i64 == BATCH => {
                            Step::Batch(Some((last.created_ms, last.id)))
                        }
                        _ => {
                            chunk.extend_from_slice(b"], \"terminator\": \"--- LOGS END ---\"}");
                            Step::Done
                        }
                    };
                    Some((Ok(bytes::Bytes::from(chunk)), (next, first)))
                }
                Step::Done => None,
            }
        }
    });
    let id = uuid::Uuid::parse_str(&job.export_id).map_err(|e| Internal::Other(e.to_string()))?;
    let key = crate::storage::paths::exported_logs(&id);
    let stream: crate::storage::ByteStream = Box::pin(body);
    ctx.store.put(&key, stream).await?;
    Ok(key)
}

/// POSTs the result to the callback URL and/or mails it.
async fn deliver(
    ctx: &Ctx,
    job: &ExportRow,
    url: Option<&str>,
    status: &str,
) -> Result<(), ExportError> {
    if let Some(callback) = &job.callback_url {
        let payload = api::ExportCallback {
            export_id: job.export_id.clone(),
            start_time: format_date(job.start_ms),
            end_time: format_date(job.end_ms),
            namespace: job.namespace.clone(),
            repository: job.repository.clone(),
            exported_data_url: url.map(str::to_owned),
            status: status.to_owned(),
        };
        let target = ssrf::Guard::new(&ctx.config.ssrf_allowed_hosts)
            .target(callback)
            .await
            .map_err(|e| ExportError::Callback(e.to_string()))?;
        let client = target
            .client(Duration::from_secs(30))
            .map_err(|e| ExportError::Callback(e.to_string()))?;
        let answer = client
            .post(target.url.clone())
            .json(&payload)
            .send()
            .await
            .map_err(|e| ExportError::Callback(e.to_string()))?;
        if !answer.status().is_success() {
            return Err(ExportError::Callback(format!(
                "the callback answered {}",
                answer.status()
            )));
        }
    }
    if let Some(to) = &job.callback_email {
        let Some(config) = ctx.config.mail.clone() else {
            return Err(ExportError::Mail(
                "mail is not configured (FEATURE_MAILING, MAIL_SERVER)".into(),
            ));
        };
        let what = match &job.repository {
            Some(repo) => format!("{}/{repo}", job.namespace),
            None => job.namespace.clone(),
        };
        let (subject, body) = match url {
            Some(url) => (
                "Exported logs available".to_owned(),
                format!(
                    "The usage logs of {what} from {} to {} (export {}) are ready.\r\n\r\n\
                     Download them within the hour, the link then expires:\r\n{url}\r\n",
                    format_date(job.start_ms),
                    format_date(job.end_ms),
                    job.export_id
                ),
            ),
            None => (
                "Logs export failed".to_owned(),
                format!(
                    "The export {} of the usage logs of {what} could not be completed.\r\n",
                    job.export_id
                ),
            ),
        };
        tokio::time::timeout(
            Duration::from_secs(30),
            mail::send(&config, to, &subject, &body),
        )
        .await
        .map_err(|_| ExportError::Mail("timed out".into()))?
        .map_err(|e| ExportError::Mail(e.to_string()))?;
    }
    Ok(())
}

/// Tells the requester an export was given up (best effort).
async fn report_failure(ctx: &Ctx, job: &ExportRow) {
    if let Err(e) = deliver(ctx, job, None, "failed").await {
        tracing::warn!(export_id = %job.export_id, error = %e, "reporting a failed log export failed");
    }
}

/// One pass of the `logrotation` worker: archives and deletes entries older than the threshold.
/// Returns how many entries were archived.
pub async fn rotation_pass(ctx: &Ctx) -> Result<u64, Internal> {
    let config = &ctx.config.action_logs;
    let before = ctx.now_ms() - config.rotation_threshold.as_millis() as i64;
    let mut archived = 0;
    loop {
        let rows = db_logs::oldest_before(ctx.db.pool(), before, BATCH).await?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            break;
        };
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let (lo, hi) = (
            ids.iter().copied().min().unwrap_or(first.id),
            ids.iter().copied().max().unwrap_or(last.id),
        );
        let mut lines = Vec::new();
        for r in &rows {
            let line = json!({
                "id": r.id,
                "kind": r.kind,
                "namespace": r.namespace,
                "repository": r.repository,
                "performer": r.performer,
                "ip": r.ip,
                "metadata": serde_json::from_str::<Value>(&r.metadata).unwrap_or(Value::Null),
                "datetime": format_date(r.created_ms),
                "created_ms": r.created_ms,
                "count": r.n,
            });
            lines.extend_from_slice(line.to_string().as_bytes());
            lines.push(b'\n');
        }
        let key = crate::storage::paths::log_archive(&config.archive_path, lo, hi);
        let body = bytes::Bytes::from(lines);
        let stream: crate::storage::ByteStream =
            Box::pin(futures_util::stream::once(async move { Ok(body) }));
        ctx.store.put(&key, stream).await?;
        let mut tx = ctx.db.begin().await?;
        archived += db_logs::delete_ids(&mut tx, &ids).await?;
        tx.commit().await?;
        if (rows.len() as i64) < BATCH {
            break;
        }
    }
    Ok(archived)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_quay() {
        let now = 1_764_720_000_000; // 2025-12-03 00:00 UTC
        assert_eq!(
            range(None, None, now).unwrap(),
            (now - DAY_MS, now + DAY_MS)
        );
        let (s, e) = range(Some("12/01/2026"), Some("12/02/2026"), now).unwrap();
        assert_eq!(format_date(s), "Tue, 01 Dec 2026 00:00:00 -0000");
        assert_eq!(format_date(e), "Thu, 03 Dec 2026 00:00:00 -0000");
        let (s2, e2) = range(Some("2026-12-01"), Some("2026-12-02"), now).unwrap();
        assert_eq!((s, e), (s2, e2));
        assert!(range(Some("12/02/2026"), Some("11/01/2026"), now).is_err());
        assert!(range(Some("yesterday"), None, now).is_err());
        assert!(range(Some("13/45/2026"), None, now).is_err());
    }
}
