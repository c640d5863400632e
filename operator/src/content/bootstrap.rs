//! Admin credentials for a managed registry: the operator claims the registry's first
//! superuser itself, so content resources need no hand-made Secret.
//!
//! Rules:
//! - The registry's configuration (written by the QuayRegistry controller) turns
//!   `FEATURE_USER_INITIALIZE` on, guarded by a `USER_INITIALIZE_TOKEN` only the operator
//!   knows, and lists [`ADMIN_USER`] in `SUPER_USERS`: nobody else can claim the registry,
//!   even through an Ingress that routes any host.
//! - The credentials Secret (`<name>-quay-admin`, owned by the QuayRegistry) is written
//!   *before* the user is created, marked pending, and completed with the access token after:
//!   a crash between the two steps retries with the same password instead of losing it.
//! - A database that already has users is not claimed: the `AdminCredentials` condition says
//!   so, and a Secret of that name written by a person (`token`, or `username` + `password`
//!   of a superuser) is used instead.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use quayside_client as qapi;
use serde_json::json;

use super::error::describe;
use crate::controllers::quayregistry::material::{USER_INITIALIZE_TOKEN, random_token};
use crate::controllers::quayregistry::names::{ADMIN_USER, FIELD_MANAGER, Names};
use crate::crd::QuayRegistry;
use crate::runtime::conditions::Computed;
use crate::runtime::context::Context;

/// Annotation on a credentials Secret whose user may not exist yet.
pub const PENDING_ANNOTATION: &str = "quayside.dev/bootstrap-pending";

/// Label of the credentials Secret the operator wrote (value: the QuayRegistry). Not the
/// QuayRegistry's component label: the Secret is not one of the objects its reconcile prunes.
pub const ADMIN_LABEL: &str = "quayside.dev/admin-credentials";

/// Whether the Secret is a bootstrap not finished yet.
pub fn is_pending(secret: &Secret) -> bool {
    secret.annotations().contains_key(PENDING_ANNOTATION)
}

/// The outcome, as the QuayRegistry's `AdminCredentials` condition and the Secret's name
/// (when it holds usable credentials).
pub struct Bootstrap {
    pub condition: Computed,
    pub secret: Option<String>,
    /// Try again soon (the registry was not reachable yet).
    pub retry: bool,
}

fn condition(ok: bool, reason: &str, message: String) -> Computed {
    Computed::new("AdminCredentials", ok, reason, message)
}

/// Makes sure the content controllers have admin credentials for `registry`, claiming the
/// first superuser when the registry is `available` and nobody has.
pub async fn ensure_admin(ctx: &Context, registry: &QuayRegistry, available: bool) -> Bootstrap {
    match ensure(ctx, registry, available).await {
        Ok(b) => b,
        Err(e) => Bootstrap {
            condition: condition(false, "KubernetesError", e.to_string()),
            secret: None,
            retry: true,
        },
    }
}

