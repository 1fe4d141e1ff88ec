//! OIDC callback handling after the provider's round trips, on PostgreSQL
//! (`ORGSYNC_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`;
//! a fresh database per run, dropped at the end) and, for comparison, SQLite:
//! [`orgsync::api::oidc::complete_login`], what `GET /users/oidc/callback` runs
//! once the tokens are verified: the `allowed_groups` check, then one
//! transaction that finds the linked user, stores the claims, plans and applies
//! IdP sync (organizations, groups, roles), opens a session and audits, the
//! commit, and the invalidation of the user's authorization cache.
//!
//! Deployment: 5 organizations (the default one and 4 more), 12 groups each;
//! organization sync (claim `groups`) maps one claim value per organization;
//! every organization has group sync (claim `groups`, a `^team-N-` regex
//! filter, the 5 values `team-N-0,2,4,6,8` mapped to 2 groups each, one by id
//! and one by name, auto-create off) and role sync (claim `roles`, `lead-N` ->
//! organization-admin). The claims carry 75 group values (50 `team-N-M`, 10 per
//! organization, 5 organization markers, 20 values every filter drops) and 2
//! role values; in an organization that does not map a role value, the value
//! names no role and is reported as a problem (recorded on the first login,
//! only looked up after). Claim set A (`team-N-0..9`, `lead-1`,
//! `lead-3`) puts the user in 11 groups per organization (55, plus the 5
//! Everyone groups), set B (`team-N-2..11`, `lead-2`, `lead-4`) in 10 (50).
//!
//! - `steady`: set A on every login: the plan is computed and changes
//!   nothing; a new session and its audit entry are written.
//! - `alternating`: A and B by turns, so each login moves 3 group memberships
//!   per organization (15 in all) and the organization-admin role in 4
//!   organizations, each with its audit entry (20 audit rows per login).
//!
//! Besides criterion's estimates, every login is also timed on its own and the
//! p50/p90/p99 of those are printed. Numbers and method: BENCHMARKS.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark setup fails loudly"
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use orgsync::api::oidc::complete_login;
use orgsync::app::{App, AppState};
use orgsync::audit::AuditCtx;
use orgsync::authz::System;
use orgsync::config::{OidcArgs, ServerArgs, ServerConfig};
use orgsync::idpsync::{SettingsKey, store_settings};
use orgsync::model::{LoginType, Organization};
use orgsync::oidc::Identity;
use orgsync::store;
use orgsync::usecase::{Caller, Work};
use orgsync_policy::{Action, Resource};
use serde_json::{Map, Value, json};
use sqlx::Connection;

