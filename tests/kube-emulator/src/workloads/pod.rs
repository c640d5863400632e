//! One Pod's life as local processes: filesystem, environment, containers, probes, status.
//!
//! Filesystem, under the runner's root:
//! - `pods/<ns>_<pod>_<uid8>/` is the Pod directory (`{dir}`): `volumes/<volume>/` holds
//!   `emptyDir`, `configMap`, `secret`, `projected` and `downwardAPI` volumes (re-materialised
//!   before each container start), `logs/<container>.log` the container's stdout+stderr (served by
//!   `pods/{name}/log`), `containers/<container>/root/` the container's root (`{root}`,
//!   `$KUBE_EMULATOR_ROOT`), `tmp/` is `$TMPDIR`.
//! - `pvcs/<ns>/<claim>/` holds a PersistentVolumeClaim's data; it outlives Pods, so a
//!   restarted or replaced Pod sees the same files.
//! - Each `volumeMount` becomes a symlink `<root><mountPath>` → the volume (or its `subPath`).
//!
//! A process cannot see those directories at their absolute mount paths, so every string in
//! the container's argv, env values and `workingDir` that names a path under a mount path
//! (at the start of the string or after `=`, `:`, `,`, a space or a quote) is rewritten to
//! `<root><mountPath>...`: `--config=/conf/stack/config.yaml` becomes
//! `--config=/tmp/.../root/conf/stack/config.yaml`. Files' contents are not rewritten for
//! paths (only for Service addresses, see [`super::proxy`]).
//!
//! Environment: `PATH` and `LANG` from the host, `HOME` = root, `TMPDIR`, `HOSTNAME` = Pod name,
//! `KUBERNETES_SERVICE_HOST/PORT` = the API server, `KUBE_EMULATOR_ROOT`,
//! `KUBE_EMULATOR_POD_DIR`, `KUBE_EMULATOR_PORT_<containerPort>` = local port, Service
//! variables `<SVC>_SERVICE_HOST/PORT` for the namespace's Services (their local addresses),
//! then `envFrom` and `env` (with `valueFrom` secret/configMap keys and `fieldRef`, and
//! `$(VAR)` expansion), as a container would see them.
//!
//! Identity: `$KUBECONFIG` points to `{dir}/kubeconfig`, which reaches the API server with the
//! Pod's ServiceAccount token (see [`crate::rbac`]), so kube-rs and client-go programs running
//! in a Pod (an operator deployed by its Helm chart) act as that ServiceAccount. The token is
//! also written to `<root>/var/run/secrets/kubernetes.io/serviceaccount/` unless
//! `automountServiceAccountToken: false`.
//!
//! Users: with `securityContext.runAsUser` (container or Pod, group from `runAsGroup` or
//! `fsGroup`) and an emulator running as root, the process runs as that user and owns the
//! Pod's directory and its claims (PostgreSQL's `initdb` refuses to run as root). The data
//! directory is made traversable (`0755`) for that purpose.
//!
//! Ports: every declared `containerPort` gets a free loopback port for the Pod's lifetime,
//! published in the Pod annotation [`super::PORTS_ANNOTATION`]. The mapped command must listen
//! there: it learns the port from the `{port:N}` placeholder or `$KUBE_EMULATOR_PORT_N`.
//!
//! Containers: init containers run one after another to success first; then all containers run
//! together. A container that exits is restarted per `restartPolicy` after a back-off
//! (`CrashLoopBackOff` meanwhile, `restartCount` incremented). Probes: `httpGet` (`scheme:
//! HTTPS` without certificate verification, as the kubelet does),
//! `tcpSocket` and `exec`; readiness gates the `Ready` condition, liveness failures
//! (`failureThreshold` in a row) kill and restart the container, a startup probe holds both
//! back until it succeeds. Probe periods are capped by the runner's `probe_period_cap`.
//!
//! Size: over 1,400 lines, on purpose: one Pod's state machine (volumes, container starts and
//! restarts, probes, status) shares the Pod directory and its status fields at every step; split
//! by step, each piece would need the whole picture again.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{PORTS_ANNOTATION, Runner, lock};
use crate::api::{name_of, ns_of, uid_of};