async fn ensure(
    ctx: &Context,
    registry: &QuayRegistry,
    available: bool,
) -> Result<Bootstrap, kube::Error> {
    let ns = registry.namespace().unwrap_or_default();
    let name = registry.name_any();
    let names = Names::new(&name);
    let admin = names.admin_credentials();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let existing = secrets.get_opt(&admin).await?;
    if let Some(s) = &existing
        && !is_pending(s)
    {
        let ours = s.labels().contains_key(ADMIN_LABEL);
        return Ok(Bootstrap {
            condition: condition(
                true,
                if ours { "Bootstrapped" } else { "UserSupplied" },
                format!("Secret {admin} holds the admin credentials content resources use"),
            ),
            secret: Some(admin),
            retry: false,
        });
    }
    if !available {
        return Ok(Bootstrap {
            condition: condition(
                false,
                "RegistryNotAvailable",
                "the first superuser is created once the registry is Available".into(),
            ),
            secret: None,
            retry: false,
        });
    }
    let keys = secrets.get_opt(&names.managed_keys()).await?;
    let Some(init_token) = keys
        .and_then(|k| k.data)
        .and_then(|d| d.get(USER_INITIALIZE_TOKEN).cloned())
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
    else {
        return Ok(Bootstrap {
            condition: condition(
                false,
                "NoInitializeToken",
                format!(
                    "Secret {} has no {USER_INITIALIZE_TOKEN} yet",
                    names.managed_keys()
                ),
            ),
            secret: None,
            retry: true,
        });
    };

    // 1. The pending Secret, so the password survives whatever happens next.
    let password = match existing
        .as_ref()
        .and_then(|s| s.data.as_ref()?.get("password").cloned())
    {
        Some(p) => String::from_utf8_lossy(&p.0).into_owned(),
        None => {
            let p = random_token().unwrap_or_default();
            write(&secrets, registry, &admin, &p, None).await?;
            p
        }
    };

    // 2. The user.
    let (http, endpoint, _) = match super::connection::managed_http(ctx, registry).await {
        Ok(v) => v,
        Err(e) => {
            return Ok(Bootstrap {
                condition: condition(false, e.reason(), e.to_string()),
                secret: None,
                retry: true,
            });
        }
    };
    let api = qapi::Client::with_http(http, endpoint);
    let created = api
        .initialize(&qapi::InitializeRequest {
            username: ADMIN_USER.into(),
            password: password.clone(),
            email: None,
            access_token: true,
            initialize_token: Some(init_token),
        })
        .await;
    match created {
        Ok(done) => {
            // 3. Complete the Secret.
            write(
                &secrets,
                registry,
                &admin,
                &password,
                done.access_token.as_deref(),
            )
            .await?;
            Ok(Bootstrap {
                condition: condition(
                    true,
                    "Bootstrapped",
                    format!(
                        "created superuser {ADMIN_USER}; its credentials are in Secret {admin}"
                    ),
                ),
                secret: Some(admin),
                retry: false,
            })
        }
        Err(e) => {
            let said = describe(&e);
            let (reason, message, retry) = if said.contains("non-empty database") {
                (
                    "DatabaseNotEmpty",
                    format!(
                        "the registry's database already has users, so the operator did not create one: write Secret {admin} with the token (or username and password) of a superuser; {said}"
                    ),
                    false,
                )
            } else if said.contains("FEATURE_USER_INITIALIZE") || said.contains("initialize_token")
            {
                (
                    "InitializeRefused",
                    format!(
                        "the registry refused to create the first superuser (the config bundle may set FEATURE_USER_INITIALIZE or USER_INITIALIZE_TOKEN): write Secret {admin} with a superuser's token or username and password; {said}"
                    ),
                    false,
                )
            } else {
                ("RegistryUnreachable", said, true)
            };
            Ok(Bootstrap {
                condition: condition(false, reason, message),
                secret: None,
                retry,
            })
        }
    }
}

/// Writes the credentials Secret; without `token` it is marked pending.
async fn write(
    secrets: &Api<Secret>,
    registry: &QuayRegistry,
    name: &str,
    password: &str,
    token: Option<&str>,
) -> Result<(), kube::Error> {
    let mut data = BTreeMap::from([
        (
            "username".to_owned(),
            ByteString(ADMIN_USER.as_bytes().to_vec()),
        ),
        (
            "password".to_owned(),
            ByteString(password.as_bytes().to_vec()),
        ),
    ]);
    let mut annotations = serde_json::Map::new();
    match token {
        Some(t) => {
            data.insert("token".into(), ByteString(t.as_bytes().to_vec()));
        }
        None => {
            annotations.insert(PENDING_ANNOTATION.into(), json!("true"));
        }
    }
    let body = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "labels": {ADMIN_LABEL: registry.name_any()},
            "annotations": annotations,
            "ownerReferences": registry.controller_owner_ref(&()).into_iter().collect::<Vec<_>>(),
        },
        "type": "Opaque",
        "data": data,
    });
    secrets
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(())
}
