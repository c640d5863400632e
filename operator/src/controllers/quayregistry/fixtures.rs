//! Test fixtures: QuayRegistries from YAML, settings, and simulated cluster state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kube::api::DynamicObject;

use super::build;
use super::config::CONFIG_FILE;
use super::material::Material;
use super::observed::Observed;
use super::validate::Plan;
use crate::crd::QuayRegistry;
use crate::runtime::context::Settings;

/// A QuayRegistry with no spec at all.
pub const MINIMAL: &str = "spec: {}\n";

/// `registry` in namespace `quay`, generation 1, with the given `spec:` YAML.
#[track_caller]
pub fn cr(spec_yaml: &str) -> QuayRegistry {
    let yaml = format!(
        "apiVersion: quayside.dev/v1alpha1\nkind: QuayRegistry\nmetadata:\n  name: registry\n  namespace: quay\n  uid: 0b8d2a54-5c55-4c1e-9d0e-1f2e3d4c5b6a\n  generation: 1\n{spec_yaml}"
    );
    serde_yaml::from_str(&yaml).expect("fixture QuayRegistry")
}

/// A sample file from `config/samples/`, placed in namespace `quay`.
#[track_caller]
pub fn sample(file: &str) -> QuayRegistry {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/samples")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("sample file");
    let mut r: QuayRegistry = serde_yaml::from_str(&text).expect("sample QuayRegistry");
    r.metadata.namespace = Some("quay".into());
    r.metadata.uid = Some("0b8d2a54-5c55-4c1e-9d0e-1f2e3d4c5b6a".into());
    r.metadata.generation = Some(1);
    r
}

pub fn settings() -> Settings {
    Settings {
        registry_image: "quay.io/quayside/quayside:1.2.3".into(),
        ..Settings::default()
    }
}

/// Nothing exists but the bundle Secret `bundle` with this `config.yaml`.
pub fn observed_with_bundle(config_yaml: &str) -> Observed {
    Observed {
        bundle: Some(BTreeMap::from([(
            CONFIG_FILE.to_owned(),
            config_yaml.as_bytes().to_vec(),
        )])),
        ..Observed::empty()
    }
}

/// A self-signed certificate and key (PEM) for `host`.
pub fn self_signed(host: &str) -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec![host.to_owned()]).expect("certificate");
    (c.cert.pem(), c.signing_key.serialize_pem())
}

/// What the cluster would hold after applying the desired objects of `plan` + `material`
/// (objects as built, no server-side defaults).
pub fn observed_after_apply(plan: &Plan, material: &Material, _now: DateTime<Utc>) -> Observed {
    let mut observed = Observed::empty();
    let desired = build::build(plan, material, &observed, &settings()).expect("build");
    for d in desired.objects {
        let obj: DynamicObject = serde_json::from_value(d.body).expect("dynamic object");
        observed.owned.insert(d.key, obj);
    }
    observed
}

/// Whether `cert` (PEM) chains to `ca` (PEM) for `dns`.
pub fn verifies(ca: &str, cert: &str, dns: &str) -> bool {
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    let der = |pem: &str| -> CertificateDer<'static> {
        rustls_pemfile::certs(&mut pem.as_bytes())
            .next()
            .expect("a certificate")
            .expect("PEM")
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der(ca)).expect("root");
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        std::sync::Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("verifier");
    use rustls::client::danger::ServerCertVerifier;
    verifier
        .verify_server_cert(
            &der(cert),
            &[],
            &ServerName::try_from(dns.to_owned()).expect("name"),
            &[],
            UnixTime::now(),
        )
        .is_ok()
}

/// Adds (or replaces) an owned object with the given `status`.
pub fn put(
    observed: &mut Observed,
    kind: &super::kinds::Kind,
    name: &str,
    body: serde_json::Value,
) {
    let mut v = body;
    v["apiVersion"] = kind.ar.api_version.clone().into();
    v["kind"] = kind.ar.kind.clone().into();
    v["metadata"]["name"] = name.into();
    v["metadata"]["namespace"] = "quay".into();
    let obj: DynamicObject = serde_json::from_value(v).expect("object");
    observed
        .owned
        .insert(super::observed::ObjKey::new(&kind.ar, "quay", name), obj);
}

/// The managed database is ready and the migration Job `job` has completed.
pub fn database_and_migrations_done(observed: &mut Observed, job: &str) {
    put(
        observed,
        &super::kinds::statefulset(),
        "registry-quay-database",
        serde_json::json!({"spec": {"selector": {}, "template": {}, "serviceName": "x"}, "status": {"replicas": 1, "readyReplicas": 1}}),
    );
    put(
        observed,
        &super::kinds::job(),
        job,
        serde_json::json!({"spec": {"template": {}}, "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}),
    );
}

/// The desired object of `kind` named `name`.
#[track_caller]
pub fn find<'a>(desired: &'a build::Desired, kind: &str, name: &str) -> &'a serde_json::Value {
    &desired
        .objects
        .iter()
        .find(|o| o.key.kind == kind && o.key.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no {kind} {name} among {:?}",
                desired
                    .objects
                    .iter()
                    .map(|o| o.key.to_string())
                    .collect::<Vec<_>>()
            )
        })
        .body
}

/// The decoded files of a desired Secret.
#[track_caller]
pub fn secret_files(body: &serde_json::Value) -> BTreeMap<String, String> {
    use base64::Engine as _;
    body["data"]
        .as_object()
        .expect("data")
        .iter()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().expect("base64"))
                .expect("base64");
            (k.clone(), String::from_utf8(bytes).expect("utf-8"))
        })
        .collect()
}

/// Simulates a successful apply: every desired object becomes an owned live object.
pub fn apply_to(observed: &mut Observed, desired: &build::Desired) {
    for d in &desired.objects {
        let obj: DynamicObject = serde_json::from_value(d.body.clone()).expect("dynamic object");
        observed.owned.insert(d.key.clone(), obj);
    }
}
