//! Every parser of untrusted input behind one function taking arbitrary bytes, which runs the
//! parser and asserts what must hold of its answer: a panic is a bug. Two drivers call them:
//!
//! - the cargo-fuzz targets of `registry/fuzz` (coverage-guided, nightly, run for minutes each
//!   by `scripts/fuzz.sh`, not in CI);
//! - the seeded test below, in the normal suite: each function over a corpus of hand-written
//!   seeds, their mutations (a deterministic xorshift generator, so a failure reproduces from
//!   its iteration number) and random bytes, plus every crash input ever found, kept in
//!   [`REGRESSIONS`].
//!
//! The parsers: manifests and indexes (`oci::manifest::parse`), digests, repository names and
//! tags (`oci`), `Range` and chunk `Content-Range` (`api::v2::{blobs, uploads}`), the `/v2` route
//! parser, token scopes (`api::v2::token::parse_scope`), the Quay config loader
//! (`Config::from_yaml`), the `/api/v1` body and NUL checks (`api::quay::body`, `api::edge`), and
//! the usage-logs date range (`service::operations::logs::range`).

use axum::http::{HeaderMap, HeaderValue, Uri, header};

use crate::api::v2::{blobs, route, token, uploads};
use crate::api::{edge, quay};
use crate::config::{Config, Overrides};
use crate::oci::{self, Digest, RepoName};

/// The text of `data`, when it is UTF-8 (the parsers below take `&str`).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `oci::manifest::parse`, with the first byte choosing the `Content-Type`.
pub fn manifest(data: &[u8]) {
    const TYPES: &[Option<&str>] = &[
        None,
        Some(oci::manifest::OCI_MANIFEST),
        Some(oci::manifest::OCI_INDEX),
        Some(oci::manifest::DOCKER_MANIFEST),
        Some(oci::manifest::DOCKER_LIST),
        Some("application/json"),
        Some("text/plain; charset=utf-8"),
    ];
    let (content_type, body) = match data.split_first() {
        Some((first, rest)) => (TYPES[*first as usize % TYPES.len()], rest),
        None => (None, data),
    };
    let Ok(m) = oci::manifest::parse(content_type, body) else {
        return;
    };
    assert_eq!(m.kind.is_list(), m.config.is_none(), "config iff an image");
    if m.kind.is_list() {
        assert!(m.layers.is_empty());
    } else {
        assert!(m.manifests.is_empty());
    }
    let descriptors = m
        .config
        .iter()
        .chain(&m.layers)
        .chain(&m.manifests)
        .chain(&m.subject);
    for d in descriptors {
        assert!(d.size >= 0, "negative size accepted");
        assert!(!d.media_type.contains('\0'), "NUL kept");
    }
    for (k, v) in &m.annotations {
        assert!(!k.contains('\0') && !v.contains('\0'), "NUL kept");
    }
    assert!(m.artifact_type.as_deref().is_none_or(|a| !a.contains('\0')));
    let _ = m.required_blobs().count();
    let _ = m.is_image();
}

/// `Digest::from_str`: an accepted digest is its own text, with the algorithm's hex length.
pub fn digest(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let Ok(d) = s.parse::<Digest>() else { return };
    assert_eq!(d.as_str(), s);
    assert_eq!(d.hex().len(), d.algorithm().hex_len());
    assert_eq!(
        format!("{}:{}", d.algorithm().as_str(), d.hex()),
        s,
        "digest splits back into its text"
    );
    assert_eq!(d.as_str().parse::<Digest>().ok(), Some(d));
}

/// `RepoName::parse` and `validate_tag`: an accepted name is `namespace/repository` of valid
/// components within the length bound.
pub fn repo_name(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let _ = oci::names::validate_tag(s);
    let Ok(name) = RepoName::parse(s) else { return };
    assert_eq!(format!("{}/{}", name.namespace(), name.repository()), s);
    assert!(s.len() <= oci::names::MAX_NAME_LEN);
    assert!(s.split('/').all(oci::names::is_component));
    assert_eq!(RepoName::parse(name.as_str()).ok(), Some(name));
}

/// `Range` parsing and resolution: whatever the header, a resolved range lies inside the blob
/// and is not empty.
pub fn range(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::RANGE, value);
    let Some(range) = blobs::parse_range(&headers) else {
        return;
    };
    for size in [0, 1, 2, 100, 1 << 40, u64::MAX - 1, u64::MAX] {
        if let Some(r) = range.resolve(size) {
            assert!(
                r.start < r.end && r.end <= size,
                "{range:?} in {size}: {r:?}"
            );
        }
    }
}

/// Chunk `Content-Range` parsing: accepted positions are within the largest offset, so the
/// chunk length `end - start + 1` cannot overflow.
pub fn content_range(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let Ok((start, end)) = uploads::parse_content_range(&value) else {
        return;
    };
    assert!(start <= uploads::MAX_OFFSET && end <= uploads::MAX_OFFSET);
    if end >= start {
        assert!((end - start).checked_add(1).is_some());
    }
}

