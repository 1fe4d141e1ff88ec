//! SPEC §8 through the console alone (SPEC §9), in a real browser: the owner
//! sets up and signs in, creates data-platform from the sidebar's dropdown,
//! creates a provisioner key (shown once), a daemon started with it shows
//! online, a template is created with the Organization dropdown and imported;
//! a member is added on the Members page, signs in, sees data-platform's
//! template (not before being a member), creates a workspace and sees its
//! build succeed, live. Also: the same 404 page for an org one may not read
//! as for an unknown one; a page used with JavaScript off; a narrow screen.

use std::time::Duration;

use orgsync::provisioner::daemon::{DaemonTiming, SourceError, serve};
use orgsync::provisioner::executor::Executor;
use orgsync::provisioner::http::HttpSource;
use reqwest::StatusCode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::browser::Driver;
use crate::harness::TestServer;

const WAIT: Duration = Duration::from_secs(30);

/// A provisioner daemon of the key's org (HTTP protocol, echo executor),
/// running until `stop`.
fn spawn_daemon(
    url: String,
    key: String,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Result<(), SourceError>> {
    tokio::spawn(async move {
        let mut source = HttpSource::register(&url, &key, "data-cluster-1", &["echo".to_owned()])
            .await
            .unwrap();
        source.wait = Duration::from_millis(500);
        let timing = DaemonTiming {
            heartbeat: Duration::from_millis(500),
            log_flush: Duration::from_millis(50),
        };
        serve(&source, &[Executor::Echo], timing, &stop).await
    })
}

/// A template directory packed as a `.tar` file on disk (for the upload).
fn template_tar(dir: &std::path::Path) -> std::path::PathBuf {
    let src = dir.join("python-dev");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("main.tf"),
        "# echo template\nvariable \"region\" {\n  type    = string\n  default = \"us\"\n}\n",
    )
    .unwrap();
    std::fs::write(src.join("echo.json"), r#"{"lines": 3, "delay_ms": 1500}"#).unwrap();
    let tar = orgsync::provisioner::archive::pack_dir(&src).unwrap();
    let path = dir.join("python-dev.tar");
    std::fs::write(&path, tar).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walkthrough_through_the_console() {
    let s = TestServer::start().await;
    let base = s.base.clone();
    let at = |p: &str| format!("{base}{p}");
    let driver = Driver::start().await;
    let owner = driver.browser(true).await;

    // First start: `/` leads to the setup of the first user.
    owner.goto(&at("/")).await;
    assert_eq!(owner.path().await, "/setup");
    owner.screenshot("setup").await;
    owner.fill("#username", "admin").await;
    owner.fill("#email", "admin@example.com").await;
    owner.fill("#password", "correct-horse-battery").await;
    owner.click_text("Create account").await;
    assert_eq!(owner.path().await, "/workspaces");
    let text = owner.text().await;
    assert!(text.contains("You have no workspace yet"), "{text}");
    assert!(
        text.contains("Admin settings"),
        "the owner administers: {text}"
    );
    // The setup is closed now.
    owner.goto(&at("/setup")).await;
    assert_eq!(owner.path().await, "/login");

    // Sign out (the user menu's form), then in again with a wrong, then the
    // right password.
    owner.goto(&at("/workspaces")).await;
    owner.click(".usermenu summary").await;
    owner.click_text("Sign out").await;
    assert_eq!(owner.path().await, "/login");
    owner.goto(&at("/organizations")).await;
    assert_eq!(owner.path().await, "/login?redirect=%2Forganizations");
    owner.fill("#email", "admin@example.com").await;
    owner.fill("#password", "wrong-password").await;
    owner.click_text("Sign in").await;
    assert!(owner.text().await.contains("Incorrect email or password"));
    owner.screenshot("login").await;
    owner.fill("#password", "correct-horse-battery").await;
    owner.click_text("Sign in").await;
    // Back where the login was asked for: the first org the owner manages.
    assert_eq!(owner.path().await, "/organizations/coder");

    // Create Organization from the sidebar's dropdown.
    owner.click(".orgswitch summary").await;
    owner.click_text("+ Create Organization").await;
    assert_eq!(owner.path().await, "/organizations/new");
    owner.fill("#name", "Data Platform").await;
    owner.click_text("Save").await;
    let text = owner.text().await;
    assert!(
        text.contains("invalid `name`"),
        "a bad name is refused: {text}"
    );
    assert!(
        owner.exists(".field.invalid #name").await,
        "next to its field"
    );
    owner.fill("#name", "data-platform").await;
    owner.fill("#display_name", "Data Platform").await;
    owner.fill("#description", "Pipelines and warehouses").await;
    owner.click_text("Save").await;
    assert_eq!(owner.path().await, "/organizations/data-platform");
    assert!(
        owner
            .text()
            .await
            .contains("Organization `data-platform` created.")
    );
    owner.click(".orgswitch summary").await;
    owner.screenshot("organization-settings").await;

    // Provisioners: the empty state says what to run; a key is shown once.
    owner.click_text("Provisioners").await;
    assert_eq!(
        owner.path().await,
        "/organizations/data-platform/provisioners"
    );
    let text = owner.text().await;
    assert!(
        text.contains("No provisioner yet: run orgsync provisionerd start --org data-platform"),
        "{text}"
    );
    owner.fill("#name", "data-cluster-key").await;
    owner.click_text("Create key").await;
    let key = owner.value_of("#new-key").await;
    assert!(key.len() >= 32, "the key is shown: `{key}`");
    assert!(owner.text().await.contains("only time it is shown"));
    owner.screenshot("provisioner-key").await;
    owner
        .goto(&at("/organizations/data-platform/provisioners"))
        .await;
    assert!(
        !owner.source().await.contains(&key),
        "the key is never shown again"
    );
    assert!(owner.text().await.contains("data-cluster-key"));

    // A daemon started with the key shows online.
    let stop = CancellationToken::new();
    let daemon = spawn_daemon(base.clone(), key.clone(), stop.clone());
    owner.wait_text("data-cluster-1", WAIT, true).await;
    let row = owner.text_of("table tbody tr").await;
    assert!(row.contains("idle") || row.contains("busy"), "{row}");
    assert!(row.contains("echo"), "{row}");
    owner.screenshot("provisioners").await;

    // A template, with the Organization dropdown; its import runs on the
    // org's daemon and the page follows its log.
    let dir = tempfile::tempdir().unwrap();
    let tar = template_tar(dir.path());
    owner.goto(&at("/templates")).await;
    owner.click_text("New template").await;
    owner.select("#organization", "data-platform").await;
    owner.fill("#name", "python-dev").await;
    owner.fill("#display_name", "Python Dev").await;
    owner.select("#provisioner", "echo").await;
    owner
        .client
        .find(fantoccini::Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(tar.to_str().unwrap())
        .await
        .unwrap();
    owner.screenshot("template-new").await;
    owner.click_text("Upload and import").await;
    assert!(
        owner
            .path()
            .await
            .starts_with("/templates/new/data-platform/")
    );
    owner.wait_text("Create template", WAIT, false).await;
    let log = owner.text_of("#job-log").await;
    assert!(log.contains("echo: template imported"), "{log}");
    owner.click_text("Create template").await;
    assert_eq!(owner.path().await, "/templates/data-platform/python-dev");
    let text = owner.text().await;
    assert!(
        text.contains("Python Dev") && text.contains("Everyone"),
        "{text}"
    );
    owner.goto(&at("/templates")).await;
    let row = owner.text_of("table tbody tr").await;
    assert!(
        row.contains("Python Dev") && row.contains("Data Platform"),
        "{row}"
    );
    owner.screenshot("templates").await;

    // A user (made through the API: the users pages are not part of this
    // suite yet), a member of the default org only.
    let api = {
        let mut c = s.client();
        let (status, body) = c
            .post(
                "/users/login",
                json!({"email": "admin@example.com", "password": "correct-horse-battery"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        c.token = Some(body["session_token"].as_str().unwrap().to_owned());
        c
    };
    let (status, body) = api
        .post(
            "/users",
            json!({"username": "alice", "email": "alice@example.com", "password": "alice-password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let alice = driver.browser(true).await;
    alice.goto(&at("/login")).await;
    alice.fill("#email", "alice@example.com").await;
    alice.fill("#password", "alice-password-1").await;
    alice.click_text("Sign in").await;
    assert_eq!(alice.path().await, "/workspaces");
    let text = alice.text().await;
    assert!(
        !text.contains("Admin settings"),
        "a member administers nothing: {text}"
    );
    // Not a member of data-platform: not its template, and its pages are the
    // very 404 page of an org that does not exist.
    alice.goto(&at("/templates")).await;
    let text = alice.text().await;
    assert!(!text.contains("Python Dev"), "{text}");
    alice.goto(&at("/organizations/data-platform")).await;
    let forbidden = alice.source().await;
    alice.goto(&at("/organizations/no-such-org")).await;
    let unknown = alice.source().await;
    assert!(unknown.contains("Page not found"), "{unknown}");
    assert_eq!(forbidden, unknown, "the same 404 page");
    alice
        .goto(&at("/organizations/data-platform/provisioners"))
        .await;
    assert_eq!(alice.source().await, unknown);
    alice.goto(&at("/templates/data-platform/python-dev")).await;
    assert!(alice.text().await.contains("Page not found"));

    // The owner adds alice on the Members page.
    owner
        .goto(&at("/organizations/data-platform/members"))
        .await;
    owner.fill("#user", "nobody-here").await;
    owner.click_text("Add member").await;
    assert!(
        owner.exists(".field.invalid #user").await,
        "{}",
        owner.text().await
    );
    owner.fill("#user", "alice").await;
    owner.click_text("Add member").await;
    let text = owner.text().await;
    assert!(text.contains("`alice` is now a member."), "{text}");
    assert!(text.contains("alice@example.com"), "{text}");
    owner.screenshot("members").await;

    // Alice sees the template now, and creates a workspace from it.
    alice.goto(&at("/templates")).await;
    let row = alice.text_of("table tbody tr").await;
    assert!(
        row.contains("Python Dev") && row.contains("Data Platform"),
        "{row}"
    );
    alice.click_text("Create workspace").await;
    assert_eq!(
        alice.path().await,
        "/workspaces/new?template=data-platform/python-dev"
    );
    alice.fill("#name", "alice-ws").await;
    alice.fill("#parameters", "region=eu").await;
    alice.click_text("Create workspace").await;
    assert_eq!(alice.path().await, "/workspaces/alice/alice-ws");
    // The build runs (the echo template waits 1.5 s): the page follows it
    // by script and reloads at the end.
    alice.screenshot("workspace-building").await;
    alice.wait_text("start · succeeded", WAIT, false).await;
    let log = alice.text_of("#job-log").await;
    assert!(log.contains("echo: start workspace `alice-ws`"), "{log}");
    assert!(log.contains("echo: parameter region = eu"), "{log}");
    alice.screenshot("workspace").await;
    alice.goto(&at("/workspaces")).await;
    assert!(alice.text_of("table").await.contains("alice-ws"));

    // The owner sees it among others' workspaces.
    owner.goto(&at("/workspaces")).await;
    let text = owner.text().await;
    assert!(
        text.contains("Other users' workspaces") && text.contains("alice-ws"),
        "{text}"
    );

    // Narrow screens: the org pages at 390 px.
    owner.client.set_window_size(390, 844).await.unwrap();
    owner
        .goto(&at("/organizations/data-platform/members"))
        .await;
    owner.screenshot("members-390px").await;
    owner.client.set_window_size(1280, 800).await.unwrap();

    // Without JavaScript: a workspace is created and its running build is
    // followed by the page's own refresh.
    let nojs = driver.browser(false).await;
    nojs.goto(&at("/login")).await;
    nojs.fill("#email", "alice@example.com").await;
    nojs.fill("#password", "alice-password-1").await;
    nojs.click_text("Sign in").await;
    nojs.goto(&at("/workspaces/new?template=data-platform/python-dev"))
        .await;
    nojs.fill("#name", "no-script-ws").await;
    nojs.click_text("Create workspace").await;
    assert_eq!(nojs.path().await, "/workspaces/alice/no-script-ws");
    nojs.wait_text("start · succeeded", WAIT, false).await;
    // And stopped, with a plain form post.
    nojs.click_text("Stop").await;
    assert!(nojs.text().await.contains("Stop build started."));
    nojs.wait_text("stop · succeeded", WAIT, false).await;

    alice.close().await;
    nojs.close().await;
    owner.close().await;
    stop.cancel();
    assert_eq!(daemon.await.unwrap(), Ok(()));
}
