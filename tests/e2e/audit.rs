//! The audit log: every change writes an entry with the right action, resource,
//! organization, actor and a field diff; `GET /audit` filters by organization,
//! user, resource type, action and time, paginated; who may read what; and no
//! secret is ever written to it.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::bad_input::assert_error_shape;
use crate::harness::{Client, TestServer};
use crate::testkit::wait_for;

/// Follows the log through the owner's eyes: each step must add exactly the
/// expected number of entries.
struct Log<'a> {
    owner: &'a Client,
    seen: usize,
}

impl Log<'_> {
    async fn all(&self) -> Vec<Value> {
        let (status, body) = self.owner.get("/audit?limit=1000").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let entries = body["audit_logs"].as_array().unwrap().clone();
        assert_eq!(body["count"], json!(entries.len()), "{body}");
        entries
    }

    /// The `n` entries written since the last call, oldest first.
    async fn added(&mut self, n: usize, step: &str) -> Vec<Value> {
        let all = self.all().await;
        assert_eq!(
            all.len() - self.seen,
            n,
            "{step}: expected {n} new entries, newest: {:#}",
            json!(all.iter().take(all.len() - self.seen).collect::<Vec<_>>())
        );
        self.seen = all.len();
        let mut out: Vec<Value> = all.into_iter().take(n).collect();
        out.reverse();
        out
    }

    async fn one(&mut self, step: &str) -> Value {
        self.added(1, step).await.remove(0)
    }
}

/// Checks the identifying fields of an entry, and the request fields every
/// entry carries.
#[allow(clippy::too_many_arguments, reason = "one line per checked field")]
fn check(
    e: &Value,
    action: &str,
    resource_type: &str,
    resource_id: Option<&str>,
    organization_id: Option<&str>,
    user_id: Option<&str>,
    status_code: u16,
    step: &str,
) {
    assert_eq!(e["action"], action, "{step}: {e:#}");
    assert_eq!(e["resource_type"], resource_type, "{step}: {e:#}");
    if let Some(rid) = resource_id {
        assert_eq!(e["resource_id"], rid, "{step}: {e:#}");
    }
    assert_eq!(
        e["organization_id"],
        json!(organization_id),
        "{step}: {e:#}"
    );
    assert_eq!(e["user_id"], json!(user_id), "{step}: {e:#}");
    assert_eq!(e["status_code"], status_code, "{step}: {e:#}");
    assert_eq!(e["source"], "api", "{step}: {e:#}");
    assert_eq!(e["ip"], "127.0.0.1", "{step}: {e:#}");
    assert!(
        e["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{step}: no request id: {e:#}"
    );
    assert!(
        e["id"]
            .as_str()
            .is_some_and(|i| uuid::Uuid::parse_str(i).is_ok()),
        "{step}: {e:#}"
    );
    assert!(
        e["time"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some(),
        "{step}: time: {e:#}"
    );
}

/// `diff[field]` as `(old, new)`.
fn change<'a>(e: &'a Value, field: &str) -> (&'a Value, &'a Value) {
    let d = &e["diff"][field];
    assert!(d.is_object(), "no diff of `{field}` in {e:#}");
    (&d["old"], &d["new"])
}

fn diff_keys(e: &Value) -> Vec<&str> {
    e["diff"]
        .as_object()
        .unwrap_or_else(|| panic!("diff is not an object: {e:#}"))
        .keys()
        .map(String::as_str)
        .collect()
}

#[must_use]
async fn login(s: &TestServer, email: &str, password: &str) -> (StatusCode, Value) {
    s.client()
        .post(
            "/users/login",
            json!({"email": email, "password": password}),
        )
        .await
}

fn client_with(s: &TestServer, token: &str) -> Client {
    let mut c = s.client();
    c.token = Some(token.to_owned());
    c
}

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {v}"))
        .to_owned()
}

