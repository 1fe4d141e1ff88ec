//! LDAP directory sync on PostgreSQL against a private slapd (BENCHMARKS.md).
//!
//! `cargo bench -p orgsync --bench ldapsync` (scale `10k` by default;
//! `ORGSYNC_BENCH_LDAP_SCALE=10k|100k|both`, or the same word as an argument
//! after `--`). PostgreSQL: `ORGSYNC_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; a fresh database per scale,
//! dropped at the end.
//!
//! Per scale (10k: 10,000 users / 500 groups; 100k: 100,000 users / 5,000
//! groups; `scripts/gen-ldap-data --nesting`):
//! 1. slapd starts (`tests/support/slapd.rs`), the generated LDIF goes in
//!    with `slapadd -q` while slapd is stopped (seconds instead of minutes of
//!    `ldapadd` at 100k). slapadd bypasses the memberOf overlay, so the sync
//!    reads membership from the groups' `member` values (`membership:
//!    ["member"]`, nested groups on).
//! 2. The read floor: the real `ldapsearch` (paged, `-E pr=500/noprompt`) of
//!    the groups and then the users, same bases, filters and attributes as the
//!    sync, output parsed for the entry count. Run twice; the second (warm)
//!    is the floor.
//! 3. Deployment: 7 department organizations fed by organization sync on the
//!    `department` claim (every user in the default org + 1 or 2 others);
//!    in each, group sync on `groups` with a regex filter (even-numbered
//!    groups only) and auto-create, role sync (`group-0007` -> organization
//!    admin, `group-0042` -> auditor).
//! 4. First full sync: wall time from `DirectorySync::start` to the run's end (the
//!    phases are sampled from the run's progress), peak RSS of this process
//!    (VmHWM, reset through `/proc/self/clear_refs` just before the run; the
//!    sync runs in-process), and the counts it must give.
//! 5. Second full sync, nothing changed: wall time and row writes, counted
//!    exactly by `AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW` triggers
//!    installed on every table after the first run (and cross-checked with
//!    `pg_stat_user_tables` deltas after the backends' stats flush). Writes
//!    to `ldapsync_*` tables (the run record, lease, heartbeat) are reported
//!    apart as run bookkeeping.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "benchmark setup fails loudly and prints its results"
)]

#[path = "../../tests/support/slapd.rs"]
mod slapd;
#[path = "../../tests/support/testkit.rs"]
mod testkit;

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orgsync::app::{App, AppState};
use orgsync::authz::System;
use orgsync::config::{ServerArgs, ServerConfig};
use orgsync::idpsync::{SettingsKey, store_settings};
use orgsync::ldapsync::{self, RunRequest, Trigger};
use orgsync::model::{LoginType, Organization};
use orgsync::store;
use orgsync::usecase::{Caller, Work};
use orgsync_policy::{Action, Resource};
use orgsync_sync::ldap::LdapSettings;
use serde_json::{Value, json};
use sqlx::{Connection, Row};

use slapd::Slapd;

const DEPARTMENTS: &[&str] = &[
    "engineering",
    "sales",
    "support",
    "finance",
    "marketing",
    "research",
    "ops",
];
const GROUP_FILTER: &str = "(|(objectClass=groupOfNames)(objectClass=posixGroup))";
const USER_FILTER: &str = "(objectClass=inetOrgPerson)";
const GROUP_ATTRS: &[&str] = &["cn", "member"];
const USER_ATTRS: &[&str] = &["cn", "departmentNumber", "entryUUID", "mail", "uid"];

#[derive(Clone, Copy)]
struct Scale {
    name: &'static str,
    users: usize,
    groups: usize,
}

const SCALE_10K: Scale = Scale {
    name: "10k",
    users: 10_000,
    groups: 500,
};
const SCALE_100K: Scale = Scale {
    name: "100k",
    users: 100_000,
    groups: 5_000,
};

#[derive(Default)]
struct Results {
    scale: String,
    entries: usize,
    generate: Duration,
    load: Duration,
    search_cold: Duration,
    search_warm: Duration,
    first: Duration,
    first_phases: String,
    first_hwm_kib: u64,
    baseline_rss_kib: u64,
    first_stats: Value,
    problems: String,
    counts: BTreeMap<&'static str, i64>,
    second: Duration,
    second_phases: String,
    second_stats: Value,
    data_writes: BTreeMap<String, i64>,
    bookkeeping_writes: BTreeMap<String, i64>,
    pg_stat_data_writes: i64,
    pg_stat_bookkeeping_writes: i64,
}

