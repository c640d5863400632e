//! The Organization controller: an organization with its teams, repositories and default
//! permissions, through the registry's REST API (the shared machinery in [`crate::content`]
//! does the rest).
//!
//! Rules:
//! - Every step reads first and writes only what differs, in an order where each write finds
//!   what it needs: the organization, its repositories, its teams (role, description,
//!   members, repository roles), then the default permissions.
//! - Teams are exactly as listed (members when `members` is given, repository roles always);
//!   a team dropped from the spec is deleted only when the operator kept it before
//!   (`status.managedTeams`). Repositories are created and kept, never deleted.
//! - The `owners` team keeps members that are not listed unless it is listed with `members`,
//!   and never loses the operator's own user.
//! - A team whose exact members are listed here and that a Robot resource joins without
//!   being listed is a conflict; the newer resource waits (see
//!   [`crate::controllers::robot::team_claims`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use quayside_client as api;
use serde_json::{Map, Value, json};

use crate::content::error::{ApiResultExt, found};
use crate::content::{self, Connection, ContentError, ContentKind, Synced};
use crate::crd::{
    ContentStatus, DefaultPermission, DeletionPolicy, Organization, RegistryRef, TeamSpec,
};
use crate::runtime::context::Context;
use kube::ResourceExt;

impl ContentKind for Organization {
    const NOUN: &'static str = "organization";

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
        self.spec.name.clone().unwrap_or_else(|| self.name_any())
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
    async fn sync(&self, ctx: &Context, conn: &Connection) -> Result<Synced, ContentError> {
        crate::controllers::robot::team_claims::check_organization(ctx, self).await?;
        sync(self, conn).await
    }
    async fn delete(&self, _ctx: &Context, conn: &Connection) -> Result<(), ContentError> {
        let name = self.object_name();
        match conn.api.delete_organization(&name).await {
            Err(e) if e.status().map(|s| s.as_u16()) != Some(404) => Err(ContentError::from_api(
                &format!("delete organization {name}"),
                e,
            )),
            _ => Ok(()),
        }
    }
}

fn invalid(message: String) -> ContentError {
    ContentError::InvalidSpec(message)
}

/// The spec's own rules, checked before any call.
pub fn validate(org: &Organization) -> Result<(), ContentError> {
    let name = org.object_name();
    if !api::is_valid_namespace_name(&name) {
        return Err(invalid(format!(
            "organization name {name:?} is not valid: 2 to 255 lower-case letters, digits and single separators (. _ -)"
        )));
    }
    if let Some(t) = &org.spec.time_machine {
        content::duration::parse(t).map_err(|e| invalid(format!("timeMachine: {e}")))?;
    }
    if let Some(r) = &org.spec.resync_interval {
        content::duration::parse(r).map_err(|e| invalid(format!("resyncInterval: {e}")))?;
    }
    let mut seen = BTreeSet::new();
    for team in &org.spec.teams {
        if !api::is_valid_namespace_name(&team.name) {
            return Err(invalid(format!("team name {:?} is not valid", team.name)));
        }
        if !seen.insert(&team.name) {
            return Err(invalid(format!("team {} is listed twice", team.name)));
        }
        for m in team.members.iter().flatten() {
            if let Some((ns, _)) = m.split_once('+')
                && ns != name
            {
                return Err(invalid(format!(
                    "team {}: robot {m} belongs to another namespace than {name}",
                    team.name
                )));
            }
        }
    }
    for p in org.spec.default_permissions.iter().flatten() {
        if let Some(r) = &p.delegate.robot
            && let Some((ns, _)) = r.split_once('+')
            && ns != name
        {
            return Err(invalid(format!(
                "defaultPermissions: robot {r} belongs to another namespace than {name}"
            )));
        }
        let n = [&p.delegate.team, &p.delegate.user, &p.delegate.robot]
            .iter()
            .filter(|d| d.is_some())
            .count();
        if n != 1 {
            return Err(invalid(
                "defaultPermissions: each delegate names exactly one of team, user and robot"
                    .into(),
            ));
        }
    }
    Ok(())
}