#[tokio::test]
async fn every_change_writes_an_entry_with_a_field_diff() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let owner_id = id_of(&owner.get_ok("/users/me").await);
    let mut log = Log {
        owner: &owner,
        seen: 0,
    };
    let me = Some(owner_id.as_str());

    // The first user.
    let e = log.one("first user").await;
    check(&e, "create", "user", me, None, me, 201, "first user");
    assert_eq!(change(&e, "username"), (&Value::Null, &json!("admin")));
    assert_eq!(
        change(&e, "roles"),
        (&Value::Null, &json!(["member", "owner"]))
    );

    // User create.
    let (status, alice) = owner
        .post(
            "/users",
            json!({"username": "alice", "email": "alice@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{alice}");
    let alice_id = id_of(&alice);
    let a = Some(alice_id.as_str());
    let e = log.one("user create").await;
    check(&e, "create", "user", a, None, me, 201, "user create");
    assert_eq!(change(&e, "username"), (&Value::Null, &json!("alice")));
    assert_eq!(
        change(&e, "email"),
        (&Value::Null, &json!("alice@example.com"))
    );
    assert_eq!(e["resource_target"], "alice");

    // Login and failed logins.
    let (status, body) = login(&s, "alice@example.com", "password123").await;
    assert_eq!(status, StatusCode::CREATED);
    let alice_c = client_with(&s, body["session_token"].as_str().unwrap());
    let e = log.one("login").await;
    check(&e, "login", "api_key", None, None, a, 201, "login");
    assert_eq!(e["resource_target"], "alice");
    let (status, reply) = login(&s, "alice@example.com", "not-the-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    let e = log.one("failed login").await;
    check(
        &e,
        "login_failed",
        "api_key",
        None,
        None,
        a,
        401,
        "failed login",
    );
    assert_eq!(e["resource_target"], "alice@example.com");
    let (status, reply) = login(&s, "nobody@example.com", "password123").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    let e = log.one("failed login, unknown email").await;
    check(
        &e,
        "login_failed",
        "api_key",
        None,
        None,
        None,
        401,
        "unknown email",
    );
    assert_eq!(e["resource_target"], "nobody@example.com");

    // User update: only the changed field.
    let (status, reply) = owner
        .patch("/users/alice", json!({"name": "Alice A"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let e = log.one("user update").await;
    check(&e, "update", "user", a, None, me, 200, "user update");
    assert_eq!(diff_keys(&e), ["name"], "{e:#}");
    assert_eq!(change(&e, "name"), (&json!(""), &json!("Alice A")));

    // Suspend, login refused while suspended, activate.
    let (status, reply) = owner.put("/users/alice/status/suspend", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let e = log.one("suspend").await;
    check(&e, "update", "user", a, None, me, 200, "suspend");
    assert_eq!(diff_keys(&e), ["status"], "{e:#}");
    assert_eq!(
        change(&e, "status"),
        (&json!("active"), &json!("suspended"))
    );
    let (status, reply) = login(&s, "alice@example.com", "password123").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    let e = log.one("suspended login").await;
    check(
        &e,
        "login_failed",
        "api_key",
        None,
        None,
        a,
        403,
        "suspended login",
    );
    let (status, reply) = owner.put("/users/alice/status/activate", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let e = log.one("activate").await;
    check(&e, "update", "user", a, None, me, 200, "activate");
    assert_eq!(
        change(&e, "status"),
        (&json!("suspended"), &json!("active"))
    );

    // Site roles.
    owner.set_site_roles("alice", &["auditor"]).await;
    let e = log.one("site roles").await;
    check(&e, "update", "user", a, None, me, 200, "site roles");
    assert_eq!(diff_keys(&e), ["roles"], "{e:#}");
    assert_eq!(
        change(&e, "roles"),
        (&json!(["member"]), &json!(["member", "auditor"]))
    );

    // Organization create and update.
    let eng = owner.create_org("eng").await;
    let org = Some(eng.as_str());
    let e = log.one("org create").await;
    check(
        &e,
        "create",
        "organization",
        org,
        org,
        me,
        201,
        "org create",
    );
    assert_eq!(change(&e, "name"), (&Value::Null, &json!("eng")));
    assert_eq!(e["resource_target"], "eng");
    let (status, reply) = owner
        .patch("/organizations/eng", json!({"display_name": "Engineering"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let e = log.one("org update").await;
    check(
        &e,
        "update",
        "organization",
        org,
        org,
        me,
        200,
        "org update",
    );
    assert_eq!(diff_keys(&e), ["display_name"], "{e:#}");
    assert_eq!(
        change(&e, "display_name"),
        (&json!("eng"), &json!("Engineering"))
    );

    // Member add, roles.
    let (status, bob) = owner
        .post(
            "/users",
            json!({"username": "bob", "email": "bob@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let bob_id = id_of(&bob);
    let b = Some(bob_id.as_str());
    log.added(1, "bob").await;
    let (status, reply) = owner
        .post("/organizations/eng/members/bob", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let e = log.one("member add").await;
    check(
        &e,
        "create",
        "organization_member",
        b,
        org,
        me,
        201,
        "member add",
    );
    assert_eq!(change(&e, "roles"), (&Value::Null, &json!([])));
    let (status, reply) = owner
        .put(
            "/organizations/eng/members/bob/roles",
            json!({"roles": ["organization-admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let e = log.one("member roles").await;
    check(
        &e,
        "update",
        "organization_member",
        b,
        org,
        me,
        200,
        "member roles",
    );
    assert_eq!(
        change(&e, "roles"),
        (&json!([]), &json!(["organization-admin"]))
    );

    // Group create, update, then member removal (leaves the group), group delete.
    let (status, g) = owner
        .post("/organizations/eng/groups", json!({"name": "backend"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let gid = id_of(&g);
    let gr = Some(gid.as_str());
    let e = log.one("group create").await;
    check(&e, "create", "group", gr, org, me, 201, "group create");
    assert_eq!(change(&e, "name"), (&Value::Null, &json!("backend")));
    let (status, reply) = owner
        .patch(
            &format!("/groups/{gid}"),
            json!({"display_name": "Backend", "add_users": ["bob"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let e = log.one("group update").await;
    check(&e, "update", "group", gr, org, me, 200, "group update");
    assert_eq!(change(&e, "display_name"), (&json!(""), &json!("Backend")));
    assert_eq!(change(&e, "members"), (&json!([]), &json!([bob_id])));
    assert!(!diff_keys(&e).contains(&"name"), "{e:#}");
    let (status, reply) = owner.delete("/organizations/eng/members/bob").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    let e = log.one("member remove").await;
    check(
        &e,
        "delete",
        "organization_member",
        b,
        org,
        me,
        204,
        "member remove",
    );
    assert_eq!(
        change(&e, "roles"),
        (&json!(["organization-admin"]), &Value::Null)
    );
    assert_eq!(change(&e, "groups"), (&json!([gid]), &json!([])));
    let (status, reply) = owner.delete(&format!("/groups/{gid}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    let e = log.one("group delete").await;
    check(&e, "delete", "group", gr, org, me, 204, "group delete");
    assert_eq!(change(&e, "name"), (&json!("backend"), &Value::Null));

    // Organization delete.
    let tmp = owner.create_org("tmp").await;
    log.added(1, "tmp").await;
    let (status, reply) = owner.delete("/organizations/tmp").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    let e = log.one("org delete").await;
    let t = Some(tmp.as_str());
    check(&e, "delete", "organization", t, t, me, 204, "org delete");
    assert_eq!(change(&e, "name"), (&json!("tmp"), &Value::Null));

    // Token creation, by alice for herself.
    let (status, tok) = alice_c
        .post(
            "/users/me/keys/tokens",
            json!({"token_name": "ci", "lifetime_seconds": 3600}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tok}");
    let e = log.one("token").await;
    let tid = id_of(&tok);
    check(&e, "create", "api_key", Some(&tid), None, a, 201, "token");
    assert_eq!(change(&e, "token_name"), (&Value::Null, &json!("ci")));
    assert_eq!(change(&e, "expires_at"), (&Value::Null, &tok["expires_at"]));

    // Logout and user delete.
    let (status, reply) = alice_c.post("/users/logout", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let e = log.one("logout").await;
    check(&e, "logout", "api_key", None, None, a, 200, "logout");
    let (status, reply) = owner.delete("/users/bob").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    let e = log.one("user delete").await;
    check(&e, "delete", "user", b, None, me, 204, "user delete");
    assert_eq!(change(&e, "username"), (&json!("bob"), &Value::Null));

    // Reads and refused requests write nothing.
    let members = owner.get_ok("/organizations/eng/members").await;
    assert_eq!(members.as_array().unwrap().len(), 1, "{members}");
    let (status, reply) = alice_c.get("/users/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "logged out: {reply}");
    let (status, reply) = owner.post("/organizations", json!({"name": "eng"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    let (carol, _) = owner.create_user("carol").await;
    log.added(2, "carol created and logged in").await;
    let (status, reply) = carol
        .patch("/organizations/eng", json!({"display_name": "x"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    let (status, reply) = carol
        .put("/users/me/roles", json!({"roles": ["owner"]}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    log.added(0, "reads and refusals").await;
}

#[tokio::test]
async fn audit_filters_and_pagination() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let owner_id = id_of(&owner.get_ok("/users/me").await);
    let eng = owner.create_org("eng").await;
    let ops = owner.create_org("ops").await;
    let (alice, alice_id) = owner.create_user("alice").await;
    owner
        .add_member("eng", "alice", &["organization-admin"])
        .await;
    for name in ["backend", "frontend"] {
        let (status, reply) = alice
            .post("/organizations/eng/groups", json!({"name": name}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
    }
    // A time strictly between the first half and the second half: the clock
    // (the server's: same process) is polled until it is past the newest
    // entry, and again until it is past `mid` before the second half starts.
    let newest = owner.get_ok("/audit?limit=1").await["audit_logs"][0]["time"]
        .as_str()
        .unwrap()
        .to_owned();
    let clock = || orgsync::clock::fmt(orgsync::clock::now());
    let mid = wait_for(
        "the clock to pass the first half",
        Duration::from_secs(5),
        async || {
            let now = clock();
            (now > newest).then_some(now)
        },
    )
    .await;
    wait_for(
        "the clock to pass `mid`",
        Duration::from_secs(5),
        async || clock() > mid,
    )
    .await;
    let (status, reply) = owner
        .post("/organizations/ops/groups", json!({"name": "sre"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (status, reply) = alice
        .patch("/organizations/eng", json!({"display_name": "Engineering"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (_, bob_id) = owner.create_user("bob").await;
    owner.add_member("ops", "bob", &[]).await;
    let (status, reply) = login(&s, "bob@example.com", "wrong-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    let (status, reply) = owner
        .patch("/organizations/ops", json!({"description": "Operations"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");

    let body = owner.get_ok("/audit?limit=1000").await;
    let all = body["audit_logs"].as_array().unwrap().clone();
    assert_eq!(body["count"], json!(all.len()));
    assert_eq!(all.len(), 16, "{:#}", json!(all));
    // Newest first.
    let times: Vec<&str> = all.iter().map(|e| e["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    // Default page size is bounded and the count is the total.
    let first = owner.get_ok("/audit").await;
    assert_eq!(first["count"], json!(all.len()));

    let ids = |v: &[Value]| -> Vec<String> { v.iter().map(id_of).collect() };
    let by = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        all.iter().filter(|e| pred(e)).map(id_of).collect()
    };
    let is = |e: &Value, k: &str, v: &str| e[k] == v;
    type Pred<'a> = Box<dyn Fn(&Value) -> bool + 'a>;
    let cases: Vec<(String, Pred, Option<usize>)> = vec![
        (
            "q=resource_type:group%20action:create".into(),
            Box::new(|e| is(e, "resource_type", "group") && is(e, "action", "create")),
            Some(3),
        ),
        (
            "resource_type=group&action=create".into(),
            Box::new(|e| is(e, "resource_type", "group") && is(e, "action", "create")),
            Some(3),
        ),
        (
            "organization=eng".into(),
            Box::new(|e| is(e, "organization_id", &eng)),
            None,
        ),
        (
            format!("organization={eng}"),
            Box::new(|e| is(e, "organization_id", &eng)),
            None,
        ),
        (
            "q=organization:ops".into(),
            Box::new(|e| is(e, "organization_id", &ops)),
            None,
        ),
        (
            "q=organization:eng%20resource_type:group".into(),
            Box::new(|e| is(e, "organization_id", &eng) && is(e, "resource_type", "group")),
            Some(2),
        ),
        (
            "user=alice".into(),
            Box::new(|e| is(e, "user_id", &alice_id)),
            None,
        ),
        (
            format!("q=user:{alice_id}"),
            Box::new(|e| is(e, "user_id", &alice_id)),
            None,
        ),
        (
            "user=me".into(),
            Box::new(|e| is(e, "user_id", &owner_id)),
            None,
        ),
        (
            "user=bob&action=login_failed".into(),
            Box::new(|e| is(e, "user_id", &bob_id) && is(e, "action", "login_failed")),
            Some(1),
        ),
        (
            "action=update&resource_type=organization".into(),
            Box::new(|e| is(e, "action", "update") && is(e, "resource_type", "organization")),
            Some(2),
        ),
        (
            format!("resource_id={eng}"),
            Box::new(|e| is(e, "resource_id", &eng)),
            Some(2),
        ),
        (
            "q=source:api".into(),
            Box::new(|e| is(e, "source", "api")),
            Some(all.len()),
        ),
        (
            format!("from={mid}"),
            Box::new(|e| e["time"].as_str().unwrap() >= mid.as_str()),
            None,
        ),
        (
            format!("q=to:{mid}"),
            Box::new(|e| e["time"].as_str().unwrap() <= mid.as_str()),
            None,
        ),
        (
            format!("q=from:{mid}%20organization:eng"),
            Box::new(|e| {
                e["time"].as_str().unwrap() >= mid.as_str() && is(e, "organization_id", &eng)
            }),
            Some(1),
        ),
        (
            format!("from={}&to={mid}", times[times.len() - 1]),
            Box::new(|e| e["time"].as_str().unwrap() <= mid.as_str()),
            None,
        ),
        (
            "organization=no-such-org".into(),
            Box::new(|_| false),
            Some(0),
        ),
    ];
    for (query, pred, want) in &cases {
        let (status, body) = owner.get(&format!("/audit?limit=1000&{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        let got = ids(body["audit_logs"].as_array().unwrap());
        let expected = by(pred.as_ref());
        assert_eq!(got, expected, "{query}");
        assert_eq!(body["count"], json!(expected.len()), "{query}");
        if let Some(n) = want {
            assert_eq!(expected.len(), *n, "{query}");
        }
    }
    // The time split is a real split.
    let before_mid = by(&|e| e["time"].as_str().unwrap() <= mid.as_str());
    assert!(!before_mid.is_empty() && before_mid.len() < all.len());

    // Pagination: pages concatenate to the full list, each with the total count.
    let all_ids = ids(&all);
    for limit in [1, 4, 7] {
        let mut paged = Vec::new();
        let mut offset = 0;
        loop {
            let body = owner
                .get_ok(&format!("/audit?limit={limit}&offset={offset}"))
                .await;
            assert_eq!(body["count"], json!(all.len()));
            let page = body["audit_logs"].as_array().unwrap();
            assert!(page.len() <= limit);
            if page.is_empty() {
                break;
            }
            paged.extend(ids(page));
            offset += limit;
        }
        assert_eq!(paged, all_ids, "limit {limit}");
    }
    // Filtered pages are slices of the filtered list.
    let eng_ids = by(&|e| is(e, "organization_id", &eng));
    let body = owner
        .get_ok("/audit?q=organization:eng&limit=2&offset=1")
        .await;
    assert_eq!(
        ids(body["audit_logs"].as_array().unwrap()),
        eng_ids[1..3].to_vec()
    );
    assert_eq!(body["count"], json!(eng_ids.len()));
    // Bad pagination and filters are 400s with the error shape.
    for q in [
        "limit=0",
        "limit=1001",
        "offset=-1",
        "q=resource_type",
        "q=colour:blue",
        "from=not-a-time",
    ] {
        let (status, body) = owner.get(&format!("/audit?{q}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert_error_shape(status, &body, q);
    }
}

#[tokio::test]
async fn who_reads_which_audit_entries() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let eng = owner.create_org("eng").await;
    let ops = owner.create_org("ops").await;
    let (eng_admin, _) = owner.create_user("eng-admin").await;
    owner
        .add_member("eng", "eng-admin", &["organization-admin"])
        .await;
    let (eng_auditor, _) = owner.create_user("eng-auditor").await;
    owner
        .add_member("eng", "eng-auditor", &["organization-auditor"])
        .await;
    let (eng_member, _) = owner.create_user("eng-member").await;
    owner.add_member("eng", "eng-member", &[]).await;
    let (ops_admin, _) = owner.create_user("ops-admin").await;
    owner
        .add_member("ops", "ops-admin", &["organization-admin"])
        .await;
    // ops-admin is also a plain member of eng: that grants no eng audit.
    owner.add_member("eng", "ops-admin", &[]).await;
    let (site_auditor, _) = owner.create_user("site-auditor").await;
    owner.set_site_roles("site-auditor", &["auditor"]).await;
    let (user_admin, _) = owner.create_user("user-admin").await;
    owner.set_site_roles("user-admin", &["user-admin"]).await;
    let (status, reply) = eng_admin
        .post("/organizations/eng/groups", json!({"name": "backend"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (status, reply) = ops_admin
        .post("/organizations/ops/groups", json!({"name": "sre"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");

    let get_all = |c: &Client, q: &str| {
        let c = c.clone();
        let q = q.to_owned();
        async move { c.get(&format!("/audit?limit=1000{q}")).await }
    };
    let get_all_ok = |c: &Client, q: &str| {
        let c = c.clone();
        let q = q.to_owned();
        async move { c.get_ok(&format!("/audit?limit=1000{q}")).await }
    };
    let ids = |v: &Value| -> Vec<String> {
        v["audit_logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(id_of)
            .collect()
    };
    let everything = get_all_ok(&owner, "").await;
    let eng_only = get_all_ok(&owner, &format!("&organization={eng}")).await;
    let ops_only = get_all_ok(&owner, &format!("&organization={ops}")).await;
    assert!(ids(&eng_only).len() >= 6, "{eng_only:#}");
    assert!(ids(&ops_only).len() >= 3, "{ops_only:#}");
    let orgless = everything["audit_logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["organization_id"].is_null())
        .count();
    assert!(orgless > 5, "user and login entries have no org");

    // A site auditor reads everything, like the owner.
    let (status, body) = get_all(&site_auditor, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body), ids(&everything));
    assert_eq!(body["count"], everything["count"]);

    // Org admins and org auditors read exactly their org's entries.
    for (who, c, mine, other) in [
        ("eng-admin", &eng_admin, &eng_only, ops.as_str()),
        ("eng-auditor", &eng_auditor, &eng_only, ops.as_str()),
        ("ops-admin", &ops_admin, &ops_only, eng.as_str()),
    ] {
        let (status, body) = get_all(c, "").await;
        assert_eq!(status, StatusCode::OK, "{who}: {body}");
        assert_eq!(ids(&body), ids(mine), "{who}");
        assert_eq!(body["count"], mine["count"], "{who}");
        let (status, body) = get_all(c, &format!("&organization={other}")).await;
        assert_eq!(status, StatusCode::OK, "{who}: {body}");
        assert_eq!(body["count"], 0, "{who}: {body}");
        let body = get_all_ok(c, "&q=resource_type:user").await;
        assert_eq!(
            body["count"], 0,
            "{who}: user entries are site-wide: {body}"
        );
        let body = get_all_ok(c, "&q=action:login").await;
        assert_eq!(body["count"], 0, "{who}: logins are site-wide: {body}");
        let body = get_all_ok(c, "&q=resource_type:group").await;
        assert_eq!(body["count"], 1, "{who}: its org's group only: {body}");
    }

    // Plain members and site user-admins read no audit log: 403, whatever the filter.
    for (who, c) in [("eng-member", &eng_member), ("user-admin", &user_admin)] {
        for q in ["", "&organization=eng", "&user=me"] {
            let (status, body) = get_all(c, q).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} {q}: {body}");
            assert_error_shape(status, &body, who);
        }
    }
    // Unauthenticated: 401.
    let (status, body) = s.client().get("/audit").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error_shape(status, &body, "anonymous");
}

#[tokio::test]
async fn no_secret_is_ever_written_to_the_audit_log() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    let mut secrets: Vec<String> = vec!["password123".into(), owner.token.clone().unwrap()];
    let pw = "Zq81-alice-s3cret-Pw";
    let wrong = "Qx77-wrong-s3cret-Pw";
    secrets.extend([pw.to_owned(), wrong.to_owned()]);
    let (status, alice) = owner
        .post(
            "/users",
            json!({"username": "alice", "email": "alice@example.com", "password": pw, "organization_ids": []}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{alice}");
    let (status, body) = login(&s, "alice@example.com", pw).await;
    assert_eq!(status, StatusCode::CREATED);
    let session = body["session_token"].as_str().unwrap().to_owned();
    secrets.push(session.clone());
    let alice_c = client_with(&s, &session);
    let (status, reply) = login(&s, "alice@example.com", wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    let (status, reply) = login(&s, "nobody@example.com", wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    let (status, tok) = alice_c
        .post("/users/me/keys/tokens", json!({"token_name": "ci"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    secrets.push(tok["key"].as_str().unwrap().to_owned());
    let (status, tok2) = owner
        .post(
            "/users/alice/keys/tokens",
            json!({"token_name": "for-alice"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tok2}");
    secrets.push(tok2["key"].as_str().unwrap().to_owned());
    let (status, reply) = owner.put("/users/alice/status/suspend", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, reply) = login(&s, "alice@example.com", pw).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    let (status, reply) = owner.put("/users/alice/status/activate", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, reply) = owner
        .patch("/users/alice", json!({"email": "alice.a@example.com"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, reply) = alice_c.post("/users/logout", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, body) = owner
        .post(
            "/users/first",
            json!({"username": "x", "email": "x@example.com", "password": "first-s3cret-Pw-99"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    secrets.push("first-s3cret-Pw-99".into());

    // Stored forms of the secrets are secrets too.
    let mut conn = s.state.db.pool().acquire().await.unwrap();
    let hashes: Vec<(Option<String>,)> = sqlx::query_as("SELECT password_hash FROM users")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    secrets.extend(hashes.into_iter().filter_map(|(h,)| h));
    let hashed: Vec<(String,)> = sqlx::query_as("SELECT hashed_secret FROM api_keys")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    secrets.extend(hashed.into_iter().map(|(h,)| h));
    // Logged-out sessions are gone from api_keys; their hashes are computed here.
    {
        use sha2::Digest;
        secrets.push(hex::encode(sha2::Sha256::digest(session.as_bytes())));
    }
    assert!(secrets.len() >= 10);

    type Head = (
        String,
        String,
        Option<String>,
        Option<String>,
        String,
        String,
        String,
    );
    type Tail = (String, String, i64, String, String, String, String);
    let heads: Vec<Head> = sqlx::query_as(
        "SELECT id, time, user_id, organization_id, action, resource_type, resource_id \
         FROM audit_logs ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let tails: Vec<Tail> = sqlx::query_as(
        "SELECT resource_target, diff, status_code, ip, user_agent, request_id, source \
         FROM audit_logs ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let rows: Vec<(Head, Tail)> = heads.into_iter().zip(tails).collect();
    drop(conn);
    assert!(rows.len() >= 12, "{}", rows.len());
    let api = owner.get_ok("/audit?limit=1000").await;
    assert_eq!(api["count"], json!(rows.len()));
    let dump = format!("{rows:?}\n{api}");
    for secret in &secrets {
        assert!(
            !dump.contains(secret.as_str()),
            "a secret ({}...) is in the audit log",
            &secret[..secret.len().min(6)]
        );
    }
    // No diff names a secret field, at any depth.
    fn keys(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    out.insert(k.clone());
                    keys(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
            _ => {}
        }
    }
    let mut names = BTreeSet::new();
    for e in api["audit_logs"].as_array().unwrap() {
        keys(&e["diff"], &mut names);
    }
    for bad in [
        "password",
        "password_hash",
        "hashed_secret",
        "key",
        "session_token",
        "token",
        "secret",
    ] {
        assert!(!names.contains(bad), "diff field `{bad}` in {names:?}");
    }
    // The entries that were about secrets are there, without them.
    for action in ["login", "login_failed", "logout"] {
        assert!(
            api["audit_logs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == action),
            "{action}"
        );
    }
}
