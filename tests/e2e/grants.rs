//! The grant rule, end to end: whatever path makes someone hold a role (the
//! role routes, member add and remove, site-role, role and organization sync
//! settings, directory settings, account edits), a caller never causes more
//! than it could assign directly. Each reproduced attack has a regression test,
//! and one test per caller role walks every such path and then lets IdP sync
//! apply what the caller managed to write (a real OIDC login).
//!
//! What a caller may assign is written here from the product's table ("who may
//! assign what"), not asked of the server: the server's policies are what is
//! under test.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Client, TestServer};
use crate::oidc::{Browser, Provider, server};

const SITE_ROLES: &[&str] = &["owner", "auditor", "template-admin", "user-admin", "member"];
const ORG_ROLES: &[&str] = &[
    "organization-admin",
    "organization-auditor",
    "organization-user-admin",
    "organization-template-admin",
    "organization-workspace-creation-ban",
    "organization-member",
];

/// The claims of an account at the OpenID Provider.
fn account(username: &str, groups: &[&str], roles: &[&str]) -> Value {
    json!({
        "email": format!("{username}@example.com"),
        "email_verified": true,
        "preferred_username": username,
        "groups": groups,
        "roles": roles,
    })
}

/// A client authenticated with the session an OIDC login opened.
fn client_with(s: &TestServer, token: String) -> Client {
    let mut c = s.client();
    c.token = Some(token);
    c
}

/// Site roles (without `member`) and org roles by org id, read by the owner.
async fn roles_of(owner: &Client, username: &str) -> (Vec<String>, serde_json::Map<String, Value>) {
    let (status, r) = owner.get(&format!("/users/{username}/roles")).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let site = r["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .filter(|r| r != "member")
        .collect();
    (site, r["organization_roles"].as_object().unwrap().clone())
}

fn assert_refused_naming(status: StatusCode, body: &Value, role: &str) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap_or_default().contains(role),
        "the refusal names `{role}`: {body}"
    );
}

