//! Organization administration in a real browser: settings saved, delete with
//! a typed confirmation (refused with its reason while the org holds
//! something), roles as checkboxes of the roles one may assign only, member
//! removal, provisioner keys (shown once, with a copy button) created and
//! deleted. Every console page is also looked at 1280x800 and 390 px wide
//! (screenshots in `target/console-screenshots/`), and nothing may be wider
//! than the window.

use crate::browser::{Browser, Driver};
use crate::harness::TestServer;

/// Whether the page is wider than the window (a horizontal scroll bar of the
/// whole page); tables scroll inside their own wrapper instead.
async fn overflows(b: &Browser) -> bool {
    let v = b
        .client
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth + 1;",
            vec![],
        )
        .await
        .unwrap();
    v.as_bool().unwrap_or(true)
}

async fn sign_in(b: &Browser, base: &str, email: &str) {
    b.goto(&format!("{base}/login")).await;
    b.fill("#email", email).await;
    b.fill("#password", "password123").await;
    b.click_text("Sign in").await;
    assert_eq!(b.path().await, "/workspaces", "{email} signed in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_admin_in_the_browser() {
    let s = TestServer::start().await;
    let base = s.base.clone();
    let at = |p: &str| format!("{base}{p}");
    let owner_api = s.owner().await;
    owner_api.create_org("acme").await;
    let (_ua, _) = owner_api.create_user("uadmin").await;
    let (_bob, _) = owner_api.create_user("bob").await;
    owner_api
        .add_member("acme", "uadmin", &["organization-user-admin"])
        .await;
    owner_api.add_member("acme", "bob", &[]).await;
    let driver = Driver::start().await;
    let owner = driver.browser(true).await;
    sign_in(&owner, &base, "admin@example.com").await;

    // Settings: saved, then shown with a confirmation.
    owner.goto(&at("/organizations/acme")).await;
    owner.fill("#display_name", "Acme Corporation").await;
    owner
        .fill("#description", "Rockets, anvils and portable holes")
        .await;
    owner.click_text("Save").await;
    assert_eq!(owner.path().await, "/organizations/acme");
    let text = owner.text().await;
    assert!(text.contains("Settings saved."), "{text}");
    assert_eq!(owner.value_of("#display_name").await, "Acme Corporation");
    let (_, org) = owner_api.get("/organizations/acme").await;
    assert_eq!(org["display_name"], "Acme Corporation", "{org}");

    // Delete: the typed name must match; while members remain, the 409's
    // reason is shown and nothing is deleted.
    owner.fill("#confirm", "acme-typo").await;
    owner.click_text("Delete organization").await;
    assert!(
        owner.exists(".field.invalid #confirm").await,
        "the confirmation is refused next to its field"
    );
    assert!(owner.text().await.contains("type `acme` to confirm"));
    owner.fill("#confirm", "acme").await;
    owner.click_text("Delete organization").await;
    let text = owner.text().await;
    assert!(
        text.contains("member"),
        "the reason names what remains: {text}"
    );
    owner.screenshot("org-delete-refused").await;
    let (status, _) = owner_api.get("/organizations/acme").await;
    assert_eq!(status, reqwest::StatusCode::OK, "still there");

    // Members: roles as checkboxes; the owner may assign organization-admin.
    owner.goto(&at("/organizations/acme/members")).await;
    assert!(
        owner
            .exists("form[action$='/bob/roles'] input[value='organization-admin']")
            .await
    );
    owner.screenshot("members-admin").await;

    // The owner saves bob's roles with the checkboxes.
    let form = "form[action$='/bob/roles']";
    owner
        .click(&format!("{form} input[value='organization-auditor']"))
        .await;
    owner.click(&format!("{form} button")).await;
    owner
        .wait_text(
            "Roles of `bob` saved.",
            std::time::Duration::from_secs(10),
            false,
        )
        .await;
    let roles_of_bob = async || {
        let members = owner_api.get_ok("/organizations/acme/members").await;
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["username"] == "bob")
            .map(|m| m["roles"].clone())
    };
    assert_eq!(
        roles_of_bob().await,
        Some(serde_json::json!(["organization-auditor"]))
    );
    assert!(
        owner
            .exists(&format!(
                "{form} input[value='organization-auditor']:checked"
            ))
            .await
    );

    // The org user-admin may assign no role beyond plain membership: it is
    // offered no checkbox (and no organization-admin), only Add member.
    let ua = driver.browser(true).await;
    sign_in(&ua, &base, "uadmin@example.com").await;
    ua.goto(&at("/organizations/acme/members")).await;
    assert!(ua.exists("#user").await, "{}", ua.source().await);
    assert!(!ua.exists("input[type='checkbox']").await);
    assert!(!ua.source().await.contains("value=\"organization-admin\""));
    let text = ua.text().await;
    assert!(
        text.contains("Auditor") || text.contains("auditor"),
        "{text}"
    );
    ua.screenshot("members-user-admin").await;
    ua.close().await;

    // Member removal.
    owner.goto(&at("/organizations/acme/members")).await;
    owner.click("button[aria-label='Remove bob']").await;
    owner
        .wait_text("Member removed.", std::time::Duration::from_secs(10), false)
        .await;
    assert!(!owner.exists("button[aria-label='Remove bob']").await);
    let members = owner_api.get_ok("/organizations/acme/members").await;
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["username"] != "bob")
    );

    // Provisioner keys: created (shown once, with a copy button), deleted.
    owner.goto(&at("/organizations/acme/provisioners")).await;
    owner.fill("#name", "build-farm").await;
    owner.fill("#tags", "region=eu, gpu=").await;
    owner.click_text("Create key").await;
    let key = owner.value_of("#new-key").await;
    assert!(key.len() >= 32, "the key is shown: `{key}`");
    assert!(owner.exists("button[data-copy='new-key']").await);
    owner.screenshot("provisioner-key-admin").await;
    owner.goto(&at("/organizations/acme/provisioners")).await;
    assert!(!owner.source().await.contains(&key), "shown once");
    let row = owner.text_of("table tbody tr").await;
    assert!(row.contains("build-farm"), "{row}");
    assert!(
        row.contains("gpu, region=eu"),
        "an empty value is no `gpu=`: {row}"
    );
    owner
        .click("button[aria-label='Delete key build-farm']")
        .await;
    owner
        .wait_text("deleted", std::time::Duration::from_secs(10), false)
        .await;
    assert!(!owner.source().await.contains("build-farm</strong>"));

    // Every page at 1280x800 and 390 px: nothing wider than the window.
    let pages = [
        ("workspaces", "/workspaces"),
        ("templates", "/templates"),
        ("template-new", "/templates/new"),
        ("org-settings", "/organizations/acme"),
        ("org-new", "/organizations/new"),
        ("org-members", "/organizations/coder/members"),
        ("org-provisioners", "/organizations/acme/provisioners"),
        ("not-found", "/organizations/no-such-org"),
        ("deployment-users", "/deployment/users"),
        ("deployment-idp-sync", "/deployment/idp-sync"),
        ("deployment-ldap-sync", "/deployment/ldap-sync"),
        ("deployment-policies", "/deployment/policies"),
        ("api-tokens", "/settings/tokens"),
    ];
    for (w, h) in [(1280, 800), (390, 844)] {
        owner.client.set_window_size(w, h).await.unwrap();
        for (name, path) in pages {
            owner.goto(&at(path)).await;
            owner.screenshot(&format!("{name}-{w}px")).await;
            assert!(!overflows(&owner).await, "{path} at {w}px is too wide");
        }
    }
    owner.client.set_window_size(1280, 800).await.unwrap();
    // An API token from the account menu, shown once with a copy button.
    owner.goto(&at("/workspaces")).await;
    owner.click("details.usermenu > summary").await;
    owner.click_text("API tokens").await;
    assert_eq!(owner.path().await, "/settings/tokens");
    owner.fill("#name", "laptop").await;
    owner.click_text("Create token").await;
    assert!(owner.value_of("#new-token").await.len() >= 20);
    assert!(owner.exists("button[data-copy=new-token]").await);
    owner.screenshot("api-token-created").await;
    // The login page, signed out.
    let anon = driver.browser(true).await;
    anon.goto(&at("/login")).await;
    anon.screenshot("login-1280px").await;
    anon.client.set_window_size(390, 844).await.unwrap();
    anon.goto(&at("/login")).await;
    anon.screenshot("login-390px").await;
    assert!(!overflows(&anon).await);
    anon.close().await;
    owner.close().await;
}
