//! Generated material: the secrets and certificates the operator makes, reusing what exists.
//!
//! Rules:
//! - This is the only non-deterministic step (random keys, new certificates); it makes no API
//!   calls and takes `now` as an argument, so it is unit-tested like build.
//! - Generated secrets (`SECRET_KEY`, `DATABASE_SECRET_KEY`, the database password) are made
//!   once and kept in `<name>-quay-managed-secret-keys`; later reconciles reuse them.
//! - The CA (`<name>-quay-ca`) is made once and kept until a year before it expires. The
//!   serving certificate (`<name>-quay-tls`) is re-issued when it is within
//!   `renew_before_days` of expiry, when its host names change or when the CA changes; its
//!   expiry and a digest of its subject are kept in annotations, so no X.509 parsing is needed.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use super::names::{CERT_SUBJECT_ANNOTATION, NOT_AFTER_ANNOTATION};
use super::observed::{ObjKey, Observed};
use super::validate::{Plan, TlsSource};
use super::{config, kinds};
use crate::runtime::context::Settings;

/// Keys of the managed-secret-keys Secret.
pub const SECRET_KEY: &str = "SECRET_KEY";
pub const DATABASE_SECRET_KEY: &str = "DATABASE_SECRET_KEY";
pub const DB_PASSWORD: &str = "DB_PASSWORD";
/// The token only the operator knows that lets it create the first superuser (the registry's
/// `USER_INITIALIZE_TOKEN`).
pub const USER_INITIALIZE_TOKEN: &str = "USER_INITIALIZE_TOKEN";
const GENERATED: [&str; 4] = [
    SECRET_KEY,
    DATABASE_SECRET_KEY,
    DB_PASSWORD,
    USER_INITIALIZE_TOKEN,
];

/// A PEM certificate and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// The operator-made serving certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serving {
    pub pem: Pem,
    /// Expiry, RFC 3339.
    pub not_after: String,
    /// Digest of the host names and the CA certificate it was issued for.
    pub subject_hash: String,
}

/// The operator's CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ca {
    pub pem: Pem,
    /// Expiry, RFC 3339.
    pub not_after: String,
}

/// What build needs beyond the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Material {
    /// Generated secrets (existing values kept).
    pub keys: BTreeMap<String, String>,
    /// The operator's CA, when tls is managed.
    pub ca: Option<Ca>,
    /// The serving certificate, when tls is managed.
    pub serving: Option<Serving>,
    /// What changed, for events (e.g. "issued a serving certificate").
    pub changes: Vec<String>,
}

/// Host names the serving certificate covers: the Service's DNS names and the public host.
pub fn serving_names(plan: &Plan, settings: &Settings) -> Vec<String> {
    let svc = plan.names().quay_app();
    let ns = &plan.namespace;
    let mut out = vec![
        svc.clone(),
        format!("{svc}.{ns}"),
        format!("{svc}.{ns}.svc"),
        format!("{svc}.{ns}.svc.{}", settings.cluster_domain),
    ];
    if let Some(h) = &plan.host {
        let h = config::host_only(h).to_owned();
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// Computes the material, generating only what is missing or due.
pub fn prepare(
    plan: &Plan,
    observed: &Observed,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<Material> {
    let names = plan.names();
    let mut changes = Vec::new();
    let mut keys: BTreeMap<String, String> = observed
        .secret(&plan.namespace, &names.managed_keys())
        .map(|s| {
            s.data
                .into_iter()
                .filter_map(|(k, v)| Some((k, String::from_utf8(v).ok()?)))
                .collect()
        })
        .unwrap_or_default();
    for k in GENERATED {
        if keys.get(k).is_none_or(|v| v.is_empty()) {
            keys.insert(k.to_owned(), random_token()?);
            changes.push(format!("generated {k}"));
        }
    }

    let (ca, serving) = if plan.tls == TlsSource::Managed {
        let ca = match existing_ca(plan, observed, now) {
            Some(ca) => ca,
            None => {
                changes.push("created a CA".into());
                new_ca(plan, now)?
            }
        };
        let dns = serving_names(plan, settings);
        let subject_hash = super::build::digest(format!("{dns:?}{}", ca.pem.cert).as_bytes());
        let serving = match existing_serving(plan, observed, &subject_hash, settings, now) {
            Some(s) => s,
            None => {
                changes.push(format!(
                    "issued a serving certificate for {}",
                    dns.join(", ")
                ));
                issue(plan, &ca.pem, dns, subject_hash, settings, now)?
            }
        };
        (Some(ca), Some(serving))
    } else {
        (None, None)
    };
    Ok(Material {
        keys,
        ca,
        serving,
        changes,
    })
}

/// 32 random bytes, hex-encoded.
pub fn random_token() -> anyhow::Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(hex::encode(bytes))
}

fn ca_name(plan: &Plan) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "quayside-operator");
    dn.push(
        DnType::CommonName,
        format!("{}/{} registry CA", plan.namespace, plan.name),
    );
    dn
}