/// `route::parse`: every route names a non-empty repository and re-assembles into its path.
pub fn v2_route(data: &[u8]) {
    use route::Route;
    let Some(rest) = text(data) else { return };
    let parsed = route::parse(rest);
    if let Some(name) = parsed.name() {
        assert!(!name.is_empty(), "{rest:?}: empty name");
    }
    let rebuilt = match &parsed {
        Route::Base => Some(String::new()),
        Route::Catalog => Some("_catalog".to_owned()),
        Route::Tags { name } => Some(format!("{name}/tags/list")),
        Route::Manifest { name, reference } => Some(format!("{name}/manifests/{reference}")),
        Route::Blob { name, digest } => Some(format!("{name}/blobs/{digest}")),
        Route::Upload { name, uuid } => Some(format!("{name}/blobs/uploads/{uuid}")),
        Route::Referrers { name, digest } => Some(format!("{name}/referrers/{digest}")),
        Route::UploadStart { .. } | Route::Unknown => None,
    };
    if let Some(rebuilt) = rebuilt {
        assert_eq!(rebuilt, rest, "{parsed:?}");
    }
    if let Route::UploadStart { name } = parsed {
        assert!(
            rest == format!("{name}/blobs/uploads") || rest == format!("{name}/blobs/uploads/")
        );
    }
}

/// `token::parse_scope`: an accepted scope has a type and a name, and no empty action.
pub fn scope(data: &[u8]) {
    let Some(s) = text(data) else { return };
    for one in s.split(' ') {
        let Some(scope) = token::parse_scope(one) else {
            continue;
        };
        assert!(!scope.kind.is_empty() && !scope.name.is_empty(), "{one:?}");
        assert!(
            scope
                .actions
                .iter()
                .all(|a| !a.is_empty() && !a.contains(','))
        );
    }
}

/// `Config::from_yaml`: any text is a configuration or an error, never a panic.
pub fn config(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let _ = Config::from_yaml(s, None, &Overrides::default());
}

/// The `/api/v1` body rule and the edge's NUL checks: an accepted body holds no NUL.
pub fn quay_body(data: &[u8]) {
    if let Ok(v) = quay::body::parse::<serde_json::Map<String, serde_json::Value>>(data) {
        assert!(edge::nul_in_json(&serde_json::Value::Object(v)).is_none());
    }
    let _ = quay::body::parse::<quayside_client::ChangeTagRequest>(data);
    let _ = quay::body::parse::<Vec<quayside_client::FederationEntry>>(data);
    let _ = edge::nul_in_form(data);
    if let Some(s) = text(data)
        && let Ok(uri) = format!("/x?{s}").parse::<Uri>()
    {
        let _ = edge::nul_in_uri(&uri, true);
    }
}

/// The usage-logs range (`service::operations::logs::range`, from `starttime` and `endtime`
/// split at the first newline): an accepted range never ends before it starts, and a missing
/// bound is a day from now.
pub fn logs_range(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let (start, end) = s.split_once('\n').unwrap_or((s, ""));
    const NOW: i64 = 1_796_169_600_000;
    let (start, end) = (
        Some(start).filter(|v| !v.is_empty()),
        Some(end).filter(|v| !v.is_empty()),
    );
    if let Ok((from, to)) = crate::service::operations::logs::range(start, end, NOW) {
        assert!(from <= to, "{start:?}..{end:?}: {from} > {to}");
        if start.is_none() {
            assert_eq!(from, NOW - 86_400_000);
        }
        if end.is_none() {
            assert_eq!(to, NOW + 86_400_000);
        }
    }
}

/// A fuzz target: arbitrary bytes in, a panic when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target, by name (the names of `registry/fuzz/fuzz_targets/*.rs`).
pub const TARGETS: &[(&str, Target)] = &[
    ("manifest", manifest),
    ("digest", digest),
    ("repo_name", repo_name),
    ("range", range),
    ("content_range", content_range),
    ("v2_route", v2_route),
    ("scope", scope),
    ("config", config),
    ("quay_body", quay_body),
    ("logs_range", logs_range),
];

