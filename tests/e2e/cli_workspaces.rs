//! The workspace, template and provisioner commands of the CLI against a real
//! server whose built-in daemon runs the jobs of the default org `coder`:
//! `create|list|show|start|stop|restart|delete [--orphan]`, `templates
//! push|delete|versions list`, `provisioner daemons list`, `provisioner jobs
//! list|cancel`; and the workspaces that cannot get stuck (parameters checked
//! against the template's variables before any build, a failed start that
//! can be started again or deleted).
//!
//! Most tests push `examples/templates/hello` (Terraform with `terraform_data`
//! only) and build it with the real `terraform`; the others use the `echo`
//! executor.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::{Cli, row};
use crate::harness::{Client, TestServer};

/// The example template of the repository.
fn hello_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/templates/hello")
}

/// The real executor's binary must be there: this suite says so loudly
/// rather than passing without it.
fn require_terraform() {
    let bin = std::env::var("ORGSYNC_TERRAFORM_BINARY").unwrap_or_else(|_| "terraform".into());
    let found = std::process::Command::new(&bin)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "terraform is required for this test (install it on PATH or set ORGSYNC_TERRAFORM_BINARY)"
    );
}

/// A server with one built-in daemon (it serves `coder`), its owner's API
/// client and CLI.
async fn server() -> (TestServer, Client, Cli) {
    let s = TestServer::start_with(|a| a.provisioner_daemons = Some(1)).await;
    let owner = s.owner().await;
    let cli = as_user(&s, &owner);
    (s, owner, cli)
}

/// The CLI as the user of an API client (its token in the environment).
fn as_user(s: &TestServer, c: &Client) -> Cli {
    Cli::new(s)
        .with_env("ORGSYNC_URL", &s.base)
        .with_env("ORGSYNC_SESSION_TOKEN", c.token.as_deref().unwrap())
}

/// Writes a template directory.
fn template_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

async fn push(cli: &Cli, name: &str, dir: &Path, provisioner: &str) -> Value {
    let dir = dir.to_str().unwrap();
    cli.json(&[
        "templates",
        "push",
        name,
        "--org",
        "coder",
        "-d",
        dir,
        "--provisioner",
        provisioner,
    ])
    .await
}

/// The builds of a workspace, newest first.
async fn builds(c: &Client, ws: &Value) -> Vec<Value> {
    c.get_ok(&format!(
        "/workspaces/{}/builds",
        ws["id"].as_str().unwrap()
    ))
    .await
    .as_array()
    .unwrap()
    .clone()
}

async fn workspace_count(c: &Client) -> u64 {
    c.get_ok("/workspaces").await["count"].as_u64().unwrap()
}

