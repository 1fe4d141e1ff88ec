//! Regressions from an attacker's trial of the security rules: each test is a
//! finding, reproduced through the real routes, that must stay closed.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestServer;

/// A login as seen from a client address (the server trusts the loopback proxy
/// that says so in `X-Forwarded-For`).
async fn login_from(
    s: &TestServer,
    from: &str,
    email: &str,
    password: &str,
) -> (StatusCode, Option<String>, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v2/users/login", s.base))
        .header("x-forwarded-for", from)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

async fn scalar(s: &TestServer, sql: &str) -> i64 {
    let mut conn = s.state.db.pool().acquire().await.unwrap();
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

/// An address past its own limit kept counting failures against every account
/// it named, locking them out, and opened a counter row per new email.
#[tokio::test]
async fn a_throttled_address_counts_against_no_account() {
    let s = TestServer::start_with(|a| {
        a.throttle.login_max_failures_per_address = Some(3);
        a.throttle.login_max_failures_per_account = Some(3);
        a.throttle.trusted_proxies = Some("127.0.0.1".to_owned());
    })
    .await;
    let owner = s.owner().await;
    owner.create_user("alice").await;
    let attacker = "198.51.100.7";
    for i in 0..3 {
        let (status, _, _) =
            login_from(&s, attacker, &format!("x{i}@example.com"), "wrong password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let rows = scalar(&s, "SELECT COUNT(*) FROM login_throttle").await;
    for i in 0..10 {
        let (status, retry, _) =
            login_from(&s, attacker, "alice@example.com", "wrong password").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(retry.is_some());
        let (status, _, _) = login_from(
            &s,
            attacker,
            &format!("new{i}@example.com"),
            "wrong password",
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(
        scalar(&s, "SELECT COUNT(*) FROM login_throttle").await,
        rows,
        "a throttled address opens no counters"
    );
    // Alice, from her own address, is not locked out by the attacker.
    let (status, _, body) =
        login_from(&s, "203.0.113.20", "alice@example.com", "password123").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// `Retry-After` told a recently used account from an unknown one: a success
/// left its window open, so the window of later failures was older.
#[tokio::test]
async fn retry_after_does_not_tell_of_a_recent_login() {
    let s = TestServer::start_with(|a| {
        a.throttle.login_max_failures_per_account = Some(2);
        a.throttle.login_failure_window_seconds = Some(3600);
    })
    .await;
    let owner = s.owner().await;
    owner.create_user("alice").await;
    let (status, _, _) = login_from(&s, "127.0.0.1", "alice@example.com", "password123").await;
    assert_eq!(status, StatusCode::CREATED);
    // A window holding only successes is closed: nothing of it remains.
    let key = orgsync::throttle::account_key("alice@example.com");
    assert_eq!(
        scalar(
            &s,
            &format!("SELECT COUNT(*) FROM login_throttle WHERE key = '{key}'")
        )
        .await,
        0
    );
    let mut answers = Vec::new();
    for email in ["alice@example.com", "nobody@example.com"] {
        let mut last = None;
        for _ in 0..3 {
            last = Some(login_from(&s, "127.0.0.1", email, "wrong password").await);
        }
        let (status, retry, body) = last.unwrap();
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        answers.push((retry.unwrap().parse::<u64>().unwrap(), body));
    }
    assert_eq!(answers[0].1, answers[1].1, "the same body");
    // Both windows opened with the failures just now: the same wait, give or
    // take the second the test took.
    assert!(
        answers[0].0.abs_diff(answers[1].0) <= 1 && answers[0].0 >= 3590,
        "{answers:?}"
    );
}

/// Unauthenticated requests wrote whatever `User-Agent` they sent (90 KB) into
/// the audit log.
#[tokio::test]
async fn the_audit_keeps_bounded_client_text() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let agent = format!("evil/{}", "A".repeat(90_000));
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v2/users/login", s.base))
        .header("user-agent", &agent)
        .header("x-request-id", "R".repeat(5_000))
        .json(&json!({"email": "nobody@example.com", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (status, audit) = owner.get("/audit?q=action:login_failed").await;
    assert_eq!(status, StatusCode::OK);
    let entry = &audit["audit_logs"][0];
    let ua = entry["user_agent"].as_str().unwrap();
    assert!(
        ua.starts_with("evil/AAA") && ua.len() <= 256,
        "{}",
        ua.len()
    );
    assert!(entry["request_id"].as_str().unwrap().len() <= 128);
}

/// Group and ACL edits told an org admin which users exist outside its org,
/// and resolved their ids to usernames.
#[tokio::test]
async fn group_and_acl_edits_reveal_nothing_about_users_outside_the_org() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("alpha").await;
    owner.create_org("beta").await;
    let (oadmin, _) = owner.create_user("oadmin").await;
    owner
        .add_member("alpha", "oadmin", &["organization-admin"])
        .await;
    let (_, outsider_id) = owner.create_user("outsider").await;
    owner.add_member("beta", "outsider", &[]).await;
    let (status, group) = oadmin
        .post("/organizations/alpha/groups", json!({"name": "devs"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let path = format!("/groups/{}", group["id"].as_str().unwrap());
    let mut answers = Vec::new();
    for key in ["outsider", outsider_id.as_str(), "nobody-at-all"] {
        for field in ["add_users", "remove_users"] {
            let (status, body) = oadmin.patch(&path, json!({field: [key]})).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(
                !body.to_string().contains("outsider") || key == "outsider",
                "an id is not resolved to a username: {body}"
            );
            answers.push(body["message"].as_str().unwrap().replace(key, "KEY"));
        }
    }
    answers.sort();
    answers.dedup();
    assert_eq!(
        answers.len(),
        2,
        "one answer per field, whoever the key: {answers:?}"
    );
    assert_eq!(owner.get(&path).await.1["members"], json!([]));
}

/// `/authcheck` told an org admin whether any user id is a site owner.
#[tokio::test]
async fn authcheck_does_not_reveal_who_is_an_owner_outside_the_org() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let alpha = owner.create_org("alpha").await;
    let (oadmin, _) = owner.create_user("oadmin").await;
    owner
        .add_member("alpha", "oadmin", &["organization-admin"])
        .await;
    let (_, plain_id) = owner.create_user("plain").await;
    let (_, owner2_id) = owner.create_user("owner2").await;
    owner.set_site_roles("owner2", &["owner"]).await;
    let check = |id: &str| {
        json!({"checks": {"x": {"object": {"resource_type": "organization_member",
            "organization_id": alpha, "owner_id": id}, "action": "delete"}}})
    };
    let (_, a) = oadmin.post("/authcheck", check(&plain_id)).await;
    let (_, b) = oadmin.post("/authcheck", check(&owner2_id)).await;
    assert_eq!(a, b, "owners outside the org look like anyone else");
    // Inside the org, the owner's membership is protected, as trying shows.
    owner.add_member("alpha", "owner2", &[]).await;
    let (_, c) = oadmin.post("/authcheck", check(&owner2_id)).await;
    assert_eq!(c["x"], false);
    // Role bundles are not actions anyone performs.
    let (status, body) = oadmin
        .post(
            "/authcheck",
            json!({"checks": {"x": {"object": {"resource_type": "site"}, "action": "bundle:organization-member"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// `PATCH /users/me` answered 405 although `{user}` accepts `me`.
#[tokio::test]
async fn me_is_a_user_for_every_method() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let (alice, _) = owner.create_user("alice").await;
    let (status, me) = alice.get("/users/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "alice");
    let (status, body) = alice.patch("/users/me", json!({"name": "Alice"})).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a member does not edit users: {body}"
    );
    let (status, body) = owner.patch("/users/me", json!({"name": "The Owner"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(owner.get("/users/admin").await.1["name"], "The Owner");
}
