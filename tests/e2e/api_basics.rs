//! Users, sessions, organizations, members and groups: the main paths.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::TestServer;

#[tokio::test]
async fn first_user_is_owner_and_only_once() {
    let s = TestServer::start().await;
    let anon = s.client();
    assert_eq!(anon.get("/users/first").await.0, StatusCode::NOT_FOUND);
    let owner = s.owner().await;
    let (status, me) = owner.get("/users/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["roles"], json!(["member", "owner"]));
    assert_eq!(me["login_type"], "password");
    assert_eq!(anon.get("/users/first").await.0, StatusCode::OK);
    let (status, body) = anon
        .post(
            "/users/first",
            json!({"username": "second", "email": "s@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // The first user joined the default org.
    let (_, orgs) = owner.get("/users/me/organizations").await;
    assert_eq!(orgs.as_array().unwrap().len(), 1);
    assert_eq!(orgs[0]["name"], "coder");
    assert_eq!(orgs[0]["is_default"], true);
}

#[tokio::test]
async fn login_logout_and_tokens() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let anon = s.client();
    let (status, body) = anon
        .post(
            "/users/login",
            json!({"email": "admin@example.com", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = anon
        .post(
            "/users/login",
            json!({"email": "nobody@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(anon.get("/users/me").await.0, StatusCode::UNAUTHORIZED);
    let mut bad = s.client();
    bad.token = Some("not-a-token".into());
    assert_eq!(bad.get("/users/me").await.0, StatusCode::UNAUTHORIZED);

    // A token for oneself.
    let (status, tok) = owner
        .post(
            "/users/me/keys/tokens",
            json!({"token_name": "ci", "lifetime_seconds": 3600}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tok}");
    let mut via_token = s.client();
    via_token.token = Some(tok["key"].as_str().unwrap().to_owned());
    assert_eq!(via_token.get("/users/me").await.0, StatusCode::OK);

    // Session cookie works too.
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v2/users/me", s.base))
        .header(
            "Cookie",
            format!("orgsync_session={}", owner.token.clone().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Logout ends that session only.
    let (status, _) = owner.post("/users/logout", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(owner.get("/users/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(via_token.get("/users/me").await.0, StatusCode::OK);

    // Secrets are stored hashed: the raw token is nowhere in the database.
    let mut conn = s.state.db.pool().acquire().await.unwrap();
    let raw = tok["key"].as_str().unwrap();
    let rows: Vec<(String,)> = sqlx::query_as("SELECT hashed_secret FROM api_keys")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|(h,)| h != raw && h.len() == 64));
    let hashes: Vec<(Option<String>,)> = sqlx::query_as("SELECT password_hash FROM users")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert!(
        hashes
            .iter()
            .all(|(h,)| h.as_deref().is_some_and(|h| h.starts_with("$argon2id$")))
    );
}

#[tokio::test]
async fn users_create_suspend_activate_and_roles() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let (alice, alice_id) = owner.create_user("alice").await;
    // Every new user joins the default org.
    let (_, orgs) = alice.get("/users/me/organizations").await;
    assert_eq!(orgs[0]["name"], "coder");
    // A plain member cannot list users but reads itself.
    assert_eq!(alice.get("/users").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        alice.get(&format!("/users/{alice_id}")).await.0,
        StatusCode::OK
    );
    let (status, list) = owner.get("/users?limit=10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["count"], 2);

    // Duplicate username or email: 409.
    let (status, _) = owner
        .post(
            "/users",
            json!({"username": "ALICE", "email": "x@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = owner
        .post(
            "/users",
            json!({"username": "alice2", "email": "Alice@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Suspend: every action denied, data kept; login refused; activate restores.
    let (status, u) = owner.put("/users/alice/status/suspend", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(u["status"], "suspended");
    assert_eq!(alice.get("/users/me").await.0, StatusCode::FORBIDDEN);
    let (status, body) = alice.get("/organizations/coder").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["detail"].as_str().unwrap().contains("suspended"));
    let (status, _) = s
        .client()
        .post(
            "/users/login",
            json!({"email": "alice@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, u) = owner.put("/users/alice/status/activate", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(u["status"], "active");
    assert_eq!(alice.get("/organizations/coder").await.0, StatusCode::OK);

    // Nobody suspends or re-roles themselves, the owner included.
    assert_eq!(
        owner.put("/users/me/status/suspend", json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        owner.put("/users/me/roles", json!({"roles": []})).await.0,
        StatusCode::FORBIDDEN
    );

    // user-admin assigns site roles but never `owner`.
    owner.set_site_roles("alice", &["user-admin"]).await;
    let (_bob, _) = owner.create_user("bob").await;
    let (status, body) = alice
        .put("/users/bob/roles", json!({"roles": ["auditor"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["roles"], json!(["member", "auditor"]));
    let (status, _) = alice
        .put("/users/bob/roles", json!({"roles": ["owner"]}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = alice
        .put("/users/bob/roles", json!({"roles": ["superuser"]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["validations"][0]["field"], "roles[0]");
}

#[tokio::test]
async fn organization_lifecycle_and_delete_refusal() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let org_id = owner.create_org("data-platform").await;
    // Everyone group exists with id == org id; creator is a member without roles.
    let (status, groups) = owner.get("/organizations/data-platform/groups").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(groups[0]["id"], org_id.as_str());
    assert_eq!(groups[0]["name"], "Everyone");
    let (_, members) = owner.get("/organizations/data-platform/members").await;
    assert_eq!(members.as_array().unwrap().len(), 1);
    assert_eq!(members[0]["roles"], json!([]));

    // Lists page with limit/offset (orgs sort by name: coder, data-platform).
    let (_, page) = owner.get("/organizations?limit=1&offset=1").await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["name"], "data-platform");
    assert_eq!(
        owner.get("/organizations?limit=0").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        owner
            .get("/organizations/data-platform/members?limit=1")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Lookup by id or name; update; duplicate name 409.
    assert_eq!(
        owner.get(&format!("/organizations/{org_id}")).await.0,
        StatusCode::OK
    );
    let (status, body) = owner
        .patch(
            "/organizations/data-platform",
            json!({"display_name": "Data Platform"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["display_name"], "Data Platform");
    assert_eq!(
        owner
            .post("/organizations", json!({"name": "data-platform"}))
            .await
            .0,
        StatusCode::CONFLICT
    );

    // Non-owners cannot create orgs.
    let (alice, _) = owner.create_user("alice").await;
    assert_eq!(
        alice
            .post("/organizations", json!({"name": "mine"}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // Delete refused while a member and a group remain, naming them.
    owner.add_member("data-platform", "alice", &[]).await;
    let (status, _) = owner
        .post(
            "/organizations/data-platform/groups",
            json!({"name": "eng"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = owner.delete("/organizations/data-platform").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("1 member(s)") && msg.contains("1 group(s)"),
        "{msg}"
    );

    // The default org is undeletable.
    let (status, body) = owner.delete("/organizations/coder").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("guardrail.default-org-undeletable")
    );

    // Clean out and delete.
    assert_eq!(
        owner
            .delete("/organizations/data-platform/members/alice")
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (_, groups) = owner.get("/organizations/data-platform/groups").await;
    let eng = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "eng")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        owner.delete(&format!("/groups/{eng}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        owner.delete("/organizations/data-platform").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        owner.get("/organizations/data-platform").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn members_groups_and_roles() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("eng").await;
    let (alice, _) = owner.create_user("alice").await;
    let (bob, _) = owner.create_user("bob").await;
    let (_carol, _) = owner.create_user("carol").await;
    owner
        .add_member("eng", "alice", &["organization-admin"])
        .await;
    owner.add_member("eng", "bob", &[]).await;
    assert_eq!(
        owner
            .post("/organizations/eng/members/bob", json!({}))
            .await
            .0,
        StatusCode::CONFLICT
    );

    // Org admin manages groups and members of its org.
    let (status, g) = alice
        .post(
            "/organizations/eng/groups",
            json!({"name": "backend", "display_name": "Backend"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{g}");
    let gid = g["id"].as_str().unwrap().to_owned();
    let (status, g) = alice
        .patch(&format!("/groups/{gid}"), json!({"add_users": ["bob"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{g}");
    assert_eq!(g["members"][0]["username"], "bob");
    // Adding a non-member is refused, naming the field.
    let (status, body) = alice
        .patch(&format!("/groups/{gid}"), json!({"add_users": ["carol"]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["validations"][0]["field"], "add_users[0]");
    // Duplicate group name 409; Everyone reserved.
    assert_eq!(
        alice
            .post("/organizations/eng/groups", json!({"name": "backend"}))
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        alice
            .post("/organizations/eng/groups", json!({"name": "everyone"}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    // Everyone: holds every member, cannot be edited or deleted.
    let (_, org) = owner.get("/organizations/eng").await;
    let everyone = org["id"].as_str().unwrap().to_owned();
    let (_, e) = bob.get(&format!("/groups/{everyone}")).await;
    assert_eq!(e["members"].as_array().unwrap().len(), 3);
    assert_eq!(
        alice
            .patch(&format!("/groups/{everyone}"), json!({"name": "x"}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        alice.delete(&format!("/groups/{everyone}")).await.0,
        StatusCode::BAD_REQUEST
    );

    // Plain members read but do not write.
    assert_eq!(
        bob.get("/organizations/eng/members").await.0,
        StatusCode::OK
    );
    assert_eq!(
        bob.post("/organizations/eng/groups", json!({"name": "mine"}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        bob.put(
            "/organizations/eng/members/alice/roles",
            json!({"roles": []})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    // Nobody changes their own roles or removes themselves.
    assert_eq!(
        alice
            .put(
                "/organizations/eng/members/alice/roles",
                json!({"roles": []})
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        alice.delete("/organizations/eng/members/me").await.0,
        StatusCode::FORBIDDEN
    );

    // Org user-admin assigns only organization-member.
    let (status, _) = alice
        .put(
            "/organizations/eng/members/bob/roles",
            json!({"roles": ["organization-user-admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, roles) = bob.get("/organizations/eng/members/roles").await;
    let assignable: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["assignable"] == true)
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(assignable, vec!["organization-member"]);
    owner.add_member("eng", "carol", &[]).await;
    assert_eq!(
        bob.put(
            "/organizations/eng/members/carol/roles",
            json!({"roles": ["organization-admin"]})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        bob.put(
            "/organizations/eng/members/carol/roles",
            json!({"roles": ["organization-member"]})
        )
        .await
        .0,
        StatusCode::OK
    );

    // Removing a member removes it from the org's groups in the same change.
    assert_eq!(
        alice.delete("/organizations/eng/members/bob").await.0,
        StatusCode::NO_CONTENT
    );
    let (_, g) = alice.get(&format!("/groups/{gid}")).await;
    assert_eq!(g["members"], json!([]));
    // And bob no longer sees the org.
    assert_eq!(bob.get("/organizations/eng").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn replicas_see_authorization_changes_at_the_next_request() {
    let a = TestServer::start().await;
    let b = a.replica().await;
    let owner = a.owner().await;
    let (alice_a, _) = owner.create_user("alice").await;
    let mut alice_b = b.client();
    alice_b.token = alice_a.token.clone();
    owner.create_org("eng").await;
    // Replica B caches alice's slice (not a member of eng).
    assert_eq!(
        alice_b.get("/organizations/eng").await.0,
        StatusCode::NOT_FOUND
    );
    // A change made through replica A...
    owner
        .add_member("eng", "alice", &["organization-admin"])
        .await;
    // ...is seen by replica B at once.
    assert_eq!(alice_b.get("/organizations/eng").await.0, StatusCode::OK);
    let (status, _) = alice_b
        .patch("/organizations/eng", json!({"display_name": "Engineering"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    owner.put("/users/alice/status/suspend", json!({})).await;
    assert_eq!(
        alice_b.get("/organizations/eng").await.0,
        StatusCode::FORBIDDEN
    );
    b.stop().await;
}
