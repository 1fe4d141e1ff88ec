//! Users, sessions, organizations, members and groups: the main paths.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Client, TestServer};

#[tokio::test]
async fn first_user_is_owner_and_only_once() {
    let s = TestServer::start().await;
    let anon = s.client();
    let (status, reply) = anon.get("/users/first").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    let owner = s.owner().await;
    let (status, me) = owner.get("/users/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["roles"], json!(["member", "owner"]));
    assert_eq!(me["login_type"], "password");
    let (status, reply) = anon.get("/users/first").await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, body) = anon
        .post(
            "/users/first",
            json!({"username": "second", "email": "s@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // The first user joined the default org.
    let orgs = owner.get_ok("/users/me/organizations").await;
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
    let (status, body) = anon
        .post(
            "/users/login",
            json!({"email": "nobody@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, reply) = anon.get("/users/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    let mut bad = s.client();
    bad.token = Some("not-a-token".into());
    let (status, reply) = bad.get("/users/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");

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
    let (status, reply) = via_token.get("/users/me").await;
    assert_eq!(status, StatusCode::OK, "{reply}");

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
    let (status, body) = owner.post("/users/logout", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, reply) = owner.get("/users/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    let (status, reply) = via_token.get("/users/me").await;
    assert_eq!(status, StatusCode::OK, "{reply}");

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
    let orgs = alice.get_ok("/users/me/organizations").await;
    assert_eq!(orgs[0]["name"], "coder");
    // A plain member cannot list users but reads itself.
    let (status, reply) = alice.get("/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    let (status, reply) = alice.get(&format!("/users/{alice_id}")).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, list) = owner.get("/users?limit=10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["count"], 2);

    // Duplicate username or email: 409, and no user is added.
    for (username, email) in [("ALICE", "x@example.com"), ("alice2", "Alice@example.com")] {
        let (status, body) = owner
            .post(
                "/users",
                json!({"username": username, "email": email, "password": "password123"}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{username}: {body}");
    }
    assert_eq!(owner.get_ok("/users?limit=10").await["count"], 2);

    // Suspend: every action denied, data kept; login refused; activate restores.
    let (status, u) = owner.put("/users/alice/status/suspend", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{u}");
    assert_eq!(u["status"], "suspended");
    assert_eq!(owner.get_ok("/users/alice").await["status"], "suspended");
    let (status, reply) = alice.get("/users/me").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    let (status, body) = alice.get("/organizations/coder").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["detail"].as_str().unwrap().contains("suspended"));
    let (status, body) = s
        .client()
        .post(
            "/users/login",
            json!({"email": "alice@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, u) = owner.put("/users/alice/status/activate", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{u}");
    assert_eq!(u["status"], "active");
    assert_eq!(owner.get_ok("/users/alice").await["status"], "active");
    let (status, reply) = alice.get("/organizations/coder").await;
    assert_eq!(status, StatusCode::OK, "{reply}");

    // Nobody suspends or re-roles themselves, the owner included.
    for (status, body) in [
        owner.put("/users/me/status/suspend", json!({})).await,
        owner.put("/users/me/roles", json!({"roles": []})).await,
    ] {
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let me = owner.get_ok("/users/me").await;
    assert_eq!(me["status"], "active");
    assert_eq!(me["roles"], json!(["member", "owner"]));

    // user-admin assigns site roles but never `owner`.
    owner.set_site_roles("alice", &["user-admin"]).await;
    let (_bob, _) = owner.create_user("bob").await;
    let (status, body) = alice
        .put("/users/bob/roles", json!({"roles": ["auditor"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["roles"], json!(["member", "auditor"]));
    assert_eq!(
        owner.get_ok("/users/bob").await["roles"],
        json!(["member", "auditor"])
    );
    let (status, body) = alice
        .put("/users/bob/roles", json!({"roles": ["owner"]}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = alice
        .put("/users/bob/roles", json!({"roles": ["superuser"]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["validations"][0]["field"], "roles[0]");
    assert_eq!(
        owner.get_ok("/users/bob").await["roles"],
        json!(["member", "auditor"]),
        "the refused changes left bob's roles"
    );
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
    let members = owner.get_ok("/organizations/data-platform/members").await;
    assert_eq!(members.as_array().unwrap().len(), 1);
    assert_eq!(members[0]["roles"], json!([]));

    // Lists page with limit/offset (orgs sort by name: coder, data-platform).
    let page = owner.get_ok("/organizations?limit=1&offset=1").await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["name"], "data-platform");
    let (status, body) = owner.get("/organizations?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        owner
            .get_ok("/organizations/data-platform/members?limit=1")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Lookup by id or name; update; duplicate name 409.
    assert_eq!(
        owner.get_ok(&format!("/organizations/{org_id}")).await["name"],
        "data-platform"
    );
    let (status, body) = owner
        .patch(
            "/organizations/data-platform",
            json!({"display_name": "Data Platform"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["display_name"], "Data Platform");
    assert_eq!(
        owner.get_ok("/organizations/data-platform").await["display_name"],
        "Data Platform"
    );
    let (status, body) = owner
        .post("/organizations", json!({"name": "data-platform"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        owner
            .get_ok("/organizations")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Non-owners cannot create orgs.
    let (alice, _) = owner.create_user("alice").await;
    let (status, body) = alice.post("/organizations", json!({"name": "mine"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = owner.get("/organizations/mine").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Delete refused while a member and a group remain, naming them.
    owner.add_member("data-platform", "alice", &[]).await;
    let (status, body) = owner
        .post(
            "/organizations/data-platform/groups",
            json!({"name": "eng"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = owner.delete("/organizations/data-platform").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("1 member(s)") && msg.contains("1 group(s)"),
        "{msg}"
    );
    assert_eq!(
        owner.get_ok("/organizations/data-platform").await["id"],
        org_id.as_str()
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
    assert_eq!(
        owner.get_ok("/organizations/coder").await["is_default"],
        true
    );

    // Clean out and delete.
    let (status, body) = owner
        .delete("/organizations/data-platform/members/alice")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let members = owner.get_ok("/organizations/data-platform/members").await;
    assert!(
        !members.to_string().contains("\"alice\""),
        "alice was removed: {members}"
    );
    let groups = owner.get_ok("/organizations/data-platform/groups").await;
    let eng = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "eng")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = owner.delete(&format!("/groups/{eng}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = owner.get(&format!("/groups/{eng}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = owner.delete("/organizations/data-platform").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = owner.get("/organizations/data-platform").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let orgs = owner.get_ok("/organizations").await;
    assert_eq!(orgs.as_array().unwrap().len(), 1, "{orgs}");
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
    let (status, body) = owner
        .post("/organizations/eng/members/bob", json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(member_roles(&owner, "eng", "bob").await, Some(json!([])));

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
    assert_eq!(group_members(&alice, &gid).await, ["bob"]);
    // Adding a non-member is refused, naming the field.
    let (status, body) = alice
        .patch(&format!("/groups/{gid}"), json!({"add_users": ["carol"]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["validations"][0]["field"], "add_users[0]");
    assert_eq!(group_members(&alice, &gid).await, ["bob"]);
    // Duplicate group name 409; Everyone reserved.
    for (name, refused) in [
        ("backend", StatusCode::CONFLICT),
        ("everyone", StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = alice
            .post("/organizations/eng/groups", json!({"name": name}))
            .await;
        assert_eq!(status, refused, "{name}: {body}");
    }
    assert_eq!(group_names(&alice, "eng").await, ["Everyone", "backend"]);

    // Everyone: holds every member, cannot be edited or deleted.
    let org = owner.get_ok("/organizations/eng").await;
    let everyone = org["id"].as_str().unwrap().to_owned();
    let e = bob.get_ok(&format!("/groups/{everyone}")).await;
    assert_eq!(e["members"].as_array().unwrap().len(), 3);
    for (status, body) in [
        alice
            .patch(&format!("/groups/{everyone}"), json!({"name": "x"}))
            .await,
        alice.delete(&format!("/groups/{everyone}")).await,
    ] {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    assert_eq!(bob.get_ok(&format!("/groups/{everyone}")).await, e);

    // Plain members read but do not write.
    let members = bob.get_ok("/organizations/eng/members").await;
    assert_eq!(members.as_array().unwrap().len(), 3, "{members}");
    for (status, body) in [
        bob.post("/organizations/eng/groups", json!({"name": "mine"}))
            .await,
        bob.put(
            "/organizations/eng/members/alice/roles",
            json!({"roles": []}),
        )
        .await,
    ] {
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    assert_eq!(group_names(&alice, "eng").await, ["Everyone", "backend"]);
    assert_eq!(
        member_roles(&owner, "eng", "alice").await,
        Some(json!(["organization-admin"]))
    );

    // Nobody changes their own roles or removes themselves.
    for (status, body) in [
        alice
            .put(
                "/organizations/eng/members/alice/roles",
                json!({"roles": []}),
            )
            .await,
        alice.delete("/organizations/eng/members/me").await,
    ] {
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    assert_eq!(
        member_roles(&owner, "eng", "alice").await,
        Some(json!(["organization-admin"]))
    );

    // Org user-admin assigns only organization-member.
    let (status, body) = alice
        .put(
            "/organizations/eng/members/bob/roles",
            json!({"roles": ["organization-user-admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        member_roles(&owner, "eng", "bob").await,
        Some(json!(["organization-user-admin"]))
    );
    let roles = bob.get_ok("/organizations/eng/members/roles").await;
    let assignable: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["assignable"] == true)
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(assignable, vec!["organization-member"]);
    owner.add_member("eng", "carol", &[]).await;
    let (status, body) = bob
        .put(
            "/organizations/eng/members/carol/roles",
            json!({"roles": ["organization-admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(member_roles(&owner, "eng", "carol").await, Some(json!([])));
    let (status, body) = bob
        .put(
            "/organizations/eng/members/carol/roles",
            json!({"roles": ["organization-member"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // `organization-member` is implicit: not listed.
    assert_eq!(member_roles(&owner, "eng", "carol").await, Some(json!([])));

    // Removing a member removes it from the org's groups in the same change.
    let (status, body) = alice.delete("/organizations/eng/members/bob").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(member_roles(&owner, "eng", "bob").await, None);
    let g = alice.get_ok(&format!("/groups/{gid}")).await;
    assert_eq!(g["members"], json!([]));
    // And bob no longer sees the org.
    let (status, body) = bob.get("/organizations/eng").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
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
    let (status, reply) = alice_b.get("/organizations/eng").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    // A change made through replica A...
    owner
        .add_member("eng", "alice", &["organization-admin"])
        .await;
    // ...is seen by replica B at once.
    assert_eq!(alice_b.get_ok("/organizations/eng").await["name"], "eng");
    let (status, body) = alice_b
        .patch("/organizations/eng", json!({"display_name": "Engineering"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        owner.get_ok("/organizations/eng").await["display_name"],
        "Engineering",
        "replica A reads what replica B wrote"
    );
    let (status, body) = owner.put("/users/alice/status/suspend", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = alice_b.get("/organizations/eng").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    b.stop().await;
}

/// A member's org roles (`organization-member` is implicit), or `None` when
/// the user is not a member.
async fn member_roles(c: &Client, org: &str, username: &str) -> Option<Value> {
    c.get_ok(&format!("/organizations/{org}/members"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == username)
        .map(|m| m["roles"].clone())
}

/// The usernames in a group.
async fn group_members(c: &Client, group_id: &str) -> Vec<String> {
    c.get_ok(&format!("/groups/{group_id}")).await["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap().to_owned())
        .collect()
}

/// The names of an org's groups, sorted.
async fn group_names(c: &Client, org: &str) -> Vec<String> {
    let mut names: Vec<String> = c
        .get_ok(&format!("/organizations/{org}/groups"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}
