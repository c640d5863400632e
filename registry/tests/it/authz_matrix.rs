//! The authorization decision, table-driven against a real database: every kind of principal
//! (anonymous, users with each way of holding a role, superuser, robots, OAuth tokens with
//! limited scopes, registry bearer tokens) × every action (pull, push, delete, admin, create
//! repository, manage the organization), on a private and a public repository.

use quayside::oci::RepoName;
use quayside::service::access::authz::{Action, Resource, can};
use quayside::service::scopes::Scopes;
use quayside::service::{OAuthRef, Principal, RobotRef, UserRef};
use reqwest::Method;
use serde_json::json;

use crate::backend_tests;
use crate::common::*;

backend_tests!(every_principal_kind_role_and_action);

async fn user_ref(s: &TestServer, name: &str) -> UserRef {
    let row = quayside::db::tenancy::namespaces::by_name(s.ctx().db.pool(), name)
        .await
        .unwrap()
        .unwrap();
    UserRef {
        id: row.id,
        name: name.into(),
        superuser: row.superuser,
    }
}

async fn robot_ref(s: &TestServer, name: &str) -> RobotRef {
    let row = quayside::db::tenancy::robots::by_name(s.ctx().db.pool(), name)
        .await
        .unwrap()
        .unwrap();
    RobotRef {
        id: row.account_id,
        name: name.into(),
        owner: row.owner,
    }
}