async fn sync(spec: &Organization, conn: &Connection) -> Result<Synced, ContentError> {
    let c = &conn.api;
    let org = spec.object_name();
    let mut changes = Vec::new();
    let current = found(
        c.organization(&org).await,
        &format!("read organization {org}"),
    )?;
    let existed = current.is_some();
    let current = match current {
        Some(o) => o,
        None => {
            c.create_organization(&api::CreateOrganizationRequest {
                name: org.clone(),
                email: spec.spec.email.clone(),
            })
            .await
            .ctx(&format!("create organization {org}"))?;
            c.organization(&org)
                .await
                .ctx(&format!("read organization {org}"))?
        }
    };

    // Settings.
    let mut update = api::UpdateOrganizationRequest::default();
    if let Some(email) = &spec.spec.email
        && existed
        && &current.email != email
    {
        update.email = Some(email.clone());
        changes.push(format!("email set to {email}"));
    }
    if let Some(t) = &spec.spec.time_machine {
        let secs = content::duration::parse(t)
            .map_err(invalid)?
            .as_secs()
            .try_into()
            .unwrap_or(i64::MAX);
        if current.tag_expiration_s != Some(secs) {
            update.tag_expiration_s = Some(secs);
            changes.push(format!("time machine set to {t}"));
        }
    }
    if update != api::UpdateOrganizationRequest::default() {
        c.update_organization(&org, &update)
            .await
            .ctx(&format!("update organization {org}"))?;
    }

    // Repositories.
    for r in &spec.spec.repositories {
        let what = format!("repository {org}/{}", r.name);
        match found(c.repository(&org, &r.name).await, &format!("read {what}"))? {
            None => {
                c.create_repository(&api::CreateRepositoryRequest {
                    namespace: Some(org.clone()),
                    repository: r.name.clone(),
                    visibility: r.visibility.as_str().into(),
                    description: r.description.clone().unwrap_or_default(),
                    repo_kind: None,
                })
                .await
                .ctx(&format!("create {what}"))?;
                changes.push(format!("created {what}"));
            }
            Some(repo) => {
                let public = r.visibility == crate::crd::Visibility::Public;
                if repo.is_public != public {
                    c.change_visibility(&org, &r.name, r.visibility.as_str())
                        .await
                        .ctx(&format!("change the visibility of {what}"))?;
                    changes.push(format!("{what} made {}", r.visibility.as_str()));
                }
                if let Some(d) = &r.description
                    && repo.description.as_deref().unwrap_or("") != d
                {
                    c.update_repository(
                        &org,
                        &r.name,
                        &api::UpdateRepositoryRequest {
                            description: d.clone(),
                        },
                    )
                    .await
                    .ctx(&format!("describe {what}"))?;
                    changes.push(format!("{what} description updated"));
                }
            }
        }
    }

    // Teams.
    let existing_teams = current.teams.clone().unwrap_or_default();
    let mut me: Option<String> = None;
    for team in &spec.spec.teams {
        sync_team(
            conn,
            &org,
            team,
            existing_teams.get(&team.name),
            &mut me,
            &mut changes,
        )
        .await?;
    }
    let listed: BTreeSet<&str> = spec.spec.teams.iter().map(|t| t.name.as_str()).collect();
    let previously = spec
        .status
        .as_ref()
        .map(|s| s.managed_teams.clone())
        .unwrap_or_default();
    for gone in previously.iter().filter(|t| !listed.contains(t.as_str())) {
        if gone != "owners" && existing_teams.contains_key(gone) {
            c.delete_team(&org, gone)
                .await
                .ctx(&format!("delete team {gone}"))?;
            changes.push(format!("deleted team {gone}"));
        }
    }

    // Default permissions.
    let mut prototypes = 0;
    if let Some(wanted) = &spec.spec.default_permissions {
        prototypes = wanted.len();
        sync_prototypes(conn, &org, wanted, &mut changes).await?;
    }

    let mut status = Map::new();
    status.insert("name".into(), json!(org));
    status.insert(
        "managed".into(),
        json!({
            "teams": spec.spec.teams.len(),
            "repositories": spec.spec.repositories.len(),
            "defaultPermissions": prototypes,
        }),
    );
    let managed_teams: Vec<&str> = listed.into_iter().collect();
    if !managed_teams.is_empty() {
        status.insert("managedTeams".into(), json!(managed_teams));
    }
    Ok(Synced {
        existed,
        changes,
        status,
        requeue: None,
    })
}

