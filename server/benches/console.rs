//! Web console pages rendered server-side through the real axum router
//! ([`orgsync::api::router`], requests sent with tower's `oneshot`, no
//! network), signed in with a session cookie from the console's own login
//! form, on a SQLite database of 1,000 organizations and 10,000 users.
//!
//! Deployment (fixed, no randomness): the default org `coder` and `org-1` ..
//! `org-999`, each with its Everyone group and 3 more groups and 2 templates
//! (one shared with Everyone, one with nobody) = 2,000 templates; 10,000 users,
//! each a member of `coder` and of 2 other orgs (about 20 members per other
//! org), in 1 group of each; 20 audit entries per org (20,000). The viewer,
//! `viewer`, is organization-admin of `coder` (the big org: 10,000 members)
//! and a plain member of 2 other orgs, with no site role.
//!
//! Each page in [`PAGES`] is requested until criterion is done, and also timed
//! one by one (p50/p90/p99 printed). Run: `cargo bench -p orgsync --bench
//! console`. Numbers and method: BENCHMARKS.md, "Console pages".

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark setup fails loudly"
)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use criterion::{Criterion, criterion_group, criterion_main};
use orgsync::app::{App, AppState};
use orgsync::authz::System;
use orgsync::config::{ServerArgs, ServerConfig};
use orgsync::model::{LoginType, Organization};
use orgsync::store;
use orgsync::store::bulk::Arg;
use orgsync::usecase::{Caller, Work};
use orgsync_policy::{Action, Resource};
use tower::ServiceExt as _;

const ORGS: usize = 1_000;
const USERS: usize = 10_000;
const GROUPS_PER_ORG: usize = 3;
const AUDIT_PER_ORG: usize = 20;
const PASSWORD: &str = "bench-password-1";

/// The pages measured: (label, path). Add a line per new console page.
const PAGES: &[(&str, &str)] = &[
    ("members", "/organizations/coder/members"),
    ("members-page-100", "/organizations/coder/members?page=100"),
    ("templates", "/templates"),
    ("org-settings", "/organizations/coder"),
    ("groups", "/organizations/coder/groups"),
    ("audit", "/organizations/coder/audit"),
];

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn org_name(o: usize) -> String {
    if o == 0 {
        "coder".to_owned()
    } else {
        format!("org-{o}")
    }
}

/// The two other orgs of user `u` (never `coder`, never the same).
fn other_orgs(u: usize) -> [usize; 2] {
    let a = 1 + u % (ORGS - 1);
    let b = 1 + (u * 7 + 3) % (ORGS - 1);
    if a == b {
        [a, 1 + a % (ORGS - 1)]
    } else {
        [a, b]
    }
}

fn text(s: impl Into<String>) -> Arg {
    Arg::Text(s.into())
}

