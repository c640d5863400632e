//! Teams: roles, members (users and robots), invitations with and without mail, and the
//! permissions of a team.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::quay::*;
use crate::common::smtp::SmtpSink;
use crate::common::*;

backend_tests!(
    teams_roles_and_members,
    team_roles_grant_what_they_say,
    invitations_when_mail_is_configured
);

async fn org_with_admin(s: &TestServer) -> String {
    let token = s.init_admin().await;
    s.create_org(&token, "acme").await;
    token
}

async fn as_alice(s: &TestServer, method: Method, path: &str) -> (StatusCode, Value) {
    let r = s
        .as_basic("alice", "alice-password1")
        .send(method, &format!("/api/v1{path}"))
        .await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn teams_roles_and_members(b: Backend) {
    let s = TestServer::start(b).await;
    let token = org_with_admin(&s).await;
    s.user("alice").await;

    // Create: Quay's shape, new_team true; update: new_team false.
    let (status, team) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/acme/team/example_team",
            Some(json!({"role": "creator"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&str> = team
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "avatar",
            "can_view",
            "description",
            "name",
            "new_team",
            "role"
        ]
    );
    assert_eq!(team["new_team"], true);
    assert_eq!(team["role"], "creator");
    assert_eq!(team["avatar"]["kind"], "team");
    let (_, team) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/acme/team/example_team",
            Some(json!({"role": "member", "description": "Devs"})),
        )
        .await;
    assert_eq!(team["new_team"], false);
    assert_eq!(team["role"], "member");
    assert_eq!(team["description"], "Devs");
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/acme/team/example_team",
            Some(json!({"role": "boss"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().starts_with("role"),
        "{body}"
    );
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/acme/team/Bad Team",
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Members: users and the organization's robots join directly (no mail configured).
    let robot = s
        .api(&token)
        .create_robot(Some("acme"), "ci", &Default::default())
        .await
        .unwrap();
    assert_eq!(robot.name, "acme+ci");
    let (status, member) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/acme/team/example_team/members/alice",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{member}");
    assert_eq!(
        member,
        json!({"name": "alice", "kind": "user", "is_robot": false, "avatar": member["avatar"], "invited": false})
    );
    let (_, member) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/acme/team/example_team/members/acme+ci",
            None,
        )
        .await;
    assert_eq!(member["is_robot"], true);
    assert_eq!(member["avatar"]["kind"], "robot");
    let (status, members) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/acme/team/example_team/members",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(members["name"], "example_team");
    assert_eq!(members["can_edit"], true);
    let names: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme+ci", "alice"]);
    // Unknown users and other namespaces' robots are refused.
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/acme/team/example_team/members/nobody",
            None,
        )
        .await;
    assert_quay_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Unknown user",
    );
    s.as_basic("alice", "alice-password1")
        .send(Method::PUT, "/api/v1/user/robots/mine")
        .await;
    let (status, body) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/acme/team/example_team/members/alice+mine",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "Cannot add the specified robot to this team, as it is not a member of the organization"
    );

    // A member sees their team's members but cannot change them.
    let (status, members) = as_alice(
        &s,
        Method::GET,
        "/organization/acme/team/example_team/members",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(members["can_edit"], false);
    let (status, _) = as_alice(
        &s,
        Method::PUT,
        "/organization/acme/team/example_team/members/admin",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = as_alice(&s, Method::GET, "/organization/acme/team/owners/members").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Team permissions list the repositories the team has a role on.
    s.api(&token)
        .create_repository(&quayside_client::CreateRepositoryRequest {
            namespace: Some("acme".into()),
            repository: "api-repo".into(),
            visibility: "public".into(),
            description: String::new(),
            repo_kind: None,
        })
        .await
        .unwrap();
    s.api(&token)
        .set_team_permission("acme", "api-repo", "example_team", "admin")
        .await
        .unwrap();
    let (status, perms) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/acme/team/example_team/permissions",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        perms,
        json!({"permissions": [{"repository": {"name": "api-repo", "is_public": true}, "role": "admin"}]})
    );

    // Remove a member; removing again says so.
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/organization/acme/team/example_team/members/alice",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/organization/acme/team/example_team/members/alice",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "User alice does not belong to team example_team"
    );

    // The last admin team of the caller is protected (superusers keep admin anyway).
    let (_, _, carol) = s.user_with_token("carol").await;
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/acme/team/owners/members/carol",
        None,
    )
    .await;
    let (status, body) = s
        .call(
            Some(&carol),
            Method::DELETE,
            "/organization/acme/team/owners",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "Deleting team 'owners' would remove admin ability for user 'carol' in organization 'acme'"
    );
    let (status, body) = s
        .call(
            Some(&carol),
            Method::PUT,
            "/organization/acme/team/owners",
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Cannot remove admin from team 'owners'")
    );
    let (status, body) = s
        .call(
            Some(&carol),
            Method::DELETE,
            "/organization/acme/team/owners/members/carol",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "User cannot remove themselves from their only admin team."
    );

    // Delete a team.
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/organization/acme/team/example_team",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/organization/acme/team/example_team",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "Team 'example_team' is not a team in org 'acme'"
    );
    // Without mail, e-mail invitations are not served: Quay's 405 (recorded), in its error body.
    for method in [Method::PUT, Method::DELETE] {
        let (status, body) = s
            .call(
                Some(&token),
                method,
                "/organization/acme/team/owners/invite/x@example.com",
                None,
            )
            .await;
        assert_eq!(
            status.as_u16(),
            crate::common::quay::recorded("more-219-team-invite-email").status
        );
        assert_eq!(body["status"], 405, "{body}");
        assert_eq!(body["error_type"], "invalid_request", "{body}");
    }

    let kinds: Vec<String> = s.audit("acme").await.into_iter().map(|e| e.kind).collect();
    for kind in [
        "org_create_team",
        "org_set_team_role",
        "org_set_team_description",
        "org_add_team_member",
        "org_remove_team_member",
        "org_delete_team",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
}

