//! Security scanning: the built-in scanner behind Quay's security API (docs/scanning.md).
//!
//! Rule: a push only queues its manifest (`manifest_scan`, one insert, no reading of layers);
//! the `scanner` worker claims each queued manifest once across replicas, indexes its layers
//! from storage as streams ([`index`], cached per layer digest in `scan_layer`, so a layer
//! shared by many images is read once) and stores the image's packages. Vulnerabilities are
//! matched when asked (the API) and after each change of the vulnerability database ([`osv`],
//! loaded by `quayside scanner import` and from `SECURITY_SCANNER_OSV_SOURCES`), never by
//! indexing again; a manifest that gains a vulnerability at or above a `vulnerability_found`
//! notification's level raises that event for every repository holding it.
//!
//! Modules: [`tar`] (the streaming tar walk), [`index`] (what a layer holds), [`versions`]
//! (ordering per ecosystem), [`osv`] (advisories in, matching).

pub mod index;
pub mod osv;
pub mod tar;
pub mod versions;

use std::collections::BTreeSet;
use std::io::Read;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::db;
use crate::db::content::scanner::{AdvisoryRow, LayerRow};
use crate::oci::Digest;
use crate::oci::manifest;
use crate::service::access::authz::Action;
use crate::service::content::repositories;
use crate::service::operations::audit::Caller;
use crate::service::operations::notifications;
use crate::service::{Ctx, Internal, TenancyError};
use index::{LayerIndex, Os, Package};

/// `IndexedByVersion` in reports (bumped when the indexer finds more).
pub const INDEXER_VERSION: i64 = 4;
/// How long a claimed scan stays the claimer's.
const CLAIM_MS: i64 = 10 * 60 * 1000;
/// The setting holding the vulnerability database's generation (bumped by each import that
/// changed something) and the one re-matching has reached.
const GENERATION: &str = "scanner:db_generation";
const MATCHED: &str = "scanner:matched_generation";

/// A scanned image: its OS and packages (with the layer that added each).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub os: Option<Os>,
    pub packages: Vec<(Package, String)>,
}

/// One matched vulnerability.
#[derive(Clone, Debug)]
pub struct Found {
    pub advisory: AdvisoryRow,
    pub fixed_by: String,
}

/// Quay's severity order (`PRIORITY_LEVELS` index: 0 is the worst).
pub fn severity_index(name: &str) -> i64 {
    match name {
        "Defcon1" => 0,
        "Critical" => 1,
        "High" => 2,
        "Medium" => 3,
        "Low" => 4,
        "Negligible" => 5,
        _ => 6,
    }
}

