//! The ProxyCache controller: an organization configured as a pull-through cache of an
//! upstream registry (the shared machinery in [`crate::content`] does the rest).
//!
//! Rules:
//! - The organization is created when missing (with an `OrganizationCreated` Event) and never
//!   deleted here; deleting the resource (`deletionPolicy: Delete`) removes the proxy
//!   configuration only.
//! - The registry answers a configuration without its credentials, so the status keeps the
//!   version of the credentials Secret (`<name>@<resourceVersion>`) the configuration was
//!   made with; a changed Secret triggers a reconcile that applies it.
//! - The registry has no call to change a configuration: a configuration that differs from
//!   the spec is validated (`validateproxycache`), then deleted and created again. A refused
//!   validation changes nothing and is a condition with the registry's words: wrong
//!   credentials are `InvalidSpec` (fix the Secret), anything else `UpstreamUnreachable`
//!   (retried).
//! - A reconcile whose configuration matches makes no writes (validation is a POST, so it is
//!   done only before a change).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use quayside_client as api;
use serde_json::{Map, Value, json};

use crate::content::error::{ApiResultExt, describe, found};
use crate::content::{self, Connection, ContentError, ContentKind, Synced};
use crate::crd::{ContentStatus, DeletionPolicy, Organization, ProxyCache, RegistryRef};
use crate::runtime::context::Context;

impl ContentKind for ProxyCache {
    const NOUN: &'static str = "proxy cache of organization";

    fn registry_ref(&self) -> &RegistryRef {
        &self.spec.registry_ref
    }
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn resync_interval(&self) -> Option<&str> {
        self.spec.resync_interval.as_deref()
    }
    fn object_name(&self) -> String {
        self.spec.organization.clone()
    }
    fn content_status(&self) -> Option<&ContentStatus> {
        self.status.as_ref().map(|s| &s.content)
    }
    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
    fn validate(&self) -> Result<(), ContentError> {
        validate(self).map(|_| ())
    }
    async fn sync(&self, ctx: &Context, conn: &Connection) -> Result<Synced, ContentError> {
        sync(self, ctx, conn).await
    }
    async fn delete(&self, _ctx: &Context, conn: &Connection) -> Result<(), ContentError> {
        let org = self.object_name();
        match conn.api.delete_proxy_cache(&org).await {
            Err(e) if e.status().map(|s| s.as_u16()) != Some(404) => Err(ContentError::from_api(
                &format!("delete the proxy cache of {org}"),
                e,
            )),
            _ => Ok(()),
        }
    }
}

fn invalid(message: String) -> ContentError {
    ContentError::InvalidSpec(message)
}

/// The staleness period in seconds: a number of seconds (`86400`, `"86400"`) or a duration
/// (`24h`).
pub fn expiration_seconds(e: &IntOrString) -> Result<i64, String> {
    let secs = match e {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(|_| format!("{s:?} is too large"))?
        }
        IntOrString::String(s) => content::duration::parse(s)?
            .as_secs()
            .try_into()
            .map_err(|_| format!("{s:?} is too long"))?,
    };
    if secs <= 0 {
        return Err(format!("{secs} is not a positive number of seconds"));
    }
    Ok(secs)
}

/// The spec's own rules, checked before any call; answers the staleness period in seconds.
pub fn validate(p: &ProxyCache) -> Result<i64, ContentError> {
    let org = &p.spec.organization;
    if !api::is_valid_namespace_name(org) {
        return Err(invalid(format!(
            "organization name {org:?} is not valid: 2 to 255 lower-case letters, digits and single separators (. _ -)"
        )));
    }
    let up = p.spec.upstream.trim();
    if up.is_empty() || up.contains(char::is_whitespace) {
        return Err(invalid(format!(
            "upstream {:?} is not a registry host",
            p.spec.upstream
        )));
    }
    if up.contains("://") {
        return Err(invalid(format!(
            "upstream {up:?} is a URL: give the host (and optional port and namespace), e.g. quay.io or registry.example.com:5000/library; set insecure for plain HTTP"
        )));
    }
    if let Some(s) = &p.spec.credentials_secret_ref
        && s.name.is_empty()
    {
        return Err(invalid("credentialsSecretRef.name is empty".into()));
    }
    if let Some(r) = &p.spec.resync_interval {
        content::duration::parse(r).map_err(|e| invalid(format!("resyncInterval: {e}")))?;
    }
    match &p.spec.expiration {
        Some(e) => expiration_seconds(e).map_err(|m| invalid(format!("expiration: {m}"))),
        None => Ok(api::DEFAULT_PROXY_CACHE_EXPIRATION_S),
    }
}

