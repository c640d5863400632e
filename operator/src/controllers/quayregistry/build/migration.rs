//! Migrations: the Job `<name>-quay-migrate-<digest(image, config)>` that runs
//! `quayside migrate` with the registry image and configuration about to be rolled out (which
//! also proves the registry accepts that configuration before any pod runs it), and its
//! [`MigrationState`] read from the observed Job.

use k8s_openapi::api::batch::v1::{Job, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::pod::env_var;
use super::{ApplyMode, Builder, CONFIG_DIR, MigrationState, digest, image_version};
use crate::controllers::quayregistry::config::CONFIG_FILE;
use crate::controllers::quayregistry::kinds;
use crate::controllers::quayregistry::observed::Observed;
use crate::crd::ComponentKind;

impl Builder<'_> {
    /// The migration Job for (image, configuration), once the database is ready. Returns the
    /// Job's name and its state.
    pub(super) fn migration(
        &mut self,
        observed: &Observed,
        database_ready: bool,
        config_hash: &str,
    ) -> anyhow::Result<(String, MigrationState)> {
        let image = &self.settings.registry_image;
        let migration_key = digest(format!("{image}\n{config_hash}").as_bytes())[..10].to_owned();
        let name = self.plan.names().migration_job(&migration_key);
        if !database_ready {
            return Ok((name, MigrationState::WaitingForDatabase));
        }
        self.migration_job(&name, image)?;
        let status = observed
            .job(&self.plan.namespace, &name)
            .and_then(|j| j.status);
        let state = migration_state(&name, status);
        Ok((name, state))
    }

    fn migration_job(&mut self, name: &str, image: &str) -> anyhow::Result<()> {
        let names = self.plan.names();
        let mut container = self.registry_container(
            "quay-migrate",
            image,
            vec![
                "migrate".into(),
                "--config".into(),
                format!("{CONFIG_DIR}/{CONFIG_FILE}"),
            ],
            vec![env_var("QUAY_VERSION", &image_version(image))],
        );
        let o = self.plan.overrides(ComponentKind::Quay);
        if let Some(s) = &o.security_context {
            container.security_context = Some(s.clone());
        }
        let mut labels = names.selector("quay-migrate");
        labels.extend(names.labels("quay-migrate"));
        let job = Job {
            metadata: self.meta(name, &self.plan.namespace, "quay-migrate", None),
            spec: Some(JobSpec {
                backoff_limit: Some(2),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        restart_policy: Some("Never".into()),
                        containers: vec![container],
                        volumes: Some(self.registry_volumes()),
                        service_account_name: Some(names.quay_app()),
                        security_context: Some(Self::registry_pod_security()),
                        node_selector: (!o.node_selector.is_empty())
                            .then(|| o.node_selector.clone()),
                        tolerations: (!o.tolerations.is_empty()).then(|| o.tolerations.clone()),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        self.push(kinds::job(), &job, ApplyMode::Apply)
    }
}

/// The state of the migration Job `name` from its observed status (`None`: not seen yet).
fn migration_state(name: &str, status: Option<JobStatus>) -> MigrationState {
    let Some(st) = status else {
        return MigrationState::Running;
    };
    let cond = |t: &str| {
        st.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == t && c.status == "True")
            .cloned()
    };
    if cond("Complete").is_some() || st.succeeded.unwrap_or(0) >= 1 {
        MigrationState::Succeeded
    } else if let Some(c) = cond("Failed") {
        MigrationState::Failed(format!(
            "migration Job {name} failed ({}): {}; delete the Job to retry",
            c.reason.unwrap_or_default(),
            c.message.unwrap_or_default()
        ))
    } else {
        MigrationState::Running
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use crate::controllers::quayregistry::build::tests::{run, run_ready};
    use crate::controllers::quayregistry::build::{MigrationState, build};
    use crate::controllers::quayregistry::fixtures::*;
    use crate::controllers::quayregistry::kinds;
    use crate::controllers::quayregistry::material::prepare;
    use crate::controllers::quayregistry::observed::{ObjKey, Observed};
    use crate::controllers::quayregistry::validate::validate;

    #[test]
    fn a_new_image_holds_the_running_deployments_until_its_migration_succeeds() {
        let registry = sample("quayregistry-minimal.yaml");
        let (_, _, done, mut observed) = run_ready(&registry, Observed::empty());
        put(
            &mut observed,
            &kinds::deployment(),
            "registry-quay-app",
            json!({"spec": {"selector": {}, "template": {}}}),
        );
        let mut s = settings();
        s.registry_image = "quay.io/quayside/quayside:1.3.0".into();
        let plan = validate(&registry, &observed, &s).unwrap();
        let m = prepare(&plan, &observed, &s, Utc::now()).unwrap();
        let d = build(&plan, &m, &observed, &s).unwrap();
        assert_ne!(d.migration_job, done.migration_job);
        assert_eq!(d.migration, MigrationState::Running);
        assert!(
            d.objects
                .iter()
                .any(|o| o.key.kind == "Job" && o.key.name == d.migration_job)
        );
        assert!(!d.objects.iter().any(|o| o.key.kind == "Deployment"));
        assert!(d.keep.contains(&ObjKey::new(
            &kinds::deployment().ar,
            "quay",
            "registry-quay-app"
        )));

        put(
            &mut observed,
            &kinds::job(),
            &d.migration_job,
            json!({"spec": {"template": {}}, "status": {"failed": 4, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}}),
        );
        let d = build(&plan, &m, &observed, &s).unwrap();
        let MigrationState::Failed(msg) = d.migration else {
            panic!("{:?}", d.migration)
        };
        assert!(
            msg.contains("BackoffLimitExceeded") && msg.contains("delete the Job to retry"),
            "{msg}"
        );
    }

    #[test]
    fn a_configuration_change_is_validated_by_a_new_migration_job_first() {
        let registry = cr("spec:\n  configBundleSecret: bundle\n");
        let (_, _, done, mut observed) =
            run_ready(&registry, observed_with_bundle("FEATURE_X: true\n"));
        assert!(done.objects.iter().any(|o| o.key.kind == "Deployment"));
        observed.bundle = observed_with_bundle("FEATURE_X: false\n").bundle;
        let (_, _, d) = run(&registry, &observed);
        assert_ne!(d.config_hash, done.config_hash);
        assert_ne!(d.migration_job, done.migration_job);
        assert_eq!(d.migration, MigrationState::Running);
        assert!(!d.objects.iter().any(|o| o.key.kind == "Deployment"));
        assert!(d.keep.contains(&ObjKey::new(
            &kinds::deployment().ar,
            "quay",
            "registry-quay-app"
        )));
    }
}
