//! Repository names may have several path components (`org/team/app`), but a route parameter
//! captures one path segment. Before routing, [`one_segment_repository`] rewrites
//! `/api/v1/repository/<namespace>/<name...>/<sub-resource...>` so the name is one segment (its
//! inner `/` percent-encoded); the `{repository}` parameter then decodes back to the whole name,
//! as Quay's `repopath` converter gives it. The name ends at the first sub-resource keyword
//! after its first component — which is why Quay refuses `build`, `trigger` and `tag` as
//! repository names.

const PREFIX: &str = "/api/v1/repository/";

/// Path segments that start a repository's sub-resource (Quay's, including ones Quayside does
/// not serve yet, so such paths still split where Quay splits them).
const SUB_RESOURCES: &[&str] = &[
    "tag",
    "manifest",
    "permissions",
    "changevisibility",
    "prototypes",
    "notification",
    "authorizedemail",
    "logs",
    "aggregatelogs",
    "exportlogs",
    "mirror",
    "build",
    "trigger",
    "image",
    "status",
    "changetrust",
    "changestate",
    "quota",
    "tokens",
];

/// The rewritten path, when the repository name has more than one component.
pub fn one_segment_repository(path: &str) -> Option<String> {
    let rest = path.strip_prefix(PREFIX)?;
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.len() < 3 || segments[0].is_empty() {
        return None;
    }
    // segments[1] always belongs to the name; it ends before the first keyword after that.
    let end = segments
        .iter()
        .skip(2)
        .position(|s| SUB_RESOURCES.contains(s))
        .map_or(segments.len(), |i| i + 2);
    // A trailing empty segment (`.../name/`) is the path's slash, not a name component.
    let end = if end == segments.len() && segments.last() == Some(&"") {
        end - 1
    } else {
        end
    };
    if end <= 2 {
        return None;
    }
    let name = segments[1..end].join("%2F");
    let mut out = format!("{PREFIX}{}/{name}", segments[0]);
    for s in &segments[end..] {
        out.push('/');
        out.push_str(s);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::one_segment_repository as rewrite;

    #[test]
    fn nested_names_become_one_segment() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/api/v1/repository/org/app", None),
            ("/api/v1/repository/org/app/tag/", None),
            (
                "/api/v1/repository/org/team/app",
                Some("/api/v1/repository/org/team%2Fapp"),
            ),
            (
                "/api/v1/repository/org/team/app/",
                Some("/api/v1/repository/org/team%2Fapp/"),
            ),
            (
                "/api/v1/repository/org/a/b/c/tag/",
                Some("/api/v1/repository/org/a%2Fb%2Fc/tag/"),
            ),
            (
                "/api/v1/repository/org/team/app/tag/v1/restore",
                Some("/api/v1/repository/org/team%2Fapp/tag/v1/restore"),
            ),
            (
                "/api/v1/repository/org/team/app/permissions/user/bob",
                Some("/api/v1/repository/org/team%2Fapp/permissions/user/bob"),
            ),
            (
                "/api/v1/repository/org/team/app/manifest/sha256:abc/labels",
                Some("/api/v1/repository/org/team%2Fapp/manifest/sha256:abc/labels"),
            ),
            (
                "/api/v1/repository/org/team/app/changevisibility",
                Some("/api/v1/repository/org/team%2Fapp/changevisibility"),
            ),
            // A first component named like a keyword is still the name.
            (
                "/api/v1/repository/org/tag/x",
                Some("/api/v1/repository/org/tag%2Fx"),
            ),
            ("/api/v1/repository", None),
            ("/api/v1/repository/org", None),
            ("/api/v1/organization/org/team/x", None),
        ];
        for (path, want) in cases {
            assert_eq!(rewrite(path).as_deref(), *want, "{path}");
        }
    }
}
