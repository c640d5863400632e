//! The kinds of objects the operator creates, as dynamic API resources.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::core::{ApiResource, GroupVersionKind};

use super::observed::Capabilities;

/// One kind the operator may own.
#[derive(Clone, Debug)]
pub struct Kind {
    pub ar: ApiResource,
    /// Created in the builder namespace (which may differ from the registry's).
    pub builder: bool,
}

fn typed<K: kube::Resource<DynamicType = ()>>() -> Kind {
    Kind {
        ar: ApiResource::erase::<K>(&()),
        builder: false,
    }
}

pub fn secret() -> Kind {
    typed::<Secret>()
}
pub fn service_account() -> Kind {
    Kind {
        builder: true,
        ..typed::<ServiceAccount>()
    }
}
pub fn service() -> Kind {
    typed::<Service>()
}
pub fn pvc() -> Kind {
    typed::<PersistentVolumeClaim>()
}
pub fn deployment() -> Kind {
    typed::<Deployment>()
}
pub fn statefulset() -> Kind {
    typed::<StatefulSet>()
}
pub fn job() -> Kind {
    typed::<Job>()
}
pub fn pdb() -> Kind {
    typed::<PodDisruptionBudget>()
}
pub fn hpa() -> Kind {
    typed::<HorizontalPodAutoscaler>()
}
pub fn ingress() -> Kind {
    typed::<Ingress>()
}
pub fn role() -> Kind {
    Kind {
        builder: true,
        ..typed::<Role>()
    }
}
pub fn role_binding() -> Kind {
    Kind {
        builder: true,
        ..typed::<RoleBinding>()
    }
}
pub fn route() -> Kind {
    custom("route.openshift.io", "v1", "Route", "routes")
}
pub fn service_monitor() -> Kind {
    custom(
        "monitoring.coreos.com",
        "v1",
        "ServiceMonitor",
        "servicemonitors",
    )
}
pub fn prometheus_rule() -> Kind {
    custom(
        "monitoring.coreos.com",
        "v1",
        "PrometheusRule",
        "prometheusrules",
    )
}

fn custom(group: &str, version: &str, kind: &str, plural: &str) -> Kind {
    Kind {
        ar: ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural),
        builder: false,
    }
}

/// Every kind the operator may have created, given the optional APIs present.
pub fn owned(caps: Capabilities) -> Vec<Kind> {
    let mut out = vec![
        secret(),
        service_account(),
        service(),
        pvc(),
        deployment(),
        statefulset(),
        job(),
        pdb(),
        hpa(),
        ingress(),
        role(),
        role_binding(),
    ];
    if caps.routes {
        out.push(route());
    }
    if caps.monitoring {
        out.push(service_monitor());
        out.push(prometheus_rule());
    }
    out
}
