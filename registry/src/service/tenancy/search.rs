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
//! - Everything (`/api/v1/find/all`, with `repo:read`): for a signed-in caller the teams it is
//!   on and those of organizations it administers, and its robots and those of organizations it
//!   administers, by name prefix; for anyone repositories it may see (name or description
//!   containing the query) and users and organizations holding one (name prefix); at most five
//!   of each. Each kind has Quay's base score (user/organization/robot 1, team 2, repository 4)
//!   times how close the name is to the query (1 for the name itself, less for a prefix, a
//!   substring, scattered letters; 0.5 otherwise, as Quay floors it), best first. Quay computes
//!   closeness with the LiquidMetal algorithm; ours keeps its order (exact, prefix, substring,
//!   scattered) but not its exact figures.

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

/// Results of one kind `find/all` returns at most.
const FIND_ALL_LIMIT: i64 = 5;

/// How close `name` is to `query`, in (0, 1]: 1 for equal names (case aside), then a prefix,
/// a substring and letters in order, each weighted by how much of the name the query covers;
/// 0.5 when none applies (Quay's floor).
fn closeness(name: &str, query: &str) -> f64 {
    let (n, q) = (name.to_lowercase(), query.to_lowercase());
    if n.is_empty() || q.is_empty() {
        return 0.5;
    }
    let cover = (q.chars().count() as f64 / n.chars().count() as f64).min(1.0);
    if n == q {
        1.0
    } else if n.starts_with(&q) {
        0.8 + 0.15 * cover
    } else if n.contains(&q) {
        0.65 + 0.15 * cover
    } else {
        let mut rest = n.chars();
        let scattered = q.chars().all(|c| rest.any(|x| x == c));
        if scattered { 0.5 + 0.1 * cover } else { 0.5 }
    }
}

/// `GET /api/v1/find/all`.
pub async fn find_all(
    ctx: &Ctx,
    principal: &Principal,
    query: &str,
) -> Result<api::SearchResults, TenancyError> {
    use serde_json::{Value, json};
    if let Some(scopes) = principal.scopes()
        && !scopes.has(crate::service::scopes::Scope::RepoRead)
    {
        return Err(TenancyError::Forbidden { anonymous: false });
    }
    let query = query.trim();
    if query.is_empty() {
        return Ok(api::SearchResults {
            results: Vec::new(),
        });
    }
    let pool = ctx.db.pool();
    let lowered = query.to_lowercase();
    let mut results: Vec<(f64, Value)> = Vec::new();
    let org_entity = |name: &str, email: Option<&str>| {
        serde_json::to_value(namespace_view(name, email, true)).unwrap_or_default()
    };
    let user = principal.user().map(|u| (u.id, u.name.clone()));
    if let Some((id, me)) = &user {
        let mut seen = std::collections::BTreeSet::new();
        for admined in [false, true] {
            for t in
                db::tenancy::search::teams_of_account(pool, *id, &lowered, admined, FIND_ALL_LIMIT)
                    .await?
            {
                if !seen.insert(t.id) {
                    continue;
                }
                results.push((
                    2.0 * closeness(&t.name, query),
                    json!({
                        "kind": "team",
                        "name": t.name,
                        "organization": org_entity(&t.org_name, t.org_email.as_deref()),
                        "avatar": views::avatar(&t.name, None, "team"),
                        "href": format!("/organization/{}/teams/{}", t.org_name, t.name),
                    }),
                ));
            }
        }
        for robot in
            db::tenancy::search::robots_of_account(pool, *id, &lowered, FIND_ALL_LIMIT).await?
        {
            let (owner, short) = robot.split_once('+').unwrap_or((robot.as_str(), ""));
            let href = match owner == me {
                true => format!("/user/{me}?tab=robots&showRobot={robot}"),
                false => format!("/organization/{owner}?tab=robots&showRobot={robot}"),
            };
            results.push((
                closeness(short, query),
                json!({
                    "title": "robot",
                    "kind": "robot",
                    "avatar": null,
                    "name": robot,
                    "href": href,
                    "short_name": short,
                }),
            ));
        }
    }
    let viewer = principal.account().map(|a| a.id);
    for r in db::content::repositories::search(pool, viewer, query, 0, FIND_ALL_LIMIT).await? {
        let ns = db::tenancy::namespaces::by_name(pool, &r.namespace).await?;
        let (email, is_org) = ns
            .as_ref()
            .map(|n| (n.email.as_deref(), n.is_org()))
            .unwrap_or((None, false));
        results.push((
            4.0 * closeness(&r.name, query),
            json!({
                "kind": "repository",
                "title": "repo",
                "namespace": namespace_view(&r.namespace, email, is_org),
                "href": format!("/repository/{}/{}", r.namespace, r.name),
                "name": r.name,
                "description": r.description,
                "is_public": r.visibility == "public",
            }),
        ));
    }
    for (name, email, is_org) in
        db::content::repositories::namespaces_with_visible(pool, viewer, query, FIND_ALL_LIMIT)
            .await?
    {
        let score = closeness(&name, query);
        results.push((
            score,
            serde_json::to_value(namespace_view(&name, email.as_deref(), is_org))
                .unwrap_or_default(),
        ));
    }
    results.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(api::SearchResults {
        results: results
            .into_iter()
            .map(|(score, mut v)| {
                v["score"] = json!(score);
                v
            })
            .collect(),
    })
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
