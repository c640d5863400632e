//! The one authorization decision: [`can`]`(principal, action, resource)`. Every surface (the
//! `/v2` protocol, the token server, `/api/v1`) asks it and nothing else decides access.
//!
//! The decision has three steps:
//! A repository's state (`READ_ONLY`, `MIRROR`) limits writes here for the registry protocol
//! and the token server; the REST API asks [`can_by_role`] and answers the state with its own
//! error afterwards, as Quay does.
//!
//! 1. A `/v2` bearer token short-cuts everything: it carries the access decided when it was
//!    issued (by this function, through [`granted_repo_actions`]).
//! 2. An OAuth token's scopes cap what its user may do ([`scope_allows`]).
//! 3. [`decide`], a pure function, weighs the principal against the facts gathered from the
//!    database in one round trip: superuser; the user's own namespace; the roles of the
//!    account's teams in the organization (`admin` administers everything, `creator` may create
//!    repositories, `member` sees the organization); the account's direct repository role and
//!    its teams' repository roles (default permissions become such roles when a repository is
//!    created); public visibility (anyone may pull).

use crate::db;
use crate::oci::RepoName;
use crate::service::scopes::{Scope, Scopes};
use crate::service::{Ctx, Internal, Principal};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read a repository's content.
    Pull,
    /// Write content (push blobs and manifests, move tags). On a repository that does not exist
    /// yet this is the right to create it by pushing.
    Push,
    /// Delete manifests, tags or blob links.
    Delete,
    /// Change a repository's settings and permissions, or delete it.
    Admin,
    /// Create a repository: asked on the repository to be created (`Resource::Repo`), or on a
    /// namespace (`Resource::Namespace`) for "may create repositories here".
    CreateRepo,
    /// List repositories through `/v2/_catalog`.
    ListCatalog,
    /// Administer a namespace: an organization's settings, teams, robots, default permissions
    /// and applications, or a user's own robots.
    AdminNamespace,
    /// See an organization's teams (be a member of it).
    ViewNamespace,
    /// Manage the installation (users): superusers only.
    SuperUser,
}

impl Action {
    /// The Docker token scope action that grants this action on a repository.
    pub fn scope_action(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push | Action::CreateRepo => "push",
            Action::Delete => "delete",
            Action::Admin
            | Action::ListCatalog
            | Action::AdminNamespace
            | Action::ViewNamespace
            | Action::SuperUser => "*",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Resource<'a> {
    Repo(&'a RepoName),
    Namespace(&'a str),
    Registry,
}

/// A repository role, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Read,
    Write,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "read" => Some(Role::Read),
            "write" => Some(Role::Write),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

/// A team's role in its organization, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TeamRole {
    Member,
    Creator,
    Admin,
}

impl TeamRole {
    pub fn parse(s: &str) -> Option<TeamRole> {
        match s {
            "member" => Some(TeamRole::Member),
            "creator" => Some(TeamRole::Creator),
            "admin" => Some(TeamRole::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Member => "member",
            TeamRole::Creator => "creator",
            TeamRole::Admin => "admin",
        }
    }
}

/// Who asks, as [`decide`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Anonymous,
    User { superuser: bool },
    Robot,
}

/// A repository's state: writes are refused in `READ_ONLY`, and allowed only to the mirror's
/// robot in `MIRROR` (whatever else the principal may do, superusers included, as in Quay).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RepoState {
    #[default]
    Normal,
    ReadOnly,
    Mirror,
}

impl RepoState {
    pub fn parse(s: &str) -> Option<RepoState> {
        match s {
            "NORMAL" => Some(RepoState::Normal),
            "READ_ONLY" => Some(RepoState::ReadOnly),
            "MIRROR" => Some(RepoState::Mirror),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RepoState::Normal => "NORMAL",
            RepoState::ReadOnly => "READ_ONLY",
            RepoState::Mirror => "MIRROR",
        }
    }
}

/// What the database says about the principal and the resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Situation {
    /// The namespace exists.
    pub namespace_exists: bool,
    /// The namespace is the asking user's own.
    pub own_namespace: bool,
    /// The repository exists (repository questions only).
    pub repo_exists: bool,
    pub repo_public: bool,
    /// The strongest role of the account's teams in the organization.
    pub team_role: Option<TeamRole>,
    /// The strongest repository role granted to the account directly or through its teams.
    pub repo_role: Option<Role>,
    /// The repository's state (repository questions only).
    pub repo_state: RepoState,
    /// The principal is the robot of the repository's mirror configuration.
    pub mirror_robot: bool,
}

