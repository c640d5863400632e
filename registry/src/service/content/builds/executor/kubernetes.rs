//! The `kubernetes` executor: one `batch/v1` Job per attempt in `BUILDER_NAMESPACE`, made with
//! kube-rs (the client the operator uses).
//!
//! Rules: the Job runs `quayside builder` from `WORKER_IMAGE:WORKER_TAG` (default
//! `quay.io/quayside/quayside:latest`) with the manager's URL; the build token is in a Secret of
//! its own (owned by the Job, so it goes with it), never in the Job's spec. Labels
//! `app.kubernetes.io/managed-by: quayside`, `app.kubernetes.io/component: builder`,
//! `quayside.dev/build: <uuid>`; resources from `CONTAINER_{MEMORY,CPU}_{LIMITS,REQUEST}`
//! (Quay's defaults 5120Mi / 1000m / 3968Mi / 500m); `NODE_SELECTOR_LABEL_KEY`/`_VALUE`;
//! `SERVICE_ACCOUNT_NAME`; the work directory an `emptyDir` of `VOLUME_SIZE`; no Job retries
//! (`backoffLimit: 0`: the manager restarts lost attempts) and `ttlSecondsAfterFinished`
//! (unless `DEBUG`) so nothing is left behind if the manager is gone. The API server is
//! `K8S_API_SERVER` with `K8S_API_TLS_CA` and `SERVICE_ACCOUNT_TOKEN` (each, when unset, from
//! the pod's mounted service account if there is one), or the in-cluster configuration without
//! a server. [`stop`] deletes the Job (its pods and Secret with it) unless
//! `DEBUG`.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use serde_json::json;

use crate::config::ExecutorConfig;
use crate::db::content::builds::BuildRow;
use crate::service::Ctx;

/// Seconds a finished Job stays (for its logs) before Kubernetes removes it.
const TTL_AFTER_FINISHED_S: i64 = 600;

async fn client(executor: &ExecutorConfig) -> Result<kube::Client, String> {
    let config = match executor.setting("K8S_API_SERVER") {
        None => kube::Config::incluster().map_err(|e| format!("in-cluster configuration: {e}"))?,
        Some(server) => {
            let url = if server.contains("://") {
                server
            } else {
                format!("https://{server}")
            };
            let uri: http::Uri = url
                .parse()
                .map_err(|e| format!("K8S_API_SERVER {url:?}: {e}"))?;
            let mut config = kube::Config::new(uri);
            // In a pod, what the executor leaves unset comes from the pod's service account
            // (as the operator's managed builder writes only the in-cluster server).
            let ca = executor.setting("K8S_API_TLS_CA").or_else(|| {
                let f = format!("{SERVICE_ACCOUNT_DIR}/ca.crt");
                std::path::Path::new(&f).exists().then_some(f)
            });
            let token = executor.setting("SERVICE_ACCOUNT_TOKEN").or_else(|| {
                std::fs::read_to_string(format!("{SERVICE_ACCOUNT_DIR}/token"))
                    .ok()
                    .map(|t| t.trim().to_owned())
            });
            if let Some(ca) = ca {
                let pem = std::fs::read(&ca).map_err(|e| format!("K8S_API_TLS_CA {ca}: {e}"))?;
                let certs = rustls_pemfile::certs(&mut pem.as_slice())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("K8S_API_TLS_CA {ca}: {e}"))?;
                config.root_cert = Some(certs.into_iter().map(|c| c.to_vec()).collect());
            }
            if let Some(token) = token {
                let value = http::HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| "SERVICE_ACCOUNT_TOKEN is not a header value".to_owned())?;
                config.headers.push((http::header::AUTHORIZATION, value));
            }
            config
        }
    };
    kube::Client::try_from(config).map_err(|e| format!("kubernetes client: {e}"))
}

/// Where a pod's service-account token and CA are mounted.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn namespace(executor: &ExecutorConfig) -> String {
    executor
        .setting("BUILDER_NAMESPACE")
        .unwrap_or_else(|| "default".into())
}