/// `GET .../manifest/{digest}/security`: Quay's answer (`status`, `data`).
pub async fn security(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    manifestref: &str,
    vulnerabilities: bool,
) -> Result<Value, TenancyError> {
    let (_, row) = repositories::resolve_manifest(
        ctx,
        caller,
        Action::Pull,
        namespace,
        repository,
        manifestref,
    )
    .await?;
    if manifest::ManifestKind::from_media_type(&row.media_type).is_some_and(|k| k.is_list()) {
        // As Quay: an index is not indexed itself; each platform's manifest has its own report.
        return Ok(json!({ "status": "unsupported", "data": null }));
    }
    let Some(scan) = db::content::scanner::get(ctx.db.pool(), &row.digest).await? else {
        db::content::scanner::enqueue(ctx.db.pool(), &row.digest, ctx.now_ms()).await?;
        return Ok(json!({ "status": "queued", "data": null }));
    };
    match scan.status.as_str() {
        "scanned" => {}
        "failed" | "unsupported" => {
            return Ok(json!({ "status": scan.status, "data": null, "reason": scan.reason }));
        }
        _ => return Ok(json!({ "status": "queued", "data": null })),
    }
    let report: Report = serde_json::from_str(scan.report.as_deref().unwrap_or("{}"))
        .map_err(|e| Internal::Other(format!("stored scan report: {e}")))?;
    let namespace_name = report
        .os
        .as_ref()
        .map(|o| format!("{}:{}", o.id, o.version_id))
        .unwrap_or_default();
    let mut features = Vec::new();
    for (pkg, added_by) in &report.packages {
        let mut f = json!({
            "Name": pkg.name,
            "VersionFormat": pkg.format,
            "NamespaceName": if pkg.format == "dpkg" || pkg.format == "apk" || pkg.format == "rpm" { namespace_name.clone() } else { String::new() },
            "AddedBy": added_by,
            "Version": pkg.version,
            "BaseScores": [],
            "CVEBaseScores": [],
        });
        let found = match_package(ctx, pkg, report.os.as_ref()).await?;
        let scores: Vec<f64> = found
            .iter()
            .filter_map(|v| v.advisory.cvss_score.as_deref()?.parse().ok())
            .collect();
        f["BaseScores"] = json!(scores);
        f["CVEBaseScores"] = Value::Array(
            found
                .iter()
                .filter_map(|v| {
                    let s: f64 = v.advisory.cvss_score.as_deref()?.parse().ok()?;
                    Some(json!({ v.advisory.advisory_id.clone(): s }))
                })
                .collect(),
        );
        if vulnerabilities {
            f["Vulnerabilities"] = Value::Array(
                found
                    .iter()
                    .map(|v| {
                        let a = &v.advisory;
                        let eco_ns = if a.ecosystem_release.is_empty() {
                            a.ecosystem.clone()
                        } else {
                            format!("{}:{}", a.ecosystem, a.ecosystem_release)
                        };
                        json!({
                            "Severity": a.severity,
                            "NamespaceName": eco_ns,
                            "Link": a.link,
                            "FixedBy": v.fixed_by,
                            "Description": a.summary,
                            "Name": a.advisory_id,
                            "Metadata": {
                                "UpdatedBy": "osv",
                                "RepoName": a.ecosystem,
                                "RepoLink": null,
                                "DistroName": report.os.as_ref().map(|o| o.pretty_name.clone()),
                                "DistroVersion": report.os.as_ref().map(|o| o.version_id.clone()),
                                "NVD": {
                                    "CVSSv3": {
                                        "Vectors": a.cvss_vector,
                                        "Score": a.cvss_score.as_deref().and_then(|s| s.parse::<f64>().ok()),
                                    }
                                }
                            },
                        })
                    })
                    .collect(),
            );
        }
        features.push(f);
    }
    Ok(json!({
        "status": "scanned",
        "data": {
            "Layer": {
                "Name": row.digest,
                "ParentName": "",
                "NamespaceName": namespace_name,
                "IndexedByVersion": INDEXER_VERSION,
                "Features": features,
            }
        }
    }))
}

/// The advisories affecting `pkg` (by its own name and its source package's), in the OS's
/// release when the advisory names one.
pub async fn match_package(
    ctx: &Ctx,
    pkg: &Package,
    os: Option<&Os>,
) -> Result<Vec<Found>, Internal> {
    let ecosystem = match (pkg.ecosystem.as_str(), os.map(|o| o.id.as_str())) {
        ("Debian", Some("ubuntu")) => "Ubuntu",
        (e, _) => e,
    };
    let mut names = vec![pkg.name.as_str()];
    if let Some(s) = &pkg.source {
        names.push(s);
    }
    let mut out: Vec<Found> = Vec::new();
    for name in names {
        for a in db::content::scanner::advisories_for(ctx.db.pool(), ecosystem, name).await? {
            if !release_matches(&a, os)
                || out.iter().any(|f| f.advisory.advisory_id == a.advisory_id)
            {
                continue;
            }
            if let Some(fixed_by) = osv::affects(&a, &pkg.version) {
                out.push(Found {
                    advisory: a,
                    fixed_by,
                });
            }
        }
    }
    Ok(out)
}

