//! Pod-template pieces shared by the workloads (registry, mirror, PostgreSQL): the template
//! with a component's overrides applied, environment merging, the restricted container
//! security context and resource requests.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities as LinuxCapabilities, Container, EnvVar, PodSecurityContext, PodSpec,
    PodTemplateSpec, ResourceRequirements, SeccompProfile, SecurityContext, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Builder;
use crate::crd::{ComponentKind, Overrides};

/// The pod-level parts of a pod template.
pub(super) struct PodParts {
    pub(super) volumes: Vec<Volume>,
    pub(super) annotations: BTreeMap<String, String>,
    pub(super) service_account: Option<String>,
    pub(super) security: PodSecurityContext,
}

impl Builder<'_> {
    /// A pod template for `component` with its overrides applied to `container`.
    pub(super) fn pod_template(
        &self,
        component: &str,
        kind: ComponentKind,
        mut container: Container,
        pod: PodParts,
    ) -> PodTemplateSpec {
        let o: Overrides = self.plan.overrides(kind);
        let names = self.plan.names();
        let mut labels = names.selector(component);
        labels.extend(names.labels(component));
        for (k, v) in &o.labels {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let PodParts {
            volumes,
            mut annotations,
            service_account,
            security: pod_security,
        } = pod;
        annotations.extend(o.annotations.clone());
        container.env = Some(merge_env(container.env.take().unwrap_or_default(), &o.env));
        if let Some(r) = &o.resources {
            container.resources = Some(r.clone());
        }
        if let Some(s) = &o.security_context {
            container.security_context = Some(s.clone());
        }
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                annotations: (!annotations.is_empty()).then_some(annotations),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![container],
                volumes: Some(volumes),
                service_account_name: service_account,
                affinity: o.affinity.clone(),
                tolerations: (!o.tolerations.is_empty()).then(|| o.tolerations.clone()),
                node_selector: (!o.node_selector.is_empty()).then(|| o.node_selector.clone()),
                security_context: Some(pod_security),
                ..Default::default()
            }),
        }
    }
}

pub(super) fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

/// Operator env first, overrides win (replacing by name, keeping order).
fn merge_env(mut base: Vec<EnvVar>, overrides: &[EnvVar]) -> Vec<EnvVar> {
    for o in overrides {
        match base.iter_mut().find(|e| e.name == o.name) {
            Some(e) => *e = o.clone(),
            None => base.push(o.clone()),
        }
    }
    base
}

pub(super) fn default_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        run_as_non_root: Some(true),
        capabilities: Some(LinuxCapabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) fn requests(cpu: &str, memory: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.into())),
            ("memory".to_owned(), Quantity(memory.into())),
        ])),
        ..Default::default()
    }
}