async fn sync_team(
    conn: &Connection,
    org: &str,
    team: &TeamSpec,
    existing: Option<&api::OrganizationTeam>,
    me: &mut Option<String>,
    changes: &mut Vec<String>,
) -> Result<(), ContentError> {
    let c = &conn.api;
    let name = &team.name;
    let role = team.role.as_str();
    let description = team.description.clone().unwrap_or_default();
    let differs = existing.is_none_or(|t| {
        t.role != role || (team.description.is_some() && t.description != description)
    });
    if differs {
        c.put_team(
            org,
            name,
            &api::TeamRequest {
                role: role.into(),
                description: team.description.clone(),
            },
        )
        .await
        .ctx(&format!("write team {name}"))?;
        changes.push(match existing {
            None => format!("created team {name}"),
            Some(_) => format!("team {name} set to role {role}"),
        });
    }

    if let Some(members) = &team.members {
        let current = c
            .team_members(org, name)
            .await
            .ctx(&format!("read the members of team {name}"))?;
        let have: BTreeSet<String> = current
            .members
            .iter()
            .filter(|m| !m.invited)
            .filter_map(|m| m.name.clone())
            .collect();
        let want: BTreeSet<String> = members.iter().cloned().collect();
        for m in want.difference(&have) {
            c.add_team_member(org, name, m)
                .await
                .ctx(&format!("add {m} to team {name}"))?;
            changes.push(format!("team {name}: added member {m}"));
        }
        for m in have.difference(&want) {
            if name == "owners" {
                if me.is_none() {
                    *me = Some(
                        c.current_user()
                            .await
                            .ctx("read the operator's user")?
                            .username,
                    );
                }
                if me.as_deref() == Some(m.as_str()) {
                    continue;
                }
            }
            c.remove_team_member(org, name, m)
                .await
                .ctx(&format!("remove {m} from team {name}"))?;
            changes.push(format!("team {name}: removed member {m}"));
        }
    }

    let grants = c
        .team_permissions(org, name)
        .await
        .ctx(&format!("read the repositories of team {name}"))?;
    let have: BTreeMap<String, String> = grants
        .permissions
        .into_iter()
        .map(|g| (g.repository.name, g.role))
        .collect();
    for r in &team.repositories {
        if have.get(&r.name).map(String::as_str) != Some(r.role.as_str()) {
            c.set_team_permission(org, &r.name, name, r.role.as_str())
                .await
                .ctx(&format!(
                    "give team {name} {} on {org}/{}",
                    r.role.as_str(),
                    r.name
                ))?;
            changes.push(format!("team {name}: {} on {}", r.role.as_str(), r.name));
        }
    }
    for repo in have.keys() {
        if !team.repositories.iter().any(|r| &r.name == repo) {
            c.delete_team_permission(org, repo, name)
                .await
                .ctx(&format!("remove team {name} from {org}/{repo}"))?;
            changes.push(format!("team {name}: removed from {repo}"));
        }
    }
    Ok(())
}

/// `(kind, name)` of a delegate as Quay lists it: `team`, or `user` for users and robots.
fn delegate_key(org: &str, p: &DefaultPermission) -> (String, String) {
    let d = &p.delegate;
    if let Some(t) = &d.team {
        ("team".into(), t.clone())
    } else if let Some(r) = &d.robot {
        let full = if r.contains('+') {
            r.clone()
        } else {
            format!("{org}+{r}")
        };
        ("user".into(), full)
    } else {
        ("user".into(), d.user.clone().unwrap_or_default())
    }
}