/// Sends `signal` to a whole process group (through `sh`'s `kill`, which every system has).
pub fn kill_group(pgid: u32, signal: &str) {
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("kill -s {signal} -- -{pgid} 2>/dev/null"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Run,
    /// Stop; `true`: then remove the Pod object (graceful deletion done).
    Stop(bool),
}

/// Control of one running Pod worker.
#[derive(Debug)]
pub struct PodHandle {
    stop: watch::Sender<Stop>,
    task: tokio::task::JoinHandle<()>,
}

impl PodHandle {
    /// Starts running a Pod.
    pub fn spawn(runner: Arc<Runner>, pod: Value) -> Self {
        let (stop, rx) = watch::channel(Stop::Run);
        let task = tokio::spawn(async move {
            let uid = uid_of(&pod).to_owned();
            let terminal = run_pod(runner.clone(), pod, rx).await;
            runner.worker_done(&uid, terminal);
        });
        Self { stop, task }
    }

    /// Asks the Pod's containers to stop; `purge`: then delete the Pod object.
    pub fn stop(&self, purge: bool) {
        let _ = self.stop.send_if_modified(|s| {
            if *s == Stop::Run {
                *s = Stop::Stop(purge);
                true
            } else {
                false
            }
        });
    }

    /// Aborts the worker task (processes are killed separately by the runner).
    pub fn abort(self) {
        self.task.abort();
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[derive(Debug, Clone)]
enum CState {
    Waiting(String, String),
    Running(String),
    Terminated {
        code: i32,
        reason: String,
        /// The termination message (`FallbackToLogsOnError`: the log's tail on failure).
        message: String,
        started: String,
        finished: String,
    },
}

#[derive(Debug, Clone)]
struct Container {
    name: String,
    image: String,
    state: CState,
    last: Option<CState>,
    restarts: u32,
    ready: bool,
    started: bool,
    pid: u32,
}

fn cstate_json(s: &CState) -> Value {
    match s {
        CState::Waiting(reason, message) => {
            json!({"waiting": {"reason": reason, "message": message}})
        }
        CState::Running(at) => json!({"running": {"startedAt": at}}),
        CState::Terminated {
            code,
            reason,
            message,
            started,
            finished,
        } => {
            let mut t = json!({"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": finished});
            if !message.is_empty() {
                t["message"] = json!(message);
            }
            json!({"terminated": t})
        }
    }
}

#[derive(Debug, Default)]
struct PodState {
    init: Vec<Container>,
    main: Vec<Container>,
    initialized: bool,
    /// Set when no container will run again.
    final_phase: Option<&'static str>,
    transitions: HashMap<&'static str, (bool, String)>,
    start_time: String,
}

struct Ctx {
    runner: Arc<Runner>,
    pod: Value,
    ns: String,
    name: String,
    dir: PathBuf,
    ports: BTreeMap<i64, u16>,
    state: Mutex<PodState>,
    stop: watch::Receiver<Stop>,
}

impl Ctx {
    fn stopping(&self) -> bool {
        *self.stop.borrow() != Stop::Run
    }

    fn with<R>(&self, f: impl FnOnce(&mut PodState) -> R) -> R {
        let r = f(&mut lock(&self.state));
        self.report();
        r
    }

    fn container(&self, init: bool, i: usize, f: impl FnOnce(&mut Container)) {
        self.with(|s| {
            let list = if init { &mut s.init } else { &mut s.main };
            if let Some(c) = list.get_mut(i) {
                f(c);
            }
        });
    }

    /// Writes the Pod status derived from the containers' states.
    fn report(&self) {
        let status = {
            let mut s = lock(&self.state);
            let all_ready = !s.main.is_empty() && s.main.iter().all(|c| c.ready);
            let any_running = s.main.iter().any(|c| matches!(c.state, CState::Running(_)));
            let phase = if let Some(p) = s.final_phase {
                p
            } else if s.initialized && (any_running || s.main.iter().any(|c| c.restarts > 0)) {
                "Running"
            } else {
                "Pending"
            };
            let initialized = s.initialized;
            let mut cond = |t: &'static str, v: bool| {
                let entry = s.transitions.entry(t).or_insert_with(|| (v, now()));
                if entry.0 != v {
                    *entry = (v, now());
                }
                json!({"type": t, "status": if v { "True" } else { "False" }, "lastProbeTime": null,
                    "lastTransitionTime": entry.1})
            };
            let conditions = vec![
                cond("PodReadyToStartContainers", true),
                cond("Initialized", initialized),
                cond("Ready", all_ready && phase == "Running"),
                cond("ContainersReady", all_ready && phase == "Running"),
                cond("PodScheduled", true),
            ];
            let cs = |list: &[Container]| -> Vec<Value> {
                list.iter()
                    .map(|c| {
                        json!({
                            "name": c.name, "image": c.image, "imageID": "",
                            "containerID": format!("kube-emulator://{}", c.pid),
                            "ready": c.ready, "started": c.started, "restartCount": c.restarts,
                            "state": cstate_json(&c.state),
                            "lastState": c.last.as_ref().map(cstate_json).unwrap_or(json!({})),
                        })
                    })
                    .collect()
            };
            let mut status = json!({
                "phase": phase,
                "conditions": conditions,
                "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
                "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
                "startTime": s.start_time,
                "qosClass": "BestEffort",
                "containerStatuses": cs(&s.main),
            });
            if !s.init.is_empty() {
                status["initContainerStatuses"] = json!(cs(&s.init));
            }
            status
        };
        let mut st = self.runner.cluster.lock();
        let rt = st.rt("", "pods");
        if st
            .find(&rt, &self.ns, &self.name)
            .is_some_and(|p| uid_of(&p) == uid_of(&self.pod))
        {
            let _ = st.set_status(&rt, &self.ns, &self.name, status, "kubelet");
        }
    }
}

/// The last 80 lines of a log, cut to its last 2048 bytes.
fn log_tail(path: &std::path::Path) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return String::new();
    };
    let start = bytes.len().saturating_sub(2048);
    let text = String::from_utf8_lossy(&bytes[start..]);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Runs a Pod until it stops. Returns true if it reached a terminal phase by itself.
async fn run_pod(runner: Arc<Runner>, pod: Value, stop: watch::Receiver<Stop>) -> bool {
    let ns = ns_of(&pod).to_owned();
    let name = name_of(&pod).to_owned();
    let uid = uid_of(&pod).to_owned();
    let dir = runner.pod_dir(&ns, &name, &uid);
    let mut ports = BTreeMap::new();
    for list in ["initContainers", "containers"] {
        for c in pod["spec"][list].as_array().into_iter().flatten() {
            for p in c["ports"].as_array().into_iter().flatten() {
                if let Some(n) = p["containerPort"].as_i64() {
                    ports.entry(n).or_insert_with(free_port);
                }
            }
        }
    }
    // Placeholders may name ports the spec does not declare.
    for m in &runner.config.mappings {
        for word in &m.command {
            for n in placeholder_ports(word) {
                ports.entry(n).or_insert_with(free_port);
            }
        }
    }
    for sub in ["", "volumes", "logs", "tmp", "containers"] {
        let _ = std::fs::create_dir_all(dir.join(sub));
    }
    let containers = |list: &str| -> Vec<Container> {
        pod["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| Container {
                name: c["name"].as_str().unwrap_or_default().into(),
                image: c["image"].as_str().unwrap_or_default().into(),
                state: CState::Waiting("PodInitializing".into(), String::new()),
                last: None,
                restarts: 0,
                ready: false,
                started: false,
                pid: 0,
            })
            .collect()
    };
    let state = PodState {
        init: containers("initContainers"),
        main: containers("containers"),
        start_time: now(),
        ..Default::default()
    };
    {
        let mut st = runner.cluster.lock();
        let rt = st.rt("", "pods");
        if let Some(cur) = st.find(&rt, &ns, &name) {
            let mut new = (*cur).clone();
            let map: serde_json::Map<String, Value> = ports
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            new["metadata"]["annotations"][PORTS_ANNOTATION] =
                json!(Value::Object(map).to_string());
            let _ = st.controller_update(&rt, new, "kubelet");
        }
    }
    let ctx = Arc::new(Ctx {
        runner,
        pod,
        ns,
        name,
        dir,
        ports,
        state: Mutex::new(state),
        stop,
    });
    ctx.report();

    let policy = ctx.pod["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or("Always")
        .to_owned();
    // Init containers, in order.
    let inits = ctx.pod["spec"]["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, spec) in inits.iter().enumerate() {
        let init_policy = if policy == "Never" {
            "Never"
        } else {
            "OnFailure"
        };
        let ok = run_container(ctx.clone(), true, i, spec.clone(), init_policy).await;
        if ctx.stopping() {
            return finish(&ctx, false).await;
        }
        if !ok {
            ctx.with(|s| s.final_phase = Some("Failed"));
            return finish(&ctx, true).await;
        }
    }
    ctx.with(|s| {
        s.initialized = true;
        for c in &mut s.main {
            c.state = CState::Waiting("ContainerCreating".into(), String::new());
        }
    });
    let mains = ctx.pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let tasks: Vec<_> = mains
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let ctx = ctx.clone();
            let policy = policy.clone();
            tokio::spawn(async move { run_container(ctx, false, i, spec, &policy).await })
        })
        .collect();
    let mut all_ok = true;
    for t in tasks {
        all_ok &= t.await.unwrap_or(false);
    }
    if ctx.stopping() {
        return finish(&ctx, false).await;
    }
    ctx.with(|s| s.final_phase = Some(if all_ok { "Succeeded" } else { "Failed" }));
    finish(&ctx, true).await
}

