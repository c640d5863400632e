//! Parses `/v2/...` paths into a [`Route`]. Repository names contain any number of `/`, so the
//! path is matched from the right: the last segments say what is addressed.

/// What a `/v2` path addresses. Names are returned raw; the services validate them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    Base,
    Catalog,
    Tags { name: &'a str },
    Manifest { name: &'a str, reference: &'a str },
    Blob { name: &'a str, digest: &'a str },
    UploadStart { name: &'a str },
    Upload { name: &'a str, uuid: &'a str },
    Referrers { name: &'a str, digest: &'a str },
    Unknown,
}

impl Route<'_> {
    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Base => "v2_base",
            Route::Catalog => "v2_catalog",
            Route::Tags { .. } => "v2_tags",
            Route::Manifest { .. } => "v2_manifest",
            Route::Blob { .. } => "v2_blob",
            Route::UploadStart { .. } => "v2_upload_start",
            Route::Upload { .. } => "v2_upload",
            Route::Referrers { .. } => "v2_referrers",
            Route::Unknown => "v2_unknown",
        }
    }

    /// The repository name, for routes that have one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Route::Tags { name }
            | Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Referrers { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// `rest` is the path after `/v2/`.
pub fn parse(rest: &str) -> Route<'_> {
    if rest.is_empty() {
        return Route::Base;
    }
    if rest == "_catalog" {
        return Route::Catalog;
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return non_empty(name, |name| Route::Tags { name });
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return non_empty(name, |name| Route::UploadStart { name });
    }
    let Some((head, last)) = rest.rsplit_once('/') else {
        return Route::Unknown;
    };
    if last.is_empty() {
        return Route::Unknown;
    }
    let Some((name, kind)) = head.rsplit_once('/') else {
        return Route::Unknown;
    };
    if name.is_empty() {
        return Route::Unknown;
    }
    match kind {
        "manifests" => Route::Manifest {
            name,
            reference: last,
        },
        "referrers" => Route::Referrers { name, digest: last },
        "blobs" => Route::Blob { name, digest: last },
        "uploads" => match name.strip_suffix("/blobs") {
            Some(name) if !name.is_empty() => Route::Upload { name, uuid: last },
            _ => Route::Unknown,
        },
        _ => Route::Unknown,
    }
}

fn non_empty<'a>(name: &'a str, f: impl FnOnce(&'a str) -> Route<'a>) -> Route<'a> {
    if name.is_empty() {
        Route::Unknown
    } else {
        f(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, Route)] = &[
            ("", Route::Base),
            ("_catalog", Route::Catalog),
            ("a/b/tags/list", Route::Tags { name: "a/b" }),
            ("a/b/c/d/tags/list", Route::Tags { name: "a/b/c/d" }),
            (
                "a/b/manifests/latest",
                Route::Manifest {
                    name: "a/b",
                    reference: "latest",
                },
            ),
            (
                "a/b/c/manifests/sha256:abc",
                Route::Manifest {
                    name: "a/b/c",
                    reference: "sha256:abc",
                },
            ),
            // A repository may itself be called "manifests" or "blobs".
            (
                "a/manifests/manifests/v1",
                Route::Manifest {
                    name: "a/manifests",
                    reference: "v1",
                },
            ),
            (
                "a/blobs/blobs/sha256:1",
                Route::Blob {
                    name: "a/blobs",
                    digest: "sha256:1",
                },
            ),
            (
                "a/b/blobs/sha256:1",
                Route::Blob {
                    name: "a/b",
                    digest: "sha256:1",
                },
            ),
            ("a/b/blobs/uploads/", Route::UploadStart { name: "a/b" }),
            ("a/b/blobs/uploads", Route::UploadStart { name: "a/b" }),
            (
                "a/b/blobs/uploads/1234",
                Route::Upload {
                    name: "a/b",
                    uuid: "1234",
                },
            ),
            (
                "a/b/referrers/sha256:1",
                Route::Referrers {
                    name: "a/b",
                    digest: "sha256:1",
                },
            ),
            ("a/b/manifests/", Route::Unknown),
            ("manifests/latest", Route::Unknown),
            ("/manifests/latest", Route::Unknown),
            ("a/b/other/x", Route::Unknown),
            ("blobs/uploads/x", Route::Unknown),
            ("tags/list", Route::Unknown),
        ];
        for (path, want) in cases {
            assert_eq!(&parse(path), want, "{path}");
        }
    }
}
