//! The workload runner: Deployments, Jobs and StatefulSets become local processes.

use std::time::Duration;

use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams};
use kube_emulator::{Emulator, LOCAL_ADDRESS_ANNOTATION, Mapping};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::eventually;

const WAIT: Duration = Duration::from_secs(20);

async fn emulator() -> Emulator {
    Emulator::builder()
        .workload(Mapping::new(
            "python",
            [
                "python3",
                "-m",
                "http.server",
                "{port:8080}",
                "--bind",
                "127.0.0.1",
            ],
        ))
        .workload(Mapping::new("busybox", ["sh"]))
        .restart_backoff(Duration::from_millis(200), Duration::from_secs(1))
        .start()
        .await
        .unwrap()
}

async fn apply<K>(api: &Api<K>, name: &str, obj: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(obj),
    )
    .await
    .unwrap()
}

async fn ready_pods(pods: &Api<Pod>, selector: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .collect()
}

async fn http_get(addr: &str) -> String {
    http_get_path(addr, "/").await
}

async fn http_get_path(addr: &str, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn deployment_serves_through_the_service_restarts_and_rolls() {
    let emu = emulator().await;
    let client = emu.client();
    let deploys: Api<Deployment> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let svcs: Api<Service> = Api::default_namespaced(client.clone());
    let web = |env: &str| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
                    "name": "http", "image": "python:3.12", "env": [{"name": "V", "value": env}],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}}]}}}
        })
    };
    apply(&deploys, "web", web("1")).await;
    apply(&svcs, "web", json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})).await;

    let d = eventually("Deployment Available", WAIT, || async {
        let d = deploys.get("web").await.unwrap();
        let st = d.status.clone()?;
        let available = st.conditions.as_ref()?.iter().any(|c| {
            c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True")
        });
        (available && st.ready_replicas == Some(1) && st.available_replicas == Some(1)).then_some(d)
    })
    .await;
    let st = d.status.unwrap();
    assert_eq!(
        (st.replicas, st.updated_replicas, st.observed_generation),
        (Some(1), Some(1), d.metadata.generation)
    );

    // Through the API server's service proxy, as kube-rs builds the URL.
    let body = client
        .request_text(
            http::Request::get("/api/v1/namespaces/default/services/web:http/proxy/")
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(body.contains("Directory listing"), "{body}");
    let body = client
        .request_text(
            http::Request::get("/api/v1/namespaces/default/services/http:web:80/proxy/")
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(body.contains("Directory listing"), "{body}");
    // Directly, at the address the Service announces.
    let svc = eventually("local address annotation", WAIT, || async {
        let s = svcs.get("web").await.unwrap();
        s.metadata
            .annotations
            .as_ref()?
            .get(LOCAL_ADDRESS_ANNOTATION)
            .cloned()
    })
    .await;
    assert_eq!(
        Some(svc.parse().unwrap()),
        emu.service_address("default", "web", None)
    );
    assert!(http_get(&svc).await.starts_with("HTTP/1.0 200"));

    // Inside pods, Service DNS addresses reach the Service; ports and identity are provided.
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let script = "echo port=$KUBE_EMULATOR_PORT_9000; grep -q \"token: kube-emulator-sa.default.default\" $KUBECONFIG && echo identity-ok; \
        python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).status)' $TARGET";
    apply(&jobs, "client", json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "client"},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [{
            "name": "c", "image": "busybox", "command": ["sh", "-c", script], "ports": [{"containerPort": 9000}],
            "env": [{"name": "TARGET", "value": "http://web.default.svc.cluster.local:80/"}]}]}}}})).await;
    eventually("client job complete", WAIT, || async {
        let conds = jobs.get("client").await.unwrap().status?.conditions?;
        conds
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
            .then_some(())
    })
    .await;
    let client_pod = pods
        .list(&ListParams::default().labels("job-name=client"))
        .await
        .unwrap()
        .items
        .remove(0);
    let out = pods
        .logs(&client_pod.metadata.name.unwrap(), &LogParams::default())
        .await
        .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("port=") && lines[0].len() > 6, "{out}");
    assert_eq!(&lines[1..], ["identity-ok", "200"], "{out}");

    // The process dies: the container restarts and becomes ready again.
    let pod = ready_pods(&pods, "app=web").await.remove(0);
    let cs = pod.status.unwrap().container_statuses.unwrap().remove(0);
    let pid = cs
        .container_id
        .unwrap()
        .trim_start_matches("kube-emulator://")
        .to_owned();
    std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    let name = pod.metadata.name.unwrap();
    eventually("container restarted and ready", WAIT, || async {
        let p = pods.get(&name).await.unwrap();
        let cs = p.status.as_ref()?.container_statuses.as_ref()?[0].clone();
        (cs.restart_count == 1 && cs.ready && cs.last_state.as_ref()?.terminated.is_some())
            .then_some(())
    })
    .await;
    assert!(
        emu.pod_logs("default", &name, Some("http"))
            .contains("GET / HTTP/1.1")
    );
    let logs = pods.logs(&name, &LogParams::default()).await.unwrap();
    assert!(logs.contains("GET /"), "{logs}");

    // Following the log sees new output as it is written.
    let mut lines = pods
        .log_stream(
            &name,
            &LogParams {
                follow: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .lines();
    http_get_path(&svc, "/follow-marker").await;
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next().await {
            if line.unwrap().contains("/follow-marker") {
                return;
            }
        }
        panic!("log stream ended before the marker");
    })
    .await
    .expect("marker in the followed log");

    // A changed pod template rolls the pods.
    apply(&deploys, "web", web("2")).await;
    eventually("pods rolled", WAIT, || async {
        let ready = ready_pods(&pods, "app=web").await;
        let all = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items;
        let rolled = ready.len() == 1
            && all.len() == 1
            && ready[0].metadata.name.as_deref() != Some(name.as_str());
        let d = deploys.get("web").await.unwrap();
        let st = d.status?;
        (rolled
            && st.updated_replicas == Some(1)
            && st.available_replicas == Some(1)
            && st.observed_generation == d.metadata.generation)
            .then_some(())
    })
    .await;
    assert!(
        http_get(&svc).await.starts_with("HTTP/1.0 200"),
        "the Service address follows the new pod"
    );

    // The node pods are bound to.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let node = nodes.get("kube-emulator").await.unwrap();
    assert!(
        node.status
            .unwrap()
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    assert_eq!(
        pods.get(&name)
            .await
            .map(|p| p.spec.unwrap().node_name)
            .ok()
            .flatten()
            .as_deref()
            .unwrap_or("kube-emulator"),
        "kube-emulator"
    );

    // Scaling.
    deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    eventually("two ready pods", WAIT, || async {
        (ready_pods(&pods, "app=web").await.len() == 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn jobs_volumes_env_and_statefulsets() {
    let emu = emulator().await;
    let client = emu.client();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(client.clone());
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    apply(&cms, "conf", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf"}, "data": {"app.conf": "color=blue\n", "mode": "fast"}})).await;
    apply(&secrets, "creds", json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"greeting": "hi there"}})).await;
    apply(
        &pvcs,
        "data",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    )
    .await;
    assert_eq!(
        pvcs.get("data")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Bound")
    );

    let job = |name: &str, script: &str| {
        json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 1, "template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "main", "image": "busybox:1.36", "command": ["sh", "-c", script],
                "env": [{"name": "GREETING", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "greeting"}}},
                        {"name": "MSG", "value": "$(GREETING)!"},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "envFrom": [{"configMapRef": {"name": "conf"}, "prefix": "CONF_"}],
                "volumeMounts": [{"name": "conf", "mountPath": "/etc/app"}, {"name": "data", "mountPath": "/var/data"}]}],
                "volumes": [{"name": "conf", "configMap": {"name": "conf"}}, {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}}
        })
    };
    let finished = |name: &'static str| {
        let jobs = jobs.clone();
        async move {
            eventually("job finished", WAIT, || async {
                let j = jobs.get(name).await.unwrap();
                let conds = j.status.clone()?.conditions?;
                conds
                    .iter()
                    .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
                    .map(|c| (c.type_.clone(), j.clone()))
            })
            .await
        }
    };
    let logs_of = |job: &'static str| {
        let pods = pods.clone();
        async move {
            let p = pods
                .list(&ListParams::default().labels(&format!("job-name={job}")))
                .await
                .unwrap()
                .items
                .remove(0);
            pods.logs(&p.metadata.name.unwrap(), &LogParams::default())
                .await
                .unwrap()
        }
    };

    apply(&jobs, "writer", job("writer", "echo \"$MSG $POD $CONF_mode\"; cat /etc/app/app.conf | tee /var/data/out; echo persisted >> /var/data/out")).await;
    let (kind, j) = finished("writer").await;
    assert_eq!(kind, "Complete", "{}", logs_of("writer").await);
    assert_eq!(j.status.unwrap().succeeded, Some(1));
    let out = logs_of("writer").await;
    assert!(
        out.starts_with("hi there! writer-") && out.contains(" fast\ncolor=blue"),
        "{out}"
    );

    // The claim's data outlives the pod: a second job reads it.
    apply(&jobs, "reader", job("reader", "cat /var/data/out")).await;
    assert_eq!(finished("reader").await.0, "Complete");
    assert_eq!(logs_of("reader").await, "color=blue\npersisted\n");

    // runAsUser: the process runs as that user (when the emulator is root) and owns its claim.
    let mut as_nobody = job(
        "nobody",
        "id -u; echo x > /var/data/by-nobody && echo wrote",
    );
    as_nobody["spec"]["template"]["spec"]["securityContext"] =
        json!({"runAsUser": 65534, "runAsGroup": 65534});
    apply(&jobs, "nobody", as_nobody).await;
    assert_eq!(
        finished("nobody").await.0,
        "Complete",
        "{}",
        logs_of("nobody").await
    );
    let am_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    let expected_uid = if am_root {
        "65534".to_owned()
    } else {
        String::from_utf8(
            std::process::Command::new("id")
                .arg("-u")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .to_owned()
    };
    assert_eq!(logs_of("nobody").await, format!("{expected_uid}\nwrote\n"));

    // A failing job gives up after backoffLimit.
    apply(&jobs, "failing", job("failing", "exit 3")).await;
    let (kind, j) = finished("failing").await;
    assert_eq!(kind, "Failed");
    assert_eq!(j.status.unwrap().failed, Some(2));

    // StatefulSets: ordered pods with their own claims.
    let stss: Api<StatefulSet> = Api::default_namespaced(client.clone());
    apply(&stss, "db", json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "busybox",
                "command": ["sh", "-c", "echo $HOSTNAME > /data/host; exec sleep 600"],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})).await;
    eventually("statefulset ready", WAIT, || async {
        let s = stss.get("db").await.unwrap().status?;
        (s.ready_replicas == Some(2) && s.replicas == 2).then_some(())
    })
    .await;
    assert!(pods.get("db-0").await.is_ok() && pods.get("db-1").await.is_ok());
    assert_eq!(
        pvcs.get("data-db-1")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Bound")
    );
}