async fn finish(ctx: &Ctx, terminal: bool) -> bool {
    if *ctx.stop.borrow() == Stop::Stop(true) {
        let mut st = ctx.runner.cluster.lock();
        let rt = st.rt("", "pods");
        if st
            .find(&rt, &ctx.ns, &ctx.name)
            .is_some_and(|p| uid_of(&p) == uid_of(&ctx.pod))
        {
            st.purge(&rt, &ctx.ns, &ctx.name);
        }
    }
    terminal
}

fn placeholder_ports(s: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("{port:") {
        let after = &rest[i + 6..];
        if let Some(end) = after.find('}') {
            if let Ok(n) = after[..end].parse() {
                out.push(n);
            }
            rest = &after[end..];
        } else {
            break;
        }
    }
    out
}

/// What a container needs to start, or why it cannot yet.
struct Launch {
    /// `(uid, gid)` to run as (`securityContext.runAsUser`), when the emulator can switch.
    user: Option<(u32, u32)>,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    root: PathBuf,
    mounts: Vec<(String, String)>,
}

/// Runs one container with restarts. Returns true if it ended successfully (exit 0).
async fn run_container(ctx: Arc<Ctx>, init: bool, i: usize, spec: Value, policy: &str) -> bool {
    let mut stop = ctx.stop.clone();
    let cfg = &ctx.runner.config;
    let mut backoff = cfg.backoff_base;
    loop {
        if ctx.stopping() {
            return false;
        }
        let launch = match prepare(&ctx, &spec) {
            Ok(l) => l,
            Err((reason, message)) => {
                ctx.container(init, i, |c| c.state = CState::Waiting(reason, message));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    _ = stop.changed() => return false,
                }
            }
        };
        let log_path = ctx
            .dir
            .join("logs")
            .join(format!("{}.log", spec["name"].as_str().unwrap_or("c")));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path);
        let (out, err) = match log.and_then(|f| Ok((f.try_clone()?, f))) {
            Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
            Err(_) => (Stdio::null(), Stdio::null()),
        };
        let mut cmd = tokio::process::Command::new(&launch.argv[0]);
        cmd.args(&launch.argv[1..])
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&launch.cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true);
        if let Some((uid, gid)) = launch.user {
            cmd.uid(uid).gid(gid);
        }
        let started_at = now();
        let began = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                ctx.container(init, i, |c| {
                    c.state = CState::Waiting(
                        "RunContainerError".into(),
                        format!("starting {:?}: {e}", launch.argv[0]),
                    );
                });
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => { backoff = (backoff * 2).min(cfg.backoff_max); continue; }
                    _ = stop.changed() => return false,
                }
            }
        };
        let pid = child.id().unwrap_or(0);
        lock(&ctx.runner.groups).insert(pid);
        let has_startup = spec["startupProbe"].is_object();
        ctx.container(init, i, |c| {
            c.state = CState::Running(started_at.clone());
            c.pid = pid;
            c.started = !has_startup;
            c.ready = !init && !has_startup && !spec["readinessProbe"].is_object();
        });
        let (dead_tx, mut dead_rx) = watch::channel(false);
        let prober = (!init).then(|| {
            let ctx = ctx.clone();
            let spec = spec.clone();
            let launch_env = launch.env.clone();
            let mounts = launch.mounts.clone();
            let root = launch.root.clone();
            tokio::spawn(async move {
                probe_loop(ctx, i, spec, launch_env, mounts, root, dead_tx).await
            })
        });
        let grace = Duration::from_secs(
            ctx.pod["spec"]["terminationGracePeriodSeconds"]
                .as_u64()
                .unwrap_or(30),
        )
        .min(cfg.grace_cap);
        let (code, reason, stopped) = tokio::select! {
            r = child.wait() => {
                let code = r.ok().and_then(|s| s.code().or_else(|| {
                    use std::os::unix::process::ExitStatusExt;
                    s.signal().map(|sig| 128 + sig)
                })).unwrap_or(1);
                (code, if code == 0 { "Completed" } else { "Error" }, false)
            }
            Ok(()) = dead_rx.changed() => {
                terminate(&mut child, pid, grace).await;
                (137, "Error", false)
            }
            _ = stop.changed() => {
                terminate(&mut child, pid, grace).await;
                (143, "Completed", true)
            }
        };
        // The group may still have members (e.g. a shell's children): end them too.
        kill_group(pid, "KILL");
        lock(&ctx.runner.groups).remove(&pid);
        if let Some(p) = prober {
            p.abort();
        }
        // `terminationMessagePolicy: FallbackToLogsOnError`: a failed container's message is the
        // tail of its log (at most 80 lines and 2 KiB, as the kubelet reads it).
        let message = if code != 0 && spec["terminationMessagePolicy"] == "FallbackToLogsOnError" {
            log_tail(&log_path)
        } else {
            String::new()
        };
        let term = CState::Terminated {
            code,
            reason: reason.into(),
            message,
            started: started_at,
            finished: now(),
        };
        let restart = !stopped
            && match policy {
                "Always" => true,
                "OnFailure" => code != 0,
                _ => false,
            };
        if !restart {
            ctx.container(init, i, |c| {
                c.state = term;
                c.ready = false;
            });
            return code == 0 && !stopped;
        }
        if began.elapsed() > Duration::from_secs(10) {
            backoff = cfg.backoff_base;
        }
        ctx.container(init, i, |c| {
            c.last = Some(term);
            c.ready = false;
            c.restarts += 1;
            c.state = CState::Waiting(
                "CrashLoopBackOff".into(),
                format!(
                    "back-off {}s restarting failed container={}",
                    backoff.as_secs_f32(),
                    c.name
                ),
            );
        });
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return false,
        }
        backoff = (backoff * 2).min(cfg.backoff_max);
    }
}

