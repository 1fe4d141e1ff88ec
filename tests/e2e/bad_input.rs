//! Bad input: malformed JSON, wrong types, unknown fields, invalid and too long
//! names, duplicates (409), unknown ids (404), oversized bodies (413), each
//! answered with the error shape of SPEC §6 (`{message, detail?, validations?:
//! [{field, detail}]}`), and failing multi-step changes that leave no trace.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Client, TestServer};

/// Asserts that `body` is exactly the §6 error shape: `message` (a non-empty
/// string), optional `detail` (a string), optional `validations` (a non-empty
/// list of `{field, detail}` strings), and nothing else.
pub fn assert_error_shape(status: StatusCode, body: &Value, what: &str) {
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{what}: {status} is not an error: {body}"
    );
    if let Some(problem) = shape_problem(body) {
        panic!("{what}: {status}: {problem}: {body}");
    }
}

/// What is wrong with an error body, if anything.
fn shape_problem(body: &Value) -> Option<&'static str> {
    let Some(obj) = body.as_object() else {
        return Some("the error body is not a JSON object");
    };
    if obj
        .keys()
        .any(|k| !["message", "detail", "validations"].contains(&k.as_str()))
    {
        return Some("unexpected key in the error body");
    }
    if obj
        .get("message")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Some("no message");
    }
    if obj.get("detail").is_some_and(|d| !d.is_string()) {
        return Some("`detail` is not a string");
    }
    if let Some(v) = obj.get("validations") {
        let Some(list) = v.as_array().filter(|l| !l.is_empty()) else {
            return Some("`validations` is not a non-empty list");
        };
        for item in list {
            let ok = item.as_object().is_some_and(|o| {
                o.len() == 2
                    && o.get("field")
                        .and_then(Value::as_str)
                        .is_some_and(|f| !f.is_empty())
                    && o.get("detail").is_some_and(Value::is_string)
            });
            if !ok {
                return Some("a validation is not `{field, detail}`");
            }
        }
    }
    None
}

/// The first validation's field, or "" when there is none.
fn field(body: &Value) -> &str {
    body["validations"][0]["field"].as_str().unwrap_or("")
}

/// Sends a raw body (or none) with an optional content type, as `c`.
#[must_use]
pub async fn raw(
    c: &Client,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> (StatusCode, String, Value) {
    let mut req = c.http.request(method, format!("{}{path}", c.base));
    if let Some(t) = &c.token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, ct, value)
}

/// Asserts an error answer: its status, the JSON content type and the §6 shape.
fn assert_error(got: &(StatusCode, String, Value), status: StatusCode, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.2);
    assert!(
        got.1.starts_with("application/json"),
        "{what}: error content type `{}`, body {}",
        got.1,
        got.2
    );
    assert_error_shape(got.0, &got.2, what);
}

fn count_of(v: &Value) -> usize {
    v.as_array().map_or(0, Vec::len)
}

async fn db_count(s: &TestServer, sql: &'static str) -> i64 {
    let mut conn = s.state.db.pool().acquire().await.unwrap();
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut *conn).await.unwrap();
    n
}

/// A small world: owner, orgs `eng` and `ops`, users bob (eng member) and carol
/// (not in eng), group `backend` in eng with bob.
struct World {
    owner: Client,
    eng: String,
    ops: String,
    bob_id: String,
    carol_id: String,
    backend: String,
}