#[tokio::test]
async fn liveness_failures_restart_and_deletion_kills_the_process() {
    let emu = emulator().await;
    let pods: Api<Pod> = Api::default_namespaced(emu.client());
    apply(&pods, "live", json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "live"},
        "spec": {"containers": [{"name": "http", "image": "python:3", "ports": [{"containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/does-not-exist", "port": 8080},
                "initialDelaySeconds": 1, "periodSeconds": 1, "failureThreshold": 1}}]}})).await;
    let cs = eventually("liveness restart", WAIT, || async {
        let p = pods.get("live").await.unwrap();
        let cs = p.status?.container_statuses?.remove(0);
        (cs.restart_count >= 1).then_some(cs)
    })
    .await;
    let last = cs.last_state.unwrap().terminated.unwrap();
    assert_eq!(last.exit_code, 137);
    assert_eq!(
        pods.get("live")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Running")
    );

    // Deleting the pod stops its process, then the object goes.
    let pid = eventually("running container", WAIT, || async {
        let cs = pods
            .get("live")
            .await
            .unwrap()
            .status?
            .container_statuses?
            .remove(0);
        cs.state?.running?;
        cs.container_id
            .map(|id| id.trim_start_matches("kube-emulator://").to_owned())
    })
    .await;
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    pods.delete("live", &Default::default()).await.unwrap();
    eventually("pod gone", WAIT, || async {
        pods.get_opt("live").await.unwrap().is_none().then_some(())
    })
    .await;
    eventually("process gone", WAIT, || async {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        (status.is_empty() || status.contains("State:\tZ")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn dropping_the_emulator_kills_its_processes() {
    let emu = emulator().await;
    let pods: Api<Pod> = Api::default_namespaced(emu.client());
    // A shell with a child: the whole process group must go.
    apply(&pods, "tree", json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tree"},
        "spec": {"containers": [{"name": "sh", "image": "busybox", "command": ["sh", "-c", "sleep 300 & wait"]}]}})).await;
    let pid = eventually("running container", WAIT, || async {
        let cs = pods
            .get("tree")
            .await
            .unwrap()
            .status?
            .container_statuses?
            .remove(0);
        cs.state?.running?;
        cs.container_id
            .map(|id| id.trim_start_matches("kube-emulator://").to_owned())
    })
    .await;
    let children = eventually("child process", WAIT, || async {
        let c =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        (!c.trim().is_empty()).then(|| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    })
    .await;
    drop(emu);
    for p in std::iter::once(pid).chain(children) {
        eventually("process gone after drop", WAIT, || async {
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
            (status.is_empty() || status.contains("State:\tZ")).then_some(())
        })
        .await;
    }
}

/// `terminationMessagePolicy: FallbackToLogsOnError`: a failed container's last state carries
/// the tail of its log, which is how an operator explains a crash without reading pod logs.
#[tokio::test]
async fn a_failed_container_reports_its_log_tail_as_termination_message() {
    let emu = emulator().await;
    let pods: Api<Pod> = Api::default_namespaced(emu.client());
    for (name, policy) in [("fails", "FallbackToLogsOnError"), ("quiet", "File")] {
        apply(&pods, name, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox",
                "terminationMessagePolicy": policy,
                "command": ["sh", "-c", "echo starting; echo 'storage: connection refused' >&2; exit 3"]}]}}))
        .await;
    }
    for (name, expected) in [
        ("fails", Some("starting\nstorage: connection refused")),
        ("quiet", None),
    ] {
        let t = eventually("container terminated", WAIT, || async {
            let p = pods.get(name).await.unwrap();
            p.status?.container_statuses?.remove(0).state?.terminated
        })
        .await;
        assert_eq!(t.exit_code, 3);
        assert_eq!(t.message.as_deref(), expected, "{name}");
    }
}
