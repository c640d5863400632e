//! The Robot controller: a robot account, its repository roles, teams and federation, the
//! pull Secret with its token (and its copies), token rotation and ServiceAccount bindings.
//!
//! Rules:
//! - Registry first (robot, roles, teams, federation, rotation), then Kubernetes (Secrets,
//!   ServiceAccounts): a Secret always holds a token the registry accepts.
//! - Every write is preceded by a read and skipped when nothing differs, for the registry and
//!   for Kubernetes alike.
//! - A rotation happens when `rotation.every` has passed since the last one, or when the
//!   `quayside.dev/rotate` annotation holds a value not acted on yet; the Secret and every copy
//!   get the new token in the same reconcile.
//! - The Secret in the Robot's namespace is owned by the Robot (garbage-collected with it);
//!   copies elsewhere and ServiceAccount bindings are undone by the finalizer.
//! - Federation identities: the operator adds those listed and removes only those it added
//!   before (`status.managedFederation`); identities set up by hand stay.
//! - A team also listed with exact members by an Organization is a conflict ([`team_claims`]).

pub mod team_claims;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use quayside_client as api;
use serde_json::{Map, Value, json};

use crate::content::error::ApiResultExt;
use crate::content::{self, Connection, ContentError, ContentKind, Synced};
use crate::crd::{
    ContentStatus, DeletionPolicy, FederationIdentity, Organization, RegistryRef, Robot,
};
use crate::runtime::context::Context;

/// The annotation that asks for a rotation when its value changes.
pub const ROTATE_ANNOTATION: &str = "quayside.dev/rotate";
/// Label on every Secret written for a Robot: `<namespace>.<name>` of the Robot.
pub const ROBOT_LABEL: &str = "quayside.dev/robot";

impl Robot {
    fn short_name(&self) -> String {
        self.spec.name.clone().unwrap_or_else(|| self.name_any())
    }
    fn label_value(&self) -> String {
        format!(
            "{}.{}",
            self.namespace().unwrap_or_default(),
            self.name_any()
        )
    }
}

impl ContentKind for Robot {
    const NOUN: &'static str = "robot";

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
        format!("{}+{}", self.spec.namespace, self.short_name())
    }
    fn content_status(&self) -> Option<&ContentStatus> {
        self.status.as_ref().map(|s| &s.content)
    }
    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
    fn validate(&self) -> Result<(), ContentError> {
        validate(self)
    }
    fn needs_cleanup(&self) -> bool {
        let s = self.status.as_ref();
        self.spec
            .secret
            .as_ref()
            .is_some_and(|s| !s.namespaces.is_empty())
            || !self.spec.bind_service_accounts.is_empty()
            || s.is_some_and(|s| {
                !s.secret_namespaces.is_empty() || !s.bound_service_accounts.is_empty()
            })
    }
    async fn sync(&self, ctx: &Context, conn: &Connection) -> Result<Synced, ContentError> {
        sync(self, ctx, conn).await
    }
    async fn delete(&self, _ctx: &Context, conn: &Connection) -> Result<(), ContentError> {
        let org = org_of(self, conn).await?;
        match conn
            .api
            .delete_robot(org.as_deref(), &self.short_name())
            .await
        {
            Err(e) if !robot_absent(&e) => Err(ContentError::from_api(
                &format!("delete robot {}", self.object_name()),
                e,
            )),
            _ => Ok(()),
        }
    }
    async fn cleanup(&self, ctx: &Context) -> Result<(), ContentError> {
        let ns = self.namespace().unwrap_or_default();
        let status = self.status.clone().unwrap_or_default();
        let secret = self.spec.secret.as_ref().map(|s| s.name.clone());
        if let Some(secret) = &secret {
            for other in &status.secret_namespaces {
                delete_secret(ctx, other, secret).await?;
            }
            let accounts: BTreeSet<&String> = status
                .bound_service_accounts
                .iter()
                .chain(&self.spec.bind_service_accounts)
                .collect();
            for sa in accounts {
                unbind(ctx, &ns, sa, secret).await?;
            }
        }
        Ok(())
    }
}

/// Quay answers 400 "Could not find robot ..." for a robot that does not exist.
fn robot_absent(e: &api::ClientError) -> bool {
    match e {
        api::ClientError::Api { status, body } => {
            status.as_u16() == 404
                || (status.as_u16() == 400 && body.contains("Could not find robot"))
        }
        api::ClientError::Http(_) => false,
    }
}

