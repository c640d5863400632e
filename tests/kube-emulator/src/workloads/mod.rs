//! The workload runner: a kubelet and the workload controllers, running Pods as local processes.
//!
//! Switched on by the test (or `--workload` flags). It has three parts:
//! - [`controllers`]: Deployments, StatefulSets and Jobs create, replace and delete their Pods
//!   and report status, as kube-controller-manager does (Deployments own their Pods directly:
//!   no ReplicaSets).
//! - the kubelet (this module and [`pod`]): binds every Pod to node [`crate::api::NODE_NAME`],
//!   runs its containers as local processes mapped from their images (see [`Mapping`]), runs
//!   probes, restarts containers, writes Pod status, and finishes graceful deletion.
//! - [`proxy`]: Services get a stable local TCP address forwarding to a ready Pod, published in
//!   the annotation [`LOCAL_ADDRESS_ANNOTATION`]; the API server's service proxy uses the same
//!   endpoint selection.
//!
//! All processes are started in their own process group and killed (the whole group) when
//! their Pod is deleted and when the runner shuts down.

pub mod controllers;
pub mod pod;
pub mod proxy;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::api::{Cluster, NODE_NAME, State, name_of, ns_of, uid_of};

/// Annotation on Services: the `host:port` of the Service's first port.
pub const LOCAL_ADDRESS_ANNOTATION: &str = "kube-emulator.quayside.dev/local-address";
/// Annotation on Pods: JSON map from container port number to the local port serving it.
pub const PORTS_ANNOTATION: &str = "kube-emulator.quayside.dev/ports";

/// Maps images to local commands.
///
/// The mapping with the longest matching `image_prefix` applies to a container. Its `command`
/// is the image's entrypoint: the container runs `command + args` when the Pod gives only
/// `args`, and `pod command + args` when the Pod gives `command` (whose first word is then
/// resolved: an existing absolute path is used as is, a word with the same file name as the
/// mapping's program becomes that program, anything else is looked up on `PATH`).
///
/// Placeholders, replaced in the mapping's command, the Pod's command/args and env values:
/// `{port:N}` → the local port allocated for container port `N` (or the port named `N`),
/// `{root}` → the container's root directory (`$KUBE_EMULATOR_ROOT`), `{dir}` → the Pod's
/// directory, `{api}` → the API server's `host:port`.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Image name prefix, e.g. `quay.io/projectquay/quay` or `postgres`.
    pub image_prefix: String,
    /// Entrypoint argv (placeholders allowed), e.g. `["sh", "-c", "exec postgres -D {root}/var/lib/pg"]`.
    pub command: Vec<String>,
}

impl Mapping {
    /// A mapping from an image prefix to an entrypoint.
    pub fn new(
        image_prefix: impl Into<String>,
        command: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            image_prefix: image_prefix.into(),
            command: command.into_iter().map(Into::into).collect(),
        }
    }

    /// Parses `IMAGE_PREFIX=COMMAND` (the binary's `--workload` flag); the command is split on
    /// whitespace, honouring single and double quotes.
    pub fn parse(spec: &str) -> Option<Self> {
        let (image, cmd) = spec.split_once('=')?;
        let words = split_words(cmd);
        if image.is_empty() || words.is_empty() {
            return None;
        }
        Some(Self::new(image, words))
    }
}

fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() || any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() || any {
        out.push(cur);
    }
    out
}

/// Runner settings.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Image mappings.
    pub mappings: Vec<Mapping>,
    /// Directory holding pod directories (`pods/`) and volume claims (`pvcs/`).
    pub root: PathBuf,
    /// Upper bound on probe periods (real defaults of 10 s would slow tests down).
    pub probe_period_cap: Duration,
    /// First restart back-off; doubles per restart up to `backoff_max`.
    pub backoff_base: Duration,
    /// Longest restart back-off.
    pub backoff_max: Duration,
    /// Longest time a stopping container gets between SIGTERM and SIGKILL.
    pub grace_cap: Duration,
    /// Rewrite `svc.ns.svc.cluster.local:PORT`-style addresses to the Services' local addresses.
    pub rewrite_service_addresses: bool,
    /// The API server's `host:port`.
    pub api_address: String,
    /// The API server's URL (`https://host:port`).
    pub api_url: String,
    /// The API server's CA certificate (PEM), when it serves HTTPS.
    pub api_ca_pem: Option<String>,
}

