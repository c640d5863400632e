//! Builds: in the builder namespace, the ServiceAccount, Role and RoleBinding
//! `<name>-quay-builder` that let the registry's ServiceAccount run build Jobs there. When that
//! namespace is not the QuayRegistry's, these objects carry no owner reference.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use super::{ApplyMode, Builder};
use crate::controllers::quayregistry::kinds;
use crate::crd::ComponentKind;

impl Builder<'_> {
    /// The builder's ServiceAccount, Role and RoleBinding.
    pub(super) fn builder(&mut self) -> anyhow::Result<()> {
        let names = self.plan.names();
        let ns = self.plan.builder_namespace.as_str();
        let kind = Some(ComponentKind::Builder);
        let sa = ServiceAccount {
            metadata: self.meta(&names.builder(), ns, "builder", kind),
            ..Default::default()
        };
        self.push(kinds::service_account(), &sa, ApplyMode::Apply)?;
        let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| PolicyRule {
            api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
            resources: Some(resources.iter().map(|s| s.to_string()).collect()),
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let role = Role {
            metadata: self.meta(&names.builder(), ns, "builder", kind),
            rules: Some(vec![
                rule(
                    &["batch"],
                    &["jobs"],
                    &["create", "delete", "get", "list", "watch"],
                ),
                rule(&[""], &["pods"], &["delete", "get", "list", "watch"]),
                rule(&[""], &["pods/log"], &["get"]),
                rule(&[""], &["secrets"], &["create", "delete", "get"]),
            ]),
        };
        self.push(kinds::role(), &role, ApplyMode::Apply)?;
        let binding = RoleBinding {
            metadata: self.meta(&names.builder(), ns, "builder", kind),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "Role".into(),
                name: names.builder(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: names.quay_app(),
                namespace: Some(self.plan.namespace.clone()),
                ..Default::default()
            }]),
        };
        self.push(kinds::role_binding(), &binding, ApplyMode::Apply)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::controllers::quayregistry::build::tests::{config_yaml, run};
    use crate::controllers::quayregistry::fixtures::*;

    #[test]
    fn a_builder_namespace_elsewhere_gets_labelled_objects_without_owner_references() {
        let registry = cr("spec:\n  configBundleSecret: bundle\n");
        let (_, _, d) = run(
            &registry,
            &observed_with_bundle(
                "EXECUTORS:\n  - EXECUTOR: kubernetes\n    BUILDER_NAMESPACE: builds\n",
            ),
        );
        assert!(d.cross_namespace);
        let role = d.objects.iter().find(|o| o.key.kind == "Role").unwrap();
        assert_eq!(role.key.namespace, "builds");
        assert!(role.body["metadata"].get("ownerReferences").is_none());
        assert_eq!(
            role.body["metadata"]["labels"]["quayside.dev/quayregistry"],
            "registry"
        );
        let binding = find(&d, "RoleBinding", "registry-quay-builder");
        assert_eq!(
            binding["subjects"][0],
            json!({"kind": "ServiceAccount", "name": "registry-quay-app", "namespace": "quay"})
        );
        let c = config_yaml(&d);
        assert_eq!(c["EXECUTORS"][0]["BUILDER_NAMESPACE"], "builds");
        assert!(
            c["EXECUTORS"][0].get("SERVICE_ACCOUNT_NAME").is_none(),
            "the user's executors are kept as written"
        );
    }
}
