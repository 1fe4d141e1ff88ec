//! SPEC §8, as a user would do it: a server process, the `orgsync` CLI, and a
//! separate `orgsync provisionerd` process per organization; once with the
//! `echo` executor and once with the real `terraform` executor.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Client, TestDb};
use crate::testkit::wait_for;

const BIN: &str = env!("CARGO_BIN_EXE_orgsync");

/// A child process killed when dropped.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    /// Reports instead of panicking (this may run while a failed test
    /// unwinds): `kill` fails only when the process already exited, which is
    /// what is wanted; `wait` then reaps it.
    fn drop(&mut self) {
        if let Err(e) = self.0.kill() {
            eprintln!("process {} had already exited: {e}", self.0.id());
        }
        if let Err(e) = self.0.wait() {
            eprintln!("cannot reap process {}: {e}", self.0.id());
        }
    }
}

/// Starts `orgsync server` on 127.0.0.1 port 0 (with `args`), its stderr in
/// `log`, and returns it with its base URL, read from the line it prints once
/// it listens (`orgsync listening on http://ADDR`): no port is picked ahead.
pub(crate) async fn spawn_server(
    database_url: &str,
    data_dir: &Path,
    log: &Path,
    args: &[&str],
) -> (Proc, String) {
    // Secrets in logs: the server logs everything it can, and both its
    // outputs are scanned for the suite's secrets.
    let stdout = log.with_extension("stdout");
    crate::logscan::register_log_file(format!("the server log {}", log.display()), log);
    crate::logscan::register_log_file(format!("the server stdout {}", stdout.display()), &stdout);
    let mut server = Proc(
        Command::new(BIN)
            .args(["server", "--listen", "127.0.0.1:0"])
            .args(args)
            .args(["--log", crate::logscan::LOG_FILTER])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--database-url")
            .arg(database_url)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    const READY: &str = "orgsync listening on ";
    let url = wait_for(
        &format!("the server to print `{READY}` in {}", log.display()),
        Duration::from_secs(30),
        async || {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(status) = server.0.try_wait().unwrap() {
                panic!("the server exited ({status}) at start:\n{text}");
            }
            text.lines()
                .find_map(|l| l.strip_prefix(READY))
                .map(|u| u.trim().to_owned())
                .ok_or(text)
        },
    )
    .await;
    let health = reqwest::get(format!("{url}/api/v2/healthz")).await.unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK, "{url}");
    (server, url)
}

