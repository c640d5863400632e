//! Managed object storage: the PersistentVolumeClaim `<name>-quay-datastorage` the registry
//! mounts at [`DATASTORAGE_DIR`](super::DATASTORAGE_DIR) as its local blob store, and the
//! claim shape the managed database uses too.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{ApplyMode, Builder};
use crate::controllers::quayregistry::kinds;
use crate::crd::ComponentKind;

impl Builder<'_> {
    /// The object storage claim (50Gi unless overridden).
    pub(super) fn object_storage(&mut self) -> anyhow::Result<()> {
        let o = self.plan.overrides(ComponentKind::Objectstorage);
        let pvc = self.pvc(
            &self.plan.names().datastorage(),
            "objectstorage",
            ComponentKind::Objectstorage,
            o.volume_size.clone().unwrap_or(Quantity("50Gi".into())),
            o.storage_class_name.clone(),
        );
        self.push(kinds::pvc(), &pvc, ApplyMode::Apply)
    }

    /// A ReadWriteOnce claim of `size` for `component`.
    pub(super) fn pvc(
        &self,
        name: &str,
        component: &str,
        kind: ComponentKind,
        size: Quantity,
        storage_class: Option<String>,
    ) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: self.meta(name, &self.plan.namespace, component, Some(kind)),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".to_owned(), size)])),
                    ..Default::default()
                }),
                storage_class_name: storage_class,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}
