//! The one authorization decision: [`can`]`(principal, action, resource)`. Every surface (the
//! `/v2` protocol, the token server, `/api/v1`) asks it and nothing else decides access.
//!
//! The decision is made in two steps:
//! 1. the principal's effective [`Role`] on the resource (superuser → admin everywhere; a user is
//!    admin of their own namespace and its repositories), and
//! 2. whether that role (or public visibility, for pulls) covers the action.
//!
//! A `/v2` bearer token short-cuts both: it carries the access decided when it was issued.

use super::{Ctx, Internal, Principal, UserRef};
use crate::db;
use crate::oci::RepoName;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read a repository's content.
    Pull,
    /// Write content (push blobs and manifests, move tags).
    Push,
    /// Delete manifests, tags or blob links.
    Delete,
    /// Change a repository's settings and permissions.
    Admin,
    /// Create a repository: asked on the repository to be created (`Resource::Repo`), or on a
    /// namespace (`Resource::Namespace`) for "may create repositories here".
    CreateRepo,
    /// List repositories through `/v2/_catalog`.
    ListCatalog,
}

impl Action {
    /// The Docker token scope action that grants this action on a repository.
    pub fn scope_action(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push | Action::CreateRepo => "push",
            Action::Delete => "delete",
            Action::Admin | Action::ListCatalog => "*",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Resource<'a> {
    Repo(&'a RepoName),
    Namespace(&'a str),
    Registry,
}

/// A principal's role on a repository, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Read,
    Write,
    Admin,
}

impl Role {
    fn covers(self, action: Action) -> bool {
        match action {
            Action::Pull => true,
            Action::Push | Action::Delete => self >= Role::Write,
            Action::Admin | Action::CreateRepo => self == Role::Admin,
            Action::ListCatalog => true,
        }
    }
}

/// Decides whether `principal` may perform `action` on `resource`.
pub async fn can(
    ctx: &Ctx,
    principal: &Principal,
    action: Action,
    resource: Resource<'_>,
) -> Result<bool, Internal> {
    match principal {
        // The token server grants `push` on a missing repository only to principals that may
        // create it, so a push grant also covers `CreateRepo` on that repository.
        Principal::Token(grant) => Ok(match resource {
            Resource::Repo(name) => {
                grant.allows("repository", name.as_str(), action.scope_action())
            }
            Resource::Registry => {
                action == Action::ListCatalog && grant.allows("registry", "catalog", "*")
            }
            // Tokens never manage namespaces.
            Resource::Namespace(_) => false,
        }),
        Principal::Anonymous => Ok(match resource {
            Resource::Repo(name) => action == Action::Pull && is_public(ctx, name).await?,
            Resource::Registry => action == Action::ListCatalog,
            Resource::Namespace(_) => false,
        }),
        Principal::User(user) => {
            if action == Action::ListCatalog {
                return Ok(matches!(resource, Resource::Registry));
            }
            if let Some(role) = role_of(ctx, user, resource).await?
                && role.covers(action)
            {
                return Ok(true);
            }
            Ok(match resource {
                Resource::Repo(name) => action == Action::Pull && is_public(ctx, name).await?,
                _ => false,
            })
        }
    }
}

/// The user's effective role on a repository or namespace, if any.
async fn role_of(
    _ctx: &Ctx,
    user: &UserRef,
    resource: Resource<'_>,
) -> Result<Option<Role>, Internal> {
    if user.superuser {
        return Ok(Some(Role::Admin));
    }
    let namespace = match resource {
        Resource::Repo(name) => name.namespace(),
        Resource::Namespace(ns) => ns,
        Resource::Registry => return Ok(None),
    };
    Ok((namespace == user.name).then_some(Role::Admin))
}

async fn is_public(ctx: &Ctx, name: &RepoName) -> Result<bool, Internal> {
    Ok(ctx
        .pull_cache
        .repo(&ctx.db, name, ctx.now_ms())
        .await?
        .is_some_and(|r| r.is_public()))
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
                    && (db::repos::get(ctx.db.pool(), repo.namespace(), repo.repository())
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
