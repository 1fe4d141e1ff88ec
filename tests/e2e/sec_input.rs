//! Regression tests of the input and resource-limit fixes, through the real
//! routes on SQLite and PostgreSQL: template files never cross organizations
//! (and the route is no oracle), daemons get only their org's archives, text
//! with NUL is a 400 naming the field (it used to be a 500 on PostgreSQL),
//! `q=` matches `%` and `_` literally, 413s use the JSON error shape, daemons
//! and job logs are bounded, `state_base64` is checked, and the data dir and
//! SQLite file are private.

use std::time::Duration;

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bad_input::{assert_error_shape, raw};
use crate::harness::{Client, TestServer};
use crate::provisioning::{template_tar, upload};
use crate::testkit::wait_for;

/// The first validation's field, or "" when there is none.
fn field(body: &Value) -> &str {
    body["validations"][0]["field"].as_str().unwrap_or("")
}

/// Asserts a 400 in the error shape naming `name` as its field.
fn assert_400_naming(status: StatusCode, body: &Value, name: &str, what: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_error_shape(status, body, what);
    assert_eq!(field(body), name, "{what}: {body}");
}

async fn scalar(s: &TestServer, sql: &str, binds: &[&str]) -> i64 {
    let mut conn = s.state.db.pool().acquire().await.unwrap();
    let mut q = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(sql.to_owned()));
    for b in binds {
        q = q.bind(b.to_string());
    }
    q.fetch_one(&mut *conn).await.unwrap().0
}

/// Uploads a tar without `?organization=`.
#[must_use]
async fn upload_unbound(c: &Client, tar: Vec<u8>) -> (StatusCode, Value) {
    let (status, _, body) = raw(
        c,
        Method::POST,
        "/files",
        Some("application/x-tar"),
        Some(tar),
    )
    .await;
    (status, body)
}

#[must_use]
async fn create_version(c: &Client, org: &str, hash: &Value) -> (StatusCode, Value) {
    c.post(
        &format!("/organizations/{org}/templateversions"),
        json!({"file_hash": hash, "provisioner": "echo"}),
    )
    .await
}

/// Two orgs, each with template-admins: `a1` and `a2` in org-a, `b1` in org-b.
struct Orgs {
    owner: Client,
    a1: Client,
    a1_id: String,
    a2: Client,
    b1: Client,
}

async fn two_orgs(s: &TestServer) -> Orgs {
    let owner = s.owner().await;
    owner.create_org("org-a").await;
    owner.create_org("org-b").await;
    let (a1, a1_id) = owner.create_user("a-admin").await;
    let (a2, _) = owner.create_user("a-admin2").await;
    let (b1, _) = owner.create_user("b-admin").await;
    for (org, user) in [
        ("org-a", "a-admin"),
        ("org-a", "a-admin2"),
        ("org-b", "b-admin"),
    ] {
        owner
            .add_member(org, user, &["organization-template-admin"])
            .await;
    }
    Orgs {
        owner,
        a1,
        a1_id,
        a2,
        b1,
    }
}