/// Runs the CLI as the user whose session lives in `config`.
fn cli(config: &Path, url: &str, args: &[&str]) -> Output {
    let since = crate::logscan::mark();
    let out = Command::new(BIN)
        .args(args)
        .env("ORGSYNC_CONFIG_DIR", config)
        .env("ORGSYNC_URL", url)
        .env_remove("ORGSYNC_SESSION_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // Secrets in logs: what this run used, and its output (logscan.rs).
    crate::logscan::register_cli_run(args, &[], Some(config), &out.stdout, &out.stderr, since);
    out
}

fn ok(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `orgsync provisionerd start`, logging at the most verbose level into
/// `logs` (scanned for secrets, logscan.rs).
fn daemon(url: &str, key: &str, org: &str, executor: &str, name: &str, logs: &Path) -> Proc {
    let out = logs.join(format!("{name}.stdout"));
    let err = logs.join(format!("{name}.stderr"));
    crate::logscan::register_log_file(format!("the stdout of daemon `{name}`"), &out);
    crate::logscan::register_log_file(format!("the stderr of daemon `{name}`"), &err);
    Proc(
        Command::new(BIN)
            .args([
                "provisionerd",
                "start",
                "--org",
                org,
                "--executor",
                executor,
                "--name",
                name,
            ])
            .env("ORGSYNC_URL", url)
            .env("ORGSYNC_PROVISIONER_DAEMON_KEY", key)
            .env("ORGSYNC_LOG", crate::logscan::LOG_FILTER)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(out).unwrap())
            .stderr(std::fs::File::create(err).unwrap())
            .spawn()
            .unwrap(),
    )
}

fn write_template(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

const TF_TEMPLATE: &str = r#"
variable "orgsync_transition" {
  type    = string
  default = "start"
}
variable "orgsync_workspace_name" {
  type    = string
  default = ""
}
variable "region" {
  type    = string
  default = "us"
}
resource "terraform_data" "home" {
  input = "${var.orgsync_workspace_name}-${var.region}"
}
resource "terraform_data" "compute" {
  count = var.orgsync_transition == "start" ? 1 : 0
  input = "running"
}
output "home" {
  value = terraform_data.home.output
}
"#;

async fn walkthrough(executor: &str) {
    if executor == "terraform" {
        let found = Command::new(
            std::env::var("ORGSYNC_TERRAFORM_BINARY").unwrap_or_else(|_| "terraform".into()),
        )
        .arg("version")
        .output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "terraform is required for this test (install it on PATH or set ORGSYNC_TERRAFORM_BINARY)"
        );
    }
    let (_db, database_url, data_dir) = TestDb::new().await;
    let (_server, url) = spawn_server(
        &database_url,
        &data_dir,
        &data_dir.join("server.log"),
        &["--provisioner-daemons", "1"],
    )
    .await;
    let http = reqwest::Client::new();
    let home = tempfile::tempdir().unwrap();
    let owner_cfg = home.path().join("owner");
    let alice_cfg = home.path().join("alice");

    // The owner sets up data-platform and its provisioner.
    ok(
        cli(
            &owner_cfg,
            &url,
            &[
                "login",
                &url,
                "--first-user-username",
                "admin",
                "--first-user-email",
                "admin@example.com",
                "--first-user-password",
                "a-long-password",
            ],
        ),
        "login",
    );
    ok(
        cli(
            &owner_cfg,
            &url,
            &["organizations", "create", "data-platform"],
        ),
        "create org",
    );
    let out = ok(
        cli(
            &owner_cfg,
            &url,
            &[
                "provisioner",
                "keys",
                "create",
                "data-cluster-key",
                "--org",
                "data-platform",
            ],
        ),
        "create key",
    );
    let key = out.lines().last().unwrap().trim().to_owned();
    assert!(key.len() >= 43, "{out}");
    let listed = ok(
        cli(
            &owner_cfg,
            &url,
            &[
                "provisioner",
                "keys",
                "list",
                "--org",
                "data-platform",
                "-o",
                "json",
            ],
        ),
        "list keys",
    );
    assert!(
        !listed.contains(&key),
        "the key is printed once, never again"
    );
    let _dp_daemon = daemon(
        &url,
        &key,
        "data-platform",
        executor,
        "data-cluster",
        &data_dir,
    );

    // Another org the member is not in, with its own daemon and template.
    ok(
        cli(&owner_cfg, &url, &["organizations", "create", "ops"]),
        "create ops",
    );
    let out = ok(
        cli(
            &owner_cfg,
            &url,
            &["provisioner", "keys", "create", "ops-key", "--org", "ops"],
        ),
        "ops key",
    );
    let ops_key = out.lines().last().unwrap().trim().to_owned();
    let _ops_daemon = daemon(&url, &ops_key, "ops", executor, "ops-daemon", &data_dir);

    let tpl = home.path().join("tpl");
    match executor {
        "terraform" => write_template(&tpl, &[("main.tf", TF_TEMPLATE)]),
        _ => write_template(
            &tpl,
            &[("main.tf", "# echo template\n"), ("README.md", "base")],
        ),
    }
    ok(
        cli(
            &owner_cfg,
            &url,
            &[
                "templates",
                "push",
                "base",
                "--org",
                "data-platform",
                "-d",
                tpl.to_str().unwrap(),
                "--provisioner",
                executor,
            ],
        ),
        "push",
    );
    ok(
        cli(
            &owner_cfg,
            &url,
            &[
                "templates",
                "push",
                "secret",
                "--org",
                "ops",
                "-d",
                tpl.to_str().unwrap(),
                "--provisioner",
                executor,
            ],
        ),
        "push ops",
    );

    // A member.
    ok(
        cli(
            &owner_cfg,
            &url,
            &[
                "users",
                "create",
                "--username",
                "alice",
                "--email",
                "alice@example.com",
                "--password",
                "alice-password",
            ],
        ),
        "create user",
    );
    ok(
        cli(
            &owner_cfg,
            &url,
            &[
                "organizations",
                "members",
                "add",
                "alice",
                "--org",
                "data-platform",
            ],
        ),
        "add member",
    );
    ok(
        cli(
            &alice_cfg,
            &url,
            &[
                "login",
                &url,
                "--email",
                "alice@example.com",
                "--password",
                "alice-password",
            ],
        ),
        "alice login",
    );
    let templates = ok(
        cli(&alice_cfg, &url, &["templates", "list", "-o", "json"]),
        "alice lists templates",
    );
    let templates: Value = serde_json::from_str(&templates).unwrap();
    let names: Vec<&str> = templates
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["base"],
        "alice sees data-platform's template and not ops'"
    );

    // Her workspace builds on data-platform's daemon.
    let mut create = vec!["create", "dev", "--template", "base"];
    if executor == "terraform" {
        create.extend(["--parameter", "region=eu"]);
    }
    ok(cli(&alice_cfg, &url, &create), "create workspace");
    let list = ok(cli(&alice_cfg, &url, &["list", "-o", "json"]), "list");
    let list: Value = serde_json::from_str(&list).unwrap();
    let ws = &list["workspaces"][0];
    assert_eq!(ws["name"], "dev");
    assert_eq!(ws["latest_build"]["status"], "succeeded");

    // The build ran on data-platform's own daemon, not a built-in one.
    let session: Value =
        serde_json::from_str(&std::fs::read_to_string(owner_cfg.join("session.json")).unwrap())
            .unwrap();
    let owner = Client {
        http: http.clone(),
        base: format!("{url}/api/v2"),
        token: Some(session["session_token"].as_str().unwrap().to_owned()),
    };
    let daemons = owner
        .get_ok("/organizations/data-platform/provisionerdaemons")
        .await;
    let dp = daemons
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "data-cluster")
        .unwrap()
        .clone();
    let job_id = ws["latest_build"]["job_id"].as_str().unwrap();
    let job = owner.get_ok(&format!("/provisionerjobs/{job_id}")).await;
    assert_eq!(job["worker_id"], dp["id"], "{job}");
    let logs = owner
        .get_ok(&format!("/provisionerjobs/{job_id}/logs"))
        .await;
    let text: String = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{}\n", l["output"].as_str().unwrap()))
        .collect();
    if executor == "terraform" {
        assert!(text.contains("Apply complete!"), "{text}");
        assert!(
            text.contains("dev-eu"),
            "parameters and workspace name reach terraform: {text}"
        );
    }

    // Stop and delete; terraform keeps state per workspace and really destroys.
    ok(cli(&alice_cfg, &url, &["stop", "dev"]), "stop");
    let builds = owner
        .get_ok(&format!(
            "/workspaces/{}/builds",
            ws["id"].as_str().unwrap()
        ))
        .await;
    let stop_job = builds[0]["job_id"].as_str().unwrap().to_owned();
    let logs = owner
        .get_ok(&format!("/provisionerjobs/{stop_job}/logs"))
        .await;
    let text: String = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{}\n", l["output"].as_str().unwrap()))
        .collect();
    if executor == "terraform" {
        // With the previous state, stopping destroys only the compute resource.
        assert!(text.contains("1 destroyed"), "{text}");
    }
    ok(cli(&alice_cfg, &url, &["delete", "dev"]), "delete");
    let (status, body) = owner
        .get(&format!("/workspaces/{}", ws["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{body}");
    let list = ok(
        cli(&alice_cfg, &url, &["list", "-o", "json"]),
        "list after delete",
    );
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["count"], 0);
    let jobs = owner
        .get_ok("/organizations/data-platform/provisionerjobs")
        .await;
    let delete_job = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["type"] == "workspace_build")
        .unwrap()
        .clone();
    let logs = owner
        .get_ok(&format!(
            "/provisionerjobs/{}/logs",
            delete_job["id"].as_str().unwrap()
        ))
        .await;
    let text: String = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{}\n", l["output"].as_str().unwrap()))
        .collect();
    if executor == "terraform" {
        assert!(text.contains("Destroy complete!"), "{text}");
    } else {
        assert!(text.contains("echo: delete workspace `dev`"), "{text}");
    }
}

#[tokio::test]
async fn walkthrough_with_echo_executor() {
    walkthrough("echo").await;
}

#[tokio::test]
async fn walkthrough_with_terraform_executor() {
    walkthrough("terraform").await;
}