async fn terminate(child: &mut tokio::process::Child, pid: u32, grace: Duration) {
    kill_group(pid, "TERM");
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        kill_group(pid, "KILL");
        let _ = child.wait().await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn probe_loop(
    ctx: Arc<Ctx>,
    i: usize,
    spec: Value,
    env: Vec<(String, String)>,
    mounts: Vec<(String, String)>,
    root: PathBuf,
    dead: watch::Sender<bool>,
) {
    let cap = ctx.runner.config.probe_period_cap;
    let period =
        |p: &Value| Duration::from_secs(p["periodSeconds"].as_u64().unwrap_or(10)).min(cap);
    let threshold = |p: &Value, k: &str, d: u64| p[k].as_u64().unwrap_or(d).max(1);
    let delay = |p: &Value| Duration::from_secs(p["initialDelaySeconds"].as_u64().unwrap_or(0));
    let run = |p: Value| {
        let ctx = ctx.clone();
        let spec = spec.clone();
        let env = env.clone();
        let mounts = mounts.clone();
        let root = root.clone();
        async move { probe(&ctx, &spec, &p, &env, &mounts, &root).await }
    };
    let start = Instant::now();
    // Startup probe.
    if let Some(sp) = spec.get("startupProbe").filter(|p| p.is_object()).cloned() {
        tokio::time::sleep(delay(&sp)).await;
        let mut failures = 0;
        loop {
            if run(sp.clone()).await {
                break;
            }
            failures += 1;
            if failures >= threshold(&sp, "failureThreshold", 3) {
                let _ = dead.send(true);
                return;
            }
            tokio::time::sleep(period(&sp)).await;
        }
        ctx.container(false, i, |c| {
            c.started = true;
            if !spec["readinessProbe"].is_object() {
                c.ready = true;
            }
        });
    }
    let readiness = spec
        .get("readinessProbe")
        .filter(|p| p.is_object())
        .cloned();
    let liveness = spec.get("livenessProbe").filter(|p| p.is_object()).cloned();
    if readiness.is_none() && liveness.is_none() {
        // Keep `dead` open: a closed channel would read as a liveness failure.
        return std::future::pending().await;
    }
    let mut next_ready = readiness.as_ref().map(|p| start + delay(p));
    let mut next_live = liveness
        .as_ref()
        .map(|p| start + delay(p).max(Duration::from_millis(1)));
    let (mut r_ok, mut r_fail, mut l_fail) = (0u64, 0u64, 0u64);
    loop {
        let next = [next_ready, next_live].into_iter().flatten().min();
        let Some(next) = next else {
            return std::future::pending().await;
        };
        tokio::time::sleep_until(next.into()).await;
        let now_i = Instant::now();
        if let (Some(p), Some(t)) = (&readiness, next_ready)
            && t <= now_i
        {
            if run(p.clone()).await {
                r_ok += 1;
                r_fail = 0;
                if r_ok >= threshold(p, "successThreshold", 1) {
                    ctx.container(false, i, |c| c.ready = true);
                }
            } else {
                r_fail += 1;
                r_ok = 0;
                if r_fail >= threshold(p, "failureThreshold", 3) {
                    ctx.container(false, i, |c| c.ready = false);
                }
            }
            next_ready = Some(Instant::now() + period(p));
        }
        if let (Some(p), Some(t)) = (&liveness, next_live)
            && t <= now_i
        {
            if run(p.clone()).await {
                l_fail = 0;
            } else {
                l_fail += 1;
                if l_fail >= threshold(p, "failureThreshold", 3) {
                    let _ = dead.send(true);
                    return;
                }
            }
            let real = Duration::from_secs(p["periodSeconds"].as_u64().unwrap_or(10));
            next_live = Some(Instant::now() + real.min(cap.max(Duration::from_secs(1))));
        }
    }
}

/// Resolves a probe's `port` (number or container port name) to the local port.
fn resolve_port(ctx: &Ctx, spec: &Value, port: &Value) -> Option<u16> {
    let n = match port {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => spec["ports"]
                .as_array()?
                .iter()
                .find(|p| p["name"] == s.as_str())?["containerPort"]
                .as_i64()?,
        },
        _ => return None,
    };
    ctx.ports.get(&n).copied().or_else(|| u16::try_from(n).ok())
}