/// A fresh PostgreSQL database, dropped on drop.
struct BenchDb {
    admin_url: String,
    name: String,
    url: String,
}

impl BenchDb {
    async fn create() -> BenchDb {
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
        BenchDb {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
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

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux >= 4.0).
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM via /proc/self/clear_refs");
}

/// Generates the directory into `file` and loads it with `slapadd -q` while
/// slapd is stopped. Returns (generate, load) times and the entry count.
fn load_directory(slapd: &mut Slapd, scale: Scale) -> (Duration, Duration, usize) {
    let file = slapd.dir().join("generated.ldif");
    let t = Instant::now();
    let out = std::fs::File::create(&file).unwrap();
    let status = Command::new("python3")
        .arg(slapd::repo_root().join("scripts/gen-ldap-data"))
        .args([
            "--users",
            &scale.users.to_string(),
            "--groups",
            &scale.groups.to_string(),
            "--nesting",
        ])
        .stdout(out)
        .status()
        .expect("run scripts/gen-ldap-data");
    assert!(status.success(), "scripts/gen-ldap-data failed");
    let generate = t.elapsed();
    let entries = std::io::BufReader::new(std::fs::File::open(&file).unwrap())
        .lines()
        .filter(|l| l.as_ref().is_ok_and(|l| l.starts_with("dn: ")))
        .count();

    let t = Instant::now();
    slapd.kill();
    // The harness keeps mdb's default map size (10 MiB): too small here.
    let config = slapd.dir().join("maxsize.ldif");
    std::fs::write(
        &config,
        "dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\nreplace: olcDbMaxSize\n\
         olcDbMaxSize: 8589934592\n",
    )
    .unwrap();
    let out = Command::new("/usr/sbin/slapmodify")
        .args(["-n", "0", "-F"])
        .arg(slapd.dir().join("slapd.d"))
        .arg("-l")
        .arg(&config)
        .output()
        .expect("run slapmodify");
    assert!(
        out.status.success(),
        "slapmodify failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("/usr/sbin/slapadd")
        .args(["-q", "-n", "1", "-F"])
        .arg(slapd.dir().join("slapd.d"))
        .arg("-l")
        .arg(&file)
        .output()
        .expect("run slapadd");
    assert!(
        out.status.success(),
        "slapadd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    slapd.restart();
    let load = t.elapsed();
    let _ = std::fs::remove_file(&file);
    (generate, load, entries)
}

/// One paged `ldapsearch`; returns the number of entries.
fn ldapsearch(slapd: &Slapd, base: &str, filter: &str, attrs: &[&str]) -> usize {
    let mut child = Command::new("ldapsearch")
        .args(["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &slapd.url()])
        .args(["-D", slapd::SYNC_DN, "-w", slapd::SYNC_PASSWORD])
        .args(["-b", base, "-E", "pr=500/noprompt", filter])
        .args(attrs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ldapsearch");
    let stdout = child.stdout.take().unwrap();
    let n = std::io::BufReader::new(stdout)
        .split(b'\n')
        .filter(|l| l.as_ref().is_ok_and(|l| l.starts_with(b"dn: ")))
        .count();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ldapsearch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    n
}

/// The read floor: all groups, then all users, as the sync reads them.
fn read_floor(slapd: &Slapd, scale: Scale) -> Duration {
    let t = Instant::now();
    let groups = ldapsearch(slapd, slapd::GROUPS_DN, GROUP_FILTER, GROUP_ATTRS);
    let users = ldapsearch(slapd, slapd::PEOPLE_DN, USER_FILTER, USER_ATTRS);
    let d = t.elapsed();
    assert_eq!(groups, scale.groups, "ldapsearch: groups");
    assert_eq!(users, scale.users, "ldapsearch: users");
    d
}

/// The deployment of the doc comment.
async fn setup(db: &BenchDb, slapd: &Slapd) -> AppState {
    let data_dir = tempfile::tempdir().unwrap().keep();
    let args = ServerArgs {
        data_dir: Some(data_dir),
        database_url: Some(db.url.clone()),
        provisioner_daemons: Some(0),
        log: Some("error".into()),
        // The server's default unless set (to compare).
        ldapsync_apply_concurrency: std::env::var("ORGSYNC_LDAPSYNC_APPLY_CONCURRENCY")
            .ok()
            .and_then(|v| v.parse().ok()),
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
    for dept in DEPARTMENTS {
        let org = Organization {
            id: new_id(),
            name: format!("org-{dept}"),
            display_name: format!("{dept} org"),
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
        store_settings(
            &mut w,
            Some(&org.id),
            SettingsKey::Groups,
            &json!({"field": "groups", "regex_filter": r"^group-\d*[02468]$",
                    "auto_create_missing_groups": true}),
            &now,
        )
        .await
        .unwrap();
        store_settings(
            &mut w,
            Some(&org.id),
            SettingsKey::Roles,
            &json!({"field": "groups", "mapping": {
                "group-0007": ["organization-admin"],
                "group-0042": ["organization-auditor"],
            }}),
            &now,
        )
        .await
        .unwrap();
    }
    store_settings(
        &mut w,
        None,
        SettingsKey::Organization,
        &json!({"field": "department", "organization_assign_default": true, "mapping": {
            "engineering": ["org-engineering"],
            "sales": ["org-sales"],
            "support": ["org-support"],
            "finance": ["org-finance", "org-sales"],
            "marketing": ["org-marketing"],
            "research": ["org-research", "org-engineering"],
            "ops": ["org-ops"],
        }}),
        &now,
    )
    .await
    .unwrap();
    let ldap: LdapSettings = serde_json::from_value(json!({
        "enabled": true,
        "url": slapd.url(),
        "bind_dn": slapd::SYNC_DN,
        "bind_password": slapd::SYNC_PASSWORD,
        "user_base_dn": slapd::PEOPLE_DN,
        "user_filter": USER_FILTER,
        "group_base_dn": slapd::GROUPS_DN,
        "group_filter": GROUP_FILTER,
        "membership": ["member"],
        "nested_groups": true,
        "page_size": 500,
        "claims": {"groups": "groups", "department": "departmentNumber"},
        "schedule": "0 0 0 1 1 *",
        "max_removal_percent": 10,
    }))
    .unwrap();
    if let Err(e) = ldap.validate() {
        panic!("invalid LDAP settings: {e:?}");
    }
    ldapsync::store_settings(&mut w, &ldap, &now).await.unwrap();

    work.commit().await.unwrap();
    app
}

/// Starts a full run and waits for its end; returns the wall time, the run
/// and the phases as sampled from its progress.
async fn full_run(app: &AppState) -> (Duration, Value, String) {
    let t = Instant::now();
    let sync = app.directory_sync();
    let run = sync
        .start(
            RunRequest {
                trigger: Trigger::Manual,
                dry_run: false,
                force: false,
                full: Some(true),
                started_by: None,
                tick: None,
            },
            orgsync::clock::now(),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot start a run: {e:?}"));
    let mut phases: Vec<(String, Duration, u64)> = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = sync
            .get_run(&run.id, orgsync::clock::now())
            .await
            .unwrap()
            .unwrap();
        let phase = r.progress["phase"].as_str().unwrap_or("").to_owned();
        if r.status != ldapsync::RunStatus::Running {
            let wall = t.elapsed();
            phases.push(("done".into(), wall, 0));
            let mut s = String::new();
            for w in phases.windows(2) {
                s.push_str(&format!(
                    "{} {:.2}s (RSS up to {} MiB), ",
                    w[0].0,
                    (w[1].1 - w[0].1).as_secs_f64(),
                    w[0].2 / 1024
                ));
            }
            return (wall, serde_json::to_value(&r).unwrap(), s);
        }
        // The run's own progress (published with each heartbeat, 0.5 s).
        if phases.last().is_none_or(|(p, _, _)| *p != phase) {
            phases.push((phase, t.elapsed(), 0));
        }
        if let Some(last) = phases.last_mut() {
            last.2 = last.2.max(status_kib("VmRSS:"));
        }
    }
}

const TABLES_SQL: &str = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' \
    AND tablename NOT IN ('bench_writes', '_sqlx_migrations') ORDER BY tablename";

fn bookkeeping(table: &str) -> bool {
    table.starts_with("ldapsync_")
}

/// Row-write triggers on every table of the database.
async fn install_write_triggers(conn: &mut sqlx::PgConnection) {
    sqlx::query("CREATE UNLOGGED TABLE bench_writes (tbl text NOT NULL, op text NOT NULL)")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(
        "CREATE FUNCTION bench_count_write() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN INSERT INTO bench_writes VALUES (TG_TABLE_NAME, TG_OP); RETURN NULL; END $$",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(TABLES_SQL)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    for t in tables {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TRIGGER bench_count_write AFTER INSERT OR UPDATE OR DELETE ON \"{t}\" \
             FOR EACH ROW EXECUTE FUNCTION bench_count_write()"
        )))
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

/// n_tup_ins + n_tup_upd + n_tup_del per table.
async fn pg_stat_writes(conn: &mut sqlx::PgConnection) -> BTreeMap<String, i64> {
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(
        "SELECT relname::text AS t, (n_tup_ins + n_tup_upd + n_tup_del)::bigint AS n \
         FROM pg_stat_user_tables WHERE relname <> 'bench_writes'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("t"), r.get("n")))
    .collect()
}

/// Waits until no backend of the database holds pending table stats: a
/// backend flushes at most once a second, an idle one within 10 s.
async fn settle_pg_stats() {
    tokio::time::sleep(Duration::from_secs(11)).await;
}

async fn count(conn: &mut sqlx::PgConnection, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(conn).await.unwrap()
}

async fn measure(scale: Scale) -> Results {
    let mut r = Results {
        scale: scale.name.to_owned(),
        ..Results::default()
    };
    let mut slapd = Slapd::start();
    println!(
        "[{}] generating and loading {} users / {} groups ...",
        scale.name, scale.users, scale.groups
    );
    (r.generate, r.load, r.entries) = load_directory(&mut slapd, scale);
    r.search_cold = read_floor(&slapd, scale);
    r.search_warm = read_floor(&slapd, scale);
    println!(
        "[{}] loaded {} entries in {:.1}s (generate {:.1}s); ldapsearch {:.2}s / {:.2}s",
        scale.name,
        r.entries,
        r.load.as_secs_f64(),
        r.generate.as_secs_f64(),
        r.search_cold.as_secs_f64(),
        r.search_warm.as_secs_f64()
    );

    let db = BenchDb::create().await;
    let app = setup(&db, &slapd).await;
    let mut pg = sqlx::PgConnection::connect(&db.url).await.unwrap();

    // First full sync.
    r.baseline_rss_kib = status_kib("VmRSS:");
    reset_peak_rss();
    let (wall, run, phases) = full_run(&app).await;
    r.first_hwm_kib = status_kib("VmHWM:");
    r.first = wall;
    r.first_phases = phases;
    r.first_stats = run["stats"].clone();
    r.problems = run["problems"].to_string().chars().take(600).collect();
    assert_eq!(run["status"], "succeeded", "first run: {run}");
    assert_eq!(
        run["stats"]["users_created"].as_u64(),
        Some(scale.users as u64),
        "first run: {}",
        run["stats"]
    );
    println!(
        "[{}] first sync {:.2}s ({}) peak RSS {} MiB",
        scale.name,
        wall.as_secs_f64(),
        r.first_phases,
        r.first_hwm_kib / 1024
    );
    for (k, sql) in [
        (
            "ldap users",
            "SELECT COUNT(*) FROM users WHERE login_type = 'ldap'",
        ),
        ("links", "SELECT COUNT(*) FROM user_links"),
        (
            "org memberships",
            "SELECT COUNT(*) FROM organization_members",
        ),
        (
            "org members with a role",
            "SELECT COUNT(*) FROM organization_members WHERE roles <> '[]'",
        ),
        ("problem rows", "SELECT COUNT(*) FROM idpsync_problems"),
        (
            "groups (not Everyone)",
            "SELECT COUNT(*) FROM groups WHERE id <> organization_id",
        ),
        ("group memberships", "SELECT COUNT(*) FROM group_members"),
        ("audit entries", "SELECT COUNT(*) FROM audit_logs"),
    ] {
        r.counts.insert(k, count(&mut pg, sql).await);
    }
    assert_eq!(r.counts["ldap users"], scale.users as i64);
    let joined = r.first_stats["organizations_joined"].as_i64().unwrap_or(0);
    // Each user: the default org (not counted as joined) + 1 or 2 orgs.
    assert!(
        joined >= scale.users as i64 && r.counts["group memberships"] > scale.users as i64,
        "users should land in several orgs and groups: {}",
        r.first_stats
    );

    // Second full sync, nothing changed.
    install_write_triggers(&mut pg).await;
    settle_pg_stats().await;
    let before = pg_stat_writes(&mut pg).await;
    let (wall, run, phases) = full_run(&app).await;
    r.second = wall;
    r.second_phases = phases;
    r.second_stats = run["stats"].clone();
    assert_eq!(run["status"], "succeeded", "second run: {run}");
    for row in sqlx::query("SELECT tbl, op, COUNT(*)::bigint AS n FROM bench_writes GROUP BY 1, 2")
        .fetch_all(&mut pg)
        .await
        .unwrap()
    {
        let (t, op, n): (String, String, i64) = (row.get("tbl"), row.get("op"), row.get("n"));
        let key = format!("{t} {}", op.to_lowercase());
        if bookkeeping(&t) {
            r.bookkeeping_writes.insert(key, n);
        } else {
            r.data_writes.insert(key, n);
        }
    }
    settle_pg_stats().await;
    let after = pg_stat_writes(&mut pg).await;
    for (t, n) in &after {
        let d = n - before.get(t).copied().unwrap_or(0);
        if bookkeeping(t) {
            r.pg_stat_bookkeeping_writes += d;
        } else {
            r.pg_stat_data_writes += d;
        }
    }
    println!(
        "[{}] second sync {:.2}s ({}) data writes {:?} bookkeeping {:?}",
        scale.name,
        wall.as_secs_f64(),
        r.second_phases,
        r.data_writes,
        r.bookkeeping_writes
    );
    drop(pg);
    app.shutdown.cancel();
    app.db.pool().close().await;
    drop(app);
    drop(db);
    drop(slapd);
    r
}

fn target(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn print(results: &[Results]) {
    println!();
    println!(
        "| scale | entries | ldapsearch (floor, warm / cold) | first sync | second sync | 2nd: data row writes | 2nd: bookkeeping writes | peak RSS (first sync) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in results {
        let data: i64 = r.data_writes.values().sum();
        let book: i64 = r.bookkeeping_writes.values().sum();
        println!(
            "| {} | {} | {:.2} s / {:.2} s | {:.2} s | {:.2} s | {} (pg_stat: {}) | {} (pg_stat: {}) | {} MiB (before: {} MiB) |",
            r.scale,
            r.entries,
            r.search_warm.as_secs_f64(),
            r.search_cold.as_secs_f64(),
            r.first.as_secs_f64(),
            r.second.as_secs_f64(),
            data,
            r.pg_stat_data_writes,
            book,
            r.pg_stat_bookkeeping_writes,
            r.first_hwm_kib / 1024,
            r.baseline_rss_kib / 1024,
        );
    }
    println!();
    for r in results {
        let data: i64 = r.data_writes.values().sum();
        println!("[{}] first sync phases: {}", r.scale, r.first_phases);
        println!("[{}] second sync phases: {}", r.scale, r.second_phases);
        println!("[{}] first sync stats: {}", r.scale, r.first_stats);
        println!("[{}] second sync stats: {}", r.scale, r.second_stats);
        println!("[{}] problems: {}", r.scale, r.problems);
        println!("[{}] after the first sync: {:?}", r.scale, r.counts);
        println!(
            "[{}] second sync writes: data {:?}; bookkeeping {:?}",
            r.scale, r.data_writes, r.bookkeeping_writes
        );
        match r.scale.as_str() {
            "10k" => println!(
                "[10k] targets: first <= 10 s: {}; second <= 2 s: {}; zero data writes: {}",
                target(r.first <= Duration::from_secs(10)),
                target(r.second <= Duration::from_secs(2)),
                target(data == 0),
            ),
            "100k" => println!(
                "[100k] targets: first <= 90 s: {}; peak RSS <= 300 MB: {}",
                target(r.first <= Duration::from_secs(90)),
                target(r.first_hwm_kib * 1024 <= 300_000_000),
            ),
            _ => {}
        }
    }
}

fn main() {
    let choice = std::env::args()
        .skip(1)
        .find(|a| matches!(a.as_str(), "10k" | "100k" | "both"))
        .or_else(|| std::env::var("ORGSYNC_BENCH_LDAP_SCALE").ok())
        .unwrap_or_else(|| "10k".to_owned());
    let scales: Vec<Scale> = match choice.as_str() {
        "10k" => vec![SCALE_10K],
        "100k" => vec![SCALE_100K],
        "both" => vec![SCALE_10K, SCALE_100K],
        other => panic!("ORGSYNC_BENCH_LDAP_SCALE: `{other}` is not 10k, 100k or both"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut results = Vec::new();
    for s in scales {
        results.push(rt.block_on(measure(s)));
    }
    print(&results);
}