/// The deployment of the doc comment. Returns the app, its temp dir and the
/// viewer's session cookie (`orgsync_session=...`).
async fn setup() -> (AppState, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let args = ServerArgs {
        data_dir: Some(dir.path().to_path_buf()),
        database_url: Some(format!(
            "sqlite://{}",
            dir.path().join("orgsync.db").display()
        )),
        provisioner_daemons: Some(0),
        log: Some("error".into()),
        ..Default::default()
    };
    let app = App::init(ServerConfig::resolve(&args).unwrap())
        .await
        .unwrap();
    let now = orgsync::clock::fmt(orgsync::clock::now());
    let hash = orgsync::secrets::hash_password(PASSWORD).unwrap();
    let setup = Caller::system(System::Setup);
    let mut work = Work::begin(app.ctx(), &setup).await.unwrap();
    let permit = work
        .require(Action::ORGANIZATION_CREATE, &Resource::site(), "seed")
        .unwrap();
    let mut w = work.write(&permit).unwrap();
    store::users::insert(
        &mut w,
        &store::users::NewUser {
            id: &new_id(),
            username: "admin",
            email: "admin@example.com",
            name: "",
            login_type: LoginType::Password,
            password_hash: None,
            roles: &["owner".to_owned()],
            now: &now,
        },
    )
    .await
    .unwrap();

    let mut orgs: Vec<Organization> = Vec::with_capacity(ORGS);
    let mut groups: Vec<Vec<String>> = Vec::with_capacity(ORGS);
    for o in 0..ORGS {
        let org = if o == 0 {
            store::orgs::default_org(w.conn()).await.unwrap().unwrap()
        } else {
            let org = Organization {
                id: new_id(),
                name: org_name(o),
                display_name: format!("Organization {o}"),
                description: String::new(),
                icon: String::new(),
                is_default: false,
                created_at: now.clone(),
                updated_at: now.clone(),
            };
            store::orgs::insert(&mut w, &org).await.unwrap();
            store::groups::insert_everyone(&mut w, &org.id, &now)
                .await
                .unwrap();
            org
        };
        let mut ids = Vec::new();
        for g in 0..GROUPS_PER_ORG {
            let id = new_id();
            store::groups::insert(
                &mut w,
                &store::groups::NewGroup {
                    id: &id,
                    organization_id: &org.id,
                    name: &format!("team-{g}"),
                    display_name: "",
                    avatar_url: "",
                    quota_allowance: 0,
                    source: "manual",
                    now: &now,
                },
            )
            .await
            .unwrap();
            ids.push(id);
        }
        for (t, shared) in [("dev", true), ("private", false)] {
            let mut acl = store::templates::Acl::default();
            if shared {
                acl.groups.insert(org.id.clone(), "use".into());
            }
            store::templates::insert_template(
                &mut w,
                &store::templates::Template {
                    id: new_id(),
                    organization_id: org.id.clone(),
                    name: format!("{t}-{o}"),
                    display_name: format!("{t} {o}"),
                    description: String::new(),
                    icon: String::new(),
                    active_version_id: new_id(),
                    provisioner: "echo".into(),
                    created_by: String::new(),
                    acl,
                    created_at: now.clone(),
                    updated_at: now.clone(),
                },
            )
            .await
            .unwrap();
        }
        groups.push(ids);
        orgs.push(org);
    }

    // Users (the viewer is user 0), memberships and group memberships.
    let mut users = Vec::new();
    let mut members = Vec::new();
    let mut group_members = Vec::new();
    for u in 0..USERS {
        let id = new_id();
        let username = if u == 0 {
            "viewer".to_owned()
        } else {
            format!("user{u:05}")
        };
        let email = format!("{username}@example.com");
        users.push(vec![
            text(&id),
            text(&username),
            text(&username),
            text(&email),
            text(&email),
            text(format!("User {u}")),
            text(""),
            text("active"),
            text("password"),
            Arg::Opt(Some(hash.clone())),
            text("[]"),
            text(&now),
            text(&now),
            Arg::Int(1),
        ]);
        let roles = if u == 0 {
            r#"["organization-admin"]"#
        } else {
            "[]"
        };
        let [a, b] = other_orgs(u);
        for (o, roles) in [(0, roles), (a, "[]"), (b, "[]")] {
            members.push(vec![
                text(&orgs[o].id),
                text(&id),
                text(roles),
                text(&now),
                text(&now),
            ]);
            let g = &groups[o][u % GROUPS_PER_ORG];
            group_members.push(vec![text(g), text(&id), text(&orgs[o].id), text(&now)]);
        }
    }
    store::users::insert_many(&mut w, users).await.unwrap();
    store::members::insert_many(&mut w, members).await.unwrap();
    store::groups::insert_members_many(&mut w, group_members)
        .await
        .unwrap();
    let mut audit = Vec::new();
    for org in &orgs {
        for i in 0..AUDIT_PER_ORG {
            audit.push(
                store::audit::AuditEntry {
                    id: new_id(),
                    time: now.clone(),
                    user_id: None,
                    organization_id: Some(org.id.clone()),
                    action: "write".into(),
                    resource_type: "organization".into(),
                    resource_id: org.id.clone(),
                    resource_target: format!("{} #{i}", org.name),
                    diff: serde_json::json!({}),
                    status_code: 200,
                    ip: String::new(),
                    user_agent: String::new(),
                    request_id: String::new(),
                    source: "bench".into(),
                }
                .into_row(),
            );
        }
    }
    store::audit::insert_many(&mut w, audit).await.unwrap();
    work.commit().await.unwrap();

    let cookie = login(&app).await;
    (app, dir, cookie)
}

/// Signs the viewer in through the console's login form.
async fn login(app: &AppState) -> String {
    let router = orgsync::api::router(app.clone());
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, app.config.access_url.trim_end_matches('/'))
        .body(Body::from(format!(
            "email=viewer%40example.com&password={PASSWORD}"
        )))
        .unwrap();
    let resp = router.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "login");
    let set = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("orgsync_session="))
        .expect("a session cookie");
    set.split(';').next().unwrap().to_owned()
}

/// One page: its status and body size (the body is read to the end).
async fn get(router: &Router, cookie: &str, path: &str) -> (StatusCode, usize) {
    let req = Request::get(path)
        .header(header::COOKIE, cookie)
        .header(header::ACCEPT, "text/html")
        .body(Body::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, body.len())
}

fn percentiles(label: &str, samples: &Mutex<Vec<Duration>>) {
    let mut v = samples.lock().unwrap().clone();
    if v.is_empty() {
        return;
    }
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    println!(
        "{label}: n={} p50={:.2?} p90={:.2?} p99={:.2?}",
        v.len(),
        at(0.50),
        at(0.90),
        at(0.99)
    );
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let (app, _dir, cookie) = rt.block_on(setup());
    println!("setup: {:.1?}", started.elapsed());
    let router = orgsync::api::router(app.clone());
    let mut group = c.benchmark_group("console");
    group.sample_size(50);
    for (label, path) in PAGES {
        let (status, size) = rt.block_on(get(&router, &cookie, path));
        assert_eq!(status, StatusCode::OK, "{path}");
        println!("{label} ({path}): {size} bytes");
        let samples = Mutex::new(Vec::new());
        group.bench_function(*label, |b| {
            b.iter(|| {
                let t = Instant::now();
                let (status, _) = rt.block_on(get(&router, &cookie, path));
                samples.lock().unwrap().push(t.elapsed());
                assert_eq!(status, StatusCode::OK);
            })
        });
        percentiles(label, &samples);
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
