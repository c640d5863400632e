//! Content: repositories and what they hold (manifests, tags, labels, blobs, uploads), the pull
//! cache in front of them, and garbage collection.
//!
//! Rule: every operation starts from [`repositories`] (a name resolved under an access check),
//! and every write invalidates the [`pull_cache`]. Content never asks about organizations, teams
//! or robots: [`crate::service::access::authz`] decides access, and the database applies
//! permission prototypes when a repository is created.
//!
//! Order (a module imports only the kernel, `access`, `operations` and modules listed before it):
//! 1. [`pull_cache`]: the read-through cache of repository rows and resolved manifests.
//! 2. [`quota`]: quotas and limits, storage accounting (called by the writers below in their
//!    transactions), enforcement on push, reports, backfill and verify.
//! 3. [`repositories`]: names, checked lookups, creation (also on first push), listings, the
//!    REST answer.
//! 4. [`blobs`], [`uploads`]: blob reads and the upload sessions that write them.
//! 5. [`tags`]: tag lifetimes, history, restore, expiration.
//! 6. [`labels`]: manifest labels, including the ones a push imports.
//! 7. [`manifests`]: push (importing labels, pointing tags), pull, delete, referrers, describe.
//! 8. [`gc`]: garbage collection of what nothing references (ends expired tags first).
//! 9. [`upstream`]: the client of other registries (imports nothing of this group);
//!    [`proxy_cache`]: organizations that pull through from an upstream (uses `repositories`,
//!    `blobs`, `manifests` and `upstream`); [`mirror`]: repositories whose tags are copied
//!    from an upstream by a worker (pushes as the mirror robot through `uploads` and
//!    `manifests`, lists with `upstream`).
//! 10. [`mirror_health`]: the health of mirroring, read from the mirror configurations;
//!     [`registry_size`]: the registry's total size, summed from the stored blobs.
//!
//! 10. [`builds`]: repository builds, their durable queue and build manager (executors start
//!     builders that push through `/v2` like any client; uses `repositories`).
//! 11. [`triggers`]: build triggers (custom git, GitHub, GitLab webhooks) that queue builds
//!     through `builds`.
//!
//!     [`scanner`]: security scanning (the queue a push fills, the `scanner` worker's indexing of
//!     layers from storage, OSV advisories and matching, `vulnerability_found`; uses
//!     `repositories` and `operations::notifications`).

pub mod blobs;
pub mod builds;
pub mod gc;
pub mod labels;
pub mod manifests;
pub mod mirror;
pub mod mirror_health;
pub mod proxy_cache;
pub mod pull_cache;
pub mod quota;
pub mod registry_size;
pub mod repositories;
pub mod scanner;
pub mod tags;
pub mod triggers;
pub mod uploads;
pub mod upstream;
