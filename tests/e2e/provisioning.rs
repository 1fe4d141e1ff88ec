//! Templates, provisioner keys and daemons, the job queue, workspaces: through
//! the API, with the built-in daemons and external daemons speaking the HTTP
//! protocol.

use std::path::Path;
use std::time::{Duration, Instant};

use orgsync::provisioner::daemon::{DaemonTiming, SourceError, serve};
use orgsync::provisioner::executor::Executor;
use orgsync::provisioner::http::HttpSource;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::harness::{Client, TestServer};

/// A template archive with the given files.
pub fn template_tar(files: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    orgsync::provisioner::archive::pack_dir(dir.path()).unwrap()
}

pub async fn upload(c: &Client, org: &str, tar: Vec<u8>) -> (StatusCode, Value) {
    let resp = c
        .http
        .post(format!("{}/files?organization={org}", c.base))
        .bearer_auth(c.token.clone().unwrap())
        .header("Content-Type", "application/x-tar")
        .body(tar)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Polls a job until it leaves pending/running (or the deadline passes).
pub async fn wait_job(c: &Client, job_id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, job) = c.get(&format!("/provisionerjobs/{job_id}")).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        let s = job["status"].as_str().unwrap().to_owned();
        if !matches!(s.as_str(), "pending" | "running" | "canceling") || Instant::now() > deadline {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Uploads, creates a version and waits for its import; returns the version.
pub async fn import_version(
    c: &Client,
    org: &str,
    provisioner: &str,
    tar: Vec<u8>,
    tags: Value,
) -> Value {
    let (status, file) = upload(c, org, tar).await;
    assert!(status.is_success(), "{file}");
    let (status, v) = c
        .post(
            &format!("/organizations/{org}/templateversions"),
            json!({"file_hash": file["hash"], "provisioner": provisioner, "tags": tags}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

fn echo_tar() -> Vec<u8> {
    template_tar(&[("main.tf", "# echo template\n"), ("README.md", "hello")])
}

/// Runs an external daemon (HTTP protocol, echo executor) until `stop`.
fn spawn_daemon(
    url: String,
    key: String,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<(String, Result<(), SourceError>)> {
    tokio::spawn(async move {
        let mut source = HttpSource::register(&url, &key, "test-daemon", &["echo".to_owned()])
            .await
            .unwrap();
        source.wait = Duration::from_millis(500);
        let timing = DaemonTiming {
            heartbeat: Duration::from_millis(200),
            log_flush: Duration::from_millis(50),
        };
        let id = source.daemon_id.clone();
        let result = serve(&source, &[Executor::Echo], timing, &stop).await;
        (id, result)
    })
}

#[tokio::test]
async fn walkthrough_over_the_api_with_builtin_and_org_daemons() {
    let s = TestServer::start_with(|a| a.provisioner_daemons = Some(2)).await;
    let owner = s.owner().await;

    // Default org: the built-in daemons import and build.
    let v = import_version(&owner, "coder", "echo", echo_tar(), json!({})).await;
    let job = wait_job(
        &owner,
        v["job"]["id"].as_str().unwrap(),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (status, t) = owner
        .post(
            "/organizations/coder/templates",
            json!({"name": "base", "version_id": v["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(
        t["acl"]["groups"].as_object().unwrap().len(),
        1,
        "Everyone gets use"
    );

    let (alice, _) = owner.create_user("alice").await;
    let (_, templates) = alice.get("/templates").await;
    assert_eq!(templates.as_array().unwrap().len(), 1);
    let (status, ws) = alice
        .post(
            "/organizations/coder/members/me/workspaces",
            json!({"template_id": t["id"], "name": "dev", "rich_parameter_values": [{"name": "region", "value": "eu"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ws}");
    let build_job = ws["latest_build"]["job_id"].as_str().unwrap().to_owned();
    let job = wait_job(&alice, &build_job, Duration::from_secs(20)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, logs) = alice
        .get(&format!("/provisionerjobs/{build_job}/logs"))
        .await;
    let text: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["output"].as_str().unwrap())
        .collect();
    assert!(
        text.iter().any(|l| l.contains("parameter region = eu")),
        "{text:?}"
    );
    // Name taken: 409.
    let (status, _) = alice
        .post(
            "/organizations/coder/members/me/workspaces",
            json!({"template_id": t["id"], "name": "dev"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Stop, then delete: the workspace is gone once the delete build succeeds.
    let ws_id = ws["id"].as_str().unwrap().to_owned();
    let (status, w) = alice
        .post(
            &format!("/workspaces/{ws_id}/builds"),
            json!({"transition": "stop"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{w}");
    let job = wait_job(
        &alice,
        w["latest_build"]["job_id"].as_str().unwrap(),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(job["status"], "succeeded");
    let (status, w) = alice.delete(&format!("/workspaces/{ws_id}")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{w}");
    let job = wait_job(
        &alice,
        w["latest_build"]["job_id"].as_str().unwrap(),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(job["status"], "succeeded");
    assert_eq!(
        alice.get(&format!("/workspaces/{ws_id}")).await.0,
        StatusCode::NOT_FOUND
    );

    // Another org: its job waits, visibly, until that org has a daemon.
    owner.create_org("data-platform").await;
    let v = import_version(&owner, "data-platform", "echo", echo_tar(), json!({})).await;
    let job_id = v["job"]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, job) = owner.get(&format!("/provisionerjobs/{job_id}")).await;
    assert_eq!(
        job["status"], "pending",
        "built-in daemons never take another org's job"
    );
    assert_eq!(
        job["queue_message"],
        "no provisioner available for this organization"
    );

    // A key for the org; shown once; tags in the request refused; reserved names.
    let (status, key) = owner
        .post(
            "/organizations/data-platform/provisionerkeys",
            json!({"name": "data-cluster-key"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let secret = key["key"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43);
    let (_, keys) = owner
        .get("/organizations/data-platform/provisionerkeys")
        .await;
    assert!(
        keys[0].get("key").is_none(),
        "the secret is never shown again"
    );
    assert_eq!(
        owner
            .post(
                "/organizations/data-platform/provisionerkeys",
                json!({"name": "psk"})
            )
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        owner
            .post(
                "/organizations/data-platform/provisionerkeys",
                json!({"name": "data-cluster-key"})
            )
            .await
            .0,
        StatusCode::CONFLICT
    );
    let url = s.base.clone();
    let refused = reqwest::Client::new()
        .post(format!("{url}/api/v2/provisionerd/register"))
        .header("Orgsync-Provisioner-Key", &secret)
        .json(&json!({"name": "x", "provisioners": ["echo"], "tags": {"env": "prod"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let wrong = HttpSource::register(&url, "wrong-key", "x", &["echo".to_owned()]).await;
    assert!(matches!(wrong, Err(SourceError::Unauthorized(_))));

    let stop = CancellationToken::new();
    let daemon = spawn_daemon(url.clone(), secret.clone(), stop.clone());
    let job = wait_job(&owner, &job_id, Duration::from_secs(20)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, daemons) = owner
        .get("/organizations/data-platform/provisionerdaemons")
        .await;
    let d = daemons
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "test-daemon")
        .unwrap()
        .clone();
    assert_eq!(job["worker_id"], d["id"]);

    // Deleting the key disconnects the daemon within seconds.
    assert_eq!(
        owner
            .delete("/organizations/data-platform/provisionerkeys/data-cluster-key")
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (_, result) = tokio::time::timeout(Duration::from_secs(5), daemon)
        .await
        .expect("daemon stops")
        .unwrap();
    assert!(
        matches!(result, Err(SourceError::Unauthorized(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn tags_decide_which_daemon_takes_a_job() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("ml").await;
    let (_, plain) = owner
        .post(
            "/organizations/ml/provisionerkeys",
            json!({"name": "plain"}),
        )
        .await;
    let (_, gpu) = owner
        .post(
            "/organizations/ml/provisionerkeys",
            json!({"name": "gpu", "tags": {"gpu": "a100"}}),
        )
        .await;
    let (status, body) = owner
        .post(
            "/organizations/ml/provisionerkeys",
            json!({"name": "bad", "tags": {"bad key": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let stop = CancellationToken::new();
    let d_gpu = spawn_daemon(
        s.base.clone(),
        gpu["key"].as_str().unwrap().to_owned(),
        stop.clone(),
    );
    // An untagged job does not go to the tagged daemon.
    let v = import_version(&owner, "ml", "echo", echo_tar(), json!({})).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, job) = owner
        .get(&format!(
            "/provisionerjobs/{}",
            v["job"]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(job["status"], "pending");
    assert!(
        job["queue_message"].as_str().unwrap().contains("matches"),
        "{job}"
    );
    // A gpu job goes to it.
    let v2 = import_version(
        &owner,
        "ml",
        "echo",
        template_tar(&[("a.tf", "#2")]),
        json!({"gpu": "a100"}),
    )
    .await;
    let job2 = wait_job(
        &owner,
        v2["job"]["id"].as_str().unwrap(),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(job2["status"], "succeeded");
    // An untagged daemon takes the untagged job.
    let d_plain = spawn_daemon(
        s.base.clone(),
        plain["key"].as_str().unwrap().to_owned(),
        stop.clone(),
    );
    let job = wait_job(
        &owner,
        v["job"]["id"].as_str().unwrap(),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(job["status"], "succeeded");
    assert_ne!(job["worker_id"], job2["worker_id"]);
    stop.cancel();
    let _ = d_gpu.await;
    let _ = d_plain.await;
}

#[tokio::test]
async fn heartbeat_timeout_and_cancel() {
    let s = TestServer::start_with(|a| a.job_heartbeat_timeout_ms = Some(1500)).await;
    let owner = s.owner().await;
    owner.create_org("ops").await;
    let (_, key) = owner
        .post("/organizations/ops/provisionerkeys", json!({"name": "k"}))
        .await;
    let secret = key["key"].as_str().unwrap().to_owned();
    let slow = template_tar(&[("echo.json", r#"{"delay_ms": 20000, "lines": 3}"#)]);

    // Cancel a pending job: canceled at once.
    let v = import_version(&owner, "ops", "echo", slow.clone(), json!({})).await;
    let job_id = v["job"]["id"].as_str().unwrap().to_owned();
    let (status, body) = owner
        .post(&format!("/provisionerjobs/{job_id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "canceled");

    // Cancel a running job: the daemon stops it at its next heartbeat; logs are
    // readable while it runs.
    let stop = CancellationToken::new();
    let daemon = spawn_daemon(s.base.clone(), secret.clone(), stop.clone());
    let v = import_version(
        &owner,
        "ops",
        "echo",
        template_tar(&[
            ("echo.json", r#"{"delay_ms": 20000, "lines": 2}"#),
            ("x", "y"),
        ]),
        json!({}),
    )
    .await;
    let job_id = v["job"]["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, logs) = owner.get(&format!("/provisionerjobs/{job_id}/logs")).await;
        if logs
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["output"].as_str().unwrap().contains("waiting"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no logs while running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, job) = owner.get(&format!("/provisionerjobs/{job_id}")).await;
    assert_eq!(job["status"], "running");
    let (_, body) = owner
        .post(&format!("/provisionerjobs/{job_id}/cancel"), json!({}))
        .await;
    assert_eq!(body["status"], "canceling");
    let job = wait_job(&owner, &job_id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "canceled", "{job}");
    stop.cancel();
    let _ = daemon.await;

    // A daemon that disappears mid-job: the job fails after the timeout.
    let v = import_version(
        &owner,
        "ops",
        "echo",
        template_tar(&[("echo.json", r#"{"delay_ms": 20000}"#), ("z", "1")]),
        json!({}),
    )
    .await;
    let job_id = v["job"]["id"].as_str().unwrap().to_owned();
    let stop = CancellationToken::new();
    let daemon = spawn_daemon(s.base.clone(), secret, stop.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while owner.get(&format!("/provisionerjobs/{job_id}")).await.1["status"] != "running" {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.abort();
    let job = wait_job(&owner, &job_id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "failed");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("stopped sending heartbeats"),
        "{job}"
    );
}

#[tokio::test]
async fn bad_provisioning_input() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    // Not a tar; path traversal; oversized; wrong content type.
    let (status, body) = upload(&owner, "coder", b"definitely not a tar".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let mut evil = tar::Header::new_gnu();
    evil.set_size(1);
    evil.set_mode(0o644);
    evil.set_entry_type(tar::EntryType::Regular);
    evil.as_old_mut().name[..9].copy_from_slice(b"../escape");
    evil.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&evil, &b"x"[..]).unwrap();
    let (status, body) = upload(&owner, "coder", b.into_inner().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("escapes"),
        "{body}"
    );
    let (status, _) = upload(&owner, "coder", vec![0u8; 11 * 1024 * 1024]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Unknown provisioner, malformed tags, unknown file.
    let (_, file) = upload(&owner, "coder", echo_tar()).await;
    let (status, _) = owner
        .post(
            "/organizations/coder/templateversions",
            json!({"file_hash": file["hash"], "provisioner": "ansible"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = owner
        .post(
            "/organizations/coder/templateversions",
            json!({"file_hash": file["hash"], "provisioner": "echo", "tags": {"a b": "c"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = owner
        .post(
            "/organizations/coder/templateversions",
            json!({"file_hash": "0".repeat(64), "provisioner": "echo"}),
        )
        .await;
    // An unknown file is a 404, as is a file of another org (SPEC §1).
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nothing half-written: no job was queued by the refused requests.
    let (_, jobs) = owner.get("/organizations/coder/provisionerjobs").await;
    assert_eq!(jobs.as_array().unwrap().len(), 0);
    // A template of another org cannot back a workspace here.
    let _s2 = owner.create_org("other").await;
    let (status, _) = owner
        .post(
            "/organizations/other/members/me/workspaces",
            json!({"template_id": "00000000-0000-0000-0000-000000000000", "name": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let _ = Path::new("/");
}

#[tokio::test]
async fn template_acl_visibility_and_creation_ban() {
    let s = TestServer::start_with(|a| a.provisioner_daemons = Some(1)).await;
    let owner = s.owner().await;
    let (alice, alice_id) = owner.create_user("alice").await;
    let (bob, _) = owner.create_user("bob").await;

    // Two templates in the default org: one for Everyone, one restricted.
    let v1 = import_version(&owner, "coder", "echo", echo_tar(), json!({})).await;
    let v2 = import_version(
        &owner,
        "coder",
        "echo",
        template_tar(&[("b.tf", "#b")]),
        json!({}),
    )
    .await;
    for v in [&v1, &v2] {
        let job = wait_job(
            &owner,
            v["job"]["id"].as_str().unwrap(),
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(job["status"], "succeeded");
    }
    let (_, open) = owner
        .post(
            "/organizations/coder/templates",
            json!({"name": "open", "version_id": v1["id"]}),
        )
        .await;
    let (status, closed) = owner
        .post(
            "/organizations/coder/templates",
            json!({"name": "closed", "version_id": v2["id"], "disable_everyone_group_access": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{closed}");
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&alice.get("/templates").await.1), vec!["open"]);
    assert_eq!(
        alice
            .get(&format!("/templates/{}", closed["id"].as_str().unwrap()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = alice
        .post(
            "/organizations/coder/members/me/workspaces",
            json!({"template_id": closed["id"], "name": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Granting alice `use` shows it to her, not to bob.
    let (status, acl) = owner
        .patch(
            &format!("/templates/{}/acl", closed["id"].as_str().unwrap()),
            json!({"users": {"alice": "use"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{acl}");
    assert_eq!(acl["users"][alice_id.as_str()], "use");
    assert_eq!(
        names(&alice.get("/templates").await.1),
        vec!["closed", "open"]
    );
    assert_eq!(names(&bob.get("/templates").await.1), vec!["open"]);
    // Members do not edit ACLs.
    assert_eq!(
        alice
            .patch(
                &format!("/templates/{}/acl", closed["id"].as_str().unwrap()),
                json!({"users": {"bob": "use"}})
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // A user in two orgs sees both orgs' templates.
    owner.create_org("eng").await;
    let (_, key) = owner
        .post("/organizations/eng/provisionerkeys", json!({"name": "k"}))
        .await;
    let stop = CancellationToken::new();
    let d = spawn_daemon(
        s.base.clone(),
        key["key"].as_str().unwrap().to_owned(),
        stop.clone(),
    );
    let v3 = import_version(
        &owner,
        "eng",
        "echo",
        template_tar(&[("c.tf", "#c")]),
        json!({}),
    )
    .await;
    assert_eq!(
        wait_job(
            &owner,
            v3["job"]["id"].as_str().unwrap(),
            Duration::from_secs(20)
        )
        .await["status"],
        "succeeded"
    );
    let (_, eng_t) = owner
        .post(
            "/organizations/eng/templates",
            json!({"name": "eng-base", "version_id": v3["id"]}),
        )
        .await;
    assert_eq!(
        names(&bob.get("/templates").await.1),
        vec!["open"],
        "bob is not in eng"
    );
    owner.add_member("eng", "bob", &[]).await;
    assert_eq!(
        names(&bob.get("/templates").await.1),
        vec!["eng-base", "open"]
    );
    // A template of another org cannot back a workspace in this one.
    let (status, _) = bob
        .post(
            "/organizations/coder/members/me/workspaces",
            json!({"template_id": eng_t["id"], "name": "y"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Workspace-creation ban: refused for a member, not for a site owner.
    owner
        .put(
            "/organizations/eng/members/bob/roles",
            json!({"roles": ["organization-workspace-creation-ban"]}),
        )
        .await;
    let (status, body) = bob
        .post(
            "/organizations/eng/members/me/workspaces",
            json!({"template_id": eng_t["id"], "name": "z"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("guardrail.workspace-creation-ban")
    );
    let (_, me) = owner.get("/users/me").await;
    let _ = me;
    let (status, ws) = owner
        .post(
            "/organizations/eng/members/me/workspaces",
            json!({"template_id": eng_t["id"], "name": "z"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ws}");
    // Templates with workspaces cannot be deleted; the org cannot either.
    assert_eq!(
        owner
            .delete(&format!("/templates/{}", eng_t["id"].as_str().unwrap()))
            .await
            .0,
        StatusCode::CONFLICT
    );
    let (status, body) = owner.delete("/organizations/eng").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("template(s)")
            && msg.contains("provisioner key(s)")
            && msg.contains("workspace(s)"),
        "{msg}"
    );
    let _ = open;
    stop.cancel();
    let _ = d.await;
}
