//! `POST /authcheck`, `POST /authorize`, `GET /policies`.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::TestServer;

#[tokio::test]
async fn authcheck_answers_for_the_caller() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let eng = owner.create_org("eng").await;
    let ops = owner.create_org("ops").await;
    let (alice, alice_id) = owner.create_user("alice").await;
    owner
        .add_member("eng", "alice", &["organization-admin"])
        .await;
    let (bob, _) = owner.create_user("bob").await;
    owner
        .add_member("eng", "bob", &["organization-workspace-creation-ban"])
        .await;

    let checks = json!({"checks": {
        "read_eng": {"object": {"resource_type": "organization", "organization_id": eng}, "action": "read"},
        "update_eng": {"object": {"resource_type": "organization", "organization_id": eng}, "action": "update"},
        "read_ops": {"object": {"resource_type": "organization", "organization_id": ops}, "action": "read"},
        "create_group_eng": {"object": {"resource_type": "group", "organization_id": eng}, "action": "group:create"},
        "create_group_ops": {"object": {"resource_type": "group", "organization_id": ops}, "action": "create"},
        "own_workspace_eng": {"object": {"resource_type": "workspace", "organization_id": eng, "owner_id": "me"}, "action": "create"},
        "audit_eng": {"object": {"resource_type": "audit_log", "organization_id": eng}, "action": "read"},
        "create_org": {"object": {"resource_type": "site"}, "action": "organization:create"},
        "read_self": {"object": {"resource_type": "user", "resource_id": alice_id}, "action": "read"},
        "unknown_org": {"object": {"resource_type": "organization", "organization_id": "00000000-0000-0000-0000-000000000001"}, "action": "read"},
        "assign_org_admin_eng": {"object": {"resource_type": "assign_org_role", "organization_id": eng, "resource_id": "organization-admin"}, "action": "assign"},
        "assign_org_admin_ops": {"object": {"resource_type": "assign_org_role", "organization_id": ops, "resource_id": "organization-admin"}, "action": "assign"},
        "assign_owner": {"object": {"resource_type": "assign_role", "resource_id": "owner"}, "action": "assign"}
    }});
    let (status, a) = alice.post("/authcheck", checks.clone()).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(
        a,
        json!({"read_eng": true, "update_eng": true, "read_ops": false, "create_group_eng": true,
               "create_group_ops": false, "own_workspace_eng": true, "audit_eng": true,
               "create_org": false, "read_self": true, "unknown_org": false,
               "assign_org_admin_eng": true, "assign_org_admin_ops": false, "assign_owner": false})
    );
    let (status, b) = bob.post("/authcheck", checks.clone()).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["read_eng"], true);
    assert_eq!(b["update_eng"], false);
    assert_eq!(b["own_workspace_eng"], false, "creation ban");
    assert_eq!(b["audit_eng"], false);
    assert_eq!(b["assign_org_admin_eng"], false);
    let (status, o) = owner.post("/authcheck", checks).await;
    assert_eq!(status, StatusCode::OK, "{o}");
    assert_eq!(o["read_ops"], true);
    assert_eq!(o["create_org"], true);
    assert_eq!(o["assign_owner"], true);
    assert_eq!(o["assign_org_admin_ops"], true);

    // Bad input: unknown type or action, too many checks.
    let (status, body) = alice
        .post(
            "/authcheck",
            json!({"checks": {"x": {"object": {"resource_type": "spaceship"}, "action": "read"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["validations"][0]["field"],
        "checks.x.object.resource_type"
    );
    let (status, reply) = alice
        .post(
            "/authcheck",
            json!({"checks": {"x": {"object": {"resource_type": "group"}, "action": "fly"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let many: serde_json::Map<String, serde_json::Value> = (0..101)
        .map(|i| {
            (
                format!("c{i}"),
                json!({"object": {"resource_type": "site"}, "action": "organization:create"}),
            )
        })
        .collect();
    let (status, reply) = alice.post("/authcheck", json!({"checks": many})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
}

#[tokio::test]
async fn authorize_is_cedar_native_with_reasons() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let eng = owner.create_org("eng").await;
    let (alice, alice_id) = owner.create_user("alice").await;
    owner
        .add_member("eng", "alice", &["organization-admin"])
        .await;
    let req = json!({"requests": [
        {"principal": {"type": "User", "id": alice_id}, "action": {"type": "Action", "id": "organization:update"},
         "resource": {"type": "Organization", "id": eng}},
        {"principal": {"type": "User", "id": alice_id}, "action": {"type": "Action", "id": "organization:delete"},
         "resource": {"type": "Organization", "id": eng}},
        {"principal": {"type": "User", "id": alice_id}, "action": "member:update_roles",
         "resource": {"type": "Member", "id": format!("{eng}/{alice_id}")}},
        {"principal": {"type": "User", "id": "no-such-user"}, "action": "organization:read",
         "resource": {"type": "Organization", "id": eng}},
        {"principal": {"type": "User", "id": alice_id}, "action": "org_role:assign",
         "resource": {"type": "OrganizationRole", "id": format!("{eng}/organization-auditor")}},
        {"principal": {"type": "User", "id": alice_id}, "action": "site_role:assign",
         "resource": {"type": "Role", "id": "auditor"}}
    ]});
    let (status, body) = owner.post("/authorize", req.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = &body["results"];
    assert_eq!(
        r[0],
        json!({"decision": "allow", "reasons": ["org.admin"], "errors": []})
    );
    assert_eq!(r[1]["decision"], "deny");
    assert_eq!(r[2]["decision"], "deny");
    assert_eq!(
        r[2]["reasons"],
        json!(["guardrail.no-self-membership-change"])
    );
    assert_eq!(r[3]["decision"], "deny");
    assert!(r[3]["errors"][0].as_str().unwrap().contains("not found"));
    assert_eq!(
        r[4],
        json!({"decision": "allow", "reasons": ["org.admin"], "errors": []})
    );
    assert_eq!(
        r[5],
        json!({"decision": "deny", "reasons": [], "errors": []})
    );
    // Only owners use the batch endpoint.
    let (status, reply) = alice.post("/authorize", req).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
}

#[tokio::test]
async fn policies_listing() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let body = owner.get_ok("/policies").await;
    assert_eq!(body["hash"].as_str().unwrap().len(), 64);
    let p = body["policies"].as_array().unwrap();
    assert!(p.iter().any(|p| p["id"] == "org.admin"
        && p["file"] == "org-roles.cedar"
        && p["effect"] == "permit"));
    assert!(
        p.iter()
            .any(|p| p["id"] == "guardrail.cross-org" && p["effect"] == "forbid")
    );
    let (alice, _) = owner.create_user("alice").await;
    let (status, reply) = alice.get("/policies").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
}