async fn world(s: &TestServer) -> World {
    let owner = s.owner().await;
    let eng = owner.create_org("eng").await;
    let ops = owner.create_org("ops").await;
    let (_, bob_id) = owner.create_user("bob").await;
    let (_, carol_id) = owner.create_user("carol").await;
    owner.add_member("eng", "bob", &[]).await;
    let (status, g) = owner
        .post(
            "/organizations/eng/groups",
            json!({"name": "backend", "display_name": "Backend"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{g}");
    let backend = g["id"].as_str().unwrap().to_owned();
    let (status, g) = owner
        .patch(&format!("/groups/{backend}"), json!({"add_users": ["bob"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{g}");
    World {
        owner,
        eng,
        ops,
        bob_id,
        carol_id,
        backend,
    }
}

/// The JSON routes of the API with a valid body for `world`, as `(method, path)`.
fn json_routes(w: &World) -> Vec<(Method, String)> {
    vec![
        (Method::POST, "/organizations".to_owned()),
        (Method::PATCH, "/organizations/eng".to_owned()),
        (Method::POST, "/users".to_owned()),
        (Method::PATCH, "/users/bob".to_owned()),
        (Method::PUT, "/users/bob/roles".to_owned()),
        (Method::POST, "/users/login".to_owned()),
        (Method::POST, "/users/me/keys/tokens".to_owned()),
        (Method::POST, "/organizations/eng/groups".to_owned()),
        (Method::PATCH, format!("/groups/{}", w.backend)),
        (
            Method::PUT,
            "/organizations/eng/members/bob/roles".to_owned(),
        ),
        (Method::POST, "/authcheck".to_owned()),
        (Method::POST, "/authorize".to_owned()),
    ]
}

#[tokio::test]
async fn malformed_json_is_400_with_the_error_shape() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let audit_before = db_count(&s, "SELECT COUNT(*) FROM audit_logs").await;
    let bodies: [&[u8]; 7] = [
        b"{",
        b"{\"name\": }",
        b"",
        b"[1, 2",
        b"{\"name\": \"x\"} trailing",
        b"{'name': 'x'}",
        b"\xff\xfe{}",
    ];
    for (method, path) in json_routes(&w) {
        for body in bodies {
            let what = format!("{method} {path} with {:?}", String::from_utf8_lossy(body));
            let got = raw(
                &w.owner,
                method.clone(),
                &path,
                Some("application/json"),
                Some(body.to_vec()),
            )
            .await;
            assert_error(&got, StatusCode::BAD_REQUEST, &what);
        }
    }
    // Nothing was written.
    assert_eq!(
        db_count(&s, "SELECT COUNT(*) FROM audit_logs").await,
        audit_before
    );
    assert_eq!(count_of(&w.owner.get_ok("/organizations").await), 3);
}

#[tokio::test]
async fn missing_json_content_type_is_415_with_the_error_shape() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    for (method, path) in json_routes(&w) {
        let what = format!("{method} {path} as text/plain");
        let got = raw(
            &w.owner,
            method.clone(),
            &path,
            Some("text/plain"),
            Some(br#"{"name": "x"}"#.to_vec()),
        )
        .await;
        assert_error(&got, StatusCode::UNSUPPORTED_MEDIA_TYPE, &what);
        let got = raw(&w.owner, method.clone(), &path, None, None).await;
        assert_error(
            &got,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("{method} {path} without a body"),
        );
    }
}

#[tokio::test]
async fn wrong_types_and_unknown_fields_name_the_field() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let o = &w.owner;
    let backend = format!("/groups/{}", w.backend);
    // (method, path, body, the field a validation must name)
    let cases: Vec<(Method, &str, Value, &str)> = vec![
        (Method::POST, "/organizations", json!({"name": 5}), "name"),
        (
            Method::POST,
            "/organizations",
            json!({"name": null}),
            "name",
        ),
        (
            Method::POST,
            "/organizations",
            json!({"name": "x", "description": ["a"]}),
            "description",
        ),
        (
            Method::PATCH,
            "/organizations/eng",
            json!({"display_name": true}),
            "display_name",
        ),
        (
            Method::POST,
            "/users",
            json!({"username": "dave", "email": "dave@example.com", "password": 12345678}),
            "password",
        ),
        (
            Method::POST,
            "/users",
            json!({"username": "dave", "email": "dave@example.com", "login_type": "sso"}),
            "login_type",
        ),
        (
            Method::POST,
            "/users",
            json!({"username": "dave", "email": "dave@example.com", "organization_ids": "eng"}),
            "organization_ids",
        ),
        (Method::PATCH, "/users/bob", json!({"name": 1}), "name"),
        (
            Method::PUT,
            "/users/bob/roles",
            json!({"roles": "auditor"}),
            "roles",
        ),
        (
            Method::PUT,
            "/users/bob/roles",
            json!({"roles": [1]}),
            "roles[0]",
        ),
        (
            Method::PUT,
            "/organizations/eng/members/bob/roles",
            json!({"roles": "organization-admin"}),
            "roles",
        ),
        (
            Method::POST,
            "/organizations/eng/groups",
            json!({"name": "qa", "quota_allowance": "ten"}),
            "quota_allowance",
        ),
        (
            Method::POST,
            "/organizations/eng/groups",
            json!({"name": "qa", "quota_allowance": 1.5}),
            "quota_allowance",
        ),
        (
            Method::PATCH,
            &backend,
            json!({"add_users": "bob"}),
            "add_users",
        ),
        (
            Method::PATCH,
            &backend,
            json!({"remove_users": [{"id": "bob"}]}),
            "remove_users[0]",
        ),
        (
            Method::POST,
            "/users/me/keys/tokens",
            json!({"lifetime_seconds": "1h"}),
            "lifetime_seconds",
        ),
        (
            Method::POST,
            "/authcheck",
            json!({"checks": {"x": {"object": {"resource_type": 1}, "action": "read"}}}),
            "checks.x.object.resource_type",
        ),
        (
            Method::POST,
            "/authcheck",
            json!({"checks": {"x": {"object": {"resource_type": "group"}, "action": ["read"]}}}),
            "checks.x.action",
        ),
    ];
    for (method, path, body, want) in cases {
        let what = format!("{method} {path} {body}");
        let (status, resp) = o.send(method, path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {resp}");
        assert_error_shape(status, &resp, &what);
        assert_eq!(field(&resp), want, "{what}: {resp}");
    }

    // Unknown fields, missing fields and a body of the wrong JSON type: 400,
    // naming the offending field in the answer.
    let cases: Vec<(Method, &str, Value, &str)> = vec![
        (
            Method::POST,
            "/organizations",
            json!({"name": "x", "owner": "me"}),
            "owner",
        ),
        (
            Method::PATCH,
            "/organizations/eng",
            json!({"is_default": true}),
            "is_default",
        ),
        (
            Method::POST,
            "/users",
            json!({"username": "dave", "email": "dave@example.com", "password": "password123", "roles": ["owner"]}),
            "roles",
        ),
        (
            Method::PATCH,
            "/users/bob",
            json!({"status": "suspended"}),
            "status",
        ),
        (
            Method::PUT,
            "/users/bob/roles",
            json!({"roles": [], "organization_roles": {}}),
            "organization_roles",
        ),
        (
            Method::PUT,
            "/organizations/eng/members/bob/roles",
            json!({"roles": [], "org": "ops"}),
            "org",
        ),
        (
            Method::POST,
            "/organizations/eng/groups",
            json!({"name": "qa", "members": ["bob"]}),
            "members",
        ),
        (
            Method::PATCH,
            &backend,
            json!({"organization_id": w.ops}),
            "organization_id",
        ),
        (
            Method::POST,
            "/authcheck",
            json!({"checks": {"x": {"object": {"resource_type": "group", "team": "a"}, "action": "read"}}}),
            "team",
        ),
        (Method::POST, "/organizations", json!({}), "name"),
        (
            Method::POST,
            "/users",
            json!({"email": "dave@example.com"}),
            "username",
        ),
        (Method::PUT, "/users/bob/roles", json!({}), "roles"),
        (Method::POST, "/authcheck", json!({}), "checks"),
        (Method::POST, "/organizations", json!(["eng"]), "body"),
        (Method::POST, "/authcheck", json!("checks"), "body"),
    ];
    for (method, path, body, name) in cases {
        let what = format!("{method} {path} {body}");
        let (status, resp) = o.send(method, path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {resp}");
        assert_error_shape(status, &resp, &what);
        assert!(
            resp.to_string().contains(name),
            "{what}: the answer does not name `{name}`: {resp}"
        );
    }
    // None of it changed anything.
    let eng = o.get_ok("/organizations/eng").await;
    assert_eq!(eng["display_name"], "eng");
    assert_eq!(eng["is_default"], false);
    let bob = o.get_ok("/users/bob").await;
    assert_eq!(bob["roles"], json!(["member"]));
    assert_eq!(bob["status"], "active");
    assert_eq!(bob["name"], "");
    let users = o.get_ok("/users").await;
    assert_eq!(users["count"], 3, "no `dave`: {users}");
    let groups = o.get_ok("/organizations/eng/groups").await;
    assert_eq!(count_of(&groups), 2, "{groups}");
}

#[tokio::test]
async fn invalid_and_too_long_names_are_400() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let o = &w.owner;
    let long = "a".repeat(65);
    let bad_names = [
        "",
        "Data",
        "a--b",
        "-a",
        "a-",
        "a_b",
        "a b",
        "é",
        "a/b",
        long.as_str(),
        "550e8400-e29b-41d4-a716-446655440000",
    ];
    let backend = format!("/groups/{}", w.backend);
    for name in bad_names {
        for (method, path) in [
            (Method::POST, "/organizations"),
            (Method::PATCH, "/organizations/eng"),
            (Method::POST, "/organizations/eng/groups"),
            (Method::PATCH, backend.as_str()),
        ] {
            let what = format!("{method} {path} name {name:?}");
            let (status, body) = o.send(method, path, Some(json!({"name": name}))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
            assert_error_shape(status, &body, &what);
            assert_eq!(field(&body), "name", "{what}: {body}");
        }
    }
    // The boundary: 64 characters is a valid name.
    let max = "b".repeat(64);
    let (status, body) = o.post("/organizations", json!({"name": max})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = o
        .post("/organizations/eng/groups", json!({"name": max}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // `Everyone` is reserved, in any case.
    for name in ["everyone", "Everyone"] {
        let (status, body) = o
            .post("/organizations/eng/groups", json!({"name": name}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert_eq!(field(&body), "name");
    }

    // Usernames, emails, passwords and free-text limits.
    let cases: Vec<(Method, &str, Value, &str)> = vec![
        (
            Method::POST,
            "/users",
            json!({"username": long, "email": "d@example.com", "password": "password123"}),
            "username",
        ),
        (
            Method::POST,
            "/users",
            json!({"username": "me", "email": "d@example.com", "password": "password123"}),
            "username",
        ),
        (
            Method::POST,
            "/users",
            json!({"username": "d d", "email": "d@example.com", "password": "password123"}),
            "username",
        ),
        (
            Method::POST,
            "/users",
            json!({"username": "", "email": "d@example.com", "password": "password123"}),
            "username",
        ),
        (
            Method::POST,
            "/users",
            json!({"username": "550e8400-e29b-41d4-a716-446655440000", "email": "d@example.com", "password": "password123"}),
            "username",
        ),
        (
            Method::POST,
            "/users",
            json!({"username": "dave", "email": "not-an-email", "password": "password123"}),
            "email",
        ),
        (
            Method::POST,
            "/users",
            json!({"username": "dave", "email": "d@example.com", "password": "short"}),
            "password",
        ),
        (
            Method::POST,
            "/users",
            json!({"username": "dave", "email": "d@example.com", "password": "p".repeat(257)}),
            "password",
        ),
        (
            Method::POST,
            "/users",
            json!({"username": "dave", "email": "d@example.com", "password": "password123", "login_type": "oidc"}),
            "login_type",
        ),
        (
            Method::PATCH,
            "/users/bob",
            json!({"username": "Bad Name"}),
            "username",
        ),
        (
            Method::PATCH,
            "/users/bob",
            json!({"email": "bob-at-example"}),
            "email",
        ),
        (
            Method::PATCH,
            "/users/bob",
            json!({"name": "n".repeat(129)}),
            "name",
        ),
        (
            Method::POST,
            "/organizations",
            json!({"name": "docs", "display_name": "d".repeat(129)}),
            "display_name",
        ),
        (
            Method::POST,
            "/organizations",
            json!({"name": "docs", "description": "d".repeat(1025)}),
            "description",
        ),
        (
            Method::POST,
            "/organizations",
            json!({"name": "docs", "display_name": "bell\u{7}"}),
            "display_name",
        ),
        (
            Method::PATCH,
            "/organizations/eng",
            json!({"icon": "i".repeat(2049)}),
            "icon",
        ),
        (
            Method::POST,
            "/organizations/eng/groups",
            json!({"name": "qa", "quota_allowance": -1}),
            "quota_allowance",
        ),
        (
            Method::POST,
            "/users/me/keys/tokens",
            json!({"lifetime_seconds": 1}),
            "lifetime_seconds",
        ),
        (
            Method::POST,
            "/users/me/keys/tokens",
            json!({"token_name": "t".repeat(65)}),
            "token_name",
        ),
        (
            Method::PUT,
            "/users/bob/roles",
            json!({"roles": ["auditor", "superuser"]}),
            "roles[1]",
        ),
        (
            Method::PUT,
            "/organizations/eng/members/bob/roles",
            json!({"roles": ["owner"]}),
            "roles[0]",
        ),
        (
            Method::POST,
            "/authcheck",
            json!({"checks": {"k": {"object": {"resource_type": "spaceship"}, "action": "read"}}}),
            "checks.k.object.resource_type",
        ),
        (
            Method::POST,
            "/authcheck",
            json!({"checks": {"k": {"object": {"resource_type": "group"}, "action": "fly"}}}),
            "checks.k.action",
        ),
    ];
    for (method, path, body, want) in cases {
        let what = format!("{method} {path}");
        let (status, resp) = o.send(method, path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {resp}");
        assert_error_shape(status, &resp, &what);
        assert_eq!(field(&resp), want, "{what}: {resp}");
    }
    // Nothing of it was written: three users, eng/bob/backend unchanged, no `docs`.
    let users = o.get_ok("/users").await;
    assert_eq!(users["count"], 3, "{users}");
    let (status, reply) = o.get("/organizations/docs").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    let eng = o.get_ok("/organizations/eng").await;
    assert_eq!((&eng["name"], &eng["icon"]), (&json!("eng"), &json!("")));
    let bob = o.get_ok(&format!("/users/{}", w.bob_id)).await;
    assert_eq!(
        (&bob["username"], &bob["email"], &bob["roles"]),
        (&json!("bob"), &json!("bob@example.com"), &json!(["member"]))
    );
    let g = o.get_ok(&backend).await;
    assert_eq!(g["name"], "backend");
}

#[tokio::test]
async fn duplicates_are_409_and_leave_the_original() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let o = &w.owner;
    let (status, reply) = o
        .post("/organizations/ops/groups", json!({"name": "frontend"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let backend = format!("/groups/{}", w.backend);
    let cases: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/organizations".into(),
            json!({"name": "eng"}),
        ),
        (
            Method::PATCH,
            "/organizations/ops".into(),
            json!({"name": "eng", "display_name": "Ops!"}),
        ),
        (
            Method::POST,
            "/organizations/eng/groups".into(),
            json!({"name": "backend", "display_name": "Again"}),
        ),
        (
            Method::POST,
            "/users".into(),
            json!({"username": "BOB", "email": "bob2@example.com", "password": "password123"}),
        ),
        (
            Method::POST,
            "/users".into(),
            json!({"username": "bob2", "email": "Bob@Example.com", "password": "password123"}),
        ),
        (
            Method::PATCH,
            "/users/carol".into(),
            json!({"username": "Bob", "name": "Carol C"}),
        ),
        (
            Method::PATCH,
            "/users/carol".into(),
            json!({"email": "BOB@example.com", "name": "Carol C"}),
        ),
        (
            Method::POST,
            "/organizations/eng/members/bob".into(),
            json!({}),
        ),
        (
            Method::POST,
            "/users/first".into(),
            json!({"username": "root", "email": "root@example.com", "password": "password123"}),
        ),
    ];
    let audit_before = db_count(&s, "SELECT COUNT(*) FROM audit_logs").await;
    for (method, path, body) in cases {
        let what = format!("{method} {path} {body}");
        let (status, resp) = o.send(method, &path, Some(body)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{what}: {resp}");
        assert_error_shape(status, &resp, &what);
    }
    // A group rename to a name taken in the same org is a conflict; in another
    // org the name is free.
    let (status, resp) = o
        .patch(
            &backend,
            json!({"name": "frontend", "display_name": "Renamed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "another org's name is free: {resp}");
    let (status, reply) = o
        .post("/organizations/eng/groups", json!({"name": "web"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (status, resp) = o
        .patch(&backend, json!({"name": "web", "display_name": "Web?"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{resp}");
    assert_error_shape(status, &resp, "group rename");
    // The duplicates wrote nothing and changed nothing but the successful calls.
    assert_eq!(
        db_count(&s, "SELECT COUNT(*) FROM audit_logs").await,
        audit_before + 2
    );
    let ops = o.get_ok("/organizations/ops").await;
    assert_eq!(
        (&ops["name"], &ops["display_name"]),
        (&json!("ops"), &json!("ops"))
    );
    let carol = o.get_ok("/users/carol").await;
    assert_eq!(
        (&carol["username"], &carol["email"], &carol["name"]),
        (&json!("carol"), &json!("carol@example.com"), &json!(""))
    );
    let g = o.get_ok(&backend).await;
    assert_eq!(
        (&g["name"], &g["display_name"]),
        (&json!("frontend"), &json!("Renamed"))
    );
    let users = o.get_ok("/users").await;
    assert_eq!(users["count"], 3);
    let orgs = o.get_ok("/organizations").await;
    assert_eq!(count_of(&orgs), 3);
}

#[tokio::test]
async fn unknown_ids_are_404_with_the_error_shape() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let ghost = "0190f0f0-0000-7000-8000-000000000000";
    let carol = &w.carol_id;
    let paths: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/organizations/{ghost}"), None),
        (Method::GET, "/organizations/no-such-org".into(), None),
        (
            Method::PATCH,
            format!("/organizations/{ghost}"),
            Some(json!({"display_name": "x"})),
        ),
        (Method::DELETE, "/organizations/no-such-org".into(), None),
        (
            Method::GET,
            "/organizations/no-such-org/members".into(),
            None,
        ),
        (
            Method::GET,
            format!("/organizations/{ghost}/members/roles"),
            None,
        ),
        (
            Method::POST,
            "/organizations/no-such-org/members/bob".into(),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/organizations/eng/members/{ghost}"),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/organizations/eng/members/nobody".into(),
            Some(json!({})),
        ),
        (
            Method::DELETE,
            format!("/organizations/eng/members/{carol}"),
            None,
        ),
        (
            Method::DELETE,
            "/organizations/eng/members/nobody".into(),
            None,
        ),
        (
            Method::PUT,
            "/organizations/eng/members/carol/roles".into(),
            Some(json!({"roles": ["organization-auditor"]})),
        ),
        (
            Method::PUT,
            format!("/organizations/{ghost}/members/bob/roles"),
            Some(json!({"roles": []})),
        ),
        (
            Method::PUT,
            "/organizations/eng/members/nobody/roles".into(),
            Some(json!({"roles": []})),
        ),
        (
            Method::GET,
            "/organizations/no-such-org/groups".into(),
            None,
        ),
        (
            Method::POST,
            format!("/organizations/{ghost}/groups"),
            Some(json!({"name": "qa"})),
        ),
        (Method::GET, format!("/groups/{ghost}"), None),
        (Method::GET, "/groups/not-an-id".into(), None),
        (
            Method::PATCH,
            format!("/groups/{ghost}"),
            Some(json!({"display_name": "x"})),
        ),
        (Method::DELETE, format!("/groups/{ghost}"), None),
        (Method::GET, format!("/users/{ghost}"), None),
        (Method::GET, "/users/nobody".into(), None),
        (
            Method::PATCH,
            "/users/nobody".into(),
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, format!("/users/{ghost}"), None),
        (
            Method::PUT,
            "/users/nobody/status/suspend".into(),
            Some(json!({})),
        ),
        (
            Method::PUT,
            format!("/users/{ghost}/status/activate"),
            Some(json!({})),
        ),
        (Method::GET, "/users/nobody/roles".into(), None),
        (
            Method::PUT,
            "/users/nobody/roles".into(),
            Some(json!({"roles": ["auditor"]})),
        ),
        (Method::GET, format!("/users/{ghost}/organizations"), None),
        (
            Method::POST,
            "/users/nobody/keys/tokens".into(),
            Some(json!({})),
        ),
        (Method::GET, "/no-such-route".into(), None),
        (Method::GET, "/organizations/eng/nothing-here".into(), None),
    ];
    let audit_before = db_count(&s, "SELECT COUNT(*) FROM audit_logs").await;
    for (method, path, body) in paths {
        let what = format!("{method} {path}");
        let (status, resp) = w.owner.send(method, &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {resp}");
        assert_error_shape(status, &resp, &what);
    }
    // The group of a PATCH must exist even when its body names unknown users,
    // and a body naming unknown users of an existing group is a 400 naming them.
    let (status, resp) = w
        .owner
        .patch(
            &format!("/groups/{}", w.backend),
            json!({"add_users": [ghost]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    assert_eq!(field(&resp), "add_users[0]");
    // Authcheck on unknown objects answers false, not an error.
    let (status, resp) = w
        .owner
        .post(
            "/authcheck",
            json!({"checks": {
                "org": {"object": {"resource_type": "organization", "organization_id": ghost}, "action": "read"},
                "grp": {"object": {"resource_type": "group", "organization_id": "no-such-org", "resource_id": ghost}, "action": "read"}
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp, json!({"org": false, "grp": false}));
    assert_eq!(
        db_count(&s, "SELECT COUNT(*) FROM audit_logs").await,
        audit_before
    );
    // Method not allowed is an error with the same shape.
    let (status, resp) = w
        .owner
        .send(Method::PUT, "/organizations", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{resp}");
    assert_error_shape(status, &resp, "PUT /organizations");
}

#[tokio::test]
async fn oversized_bodies_are_413_with_the_error_shape() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let audit_before = db_count(&s, "SELECT COUNT(*) FROM audit_logs").await;
    // Default limit: 1 MiB. A 2 MiB string in an otherwise valid body.
    let big = "x".repeat(2 << 20);
    let bodies: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/organizations".into(),
            json!({"name": "huge", "description": big}),
        ),
        (
            Method::PATCH,
            "/organizations/eng".into(),
            json!({"description": big}),
        ),
        (
            Method::POST,
            "/users".into(),
            json!({"username": "huge", "email": "huge@example.com", "password": "password123", "name": big}),
        ),
        (
            Method::POST,
            "/organizations/eng/groups".into(),
            json!({"name": "huge", "display_name": big}),
        ),
        (
            Method::PATCH,
            format!("/groups/{}", w.backend),
            json!({"display_name": big}),
        ),
        (
            Method::PUT,
            "/organizations/eng/members/bob/roles".into(),
            json!({"roles": [big]}),
        ),
        (
            Method::POST,
            "/authcheck".into(),
            json!({"checks": {"x": {"object": {"resource_type": big}, "action": "read"}}}),
        ),
    ];
    for (method, path, body) in bodies {
        let what = format!("{method} {path} (2 MiB)");
        let got = raw(
            &w.owner,
            method,
            &path,
            Some("application/json"),
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await;
        assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, &what);
    }
    // Under the limit, the same kind of body is judged on its content (400).
    let (status, body) = w
        .owner
        .post(
            "/organizations",
            json!({"name": "huge", "description": "x".repeat(500_000)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "description");
    // Nothing was written.
    assert_eq!(
        db_count(&s, "SELECT COUNT(*) FROM audit_logs").await,
        audit_before
    );
    let (status, reply) = w.owner.get("/organizations/huge").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    let users = w.owner.get_ok("/users").await;
    assert_eq!(users["count"], 3);

    // A smaller configured limit applies as well.
    let small = TestServer::start_with(|a| a.max_body_bytes = Some(1024)).await;
    let owner = small.owner().await;
    let got = raw(
        &owner,
        Method::POST,
        "/organizations",
        Some("application/json"),
        Some(
            serde_json::to_vec(&json!({"name": "docs", "description": "d".repeat(1000)})).unwrap(),
        ),
    )
    .await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "1 KiB limit");
    let (status, body) = owner
        .post(
            "/organizations",
            json!({"name": "docs", "description": "d".repeat(900)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let docs = owner.get_ok("/organizations/docs").await;
    assert_eq!(docs["description"], "d".repeat(900));
}

#[tokio::test]
async fn bad_query_parameters_and_path_segments_use_the_error_shape() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let cases: [(&str, &str); 14] = [
        ("/users?limit=0", "limit"),
        ("/users?limit=1001", "limit"),
        ("/users?offset=-1", "offset"),
        ("/users?limit=ten", "limit"),
        ("/users?status=sleeping", "status"),
        ("/audit?limit=0", "limit"),
        ("/audit?offset=-5", "offset"),
        ("/audit?limit=many", "limit"),
        ("/audit?q=nonsense", "q"),
        ("/audit?q=colour:blue", "q"),
        ("/audit?from=yesterday", "from"),
        ("/audit?q=to:tomorrow", "to"),
        ("/audit?colour=blue", "colour"),
        ("/audit?offset=1.5", "offset"),
    ];
    // Every case is tried; the failures are reported together.
    let mut failures = Vec::new();
    for (path, name) in cases {
        let (status, ct, body) = raw(&w.owner, Method::GET, path, None, None).await;
        let names_it = if body.get("validations").is_some() {
            field(&body) == name
        } else {
            body.to_string().contains(name)
        };
        if status != StatusCode::BAD_REQUEST
            || !ct.starts_with("application/json")
            || shape_problem(&body).is_some()
            || !names_it
        {
            failures.push(format!("GET {path}: {status} `{ct}` {body}"));
        }
    }
    // Route segments that are not valid UTF-8 once decoded name nothing: an
    // error in the same shape (400 or 404), never a plain-text rejection.
    for (method, path, body) in [
        (Method::GET, "/organizations/%FF", None),
        (Method::GET, "/organizations/%FF/members", None),
        (Method::GET, "/groups/%C3%28", None),
        (Method::GET, "/users/%FF/roles", None),
        (
            Method::PUT,
            "/organizations/eng/members/%FE/roles",
            Some(br#"{"roles": []}"#.to_vec()),
        ),
    ] {
        let ct_in = body.as_ref().map(|_| "application/json");
        let (status, ct, body) = raw(&w.owner, method.clone(), path, ct_in, body).await;
        if !(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND)
            || !ct.starts_with("application/json")
            || shape_problem(&body).is_some()
        {
            failures.push(format!("{method} {path}: {status} `{ct}` {body}"));
        }
    }
    assert!(
        failures.is_empty(),
        "errors not answered as 400/404 with the §6 JSON shape naming the parameter:\n{}",
        failures.join("\n")
    );
}

/// POST /users with organization_ids whose second entry does not exist: 400,
/// and no user row, no membership, no audit row.
#[tokio::test]
async fn failed_user_create_leaves_no_trace() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let o = &w.owner;
    let users_before = db_count(&s, "SELECT COUNT(*) FROM users").await;
    let members_before = db_count(&s, "SELECT COUNT(*) FROM organization_members").await;
    let audit_before = db_count(&s, "SELECT COUNT(*) FROM audit_logs").await;
    let keys_before = db_count(&s, "SELECT COUNT(*) FROM api_keys").await;
    let eng_members_before = o.get_ok("/organizations/eng/members").await;
    for ids in [
        json!([w.eng, "0190f0f0-0000-7000-8000-000000000000"]),
        json!(["eng", "no-such-org"]),
        json!([w.ops, w.eng, "Not An Org!"]),
    ] {
        let (status, body) = o
            .post(
                "/users",
                json!({"username": "ghost", "email": "ghost@example.com", "password": "password123",
                       "organization_ids": ids}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{ids}: {body}");
        assert_error_shape(status, &body, "create user with a bad org");
        let last = ids.as_array().unwrap().len() - 1;
        assert_eq!(field(&body), format!("organization_ids[{last}]"), "{body}");
        // Nothing of the user exists: no row, no membership (default org
        // included), no audit entry, no login.
        let mut conn = s.state.db.pool().acquire().await.unwrap();
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM users WHERE username_lower = 'ghost' OR email_lower = 'ghost@example.com'",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        assert!(rows.is_empty(), "half-written user: {rows:?}");
        drop(conn);
        assert_eq!(
            db_count(&s, "SELECT COUNT(*) FROM users").await,
            users_before
        );
        assert_eq!(
            db_count(&s, "SELECT COUNT(*) FROM organization_members").await,
            members_before
        );
        assert_eq!(
            db_count(&s, "SELECT COUNT(*) FROM audit_logs").await,
            audit_before
        );
        let (status, reply) = o.get("/users/ghost").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
        assert_eq!(
            o.get_ok("/organizations/eng/members").await,
            eng_members_before
        );
        assert_eq!(
            db_count(&s, "SELECT COUNT(*) FROM api_keys").await,
            keys_before
        );
    }
    // The username and email are free: the corrected request succeeds, with
    // exactly the memberships asked for.
    let (status, body) = o
        .post(
            "/users",
            json!({"username": "ghost", "email": "ghost@example.com", "password": "password123",
                   "organization_ids": [w.eng, "ops"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let orgs = o.get_ok("/users/ghost/organizations").await;
    let mut names: Vec<&str> = orgs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["coder", "eng", "ops"]);
    assert_eq!(
        db_count(&s, "SELECT COUNT(*) FROM users").await,
        users_before + 1
    );
    // One user entry and two membership entries.
    assert_eq!(
        db_count(&s, "SELECT COUNT(*) FROM audit_logs").await,
        audit_before + 3
    );
}

/// PATCH /groups/{id} whose later part fails changes nothing of its earlier part.
#[tokio::test]
async fn failed_group_patch_changes_nothing() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let o = &w.owner;
    let (_, dave_id) = o.create_user("dave").await;
    o.add_member("eng", "dave", &[]).await;
    let path = format!("/groups/{}", w.backend);
    let before = o.get_ok(&path).await;
    let audit_before = db_count(&s, "SELECT COUNT(*) FROM audit_logs").await;
    let authz_before: Vec<(String, i64)> = {
        let mut conn = s.state.db.pool().acquire().await.unwrap();
        sqlx::query_as("SELECT id, authz_version FROM users ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .unwrap()
    };
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        // A valid member, then a user who is not a member of eng.
        (
            json!({"name": "renamed", "display_name": "Renamed", "add_users": [dave_id, w.carol_id]}),
            StatusCode::BAD_REQUEST,
            "add_users[1]",
        ),
        (
            json!({"display_name": "Renamed", "add_users": ["dave", "nobody"]}),
            StatusCode::BAD_REQUEST,
            "add_users[1]",
        ),
        (
            json!({"name": "renamed", "remove_users": ["bob", "nobody"]}),
            StatusCode::BAD_REQUEST,
            "remove_users[1]",
        ),
        (
            json!({"quota_allowance": 5, "add_users": ["dave"], "avatar_url": "a".repeat(2049)}),
            StatusCode::BAD_REQUEST,
            "avatar_url",
        ),
        (
            json!({"add_users": ["dave"], "remove_users": ["bob"], "name": "Bad Name"}),
            StatusCode::BAD_REQUEST,
            "name",
        ),
    ];
    for (body, want, name) in cases {
        let (status, resp) = o.patch(&path, body.clone()).await;
        assert_eq!(status, want, "{body}: {resp}");
        assert_error_shape(status, &resp, &body.to_string());
        assert_eq!(field(&resp), name, "{resp}");
        assert_eq!(o.get_ok(&path).await, before, "after {body}");
    }
    // A rename that conflicts, with a valid member to add: 409, neither done.
    let (status, reply) = o
        .post("/organizations/eng/groups", json!({"name": "taken"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let audit_mid = db_count(&s, "SELECT COUNT(*) FROM audit_logs").await;
    assert_eq!(audit_mid, audit_before + 1);
    let (status, resp) = o
        .patch(
            &path,
            json!({"name": "taken", "display_name": "Taken", "add_users": ["dave"], "remove_users": ["bob"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{resp}");
    assert_error_shape(status, &resp, "conflicting rename");
    assert_eq!(o.get_ok(&path).await, before);
    // No audit entry, and nobody's authorization data changed.
    assert_eq!(
        db_count(&s, "SELECT COUNT(*) FROM audit_logs").await,
        audit_mid
    );
    let authz_after: Vec<(String, i64)> = {
        let mut conn = s.state.db.pool().acquire().await.unwrap();
        sqlx::query_as("SELECT id, authz_version FROM users ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .unwrap()
    };
    assert_eq!(authz_after, authz_before);
    let mut conn = s.state.db.pool().acquire().await.unwrap();
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT user_id FROM group_members WHERE group_id = $1")
            .bind(&w.backend)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(rows, vec![(w.bob_id.clone(),)]);
}

/// Role changes with one invalid role change nothing.
#[tokio::test]
async fn failed_role_changes_change_nothing() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let o = &w.owner;
    o.set_site_roles("bob", &["template-admin"]).await;
    let (status, reply) = o
        .put(
            "/organizations/eng/members/bob/roles",
            json!({"roles": ["organization-auditor"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let members_before = o.get_ok("/organizations/eng/members").await;
    let bob_before = o.get_ok("/users/bob/roles").await;
    let audit_before = db_count(&s, "SELECT COUNT(*) FROM audit_logs").await;
    for roles in [
        json!(["organization-admin", "bogus"]),
        json!(["bogus", "organization-admin"]),
        json!(["organization-admin", "owner"]),
        json!(["organization-admin", ""]),
        json!(["organization-admin", "Organization-Admin"]),
    ] {
        let (status, body) = o
            .put(
                "/organizations/eng/members/bob/roles",
                json!({"roles": roles}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{roles}: {body}");
        assert_error_shape(status, &body, "org roles");
        assert!(field(&body).starts_with("roles["), "{body}");
    }
    for roles in [
        json!(["auditor", "superuser"]),
        json!(["user-admin", "organization-admin"]),
        json!(["auditor", "OWNER"]),
    ] {
        let (status, body) = o.put("/users/bob/roles", json!({"roles": roles})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{roles}: {body}");
        assert_error_shape(status, &body, "site roles");
        assert_eq!(field(&body), "roles[1]", "{body}");
    }
    // An org user-admin may grant `organization-member` only: a list that mixes
    // it with more is refused as a whole.
    let (carl, _) = o.create_user("carl").await;
    o.add_member("eng", "carl", &["organization-user-admin"])
        .await;
    let members_mid = o.get_ok("/organizations/eng/members").await;
    let (status, body) = carl
        .put(
            "/organizations/eng/members/bob/roles",
            json!({"roles": ["organization-member", "organization-admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error_shape(status, &body, "user-admin escalation");
    assert_eq!(o.get_ok("/organizations/eng/members").await, members_mid);
    let members_mid: Vec<&Value> = members_mid
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["username"] != "carl")
        .collect();
    let before: Vec<&Value> = members_before.as_array().unwrap().iter().collect();
    assert_eq!(members_mid, before);
    assert_eq!(o.get_ok("/users/bob/roles").await, bob_before);
    // Only carl's creation, login, membership and role entries were written.
    assert_eq!(
        db_count(&s, "SELECT COUNT(*) FROM audit_logs").await,
        audit_before + 4
    );
}

/// Racing creates of the same name: one wins, the others get 409 with the
/// error shape, and the losers leave nothing (no org without its Everyone
/// group, no stray membership or audit entry).
#[tokio::test]
async fn racing_duplicate_creates_leave_one_complete_object() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let orgs_before = db_count(&s, "SELECT COUNT(*) FROM organizations").await;
    let audit_before = db_count(&s, "SELECT COUNT(*) FROM audit_logs").await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let c = w.owner.clone();
        set.spawn(async move {
            if i % 2 == 0 {
                c.post("/organizations", json!({"name": "race"})).await
            } else {
                c.post(
                    "/users",
                    json!({"username": "racer", "email": format!("racer{i}@example.com"), "password": "password123"}),
                )
                .await
            }
        });
    }
    let mut created = 0;
    while let Some(r) = set.join_next().await {
        let (status, body) = r.unwrap();
        if status == StatusCode::CREATED {
            created += 1;
        } else {
            assert_eq!(status, StatusCode::CONFLICT, "{body}");
            assert_error_shape(status, &body, "racing create");
        }
    }
    assert_eq!(created, 2, "one org and one user");
    assert_eq!(
        db_count(&s, "SELECT COUNT(*) FROM organizations").await,
        orgs_before + 1
    );
    // Every org has its Everyone group (id == org id), and only one.
    assert_eq!(
        db_count(
            &s,
            "SELECT COUNT(*) FROM organizations o WHERE NOT EXISTS \
             (SELECT 1 FROM groups g WHERE g.id = o.id AND g.organization_id = o.id)"
        )
        .await,
        0
    );
    assert_eq!(
        db_count(
            &s,
            "SELECT COUNT(*) FROM groups g WHERE g.id = g.organization_id"
        )
        .await,
        orgs_before + 1
    );
    // Every user is in the default org; no membership without a user.
    assert_eq!(
        db_count(
            &s,
            "SELECT COUNT(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM organization_members m \
             JOIN organizations o ON o.id = m.organization_id WHERE m.user_id = u.id AND o.is_default = 1)"
        )
        .await,
        0
    );
    assert_eq!(
        db_count(
            &s,
            "SELECT COUNT(*) FROM users WHERE username_lower = 'racer'"
        )
        .await,
        1
    );
    // Exactly two entries: the org and the user.
    assert_eq!(
        db_count(&s, "SELECT COUNT(*) FROM audit_logs").await,
        audit_before + 2
    );
    let members = w.owner.get_ok("/organizations/race/members").await;
    assert_eq!(count_of(&members), 1, "{members}");
    // A failed org delete (409) leaves the org and its contents.
    let (status, reply) = w
        .owner
        .post("/organizations/race/groups", json!({"name": "stays"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let before = w.owner.get_ok("/organizations/race/groups").await;
    let (status, body) = w.owner.delete("/organizations/race").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_error_shape(status, &body, "delete refused");
    assert_eq!(w.owner.get_ok("/organizations/race/groups").await, before);
}
