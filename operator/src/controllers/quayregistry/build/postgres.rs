//! The managed PostgreSQL, all named `<name>-quay-database`: the credentials Secret, the data
//! claim, the Service and a one-replica StatefulSet of the official image; and whether it is
//! ready (which gates the migration Job).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, PersistentVolumeClaimVolumeSource, PodSecurityContext,
    Probe, SeccompProfile, Secret, SecretEnvSource, SecurityContext, Service, ServicePort,
    ServiceSpec, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::{PodParts, env_var, requests};
use super::{ApplyMode, Builder, DB_NAME, DB_USER};
use crate::controllers::quayregistry::kinds;
use crate::controllers::quayregistry::material::DB_PASSWORD;
use crate::controllers::quayregistry::observed::Observed;
use crate::crd::ComponentKind;

const KIND: ComponentKind = ComponentKind::Postgres;

impl Builder<'_> {
    /// The database's Secret, claim (10Gi unless overridden), Service and StatefulSet.
    pub(super) fn postgres(&mut self) -> anyhow::Result<()> {
        self.postgres_credentials()?;
        let o = self.plan.overrides(KIND);
        let pvc = self.pvc(
            &self.plan.names().database(),
            "postgres",
            KIND,
            o.volume_size.clone().unwrap_or(Quantity("10Gi".into())),
            o.storage_class_name.clone(),
        );
        self.push(kinds::pvc(), &pvc, ApplyMode::Apply)?;
        self.postgres_service()?;
        self.postgres_statefulset()
    }

    /// Whether the database StatefulSet has a ready replica.
    pub(super) fn database_ready(&self, observed: &Observed) -> bool {
        observed
            .statefulset(&self.plan.namespace, &self.plan.names().database())
            .and_then(|s| s.status)
            .is_some_and(|s| s.ready_replicas.unwrap_or(0) >= 1)
    }

    fn postgres_credentials(&mut self) -> anyhow::Result<()> {
        let password = self
            .material
            .keys
            .get(DB_PASSWORD)
            .cloned()
            .unwrap_or_default();
        let credentials = Secret {
            metadata: self.postgres_meta(),
            data: Some(BTreeMap::from([
                ("POSTGRES_USER".to_owned(), ByteString(DB_USER.into())),
                (
                    "POSTGRES_PASSWORD".to_owned(),
                    ByteString(password.into_bytes()),
                ),
                ("POSTGRES_DB".to_owned(), ByteString(DB_NAME.into())),
            ])),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        self.push(kinds::secret(), &credentials, ApplyMode::Apply)
    }

    fn postgres_service(&mut self) -> anyhow::Result<()> {
        let service = Service {
            metadata: self.postgres_meta(),
            spec: Some(ServiceSpec {
                selector: Some(self.plan.names().selector("postgres")),
                ports: Some(vec![ServicePort {
                    name: Some("postgres".into()),
                    port: 5432,
                    target_port: Some(IntOrString::String("postgres".into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                type_: Some("ClusterIP".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.push(kinds::service(), &service, ApplyMode::Apply)
    }

    fn postgres_statefulset(&mut self) -> anyhow::Result<()> {
        let names = self.plan.names();
        let template = self.pod_template(
            "postgres",
            KIND,
            self.postgres_container(),
            PodParts {
                volumes: vec![Volume {
                    name: "data".into(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: names.database(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                annotations: BTreeMap::new(),
                service_account: None,
                security: PodSecurityContext {
                    fs_group: Some(999),
                    ..Default::default()
                },
            },
        );
        let sts = StatefulSet {
            metadata: self.postgres_meta(),
            spec: StatefulSetSpec {
                replicas: Some(1),
                service_name: Some(names.database()),
                selector: LabelSelector {
                    match_labels: Some(names.selector("postgres")),
                    ..Default::default()
                },
                template,
                ..Default::default()
            },
            ..Default::default()
        };
        self.push(kinds::statefulset(), &sts, ApplyMode::Apply)
    }

    fn postgres_container(&self) -> Container {
        let tcp = |period: i32, failures: i32| Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String("postgres".into()),
                ..Default::default()
            }),
            period_seconds: Some(period),
            failure_threshold: Some(failures),
            ..Default::default()
        };
        Container {
            name: "postgres".into(),
            image: Some(self.settings.postgres_image.clone()),
            env_from: Some(vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: self.plan.names().database(),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            env: Some(vec![env_var("PGDATA", "/var/lib/postgresql/data/pgdata")]),
            ports: Some(vec![ContainerPort {
                name: Some("postgres".into()),
                container_port: 5432,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            readiness_probe: Some(tcp(5, 3)),
            liveness_probe: Some(Probe {
                initial_delay_seconds: Some(30),
                ..tcp(15, 4)
            }),
            volume_mounts: Some(vec![VolumeMount {
                name: "data".into(),
                mount_path: "/var/lib/postgresql/data".into(),
                ..Default::default()
            }]),
            resources: Some(requests("100m", "256Mi")),
            // The official image starts as root, prepares PGDATA and steps down to the
            // `postgres` user (uid 999) itself: it needs CHOWN/SETUID, so capabilities stay.
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Metadata of the database's objects (all named `<name>-quay-database`).
    fn postgres_meta(&self) -> ObjectMeta {
        self.meta(
            &self.plan.names().database(),
            &self.plan.namespace,
            "postgres",
            Some(KIND),
        )
    }
}
