//! Custom organization roles through the API: validation, who may define and
//! assign them (the grant rule), enforcement in their organization only,
//! negation, updates and deletion taking effect at once (on a replica too),
//! and role sync naming them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Client, TestServer};

const ROLES: &str = "/organizations/alpha/members/roles";

fn role(name: &str, permissions: Value) -> Value {
    json!({"name": name, "display_name": name, "organization_permissions": permissions,
           "site_permissions": [], "user_permissions": []})
}

async fn create_group(c: &Client, org: &str, name: &str) -> StatusCode {
    c.post(
        &format!("/organizations/{org}/groups"),
        json!({"name": name}),
    )
    .await
    .0
}

async fn member_roles(owner: &Client, org: &str, user: &str) -> Vec<String> {
    let members = owner.get_ok(&format!("/organizations/{org}/members")).await;
    let m = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == user)
        .unwrap_or_else(|| panic!("{user} is a member of {org}: {members}"));
    serde_json::from_value(m["roles"].clone()).unwrap()
}

struct Scene {
    s: TestServer,
    owner: Client,
    ann: Client,
    adm: Client,
    ua: Client,
    mem: Client,
}

async fn scene() -> Scene {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("alpha").await;
    owner.create_org("beta").await;
    let (ann, _) = owner.create_user("ann").await;
    let (adm, _) = owner.create_user("adm").await;
    let (ua, _) = owner.create_user("ua").await;
    let (mem, _) = owner.create_user("mem").await;
    owner.add_member("alpha", "ann", &[]).await;
    owner.add_member("beta", "ann", &[]).await;
    owner
        .add_member("alpha", "adm", &["organization-admin"])
        .await;
    owner
        .add_member("alpha", "ua", &["organization-user-admin"])
        .await;
    owner.add_member("alpha", "mem", &[]).await;
    Scene {
        s,
        owner,
        ann,
        adm,
        ua,
        mem,
    }
}

