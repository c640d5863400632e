//! External access, `<name>-quay`: an OpenShift Route (TLS passthrough) where Routes exist,
//! else an Ingress to the registry Service (with the operator's ingress class unless the route
//! overrides name one, and the TLS Secret when a host is known).

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use serde_json::json;

use super::registry::Listener;
use super::{ApplyMode, Builder};
use crate::controllers::quayregistry::config::host_only;
use crate::controllers::quayregistry::kinds;
use crate::controllers::quayregistry::validate::TlsSource;
use crate::crd::ComponentKind;

const KIND: ComponentKind = ComponentKind::Route;

impl Builder<'_> {
    /// The Route, or the Ingress where there are no Routes.
    pub(super) fn route(&mut self, listener: &Listener) -> anyhow::Result<()> {
        if self.plan.routes_api {
            self.openshift_route(listener)
        } else {
            self.ingress(listener)
        }
    }

    /// The public host without a port, when known.
    fn route_host(&self) -> Option<&str> {
        self.plan.host.as_deref().map(host_only)
    }

    fn openshift_route(&mut self, listener: &Listener) -> anyhow::Result<()> {
        let names = self.plan.names();
        let mut spec = json!({
            "to": {"kind": "Service", "name": names.quay_app(), "weight": 100},
            "port": {"targetPort": listener.port_name},
        });
        if let Some(h) = self.route_host() {
            spec["host"] = h.into();
        }
        if listener.https {
            spec["tls"] =
                json!({"termination": "passthrough", "insecureEdgeTerminationPolicy": "Redirect"});
        }
        let meta = self.meta(&names.route(), &self.plan.namespace, "route", Some(KIND));
        let body = json!({
            "apiVersion": "route.openshift.io/v1",
            "kind": "Route",
            "metadata": serde_json::to_value(meta)?,
            "spec": spec,
        });
        self.push_value(kinds::route(), body, ApplyMode::Apply)
    }

    fn ingress(&mut self, listener: &Listener) -> anyhow::Result<()> {
        let names = self.plan.names();
        let host = self.route_host();
        let mut meta = self.meta(&names.route(), &self.plan.namespace, "route", Some(KIND));
        let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
        annotations
            .entry("nginx.ingress.kubernetes.io/proxy-body-size".into())
            .or_insert_with(|| "0".into());
        if listener.https {
            annotations
                .entry("nginx.ingress.kubernetes.io/backend-protocol".into())
                .or_insert_with(|| "HTTPS".into());
        }
        let tls_secret = match &self.plan.tls {
            TlsSource::Managed => Some(names.tls()),
            TlsSource::Secret { name, .. } => Some(name.clone()),
            _ => None,
        };
        // A class named by the legacy annotation (from the route overrides) wins: the API
        // refuses an Ingress with both.
        let legacy_class = meta
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubernetes.io/ingress.class"));
        let ingress = Ingress {
            metadata: meta,
            spec: Some(IngressSpec {
                ingress_class_name: if legacy_class {
                    None
                } else {
                    self.settings.ingress_class_name.clone()
                },
                rules: Some(vec![IngressRule {
                    host: host.map(str::to_owned),
                    http: Some(HTTPIngressRuleValue {
                        paths: vec![HTTPIngressPath {
                            path: Some("/".into()),
                            path_type: "Prefix".into(),
                            backend: IngressBackend {
                                service: Some(IngressServiceBackend {
                                    name: names.quay_app(),
                                    port: Some(ServiceBackendPort {
                                        number: Some(listener.service_port),
                                        ..Default::default()
                                    }),
                                }),
                                ..Default::default()
                            },
                        }],
                    }),
                }]),
                tls: match (host, tls_secret) {
                    (Some(h), Some(secret)) => Some(vec![IngressTLS {
                        hosts: Some(vec![h.to_owned()]),
                        secret_name: Some(secret),
                    }]),
                    _ => None,
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        self.push(kinds::ingress(), &ingress, ApplyMode::Apply)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use crate::controllers::quayregistry::build::build;
    use crate::controllers::quayregistry::fixtures::*;
    use crate::controllers::quayregistry::material::prepare;
    use crate::controllers::quayregistry::observed::Observed;
    use crate::controllers::quayregistry::validate::validate;

    #[test]
    fn ingress_class_comes_from_the_operator_or_the_route_overrides() {
        let mut s = settings();
        s.ingress_class_name = Some("nginx".into());
        let registry = sample("quayregistry-minimal.yaml");
        let plan = validate(&registry, &Observed::empty(), &s).unwrap();
        let m = prepare(&plan, &Observed::empty(), &s, Utc::now()).unwrap();
        let d = build(&plan, &m, &Observed::empty(), &s).unwrap();
        let ingress = find(&d, "Ingress", "registry-quay");
        assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
        assert_eq!(
            ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"],
            "HTTPS"
        );
        assert!(
            ingress["spec"]["rules"][0].get("host").is_none(),
            "no host known: any host"
        );

        let registry = cr(
            "spec:\n  components:\n    - kind: route\n      overrides:\n        annotations:\n          kubernetes.io/ingress.class: traefik\n          nginx.ingress.kubernetes.io/proxy-body-size: 10g\n",
        );
        let plan = validate(&registry, &Observed::empty(), &s).unwrap();
        let d = build(&plan, &m, &Observed::empty(), &s).unwrap();
        let ingress = find(&d, "Ingress", "registry-quay");
        assert!(ingress["spec"].get("ingressClassName").is_none());
        assert_eq!(
            ingress["metadata"]["annotations"]["kubernetes.io/ingress.class"],
            "traefik"
        );
        assert_eq!(
            ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"],
            "10g"
        );
    }
}