fn release_matches(a: &AdvisoryRow, os: Option<&Os>) -> bool {
    if a.ecosystem_release.is_empty() {
        return true;
    }
    let Some(os) = os else {
        return false;
    };
    let want = a.ecosystem_release.split(':').next().unwrap_or("");
    let want = want.trim_start_matches('v');
    let have = os.version_id.as_str();
    // Alpine's `v3.19` matches VERSION_ID 3.19.1; Debian's `12` matches 12.
    have == want || have.starts_with(&format!("{want}."))
}

/// Bridges a storage stream to a blocking reader (the indexer runs on a blocking thread).
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// Indexes one layer from storage (gzip or plain tar), streaming.
async fn index_layer(ctx: &Ctx, digest: &Digest) -> Result<LayerIndex, String> {
    let mut stream = ctx
        .store
        .get(&crate::storage::paths::blob(digest), None)
        .await
        .map_err(|e| format!("layer {digest}: {e}"))?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let feeder = tokio::spawn(async move {
        while let Some(chunk) = stream.next().await {
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
    });
    let result = tokio::task::spawn_blocking(move || {
        let mut reader = ChannelReader {
            rx,
            current: bytes::Bytes::new(),
        };
        let mut head = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            let n = reader.read(&mut head[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        let prefix = std::io::Cursor::new(head[..got].to_vec()).chain(reader);
        if head[..got.min(2)] == [0x1f, 0x8b] {
            let gz = flate2::read::MultiGzDecoder::new(prefix);
            index::index_tar(TruncationAware(gz))
        } else if head[..got] == [0x28, 0xb5, 0x2f, 0xfd] {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "zstd-compressed layers are not supported",
            ))
        } else {
            index::index_tar(prefix)
        }
    })
    .await;
    feeder.abort();
    match result {
        Ok(Ok(index)) => Ok(index),
        Ok(Err(e)) => Err(format!("layer {digest}: {e}")),
        Err(e) => Err(format!("layer {digest}: the indexer stopped: {e}")),
    }
}

/// Names a gzip stream that ends early as a truncated layer.
struct TruncationAware<R>(R);

impl<R: Read> Read for TruncationAware<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                std::io::Error::new(e.kind(), "layer is truncated (gzip stream ends early)")
            } else {
                std::io::Error::new(e.kind(), format!("layer is not valid gzip: {e}"))
            }
        })
    }
}

/// What scanning one manifest gave: `(status, reason, report)`.
async fn scan_manifest(
    ctx: &Ctx,
    digest: &str,
) -> Result<(String, Option<String>, Option<Report>), Internal> {
    let Some((media_type, content)) =
        db::content::scanner::manifest_content(ctx.db.pool(), digest).await?
    else {
        return Ok((
            "failed".into(),
            Some("the manifest is no longer stored".into()),
            None,
        ));
    };
    let parsed = match manifest::parse(Some(&media_type), &content) {
        Ok(p) => p,
        Err(e) => return Ok(("failed".into(), Some(format!("manifest: {e}")), None)),
    };
    if parsed.kind.is_list() {
        return Ok((
            "unsupported".into(),
            Some("an index is scanned per platform manifest".into()),
            None,
        ));
    }
    let image_config = parsed.config.as_ref().is_some_and(|c| {
        c.media_type == "application/vnd.oci.image.config.v1+json"
            || c.media_type == "application/vnd.docker.container.image.v1+json"
    });
    if !image_config {
        return Ok((
            "unsupported".into(),
            Some("not a container image (an artifact)".into()),
            None,
        ));
    }
    let mut layers = Vec::new();
    for layer in &parsed.layers {
        if layer.urls.is_some() || !layer.media_type.contains("tar") {
            return Ok((
                "unsupported".into(),
                Some(format!(
                    "layer {} ({}) cannot be read",
                    layer.digest, layer.media_type
                )),
                None,
            ));
        }
        let cached = db::content::scanner::get_layer(ctx.db.pool(), layer.digest.as_str()).await?;
        let row = match cached {
            Some(row) => row,
            None => {
                let row = match index_layer(ctx, &layer.digest).await {
                    Ok(idx) => LayerRow {
                        state: "indexed".into(),
                        reason: None,
                        packages: serde_json::to_string(&idx.packages).unwrap_or_default(),
                        os: idx.os.as_ref().and_then(|o| serde_json::to_string(o).ok()),
                        removed: serde_json::to_string(&(idx.removed, idx.databases))
                            .unwrap_or_default(),
                    },
                    Err(reason) => LayerRow {
                        state: "failed".into(),
                        reason: Some(reason),
                        packages: "[]".into(),
                        os: None,
                        removed: "[[],[]]".into(),
                    },
                };
                db::content::scanner::put_layer(
                    ctx.db.pool(),
                    layer.digest.as_str(),
                    &row,
                    ctx.now_ms(),
                )
                .await?;
                row
            }
        };
        if row.state == "failed" {
            return Ok(("failed".into(), row.reason, None));
        }
        let (removed, databases): (Vec<String>, Vec<String>) =
            serde_json::from_str(&row.removed).unwrap_or_default();
        layers.push(LayerIndex {
            packages: serde_json::from_str(&row.packages).unwrap_or_default(),
            os: row.os.as_deref().and_then(|o| serde_json::from_str(o).ok()),
            removed,
            databases,
        });
    }
    let (packages, os, added) = index::combine(&layers);
    let report = Report {
        os,
        packages: packages
            .into_iter()
            .zip(added)
            .map(|(p, n)| (p, parsed.layers[n].digest.to_string()))
            .collect(),
    };
    Ok(("scanned".into(), None, Some(report)))
}

