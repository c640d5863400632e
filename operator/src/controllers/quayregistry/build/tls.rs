//! TLS: with managed TLS, the operator's CA Secret (`<name>-quay-ca`) and serving certificate
//! Secret (`<name>-quay-tls`, `kubernetes.io/tls`), both annotated with their expiry. Whatever
//! the source, the certificate and key the registry serves (the chain for managed TLS).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::{ApplyMode, Builder};
use crate::controllers::quayregistry::config::TlsPair;
use crate::controllers::quayregistry::kinds;
use crate::controllers::quayregistry::material::{Ca, Serving};
use crate::controllers::quayregistry::names::{CERT_SUBJECT_ANNOTATION, NOT_AFTER_ANNOTATION};
use crate::controllers::quayregistry::validate::TlsSource;

impl Builder<'_> {
    /// The TLS Secrets the operator manages, and the certificate (chain) and key the registry
    /// serves, if any.
    pub(super) fn tls(&mut self) -> anyhow::Result<Option<TlsPair>> {
        match &self.plan.tls {
            TlsSource::Managed => {
                let material = self.material;
                let (Some(ca), Some(serving)) = (&material.ca, &material.serving) else {
                    anyhow::bail!("managed TLS without generated material");
                };
                self.ca_secret(ca)?;
                self.serving_secret(ca, serving)?;
                Ok(Some((
                    format!("{}{}", serving.pem.cert, ca.pem.cert).into_bytes(),
                    serving.pem.key.clone().into_bytes(),
                )))
            }
            TlsSource::Bundle { cert, key } | TlsSource::Secret { cert, key, .. } => {
                Ok(Some((cert.clone(), key.clone())))
            }
            TlsSource::None => Ok(None),
        }
    }

    fn ca_secret(&mut self, ca: &Ca) -> anyhow::Result<()> {
        let mut meta = self.meta(&self.plan.names().ca(), &self.plan.namespace, "tls", None);
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(NOT_AFTER_ANNOTATION.into(), ca.not_after.clone());
        let ca_secret = Secret {
            metadata: meta,
            data: Some(BTreeMap::from([
                (
                    "ca.crt".to_owned(),
                    ByteString(ca.pem.cert.clone().into_bytes()),
                ),
                (
                    "ca.key".to_owned(),
                    ByteString(ca.pem.key.clone().into_bytes()),
                ),
            ])),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        self.push(kinds::secret(), &ca_secret, ApplyMode::Apply)
    }

    fn serving_secret(&mut self, ca: &Ca, serving: &Serving) -> anyhow::Result<()> {
        let mut meta = self.meta(&self.plan.names().tls(), &self.plan.namespace, "tls", None);
        let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
        annotations.insert(NOT_AFTER_ANNOTATION.into(), serving.not_after.clone());
        annotations.insert(CERT_SUBJECT_ANNOTATION.into(), serving.subject_hash.clone());
        let tls_secret = Secret {
            metadata: meta,
            data: Some(BTreeMap::from([
                (
                    "tls.crt".to_owned(),
                    ByteString(serving.pem.cert.clone().into_bytes()),
                ),
                (
                    "tls.key".to_owned(),
                    ByteString(serving.pem.key.clone().into_bytes()),
                ),
                (
                    "ca.crt".to_owned(),
                    ByteString(ca.pem.cert.clone().into_bytes()),
                ),
            ])),
            type_: Some("kubernetes.io/tls".into()),
            ..Default::default()
        };
        self.push(kinds::secret(), &tls_secret, ApplyMode::Apply)
    }
}
