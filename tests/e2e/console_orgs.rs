//! The org admin pages of the console over HTTP (on SQLite and PostgreSQL):
//! groups, IdP sync (settings, the grant rule, an org-scoped preview), the
//! audit log, and adding members by username or email. Each page renders,
//! each form writes what it says, bad input writes nothing, and a caller
//! with less authority gets a 403 (or the org's 404) with nothing written.

use reqwest::header::LOCATION;
use reqwest::{Client as Http, StatusCode, redirect::Policy};
use serde_json::{Value, json};

use crate::harness::{Client, TestServer};

/// A signed-in browser: the session cookie, forms sent from this origin.
struct Browser {
    http: Http,
    base: String,
    cookie: String,
}

impl Browser {
    async fn login(s: &TestServer, username: &str) -> Browser {
        let http = Http::builder().redirect(Policy::none()).build().unwrap();
        let resp = http
            .post(format!("{}/login", s.base))
            .header("Origin", &s.base)
            .form(&[
                ("email", format!("{username}@example.com")),
                ("password", "password123".to_owned()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "login {username}");
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("orgsync_session="))
            .map(|v| v[..v.find(';').unwrap()].to_owned())
            .expect("a session cookie");
        Browser {
            http,
            base: s.base.clone(),
            cookie,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Accept", "text/html")
            .header("Cookie", format!("orgsync_session={}", self.cookie))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    /// Posts a form from `page` (its CSRF token) to `action`.
    async fn post(
        &self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String, Option<String>) {
        let (_, html) = self.get(page).await;
        let token = csrf_of(&html);
        let mut form: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
        form.extend_from_slice(fields);
        let resp = self
            .http
            .post(format!("{}{action}", self.base))
            .header("Origin", &self.base)
            .header("Cookie", format!("orgsync_session={}", self.cookie))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        (status, resp.text().await.unwrap(), location)
    }
}

fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn group_names(c: &Client, org: &str) -> Vec<String> {
    let groups = c.get_ok(&format!("/organizations/{org}/groups")).await;
    let list = groups
        .as_array()
        .cloned()
        .or_else(|| groups["groups"].as_array().cloned())
        .unwrap_or_default();
    list.iter()
        .map(|g| g["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn group(c: &Client, org: &str, name: &str) -> Value {
    let groups = c.get_ok(&format!("/organizations/{org}/groups")).await;
    let list = groups
        .as_array()
        .cloned()
        .or_else(|| groups["groups"].as_array().cloned())
        .unwrap_or_default();
    list.into_iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no group {name} in {org}"))
}

#[tokio::test]
async fn console_org_groups_and_members() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("acme").await;
    owner.create_org("beta").await;
    owner.create_user("alice").await;
    owner.create_user("bob").await;
    owner.create_user("carol").await;
    owner.create_user("dave").await;
    owner
        .add_member("acme", "alice", &["organization-admin"])
        .await;
    owner.add_member("acme", "bob", &[]).await;
    owner.add_member("beta", "carol", &[]).await;
    let alice = Browser::login(&s, "alice").await;
    let bob = Browser::login(&s, "bob").await;
    let carol = Browser::login(&s, "carol").await;

    // The list: Everyone, the sidebar links, the create form.
    let (status, html) = alice.get("/organizations/acme/groups").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(">Everyone<"), "{html}");
    assert!(html.contains("Create group"), "{html}");
    for link in [
        "/organizations/acme/groups\"",
        "/organizations/acme/idp-sync\"",
        "/organizations/acme/audit\"",
    ] {
        assert!(html.contains(&format!("href=\"{link}")), "{link}: {html}");
    }
    assert!(html.contains("href=\"/audit\""), "top bar audit link");

    // Bad input writes nothing: the form again, the error at its field.
    let (status, html, _) = alice
        .post(
            "/organizations/acme/groups",
            "/organizations/acme/groups",
            &[("name", "Not A Slug")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("id=\"name-err\""), "{html}");
    let (status, html, _) = alice
        .post(
            "/organizations/acme/groups",
            "/organizations/acme/groups",
            &[("name", "eng"), ("quota_allowance", "lots")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("id=\"quota_allowance-err\""), "{html}");
    assert_eq!(group_names(&owner, "acme").await, vec!["Everyone"]);

    // Create group: then its page.
    let (status, _, location) = alice
        .post(
            "/organizations/acme/groups",
            "/organizations/acme/groups",
            &[
                ("name", "eng"),
                ("display_name", "Engineering"),
                ("avatar_url", "https://example.com/eng.png"),
                ("quota_allowance", "5"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/organizations/acme/groups/eng"));
    let g = group(&owner, "acme", "eng").await;
    assert_eq!(
        (
            g["display_name"].as_str(),
            g["quota_allowance"].as_i64(),
            g["source"].as_str()
        ),
        (Some("Engineering"), Some(5), Some("user"))
    );
    let (status, html) = alice.get("/organizations/acme/groups/eng").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Manual") && html.contains("Nobody is in this group yet"),
        "{html}"
    );

    // Add to group by email; someone outside the org or unknown: an error at
    // the field, nothing written.
    let page = "/organizations/acme/groups/eng";
    let (status, _, _) = alice
        .post(
            page,
            "/organizations/acme/groups/eng/members",
            &[("user", "BOB@example.com")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    for who in ["carol", "nobody@example.com"] {
        let (status, html, _) = alice
            .post(
                page,
                "/organizations/acme/groups/eng/members",
                &[("user", who)],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{who}");
        assert!(html.contains("id=\"user-err\""), "{html}");
    }
    let g = group(&owner, "acme", "eng").await;
    let members: Vec<&str> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    assert_eq!(members, vec!["bob"]);
    let (_, html) = alice.get(page).await;
    assert!(html.contains("Remove bob from eng"), "{html}");

    // Rename; an invalid name writes nothing.
    let (status, html, _) = alice
        .post(
            page,
            page,
            &[
                ("name", "Bad Name"),
                ("display_name", "x"),
                ("quota_allowance", "1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("id=\"name-err\""), "{html}");
    let (status, _, location) = alice
        .post(
            page,
            page,
            &[
                ("name", "engineering"),
                ("display_name", "Engineering"),
                ("quota_allowance", "7"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location.as_deref(),
        Some("/organizations/acme/groups/engineering")
    );
    assert_eq!(
        group(&owner, "acme", "engineering").await["quota_allowance"],
        7
    );
    let page = "/organizations/acme/groups/engineering";

    // Bob, a member without group rights: reads, but no forms, and a forged
    // post is refused with nothing written.
    let (status, html) = bob.get("/organizations/acme/groups").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("Create group"), "{html}");
    assert!(
        !html.contains("idp-sync"),
        "no IdP sync link for bob: {html}"
    );
    let (_, html) = bob.get(page).await;
    assert!(
        !html.contains("Add to group") && !html.contains("Delete group"),
        "{html}"
    );
    let (status, _, _) = bob
        .post(
            "/organizations/acme/groups",
            "/organizations/acme/groups",
            &[("name", "bobs")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = bob
        .post(
            page,
            "/organizations/acme/groups/engineering/members",
            &[("user", "alice")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = bob
        .post(
            page,
            "/organizations/acme/groups/engineering/delete",
            &[("confirm", "engineering")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = bob
        .post(
            "/organizations/acme/members",
            "/organizations/acme/members/add",
            &[("user", "dave")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        group_names(&owner, "acme").await,
        vec!["Everyone", "engineering"]
    );
    assert_eq!(
        group(&owner, "acme", "engineering").await["members"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for p in ["/organizations/acme/idp-sync", "/organizations/acme/audit"] {
        let (status, _) = bob.get(p).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{p}");
    }

    // Carol is not in acme: every page of it is the unknown org's 404 page.
    let (_, unknown) = carol.get("/organizations/no-such-org/groups").await;
    for p in [
        "/organizations/acme/groups",
        "/organizations/acme/groups/engineering",
        "/organizations/acme/groups/Everyone",
        "/organizations/acme/idp-sync",
        "/organizations/acme/audit",
    ] {
        let (status, html) = carol.get(p).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
        assert_eq!(html, unknown, "{p}");
    }
    // ... and its forms change nothing.
    let (status, _, _) = carol
        .post(
            "/organizations/beta/groups",
            "/organizations/acme/groups",
            &[("name", "carols")],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        group_names(&owner, "acme").await,
        vec!["Everyone", "engineering"]
    );

    // Everyone is shown, never editable.
    let (status, html) = alice.get("/organizations/acme/groups/Everyone").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("cannot be renamed"), "{html}");
    assert!(
        !html.contains("Delete group")
            && !html.contains("Add to group")
            && !html.contains(">Save<"),
        "{html}"
    );
    let (status, html, _) = alice
        .post(
            page,
            "/organizations/acme/groups/Everyone/delete",
            &[("confirm", "Everyone")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Everyone group cannot be deleted"), "{html}");
    let (status, html, _) = alice
        .post(
            page,
            "/organizations/acme/groups/Everyone/members",
            &[("user", "bob")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("cannot be edited"), "{html}");
    assert_eq!(
        group_names(&owner, "acme").await,
        vec!["Everyone", "engineering"]
    );

    // Remove from the group, then delete after typing the name.
    let (status, _, _) = alice
        .post(
            page,
            "/organizations/acme/groups/engineering/members/bob/remove",
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        group(&owner, "acme", "engineering").await["members"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (status, html, _) = alice
        .post(
            page,
            "/organizations/acme/groups/engineering/delete",
            &[("confirm", "eng")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("id=\"confirm-err\""), "{html}");
    assert_eq!(group_names(&owner, "acme").await.len(), 2);
    let (status, _, location) = alice
        .post(
            page,
            "/organizations/acme/groups/engineering/delete",
            &[("confirm", "engineering")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/organizations/acme/groups"));
    assert_eq!(group_names(&owner, "acme").await, vec!["Everyone"]);

    // Add member by email; an unknown one is an error at the field.
    let members = "/organizations/acme/members";
    let (status, html, _) = alice
        .post(
            members,
            "/organizations/acme/members/add",
            &[("user", "nobody@example.com")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("id=\"user-err\"") && html.contains("no user with this username or email"),
        "{html}"
    );
    let (status, _, _) = alice
        .post(
            members,
            "/organizations/acme/members/add",
            &[("user", "Dave@Example.com")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let list = owner.get_ok("/organizations/acme/members").await;
    assert!(list.to_string().contains("\"dave\""), "{list}");
    s.stop().await;
}

#[tokio::test]
async fn console_org_idp_sync_settings_preview_and_the_grant_rule() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("acme").await;
    owner.create_org("beta").await;
    owner.create_user("alice").await;
    owner.create_user("uma").await;
    owner.create_user("bob").await;
    owner
        .add_member("acme", "alice", &["organization-admin"])
        .await;
    owner
        .add_member("acme", "uma", &["organization-user-admin"])
        .await;
    owner.add_member("acme", "bob", &[]).await;
    let (st, body) = owner
        .post("/organizations/acme/groups", json!({"name": "eng"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let alice = Browser::login(&s, "alice").await;
    let uma = Browser::login(&s, "uma").await;
    let page = "/organizations/acme/idp-sync";
    let groups_api = "/organizations/acme/settings/idpsync/groups";
    let roles_api = "/organizations/acme/settings/idpsync/roles";
    let before_groups = owner.get_ok(groups_api).await;

    let (status, html) = alice.get(page).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for text in [
        "Group sync",
        "Role sync",
        "Group mapping",
        "Role mapping",
        ">Preview<",
        "More rows",
        "name=\"group_mapping.1.given\"",
    ] {
        assert!(html.contains(text), "{text}: {html}");
    }

    // More rows: the form again with what was typed and more blank rows,
    // nothing saved.
    let (status, html, _) = alice
        .post(
            page,
            "/organizations/acme/idp-sync/groups",
            &[
                ("group_field", "groups"),
                ("group_mapping.0.given", "engineers"),
                ("group_mapping.0.gets", "eng"),
                ("more", "group_mapping"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("value=\"engineers\"") && html.contains("name=\"group_mapping.5.given\""),
        "{html}"
    );
    assert_eq!(owner.get_ok(groups_api).await, before_groups);

    // An invalid regex: the error at its field, nothing saved.
    let (status, html, _) = alice
        .post(
            page,
            "/organizations/acme/idp-sync/groups",
            &[
                ("group_field", "groups"),
                ("group_regex_filter", "(unclosed"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("id=\"group_regex_filter-err\""), "{html}");
    assert_eq!(owner.get_ok(groups_api).await, before_groups);

    // Save group sync: field, filter, mapping, auto-create.
    let (status, _, _) = alice
        .post(
            page,
            "/organizations/acme/idp-sync/groups",
            &[
                ("group_field", "groups"),
                ("group_regex_filter", "^[a-z-]+$"),
                ("group_auto_create_missing_groups", "on"),
                ("group_mapping.0.given", "engineers"),
                ("group_mapping.0.gets", "eng"),
                ("group_mapping.1.given", "dropped"),
                ("group_mapping.1.gets", "eng"),
                ("group_mapping.1.remove", "on"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let saved = owner.get_ok(groups_api).await;
    assert_eq!(saved["field"], "groups");
    assert_eq!(saved["regex_filter"], "^[a-z-]+$");
    assert_eq!(saved["auto_create_missing_groups"], true);
    assert_eq!(saved["mapping"], json!({"engineers": ["eng"]}));
    let (_, html) = alice.get(page).await;
    assert!(html.contains("value=\"engineers\""), "{html}");

    // The grant rule: uma (organization-user-admin) may assign only
    // organization-member, so a mapping to organization-admin, or any role
    // sync field (unmapped values pass through as role names), is refused,
    // the refusal shown at the field, nothing saved.
    let before_roles = owner.get_ok(roles_api).await;
    let (status, html, _) = uma
        .post(
            page,
            "/organizations/acme/idp-sync/roles",
            &[
                ("role_mapping.0.given", "admins"),
                ("role_mapping.0.gets", "organization-admin"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("id=\"role_mapping-0-err\""), "{html}");
    assert!(html.contains("you may not assign"), "{html}");
    let (status, html, _) = uma
        .post(
            page,
            "/organizations/acme/idp-sync/roles",
            &[("role_field", "roles")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("id=\"role_field-err\""), "{html}");
    assert_eq!(owner.get_ok(roles_api).await, before_roles);
    // The API answers the same 403, naming the field.
    let uma_api = login_api(&s, "uma").await;
    let (status, body) = uma_api
        .patch(
            roles_api,
            json!({"mapping": {"admins": ["organization-admin"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["validations"][0]["field"], "mapping[\"admins\"]",
        "{body}"
    );
    let (status, body) = uma_api.patch(roles_api, json!({"field": "roles"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["validations"][0]["field"], "field", "{body}");
    assert_eq!(owner.get_ok(roles_api).await, before_roles);
    // Uma may still save group sync (it grants no role).
    let (status, _, _) = uma
        .post(
            page,
            "/organizations/acme/idp-sync/groups",
            &[
                ("group_field", "groups"),
                ("group_regex_filter", "^[a-z-]+$"),
                ("group_auto_create_missing_groups", "on"),
                ("group_mapping.0.given", "engineers"),
                ("group_mapping.0.gets", "eng"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // Alice (organization-admin) may assign every org role: saved.
    let (status, _, _) = alice
        .post(
            page,
            "/organizations/acme/idp-sync/roles",
            &[
                ("role_field", "roles"),
                ("role_mapping.0.given", "admins"),
                ("role_mapping.0.gets", "organization-admin"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let roles = owner.get_ok(roles_api).await;
    assert_eq!(roles["mapping"], json!({"admins": ["organization-admin"]}));

    // Preview: this org's plan, nothing written (no group created).
    let claims = r#"{"groups": ["engineers", "new-team", "Bad Value"], "roles": ["admins"]}"#;
    let (status, html, _) = alice
        .post(
            page,
            "/organizations/acme/idp-sync/preview",
            &[("claims", claims)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for text in [
        "Groups in acme",
        "Roles in acme",
        "new-team",
        "new group",
        "organization-admin",
        "regex_filter",
    ] {
        assert!(html.contains(text), "{text}: {html}");
    }
    assert!(
        !html.contains("in beta")
            && !html.contains("Site roles")
            && !html.contains("Organizations</h4>"),
        "{html}"
    );
    assert_eq!(group_names(&owner, "acme").await, vec!["Everyone", "eng"]);
    // For a member, by email: starts from their state.
    let (status, html, _) = alice
        .post(
            page,
            "/organizations/acme/idp-sync/preview",
            &[("claims", claims), ("user", "bob@example.com")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    // Bad claims or a non-member: errors at their fields.
    let (status, html, _) = alice
        .post(
            page,
            "/organizations/acme/idp-sync/preview",
            &[("claims", "[1, 2")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("id=\"claims-err\""), "{html}");
    let (status, html, _) = alice
        .post(
            page,
            "/organizations/acme/idp-sync/preview",
            &[("claims", "{}"), ("user", "carol")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("id=\"user-err\""), "{html}");

    // An org admin previews only its org: another org is a 404 (page and
    // API), the deployment-wide preview a 403.
    let (status, _, _) = alice
        .post(
            page,
            "/organizations/beta/idp-sync/preview",
            &[("claims", "{}")],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let alice_api = login_api(&s, "alice").await;
    let (status, _) = alice_api
        .post(
            "/idpsync/preview",
            json!({"claims": {}, "organization": "beta"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = alice_api
        .post("/idpsync/preview", json!({"claims": {}}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, plan) = alice_api
        .post(
            "/idpsync/preview",
            json!({"claims": {"groups": ["engineers"]}, "organization": "acme"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["organization"], "acme");
    assert_eq!(plan["groups"]["acme"]["result"], json!(["Everyone", "eng"]));
    assert!(
        plan.get("site_roles").is_none() && plan.get("organizations").is_none(),
        "{plan}"
    );
    s.stop().await;
}

/// An API client signed in as `username` (password `password123`).
async fn login_api(s: &TestServer, username: &str) -> Client {
    let mut c = s.client();
    let (status, body) = c
        .post(
            "/users/login",
            json!({"email": format!("{username}@example.com"), "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    c.token = Some(body["session_token"].as_str().unwrap().to_owned());
    c
}

#[tokio::test]
async fn console_org_audit_pages() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("acme").await;
    owner.create_org("beta").await;
    owner.create_user("alice").await;
    owner.create_user("bob").await;
    owner
        .add_member("acme", "alice", &["organization-admin"])
        .await;
    owner.add_member("acme", "bob", &[]).await;
    for i in 0..52 {
        let (st, body) = owner
            .post(
                "/organizations/acme/groups",
                json!({"name": format!("team-{i:02}")}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
    }
    let (st, _) = owner
        .post("/organizations/beta/groups", json!({"name": "beta-secret"}))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let alice = Browser::login(&s, "alice").await;
    let bob = Browser::login(&s, "bob").await;
    let admin = Browser::login(&s, "admin").await;

    // The org's log, newest first, paginated by 50.
    let (status, html) = alice.get("/organizations/acme/audit").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("team-51") && html.contains("admin"), "{html}");
    assert!(!html.contains("beta-secret"), "{html}");
    let next = html
        .split("href=\"")
        .find_map(|p| {
            p.split_once("\" rel=\"next\"")
                .map(|(h, _)| h.replace("&amp;", "&"))
        })
        .expect("a next page link");
    let (status, older) = alice.get(&next).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        older.contains("rel=\"prev\"") && !older.contains("team-51"),
        "{older}"
    );

    // Filters: resource type and action, actor, time range.
    let (_, html) = alice
        .get("/organizations/acme/audit?resource_type=organization_member&action=create")
        .await;
    assert!(
        html.contains("alice") && !html.contains("team-51"),
        "{html}"
    );
    let (_, html) = alice.get("/organizations/acme/audit?user=bob").await;
    assert!(html.contains("No entries match these filters"), "{html}");
    let (_, html) = alice
        .get("/organizations/acme/audit?from=2999-01-01T00:00")
        .await;
    assert!(html.contains("No entries match these filters"), "{html}");
    let (status, html) = alice.get("/organizations/acme/audit?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("id=\"from-err\""), "{html}");

    // /audit: alice sees her org's entries only, the owner everything.
    let (status, html) = alice.get("/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("team-51") && !html.contains("beta-secret"),
        "{html}"
    );
    let (_, html) = alice.get("/audit?organization=beta").await;
    assert!(!html.contains("beta-secret"), "{html}");
    let (status, html) = admin.get("/audit?resource_type=group&action=create").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("beta-secret"), "{html}");

    // Bob reads no audit log: no link, a 403 page.
    let (_, html) = bob.get("/workspaces").await;
    assert!(!html.contains("href=\"/audit\""), "{html}");
    let (status, _) = bob.get("/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    s.stop().await;
}