fn invalid(message: String) -> ContentError {
    ContentError::InvalidSpec(message)
}

/// The spec's own rules, checked before any call.
pub fn validate(robot: &Robot) -> Result<(), ContentError> {
    let ns = &robot.spec.namespace;
    if !api::is_valid_namespace_name(ns) {
        return Err(invalid(format!(
            "namespace {ns:?} is not a valid registry namespace"
        )));
    }
    let short = robot.short_name();
    let ok = short.len() <= 255
        && short.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && short
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(invalid(format!(
            "robot name {short:?} is not valid: a lower-case letter, then lower-case letters, digits and _"
        )));
    }
    if let Some(r) = &robot.spec.rotation {
        let every = content::duration::parse(&r.every)
            .map_err(|e| invalid(format!("rotation.every: {e}")))?;
        // Shorter than this, the schedule would outrun the reconcile that carries it out.
        if every < Duration::from_secs(1) {
            return Err(invalid("rotation.every must be at least 1s".into()));
        }
    }
    if let Some(r) = &robot.spec.resync_interval {
        content::duration::parse(r).map_err(|e| invalid(format!("resyncInterval: {e}")))?;
    }
    if !robot.spec.bind_service_accounts.is_empty() && robot.spec.secret.is_none() {
        return Err(invalid(
            "bindServiceAccounts needs a secret to bind: set spec.secret".into(),
        ));
    }
    Ok(())
}

