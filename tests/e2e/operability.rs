//! What an operator relies on: build info, readiness at the root, the access
//! log (one line per request with route, status, latency, user and request
//! id), JSON logs, no colour codes in a log file, `--listen` with a host name,
//! no SQL in verbose logs, the provisioner daemon's job and reconnect lines.

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{TestDb, TestServer};
use crate::process::ServerProcess;
use crate::testkit::wait_for;

#[tokio::test]
async fn buildinfo_names_version_commit_and_the_active_policies_and_readyz_answers_at_the_root() {
    let server = TestServer::start().await;
    let c = server.client();
    let (status, info) = c.get("/buildinfo").await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    let commit = info["commit"].as_str().expect("commit");
    assert!(
        commit == "unknown"
            || (commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "commit: {commit}"
    );
    let (status, ready) = c.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(info["policy_hash"], ready["policy_hash"]);
    assert!(
        info["policy_hash"].as_str().is_some_and(|h| h.len() >= 16),
        "{info}"
    );

    let root = reqwest::get(format!("{}/readyz", server.base))
        .await
        .expect("readyz");
    assert_eq!(root.status(), StatusCode::OK);
    let body: Value = root.json().await.expect("json");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["policy_hash"], info["policy_hash"]);
}

/// The lines of a JSON log that are objects (the harness may add others).
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
        .collect()
}