impl RunnerConfig {
    /// The mapping for an image (longest prefix wins).
    pub fn mapping_for(&self, image: &str) -> Option<&Mapping> {
        self.mappings
            .iter()
            .filter(|m| image.starts_with(&m.image_prefix))
            .max_by_key(|m| m.image_prefix.len())
    }
}

/// The running workload runner.
#[derive(Debug)]
pub struct Runner {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) config: RunnerConfig,
    /// Pod workers by pod uid.
    workers: Mutex<HashMap<String, pod::PodHandle>>,
    /// Pods whose worker finished (terminal phase); never restarted.
    finished: Mutex<HashSet<String>>,
    /// Process groups alive right now.
    pub(crate) groups: Mutex<HashSet<u32>>,
    /// Service forwarders.
    pub(crate) services: proxy::Forwarders,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Runner {
    /// Starts the controllers, the kubelet and the service forwarders.
    pub fn start(cluster: Arc<Cluster>, config: RunnerConfig) -> Arc<Self> {
        let runner = Arc::new(Self {
            cluster,
            config,
            workers: Mutex::new(HashMap::new()),
            finished: Mutex::new(HashSet::new()),
            groups: Mutex::new(HashSet::new()),
            services: proxy::Forwarders::default(),
            tasks: Mutex::new(Vec::new()),
        });
        runner.register_node();
        let r = runner.clone();
        let kubelet = tokio::spawn(async move { r.run_loop().await });
        let c = runner.cluster.clone();
        let ctrl = tokio::spawn(async move { controllers::run(c).await });
        lock(&runner.tasks).extend([kubelet, ctrl]);
        runner
    }

    async fn run_loop(self: Arc<Self>) {
        let mut rx = self.cluster.lock().store.subscribe();
        loop {
            self.sync().await;
            tokio::select! {
                r = rx.recv() => {
                    if matches!(r, Err(RecvError::Closed)) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) = rx.try_recv() {}
                }
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// One kubelet pass: bind pods, start and stop workers, maintain service forwarders.
    async fn sync(self: &Arc<Self>) {
        let pods: Vec<Arc<Value>> = {
            let st = self.cluster.lock();
            let rt = st.rt("", "pods");
            st.store.list(&rt.store_key(), None)
        };
        let live: HashSet<String> = pods.iter().map(|p| uid_of(p).to_owned()).collect();
        for p in &pods {
            let uid = uid_of(p).to_owned();
            let deleting = p["metadata"]["deletionTimestamp"].is_string();
            let running = lock(&self.workers).contains_key(&uid);
            if deleting {
                if running {
                    if let Some(h) = lock(&self.workers).get(&uid) {
                        h.stop(true);
                    }
                } else {
                    let mut st = self.cluster.lock();
                    let rt = st.rt("", "pods");
                    st.purge(&rt, ns_of(p), name_of(p));
                }
                continue;
            }
            if running || lock(&self.finished).contains(&uid) {
                continue;
            }
            if matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
                continue;
            }
            if !p["spec"]["nodeName"].is_string() {
                self.bind(p);
            }
            let handle = pod::PodHandle::spawn(self.clone(), (**p).clone());
            lock(&self.workers).insert(uid, handle);
        }
        // Pods removed without graceful deletion (gracePeriodSeconds=0): stop their processes.
        let gone: Vec<String> = lock(&self.workers)
            .keys()
            .filter(|u| !live.contains(*u))
            .cloned()
            .collect();
        for uid in gone {
            if let Some(h) = lock(&self.workers).get(&uid) {
                h.stop(false);
            }
        }
        proxy::sync_services(self).await;
    }

    /// Creates the one Node Pods are bound to, `Ready`.
    fn register_node(&self) {
        let mut st = self.cluster.lock();
        let rt = st.rt("", "nodes");
        let opts = crate::api::WriteOptions::controller("kubelet");
        let node = json!({"metadata": {"name": NODE_NAME, "labels": {
            "kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux"}}});
        if st.create(&rt, "", node, &opts).is_ok() {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let status = json!({
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kube-emulator runs pods as local processes",
                    "lastHeartbeatTime": now, "lastTransitionTime": now}],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE_NAME}],
                "nodeInfo": {"kubeletVersion": "v1.37.0-kube-emulator", "operatingSystem": "linux",
                    "architecture": std::env::consts::ARCH, "containerRuntimeVersion": "kube-emulator://local-processes"},
            });
            let _ = st.set_status(&rt, "", NODE_NAME, status, "kubelet");
        }
    }

    fn bind(&self, p: &Value) {
        let mut st = self.cluster.lock();
        let rt = st.rt("", "pods");
        let Some(cur) = st.find(&rt, ns_of(p), name_of(p)) else {
            return;
        };
        let mut new = (*cur).clone();
        new["spec"]["nodeName"] = json!(NODE_NAME);
        let _ = st.controller_update(&rt, new, "kube-scheduler");
    }

    /// Called by a pod worker when it has stopped.
    pub(crate) fn worker_done(&self, uid: &str, terminal: bool) {
        lock(&self.workers).remove(uid);
        if terminal {
            lock(&self.finished).insert(uid.to_owned());
        }
    }

    /// The directory of a Pod (by namespace, name and uid).
    pub fn pod_dir(&self, ns: &str, pod: &str, uid: &str) -> PathBuf {
        self.config
            .root
            .join("pods")
            .join(format!("{ns}_{pod}_{}", &uid[..uid.len().min(8)]))
    }

    /// The log file of a Pod's container.
    pub fn log_path(&self, ns: &str, pod: &str, uid: &str, container: &str) -> PathBuf {
        self.pod_dir(ns, pod, uid)
            .join("logs")
            .join(format!("{container}.log"))
    }

    /// What a Pod's container wrote so far, optionally only the last `tail` lines.
    pub fn logs(
        &self,
        ns: &str,
        pod: &str,
        uid: &str,
        container: &str,
        tail: Option<usize>,
    ) -> String {
        let text =
            std::fs::read_to_string(self.log_path(ns, pod, uid, container)).unwrap_or_default();
        match tail {
            Some(n) => {
                let lines: Vec<&str> = text.lines().collect();
                let start = lines.len().saturating_sub(n);
                lines[start..].iter().map(|l| format!("{l}\n")).collect()
            }
            None => text,
        }
    }

    /// Kills every process group and stops all tasks. Synchronous, so it can run in `Drop`.
    pub fn shutdown(&self) {
        for h in lock(&self.tasks).drain(..) {
            h.abort();
        }
        for (_, h) in lock(&self.workers).drain() {
            h.abort();
        }
        let groups: Vec<u32> = lock(&self.groups).drain().collect();
        for g in groups {
            pod::kill_group(g, "KILL");
        }
        self.services.shutdown();
    }
}