fn ca_params(
    plan: &Plan,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = ca_name(plan);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, not_before, not_after);
    params
}

/// Day-granular validity (rcgen takes calendar dates).
fn set_validity(params: &mut CertificateParams, from: DateTime<Utc>, to: DateTime<Utc>) {
    params.not_before = rcgen::date_time_ymd(from.year(), from.month() as u8, from.day() as u8);
    params.not_after = rcgen::date_time_ymd(to.year(), to.month() as u8, to.day() as u8);
}

/// The stored CA, unless it expires within a year (then a new one is made).
fn existing_ca(plan: &Plan, observed: &Observed, now: DateTime<Utc>) -> Option<Ca> {
    let key = ObjKey::new(&kinds::secret().ar, &plan.namespace, &plan.names().ca());
    let not_after = observed
        .annotations(&key)?
        .get(NOT_AFTER_ANNOTATION)?
        .clone();
    let expiry = DateTime::parse_from_rfc3339(&not_after).ok()?;
    if expiry.with_timezone(&Utc) - now < Duration::days(365) {
        return None;
    }
    let s = observed.secret(&plan.namespace, &plan.names().ca())?;
    Some(Ca {
        pem: Pem {
            cert: String::from_utf8(s.data.get("ca.crt")?.clone()).ok()?,
            key: String::from_utf8(s.data.get("ca.key")?.clone()).ok()?,
        },
        not_after,
    })
}

/// A new CA, valid ten years.
fn new_ca(plan: &Plan, now: DateTime<Utc>) -> anyhow::Result<Ca> {
    let key = KeyPair::generate()?;
    let expiry = now + Duration::days(3650);
    let cert = ca_params(plan, now - Duration::days(1), expiry).self_signed(&key)?;
    let midnight = expiry
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(expiry, |d| d.and_utc());
    Ok(Ca {
        pem: Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        },
        not_after: rfc3339(midnight),
    })
}