/// Attack 1: a site user-admin mapped its own email to `owner` in site-role
/// sync and became owner at its next login.
#[tokio::test]
async fn a_user_admin_cannot_become_owner_through_site_role_sync() {
    let op = Provider::start(json!({"sub-ua": account("ua", &[], &[])}), true);
    let s = server(&op.issuer, |_| {}).await;
    let owner = s.owner().await;
    let (_, token) = Browser::new(&s).login("sub-ua").await;
    owner.set_site_roles("ua", &["user-admin"]).await;
    let ua = client_with(&s, token);

    for (body, role) in [
        (
            json!({"field": "email", "mapping": {"ua@example.com": ["owner"]}}),
            "owner",
        ),
        (json!({"default_roles": ["owner"]}), "owner"),
        // Unmapped claim values pass through as role names: a field alone can
        // grant every role, `owner` included.
        (json!({"field": "email"}), "owner"),
        (json!({"mapping": {"x": ["auditor", "owner"]}}), "owner"),
    ] {
        let (status, resp) = ua.patch("/settings/idpsync/site-roles", body.clone()).await;
        assert_refused_naming(status, &resp, role);
        assert!(
            resp["detail"]
                .as_str()
                .unwrap()
                .contains("site_role:assign"),
            "{resp}"
        );
    }
    assert_eq!(
        owner.get_ok("/settings/idpsync/site-roles").await,
        json!({"field": null, "mapping": {}, "default_roles": []}),
        "nothing was written"
    );
    // The mapping-patch route is held to the same rule.
    let (status, resp) = ua
        .patch(
            "/settings/idpsync/site-roles",
            json!({"mapping": {"ua@example.com": ["auditor"]}}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "what it may assign, it may map: {resp}"
    );

    // Its next login changes nothing it could not do itself.
    Browser::new(&s).login("sub-ua").await;
    assert_eq!(
        roles_of(&owner, "ua").await.0,
        vec!["user-admin".to_owned()]
    );

    // Once the owner wrote settings that can grant `owner`, the user-admin may
    // not change them at all, not even another field.
    let (status, reply) = owner
        .patch(
            "/settings/idpsync/site-roles",
            json!({"mapping": {"root": ["owner"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, resp) = ua
        .patch("/settings/idpsync/site-roles", json!({"default_roles": []}))
        .await;
    assert_refused_naming(status, &resp, "owner");
}

/// Attack 3: an organization-user-admin mapped a claim to organization-admin
/// in its org's role sync and was granted it at the next login.
#[tokio::test]
async fn an_org_user_admin_cannot_grant_org_admin_through_role_sync() {
    let op = Provider::start(
        json!({"sub-oua": account("oua", &[], &["lead", "organization-admin"])}),
        true,
    );
    let s = server(&op.issuer, |_| {}).await;
    let owner = s.owner().await;
    owner.create_org("data-platform").await;
    let (_, token) = Browser::new(&s).login("sub-oua").await;
    owner
        .add_member("data-platform", "oua", &["organization-user-admin"])
        .await;
    let oua = client_with(&s, token);
    let path = "/organizations/data-platform/settings/idpsync/roles";

    let (status, resp) = oua
        .patch(
            &format!("{path}/mapping"),
            json!({"add": [{"given": "lead", "gets": "organization-admin"}]}),
        )
        .await;
    assert_refused_naming(status, &resp, "organization-admin");
    let (status, resp) = oua
        .patch(
            path,
            json!({"field": "roles", "mapping": {"lead": ["organization-admin"]}}),
        )
        .await;
    assert_refused_naming(status, &resp, "organization-admin");
    // A field alone would pass `organization-admin` through from the claim.
    let (status, resp) = oua.patch(path, json!({"field": "roles"})).await;
    assert_refused_naming(status, &resp, "organization-admin");
    // What it may assign, it may map (sync stays off: no field).
    let (status, resp) = oua
        .patch(
            &format!("{path}/mapping"),
            json!({"add": [{"given": "lead", "gets": "organization-member"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");

    Browser::new(&s).login("sub-oua").await;
    let (_, orgs) = roles_of(&owner, "oua").await;
    let org = owner.get_ok("/organizations/data-platform").await;
    assert_eq!(
        orgs[org["id"].as_str().unwrap()],
        json!(["organization-user-admin"]),
        "{orgs:?}"
    );

    // The org admin may write what the user-admin could not, and the login applies it.
    let (admin, _) = owner.create_user("dpadmin").await;
    owner
        .add_member("data-platform", "dpadmin", &["organization-admin"])
        .await;
    let (status, resp) = admin
        .patch(path, json!({"field": "roles", "mapping": {}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    Browser::new(&s).login("sub-oua").await;
    let (_, orgs) = roles_of(&owner, "oua").await;
    assert_eq!(
        orgs[org["id"].as_str().unwrap()],
        json!(["organization-admin"]),
        "{orgs:?}"
    );
}

/// Attack 4: an organization-user-admin removed organization-admins, and the
/// site owner, from its org.
#[tokio::test]
async fn removing_a_member_needs_authority_over_its_roles() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("data-platform").await;
    let (oua, _) = owner.create_user("oua").await;
    owner
        .add_member("data-platform", "oua", &["organization-user-admin"])
        .await;
    let (oadmin, _) = owner.create_user("oadmin").await;
    owner
        .add_member("data-platform", "oadmin", &["organization-admin"])
        .await;
    owner.create_user("plain").await;
    owner.add_member("data-platform", "plain", &[]).await;
    let (ua, _) = owner.create_user("ua").await;
    owner.set_site_roles("ua", &["user-admin"]).await;
    let (owner2, _) = owner.create_user("owner2").await;
    owner.set_site_roles("owner2", &["owner"]).await;
    let members = |c: Client| async move {
        let m = c.get_ok("/organizations/data-platform/members").await;
        let mut names: Vec<String> = m
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["username"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let before = members(owner.clone()).await;
    assert!(
        before.contains(&"admin".to_owned()),
        "the owner created the org: {before:?}"
    );

    // The org user-admin may assign only organization-member: it removes only
    // plain members.
    let (status, body) = oua
        .delete("/organizations/data-platform/members/oadmin")
        .await;
    assert_refused_naming(status, &body, "organization-admin");
    let (status, body) = oua
        .delete("/organizations/data-platform/members/admin")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("guardrail.owner-membership-protected"),
        "{body}"
    );
    // A site user-admin may not remove an owner or an org admin either.
    let (status, reply) = ua
        .delete("/organizations/data-platform/members/admin")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    let (status, body) = ua
        .delete("/organizations/data-platform/members/oadmin")
        .await;
    assert_refused_naming(status, &body, "organization-admin");
    // Nor change an owner's org roles.
    let (status, reply) = oadmin
        .put(
            "/organizations/data-platform/members/admin/roles",
            json!({"roles": ["organization-auditor"]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    assert_eq!(members(owner.clone()).await, before, "nobody was removed");

    let (status, reply) = oua
        .delete("/organizations/data-platform/members/plain")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    // The org admin may remove the user-admin (it may assign its role), and an
    // owner may remove another owner.
    let (status, reply) = oadmin
        .delete("/organizations/data-platform/members/oua")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    owner.add_member("data-platform", "owner2", &[]).await;
    let (status, reply) = owner2
        .delete("/organizations/data-platform/members/admin")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    let after = members(owner2.clone()).await;
    assert_eq!(after, vec!["oadmin".to_owned(), "owner2".to_owned()]);
}

/// Account edits that decide who signs in need authority over every role the
/// account holds; reactivation gives roles back and needs the same.
#[tokio::test]
async fn account_takeover_paths_need_authority_over_the_account() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("data-platform").await;
    let (ua, _) = owner.create_user("ua").await;
    owner.set_site_roles("ua", &["user-admin"]).await;
    owner.create_user("oadmin").await;
    owner
        .add_member("data-platform", "oadmin", &["organization-admin"])
        .await;
    owner.create_user("aud").await;
    owner.set_site_roles("aud", &["auditor"]).await;

    // An org admin's sign-in is worth organization-admin: the user-admin may
    // not assign that, so it may not change its email, username or login type.
    for body in [
        json!({"email": "attacker@evil.test"}),
        json!({"username": "oadmin2"}),
        json!({"login_type": "none"}),
        json!({"password": "a new password"}),
    ] {
        let (status, resp) = ua.patch("/users/oadmin", body).await;
        assert_refused_naming(status, &resp, "organization-admin");
    }
    let u = owner.get_ok("/users/oadmin").await;
    assert_eq!(u["email"], "oadmin@example.com");
    assert_eq!(u["login_type"], "password");
    // Its display name is not a sign-in: allowed.
    let (status, reply) = ua
        .patch("/users/oadmin", json!({"name": "Org Admin"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(owner.get_ok("/users/oadmin").await["name"], "Org Admin");
    // It may suspend it (that takes authority away) but not reactivate it.
    let (status, reply) = ua.put("/users/oadmin/status/suspend", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, resp) = ua.put("/users/oadmin/status/activate", json!({})).await;
    assert_refused_naming(status, &resp, "organization-admin");
    assert_eq!(owner.get_ok("/users/oadmin").await["status"], "suspended");
    let (status, reply) = owner.put("/users/oadmin/status/activate", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(owner.get_ok("/users/oadmin").await["status"], "active");

    // Users whose roles it may assign are its to edit.
    let (status, resp) = ua
        .patch(
            "/users/aud",
            json!({"email": "auditor@example.com", "login_type": "none"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["login_type"], "none");
    let (status, reply) = s
        .client()
        .post(
            "/users/login",
            json!({"email": "auditor@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "`none` has no password: {reply}"
    );
    let (status, resp) = ua
        .patch(
            "/users/aud",
            json!({"login_type": "password", "password": "brand new pass"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let audit = owner
        .get_ok("/audit?q=resource_type:user%20action:update")
        .await;
    let text = audit.to_string();
    assert!(!text.contains("brand new pass"), "no password in the audit");
    assert!(text.contains("(changed)"), "{text}");
    // Bad combinations are 400s.
    let (status, reply) = ua
        .patch(
            "/users/aud",
            json!({"login_type": "none", "password": "another password"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let (status, reply) = ua.patch("/users/aud", json!({"login_type": "oidc"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
}

/// The preview shows each org's sync settings at work: only for the orgs whose
/// settings the caller may read.
#[tokio::test]
async fn the_preview_does_not_reveal_settings_the_caller_may_not_read() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("data-platform").await;
    let (status, reply) = owner
        .patch(
            "/organizations/data-platform/settings/idpsync/roles",
            json!({"field": "roles", "mapping": {"lead": ["organization-admin"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, reply) = owner
        .patch(
            "/settings/idpsync/organization",
            json!({"field": "groups", "mapping": {"eng": ["data-platform"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let claims = json!({"claims": {"groups": ["eng"], "roles": ["lead"]}});
    let (status, full) = owner.post("/idpsync/preview", claims.clone()).await;
    assert_eq!(status, StatusCode::OK, "{full}");
    assert_eq!(
        full["roles"]["data-platform"]["result"],
        json!(["organization-admin"])
    );

    let (aud, _) = owner.create_user("aud").await;
    owner.set_site_roles("aud", &["auditor"]).await;
    let (status, seen) = aud.post("/idpsync/preview", claims).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(
        seen["organizations"]["result"], full["organizations"]["result"],
        "deployment sync settings are the auditor's to read"
    );
    assert!(
        seen["roles"].get("data-platform").is_none()
            && seen["groups"].get("data-platform").is_none(),
        "an org's sync settings are not the auditor's to read: {seen}"
    );
    assert!(!seen.to_string().contains("organization-admin"), "{seen}");
}

/// Directory sync settings choose where claims come from and which accounts a
/// directory entry links, renames and suspends. An attack: a user-admin pointed
/// the directory at its own slapd while sync was off; once admins turned role
/// sync on, its entries became owners. Writing them needs every grant.
#[tokio::test]
async fn directory_settings_need_authority_over_every_role() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("data-platform").await;
    let (ua, _) = owner.create_user("ua").await;
    owner.set_site_roles("ua", &["user-admin"]).await;
    let ldap = |claims: Value| {
        json!({
            "enabled": false,
            "url": "ldap://127.0.0.1:1",
            "bind_dn": "cn=sync,ou=services,dc=example,dc=test",
            "bind_password": "secret",
            "user_base_dn": "ou=people,dc=example,dc=test",
            "group_base_dn": "ou=groups,dc=example,dc=test",
            "claims": claims,
        })
    };
    // Even with every sync setting off and claims nothing reads yet.
    for claims in [
        json!({"groups": "groups"}),
        json!({"department": "departmentNumber"}),
    ] {
        let (status, body) = ua.put("/settings/ldapsync", ldap(claims)).await;
        assert_refused_naming(status, &body, "owner");
    }
    let (_, stored) = owner.get("/settings/ldapsync").await;
    assert_eq!(
        stored["bind_password_set"], false,
        "nothing was written: {stored}"
    );
    // The user-admin still reads them and may start runs of the owner's settings.
    let (status, body) = owner
        .put("/settings/ldapsync", ldap(json!({"groups": "groups"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, read) = ua.get("/settings/ldapsync").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["claims"], json!({"groups": "groups"}));
}

// ---- The escalation walk over the whole role set ----

/// Who calls: a site role, or an org role in org `a`.
#[derive(Debug, Clone, Copy)]
enum Caller {
    Site(&'static str),
    Org(&'static str),
}

/// A role someone would hold: a site role, or an org role in an org (by name).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Grant {
    Site(String),
    Org(String, String),
}

fn site(role: &str) -> Grant {
    Grant::Site(role.to_owned())
}

fn org(org: &str, role: &str) -> Grant {
    Grant::Org(org.to_owned(), role.to_owned())
}

/// The product's table: owner anything; user-admin every site role but
/// `owner`, and plain membership anywhere; organization-admin any role of its
/// org; organization-user-admin plain membership of its org; nobody else
/// anything.
fn may_assign(caller: Caller, grant: &Grant) -> bool {
    match (caller, grant) {
        (Caller::Site("owner"), _) => true,
        (Caller::Site("user-admin"), Grant::Site(r)) => r != "owner",
        (Caller::Site("user-admin"), Grant::Org(_, r)) => r == "organization-member",
        (Caller::Org("organization-admin"), Grant::Org(o, _)) => o == "a",
        (Caller::Org("organization-user-admin"), Grant::Org(o, r)) => {
            o == "a" && r == "organization-member"
        }
        _ => false,
    }
}

/// Who may use a route at all, from the same table.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// Users: update, suspend, set site roles.
    Users,
    /// Members of org `a` (add, remove, set roles) and its IdP sync settings.
    OrgA,
    /// Members of org `b`.
    OrgB,
    /// Deployment-wide sync settings (organization, site roles, directory).
    Deployment,
}

fn may_use(caller: Caller, route: Route) -> bool {
    matches!(
        (caller, route),
        (Caller::Site("owner" | "user-admin"), _)
            | (
                Caller::Org("organization-admin" | "organization-user-admin"),
                Route::OrgA
            )
    )
}

struct Walk<'a> {
    caller: Caller,
    c: &'a Client,
    log: Vec<String>,
}

impl Walk<'_> {
    /// Sends one write and checks it is accepted exactly when the caller may use
    /// the route and assign everything the write could grant.
    async fn attempt(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        route: Route,
        grants: &[Grant],
    ) -> bool {
        let allowed =
            may_use(self.caller, route) && grants.iter().all(|g| may_assign(self.caller, g));
        let (status, resp) = self.c.send(method.clone(), path, body.clone()).await;
        let what = format!(
            "{:?}: {method} {path} {body:?} -> {status} {resp}",
            self.caller
        );
        if allowed {
            assert!(status.is_success(), "should be accepted: {what}");
        } else {
            assert!(
                status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
                "should be refused (403/404): {what}"
            );
        }
        self.log.push(what);
        allowed
    }
}

/// Walks every path that grants roles or memberships, as `caller`, against a
/// target user who signs in with OIDC; then the target logs in (IdP sync
/// applies whatever the caller managed to write) and holds nothing the caller
/// could not have assigned directly.
async fn escalation_walk(caller: Caller) {
    use reqwest::Method;
    let every_role: Vec<&str> = SITE_ROLES.iter().chain(ORG_ROLES).copied().collect();
    let op = Provider::start(
        json!({"sub-target": account("target", &["x"], &every_role)}),
        true,
    );
    let s = server(&op.issuer, |_| {}).await;
    let owner = s.owner().await;
    owner.create_org("a").await;
    owner.create_org("b").await;
    Browser::new(&s).login("sub-target").await;
    owner.add_member("a", "target", &[]).await;
    let (c, _) = owner.create_user("caller").await;
    match caller {
        Caller::Site("member") => {}
        Caller::Site(r) => owner.set_site_roles("caller", &[r]).await,
        Caller::Org(r) => owner.add_member("a", "caller", &[r]).await,
    }
    let mut w = Walk {
        caller,
        c: &c,
        log: Vec::new(),
    };

    // Role routes.
    for r in SITE_ROLES {
        w.attempt(
            Method::PUT,
            "/users/target/roles",
            Some(json!({"roles": [r]})),
            Route::Users,
            &[site(r)],
        )
        .await;
    }
    // The last one (`member`) removed what an earlier one granted: start clean.
    owner.set_site_roles("target", &[]).await;
    let removed = w
        .attempt(
            Method::DELETE,
            "/organizations/a/members/target",
            None,
            Route::OrgA,
            &[org("a", "organization-member")],
        )
        .await;
    if removed {
        w.attempt(
            Method::POST,
            "/organizations/a/members/target",
            Some(json!({})),
            Route::OrgA,
            &[org("a", "organization-member")],
        )
        .await;
    }
    w.attempt(
        Method::POST,
        "/organizations/b/members/target",
        Some(json!({})),
        Route::OrgB,
        &[org("b", "organization-member")],
    )
    .await;
    // A new user placed in an org at creation is a member there.
    w.attempt(
        Method::POST,
        "/users",
        Some(
            json!({"username": "newcomer", "email": "newcomer@example.com",
                    "login_type": "none", "organization_ids": ["b"]}),
        ),
        Route::Users,
        &[org("b", "organization-member")],
    )
    .await;
    let mut held: Option<&str> = None;
    for r in ORG_ROLES {
        let mut grants = vec![org("a", r)];
        if let Some(prev) = held {
            grants.push(org("a", prev));
        }
        if w.attempt(
            Method::PUT,
            "/organizations/a/members/target/roles",
            Some(json!({"roles": [r]})),
            Route::OrgA,
            &grants,
        )
        .await
        {
            held = (*r != "organization-member").then_some(*r);
        }
    }
    let (status, body) = owner
        .put(
            "/organizations/a/members/target/roles",
            json!({"roles": []}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["roles"], json!([]), "{body}");

    // Account edits decide who signs in as the target.
    let (site_now, orgs_now) = roles_of(&owner, "target").await;
    let mut holds: Vec<Grant> = site_now.iter().map(|r| site(r)).collect();
    let all_orgs = owner.get_ok("/organizations").await;
    for o in all_orgs.as_array().unwrap() {
        if let Some(roles) = orgs_now.get(o["id"].as_str().unwrap()) {
            let name = o["name"].as_str().unwrap();
            holds.push(org(name, "organization-member"));
            for r in roles.as_array().unwrap() {
                holds.push(org(name, r.as_str().unwrap()));
            }
        }
    }
    w.attempt(
        Method::PATCH,
        "/users/target",
        Some(json!({"username": "target2"})),
        Route::Users,
        &holds,
    )
    .await;
    let (status, body) = owner.get("/users/target").await;
    let target = match status {
        StatusCode::OK => "target",
        StatusCode::NOT_FOUND => {
            assert_eq!(owner.get_ok("/users/target2").await["username"], "target2");
            "target2"
        }
        other => panic!("GET /users/target: {other} {body}"),
    };
    if w.attempt(
        Method::PUT,
        &format!("/users/{target}/status/suspend"),
        Some(json!({})),
        Route::Users,
        &[],
    )
    .await
    {
        w.attempt(
            Method::PUT,
            &format!("/users/{target}/status/activate"),
            Some(json!({})),
            Route::Users,
            &holds,
        )
        .await;
        let (status, body) = owner
            .put(&format!("/users/{target}/status/activate"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            owner.get_ok(&format!("/users/{target}")).await["status"],
            "active"
        );
    }

    // Settings: every role they name, and with a claim field every role of
    // their scope (unmapped claim values pass through as role names).
    let all_site: Vec<Grant> = SITE_ROLES.iter().map(|r| site(r)).collect();
    let all_a: Vec<Grant> = ORG_ROLES.iter().map(|r| org("a", r)).collect();
    for r in SITE_ROLES {
        w.attempt(
            Method::PATCH,
            "/settings/idpsync/site-roles",
            Some(json!({"mapping": {"x": [r]}})),
            Route::Deployment,
            &[site(r)],
        )
        .await;
        w.attempt(
            Method::PATCH,
            "/settings/idpsync/site-roles",
            Some(json!({"mapping": {}, "default_roles": [r]})),
            Route::Deployment,
            &[site(r)],
        )
        .await;
    }
    w.attempt(
        Method::PATCH,
        "/settings/idpsync/site-roles",
        Some(json!({"field": "roles", "mapping": {}, "default_roles": []})),
        Route::Deployment,
        &all_site,
    )
    .await;
    for r in ORG_ROLES {
        w.attempt(
            Method::PATCH,
            "/organizations/a/settings/idpsync/roles/mapping",
            Some(json!({"add": [{"given": "x", "gets": r}]})),
            Route::OrgA,
            &[org("a", r)],
        )
        .await;
        w.attempt(
            Method::PATCH,
            "/organizations/a/settings/idpsync/roles/mapping",
            Some(json!({"remove": [{"given": "x", "gets": r}]})),
            Route::OrgA,
            &[],
        )
        .await;
    }
    w.attempt(
        Method::PATCH,
        "/organizations/a/settings/idpsync/roles",
        Some(json!({"field": "roles", "mapping": {}})),
        Route::OrgA,
        &all_a,
    )
    .await;
    w.attempt(
        Method::PATCH,
        "/settings/idpsync/organization",
        Some(json!({"field": "groups", "mapping": {"x": ["a", "b"]}})),
        Route::Deployment,
        &[
            org("coder", "organization-member"),
            org("a", "organization-member"),
            org("b", "organization-member"),
        ],
    )
    .await;
    // A directory can feed every sync setting and rename every account
    // without a password: it needs every grant.
    let mut fed: Vec<Grant> = all_site.clone();
    for o in ["coder", "a", "b"] {
        fed.extend(ORG_ROLES.iter().map(|r| org(o, r)));
    }
    w.attempt(
        Method::PUT,
        "/settings/ldapsync",
        Some(json!({
            "enabled": false,
            "url": "ldap://127.0.0.1:1",
            "bind_dn": "cn=sync,dc=example,dc=test",
            "bind_password": "secret",
            "user_base_dn": "ou=people,dc=example,dc=test",
            "group_base_dn": "ou=groups,dc=example,dc=test",
            "claims": {"groups": "groups", "roles": "description"},
        })),
        Route::Deployment,
        &fed,
    )
    .await;

    // The sync applies what was written.
    Browser::new(&s).login("sub-target").await;
    let (site_after, orgs_after) = roles_of(&owner, target).await;
    for r in &site_after {
        assert!(
            may_assign(caller, &site(r)),
            "{caller:?} made the target hold the site role {r}:\n{}",
            w.log.join("\n")
        );
    }
    for o in all_orgs.as_array().unwrap() {
        let (id, name) = (o["id"].as_str().unwrap(), o["name"].as_str().unwrap());
        let Some(roles) = orgs_after.get(id) else {
            continue;
        };
        let had = name == "coder" || name == "a";
        assert!(
            had || may_assign(caller, &org(name, "organization-member")),
            "{caller:?} made the target a member of {name}:\n{}",
            w.log.join("\n")
        );
        for r in roles.as_array().unwrap() {
            let r = r.as_str().unwrap();
            assert!(
                may_assign(caller, &org(name, r)),
                "{caller:?} made the target hold {r} in {name}:\n{}",
                w.log.join("\n")
            );
        }
    }
    // Positive controls: the paths are live, so the walk can fail.
    let a_id = all_orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "a")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    match caller {
        Caller::Site("owner") => {
            assert!(site_after.contains(&"owner".to_owned()), "{site_after:?}")
        }
        Caller::Org("organization-admin") => assert!(
            orgs_after[&a_id]
                .as_array()
                .unwrap()
                .contains(&json!("organization-admin")),
            "{orgs_after:?}"
        ),
        Caller::Site("user-admin") => {
            let b = all_orgs
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["name"] == "b")
                .unwrap();
            assert!(
                orgs_after.contains_key(b["id"].as_str().unwrap()),
                "{orgs_after:?}"
            );
        }
        _ => {}
    }
}

macro_rules! walks {
    ($($name:ident => $caller:expr,)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                escalation_walk($caller).await;
            }
        )*
    };
}

walks! {
    walk_site_owner => Caller::Site("owner"),
    walk_site_user_admin => Caller::Site("user-admin"),
    walk_site_template_admin => Caller::Site("template-admin"),
    walk_site_auditor => Caller::Site("auditor"),
    walk_site_member => Caller::Site("member"),
    walk_org_admin => Caller::Org("organization-admin"),
    walk_org_user_admin => Caller::Org("organization-user-admin"),
    walk_org_template_admin => Caller::Org("organization-template-admin"),
    walk_org_auditor => Caller::Org("organization-auditor"),
    walk_org_member => Caller::Org("organization-member"),
    walk_org_workspace_creation_ban => Caller::Org("organization-workspace-creation-ban"),
}