/// The robot's owner for the API: `Some(org)`, or `None` for the connected user's namespace.
async fn org_of(robot: &Robot, conn: &Connection) -> Result<Option<String>, ContentError> {
    let ns = &robot.spec.namespace;
    let me = conn
        .api
        .current_user()
        .await
        .ctx("read the operator's user")?;
    Ok((me.username != *ns).then(|| ns.clone()))
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn sync(robot: &Robot, ctx: &Context, conn: &Connection) -> Result<Synced, ContentError> {
    let c = &conn.api;
    let ns = robot.spec.namespace.clone();
    let short = robot.short_name();
    let full = robot.object_name();
    team_claims::check_robot(ctx, robot).await?;
    let org = org_of(robot, conn).await?;
    let mut changes = Vec::new();

    // The robot, with its token and teams.
    let listed = c
        .robots(org.as_deref())
        .await
        .ctx(&format!("list the robots of {ns}"))?;
    let mut current = listed.robots.into_iter().find(|r| r.name == full);
    let existed = current.is_some();
    if current.is_none() {
        c.create_robot(
            org.as_deref(),
            &short,
            &api::CreateRobotRequest {
                description: robot.spec.description.clone(),
                unstructured_metadata: None,
            },
        )
        .await
        .ctx(&format!("create robot {full}"))?;
        current = Some(
            c.robot(org.as_deref(), &short)
                .await
                .ctx(&format!("read robot {full}"))?,
        );
    }
    let current = current.ok_or_else(|| invalid(format!("robot {full} vanished")))?;
    let mut token = current.token.clone().unwrap_or_default();

    // Repository roles: exactly the listed ones.
    let grants = c
        .robot_permissions(org.as_deref(), &short)
        .await
        .ctx(&format!("read the permissions of {full}"))?;
    let have: BTreeMap<String, String> = grants
        .permissions
        .into_iter()
        .map(|g| (g.repository.name, g.role))
        .collect();
    for r in &robot.spec.repositories {
        if have.get(&r.name).map(String::as_str) != Some(r.role.as_str()) {
            c.set_user_permission(&ns, &r.name, &full, r.role.as_str())
                .await
                .ctx(&format!(
                    "give {full} {} on {ns}/{}",
                    r.role.as_str(),
                    r.name
                ))?;
            changes.push(format!("{} on {}", r.role.as_str(), r.name));
        }
    }
    for repo in have.keys() {
        if !robot.spec.repositories.iter().any(|r| &r.name == repo) {
            c.delete_user_permission(&ns, repo, &full)
                .await
                .ctx(&format!("remove {full} from {ns}/{repo}"))?;
            changes.push(format!("removed from {repo}"));
        }
    }

    // Teams (organizations only).
    if let Some(org) = &org {
        let in_teams: BTreeSet<String> = current
            .teams
            .iter()
            .flatten()
            .map(|t| t.name.clone())
            .collect();
        let want: BTreeSet<String> = robot.spec.teams.iter().cloned().collect();
        for t in want.difference(&in_teams) {
            c.add_team_member(org, t, &full)
                .await
                .ctx(&format!("add {full} to team {t}"))?;
            changes.push(format!("joined team {t}"));
        }
        for t in in_teams.difference(&want) {
            c.remove_team_member(org, t, &full)
                .await
                .ctx(&format!("remove {full} from team {t}"))?;
            changes.push(format!("left team {t}"));
        }
    } else if !robot.spec.teams.is_empty() {
        return Err(invalid(format!(
            "{ns} is a user namespace: its robots cannot join teams"
        )));
    }

    // Federation: the listed identities, keeping those the operator did not add.
    let status = robot.status.clone().unwrap_or_default();
    let identity = |e: &FederationIdentity| (e.issuer.clone(), e.subject.clone());
    let want: BTreeSet<(String, String)> = robot
        .spec
        .federation
        .iter()
        .flatten()
        .map(identity)
        .collect();
    let managed_before: BTreeSet<(String, String)> =
        status.managed_federation.iter().map(identity).collect();
    if !want.is_empty() || !managed_before.is_empty() {
        let have: BTreeSet<(String, String)> = c
            .robot_federation(org.as_deref(), &short)
            .await
            .ctx(&format!("read the federation of {full}"))?
            .into_iter()
            .map(|e| (e.issuer, e.subject))
            .collect();
        let dropped: BTreeSet<_> = managed_before.difference(&want).cloned().collect();
        let desired: BTreeSet<_> = have
            .difference(&dropped)
            .cloned()
            .chain(want.iter().cloned())
            .collect();
        if desired != have {
            let entries: Vec<api::FederationEntry> = desired
                .iter()
                .map(|(issuer, subject)| api::FederationEntry {
                    issuer: issuer.clone(),
                    subject: subject.clone(),
                })
                .collect();
            c.set_robot_federation(org.as_deref(), &short, &entries)
                .await
                .ctx(&format!("set the federation of {full}"))?;
            for (i, s) in desired.difference(&have) {
                changes.push(format!("federation: trusts {s} from {i}"));
            }
            for (i, s) in have.difference(&desired) {
                changes.push(format!("federation: no longer trusts {s} from {i}"));
            }
        }
    }

    // Rotation.
    let mut last_rotation = status.last_rotation_time.clone();
    let mut rotated_for = status.rotated_for.clone();
    let asked = robot.annotations().get(ROTATE_ANNOTATION).cloned();
    let every = robot
        .spec
        .rotation
        .as_ref()
        .and_then(|r| content::duration::parse(&r.every).ok());
    let since = last_rotation
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    let due_at = every.map(|e| {
        since.unwrap_or_else(now) + chrono::Duration::from_std(e).unwrap_or(chrono::Duration::MAX)
    });
    let manual = asked.is_some() && asked != rotated_for;
    let scheduled = since.is_some() && due_at.is_some_and(|d| d <= now());
    if existed && (manual || scheduled) {
        let fresh = c
            .regenerate_robot_token(org.as_deref(), &short)
            .await
            .ctx(&format!("regenerate the token of {full}"))?;
        token = fresh.token.unwrap_or_default();
        last_rotation = Some(rfc3339(now()));
        changes.push(if manual {
            format!("token rotated on request ({ROTATE_ANNOTATION})")
        } else {
            "token rotated on schedule".into()
        });
    }
    if manual || asked.is_none() {
        rotated_for = asked;
    }
    if every.is_some() && last_rotation.is_none() {
        // The schedule starts when the operator first sees the token.
        last_rotation = Some(rfc3339(now()));
    }
    let next_rotation = every.and_then(|e| {
        let from = last_rotation
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())?
            .with_timezone(&chrono::Utc);
        Some(from + chrono::Duration::from_std(e).ok()?)
    });

    // Kubernetes: the Secret, its copies, the ServiceAccounts.
    let mut secret_namespaces = Vec::new();
    let mut bound = Vec::new();
    if let Some(secret) = &robot.spec.secret {
        let here = robot.namespace().unwrap_or_default();
        let data = secret_data(&conn.registry_host, &full, &token);
        if write_secret(ctx, robot, &here, &secret.name, &data, true).await? && existed {
            changes.push(format!("Secret {} written", secret.name));
        }
        for other in &secret.namespaces {
            if other == &here {
                continue;
            }
            write_secret(ctx, robot, other, &secret.name, &data, false).await?;
            secret_namespaces.push(other.clone());
        }
        for gone in status
            .secret_namespaces
            .iter()
            .filter(|n| !secret_namespaces.contains(n))
        {
            delete_secret(ctx, gone, &secret.name).await?;
        }
        for sa in &robot.spec.bind_service_accounts {
            if bind(ctx, &here, sa, &secret.name).await? {
                changes.push(format!("ServiceAccount {sa} pulls with {}", secret.name));
            }
            bound.push(sa.clone());
        }
        for gone in status
            .bound_service_accounts
            .iter()
            .filter(|n| !bound.contains(n))
        {
            unbind(ctx, &here, gone, &secret.name).await?;
        }
    }

    let mut out = Map::new();
    out.insert("robotName".into(), json!(full));
    if let Some(t) = &last_rotation
        && every.is_some()
    {
        out.insert("lastRotationTime".into(), json!(t));
    } else if let Some(t) = &status.last_rotation_time {
        out.insert("lastRotationTime".into(), json!(t));
    }
    if let Some(t) = next_rotation {
        out.insert("nextRotationTime".into(), json!(rfc3339(t)));
    }
    if let Some(v) = &rotated_for {
        out.insert("rotatedFor".into(), json!(v));
    }
    if !secret_namespaces.is_empty() {
        out.insert("secretNamespaces".into(), json!(secret_namespaces));
    }
    if !bound.is_empty() {
        out.insert("boundServiceAccounts".into(), json!(bound));
    }
    if !want.is_empty() {
        let managed: Vec<Value> = want
            .iter()
            .map(|(issuer, subject)| json!({"issuer": issuer, "subject": subject}))
            .collect();
        out.insert("managedFederation".into(), json!(managed));
    }
    let requeue = next_rotation.map(|t| {
        (t - now())
            .to_std()
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_secs(1))
    });
    Ok(Synced {
        existed,
        changes,
        status: out,
        requeue,
    })
}

