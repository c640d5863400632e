//! The vulnerability database's input: OSV JSON (one advisory per file, or an array), read from
//! files, directories (every `*.json` below) and zip archives (stored or deflated members, as
//! OSV's per-ecosystem `all.zip` exports are), and the matching of a package against it.
//!
//! Rules: an advisory becomes one row per affected `(ecosystem, release, package)`; its severity
//! is the database's own label (`database_specific.severity`, Debian/Ubuntu `urgency`) or, from
//! a CVSS v3 vector, the CVSS rating; a range is affected from `introduced` to `fixed`
//! (exclusive) or `last_affected` (inclusive), compared with the ecosystem's ordering
//! ([`super::versions`]); `GIT` ranges are skipped (no commit graph here).

use std::cmp::Ordering;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::versions::compare;
use crate::db::content::scanner::AdvisoryRow;

/// Reads every advisory under `path` (a file, a directory, or a `.zip`).
pub fn read_path(path: &Path, out: &mut Vec<AdvisoryRow>) -> Result<(), String> {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() || p.extension().is_some_and(|e| e == "json" || e == "zip") {
                read_path(&p, out)?;
            }
        }
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if path.extension().is_some_and(|e| e == "zip") || bytes.starts_with(b"PK\x03\x04") {
        for (name, data) in unzip(&bytes).map_err(|e| format!("{}: {e}", path.display()))? {
            if name.ends_with(".json") {
                parse(&data, out).map_err(|e| format!("{}!{name}: {e}", path.display()))?;
            }
        }
        return Ok(());
    }
    parse(&bytes, out).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses one OSV document (an object or an array of them).
pub fn parse(bytes: &[u8], out: &mut Vec<AdvisoryRow>) -> Result<(), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not OSV JSON: {e}"))?;
    match v {
        Value::Array(items) => {
            for item in &items {
                advisory(item, out)?;
            }
            Ok(())
        }
        item => advisory(&item, out),
    }
}

fn advisory(v: &Value, out: &mut Vec<AdvisoryRow>) -> Result<(), String> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("an OSV advisory needs an \"id\"")?;
    let summary = v
        .get("summary")
        .or_else(|| v.get("details"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let modified = v
        .get("modified")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let link = v
        .get("references")
        .and_then(Value::as_array)
        .and_then(|r| {
            r.iter()
                .find(|x| x.get("type").and_then(Value::as_str) == Some("ADVISORY"))
                .or_else(|| r.first())
        })
        .and_then(|r| r.get("url"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("https://osv.dev/vulnerability/{id}"));
    let vector = v
        .get("severity")
        .and_then(Value::as_array)
        .and_then(|s| {
            s.iter()
                .find(|x| {
                    x.get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.starts_with("CVSS_V3"))
                })
                .and_then(|x| x.get("score"))
                .and_then(Value::as_str)
        })
        .map(str::to_owned);
    let score = vector.as_deref().and_then(cvss3_score);
    let label = v
        .pointer("/database_specific/severity")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let affected = v
        .get("affected")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{id}: no \"affected\" list"))?;
    for a in affected {
        let Some(pkg) = a.get("package") else {
            continue;
        };
        let (Some(eco), Some(name)) = (
            pkg.get("ecosystem").and_then(Value::as_str),
            pkg.get("name").and_then(Value::as_str),
        ) else {
            return Err(format!(
                "{id}: an affected package needs an ecosystem and a name"
            ));
        };
        let (ecosystem, release) = match eco.split_once(':') {
            Some((e, r)) => (e, r),
            None => (eco, ""),
        };
        let ranges: Vec<Value> = a
            .get("ranges")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.get("type").and_then(Value::as_str) != Some("GIT"))
            .collect();
        for r in &ranges {
            if !r.get("events").is_some_and(Value::is_array) {
                return Err(format!("{id}: a range needs an \"events\" list"));
            }
        }
        let versions = a.get("versions").cloned().unwrap_or(Value::Array(vec![]));
        if !versions.is_array() {
            return Err(format!("{id}: \"versions\" must be a list"));
        }
        let fixed = ranges
            .iter()
            .flat_map(|r| r["events"].as_array().cloned().unwrap_or_default())
            .find_map(|e| e.get("fixed").and_then(Value::as_str).map(str::to_owned));
        let urgency = a
            .pointer("/ecosystem_specific/urgency")
            .or_else(|| a.pointer("/database_specific/severity"))
            .and_then(Value::as_str);
        let severity = severity_name(label.as_deref().or(urgency), score);
        let name = if ecosystem == "PyPI" {
            super::index::normalise_pypi(name)
        } else {
            name.to_owned()
        };
        out.push(AdvisoryRow {
            advisory_id: id.to_owned(),
            ecosystem: ecosystem.to_owned(),
            ecosystem_release: release.to_owned(),
            package: name,
            ranges: Value::Array(ranges).to_string(),
            versions: versions.to_string(),
            fixed,
            severity,
            cvss_score: score.map(|s| format!("{s:.1}")),
            cvss_vector: vector.clone(),
            summary: summary.clone(),
            link: link.clone(),
            modified: modified.clone(),
        });
    }
    Ok(())
}