async fn probe(
    ctx: &Ctx,
    spec: &Value,
    p: &Value,
    env: &[(String, String)],
    mounts: &[(String, String)],
    root: &Path,
) -> bool {
    let timeout = Duration::from_secs(p["timeoutSeconds"].as_u64().unwrap_or(1).max(1));
    let fut = async {
        if let Some(h) = p.get("httpGet").filter(|h| h.is_object()) {
            let Some(port) = resolve_port(ctx, spec, &h["port"]) else {
                return false;
            };
            let path = h["path"].as_str().unwrap_or("/");
            let headers: Vec<(String, String)> = h["httpHeaders"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    (
                        x["name"].as_str().unwrap_or_default().into(),
                        x["value"].as_str().unwrap_or_default().into(),
                    )
                })
                .collect();
            let https = h["scheme"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("https"));
            let status = if https {
                super::proxy::https_get_status(port, path, &headers).await
            } else {
                super::proxy::http_get_status(port, path, &headers).await
            };
            status.is_some_and(|s| (200..400).contains(&s))
        } else if let Some(t) = p.get("tcpSocket").filter(|h| h.is_object()) {
            let Some(port) = resolve_port(ctx, spec, &t["port"]) else {
                return false;
            };
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        } else if let Some(e) = p.get("exec").filter(|h| h.is_object()) {
            let argv: Vec<String> = e["command"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(|s| rewrite_paths(s, mounts)))
                .collect();
            let Some(prog) = argv.first() else {
                return false;
            };
            tokio::process::Command::new(prog)
                .args(&argv[1..])
                .env_clear()
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .current_dir(root)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .status()
                .await
                .is_ok_and(|s| s.success())
        } else if let Some(g) = p.get("grpc").filter(|h| h.is_object()) {
            let Some(port) = resolve_port(ctx, spec, &g["port"]) else {
                return false;
            };
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        } else {
            true
        }
    };
    tokio::time::timeout(timeout, fut).await.unwrap_or(false)
}