/// Inputs that once crashed a target (target, input): kept so they never do again.
pub const REGRESSIONS: &[(&str, &[u8])] = &[
    // `e + 1` overflowed in `ByteRange::resolve` (issue 15 item 12).
    ("range", b"bytes=0-18446744073709551615"),
    // `end - start + 1` overflowed in the upload service.
    ("content_range", b"0-18446744073709551615"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: deterministic, no crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn seeds(target: &str) -> Vec<Vec<u8>> {
        let image = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D}","size":10,"urls":["https://x"],"annotations":{{"a":"b"}}}}],"subject":{{"mediaType":"x","digest":"{D}","size":1}},"annotations":{{"k":"v"}},"artifactType":"a/b"}}"#,
            oci::manifest::OCI_MANIFEST
        );
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{D}","size":5,"platform":{{"architecture":"amd64","os":"linux","variant":"v8","os.version":"1"}}}}]}}"#,
            oci::manifest::OCI_INDEX,
            oci::manifest::OCI_MANIFEST
        );
        let s: Vec<String> = match target {
            "manifest" => vec![format!("\x01{image}"), format!("\x02{index}"), format!("\x00{index}")],
            "digest" => vec![
                D.into(),
                format!("sha512:{}", "a".repeat(128)),
                "sha256:".into(),
                ":".into(),
            ],
            "repo_name" => vec![
                "a/b".into(),
                "org/team/app-1.2__x".into(),
                "a--b/c.d".into(),
                "v1.0_rc".into(),
            ],
            "range" => vec![
                "bytes=0-9".into(),
                "bytes=5-".into(),
                "bytes=-5".into(),
                "bytes=500-0".into(),
                "bytes=18446744073709551615-18446744073709551615".into(),
            ],
            "content_range" => vec![
                "0-99".into(),
                "bytes 100-199/*".into(),
                "9223372036854775807-9223372036854775807".into(),
            ],
            "v2_route" => vec![
                "".into(),
                "_catalog".into(),
                "a/b/tags/list".into(),
                "a/b/manifests/v1".into(),
                format!("a/blobs/blobs/{D}"),
                "a/b/blobs/uploads/".into(),
                "a/b/blobs/uploads/1234".into(),
                format!("a/b/referrers/{D}"),
            ],
            "scope" => vec![
                "repository:a/b:pull,push".into(),
                "repository(plugin):a/b:pull registry:catalog:*".into(),
                "repository:a:b:c:delete".into(),
            ],
            "config" => vec![
                "SERVER_HOSTNAME: quay.example.com\nPREFERRED_URL_SCHEME: https\n".into(),
                "DB_URI: sqlite:///tmp/x.db\nFEATURE_USER_CREATION: false\nTAG_EXPIRATION_OPTIONS: [1w, 2d]\n".into(),
                "DISTRIBUTED_STORAGE_CONFIG:\n  default:\n    - LocalStorage\n    - storage_path: /data\n".into(),
            ],
            "quay_body" => vec![
                r#"{"description":"x","role":"read"}"#.into(),
                r#"{"manifest_digest":"sha256:1","expiration":null}"#.into(),
                r#"[{"issuer":"https://x","subject":"y"}]"#.into(),
                "a=1&b=%00".into(),
            ],
            "logs_range" => vec![
                "12/01/2026\n12/02/2026".into(),
                "2026-12-01\n2026-12-31".into(),
                "02/29/2024\n".into(),
                "\n13/45/2026".into(),
            ],
            other => panic!("no seeds for {other}"),
        };
        s.into_iter().map(String::into_bytes).collect()
    }

    /// Fragments that reach the edge cases of these parsers.
    const TOKENS: &[&[u8]] = &[
        b"%00",
        b"\\u0000",
        b"\0",
        b"18446744073709551615",
        b"18446744073709551616",
        b"9223372036854775808",
        b"-",
        b",",
        b"/",
        b":",
        b"bytes=",
        b"sha256:",
        b"/blobs/uploads/",
        b"/manifests/",
        b"\"",
        b"{",
        b"}",
        b"[",
        b"]",
        b"null",
        b"\xff",
        "é".as_bytes(),
        b"\n  ",
        b": ",
        b"&",
        b"=",
    ];

    fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
        for _ in 0..=rng.below(4) {
            let at = rng.below(input.len() + 1);
            match rng.below(6) {
                0 if !input.is_empty() => {
                    let i = rng.below(input.len());
                    input[i] ^= 1 << rng.below(8);
                }
                1 if !input.is_empty() => {
                    let end = (at + 1 + rng.below(8)).min(input.len());
                    input.drain(at.min(end)..end);
                }
                2 => input.insert(at, rng.next() as u8),
                3 => {
                    let token = TOKENS[rng.below(TOKENS.len())];
                    input.splice(at..at, token.iter().copied());
                }
                4 if !input.is_empty() => {
                    let start = rng.below(input.len());
                    let end = (start + 1 + rng.below(16)).min(input.len());
                    let copy = input[start..end].to_vec();
                    input.splice(at..at, copy);
                }
                _ => input.truncate(at),
            }
        }
    }

    #[test]
    fn regressions_stay_fixed() {
        for (name, input) in REGRESSIONS {
            let (_, target) = TARGETS.iter().find(|(n, _)| n == name).expect("target");
            target(input);
        }
    }

    #[test]
    fn every_parser_survives_a_seeded_corpus() {
        const ROUNDS: usize = 20_000;
        for (name, target) in TARGETS {
            let rounds = if *name == "config" {
                ROUNDS / 8
            } else {
                ROUNDS
            };
            let seeds = seeds(name);
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
            for seed in &seeds {
                target(seed);
            }
            for i in 0..rounds {
                let input = if i % 10 == 9 {
                    (0..rng.below(64)).map(|_| rng.next() as u8).collect()
                } else {
                    let mut input = seeds[rng.below(seeds.len())].clone();
                    mutate(&mut rng, &mut input);
                    input
                };
                let outcome = std::panic::catch_unwind(|| target(&input));
                assert!(
                    outcome.is_ok(),
                    "{name} panicked at round {i} on {:?}",
                    String::from_utf8_lossy(&input)
                );
            }
        }
    }
}
