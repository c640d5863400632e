//! End-to-end tests of quayside-operator against the Kubernetes API emulator
//! (`tests/kube-emulator`), with the real registry binary, PostgreSQL, kubectl, skopeo and Helm.

mod apis;
mod content;
mod events;
mod full;
mod harness;
mod helm;
mod leader;
mod proxycache;
mod quota;
mod registry;