async fn sync_prototypes(
    conn: &Connection,
    org: &str,
    wanted: &[DefaultPermission],
    changes: &mut Vec<String>,
) -> Result<(), ContentError> {
    let c = &conn.api;
    let current = c
        .prototypes(org)
        .await
        .ctx("read the default permissions")?
        .prototypes;
    let key_of = |p: &api::Prototype| {
        (
            (p.delegate.kind.clone(), p.delegate.name.clone()),
            p.activating_user.as_ref().map(|u| u.name.clone()),
        )
    };
    let mut keep = BTreeSet::new();
    for w in wanted {
        let key = (delegate_key(org, w), w.activating_user.clone());
        let matching = current.iter().find(|p| key_of(p) == key);
        match matching {
            Some(p) if p.role == w.role.as_str() => {
                keep.insert(p.id.clone());
            }
            _ => {
                let created = c
                    .create_prototype(
                        org,
                        &api::CreatePrototypeRequest {
                            role: w.role.as_str().into(),
                            delegate: api::PrototypeDelegateRequest {
                                name: key.0.1.clone(),
                                kind: key.0.0.clone(),
                            },
                            activating_user: w
                                .activating_user
                                .clone()
                                .map(|name| api::PrototypeName { name }),
                        },
                    )
                    .await
                    .ctx(&format!("create the default permission for {}", key.0.1))?;
                keep.insert(created.id);
                changes.push(format!(
                    "default permission: {} {}",
                    key.0.1,
                    w.role.as_str()
                ));
            }
        }
    }
    for p in current.iter().filter(|p| !keep.contains(&p.id)) {
        c.delete_prototype(org, &p.id)
            .await
            .ctx("delete a default permission")?;
        changes.push(format!(
            "removed the default permission of {} ({})",
            p.delegate.name, p.role
        ));
    }
    Ok(())
}

/// Runs the Organization controller (see [`content::run`]).
pub async fn run_controller(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    content::run::<Organization, _>(ctx, namespace, shutdown, |c, _, _| c).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(yaml: &str) -> Organization {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn the_spec_is_checked_before_any_call() {
        let ok = org(r#"
apiVersion: quayside.dev/v1alpha1
kind: Organization
metadata: {name: acme}
spec:
  registryRef: {name: registry}
  timeMachine: 2w
  teams:
    - {name: deployers, members: [alice, acme+ci]}
  defaultPermissions:
    - {delegate: {robot: ci}, role: write}
"#);
        assert!(validate(&ok).is_ok());
        assert_eq!(ok.object_name(), "acme");
        let mut upper = ok.clone();
        upper.spec.name = Some("Acme".into());
        assert!(
            validate(&upper)
                .unwrap_err()
                .to_string()
                .contains("not valid")
        );
        let mut foreign = ok.clone();
        foreign.spec.teams[0].members = Some(vec!["other+ci".into()]);
        assert!(
            validate(&foreign)
                .unwrap_err()
                .to_string()
                .contains("another namespace")
        );
        let mut twice = ok.clone();
        twice.spec.teams.push(twice.spec.teams[0].clone());
        assert!(validate(&twice).unwrap_err().to_string().contains("twice"));
        let mut when = ok.clone();
        when.spec.time_machine = Some("soon".into());
        assert!(
            validate(&when)
                .unwrap_err()
                .to_string()
                .contains("timeMachine")
        );
        let mut foreign_robot = ok;
        foreign_robot.spec.default_permissions = Some(vec![DefaultPermission {
            delegate: crate::crd::Delegate {
                robot: Some("other+ci".into()),
                ..Default::default()
            },
            ..Default::default()
        }]);
        assert!(validate(&foreign_robot).is_err());
    }
}
