//! Browser-facing security through the real routes: cross-site requests with
//! the session cookie, cookie attributes and caching of secrets, and login
//! throttling (per account, per client address, across replicas).

use std::time::Duration;

use orgsync::config::ServerArgs;
use reqwest::header::{CACHE_CONTROL, RETRY_AFTER, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Client, TestServer};
use crate::oidc::{Browser, Provider, SITE, account};
use crate::provisioning::{import_version, template_tar};
use crate::testkit::wait_for;

const EVIL: &str = "https://evil.example";
const FORM: &str = "application/x-www-form-urlencoded";

/// A raw response: status, headers, JSON body (or `Null`).
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: reqwest::header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn session_cookie(&self) -> String {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("orgsync_session="))
            .unwrap_or_else(|| panic!("no session cookie: {:?}", self.headers))
            .to_owned()
    }
}

/// Sends `method path` as a browser holding the session cookie `session`
/// would, with `headers` (and an empty body of `content_type` when given).
#[must_use]
async fn with_cookie(
    s: &TestServer,
    method: Method,
    path: &str,
    session: &str,
    headers: &[(&str, &str)],
    content_type: Option<&str>,
) -> Answer {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}/api/v2{path}", s.base))
        .header("Cookie", format!("orgsync_session={session}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct).body("");
    }
    answer(req).await
}

