//! Checks the dependency order the group docs state: in `service` and in `db`, a module refers
//! only to modules ranked below it (the kernel and `db`'s root are below every group). Reads the
//! source files, so a new upward `use` fails here instead of growing a circle.
//!
//! Rank = group, then position in the group's doc; modules sharing a rank (the independent
//! `operations` sinks) may not refer to each other, and `db`'s groups may not refer to each other
//! at all. The kernel's files (`service/*.rs`) may refer to no group. Test modules
//! (`#[cfg(test)]` onwards) and the composition root (`service/mod.rs`, which holds each group's
//! state in `Ctx`) are not checked.

use std::collections::HashMap;
use std::path::Path;

/// Service modules by group, each group in its documented order; the group's index is its rank.
const SERVICE: &[(&str, &[&str])] = &[
    ("access", &["jwt", "passwords", "authz", "auth"]),
    (
        "operations",
        &[
            "audit|mail|ssrf",
            "messages|logs|notifications|service_keys",
        ],
    ),
    (
        "content",
        &[
            "pull_cache",
            "quota",
            "repositories",
            "blobs",
            "uploads",
            "tags",
            "labels",
            "manifests",
            "gc",
            "upstream",
            "proxy_cache",
            "mirror",
            "mirror_health|registry_size|builds|scanner",
            "triggers",
        ],
    ),
    (
        "tenancy",
        &[
            "accounts",
            "orgs",
            "teams",
            "members",
            "robots",
            "permissions",
            "apps",
            "federation",
            "search",
            "app_tokens",
            "sessions",
        ],
    ),
];

const DB: &[(&str, &[&str])] = &[
    (
        "tenancy",
        &[
            "namespaces",
            "teams",
            "members",
            "robots",
            "permissions",
            "apps",
            "tokens",
            "app_tokens",
            "search",
            "sessions",
        ],
    ),
    (
        "content",
        &[
            "repositories",
            "manifests",
            "tags",
            "labels",
            "blobs",
            "uploads",
            "gc",
            "proxy_cache|mirror|registry_size|builds|triggers|scanner",
            "quota",
        ],
    ),
    (
        "operations",
        &["audit|logs|messages|settings|service_keys|notifications"],
    ),
];

/// `(group, module)` to `(group rank, rank in group)`.
fn ranks(
    layout: &[(&'static str, &[&'static str])],
) -> HashMap<(&'static str, &'static str), (usize, usize)> {
    let mut out = HashMap::new();
    for (g, (group, modules)) in layout.iter().enumerate() {
        for (m, names) in modules.iter().enumerate() {
            for name in names.split('|') {
                out.insert((*group, name), (g, m));
            }
        }
    }
    out
}

/// The code a file's references are read from: before its tests, without comments, and
/// without its imports from the other layer (`use crate::db::{..}` seen from a service file).
fn code_of(source: &str, other_layer: &str) -> String {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    let other_use = format!("use crate::{other_layer}");
    let mut out = String::new();
    let mut in_other_use = false;
    for line in code.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed.starts_with(&other_use) {
            in_other_use = true;
        }
        if !in_other_use {
            out.push_str(line);
            out.push('\n');
        }
        if in_other_use && line.contains(';') {
            in_other_use = false;
        }
    }
    out
}