/// The worker's pass: imports the configured OSV sources when they changed, scans what is
/// queued (each claimed once across replicas), and re-matches after a database change.
pub async fn worker_pass(ctx: &Ctx, holder: &str) -> Result<String, Internal> {
    let mut imported = 0;
    if !ctx.config.scanner.osv_sources.is_empty() {
        let paths = ctx.config.scanner.osv_sources.clone();
        imported = import(ctx, &paths).await.map_err(Internal::Other)?;
    }
    let mut scanned = 0;
    loop {
        let mut tx = ctx.db.begin().await?;
        let now = ctx.now_ms();
        let claimed = db::content::scanner::claim(&mut tx, holder, now, now + CLAIM_MS).await?;
        tx.commit().await?;
        let Some(digest) = claimed else { break };
        let (status, reason, report) = scan_manifest(ctx, &digest).await?;
        let report_text = report
            .as_ref()
            .map(|r| serde_json::to_string(r).unwrap_or_default());
        db::content::scanner::finish(
            ctx.db.pool(),
            &digest,
            holder,
            &status,
            reason.as_deref(),
            report_text.as_deref(),
            "[]",
            ctx.now_ms(),
        )
        .await?;
        if let Some(report) = &report {
            announce(ctx, &digest, report, &BTreeSet::new()).await?;
        }
        scanned += 1;
    }
    // Re-matching: only when the database changed since the last pass that matched.
    let generation = db::operations::settings::get(ctx.db.pool(), GENERATION)
        .await?
        .unwrap_or_default();
    let matched = db::operations::settings::get(ctx.db.pool(), MATCHED)
        .await?
        .unwrap_or_default();
    let mut rematched = 0;
    if generation != matched {
        for scan in db::content::scanner::scanned(ctx.db.pool()).await? {
            let report: Report =
                serde_json::from_str(scan.report.as_deref().unwrap_or("{}")).unwrap_or_default();
            let announced: BTreeSet<String> =
                serde_json::from_str(&scan.announced).unwrap_or_default();
            announce(ctx, &scan.digest, &report, &announced).await?;
            rematched += 1;
        }
        db::operations::settings::put(ctx.db.pool(), MATCHED, &generation).await?;
    }
    Ok(format!(
        "imported {imported} advisory entries, scanned {scanned} manifests, re-matched {rematched}"
    ))
}

