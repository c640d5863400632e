//! The registry: its ServiceAccount, Service, PodDisruptionBudget and Deployment
//! (`<name>-quay-app`), where it listens, and the pieces every workload running the registry
//! image shares (container with the configuration and data mounted, volumes, pod security,
//! Deployment). Also the registry's endpoint for the status.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, HTTPGetAction,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, Probe, SecretVolumeSource, Service,
    ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::{PodParts, default_security_context, env_var, requests};
use super::{
    ApplyMode, Builder, CONFIG_DIR, DATASTORAGE_DIR, Expectation, SCRATCH_DIR, image_version,
};
use crate::controllers::quayregistry::config::CONFIG_FILE;
use crate::controllers::quayregistry::kinds;
use crate::controllers::quayregistry::names::CONFIG_HASH_ANNOTATION;
use crate::controllers::quayregistry::validate::TlsSource;
use crate::crd::ComponentKind;

/// Where the registry listens: HTTPS on 8443 (Service port 443) when it has a certificate,
/// HTTP on 8080 (Service port 80) otherwise.
#[derive(Clone, Copy, Debug)]
pub(super) struct Listener {
    pub(super) https: bool,
    /// Name of the container and Service port (`https` or `http`).
    pub(super) port_name: &'static str,
    pub(super) container_port: i32,
    pub(super) service_port: i32,
}

impl Listener {
    pub(super) fn of(tls: &TlsSource) -> Self {
        let https = tls.serves_https();
        let (port_name, container_port, service_port) = if https {
            ("https", 8443, 443)
        } else {
            ("http", 8080, 80)
        };
        Listener {
            https,
            port_name,
            container_port,
            service_port,
        }
    }

    pub(super) fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }
}

