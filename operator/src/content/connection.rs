//! From `spec.registryRef` to an authenticated API client of the registry.
//!
//! Rules:
//! - A managed registry (`registryRef.name`) is reached through its Service
//!   (`<name>-quay-app.<namespace>.svc.<cluster domain>`), trusting the operator's CA when TLS
//!   is managed, with the admin credentials Secret the QuayRegistry controller bootstrapped
//!   (`<name>-quay-admin`). It must be `Available` first.
//! - An external registry (`registryRef.endpoint`) is reached at its URL with the credentials
//!   Secret (`token`, or `username` + `password`) and the optional CA.
//! - Nothing here writes anything; every failure is a [`ContentError`] naming what to fix.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, Service};
use kube::{Api, ResourceExt};
use quayside_client::Client as RegistryClient;

use super::error::ContentError;
use crate::controllers::quayregistry::names::Names;
use crate::crd::{QuayRegistry, RegistryRef};
use crate::runtime::context::Context;

/// An API client of the registry a content resource lives in.
#[derive(Clone, Debug)]
pub struct Connection {
    pub api: RegistryClient,
    /// The registry's API base (for the status and the pull Secret's host).
    pub endpoint: String,
    /// The host clients pull from (`host[:port]`), for pull Secrets.
    pub registry_host: String,
}

/// Which registry a reference points at, as a key: two resources with the same key and the
/// same object name claim the same registry object.
pub fn registry_key(namespace: &str, r: &RegistryRef) -> String {
    match (&r.name, &r.endpoint) {
        (Some(name), _) => format!("quayregistry:{namespace}/{name}"),
        (None, Some(endpoint)) => format!("endpoint:{}", endpoint.trim_end_matches('/')),
        (None, None) => String::new(),
    }
}

/// Checks the reference's shape (the CRD's CEL rule, again).
pub fn validate(r: &RegistryRef) -> Result<(), ContentError> {
    match (&r.name, &r.endpoint) {
        (Some(n), None) if !n.is_empty() => Ok(()),
        (None, Some(e)) if e.starts_with("https://") || e.starts_with("http://") => {
            if r.credentials_secret_ref.is_none() {
                return Err(ContentError::InvalidSpec(
                    "registryRef.endpoint needs registryRef.credentialsSecretRef".into(),
                ));
            }
            Ok(())
        }
        (None, Some(e)) => Err(ContentError::InvalidSpec(format!(
            "registryRef.endpoint {e:?} is not an http:// or https:// URL"
        ))),
        _ => Err(ContentError::InvalidSpec(
            "registryRef: set exactly one of name (a QuayRegistry in this namespace) and endpoint"
                .into(),
        )),
    }
}

/// Connects to the registry `r` points at, from a resource in `namespace`.
pub async fn connect(
    ctx: &Context,
    namespace: &str,
    r: &RegistryRef,
) -> Result<Connection, ContentError> {
    validate(r)?;
    if let Some(name) = &r.name {
        return managed(ctx, namespace, name).await;
    }
    let endpoint = r.endpoint.clone().unwrap_or_default();
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let mut http = base_http();
    if let Some(ca) = &r.ca_secret_ref {
        let key = ca.key.as_deref().unwrap_or("ca.crt");
        let pem = secret_key(&secrets, &ca.name, key).await?.ok_or_else(|| {
            ContentError::RegistryNotFound(format!("the CA Secret {} has no key {key}", ca.name))
        })?;
        http = trust(http, &pem, &ca.name)?;
    }
    if r.insecure_skip_tls_verify {
        http = http.danger_accept_invalid_certs(true);
    }
    let http = http
        .build()
        .map_err(|e| ContentError::RegistryUnreachable(format!("HTTP client: {e}")))?;
    let creds = r.credentials_secret_ref.as_ref().map(|s| s.name.clone());
    let creds = creds.unwrap_or_default();
    let api = authenticate(
        RegistryClient::with_http(http, endpoint.clone()),
        &secrets,
        &creds,
    )
    .await?;
    let registry_host = host_of(&endpoint);
    Ok(Connection {
        api,
        endpoint,
        registry_host,
    })
}