/// Rewrites absolute paths under mount paths (see the module rules). `mounts` are
/// `(mountPath, replacement)` pairs.
pub fn rewrite_paths(s: &str, mounts: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    'outer: while i < s.len() {
        let boundary_before =
            i == 0 || matches!(bytes[i - 1], b'=' | b':' | b',' | b' ' | b'"' | b'\'');
        if boundary_before && bytes[i] == b'/' {
            for (mp, repl) in mounts {
                let mp = mp.trim_end_matches('/');
                if mp.is_empty() {
                    continue;
                }
                if s[i..].starts_with(mp) {
                    let end = i + mp.len();
                    let ok_after = end == s.len()
                        || matches!(bytes[end], b'/' | b' ' | b'"' | b'\'' | b',' | b':' | b';');
                    if ok_after {
                        out.push_str(repl.trim_end_matches('/'));
                        i = end;
                        continue 'outer;
                    }
                }
            }
        }
        let ch = s[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Expands `$(VAR)` references (`$$(VAR)` escapes), leaving unknown references as they are.
pub fn expand_vars(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let var = &inner[..end];
                    match env.iter().rev().find(|(k, _)| k == var) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(var);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn placeholders(s: &str, ctx: &Ctx, spec: &Value, root: &Path) -> String {
    let mut s = s
        .replace("{root}", &root.to_string_lossy())
        .replace("{dir}", &ctx.dir.to_string_lossy())
        .replace("{api}", &ctx.runner.config.api_address);
    while let Some(i) = s.find("{port:") {
        let Some(end) = s[i..].find('}') else { break };
        let key = &s[i + 6..i + end];
        let port = resolve_port(ctx, spec, &json!(key))
            .or_else(|| {
                key.parse::<i64>()
                    .ok()
                    .and_then(|n| ctx.ports.get(&n).copied())
            })
            .map(|p| p.to_string())
            .unwrap_or_default();
        s.replace_range(i..i + end + 1, &port);
    }
    s
}

type Prep<T> = Result<T, (String, String)>;

fn decode_data(obj: &Value, secret: bool) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(d) = obj["data"].as_object() {
        for (k, v) in d {
            let s = v.as_str().unwrap_or_default();
            let bytes = if secret {
                b64.decode(s).unwrap_or_default()
            } else {
                s.as_bytes().to_vec()
            };
            out.insert(k.clone(), bytes);
        }
    }
    if let Some(d) = obj["binaryData"].as_object() {
        for (k, v) in d {
            out.insert(
                k.clone(),
                b64.decode(v.as_str().unwrap_or_default())
                    .unwrap_or_default(),
            );
        }
    }
    out
}

fn write_items(
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: &Value,
    rewrite: &dyn Fn(Vec<u8>) -> Vec<u8>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let pairs: Vec<(String, String)> = match items.as_array() {
        Some(items) if !items.is_empty() => items
            .iter()
            .map(|it| {
                (
                    it["key"].as_str().unwrap_or_default().into(),
                    it["path"].as_str().unwrap_or_default().into(),
                )
            })
            .collect(),
        _ => data.keys().map(|k| (k.clone(), k.clone())).collect(),
    };
    for (key, path) in pairs {
        if let Some(bytes) = data.get(&key) {
            let target = dir.join(&path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(target, rewrite(bytes.clone()))?;
        }
    }
    Ok(())
}

fn field_ref(pod: &Value, path: &str) -> String {
    let md = &pod["metadata"];
    let label = |prefix: &str, key: &str| -> Option<String> {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("['"))
            .and_then(|r| r.strip_suffix("']"))
            .and_then(|k| md[key][k].as_str().map(str::to_owned))
    };
    match path {
        "metadata.name" => name_of(pod).into(),
        "metadata.namespace" => ns_of(pod).into(),
        "metadata.uid" => uid_of(pod).into(),
        "spec.nodeName" => crate::api::NODE_NAME.into(),
        "spec.serviceAccountName" => pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .into(),
        "status.podIP" | "status.hostIP" | "status.podIPs" | "status.hostIPs" => "127.0.0.1".into(),
        _ => label("metadata.labels", "labels")
            .or_else(|| label("metadata.annotations", "annotations"))
            .unwrap_or_default(),
    }
}

/// Materialises volumes, builds argv and env. `Err((reason, message))` when something the
/// container needs is missing (it is retried).
fn prepare(ctx: &Ctx, spec: &Value) -> Prep<Launch> {
    let cfg = &ctx.runner.config;
    let cname = spec["name"].as_str().unwrap_or("c");
    let root = ctx.dir.join("containers").join(cname).join("root");
    let io = |e: std::io::Error| ("CreateContainerError".to_owned(), e.to_string());
    std::fs::create_dir_all(&root).map_err(io)?;
    let image = spec["image"].as_str().unwrap_or_default();
    let mapping = cfg.mapping_for(image).cloned().ok_or_else(|| {
        (
            "ImagePullBackOff".to_owned(),
            format!("kube-emulator: no workload mapping for image {image:?}"),
        )
    })?;

    let st = ctx.runner.cluster.lock();
    let services = super::proxy::service_addresses(&st, &ctx.runner, &ctx.ns);
    let rewrite_svc = |s: &str| -> String {
        if cfg.rewrite_service_addresses {
            super::proxy::rewrite_service_addresses(s, &services)
        } else {
            s.to_owned()
        }
    };
    let rewrite_bytes = |b: Vec<u8>| -> Vec<u8> {
        match String::from_utf8(b) {
            Ok(s) => rewrite_svc(&s).into_bytes(),
            Err(e) => e.into_bytes(),
        }
    };
    let get = |plural: &str, name: &str| -> Option<Arc<Value>> {
        let rt = st.rt("", plural);
        st.find(&rt, &ctx.ns, name)
    };
    let missing = |what: &str, name: &str| {
        (
            "CreateContainerConfigError".to_owned(),
            format!("{what} \"{name}\" not found"),
        )
    };

    // Volumes.
    let mut volumes: HashMap<String, PathBuf> = HashMap::new();
    for v in ctx.pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let vname = v["name"].as_str().unwrap_or_default();
        let vdir = ctx.dir.join("volumes").join(vname);
        let path = if v["emptyDir"].is_object() {
            std::fs::create_dir_all(&vdir).map_err(io)?;
            vdir
        } else if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
            if get("persistentvolumeclaims", claim).is_none() {
                return Err(missing("persistentvolumeclaim", claim));
            }
            let d = cfg.root.join("pvcs").join(&ctx.ns).join(claim);
            std::fs::create_dir_all(&d).map_err(io)?;
            d
        } else if v["configMap"].is_object() {
            let n = v["configMap"]["name"].as_str().unwrap_or_default();
            match get("configmaps", n) {
                Some(cm) => write_items(
                    &vdir,
                    &decode_data(&cm, false),
                    &v["configMap"]["items"],
                    &rewrite_bytes,
                )
                .map_err(io)?,
                None if v["configMap"]["optional"] == true => {
                    std::fs::create_dir_all(&vdir).map_err(io)?
                }
                None => return Err(missing("configmap", n)),
            }
            vdir
        } else if v["secret"].is_object() {
            let n = v["secret"]["secretName"].as_str().unwrap_or_default();
            match get("secrets", n) {
                Some(s) => write_items(
                    &vdir,
                    &decode_data(&s, true),
                    &v["secret"]["items"],
                    &rewrite_bytes,
                )
                .map_err(io)?,
                None if v["secret"]["optional"] == true => {
                    std::fs::create_dir_all(&vdir).map_err(io)?
                }
                None => return Err(missing("secret", n)),
            }
            vdir
        } else if v["projected"].is_object() || v["downwardAPI"].is_object() {
            std::fs::create_dir_all(&vdir).map_err(io)?;
            let sources: Vec<Value> = if v["projected"].is_object() {
                v["projected"]["sources"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            } else {
                vec![json!({"downwardAPI": v["downwardAPI"]})]
            };
            for src in sources {
                if let Some(n) = src["secret"]["name"].as_str() {
                    match get("secrets", n) {
                        Some(s) => write_items(
                            &vdir,
                            &decode_data(&s, true),
                            &src["secret"]["items"],
                            &rewrite_bytes,
                        )
                        .map_err(io)?,
                        None if src["secret"]["optional"] == true => {}
                        None => return Err(missing("secret", n)),
                    }
                } else if let Some(n) = src["configMap"]["name"].as_str() {
                    match get("configmaps", n) {
                        Some(c) => write_items(
                            &vdir,
                            &decode_data(&c, false),
                            &src["configMap"]["items"],
                            &rewrite_bytes,
                        )
                        .map_err(io)?,
                        None if src["configMap"]["optional"] == true => {}
                        None => return Err(missing("configmap", n)),
                    }
                } else if src["serviceAccountToken"].is_object() {
                    let sa = ctx.pod["spec"]["serviceAccountName"]
                        .as_str()
                        .unwrap_or("default");
                    let p = src["serviceAccountToken"]["path"]
                        .as_str()
                        .unwrap_or("token");
                    std::fs::write(
                        vdir.join(p),
                        crate::rbac::service_account_token(&ctx.ns, sa),
                    )
                    .map_err(io)?;
                } else if let Some(items) = src["downwardAPI"]["items"].as_array() {
                    for it in items {
                        let p = it["path"].as_str().unwrap_or_default();
                        let value = field_ref(
                            &ctx.pod,
                            it["fieldRef"]["fieldPath"].as_str().unwrap_or_default(),
                        );
                        std::fs::write(vdir.join(p), value).map_err(io)?;
                    }
                }
            }
            vdir
        } else if let Some(p) = v["hostPath"]["path"].as_str() {
            PathBuf::from(p)
        } else {
            return Err((
                "CreateContainerConfigError".into(),
                format!("kube-emulator: unsupported volume type in volume {vname:?}"),
            ));
        };
        volumes.insert(vname.to_owned(), path);
    }

    // Mounts: symlinks under the container root.
    let mut mounts: Vec<(String, String)> = Vec::new();
    for m in spec["volumeMounts"].as_array().into_iter().flatten() {
        let vname = m["name"].as_str().unwrap_or_default();
        let mount_path = m["mountPath"].as_str().unwrap_or_default();
        let Some(vdir) = volumes.get(vname) else {
            return Err((
                "CreateContainerConfigError".into(),
                format!("volume {vname:?} not found"),
            ));
        };
        let target = match m["subPath"].as_str().filter(|s| !s.is_empty()) {
            Some(sp) => {
                let t = vdir.join(sp);
                if !t.exists() {
                    std::fs::create_dir_all(&t).map_err(io)?;
                }
                t
            }
            None => vdir.clone(),
        };
        let link = root.join(mount_path.trim_start_matches('/'));
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        if link.symlink_metadata().is_ok() {
            if link.is_dir()
                && !link
                    .symlink_metadata()
                    .map(|m| m.file_type().is_symlink())
                    .unwrap_or(false)
            {
                let _ = std::fs::remove_dir_all(&link);
            } else {
                let _ = std::fs::remove_file(&link);
            }
        }
        std::os::unix::fs::symlink(&target, &link).map_err(io)?;
        mounts.push((mount_path.to_owned(), link.to_string_lossy().into_owned()));
    }
    mounts.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));

    // Environment.
    let mut env: Vec<(String, String)> = Vec::new();
    let host = |k: &str| std::env::var(k).ok();
    env.push((
        "PATH".into(),
        host("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
    ));
    if let Some(lang) = host("LANG") {
        env.push(("LANG".into(), lang));
    }
    env.push(("HOME".into(), root.to_string_lossy().into()));
    env.push((
        "TMPDIR".into(),
        ctx.dir.join("tmp").to_string_lossy().into(),
    ));
    env.push(("HOSTNAME".into(), ctx.name.clone()));
    let (api_host, api_port) = cfg
        .api_address
        .rsplit_once(':')
        .unwrap_or(("127.0.0.1", "0"));
    env.push(("KUBERNETES_SERVICE_HOST".into(), api_host.into()));
    env.push(("KUBERNETES_SERVICE_PORT".into(), api_port.into()));
    env.push(("KUBE_EMULATOR_ROOT".into(), root.to_string_lossy().into()));
    env.push((
        "KUBE_EMULATOR_POD_DIR".into(),
        ctx.dir.to_string_lossy().into(),
    ));
    for (port, local) in &ctx.ports {
        env.push((format!("KUBE_EMULATOR_PORT_{port}"), local.to_string()));
    }
    // The Pod's ServiceAccount identity: a kubeconfig (kube-rs and client-go try $KUBECONFIG
    // before in-cluster files) and the usual token directory under the container root.
    let sa = ctx.pod["spec"]["serviceAccountName"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    let token = crate::rbac::service_account_token(&ctx.ns, sa);
    let kubeconfig = ctx.dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        crate::kubeconfig_yaml(&cfg.api_url, cfg.api_ca_pem.as_deref(), &ctx.ns, &token),
    )
    .map_err(io)?;
    env.push(("KUBECONFIG".into(), kubeconfig.to_string_lossy().into()));
    if ctx.pod["spec"]["automountServiceAccountToken"] != false {
        let sa_dir = root.join("var/run/secrets/kubernetes.io/serviceaccount");
        std::fs::create_dir_all(&sa_dir).map_err(io)?;
        std::fs::write(sa_dir.join("token"), &token).map_err(io)?;
        std::fs::write(sa_dir.join("namespace"), &ctx.ns).map_err(io)?;
        std::fs::write(
            sa_dir.join("ca.crt"),
            cfg.api_ca_pem.as_deref().unwrap_or_default(),
        )
        .map_err(io)?;
    }
    for (svc, addr) in super::proxy::service_env(&st, &ctx.runner, &ctx.ns) {
        env.push(svc);
        env.push(addr);
    }
    let mut user_env: Vec<(String, String)> = Vec::new();
    for ef in spec["envFrom"].as_array().into_iter().flatten() {
        let prefix = ef["prefix"].as_str().unwrap_or_default();
        let (plural, src, secret) = if ef["configMapRef"].is_object() {
            ("configmaps", &ef["configMapRef"], false)
        } else {
            ("secrets", &ef["secretRef"], true)
        };
        let n = src["name"].as_str().unwrap_or_default();
        match get(plural, n) {
            Some(o) => {
                for (k, v) in decode_data(&o, secret) {
                    user_env.push((
                        format!("{prefix}{k}"),
                        String::from_utf8_lossy(&v).into_owned(),
                    ));
                }
            }
            None if src["optional"] == true => {}
            None => return Err(missing(&plural[..plural.len() - 1], n)),
        }
    }
    for e in spec["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default().to_owned();
        let vf = &e["valueFrom"];
        let value = if vf.is_object() {
            let key_of = |r: &Value, plural: &str, secret: bool| -> Prep<Option<String>> {
                let n = r["name"].as_str().unwrap_or_default();
                let k = r["key"].as_str().unwrap_or_default();
                match get(plural, n)
                    .map(|o| decode_data(&o, secret))
                    .and_then(|d| d.get(k).cloned())
                {
                    Some(v) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
                    None if r["optional"] == true => Ok(None),
                    None => Err((
                        "CreateContainerConfigError".into(),
                        format!("couldn't find key {k} in {plural} {}/{n}", ctx.ns),
                    )),
                }
            };
            if vf["secretKeyRef"].is_object() {
                key_of(&vf["secretKeyRef"], "secrets", true)?
            } else if vf["configMapKeyRef"].is_object() {
                key_of(&vf["configMapKeyRef"], "configmaps", false)?
            } else if let Some(fp) = vf["fieldRef"]["fieldPath"].as_str() {
                Some(field_ref(&ctx.pod, fp))
            } else {
                Some(String::new())
            }
        } else {
            Some(expand_vars(
                e["value"].as_str().unwrap_or_default(),
                &user_env,
            ))
        };
        if let Some(v) = value {
            user_env.push((name, v));
        }
    }
    drop(st);
    for (k, v) in user_env {
        let v = rewrite_svc(&rewrite_paths(&placeholders(&v, ctx, spec, &root), &mounts));
        env.retain(|(ek, _)| *ek != k);
        env.push((k, v));
    }

    // Command line.
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let command = strs(&spec["command"]);
    let args = strs(&spec["args"]);
    let mut argv: Vec<String> = if command.is_empty() {
        mapping.command.iter().cloned().chain(args).collect()
    } else {
        command.into_iter().chain(args).collect()
    };
    argv = argv
        .iter()
        .map(|a| {
            rewrite_svc(&rewrite_paths(
                &placeholders(&expand_vars(a, &env), ctx, spec, &root),
                &mounts,
            ))
        })
        .collect();
    if !spec["command"].as_array().is_none_or(|c| c.is_empty()) {
        let prog = argv[0].clone();
        let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_owned();
        let mapped = mapping.command.first().cloned().unwrap_or_default();
        if !(prog.starts_with('/') && Path::new(&prog).exists()) {
            if base(&prog) == base(&mapped) {
                argv[0] = placeholders(&mapped, ctx, spec, &root);
            } else if prog.starts_with('/') {
                argv[0] = base(&prog);
            }
        }
    }
    if argv.is_empty() {
        return Err(("RunContainerError".into(), "no command to run".into()));
    }
    let cwd = match spec["workingDir"].as_str().filter(|w| !w.is_empty()) {
        Some(w) => {
            let p = PathBuf::from(rewrite_paths(w, &mounts));
            if p.is_dir() {
                p
            } else {
                root.join(w.trim_start_matches('/'))
            }
        }
        None => root.clone(),
    };
    std::fs::create_dir_all(&cwd).map_err(io)?;
    let user = run_as(&ctx.pod, spec);
    if let Some((uid, gid)) = user {
        // The process must own its directories: the Pod's and its claims'.
        let mut dirs = vec![ctx.dir.clone()];
        dirs.extend(
            volumes
                .values()
                .filter(|p| p.starts_with(&cfg.root))
                .cloned(),
        );
        for d in dirs {
            chown_tree(&d, uid, gid).map_err(io)?;
        }
    }
    Ok(Launch {
        user,
        argv,
        env,
        cwd,
        root,
        mounts,
    })
}

