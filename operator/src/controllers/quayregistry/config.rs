//! The config bundle: parsing the user's `config.yaml` and checking the keys the operator
//! relies on.
//!
//! Rules:
//! - The operator validates only the structure it needs (the keys of unmanaged components,
//!   `SERVER_HOSTNAME`, `PREFERRED_URL_SCHEME`); every problem names the key. The registry
//!   validates the whole file again at startup (`quayside config validate` does the same
//!   offline), so keys the operator does not know pass through untouched.
//! - No API calls: everything here works on bytes already read.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

/// Bundle key holding the configuration.
pub const CONFIG_FILE: &str = "config.yaml";
/// Bundle keys holding a TLS certificate and key next to the configuration.
pub const SSL_CERT: &str = "ssl.cert";
pub const SSL_KEY: &str = "ssl.key";

/// A certificate and its key (PEM bytes).
pub type TlsPair = (Vec<u8>, Vec<u8>);

/// A parsed config bundle.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bundle {
    /// The user's `config.yaml` (an empty mapping when absent or empty).
    pub config: Mapping,
    /// Every other file of the bundle (`ssl.cert`, `extra_ca_cert_*`, ...).
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    /// Parses a bundle Secret's data. Errors name the file and, where YAML says, the line.
    pub fn parse(secret_name: &str, data: &BTreeMap<String, Vec<u8>>) -> Result<Bundle, String> {
        let mut files = data.clone();
        let config = match files.remove(CONFIG_FILE) {
            None => Mapping::new(),
            Some(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| {
                    format!("{CONFIG_FILE} in Secret {secret_name} is not UTF-8 text")
                })?;
                if text.trim().is_empty() {
                    Mapping::new()
                } else {
                    match serde_yaml::from_str::<Value>(&text) {
                        Ok(Value::Mapping(m)) => m,
                        Ok(Value::Null) => Mapping::new(),
                        Ok(_) => {
                            return Err(format!(
                                "{CONFIG_FILE} in Secret {secret_name} must be a mapping of keys to values"
                            ));
                        }
                        Err(e) => {
                            return Err(format!(
                                "{CONFIG_FILE} in Secret {secret_name} is not valid YAML: {e}"
                            ));
                        }
                    }
                }
            }
        };
        Ok(Bundle { config, files })
    }

    /// A top-level key of the configuration.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.config.get(key).filter(|v| !v.is_null())
    }

    /// A top-level string key; `Err` names the key when it is not a string.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("{key} must be a string")),
        }
    }

    /// The bundle's TLS pair, if it has one; `Err` when only half of it is there.
    pub fn tls_pair(&self) -> Result<Option<TlsPair>, String> {
        match (self.files.get(SSL_CERT), self.files.get(SSL_KEY)) {
            (Some(c), Some(k)) => Ok(Some((c.clone(), k.clone()))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(format!("{SSL_CERT} is in the bundle but {SSL_KEY} is not")),
            (None, Some(_)) => Err(format!("{SSL_KEY} is in the bundle but {SSL_CERT} is not")),
        }
    }

    /// The builder namespace named by the first `kubernetes` executor, if any.
    pub fn builder_namespace(&self) -> Option<String> {
        self.get("EXECUTORS")?
            .as_sequence()?
            .iter()
            .filter(|e| {
                e.get("EXECUTOR")
                    .and_then(Value::as_str)
                    .is_some_and(|x| x.starts_with("kubernetes"))
            })
            .find_map(|e| e.get("BUILDER_NAMESPACE")?.as_str().map(str::to_owned))
    }
}

/// `SERVER_HOSTNAME`: `host` or `host:port`, no scheme or path.
pub fn check_server_hostname(host: &str) -> Result<(), String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.contains(']') || n.ends_with(']') => (n, Some(p)),
        _ => (host, None),
    };
    if name.is_empty() || name.contains(['/', ' ']) {
        return Err(format!(
            "SERVER_HOSTNAME: {host:?} is not a host name (give host or host:port, without a scheme)"
        ));
    }
    if let Some(p) = port {
        p.parse::<u16>()
            .map_err(|_| format!("SERVER_HOSTNAME: {host:?} has an invalid port"))?;
    }
    Ok(())
}