/// The `group::module` paths a source file names (outside its tests), skipping those that
/// belong to `skip_prefix` (the other layer: `db::content::tags` seen from a service file).
/// `sibling_group` is the group of a file directly in it, whose `super::x` names a sibling.
fn references<'a>(
    source: &str,
    layout: &[(&'a str, &[&'a str])],
    skip_prefix: &str,
    sibling_group: Option<&'a str>,
) -> Vec<(&'a str, String)> {
    let code = code_of(source, skip_prefix);
    let code = code.as_str();
    let mut out = Vec::new();
    let prefixes = layout
        .iter()
        .map(|(group, _)| (*group, *group))
        .chain(sibling_group.map(|group| (group, "super")));
    for (group, prefix) in prefixes {
        let needle = format!("{prefix}::");
        let mut from = 0;
        while let Some(at) = code[from..].find(&needle) {
            let start = from + at;
            from = start + needle.len();
            let before = &code[..start];
            let boundary = before
                .chars()
                .last()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            if !boundary || before.ends_with(skip_prefix) {
                continue;
            }
            let name: String = code[from..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push((group, name));
        }
    }
    out
}

/// A source file and the module it belongs to.
struct File {
    group: String,
    module: String,
    /// In a module's own directory (where `super::` is that module).
    nested: bool,
    text: String,
}

/// Every source file in `dir`'s groups, and the files of `dir` itself (the root's `mod.rs`
/// excepted) as group `""`.
fn modules(dir: &Path) -> Vec<File> {
    let mut out = Vec::new();
    for group in std::fs::read_dir(dir).expect("layer directory") {
        let group = group.expect("entry").path();
        if !group.is_dir() {
            let stem = group.file_stem().unwrap().to_string_lossy().into_owned();
            if stem != "mod" && stem != "layering" {
                out.push(File {
                    group: String::new(),
                    module: stem,
                    nested: false,
                    text: std::fs::read_to_string(&group).expect("source file"),
                });
            }
            continue;
        }
        let group_name = group.file_name().unwrap().to_string_lossy().into_owned();
        for entry in std::fs::read_dir(&group).expect("group directory") {
            let path = entry.expect("entry").path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let nested = path.is_dir();
            let files = if nested {
                // Every file below the module's directory, submodule directories included.
                let mut files = Vec::new();
                let mut dirs = vec![path.clone()];
                while let Some(dir) = dirs.pop() {
                    for e in std::fs::read_dir(&dir).expect("module directory") {
                        let p = e.expect("entry").path();
                        if p.is_dir() {
                            dirs.push(p);
                        } else {
                            files.push(p);
                        }
                    }
                }
                files
            } else if stem == "mod" {
                continue;
            } else {
                vec![path]
            };
            for file in files {
                out.push(File {
                    group: group_name.clone(),
                    module: stem.clone(),
                    nested,
                    text: std::fs::read_to_string(&file).expect("source file"),
                });
            }
        }
    }
    out
}

fn check(
    layer: &str,
    layout: &[(&'static str, &[&'static str])],
    skip_prefix: &str,
    groups_independent: bool,
) -> Vec<String> {
    let ranks = ranks(layout);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(layer);
    let mut violations = Vec::new();
    let found = modules(&dir);
    assert!(
        found.len() > 10,
        "no {layer} modules found in {}",
        dir.display()
    );
    for file in found {
        let (group, module) = (file.group.as_str(), file.module.as_str());
        let own = if group.is_empty() {
            None
        } else {
            match ranks.get(&(group, module)) {
                Some(&rank) => Some(rank),
                None => {
                    violations.push(format!("{layer}::{group}::{module} is not in the layout"));
                    continue;
                }
            }
        };
        let sibling_group = layout
            .iter()
            .map(|(g, _)| *g)
            .find(|g| *g == group && !file.nested);
        for (to_group, to_module) in references(&file.text, layout, skip_prefix, sibling_group) {
            if to_group == group && to_module == module {
                continue;
            }
            let allowed = match (own, ranks.get(&(to_group, to_module.as_str()))) {
                (Some(own), Some(&to)) => {
                    to < own && (to.0 == own.0 || (!groups_independent && to.0 < own.0))
                }
                _ => false,
            };
            if !allowed {
                violations.push(format!(
                    "{layer}::{group}::{module} refers to {layer}::{to_group}::{to_module}"
                ));
            }
        }
    }
    violations
}

#[test]
fn service_modules_refer_only_downwards() {
    let violations = check("service", SERVICE, "db::", false);
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn db_modules_refer_only_downwards() {
    let violations = check("db", DB, "service::", true);
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn references_are_found() {
    let source = "use crate::service::content::manifests;\nuse crate::db::content::tags;\n";
    let found = references(source, SERVICE, "db::", None);
    assert_eq!(found, vec![("content", "manifests".to_owned())]);
    let found = references(
        "use super::tags::retained;",
        DB,
        "service::",
        Some("content"),
    );
    assert_eq!(found, vec![("content", "tags".to_owned())]);
}

/// The web UI (`src/ui/`) is a surface like `api/`: its pages call services and never name the
/// database or the blob store, so a page decides access exactly as the API does.
#[test]
fn ui_pages_call_only_services() {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("ui directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ui"),
        &mut files,
    );
    assert!(files.len() >= 5, "{files:?}");
    let mut bad = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("source");
        let code = source.split("#[cfg(test)]").next().unwrap_or_default();
        for needle in [
            "crate::db",
            "crate::storage",
            "sqlx::",
            "ctx.db",
            "ctx.store",
        ] {
            if code
                .lines()
                .any(|l| !l.trim_start().starts_with("//") && l.contains(needle))
            {
                bad.push(format!("{}: {needle}", file.display()));
            }
        }
    }
    assert!(bad.is_empty(), "ui files reach below the services: {bad:?}");
}
