//! IdP sync in the server: settings API (validation, audit, mapping patches),
//! preview (writes nothing), applying a plan at login (only real differences,
//! problems recorded), and the guards on manual changes.

use orgsync::usecase::{Caller, Work};
use orgsync_policy::{Action, Resource};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::harness::{Client, TestServer};

async fn audit_count(c: &Client) -> i64 {
    c.get_ok("/audit?limit=1").await["count"].as_i64().unwrap()
}

#[tokio::test]
async fn settings_api_validates_audits_and_patches_mappings() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("data-platform").await;
    let d = owner.get_ok("/settings/idpsync/organization").await;
    assert_eq!(d["organization_assign_default"], true);

    let (status, body) = owner
        .patch(
            "/settings/idpsync/organization",
            json!({"field": "groups", "mapping": {"eng": ["data-platform"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mapping"]["eng"], json!(["data-platform"]));
    let audit = owner
        .get_ok("/audit?q=resource_type:organization_sync_settings")
        .await;
    let diff = &audit["audit_logs"][0]["diff"];
    assert_eq!(diff["field"]["new"], "groups", "{diff}");
    assert_eq!(diff["field"]["old"], Value::Null);

    // Mapping patch: add and remove; remove wins for the same pair.
    let (status, body) = owner
        .patch(
            "/settings/idpsync/organization/mapping",
            json!({"add": [{"given": "ops", "gets": "data-platform"}, {"given": "eng", "gets": "coder"}],
                   "remove": [{"given": "eng", "gets": "coder"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["mapping"],
        json!({"eng": ["data-platform"], "ops": ["data-platform"]})
    );
    let org_sync = owner.get_ok("/settings/idpsync/organization").await;
    assert_eq!(org_sync, body, "stored as answered");
    let group_sync_path = "/organizations/data-platform/settings/idpsync/groups";
    let role_sync_path = "/organizations/data-platform/settings/idpsync/roles";
    let group_sync = owner.get_ok(group_sync_path).await;
    let role_sync = owner.get_ok(role_sync_path).await;
    let site_role_sync = owner.get_ok("/settings/idpsync/site-roles").await;

    // Validation: a mapping that is not string -> list, an invalid regex, unknown roles.
    let (status, body) = owner
        .patch(
            "/settings/idpsync/organization",
            json!({"mapping": {"eng": "data-platform"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = owner
        .patch(
            "/organizations/data-platform/settings/idpsync/groups",
            json!({"field": "groups", "regex_filter": "(unclosed"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["validations"][0]["field"], "regex_filter", "{body}");
    let (status, body) = owner
        .patch(
            "/organizations/data-platform/settings/idpsync/roles",
            json!({"field": "roles", "mapping": {"admins": ["organization-superuser"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["validations"][0]["field"]
            .as_str()
            .unwrap()
            .contains("mapping"),
        "{body}"
    );
    let (status, body) = owner
        .patch(
            "/settings/idpsync/site-roles",
            json!({"default_roles": ["root"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = owner
        .patch("/settings/idpsync/organization", json!({"colour": "blue"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // None of the refused patches wrote anything.
    assert_eq!(
        owner.get_ok("/settings/idpsync/organization").await,
        org_sync
    );
    assert_eq!(owner.get_ok(group_sync_path).await, group_sync);
    assert_eq!(owner.get_ok(role_sync_path).await, role_sync);
    assert_eq!(
        owner.get_ok("/settings/idpsync/site-roles").await,
        site_role_sync
    );

    // Who may: an org admin edits its org's group sync, not deployment org sync,
    // and nothing of another org.
    let (alice, _) = owner.create_user("alice").await;
    owner
        .add_member("data-platform", "alice", &["organization-admin"])
        .await;
    let (status, reply) = alice
        .patch(group_sync_path, json!({"field": "groups"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(owner.get_ok(group_sync_path).await["field"], "groups");
    let (status, reply) = alice
        .patch("/settings/idpsync/organization", json!({"field": "x"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    assert_eq!(
        owner.get_ok("/settings/idpsync/organization").await,
        org_sync
    );
    owner.create_org("ops").await;
    let (status, reply) = alice
        .get("/organizations/ops/settings/idpsync/groups")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    let (bob, _) = owner.create_user("bob").await;
    owner.add_member("data-platform", "bob", &[]).await;
    let (status, reply) = bob
        .get("/organizations/data-platform/settings/idpsync/groups")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
}

async fn setup_sync(owner: &Client) {
    owner.create_org("data-platform").await;
    let (status, reply) = owner
        .post(
            "/organizations/data-platform/groups",
            json!({"name": "backend"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    for (path, body) in [
        (
            "/settings/idpsync/organization",
            json!({"field": "groups", "mapping": {"eng": ["data-platform"], "ghosts": ["no-such-org"]}}),
        ),
        (
            "/organizations/data-platform/settings/idpsync/groups",
            json!({"field": "groups", "regex_filter": "^(eng|team-.*)$", "auto_create_missing_groups": true,
                   "mapping": {"eng": ["backend"]}}),
        ),
        (
            "/organizations/data-platform/settings/idpsync/roles",
            json!({"field": "roles", "mapping": {"lead": ["organization-admin"]}}),
        ),
    ] {
        let (status, body) = owner.patch(path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
}

#[tokio::test]
async fn preview_plans_with_reasons_and_writes_nothing() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    setup_sync(&owner).await;
    let before = audit_count(&owner).await;
    let claims =
        json!({"groups": ["eng", "ghosts", "team-ml", "random"], "roles": ["lead", "bogus"]});
    let (status, plan) = owner
        .post("/idpsync/preview", json!({"claims": claims}))
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["refused"], Value::Null);
    assert_eq!(
        plan["organizations"]["result"],
        json!(["coder", "data-platform"])
    );
    let dp = &plan["groups"]["data-platform"];
    assert_eq!(
        dp["result"],
        json!(["Everyone", "backend", "team-ml"]),
        "{plan}"
    );
    assert!(
        dp["add"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "team-ml" && g["create"] == true)
    );
    assert_eq!(
        plan["roles"]["data-platform"]["result"],
        json!(["organization-admin"])
    );
    let kinds: Vec<&str> = plan["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"unknown_organization"), "{kinds:?}");
    // An unmapped role claim value that names no role is dropped and reported.
    assert!(
        plan["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "unmatched_claim_value"
                && p["organization"] == "data-platform"
                && p["detail"].as_str().unwrap().contains("\"bogus\"")),
        "{plan}"
    );
    // Nothing written: no audit entry, no group created.
    assert_eq!(audit_count(&owner).await, before);
    let groups = owner.get_ok("/organizations/data-platform/groups").await;
    assert!(
        !groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "team-ml")
    );
    // A claim that cannot be parsed refuses (org sync).
    let (status, plan) = owner
        .post("/idpsync/preview", json!({"claims": {"groups": "eng,ops"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["refused"]["status"], 403, "{plan}");
    // Only deployment sync readers preview.
    let (alice, _) = owner.create_user("alice").await;
    let (status, reply) = alice.post("/idpsync/preview", json!({"claims": {}})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
}

/// The caller of a login's IdP sync (the OIDC login's own authority) and its
/// audit metadata.
fn login_caller() -> (Caller, orgsync::audit::AuditCtx) {
    let caller = Caller::system(orgsync::authz::System::OidcLogin);
    let ctx = caller.audit_ctx().clone();
    (caller, ctx)
}

#[tokio::test]
async fn login_sync_applies_only_differences_and_records_problems() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    setup_sync(&owner).await;
    let (_, alice_id) = owner.create_user("alice").await;
    let app = s.state.clone();
    let sync = |claims: Value| {
        let app = app.clone();
        let alice_id = alice_id.clone();
        async move {
            let claims: Map<String, Value> = serde_json::from_value(claims).unwrap();
            let (caller, ctx) = login_caller();
            let mut work = Work::begin(app.ctx(), &caller).await.unwrap();
            let permit = work
                .require(Action::MEMBER_CREATE, &Resource::site(), "sync")
                .unwrap();
            let now = orgsync::clock::fmt(orgsync::clock::now());
            let mut w = work.write(&permit).unwrap();
            let out = orgsync::idpsync::sync_at_login(&mut w, &alice_id, &claims, &now, &ctx).await;
            work.commit().await.unwrap();
            app.authz.invalidate([alice_id.as_str()]);
            out
        }
    };
    let claims = json!({"groups": ["eng", "team-ml", "ghosts"], "roles": ["lead"]});
    let out = sync(claims.clone()).await.unwrap();
    assert!(out.changed);
    let members = owner.get_ok("/organizations/data-platform/members").await;
    let alice = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == "alice")
        .unwrap()
        .clone();
    assert_eq!(alice["roles"], json!(["organization-admin"]));
    let groups = owner.get_ok("/organizations/data-platform/groups").await;
    let ml = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "team-ml")
        .unwrap()
        .clone();
    assert_eq!(ml["source"], "oidc");
    assert_eq!(ml["members"][0]["username"], "alice");
    let audit = owner.get_ok("/audit?q=source:oidc_login").await;
    assert!(audit["count"].as_i64().unwrap() >= 4, "{audit}");

    // An identical second login writes nothing (problems already recorded are
    // not recorded again).
    let before = audit_count(&owner).await;
    let problems_before = owner.get_ok("/idpsync/problems").await["problems"]
        .as_array()
        .unwrap()
        .len();
    let out = sync(claims.clone()).await.unwrap();
    assert!(!out.changed);
    assert_eq!(audit_count(&owner).await, before);
    assert_eq!(
        owner.get_ok("/idpsync/problems").await["problems"]
            .as_array()
            .unwrap()
            .len(),
        problems_before
    );

    // Changed claims: leaves data-platform and its groups, in one go.
    let out = sync(json!({"groups": ["random"]})).await.unwrap();
    assert!(out.changed);
    let orgs = owner
        .get_ok(&format!("/users/{alice_id}/organizations"))
        .await;
    assert_eq!(orgs.as_array().unwrap().len(), 1);
    let g = owner
        .get_ok(&format!("/groups/{}", ml["id"].as_str().unwrap()))
        .await;
    assert_eq!(g["members"], json!([]));

    // A bad claim refuses and changes nothing.
    let before = audit_count(&owner).await;
    let refused = sync(json!({"groups": 42})).await.unwrap_err();
    assert_eq!(refused.status, 403);
    assert_eq!(audit_count(&owner).await, before);

    // Problems are visible to admins (an org admin sees only its org's).
    let (status, problems) = owner.get("/idpsync/problems").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        problems["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "unknown_organization"),
        "{problems}"
    );
    let (bob, _) = owner.create_user("bob").await;
    let (status, reply) = bob.get("/idpsync/problems").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");

    // Claim discovery reads stored claims.
    let mut conn = s.state.db.pool().acquire().await.unwrap();
    sqlx::query("INSERT INTO user_links (user_id, source, external_id, claims, created_at, updated_at) VALUES ($1, 'oidc', 'sub-1', $2, 'x', 'x')")
        .bind(&alice_id)
        .bind(json!({"groups": ["eng", "ops"], "email": "a@example.com"}).to_string())
        .execute(&mut *conn)
        .await
        .unwrap();
    let fields = owner.get_ok("/settings/idpsync/available-fields").await;
    assert_eq!(fields, json!(["email", "groups"]));
    let values = owner
        .get_ok("/settings/idpsync/field-values?claimField=groups")
        .await;
    assert_eq!(values, json!(["eng", "ops"]));
}

#[tokio::test]
async fn manual_changes_to_synced_things_are_refused() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    setup_sync(&owner).await;
    let (_, alice_id) = owner.create_user("alice").await;
    let mut conn = s.state.db.pool().acquire().await.unwrap();
    sqlx::query("UPDATE users SET login_type = 'oidc' WHERE id = $1")
        .bind(&alice_id)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let (status, body) = owner
        .post("/organizations/data-platform/members/alice", json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("identity provider"),
        "{body}"
    );
    assert_eq!(dp_roles(&owner, "alice").await, None, "not added");
    // Password users are still added by hand.
    owner.create_user("bob").await;
    owner.add_member("data-platform", "bob", &[]).await;
    assert_eq!(dp_roles(&owner, "bob").await, Some(json!([])));
    // Role sync on in data-platform: manual role changes of IdP users refused.
    let (status, body) = owner
        .patch("/settings/idpsync/organization", json!({"field": null}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        owner.get_ok("/settings/idpsync/organization").await["field"],
        Value::Null
    );
    owner.add_member("data-platform", "alice", &[]).await;
    let (status, body) = owner
        .put(
            "/organizations/data-platform/members/alice/roles",
            json!({"roles": ["organization-auditor"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(dp_roles(&owner, "alice").await, Some(json!([])));
    // Removing a member by hand stays allowed.
    let (status, reply) = owner
        .delete("/organizations/data-platform/members/alice")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    assert_eq!(dp_roles(&owner, "alice").await, None, "removed");
}

/// A user's roles in data-platform, `None` when not a member.
async fn dp_roles(c: &Client, username: &str) -> Option<Value> {
    c.get_ok("/organizations/data-platform/members")
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == username)
        .map(|m| m["roles"].clone())
}

#[tokio::test]
async fn problems_are_visible_per_org_to_its_admins_only() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let dp_id = owner.create_org("data-platform").await;
    let ops_id = owner.create_org("ops").await;
    for (path, body) in [
        (
            "/settings/idpsync/organization",
            json!({"field": "groups",
                   "mapping": {"dp": ["data-platform"], "ops": ["ops"], "ghosts": ["no-such-org"]}}),
        ),
        (
            "/organizations/data-platform/settings/idpsync/groups",
            json!({"field": "groups", "mapping": {"dp": ["no-such-group-dp"]}}),
        ),
        (
            "/organizations/ops/settings/idpsync/groups",
            json!({"field": "groups", "mapping": {"ops": ["no-such-group-ops"]}}),
        ),
    ] {
        let (status, body) = owner.patch(path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    // A login sync records a problem in each org and a deployment-wide one.
    let (_, carol_id) = owner.create_user("carol").await;
    let claims: Map<String, Value> =
        serde_json::from_value(json!({"groups": ["dp", "ops", "ghosts"]})).unwrap();
    let app = s.state.clone();
    let (caller, ctx) = login_caller();
    let mut work = Work::begin(app.ctx(), &caller).await.unwrap();
    let permit = work
        .require(Action::MEMBER_CREATE, &Resource::site(), "sync")
        .unwrap();
    let now = orgsync::clock::fmt(orgsync::clock::now());
    let mut w = work.write(&permit).unwrap();
    let out = orgsync::idpsync::sync_at_login(&mut w, &carol_id, &claims, &now, &ctx)
        .await
        .unwrap();
    work.commit().await.unwrap();
    app.authz.invalidate([carol_id.as_str()]);
    assert!(out.problems >= 3, "{out:?}");

    let seen = |body: &Value| -> Vec<(Option<String>, String)> {
        let mut v: Vec<(Option<String>, String)> = body["problems"]
            .as_array()
            .unwrap_or_else(|| panic!("no problems list: {body}"))
            .iter()
            .map(|p| {
                (
                    p["organization_id"].as_str().map(str::to_owned),
                    p["kind"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    // The owner sees every org's problems and the deployment-wide ones.
    let (status, all) = owner.get("/idpsync/problems").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let all = seen(&all);
    for expected in [
        (None, "unknown_organization".to_owned()),
        (Some(dp_id.clone()), "unknown_group".to_owned()),
        (Some(ops_id.clone()), "unknown_group".to_owned()),
    ] {
        assert!(all.contains(&expected), "{expected:?} not in {all:?}");
    }

    // An org admin sees its org's problems only: not the other org's, not the
    // deployment-wide ones.
    let (alice, _) = owner.create_user("alice").await;
    owner
        .add_member("data-platform", "alice", &["organization-admin"])
        .await;
    let (status, mine) = alice.get("/idpsync/problems").await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let mine = seen(&mine);
    assert!(
        mine.contains(&(Some(dp_id.clone()), "unknown_group".to_owned())),
        "{mine:?}"
    );
    assert!(
        mine.iter().all(|(org, _)| org.as_deref() == Some(&dp_id)),
        "{mine:?}"
    );
    let (status, filtered) = alice
        .get("/idpsync/problems?organization=data-platform")
        .await;
    assert_eq!(status, StatusCode::OK, "{filtered}");
    assert_eq!(seen(&filtered), mine);
    // Asking for the other org's problems by name gives nothing of them.
    let (status, other) = alice.get("/idpsync/problems?organization=ops").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{other}");
    assert!(!other.to_string().contains(&ops_id), "{other}");
    // And the other way round for an admin of ops.
    let (olga, _) = owner.create_user("olga").await;
    owner
        .add_member("ops", "olga", &["organization-admin"])
        .await;
    let theirs = seen(&olga.get_ok("/idpsync/problems").await);
    assert!(
        !theirs.is_empty()
            && theirs
                .iter()
                .all(|(org, _)| org.as_deref() == Some(&ops_id)),
        "{theirs:?}"
    );

    // A plain member of an org with problems: 403.
    let (bob, _) = owner.create_user("bob").await;
    owner.add_member("data-platform", "bob", &[]).await;
    let (status, body) = bob.get("/idpsync/problems").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(!body.to_string().contains("unknown_group"), "{body}");
}

/// Concurrent changes of the same sync settings take turns: none is lost, and
/// each audit entry's old value is the value it replaced (the changes form one
/// chain from the defaults to the final mapping). Both the deployment's and an
/// organization's settings.
#[tokio::test]
async fn concurrent_settings_changes_lose_no_update() {
    const WRITERS: usize = 12;
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("data-platform").await;
    for (path, target, audited) in [
        (
            "/settings/idpsync/organization/mapping".to_owned(),
            "data-platform",
            "organization_sync_settings",
        ),
        (
            "/organizations/data-platform/settings/idpsync/roles/mapping".to_owned(),
            "organization-admin",
            "role_sync_settings",
        ),
    ] {
        let mut tasks = Vec::new();
        for i in 0..WRITERS {
            let c = owner.clone();
            let path = path.clone();
            tasks.push(tokio::spawn(async move {
                c.patch(
                    &path,
                    json!({"add": [{"given": format!("g{i}"), "gets": target}]}),
                )
                .await
            }));
        }
        for t in tasks {
            let (status, body) = t.await.expect("writer task");
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let settings = owner.get_ok(path.trim_end_matches("/mapping")).await;
        let mapping = settings["mapping"].as_object().expect("a mapping");
        assert_eq!(
            mapping.len(),
            WRITERS,
            "every writer's pair is kept: {settings}"
        );
        for i in 0..WRITERS {
            assert_eq!(mapping[&format!("g{i}")], json!([target]), "{settings}");
        }
        // The audit trail is one chain: every entry's old mapping has one
        // pair fewer than its new one, and no two entries start from the same.
        let audit = owner
            .get_ok(&format!("/audit?q=resource_type:{audited}&limit=100"))
            .await;
        let entries = audit["audit_logs"].as_array().expect("audit entries");
        assert_eq!(entries.len(), WRITERS, "{audit}");
        let mut old_sizes: Vec<usize> = entries
            .iter()
            .map(|e| {
                let old = &e["diff"]["mapping"]["old"];
                let new = &e["diff"]["mapping"]["new"];
                let (o, n) = (
                    old.as_object().map_or(0, serde_json::Map::len),
                    new.as_object().map_or(0, serde_json::Map::len),
                );
                assert_eq!(
                    n,
                    o + 1,
                    "each change adds one pair to what it replaced: {e}"
                );
                o
            })
            .collect();
        old_sizes.sort_unstable();
        assert_eq!(old_sizes, (0..WRITERS).collect::<Vec<_>>(), "{audit}");
    }
}