impl Builder<'_> {
    /// The registry's ServiceAccount, Service and PodDisruptionBudget.
    pub(super) fn registry_service(&mut self, listener: &Listener) -> anyhow::Result<()> {
        let names = self.plan.names();
        let ns = self.plan.namespace.as_str();
        let quay = Some(ComponentKind::Quay);
        let sa = ServiceAccount {
            metadata: self.meta(&names.quay_app(), ns, "quay-app", quay),
            ..Default::default()
        };
        self.push(kinds::service_account(), &sa, ApplyMode::Apply)?;
        let service = Service {
            metadata: self.meta(&names.quay_app(), ns, "quay-app", quay),
            spec: Some(ServiceSpec {
                selector: Some(names.selector("quay-app")),
                ports: Some(vec![ServicePort {
                    name: Some(listener.port_name.into()),
                    port: listener.service_port,
                    target_port: Some(IntOrString::String(listener.port_name.into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                type_: Some("ClusterIP".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.push(kinds::service(), &service, ApplyMode::Apply)?;
        let pdb = PodDisruptionBudget {
            metadata: self.meta(&names.quay_app(), ns, "quay-app", quay),
            spec: Some(PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString::Int(1)),
                selector: Some(LabelSelector {
                    match_labels: Some(names.selector("quay-app")),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.push(kinds::pdb(), &pdb, ApplyMode::Apply)
    }

    /// The registry Deployment, or while `hold`, the live one kept as it is. Returns what it
    /// should end up as either way.
    pub(super) fn registry(
        &mut self,
        listener: &Listener,
        config_hash: &str,
        hold: bool,
    ) -> anyhow::Result<Expectation> {
        let name = self.plan.names().quay_app();
        let quay = self.expectation(&name, ComponentKind::Quay, config_hash);
        if hold {
            self.hold_deployment(&name);
            return Ok(quay);
        }
        let image = &self.settings.registry_image;
        let mut args: Vec<String> = ["serve", "--config"].map(String::from).to_vec();
        args.push(format!("{CONFIG_DIR}/{CONFIG_FILE}"));
        let mut env = vec![env_var(
            "QUAYSIDE_LISTEN",
            &format!("0.0.0.0:{}", listener.container_port),
        )];
        env.push(env_var("QUAY_VERSION", &image_version(image)));
        let mut container = self.registry_container("quay-app", image, args, env);
        container.ports = Some(vec![ContainerPort {
            name: Some(listener.port_name.into()),
            container_port: listener.container_port,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]);
        container.startup_probe = Some(health_probe(listener, 5, 60));
        container.readiness_probe = Some(health_probe(listener, 10, 3));
        container.liveness_probe = Some(health_probe(listener, 15, 4));
        let d = self.deployment(
            &name,
            "quay-app",
            ComponentKind::Quay,
            quay.replicas,
            config_hash,
            container,
        );
        self.push(kinds::deployment(), &d, ApplyMode::Apply)?;
        Ok(quay)
    }

    /// What the Deployment `name` of `kind` should end up as.
    pub(super) fn expectation(
        &self,
        name: &str,
        kind: ComponentKind,
        config_hash: &str,
    ) -> Expectation {
        Expectation {
            name: name.to_owned(),
            image: self.settings.registry_image.clone(),
            config_hash: config_hash.to_owned(),
            replicas: self.replicas(kind),
        }
    }

    /// The replica count of `kind`, `None` when an HPA owns it.
    fn replicas(&self, kind: ComponentKind) -> Option<i32> {
        if self.plan.is_managed(ComponentKind::Horizontalpodautoscaler) {
            None
        } else {
            Some(self.plan.overrides(kind).replicas.unwrap_or(1))
        }
    }

    /// A container running the registry image with the configuration mounted.
    pub(super) fn registry_container(
        &self,
        name: &str,
        image: &str,
        mut args: Vec<String>,
        env: Vec<EnvVar>,
    ) -> Container {
        let managed_storage = self.plan.is_managed(ComponentKind::Objectstorage);
        let data_dir = if managed_storage {
            DATASTORAGE_DIR
        } else {
            SCRATCH_DIR
        };
        args.push("--data-dir".into());
        args.push(data_dir.into());
        Container {
            name: name.into(),
            image: Some(image.into()),
            args: Some(args),
            env: Some(env),
            volume_mounts: Some(vec![
                VolumeMount {
                    name: "config".into(),
                    mount_path: CONFIG_DIR.into(),
                    read_only: Some(true),
                    ..Default::default()
                },
                VolumeMount {
                    name: "data".into(),
                    mount_path: data_dir.into(),
                    ..Default::default()
                },
            ]),
            resources: Some(requests("250m", "512Mi")),
            security_context: Some(default_security_context()),
            // A registry that fails to start says why in its status (the end of its log),
            // which the QuayRegistry conditions repeat.
            termination_message_policy: Some("FallbackToLogsOnError".into()),
            ..Default::default()
        }
    }

    /// The configuration Secret and the data directory (the object storage claim, else an
    /// emptyDir).
    pub(super) fn registry_volumes(&self) -> Vec<Volume> {
        let names = self.plan.names();
        let data = if self.plan.is_managed(ComponentKind::Objectstorage) {
            Volume {
                name: "data".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: names.datastorage(),
                    ..Default::default()
                }),
                ..Default::default()
            }
        } else {
            Volume {
                name: "data".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            }
        };
        vec![
            Volume {
                name: "config".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(names.quay_config()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            data,
        ]
    }

    pub(super) fn registry_pod_security() -> PodSecurityContext {
        PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(1001),
            run_as_group: Some(1001),
            fs_group: Some(1001),
            ..Default::default()
        }
    }

    /// A Deployment of the registry image whose pods carry `config_hash`.
    pub(super) fn deployment(
        &self,
        name: &str,
        component: &str,
        kind: ComponentKind,
        replicas: Option<i32>,
        config_hash: &str,
        container: Container,
    ) -> Deployment {
        let names = self.plan.names();
        let template = self.pod_template(
            component,
            kind,
            container,
            PodParts {
                volumes: self.registry_volumes(),
                annotations: BTreeMap::from([(
                    CONFIG_HASH_ANNOTATION.to_owned(),
                    config_hash.to_owned(),
                )]),
                service_account: Some(names.quay_app()),
                security: Self::registry_pod_security(),
            },
        );
        Deployment {
            metadata: self.meta(name, &self.plan.namespace, component, Some(kind)),
            spec: DeploymentSpec {
                replicas,
                selector: LabelSelector {
                    match_labels: Some(names.selector(component)),
                    ..Default::default()
                },
                template,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Where clients reach the registry: the public host, else the Service in the cluster.
    pub(super) fn endpoint(&self, listener: &Listener) -> String {
        let scheme = listener.scheme();
        match &self.plan.host {
            Some(h) => format!("{scheme}://{h}"),
            None => format!(
                "{scheme}://{}.{}.svc.{}",
                self.plan.names().quay_app(),
                self.plan.namespace,
                self.settings.cluster_domain
            ),
        }
    }
}

/// A probe of `/health/instance` on the registry's port, with its scheme.
fn health_probe(listener: &Listener, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/health/instance".into()),
            port: IntOrString::String(listener.port_name.into()),
            scheme: Some(if listener.https { "HTTPS" } else { "HTTP" }.into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::controllers::quayregistry::build::MigrationState;
    use crate::controllers::quayregistry::build::tests::{config_yaml, run_ready};
    use crate::controllers::quayregistry::fixtures::*;
    use crate::controllers::quayregistry::names::CONFIG_HASH_ANNOTATION;
    use crate::controllers::quayregistry::observed::Observed;

    #[test]
    fn after_migrations_the_registry_runs_with_https_probes_and_its_config_hash() {
        let (_, _, d, _) = run_ready(&sample("quayregistry-minimal.yaml"), Observed::empty());
        assert_eq!(d.migration, MigrationState::Succeeded);
        let job = find(&d, "Job", &d.migration_job);
        assert_eq!(
            job["spec"]["template"]["spec"]["containers"][0]["args"],
            json!([
                "migrate",
                "--config",
                "/conf/stack/config.yaml",
                "--data-dir",
                "/datastorage"
            ])
        );
        let dep = find(&d, "Deployment", "registry-quay-app");
        assert!(
            dep["spec"].get("replicas").is_none(),
            "the HPA owns replicas"
        );
        let pod = &dep["spec"]["template"];
        assert_eq!(
            pod["metadata"]["annotations"][CONFIG_HASH_ANNOTATION],
            d.config_hash
        );
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["image"], "quay.io/quayside/quayside:1.2.3");
        assert_eq!(
            c["args"],
            json!([
                "serve",
                "--config",
                "/conf/stack/config.yaml",
                "--data-dir",
                "/datastorage"
            ])
        );
        assert_eq!(
            c["env"][0],
            json!({"name": "QUAYSIDE_LISTEN", "value": "0.0.0.0:8443"})
        );
        assert_eq!(
            c["ports"][0],
            json!({"name": "https", "containerPort": 8443, "protocol": "TCP"})
        );
        for p in ["readinessProbe", "livenessProbe", "startupProbe"] {
            assert_eq!(c[p]["httpGet"]["path"], "/health/instance");
            assert_eq!(c[p]["httpGet"]["scheme"], "HTTPS");
        }
        assert_eq!(
            pod["spec"]["volumes"][1]["persistentVolumeClaim"]["claimName"],
            "registry-quay-datastorage"
        );
        let svc = find(&d, "Service", "registry-quay-app");
        assert_eq!(svc["spec"]["ports"][0]["port"], 443);
        let mirror = find(&d, "Deployment", "registry-quay-mirror");
        assert_eq!(
            mirror["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .unwrap()[0..3],
            json!(["worker", "--only", "mirror"]).as_array().unwrap()[..]
        );
    }

    #[test]
    fn unmanaged_tls_without_a_certificate_serves_http() {
        let registry = cr("spec:\n  components:\n    - kind: tls\n      managed: false\n");
        let (_, _, d, _) = run_ready(&registry, Observed::empty());
        let dep = find(&d, "Deployment", "registry-quay-app");
        let c = &dep["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["ports"][0]["containerPort"], 8080);
        assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(
            find(&d, "Service", "registry-quay-app")["spec"]["ports"][0]["port"],
            80
        );
        assert_eq!(config_yaml(&d)["PREFERRED_URL_SCHEME"], "http");
        assert!(d.endpoint.starts_with("http://"));
    }
}
