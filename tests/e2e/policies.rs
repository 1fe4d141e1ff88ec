//! Policy files as a workflow: the server refuses invalid policies, reloads
//! valid ones (API and file change), keeps the old set on a bad reload; the
//! offline `orgsync policy` commands.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use orgsync::app::App;
use orgsync::config::{ServerArgs, ServerConfig};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::TestServer;
use crate::testkit::wait_for;

fn copy_policies(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    copy_dir(&from, to);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

const BROKEN: &str = "// broken on purpose\n@id(\"broken\")\npermit (principal, action == Action::\"organization:read\", resource)\nwhen { resource.no_such_attribute };\n";

#[tokio::test]
async fn server_refuses_to_start_on_invalid_policies_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("policies");
    copy_policies(&pol);
    std::fs::write(pol.join("zz-broken.cedar"), BROKEN).unwrap();
    let args = ServerArgs {
        data_dir: Some(dir.path().join("data")),
        policy_dir: Some(pol.clone()),
        ..Default::default()
    };
    let err = App::init(ServerConfig::resolve(&args).unwrap())
        .await
        .err()
        .expect("must refuse");
    let msg = format!("{err:#}");
    assert!(msg.contains("zz-broken.cedar:4:"), "{msg}");
    assert!(msg.contains("broken"), "{msg}");
    // Nothing was created: the database is opened only after the policies load.
    assert!(!dir.path().join("data").exists());

    // The binary prints the diagnostic and exits non-zero.
    let out = Command::new(env!("CARGO_BIN_EXE_orgsync"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data2"))
        .arg("--policy-dir")
        .arg(&pol)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("zz-broken.cedar:4:"), "{stderr}");
}

#[tokio::test]
async fn reload_by_api_and_by_file_change_keeps_old_set_when_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("policies");
    copy_policies(&pol);
    let p2 = pol.clone();
    let s = TestServer::start_with(move |a| a.policy_dir = Some(p2)).await;
    let owner = s.owner().await;
    let (alice, _) = owner.create_user("alice").await;
    let before = owner.get_ok("/policies").await;
    let hash0 = before["hash"].as_str().unwrap().to_owned();
    assert!(
        before["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "guardrail.suspended")
    );

    // An invalid file: the API reload is rejected with file:line, and so is
    // the file watch's; the old set stays.
    let attempts = s.state.authz.reload_attempts();
    std::fs::write(pol.join("zz-broken.cedar"), BROKEN).unwrap();
    let (status, body) = owner.post("/policies/reload", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["validations"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("zz-broken.cedar:4:"),
        "{body}"
    );
    // The API's reload and the watch's (which sees the new file once) ended.
    wait_for(
        "the policy watch to try the broken file",
        Duration::from_secs(10),
        async || s.state.authz.reload_attempts() >= attempts + 2,
    )
    .await;
    let now = owner.get_ok("/policies").await;
    assert_eq!(now["hash"], hash0.as_str());
    let (status, body) = alice.get("/organizations/coder").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A valid change that forbids members reading orgs takes effect by file watch.
    std::fs::write(
        pol.join("zz-broken.cedar"),
        "@id(\"test.no-org-read\")\nforbid (principal, action == Action::\"organization:read\", resource)\nunless { principal in Role::\"owner\" };\n",
    )
    .unwrap();
    let changed = wait_for(
        "the policy watch to load the valid change",
        Duration::from_secs(10),
        async || {
            let now = owner.get_ok("/policies").await;
            if now["hash"] != hash0.as_str() {
                Ok(now)
            } else {
                Err(now)
            }
        },
    )
    .await;
    assert!(
        changed["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "test.no-org-read"),
        "{changed}"
    );
    let (status, body) = alice.get("/organizations/coder").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Only owners reload.
    let (status, body) = alice.post("/policies/reload", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = owner.post("/policies/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(owner.get_ok("/policies").await["hash"], changed["hash"]);
}

#[test]
fn policy_cli_validate_test_fmt() {
    let bin = env!("CARGO_BIN_EXE_orgsync");
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("policies");
    copy_policies(&pol);
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .arg("--policy-dir")
            .arg(&pol)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["policy", "validate"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = run(&["policy", "test"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(" passed, 0 failed"), "{out}");

    // A failing case: exit 3 and the case named.
    std::fs::write(
        pol.join("tests/zz-fail.json"),
        json!({"entities": [], "cases": [{"name": "anonymous reads org", "principal": {"type": "User", "id": "nobody"},
               "action": "organization:create", "resource": {"type": "Site", "id": "site"}, "decision": "allow"}]})
        .to_string(),
    )
    .unwrap();
    let (code, out, err) = run(&["policy", "test"]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(err.contains("anonymous reads org"), "{err}");
    std::fs::remove_file(pol.join("tests/zz-fail.json")).unwrap();

    // A case in orgsync terms: a deny must say why; the file and case are named.
    std::fs::write(
        pol.join("tests/zz-fail.json"),
        json!({"world": {"organizations": [{"id": "o"}], "users": [{"id": "u", "memberships": {"o": []}}]},
               "cases": [{"name": "deny without a why", "principal": "u", "action": "organization:update",
                          "resource": {"organization": "o"}, "decision": "deny", "reasons": []}]})
        .to_string(),
    )
    .unwrap();
    let (code, _, err) = run(&["policy", "test"]);
    assert_eq!(code, Some(3));
    assert!(
        err.contains("FAIL tests/zz-fail.json / deny without a why: a deny case names"),
        "{err}"
    );
    std::fs::remove_file(pol.join("tests/zz-fail.json")).unwrap();

    // A directory whose tests are all Cedar entities (the earlier format) still runs.
    let tests = pol.join("tests");
    std::fs::rename(&tests, dir.path().join("tests-kept")).unwrap();
    std::fs::create_dir(&tests).unwrap();
    std::fs::write(
        tests.join("cedar.json"),
        json!({"entities": [
                 {"uid": {"type": "Organization", "id": "o"}, "attrs": {"key": "o", "is_default": false,
                  "organization": {"__entity": {"type": "Organization", "id": "o"}}}, "parents": []},
                 {"uid": {"type": "User", "id": "u"}, "attrs": {"key": "u", "status": "active"},
                  "parents": [{"type": "Organization", "id": "o"}], "tags": {"o": []}}],
               "cases": [{"name": "member reads its org", "principal": {"type": "User", "id": "u"},
                          "action": "organization:read", "resource": {"type": "Organization", "id": "o"},
                          "decision": "allow", "reasons": ["org.member"]},
                         {"name": "member does not update it", "principal": {"type": "User", "id": "u"},
                          "action": "organization:update", "resource": {"type": "Organization", "id": "o"},
                          "decision": "deny"}]})
        .to_string(),
    )
    .unwrap();
    let (code, out, err) = run(&["policy", "test"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("2 passed, 0 failed"), "{out}");
    std::fs::remove_dir_all(&tests).unwrap();
    std::fs::rename(dir.path().join("tests-kept"), &tests).unwrap();

    // fmt --check flags an unformatted file, fmt fixes it.
    std::fs::write(pol.join("zz-ugly.cedar"), "@id(\"ugly\")   permit(principal,action==Action::\"organization:read\",resource) when {principal in resource};").unwrap();
    let ugly = std::fs::read_to_string(pol.join("zz-ugly.cedar")).unwrap();
    let (code, out, err) = run(&["policy", "fmt", "--check"]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(err.contains("zz-ugly.cedar"), "{err}");
    let (code, out, err) = run(&["policy", "fmt"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let formatted = std::fs::read_to_string(pol.join("zz-ugly.cedar")).unwrap();
    assert_ne!(formatted, ugly, "fmt rewrote the file");
    let (code, out, err) = run(&["policy", "fmt", "--check"]);
    assert_eq!(code, Some(0), "{out}{err}");

    // Invalid policies: exit 3 with file and line.
    std::fs::write(pol.join("zz-broken.cedar"), BROKEN).unwrap();
    let (code, out, err) = run(&["policy", "validate"]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(err.contains("zz-broken.cedar:4:"), "{err}");
}

#[test]
fn server_help_explains_every_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_orgsync"))
        .args(["server", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    for flag in [
        "--listen",
        "--data-dir",
        "--database-url",
        "--access-url",
        "--policy-dir",
        "--config",
        "--provisioner-daemons",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    for env in [
        "ORGSYNC_LISTEN",
        "ORGSYNC_DATABASE_URL",
        "ORGSYNC_POLICY_DIR",
    ] {
        assert!(help.contains(env), "{env} missing from:\n{help}");
    }
}