/// Quay's severity names: Unknown, Negligible, Low, Medium, High, Critical.
fn severity_name(label: Option<&str>, score: Option<f64>) -> String {
    let from_label = label.and_then(|l| match l.to_ascii_lowercase().as_str() {
        "critical" => Some("Critical"),
        "high" => Some("High"),
        "moderate" | "medium" => Some("Medium"),
        "low" => Some("Low"),
        "negligible" | "unimportant" => Some("Negligible"),
        _ => None,
    });
    let from_score = score.map(|s| match s {
        s if s >= 9.0 => "Critical",
        s if s >= 7.0 => "High",
        s if s >= 4.0 => "Medium",
        s if s > 0.0 => "Low",
        _ => "Negligible",
    });
    from_label.or(from_score).unwrap_or("Unknown").to_owned()
}

/// The CVSS v3.x base score of a vector (`CVSS:3.1/AV:N/AC:L/...`).
pub fn cvss3_score(vector: &str) -> Option<f64> {
    let mut m = std::collections::HashMap::new();
    for part in vector.split('/').skip(1) {
        let (k, v) = part.split_once(':')?;
        m.insert(k, v);
    }
    let changed = *m.get("S")? == "C";
    let av = match *m.get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match *m.get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (*m.get("PR")?, changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match *m.get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |k: &str| -> Option<f64> {
        match *m.get(k)? {
            "H" => Some(0.56),
            "L" => Some(0.22),
            "N" => Some(0.0),
            _ => None,
        }
    };
    let iss = 1.0 - (1.0 - cia("C")?) * (1.0 - cia("I")?) * (1.0 - cia("A")?);
    let impact = if changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    // Round up to one decimal (CVSS 3.1's Roundup).
    let int = (raw * 100_000.0).round() as i64;
    Some(if int % 10_000 == 0 {
        int as f64 / 100_000.0
    } else {
        ((int / 10_000) as f64 + 1.0) / 10.0
    })
}

/// Whether `version` is affected by the advisory row; `Some(fixed version or "")` when it is.
pub fn affects(a: &AdvisoryRow, version: &str) -> Option<String> {
    let eco = a.ecosystem.as_str();
    let versions: Vec<String> = serde_json::from_str(&a.versions).unwrap_or_default();
    if versions
        .iter()
        .any(|v| compare(eco, v, version) == Ordering::Equal)
    {
        return Some(a.fixed.clone().unwrap_or_default());
    }
    let ranges: Vec<Value> = serde_json::from_str(&a.ranges).unwrap_or_default();
    for r in &ranges {
        let events = r["events"].as_array().cloned().unwrap_or_default();
        // Walk the events in order: an interval opens at `introduced`, closes at `fixed`
        // (exclusive) or `last_affected` (inclusive); `limit`s bound the whole range.
        let mut open: Option<String> = None;
        let cmp = |x: &str, y: &str| {
            if x == "0" {
                Ordering::Less
            } else {
                compare(eco, x, y)
            }
        };
        let mut hit: Option<String> = None;
        for e in &events {
            if let Some(i) = e.get("introduced").and_then(Value::as_str) {
                open = Some(i.to_owned());
            } else if let Some(f) = e.get("fixed").and_then(Value::as_str) {
                if let Some(start) = open.take()
                    && cmp(&start, version) != Ordering::Greater
                    && compare(eco, version, f) == Ordering::Less
                {
                    hit = Some(f.to_owned());
                }
            } else if let Some(l) = e.get("last_affected").and_then(Value::as_str)
                && let Some(start) = open.take()
                && cmp(&start, version) != Ordering::Greater
                && compare(eco, version, l) != Ordering::Greater
            {
                hit = Some(String::new());
            }
            if hit.is_some() {
                break;
            }
        }
        if hit.is_none()
            && let Some(start) = open
            && cmp(&start, version) != Ordering::Greater
        {
            hit = Some(String::new());
        }
        if hit.is_some() {
            return hit;
        }
    }
    None
}

/// The members of a zip archive (stored or deflated), read from its central directory.
pub fn unzip(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let u16_at = |o: usize| -> Result<u16, String> {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated zip".to_owned())
    };
    let u32_at = |o: usize| -> Result<u32, String> {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| "truncated zip".to_owned())
    };
    let eocd = (0..bytes.len().saturating_sub(21))
        .rev()
        .take(65_557)
        .find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))
        .ok_or("not a zip archive (no end of central directory)")?;
    let count = u16_at(eocd + 10)? as usize;
    let mut at = u32_at(eocd + 16)? as usize;
    let mut out = Vec::new();
    for _ in 0..count {
        if u32_at(at)? != 0x0201_4b50 {
            return Err("malformed zip central directory".into());
        }
        let method = u16_at(at + 10)?;
        let csize = u32_at(at + 20)? as usize;
        let usize_ = u32_at(at + 24)? as usize;
        let nlen = u16_at(at + 28)? as usize;
        let xlen = u16_at(at + 30)? as usize;
        let clen = u16_at(at + 32)? as usize;
        let local = u32_at(at + 42)? as usize;
        let name =
            String::from_utf8_lossy(bytes.get(at + 46..at + 46 + nlen).ok_or("truncated zip")?)
                .into_owned();
        at += 46 + nlen + xlen + clen;
        if u32_at(local)? != 0x0403_4b50 {
            return Err("malformed zip member".into());
        }
        let start = local + 30 + u16_at(local + 26)? as usize + u16_at(local + 28)? as usize;
        let data = bytes
            .get(start..start + csize)
            .ok_or("truncated zip member")?;
        if usize_ > 256 * 1024 * 1024 {
            return Err(format!("{name}: member over 256 MiB"));
        }
        let data = match method {
            0 => data.to_vec(),
            8 => {
                let mut v = Vec::with_capacity(usize_);
                flate2::read::DeflateDecoder::new(data)
                    .take(usize_ as u64 + 1)
                    .read_to_end(&mut v)
                    .map_err(|e| format!("{name}: {e}"))?;
                v
            }
            m => {
                return Err(format!(
                    "{name}: zip compression method {m} is not supported"
                ));
            }
        };
        out.push((name, data));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss_and_ranges() {
        assert_eq!(
            cvss3_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            Some(9.8)
        );
        assert_eq!(
            cvss3_score("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N"),
            Some(5.9)
        );
        assert_eq!(
            cvss3_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:L/I:L/A:N"),
            Some(7.2)
        );
        let mut rows = Vec::new();
        parse(
            br#"{"id":"GHSA-x","modified":"2024","affected":[{"package":{"ecosystem":"npm","name":"lodash"},
              "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.21"}]}]},
              {"package":{"ecosystem":"PyPI","name":"Foo_Bar"},"versions":["1.0"],
              "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.0"},{"last_affected":"2.3"}]}]}]}"#,
            &mut rows,
        )
        .unwrap();
        assert_eq!(affects(&rows[0], "4.17.20").as_deref(), Some("4.17.21"));
        assert_eq!(affects(&rows[0], "4.17.21"), None);
        assert_eq!(rows[1].package, "foo-bar");
        assert!(affects(&rows[1], "1.0").is_some());
        assert!(affects(&rows[1], "2.3").is_some());
        assert!(affects(&rows[1], "2.4").is_none());
        assert!(affects(&rows[1], "1.5").is_none());
        assert!(parse(b"{\"id\":\"X\"}", &mut rows).is_err());
        assert!(parse(b"[1", &mut rows).is_err());
    }
}