/// The Job of an attempt (and its token's Secret, of the same name).
pub fn job_spec(
    ctx: &Ctx,
    executor: &ExecutorConfig,
    row: &BuildRow,
    name: &str,
) -> serde_json::Value {
    let setting =
        |key: &str, default: &str| executor.setting(key).unwrap_or_else(|| default.to_owned());
    let image = format!(
        "{}:{}",
        setting("WORKER_IMAGE", "quay.io/quayside/quayside"),
        setting("WORKER_TAG", "latest")
    );
    let labels = json!({
        "app.kubernetes.io/managed-by": "quayside",
        "app.kubernetes.io/component": "builder",
        "quayside.dev/build": row.uuid,
    });
    let mut pod = json!({
        "restartPolicy": "Never",
        "automountServiceAccountToken": false,
        "containers": [{
            "name": "builder",
            "image": image,
            "command": ["quayside", "builder", "--manager", super::manager_url(ctx), "--work-dir", "/work"],
            "env": [{
                "name": "QUAYSIDE_BUILD_TOKEN",
                "valueFrom": { "secretKeyRef": { "name": name, "key": "token" } },
            }],
            "resources": {
                "limits": {
                    "memory": setting("CONTAINER_MEMORY_LIMITS", "5120Mi"),
                    "cpu": setting("CONTAINER_CPU_LIMITS", "1000m"),
                },
                "requests": {
                    "memory": setting("CONTAINER_MEMORY_REQUEST", "3968Mi"),
                    "cpu": setting("CONTAINER_CPU_REQUEST", "500m"),
                },
            },
            "volumeMounts": [{ "name": "work", "mountPath": "/work" }],
        }],
        "volumes": [{ "name": "work", "emptyDir": { "sizeLimit": setting("VOLUME_SIZE", "8G") } }],
    });
    if let (Some(key), Some(value)) = (
        executor.setting("NODE_SELECTOR_LABEL_KEY"),
        executor.setting("NODE_SELECTOR_LABEL_VALUE"),
    ) {
        pod["nodeSelector"] = json!({ key: value });
    }
    if let Some(account) = executor.setting("SERVICE_ACCOUNT_NAME") {
        pod["serviceAccountName"] = json!(account);
    }
    let mut spec = json!({
        "backoffLimit": 0,
        "template": { "metadata": { "labels": labels }, "spec": pod },
    });
    if !executor.debug {
        spec["ttlSecondsAfterFinished"] = json!(TTL_AFTER_FINISHED_S);
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": name, "labels": labels },
        "spec": spec,
    })
}

pub async fn start(
    ctx: &Ctx,
    executor: &ExecutorConfig,
    row: &BuildRow,
    token: &str,
) -> Result<String, String> {
    let client = client(executor).await?;
    let ns = namespace(executor);
    let short: String = row.uuid.chars().filter(|c| *c != '-').take(12).collect();
    let name = format!(
        "quayside-build-{short}-{}",
        crate::service::random_token(5).to_ascii_lowercase()
    );
    let job: Job = serde_json::from_value(job_spec(ctx, executor, row, &name))
        .map_err(|e| format!("job spec: {e}"))?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let created = jobs
        .create(&PostParams::default(), &job)
        .await
        .map_err(|e| format!("creating Job {ns}/{name}: {e}"))?;
    let uid = created.metadata.uid.clone().unwrap_or_default();
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "labels": created.metadata.labels,
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid,
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "stringData": { "token": token },
    }))
    .map_err(|e| format!("secret spec: {e}"))?;
    let secrets: Api<Secret> = Api::namespaced(client, &ns);
    if let Err(e) = secrets.create(&PostParams::default(), &secret).await {
        let _ = jobs.delete(&name, &DeleteParams::background()).await;
        return Err(format!("creating Secret {ns}/{name}: {e}"));
    }
    tracing::info!(build = %row.uuid, job = %format!("{ns}/{name}"), "created a builder Job");
    Ok(format!("kubernetes:{ns}/{name}"))
}

pub async fn stop(_ctx: &Ctx, executor: &ExecutorConfig, reference: &str) -> Result<(), String> {
    if executor.debug {
        return Ok(());
    }
    let Some((ns, name)) = reference
        .strip_prefix("kubernetes:")
        .and_then(|r| r.split_once('/'))
    else {
        return Ok(());
    };
    let client = client(executor).await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match jobs.delete(name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(format!("deleting Job {ns}/{name}: {e}")),
    }
    // The Secret goes with its owner; delete it too where garbage collection is slow.
    let secrets: Api<Secret> = Api::namespaced(client, ns);
    match secrets.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(format!("deleting Secret {ns}/{name}: {e}")),
    }
}