async fn managed(ctx: &Context, namespace: &str, name: &str) -> Result<Connection, ContentError> {
    let registries: Api<QuayRegistry> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(registry) = registries.get_opt(name).await? else {
        return Err(ContentError::RegistryNotFound(format!(
            "no QuayRegistry {name} in namespace {namespace}"
        )));
    };
    if registry
        .condition("Available")
        .is_none_or(|c| c.status != "True")
    {
        return Err(ContentError::RegistryNotReady(format!(
            "QuayRegistry {name} is not Available yet"
        )));
    }
    let names = Names::new(name);
    let (http, endpoint, authority) = managed_http(ctx, &registry).await?;
    let admin = names.admin_credentials();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let ready = secrets
        .get_opt(&admin)
        .await?
        .is_some_and(|s| !super::bootstrap::is_pending(&s));
    if !ready {
        return Err(ContentError::RegistryNotReady(format!(
            "QuayRegistry {name} has no admin credentials in Secret {admin} yet (see its AdminCredentials condition)"
        )));
    }
    let api = authenticate(
        RegistryClient::with_http(http, endpoint.clone()),
        &secrets,
        &admin,
    )
    .await?;
    let registry_host = registry
        .status
        .as_ref()
        .and_then(|s| s.registry_endpoint.as_deref())
        .map(host_of)
        .unwrap_or_else(|| authority.clone());
    Ok(Connection {
        api,
        endpoint,
        registry_host,
    })
}

/// An HTTP client of a managed registry's Service, its API base URL and its authority.
///
/// The client connects to the Service (its cluster IP, or the test bench's resolver) under the
/// name its certificate covers: the Service's DNS name with the operator's CA when TLS is
/// managed, else the public host of `status.registryEndpoint` trusting the public roots, the
/// `ca.crt` of the tls component's Secret (as cert-manager writes it) and the bundle's
/// `ssl.cert` and `extra_ca_cert_*`.
pub async fn managed_http(
    ctx: &Context,
    registry: &QuayRegistry,
) -> Result<(reqwest::Client, String, String), ContentError> {
    let namespace = registry.namespace().unwrap_or_default();
    let name = registry.name_any();
    let names = Names::new(&name);
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &namespace);
    let svc = names.quay_app();
    let Some(service) = services.get_opt(&svc).await? else {
        return Err(ContentError::RegistryNotReady(format!(
            "QuayRegistry {name} has no Service {svc} yet"
        )));
    };
    let spec = service.spec.clone().unwrap_or_default();
    let port = spec
        .ports
        .as_ref()
        .and_then(|p| p.first())
        .cloned()
        .ok_or_else(|| ContentError::RegistryNotReady(format!("Service {svc} has no port")))?;
    let port_u16 = u16::try_from(port.port).unwrap_or(443);
    let https = port.name.as_deref() == Some("https") || port.port == 443;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut http = base_http();
    let service_host = format!("{svc}.{namespace}.svc.{}", ctx.settings.cluster_domain);
    let mut host = service_host.clone();
    if https {
        match secrets.get_opt(&names.ca()).await? {
            Some(ca) => {
                let pem = ca
                    .data
                    .and_then(|mut d| d.remove("ca.crt"))
                    .map(|b| b.0)
                    .unwrap_or_default();
                http = trust(http, &pem, &names.ca())?;
            }
            None => {
                // The user's certificate: it names the public host, not the Service.
                if let Some(public) = registry
                    .status
                    .as_ref()
                    .and_then(|s| s.registry_endpoint.as_deref())
                {
                    let public = host_of(public);
                    host = public.split(':').next().unwrap_or(&public).to_owned();
                }
                // A cert-manager Secret named by the tls component carries its CA.
                let tls_secret = registry
                    .spec
                    .components
                    .iter()
                    .find(|c| c.kind == crate::crd::ComponentKind::Tls)
                    .and_then(|c| c.secret_ref.as_ref())
                    .map(|r| r.name.clone());
                if let Some(tls) = tls_secret
                    && let Some(pem) = secrets
                        .get_opt(&tls)
                        .await?
                        .and_then(|s| s.data)
                        .and_then(|mut d| d.remove("ca.crt"))
                {
                    http = trust(http, &pem.0, &tls)?;
                }
                if let Some(config) = secrets.get_opt(&names.quay_config()).await? {
                    for (key, value) in config.data.unwrap_or_default() {
                        if key == "ssl.cert" || key.starts_with("extra_ca_cert") {
                            http = trust(http, &value.0, &names.quay_config())?;
                        }
                    }
                }
            }
        }
    }
    let address = match &ctx.resolver {
        Some(resolve) => resolve(&namespace, &svc, port_u16),
        None => spec
            .cluster_ip
            .as_deref()
            .filter(|ip| *ip != "None" && !ip.is_empty())
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .map(|ip| std::net::SocketAddr::new(ip, port_u16)),
    };
    if let Some(addr) = address {
        http = http.resolve(&host, addr);
    }
    let scheme = if https { "https" } else { "http" };
    let default_port = if https { 443 } else { 80 };
    let authority = if port.port == default_port {
        host.clone()
    } else {
        format!("{host}:{}", port.port)
    };
    let endpoint = format!("{scheme}://{authority}");
    let http = http
        .build()
        .map_err(|e| ContentError::RegistryUnreachable(format!("HTTP client: {e}")))?;
    Ok((http, endpoint, authority))
}

