//! Search, as Quay answers it: entities by name prefix (`/api/v1/entities/{prefix}`, what user
//! and team pickers call) and repositories by name or description (`/api/v1/find/repositories`).
//!
//! Rules:
//! - Entities: enabled users whose name starts with the prefix (lowercased, spaces dropped), at
//!   most 10. Scoped to an organization (`namespace`) the caller is a member of, its robots
//!   match too, each user says whether it is on one of its teams (`is_org_member`), its teams
//!   match with `includeTeams`, and the organization itself with `includeOrgs`; scoped to the
//!   caller's own user namespace, the caller's robots match. Nothing else about an
//!   organization leaks to a non-member.
//! - Repositories: what the caller may see (public ones, and for a signed-in caller those it
//!   may read), whose name or description contains the query; pages of 10, at most 10 pages,
//!   `has_additional` when more follow; with `includeUsage`, last modification, stars and the
//!   past month's action count.

use quayside_client as api;

use crate::db;
use crate::service::access::authz::{self, Action, Resource};
use crate::service::{Ctx, Principal, TenancyError, views};

/// Entities one search returns at most.
const ENTITY_LIMIT: i64 = 10;
/// Repositories per page, and the last page served.
const PAGE_SIZE: i64 = 10;
const MAX_PAGE: i64 = 10;

/// What `GET /entities/{prefix}` was asked.
#[derive(Clone, Debug, Default)]
pub struct EntityQuery {
    pub namespace: String,
    pub include_teams: bool,
    pub include_orgs: bool,
}

/// `GET /api/v1/entities/{prefix}`.
pub async fn entities(
    ctx: &Ctx,
    principal: &Principal,
    prefix: &str,
    q: &EntityQuery,
) -> Result<api::Entities, TenancyError> {
    let prefix: String = prefix
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    let pool = ctx.db.pool();
    let namespace = match q.namespace.is_empty() {
        true => None,
        false => db::tenancy::namespaces::by_name(pool, &q.namespace).await?,
    };
    let mut results = Vec::new();
    let mut robot_namespace = None;
    let mut org_id = None;
    match &namespace {
        Some(org) if org.is_org() => {
            org_id = Some(org.id);
            let member = authz::can(
                ctx,
                principal,
                Action::ViewNamespace,
                Resource::Namespace(&org.name),
            )
            .await?;
            if member {
                robot_namespace = Some(org.name.as_str());
                if q.include_teams {
                    for team in db::tenancy::search::teams(pool, org.id, &prefix).await? {
                        results.push(api::Entity {
                            avatar: views::avatar(&team, None, "team"),
                            name: team,
                            kind: "team".into(),
                            is_robot: None,
                            is_org_member: Some(true),
                        });
                    }
                }
            }
        }
        Some(user) if user.is_user() && principal.user().is_some_and(|u| u.id == user.id) => {
            robot_namespace = Some(user.name.as_str());
        }
        _ => {}
    }
    let scoped = org_id.is_some();
    for a in
        db::tenancy::search::accounts(pool, &prefix, robot_namespace, org_id, ENTITY_LIMIT).await?
    {
        let robot = a.kind == db::tenancy::namespaces::KIND_ROBOT;
        results.push(api::Entity {
            avatar: match robot {
                true => views::avatar(&a.name, None, "robot"),
                false => views::avatar(&a.name, a.email.as_deref(), "user"),
            },
            name: a.name,
            kind: "user".into(),
            is_robot: Some(robot),
            is_org_member: scoped.then_some(robot || a.org_member),
        });
    }
    if let (Some(org), true) = (&namespace, q.include_orgs) {
        let admin = authz::can(
            ctx,
            principal,
            Action::AdminNamespace,
            Resource::Namespace(&org.name),
        )
        .await?;
        if org.is_org() && admin && org.name.starts_with(&prefix) {
            results.push(api::Entity {
                avatar: views::avatar(&org.name, org.email.as_deref(), "org"),
                name: org.name.clone(),
                kind: "org".into(),
                is_robot: None,
                is_org_member: Some(true),
            });
        }
    }
    Ok(api::Entities { results })
}

fn namespace_view(name: &str, email: Option<&str>, is_org: bool) -> api::FoundNamespace {
    let (title, kind, path) = match is_org {
        true => ("org", "organization", "organization"),
        false => ("user", "user", "user"),
    };
    api::FoundNamespace {
        title: title.into(),
        kind: kind.into(),
        avatar: views::avatar(name, email, if is_org { "org" } else { "user" }),
        name: name.to_owned(),
        score: 1.0,
        href: format!("/{path}/{name}"),
    }
}

/// `GET /api/v1/find/repositories`.
pub async fn repositories(
    ctx: &Ctx,
    principal: &Principal,
    query: &str,
    page: i64,
    include_usage: bool,
) -> Result<api::FoundRepositories, TenancyError> {
    let page = page.clamp(1, MAX_PAGE);
    let offset = (page - 1) * PAGE_SIZE;
    let pool = ctx.db.pool();
    let viewer = principal.account().map(|a| a.id);
    let mut rows =
        db::content::repositories::search(pool, viewer, query, offset, PAGE_SIZE + 1).await?;
    let has_additional = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let month_ago = ctx.now_ms() - 30 * 86_400_000;
    let mut results = Vec::with_capacity(rows.len());
    for r in rows {
        let ns = db::tenancy::namespaces::by_name(pool, &r.namespace).await?;
        let (email, is_org) = ns
            .as_ref()
            .map(|n| (n.email.as_deref(), n.is_org()))
            .unwrap_or((None, false));
        let (last_modified, stars, popularity) = match include_usage {
            false => (None, None, None),
            true => (
                db::content::repositories::last_modified(pool, r.id)
                    .await?
                    .map(|ms| ms / 1000),
                Some(db::content::repositories::star_count(pool, r.id).await?),
                Some(db::operations::audit::action_count(pool, r.id, month_ago).await? as f64),
            ),
        };
        let kind = if r.kind == "application" {
            "application"
        } else {
            "repository"
        };
        results.push(api::FoundRepository {
            kind: kind.into(),
            title: if kind == "application" { "app" } else { "repo" }.into(),
            namespace: namespace_view(&r.namespace, email, is_org),
            href: format!("/{kind}/{}/{}", r.namespace, r.name),
            name: r.name,
            description: r.description,
            is_public: r.visibility == "public",
            score: 4.0,
            last_modified,
            stars,
            popularity,
        });
    }
    Ok(api::FoundRepositories {
        results,
        has_additional,
        page,
        page_size: PAGE_SIZE,
        start_index: offset,
    })
}