/// Raises `vulnerability_found` for the vulnerabilities of the manifest not announced yet,
/// to each holding repository's notifications whose level they reach; records them.
async fn announce(
    ctx: &Ctx,
    digest: &str,
    report: &Report,
    announced: &BTreeSet<String>,
) -> Result<(), Internal> {
    let mut now_found: Vec<Found> = Vec::new();
    for (pkg, _) in &report.packages {
        for f in match_package(ctx, pkg, report.os.as_ref()).await? {
            if !now_found
                .iter()
                .any(|x| x.advisory.advisory_id == f.advisory.advisory_id)
            {
                now_found.push(f);
            }
        }
    }
    let fresh: Vec<&Found> = now_found
        .iter()
        .filter(|f| !announced.contains(&f.advisory.advisory_id))
        .collect();
    if fresh.is_empty() {
        return Ok(());
    }
    let notifications_of =
        db::operations::notifications::enabled_of_event(ctx.db.pool(), "vulnerability_found")
            .await?;
    if !notifications_of.is_empty() {
        for (repo_id, ns, name, tags) in
            db::content::scanner::holders(ctx.db.pool(), digest).await?
        {
            for n in notifications_of
                .iter()
                .filter(|n| n.repository_id == repo_id)
            {
                let config: Value = serde_json::from_str(&n.event_config).unwrap_or(json!({}));
                let level = match config.get("level") {
                    Some(Value::Number(x)) => x.as_i64().unwrap_or(6),
                    Some(Value::String(s)) => s.parse().unwrap_or_else(|_| severity_index(s)),
                    _ => 6,
                };
                // The worst new vulnerability at or above the level (Quay sends one per event).
                let Some(worst) = fresh
                    .iter()
                    .filter(|f| severity_index(&f.advisory.severity) <= level)
                    .min_by_key(|f| severity_index(&f.advisory.severity))
                else {
                    continue;
                };
                let a = &worst.advisory;
                let data = notifications::payload(
                    ctx,
                    &ns,
                    &name,
                    json!({
                        "tags": tags,
                        "image": digest,
                        "vulnerability": {
                            "id": a.advisory_id,
                            "description": a.summary,
                            "link": a.link,
                            "priority": a.severity,
                            "has_fix": !worst.fixed_by.is_empty(),
                        },
                    }),
                );
                db::operations::notifications::enqueue_one(
                    ctx.db.pool(),
                    n.id,
                    &data.to_string(),
                    None,
                    ctx.now_ms(),
                )
                .await?;
            }
        }
    }
    let all: BTreeSet<String> = announced
        .iter()
        .cloned()
        .chain(now_found.iter().map(|f| f.advisory.advisory_id.clone()))
        .collect();
    db::content::scanner::set_announced(
        ctx.db.pool(),
        digest,
        &serde_json::to_string(&all).unwrap_or_default(),
    )
    .await?;
    Ok(())
}

/// Imports OSV advisories from `paths` (files, directories, zips); returns how many affected
/// entries were new or changed, and moves the database's generation when any was.
pub async fn import(ctx: &Ctx, paths: &[std::path::PathBuf]) -> Result<u64, String> {
    let paths = paths.to_vec();
    let rows = tokio::task::spawn_blocking(move || {
        let mut rows = Vec::new();
        for p in &paths {
            osv::read_path(p, &mut rows)?;
        }
        Ok::<_, String>(rows)
    })
    .await
    .map_err(|e| e.to_string())??;
    let mut changed = 0;
    let mut tx = ctx.db.begin().await.map_err(|e| e.to_string())?;
    for row in &rows {
        if db::content::scanner::upsert_advisory(&mut tx, row)
            .await
            .map_err(|e| e.to_string())?
        {
            changed += 1;
        }
    }
    if changed > 0 {
        let g = db::operations::settings::get(&mut *tx, GENERATION)
            .await
            .map_err(|e| e.to_string())?
            .and_then(|g| g.parse::<u64>().ok())
            .unwrap_or(0);
        db::operations::settings::put(&mut *tx, GENERATION, &(g + 1).to_string())
            .await
            .map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(changed)
}