/// The pure decision, table-tested.
pub fn decide(who: Who, action: Action, resource_is_repo: bool, s: &Situation) -> bool {
    if action == Action::ListCatalog {
        // The catalog lists what each caller may see; everyone may ask.
        return !resource_is_repo;
    }
    if resource_is_repo && s.repo_exists && matches!(action, Action::Push | Action::Delete) {
        match s.repo_state {
            RepoState::ReadOnly => return false,
            RepoState::Mirror if !s.mirror_robot => return false,
            _ => {}
        }
    }
    if matches!(who, Who::User { superuser: true }) {
        return true;
    }
    if action == Action::SuperUser || !s.namespace_exists {
        return false;
    }
    let org_admin = s.team_role == Some(TeamRole::Admin);
    let namespace_admin = s.own_namespace || org_admin;
    let may_create = namespace_admin || s.team_role == Some(TeamRole::Creator);
    let role = if namespace_admin {
        Some(Role::Admin)
    } else {
        s.repo_role.filter(|_| s.repo_exists)
    };
    match action {
        Action::AdminNamespace => namespace_admin,
        Action::ViewNamespace => namespace_admin || s.team_role.is_some(),
        Action::CreateRepo => may_create,
        Action::Pull => role.is_some() || (s.repo_exists && s.repo_public),
        Action::Push if resource_is_repo && !s.repo_exists => may_create,
        Action::Push | Action::Delete => role >= Some(Role::Write),
        Action::Admin => role == Some(Role::Admin),
        Action::ListCatalog | Action::SuperUser => false,
    }
}

/// Whether an OAuth token's scopes allow the action at all (its user's rights still apply).
pub fn scope_allows(scopes: Scopes, action: Action, own_namespace: bool) -> bool {
    match action {
        Action::Pull => scopes.has(Scope::RepoRead),
        Action::Push => scopes.has(Scope::RepoWrite),
        Action::Delete => scopes.has(Scope::RepoWrite),
        Action::Admin => scopes.has(Scope::RepoAdmin),
        Action::CreateRepo => scopes.has(Scope::RepoCreate),
        Action::ListCatalog | Action::ViewNamespace => true,
        Action::AdminNamespace if own_namespace => scopes.has(Scope::UserAdmin),
        Action::AdminNamespace => scopes.has(Scope::OrgAdmin),
        Action::SuperUser => scopes.has(Scope::SuperUser),
    }
}

/// Decides whether `principal` may perform `action` on `resource`.
pub async fn can(
    ctx: &Ctx,
    principal: &Principal,
    action: Action,
    resource: Resource<'_>,
) -> Result<bool, Internal> {
    can_with(ctx, principal, action, resource, true).await
}

/// [`can`] as if the repository were in the `NORMAL` state: for the REST API, which answers a
/// writer's request to a read-only or mirrored repository with its own error (Quay's 503,
/// `repositories::require_normal`) after this check, as Quay does.
pub async fn can_by_role(
    ctx: &Ctx,
    principal: &Principal,
    action: Action,
    resource: Resource<'_>,
) -> Result<bool, Internal> {
    can_with(ctx, principal, action, resource, false).await
}

async fn can_with(
    ctx: &Ctx,
    principal: &Principal,
    action: Action,
    resource: Resource<'_>,
    honour_state: bool,
) -> Result<bool, Internal> {
    let who = match principal {
        // The token server grants `push` on a missing repository only to principals that may
        // create it, so a push grant also covers `CreateRepo` on that repository.
        Principal::Token(grant) => {
            return Ok(match resource {
                Resource::Repo(name) => {
                    grant.allows("repository", name.as_str(), action.scope_action())
                        && (!honour_state
                            || !matches!(action, Action::Push | Action::Delete)
                            || state_allows_write(ctx, principal, name).await?)
                }
                // As in Quay, the catalog answers every token, scoped or not: it lists what the
                // token's account may see (nothing for an anonymous token).
                Resource::Registry => action == Action::ListCatalog,
                // Tokens never manage namespaces.
                Resource::Namespace(_) => false,
            });
        }
        Principal::Anonymous => Who::Anonymous,
        Principal::User(u) => Who::User {
            superuser: u.superuser,
        },
        Principal::OAuth(o) => Who::User {
            superuser: o.user.superuser,
        },
        Principal::Robot(_) => Who::Robot,
    };
    let namespace = match resource {
        Resource::Repo(name) => Some(name.namespace()),
        Resource::Namespace(ns) => Some(ns),
        Resource::Registry => None,
    };
    let own_namespace = principal
        .user()
        .is_some_and(|u| Some(u.name.as_str()) == namespace);
    if let Some(scopes) = principal.scopes()
        && !scope_allows(scopes, action, own_namespace)
    {
        return Ok(false);
    }
    let is_repo = matches!(resource, Resource::Repo(_));
    // Superusers and catalog listing need no facts.
    if matches!(who, Who::User { superuser: true }) || namespace.is_none() {
        let mut s = Situation::default();
        // A superuser's writes still depend on the repository's state.
        if let (Resource::Repo(name), Action::Push | Action::Delete) = (resource, action)
            && honour_state
            && let Some(repo) = ctx.pull_cache.repo(&ctx.db, name, ctx.now_ms()).await?
        {
            s.namespace_exists = true;
            s.repo_exists = true;
            s.repo_state = RepoState::parse(&repo.state).unwrap_or_default();
        }
        return Ok(decide(who, action, is_repo, &s));
    }
    let mut situation = situation(ctx, principal, resource, own_namespace).await?;
    if !honour_state {
        situation.repo_state = RepoState::Normal;
    }
    Ok(decide(who, action, is_repo, &situation))
}