#[tokio::test]
async fn json_logs_carry_one_access_line_per_request_with_route_status_latency_user_and_request_id()
{
    let (_db, url, _) = TestDb::new().await;
    let server = ServerProcess::start("jsonlog", &url, &["--log-format", "json"]).await;
    let owner = server.owner().await;
    let (me_status, me) = owner.get("/users/me").await;
    assert_eq!(me_status, StatusCode::OK, "{me}");
    let user_id = me["id"].as_str().expect("id").to_owned();
    let (status, _) = owner.get("/organizations/no-such-org").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The access line is written when the answer is sent: poll the log briefly.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (me_line, missing_line) = loop {
        let lines = json_lines(&server.log());
        let access = |route: &str| {
            lines
                .iter()
                .find(|l| {
                    l["fields"]["message"] == "finished processing request"
                        && l["span"]["route"] == route
                })
                .cloned()
        };
        if let (Some(a), Some(b)) = (
            access("/api/v2/users/{user}"),
            access("/api/v2/organizations/{organization}"),
        ) {
            break (a, b);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no access lines for the two requests in:\n{}",
            server.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(me_line["level"], "INFO", "{me_line}");
    assert_eq!(me_line["fields"]["status"], 200, "{me_line}");
    assert!(me_line["fields"]["latency"].is_string(), "{me_line}");
    assert_eq!(me_line["span"]["method"], "GET", "{me_line}");
    assert_eq!(me_line["span"]["path"], "/api/v2/users/me", "{me_line}");
    assert_eq!(me_line["span"]["user_id"], user_id.as_str(), "{me_line}");
    assert!(
        me_line["span"]["request_id"]
            .as_str()
            .is_some_and(|id| id.len() >= 32),
        "{me_line}"
    );
    assert_eq!(missing_line["fields"]["status"], 404, "{missing_line}");
    assert_ne!(
        me_line["span"]["request_id"], missing_line["span"]["request_id"],
        "every request has its own id"
    );
    // Logins and failed logins are logged at info, the user by id only.
    let anon = server.client();
    let (status, _) = anon
        .post(
            "/users/login",
            serde_json::json!({"email": "admin@example.com", "password": "wrong-password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = anon
        .post(
            "/users/login",
            serde_json::json!({"email": "admin@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let lines = json_lines(&server.log());
        let event = |m: &str| lines.iter().find(|l| l["fields"]["message"] == m).cloned();
        if let (Some(failed), Some(ok)) = (event("password login failed"), event("password login"))
        {
            assert_eq!(failed["level"], "INFO", "{failed}");
            assert_eq!(failed["fields"]["user_id"], user_id.as_str(), "{failed}");
            assert_eq!(ok["fields"]["user_id"], user_id.as_str(), "{ok}");
            assert!(!failed.to_string().contains("wrong-password-1"), "{failed}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no login lines in:\n{}",
            server.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Every line of a JSON log is JSON (nothing human-formatted slips in).
    let log = server.log();
    for line in log
        .lines()
        .filter(|l| !l.starts_with("--- ") && !l.trim().is_empty())
    {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not a JSON line: {line}"
        );
    }
}

#[tokio::test]
async fn a_text_log_written_to_a_file_has_no_colour_codes() {
    let (_db, url, _) = TestDb::new().await;
    let server = ServerProcess::start("textlog", &url, &[]).await;
    let owner = server.owner().await;
    let (status, _) = owner.get("/users/me").await;
    assert_eq!(status, StatusCode::OK);
    let log = server.log();
    assert!(log.contains("finished processing request"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a log file:\n{log}"
    );
}

#[test]
fn listen_takes_a_host_name_and_refuses_what_is_not_host_port() {
    let bin = env!("CARGO_BIN_EXE_orgsync");
    for bad in [
        "localhost",
        "no-such-host.invalid:3000",
        ":3000",
        "127.0.0.1:99999",
    ] {
        let out = std::process::Command::new(bin)
            .args(["server", "--listen", bad])
            .env_remove("ORGSYNC_LISTEN")
            .output()
            .expect("run orgsync");
        assert_eq!(out.status.code(), Some(2), "--listen {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--listen"), "--listen {bad}: {err}");
        assert!(err.contains(bad), "the error names the value: {err}");
    }
    assert_eq!(
        orgsync::config::parse_listen("localhost:3000").map(|a| (a.ip().is_loopback(), a.port())),
        Ok((true, 3000))
    );
    assert_eq!(
        orgsync::config::parse_listen("127.0.0.1:0").map(|a| a.to_string()),
        Ok("127.0.0.1:0".to_owned())
    );
}

/// At the most verbose level (`trace`, which includes `debug`; the process
/// harness always logs at it) the server writes no SQL statement: sqlx's
/// statement logging is off on every connection.
#[tokio::test]
async fn verbose_logs_hold_no_sql_statements() {
    let (_db, url, _) = TestDb::new().await;
    let server = ServerProcess::start("nosql", &url, &[]).await;
    let owner = server.owner().await;
    let (member, _) = owner.create_user("nosql-member").await;
    let (status, _) = owner
        .post("/organizations", serde_json::json!({"name": "nosql"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = member.get("/organizations/nosql").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = owner.get("/audit").await;
    assert_eq!(status, StatusCode::OK);
    let log = server.log();
    // The requests were logged at this level (the check looks at a real log).
    assert!(log.contains("finished processing request"), "{log}");
    assert!(log.contains("authorization decision"), "{log}");
    for statement in ["SELECT ", "INSERT ", "UPDATE ", "DELETE FROM", "BEGIN"] {
        let hits: Vec<&str> = log.lines().filter(|l| l.contains(statement)).collect();
        assert!(
            hits.is_empty(),
            "`{statement}` in the log:\n{}",
            hits.join("\n")
        );
    }
}

/// `orgsync provisionerd start` logs each job it acquires and finishes (id,
/// kind, org, outcome, duration) and, when the server goes away, each failed
/// attempt (the error, the backoff), then its reconnect.
#[tokio::test]
async fn provisionerd_logs_its_jobs_its_failed_attempts_and_its_reconnect() {
    let (_db, url, _) = TestDb::new().await;
    let mut server = ServerProcess::start("reconnect", &url, &[]).await;
    let owner = server.owner().await;
    let org_id = owner.create_org("recon").await;
    let (status, key) = owner
        .post(
            "/organizations/recon/provisionerkeys",
            serde_json::json!({"name": "recon-key"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let logs = tempfile::tempdir().unwrap();
    let err_path = logs.path().join("daemon.stderr");
    crate::logscan::register_log_file("the stderr of daemon `recon`", &err_path);
    let _daemon = crate::walkthrough::Proc(
        std::process::Command::new(env!("CARGO_BIN_EXE_orgsync"))
            .args([
                "provisionerd",
                "start",
                "--org",
                "recon",
                "--executor",
                "echo",
            ])
            .args(["--name", "recon-daemon"])
            .env("ORGSYNC_URL", &server.base)
            .env(
                "ORGSYNC_PROVISIONER_DAEMON_KEY",
                key["key"].as_str().unwrap(),
            )
            .env("ORGSYNC_LOG", crate::logscan::LOG_FILTER)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let daemon_log = || std::fs::read_to_string(&err_path).unwrap_or_default();
    let line_with = async |what: &str, parts: &[&str]| -> String {
        wait_for(what, std::time::Duration::from_secs(30), async || {
            let log = daemon_log();
            log.lines()
                .find(|l| parts.iter().all(|p| l.contains(p)))
                .map(str::to_owned)
                .ok_or(log)
        })
        .await
    };
    line_with("the daemon to register", &["serving organization `recon`"]).await;

    server.kill();
    let failed = line_with(
        "a failed attempt while the server is down",
        &["cannot acquire a job; retrying after the backoff"],
    )
    .await;
    for field in ["WARN", "error=", "backoff_ms="] {
        assert!(failed.contains(field), "{field} missing in: {failed}");
    }
    server.restart_at_same_address().await;
    let reconnected = line_with(
        "the daemon's reconnect",
        &["provisioner daemon reconnected"],
    )
    .await;
    assert!(reconnected.contains("INFO"), "{reconnected}");

    let owner = server.client_as(&owner.token);
    let tar = crate::provisioning::template_tar(&[("main.tf", "# recon\n")]);
    let version =
        crate::provisioning::import_version(&owner, "recon", "echo", tar, serde_json::json!({}))
            .await;
    let job_id = version["job"]["id"].as_str().unwrap().to_owned();
    let job =
        crate::provisioning::wait_job(&owner, &job_id, std::time::Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let acquired = line_with(
        "the job's acquired line",
        &["provisioner daemon: running a job", &job_id],
    )
    .await;
    let finished = line_with(
        "the job's finished line",
        &["provisioner daemon: job finished", &job_id],
    )
    .await;
    for line in [&acquired, &finished] {
        for field in ["INFO", "template_version_import", org_id.as_str()] {
            assert!(line.contains(field), "{field} missing in: {line}");
        }
    }
    for field in ["succeeded", "duration_ms="] {
        assert!(finished.contains(field), "{field} missing in: {finished}");
    }
}
