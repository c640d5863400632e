//! Repository and tag names, following the grammar of the OCI Distribution Spec:
//!
//! ```text
//! name      = component ("/" component)*          (at most 255 characters)
//! component = [a-z0-9]+ (separator [a-z0-9]+)*
//! separator = "." | "_" | "__" | "-"+
//! tag       = [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
//! ```
//!
//! Quay splits a name into a namespace (the first component: a user or an organization) and a
//! repository (the rest, which may itself contain `/`). A single-component name has no namespace
//! and is refused. Names that pass these checks contain no `..`, no leading `/` and no upper case,
//! so they can never address anything outside a repository.

use std::fmt;

/// Longest accepted full name (namespace + "/" + repository), as in CNCF Distribution.
pub const MAX_NAME_LEN: usize = 255;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("repository name must have the form namespace/repository")]
    MissingNamespace,
    #[error("repository name is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error(
        "invalid repository name component {0:?}: use lower-case letters, digits and separators (. _ __ -)"
    )]
    InvalidComponent(String),
}

/// A valid repository name split into its namespace and repository parts.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName {
    full: String,
    split: usize,
}

impl RepoName {
    pub fn parse(name: &str) -> Result<RepoName, NameError> {
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        for component in name.split('/') {
            if !is_component(component) {
                return Err(NameError::InvalidComponent(component.to_owned()));
            }
        }
        let split = name.find('/').ok_or(NameError::MissingNamespace)?;
        Ok(RepoName {
            full: name.to_owned(),
            split,
        })
    }

    /// Builds a name from its parts, validating both.
    pub fn from_parts(namespace: &str, repository: &str) -> Result<RepoName, NameError> {
        RepoName::parse(&format!("{namespace}/{repository}"))
    }

    pub fn namespace(&self) -> &str {
        &self.full[..self.split]
    }

    pub fn repository(&self) -> &str {
        &self.full[self.split + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separators `.`, `_`, `__`, `-+`.
pub fn is_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

/// Checks a tag against `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for (name, ns, repo) in [
            ("alice/hello", "alice", "hello"),
            ("my-org/team/app", "my-org", "team/app"),
            ("a/b/c/d/e", "a", "b/c/d/e"),
            ("a.b/c__d", "a.b", "c__d"),
            ("x/a---b", "x", "a---b"),
            ("x0/9", "x0", "9"),
        ] {
            let n = RepoName::parse(name).unwrap();
            assert_eq!(
                (n.namespace(), n.repository(), n.as_str()),
                (ns, repo, name)
            );
        }
    }

    #[test]
    fn invalid_names() {
        for name in [
            "hello",
            "Alice/hello",
            "alice//hello",
            "alice/hello/",
            "/alice/hello",
            "alice/../etc",
            "alice/.hidden",
            "alice/a___b",
            "alice/a_-b",
            "alice/a.-b",
            "alice/ä",
            "alice/hello world",
            "",
        ] {
            assert!(RepoName::parse(name).is_err(), "{name:?} should be invalid");
        }
        let long = format!("a/{}", "b".repeat(MAX_NAME_LEN));
        assert_eq!(RepoName::parse(&long), Err(NameError::TooLong));
        assert_eq!(RepoName::parse("hello"), Err(NameError::MissingNamespace));
    }

    #[test]
    fn tags() {
        for ok in ["latest", "v1.0.0", "_x", "A-b_c.d", &"a".repeat(128)] {
            assert!(validate_tag(ok), "{ok}");
        }
        for bad in [
            "",
            ".x",
            "-x",
            "a/b",
            "a:b",
            "sha256:abc",
            &"a".repeat(129),
            "ü",
        ] {
            assert!(!validate_tag(bad), "{bad}");
        }
    }
}