fn base_http() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
}

fn trust(
    http: reqwest::ClientBuilder,
    pem: &[u8],
    secret: &str,
) -> Result<reqwest::ClientBuilder, ContentError> {
    let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
        ContentError::InvalidSpec(format!("the CA in Secret {secret} is not PEM: {e}"))
    })?;
    Ok(certs
        .into_iter()
        .fold(http, |b, c| b.add_root_certificate(c)))
}

async fn secret_key(
    secrets: &Api<Secret>,
    name: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, ContentError> {
    let Some(secret) = secrets.get_opt(name).await? else {
        return Err(ContentError::RegistryNotFound(format!(
            "Secret {name} does not exist"
        )));
    };
    Ok(secret
        .data
        .and_then(|mut d| d.remove(key))
        .map(|b| b.0)
        .filter(|b| !b.is_empty()))
}

/// Adds the Secret's credentials: `token` (OAuth) wins over `username` + `password`.
async fn authenticate(
    api: RegistryClient,
    secrets: &Api<Secret>,
    name: &str,
) -> Result<RegistryClient, ContentError> {
    let Some(secret) = secrets.get_opt(name).await? else {
        return Err(ContentError::RegistryNotFound(format!(
            "the credentials Secret {name} does not exist"
        )));
    };
    let data = secret.data.unwrap_or_default();
    let text = |k: &str| {
        data.get(k)
            .map(|b| String::from_utf8_lossy(&b.0).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    if let Some(token) = text("token") {
        return Ok(api.with_token(token));
    }
    match (text("username"), text("password")) {
        (Some(u), Some(p)) => Ok(api.with_basic(u, p)),
        _ => Err(ContentError::Unauthorized(format!(
            "the credentials Secret {name} has neither a token nor a username and password"
        ))),
    }
}

/// `host[:port]` of a URL.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::SecretRef;

    #[test]
    fn references_are_checked_and_keyed() {
        let named = RegistryRef {
            name: Some("registry".into()),
            ..RegistryRef::default()
        };
        assert!(validate(&named).is_ok());
        assert_eq!(registry_key("ns", &named), "quayregistry:ns/registry");
        let external = RegistryRef {
            endpoint: Some("https://quay.example.com/".into()),
            credentials_secret_ref: Some(SecretRef { name: "c".into() }),
            ..RegistryRef::default()
        };
        assert!(validate(&external).is_ok());
        assert_eq!(registry_key("a", &external), registry_key("b", &external));
        let both = RegistryRef {
            name: Some("r".into()),
            ..external.clone()
        };
        assert!(matches!(validate(&both), Err(ContentError::InvalidSpec(_))));
        let no_creds = RegistryRef {
            credentials_secret_ref: None,
            ..external
        };
        assert!(matches!(
            validate(&no_creds),
            Err(ContentError::InvalidSpec(_))
        ));
        assert!(validate(&RegistryRef::default()).is_err());
        assert_eq!(
            host_of("https://quay.example.com:8443/x"),
            "quay.example.com:8443"
        );
    }
}
