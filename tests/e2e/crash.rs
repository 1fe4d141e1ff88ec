//! Real crashes. The `orgsync server` process (`process.rs`) is SIGKILLed in
//! the middle of a directory sync run against a real slapd and in the middle of
//! a burst of concurrent API writes, then started again on the same database;
//! and a use case meets a real failure of its audit insert (a trigger in the
//! test's own database). What must hold, read back from the database: every
//! batch and every use case is whole or absent, with its audit entries;
//! every 2xx answered before the kill is durable; a dead run shows as failed;
//! the next run converges and the one after changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Client, TestDb, TestServer, backend};
use crate::process::{ServerProcess, open_db};
use crate::slapd::{self, Slapd};

// ---------------------------------------------------------------------------
// The directory: generated users and groups, and what a sync makes of them.
// ---------------------------------------------------------------------------

/// The `i`-th user of the generated directory (`user0000`, ...: sorted by
/// name in index order, the order a run applies them in).
pub(crate) fn directory_user(i: usize) -> String {
    format!("user{i:04}")
}

/// In `eng` (groupOfNames): every third user; it maps to `data-platform`.
fn in_eng(i: usize) -> bool {
    i.is_multiple_of(3)
}

/// In `platform-leads` (groupOfNames, all in `eng`): organization admins of
/// `data-platform`.
fn is_lead(i: usize) -> bool {
    i.is_multiple_of(6)
}

/// In `ops` (posixGroup, `memberUid`): every fourth user; it maps to `ops-org`.
fn in_ops(i: usize) -> bool {
    i.is_multiple_of(4)
}

