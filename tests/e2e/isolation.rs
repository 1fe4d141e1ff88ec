//! Tenant isolation: a user of org A (plain member, organization-admin,
//! organization-user-admin, organization-auditor) cannot read, list, change or
//! delete anything of org B, on every route that touches B; B-objects answer
//! 404 exactly like objects that do not exist; nobody grants itself roles; and
//! B is unchanged afterwards, through the API and in the database.

use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::bad_input::assert_error_shape;
use crate::harness::{Client, TestServer};

/// A well-formed id that names nothing.
const GHOST: &str = "0190f0f0-0000-7000-8000-000000000000";

struct Actor {
    label: &'static str,
    client: Client,
    id: String,
}

/// Org A (`org-a`) and org B (`org-b`), each with an org admin, a plain member
/// and a group holding the member; the actors are A's users.
struct World {
    owner: Client,
    a_id: String,
    b_id: String,
    a_group: String,
    b_group: String,
    a_member_id: String,
    b_admin_id: String,
    b_member_id: String,
    actors: Vec<Actor>,
}

async fn world(s: &TestServer) -> World {
    let owner = s.owner().await;
    let a_id = owner.create_org("org-a").await;
    let b_id = owner.create_org("org-b").await;
    let mut actors = Vec::new();
    let mut a_member_id = String::new();
    for (label, roles) in [
        ("a-member", &[][..]),
        ("a-admin", &["organization-admin"][..]),
        ("a-user-admin", &["organization-user-admin"][..]),
        ("a-auditor", &["organization-auditor"][..]),
    ] {
        let (client, id) = owner.create_user(label).await;
        owner.add_member("org-a", label, roles).await;
        if label == "a-member" {
            a_member_id = id.clone();
        }
        actors.push(Actor { label, client, id });
    }
    let (b_admin, b_admin_id) = owner.create_user("b-admin").await;
    let (_, b_member_id) = owner.create_user("b-member").await;
    owner
        .add_member("org-b", "b-admin", &["organization-admin"])
        .await;
    owner.add_member("org-b", "b-member", &[]).await;
    // B's admin builds B's group; A's admin builds A's.
    let b_group = make_group(&b_admin, "org-b", "b-team", "b-member").await;
    let a_group = make_group(&actors[1].client, "org-a", "a-team", "a-member").await;
    World {
        owner,
        a_id,
        b_id,
        a_group,
        b_group,
        a_member_id,
        b_admin_id,
        b_member_id,
        actors,
    }
}