/// Locks a std mutex, ignoring poisoning (the data stays usable).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pods (non-terminating) selected by a label selector map in a namespace.
pub(crate) fn ready_pods(
    st: &State,
    ns: &str,
    selector: &serde_json::Map<String, Value>,
) -> Vec<Arc<Value>> {
    let rt = st.rt("", "pods");
    let sel = crate::selector::LabelSelector::from_map(selector);
    st.store
        .list(&rt.store_key(), Some(ns))
        .into_iter()
        .filter(|p| {
            sel.matches(p) && !p["metadata"]["deletionTimestamp"].is_string() && pod_ready(p)
        })
        .collect()
}

/// Whether a Pod's `Ready` condition is `True`.
pub fn pod_ready(p: &Value) -> bool {
    p["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_parse_and_longest_prefix() {
        let m = Mapping::parse("postgres=sh -c 'exec postgres -D {root}/data'").unwrap();
        assert_eq!(m.command, vec!["sh", "-c", "exec postgres -D {root}/data"]);
        let cfg = RunnerConfig {
            mappings: vec![
                Mapping::new("quay.io/", ["a"]),
                Mapping::new("quay.io/projectquay/quay", ["b"]),
            ],
            root: PathBuf::new(),
            probe_period_cap: Duration::from_secs(1),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(1),
            grace_cap: Duration::from_secs(1),
            rewrite_service_addresses: true,
            api_address: String::new(),
            api_url: String::new(),
            api_ca_pem: None,
        };
        assert_eq!(
            cfg.mapping_for("quay.io/projectquay/quay:3.12")
                .unwrap()
                .command,
            vec!["b"]
        );
        assert_eq!(cfg.mapping_for("quay.io/other").unwrap().command, vec!["a"]);
        assert!(cfg.mapping_for("docker.io/x").is_none());
        assert!(Mapping::parse("nocommand=").is_none());
    }
}