#[must_use]
async fn answer(req: reqwest::RequestBuilder) -> Answer {
    let since = crate::logscan::register_request(&req);
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let path = resp.url().path().to_owned();
    let text = resp.text().await.expect("body");
    crate::logscan::register_answer(&path, &headers, &text, since);
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

/// A refused cross-site request: 403 in the API error shape.
fn assert_refused(a: &Answer, what: &str) {
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{what}: {}", a.body);
    let msg = a.body["message"].as_str().unwrap_or_default();
    assert!(msg.contains("cross-site"), "{what}: {}", a.body);
    assert!(a.body["detail"].is_string(), "{what}: {}", a.body);
    let keys: Vec<&String> = a.body.as_object().expect("object").keys().collect();
    assert!(
        keys.iter()
            .all(|k| ["message", "detail"].contains(&k.as_str())),
        "{what}: {}",
        a.body
    );
}

async fn is_member(owner: &Client, org: &str, username: &str) -> bool {
    let (status, body) = owner.get(&format!("/organizations/{org}/members")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array()
        .expect("members")
        .iter()
        .any(|m| m["username"] == username)
}

async fn count(s: &TestServer, sql: &str) -> i64 {
    let mut conn = s.state.db.pool().acquire().await.expect("conn");
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut *conn)
        .await
        .expect("count")
}

#[tokio::test]
async fn sec_web_cookie_writes_from_another_origin_are_refused() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let session = owner.token.clone().expect("owner session");
    owner.create_org("ops").await;
    owner.create_user("bob").await;
    let v = import_version(
        &owner,
        "ops",
        "echo",
        template_tar(&[("main.tf", "# pending forever: no daemon\n")]),
        json!({}),
    )
    .await;
    let job = v["job"]["id"].as_str().expect("job id").to_owned();
    let job_path = format!("/provisionerjobs/{job}");
    let before = owner.get_ok("/policies").await;
    let audit_before = count(&s, "SELECT COUNT(*) FROM audit_logs").await;

    // The attacks of the issue: the cookie, a foreign Origin, a form body.
    let foreign = [("Origin", EVIL)];
    let attacks = [
        (Method::POST, "/organizations/ops/members/bob".to_owned()),
        (Method::POST, format!("{job_path}/cancel")),
        (Method::POST, "/policies/reload".to_owned()),
        (Method::PUT, "/users/bob/status/suspend".to_owned()),
        (Method::POST, "/users/logout".to_owned()),
    ];
    for (method, path) in &attacks {
        let a = with_cookie(&s, method.clone(), path, &session, &foreign, Some(FORM)).await;
        assert_refused(&a, &format!("{method} {path} from {EVIL}"));
    }
    // Other ways a browser says "another site", and saying nothing at all.
    let member_add = "/organizations/ops/members/bob";
    for headers in [
        &[("Sec-Fetch-Site", "cross-site")][..],
        &[("Sec-Fetch-Site", "same-site")][..],
        &[("Sec-Fetch-Site", "none")][..],
        &[("Sec-Fetch-Site", "same-origin"), ("Origin", EVIL)][..],
        &[("Origin", "null")][..],
        &[("Referer", "https://evil.example/page")][..],
        &[][..],
    ] {
        let a = with_cookie(&s, Method::POST, member_add, &session, headers, Some(FORM)).await;
        assert_refused(&a, &format!("member add with {headers:?}"));
    }

    // Nothing changed: no member, the job still pending, same policies, bob
    // active, the session alive, no audit entry.
    assert!(!is_member(&owner, "ops", "bob").await);
    let j = owner.get_ok(&job_path).await;
    assert_eq!(j["status"], "pending", "{j}");
    assert_eq!(owner.get_ok("/policies").await, before);
    assert_eq!(owner.get_ok("/users/bob").await["status"], "active");
    let me = with_cookie(&s, Method::GET, "/users/me", &session, &foreign, None).await;
    assert_eq!(me.status, StatusCode::OK, "a cookie read is not refused");
    assert_eq!(
        count(&s, "SELECT COUNT(*) FROM audit_logs").await,
        audit_before
    );

    // Same-origin cookie writes work: by Origin, by Sec-Fetch-Site, by Referer.
    let own = s.base.clone();
    let a = with_cookie(
        &s,
        Method::POST,
        member_add,
        &session,
        &[("Origin", &own)],
        None,
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::CREATED,
        "same-origin member add: {}",
        a.body
    );
    assert!(is_member(&owner, "ops", "bob").await);
    let a = with_cookie(
        &s,
        Method::POST,
        &format!("{job_path}/cancel"),
        &session,
        &[("Sec-Fetch-Site", "same-origin")],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "same-origin cancel: {}", a.body);
    assert_eq!(a.body["status"], "canceled");
    let referer = format!("{own}/organizations/ops/members");
    let a = with_cookie(
        &s,
        Method::PUT,
        "/users/bob/status/suspend",
        &session,
        &[("Referer", &referer)],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "same-origin suspend: {}", a.body);
    assert_eq!(owner.get_ok("/users/bob").await["status"], "suspended");

    // Bearer requests need no Origin, and a foreign one changes nothing.
    let (status, body) = owner.put("/users/bob/status/activate", json!({})).await;
    assert_eq!(status, StatusCode::OK, "bearer without Origin: {body}");
    assert_eq!(owner.get_ok("/users/bob").await["status"], "active");
    let a = answer(
        reqwest::Client::new()
            .delete(format!("{}/api/v2{member_add}", s.base))
            .bearer_auth(&session)
            .header("Origin", EVIL),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::NO_CONTENT,
        "bearer with a foreign Origin: {}",
        a.body
    );
    assert!(!is_member(&owner, "ops", "bob").await);

    // A same-origin logout ends the session and clears the cookie.
    let a = with_cookie(
        &s,
        Method::POST,
        "/users/logout",
        &session,
        &[("Origin", &own)],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let cleared = a.session_cookie();
    assert!(cleared.starts_with("orgsync_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(!cleared.contains("Secure"), "http access URL: {cleared}");
    let (status, reply) = owner.get("/users/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
}

#[tokio::test]
async fn sec_web_cookies_are_secure_on_https_and_secrets_are_not_cached() {
    // Served over plain HTTP, announced as https: the cookie attribute is what counts.
    let s = TestServer::start_with(|a| {
        a.access_url = Some(format!("https://{}", a.listen.expect("listen")));
    })
    .await;
    let http = reqwest::Client::new();
    let api = format!("{}/api/v2", s.base);
    let first = answer(http.post(format!("{api}/users/first")).json(
        &json!({"username": "admin", "email": "admin@example.com", "password": "password123"}),
    ))
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let login = answer(
        http.post(format!("{api}/users/login"))
            .json(&json!({"email": "admin@example.com", "password": "password123"})),
    )
    .await;
    assert_eq!(login.status, StatusCode::CREATED, "{}", login.body);
    for (what, a) in [("first user", &first), ("login", &login)] {
        let c = a.session_cookie();
        for attr in ["; Secure", "; HttpOnly", "; SameSite=Lax", "; Path=/"] {
            assert!(c.contains(attr), "{what}: {attr} missing in {c}");
        }
        assert_eq!(a.header(CACHE_CONTROL), Some("no-store"), "{what}");
    }
    let mut owner = s.client();
    owner.token = Some(
        login.body["session_token"]
            .as_str()
            .expect("token")
            .to_owned(),
    );
    owner.create_org("ops").await;

    let bearer = |req: reqwest::RequestBuilder| req.bearer_auth(owner.token.clone().expect("t"));
    let token = answer(
        bearer(http.post(format!("{api}/users/me/keys/tokens"))).json(&json!({"token_name": "ci"})),
    )
    .await;
    assert_eq!(token.status, StatusCode::CREATED, "{}", token.body);
    assert!(token.body["key"].is_string());
    let key = answer(
        bearer(http.post(format!("{api}/organizations/ops/provisionerkeys")))
            .json(&json!({"name": "k"})),
    )
    .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    assert!(key.body["key"].is_string());
    for (what, a) in [("token", &token), ("provisioner key", &key)] {
        assert_eq!(a.header(CACHE_CONTROL), Some("no-store"), "{what}");
    }

    // The cookie's origin is the https access URL, whatever the transport.
    let session = owner.token.clone().expect("t");
    let http_origin = s.base.clone();
    let https_origin = format!("https://{}", s.addr);
    let a = with_cookie(
        &s,
        Method::POST,
        "/users/logout",
        &session,
        &[("Origin", &http_origin)],
        None,
    )
    .await;
    assert_refused(&a, "the http origin of an https deployment");
    let a = with_cookie(
        &s,
        Method::POST,
        "/users/logout",
        &session,
        &[("Origin", &https_origin)],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let cleared = a.session_cookie();
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("; Secure"),
        "{cleared}"
    );
    let (status, body) = owner.get("/users/me").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the session ended: {body}"
    );
}

/// A session from an OIDC login lives in the browser's cookie jar: its writes
/// count only from the site itself.
#[tokio::test]
async fn sec_web_oidc_sessions_write_only_from_the_site() {
    let op = Provider::start(
        json!({"sub-alice": account("alice@example.com", "Alice Smith", &["eng"])}),
        true,
    );
    let s = crate::oidc::server(&op.issuer, |_| {}).await;
    let _owner = s.owner().await;
    let b = Browser::new(&s);
    b.login("sub-alice").await;
    let logout = "/api/v2/users/logout";
    for headers in [
        &[("Origin", EVIL)][..],
        &[("Sec-Fetch-Site", "cross-site")][..],
        &[][..],
    ] {
        assert_eq!(
            b.send(Method::POST, logout, headers).await,
            StatusCode::FORBIDDEN,
            "{headers:?}"
        );
    }
    let (status, body) = b.me().await;
    assert_eq!(status, StatusCode::OK, "the session survived: {body}");
    assert_eq!(
        b.send(Method::POST, logout, &[("Origin", SITE)]).await,
        StatusCode::OK
    );
    let (status, reply) = b.me().await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
}

/// A login from this test (one client address).
#[must_use]
async fn login(s: &TestServer, email: &str, password: &str) -> Answer {
    answer(
        reqwest::Client::new()
            .post(format!("{}/api/v2/users/login", s.base))
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

fn retry_after(a: &Answer) -> u64 {
    a.header(RETRY_AFTER)
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", a.headers))
        .parse()
        .expect("Retry-After seconds")
}

/// `login_failed` audit entries, with their targets.
async fn failed_logins(s: &TestServer) -> Vec<String> {
    let mut conn = s.state.db.pool().acquire().await.expect("conn");
    sqlx::query_scalar::<_, String>(
        "SELECT resource_target FROM audit_logs WHERE action = 'login_failed' ORDER BY time",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("audit")
}

async fn create_password_user(owner: &Client, username: &str) {
    let (status, body) = owner
        .post(
            "/users",
            json!({"username": username, "email": format!("{username}@example.com"),
                   "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn sec_web_login_is_throttled_per_account_alike_for_unknown_accounts() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    create_password_user(&owner, "alice").await;

    let mut refusals = Vec::new();
    for email in ["alice@example.com", "nobody@example.com"] {
        for i in 1..=10 {
            let a = login(&s, email, "wrong-password").await;
            assert_eq!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "{email} #{i}: {}",
                a.body
            );
        }
        let a = login(&s, email, "wrong-password").await;
        assert_eq!(
            a.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{email} #11: {}",
            a.body
        );
        let secs = retry_after(&a);
        assert!((1..=300).contains(&secs), "{email}: Retry-After {secs}");
        assert_eq!(a.header(CACHE_CONTROL), Some("no-store"));
        refusals.push(a.body);
    }
    assert!(refusals[0]["message"].is_string(), "{}", refusals[0]);
    assert_eq!(
        refusals[0], refusals[1],
        "an unknown account is answered alike"
    );

    // While throttled, the right password is refused too (it is not checked),
    // and nothing more is audited.
    let a = login(&s, "alice@example.com", "password123").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.body, refusals[0]);
    let a = login(&s, " ALICE@example.com ", "password123").await;
    assert_eq!(
        a.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the account is the normalized email"
    );
    assert_eq!(
        failed_logins(&s).await,
        ["alice@example.com", "nobody@example.com"],
        "one login_failed entry per account and window"
    );

    // Other accounts from the same address still log in (23 < 50 failures).
    let a = login(&s, "admin@example.com", "password123").await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    // The counters hold no typed text.
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM login_throttle WHERE key LIKE '%example%'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn sec_web_login_is_throttled_per_client_address_across_accounts() {
    let s = TestServer::start_with(|a| a.throttle.login_max_failures_per_address = Some(5)).await;
    let owner = s.owner().await;
    for i in 1..=5 {
        let a = login(&s, &format!("user{i}@example.com"), "wrong-password").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "#{i}: {}", a.body);
    }
    let a = login(&s, "user6@example.com", "wrong-password").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert!(retry_after(&a) >= 1);
    // The owner's right password, from this address: refused, unchecked.
    let a = login(&s, "admin@example.com", "password123").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(failed_logins(&s).await.len(), 5);
    // Sessions already open are not affected.
    let (status, reply) = owner.get("/users/me").await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}

#[tokio::test]
async fn sec_web_login_works_again_after_the_window() {
    let s = TestServer::start_with(|a| {
        a.throttle.login_max_failures_per_account = Some(3);
        a.throttle.login_failure_window_seconds = Some(2);
    })
    .await;
    let owner = s.owner().await;
    create_password_user(&owner, "alice").await;
    for _ in 0..3 {
        assert_eq!(
            login(&s, "alice@example.com", "nope-nope").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let a = login(&s, "alice@example.com", "password123").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert!((1..=2).contains(&retry_after(&a)), "{:?}", a.headers);

    // The real user gets in once the window has passed.
    wait_for(
        "the window to pass and alice to log in",
        Duration::from_secs(20),
        async || {
            let a = login(&s, "alice@example.com", "password123").await;
            if a.status == StatusCode::CREATED {
                return Ok(());
            }
            assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
            Err(a.body)
        },
    )
    .await;
    // A new window: its first failure is audited again, once.
    assert_eq!(failed_logins(&s).await.len(), 1);
    for _ in 0..2 {
        assert_eq!(
            login(&s, "alice@example.com", "nope-nope").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(failed_logins(&s).await.len(), 2);
}

#[tokio::test]
async fn sec_web_audit_never_stores_what_was_typed_instead_of_an_email() {
    let s = TestServer::start().await;
    let _owner = s.owner().await;
    let a = login(&s, "<script>x", "whatever-password").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(failed_logins(&s).await, ["(invalid)"]);
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM audit_logs WHERE resource_target LIKE '%script%' \
                   OR diff LIKE '%script%' OR resource_id LIKE '%script%'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) FROM login_throttle WHERE key LIKE '%script%'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn sec_web_expired_counters_are_pruned() {
    let s = TestServer::start_with(|a| a.throttle.login_failure_window_seconds = Some(1)).await;
    let old: Vec<String> = (0..5).map(|i| format!("gone{i}@example.com")).collect();
    for email in &old {
        assert_eq!(
            login(&s, email, "wrong-password").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let keys: Vec<String> = old
        .iter()
        .map(|e| format!("'{}'", orgsync::throttle::account_key(e)))
        .collect();
    let left = format!(
        "SELECT COUNT(*) FROM login_throttle WHERE key IN ({})",
        keys.join(", ")
    );
    assert_eq!(count(&s, &left).await, 5);
    // Later failures open new windows, and each new window prunes old rows.
    let mut i = 0;
    wait_for(
        "a new window to prune the expired counters",
        Duration::from_secs(20),
        async || {
            let n = count(&s, &left).await;
            if n == 0 {
                return Ok(());
            }
            i += 1;
            let a = login(&s, &format!("probe{i}@example.com"), "wrong-password").await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "probe {i}: {}", a.body);
            Err(format!("{n} expired counters left after {i} probes"))
        },
    )
    .await;
}

/// Two replicas on one database (PostgreSQL under `ORGSYNC_TEST_DB=postgres`,
/// which fails loudly when it is unreachable; one SQLite file otherwise).
#[tokio::test]
async fn sec_web_failures_on_one_replica_throttle_the_other() {
    let limits = |a: &mut ServerArgs| {
        a.throttle.login_max_failures_per_account = Some(4);
    };
    let one = TestServer::start_with(limits).await;
    let owner = one.owner().await;
    create_password_user(&owner, "alice").await;
    let two = one.replica_with(limits).await;
    for (i, s) in [&one, &two, &one, &two].into_iter().enumerate() {
        let a = login(s, "alice@example.com", "wrong-password").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "#{}: {}", i + 1, a.body);
    }
    for s in [&two, &one] {
        let a = login(s, "alice@example.com", "password123").await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
        assert!(retry_after(&a) >= 1);
    }
    assert_eq!(
        failed_logins(&two).await,
        ["alice@example.com"],
        "audited once across replicas"
    );
    // Parallel attempts on both replicas cannot overshoot the limit: every
    // one of them is refused without a password check.
    create_password_user(&owner, "carol").await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let base = if i % 2 == 0 {
            one.base.clone()
        } else {
            two.base.clone()
        };
        tasks.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/api/v2/users/login"))
                .json(&json!({"email": "carol@example.com", "password": "wrong-password"}))
                .send()
                .await
                .expect("login")
                .status()
        }));
    }
    let mut unauthorized = 0;
    for t in tasks {
        match t.await.expect("task") {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("parallel login: {other}"),
        }
    }
    assert_eq!(
        unauthorized, 4,
        "exactly the limit is checked, in parallel too"
    );
    two.stop().await;
}