#[tokio::test]
async fn bad_roles_are_refused_naming_what_is_wrong() {
    let Scene { s: _s, owner, .. } = scene().await;
    let beta = owner.get_ok("/organizations/beta").await;
    for (body, needle) in [
        (
            role("x", json!([{"resource_type": "bogus", "action": "read"}])),
            "bogus",
        ),
        (
            role("x", json!([{"resource_type": "template", "action": "fly"}])),
            "fly",
        ),
        // A site-wide action, and one that grants roles: not for a custom role.
        (
            role("x", json!([{"resource_type": "user", "action": "list"}])),
            "list",
        ),
        (
            role(
                "x",
                json!([{"resource_type": "org_role", "action": "assign"}]),
            ),
            "assign",
        ),
        (
            role("organization-admin", json!([])),
            "built-in or reserved",
        ),
        (role("owner", json!([])), "built-in or reserved"),
        (role("organization-new", json!([])), "built-in or reserved"),
        (role("Bad Name", json!([])), "lowercase"),
        (
            json!({"name": "x", "site_permissions": [{"resource_type": "template", "action": "read"}]}),
            "site_permissions",
        ),
        (
            json!({"name": "x", "user_permissions": [{"resource_type": "template", "action": "read"}]}),
            "user_permissions",
        ),
        (
            json!({"name": "x", "organization_id": beta["id"]}),
            "organization_id",
        ),
    ] {
        let (status, resp) = owner.post(ROLES, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert!(resp.to_string().contains(needle), "{body}: {resp}");
    }
    let alpha = owner.get_ok("/organizations/alpha").await;
    let (status, resp) = owner
        .post(
            ROLES,
            json!({"name": "ok", "organization_id": alpha["id"], "organization_permissions": [{"resource_type": "template", "action": "read"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    let (status, resp) = owner.post(ROLES, role("ok", json!([]))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{resp}");
}

#[tokio::test]
async fn a_custom_role_acts_in_its_org_only_and_follows_the_grant_rule() {
    let Scene {
        s,
        owner,
        ann,
        adm,
        ua,
        mem,
    } = scene().await;
    let maker = role(
        "group-maker",
        json!([{"resource_type": "group", "action": "create"}]),
    );
    // A member may not define roles.
    let (status, resp) = mem.post(ROLES, maker.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{resp}");
    // An organization-user-admin may define one, but not assign it: it could
    // not grant `group:create`'s role.
    let (status, resp) = ua.post(ROLES, maker.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    assert_eq!(
        resp["organization_permissions"],
        json!([{"resource_type": "group", "action": "create", "negate": false}])
    );
    let assign = json!({"roles": ["group-maker"]});
    let (status, resp) = ua
        .put("/organizations/alpha/members/ann/roles", assign.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{resp}");
    assert!(
        resp["message"].as_str().unwrap().contains("group-maker"),
        "{resp}"
    );
    // Nor in another org, where it is no role at all.
    let (status, resp) = owner
        .put("/organizations/beta/members/ann/roles", assign.clone())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");

    // The listing shows it, with what this caller may assign.
    let listed = ua.get_ok(ROLES).await;
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "group-maker")
        .unwrap()
        .clone();
    assert_eq!(entry["assignable"], false, "{entry}");
    assert_eq!(entry["built_in"], false, "{entry}");
    let admin_view = adm.get_ok(ROLES).await;
    assert!(
        admin_view
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "group-maker" && r["assignable"] == true),
        "{admin_view}"
    );
    assert!(
        admin_view
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "organization-admin" && r["built_in"] == true),
        "{admin_view}"
    );

    assert_eq!(
        create_group(&ann, "alpha", "before").await,
        StatusCode::FORBIDDEN
    );
    let (status, resp) = adm
        .put("/organizations/alpha/members/ann/roles", assign.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    // In its org, at once, on another replica as well.
    assert_eq!(
        create_group(&ann, "alpha", "made").await,
        StatusCode::CREATED
    );
    let replica = s.replica().await;
    let mut ann_b = replica.client();
    ann_b.token = ann.token.clone();
    assert_eq!(
        create_group(&ann_b, "alpha", "made-b").await,
        StatusCode::CREATED
    );
    // Never in another org, although ann is a member there.
    assert_eq!(
        create_group(&ann, "beta", "nope").await,
        StatusCode::FORBIDDEN
    );

    // The org user-admin may not change a role someone holds (that would grant).
    let (status, resp) = ua
        .put(
            ROLES,
            role("group-maker", json!([{"resource_type": "group", "action": "create"}, {"resource_type": "template", "action": "create"}])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{resp}");
    // The admin narrows it: ann loses group creation at once, on both replicas.
    let (status, resp) = adm
        .put(
            ROLES,
            role(
                "group-maker",
                json!([{"resource_type": "group", "action": "read"}]),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(
        create_group(&ann, "alpha", "after").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        create_group(&ann_b, "alpha", "after-b").await,
        StatusCode::FORBIDDEN
    );

    // Show names its holders.
    let shown = adm.get_ok(&format!("{ROLES}/group-maker")).await;
    assert_eq!(shown["members"], json!(["ann"]), "{shown}");

    // Deleting it takes it from every member in the same transaction.
    let (status, resp) = ua.delete(&format!("{ROLES}/group-maker")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "held: {resp}");
    let (status, resp) = adm.delete(&format!("{ROLES}/group-maker")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{resp}");
    assert!(member_roles(&owner, "alpha", "ann").await.is_empty());
    let (status, _) = adm.get(&format!("{ROLES}/group-maker")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let audit = owner
        .get_ok("/audit?q=resource_type:organization_role")
        .await;
    let text = audit.to_string();
    for action in ["create", "update", "delete"] {
        assert!(
            text.contains(&format!("\"action\":\"{action}\"")),
            "{audit}"
        );
    }
    assert!(
        text.contains("organization_permissions"),
        "diff of permissions: {audit}"
    );
    replica.stop().await;
}

#[tokio::test]
async fn negate_withdraws_from_an_org_admin_but_not_from_owners() {
    let Scene {
        s: _s, owner, adm, ..
    } = scene().await;
    let (status, resp) = owner
        .post(
            ROLES,
            role(
                "no-groups",
                json!([{"resource_type": "group", "action": "create", "negate": true}]),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    assert_eq!(
        create_group(&adm, "alpha", "one").await,
        StatusCode::CREATED
    );
    let (status, resp) = owner
        .put(
            "/organizations/alpha/members/adm/roles",
            json!({"roles": ["organization-admin", "no-groups"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let (status, resp) = adm
        .post("/organizations/alpha/groups", json!({"name": "two"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{resp}");
    assert!(
        resp.to_string().contains("custom-role.negate.group:create"),
        "{resp}"
    );
    // What else the admin holds stays.
    let (status, resp) = adm
        .patch("/organizations/alpha", json!({"display_name": "Alpha"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    // (Site owners are excepted: `policies/tests/custom-roles.json`.)
}

#[tokio::test]
async fn role_sync_may_name_a_custom_role() {
    let Scene {
        s: _s, owner, ua, ..
    } = scene().await;
    let (status, resp) = owner
        .post(
            ROLES,
            role(
                "deployer",
                json!([{"resource_type": "template", "action": "use"}]),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    let path = "/organizations/alpha/settings/idpsync/roles";
    // The org user-admin could not assign it, so it may not map it.
    let (status, resp) = ua
        .patch(
            path,
            json!({"field": "roles", "mapping": {"eng": ["deployer"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{resp}");
    let (status, resp) = owner
        .patch(
            path,
            json!({"field": "roles", "mapping": {"eng": ["deployer"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    // A role of another org is no role here.
    let (status, resp) = owner
        .patch(
            "/organizations/beta/settings/idpsync/roles",
            json!({"field": "roles", "mapping": {"eng": ["deployer"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    let plan = owner
        .post(
            "/idpsync/preview",
            json!({"claims": {"roles": ["eng"]}, "user": "ann"}),
        )
        .await;
    assert_eq!(plan.0, StatusCode::OK, "{}", plan.1);
    assert_eq!(
        plan.1["roles"]["alpha"]["result"],
        json!(["deployer"]),
        "{}",
        plan.1
    );
}
