//! The web console's security rules over plain HTTP (the browser tests in
//! `tests/console/` run its pages in Chromium): pages need a session, form
//! posts need this server's origin and the session's CSRF token, an org one
//! may not read is the same 404 page as an unknown one, errors are pages
//! without internal text, and static files are cached by content hash.

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use reqwest::{Client as Http, StatusCode, redirect::Policy};

use crate::harness::TestServer;

/// A browser-like client: no redirects followed, HTML accepted.
fn http() -> Http {
    Http::builder().redirect(Policy::none()).build().unwrap()
}

/// The console's CSRF token in a page's forms.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn page(http: &Http, url: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut req = http.get(url).header("Accept", "text/html");
    if let Some(c) = cookie {
        req = req.header("Cookie", format!("orgsync_session={c}"));
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn console_pages_and_forms_follow_the_security_rules() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let (_alice, alice_id) = owner.create_user("alice").await;
    owner.create_org("data-platform").await;
    let http = http();
    let at = |p: &str| format!("{}{p}", s.base);

    // No session: pages redirect to the login, with the way back.
    let resp = http
        .get(at("/organizations/coder/members?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resp.headers()[LOCATION],
        "/login?redirect=%2Forganizations%2Fcoder%2Fmembers%3Fx%3D1"
    );
    // A redirect elsewhere than this server is not followed after login.
    let (status, html) = page(&http, &at("/login?redirect=//evil.example/x"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("name=\"redirect\" value=\"/workspaces\""),
        "{html}"
    );

    // Sign in through the login form (same origin).
    let resp = http
        .post(at("/login"))
        .header("Origin", &s.base)
        .form(&[("email", "alice@example.com"), ("password", "password123")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("orgsync_session="))
        .map(|v| v[..v.find(';').unwrap()].to_owned())
        .expect("a session cookie");
    // A login form posted from another site is refused.
    let resp = http
        .post(at("/login"))
        .header("Origin", "http://evil.example")
        .form(&[("email", "alice@example.com"), ("password", "password123")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().get("set-cookie").is_none());

    // Alice is not in data-platform: its pages are the 404 page of an org
    // that does not exist, byte for byte.
    let (s1, forbidden) = page(&http, &at("/organizations/data-platform"), Some(&cookie)).await;
    let (s2, unknown) = page(&http, &at("/organizations/no-such-org"), Some(&cookie)).await;
    assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(forbidden, unknown);
    let (s3, members) = page(
        &http,
        &at("/organizations/data-platform/members"),
        Some(&cookie),
    )
    .await;
    assert_eq!(s3, StatusCode::NOT_FOUND);
    assert_eq!(members, unknown);
    // An unknown path is the console's 404 page for a browser, the API's
    // JSON 404 otherwise.
    let (s4, _) = page(&http, &at("/no/such/page"), Some(&cookie)).await;
    assert_eq!(s4, StatusCode::NOT_FOUND);
    let resp = http.get(at("/no/such/page")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(
        resp.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    // Forms: the owner's session and a page's CSRF token.
    let resp = http
        .post(at("/login"))
        .header("Origin", &s.base)
        .form(&[("email", "admin@example.com"), ("password", "password123")])
        .send()
        .await
        .unwrap();
    let owner_cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("orgsync_session="))
        .map(|v| v[..v.find(';').unwrap()].to_owned())
        .unwrap();
    let (status, html) = page(&http, &at("/organizations/new"), Some(&owner_cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let token = csrf_of(&html);
    let post = |origin: Option<&'static str>, token: String, name: &'static str| {
        let mut req = http
            .post(at("/organizations/new"))
            .header("Cookie", format!("orgsync_session={owner_cookie}"))
            .form(&[("csrf", token.as_str()), ("name", name)]);
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        req.send()
    };
    let own: &'static str = Box::leak(s.base.clone().into_boxed_str());
    // Another site's form, or none named: refused before anything runs.
    let r = post(Some("http://evil.example"), token.clone(), "evil-1")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(None, token.clone(), "evil-2").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Same origin, but a token of no session, or of alice's: refused.
    let r = post(Some(own), "00".repeat(32), "evil-3").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, alice_page) = page(&http, &at("/workspaces"), Some(&cookie)).await;
    let r = post(Some(own), csrf_of(&alice_page), "evil-4")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("out of date or was sent from another site"),
        "{text}"
    );
    // None of them created anything.
    let orgs = owner.get_ok("/organizations").await;
    assert!(
        orgs.as_array()
            .unwrap()
            .iter()
            .all(|o| !o["name"].as_str().unwrap().starts_with("evil")),
        "{orgs}"
    );
    // The right token from this origin: created, then a redirect (PRG).
    let r = post(Some(own), token.clone(), "made-by-form")
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let made = owner.get_ok("/organizations/made-by-form").await;
    assert_eq!(made["name"], "made-by-form");
    // Invalid input: the form again, the error next to its field, nothing written.
    let r = post(Some(own), token, "Not A Slug").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(html.contains("class=\"err\" id=\"name-err\""), "{html}");

    // Alice may not create organizations: the page is a 403 page.
    let (status, html) = page(&http, &at("/organizations/new"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("Not allowed"), "{html}");
    // Nor is she shown Admin settings.
    let (_, html) = page(&http, &at("/workspaces"), Some(&cookie)).await;
    assert!(!html.contains("Admin settings"));
    assert!(!alice_id.is_empty());

    // Pages are private; static files are cached under their content hash.
    let resp = http
        .get(at("/workspaces"))
        .header("Cookie", format!("orgsync_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()[CACHE_CONTROL], "no-store");
    let html = resp.text().await.unwrap();
    let css = html
        .split("href=\"")
        .find_map(|p| {
            p.strip_prefix("/static/")
                .map(|r| &r[..r.find('"').unwrap()])
        })
        .expect("the stylesheet");
    let resp = http
        .get(at(&format!("/static/{css}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let resp = http.get(at("/static/console.css")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// Signs `email` in through the console's login form; its session cookie value.
async fn console_login(http: &Http, base: &str, email: &str) -> String {
    let resp = http
        .post(format!("{base}/login"))
        .header("Origin", base)
        .form(&[("email", email), ("password", "password123")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "login {email}");
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("orgsync_session="))
        .map(|v| v[..v.find(';').unwrap()].to_owned())
        .expect("a session cookie")
}

/// A form post of the console as `cookie`, from this server's origin.
async fn form_post(
    http: &Http,
    base: &str,
    path: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let resp = http
        .post(format!("{base}{path}"))
        .header("Origin", base)
        .header("Cookie", format!("orgsync_session={cookie}"))
        .form(fields)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn console_cross_site_posts_get_the_console_page_and_api_posts_json() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let http = http();
    let cookie = console_login(&http, &s.base, "admin@example.com").await;
    for (path, body) in [
        ("/organizations/new", "name=evil-console"),
        ("/organizations/coder/members/add", "user=admin"),
        ("/logout", ""),
    ] {
        let resp = http
            .post(format!("{}{path}", s.base))
            .header("Cookie", format!("orgsync_session={cookie}"))
            .header("Origin", "http://evil.example")
            .header("Sec-Fetch-Site", "cross-site")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(resp.headers()[CACHE_CONTROL], "no-store");
        let ct = resp.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        let html = resp.text().await.unwrap();
        assert!(html.contains("Not allowed"), "{html}");
        assert!(html.contains("sent from another site"), "{html}");
        assert!(!html.contains("cross-site request refused"), "{html}");
    }
    // The same session on the API: the JSON error.
    let resp = http
        .post(format!("{}/api/v2/organizations", s.base))
        .header("Cookie", format!("orgsync_session={cookie}"))
        .header("Origin", "http://evil.example")
        .json(&serde_json::json!({"name": "evil-api"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        resp.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("cross-site request refused"),
        "{body}"
    );
    // Nothing was written, and the session still works.
    let orgs = owner.get_ok("/organizations").await;
    assert_eq!(orgs.as_array().unwrap().len(), 1, "{orgs}");
    let (status, _) = page(&http, &format!("{}/workspaces", s.base), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn console_member_forms_grant_no_more_than_the_caller_may() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("acme").await;
    let (_ua, _) = owner.create_user("orguseradmin").await;
    let (_sa, _) = owner.create_user("siteuseradmin").await;
    let (_bob, _) = owner.create_user("bob").await;
    owner
        .add_member("acme", "orguseradmin", &["organization-user-admin"])
        .await;
    owner.add_member("acme", "bob", &[]).await;
    owner.set_site_roles("siteuseradmin", &["user-admin"]).await;
    let http = http();
    let members = "/organizations/acme/members";
    let roles_of = |who: &'static str| {
        let owner = &owner;
        async move {
            let list = owner.get_ok("/organizations/acme/members").await;
            list.as_array()
                .unwrap()
                .iter()
                .find(|m| m["username"] == who)
                .map(|m| m["roles"].clone())
        }
    };
    for (email, me) in [
        ("orguseradmin@example.com", "orguseradmin"),
        ("siteuseradmin@example.com", "siteuseradmin"),
    ] {
        let cookie = console_login(&http, &s.base, email).await;
        let (status, html) = page(&http, &format!("{}{members}", s.base), Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK, "{me}: {html}");
        // Only assignable roles are offered: no organization-admin checkbox.
        assert!(
            !html.contains("type=\"checkbox\" name=\"roles\" value=\"organization-admin\""),
            "{me}: {html}"
        );
        let token = csrf_of(&html);
        let before = roles_of("bob").await;
        // The form sent anyway, by hand: refused, nothing written.
        for path in [
            format!("{members}/bob/roles"),
            format!("{members}/{me}/roles"),
        ] {
            let (status, html) = form_post(
                &http,
                &s.base,
                &path,
                &cookie,
                &[("csrf", &token), ("roles", "organization-admin")],
            )
            .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{me} {path}: {html}");
        }
        assert_eq!(roles_of("bob").await, before, "{me}");
        let mine = roles_of(me).await;
        assert!(
            mine.as_ref()
                .is_none_or(|r| !r.to_string().contains("organization-admin")),
            "{me}: {mine:?}"
        );
        // A site role through the org form: not an org role, nothing written.
        let (status, _) = form_post(
            &http,
            &s.base,
            &format!("{members}/bob/roles"),
            &cookie,
            &[("csrf", &token), ("roles", "owner")],
        )
        .await;
        // Refused: an error page, or the members page again with the error.
        assert!(
            status.is_client_error() || status == StatusCode::SEE_OTHER,
            "{me}: {status}"
        );
        assert_eq!(roles_of("bob").await, before, "{me}");
        let (_, user) = owner.get("/users/bob").await;
        assert_eq!(user["roles"], serde_json::json!(["member"]), "{user}");
    }
}

/// A bad form: its path, its fields, what the refusal must name.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[tokio::test]
async fn console_forms_with_bad_input_write_nothing() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("acme").await;
    let http = http();
    let cookie = console_login(&http, &s.base, "admin@example.com").await;
    let (_, html) = page(
        &http,
        &format!("{}/organizations/acme", s.base),
        Some(&cookie),
    )
    .await;
    let token = csrf_of(&html);
    let t = token.as_str();
    let audit_count = || async {
        let (_, body) = owner.get("/audit?limit=1000").await;
        body["count"]
            .as_i64()
            .or_else(|| body.as_array().map(|a| a.len() as i64))
            .unwrap_or_else(|| panic!("audit: {body}"))
    };
    let before_orgs = owner.get_ok("/organizations").await;
    let before_members = owner.get_ok("/organizations/acme/members").await;
    let before_audit = audit_count().await;
    // (path, fields, what the page must name)
    let cases: &[Case] = &[
        (
            "/organizations/new",
            &[("csrf", t), ("name", "Not A Slug")],
            "name-err",
        ),
        (
            "/organizations/new",
            &[("csrf", t), ("name", "acme")],
            "name",
        ),
        (
            "/organizations/acme",
            &[("csrf", t), ("name", "Bad Name")],
            "name-err",
        ),
        (
            "/organizations/acme",
            &[
                ("csrf", t),
                ("name", "acme"),
                ("display_name", &"x".repeat(500)),
            ],
            "display_name",
        ),
        (
            "/organizations/acme/delete",
            &[("csrf", t), ("confirm", "not-acme")],
            "confirm",
        ),
        (
            "/organizations/acme/members/add",
            &[("csrf", t), ("user", "")],
            "user-err",
        ),
        (
            "/organizations/acme/members/add",
            &[("csrf", t), ("user", "nobody-here")],
            "user-err",
        ),
        (
            "/organizations/acme/provisioners/keys",
            &[("csrf", t), ("name", "")],
            "name",
        ),
        (
            "/organizations/acme/provisioners/keys",
            &[("csrf", t), ("name", "Bad Key!")],
            "name",
        ),
        (
            "/organizations/acme/provisioners/keys",
            &[("csrf", t), ("name", "k1"), ("tags", "no-equals-sign")],
            "tags",
        ),
        (
            "/workspaces/new",
            &[("csrf", t), ("template", "acme/no-such"), ("name", "ws")],
            "",
        ),
        (
            "/workspaces/new",
            &[("csrf", t), ("template", ""), ("name", "Bad Name")],
            "",
        ),
    ];
    for (path, fields, field) in cases {
        let (status, html) = form_post(&http, &s.base, path, &cookie, fields).await;
        assert!(
            status.is_client_error(),
            "{path} {fields:?}: {status} {html}"
        );
        assert!(html.contains("<html"), "{path}: a page, not JSON: {html}");
        if !field.is_empty() {
            assert!(
                html.contains(field),
                "{path} {fields:?} names `{field}`: {html}"
            );
        }
    }
    // A roles form with a role that does not exist, and one for a non-member.
    for (user, role) in [
        ("admin", "no-such-role"),
        ("nobody-here", "organization-admin"),
    ] {
        let (status, _) = form_post(
            &http,
            &s.base,
            &format!("/organizations/acme/members/{user}/roles"),
            &cookie,
            &[("csrf", t), ("roles", role)],
        )
        .await;
        assert!(
            status.is_client_error() || status == StatusCode::SEE_OTHER,
            "{user}: {status}"
        );
    }
    // Without the form's token: refused.
    let (status, _) = form_post(
        &http,
        &s.base,
        "/organizations/acme",
        &cookie,
        &[("name", "renamed")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(owner.get_ok("/organizations").await, before_orgs);
    assert_eq!(
        owner.get_ok("/organizations/acme/members").await,
        before_members
    );
    let (_, keys) = owner.get("/organizations/acme/provisionerkeys").await;
    assert_eq!(keys.as_array().map(Vec::len).unwrap_or(0), 0, "{keys}");
    let (_, ws) = owner.get("/workspaces").await;
    assert_eq!(ws["count"].as_i64().unwrap_or(0), 0, "{ws}");
    assert_eq!(audit_count().await, before_audit, "no audit entry either");
}

#[tokio::test]
async fn console_members_and_templates_are_paged() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("small").await;
    for i in 0..55 {
        let (status, body) = owner
            .post(
                "/users",
                serde_json::json!({"username": format!("user{i:02}"),
                    "email": format!("user{i:02}@example.com"), "password": "password123"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // With its creator, 2 members of 56 users: the plan that joins.
    owner.add_member("small", "user07", &[]).await;
    let http = http();
    let cookie = console_login(&http, &s.base, "admin@example.com").await;
    let usernames = |html: &str| -> Vec<String> {
        html.split("<strong>")
            .skip(1)
            .filter_map(|p| p.split_once("</strong><br><span class=\"muted small\">"))
            .map(|(name, _)| name.to_owned())
            .collect()
    };
    // The default org holds all 56 users: 50 on the first page, 6 on the second.
    let at = |p: &str| format!("{}{p}", s.base);
    let (status, first) = page(&http, &at("/organizations/coder/members"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let names1 = usernames(&first);
    assert_eq!(names1.len(), 50, "{names1:?}");
    assert!(first.contains("1–50 of 56"), "{first}");
    assert!(
        first.contains("href=\"/organizations/coder/members?page=2\" rel=\"next\""),
        "{first}"
    );
    assert!(!first.contains("rel=\"prev\""));
    let (_, second) = page(
        &http,
        &at("/organizations/coder/members?page=2"),
        Some(&cookie),
    )
    .await;
    let names2 = usernames(&second);
    assert_eq!(names2.len(), 6, "{names2:?}");
    assert!(second.contains("href=\"/organizations/coder/members\" rel=\"prev\""));
    assert!(!second.contains("rel=\"next\""));
    // Together, by username, as the API lists them.
    let api: Vec<String> = owner
        .get_ok("/organizations/coder/members")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap().to_owned())
        .collect();
    let both: Vec<String> = names1.into_iter().chain(names2).collect();
    assert_eq!(both, api);
    // A small org (the other plan): one page, by username, no links.
    let (_, small) = page(&http, &at("/organizations/small/members"), Some(&cookie)).await;
    assert_eq!(usernames(&small), ["admin", "user07"]);
    assert!(!small.contains("class=\"pager\""));
    // Past the end, or nonsense: an empty page or the first, never an error.
    let (status, _) = page(
        &http,
        &at("/organizations/coder/members?page=99"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, html) = page(
        &http,
        &at("/organizations/coder/members?page=abc"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(usernames(&html).len(), 50);
    let (status, _) = page(&http, &at("/templates?page=3"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
}

/// The listings' pre-filter (one decision on an org that does not exist):
/// site roles that cross orgs still see every org, members only theirs.
#[tokio::test]
async fn org_listings_show_site_roles_every_org_and_members_their_own() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("acme").await;
    owner.create_org("globex").await;
    let (aud, _) = owner.create_user("siteauditor").await;
    let (tadm, _) = owner.create_user("sitetemplates").await;
    let (carol, _) = owner.create_user("carol").await;
    owner.set_site_roles("siteauditor", &["auditor"]).await;
    owner
        .set_site_roles("sitetemplates", &["template-admin"])
        .await;
    owner.add_member("globex", "carol", &[]).await;
    let names = |v: serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = names(owner.get_ok("/organizations").await);
    assert_eq!(all, ["acme", "coder", "globex"]);
    assert_eq!(names(aud.get_ok("/organizations").await), all);
    // What the template-admin may read of other orgs is the policies' call;
    // the pre-filter must not take away what they allow.
    let (_, direct) = tadm.get("/organizations/acme").await;
    let listed = names(tadm.get_ok("/organizations").await);
    assert_eq!(
        listed.contains(&"acme".to_owned()),
        direct["name"] == "acme",
        "{listed:?} {direct}"
    );
    assert_eq!(
        names(carol.get_ok("/organizations").await),
        ["coder", "globex"]
    );
    // In the console too: carol's switcher lists her orgs only.
    let http = http();
    let cookie = console_login(&http, &s.base, "carol@example.com").await;
    let (_, html) = page(
        &http,
        &format!("{}/organizations/globex", s.base),
        Some(&cookie),
    )
    .await;
    assert!(html.contains("/organizations/coder\""), "{html}");
    assert!(!html.contains("/organizations/acme\""), "{html}");
}
