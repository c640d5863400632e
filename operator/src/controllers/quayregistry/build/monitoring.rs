//! Monitoring (Prometheus Operator): the ServiceMonitor `<name>-quay-metrics` scraping the
//! registry's `/metrics` (verifying the managed CA when there is one), and the PrometheusRule
//! `<name>-quay-alerts` (registry down, high server-error rate).

use serde_json::{Value, json};

use super::registry::Listener;
use super::{ApplyMode, Builder};
use crate::controllers::quayregistry::kinds;
use crate::controllers::quayregistry::validate::TlsSource;
use crate::crd::ComponentKind;

const KIND: ComponentKind = ComponentKind::Monitoring;

impl Builder<'_> {
    /// The ServiceMonitor and the PrometheusRule.
    pub(super) fn monitoring(&mut self, listener: &Listener) -> anyhow::Result<()> {
        self.service_monitor(listener)?;
        self.prometheus_rule()
    }

    fn service_monitor(&mut self, listener: &Listener) -> anyhow::Result<()> {
        let names = self.plan.names();
        let ns = self.plan.namespace.as_str();
        let meta = self.meta(&names.metrics(), ns, "monitoring", Some(KIND));
        let monitor = json!({
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": serde_json::to_value(meta)?,
            "spec": {
                "selector": {"matchLabels": names.selector("quay-app")},
                "namespaceSelector": {"matchNames": [ns]},
                "endpoints": [self.metrics_endpoint(listener)],
            },
        });
        self.push_value(kinds::service_monitor(), monitor, ApplyMode::Apply)
    }

    /// The scrape endpoint: the registry's port, with TLS settings when it serves HTTPS.
    fn metrics_endpoint(&self, listener: &Listener) -> Value {
        let names = self.plan.names();
        let mut endpoint = json!({
            "port": listener.port_name,
            "path": "/metrics",
            "scheme": listener.scheme(),
            "interval": "30s",
        });
        if listener.https {
            endpoint["tlsConfig"] = match &self.plan.tls {
                TlsSource::Managed => json!({
                    "ca": {"secret": {"name": names.tls(), "key": "ca.crt"}},
                    "serverName": format!("{}.{}.svc", names.quay_app(), self.plan.namespace),
                }),
                _ => json!({"insecureSkipVerify": true}),
            };
        }
        endpoint
    }

    fn prometheus_rule(&mut self) -> anyhow::Result<()> {
        let names = self.plan.names();
        let ns = self.plan.namespace.as_str();
        let job = names.quay_app();
        let meta = self.meta(&names.alerts(), ns, "monitoring", Some(KIND));
        let rules = json!({
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": serde_json::to_value(meta)?,
            "spec": {"groups": [{
                "name": format!("quayside-{}", names.registry),
                "rules": [
                    {
                        "alert": "QuaysideRegistryDown",
                        "expr": format!("absent(up{{job=\"{job}\",namespace=\"{ns}\"}} == 1)"),
                        "for": "5m",
                        "labels": {"severity": "critical"},
                        "annotations": {"summary": format!("No instance of registry {ns}/{} answers its metrics endpoint", names.registry)},
                    },
                    {
                        "alert": "QuaysideHighServerErrorRate",
                        "expr": format!("sum(rate(quayside_http_requests_total{{job=\"{job}\",namespace=\"{ns}\",status=~\"5..\"}}[5m])) / sum(rate(quayside_http_requests_total{{job=\"{job}\",namespace=\"{ns}\"}}[5m])) > 0.05"),
                        "for": "10m",
                        "labels": {"severity": "warning"},
                        "annotations": {"summary": format!("More than 5% of the requests to registry {ns}/{} fail with a server error", names.registry)},
                    },
                ],
            }]},
        });
        self.push_value(kinds::prometheus_rule(), rules, ApplyMode::Apply)
    }
}