fn existing_serving(
    plan: &Plan,
    observed: &Observed,
    subject_hash: &str,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Option<Serving> {
    let key = ObjKey::new(&kinds::secret().ar, &plan.namespace, &plan.names().tls());
    let annotations = observed.annotations(&key)?;
    if annotations.get(CERT_SUBJECT_ANNOTATION)? != subject_hash {
        return None;
    }
    let not_after = annotations.get(NOT_AFTER_ANNOTATION)?;
    let expiry = DateTime::parse_from_rfc3339(not_after).ok()?;
    if expiry.with_timezone(&Utc) - now < Duration::days(settings.renew_before_days) {
        return None;
    }
    let s = observed.secret(&plan.namespace, &plan.names().tls())?;
    Some(Serving {
        pem: Pem {
            cert: String::from_utf8(s.data.get("tls.crt")?.clone()).ok()?,
            key: String::from_utf8(s.data.get("tls.key")?.clone()).ok()?,
        },
        not_after: not_after.clone(),
        subject_hash: subject_hash.to_owned(),
    })
}

fn issue(
    plan: &Plan,
    ca: &Pem,
    dns: Vec<String>,
    subject_hash: String,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<Serving> {
    let ca_key = KeyPair::from_pem(&ca.key)?;
    // The issuer is rebuilt from the same name and key, so its key identifier and name match
    // the stored CA certificate (dates do not matter for signing).
    let issuer = Issuer::new(ca_params(plan, now, now), ca_key);
    let mut params = CertificateParams::new(dns.clone())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, dns.first().cloned().unwrap_or_default());
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    // Day granularity: the certificate ends at midnight UTC of the expiry day.
    let expiry = now + Duration::days(settings.certificate_days);
    set_validity(&mut params, now - Duration::days(1), expiry);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    let midnight = expiry
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(expiry, |d| d.and_utc());
    Ok(Serving {
        pem: Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        },
        not_after: rfc3339(midnight),
        subject_hash,
    })
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::quayregistry::fixtures::*;
    use crate::controllers::quayregistry::validate::validate;

    fn plan() -> Plan {
        validate(&cr(MINIMAL), &Observed::empty(), &settings()).unwrap()
    }

    #[test]
    fn first_reconcile_generates_keys_ca_and_certificate() {
        let now = Utc::now();
        let m = prepare(&plan(), &Observed::empty(), &settings(), now).unwrap();
        for k in GENERATED {
            assert_eq!(m.keys[k].len(), 64, "{k}");
        }
        assert_ne!(m.keys[SECRET_KEY], m.keys[DATABASE_SECRET_KEY]);
        let serving = m.serving.unwrap();
        assert!(serving.pem.cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(
            m.ca.unwrap()
                .pem
                .cert
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(
            m.changes
                .iter()
                .any(|c| c.starts_with("issued a serving certificate"))
        );
    }

    #[test]
    fn later_reconciles_reuse_everything_until_renewal_is_due() {
        let s = settings();
        let now = Utc::now();
        let first = prepare(&plan(), &Observed::empty(), &s, now).unwrap();
        let observed = observed_after_apply(&plan(), &first, now);
        let again = prepare(&plan(), &observed, &s, now + Duration::days(10)).unwrap();
        assert_eq!(again.keys, first.keys);
        assert_eq!(again.ca, first.ca);
        assert_eq!(again.serving, first.serving);
        assert!(again.changes.is_empty(), "{:?}", again.changes);

        // Within the renewal window: a new certificate from the same CA, same keys.
        let late = now + Duration::days(s.certificate_days - s.renew_before_days + 1);
        let renewed = prepare(&plan(), &observed, &s, late).unwrap();
        assert_eq!(renewed.keys, first.keys);
        assert_eq!(renewed.ca, first.ca);
        assert_ne!(renewed.serving, first.serving);
    }

    #[test]
    fn a_new_host_name_reissues_the_certificate() {
        let s = settings();
        let now = Utc::now();
        let first = prepare(&plan(), &Observed::empty(), &s, now).unwrap();
        let observed = observed_after_apply(&plan(), &first, now);
        let mut p = plan();
        p.host = Some("registry.example.com".into());
        let m = prepare(&p, &observed, &s, now).unwrap();
        assert_eq!(m.ca, first.ca);
        assert_ne!(m.serving.as_ref().unwrap().pem, first.serving.unwrap().pem);
        assert!(serving_names(&p, &s).contains(&"registry.example.com".to_owned()));
    }

    #[test]
    fn the_certificate_chains_to_the_ca() {
        let now = Utc::now();
        let m = prepare(&plan(), &Observed::empty(), &settings(), now).unwrap();
        assert!(verifies(
            &m.ca.unwrap().pem.cert,
            &m.serving.unwrap().pem.cert,
            "registry-quay-app.quay.svc"
        ));
    }
}
