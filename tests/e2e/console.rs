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
