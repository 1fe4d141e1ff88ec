//! The org admin pages in Chromium: an org admin edits IdP sync settings
//! (a mapping row added in place by the script), previews the plan of a
//! login's claims, creates a group and reads the audit log; an org user-admin
//! without scripts meets the grant rule's refusal next to the field. Each
//! step leaves a screenshot in `target/console-screenshots/`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::browser::{Browser, Driver};
use crate::harness::TestServer;
use crate::testkit::wait_for;

const WAIT: Duration = Duration::from_secs(20);

async fn sign_in(b: &Browser, base: &str, username: &str) {
    b.goto(&format!("{base}/login")).await;
    b.fill("#email", &format!("{username}@example.com")).await;
    b.fill("#password", "password123").await;
    b.click_text("Sign in").await;
    assert_eq!(b.path().await, "/workspaces");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_sync_settings_and_preview_in_the_browser() {
    let s = TestServer::start().await;
    let base = s.base.clone();
    let at = |p: &str| format!("{base}{p}");
    let owner = s.owner().await;
    owner.create_org("acme").await;
    owner.create_user("alice").await;
    owner.create_user("uma").await;
    owner
        .add_member("acme", "alice", &["organization-admin"])
        .await;
    owner
        .add_member("acme", "uma", &["organization-user-admin"])
        .await;
    let (status, body) = owner
        .post(
            "/organizations/acme/groups",
            json!({"name": "eng", "display_name": "Engineering"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let driver = Driver::start().await;

    // Alice, with scripts: the sidebar leads to IdP sync.
    let alice = driver.browser(true).await;
    sign_in(&alice, &base, "alice").await;
    alice.goto(&at("/organizations/acme")).await;
    alice.click_text("IdP sync").await;
    assert_eq!(alice.path().await, "/organizations/acme/idp-sync");
    alice.fill("#group_field", "groups").await;
    alice.fill("#group_regex_filter", "^[a-z-]+$").await;
    alice.click("#group_auto_create_missing_groups").await;
    alice.fill("#group_mapping-0-given", "engineers").await;
    alice.fill("#group_mapping-0-gets", "eng").await;
    // More rows, in place: a third row appears without leaving the page.
    let rows = "#group_mapping tr.mapping-row";
    let before = alice
        .client
        .find_all(fantoccini::Locator::Css(rows))
        .await
        .unwrap()
        .len();
    alice.click("button[data-more-rows=group_mapping]").await;
    let after = alice
        .client
        .find_all(fantoccini::Locator::Css(rows))
        .await
        .unwrap()
        .len();
    assert_eq!(after, before + 1);
    assert_eq!(alice.path().await, "/organizations/acme/idp-sync");
    let last = format!("#group_mapping-{before}-given");
    alice.fill(&last, "platform").await;
    alice
        .fill(&format!("#group_mapping-{before}-gets"), "eng")
        .await;
    alice.screenshot("idp-sync-edit").await;
    alice
        .click("form[action='/organizations/acme/idp-sync/groups'] button.btn-primary")
        .await;
    alice
        .wait_text("Group sync settings saved.", WAIT, false)
        .await;
    let saved = owner
        .get_ok("/organizations/acme/settings/idpsync/groups")
        .await;
    assert_eq!(
        saved["mapping"],
        json!({"engineers": ["eng"], "platform": ["eng"]})
    );
    assert_eq!(saved["auto_create_missing_groups"], true);
    assert_eq!(alice.value_of("#group_field").await, "groups");

    // Preview: the plan of this org for the claims, nothing written.
    alice
        .fill(
            "#claims",
            r#"{"groups": ["engineers", "data-team", "Not Valid"]}"#,
        )
        .await;
    alice.click_text("Preview").await;
    let text = alice
        .wait_text("What a login with these claims would do", WAIT, false)
        .await;
    assert!(
        text.contains("Groups in acme") && text.contains("data-team"),
        "{text}"
    );
    assert!(text.contains("new group"), "{text}");
    alice.screenshot("idp-sync-preview").await;
    let groups = owner.get_ok("/organizations/acme/groups").await;
    assert!(!groups.to_string().contains("data-team"), "{groups}");

    // The groups and audit pages.
    alice.goto(&at("/organizations/acme/groups")).await;
    let text = alice.text().await;
    assert!(text.contains("eng") && text.contains("Everyone"), "{text}");
    alice.fill("#name", "design").await;
    alice.click_text("Create group").await;
    assert_eq!(alice.path().await, "/organizations/acme/groups/design");
    alice.screenshot("group-detail").await;
    alice.goto(&at("/organizations/acme/groups")).await;
    alice.screenshot("groups").await;
    alice.goto(&at("/organizations/acme/audit")).await;
    let text = alice.text().await;
    assert!(
        text.contains("design") && text.contains("idpsync"),
        "{text}"
    );
    alice.screenshot("org-audit").await;
    alice.click_text("Audit").await;
    assert_eq!(alice.path().await, "/audit");
    let text = alice.text().await;
    assert!(
        text.contains("Audit log") && text.contains("design"),
        "{text}"
    );
    alice.screenshot("audit").await;
    alice.client.set_window_size(390, 844).await.unwrap();
    alice.goto(&at("/organizations/acme/idp-sync")).await;
    alice.screenshot("idp-sync-390px").await;
    alice
        .client
        .execute(
            "document.getElementById('group_mapping').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    alice.screenshot("idp-sync-mapping-390px").await;
    alice.goto(&at("/organizations/acme/audit")).await;
    alice.screenshot("org-audit-390px").await;
    alice.close().await;

    // Uma, without scripts: a mapping to a role she may not assign is
    // refused, next to the row; nothing saved. More rows posts the form back.
    let uma = driver.browser(false).await;
    sign_in(&uma, &base, "uma").await;
    uma.goto(&at("/organizations/acme/idp-sync")).await;
    uma.click("button[data-more-rows=role_mapping]").await;
    // The form comes back (no script adds rows here) with three more.
    wait_for("more rows without scripts", WAIT, async || {
        if uma.exists("#role_mapping-4-given").await {
            Ok(())
        } else {
            Err("still two rows")
        }
    })
    .await;
    uma.fill("#role_mapping-0-given", "admins").await;
    uma.fill("#role_mapping-0-gets", "organization-admin").await;
    uma.click("form[action='/organizations/acme/idp-sync/roles'] button.btn-primary")
        .await;
    uma.wait_text("you may not assign", WAIT, false).await;
    let err = uma.text_of("#role_mapping-0-err").await;
    assert!(err.contains("you may not assign"), "{err}");
    uma.screenshot("idp-sync-grant-rule").await;
    let roles = owner
        .get_ok("/organizations/acme/settings/idpsync/roles")
        .await;
    assert_eq!(roles["mapping"], json!({}));
    uma.close().await;
    drop(driver);
    s.stop().await;
}
