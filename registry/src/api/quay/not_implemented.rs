//! The areas of Quay's API that Quayside does not serve yet, in one place: a path no endpoint
//! declares answers 501 `not_implemented` when one of its segments (after the namespace and
//! repository names) names such an area, otherwise Quay's 404. A feature that lands deletes its
//! line here and declares its endpoints in its own area module (see the parent module). These
//! paths are not in the discovery document: it lists only what is served.

use super::error::ApiError;

/// Areas of Quay's API that Quayside does not serve yet, by the path segment that names them.
/// Calls to them answer 501 with Quay's error body, so a script learns the feature is missing
/// rather than that its organization or repository does not exist.
const NOT_YET_SERVED: &[(&str, &str)] = &[];

/// The answer to a path no endpoint declares: 501 for a known Quay feature not served yet,
/// otherwise Quay's 404.
pub(super) async fn unrouted(uri: axum::http::Uri) -> ApiError {
    match not_yet_served(uri.path()) {
        Some(feature) => ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            format!("{feature} is not implemented in this version of Quayside"),
        ),
        None => ApiError::not_found(),
    }
}

fn not_yet_served(path: &str) -> Option<&'static str> {
    let rest = path
        .strip_prefix("/api/v1/")
        .unwrap_or(path)
        .trim_matches('/');
    let segments: Vec<&str> = rest.split('/').collect();
    // The archive of one build's logs (`/superuser/{build_uuid}/logs/archive`): Quayside keeps
    // build logs in the database and archives none.
    if let ["superuser", _, "logs", "archive"] = segments.as_slice() {
        return Some("Archived build logs");
    }
    // Listing a git host's content for a trigger's setup (`.../trigger/{uuid}/fields/{name}`,
    // `namespaces`, `sources`, `subdir`): Quayside reads no git host.
    if let ["repository", _, _, "trigger", _, sub, ..] = segments.as_slice()
        && matches!(*sub, "fields" | "namespaces" | "sources" | "subdir")
    {
        return Some("Listing a build trigger's git sources");
    }
    // Skip the segments that carry a namespace or repository name: a repository may be called
    // `build` and still be unknown.
    let names = match segments.first() {
        Some(&"repository") => 3,
        Some(&"organization") => 2,
        _ => 1,
    };
    segments.iter().skip(names).find_map(|segment| {
        NOT_YET_SERVED
            .iter()
            .find(|(name, _)| name == segment)
            .map(|(_, feature)| *feature)
    })
}