/// Loads `n` users and the groups `eng`, `platform-leads` and `ops` into slapd.
pub(crate) fn load_directory(slapd: &Slapd, n: usize) {
    let mut ldif = String::new();
    for i in 0..n {
        let u = directory_user(i);
        ldif.push_str(&slapd::user_ldif(&u, &u, &format!("{u}@example.com"), &[]));
    }
    let dns = |keep: fn(usize) -> bool| -> Vec<String> {
        (0..n)
            .filter(|i| keep(*i))
            .map(|i| slapd::user_dn(&directory_user(i)))
            .collect()
    };
    let eng = dns(in_eng);
    let leads = dns(is_lead);
    ldif.push_str(&slapd::group_of_names_ldif(
        "eng",
        &eng.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    ldif.push_str(&slapd::group_of_names_ldif(
        "platform-leads",
        &leads.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let ops: Vec<String> = (0..n).filter(|i| in_ops(*i)).map(directory_user).collect();
    ldif.push_str(&slapd::posix_group_ldif(
        "ops",
        5000,
        &ops.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    slapd.ldapadd(&ldif);
}

/// Orgs, IdP sync settings and directory sync settings for the generated
/// directory: `eng` -> data-platform (groups `eng`, `platform-leads`
/// auto-created; `platform-leads` -> organization-admin), `ops` -> ops-org.
pub(crate) async fn setup_directory_sync(owner: &Client, slapd: &Slapd, page_size: u32) {
    owner.create_org("data-platform").await;
    owner.create_org("ops-org").await;
    for (path, body) in [
        (
            "/settings/idpsync/organization",
            json!({"field": "groups", "mapping": {"eng": ["data-platform"], "ops": ["ops-org"]}}),
        ),
        (
            "/organizations/data-platform/settings/idpsync/groups",
            json!({"field": "groups", "regex_filter": "^(eng|platform-leads)$", "auto_create_missing_groups": true}),
        ),
        (
            "/organizations/data-platform/settings/idpsync/roles",
            json!({"field": "groups", "mapping": {"platform-leads": ["organization-admin"]}}),
        ),
    ] {
        let (status, body) = owner.patch(path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (status, body) = owner
        .put(
            "/settings/ldapsync",
            json!({
                "enabled": true,
                "url": slapd.url(),
                "bind_dn": slapd::SYNC_DN,
                "bind_password": slapd::SYNC_PASSWORD,
                "user_base_dn": slapd::PEOPLE_DN,
                "group_base_dn": slapd::GROUPS_DN,
                "claims": {"groups": "groups"},
                "schedule": "0 0 0 1 1 *",
                "max_removal_percent": 100,
                "page_size": page_size,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// What a directory user has in orgsync: org -> roles, and groups of
/// data-platform.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Synced {
    orgs: BTreeMap<String, Vec<String>>,
    groups: BTreeSet<String>,
}

/// Everything a sync plans for user `i`.
fn expected(i: usize) -> Synced {
    let mut s = Synced::default();
    s.orgs.insert("coder".to_owned(), Vec::new());
    if in_eng(i) {
        let roles = if is_lead(i) {
            vec!["organization-admin".to_owned()]
        } else {
            Vec::new()
        };
        s.orgs.insert("data-platform".to_owned(), roles);
        s.groups.insert("eng".to_owned());
    }
    if is_lead(i) {
        s.groups.insert("platform-leads".to_owned());
    }
    if in_ops(i) {
        s.orgs.insert("ops-org".to_owned(), Vec::new());
    }
    s
}

/// The directory users in the database, with their audit entries.
struct Snapshot {
    /// username -> (id, state)
    users: BTreeMap<String, (String, Synced)>,
    links: i64,
    /// Audit entries of the sync, by user id: `user:create`,
    /// `member:create:ORG`, `group:add:GROUP`.
    audits: HashMap<String, Vec<String>>,
    /// Audit entries of the sync that are not about a user.
    other_audits: Vec<String>,
}

fn roles_of(raw: &str) -> Vec<String> {
    let mut v: Vec<String> = serde_json::from_str(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
    v.sort();
    v
}

async fn snapshot(db: &orgsync::db::Db) -> Snapshot {
    let pool = db.pool();
    let ids: Vec<(String, String)> =
        sqlx::query_as("SELECT id, username FROM users WHERE login_type = 'ldap'")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut by_id: HashMap<String, Synced> = HashMap::new();
    for (id, _) in &ids {
        by_id.insert(id.clone(), Synced::default());
    }
    let members: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT m.user_id, o.name, m.roles FROM organization_members m \
         JOIN organizations o ON o.id = m.organization_id \
         JOIN users u ON u.id = m.user_id WHERE u.login_type = 'ldap'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (user, org, roles) in members {
        by_id
            .get_mut(&user)
            .unwrap()
            .orgs
            .insert(org, roles_of(&roles));
    }
    let groups: Vec<(String, String)> = sqlx::query_as(
        "SELECT gm.user_id, g.name FROM group_members gm JOIN groups g ON g.id = gm.group_id \
         JOIN users u ON u.id = gm.user_id WHERE u.login_type = 'ldap'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (user, group) in groups {
        by_id.get_mut(&user).unwrap().groups.insert(group);
    }
    let (links,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM user_links WHERE source = 'ldap'")
        .fetch_one(pool)
        .await
        .unwrap();
    let rows: Vec<(String, String, String, String, String, String)> = sqlx::query_as(
        "SELECT a.action, a.resource_type, a.resource_id, a.resource_target, \
         COALESCE(o.name, ''), a.diff FROM audit_logs a \
         LEFT JOIN organizations o ON o.id = a.organization_id WHERE a.source = 'ldap_sync'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut audits: HashMap<String, Vec<String>> = HashMap::new();
    let mut other_audits = Vec::new();
    for (action, rtype, rid, target, org, diff) in rows {
        let diff: Value = serde_json::from_str(&diff).unwrap();
        match (action.as_str(), rtype.as_str()) {
            ("create", "user") => audits.entry(rid).or_default().push("user:create".into()),
            ("create", "organization_member") => audits
                .entry(rid)
                .or_default()
                .push(format!("member:create:{org}")),
            ("update", "group")
                if diff["members"]["old"] == json!([])
                    && diff["members"]["new"]
                        .as_array()
                        .is_some_and(|v| v.len() == 1) =>
            {
                let user = diff["members"]["new"][0].as_str().unwrap().to_owned();
                audits
                    .entry(user)
                    .or_default()
                    .push(format!("group:add:{target}"));
            }
            _ => other_audits.push(format!("{action} {rtype} {target} {diff}")),
        }
    }
    let users = ids
        .into_iter()
        .map(|(id, name)| {
            let state = by_id.remove(&id).unwrap();
            (name, (id, state))
        })
        .collect();
    Snapshot {
        users,
        links,
        audits,
        other_audits,
    }
}

/// Checks that every directory user in the database has all of its planned
/// changes and exactly their audit entries, that no audit entry is about
/// something absent, and that the users present make up whole batches of
/// `batch` (in the order a run applies them). Returns how many are present.
fn check_whole_batches(snap: &Snapshot, n: usize, batch: usize) -> usize {
    let names: Vec<String> = (0..n).map(directory_user).collect();
    for name in snap.users.keys() {
        assert!(names.contains(name), "a user not in the directory: {name}");
    }
    let mut audited = 0;
    for (i, name) in names.iter().enumerate() {
        let Some((id, state)) = snap.users.get(name) else {
            continue;
        };
        let want = expected(i);
        assert_eq!(state, &want, "{name} is half-synced");
        let mut want_audits = vec!["user:create".to_owned()];
        for org in want.orgs.keys().filter(|o| *o != "coder") {
            want_audits.push(format!("member:create:{org}"));
        }
        for g in &want.groups {
            want_audits.push(format!("group:add:{g}"));
        }
        want_audits.sort();
        let mut got = snap.audits.get(id).cloned().unwrap_or_default();
        got.sort();
        assert_eq!(got, want_audits, "audit entries of {name}");
        audited += 1;
    }
    // No audit entry about a user who is not there.
    assert_eq!(
        snap.audits.len(),
        audited,
        "audit entries about users that do not exist"
    );
    // The groups are created up front (once each), nothing else is audited.
    let mut other = snap.other_audits.clone();
    other.sort();
    assert_eq!(other.len(), 2, "{other:?}");
    assert!(
        other[0].starts_with("create group eng")
            && other[1].starts_with("create group platform-leads"),
        "{other:?}"
    );
    assert_eq!(
        usize::try_from(snap.links).unwrap(),
        snap.users.len(),
        "one directory link per user"
    );
    for (k, chunk) in names.chunks(batch).enumerate() {
        let present = chunk.iter().filter(|u| snap.users.contains_key(*u)).count();
        assert!(
            present == 0 || present == chunk.len(),
            "batch {k} ({}..) is split: {present} of {} users",
            chunk[0],
            chunk.len()
        );
    }
    snap.users.len()
}

/// Polls a run until it is no longer `running`.
pub(crate) async fn wait_run(c: &Client, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, r) = c.get(&format!("/ldapsync/runs/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{r}");
        if r["status"] != "running" {
            return r;
        }
        assert!(Instant::now() < deadline, "run {id} did not end: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stat(run: &Value, key: &str) -> u64 {
    run["stats"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no stat {key}: {run}"))
}

async fn audit_rows(db: &orgsync::db::Db) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_logs")
        .fetch_one(db.pool())
        .await
        .unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_directory_sync_leaves_whole_batches_and_the_next_run_converges() {
    const USERS: usize = 1000;
    // Small batches: the run must still be applying when a poll sees it
    // (a run of 1,000 users in batches of 5 can end within one slow poll).
    const BATCH: usize = 2;
    let slapd = Slapd::start();
    load_directory(&slapd, USERS);
    let (_db, url, _) = TestDb::new().await;
    let mut server = ServerProcess::start(
        "ldapsync",
        &url,
        &[
            "--ldapsync-batch-size",
            &BATCH.to_string(),
            "--ldapsync-lease-seconds",
            "3",
        ],
    )
    .await;
    let owner = server.owner().await;
    setup_directory_sync(&owner, &slapd, 500).await;

    let (status, started) = owner.post("/ldapsync/runs", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    // SIGKILL once the run's progress shows some batches applied, not all.
    let deadline = Instant::now() + Duration::from_secs(120);
    let applied_at_kill = loop {
        let (status, r) = owner.get(&format!("/ldapsync/runs/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{r}");
        assert_eq!(
            r["status"], "running",
            "the run ended before the server could be killed in it: {r}"
        );
        let p = &r["progress"];
        let applied = p["users_applied"].as_u64().unwrap_or(0);
        let to_apply = p["users_to_apply"].as_u64().unwrap_or(0);
        if p["phase"] == "applying" && applied > 0 && applied < to_apply {
            server.kill();
            break applied;
        }
        assert!(Instant::now() < deadline, "no batch applied in time: {r}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    // Started again on the same database, before any other run.
    server.restart().await;
    let owner = server.client_as(&owner.token);
    let db = open_db(&url).await;
    let present = check_whole_batches(&snapshot(&db).await, USERS, BATCH);
    let applied_at_kill = usize::try_from(applied_at_kill).unwrap();
    assert!(
        present >= applied_at_kill && present < USERS,
        "killed mid-run: {present} of {USERS} users present, {applied_at_kill} reported applied"
    );
    eprintln!(
        "killed with {applied_at_kill} users reported applied; {present} of {USERS} present ({} batches)",
        present / BATCH
    );

    // The dead run is shown failed once its heartbeats are overdue (lease 3 s)...
    let dead = wait_run(&owner, &id, Duration::from_secs(60)).await;
    assert_eq!(dead["status"], "failed", "{dead}");
    assert!(
        dead["error"].as_str().unwrap().contains("heartbeats"),
        "{dead}"
    );
    // ... and its lease, left by the dead process, refuses runs until it expires.
    let deadline = Instant::now() + Duration::from_secs(60);
    let next = loop {
        let (status, body) = owner.post("/ldapsync/runs", json!({})).await;
        if status == StatusCode::ACCEPTED {
            break body;
        }
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(body["message"].as_str().unwrap().contains(&id), "{body}");
        assert!(
            Instant::now() < deadline,
            "the dead run's lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let done = wait_run(
        &owner,
        next["id"].as_str().unwrap(),
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        usize::try_from(stat(&done, "users_created")).unwrap(),
        USERS - present,
        "{done}"
    );
    assert_eq!(
        check_whole_batches(&snapshot(&db).await, USERS, BATCH),
        USERS
    );
    // The next run recorded the dead one as failed.
    let (_, dead) = owner.get(&format!("/ldapsync/runs/{id}")).await;
    assert_eq!(dead["status"], "failed", "{dead}");
    assert!(
        dead["error"]
            .as_str()
            .unwrap()
            .contains("stopped before it finished"),
        "{dead}"
    );

    // Converged: a further full run changes nothing.
    let before = audit_rows(&db).await;
    let (status, again) = owner.post("/ldapsync/runs", json!({"full": true})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    let again = wait_run(
        &owner,
        again["id"].as_str().unwrap(),
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(stat(&again, "users_unchanged"), USERS as u64, "{again}");
    assert_eq!(stat(&again, "users_created"), 0, "{again}");
    assert_eq!(audit_rows(&db).await, before, "{again}");
}

// ---------------------------------------------------------------------------
// A burst of API writes, killed.
// ---------------------------------------------------------------------------

/// What the writers were answered with a 2xx.
#[derive(Default)]
struct Answered {
    users: Vec<String>,
    /// Users whose roles in alpha were set to organization-admin.
    roles: Vec<String>,
    /// (id, name)
    groups: Vec<(String, String)>,
    /// (group id, username)
    group_members: Vec<(String, String)>,
}

#[derive(Default)]
struct Burst {
    killed: AtomicBool,
    in_flight: AtomicUsize,
    /// Requests cut off by the kill (no complete answer).
    unanswered: AtomicUsize,
    users_created: AtomicUsize,
    answered: Mutex<Answered>,
}

impl Burst {
    /// Sends a request; `None` when the server died before answering it
    /// (which may only happen once the test killed it).
    async fn send(
        &self,
        c: &Client,
        method: Method,
        path: &str,
        body: Value,
    ) -> Option<(StatusCode, Value)> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = async {
            let resp = c
                .http
                .request(method, format!("{}{path}", c.base))
                .bearer_auth(c.token.as_deref().unwrap())
                .json(&body)
                .send()
                .await?;
            let status = resp.status();
            let text = resp.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        }
        .await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        match result {
            Ok((status, text)) => Some((
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )),
            Err(e) => {
                assert!(
                    self.killed.load(Ordering::SeqCst),
                    "{path} failed before the kill: {e}"
                );
                self.unanswered.fetch_add(1, Ordering::SeqCst);
                None
            }
        }
    }
}

/// One client writing until the server dies: users created with a second
/// org, their roles set, and every other user a new group with them in it.
async fn writer(c: Client, w: usize, burst: Arc<Burst>) {
    for n in 0.. {
        let user = format!("w{w}-{n}");
        let Some((status, body)) = burst
            .send(
                &c,
                Method::POST,
                "/users",
                json!({"username": user, "email": format!("{user}@example.com"), "organization_ids": ["alpha"]}),
            )
            .await
        else {
            return;
        };
        assert_eq!(status, StatusCode::CREATED, "{body}");
        burst.answered.lock().unwrap().users.push(user.clone());
        burst.users_created.fetch_add(1, Ordering::SeqCst);
        let Some((status, body)) = burst
            .send(
                &c,
                Method::PUT,
                &format!("/organizations/alpha/members/{user}/roles"),
                json!({"roles": ["organization-admin"]}),
            )
            .await
        else {
            return;
        };
        assert_eq!(status, StatusCode::OK, "{body}");
        burst.answered.lock().unwrap().roles.push(user.clone());
        if n % 2 == 1 {
            continue;
        }
        let name = format!("g{w}-{n}");
        let Some((status, group)) = burst
            .send(
                &c,
                Method::POST,
                "/organizations/alpha/groups",
                json!({"name": name}),
            )
            .await
        else {
            return;
        };
        assert_eq!(status, StatusCode::CREATED, "{group}");
        let gid = group["id"].as_str().unwrap().to_owned();
        burst
            .answered
            .lock()
            .unwrap()
            .groups
            .push((gid.clone(), name));
        let Some((status, body)) = burst
            .send(
                &c,
                Method::PATCH,
                &format!("/groups/{gid}"),
                json!({"add_users": [user]}),
            )
            .await
        else {
            return;
        };
        assert_eq!(status, StatusCode::OK, "{body}");
        burst
            .answered
            .lock()
            .unwrap()
            .group_members
            .push((gid, user));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_api_burst_leaves_only_whole_use_cases_and_keeps_every_2xx() {
    const WRITERS: usize = 8;
    let (_db, url, _) = TestDb::new().await;
    let mut server = ServerProcess::start("burst", &url, &[]).await;
    let owner = server.owner().await;
    owner.create_org("alpha").await;

    let burst = Arc::new(Burst::default());
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(owner.clone(), w, burst.clone())))
        .collect();
    // Kill while writes are in flight, once enough went through.
    let deadline = Instant::now() + Duration::from_secs(120);
    let in_flight_at_kill = loop {
        let in_flight = burst.in_flight.load(Ordering::SeqCst);
        if burst.users_created.load(Ordering::SeqCst) >= 40 && in_flight >= WRITERS / 2 {
            burst.killed.store(true, Ordering::SeqCst);
            server.kill();
            break in_flight;
        }
        assert!(Instant::now() < deadline, "the burst did not get going");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    for t in tasks {
        t.await.unwrap();
    }
    let unanswered = burst.unanswered.load(Ordering::SeqCst);
    assert!(
        unanswered >= 1,
        "no request was cut off by the kill ({in_flight_at_kill} in flight)"
    );

    server.restart().await;
    let db = open_db(&url).await;
    let pool = db.pool();
    let users: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT username, id FROM users WHERE username <> 'admin'",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let members: HashMap<(String, String), Vec<String>> =
        sqlx::query_as::<_, (String, String, String)>(
            "SELECT o.name, m.user_id, m.roles FROM organization_members m \
             JOIN organizations o ON o.id = m.organization_id",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(org, user, roles)| ((org, user), roles_of(&roles)))
        .collect();
    let groups: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT g.id, g.name FROM groups g JOIN organizations o ON o.id = g.organization_id \
         WHERE o.name = 'alpha' AND g.id <> g.organization_id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let group_members: HashSet<(String, String)> =
        sqlx::query_as::<_, (String, String)>("SELECT group_id, user_id FROM group_members")
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    // Audit entries by what they are about.
    let mut audit: HashMap<String, usize> = HashMap::new();
    for (action, rtype, rid, org, diff) in
        sqlx::query_as::<_, (String, String, String, String, String)>(
            "SELECT a.action, a.resource_type, a.resource_id, COALESCE(o.name, ''), a.diff \
         FROM audit_logs a LEFT JOIN organizations o ON o.id = a.organization_id",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    {
        let diff: Value = serde_json::from_str(&diff).unwrap();
        let key = match (action.as_str(), rtype.as_str()) {
            ("create", "user") => format!("user {rid}"),
            ("create", "organization_member") => format!("member {org} {rid}"),
            ("update", "organization_member") => {
                format!("roles {org} {rid} {}", diff["roles"]["new"])
            }
            ("create", "group") => format!("group {rid}"),
            ("update", "group") => {
                assert_eq!(diff["members"]["old"], json!([]), "{diff}");
                format!("group {rid} add {}", diff["members"]["new"])
            }
            _ => format!("{action} {rtype} {rid}"),
        };
        *audit.entry(key).or_default() += 1;
    }
    let mut expected_audit: HashMap<String, usize> = HashMap::new();
    let admin_id: (String,) = sqlx::query_as("SELECT id FROM users WHERE username = 'admin'")
        .fetch_one(pool)
        .await
        .unwrap();
    expected_audit.insert(format!("user {}", admin_id.0), 1);
    // Every user that exists is complete: default org, alpha (it was created
    // with it), each with its audit entry; roles set with theirs.
    for (name, id) in &users {
        assert!(
            members.contains_key(&("coder".to_owned(), id.clone())),
            "{name} is not in the default org"
        );
        let alpha = members
            .get(&("alpha".to_owned(), id.clone()))
            .unwrap_or_else(|| panic!("{name} exists without the membership it was created with"));
        expected_audit.insert(format!("user {id}"), 1);
        expected_audit.insert(format!("member alpha {id}"), 1);
        match alpha.as_slice() {
            [] => {}
            [r] if r == "organization-admin" => {
                expected_audit.insert(format!("roles alpha {id} [\"organization-admin\"]"), 1);
            }
            other => panic!("{name} has roles {other:?}"),
        }
    }
    // Every group that exists has its creation entry; every member added its
    // update entry.
    for id in groups.keys() {
        expected_audit.insert(format!("group {id}"), 1);
    }
    for (gid, uid) in &group_members {
        assert!(groups.contains_key(gid), "a member of an unknown group");
        expected_audit.insert(format!("group {gid} add [\"{uid}\"]"), 1);
    }
    // The org alpha and its creation entry come from before the burst.
    let (alpha_id,): (String,) =
        sqlx::query_as("SELECT id FROM organizations WHERE name = 'alpha'")
            .fetch_one(pool)
            .await
            .unwrap();
    expected_audit.insert(format!("create organization {alpha_id}"), 1);
    let mut missing: Vec<&String> = expected_audit
        .iter()
        .filter(|(k, n)| audit.get(*k) != Some(*n))
        .map(|(k, _)| k)
        .collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "audit entries missing or doubled: {missing:?}"
    );
    let mut unexplained: Vec<&String> = audit
        .keys()
        .filter(|k| !expected_audit.contains_key(*k))
        .collect();
    unexplained.sort();
    assert!(
        unexplained.is_empty(),
        "audit entries of changes that are not there: {unexplained:?}"
    );

    // Every 2xx answered before the kill is durable.
    let answered = std::mem::take(&mut *burst.answered.lock().unwrap());
    for u in &answered.users {
        assert!(users.contains_key(u), "{u} was created (201) but is gone");
    }
    for u in &answered.roles {
        assert_eq!(
            members[&("alpha".to_owned(), users[u].clone())],
            ["organization-admin"],
            "{u}'s roles were set (200) but are gone"
        );
    }
    for (gid, name) in &answered.groups {
        assert_eq!(
            groups.get(gid),
            Some(name),
            "group {name} was created (201) but is gone"
        );
    }
    for (gid, u) in &answered.group_members {
        assert!(
            group_members.contains(&(gid.clone(), users[u].clone())),
            "{u} was added (200) to {gid} but is not in it"
        );
    }
    eprintln!(
        "burst: {} users, {} role changes, {} groups, {} group members answered 2xx; \
         {} in the database; {unanswered} requests cut off ({in_flight_at_kill} in flight at the kill)",
        answered.users.len(),
        answered.roles.len(),
        answered.groups.len(),
        answered.group_members.len(),
        users.len(),
    );
    assert!(
        users.len() >= answered.users.len(),
        "{} users, {} answered",
        users.len(),
        answered.users.len()
    );
    // The restarted server serves them.
    let c = server.client_as(&owner.token);
    let (status, list) = c.get("/users?limit=1").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["count"].as_u64().unwrap(), users.len() as u64 + 1);
}

// ---------------------------------------------------------------------------
// A use case whose audit insert fails.
// ---------------------------------------------------------------------------

/// A trigger in the test's database that refuses audit entries about
/// anything named `doomed...`.
async fn refuse_doomed_audits(db: &orgsync::db::Db) {
    let statements: &[&'static str] = if backend() == "postgres" {
        &[
            "CREATE FUNCTION orgsync_test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
               IF NEW.resource_target LIKE 'doomed%' THEN \
                 RAISE EXCEPTION 'orgsync test trigger refuses the audit entry of %', NEW.resource_target; \
               END IF; \
               RETURN NEW; \
             END $$",
            "CREATE TRIGGER orgsync_test_refuse_audit BEFORE INSERT ON audit_logs \
             FOR EACH ROW EXECUTE FUNCTION orgsync_test_refuse_audit()",
        ]
    } else {
        &[
            "CREATE TRIGGER orgsync_test_refuse_audit BEFORE INSERT ON audit_logs \
           WHEN NEW.resource_target LIKE 'doomed%' \
           BEGIN SELECT RAISE(ABORT, 'orgsync test trigger refuses this audit entry'); END",
        ]
    };
    for sql in statements {
        sqlx::query(*sql).execute(db.pool()).await.unwrap();
    }
}

async fn allow_all_audits(db: &orgsync::db::Db) {
    let sql = if backend() == "postgres" {
        "DROP TRIGGER orgsync_test_refuse_audit ON audit_logs"
    } else {
        "DROP TRIGGER orgsync_test_refuse_audit"
    };
    sqlx::query(sql).execute(db.pool()).await.unwrap();
}

/// Rows of every table a use case below writes.
async fn row_counts(db: &orgsync::db::Db) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for table in [
        "users",
        "organization_members",
        "groups",
        "group_members",
        "audit_logs",
    ] {
        // The table names are constants.
        let (n,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(db.pool())
                .await
                .unwrap();
        out.push((table, n));
    }
    out
}

fn assert_bare_500(what: &str, status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{what}: {body}");
    assert_eq!(body, &json!({"message": "internal server error"}), "{what}");
    let text = body.to_string().to_lowercase();
    for leak in [
        "trigger", "refuses", "audit", "insert", "sql", "raise", "doomed", "database",
    ] {
        assert!(
            !text.contains(leak),
            "{what}: the body leaks `{leak}`: {body}"
        );
    }
}

#[tokio::test]
async fn a_use_case_whose_audit_insert_fails_writes_nothing_and_answers_a_bare_500() {
    let s = TestServer::start().await;
    let owner = s.owner().await;
    owner.create_org("alpha").await;
    owner.create_org("beta").await;
    owner.create_user("doomed-member").await;
    owner.add_member("alpha", "doomed-member", &[]).await;
    refuse_doomed_audits(&s.state.db).await;
    let before = row_counts(&s.state.db).await;

    // A user with memberships of two more orgs: user row, three memberships,
    // then its audit entries, which fail.
    let (status, body) = owner
        .post(
            "/users",
            json!({"username": "doomed-user", "email": "doomed-user@example.com",
                   "organization_ids": ["alpha", "beta"]}),
        )
        .await;
    assert_bare_500("create user", status, &body);
    // Member roles: the update, then its audit entry.
    let (status, body) = owner
        .put(
            "/organizations/alpha/members/doomed-member/roles",
            json!({"roles": ["organization-admin"]}),
        )
        .await;
    assert_bare_500("set member roles", status, &body);
    // A group: the row, then its audit entry.
    let (status, body) = owner
        .post(
            "/organizations/alpha/groups",
            json!({"name": "doomed-group"}),
        )
        .await;
    assert_bare_500("create group", status, &body);

    // Nothing of the three use cases is there.
    assert_eq!(row_counts(&s.state.db).await, before);
    let pool = s.state.db.pool();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE username = 'doomed-user'")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let (roles,): (String,) = sqlx::query_as(
        "SELECT m.roles FROM organization_members m JOIN users u ON u.id = m.user_id \
         JOIN organizations o ON o.id = m.organization_id \
         WHERE u.username = 'doomed-member' AND o.name = 'alpha'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(roles_of(&roles), Vec::<String>::new());
    let (status, body) = owner.get("/users/doomed-user").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The trigger was the only reason: without it the same requests succeed.
    allow_all_audits(&s.state.db).await;
    let (status, body) = owner
        .post(
            "/users",
            json!({"username": "doomed-user", "email": "doomed-user@example.com",
                   "organization_ids": ["alpha", "beta"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = owner
        .put(
            "/organizations/alpha/members/doomed-member/roles",
            json!({"roles": ["organization-admin"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = owner
        .post(
            "/organizations/alpha/groups",
            json!({"name": "doomed-group"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let after: HashMap<&str, i64> = row_counts(&s.state.db).await.into_iter().collect();
    let before: HashMap<&str, i64> = before.into_iter().collect();
    assert_eq!(after["users"], before["users"] + 1);
    assert_eq!(
        after["organization_members"],
        before["organization_members"] + 3
    );
    assert_eq!(after["groups"], before["groups"] + 1);
    // user, two memberships, roles, group.
    assert_eq!(after["audit_logs"], before["audit_logs"] + 5);
}
