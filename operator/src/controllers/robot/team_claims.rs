//! Team membership claimed twice: an Organization that lists a team's exact `members` and a
//! Robot that joins the same team through its `teams` without being listed there.
//!
//! Rules:
//! - Left alone, the two controllers would undo each other on every resync (one adds the
//!   robot, the other removes it). So the older resource wins (see [`content::age`]) and the
//!   newer one reports `Conflict` and touches nothing, the same rule as two resources claiming
//!   one registry object.
//! - Both sides look: the Robot controller before it writes anything, the Organization
//!   controller likewise; each reads the other kind's resources in its own Kubernetes
//!   namespace that point at the same registry. A Robot is re-checked whenever an
//!   Organization of its namespace changes (the Robot controller watches them); an
//!   Organization at its next resync or change.
//! - There is no conflict when the Organization lists the robot among the members, or leaves
//!   the team's membership alone (no `members`).

use kube::api::Api;
use kube::{Resource, ResourceExt};

use crate::content::{self, ContentError, ContentKind, connection};
use crate::crd::{Organization, Robot};
use crate::runtime::context::Context;

/// The teams of `org` that `robot` joins and that `org` lists exact members of, without the
/// robot: each such team is a conflicting claim.
pub fn contested(org: &Organization, robot: &Robot) -> Vec<String> {
    let key = |ns: Option<String>, r| connection::registry_key(&ns.unwrap_or_default(), r);
    let same_registry = key(org.namespace(), &org.spec.registry_ref)
        == key(robot.namespace(), &robot.spec.registry_ref);
    if !same_registry
        || org.object_name() != robot.spec.namespace
        || org.meta().deletion_timestamp.is_some()
        || robot.meta().deletion_timestamp.is_some()
    {
        return Vec::new();
    }
    let full = robot.object_name();
    org.spec
        .teams
        .iter()
        .filter(|t| robot.spec.teams.contains(&t.name))
        .filter(|t| t.members.as_ref().is_some_and(|m| !m.contains(&full)))
        .map(|t| t.name.clone())
        .collect()
}

/// `Conflict` when an older Organization lists exact members of a team `robot` joins.
pub async fn check_robot(ctx: &Context, robot: &Robot) -> Result<(), ContentError> {
    if robot.spec.teams.is_empty() {
        return Ok(());
    }
    let ns = robot.namespace().unwrap_or_default();
    let orgs: Api<Organization> = Api::namespaced(ctx.client.clone(), &ns);
    for org in orgs.list(&Default::default()).await?.items {
        let teams = contested(&org, robot);
        if !teams.is_empty() && content::age(&org) < content::age(robot) {
            return Err(ContentError::Conflict(format!(
                "Organization {ns}/{} lists the exact members of team {} without robot {}; \
                 add the robot to those members there (or drop the team from spec.teams); \
                 this resource changes nothing",
                org.name_any(),
                teams.join(", "),
                robot.object_name()
            )));
        }
    }
    Ok(())
}

/// `Conflict` when an older Robot joins a team `org` lists exact members of, without it.
pub async fn check_organization(ctx: &Context, org: &Organization) -> Result<(), ContentError> {
    if !org.spec.teams.iter().any(|t| t.members.is_some()) {
        return Ok(());
    }
    let ns = org.namespace().unwrap_or_default();
    let robots: Api<Robot> = Api::namespaced(ctx.client.clone(), &ns);
    for robot in robots.list(&Default::default()).await?.items {
        let teams = contested(org, &robot);
        if !teams.is_empty() && content::age(&robot) < content::age(org) {
            return Err(ContentError::Conflict(format!(
                "Robot {ns}/{} joins team {} whose members this resource lists without {}; \
                 list the robot among the members (or remove the team from the Robot); \
                 this resource changes nothing",
                robot.name_any(),
                teams.join(", "),
                robot.object_name()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(members: Option<&[&str]>) -> Organization {
        let mut o: Organization = serde_yaml::from_str(
            "apiVersion: quayside.dev/v1alpha1\nkind: Organization\nmetadata: {name: acme, namespace: ns}\nspec:\n  registryRef: {name: registry}\n  teams: [{name: builders}, {name: readers}]\n",
        )
        .unwrap();
        o.spec.teams[0].members = members.map(|m| m.iter().map(|s| s.to_string()).collect());
        o
    }

    fn robot() -> Robot {
        serde_yaml::from_str(
            "apiVersion: quayside.dev/v1alpha1\nkind: Robot\nmetadata: {name: ci, namespace: ns}\nspec:\n  registryRef: {name: registry}\n  namespace: acme\n  teams: [builders, readers]\n",
        )
        .unwrap()
    }

    #[test]
    fn a_team_with_exact_members_without_the_robot_is_contested() {
        assert_eq!(contested(&org(Some(&["alice"])), &robot()), ["builders"]);
        assert!(contested(&org(Some(&["alice", "acme+ci"])), &robot()).is_empty());
        assert!(contested(&org(None), &robot()).is_empty());
        let mut elsewhere = robot();
        elsewhere.spec.namespace = "other".into();
        assert!(contested(&org(Some(&[])), &elsewhere).is_empty());
        let mut other_registry = robot();
        other_registry.spec.registry_ref.name = Some("another".into());
        assert!(contested(&org(Some(&[])), &other_registry).is_empty());
    }
}