/// Whether the repository's state (now, not when a token was issued) lets `principal` write:
/// `NORMAL` (or missing), or `MIRROR` for the mirror's robot.
async fn state_allows_write(
    ctx: &Ctx,
    principal: &Principal,
    name: &RepoName,
) -> Result<bool, Internal> {
    let Some(repo) = ctx.pull_cache.repo(&ctx.db, name, ctx.now_ms()).await? else {
        return Ok(true);
    };
    Ok(match RepoState::parse(&repo.state).unwrap_or_default() {
        RepoState::Normal => true,
        RepoState::ReadOnly => false,
        RepoState::Mirror => match principal.robot() {
            Some(robot) => {
                db::content::mirror::robot_of(ctx.db.pool(), repo.id).await? == Some(robot.id)
            }
            None => false,
        },
    })
}

async fn situation(
    ctx: &Ctx,
    principal: &Principal,
    resource: Resource<'_>,
    own_namespace: bool,
) -> Result<Situation, Internal> {
    let pool = ctx.db.pool();
    let mut s = Situation {
        own_namespace,
        ..Situation::default()
    };
    let (namespace_id, repository_id) = match resource {
        Resource::Repo(name) => match ctx.pull_cache.repo(&ctx.db, name, ctx.now_ms()).await? {
            Some(repo) => {
                s.namespace_exists = true;
                s.repo_exists = true;
                s.repo_public = repo.is_public();
                s.repo_state = RepoState::parse(&repo.state).unwrap_or_default();
                if s.repo_state == RepoState::Mirror
                    && let Some(robot) = principal.robot()
                {
                    s.mirror_robot =
                        db::content::mirror::robot_of(pool, repo.id).await? == Some(robot.id);
                }
                (repo.namespace_id, Some(repo.id))
            }
            None => match db::tenancy::namespaces::by_name(pool, name.namespace()).await? {
                Some(ns) if !ns.is_robot() => {
                    s.namespace_exists = true;
                    (ns.id, None)
                }
                _ => return Ok(s),
            },
        },
        Resource::Namespace(ns) => match db::tenancy::namespaces::by_name(pool, ns).await? {
            Some(ns) if !ns.is_robot() => {
                s.namespace_exists = true;
                (ns.id, None)
            }
            _ => return Ok(s),
        },
        Resource::Registry => return Ok(s),
    };
    let Some(account) = principal.account() else {
        return Ok(s);
    };
    let facts =
        db::tenancy::permissions::facts(pool, account.id, namespace_id, repository_id).await?;
    s.team_role = facts
        .team_roles
        .iter()
        .filter_map(|r| TeamRole::parse(r))
        .max();
    s.repo_role = facts
        .direct_roles
        .iter()
        .chain(&facts.team_repo_roles)
        .filter_map(|r| Role::parse(r))
        .max();
    Ok(s)
}

/// [`can_by_role`] (the REST API's check), failing with `Forbidden` (401 for anonymous callers,
/// 403 for known ones) when not.
pub async fn require_by_role(
    ctx: &Ctx,
    principal: &Principal,
    action: Action,
    resource: Resource<'_>,
) -> Result<(), crate::service::TenancyError> {
    if can_by_role(ctx, principal, action, resource).await? {
        Ok(())
    } else {
        Err(crate::service::TenancyError::Forbidden {
            anonymous: principal.is_anonymous(),
        })
    }
}

/// [`require`] for the registry-wide superuser actions (the `/superuser/...` views and any
/// other registry administration): 403 unless the principal is a superuser.
pub async fn require_superuser(
    ctx: &Ctx,
    principal: &Principal,
) -> Result<(), crate::service::TenancyError> {
    require(ctx, principal, Action::SuperUser, Resource::Registry).await
}