async fn make_group(c: &Client, org: &str, name: &str, member: &str) -> String {
    let (status, g) = c
        .post(
            &format!("/organizations/{org}/groups"),
            json!({"name": name, "display_name": name.to_uppercase()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{g}");
    let id = g["id"].as_str().unwrap().to_owned();
    let (status, g) = c
        .patch(&format!("/groups/{id}"), json!({"add_users": [member]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{g}");
    id
}

/// B as its owner sees it through the API, and the whole database (but for
/// bookkeeping timestamps).
async fn snapshot(s: &TestServer, w: &World) -> Value {
    let mut snap = Map::new();
    let b = &w.b_id;
    let mut paths = vec![
        format!("/organizations/{b}"),
        "/organizations".to_owned(),
        format!("/organizations/{b}/members"),
        format!("/organizations/{b}/groups"),
        format!("/groups/{}", w.b_group),
        format!("/groups/{b}"),
        format!("/audit?organization={b}&limit=1000"),
    ];
    for u in [&w.b_admin_id, &w.b_member_id] {
        paths.push(format!("/users/{u}"));
        paths.push(format!("/users/{u}/roles"));
        paths.push(format!("/users/{u}/organizations"));
    }
    for a in &w.actors {
        paths.push(format!("/users/{}", a.id));
        paths.push(format!("/users/{}/roles", a.id));
        paths.push(format!("/users/{}/organizations", a.id));
    }
    for p in paths {
        let (status, mut v) = w.owner.get(&p).await;
        assert_eq!(status, StatusCode::OK, "owner GET {p}: {v}");
        if let Some(o) = v.as_object_mut() {
            o.remove("last_seen_at");
        }
        snap.insert(p, v);
    }
    let mut conn = s.state.db.pool().acquire().await.unwrap();
    let orgs: Vec<(String, String, String, String, String, String)> = sqlx::query_as(
        "SELECT id, name, display_name, description, icon, updated_at FROM organizations ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let members: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT organization_id, user_id, roles, updated_at FROM organization_members \
         ORDER BY organization_id, user_id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let groups: Vec<(String, String, String, String, i64, String)> = sqlx::query_as(
        "SELECT id, organization_id, name, display_name, quota_allowance, updated_at FROM groups ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let group_members: Vec<(String, String)> =
        sqlx::query_as("SELECT group_id, user_id FROM group_members ORDER BY group_id, user_id")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let users: Vec<(String, String, String, String, String, String, i64)> = sqlx::query_as(
        "SELECT id, username, email, name, status, roles, authz_version FROM users ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let keys: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT id, user_id, kind, token_name FROM api_keys ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let audit: Vec<(String,)> = sqlx::query_as("SELECT id FROM audit_logs ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    snap.insert(
        "db".to_owned(),
        json!({"organizations": format!("{orgs:?}"), "members": format!("{members:?}"),
               "groups": format!("{groups:?}"), "group_members": format!("{group_members:?}"),
               "users": format!("{users:?}"), "api_keys": format!("{keys:?}"),
               "audit": format!("{audit:?}")}),
    );
    Value::Object(snap)
}

/// One request on a B object, and the same request on an object that does not
/// exist: both must answer the same 404.
struct Case {
    method: Method,
    path: String,
    ghost: String,
    body: Option<Value>,
}

fn case(method: Method, path: String, ghost: String, body: Option<Value>) -> Case {
    Case {
        method,
        path,
        ghost,
        body,
    }
}

/// Every route of `api/mod.rs` that addresses an object of B, with B's org by
/// id and by name, its groups (the Everyone group too) and its users by id and
/// by username.
fn cases(w: &World) -> Vec<Case> {
    let mut out = Vec::new();
    let orgs = [
        (w.b_id.clone(), GHOST.to_owned()),
        ("org-b".to_owned(), "org-ghost".to_owned()),
    ];
    for (o, g) in &orgs {
        let pairs: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, "/organizations/{o}".into(), None),
            (
                Method::PATCH,
                "/organizations/{o}".into(),
                Some(json!({"display_name": "Pwned"})),
            ),
            (
                Method::PATCH,
                "/organizations/{o}".into(),
                Some(json!({"name": "pwned"})),
            ),
            (Method::DELETE, "/organizations/{o}".into(), None),
            (Method::GET, "/organizations/{o}/members".into(), None),
            (Method::GET, "/organizations/{o}/members/roles".into(), None),
            (
                Method::POST,
                "/organizations/{o}/members/me".into(),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("/organizations/{{o}}/members/{}", w.a_member_id),
                Some(json!({})),
            ),
            (
                Method::POST,
                "/organizations/{o}/members/a-admin".into(),
                Some(json!({})),
            ),
            (
                Method::DELETE,
                format!("/organizations/{{o}}/members/{}", w.b_member_id),
                None,
            ),
            (
                Method::DELETE,
                "/organizations/{o}/members/b-admin".into(),
                None,
            ),
            (Method::DELETE, "/organizations/{o}/members/me".into(), None),
            (
                Method::PUT,
                format!("/organizations/{{o}}/members/{}/roles", w.b_member_id),
                Some(json!({"roles": ["organization-admin"]})),
            ),
            (
                Method::PUT,
                "/organizations/{o}/members/b-member/roles".into(),
                Some(json!({"roles": ["organization-member"]})),
            ),
            (
                Method::PUT,
                "/organizations/{o}/members/b-admin/roles".into(),
                Some(json!({"roles": []})),
            ),
            (
                Method::PUT,
                "/organizations/{o}/members/me/roles".into(),
                Some(json!({"roles": ["organization-admin"]})),
            ),
            (Method::GET, "/organizations/{o}/groups".into(), None),
            (
                Method::POST,
                "/organizations/{o}/groups".into(),
                Some(json!({"name": "intruders"})),
            ),
        ];
        for (m, p, b) in pairs {
            out.push(case(m, p.replace("{o}", o), p.replace("{o}", g), b));
        }
    }
    for g in [&w.b_group, &w.b_id] {
        let pairs: Vec<(Method, Option<Value>)> = vec![
            (Method::GET, None),
            (
                Method::PATCH,
                Some(json!({"display_name": "Pwned", "add_users": ["me"]})),
            ),
            (Method::PATCH, Some(json!({"name": "pwned"}))),
            (
                Method::PATCH,
                Some(json!({"remove_users": [w.b_member_id]})),
            ),
            (Method::DELETE, None),
        ];
        for (m, b) in pairs {
            out.push(case(
                m,
                format!("/groups/{g}"),
                format!("/groups/{GHOST}"),
                b,
            ));
        }
    }
    let users = [
        (w.b_member_id.clone(), GHOST.to_owned()),
        ("b-member".to_owned(), "ghost-user".to_owned()),
        (w.b_admin_id.clone(), GHOST.to_owned()),
    ];
    for (u, g) in &users {
        let pairs: Vec<(Method, &str, Option<Value>)> = vec![
            (Method::GET, "/users/{u}", None),
            (Method::PATCH, "/users/{u}", Some(json!({"name": "Pwned"}))),
            (Method::DELETE, "/users/{u}", None),
            (Method::PUT, "/users/{u}/status/suspend", Some(json!({}))),
            (Method::PUT, "/users/{u}/status/activate", Some(json!({}))),
            (Method::GET, "/users/{u}/roles", None),
            (
                Method::PUT,
                "/users/{u}/roles",
                Some(json!({"roles": ["auditor"]})),
            ),
            (Method::PUT, "/users/{u}/roles", Some(json!({"roles": []}))),
            (Method::GET, "/users/{u}/organizations", None),
            (
                Method::POST,
                "/users/{u}/keys/tokens",
                Some(json!({"token_name": "stolen"})),
            ),
        ];
        for (m, p, b) in pairs {
            out.push(case(m, p.replace("{u}", u), p.replace("{u}", g), b));
        }
    }
    out
}

/// Authcheck questions about B: every one must be answered `false`.
fn b_checks(w: &World) -> Value {
    let b = &w.b_id;
    let mut checks = Map::new();
    let objects = [
        (
            "organization",
            json!({"organization_id": b}),
            vec!["read", "update", "delete"],
        ),
        (
            "organization",
            json!({"organization_id": "org-b"}),
            vec!["read", "update"],
        ),
        (
            "organization_member",
            json!({"organization_id": b}),
            vec!["read", "create", "delete"],
        ),
        (
            "organization_member",
            json!({"organization_id": b, "owner_id": w.b_member_id}),
            vec!["read", "create", "delete", "update_roles"],
        ),
        (
            "organization_member",
            json!({"organization_id": b, "owner_id": "me"}),
            vec!["create", "update_roles"],
        ),
        (
            "group",
            json!({"organization_id": b}),
            vec!["read", "create"],
        ),
        (
            "group",
            json!({"organization_id": b, "resource_id": w.b_group}),
            vec!["read", "update", "delete"],
        ),
        (
            "group",
            json!({"organization_id": b, "resource_id": b}),
            vec!["read", "update"],
        ),
        ("audit_log", json!({"organization_id": b}), vec!["read"]),
        (
            "idpsync_settings",
            json!({"organization_id": b}),
            vec!["read", "update"],
        ),
        (
            "template",
            json!({"organization_id": b}),
            vec!["read", "create", "use"],
        ),
        (
            "workspace",
            json!({"organization_id": b, "owner_id": "me"}),
            vec!["create", "read"],
        ),
        (
            "workspace",
            json!({"organization_id": b, "owner_id": w.b_member_id}),
            vec!["read", "update", "delete"],
        ),
        (
            "provisioner_key",
            json!({"organization_id": b}),
            vec!["read", "create"],
        ),
        (
            "provisioner_daemon",
            json!({"organization_id": b}),
            vec!["read"],
        ),
        ("file", json!({"organization_id": b}), vec!["create"]),
        (
            "user",
            json!({"resource_id": w.b_member_id}),
            vec![
                "read",
                "update",
                "suspend",
                "delete",
                "update_roles",
                "create_token",
            ],
        ),
        (
            "user",
            json!({"resource_id": "me"}),
            vec!["update_roles", "suspend"],
        ),
        (
            "site",
            json!({}),
            vec!["organization:create", "user:create", "audit:read_all"],
        ),
    ];
    for (i, (rt, extra, actions)) in objects.iter().enumerate() {
        for a in actions {
            let mut obj = extra.as_object().unwrap().clone();
            obj.insert("resource_type".into(), json!(rt));
            checks.insert(
                format!("{i}-{rt}-{a}"),
                json!({"object": Value::Object(obj), "action": a}),
            );
        }
    }
    json!({"checks": checks})
}

#[tokio::test]
async fn a_users_cannot_touch_anything_of_org_b() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let cases = cases(&w);
    assert_eq!(cases.len(), 76, "every B route, by id and by name");
    let before = snapshot(&s, &w).await;

    for actor in &w.actors {
        let c = &actor.client;
        // Control: each actor works in A, so the denials below are about B.
        let (status, body) = c.get(&format!("/organizations/{}", w.a_id)).await;
        assert_eq!(status, StatusCode::OK, "{}: {body}", actor.label);
        assert_eq!(
            c.get(&format!("/groups/{}", w.a_group)).await.0,
            StatusCode::OK,
            "{}",
            actor.label
        );

        for k in &cases {
            let what = format!("{} {} {}", actor.label, k.method, k.path);
            let (status, body) = c.send(k.method.clone(), &k.path, k.body.clone()).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {body}");
            assert_error_shape(status, &body, &what);
            // Indistinguishable from an object that does not exist.
            let (g_status, g_body) = c.send(k.method.clone(), &k.ghost, k.body.clone()).await;
            assert_eq!(
                (status, &body),
                (g_status, &g_body),
                "{what}: differs from {} (which does not exist)",
                k.ghost
            );
        }

        // Lists never show B.
        for p in ["/organizations", "/users/me/organizations"] {
            let (status, orgs) = c.get(p).await;
            assert_eq!(status, StatusCode::OK, "{}: {orgs}", actor.label);
            let mut names: Vec<&str> = orgs
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["name"].as_str().unwrap())
                .collect();
            names.sort_unstable();
            assert_eq!(names, ["coder", "org-a"], "{} {p}", actor.label);
        }
        let (status, body) = c.get("/users").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{}: {body}", actor.label);
        assert_error_shape(status, &body, "GET /users");

        // The audit log of B: plain members and user-admins read no audit log at
        // all (403); A's admin and auditor read A's entries, never B's, and a
        // filter on B answers exactly like a filter on an org that does not exist.
        let may_read_a_audit = matches!(actor.label, "a-admin" | "a-auditor");
        for (p, ghost) in [
            (
                format!("/audit?organization={}", w.b_id),
                format!("/audit?organization={GHOST}"),
            ),
            (
                "/audit?organization=org-b".to_owned(),
                "/audit?organization=org-ghost".to_owned(),
            ),
            (
                "/audit?q=organization:org-b".to_owned(),
                "/audit?q=organization:org-ghost".to_owned(),
            ),
            (
                format!("/audit?q=organization:{}%20resource_type:group", w.b_id),
                format!("/audit?q=organization:{GHOST}%20resource_type:group"),
            ),
            (
                format!("/audit?resource_id={}", w.b_group),
                format!("/audit?resource_id={GHOST}"),
            ),
            (
                format!("/audit?user={}", w.b_admin_id),
                format!("/audit?user={GHOST}"),
            ),
        ] {
            let what = format!("{} GET {p}", actor.label);
            let (status, body) = c.get(&p).await;
            if may_read_a_audit {
                assert_eq!(status, StatusCode::OK, "{what}: {body}");
                assert_eq!(body["count"], 0, "{what}: {body}");
                assert_eq!(body["audit_logs"], json!([]), "{what}: {body}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
                assert_error_shape(status, &body, &what);
            }
            let (g_status, g_body) = c.get(&ghost).await;
            assert_eq!((status, &body), (g_status, &g_body), "{what} vs {ghost}");
        }
        if may_read_a_audit {
            let (status, body) = c.get("/audit?limit=1000").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let entries = body["audit_logs"].as_array().unwrap();
            assert!(!entries.is_empty(), "{}: A has entries", actor.label);
            for e in entries {
                assert_eq!(
                    e["organization_id"],
                    w.a_id.as_str(),
                    "{}: {e}",
                    actor.label
                );
            }
        }

        // Authcheck on B objects: all false (and a control on A: true).
        let mut req = b_checks(&w);
        req["checks"]["control-read-a"] = json!({"object": {"resource_type": "organization",
            "organization_id": w.a_id}, "action": "read"});
        let (status, answers) = c.post("/authcheck", req.clone()).await;
        assert_eq!(status, StatusCode::OK, "{}: {answers}", actor.label);
        let answers = answers.as_object().unwrap();
        assert_eq!(
            answers.len(),
            req["checks"].as_object().unwrap().len(),
            "{}",
            actor.label
        );
        for (k, v) in answers {
            let want = k == "control-read-a";
            assert_eq!(v, &json!(want), "{} authcheck {k}", actor.label);
        }

        // Users of A cannot create users into B either.
        let (status, body) = c
            .post(
                "/users",
                json!({"username": format!("{}-plant", actor.label), "email": format!("{}-plant@example.com", actor.label),
                       "password": "password123", "organization_ids": [w.b_id]}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{}: {body}", actor.label);
        assert_error_shape(status, &body, "POST /users into B");
    }

    // Nothing of B (nor anything else) changed.
    let after = snapshot(&s, &w).await;
    for (k, v) in before.as_object().unwrap() {
        assert_eq!(Some(v), after.get(k), "{k} changed");
    }
    // The owner does see B: the matrix hit live objects.
    let members = w.owner.get_ok("/organizations/org-b/members").await;
    assert_eq!(members.as_array().unwrap().len(), 3, "{members}");
    let g = w.owner.get_ok(&format!("/groups/{}", w.b_group)).await;
    assert_eq!(g["members"][0]["username"], "b-member");
}

#[tokio::test]
async fn nobody_grants_itself_roles_site_or_org() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let before = snapshot(&s, &w).await;
    for actor in &w.actors {
        let c = &actor.client;
        let me = &actor.id;
        // Site roles, by `me`, id and username: the actor reads itself, so 403.
        for key in ["me", me.as_str(), actor.label] {
            for roles in [
                json!(["owner"]),
                json!(["auditor"]),
                json!(["user-admin"]),
                json!(["template-admin"]),
            ] {
                let what = format!("{} PUT /users/{key}/roles {roles}", actor.label);
                let (status, body) = c
                    .put(&format!("/users/{key}/roles"), json!({"roles": roles}))
                    .await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
                assert_error_shape(status, &body, &what);
            }
        }
        // Org roles in A (readable: 403) and in B (not readable: 404).
        for role in [
            "organization-admin",
            "organization-user-admin",
            "organization-auditor",
            "organization-template-admin",
        ] {
            for (org, want) in [
                ("org-a", StatusCode::FORBIDDEN),
                (w.a_id.as_str(), StatusCode::FORBIDDEN),
                ("org-b", StatusCode::NOT_FOUND),
                (w.b_id.as_str(), StatusCode::NOT_FOUND),
                ("coder", StatusCode::FORBIDDEN),
            ] {
                for key in ["me", me.as_str()] {
                    let what = format!("{} grants itself {role} in {org}", actor.label);
                    let (status, body) = c
                        .put(
                            &format!("/organizations/{org}/members/{key}/roles"),
                            json!({"roles": [role]}),
                        )
                        .await;
                    assert_eq!(status, want, "{what}: {body}");
                    assert_error_shape(status, &body, &what);
                }
            }
        }
        // Joining B, or removing oneself from A.
        for key in ["me", me.as_str()] {
            let (status, body) = c
                .post(&format!("/organizations/org-b/members/{key}"), json!({}))
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{}: {body}", actor.label);
            let (status, body) = c
                .delete(&format!("/organizations/org-a/members/{key}"))
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{}: {body}", actor.label);
        }
        // Authcheck agrees.
        let (status, a) = c
            .post(
                "/authcheck",
                json!({"checks": {
                    "site": {"object": {"resource_type": "user", "resource_id": "me"}, "action": "update_roles"},
                    "org_a": {"object": {"resource_type": "organization_member", "organization_id": w.a_id, "owner_id": "me"}, "action": "update_roles"},
                    "join_b": {"object": {"resource_type": "organization_member", "organization_id": w.b_id, "owner_id": "me"}, "action": "create"}
                }}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{}: {a}", actor.label);
        assert_eq!(
            a,
            json!({"site": false, "org_a": false, "join_b": false}),
            "{}",
            actor.label
        );
    }

    // Nor through a confederate: a user-admin of A cannot make someone an admin
    // of A (who could then grant it back), an admin of A cannot grant site roles.
    let user_admin = &w.actors[2];
    assert_eq!(user_admin.label, "a-user-admin");
    let (status, body) = user_admin
        .client
        .put(
            "/organizations/org-a/members/a-member/roles",
            json!({"roles": ["organization-admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let admin = &w.actors[1];
    assert_eq!(admin.label, "a-admin");
    for target in [w.a_member_id.as_str(), "a-member"] {
        let (status, body) = admin
            .client
            .put(
                &format!("/users/{target}/roles"),
                json!({"roles": ["owner"]}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
    let after = snapshot(&s, &w).await;
    for (k, v) in before.as_object().unwrap() {
        assert_eq!(Some(v), after.get(k), "{k} changed");
    }
    // Each actor still has exactly its roles.
    for actor in &w.actors {
        let roles = w.owner.get_ok(&format!("/users/{}/roles", actor.id)).await;
        assert_eq!(roles["roles"], json!(["member"]), "{}", actor.label);
        let in_a = &roles["organization_roles"][&w.a_id];
        let want = match actor.label {
            "a-member" => json!([]),
            "a-admin" => json!(["organization-admin"]),
            "a-user-admin" => json!(["organization-user-admin"]),
            _ => json!(["organization-auditor"]),
        };
        assert_eq!(in_a, &want, "{}: {roles}", actor.label);
        assert!(
            roles["organization_roles"].get(&w.b_id).is_none(),
            "{}: {roles}",
            actor.label
        );
    }
}

/// The admin of A is powerful in A and powerless in B, even when it is also a
/// plain member of B, and roles held in A never act in B.
#[tokio::test]
async fn an_admin_of_a_is_powerless_in_b() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let admin = &w.actors[1];
    assert_eq!(admin.label, "a-admin");
    let c = &admin.client;

    // Powerful in A: exactly the writes refused in B succeed in A.
    let (status, body) = c
        .patch("/organizations/org-a", json!({"display_name": "A!"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = c
        .post("/organizations/org-a/groups", json!({"name": "intruders"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        w.owner.get_ok("/organizations/org-a").await["display_name"],
        "A!"
    );
    let a_groups = w.owner.get_ok("/organizations/org-a/groups").await;
    assert!(
        a_groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "intruders"),
        "{a_groups}"
    );
    // It may add any user to A, a user of B included...
    let (status, body) = c
        .post("/organizations/org-a/members/b-member", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = c
        .put(
            "/organizations/org-a/members/b-member/roles",
            json!({"roles": ["organization-admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // ...which does not change that user's standing in B.
    let roles = w.owner.get_ok("/users/b-member/roles").await;
    assert_eq!(roles["organization_roles"][&w.b_id], json!([]), "{roles}");
    assert_eq!(
        roles["organization_roles"][&w.a_id],
        json!(["organization-admin"]),
        "{roles}"
    );
    // b-member, now admin of A, is still a plain member in B: reads, cannot write.
    let mut b_member = w.owner.clone();
    let (status, login) = s
        .client()
        .post(
            "/users/login",
            json!({"email": "b-member@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{login}");
    b_member.token = Some(login["session_token"].as_str().unwrap().to_owned());
    let (status, reply) = b_member.get("/organizations/org-b").await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let b_before = snapshot(&s, &w).await;
    for (method, path, body) in [
        (
            Method::PATCH,
            "/organizations/org-b".to_owned(),
            Some(json!({"display_name": "Pwned"})),
        ),
        (
            Method::POST,
            "/organizations/org-b/groups".to_owned(),
            Some(json!({"name": "pwned"})),
        ),
        (
            Method::PATCH,
            format!("/groups/{}", w.b_group),
            Some(json!({"display_name": "Pwned"})),
        ),
        (Method::DELETE, format!("/groups/{}", w.b_group), None),
        (
            Method::PUT,
            "/organizations/org-b/members/b-admin/roles".to_owned(),
            Some(json!({"roles": []})),
        ),
        (
            Method::DELETE,
            "/organizations/org-b/members/b-admin".to_owned(),
            None,
        ),
        (
            Method::POST,
            "/organizations/org-b/members/a-member".to_owned(),
            Some(json!({})),
        ),
    ] {
        let what = format!("b-member (admin of A) {method} {path}");
        let (status, resp) = b_member.send(method, &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {resp}");
        assert_error_shape(status, &resp, &what);
    }
    let b_after = snapshot(&s, &w).await;
    for (k, v) in b_before.as_object().unwrap() {
        assert_eq!(Some(v), b_after.get(k), "{k} changed");
    }
    // Its audit view is A's entries only, even filtered on B.
    let (status, body) = b_member.get("/audit?organization=org-b").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 0, "{body}");
    let body = b_member.get_ok("/audit?limit=1000").await;
    let entries = body["audit_logs"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(
        entries
            .iter()
            .all(|e| e["organization_id"] == w.a_id.as_str()),
        "{body}"
    );

    // The admin of A itself stays locked out of B, and B stays as it was.
    let before = snapshot(&s, &w).await;
    for (method, path, body) in [
        (
            Method::POST,
            "/organizations/org-b/members/me".to_owned(),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/organizations/{}/members/a-member", w.b_id),
            Some(json!({})),
        ),
        (
            Method::PUT,
            "/organizations/org-b/members/b-member/roles".to_owned(),
            Some(json!({"roles": ["organization-admin"]})),
        ),
        (
            Method::PATCH,
            format!("/groups/{}", w.b_group),
            Some(json!({"add_users": ["b-member"]})),
        ),
    ] {
        let what = format!("a-admin {method} {path}");
        let (status, resp) = c.send(method, &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {resp}");
    }
    // Even B's members it can now see in A stay B's business.
    let (status, reply) = c.get("/organizations/org-a/members").await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, reply) = c
        .get(&format!("/users/{}/organizations", w.b_member_id))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    let after = snapshot(&s, &w).await;
    for (k, v) in before.as_object().unwrap() {
        assert_eq!(Some(v), after.get(k), "{k} changed");
    }
    let orgs = c.get_ok("/organizations").await;
    assert!(
        orgs.as_array()
            .unwrap()
            .iter()
            .all(|o| o["name"] != "org-b"),
        "{orgs}"
    );
}

/// Sends a provisioner-daemon request (key header, JSON body).
#[must_use]
async fn daemon_call(s: &TestServer, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v2/provisionerd{path}", s.base))
        .header("Orgsync-Provisioner-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The same isolation for templates, files, provisioner keys, daemons and jobs,
/// and workspaces of B: every route 404 (as for objects that do not exist),
/// lists without B's objects, and a daemon of A neither takes nor touches B's
/// jobs.
#[tokio::test]
async fn a_users_and_daemons_cannot_touch_org_b_templates_provisioners_workspaces() {
    use std::time::Duration;

    use crate::provisioning::{import_version, template_tar, wait_job};

    let s = TestServer::start().await;
    let w = world(&s).await;
    let o = &w.owner;
    let b = w.b_id.clone();

    // B: a key and a daemon, an imported version, a template, b-member's
    // workspace with a finished build; then B's daemon stops and one more
    // import waits, pending.
    let (status, key) = o
        .post(
            "/organizations/org-b/provisionerkeys",
            json!({"name": "b-key"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let b_secret = key["key"].as_str().unwrap().to_owned();
    let stop = tokio_util::sync::CancellationToken::new();
    let daemon = {
        let (url, secret, stop) = (s.base.clone(), b_secret.clone(), stop.clone());
        tokio::spawn(async move {
            use orgsync::provisioner::daemon::{DaemonTiming, serve};
            use orgsync::provisioner::executor::Executor;
            let mut source = orgsync::provisioner::http::HttpSource::register(
                &url,
                &secret,
                "b-daemon",
                &["echo".to_owned()],
            )
            .await
            .unwrap();
            source.wait = Duration::from_millis(300);
            let timing = DaemonTiming {
                heartbeat: Duration::from_millis(200),
                log_flush: Duration::from_millis(50),
            };
            serve(&source, &[Executor::Echo], timing, &stop).await
        })
    };
    let tar = template_tar(&[("main.tf", "# b template\n")]);
    let v = import_version(o, "org-b", "echo", tar.clone(), json!({})).await;
    let bv = v["id"].as_str().unwrap().to_owned();
    let import_job = v["job"]["id"].as_str().unwrap().to_owned();
    let job = wait_job(o, &import_job, Duration::from_secs(20)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (status, t) = o
        .post(
            "/organizations/org-b/templates",
            json!({"name": "b-tpl", "version_id": bv}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let bt = t["id"].as_str().unwrap().to_owned();
    let (status, ws) = o
        .post(
            "/organizations/org-b/members/b-member/workspaces",
            json!({"template_id": bt, "name": "dev"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ws}");
    let bw = ws["id"].as_str().unwrap().to_owned();
    let build_job = ws["latest_build"]["job_id"].as_str().unwrap().to_owned();
    let job = wait_job(o, &build_job, Duration::from_secs(20)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    stop.cancel();
    assert_eq!(
        daemon.await.unwrap(),
        Ok(()),
        "B's daemon stopped when told"
    );
    let (status, file) =
        crate::provisioning::upload(o, "org-b", template_tar(&[("main.tf", "# pending\n")])).await;
    assert!(status.is_success(), "{file}");
    let (status, pv) = o
        .post(
            "/organizations/org-b/templateversions",
            json!({"file_hash": file["hash"], "provisioner": "echo"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pv}");
    let pending_job = pv["job"]["id"].as_str().unwrap().to_owned();
    let b_jobs = [import_job.clone(), build_job.clone(), pending_job.clone()];

    // What B looks like to its owner, before and after.
    let b_snapshot = async || {
        let mut snap = Map::new();
        let mut paths = vec![
            format!("/organizations/{b}/templates"),
            format!("/organizations/{b}/templateversions"),
            format!("/organizations/{b}/provisionerkeys"),
            format!("/organizations/{b}/provisionerjobs"),
            format!("/templates/{bt}"),
            format!("/templates/{bt}/acl"),
            format!("/templateversions/{bv}"),
            format!("/workspaces/{bw}"),
            format!("/workspaces/{bw}/builds"),
            "/workspaces?owner=b-member".to_owned(),
        ];
        for j in &b_jobs {
            paths.push(format!("/provisionerjobs/{j}"));
            paths.push(format!("/provisionerjobs/{j}/logs"));
        }
        for p in paths {
            let (status, v) = o.get(&p).await;
            assert_eq!(status, StatusCode::OK, "owner GET {p}: {v}");
            snap.insert(p, v);
        }
        let mut conn = s.state.db.pool().acquire().await.unwrap();
        for table in [
            "files",
            "file_organizations",
            "provisioner_jobs",
            "provisioner_job_logs",
            "provisioner_keys",
            "templates",
            "template_versions",
            "workspaces",
            "workspace_builds",
            "audit_logs",
        ] {
            let (n,): (i64,) =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
            snap.insert(table.to_owned(), json!(n));
        }
        Value::Object(snap)
    };
    let before = b_snapshot().await;

    // The routes, on B's objects and on objects that do not exist.
    let mut cases: Vec<Case> = Vec::new();
    for (key, g) in [(b.as_str(), GHOST), ("org-b", "org-ghost")] {
        let org_routes: Vec<(Method, String, Option<Value>)> = vec![
            (
                Method::GET,
                "/organizations/{o}/templateversions".into(),
                None,
            ),
            (
                Method::POST,
                "/organizations/{o}/templateversions".into(),
                Some(json!({"file_hash": file["hash"], "provisioner": "echo"})),
            ),
            (Method::GET, "/organizations/{o}/templates".into(), None),
            (
                Method::POST,
                "/organizations/{o}/templates".into(),
                Some(json!({"name": "stolen", "version_id": bv})),
            ),
            (
                Method::GET,
                "/organizations/{o}/provisionerkeys".into(),
                None,
            ),
            (
                Method::POST,
                "/organizations/{o}/provisionerkeys".into(),
                Some(json!({"name": "stolen"})),
            ),
            (
                Method::DELETE,
                "/organizations/{o}/provisionerkeys/b-key".into(),
                None,
            ),
            (
                Method::GET,
                "/organizations/{o}/provisionerdaemons".into(),
                None,
            ),
            (
                Method::GET,
                "/organizations/{o}/provisionerjobs".into(),
                None,
            ),
            (
                Method::POST,
                "/organizations/{o}/members/b-member/workspaces".into(),
                Some(json!({"template_id": bt, "name": "stolen"})),
            ),
            (
                Method::POST,
                "/organizations/{o}/members/me/workspaces".into(),
                Some(json!({"template_id": bt, "name": "mine"})),
            ),
        ];
        for (m, p, body) in org_routes {
            cases.push(case(m, p.replace("{o}", key), p.replace("{o}", g), body));
        }
    }
    let object_routes: Vec<(Method, String, String, Option<Value>)> = vec![
        (
            Method::GET,
            format!("/templateversions/{bv}"),
            format!("/templateversions/{GHOST}"),
            None,
        ),
        (
            Method::GET,
            format!("/templates/{bt}"),
            format!("/templates/{GHOST}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/templates/{bt}"),
            format!("/templates/{GHOST}"),
            Some(json!({"display_name": "Pwned"})),
        ),
        (
            Method::DELETE,
            format!("/templates/{bt}"),
            format!("/templates/{GHOST}"),
            None,
        ),
        (
            Method::GET,
            format!("/templates/{bt}/acl"),
            format!("/templates/{GHOST}/acl"),
            None,
        ),
        (
            Method::PATCH,
            format!("/templates/{bt}/acl"),
            format!("/templates/{GHOST}/acl"),
            Some(json!({"users": {"me": "admin"}})),
        ),
        (
            Method::GET,
            format!("/workspaces/{bw}"),
            format!("/workspaces/{GHOST}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/workspaces/{bw}"),
            format!("/workspaces/{GHOST}"),
            None,
        ),
        (
            Method::GET,
            format!("/workspaces/{bw}/builds"),
            format!("/workspaces/{GHOST}/builds"),
            None,
        ),
        (
            Method::POST,
            format!("/workspaces/{bw}/builds"),
            format!("/workspaces/{GHOST}/builds"),
            Some(json!({"transition": "stop"})),
        ),
    ];
    for (m, p, g, body) in object_routes {
        cases.push(case(m, p, g, body));
    }
    for j in &b_jobs {
        cases.push(case(
            Method::GET,
            format!("/provisionerjobs/{j}"),
            format!("/provisionerjobs/{GHOST}"),
            None,
        ));
        cases.push(case(
            Method::GET,
            format!("/provisionerjobs/{j}/logs"),
            format!("/provisionerjobs/{GHOST}/logs"),
            None,
        ));
        cases.push(case(
            Method::POST,
            format!("/provisionerjobs/{j}/cancel"),
            format!("/provisionerjobs/{GHOST}/cancel"),
            Some(json!({})),
        ));
    }
    assert_eq!(cases.len(), 41);

    for actor in &w.actors {
        let c = &actor.client;
        for k in &cases {
            let what = format!("{} {} {}", actor.label, k.method, k.path);
            let (status, body) = c.send(k.method.clone(), &k.path, k.body.clone()).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {body}");
            assert_error_shape(status, &body, &what);
            let (g_status, g_body) = c.send(k.method.clone(), &k.ghost, k.body.clone()).await;
            assert_eq!(
                (status, &body),
                (g_status, &g_body),
                "{what}: differs from {}",
                k.ghost
            );
        }
        // Uploading a file for B.
        for (key, g) in [(b.as_str(), GHOST), ("org-b", "org-ghost")] {
            let what = format!("{} POST /files?organization={key}", actor.label);
            let up = async |org: &str| {
                let path = format!("/files?organization={org}");
                crate::bad_input::raw(
                    c,
                    Method::POST,
                    &path,
                    Some("application/x-tar"),
                    Some(tar.clone()),
                )
                .await
            };
            let (status, _, body) = up(key).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {body}");
            assert_error_shape(status, &body, &what);
            let (g_status, _, g_body) = up(g).await;
            assert_eq!((status, &body), (g_status, &g_body), "{what}");
        }
        // Lists show nothing of B.
        let (status, list) = c.get("/templates").await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert!(
            list.as_array()
                .unwrap()
                .iter()
                .all(|t| t["organization_id"] != b.as_str()),
            "{}: {list}",
            actor.label
        );
        for p in ["/workspaces", "/workspaces?owner=b-member"] {
            let (status, list) = c.get(p).await;
            assert_eq!(status, StatusCode::OK, "{list}");
            assert_eq!(list["count"], 0, "{} {p}: {list}", actor.label);
        }
        // Authcheck on B's template, workspace, key and jobs: false.
        let (status, a) = c
            .post(
                "/authcheck",
                json!({"checks": {
                    "tpl_read": {"object": {"resource_type": "template", "organization_id": b, "resource_id": bt}, "action": "read"},
                    "tpl_use": {"object": {"resource_type": "template", "organization_id": b, "resource_id": bt}, "action": "use"},
                    "ws_read": {"object": {"resource_type": "workspace", "organization_id": b, "resource_id": bw, "owner_id": w.b_member_id}, "action": "read"},
                    "ws_delete": {"object": {"resource_type": "workspace", "organization_id": b, "resource_id": bw, "owner_id": w.b_member_id}, "action": "delete"},
                    "job_read": {"object": {"resource_type": "provisioner_job", "organization_id": b, "resource_id": build_job}, "action": "read"},
                    "job_cancel": {"object": {"resource_type": "provisioner_job", "organization_id": b, "resource_id": pending_job}, "action": "cancel"},
                    "key_delete": {"object": {"resource_type": "provisioner_key", "organization_id": b}, "action": "delete"},
                    "file_read": {"object": {"resource_type": "file", "organization_id": b}, "action": "read"}
                }}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{a}");
        assert!(
            a.as_object().unwrap().values().all(|v| v == &json!(false)),
            "{}: {a}",
            actor.label
        );
    }

    // A daemon of A: never acquires B's pending job, cannot act on B's jobs
    // (404, as for jobs that do not exist), cannot pose as B's daemon.
    let (status, key) = o
        .post(
            "/organizations/org-a/provisionerkeys",
            json!({"name": "a-key"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let a_secret = key["key"].as_str().unwrap().to_owned();
    let (status, reg) = daemon_call(
        &s,
        &a_secret,
        "/register",
        json!({"name": "a-daemon", "provisioners": ["echo"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reg}");
    assert_eq!(reg["organization_id"], w.a_id.as_str());
    let a_daemon = reg["id"].as_str().unwrap().to_owned();
    let (status, body) = daemon_call(
        &s,
        &a_secret,
        &format!("/{a_daemon}/acquire?wait_ms=500"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "took B's job: {body}");
    let b_daemons = o.get_ok("/organizations/org-b/provisionerdaemons").await;
    let b_daemon = b_daemons[0]["id"].as_str().unwrap().to_owned();
    for j in &b_jobs {
        for (what, body) in [
            ("heartbeat", json!({})),
            (
                "logs",
                json!({"logs": [{"stage": "x", "level": "info", "output": "pwned"}]}),
            ),
            ("complete", json!({})),
            ("fail", json!({"error": "pwned"})),
        ] {
            let (status, resp) = daemon_call(
                &s,
                &a_secret,
                &format!("/{a_daemon}/jobs/{j}/{what}"),
                body.clone(),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "A daemon {what} on {j}: {resp}"
            );
            assert_error_shape(status, &resp, what);
            let ghost = daemon_call(
                &s,
                &a_secret,
                &format!("/{a_daemon}/jobs/{GHOST}/{what}"),
                body.clone(),
            )
            .await;
            assert_eq!((status, &resp), (ghost.0, &ghost.1), "A daemon {what}");
            // B's daemon id with A's key: not A's daemon.
            let (status, resp) =
                daemon_call(&s, &a_secret, &format!("/{b_daemon}/jobs/{j}/{what}"), body).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "A key as B daemon: {resp}"
            );
        }
    }
    let (status, reply) = daemon_call(
        &s,
        &a_secret,
        &format!("/{b_daemon}/acquire?wait_ms=200"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");

    // B is as it was (but for A's new key and A's daemon registration, whose
    // audit entries are A's).
    let mut after = b_snapshot().await;
    let keys = after["provisioner_keys"].as_i64().unwrap();
    after["provisioner_keys"] = json!(keys - 1);
    let audit = after["audit_logs"].as_i64().unwrap();
    after["audit_logs"] = json!(audit - 2);
    for (k, v) in before.as_object().unwrap() {
        assert_eq!(Some(v), after.get(k), "{k} changed");
    }
    let job = o.get_ok(&format!("/provisionerjobs/{pending_job}")).await;
    assert_eq!(job["status"], "pending", "{job}");
}
