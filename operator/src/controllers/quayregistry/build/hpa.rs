//! Autoscaling: a HorizontalPodAutoscaler (2 to 20 replicas, 90% CPU and memory) for the
//! registry Deployment and, when managed, the mirror Deployment. While an HPA is managed the
//! Deployments carry no replica count.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};

use super::{ApplyMode, Builder};
use crate::controllers::quayregistry::kinds;
use crate::crd::ComponentKind;

impl Builder<'_> {
    /// The HPAs of the registry and (when managed) the mirror.
    pub(super) fn autoscaling(&mut self) -> anyhow::Result<()> {
        let names = self.plan.names();
        self.hpa(&names.quay_app(), "quay-app")?;
        if self.plan.is_managed(ComponentKind::Mirror) {
            self.hpa(&names.mirror(), "quay-mirror")?;
        }
        Ok(())
    }

    fn hpa(&mut self, target: &str, component: &str) -> anyhow::Result<()> {
        let metric = |name: &str| MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: name.into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(90),
                    ..Default::default()
                },
            }),
            ..Default::default()
        };
        let hpa = HorizontalPodAutoscaler {
            metadata: self.meta(
                target,
                &self.plan.namespace,
                component,
                Some(ComponentKind::Horizontalpodautoscaler),
            ),
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: target.into(),
                },
                min_replicas: Some(2),
                max_replicas: 20,
                metrics: Some(vec![metric("cpu"), metric("memory")]),
                ..Default::default()
            },
            ..Default::default()
        };
        self.push(kinds::hpa(), &hpa, ApplyMode::Apply)
    }
}
