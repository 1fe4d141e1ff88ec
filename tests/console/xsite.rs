//! A form posted to the console from another origin, in a real browser: a
//! page served on another port of 127.0.0.1 (same site, other origin: the
//! browser sends the session cookie) submits a Create Organization form to
//! the console while the owner is signed in. The console answers its "Not
//! allowed" page and nothing is created; the same form from the console's own
//! page works.

use crate::browser::Driver;
use crate::harness::TestServer;

/// Serves one HTML page on 127.0.0.1 (another port than the console's).
async fn attacker_page(html: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let html = html.clone();
            async move { axum::response::Html(html) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_from_another_origin_is_refused_in_the_browser() {
    let s = TestServer::start().await;
    let base = s.base.clone();
    let owner_api = s.owner().await;
    let driver = Driver::start().await;
    let b = driver.browser(true).await;
    b.goto(&format!("{base}/login")).await;
    b.fill("#email", "admin@example.com").await;
    b.fill("#password", "password123").await;
    b.click_text("Sign in").await;
    assert_eq!(b.path().await, "/workspaces");

    let evil = attacker_page(format!(
        r#"<!doctype html><title>Win a prize</title>
<form method="post" action="{base}/organizations/new">
  <input name="name" value="evil-org"><input name="display_name" value="Evil">
  <button type="submit">Claim</button>
</form>"#
    ))
    .await;
    b.goto(&evil).await;
    b.click_text("Claim").await;
    let text = b.text().await;
    b.screenshot("cross-site-post-refused").await;
    assert!(text.contains("sent from another site"), "{text}");
    assert!(
        b.path().await.starts_with("/organizations/new"),
        "{}",
        b.path().await
    );
    let (status, _) = owner_api.get("/organizations/evil-org").await;
    assert_eq!(
        status,
        reqwest::StatusCode::NOT_FOUND,
        "nothing was created"
    );

    // The console's own form, same session: created.
    b.goto(&format!("{base}/organizations/new")).await;
    b.fill("#name", "good-org").await;
    b.click_text("Save").await;
    assert_eq!(b.path().await, "/organizations/good-org");
    let (status, _) = owner_api.get("/organizations/good-org").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    b.close().await;
}