/// The host part of `SERVER_HOSTNAME` (without the port).
pub fn host_only(server_hostname: &str) -> &str {
    match server_hostname.rsplit_once(':') {
        Some((n, p)) if p.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => n,
        _ => server_hostname,
    }
}

/// `DB_URI` of an external PostgreSQL database (unmanaged `postgres`).
pub fn check_external_db_uri(bundle: &Bundle) -> Result<(), String> {
    let uri = bundle
        .get_str("DB_URI")?
        .ok_or("DB_URI is required when the postgres component is unmanaged")?;
    let rest = uri
        .strip_prefix("postgresql://")
        .or_else(|| uri.strip_prefix("postgres://"))
        .ok_or_else(|| {
            format!(
                "DB_URI: {:?} is not a PostgreSQL URI (postgresql://user:password@host:port/database)",
                uri.split("://").next().unwrap_or(uri)
            )
        })?;
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    if host.is_empty() || host.starts_with('/') {
        return Err("DB_URI: the PostgreSQL URI names no host".into());
    }
    Ok(())
}

/// `DISTRIBUTED_STORAGE_CONFIG` (+ `DISTRIBUTED_STORAGE_PREFERENCE`) of an unmanaged
/// `objectstorage`: the preferred location exists and its driver has its required fields.
pub fn check_external_storage(bundle: &Bundle) -> Result<(), String> {
    const KEY: &str = "DISTRIBUTED_STORAGE_CONFIG";
    let locations = bundle
        .get(KEY)
        .ok_or_else(|| format!("{KEY} is required when the objectstorage component is unmanaged"))?
        .as_mapping()
        .ok_or_else(|| format!("{KEY} must map location names to [driver, parameters]"))?;
    if locations.is_empty() {
        return Err(format!("{KEY} names no storage location"));
    }
    let preferred: Option<String> = match bundle.get("DISTRIBUTED_STORAGE_PREFERENCE") {
        None => None,
        Some(Value::Sequence(s)) => s.first().and_then(Value::as_str).map(str::to_owned),
        Some(_) => {
            return Err("DISTRIBUTED_STORAGE_PREFERENCE must be a list of location names".into());
        }
    };
    let name = match preferred {
        Some(n) => n,
        None if locations.len() == 1 => locations
            .keys()
            .next()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        None => {
            return Err(
                "DISTRIBUTED_STORAGE_PREFERENCE: several storage locations are configured; name the one to use"
                    .into(),
            );
        }
    };
    let entry = locations.get(name.as_str()).ok_or_else(|| {
        format!("DISTRIBUTED_STORAGE_PREFERENCE: location {name:?} is not in {KEY}")
    })?;
    let pair = entry
        .as_sequence()
        .filter(|s| s.len() == 2)
        .ok_or_else(|| format!("{KEY}.{name} must be [driver, {{parameters}}]"))?;
    let driver = pair[0]
        .as_str()
        .ok_or_else(|| format!("{KEY}.{name}[0] must be a driver name"))?;
    let params = pair[1]
        .as_mapping()
        .ok_or_else(|| format!("{KEY}.{name}[1] must be a mapping of parameters"))?;
    let required: &[&str] = match driver {
        "LocalStorage" => &["storage_path"],
        "S3Storage" => &["s3_bucket", "s3_access_key", "s3_secret_key"],
        "RadosGWStorage" => &["hostname", "bucket_name", "access_key", "secret_key"],
        other => {
            return Err(format!(
                "{KEY}.{name}: storage driver {other:?} is not supported (LocalStorage, S3Storage, RadosGWStorage)"
            ));
        }
    };
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|f| match params.get(*f) {
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Number(_)) => false,
            _ => true,
        })
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{KEY}.{name} ({driver}) is missing {}",
            missing.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(yaml: &str) -> Bundle {
        Bundle::parse(
            "b",
            &BTreeMap::from([(CONFIG_FILE.to_owned(), yaml.as_bytes().to_vec())]),
        )
        .unwrap()
    }

    #[test]
    fn parse_errors_name_the_file_and_secret() {
        let data = BTreeMap::from([(CONFIG_FILE.to_owned(), b"a: [1, 2".to_vec())]);
        let e = Bundle::parse("my-bundle", &data).unwrap_err();
        assert!(
            e.starts_with("config.yaml in Secret my-bundle is not valid YAML"),
            "{e}"
        );
        let data = BTreeMap::from([(CONFIG_FILE.to_owned(), b"- a\n- b\n".to_vec())]);
        assert!(Bundle::parse("b", &data).unwrap_err().contains("mapping"));
        assert_eq!(
            Bundle::parse("b", &BTreeMap::new()).unwrap(),
            Bundle::default()
        );
    }

    #[test]
    fn server_hostname_rules() {
        check_server_hostname("quay.example.com").unwrap();
        check_server_hostname("quay.example.com:8443").unwrap();
        assert!(check_server_hostname("https://quay.example.com").is_err());
        assert!(check_server_hostname("quay:http").is_err());
        assert_eq!(host_only("quay.example.com:8443"), "quay.example.com");
        assert_eq!(host_only("quay.example.com"), "quay.example.com");
    }

    #[test]
    fn external_database_needs_a_postgres_uri() {
        assert!(
            check_external_db_uri(&bundle("A: 1"))
                .unwrap_err()
                .starts_with("DB_URI is required")
        );
        assert!(
            check_external_db_uri(&bundle("DB_URI: mysql://x@db/q"))
                .unwrap_err()
                .contains("not a PostgreSQL URI")
        );
        check_external_db_uri(&bundle("DB_URI: postgresql://u:p@db.example:5432/quay")).unwrap();
    }

    #[test]
    fn external_storage_names_what_is_missing() {
        let e = check_external_storage(&bundle("A: 1")).unwrap_err();
        assert!(
            e.starts_with("DISTRIBUTED_STORAGE_CONFIG is required"),
            "{e}"
        );
        let e = check_external_storage(&bundle(
            "DISTRIBUTED_STORAGE_CONFIG:\n  s3:\n    - S3Storage\n    - s3_bucket: b\n",
        ))
        .unwrap_err();
        assert_eq!(
            e,
            "DISTRIBUTED_STORAGE_CONFIG.s3 (S3Storage) is missing s3_access_key, s3_secret_key"
        );
        let e = check_external_storage(&bundle(
            "DISTRIBUTED_STORAGE_CONFIG:\n  a: [LocalStorage, {storage_path: /x}]\n  b: [LocalStorage, {storage_path: /y}]\n",
        ))
        .unwrap_err();
        assert!(e.starts_with("DISTRIBUTED_STORAGE_PREFERENCE"), "{e}");
        let e = check_external_storage(&bundle(
            "DISTRIBUTED_STORAGE_CONFIG:\n  gcs: [GoogleCloudStorage, {bucket_name: x}]\n",
        ))
        .unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        check_external_storage(&bundle(
            "DISTRIBUTED_STORAGE_CONFIG:\n  s3:\n    - S3Storage\n    - {host: s3.example, s3_bucket: b, s3_access_key: a, s3_secret_key: s}\nDISTRIBUTED_STORAGE_PREFERENCE: [s3]\n",
        ))
        .unwrap();
    }

    #[test]
    fn builder_namespace_comes_from_the_first_kubernetes_executor() {
        let b = bundle(
            "EXECUTORS:\n  - EXECUTOR: ec2\n  - EXECUTOR: kubernetesPodman\n    BUILDER_NAMESPACE: builds\n",
        );
        assert_eq!(b.builder_namespace().as_deref(), Some("builds"));
        assert_eq!(bundle("A: 1").builder_namespace(), None);
    }

    #[test]
    fn half_a_tls_pair_is_an_error() {
        let mut b = Bundle::default();
        b.files.insert(SSL_CERT.into(), b"c".to_vec());
        assert!(b.tls_pair().unwrap_err().contains("ssl.key"));
        b.files.insert(SSL_KEY.into(), b"k".to_vec());
        assert!(b.tls_pair().unwrap().is_some());
    }
}