/// `securityContext.runAsUser`/`runAsGroup` (container over Pod; group defaults to `fsGroup`,
/// then the user), honoured only when the emulator runs as root (else processes run as the
/// emulator's user).
fn run_as(pod: &Value, spec: &Value) -> Option<(u32, u32)> {
    let pick = |k: &str| {
        spec["securityContext"][k]
            .as_u64()
            .or_else(|| pod["spec"]["securityContext"][k].as_u64())
            .and_then(|v| u32::try_from(v).ok())
    };
    let uid = pick("runAsUser")?;
    let gid = pick("runAsGroup")
        .or_else(|| {
            pod["spec"]["securityContext"]["fsGroup"]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
        })
        .unwrap_or(uid);
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        .unwrap_or(false);
    (root && uid != 0).then_some((uid, gid))
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_rewritten_at_boundaries() {
        let mounts = vec![
            ("/conf/stack".to_owned(), "/r/conf/stack".to_owned()),
            ("/data".to_owned(), "/r/data".to_owned()),
        ];
        assert_eq!(
            rewrite_paths("/conf/stack/config.yaml", &mounts),
            "/r/conf/stack/config.yaml"
        );
        assert_eq!(
            rewrite_paths("--config=/conf/stack/c.yaml", &mounts),
            "--config=/r/conf/stack/c.yaml"
        );
        assert_eq!(rewrite_paths("a:/data,b", &mounts), "a:/r/data,b");
        assert_eq!(rewrite_paths("/database", &mounts), "/database");
        assert_eq!(rewrite_paths("x/data", &mounts), "x/data");
        assert_eq!(
            rewrite_paths("cat /data/x && ls /conf/stack", &mounts),
            "cat /r/data/x && ls /r/conf/stack"
        );
    }

    #[test]
    fn var_expansion() {
        let env = vec![("A".to_owned(), "1".to_owned())];
        assert_eq!(expand_vars("x$(A)y$(B)$$(A)", &env), "x1y$(B)$(A)");
    }

    #[test]
    fn placeholder_port_scan() {
        assert_eq!(
            placeholder_ports("--listen 127.0.0.1:{port:8080} {port:9090}"),
            vec![8080, 9090]
        );
    }
}