async fn job_count(c: &Client, org: &str) -> usize {
    c.get_ok(&format!("/organizations/{org}/provisionerjobs"))
        .await
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn workspace_lifecycle_with_the_hello_template() {
    require_terraform();
    let (s, owner, admin) = server().await;
    let t = push(&admin, "hello", &hello_dir(), "terraform").await;
    assert_eq!(t["name"], "hello");
    let (alice_api, _) = owner.create_user("alice").await;
    let alice = as_user(&s, &alice_api);

    let created = alice
        .json(&[
            "create",
            "dev",
            "--template",
            "hello",
            "--parameter",
            "greeting=hi",
        ])
        .await;
    assert_eq!(created["latest_build"]["status"], "succeeded", "{created}");

    // show: fields for people, the API's JSON for scripts.
    let shown = alice.ok(&["show", "dev"]).await;
    for want in [
        "name:",
        "dev",
        "owner:",
        "alice",
        "organization:",
        "coder",
        "template:",
        "hello",
        "version:",
        "latest build:",
        "start succeeded",
        "created:",
    ] {
        assert!(shown.contains(want), "`{want}` in\n{shown}");
    }
    let ws = alice.json(&["show", "dev"]).await;
    assert_eq!(ws["owner_name"], "alice");
    assert_eq!(ws["organization_name"], "coder");
    assert_eq!(ws["template_name"], "hello");
    assert_eq!(
        ws["latest_build"]["template_version_name"],
        alice
            .json(&["templates", "versions", "list", "hello", "--org", "coder"])
            .await[0]["name"],
    );

    // list: a table with owner and organization, JSON.
    let table = alice.ok(&["list"]).await;
    assert!(table.starts_with("NAME"), "{table}");
    for col in ["OWNER", "ORGANIZATION", "TEMPLATE", "STATUS"] {
        assert!(table.lines().next().unwrap().contains(col), "{table}");
    }
    let line = row(&table, "dev");
    for want in ["alice", "coder", "hello", "start", "succeeded"] {
        assert!(line.contains(want), "{line}");
    }
    let list = alice.json(&["list"]).await;
    assert_eq!(list["count"], 1);

    // stop, start, restart: each waits for its build and streams its logs.
    let out = alice.run(&["stop", "dev"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("workspace `dev` stopped"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("Apply complete!"), "{}", out.stderr);
    let ws = alice.json(&["show", "dev"]).await;
    assert_eq!(ws["latest_build"]["transition"], "stop");
    let out = alice.run(&["start", "dev"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("workspace `dev` is running"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("hi from a small workspace"),
        "the start build reuses the last parameters: {}",
        out.stderr
    );
    let restarted = alice.json(&["restart", "dev"]).await;
    assert_eq!(restarted["latest_build"]["transition"], "start");
    assert_eq!(restarted["latest_build"]["status"], "succeeded");
    let transitions: Vec<String> = builds(&alice_api, &ws)
        .await
        .iter()
        .map(|b| b["transition"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        transitions,
        ["start", "stop", "start", "stop", "start"],
        "restart is a stop then a start"
    );

    // Errors: an unknown workspace (exit 1), a malformed name (exit 2).
    let err = alice.fails(1, &["show", "nope"]).await;
    assert!(err.contains("you have no workspace `nope`"), "{err}");
    alice.fails(2, &["show", "a/b/c"]).await;
    alice
        .fails(2, &["start", "dev", "--parameter", "novalue"])
        .await;

    // delete destroys and removes it.
    let out = alice.run(&["delete", "dev"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("Destroy complete!"), "{}", out.stderr);
    assert_eq!(alice.json(&["list"]).await["count"], 0);
}

#[tokio::test]
async fn parameters_are_checked_against_the_template_variables_before_any_build() {
    let (s, owner, admin) = server().await;
    let dir = template_dir(&[(
        "main.tf",
        "variable \"size\" {\n  type = string\n}\nvariable \"region\" {\n  default = \"us\"\n}\n",
    )]);
    push(&admin, "sized", dir.path(), "echo").await;
    let versions = admin
        .json(&["templates", "versions", "list", "sized", "--org", "coder"])
        .await;
    assert_eq!(
        versions[0]["variables"],
        json!([{"name": "region", "required": false}, {"name": "size", "required": true}])
    );
    let table = admin
        .ok(&["templates", "versions", "list", "sized", "--org", "coder"])
        .await;
    assert!(table.contains("region, size*"), "{table}");
    let (alice_api, _) = owner.create_user("alice").await;
    let alice = as_user(&s, &alice_api);
    let jobs_before = job_count(&owner, "coder").await;

    // Unknown and missing: refused with their names, nothing built.
    let err = alice
        .fails(
            1,
            &[
                "create",
                "dev",
                "--template",
                "sized",
                "--parameter",
                "colour=red",
            ],
        )
        .await;
    assert!(err.contains("unknown parameter `colour`"), "{err}");
    assert!(err.contains("missing required parameter `size`"), "{err}");
    let templates = owner.get_ok("/templates").await;
    let t = &templates[0];
    let (status, body) = alice_api
        .post(
            "/organizations/coder/members/me/workspaces",
            json!({"template_id": t["id"], "name": "dev",
                   "rich_parameter_values": [{"name": "colour", "value": "red"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> = body["validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "rich_parameter_values[0].name",
            "rich_parameter_values.size"
        ],
        "{body}"
    );
    assert_eq!(workspace_count(&alice_api).await, 0);
    assert_eq!(job_count(&owner, "coder").await, jobs_before, "no build");

    // Given properly: built.
    alice
        .ok(&[
            "create",
            "dev",
            "--template",
            "sized",
            "--parameter",
            "size=large",
        ])
        .await;
    let ws = alice.json(&["show", "dev"]).await;
    // A new build with parameters is checked the same way.
    let err = alice
        .fails(1, &["start", "dev", "--parameter", "bogus=1"])
        .await;
    assert!(err.contains("unknown parameter `bogus`"), "{err}");
    assert!(err.contains("missing required parameter `size`"), "{err}");
    let (status, body) = alice_api
        .post(
            &format!("/workspaces/{}/builds", ws["id"].as_str().unwrap()),
            json!({"transition": "start", "rich_parameter_values": [{"name": "region", "value": "eu"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["validations"][0]["field"], "rich_parameter_values.size",
        "{body}"
    );
    assert_eq!(builds(&alice_api, &ws).await.len(), 1, "no build");
    alice
        .ok(&[
            "start",
            "dev",
            "--parameter",
            "size=small",
            "--parameter",
            "region=eu",
        ])
        .await;
    assert_eq!(builds(&alice_api, &ws).await.len(), 2);
}

/// A template whose start build fails when `fail` is `yes`: a precondition
/// of a `terraform_data` resource, checked at apply.
const FAILING_TF: &str = r#"
variable "fail" {
  type    = string
  default = "no"
}
resource "terraform_data" "checked" {
  input = var.fail
  lifecycle {
    precondition {
      condition     = var.fail == "no"
      error_message = "asked to fail"
    }
  }
}
"#;

#[tokio::test]
async fn a_failed_start_can_be_started_again_or_deleted() {
    require_terraform();
    let (s, owner, admin) = server().await;
    let dir = template_dir(&[("main.tf", FAILING_TF)]);
    push(&admin, "fragile", dir.path(), "terraform").await;
    let (alice_api, _) = owner.create_user("alice").await;
    let alice = as_user(&s, &alice_api);

    // The start build fails; the CLI says so (exit 1); the workspace stays.
    let create = ["create", "--template", "fragile", "--parameter", "fail=yes"];
    let err = alice
        .fails(1, &[&create[..1], &["one"], &create[1..]].concat())
        .await;
    assert!(err.contains("the build failed"), "{err}");
    assert!(err.contains("asked to fail"), "{err}");
    let ws = alice.json(&["show", "one"]).await;
    assert_eq!(ws["latest_build"]["status"], "failed");
    // Started again with other parameters: it builds.
    alice.ok(&["start", "one", "--parameter", "fail=no"]).await;
    let ws = alice.json(&["show", "one"]).await;
    assert_eq!(ws["latest_build"]["status"], "succeeded");

    // Another fails, and is deleted: no state, so nothing to destroy, and
    // the parameters it failed with do not matter.
    alice
        .fails(1, &[&create[..1], &["two"], &create[1..]].concat())
        .await;
    let out = alice.run(&["delete", "two"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("nothing to destroy"), "{}", out.stderr);
    let names: Vec<String> = alice.json(&["list"]).await["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["one"]);
}

#[tokio::test]
async fn builds_drop_inherited_parameters_the_new_version_does_not_declare() {
    let (s, owner, admin) = server().await;
    let v1 = template_dir(&[(
        "main.tf",
        "variable \"colour\" {\n  default = \"blue\"\n}\n",
    )]);
    push(&admin, "paint", v1.path(), "echo").await;
    let (alice_api, _) = owner.create_user("alice").await;
    let alice = as_user(&s, &alice_api);
    alice
        .ok(&[
            "create",
            "dev",
            "--template",
            "paint",
            "--parameter",
            "colour=red",
        ])
        .await;
    // Version 2 no longer declares `colour`: the next start (active version,
    // parameters of the last build) leaves it out instead of failing on it.
    let v2 = template_dir(&[("main.tf", "# no variables any more\n")]);
    push(&admin, "paint", v2.path(), "echo").await;
    let out = alice.run(&["start", "dev"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("colour"), "{}", out.stderr);
    let builds = builds(&alice_api, &alice.json(&["show", "dev"]).await).await;
    assert_eq!(builds.len(), 2);
    assert_eq!(builds[0]["status"], "succeeded");
}

#[tokio::test]
async fn orphan_delete_is_for_admins_and_owner_names_reach_other_users_workspaces() {
    let (s, owner, admin) = server().await;
    let dir = template_dir(&[("main.tf", "# plain\n")]);
    push(&admin, "plain", dir.path(), "echo").await;
    let (alice_api, _) = owner.create_user("alice").await;
    let (bob_api, _) = owner.create_user("bob").await;
    let (carol_api, _) = owner.create_user("carol").await;
    let (status, body) = owner
        .put(
            "/organizations/coder/members/carol/roles",
            json!({"roles": ["organization-admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let alice = as_user(&s, &alice_api);
    let bob = as_user(&s, &bob_api);
    let carol = as_user(&s, &carol_api);
    alice.ok(&["create", "dev", "--template", "plain"]).await;
    let ws = alice.json(&["show", "dev"]).await;

    // The owner of the workspace, a plain member, may delete it but not
    // orphan it; another member cannot see it at all.
    let err = alice.fails(1, &["delete", "dev", "--orphan"]).await;
    assert!(
        err.contains("cannot orphan-delete workspace `dev`"),
        "{err}"
    );
    let err = bob.fails(1, &["delete", "alice/dev", "--orphan"]).await;
    assert!(err.contains("no workspace `alice/dev`"), "{err}");
    let (status, body) = alice_api
        .post(
            &format!("/workspaces/{}/builds", ws["id"].as_str().unwrap()),
            json!({"transition": "delete", "orphan": true}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(workspace_count(&owner).await, 1);

    // An org admin lists everyone's workspaces, names alice's as OWNER/NAME,
    // and is told so when it names it as its own.
    let all = carol.ok(&["list", "--all"]).await;
    let line = row(&all, "dev");
    assert!(line.contains("alice") && line.contains("coder"), "{all}");
    assert_eq!(carol.json(&["list"]).await["count"], 0, "only hers");
    assert_eq!(alice.json(&["list", "--all"]).await["count"], 1);
    assert_eq!(bob.json(&["list", "--all"]).await["count"], 0);
    let err = carol.fails(1, &["show", "dev"]).await;
    assert!(!err.contains("you have no workspace"), "{err}");
    assert!(err.contains("`alice/dev`"), "{err}");
    let shown = carol.json(&["show", "alice/dev"]).await;
    assert_eq!(shown["id"], ws["id"]);

    // ... and orphan-deletes it: gone at once, without a delete build.
    let out = carol.ok(&["delete", "alice/dev", "--orphan"]).await;
    assert!(out.contains("without running destroy"), "{out}");
    assert_eq!(workspace_count(&owner).await, 0);
    let (status, _) = owner
        .get(&format!(
            "/workspaces/{}/builds",
            ws["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let jobs = owner.get_ok("/organizations/coder/provisionerjobs").await;
    let builds: Vec<&Value> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["type"] == "workspace_build")
        .collect();
    assert_eq!(builds.len(), 1, "only the start build ran: {jobs}");
    // Audited as carol's delete of the workspace.
    let audit = owner
        .get_ok("/audit?resource_type=workspace&action=delete")
        .await;
    assert!(
        audit["audit_logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["resource_id"] == ws["id"] && e["diff"]["orphan"]["new"] == true),
        "{audit}"
    );

    // A normal delete of someone else's workspace by an admin works too.
    alice.ok(&["create", "dev2", "--template", "plain"]).await;
    carol.ok(&["delete", "alice/dev2"]).await;
    assert_eq!(workspace_count(&owner).await, 0);
}

#[tokio::test]
async fn templates_push_times_out_with_a_hint_when_no_daemon_serves_the_org() {
    let (_s, owner, admin) = server().await;
    owner.create_org("lonely").await;
    let hello = hello_dir();
    let push = [
        "templates",
        "push",
        "hello",
        "--org",
        "lonely",
        "-d",
        hello.to_str().unwrap(),
    ];
    let err = admin
        .fails(1, &[&push[..], &["--timeout", "2s"]].concat())
        .await;
    assert!(
        err.contains("no provisioner available for this organization"),
        "{err}"
    );
    assert_eq!(
        err.matches("orgsync provisionerd start --org lonely")
            .count(),
        1,
        "the hint, once: {err}"
    );
    assert!(
        err.contains("orgsync provisioner keys create KEY-NAME --org lonely"),
        "{err}"
    );
    assert!(err.contains("did not finish within 2s"), "{err}");
    assert!(err.contains("not canceled"), "{err}");
    // The job is still there, pending; it can be listed and canceled.
    let pending = admin
        .json(&[
            "provisioner",
            "jobs",
            "list",
            "--org",
            "lonely",
            "--status",
            "pending",
        ])
        .await;
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    let job = pending[0]["id"].as_str().unwrap().to_owned();
    let table = admin
        .ok(&["provisioner", "jobs", "list", "--org", "lonely"])
        .await;
    let line = row(&table, &job);
    assert!(
        line.contains("template_version_import") && line.contains("pending"),
        "{table}"
    );
    assert!(line.contains("no provisioner available"), "{table}");
    let out = admin.ok(&["provisioner", "jobs", "cancel", &job]).await;
    assert!(out.contains("canceled"), "{out}");
    let canceled = admin
        .json(&[
            "provisioner",
            "jobs",
            "list",
            "--org",
            "lonely",
            "--status",
            "canceled",
        ])
        .await;
    assert_eq!(canceled[0]["id"], job.as_str());
    // Canceling again: the API's 409, exit 1; an unknown job: exit 1.
    let err = admin
        .fails(1, &["provisioner", "jobs", "cancel", &job])
        .await;
    assert!(err.contains("already finished"), "{err}");
    admin
        .fails(1, &["provisioner", "jobs", "cancel", "no-such-job"])
        .await;
    // Usage errors: exit 2.
    admin
        .fails(2, &[&push[..], &["--timeout", "soon"]].concat())
        .await;
    admin
        .fails(
            2,
            &[
                "provisioner",
                "jobs",
                "list",
                "--org",
                "lonely",
                "--status",
                "x",
            ],
        )
        .await;
}

#[tokio::test]
async fn templates_delete_versions_list_and_daemons_list() {
    let (s, owner, admin) = server().await;
    let dir = template_dir(&[("main.tf", "variable \"a\" {}\n")]);
    push(&admin, "base", dir.path(), "echo").await;
    std::fs::write(
        dir.path().join("main.tf"),
        "variable \"a\" {\n default = 1\n}\n",
    )
    .unwrap();
    let t = push(&admin, "base", dir.path(), "echo").await;

    // Versions: newest first, the active one marked.
    let versions = admin
        .json(&["templates", "versions", "list", "base", "--org", "coder"])
        .await;
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["id"], t["active_version_id"]);
    let table = admin
        .ok(&["templates", "versions", "list", "base", "--org", "coder"])
        .await;
    let active = row(&table, versions[0]["name"].as_str().unwrap());
    assert!(
        active.contains("yes") && active.contains("succeeded"),
        "{table}"
    );
    assert!(
        !row(&table, versions[1]["name"].as_str().unwrap()).contains("yes"),
        "{table}"
    );
    admin
        .fails(
            1,
            &["templates", "versions", "list", "nope", "--org", "coder"],
        )
        .await;

    // Delete: refused while a workspace uses it, naming it.
    let (alice_api, _) = owner.create_user("alice").await;
    let alice = as_user(&s, &alice_api);
    alice.ok(&["create", "dev", "--template", "base"]).await;
    let err = admin
        .fails(1, &["templates", "delete", "base", "--org", "coder"])
        .await;
    assert!(err.contains("still has 1 workspace(s)"), "{err}");
    assert!(err.contains("alice/dev"), "{err}");
    // A member may not delete it.
    let err = alice
        .fails(1, &["templates", "delete", "base", "--org", "coder"])
        .await;
    assert!(!err.contains("deleted"), "{err}");
    alice.ok(&["delete", "dev"]).await;
    let out = admin
        .ok(&["templates", "delete", "base", "--org", "coder"])
        .await;
    assert!(out.contains("deleted template `base`"), "{out}");
    assert!(
        owner
            .get_ok("/templates")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    admin
        .fails(1, &["templates", "delete", "base", "--org", "coder"])
        .await;

    // Daemons: the built-in one serves coder; members may list them too.
    let table = alice
        .ok(&["provisioner", "daemons", "list", "--org", "coder"])
        .await;
    let header = table.lines().next().unwrap();
    for col in ["NAME", "TAGS", "STATUS", "LAST SEEN"] {
        assert!(header.contains(col), "{table}");
    }
    let daemons = admin
        .json(&["provisioner", "daemons", "list", "--org", "coder"])
        .await;
    let d = &daemons.as_array().unwrap()[0];
    assert!(
        ["idle", "busy"].contains(&d["status"].as_str().unwrap()),
        "{daemons}"
    );
    let line = row(&table, d["name"].as_str().unwrap());
    assert!(line.contains("scope=organization"), "{table}");
    // Another org's daemons: not for a non-member.
    owner.create_org("other").await;
    alice
        .fails(1, &["provisioner", "daemons", "list", "--org", "other"])
        .await;
}