async fn team_roles_grant_what_they_say(b: Backend) {
    let s = TestServer::start(b).await;
    let token = org_with_admin(&s).await;
    let (_, pw_m, member) = s.user_with_token("mia").await;
    let (_, pw_c, creator) = s.user_with_token("cody").await;
    let (_, _, admin) = s.user_with_token("ada").await;
    for (team, role, user) in [
        ("readers", "member", "mia"),
        ("makers", "creator", "cody"),
        ("bosses", "admin", "ada"),
    ] {
        s.call(
            Some(&token),
            Method::PUT,
            &format!("/organization/acme/team/{team}"),
            Some(json!({"role": role})),
        )
        .await;
        s.call(
            Some(&token),
            Method::PUT,
            &format!("/organization/acme/team/{team}/members/{user}"),
            None,
        )
        .await;
    }
    let repo = |name: &str| json!({"namespace": "acme", "repository": name, "visibility": "private", "description": ""});
    // member: cannot create repositories; creator: can (and administers what it creates).
    let (status, _) = s
        .call(Some(&member), Method::POST, "/repository", Some(repo("m")))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(Some(&creator), Method::POST, "/repository", Some(repo("c")))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, r) = s
        .call(Some(&creator), Method::GET, "/repository/acme/c", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["can_admin"], true);
    // A creator pushes new repositories; a member cannot.
    s.as_basic("cody", &pw_c)
        .push_image("acme/pushed", "v1")
        .await;
    let r = s
        .as_basic("mia", &pw_m)
        .send(Method::POST, "/v2/acme/other/blobs/uploads/")
        .await;
    expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    // admin team: administers the organization and every repository in it.
    let (status, _) = s
        .call(
            Some(&admin),
            Method::PUT,
            "/organization/acme/team/newteam",
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .call(
            Some(&creator),
            Method::PUT,
            "/organization/acme/team/newteam2",
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, r) = s
        .call(Some(&admin), Method::GET, "/repository/acme/c", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["can_admin"], true);
    let (status, _) = s
        .call(Some(&member), Method::GET, "/repository/acme/c", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn invitations_when_mail_is_configured(b: Backend) {
    let smtp = SmtpSink::start();
    let yaml = format!(
        "FEATURE_MAILING: true\nMAIL_SERVER: 127.0.0.1\nMAIL_PORT: {}\nMAIL_DEFAULT_SENDER: quay@example.com\n",
        smtp.port
    );
    let s = TestServer::start_with(
        b,
        Options {
            yaml,
            ..Options::default()
        },
    )
    .await;
    let token = org_with_admin(&s).await;
    let (_, _, alice) = s.user_with_token("alice").await;
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/acme/team/devs",
        Some(json!({"role": "member"})),
    )
    .await;
    s.api(&token)
        .create_robot(Some("acme"), "ci", &Default::default())
        .await
        .unwrap();

    // A user who is not in the organization is invited; robots join directly.
    let (status, member) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/acme/team/devs/members/alice",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(member["invited"], true);
    let (_, member) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/acme/team/devs/members/acme+ci",
            None,
        )
        .await;
    assert_eq!(member["invited"], false);
    let (_, members) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/acme/team/devs/members",
            None,
        )
        .await;
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
    let (_, members) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/acme/team/devs/members?includePending=true",
            None,
        )
        .await;
    let pending: Vec<&Value> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["invited"] == true)
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["name"], "alice");

    // The invitation arrives by mail and is listed in the user's notifications.
    let mails = smtp.wait_for(1).await;
    assert!(
        mails[0].contains("To: alice@example.com") && mails[0].contains("acme/devs"),
        "{}",
        mails[0]
    );
    let (status, notes) = s
        .call(Some(&alice), Method::GET, "/user/notifications", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let note = &notes["notifications"][0];
    assert_eq!(note["kind"], "org_team_invite");
    assert_eq!(note["metadata"]["team"], "devs");
    let code = note["metadata"]["code"].as_str().unwrap().to_owned();
    assert!(mails[0].contains(&code));
    // Someone else cannot accept it; alice can.
    let (_, _, bob) = s.user_with_token("bob").await;
    let (status, body) = s
        .call(
            Some(&bob),
            Method::PUT,
            &format!("/teaminvite/{code}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = s
        .call(
            Some(&alice),
            Method::PUT,
            &format!("/teaminvite/{code}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"org": "acme", "team": "devs"}));
    let (_, members) = s
        .call(
            Some(&token),
            Method::GET,
            "/organization/acme/team/devs/members",
            None,
        )
        .await;
    assert_eq!(members["members"].as_array().unwrap().len(), 2);
    // Now a member of the organization, alice joins other teams directly.
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/acme/team/ops",
        Some(json!({"role": "member"})),
    )
    .await;
    let (_, member) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/acme/team/ops/members/alice",
            None,
        )
        .await;
    assert_eq!(member["invited"], false);

    // Invitations by e-mail: listed, cancellable, and accepted by the user with that address.
    let (status, invite) = s
        .call(
            Some(&token),
            Method::PUT,
            "/organization/acme/team/devs/invite/bob@example.com",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{invite}");
    assert_eq!(invite["kind"], "invite");
    assert_eq!(invite["email"], "bob@example.com");
    assert_eq!(invite["invited"], true);
    smtp.wait_for(2).await;
    let (_, notes) = s
        .call(Some(&bob), Method::GET, "/user/notifications", None)
        .await;
    let code = notes["notifications"][0]["metadata"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = s
        .call(
            Some(&bob),
            Method::DELETE,
            &format!("/teaminvite/{code}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/acme/team/devs/invite/bob@example.com",
        None,
    )
    .await;
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/organization/acme/team/devs/invite/bob@example.com",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/organization/acme/team/devs/invite/bob@example.com",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Removing an invited user removes the invitation.
    s.call(
        Some(&token),
        Method::PUT,
        "/organization/acme/team/devs/members/bob",
        None,
    )
    .await;
    let (status, _) = s
        .call(
            Some(&token),
            Method::DELETE,
            "/organization/acme/team/devs/members/bob",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, notes) = s
        .call(Some(&bob), Method::GET, "/user/notifications", None)
        .await;
    assert_eq!(notes["notifications"], json!([]));

    let kinds: Vec<String> = s.audit("acme").await.into_iter().map(|e| e.kind).collect();
    for kind in [
        "org_invite_team_member",
        "org_team_member_invite_accepted",
        "org_team_member_invite_declined",
        "org_delete_team_member_invite",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
}