/// Upstream credentials from the Secret: `(username, password, version)`.
async fn credentials(
    ctx: &Context,
    p: &ProxyCache,
) -> Result<(Option<String>, Option<String>, Option<String>), ContentError> {
    let Some(r) = &p.spec.credentials_secret_ref else {
        return Ok((None, None, None));
    };
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &p.namespace().unwrap_or_default());
    let Some(secret) = secrets.get_opt(&r.name).await? else {
        return Err(invalid(format!(
            "credentialsSecretRef: Secret {} does not exist",
            r.name
        )));
    };
    let version = format!(
        "{}@{}",
        r.name,
        secret.resource_version().unwrap_or_default()
    );
    let data = secret.data.unwrap_or_default();
    let text = |k: &str| {
        data.get(k)
            .map(|b| String::from_utf8_lossy(&b.0).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    match (text("username"), text("password")) {
        (Some(u), Some(pw)) => Ok((Some(u), Some(pw), Some(version))),
        _ => Err(invalid(format!(
            "credentialsSecretRef: Secret {} needs the keys username and password",
            r.name
        ))),
    }
}

async fn sync(p: &ProxyCache, ctx: &Context, conn: &Connection) -> Result<Synced, ContentError> {
    let c = &conn.api;
    let org = p.object_name();
    let expiration = validate(p)?;
    let upstream = p.spec.upstream.trim().to_owned();
    let (username, password, version) = credentials(ctx, p).await?;
    let previous = p.status.clone().unwrap_or_default();
    let mut changes = Vec::new();

    if found(
        c.organization(&org).await,
        &format!("read organization {org}"),
    )?
    .is_none()
    {
        c.create_organization(&api::CreateOrganizationRequest {
            name: org.clone(),
            email: None,
        })
        .await
        .ctx(&format!("create organization {org}"))?;
        // Said at once: a refused validation below would keep it out of the sync's changes.
        content::publish(
            ctx,
            p,
            EventType::Normal,
            "OrganizationCreated",
            "Create",
            &format!("created organization {org} for the proxy cache"),
        )
        .await;
    }

    let current = c
        .proxy_cache(&org)
        .await
        .ctx(&format!("read the proxy cache of {org}"))?;
    let existed = current.is_configured();
    let matches = existed
        && current.upstream_registry == upstream
        && current.insecure.unwrap_or(false) == p.spec.insecure
        && current
            .expiration_s
            .unwrap_or(api::DEFAULT_PROXY_CACHE_EXPIRATION_S)
            == expiration
        && previous.credentials_version == version;
    if !matches {
        let request = api::ProxyCacheRequest {
            org_name: Some(org.clone()),
            upstream_registry: upstream.clone(),
            upstream_registry_username: username,
            upstream_registry_password: password,
            insecure: Some(p.spec.insecure),
            expiration_s: Some(expiration),
        };
        if let Err(e) = c.validate_proxy_cache(&org, &request).await {
            return Err(refused(p, &upstream, e));
        }
        if existed {
            c.delete_proxy_cache(&org)
                .await
                .ctx(&format!("replace the proxy cache of {org}"))?;
        }
        c.create_proxy_cache(&org, &request)
            .await
            .ctx(&format!("configure the proxy cache of {org}"))?;
        changes.push(if existed {
            format!("proxy cache of {org} reconfigured for {upstream}")
        } else {
            format!("proxy cache of {org} configured for {upstream}")
        });
    }

    let mut status = Map::new();
    status.insert("upstream".into(), json!(upstream));
    status.insert("expirationSeconds".into(), json!(expiration));
    if let Some(v) = version {
        status.insert("credentialsVersion".into(), json!(v));
    }
    Ok(Synced {
        existed,
        changes,
        status,
        requeue: None,
    })
}

/// A refused validation as a condition a person can act on.
fn refused(p: &ProxyCache, upstream: &str, e: api::ClientError) -> ContentError {
    let said = describe(&e);
    match e.status().map(|s| s.as_u16()) {
        Some(400) if said.contains("Failed login") => {
            let secret = p
                .spec
                .credentials_secret_ref
                .as_ref()
                .map_or("(none: anonymous)".to_owned(), |s| {
                    format!("Secret {}", s.name)
                });
            invalid(format!(
                "upstream {upstream} refused the credentials of {secret}: {said}"
            ))
        }
        Some(400) => ContentError::UpstreamUnreachable(format!(
            "the registry could not reach upstream {upstream} (insecure: {}): {said}",
            p.spec.insecure
        )),
        _ => ContentError::from_api(&format!("validate upstream {upstream}"), e),
    }
}

/// Runs the ProxyCache controller; a ProxyCache is also looked at again when an
/// Organization of its organization or its credentials Secret changes.
pub async fn run_controller(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    content::run::<ProxyCache, _>(ctx, namespace, shutdown, |c, client, ns| {
        let orgs: Api<Organization> = match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let secrets: Api<Secret> = match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let store = c.store();
        let by_secret = store.clone();
        c.watches(orgs, watcher::Config::default(), move |org| {
            let name = org.object_name();
            let ns = org.namespace();
            store
                .state()
                .into_iter()
                .filter(|p| p.namespace() == ns && p.spec.organization == name)
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        })
        // A fixed or rotated credentials Secret is applied at once, not at the next resync.
        .watches(secrets, watcher::Config::default(), move |secret| {
            let name = secret.name_any();
            let ns = secret.namespace();
            by_secret
                .state()
                .into_iter()
                .filter(|p| {
                    p.namespace() == ns
                        && p.spec
                            .credentials_secret_ref
                            .as_ref()
                            .is_some_and(|r| r.name == name)
                })
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        })
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(yaml: &str) -> ProxyCache {
        serde_yaml::from_str(yaml).unwrap()
    }

    const OK: &str = r#"
apiVersion: quayside.dev/v1alpha1
kind: ProxyCache
metadata: {name: dockerhub}
spec:
  registryRef: {name: registry}
  organization: dockerhub
  upstream: registry-1.docker.io
  credentialsSecretRef: {name: dockerhub-login}
  expiration: 12h
"#;

    #[test]
    fn the_spec_is_checked_before_any_call() {
        let ok = proxy(OK);
        assert_eq!(validate(&ok).unwrap(), 43_200);
        assert_eq!(ok.object_name(), "dockerhub");
        let secs = proxy(&OK.replace("12h", "3600"));
        assert_eq!(validate(&secs).unwrap(), 3600);
        let quoted = proxy(&OK.replace("12h", "\"600\""));
        assert_eq!(validate(&quoted).unwrap(), 600);
        let default = proxy(&OK.replace("  expiration: 12h\n", ""));
        assert_eq!(
            validate(&default).unwrap(),
            api::DEFAULT_PROXY_CACHE_EXPIRATION_S
        );
        for (from, to, says) in [
            ("12h", "soon", "expiration"),
            ("12h", "0", "positive"),
            (
                "registry-1.docker.io",
                "https://registry-1.docker.io",
                "is a URL",
            ),
            ("registry-1.docker.io", "\"\"", "not a registry host"),
            (
                "organization: dockerhub",
                "organization: Docker_Hub",
                "not valid",
            ),
        ] {
            let bad = proxy(&OK.replace(from, to));
            let e = validate(&bad).unwrap_err();
            assert_eq!(e.reason(), "InvalidSpec");
            assert!(e.to_string().contains(says), "{to}: {e}");
        }
    }

    #[test]
    fn refusals_say_what_to_fix() {
        let p = proxy(OK);
        let body = |m: &str| api::ClientError::Api {
            status: reqwest::StatusCode::BAD_REQUEST,
            body: json!({"error_message": m, "error_type": "invalid_request"}).to_string(),
        };
        let login = refused(
            &p,
            "r.example.com",
            body("Failed login to remote registry. Please verify entered details and try again."),
        );
        assert_eq!(login.reason(), "InvalidSpec");
        assert!(
            login.to_string().contains("Secret dockerhub-login"),
            "{login}"
        );
        let down = refused(
            &p,
            "r.example.com",
            body("Failed to validate Proxy cache configuration"),
        );
        assert_eq!(down.reason(), "UpstreamUnreachable");
        assert!(down.retry());
        assert!(down.to_string().contains("Failed to validate"), "{down}");
    }
}
