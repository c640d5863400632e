//! The layer indexer: walks one layer's tar stream ([`super::tar`]) and records what it adds —
//! the OS (`etc/os-release`, `usr/lib/os-release`), Debian packages (`var/lib/dpkg/status`,
//! `var/lib/dpkg/status.d/*`), Alpine packages (`lib/apk/db/installed`), Python distributions
//! (`*.dist-info/METADATA`), npm packages (`node_modules/**/package.json`) and Go binaries'
//! modules (the build info blob of ELF files) — and what its whiteouts remove.
//!
//! Rules: only the files above are read into memory, each at most [`MAX_FILE`] bytes; ELF files
//! are streamed (the build info is found in passing); nothing is written anywhere. A malformed
//! dpkg or apk database fails the layer with a reason; an unreadable `package.json` or
//! `METADATA` is skipped (trees carry test fixtures). `rpmdb.sqlite` and the older Berkeley DB
//! `Packages` are not read: RPM distributions index as `unsupported` packages-wise (the OS is
//! still found); reading `rpmdb.sqlite` needs an SQLite reader over a byte buffer, the older
//! databases a Berkeley DB / NDB reader.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

use super::tar::{Kind, Reader};

/// The largest package-database file read.
pub const MAX_FILE: u64 = 32 * 1024 * 1024;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// Quay's `VersionFormat`: `dpkg`, `apk`, `rpm`, `python`, `npm`, `go`.
    pub format: String,
    /// The OSV ecosystem its advisories are filed under (`Debian`, `Alpine`, `PyPI`, ...).
    pub ecosystem: String,
    /// The source package advisories are filed under, when it differs (dpkg's `Source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The file it was found in (whiteouts and later databases replace by path).
    pub path: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Os {
    pub id: String,
    pub version_id: String,
    pub pretty_name: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LayerIndex {
    pub packages: Vec<Package>,
    pub os: Option<Os>,
    /// Whiteouts: a removed path, or `dir/` for an opaque directory.
    pub removed: Vec<String>,
    /// Package databases the layer holds (they replace lower layers' copies).
    pub databases: Vec<String>,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Indexes one uncompressed layer.
pub fn index_tar(input: impl Read) -> io::Result<LayerIndex> {
    let mut r = Reader::new(input);
    let mut out = LayerIndex::default();
    let mut entries: u64 = 0;
    while let Some(e) = r.next_entry()? {
        entries += 1;
        if entries > 5_000_000 {
            return Err(bad("layer has more than 5,000,000 entries"));
        }
        let (dir, base) = match e.path.rsplit_once('/') {
            Some((d, b)) => (d, b),
            None => ("", e.path.as_str()),
        };
        if let Some(hidden) = base.strip_prefix(".wh.") {
            if hidden == ".wh..opq" {
                out.removed.push(format!("{dir}/"));
            } else if dir.is_empty() {
                out.removed.push(hidden.to_owned());
            } else {
                out.removed.push(format!("{dir}/{hidden}"));
            }
            continue;
        }
        if e.kind != Kind::File {
            continue;
        }
        let path = e.path.as_str();
        let want = path == "etc/os-release"
            || path == "usr/lib/os-release"
            || path == "var/lib/dpkg/status"
            || (dir == "var/lib/dpkg/status.d" && !base.ends_with(".md5sums"))
            || path == "lib/apk/db/installed"
            || (base == "METADATA" && dir.ends_with(".dist-info"))
            || (base == "package.json" && is_npm_package_dir(dir));
        if want {
            let Some(data) = r.data(MAX_FILE)? else {
                return Err(bad(format!(
                    "{path}: {} bytes, over the {MAX_FILE} bytes a package database may have",
                    e.size
                )));
            };
            let path = path.to_owned();
            read_file(&path, &data, &mut out)?;
        } else if e.size >= 64 {
            let mut go = GoScan::default();
            r.stream(|chunk| go.feed(chunk))?;
            if let Some(info) = go.found() {
                out.packages.extend(go_packages(path, &info));
            }
        }
    }
    Ok(out)
}

fn is_npm_package_dir(dir: &str) -> bool {
    // node_modules/<name> or node_modules/@scope/<name>
    let parts: Vec<&str> = dir.split('/').collect();
    match parts.as_slice() {
        [.., "node_modules", name] => !name.starts_with('@') && !name.starts_with('.'),
        [.., "node_modules", scope, _] => scope.starts_with('@'),
        _ => false,
    }
}

fn read_file(path: &str, data: &[u8], out: &mut LayerIndex) -> io::Result<()> {
    if path.ends_with("os-release") {
        let text = String::from_utf8_lossy(data);
        let mut os = Os::default();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim().trim_matches('"').trim_matches('\'').to_owned();
                match k.trim() {
                    "ID" => os.id = v,
                    "VERSION_ID" => os.version_id = v,
                    "PRETTY_NAME" => os.pretty_name = v,
                    _ => {}
                }
            }
        }
        // etc/os-release wins over usr/lib/os-release within a layer.
        if path == "etc/os-release" || out.os.is_none() {
            out.os = Some(os);
        }
        return Ok(());
    }
    if path.starts_with("var/lib/dpkg/status") {
        let text = std::str::from_utf8(data)
            .map_err(|_| bad(format!("{path}: the dpkg database is not UTF-8")))?;
        out.databases.push(path.to_owned());
        for (n, para) in text.split("\n\n").enumerate() {
            if para.trim().is_empty() {
                continue;
            }
            let mut fields = std::collections::HashMap::new();
            let mut last: Option<&str> = None;
            for line in para.lines() {
                if line.starts_with(' ') || line.starts_with('\t') {
                    if last.is_none() {
                        return Err(bad(format!(
                            "{path}: malformed dpkg database (continuation line first in stanza {})",
                            n + 1
                        )));
                    }
                    continue;
                }
                let Some((k, v)) = line.split_once(':') else {
                    return Err(bad(format!(
                        "{path}: malformed dpkg database (stanza {}: {line:?} is not a field)",
                        n + 1
                    )));
                };
                last = Some(k);
                fields.insert(k.trim(), v.trim());
            }
            let (Some(name), Some(version)) = (fields.get("Package"), fields.get("Version")) else {
                return Err(bad(format!(
                    "{path}: malformed dpkg database (stanza {} has no Package or Version)",
                    n + 1
                )));
            };
            if let Some(status) = fields.get("Status")
                && !status.ends_with(" installed")
            {
                continue;
            }
            // `Source: name (version)` names the source package advisories are filed under.
            let source = fields
                .get("Source")
                .map(|s| s.split_whitespace().next().unwrap_or(s).to_owned())
                .filter(|s| s != name);
            out.packages.push(Package {
                name: (*name).to_owned(),
                version: (*version).to_owned(),
                format: "dpkg".into(),
                ecosystem: "Debian".into(),
                source,
                path: path.to_owned(),
            });
        }
        return Ok(());
    }
    if path == "lib/apk/db/installed" {
        let text = std::str::from_utf8(data)
            .map_err(|_| bad(format!("{path}: the apk database is not UTF-8")))?;
        out.databases.push(path.to_owned());
        for (n, record) in text.split("\n\n").enumerate() {
            if record.trim().is_empty() {
                continue;
            }
            let (mut name, mut version, mut origin) = (None, None, None);
            for line in record.lines() {
                let Some((k, v)) = line.split_once(':') else {
                    return Err(bad(format!(
                        "{path}: malformed apk database (record {}: {line:?})",
                        n + 1
                    )));
                };
                match k {
                    "P" => name = Some(v),
                    "V" => version = Some(v),
                    "o" => origin = Some(v),
                    _ => {}
                }
            }
            let (Some(name), Some(version)) = (name, version) else {
                return Err(bad(format!(
                    "{path}: malformed apk database (record {} has no P: or V:)",
                    n + 1
                )));
            };
            out.packages.push(Package {
                name: name.to_owned(),
                version: version.to_owned(),
                format: "apk".into(),
                ecosystem: "Alpine".into(),
                source: origin.filter(|o| *o != name).map(str::to_owned),
                path: path.to_owned(),
            });
        }
        return Ok(());
    }
    if path.ends_with(".dist-info/METADATA") {
        let text = String::from_utf8_lossy(data);
        let (mut name, mut version) = (None, None);
        for line in text.lines() {
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("Name:") {
                name = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("Version:") {
                version = Some(v.trim().to_owned());
            }
        }
        if let (Some(name), Some(version)) = (name, version) {
            out.packages.push(Package {
                name: normalise_pypi(&name),
                version,
                format: "python".into(),
                ecosystem: "PyPI".into(),
                source: None,
                // The whole .dist-info directory is the package.
                path: path.trim_end_matches("/METADATA").to_owned(),
            });
        }
        return Ok(());
    }
    if path.ends_with("package.json") {
        #[derive(Deserialize)]
        struct Pj {
            name: Option<String>,
            version: Option<String>,
        }
        if let Ok(Pj {
            name: Some(name),
            version: Some(version),
        }) = serde_json::from_slice::<Pj>(data)
        {
            out.packages.push(Package {
                name,
                version,
                format: "npm".into(),
                ecosystem: "npm".into(),
                source: None,
                path: path.trim_end_matches("/package.json").to_owned(),
            });
        }
    }
    Ok(())
}

/// PEP 503 normalisation (OSV's PyPI names are normalised the same way when matched).
pub fn normalise_pypi(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c == '_' || c == '.' || c == '-' {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---- Go build info --------------------------------------------------------------------------

const GO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";
/// Bytes kept after the magic: the 32-byte header and the inline strings.
const GO_KEEP: usize = 256 * 1024;

/// Finds Go's build info in a streamed file: an ELF file (checked by its first bytes) whose
/// data holds `\xff Go buildinf:` at a 16-byte aligned offset, as Go's `debug/buildinfo`
/// searches the data segment. Only Go 1.18+ inline strings (flag 2) are read; older binaries
/// store pointers into the data segment and are not read.
#[derive(Default)]
pub struct GoScan {
    offset: u64,
    head: Vec<u8>,
    not_elf: bool,
    /// The last 15 bytes of the previous chunk (a magic split across chunks).
    carry: Vec<u8>,
    found: Option<Vec<u8>>,
}

impl GoScan {
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.not_elf {
            return;
        }
        if self.head.len() < 4 {
            let need = 4 - self.head.len();
            self.head.extend_from_slice(&chunk[..need.min(chunk.len())]);
            if self.head.len() == 4 && self.head != b"\x7fELF" {
                self.not_elf = true;
                return;
            }
        }
        if let Some(found) = &mut self.found {
            if found.len() < GO_KEEP {
                let take = (GO_KEEP - found.len()).min(chunk.len());
                found.extend_from_slice(&chunk[..take]);
            }
            self.offset += chunk.len() as u64;
            return;
        }
        // Search carry + chunk for the magic at aligned offsets.
        let base = self.offset - self.carry.len() as u64;
        let mut window = std::mem::take(&mut self.carry);
        window.extend_from_slice(chunk);
        let first = (16 - (base % 16)) % 16;
        let mut i = first as usize;
        while i + GO_MAGIC.len() <= window.len() {
            if &window[i..i + GO_MAGIC.len()] == GO_MAGIC {
                let end = (i + GO_KEEP).min(window.len());
                self.found = Some(window[i..end].to_vec());
                self.offset += chunk.len() as u64;
                return;
            }
            i += 16;
        }
        let keep = window.len().min(GO_MAGIC.len() + 15);
        self.carry = window[window.len() - keep..].to_vec();
        self.offset += chunk.len() as u64;
    }

    /// `(go version, modinfo)`.
    pub fn found(&self) -> Option<(String, String)> {
        let blob = self.found.as_ref()?;
        if blob.len() < 32 || blob[15] & 2 == 0 {
            return None;
        }
        let mut rest = &blob[32..];
        let mut take = || -> Option<String> {
            let (len, used) = uvarint(rest)?;
            let end = used.checked_add(usize::try_from(len).ok()?)?;
            let s = rest.get(used..end)?;
            rest = &rest[end..];
            Some(String::from_utf8_lossy(s).into_owned())
        };
        let version = take()?;
        let modinfo = take().unwrap_or_default();
        Some((version, modinfo))
    }
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn go_packages(path: &str, (version, modinfo): &(String, String)) -> Vec<Package> {
    let pkg = |name: &str, v: &str| Package {
        name: name.to_owned(),
        version: v.to_owned(),
        format: "go".into(),
        ecosystem: "Go".into(),
        source: None,
        path: path.to_owned(),
    };
    let mut out = vec![pkg("stdlib", version.trim_start_matches("go"))];
    for line in modinfo.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["mod", name, v, ..] | ["dep", name, v, ..] if *v != "(devel)" => {
                out.push(pkg(name, v))
            }
            ["=>", name, v, ..] => {
                // A replacement applies to the module just listed.
                if let Some(last) = out.last_mut() {
                    last.name = (*name).to_owned();
                    last.version = (*v).to_owned();
                }
            }
            _ => {}
        }
    }
    out
}

/// The packages of an image: each layer's, in order, after the layers above removed or
/// replaced them; and the OS the topmost `os-release` names.
pub fn combine(layers: &[LayerIndex]) -> (Vec<Package>, Option<Os>, Vec<usize>) {
    let mut packages: Vec<(Package, usize)> = Vec::new();
    let mut os: Option<(Os, String)> = None;
    for (n, layer) in layers.iter().enumerate() {
        let gone = |p: &str| {
            layer.removed.iter().any(|r| {
                if let Some(dir) = r.strip_suffix('/') {
                    p.starts_with(&format!("{dir}/"))
                } else {
                    p == r || p.starts_with(&format!("{r}/"))
                }
            })
        };
        packages.retain(|(p, _)| !gone(&p.path) && !layer.databases.contains(&p.path));
        // A later copy of a directory-shaped package (dist-info, node_modules) replaces it.
        packages.retain(|(p, _)| !layer.packages.iter().any(|q| q.path == p.path));
        if let Some((_, path)) = &os
            && gone(path)
        {
            os = None;
        }
        if let Some(o) = &layer.os {
            os = Some((o.clone(), "etc/os-release".into()));
        }
        packages.extend(layer.packages.iter().cloned().map(|p| (p, n)));
    }
    let added = packages.iter().map(|(_, n)| *n).collect();
    (
        packages.into_iter().map(|(p, _)| p).collect(),
        os.map(|(o, _)| o),
        added,
    )
}

#[cfg(test)]
mod tests {
    use super::super::tar::tests::archive;
    use super::*;

    #[test]
    fn finds_packages_and_applies_whiteouts() {
        let dpkg = b"Package: libc6\nStatus: install ok installed\nSource: glibc\nVersion: 2.36-9\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n";
        let apk = b"C:Q1x\nP:busybox\nV:1.36.1-r5\no:busybox\n\nP:zlib\nV:1.2.13-r0\n";
        let meta = b"Metadata-Version: 2.1\nName: Requests\nVersion: 2.31.0\n\nbody";
        let pj = br#"{"name":"lodash","version":"4.17.20"}"#;
        let lower = archive(&[
            (
                "etc/os-release",
                b"ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
            ),
            ("var/lib/dpkg/status", dpkg),
            ("lib/apk/db/installed", apk),
            (
                "usr/lib/python3/site-packages/requests-2.31.0.dist-info/METADATA",
                meta,
            ),
            ("app/node_modules/lodash/package.json", pj),
            ("app/node_modules/lodash/test/package.json", b"{}"),
        ]);
        let a = index_tar(&lower[..]).unwrap();
        let names: Vec<_> = a
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("libc6", "2.36-9"),
                ("busybox", "1.36.1-r5"),
                ("zlib", "1.2.13-r0"),
                ("requests", "2.31.0"),
                ("lodash", "4.17.20")
            ]
        );
        assert_eq!(a.packages[0].source.as_deref(), Some("glibc"));
        assert_eq!(a.os.as_ref().unwrap().version_id, "12");
        let upper = archive(&[
            (
                "usr/lib/python3/site-packages/.wh.requests-2.31.0.dist-info",
                b"",
            ),
            ("app/.wh..wh..opq", b""),
        ]);
        let b = index_tar(&upper[..]).unwrap();
        let (all, os, _) = combine(&[a, b]);
        let names: Vec<_> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["libc6", "busybox", "zlib"]);
        assert_eq!(os.unwrap().id, "debian");
    }

    #[test]
    fn malformed_databases_fail_with_a_reason() {
        let bad = archive(&[("var/lib/dpkg/status", b"Package: x\nnot a field\n")]);
        let err = index_tar(&bad[..]).unwrap_err().to_string();
        assert!(err.contains("malformed dpkg database"), "{err}");
        let bad = archive(&[("lib/apk/db/installed", b"P:x\n")]);
        let err = index_tar(&bad[..]).unwrap_err().to_string();
        assert!(err.contains("malformed apk database"), "{err}");
    }

    #[test]
    fn reads_go_build_info() {
        let mut elf = b"\x7fELF".to_vec();
        elf.resize(4096, 0);
        let mut blob = GO_MAGIC.to_vec();
        blob.push(8);
        blob.push(2);
        blob.resize(32, 0);
        let v = b"go1.21.5";
        blob.push(v.len() as u8);
        blob.extend_from_slice(v);
        let m = b"0123456789abcdef\tpath\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/net\tv0.17.0\th1:x=\n0123456789abcdef";
        blob.push((m.len() & 0x7f) as u8 | 0x80);
        blob.push((m.len() >> 7) as u8);
        blob.extend_from_slice(m);
        elf.extend_from_slice(&blob);
        elf.resize(elf.len() + 1000, 0);
        let tar = archive(&[("usr/bin/app", &elf)]);
        let idx = index_tar(&tar[..]).unwrap();
        let names: Vec<_> = idx
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [("stdlib", "1.21.5"), ("golang.org/x/net", "v0.17.0")]
        );
    }
}
