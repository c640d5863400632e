//! Queries of content: repositories and what they hold.
//!
//! Order (a module uses only the root and modules listed before it): [`repositories`] (the row
//! the others hang off, and its write lock), [`manifests`], [`tags`] (lifetimes pointing at
//! manifests), [`labels`], [`blobs`], [`uploads`], then [`gc`] (the collector's graph, which reads
//! tag retention from [`tags`]), [`quota`] (quotas and the storage accounting, which reads
//! manifests' blob references); [`proxy_cache`] stands apart (configurations and the tags the
//! cache set), and so do [`mirror`] (mirror configurations and their claims), [`registry_size`]
//! (the registry's total size, summed from the blobs), [`builds`] (builds, their queue and
//! logs, uploaded build contexts), [`triggers`] (build triggers) and [`scanner`] (the layer
//! index cache, the scan queue and the vulnerability database).

pub mod blobs;
pub mod builds;
pub mod gc;
pub mod labels;
pub mod manifests;
pub mod mirror;
pub mod proxy_cache;
pub mod quota;
pub mod registry_size;
pub mod repositories;
pub mod scanner;
pub mod tags;
pub mod triggers;
pub mod uploads;