/// [`can`], failing with `Forbidden` (401 for anonymous callers, 403 for known ones) when not.
pub async fn require(
    ctx: &Ctx,
    principal: &Principal,
    action: Action,
    resource: Resource<'_>,
) -> Result<(), crate::service::TenancyError> {
    if can(ctx, principal, action, resource).await? {
        Ok(())
    } else {
        Err(crate::service::TenancyError::Forbidden {
            anonymous: principal.is_anonymous(),
        })
    }
}

/// Which of the `requested` actions `principal` may perform on a repository: what the token
/// server writes into a token's `access` claim.
pub async fn granted_repo_actions(
    ctx: &Ctx,
    principal: &Principal,
    repo: &RepoName,
    requested: &[String],
) -> Result<Vec<String>, Internal> {
    let mut granted = Vec::new();
    for requested_action in requested {
        let ok = match requested_action.as_str() {
            "pull" => can(ctx, principal, Action::Pull, Resource::Repo(repo)).await?,
            "push" => {
                can(ctx, principal, Action::Push, Resource::Repo(repo)).await?
                    && (db::content::repositories::get(
                        ctx.db.pool(),
                        repo.namespace(),
                        repo.repository(),
                    )
                    .await?
                    .is_some()
                        || can(ctx, principal, Action::CreateRepo, Resource::Repo(repo)).await?)
            }
            "delete" => can(ctx, principal, Action::Delete, Resource::Repo(repo)).await?,
            "*" => can(ctx, principal, Action::Admin, Resource::Repo(repo)).await?,
            _ => false,
        };
        if ok && !granted.contains(requested_action) {
            granted.push(requested_action.clone());
        }
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIONS: [Action; 8] = [
        Action::Pull,
        Action::Push,
        Action::Delete,
        Action::Admin,
        Action::CreateRepo,
        Action::AdminNamespace,
        Action::ViewNamespace,
        Action::SuperUser,
    ];

    fn existing(public: bool) -> Situation {
        Situation {
            namespace_exists: true,
            repo_exists: true,
            repo_public: public,
            ..Situation::default()
        }
    }

    /// Expected answers in ACTIONS order: pull, push, delete, admin, create, admin-ns, view-ns, su.
    #[test]
    fn decision_table() {
        let user = Who::User { superuser: false };
        let su = Who::User { superuser: true };
        let private = existing(false);
        let public = existing(true);
        let with = |s: &Situation, f: &dyn Fn(&mut Situation)| {
            let mut s = s.clone();
            f(&mut s);
            s
        };
        let cases: Vec<(&str, Who, Situation, [bool; 8])> = vec![
            (
                "anonymous, private",
                Who::Anonymous,
                private.clone(),
                [false; 8],
            ),
            (
                "anonymous, public",
                Who::Anonymous,
                public.clone(),
                [true, false, false, false, false, false, false, false],
            ),
            ("user, no role, private", user, private.clone(), [false; 8]),
            (
                "user, no role, public",
                user,
                public.clone(),
                [true, false, false, false, false, false, false, false],
            ),
            (
                "user, read",
                user,
                with(&private, &|s| s.repo_role = Some(Role::Read)),
                [true, false, false, false, false, false, false, false],
            ),
            (
                "user, write",
                user,
                with(&private, &|s| s.repo_role = Some(Role::Write)),
                [true, true, true, false, false, false, false, false],
            ),
            (
                "user, admin",
                user,
                with(&private, &|s| s.repo_role = Some(Role::Admin)),
                [true, true, true, true, false, false, false, false],
            ),
            (
                "user, own namespace",
                user,
                with(&private, &|s| s.own_namespace = true),
                [true, true, true, true, true, true, true, false],
            ),
            (
                "user, org admin team",
                user,
                with(&private, &|s| s.team_role = Some(TeamRole::Admin)),
                [true, true, true, true, true, true, true, false],
            ),
            (
                "user, creator team",
                user,
                with(&private, &|s| s.team_role = Some(TeamRole::Creator)),
                [false, false, false, false, true, false, true, false],
            ),
            (
                "user, member team",
                user,
                with(&private, &|s| s.team_role = Some(TeamRole::Member)),
                [false, false, false, false, false, false, true, false],
            ),
            (
                "user, member team with write",
                user,
                with(&private, &|s| {
                    s.team_role = Some(TeamRole::Member);
                    s.repo_role = Some(Role::Write)
                }),
                [true, true, true, false, false, false, true, false],
            ),
            ("superuser", su, private.clone(), [true; 8]),
            ("robot, no role", Who::Robot, private.clone(), [false; 8]),
            (
                "robot, read",
                Who::Robot,
                with(&private, &|s| s.repo_role = Some(Role::Read)),
                [true, false, false, false, false, false, false, false],
            ),
            (
                "robot, write",
                Who::Robot,
                with(&private, &|s| s.repo_role = Some(Role::Write)),
                [true, true, true, false, false, false, false, false],
            ),
            (
                "robot, admin",
                Who::Robot,
                with(&private, &|s| s.repo_role = Some(Role::Admin)),
                [true, true, true, true, false, false, false, false],
            ),
            (
                "robot, creator team",
                Who::Robot,
                with(&private, &|s| s.team_role = Some(TeamRole::Creator)),
                [false, false, false, false, true, false, true, false],
            ),
            ("missing namespace", user, Situation::default(), [false; 8]),
        ];
        for (name, who, situation, expected) in cases {
            for (action, want) in ACTIONS.iter().zip(expected) {
                assert_eq!(
                    decide(who, *action, true, &situation),
                    want,
                    "{name}: {action:?}"
                );
            }
        }
    }

    #[test]
    fn pushing_a_missing_repository_needs_the_right_to_create() {
        let missing = |team_role| Situation {
            namespace_exists: true,
            team_role,
            ..Situation::default()
        };
        let user = Who::User { superuser: false };
        assert!(decide(
            user,
            Action::Push,
            true,
            &missing(Some(TeamRole::Creator))
        ));
        assert!(!decide(
            user,
            Action::Push,
            true,
            &missing(Some(TeamRole::Member))
        ));
        assert!(!decide(
            user,
            Action::Pull,
            true,
            &missing(Some(TeamRole::Creator))
        ));
        // A stale repository grant does not outlive its repository.
        let stale = Situation {
            namespace_exists: true,
            repo_role: Some(Role::Admin),
            ..Situation::default()
        };
        assert!(!decide(user, Action::Pull, true, &stale));
    }

    #[test]
    fn scopes_cap_oauth_tokens() {
        let read = Scopes::of(&[Scope::RepoRead]);
        assert!(scope_allows(read, Action::Pull, false));
        assert!(!scope_allows(read, Action::Push, false));
        assert!(!scope_allows(read, Action::CreateRepo, false));
        assert!(!scope_allows(read, Action::AdminNamespace, false));
        let admin = Scopes::parse("repo:admin").unwrap();
        assert!(
            scope_allows(admin, Action::Push, false) && scope_allows(admin, Action::Admin, false)
        );
        let org = Scopes::of(&[Scope::OrgAdmin]);
        assert!(scope_allows(org, Action::AdminNamespace, false));
        assert!(!scope_allows(org, Action::AdminNamespace, true));
        assert!(scope_allows(
            Scopes::of(&[Scope::UserAdmin]),
            Action::AdminNamespace,
            true
        ));
        assert!(!scope_allows(
            Scopes::parse("repo:admin org:admin user:admin").unwrap(),
            Action::SuperUser,
            false
        ));
    }

    /// Read-only repositories refuse every write; mirrored ones all but their robot's.
    #[test]
    fn repository_state_limits_writes() {
        let su = Who::User { superuser: true };
        let admin = Situation {
            namespace_exists: true,
            repo_exists: true,
            team_role: Some(TeamRole::Admin),
            ..Situation::default()
        };
        let robot = Situation {
            repo_role: Some(Role::Write),
            team_role: None,
            ..admin.clone()
        };
        for state in [RepoState::ReadOnly, RepoState::Mirror] {
            let a = Situation {
                repo_state: state,
                ..admin.clone()
            };
            for who in [Who::User { superuser: false }, su] {
                assert!(!decide(who, Action::Push, true, &a), "{state:?}");
                assert!(!decide(who, Action::Delete, true, &a), "{state:?}");
                assert!(decide(who, Action::Pull, true, &a), "{state:?}");
                assert!(decide(who, Action::Admin, true, &a), "{state:?}");
            }
        }
        let mirror_robot = Situation {
            repo_state: RepoState::Mirror,
            mirror_robot: true,
            ..robot.clone()
        };
        assert!(decide(Who::Robot, Action::Push, true, &mirror_robot));
        let read_only_robot = Situation {
            repo_state: RepoState::ReadOnly,
            ..mirror_robot.clone()
        };
        assert!(!decide(Who::Robot, Action::Push, true, &read_only_robot));
        let other_robot = Situation {
            repo_state: RepoState::Mirror,
            ..robot
        };
        assert!(!decide(Who::Robot, Action::Push, true, &other_robot));
    }
}
