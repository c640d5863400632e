//! Quayside: an OCI registry with Quay's tenancy model.