const ORGS: usize = 5;
const GROUPS_PER_ORG: usize = 12;

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A database for the run: a fresh PostgreSQL database (dropped on drop) or a
/// SQLite file in a temp dir.
enum BenchDb {
    Postgres { admin_url: String, name: String },
    Sqlite(#[allow(dead_code, reason = "kept for its Drop")] tempfile::TempDir),
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let BenchDb::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Not inside the benchmark's runtime: a thread with its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&mut conn)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

async fn database(postgres: bool) -> (BenchDb, String, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_path_buf();
    if !postgres {
        let url = format!("sqlite://{}", data_dir.join("orgsync.db").display());
        return (BenchDb::Sqlite(dir), url, data_dir);
    }
    let admin_url = std::env::var("ORGSYNC_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("orgsync_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("PostgreSQL is required for this benchmark");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    // The temp dir only holds logs; keep it for the run.
    let data_dir = dir.keep();
    (BenchDb::Postgres { admin_url, name }, url, data_dir)
}

fn org_name(o: usize) -> String {
    if o == 0 {
        "coder".to_owned()
    } else {
        format!("org-{o}")
    }
}

/// Claims of set `a` (groups 0-9 of each org, lead-1 and lead-3) or of the
/// other set (groups 2-11, lead-2 and lead-4).
fn claims(a: bool) -> Map<String, Value> {
    let range = if a { 0..10 } else { 2..12 };
    let mut groups = Vec::new();
    for o in 0..ORGS {
        groups.push(format!("member-of-{o}"));
        for g in range.clone() {
            groups.push(format!("team-{o}-{g}"));
        }
    }
    for i in 0..20 {
        groups.push(format!("ad-distribution-list-{i}"));
    }
    let roles = if a {
        ["lead-1", "lead-3"]
    } else {
        ["lead-2", "lead-4"]
    };
    match json!({
        "sub": "bench-subject",
        "email": "jdoe@example.com",
        "email_verified": true,
        "preferred_username": "jdoe",
        "name": "J. Doe",
        "groups": groups,
        "roles": roles,
    }) {
        Value::Object(m) => m,
        _ => panic!("claims are an object"),
    }
}

fn identity(a: bool) -> Identity {
    Identity {
        subject: "bench-subject".into(),
        claims: claims(a),
    }
}

/// The deployment of the doc comment, and a first login (creates the user).
async fn setup(postgres: bool) -> (AppState, BenchDb) {
    let (db, url, data_dir) = database(postgres).await;
    let args = ServerArgs {
        data_dir: Some(data_dir),
        database_url: Some(url),
        provisioner_daemons: Some(0),
        log: Some("error".into()),
        oidc: Box::new(OidcArgs {
            // Never contacted: the benchmark starts after the provider's part.
            oidc_issuer_url: Some("http://127.0.0.1:9/".into()),
            oidc_client_id: Some("orgsync-bench".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let app = App::init(ServerConfig::resolve(&args).unwrap())
        .await
        .unwrap();
    let now = orgsync::clock::fmt(orgsync::clock::now());
    // Seeded on the authority of the deployment's setup, in one transaction.
    let setup = Caller::system(System::Setup);
    let mut work = Work::begin(app.ctx(), &setup).await.unwrap();
    let permit = work
        .require(Action::ORGANIZATION_CREATE, &Resource::site(), "seed")
        .unwrap();
    let mut w = work.write(&permit).unwrap();
    // An owner, so the deployment is set up.
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
    let mut org_mapping = Map::new();
    for o in 0..ORGS {
        let org = if o == 0 {
            store::orgs::default_org(w.conn()).await.unwrap().unwrap()
        } else {
            let org = Organization {
                id: new_id(),
                name: org_name(o),
                display_name: org_name(o),
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
        assert_eq!(org.name, org_name(o));
        org_mapping.insert(format!("member-of-{o}"), json!([org.name]));
        let mut ids = Vec::new();
        for g in 0..GROUPS_PER_ORG {
            let id = new_id();
            store::groups::insert(
                &mut w,
                &store::groups::NewGroup {
                    id: &id,
                    organization_id: &org.id,
                    name: &format!("team-{o}-{g}"),
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
        // team-N-G (G even, < 10) -> that group by id and group G+2 by name.
        let mut mapping = Map::new();
        for g in (0..10).step_by(2) {
            mapping.insert(
                format!("team-{o}-{g}"),
                json!([ids[g], format!("team-{o}-{}", g + 2)]),
            );
        }
        store_settings(
            &mut w,
            Some(&org.id),
            SettingsKey::Groups,
            &json!({"field": "groups", "mapping": mapping,
                    "regex_filter": format!("^team-{o}-"), "auto_create_missing_groups": false}),
            &now,
        )
        .await
        .unwrap();
        store_settings(
            &mut w,
            Some(&org.id),
            SettingsKey::Roles,
            &json!({"field": "roles", "mapping": {format!("lead-{o}"): ["organization-admin"]}}),
            &now,
        )
        .await
        .unwrap();
    }
    store_settings(
        &mut w,
        None,
        SettingsKey::Organization,
        &json!({"field": "groups", "mapping": org_mapping, "organization_assign_default": true}),
        &now,
    )
    .await
    .unwrap();

    work.commit().await.unwrap();

    // The first login creates and syncs the user (not measured); the second
    // brings it to the state of set `a`.
    for a in [false, true] {
        login(&app, a).await;
    }
    let (user, _) = login(&app, true).await;
    let mut conn = app.db.pool().acquire().await.unwrap();
    let orgs = store::users::organizations(&mut conn, &user.id)
        .await
        .unwrap();
    assert_eq!(orgs.len(), ORGS, "the user is in the 5 organizations");
    (app, db)
}

async fn login(app: &AppState, a: bool) -> (orgsync::model::User, String) {
    let ctx = AuditCtx::default();
    complete_login(app, &identity(a), &ctx, orgsync::clock::now())
        .await
        .unwrap_or_else(|e| panic!("login refused: {} {:?}", e.status_code(), e.body.message))
}

/// Counts rows written by one login of each kind, to check the scenario.
async fn audit_rows(app: &AppState) -> i64 {
    use sqlx::Row;
    let mut conn = app.db.pool().acquire().await.unwrap();
    sqlx::query("SELECT COUNT(*) AS n FROM audit_logs")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .try_get::<i64, _>("n")
        .unwrap()
}

fn percentiles(label: &str, samples: &Mutex<Vec<Duration>>) {
    let mut v = samples.lock().unwrap().clone();
    if v.is_empty() {
        return;
    }
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    println!(
        "{label}: {} logins one by one: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, mean {:.3} ms",
        v.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
    );
}

fn run_backend(c: &mut Criterion, rt: &tokio::runtime::Runtime, postgres: bool) {
    let backend = if postgres { "postgres" } else { "sqlite" };
    let (app, db) = rt.block_on(setup(postgres));

    // What each kind of login writes: steady, the session's audit entry only;
    // alternating, also the 15 group and 4 role changes.
    let before = rt.block_on(audit_rows(&app));
    rt.block_on(login(&app, true));
    let steady_rows = rt.block_on(audit_rows(&app)) - before;
    rt.block_on(login(&app, false));
    let changed_rows = rt.block_on(audit_rows(&app)) - before - steady_rows;
    rt.block_on(login(&app, true));
    assert_eq!(steady_rows, 1, "a steady login audits its session only");
    assert_eq!(
        changed_rows, 20,
        "a changing login audits 15 group and 4 role changes and its session"
    );

    let mut group = c.benchmark_group(format!("oidc_callback/{backend}"));
    group
        .sample_size(100)
        .measurement_time(Duration::from_secs(20));
    let steady = Arc::new(Mutex::new(Vec::new()));
    group.bench_function("steady", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut own = Vec::with_capacity(iters as usize);
            for _ in 0..iters {
                let t = Instant::now();
                rt.block_on(login(&app, true));
                let d = t.elapsed();
                own.push(d);
                total += d;
            }
            steady.lock().unwrap().extend(own);
            total
        });
    });
    let alternating = Arc::new(Mutex::new(Vec::new()));
    let mut a = true;
    group.bench_function("alternating", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut own = Vec::with_capacity(iters as usize);
            for _ in 0..iters {
                a = !a;
                let t = Instant::now();
                rt.block_on(login(&app, a));
                let d = t.elapsed();
                own.push(d);
                total += d;
            }
            alternating.lock().unwrap().extend(own);
            total
        });
    });
    group.finish();
    percentiles(&format!("oidc_callback/{backend}/steady"), &steady);
    percentiles(
        &format!("oidc_callback/{backend}/alternating"),
        &alternating,
    );

    app.shutdown.cancel();
    rt.block_on(app.db.pool().close());
    drop(app);
    drop(db);
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    run_backend(c, &rt, true);
    if std::env::var("ORGSYNC_BENCH_SQLITE").as_deref() != Ok("0") {
        run_backend(c, &rt, false);
    }
}

criterion_group!(callback, benches);
criterion_main!(callback);
