//! The deployment's LDAP sync page in a real browser: the owner fills the
//! settings (the bind password typed once, never shown again), saves, starts
//! a **Dry run** against the real slapd of the test harness and watches its
//! page follow the run live until the result shows (users the sync would
//! create, stats). Screenshots of every deployment page, wide and at 390 px.

use std::time::Duration;

use crate::browser::Driver;
use crate::harness::TestServer;
use crate::slapd::Slapd;

const WAIT: Duration = Duration::from_secs(60);
const BASE: &str = "dc=example,dc=test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ldap_dry_run_started_from_the_page() {
    let slapd = Slapd::start();
    let mut ldif = String::new();
    for (uid, name) in [("lena", "Lena Lindqvist"), ("omar", "Omar Haddad")] {
        ldif.push_str(&format!(
            "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {name}\n\
             sn: {uid}\nmail: {uid}@example.com\n\n"
        ));
    }
    ldif.push_str(&format!(
        "dn: cn=eng,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: eng\n\
         member: uid=lena,ou=people,{BASE}\nmember: uid=omar,ou=people,{BASE}\n\n"
    ));
    slapd.ldapadd(&ldif);

    let s = TestServer::start().await;
    let owner_api = s.owner().await;
    owner_api.create_org("data-platform").await;
    let (status, body) = owner_api
        .patch(
            "/settings/idpsync/organization",
            serde_json::json!({"field": "groups", "mapping": {"eng": ["data-platform"]}}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let at = |p: &str| format!("{}{p}", s.base);
    let driver = Driver::start().await;
    let owner = driver.browser(true).await;

    owner.goto(&at("/login?redirect=%2Fdeployment")).await;
    owner.fill("#email", "admin@example.com").await;
    owner.fill("#password", "password123").await;
    owner.click_text("Sign in").await;
    assert_eq!(owner.path().await, "/deployment/users");
    owner.screenshot("deployment-users").await;

    // The settings, typed into the form.
    owner.click_text("LDAP sync").await;
    assert_eq!(owner.path().await, "/deployment/ldap-sync");
    let text = owner.text().await;
    assert!(text.contains("No runs yet"), "{text}");
    owner.click("input[name=enabled]").await;
    owner.fill("#url", &slapd.url()).await;
    owner
        .fill("#bind_dn", &format!("cn=sync,ou=services,{BASE}"))
        .await;
    owner.fill("#bind_password", "sync-password").await;
    owner
        .fill("#user_base_dn", &format!("ou=people,{BASE}"))
        .await;
    owner
        .fill("#group_base_dn", &format!("ou=groups,{BASE}"))
        .await;
    owner.fill("#schedule", "0 0 0 1 1 *").await;
    owner.click_text("Save").await;
    let text = owner.text().await;
    assert!(text.contains("LDAP sync settings saved."), "{text}");
    assert!(text.contains("A password is stored"), "{text}");
    assert_eq!(owner.value_of("#bind_password").await, "");
    assert!(!owner.source().await.contains("sync-password"));
    owner.screenshot("deployment-ldap-sync").await;

    // Dry run: the run's page, live until the result shows.
    owner.click_text("Dry run").await;
    let path = owner.path().await;
    assert!(path.starts_with("/deployment/ldap-sync/runs/"), "{path}");
    let text = owner.wait_text("succeeded", WAIT, false).await;
    assert!(text.contains("lena") && text.contains("omar"), "{text}");
    assert!(text.contains("create"), "{text}");
    assert!(text.contains("data-platform"), "the plan's orgs: {text}");
    assert!(
        text.to_lowercase().contains("users seen"),
        "the stats: {text}"
    );
    owner.screenshot("deployment-ldap-dry-run").await;
    // Nothing was written: lena has no account.
    let (status, _) = owner_api.get("/users/lena").await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    // The runs list shows it.
    owner.goto(&at("/deployment/ldap-sync")).await;
    let text = owner.text().await;
    assert!(
        text.contains("Dry run") && text.contains("succeeded"),
        "{text}"
    );
    owner.screenshot("deployment-ldap-runs").await;

    // The other deployment pages, for the eye.
    owner.goto(&at("/deployment/idp-sync")).await;
    owner.fill("#claims", r#"{"groups": ["eng"]}"#).await;
    owner.click_text("Preview").await;
    let text = owner
        .wait_text("What a login with these claims would do", WAIT, false)
        .await;
    assert!(
        text.contains("Organizations") && text.contains("data-platform"),
        "{text}"
    );
    owner.screenshot("deployment-idp-sync-preview").await;
    owner.goto(&at("/deployment/policies")).await;
    owner.screenshot("deployment-policies").await;
    // Create user with a bad username: the form stays open with the error.
    owner.goto(&at("/deployment/users")).await;
    owner.click("details.create-user > summary").await;
    owner.fill("#username", "Bad Name").await;
    owner.fill("#email", "bad@example.com").await;
    owner.fill("#password", "long-enough-1").await;
    owner.click_text("Create user").await;
    assert!(
        owner
            .exists("details.create-user[open] .field.invalid")
            .await
    );
    assert_eq!(owner.value_of("#password").await, "");
    owner.screenshot("deployment-users-create-error").await;

    // Narrow screens.
    owner.client.set_window_size(390, 844).await.unwrap();
    owner.goto(&at("/deployment/ldap-sync")).await;
    owner.screenshot("deployment-ldap-sync-390px").await;
    owner.goto(&at("/deployment/users")).await;
    owner.screenshot("deployment-users-390px").await;
    // No page of the deployment scrolls sideways at 390 px (wide tables
    // scroll inside their own box).
    for p in [
        "/deployment/users",
        "/deployment/idp-sync",
        "/deployment/ldap-sync",
        "/deployment/policies",
    ] {
        owner.goto(&at(p)).await;
        let fits = owner
            .client
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            fits,
            serde_json::Value::Bool(true),
            "{p} is wider than 390 px"
        );
    }
    owner.close().await;
}

/// Signs `b` in as the harness's owner through the login form (no script
/// needed), landing on `path`.
async fn sign_in(b: &crate::browser::Browser, base: &str, path: &str) {
    b.goto(&format!(
        "{base}/login?redirect={}",
        path.replace('/', "%2F")
    ))
    .await;
    b.fill("#email", "admin@example.com").await;
    b.fill("#password", "password123").await;
    b.click_text("Sign in").await;
    assert_eq!(b.path().await, path);
}

/// A run that takes seconds (the first sync of 8,000 directory users into
/// orgs and groups) watched on its page while it runs: with scripts the page
/// polls the API and shows the end by itself; without them it refreshes
/// itself every 3 s. Neither browser is reloaded by the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_ldap_sync_is_followed_live_with_and_without_scripts() {
    let slapd = Slapd::start();
    let entries = slapd.load_generated(8_000, 40, false);
    assert!(entries >= 8_040, "{entries}");

    let s = TestServer::start().await;
    let owner_api = s.owner().await;
    owner_api.create_org("data-platform").await;
    for (path, body) in [
        (
            "/settings/idpsync/organization",
            serde_json::json!({"field": "groups", "mapping": {"group-0000": ["data-platform"]}}),
        ),
        (
            "/organizations/data-platform/settings/idpsync/groups",
            serde_json::json!({"field": "groups", "auto_create_missing_groups": true}),
        ),
    ] {
        let (status, body) = owner_api.patch(path, body).await;
        assert!(status.is_success(), "{path}: {body}");
    }
    let (status, body) = owner_api
        .put(
            "/settings/ldapsync",
            serde_json::json!({
                "enabled": true,
                "url": slapd.url(),
                "bind_dn": format!("cn=sync,ou=services,{BASE}"),
                "bind_password": "sync-password",
                "user_base_dn": format!("ou=people,{BASE}"),
                "group_base_dn": format!("ou=groups,{BASE}"),
                "claims": {"groups": "groups"},
                "schedule": "0 0 0 1 1 *",
            }),
        )
        .await;
    assert!(status.is_success(), "{body}");

    let driver = Driver::start().await;
    let live = driver.browser(true).await;
    let plain = driver.browser(false).await;
    sign_in(&live, &s.base, "/deployment/ldap-sync").await;
    sign_in(&plain, &s.base, "/deployment/ldap-sync").await;

    // Run now: the run's page, while the run is still going.
    live.click_text("Run now").await;
    let path = live.path().await;
    assert!(path.starts_with("/deployment/ldap-sync/runs/"), "{path}");
    plain.goto(&format!("{}{path}", s.base)).await;
    for (b, name) in [(&live, "scripts"), (&plain, "no scripts")] {
        assert_eq!(b.text_of("#run-status").await, "running", "{name}");
        assert!(b.exists("#run-progress").await, "{name}: progress shown");
        let text = b.text().await;
        assert!(text.contains("so far"), "{name}: {text}");
        assert!(text.contains("Stats appear when the run ends."), "{name}");
    }
    live.screenshot("deployment-ldap-run-live").await;
    // The page without scripts says it refreshes itself, and does so
    // through its <noscript> refresh; the scripted one polls instead.
    let plain_text = plain.text().await;
    assert!(
        plain_text.contains("This page refreshes every 3 seconds"),
        "{plain_text}"
    );
    assert!(
        plain
            .source()
            .await
            .contains(r#"<meta http-equiv="refresh" content="3">"#)
    );
    plain.screenshot("deployment-ldap-run-live-noscript").await;

    // Both follow the run to its end by themselves.
    for (b, name) in [(&live, "scripts"), (&plain, "no scripts")] {
        let text = b.wait_text("succeeded", WAIT, false).await;
        assert_eq!(b.path().await, path, "{name} stayed on the run");
        assert_eq!(b.text_of("#run-status").await, "succeeded", "{name}");
        assert!(
            text.to_lowercase().contains("users seen") && text.contains("8000"),
            "{name}: the stats: {text}"
        );
        assert!(!text.contains("so far"), "{name}: {text}");
        assert!(
            !b.source().await.contains("http-equiv=\"refresh\""),
            "{name}"
        );
    }
    live.screenshot("deployment-ldap-run-done").await;
    // The run really wrote: the directory's users are members of the org.
    let members = owner_api
        .get_ok("/organizations/data-platform/members")
        .await;
    assert!(members.to_string().contains("\"user0"), "{members}");
    live.close().await;
    plain.close().await;
}
