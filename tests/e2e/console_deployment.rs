//! The deployment admin pages of the console (`/deployment/...`) over plain
//! HTTP: who may see each page (the same answer as the API's for the same
//! caller), the forms writing through the use cases with their audit
//! entries, bad input writing nothing and showing field errors, the grant
//! rule through the site-role checkboxes, the LDAP bind password never
//! rendered, a dry run started from the page against a real slapd, and the
//! policy set shown escaped.

use std::time::Duration;

use reqwest::header::LOCATION;
use reqwest::{Client as Http, StatusCode, redirect::Policy};
use serde_json::{Value, json};

use crate::harness::{Client, TestServer};
use crate::slapd::Slapd;
use crate::testkit::wait_for;

/// A signed-in browser: the session cookie of a client of the API.
struct Browser {
    http: Http,
    base: String,
    cookie: String,
}

impl Browser {
    fn of(s: &TestServer, api: &Client) -> Browser {
        Browser {
            http: Http::builder().redirect(Policy::none()).build().unwrap(),
            base: s.base.clone(),
            cookie: format!("orgsync_session={}", api.token.clone().unwrap()),
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Accept", "text/html")
            .header("Cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    /// The redirect target of `path`.
    async fn location(&self, path: &str) -> String {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Accept", "text/html")
            .header("Cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        resp.headers()[LOCATION].to_str().unwrap().to_owned()
    }

    /// Posts `fields` (plus the session's CSRF token, read from `page`) to
    /// `path`, same-origin; the status, the `Location` and the body.
    async fn post(
        &self,
        page: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String, String) {
        let (_, html) = self.get(page).await;
        let token = csrf_of(&html);
        let mut form: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
        form.extend_from_slice(fields);
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Accept", "text/html")
            .header("Cookie", &self.cookie)
            .header("Origin", &self.base)
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, location, resp.text().await.unwrap())
    }
}

/// The CSRF token of the first form of a page (the sign-out form has one on
/// every page of a session).
fn csrf_of(html: &str) -> String {
    let key = "name=\"csrf\" value=\"";
    let at = html.find(key).expect("a form with a CSRF token");
    let rest = &html[at + key.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn audit_count(owner: &Client) -> usize {
    let body = owner.get_ok("/audit?limit=1000").await;
    body["audit_logs"].as_array().unwrap().len()
}

async fn newest_audit(owner: &Client) -> Value {
    owner.get_ok("/audit?limit=1").await["audit_logs"][0].clone()
}

/// Makes `user` (a member of the default org, as every user) its admin.
async fn make_org_admin(owner: &Client, user: &str) {
    let (status, body) = owner
        .put(
            &format!("/organizations/coder/members/{user}/roles"),
            json!({"roles": ["organization-admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

const PAGES: &[(&str, &str)] = &[
    ("/deployment/users", "/users"),
    ("/deployment/idp-sync", "/settings/idpsync/organization"),
    ("/deployment/ldap-sync", "/settings/ldapsync"),
    ("/deployment/policies", "/policies"),
];

#[tokio::test]
async fn console_deployment_pages_answer_as_the_api_decides() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let (alice, _) = owner.create_user("alice").await;
    let (bob, _) = owner.create_user("bob").await;
    make_org_admin(&owner, "bob").await;
    let (carol, _) = owner.create_user("carol").await;
    owner.set_site_roles("carol", &["user-admin"]).await;
    let (dave, _) = owner.create_user("dave").await;
    owner.set_site_roles("dave", &["auditor"]).await;

    // The owner: every page, and /deployment leads to the first.
    let b = Browser::of(&s, &owner);
    for (page, _) in PAGES {
        let (status, html) = b.get(page).await;
        assert_eq!(status, StatusCode::OK, "{page}: {html}");
        for (other, _) in PAGES {
            assert!(
                html.contains(&format!("href=\"{other}\"")),
                "{page} links {other}"
            );
        }
    }
    assert_eq!(b.location("/deployment").await, "/deployment/users");

    // Everyone else: each page answers what the API answers the same caller.
    for (who, api) in [
        ("alice", &alice),
        ("bob", &bob),
        ("carol", &carol),
        ("dave", &dave),
    ] {
        let b = Browser::of(&s, api);
        for (page, route) in PAGES {
            let (api_status, _) = api.get(route).await;
            let (status, html) = b.get(page).await;
            assert_eq!(status, api_status, "{who} {page}: {html}");
        }
    }
    // A plain member and an org admin: nothing of the deployment.
    for api in [&alice, &bob] {
        let b = Browser::of(&s, api);
        let (status, _) = b.get("/deployment").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, html) = b.get("/deployment/ldap-sync/runs/nope").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    }
    // The user-admin's sidebar: users and sync, not the policies.
    let b = Browser::of(&s, &carol);
    let (_, html) = b.get("/deployment/users").await;
    assert!(html.contains("href=\"/deployment/idp-sync\""));
    assert!(!html.contains("href=\"/deployment/policies\""), "{html}");
    // The auditor reads the sync settings but has no Save, Run now or Dry run.
    let b = Browser::of(&s, &dave);
    let (status, html) = b.get("/deployment/ldap-sync").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains(">Run now</button>"), "{html}");
    assert!(!html.contains(">Dry run</button>"), "{html}");
    assert!(!html.contains(">Save</button>"), "{html}");
    assert_eq!(b.location("/deployment").await, "/deployment/users");
}

#[tokio::test]
async fn console_deployment_users_forms_write_audit_and_keep_the_grant_rule() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let (carol, _) = owner.create_user("carol").await;
    owner.set_site_roles("carol", &["user-admin"]).await;
    let b = Browser::of(&s, &owner);
    let users = "/deployment/users";

    // Create user: written, audited, shown.
    let before = audit_count(&owner).await;
    let (status, location, _) = b
        .post(
            users,
            users,
            &[
                ("username", "erin"),
                ("email", "erin@example.com"),
                ("password", "erin-password-1"),
                ("login_type", "password"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/deployment/users?page=1&q=erin");
    let erin = owner.get_ok("/users/erin").await;
    assert_eq!(erin["login_type"], "password");
    assert!(audit_count(&owner).await > before);
    let entry = newest_audit(&owner).await;
    assert_eq!(
        (entry["resource_type"].as_str(), entry["action"].as_str()),
        (Some("user"), Some("create")),
        "{entry}"
    );
    let (status, html) = b.get(&location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("erin@example.com"), "{html}");
    assert!(
        !html.contains("carol@example.com"),
        "search shows matches only"
    );

    // Bad input: field errors, nothing written, the password not echoed.
    let count = owner.get_ok("/users").await["count"].clone();
    let before = audit_count(&owner).await;
    let (status, _, html) = b
        .post(
            users,
            users,
            &[
                ("username", "Not A Name!"),
                ("email", "not-an-email"),
                ("password", "typed-secret-991"),
                ("login_type", "password"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("class=\"field invalid\""), "{html}");
    assert!(html.contains("value=\"Not A Name!\""), "typed fields stay");
    assert!(
        !html.contains("typed-secret-991"),
        "the password is not echoed"
    );
    assert_eq!(owner.get_ok("/users").await["count"], count);
    assert_eq!(audit_count(&owner).await, before);

    // Suspend and activate.
    let (status, _, _) = b
        .post(
            users,
            "/deployment/users/erin/status",
            &[("status", "suspended")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(owner.get_ok("/users/erin").await["status"], "suspended");
    let (_, html) = b.get(users).await;
    assert!(html.contains("Activate erin"), "{html}");
    b.post(
        users,
        "/deployment/users/erin/status",
        &[("status", "active")],
    )
    .await;
    assert_eq!(owner.get_ok("/users/erin").await["status"], "active");

    // Site roles as checkboxes; the owner may give every role.
    let (_, html) = b.get(users).await;
    assert!(html.contains("name=\"roles\" value=\"owner\""), "{html}");
    let (status, _, _) = b
        .post(
            users,
            "/deployment/users/erin/roles",
            &[("roles", "auditor")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        owner.get_ok("/users/erin").await["roles"],
        json!(["member", "auditor"])
    );

    // The user-admin: no `owner` checkbox, and posting it anyway is refused
    // with nothing written.
    let c = Browser::of(&s, &carol);
    let (status, html) = c.get(users).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("name=\"roles\" value=\"auditor\""), "{html}");
    assert!(!html.contains("name=\"roles\" value=\"owner\""), "{html}");
    let before = audit_count(&owner).await;
    let (status, _, html) = c
        .post(users, "/deployment/users/erin/roles", &[("roles", "owner")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert_eq!(
        owner.get_ok("/users/erin").await["roles"],
        json!(["member", "auditor"])
    );
    // Nor can it make itself owner, or take the owner's role away.
    let (status, _, _) = c
        .post(
            users,
            "/deployment/users/carol/roles",
            &[("roles", "owner"), ("roles", "user-admin")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = c.post(users, "/deployment/users/admin/roles", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        owner.get_ok("/users/carol").await["roles"],
        json!(["member", "user-admin"])
    );
    assert_eq!(audit_count(&owner).await, before);
    // A form without the session's token is refused.
    let resp = c
        .http
        .post(format!("{}/deployment/users", s.base))
        .header("Cookie", &c.cookie)
        .header("Origin", &s.base)
        .form(&[
            ("username", "mallory"),
            ("email", "m@example.com"),
            ("password", "password123"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(owner.get("/users/mallory").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn console_deployment_idp_sync_saves_and_previews_without_writing() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("data-platform").await;
    let (bob, _) = owner.create_user("bob").await;
    make_org_admin(&owner, "bob").await;
    let b = Browser::of(&s, &owner);
    let page = "/deployment/idp-sync";

    let before = audit_count(&owner).await;
    let (status, location, html) = b
        .post(
            page,
            "/deployment/idp-sync/organization",
            &[
                ("org-field", "groups"),
                ("organization_assign_default", "true"),
                ("org_mapping.0.given", "eng"),
                ("org_mapping.0.gets", "data-platform"),
                ("org_mapping.1.given", ""),
                ("org_mapping.1.gets", ""),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(location, page);
    let saved = owner.get_ok("/settings/idpsync/organization").await;
    assert_eq!(saved["field"], "groups");
    assert_eq!(saved["mapping"], json!({"eng": ["data-platform"]}));
    assert_eq!(audit_count(&owner).await, before + 1);
    let (_, html) = b.get(page).await;
    assert!(html.contains("value=\"data-platform\""), "{html}");
    assert!(html.contains("No problems recorded."), "{html}");

    // Site roles: a name that is not a site role is a field error, nothing saved.
    let before = audit_count(&owner).await;
    let (status, _, html) = b
        .post(
            page,
            "/deployment/idp-sync/site-roles",
            &[
                ("site-field", "roles"),
                ("site_mapping.0.given", "admins"),
                ("site_mapping.0.gets", "superuser"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("superuser"), "{html}");
    assert!(html.contains("alert-error"), "{html}");
    assert_eq!(
        owner.get_ok("/settings/idpsync/site-roles").await["field"],
        Value::Null
    );
    assert_eq!(audit_count(&owner).await, before);
    // A good one is saved.
    let (status, _, _) = b
        .post(
            page,
            "/deployment/idp-sync/site-roles",
            &[
                ("site-field", "roles"),
                ("default_roles", "auditor"),
                ("site_mapping.0.given", "admins"),
                ("site_mapping.0.gets", "template-admin"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let saved = owner.get_ok("/settings/idpsync/site-roles").await;
    assert_eq!(saved["default_roles"], json!(["auditor"]));

    // Preview: the plan with reasons, nothing written.
    let users = owner.get_ok("/users").await["count"].clone();
    let before = audit_count(&owner).await;
    let (status, _, html) = b
        .post(
            page,
            "/deployment/idp-sync/preview",
            &[
                ("claims", r#"{"groups": ["eng"], "roles": ["admins"]}"#),
                ("user", ""),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    // The same panel as an org's preview, every part of a login shown.
    for text in [
        "What a login with these claims would do",
        "Organizations</h4>",
        "Site roles</h4>",
        "<strong>data-platform</strong>",
        "<strong>template-admin</strong>",
    ] {
        assert!(html.contains(text), "{text}: {html}");
    }
    assert!(html.contains("mapping"), "the reason is shown: {html}");
    assert_eq!(owner.get_ok("/users").await["count"], users);
    assert_eq!(audit_count(&owner).await, before);
    // Claims that are not JSON: a field error.
    let (status, _, html) = b
        .post(
            page,
            "/deployment/idp-sync/preview",
            &[("claims", "{groups: eng")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("is not valid JSON"), "{html}");

    // An org admin may not change the deployment's settings: 403, nothing written.
    let c = Browser::of(&s, &bob);
    let (status, _) = c.get(page).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, html) = c.get("/workspaces").await;
    let token = csrf_of(&html);
    let resp = c
        .http
        .post(format!("{}/deployment/idp-sync/organization", s.base))
        .header("Cookie", &c.cookie)
        .header("Origin", &s.base)
        .form(&[
            ("csrf", token.as_str()),
            ("org-field", "evil"),
            ("org_mapping.0.given", "x"),
            ("org_mapping.0.gets", "coder"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        owner.get_ok("/settings/idpsync/organization").await["field"],
        "groups"
    );
    assert_eq!(audit_count(&owner).await, before);
}

const BASE: &str = "dc=example,dc=test";

/// The LDAP settings form for `slapd`, with `password`.
fn ldap_form<'a>(url: &'a str, bind_dn: &'a str, password: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("enabled", "true"),
        ("url", url),
        ("bind_dn", bind_dn),
        ("bind_password", password),
        ("user_base_dn", "ou=people,dc=example,dc=test"),
        ("user_filter", "(objectClass=inetOrgPerson)"),
        ("attr_username", "uid"),
        ("attr_email", "mail"),
        ("attr_name", "cn"),
        ("attr_id", "entryUUID"),
        ("group_base_dn", "ou=groups,dc=example,dc=test"),
        ("group_filter", "(objectClass=groupOfNames)"),
        ("group_name_attribute", "cn"),
        ("membership", "member"),
        ("nested_groups", "true"),
        ("page_size", "100"),
        ("schedule", "0 0 0 1 1 *"),
        ("full_sync_interval", "24h"),
        ("max_removal_percent", "50"),
        ("claims.0.given", "groups"),
        ("claims.0.gets", "groups"),
    ]
}

#[tokio::test]
async fn console_deployment_ldap_sync_keeps_the_password_secret_and_runs_dry() {
    let slapd = Slapd::start();
    slapd.ldapadd(&format!(
        "dn: uid=lena,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: lena\ncn: Lena\nsn: L\nmail: lena@example.com\n\n\
         dn: cn=eng,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: eng\nmember: uid=lena,ou=people,{BASE}\n\n"
    ));
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let (alice, _) = owner.create_user("alice").await;
    let b = Browser::of(&s, &owner);
    let page = "/deployment/ldap-sync";
    let url = slapd.url();
    let bind_dn = format!("cn=sync,ou=services,{BASE}");

    // Run now before anything is set up: refused with the reason.
    let (status, location, _) = b
        .post(page, "/deployment/ldap-sync/runs", &[("mode", "run")])
        .await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, page));

    // Bad input: field errors, nothing saved, the typed password not echoed.
    let before = audit_count(&owner).await;
    let mut bad = ldap_form(&url, &bind_dn, "sync-password");
    bad.retain(|(k, _)| *k != "page_size" && *k != "schedule");
    bad.push(("page_size", "lots"));
    bad.push(("schedule", "every day"));
    let (status, _, html) = b.post(page, page, &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("must be a number"), "{html}");
    assert!(!html.contains("sync-password"), "{html}");
    assert_eq!(owner.get_ok("/settings/ldapsync").await["enabled"], false);
    assert_eq!(audit_count(&owner).await, before);
    let mut bad = ldap_form(&url, &bind_dn, "sync-password");
    bad.retain(|(k, _)| *k != "schedule");
    bad.push(("schedule", "every day"));
    let (status, _, html) = b.post(page, page, &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("class=\"field invalid\""), "{html}");
    assert!(!html.contains("sync-password"), "{html}");
    assert_eq!(owner.get_ok("/settings/ldapsync").await["enabled"], false);

    // Saved: the password is stored, never rendered; a blank one keeps it.
    let (status, _, html) = b
        .post(page, page, &ldap_form(&url, &bind_dn, "sync-password"))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let saved = owner.get_ok("/settings/ldapsync").await;
    assert_eq!(saved["bind_password_set"], true);
    assert_eq!(saved["url"], url.as_str());
    assert_eq!(audit_count(&owner).await, before + 1);
    let (_, html) = b.get(page).await;
    assert!(!html.contains("sync-password"), "{html}");
    assert!(html.contains("A password is stored"), "{html}");
    assert!(html.contains(">Run now</button>") && html.contains(">Dry run</button>"));
    let (status, _, _) = b.post(page, page, &ldap_form(&url, &bind_dn, "")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        owner.get_ok("/settings/ldapsync").await["bind_password_set"],
        true
    );

    // A plain member may neither save nor run.
    let a = Browser::of(&s, &alice);
    let (_, html) = a.get("/workspaces").await;
    let token = csrf_of(&html);
    for path in [page, "/deployment/ldap-sync/runs"] {
        let resp = a
            .http
            .post(format!("{}{path}", s.base))
            .header("Cookie", &a.cookie)
            .header("Origin", &s.base)
            .form(&[
                ("csrf", token.as_str()),
                ("mode", "run"),
                ("url", "ldap://127.0.0.1:1"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        owner.get_ok("/settings/ldapsync").await["url"],
        url.as_str()
    );
    assert_eq!(owner.get_ok("/ldapsync/runs").await["count"], 0);

    // Dry run from the page: its page shows the result; nothing is written.
    let users = owner.get_ok("/users").await["count"].clone();
    let (status, location, _) = b
        .post(page, "/deployment/ldap-sync/runs", &[("mode", "dry")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let id = location
        .strip_prefix("/deployment/ldap-sync/runs/")
        .expect("the run's page")
        .to_owned();
    wait_for("the dry run to end", Duration::from_secs(60), async || {
        let r = owner.get_ok(&format!("/ldapsync/runs/{id}")).await;
        if r["status"] != "running" {
            Ok(r)
        } else {
            Err(r)
        }
    })
    .await;
    let (status, html) = b.get(&location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("status-succeeded"), "{html}");
    assert!(html.contains("lena"), "the plan names the new user: {html}");
    assert!(!html.contains("data-live"), "an ended run is not polled");
    assert_eq!(owner.get_ok("/users").await["count"], users);
    let (_, html) = b.get(page).await;
    assert!(
        html.contains(&format!("/deployment/ldap-sync/runs/{id}")),
        "{html}"
    );
}

#[tokio::test]
async fn console_deployment_policies_show_the_running_set_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let root = crate::slapd::repo_root().join("policies");
    for entry in std::fs::read_dir(&root).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    let policy_dir = dir.path().to_path_buf();
    let s = TestServer::start_with(|a| a.policy_dir = Some(policy_dir)).await;
    let owner = s.owner().await;
    let (alice, _) = owner.create_user("alice").await;
    let b = Browser::of(&s, &owner);
    let api = owner.get_ok("/policies").await;
    let (status, html) = b.get("/deployment/policies").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(api["hash"].as_str().unwrap()), "{html}");
    assert!(html.contains("site-roles.cedar"), "{html}");
    assert!(html.contains("schema.cedarschema"), "{html}");
    // The text is escaped: no raw quotes of `@id("...")` reach the page.
    assert!(html.contains("site.user-admin.assign-site-roles"), "{html}");
    assert!(!html.contains("@id(\"site.owner\")"), "{html}");
    assert!(html.contains(">Reload<"), "{html}");

    // Reload: audited; a plain member may not.
    let before = audit_count(&owner).await;
    let (status, _, _) = b
        .post("/deployment/policies", "/deployment/policies/reload", &[])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(audit_count(&owner).await, before + 1);
    let a = Browser::of(&s, &alice);
    let (_, html) = a.get("/workspaces").await;
    let token = csrf_of(&html);
    let resp = a
        .http
        .post(format!("{}/deployment/policies/reload", s.base))
        .header("Cookie", &a.cookie)
        .header("Origin", &s.base)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(audit_count(&owner).await, before + 1);
}

/// The value of the input `id` of a page.
fn input_value(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}: {html}"));
    let rest = &html[at..];
    let v = rest.find("value=\"").expect("a value") + "value=\"".len();
    rest[v..v + rest[v..].find('"').unwrap()].to_owned()
}

/// `/settings/tokens`: a token made in the console is shown once, works on
/// the API as a bearer (what `orgsync login URL --token` stores), is listed
/// without its secret, is out of other users' reach, and stops working when
/// deleted.
#[tokio::test]
async fn console_api_tokens_are_shown_once_work_and_are_revoked() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let (bob, _) = owner.create_user("bob").await;
    let b = Browser::of(&s, &owner);
    let page = "/settings/tokens";
    let (status, html) = b.get(page).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("No tokens yet."), "{html}");
    assert!(
        html.contains("href=\"/settings/tokens\""),
        "in the user menu"
    );

    // A lifetime not offered: a field error, nothing made.
    let (status, _, html) = b.post(page, page, &[("name", "x"), ("days", "1000")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(
        html.contains("choose one of the lifetimes offered"),
        "{html}"
    );
    assert!(html.contains("No tokens yet."), "{html}");

    let (status, _, html) = b
        .post(page, page, &[("name", "build-bot"), ("days", "7")])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{html}");
    let secret = input_value(&html, "new-token");
    assert!(secret.len() >= 20, "{secret}");
    crate::logscan::register(crate::logscan::Kind::BearerToken, &secret);
    let token_client = Client {
        token: Some(secret.clone()),
        ..owner.clone()
    };
    let me = token_client.get_ok("/users/me").await;
    assert_eq!(me["username"], "admin");
    // Listed with its name, never with its secret again.
    let (_, html) = b.get(page).await;
    assert!(html.contains("build-bot"), "{html}");
    assert!(!html.contains(&secret), "the secret is shown only once");
    let tokens = owner.get_ok("/users/me/keys/tokens").await;
    let id = tokens
        .as_array()
        .and_then(|a| a.iter().find(|t| t["token_name"] == "build-bot"))
        .and_then(|t| t["id"].as_str())
        .unwrap_or_else(|| panic!("{tokens}"))
        .to_owned();

    // Bob sees only his own (none), and cannot delete the owner's.
    let c = Browser::of(&s, &bob);
    let (status, html) = c.get(page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("build-bot"), "{html}");
    let (status, _, _) = c
        .post(page, &format!("/settings/tokens/{id}/delete"), &[])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(token_client.get_ok("/users/me").await["username"], "admin");

    // The owner deletes it: refused from then on.
    let (status, location, _) = b
        .post(page, &format!("/settings/tokens/{id}/delete"), &[])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, page);
    let (status, _) = token_client.get("/users/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, html) = b.get(page).await;
    assert!(!html.contains("build-bot"), "{html}");
}