async fn every_principal_kind_role_and_action(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = s.init_admin().await;
    let call = |method: Method, path: String, body: serde_json::Value| {
        let s = &s;
        let admin = admin.clone();
        async move {
            let (status, body) = s.call(Some(&admin), method, &path, Some(body)).await;
            assert!(status.is_success(), "{path}: {status} {body}");
        }
    };
    call(
        Method::POST,
        "/organization/".into(),
        json!({"name": "acme"}),
    )
    .await;
    for repo in ["private", "public"] {
        call(
            Method::POST,
            "/repository".into(),
            json!({"namespace": "acme", "repository": repo, "visibility": repo, "description": ""}),
        )
        .await;
    }
    for name in [
        "stranger",
        "direct-read",
        "direct-write",
        "direct-admin",
        "team-read",
        "team-write",
        "team-admin",
        "org-admin",
        "creator",
        "member",
    ] {
        s.user(name).await;
    }
    for robot in [
        "r-read",
        "r-write",
        "r-admin",
        "r-team",
        "r-creator",
        "r-none",
    ] {
        call(
            Method::PUT,
            format!("/organization/acme/robots/{robot}"),
            json!({}),
        )
        .await;
    }
    for (user, role) in [
        ("direct-read", "read"),
        ("direct-write", "write"),
        ("direct-admin", "admin"),
        ("acme+r-read", "read"),
        ("acme+r-write", "write"),
        ("acme+r-admin", "admin"),
    ] {
        call(
            Method::PUT,
            format!("/repository/acme/private/permissions/user/{user}"),
            json!({"role": role}),
        )
        .await;
    }
    for (team, team_role, repo_role, members) in [
        ("t-read", "member", Some("read"), vec!["team-read"]),
        (
            "t-write",
            "member",
            Some("write"),
            vec!["team-write", "acme+r-team"],
        ),
        ("t-admin", "member", Some("admin"), vec!["team-admin"]),
        ("owners", "admin", None, vec!["org-admin"]),
        ("makers", "creator", None, vec!["creator", "acme+r-creator"]),
        ("plain", "member", None, vec!["member"]),
    ] {
        call(
            Method::PUT,
            format!("/organization/acme/team/{team}"),
            json!({"role": team_role}),
        )
        .await;
        for m in members {
            call(
                Method::PUT,
                format!("/organization/acme/team/{team}/members/{m}"),
                json!({}),
            )
            .await;
        }
        if let Some(role) = repo_role {
            call(
                Method::PUT,
                format!("/repository/acme/private/permissions/team/{team}"),
                json!({"role": role}),
            )
            .await;
        }
    }

    let org_admin = user_ref(&s, "org-admin").await;
    let oauth = |user: &UserRef, scopes: &str| {
        Principal::OAuth(OAuthRef {
            user: user.clone(),
            scopes: Scopes::parse(scopes).unwrap(),
            token_id: 0,
            application: None,
        })
    };
    let grant = async |token: String| {
        Principal::Token(
            s.ctx()
                .jwt
                .verify(
                    &s.ctx().db,
                    &token,
                    &s.ctx().registry_service(),
                    s.ctx().now_ms() / 1000,
                )
                .await
                .unwrap(),
        )
    };
    let pull_token = grant(
        s.token(
            Some(("direct-write", "direct-write-password1")),
            &["repository:acme/private:pull"],
        )
        .await,
    )
    .await;
    let push_token = grant(
        s.token(
            Some(("direct-write", "direct-write-password1")),
            &["repository:acme/private:pull,push"],
        )
        .await,
    )
    .await;
    let anonymous_token = grant(
        s.token(
            None,
            &[
                "repository:acme/private:pull",
                "repository:acme/public:pull",
            ],
        )
        .await,
    )
    .await;

    // Columns: private pull, push, delete, admin | public pull, push | create repo in acme,
    // manage acme (teams, robots, settings).
    let rows: Vec<(&str, Principal, [bool; 8])> = vec![
        (
            "anonymous",
            Principal::Anonymous,
            [false, false, false, false, true, false, false, false],
        ),
        (
            "stranger",
            Principal::User(user_ref(&s, "stranger").await),
            [false, false, false, false, true, false, false, false],
        ),
        (
            "user, direct read",
            Principal::User(user_ref(&s, "direct-read").await),
            [true, false, false, false, true, false, false, false],
        ),
        (
            "user, direct write",
            Principal::User(user_ref(&s, "direct-write").await),
            [true, true, true, false, true, false, false, false],
        ),
        (
            "user, direct admin",
            Principal::User(user_ref(&s, "direct-admin").await),
            [true, true, true, true, true, false, false, false],
        ),
        (
            "user, team read",
            Principal::User(user_ref(&s, "team-read").await),
            [true, false, false, false, true, false, false, false],
        ),
        (
            "user, team write",
            Principal::User(user_ref(&s, "team-write").await),
            [true, true, true, false, true, false, false, false],
        ),
        (
            "user, team admin",
            Principal::User(user_ref(&s, "team-admin").await),
            [true, true, true, true, true, false, false, false],
        ),
        (
            "user, org admin team",
            Principal::User(org_admin.clone()),
            [true, true, true, true, true, true, true, true],
        ),
        (
            "user, creator team",
            Principal::User(user_ref(&s, "creator").await),
            [false, false, false, false, true, false, true, false],
        ),
        (
            "user, member team",
            Principal::User(user_ref(&s, "member").await),
            [false, false, false, false, true, false, false, false],
        ),
        (
            "superuser",
            Principal::User(user_ref(&s, ADMIN).await),
            [true; 8],
        ),
        (
            "robot, no permission",
            Principal::Robot(robot_ref(&s, "acme+r-none").await),
            [false, false, false, false, true, false, false, false],
        ),
        (
            "robot, read",
            Principal::Robot(robot_ref(&s, "acme+r-read").await),
            [true, false, false, false, true, false, false, false],
        ),
        (
            "robot, write",
            Principal::Robot(robot_ref(&s, "acme+r-write").await),
            [true, true, true, false, true, false, false, false],
        ),
        (
            "robot, admin",
            Principal::Robot(robot_ref(&s, "acme+r-admin").await),
            [true, true, true, true, true, false, false, false],
        ),
        (
            "robot, team write",
            Principal::Robot(robot_ref(&s, "acme+r-team").await),
            [true, true, true, false, true, false, false, false],
        ),
        (
            "robot, creator team",
            Principal::Robot(robot_ref(&s, "acme+r-creator").await),
            [false, false, false, false, true, false, true, false],
        ),
        (
            "OAuth org admin, repo:read",
            oauth(&org_admin, "repo:read"),
            [true, false, false, false, true, false, false, false],
        ),
        (
            "OAuth org admin, repo:write",
            oauth(&org_admin, "repo:write"),
            [true, true, true, false, true, true, false, false],
        ),
        (
            "OAuth org admin, repo:admin repo:create",
            oauth(&org_admin, "repo:admin repo:create"),
            [true, true, true, true, true, true, true, false],
        ),
        (
            "OAuth org admin, org:admin",
            oauth(&org_admin, "org:admin"),
            [false, false, false, false, false, false, false, true],
        ),
        (
            "OAuth stranger, every scope",
            oauth(
                &user_ref(&s, "stranger").await,
                "repo:admin repo:create org:admin user:admin",
            ),
            [false, false, false, false, true, false, false, false],
        ),
        (
            "registry token, pull",
            pull_token,
            [true, false, false, false, false, false, false, false],
        ),
        (
            "registry token, pull+push",
            push_token,
            [true, true, false, false, false, false, false, false],
        ),
        (
            "registry token, anonymous",
            anonymous_token,
            [false, false, false, false, true, false, false, false],
        ),
    ];
    let private = RepoName::parse("acme/private").unwrap();
    let public = RepoName::parse("acme/public").unwrap();
    let questions: [(&str, Action, Resource<'_>); 8] = [
        ("pull private", Action::Pull, Resource::Repo(&private)),
        ("push private", Action::Push, Resource::Repo(&private)),
        ("delete private", Action::Delete, Resource::Repo(&private)),
        ("admin private", Action::Admin, Resource::Repo(&private)),
        ("pull public", Action::Pull, Resource::Repo(&public)),
        ("push public", Action::Push, Resource::Repo(&public)),
        (
            "create repository",
            Action::CreateRepo,
            Resource::Namespace("acme"),
        ),
        (
            "manage organization",
            Action::AdminNamespace,
            Resource::Namespace("acme"),
        ),
    ];
    let mut failures = Vec::new();
    for (who, principal, expected) in &rows {
        for ((question, action, resource), want) in questions.iter().zip(expected) {
            let got = can(s.ctx(), principal, *action, *resource).await.unwrap();
            if got != *want {
                failures.push(format!("{who}: {question}: expected {want}, got {got}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization table mismatches:\n{}",
        failures.join("\n")
    );
}