/// The pull Secret's data: `.dockerconfigjson` plus `username`, `token` and `registry`.
pub fn secret_data(registry: &str, username: &str, token: &str) -> BTreeMap<String, ByteString> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{token}"));
    let config = json!({"auths": {registry: {
        "auth": auth,
        "username": username,
        "password": token,
    }}});
    [
        (".dockerconfigjson", config.to_string()),
        ("username", username.to_owned()),
        ("token", token.to_owned()),
        ("registry", registry.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), ByteString(v.into_bytes())))
    .collect()
}

/// Writes the Secret when it differs; `owned` adds the Robot as its controller owner.
/// Returns whether it wrote.
async fn write_secret(
    ctx: &Context,
    robot: &Robot,
    namespace: &str,
    name: &str,
    data: &BTreeMap<String, ByteString>,
    owned: bool,
) -> Result<bool, ContentError> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let current = secrets.get_opt(name).await?;
    let label = robot.label_value();
    if let Some(s) = &current {
        let labelled = s.labels().get(ROBOT_LABEL) == Some(&label);
        if !labelled {
            return Err(ContentError::Conflict(format!(
                "Secret {namespace}/{name} exists and was not written for this Robot; choose another spec.secret.name or delete it"
            )));
        }
        let owner_ok = !owned
            || s.owner_references()
                .iter()
                .any(|o| Some(&o.uid) == robot.meta().uid.as_ref());
        if s.data.as_ref() == Some(data)
            && s.type_.as_deref() == Some("kubernetes.io/dockerconfigjson")
            && owner_ok
        {
            return Ok(false);
        }
    }
    let mut meta = json!({
        "name": name,
        "namespace": namespace,
        "labels": {ROBOT_LABEL: label, "app.kubernetes.io/managed-by": "quayside-operator"},
    });
    if owned && let Some(owner) = robot.controller_owner_ref(&()) {
        meta["ownerReferences"] = json!([owner]);
    }
    let body = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "kubernetes.io/dockerconfigjson",
        "data": data,
    });
    secrets
        .patch(
            name,
            &PatchParams::apply(content::FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(true)
}

async fn delete_secret(ctx: &Context, namespace: &str, name: &str) -> Result<(), ContentError> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    match secrets.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn pull_secret_names(sa: &ServiceAccount) -> Vec<String> {
    sa.image_pull_secrets
        .iter()
        .flatten()
        .map(|r| r.name.clone())
        .collect()
}

/// Adds `secret` to the ServiceAccount's `imagePullSecrets` (kept with what is there).
/// Returns whether it wrote.
async fn bind(
    ctx: &Context,
    namespace: &str,
    sa: &str,
    secret: &str,
) -> Result<bool, ContentError> {
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(account) = api.get_opt(sa).await? else {
        return Err(ContentError::InvalidSpec(format!(
            "ServiceAccount {namespace}/{sa} does not exist"
        )));
    };
    let mut names = pull_secret_names(&account);
    if names.iter().any(|n| n == secret) {
        return Ok(false);
    }
    names.push(secret.to_owned());
    set_pull_secrets(&api, &account, names).await?;
    Ok(true)
}

async fn unbind(
    ctx: &Context,
    namespace: &str,
    sa: &str,
    secret: &str,
) -> Result<(), ContentError> {
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(account) = api.get_opt(sa).await? else {
        return Ok(());
    };
    let names = pull_secret_names(&account);
    if !names.iter().any(|n| n == secret) {
        return Ok(());
    }
    let kept = names.into_iter().filter(|n| n != secret).collect();
    set_pull_secrets(&api, &account, kept).await
}

/// Replaces the list, guarded by the resourceVersion it was read at.
async fn set_pull_secrets(
    api: &Api<ServiceAccount>,
    account: &ServiceAccount,
    names: Vec<String>,
) -> Result<(), ContentError> {
    let list: Vec<Value> = names.into_iter().map(|n| json!({"name": n})).collect();
    let patch = json!({
        "metadata": {"resourceVersion": account.resource_version()},
        "imagePullSecrets": list,
    });
    api.patch(
        &account.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// Runs the Robot controller (see [`content::run`]); a change to a Secret it wrote brings
/// the Secret back, and a change to an Organization resource reconciles the Robots of that
/// organization (in the same Kubernetes namespace): a Robot applied with its Organization
/// finds the organization, its teams and repositories as soon as they exist, instead of at
/// its next resync.
pub async fn run_controller(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    content::run::<Robot, _>(ctx, namespace, shutdown, |c, client, ns| {
        let secrets: Api<Secret> = match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let orgs: Api<Organization> = match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let robots = c.store();
        c.owns(secrets, watcher::Config::default().labels(ROBOT_LABEL))
            .watches(orgs, watcher::Config::default(), move |org| {
                let name = org.object_name();
                robots
                    .state()
                    .into_iter()
                    .filter(|r| r.namespace() == org.namespace() && r.spec.namespace == name)
                    .map(|r| ObjectRef::from_obj(r.as_ref()))
                    .collect::<Vec<_>>()
            })
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn robot(yaml: &str) -> Robot {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn the_spec_is_checked_before_any_call() {
        let ok = robot(
            r#"
apiVersion: quayside.dev/v1alpha1
kind: Robot
metadata: {name: ci}
spec:
  registryRef: {name: registry}
  namespace: acme
  secret: {name: acme-ci-pull}
  rotation: {every: 720h}
  bindServiceAccounts: [default]
"#,
        );
        assert!(validate(&ok).is_ok());
        assert_eq!(ok.object_name(), "acme+ci");
        let mut bad = ok.clone();
        bad.spec.name = Some("CI-bot".into());
        assert!(
            validate(&bad)
                .unwrap_err()
                .to_string()
                .contains("not valid")
        );
        let mut fast = ok.clone();
        fast.spec.rotation = Some(crate::crd::Rotation {
            every: "500ms".into(),
        });
        assert!(validate(&fast).is_err());
        fast.spec.rotation = Some(crate::crd::Rotation { every: "3s".into() });
        assert!(validate(&fast).is_ok());
        let mut unbound = ok;
        unbound.spec.secret = None;
        assert!(
            validate(&unbound)
                .unwrap_err()
                .to_string()
                .contains("secret")
        );
    }

    #[test]
    fn the_pull_secret_is_what_docker_and_podman_read() {
        let data = secret_data("quay.example.com", "acme+ci", "TOKEN");
        let config: Value = serde_json::from_slice(&data[".dockerconfigjson"].0).unwrap();
        let auth = config["auths"]["quay.example.com"]["auth"]
            .as_str()
            .unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .unwrap();
        assert_eq!(decoded, b"acme+ci:TOKEN");
        assert_eq!(data["token"].0, b"TOKEN");
        assert_eq!(data["registry"].0, b"quay.example.com");
    }
}