/// A provisioner key of `org`; returns its secret.
async fn key(owner: &Client, org: &str, name: &str) -> String {
    let (status, k) = owner
        .post(
            &format!("/organizations/{org}/provisionerkeys"),
            json!({"name": name}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{k}");
    k["key"].as_str().unwrap().to_owned()
}

/// A call of the daemon protocol with `secret`.
#[must_use]
async fn daemon_call(
    s: &TestServer,
    secret: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/api/v2/provisionerd{path}", s.base))
        .header("Orgsync-Provisioner-Key", secret);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[must_use]
async fn register(s: &TestServer, secret: &str, name: &str) -> (StatusCode, Value) {
    daemon_call(
        s,
        secret,
        "/register",
        Some(json!({"name": name, "provisioners": ["echo"]})),
    )
    .await
}

/// Registers a daemon that must be accepted; returns its id.
async fn daemon_id(s: &TestServer, secret: &str, name: &str) -> String {
    let (status, d) = register(s, secret, name).await;
    assert_eq!(status, StatusCode::CREATED, "register {name}: {d}");
    d["id"].as_str().unwrap().to_owned()
}

/// One acquire call that waits at most `wait_ms`: the job, or Null (204).
#[must_use]
async fn acquire(s: &TestServer, secret: &str, daemon: &str, wait_ms: u64) -> (StatusCode, Value) {
    daemon_call(
        s,
        secret,
        &format!("/{daemon}/acquire?wait_ms={wait_ms}"),
        None,
    )
    .await
}

/// Acquires (long polls of 1 s) until the daemon gets job `job_id`.
async fn acquire_job(s: &TestServer, secret: &str, daemon: &str, job_id: &str) -> Value {
    wait_for(
        &format!("the daemon to get job {job_id}"),
        Duration::from_secs(10),
        async || {
            let (status, job) = acquire(s, secret, daemon, 1000).await;
            assert!(status.is_success(), "acquire: {status} {job}");
            if job["id"] == job_id {
                Ok(job)
            } else {
                Err(job)
            }
        },
    )
    .await
}

/// Uploads an archive bound to `org`, which must succeed; returns `{hash}`.
async fn uploaded(c: &Client, org: &str, tar: Vec<u8>) -> Value {
    let (status, file) = upload(c, org, tar).await;
    assert_eq!(status, StatusCode::CREATED, "upload to {org}: {file}");
    file
}

/// Creates a version of `org` from a file, which must succeed.
async fn created_version(c: &Client, org: &str, hash: &Value) -> Value {
    let (status, v) = create_version(c, org, hash).await;
    assert_eq!(status, StatusCode::CREATED, "version in {org}: {v}");
    v
}

async fn org_daemons(owner: &Client, org: &str) -> Vec<Value> {
    let (status, list) = owner
        .get(&format!("/organizations/{org}/provisionerdaemons"))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

async fn job(c: &Client, id: &str) -> Value {
    let (status, job) = c.get(&format!("/provisionerjobs/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    job
}

#[tokio::test]
async fn sec_input_files_do_not_cross_orgs_and_the_route_is_no_oracle() {
    let s = TestServer::start().await;
    let w = two_orgs(&s).await;
    let tar_b = template_tar(&[("main.tf", "# org b's secret template\n")]);
    let (status, fb) = upload(&w.b1, "org-b", tar_b.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{fb}");
    let hb = fb["hash"].clone();

    // A's template-admin names B's file: the same 404 as a hash nobody uploaded.
    let (status, cross) = create_version(&w.a1, "org-a", &hb).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{cross}");
    assert_error_shape(status, &cross, "cross-org file_hash");
    for unknown in [json!("0".repeat(64)), json!("not-a-hash")] {
        let got = create_version(&w.a1, "org-a", &unknown).await;
        assert_eq!(got, (status, cross.clone()), "unknown hash {unknown}");
    }
    // Nothing was written for org-a: no version, no job, no binding to B's file.
    let versions = w.a1.get_ok("/organizations/org-a/templateversions").await;
    assert_eq!(versions, json!([]));
    let jobs = w.owner.get_ok("/organizations/org-a/provisionerjobs").await;
    assert_eq!(jobs, json!([]));
    let hb_s = hb.as_str().unwrap();
    assert_eq!(
        scalar(
            &s,
            "SELECT COUNT(*) FROM file_organizations WHERE hash = $1",
            &[hb_s]
        )
        .await,
        1,
        "only org-b is bound to B's file"
    );

    // A's own upload (no `?organization=`) backs a version of A.
    let tar_a = template_tar(&[("main.tf", "# org a\n")]);
    let (status, fa) = upload_unbound(&w.a1, tar_a).await;
    assert_eq!(status, StatusCode::CREATED, "{fa}");
    let (status, va) = create_version(&w.a1, "org-a", &fa["hash"]).await;
    assert_eq!(status, StatusCode::CREATED, "{va}");
    assert_eq!(va["file_hash"], fa["hash"]);
    // ... and, now used by a version of org-a, serves its other template-admins.
    let (status, v2) = create_version(&w.a2, "org-a", &fa["hash"]).await;
    assert_eq!(status, StatusCode::CREATED, "{v2}");
    // It still does not cross to org-b.
    let (status, body) = create_version(&w.b1, "org-b", &fa["hash"]).await;
    assert_eq!((status, body), (StatusCode::NOT_FOUND, cross.clone()));

    // Uploading content someone else uploaded answers exactly as a fresh
    // upload; it is one file row but a grant of the uploader's own, which
    // lets that uploader use it in their org.
    let (status, again) = upload_unbound(&w.a1, tar_b.clone()).await;
    let (fresh_status, fresh) =
        upload_unbound(&w.a1, template_tar(&[("main.tf", "# brand new\n")])).await;
    assert_eq!(status, fresh_status);
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, json!({"hash": hb}));
    assert_eq!(
        fresh.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["hash"]
    );
    assert_eq!(
        scalar(&s, "SELECT COUNT(*) FROM files WHERE hash = $1", &[hb_s]).await,
        1
    );
    assert_eq!(
        scalar(
            &s,
            "SELECT COUNT(*) FROM file_uploads WHERE hash = $1",
            &[hb_s]
        )
        .await,
        2,
        "two uploaders, two grants"
    );
    assert_eq!(
        scalar(
            &s,
            "SELECT COUNT(*) FROM audit_logs WHERE resource_type = 'file' AND user_id = $1",
            &[&w.a1_id]
        )
        .await,
        3,
        "each of a-admin's uploads is audited, the one of known content too"
    );
    let (status, v) = create_version(&w.a1, "org-a", &hb).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // Re-uploading is idempotent: same answer, still two grants.
    let (status, again2) = upload_unbound(&w.a1, tar_b).await;
    assert_eq!((status, again2), (StatusCode::CREATED, json!({"hash": hb})));
    assert_eq!(
        scalar(
            &s,
            "SELECT COUNT(*) FROM file_uploads WHERE hash = $1",
            &[hb_s]
        )
        .await,
        2
    );
}

#[tokio::test]
async fn sec_input_organization_binding_serves_every_template_admin_of_the_org() {
    let s = TestServer::start().await;
    let w = two_orgs(&s).await;
    let tar = template_tar(&[("main.tf", "# bound up front\n")]);
    let (status, f) = upload(&w.a1, "org-a", tar).await;
    assert_eq!(status, StatusCode::CREATED, "{f}");
    // a-admin2 never uploaded it; the binding to org-a is enough.
    let (status, v) = create_version(&w.a2, "org-a", &f["hash"]).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // Not in org-b: the answer of an unknown hash.
    let (status, body) = create_version(&w.b1, "org-b", &f["hash"]).await;
    let unknown = create_version(&w.b1, "org-b", &json!("f".repeat(64))).await;
    assert_eq!((status, body), unknown);
    assert_eq!(unknown.0, StatusCode::NOT_FOUND);
    // Binding needs the right to create files in that org: b-admin cannot
    // bind to org-a (404, org-a is not theirs).
    let (status, body) = upload(&w.b1, "org-a", template_tar(&[("x", "y")])).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn sec_input_a_daemon_never_receives_another_orgs_archive() {
    let s = TestServer::start().await;
    let w = two_orgs(&s).await;
    let tar_b = template_tar(&[("main.tf", "# b only\n")]);
    let fb = uploaded(&w.b1, "org-b", tar_b).await;
    // B's version: its import job waits (org-b has no daemon).
    let (status, vb) = create_version(&w.b1, "org-b", &fb["hash"]).await;
    assert_eq!(status, StatusCode::CREATED, "{vb}");
    let b_job = vb["job"]["id"].as_str().unwrap().to_owned();

    let a_key = key(&w.owner, "org-a", "a-key").await;
    let d = daemon_id(&s, &a_key, "a-daemon").await;
    // Nothing to take: B's job is not A's.
    let (status, got) = acquire(&s, &a_key, &d, 300).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{got}");
    // B's job cannot be touched either; it stays pending.
    for what in ["heartbeat", "logs", "complete", "fail"] {
        let body = match what {
            "logs" => Some(json!({"logs": [{"output": "x"}]})),
            "fail" => Some(json!({"error": "x"})),
            "complete" => Some(json!({})),
            _ => None,
        };
        let (status, resp) =
            daemon_call(&s, &a_key, &format!("/{d}/jobs/{b_job}/{what}"), body).await;
        assert!(
            status.is_client_error(),
            "{what} on B's job: {status} {resp}"
        );
    }
    assert_eq!(job(&w.owner, &b_job).await["status"], "pending");

    // A version of A whose data names B's file without any binding (as a
    // hand-edited or legacy row would): the daemon is not given the archive;
    // the job fails and says why.
    let fa = uploaded(&w.a1, "org-a", template_tar(&[("main.tf", "# a\n")])).await;
    let (status, va) = create_version(&w.a1, "org-a", &fa["hash"]).await;
    assert_eq!(status, StatusCode::CREATED, "{va}");
    {
        let mut conn = s.state.db.pool().acquire().await.unwrap();
        sqlx::query("UPDATE template_versions SET file_hash = $1 WHERE id = $2")
            .bind(fb["hash"].as_str().unwrap())
            .bind(va["id"].as_str().unwrap())
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let (status, got) = acquire(&s, &a_key, &d, 300).await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "no archive of B served: {got}"
    );
    let failed = job(&w.owner, va["job"]["id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("not available to its organization"),
        "{failed}"
    );
    assert_eq!(job(&w.owner, &b_job).await["status"], "pending");

    // A's own archive is served to A's daemon, byte for byte.
    let tar_a = template_tar(&[("main.tf", "# a, served\n")]);
    let fa2 = uploaded(&w.a1, "org-a", tar_a.clone()).await;
    let va2 = created_version(&w.a1, "org-a", &fa2["hash"]).await;
    let got = acquire_job(&s, &a_key, &d, va2["job"]["id"].as_str().unwrap()).await;
    let served = base64::engine::general_purpose::STANDARD
        .decode(got["template_tar_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(served, tar_a);
}

#[tokio::test]
async fn sec_input_text_with_nul_is_a_400_naming_the_field() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("eng").await;
    let audit_before = scalar(&s, "SELECT COUNT(*) FROM audit_logs", &[]).await;
    let users_before = scalar(&s, "SELECT COUNT(*) FROM users", &[]).await;

    // Before login: the login email.
    let anon = s.client();
    let (status, body) = anon
        .post(
            "/users/login",
            json!({"email": "admin\u{0}@example.com", "password": "password123"}),
        )
        .await;
    assert_400_naming(status, &body, "email", "login email");
    // A user create body.
    let (status, body) = owner
        .post(
            "/users",
            json!({"username": "nul", "email": "nul@example.com", "password": "password123", "name": "a\u{0}b"}),
        )
        .await;
    assert_400_naming(status, &body, "name", "user create");
    // Nested: a JSON path names it.
    let (status, body) = owner
        .patch(
            "/organizations/eng/settings/idpsync/groups",
            json!({"field": "groups", "mapping": {"eng": ["ok", "b\u{0}ad"]}}),
        )
        .await;
    assert_400_naming(status, &body, "mapping.eng[1]", "group sync mapping");
    // Query parameters.
    let (status, _, body) = raw(&owner, Method::GET, "/users?q=ad%00min", None, None).await;
    assert_400_naming(status, &body, "q", "q=");
    let (status, _, body) = raw(&owner, Method::GET, "/audit?q=action:create%00", None, None).await;
    assert_400_naming(status, &body, "q", "audit q=");
    // Path segments.
    let (status, _, body) = raw(&owner, Method::GET, "/organizations/en%00g", None, None).await;
    assert_400_naming(status, &body, "organization", "org segment");
    let (status, _, body) = raw(&owner, Method::GET, "/users/ad%00min/roles", None, None).await;
    assert_400_naming(status, &body, "user", "user segment");
    let (status, _, body) = raw(
        &owner,
        Method::PUT,
        "/organizations/eng/members/a%00b/roles",
        Some("application/json"),
        Some(br#"{"roles": []}"#.to_vec()),
    )
    .await;
    assert_400_naming(status, &body, "user", "member segment");
    // Preview claims: a value and a claim name.
    let (status, body) = owner
        .post(
            "/idpsync/preview",
            json!({"claims": {"groups": ["eng", "o\u{0}ps"]}}),
        )
        .await;
    assert_400_naming(status, &body, "claims.groups[1]", "preview claim value");
    let (status, body) = owner
        .post("/idpsync/preview", json!({"claims": {"gro\u{0}ups": []}}))
        .await;
    assert_400_naming(status, &body, "claims.gro\\u0000ups", "preview claim name");

    // Nothing was written by any of them.
    assert_eq!(
        scalar(&s, "SELECT COUNT(*) FROM audit_logs", &[]).await,
        audit_before
    );
    assert_eq!(
        scalar(&s, "SELECT COUNT(*) FROM users", &[]).await,
        users_before
    );
    // The same requests without NUL are fine (the server works on).
    let (status, body) = owner
        .post("/idpsync/preview", json!({"claims": {"groups": ["eng"]}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A JSON text that only looks like a NUL (an escaped backslash) is text.
    let (status, org) = owner
        .post(
            "/organizations",
            json!({"name": "lookalike", "description": "C:\\u0000 is no NUL"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{org}");
    let org = owner.get_ok("/organizations/lookalike").await;
    assert_eq!(org["description"], "C:\\u0000 is no NUL");
}

#[tokio::test]
async fn sec_input_user_search_matches_wildcards_literally() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    for (username, email) in [
        ("percent", "per%cent@example.com"),
        ("a_b", "a_b@example.com"),
        ("axb", "axb@example.com"),
    ] {
        let (status, body) = owner
            .post(
                "/users",
                json!({"username": username, "email": email, "password": "password123"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let names = async |q: &str| -> Vec<String> {
        let (status, body) = owner.get(&format!("/users?q={q}")).await;
        assert_eq!(status, StatusCode::OK, "q={q}: {body}");
        let mut n: Vec<String> = body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        assert_eq!(body["count"], n.len(), "q={q}: {body}");
        n
    };
    assert_eq!(names("%25").await, ["percent"], "q=%");
    assert_eq!(names("_").await, ["a_b"], "q=_");
    assert_eq!(names("a_b").await, ["a_b"], "q=a_b");
    assert_eq!(names("%5C").await, Vec::<String>::new(), "q=\\");
    assert_eq!(names("%25cent").await, ["percent"]);
    assert_eq!(names("A%5F").await, ["a_b"], "case-insensitive, literal");
    assert_eq!(names("xb").await, ["axb"]);
}

#[tokio::test]
async fn sec_input_oversized_uploads_are_413_in_the_json_error_shape() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let files_before = scalar(&s, "SELECT COUNT(*) FROM files", &[]).await;
    for path in ["/files?organization=coder", "/files"] {
        let (status, ct, body) = raw(
            &owner,
            Method::POST,
            path,
            Some("application/x-tar"),
            Some(vec![0u8; 11 * 1024 * 1024]),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {body}");
        assert!(ct.starts_with("application/json"), "{path}: `{ct}`");
        assert_error_shape(status, &body, path);
        assert!(
            body["detail"].as_str().unwrap().contains("10 MiB"),
            "{body}"
        );
    }
    assert_eq!(
        scalar(&s, "SELECT COUNT(*) FROM files", &[]).await,
        files_before
    );
    // The smaller general limit (--max-body-bytes) on a JSON route: same shape.
    let small = TestServer::start_with(|a| a.max_body_bytes = Some(1024)).await;
    let owner = small.owner().await;
    let (status, ct, body) = raw(
        &owner,
        Method::POST,
        "/idpsync/preview",
        Some("application/json"),
        Some(serde_json::to_vec(&json!({"claims": {"x": "y".repeat(4096)}})).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(ct.starts_with("application/json"), "`{ct}`");
    assert_error_shape(status, &body, "preview over 1 KiB");
}

#[tokio::test]
async fn sec_input_a_daemon_name_registered_again_replaces_its_daemon() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("ops").await;
    let secret = key(&owner, "ops", "ops-key").await;
    let first = daemon_id(&s, &secret, "runner").await;
    // The first daemon holds a running job when it "restarts".
    let f = uploaded(&owner, "ops", template_tar(&[("main.tf", "# ops\n")])).await;
    let v = created_version(&owner, "ops", &f["hash"]).await;
    let job_id = v["job"]["id"].as_str().unwrap().to_owned();
    acquire_job(&s, &secret, &first, &job_id).await;
    assert_eq!(job(&owner, &job_id).await["status"], "running");

    let second = daemon_id(&s, &secret, "runner").await;
    assert_ne!(first, second);
    let daemons = org_daemons(&owner, "ops").await;
    assert_eq!(daemons.len(), 1, "{daemons:?}");
    assert_eq!(daemons[0]["id"], second.as_str());
    assert_eq!(daemons[0]["name"], "runner");
    // The replaced daemon is gone for good: its calls are refused ...
    let (status, body) = acquire(&s, &secret, &first, 0).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // ... and its job failed at once, saying why.
    let j = job(&owner, &job_id).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert!(
        j["error"].as_str().unwrap().contains("registered again"),
        "{j}"
    );
    // Another name is another daemon.
    daemon_id(&s, &secret, "runner-2").await;
    assert_eq!(org_daemons(&owner, "ops").await.len(), 2);
}

#[tokio::test]
async fn sec_input_a_key_has_at_most_100_daemons() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("ops").await;
    let secret = key(&owner, "ops", "ops-key").await;
    let other = key(&owner, "ops", "other-key").await;
    for i in 0..100 {
        daemon_id(&s, &secret, &format!("d-{i}")).await;
    }
    let (status, body) = register(&s, &secret, "d-100").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_error_shape(status, &body, "101st daemon");
    assert!(body["message"].as_str().unwrap().contains("100"), "{body}");
    assert_eq!(org_daemons(&owner, "ops").await.len(), 100);
    // Replacing one by name stays within the cap; another key has its own.
    daemon_id(&s, &secret, "d-7").await;
    daemon_id(&s, &other, "d-100").await;
    assert_eq!(org_daemons(&owner, "ops").await.len(), 101);
    assert_eq!(
        scalar(
            &s,
            "SELECT COUNT(*) FROM provisioner_daemons WHERE name = 'd-7'",
            &[]
        )
        .await,
        1
    );
}

#[tokio::test]
async fn sec_input_job_logs_are_bounded_and_state_is_checked() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("ops").await;
    let secret = key(&owner, "ops", "ops-key").await;
    let d = daemon_id(&s, &secret, "runner").await;
    let f = uploaded(&owner, "ops", template_tar(&[("main.tf", "# ops\n")])).await;
    let v = created_version(&owner, "ops", &f["hash"]).await;
    let job_id = v["job"]["id"].as_str().unwrap().to_owned();
    acquire_job(&s, &secret, &d, &job_id).await;
    let logs_path = format!("/{d}/jobs/{job_id}/logs");

    // One line over 64 KiB (3-byte characters, so the cut is not on a
    // character boundary), one with NUL.
    let long = "€".repeat(30_000);
    let (status, body) = daemon_call(
        &s,
        &secret,
        &logs_path,
        Some(json!({"logs": [
            {"output": long},
            {"output": "be\u{0}fore\u{0}", "stage": "pl\u{0}an"},
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, logs) = owner.get(&format!("/provisionerjobs/{job_id}/logs")).await;
    assert_eq!(status, StatusCode::OK, "{logs}");
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 2, "{logs:?}");
    let cut = logs[0]["output"].as_str().unwrap();
    assert!(cut.ends_with(" [truncated]"), "ends with the marker");
    assert!(
        cut.len() <= 64 * 1024 && cut.len() > 64 * 1024 - 3,
        "{}",
        cut.len()
    );
    let kept = cut.strip_suffix(" [truncated]").unwrap();
    assert!(kept.chars().all(|c| c == '€'));
    assert_eq!(logs[1]["output"], "before");
    assert_eq!(logs[1]["stage"], "plan");

    // Too many lines in one call: refused whole.
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"output": format!("l{i}")}))
        .collect();
    let (status, body) = daemon_call(&s, &secret, &logs_path, Some(json!({"logs": many}))).await;
    assert_400_naming(status, &body, "logs", "1001 lines");
    let logs = owner
        .get_ok(&format!("/provisionerjobs/{job_id}/logs"))
        .await;
    assert_eq!(logs.as_array().unwrap().len(), 2);

    // A state that is not base64: 400 naming it, the job still runs.
    let complete = format!("/{d}/jobs/{job_id}/complete");
    for bad in ["not base64!", "QUJD*", "QQ"] {
        let (status, body) =
            daemon_call(&s, &secret, &complete, Some(json!({"state_base64": bad}))).await;
        assert_400_naming(status, &body, "state_base64", bad);
    }
    assert_eq!(job(&owner, &job_id).await["status"], "running");
    let (status, body) = daemon_call(
        &s,
        &secret,
        &complete,
        Some(json!({"state_base64": "QUJD"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(job(&owner, &job_id).await["status"], "succeeded");
}

#[tokio::test]
async fn sec_input_oidc_claims_with_nul_refuse_the_login_naming_the_claim() {
    use crate::oidc::{Browser, Provider, account, assert_refused, counts, server};
    let mut in_groups = account("groups@example.com", "groups", &[]);
    in_groups["groups"] = json!(["eng", "o\u{0}ps"]);
    let mut in_email = account("email@example.com", "email", &["eng"]);
    in_email["email"] = json!("em\u{0}ail@example.com");
    let op = Provider::start(
        json!({
            "sub-groups": in_groups,
            "sub-email": in_email,
            "sub-ok": account("ok@example.com", "ok", &["eng"]),
        }),
        true,
    );
    let s = server(&op.issuer, |_| {}).await;
    s.owner().await;
    for (sub, claim) in [
        ("sub-groups", "claims.groups[1]"),
        ("sub-email", "claims.email"),
    ] {
        let before = counts(&s).await;
        let b = Browser::new(&s);
        let cb = b.authorize(sub).await;
        let answer = b.get(&cb).await;
        // A page naming the claim; nothing written (no user, link, session).
        assert_refused(&s, &answer, StatusCode::BAD_REQUEST, claim, before).await;
    }
    // The provider's other users still log in.
    Browser::new(&s).login("sub-ok").await;
}

#[cfg(unix)]
#[tokio::test]
async fn sec_input_the_data_dir_and_sqlite_file_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let sqlite = crate::harness::backend() == "sqlite";
    let tmp = tempfile::tempdir().unwrap();

    // Created by the server: 0700 and 0600.
    let data = tmp.path().join("fresh/data");
    let db_file = data.join("orgsync.db");
    let url = format!("sqlite://{}", db_file.display());
    let start = move |data: std::path::PathBuf, url: String| {
        TestServer::start_with(move |a| {
            a.data_dir = Some(data);
            if sqlite {
                a.database_url = Some(url);
            }
        })
    };
    let s = start(data.clone(), url.clone()).await;
    s.owner().await;
    assert_eq!(mode(&data), 0o700, "data dir");
    if sqlite {
        assert_eq!(mode(&db_file), 0o600, "SQLite file");
        let wal = data.join("orgsync.db-wal");
        if wal.exists() {
            assert_eq!(mode(&wal), 0o600, "SQLite WAL");
        }
    }
    s.stop().await;

    // Loosened by hand: tightened at the next start, data intact.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    if sqlite {
        std::fs::set_permissions(&db_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let s = start(data.clone(), url).await;
    assert_eq!(mode(&data), 0o700, "data dir tightened");
    if sqlite {
        assert_eq!(mode(&db_file), 0o600, "SQLite file tightened");
        // The same database: the first user is there.
        let (status, body) = s.client().get("/users/first").await;
        assert_eq!(
            status,
            StatusCode::OK,
            "the first user is still there: {body}"
        );
    }
}

/// An org's icon and a group's avatar are shown by clients as images and
/// links: only `http(s)://` URLs and paths on this server are kept; script,
/// data and protocol-relative URLs are a 400 naming the field, nothing written.
#[tokio::test]
async fn icon_and_avatar_urls_take_only_web_urls_and_local_paths() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    for bad in [
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
        "//evil.example/x.png",
        "/\\evil.example/x.png",
        "vbscript:msgbox(1)",
        "ftp://example.com/x.png",
        "https://",
    ] {
        let (status, body) = owner
            .post("/organizations", json!({"name": "iconic", "icon": bad}))
            .await;
        assert_400_naming(status, &body, "icon", bad);
        let (status, _) = owner.get("/organizations/iconic").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}: nothing written");
        let (status, body) = owner
            .patch("/organizations/coder", json!({"icon": bad}))
            .await;
        assert_400_naming(status, &body, "icon", bad);
        let (status, body) = owner
            .post(
                "/organizations/coder/groups",
                json!({"name": "g-bad", "avatar_url": bad}),
            )
            .await;
        assert_400_naming(status, &body, "avatar_url", bad);
    }
    for good in ["", "https://example.com/logo.png", "/emojis/1f3e2.png"] {
        let (status, body) = owner
            .patch("/organizations/coder", json!({"icon": good}))
            .await;
        assert_eq!(status, StatusCode::OK, "{good}: {body}");
        assert_eq!(body["icon"], good);
    }
}
