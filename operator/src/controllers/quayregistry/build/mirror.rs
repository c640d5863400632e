//! The repository mirror worker: the Deployment `<name>-quay-mirror`, running the registry
//! image as `worker --only mirror` with the same configuration.

use super::pod::env_var;
use super::{ApplyMode, Builder, CONFIG_DIR, Expectation, image_version};
use crate::controllers::quayregistry::config::CONFIG_FILE;
use crate::controllers::quayregistry::kinds;
use crate::crd::ComponentKind;

impl Builder<'_> {
    /// The mirror Deployment, or while `hold`, the live one kept as it is. Returns what it
    /// should end up as either way.
    pub(super) fn mirror(&mut self, config_hash: &str, hold: bool) -> anyhow::Result<Expectation> {
        let name = self.plan.names().mirror();
        let m = self.expectation(&name, ComponentKind::Mirror, config_hash);
        if hold {
            self.hold_deployment(&name);
            return Ok(m);
        }
        let image = &self.settings.registry_image;
        let mut args: Vec<String> = ["worker", "--only", "mirror", "--config"]
            .map(String::from)
            .to_vec();
        args.push(format!("{CONFIG_DIR}/{CONFIG_FILE}"));
        let container = self.registry_container(
            "quay-mirror",
            image,
            args,
            vec![env_var("QUAY_VERSION", &image_version(image))],
        );
        let d = self.deployment(
            &name,
            "quay-mirror",
            ComponentKind::Mirror,
            m.replicas,
            config_hash,
            container,
        );
        self.push(kinds::deployment(), &d, ApplyMode::Apply)?;
        Ok(m)
    }
}
