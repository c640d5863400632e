//! The `local` executor: the builder as a child process of the registry (`quayside builder`),
//! for single-machine installs and tests.
//!
//! Rules: the child runs in its own process group with a work directory of its own
//! (`BUILDER_WORK_DIR`, default `<data dir>/builds`, one `<build uuid>-<pid>` directory per
//! attempt) where buildah keeps its vfs storage; the token is passed in its environment
//! (`QUAYSIDE_BUILD_TOKEN`), never on its command line. `BUILDER_BINARY` names the executable
//! (default: the running one), `BUILDER_ENV` adds environment variables. [`stop`] kills the
//! whole group (buildah included) and removes the directory (kept with `DEBUG`). Children are
//! this process's: [`reap`] reports those that exited, so the manager restarts a build whose
//! builder died without finishing at once rather than at its deadline.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::config::ExecutorConfig;
use crate::db::content::builds::BuildRow;
use crate::service::Ctx;

struct Running {
    child: Child,
    build_id: i64,
    dir: PathBuf,
}

/// This process's builders, by reference (`local:<pid>`).
fn children() -> &'static Mutex<HashMap<String, Running>> {
    static CHILDREN: OnceLock<Mutex<HashMap<String, Running>>> = OnceLock::new();
    CHILDREN.get_or_init(|| Mutex::new(HashMap::new()))
}

pub fn start(
    ctx: &Ctx,
    executor: &ExecutorConfig,
    row: &BuildRow,
    token: &str,
) -> Result<String, String> {
    let binary = match executor.setting("BUILDER_BINARY") {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe().map_err(|e| format!("cannot find quayside: {e}"))?,
    };
    let base = executor
        .setting("BUILDER_WORK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ctx.config.data_dir.join("builds"));
    let dir = base.join(format!("{}-{}", row.uuid, crate::service::random_token(8)));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let log = std::fs::File::create(dir.join("builder.log"))
        .map_err(|e| format!("cannot create the builder's log: {e}"))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("cannot create the builder's log: {e}"))?;
    let mut command = Command::new(&binary);
    command
        .arg("builder")
        .arg("--manager")
        .arg(super::manager_url(ctx))
        .arg("--work-dir")
        .arg(&dir)
        .env("QUAYSIDE_BUILD_TOKEN", token)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0);
    if let Some(serde_yaml::Value::Mapping(env)) = executor.settings.get("BUILDER_ENV") {
        for (k, v) in env {
            if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                command.env(k, v);
            }
        }
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let reference = format!("local:{}", child.id());
    tracing::info!(build = %row.uuid, %reference, dir = %dir.display(), "started a local builder");
    if let Ok(mut map) = children().lock() {
        map.insert(
            reference.clone(),
            Running {
                child,
                build_id: row.id,
                dir,
            },
        );
    }
    Ok(reference)
}

/// Kills the builder's process group and removes its directory (unless `keep`). A reference
/// this process did not start is left alone.
pub fn stop(reference: &str, keep: bool) {
    let running = children().lock().ok().and_then(|mut m| m.remove(reference));
    let Some(mut running) = running else {
        return;
    };
    // Signal the group only while its leader is alive and not reaped: then its pid, and so the
    // group's id, cannot belong to anything else. A leader that exited (and was reaped by
    // `reap` or here) is never signalled by number again: its pid may be reused.
    if let Ok(None) = running.child.try_wait() {
        // The group's id is the builder's pid (`process_group(0)`); buildah runs inside it.
        if let Some(pid) = i32::try_from(running.child.id())
            .ok()
            .filter(|p| *p > 1)
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = running.child.kill();
        let _ = running.child.wait();
    }
    if !keep {
        // buildah's vfs layers may carry read-only directories: make them writable first.
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("u+w")
            .arg(&running.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&running.dir);
    }
}

/// Builders of this process that exited: (reference, build id, how it ended).
pub fn reap() -> Vec<(String, i64, String)> {
    let Ok(mut map) = children().lock() else {
        return Vec::new();
    };
    let mut exited = Vec::new();
    for (reference, running) in map.iter_mut() {
        if let Ok(Some(status)) = running.child.try_wait() {
            exited.push((reference.clone(), running.build_id, status.to_string()));
        }
    }
    exited
}

/// Whether this process started the builder `reference` (and has not stopped it).
pub fn owns(reference: &str) -> bool {
    children()
        .lock()
        .map(|m| m.contains_key(reference))
        .unwrap_or(false)
}
