//! Templates, provisioner keys and daemons, the job queue, workspaces: through
//! the API, with the built-in daemons and external daemons speaking the HTTP
//! protocol.

use std::time::Duration;

use orgsync::provisioner::daemon::{DaemonTiming, SourceError, serve};
use orgsync::provisioner::executor::Executor;
use orgsync::provisioner::http::HttpSource;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::harness::{Client, TestServer};
use crate::testkit::wait_for;

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

#[must_use]
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

/// Polls a job until it leaves pending/running/canceling; returns it.
pub async fn wait_job(c: &Client, job_id: &str, within: Duration) -> Value {
    wait_for(&format!("job {job_id} to end"), within, async || {
        let job = c.get_ok(&format!("/provisionerjobs/{job_id}")).await;
        match job["status"].as_str().unwrap() {
            "pending" | "running" | "canceling" => Err(job),
            _ => Ok(job),
        }
    })
    .await
}

/// The current time as the server writes it (same process, same clock).
fn now() -> String {
    orgsync::clock::fmt(orgsync::clock::now())
}

/// The provisioner daemons of an org.
async fn daemons(c: &Client, org: &str) -> Vec<Value> {
    c.get_ok(&format!("/organizations/{org}/provisionerdaemons"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until every daemon of `org` polled the queue after `since` (its
/// `last_seen_at` is written by each acquire, in the transaction that looks
/// for a job). A daemon that polled after a job was committed has seen it:
/// this is the positive signal a "the job stays pending" check waits for.
async fn wait_all_polled_after(c: &Client, org: &str, since: &str) {
    wait_for(
        &format!("every daemon of {org} to poll after {since}"),
        Duration::from_secs(20),
        async || {
            let ds = daemons(c, org).await;
            let polled = !ds.is_empty()
                && ds
                    .iter()
                    .all(|d| d["last_seen_at"].as_str().unwrap() > since);
            if polled { Ok(()) } else { Err(Value::from(ds)) }
        },
    )
    .await;
}

/// Creates a provisioner key; returns it (with its secret).
async fn create_key(c: &Client, org: &str, body: Value) -> Value {
    let (status, key) = c
        .post(&format!("/organizations/{org}/provisionerkeys"), body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    key
}

/// Stops an external daemon and checks it stopped because it was asked to.
async fn stopped(
    stop: &CancellationToken,
    daemon: tokio::task::JoinHandle<(String, Result<(), SourceError>)>,
) {
    stop.cancel();
    let (id, result) = daemon.await.expect("the daemon task ended");
    assert_eq!(result, Ok(()), "daemon {id}");
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
    // Declares the parameter the walkthrough gives (parameters are checked
    // against the template's variables).
    template_tar(&[
        (
            "main.tf",
            "# echo template\nvariable \"region\" {\n  default = \"us\"\n}\n",
        ),
        ("README.md", "hello"),
    ])
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
    let templates = alice.get_ok("/templates").await;
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
    let logs = alice
        .get_ok(&format!("/provisionerjobs/{build_job}/logs"))
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
    // Name taken: 409, and still one workspace.
    let (status, body) = alice
        .post(
            "/organizations/coder/members/me/workspaces",
            json!({"template_id": t["id"], "name": "dev"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(alice.get_ok("/workspaces").await["count"], 1);
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
    let (status, body) = alice.get(&format!("/workspaces/{ws_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(alice.get_ok("/workspaces").await["count"], 0);

    // Another org: its job waits, visibly, until that org has a daemon. The
    // built-in daemons (of the default org) look at the queue after the job
    // was committed, and leave it.
    owner.create_org("data-platform").await;
    let v = import_version(&owner, "data-platform", "echo", echo_tar(), json!({})).await;
    let job_id = v["job"]["id"].as_str().unwrap().to_owned();
    wait_all_polled_after(&owner, "coder", &now()).await;
    let job = owner.get_ok(&format!("/provisionerjobs/{job_id}")).await;
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
    let keys_path = "/organizations/data-platform/provisionerkeys";
    let keys = owner.get_ok(keys_path).await;
    assert!(
        keys[0].get("key").is_none(),
        "the secret is never shown again"
    );
    for (name, refused) in [
        ("psk", StatusCode::BAD_REQUEST),
        ("data-cluster-key", StatusCode::CONFLICT),
    ] {
        let (status, body) = owner.post(keys_path, json!({"name": name})).await;
        assert_eq!(status, refused, "{name}: {body}");
    }
    assert_eq!(
        owner.get_ok(keys_path).await,
        keys,
        "the keys are unchanged"
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
    assert_eq!(
        daemons(&owner, "data-platform").await,
        Vec::<Value>::new(),
        "no daemon was registered by the refused requests"
    );

    let stop = CancellationToken::new();
    let daemon = spawn_daemon(url.clone(), secret.clone(), stop.clone());
    let job = wait_job(&owner, &job_id, Duration::from_secs(20)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let d = daemons(&owner, "data-platform")
        .await
        .into_iter()
        .find(|d| d["name"] == "test-daemon")
        .unwrap();
    assert_eq!(job["worker_id"], d["id"]);

    // Deleting the key disconnects the daemon within seconds.
    let (status, body) = owner
        .delete("/organizations/data-platform/provisionerkeys/data-cluster-key")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(owner.get_ok(keys_path).await, json!([]));
    let (id, result) = tokio::time::timeout(Duration::from_secs(5), daemon)
        .await
        .expect("daemon stops")
        .unwrap();
    assert!(
        matches!(result, Err(SourceError::Unauthorized(_))),
        "daemon {id}: {result:?}"
    );
}

#[tokio::test]
async fn tags_decide_which_daemon_takes_a_job() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("ml").await;
    let plain = create_key(&owner, "ml", json!({"name": "plain"})).await;
    let gpu = create_key(
        &owner,
        "ml",
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
    let keys = owner.get_ok("/organizations/ml/provisionerkeys").await;
    let mut names: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["gpu", "plain"], "{keys}");
    let stop = CancellationToken::new();
    let d_gpu = spawn_daemon(
        s.base.clone(),
        gpu["key"].as_str().unwrap().to_owned(),
        stop.clone(),
    );
    // Registered before the job exists, so that its next `last_seen_at` is a poll.
    wait_for(
        "the gpu daemon to register",
        Duration::from_secs(20),
        async || daemons(&owner, "ml").await.len() == 1,
    )
    .await;
    // An untagged job does not go to the tagged daemon, which polls after it
    // was queued and leaves it.
    let v = import_version(&owner, "ml", "echo", echo_tar(), json!({})).await;
    wait_all_polled_after(&owner, "ml", &now()).await;
    let job = owner
        .get_ok(&format!(
            "/provisionerjobs/{}",
            v["job"]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(job["status"], "pending", "{job}");
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
    stopped(&stop, d_gpu).await;
    stopped(&stop, d_plain).await;
}

#[tokio::test]
async fn heartbeat_timeout_and_cancel() {
    let s = TestServer::start_with(|a| a.job_heartbeat_timeout_ms = Some(1500)).await;
    let owner = s.owner().await;
    owner.create_org("ops").await;
    let key = create_key(&owner, "ops", json!({"name": "k"})).await;
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
    let job = owner.get_ok(&format!("/provisionerjobs/{job_id}")).await;
    assert_eq!(job["status"], "canceled", "{job}");

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
    wait_for(
        "logs while the job runs",
        Duration::from_secs(10),
        async || {
            let logs = owner
                .get_ok(&format!("/provisionerjobs/{job_id}/logs"))
                .await;
            let waiting = logs
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["output"].as_str().unwrap().contains("waiting"));
            if waiting { Ok(()) } else { Err(logs) }
        },
    )
    .await;
    let job = owner.get_ok(&format!("/provisionerjobs/{job_id}")).await;
    assert_eq!(job["status"], "running", "{job}");
    let (status, body) = owner
        .post(&format!("/provisionerjobs/{job_id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "canceling");
    let job = wait_job(&owner, &job_id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "canceled", "{job}");
    stopped(&stop, daemon).await;

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
    wait_for("the job to run", Duration::from_secs(10), async || {
        let job = owner.get_ok(&format!("/provisionerjobs/{job_id}")).await;
        if job["status"] == "running" {
            Ok(())
        } else {
            Err(job)
        }
    })
    .await;
    // Gone without a word: no more heartbeats, no failure report.
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
    let (status, body) = upload(&owner, "coder", vec![0u8; 11 * 1024 * 1024]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    // Unknown provisioner, malformed tags, unknown file.
    let (status, file) = upload(&owner, "coder", echo_tar()).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    let (status, body) = owner
        .post(
            "/organizations/coder/templateversions",
            json!({"file_hash": file["hash"], "provisioner": "ansible"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = owner
        .post(
            "/organizations/coder/templateversions",
            json!({"file_hash": file["hash"], "provisioner": "echo", "tags": {"a b": "c"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = owner
        .post(
            "/organizations/coder/templateversions",
            json!({"file_hash": "0".repeat(64), "provisioner": "echo"}),
        )
        .await;
    // An unknown file is a 404, as is a file of another org (SPEC §1).
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Nothing half-written: no version and no job from the refused requests.
    let jobs = owner.get_ok("/organizations/coder/provisionerjobs").await;
    assert_eq!(jobs.as_array().unwrap().len(), 0, "{jobs}");
    let versions = owner.get_ok("/organizations/coder/templateversions").await;
    assert_eq!(versions.as_array().unwrap().len(), 0, "{versions}");
    // A template of another org cannot back a workspace here.
    owner.create_org("other").await;
    let (status, body) = owner
        .post(
            "/organizations/other/members/me/workspaces",
            json!({"template_id": "00000000-0000-0000-0000-000000000000", "name": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let workspaces = owner.get_ok("/workspaces").await;
    assert_eq!(workspaces["count"], 0, "{workspaces}");
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
    let (status, open) = owner
        .post(
            "/organizations/coder/templates",
            json!({"name": "open", "version_id": v1["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{open}");
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
    assert_eq!(names(&alice.get_ok("/templates").await), vec!["open"]);
    let (status, body) = alice
        .get(&format!("/templates/{}", closed["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = alice
        .post(
            "/organizations/coder/members/me/workspaces",
            json!({"template_id": closed["id"], "name": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(alice.get_ok("/workspaces").await["count"], 0);
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
        names(&alice.get_ok("/templates").await),
        vec!["closed", "open"]
    );
    assert_eq!(names(&bob.get_ok("/templates").await), vec!["open"]);
    // Members do not edit ACLs.
    let acl_path = format!("/templates/{}/acl", closed["id"].as_str().unwrap());
    let (status, body) = alice
        .patch(&acl_path, json!({"users": {"bob": "use"}}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(owner.get_ok(&acl_path).await, acl, "the ACL is unchanged");
    assert_eq!(names(&bob.get_ok("/templates").await), vec!["open"]);

    // A user in two orgs sees both orgs' templates.
    owner.create_org("eng").await;
    let key = create_key(&owner, "eng", json!({"name": "k"})).await;
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
    let (status, eng_t) = owner
        .post(
            "/organizations/eng/templates",
            json!({"name": "eng-base", "version_id": v3["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{eng_t}");
    assert_eq!(
        names(&bob.get_ok("/templates").await),
        vec!["open"],
        "bob is not in eng"
    );
    owner.add_member("eng", "bob", &[]).await;
    assert_eq!(
        names(&bob.get_ok("/templates").await),
        vec!["eng-base", "open"]
    );
    // A template of another org cannot back a workspace in this one.
    let (status, body) = bob
        .post(
            "/organizations/coder/members/me/workspaces",
            json!({"template_id": eng_t["id"], "name": "y"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(bob.get_ok("/workspaces").await["count"], 0);

    // Workspace-creation ban: refused for a member, not for a site owner.
    let (status, body) = owner
        .put(
            "/organizations/eng/members/bob/roles",
            json!({"roles": ["organization-workspace-creation-ban"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["roles"],
        json!(["organization-workspace-creation-ban"])
    );
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
    assert_eq!(bob.get_ok("/workspaces").await["count"], 0);
    let (status, ws) = owner
        .post(
            "/organizations/eng/members/me/workspaces",
            json!({"template_id": eng_t["id"], "name": "z"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ws}");
    // Templates with workspaces cannot be deleted; the org cannot either.
    let template_path = format!("/templates/{}", eng_t["id"].as_str().unwrap());
    let (status, body) = owner.delete(&template_path).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(owner.get_ok(&template_path).await["name"], "eng-base");
    let (status, body) = owner.delete("/organizations/eng").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("template(s)")
            && msg.contains("provisioner key(s)")
            && msg.contains("workspace(s)"),
        "{msg}"
    );
    assert_eq!(owner.get_ok("/organizations/eng").await["name"], "eng");
    stopped(&stop, d).await;
}
