//! What the `quayside` process tells whoever supervises it, beyond its log: the exit codes of a
//! start that cannot proceed because a dependency is down. Kubernetes keeps a container's last
//! exit code in the pod status, so the operator names the failing component from it without
//! parsing log text; any other supervisor (systemd, a shell script) can branch on it too.

/// Exit code: the database could not be opened (or its migrations could not run).
pub const EXIT_DATABASE_UNAVAILABLE: i32 = 3;

/// Exit code: the blob storage did not answer within the start-up wait.
pub const EXIT_STORAGE_UNAVAILABLE: i32 = 4;
