//! LDAP directory sync: a run reads the directory (the `orgsync-sync` crate's
//! LDAP source), plans every directory user with the same planner and settings
//! as an OIDC login, checks the removal guard, and applies the changes in
//! batches of one transaction each. Runs are one at a time across replicas (a
//! lease row), scheduled ticks are claimed by exactly one replica (a row per
//! tick), and a run in progress reports its counts.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use orgsync_sync::ldap::{self, DirectoryUser, LdapSettings, ReadMode, ReadProgress};
use orgsync_sync::{Plan, Planner, UserState};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sqlx::Row;

use crate::app::{App, AppState};
use crate::audit::AuditCtx;
use crate::clock;
use crate::error::ApiError;
use crate::model::UserStatus;
use crate::store::{self, Conn};

mod apply;
mod plan;

/// Where the settings live in `deployment_settings`.
pub const SETTINGS_KEY: &str = "ldapsync";
/// `user_links.source` of directory identities.
pub const LINK_SOURCE: &str = "ldap";
/// The audit source of what a run changes.
pub const AUDIT_SOURCE: &str = "ldap_sync";
/// How often a running run renews its lease and publishes its progress.
const HEARTBEAT: Duration = Duration::from_millis(200);
/// Incremental runs look this far behind the previous run's start (clock skew
/// between orgsync and the directory, one-second timestamps).
const INCREMENTAL_OVERLAP_SECONDS: i64 = 120;
/// At most this many per-user changes are kept in a run's `plan`.
const PLAN_KEEP: usize = 1000;
/// At most this many problems are kept in a run's record.
const PROBLEMS_KEEP: usize = 500;

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

pub async fn load_settings(conn: &mut Conn) -> sqlx::Result<LdapSettings> {
    let raw: Option<String> = sqlx::query("SELECT value FROM deployment_settings WHERE key = $1")
        .bind(SETTINGS_KEY)
        .fetch_optional(conn)
        .await?
        .map(|r| r.try_get("value"))
        .transpose()?;
    Ok(raw
        .and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or_default())
}

pub async fn store_settings(conn: &mut Conn, s: &LdapSettings, now: &str) -> sqlx::Result<()> {
    let value = serde_json::to_string(s).unwrap_or_else(|_| "{}".to_owned());
    sqlx::query(
        "INSERT INTO deployment_settings (key, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(SETTINGS_KEY)
    .bind(value)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Applies the config file's `[ldapsync]` settings at start when they differ
/// from the stored ones (audited with source `config`).
pub async fn apply_file_settings(db: &crate::db::Db, file: &LdapSettings) -> sqlx::Result<()> {
    let mut tx = db.begin().await?;
    let old = load_settings(&mut tx).await?;
    if old == *file {
        return tx.rollback().await;
    }
    let now = clock::fmt(clock::now());
    store_settings(&mut tx, file, &now).await?;
    let mut diff = crate::audit::diff(&public_settings(&old), &public_settings(file));
    if old.bind_password != file.bind_password
        && let Value::Object(d) = &mut diff
    {
        d.insert(
            "bind_password".to_owned(),
            json!({"old": "(redacted)", "new": "(changed)"}),
        );
    }
    crate::audit::record(
        &mut tx,
        &AuditCtx {
            source: "config",
            ..AuditCtx::default()
        },
        &now,
        crate::audit::Change {
            organization_id: None,
            action: "update",
            resource_type: "ldapsync_settings",
            resource_id: "deployment",
            resource_target: SETTINGS_KEY,
            diff,
            status_code: 200,
        },
    )
    .await?;
    tx.commit().await
}

/// The settings as served: everything but the bind password, which is
/// write-only (`bind_password_set` tells whether one is stored).
pub fn public_settings(s: &LdapSettings) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.remove("bind_password");
        m.insert(
            "bind_password_set".to_owned(),
            Value::Bool(!s.bind_password.is_empty()),
        );
    }
    v
}

// ---------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        }
    }
}

/// What starts a run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub trigger: Trigger,
    pub dry_run: bool,
    pub force: bool,
    /// Force a full run (`None`: full when due, else incremental).
    pub full: Option<bool>,
    pub started_by: Option<String>,
    pub tick: Option<String>,
}

/// Counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub users_seen: usize,
    pub groups_seen: usize,
    pub users_planned: usize,
    pub users_created: usize,
    pub users_linked: usize,
    pub users_updated: usize,
    pub users_suspended: usize,
    pub users_reactivated: usize,
    pub users_skipped: usize,
    pub users_unchanged: usize,
    pub memberships_added: usize,
    pub memberships_removed: usize,
    pub organizations_joined: usize,
    pub organizations_left: usize,
    pub groups_joined: usize,
    pub groups_left: usize,
    pub groups_created: usize,
    pub roles_changed: usize,
    pub site_roles_changed: usize,
    pub problems: usize,
    pub batches: usize,
    pub duration_ms: u64,
    /// What the run planned with (see [`settings_fingerprint`]): an
    /// incremental run is only right when nothing of it changed since.
    pub settings_fingerprint: String,
}

impl Stats {
    /// Zeroes what [`count_change`] counts (the second pass counts again what
    /// it applies).
    fn clear_changes(&mut self) {
        self.users_created = 0;
        self.users_linked = 0;
        self.users_updated = 0;
        self.users_suspended = 0;
        self.users_reactivated = 0;
        self.memberships_added = 0;
        self.memberships_removed = 0;
        self.organizations_joined = 0;
        self.organizations_left = 0;
        self.groups_joined = 0;
        self.groups_left = 0;
        self.groups_created = 0;
        self.roles_changed = 0;
        self.site_roles_changed = 0;
    }
}

/// What a run in progress reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Progress {
    /// reading | planning | applying | done
    pub phase: String,
    pub users_read: usize,
    pub groups_read: usize,
    pub users_planned: usize,
    pub users_to_apply: usize,
    pub users_applied: usize,
}

/// A run as served.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: String,
    pub trigger: String,
    pub dry_run: bool,
    pub force: bool,
    pub full: bool,
    pub started_by: Option<String>,
    pub tick: Option<String>,
    /// The replica (process) that ran it.
    pub node: String,
    /// The last sign of life of a running run.
    pub heartbeat_at: Option<String>,
    pub stats: Value,
    pub progress: Value,
    pub error: Option<String>,
    pub problems: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
}

const RUN_COLUMNS: &str = "id, started_at, finished_at, status, trigger, tick, dry_run, forced, \
    full_sync, started_by, node, heartbeat_at, stats, progress, error, problems";

fn run_from_row(r: &sqlx::any::AnyRow, with_plan: bool) -> sqlx::Result<Run> {
    let json = |col: &str| -> sqlx::Result<Value> {
        let raw: String = r.try_get(col)?;
        Ok(serde_json::from_str(&raw).unwrap_or(Value::Null))
    };
    Ok(Run {
        id: r.try_get("id")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        status: r.try_get("status")?,
        trigger: r.try_get("trigger")?,
        tick: r.try_get("tick")?,
        node: r.try_get("node")?,
        heartbeat_at: r.try_get("heartbeat_at")?,
        dry_run: r.try_get::<i64, _>("dry_run")? != 0,
        force: r.try_get::<i64, _>("forced")? != 0,
        full: r.try_get::<i64, _>("full_sync")? != 0,
        started_by: r.try_get("started_by")?,
        stats: json("stats")?,
        progress: json("progress")?,
        error: r.try_get("error")?,
        problems: json("problems")?,
        plan: if with_plan {
            r.try_get::<Option<String>, _>("plan")?
                .and_then(|p| serde_json::from_str(&p).ok())
        } else {
            None
        },
    })
}

impl Run {
    /// A run still marked running whose replica stopped sending heartbeats
    /// (it crashed) is shown as failed; the next run records it so.
    pub fn settle(&mut self, now: DateTime<Utc>, lease_seconds: u64) {
        let silent_for = self
            .heartbeat_at
            .as_deref()
            .and_then(clock::parse)
            .map(|t| now - t);
        let lease = chrono::Duration::seconds(i64::try_from(lease_seconds).unwrap_or(30));
        if self.status == "running" && silent_for.is_some_and(|d| d > lease) {
            self.status = "failed".to_owned();
            self.error = Some(format!(
                "the replica running it stopped sending heartbeats (last at {}); the next run converges",
                self.heartbeat_at.as_deref().unwrap_or("?")
            ));
        }
    }
}

pub async fn get_run(conn: &mut Conn, id: &str) -> sqlx::Result<Option<Run>> {
    // RUN_COLUMNS is a constant: no input reaches the SQL text.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS}, plan FROM ldapsync_runs WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .map(|r| run_from_row(&r, true))
    .transpose()
}

/// Runs newest first, and how many there are.
pub async fn list_runs(conn: &mut Conn, limit: i64, offset: i64) -> sqlx::Result<(Vec<Run>, i64)> {
    let runs = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM ldapsync_runs ORDER BY started_at DESC, id DESC LIMIT $1 OFFSET $2"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| run_from_row(r, false))
    .collect::<sqlx::Result<Vec<_>>>()?;
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM ldapsync_runs")
        .fetch_one(conn)
        .await?
        .try_get("n")?;
    Ok((runs, count))
}

/// Why a run did not start.
#[derive(Debug)]
pub enum StartError {
    /// LDAP sync is off (manual runs only; the schedule just waits).
    Disabled,
    /// Another run holds the lease.
    Busy(Option<String>),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for StartError {
    fn from(e: sqlx::Error) -> Self {
        StartError::Db(e)
    }
}

impl From<StartError> for ApiError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Disabled => ApiError::bad_request(
                "LDAP sync is not enabled: set `enabled: true` with `PUT /api/v2/settings/ldapsync` first",
            ),
            StartError::Busy(id) => ApiError::new(
                axum::http::StatusCode::CONFLICT,
                match id {
                    Some(id) => format!("an LDAP sync run is already in progress (run {id})"),
                    None => "an LDAP sync run is already in progress".to_owned(),
                },
            ),
            StartError::Db(e) => ApiError::from(e),
        }
    }
}

/// Starts a run in the background: takes the lease, records the run as
/// `running`, and returns it. The run itself goes on in a spawned task.
pub async fn start(app: &AppState, req: RunRequest) -> Result<Run, StartError> {
    let settings = {
        let mut conn = app.db.pool().acquire().await?;
        load_settings(&mut conn).await?
    };
    if !settings.enabled {
        return Err(StartError::Disabled);
    }
    let now = clock::now();
    let now_s = clock::fmt(now);
    let id = store::new_id();
    let (fingerprint, full) = {
        let mut conn = app.db.pool().acquire().await?;
        let fingerprint = settings_fingerprint(&mut conn, &settings).await?;
        let full = match req.full {
            Some(f) => f,
            None => {
                full_run_due(&mut conn, &settings, now).await?
                    || last_fingerprint(&mut conn).await?.as_deref() != Some(fingerprint.as_str())
            }
        };
        (fingerprint, full)
    };
    let mut tx = app.db.begin().await?;
    let taken = sqlx::query(
        "UPDATE ldapsync_lease SET run_id = $1, node = $2, expires_at = $3 \
         WHERE id = 1 AND (run_id IS NULL OR expires_at < $4)",
    )
    .bind(&id)
    .bind(&app.node_id)
    .bind(clock::fmt(now + lease(app)))
    .bind(&now_s)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if taken != 1 {
        let holder: Option<String> = sqlx::query("SELECT run_id FROM ldapsync_lease WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?
            .and_then(|r| r.try_get("run_id").ok());
        tx.rollback().await?;
        return Err(StartError::Busy(holder));
    }
    // A run still marked running lost its replica (its lease expired).
    sqlx::query(
        "UPDATE ldapsync_runs SET status = 'failed', finished_at = $1, \
         error = 'the replica running it stopped before it finished (no heartbeat); the next run converges' \
         WHERE status = 'running'",
    )
    .bind(&now_s)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO ldapsync_runs (id, started_at, status, trigger, tick, dry_run, forced, full_sync, \
         started_by, node, stats, progress, problems, heartbeat_at) \
         VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $8, $9, '{}', $10, '[]', $2)",
    )
    .bind(&id)
    .bind(&now_s)
    .bind(req.trigger.as_str())
    .bind(&req.tick)
    .bind(i64::from(req.dry_run))
    .bind(i64::from(req.force))
    .bind(i64::from(full))
    .bind(&req.started_by)
    .bind(&app.node_id)
    .bind(json!(Progress { phase: "reading".to_owned(), ..Progress::default() }).to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(run = %id, trigger = req.trigger.as_str(), dry_run = req.dry_run, full, "ldap sync run started");

    let run_ctx = RunCtx {
        id: id.clone(),
        started: now,
        dry_run: req.dry_run,
        force: req.force,
        full,
        fingerprint,
        progress: Arc::new(Mutex::new(Progress {
            phase: "reading".to_owned(),
            ..Progress::default()
        })),
    };
    // Read back before the run starts, so the answer shows it `running` even
    // when it ends at once; the run starts whatever the read gives.
    let started = match app.db.pool().acquire().await {
        Ok(mut conn) => get_run(&mut conn, &id).await,
        Err(e) => Err(e),
    };
    let app2 = app.clone();
    tokio::spawn(async move { supervise(app2, settings, run_ctx).await });
    started?.ok_or(StartError::Db(sqlx::Error::RowNotFound))
}

fn lease(app: &App) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(app.config.ldapsync_lease_seconds).unwrap_or(30))
}

/// Full when no full run succeeded within `full_sync_interval`, or when no
/// run succeeded at all.
async fn full_run_due(
    conn: &mut Conn,
    settings: &LdapSettings,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let last_full: Option<String> = sqlx::query(
        "SELECT started_at FROM ldapsync_runs WHERE status = 'succeeded' AND dry_run = 0 AND full_sync = 1 \
         ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?
    .map(|r| r.try_get("started_at"))
    .transpose()?;
    let Some(last) = last_full.as_deref().and_then(clock::parse) else {
        return Ok(true);
    };
    let interval = settings
        .full_sync_interval()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .unwrap_or_else(|| chrono::Duration::hours(24));
    Ok(now - last >= interval)
}

/// A digest of everything a plan depends on besides the directory: the LDAP
/// settings that shape claims, the IdP sync settings, and the organizations
/// and groups. When it differs from the last successful run's, the next run
/// is full (an incremental one would miss users the change affects).
async fn settings_fingerprint(conn: &mut Conn, ldap: &LdapSettings) -> sqlx::Result<String> {
    use sha2::Digest as _;
    let (sync, mut world, _) = crate::idpsync::inputs(conn, None).await?;
    world.orgs.sort_by(|a, b| a.id.cmp(&b.id));
    world.groups.sort_by(|a, b| a.id.cmp(&b.id));
    let shaping = json!({
        "user_base_dn": ldap.user_base_dn, "user_filter": ldap.user_filter,
        "user_attributes": ldap.user_attributes, "group_base_dn": ldap.group_base_dn,
        "group_filter": ldap.group_filter, "group_name_attribute": ldap.group_name_attribute,
        "membership": ldap.membership, "nested_groups": ldap.nested_groups, "claims": ldap.claims,
        "url": ldap.url,
    });
    let text = json!([shaping, sync, world]).to_string();
    Ok(hex::encode(sha2::Sha256::digest(text.as_bytes())))
}

async fn last_fingerprint(conn: &mut Conn) -> sqlx::Result<Option<String>> {
    let stats: Option<String> = sqlx::query(
        "SELECT stats FROM ldapsync_runs WHERE status = 'succeeded' AND dry_run = 0 \
         ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?
    .map(|r| r.try_get("stats"))
    .transpose()?;
    Ok(stats
        .and_then(|s| serde_json::from_str::<Stats>(&s).ok())
        .map(|s| s.settings_fingerprint))
}

struct RunCtx {
    id: String,
    started: DateTime<Utc>,
    dry_run: bool,
    force: bool,
    full: bool,
    fingerprint: String,
    progress: Arc<Mutex<Progress>>,
}

/// The end of a run.
struct Outcome {
    status: &'static str,
    stats: Stats,
    error: Option<String>,
    problems: Vec<Value>,
    plan: Option<Value>,
}

/// Runs `execute` with a heartbeat (lease renewal + progress) beside it, and
/// records the outcome whatever happens (a panic included).
async fn supervise(app: AppState, settings: LdapSettings, ctx: RunCtx) {
    let ctx = Arc::new(ctx);
    let beat = {
        let app = app.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                let progress = ctx.progress.lock().map(|p| p.clone()).unwrap_or_default();
                let now = clock::now();
                let Ok(mut conn) = app.db.pool().acquire().await else {
                    continue;
                };
                let _ = sqlx::query(
                    "UPDATE ldapsync_lease SET expires_at = $1 WHERE id = 1 AND run_id = $2",
                )
                .bind(clock::fmt(now + lease(&app)))
                .bind(&ctx.id)
                .execute(&mut *conn)
                .await;
                let _ = sqlx::query(
                    "UPDATE ldapsync_runs SET progress = $1, heartbeat_at = $2 WHERE id = $3 AND status = 'running'",
                )
                .bind(json!(progress).to_string())
                .bind(clock::fmt(now))
                .bind(&ctx.id)
                .execute(&mut *conn)
                .await;
            }
        })
    };
    let mut work = {
        let app = app.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move { execute(&app, &settings, &ctx).await })
    };
    let joined = tokio::select! {
        r = &mut work => r,
        () = app.shutdown.cancelled() => {
            // The server stops: the batch in flight rolls back with its
            // transaction; the run is recorded as failed and the lease freed.
            work.abort();
            Ok(Err("the server stopped during the run; the next run converges".to_owned()))
        }
    };
    let outcome = match joined {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Outcome {
            status: "failed",
            stats: Stats::default(),
            error: Some(e),
            problems: Vec::new(),
            plan: None,
        },
        Err(_) => Outcome {
            status: "failed",
            stats: Stats::default(),
            error: Some("internal error while running the sync (see the server log)".to_owned()),
            problems: Vec::new(),
            plan: None,
        },
    };
    beat.abort();
    if let Err(e) = finish(&app, &ctx, outcome).await {
        tracing::error!(run = %ctx.id, error = %e, "cannot record the end of an ldap sync run");
    }
}

async fn finish(app: &AppState, ctx: &RunCtx, mut outcome: Outcome) -> sqlx::Result<()> {
    if outcome.stats.settings_fingerprint.is_empty() {
        outcome
            .stats
            .settings_fingerprint
            .clone_from(&ctx.fingerprint);
    }
    let now = clock::now();
    outcome.stats.duration_ms = u64::try_from((now - ctx.started).num_milliseconds()).unwrap_or(0);
    let mut progress = ctx.progress.lock().map(|p| p.clone()).unwrap_or_default();
    progress.phase = "done".to_owned();
    let mut tx = app.db.begin().await?;
    sqlx::query(
        "UPDATE ldapsync_runs SET status = $1, finished_at = $2, stats = $3, progress = $4, error = $5, \
         problems = $6, plan = $7, heartbeat_at = $2 WHERE id = $8 AND status = 'running'",
    )
    .bind(outcome.status)
    .bind(clock::fmt(now))
    .bind(json!(outcome.stats).to_string())
    .bind(json!(progress).to_string())
    .bind(&outcome.error)
    .bind(Value::Array(outcome.problems).to_string())
    .bind(outcome.plan.map(|p| p.to_string()))
    .bind(&ctx.id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE ldapsync_lease SET run_id = NULL, node = NULL, expires_at = NULL WHERE id = 1 AND run_id = $1",
    )
    .bind(&ctx.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    match outcome.status {
        "succeeded" => {
            tracing::info!(run = %ctx.id, stats = ?outcome.stats, "ldap sync run succeeded")
        }
        status => {
            tracing::warn!(run = %ctx.id, status, error = outcome.error.as_deref().unwrap_or(""), "ldap sync run did not succeed")
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// One run
// ---------------------------------------------------------------------------

/// A directory identity already known to orgsync.
struct Link {
    user_id: String,
    /// [`plan::text_digest`] of the claims stored by the last run.
    claims_digest: [u8; 16],
    /// [`ldap::group_names_digest`] of the group names of those claims.
    groups_digest: u64,
    suspended_by_sync: bool,
}

/// The orgsync side of a user.
struct Known {
    username: String,
    email: String,
    name: String,
    status: UserStatus,
    login_type: crate::model::LoginType,
}

/// What a run does to one user.
#[derive(Debug)]
struct UserChange {
    user_id: String,
    /// The directory entry (None for a user to suspend).
    entry: Option<DirectoryUser>,
    create: bool,
    link: bool,
    update_profile: bool,
    store_claims: bool,
    reactivate: bool,
    suspend: bool,
    plan: Plan,
}

impl UserChange {
    fn summary(&self) -> Value {
        let action = if self.create {
            "create"
        } else if self.suspend {
            "suspend"
        } else if self.reactivate {
            "reactivate"
        } else if self.link {
            "link"
        } else {
            "update"
        };
        let username = self.entry.as_ref().map(|e| e.username.clone());
        let mut v = json!({"user_id": self.user_id, "username": username, "action": action});
        if self.plan.has_changes()
            && let (Value::Object(m), Ok(Value::Object(p))) =
                (&mut v, serde_json::to_value(&self.plan))
        {
            for (k, val) in p {
                if k != "problems" && k != "refused" {
                    m.insert(k, val);
                }
            }
        }
        v
    }
}

fn set_progress(ctx: &RunCtx, f: impl FnOnce(&mut Progress)) {
    if let Ok(mut p) = ctx.progress.lock() {
        f(&mut p);
    }
}

/// The first pass publishes its progress every this many entries.
const PROGRESS_EVERY: usize = 500;

/// Reads, plans, guards and applies. `Err` is a failed run with its message.
///
/// Memory stays bounded by the compact [`ldap::Directory`]: the first pass
/// plans every entry to count (the removal guard, the stats, a dry run's
/// plan) and keeps only a small [`plan::Decision`] per entry that changes;
/// the second pass builds and plans those entries again one batch at a time,
/// with the memberships read in the batch's own transaction, and applies the
/// batch in it.
async fn execute(app: &AppState, settings: &LdapSettings, ctx: &RunCtx) -> Result<Outcome, String> {
    let db_err = |e: sqlx::Error| db_error(&e);
    let group_keys: Vec<&str> = settings
        .claims
        .iter()
        .filter(|(_, v)| v.as_str() == ldap::GROUPS_CLAIM)
        .map(|(k, _)| k.as_str())
        .collect();
    let mut conn = app.db.pool().acquire().await.map_err(db_err)?;
    let links = load_links(&mut conn, &group_keys).await.map_err(db_err)?;

    // 1. Read the directory. Any non-success LDAP result fails the run here,
    //    before anything is written.
    let mode = if ctx.full {
        ReadMode::Full
    } else {
        let since = last_success_start(&mut conn)
            .await
            .map_err(db_err)?
            .map(|t| t - chrono::Duration::seconds(INCREMENTAL_OVERLAP_SECONDS))
            .unwrap_or(ctx.started - chrono::Duration::days(365 * 30));
        ReadMode::Incremental {
            since: since.format("%Y%m%d%H%M%SZ").to_string(),
            known: links
                .iter()
                .map(|(ext, l)| (ext.clone(), l.groups_digest))
                .collect(),
        }
    };
    drop(conn);
    let progress = ctx.progress.clone();
    let on_read = Arc::new(move |p: ReadProgress| {
        if let Ok(mut g) = progress.lock() {
            g.users_read = p.users_read;
            g.groups_read = p.groups_read;
        }
    });
    let directory = ldap::read_directory(settings, mode, on_read)
        .await
        .map_err(|e| e.to_string())?;
    set_progress(ctx, |p| p.phase = "planning".to_owned());

    // 2. First pass: decide and plan every entry; keep the decisions of the
    //    entries that change something, and the counts.
    let mut conn = app.db.pool().acquire().await.map_err(db_err)?;
    let (sync_settings, world, _) = crate::idpsync::inputs(&mut conn, None)
        .await
        .map_err(db_err)?;
    let planner = Planner::new(&sync_settings, &world);
    let known = load_known_users(&mut conn).await.map_err(db_err)?;
    let default_org = world
        .orgs
        .iter()
        .find(|o| o.is_default)
        .map(|o| o.id.clone())
        .ok_or_else(|| "the default organization is missing".to_owned())?;
    let existing_problems = load_problem_keys(&mut conn).await.map_err(db_err)?;
    let states = States::load(&mut conn).await.map_err(db_err)?;

    let mut stats = Stats {
        users_seen: directory.present_ids.len(),
        groups_seen: directory.groups_seen,
        ..Stats::default()
    };
    let mut problems = ProblemSet::new(existing_problems);
    for p in &directory.problems {
        problems.add(None, None, &p.kind, &format!("{}: {}", p.dn, p.detail));
    }
    let present = |id: &str| directory.present_ids.contains(id);
    let mut run_planner = plan::RunPlanner::new(
        plan::Inputs {
            links: &links,
            users: &known,
            default_org: &default_org,
            email_attribute: &settings.user_attributes.email,
        },
        &planner,
    );
    let mut decisions: Vec<plan::Decision> = Vec::new();
    let mut summaries: Vec<Value> = Vec::new();
    let mut created_groups = CreatedGroups::new();
    drop(conn);
    for i in 0..directory.len() {
        let entry = directory.user(i);
        let Some(d) = run_planner.decide(i, &entry, &present, &mut problems, &mut stats) else {
            continue;
        };
        match run_planner.change(&d, entry, states.get(&d.user_id), &mut problems) {
            Err(()) => stats.users_skipped += 1,
            Ok(None) => stats.users_unchanged += 1,
            Ok(Some(c)) => {
                count_change(&mut stats, &c, &mut created_groups);
                if summaries.len() < PLAN_KEEP {
                    summaries.push(c.summary());
                }
                decisions.push(d);
            }
        }
        if (i + 1) % PROGRESS_EVERY == 0 {
            set_progress(ctx, |p| p.users_planned = i + 1);
        }
    }
    set_progress(ctx, |p| p.users_planned = directory.len());
    drop(states);
    let suspensions = run_planner.suspensions(&present);
    for c in &suspensions {
        count_change(&mut stats, c, &mut created_groups);
        if summaries.len() < PLAN_KEEP {
            summaries.push(c.summary());
        }
    }
    stats.groups_created = created_groups.len();
    stats.problems = problems.len();

    // 3. The removal guard.
    let mut conn = app.db.pool().acquire().await.map_err(db_err)?;
    let (ldap_users, ldap_memberships) = guard_base(&mut conn).await.map_err(db_err)?;
    drop(conn);
    let removal_problem = removal_check(settings, &stats, ldap_users, ldap_memberships);
    if let Some(why) = &removal_problem
        && !ctx.force
    {
        return Ok(Outcome {
            status: "aborted",
            error: Some(format!(
                "{why}; nothing was changed. Review the plan and run again with `force` (`orgsync ldapsync run --force`) if it is right"
            )),
            problems: problems.kept(),
            plan: Some(Value::Array(summaries)),
            stats,
        });
    }
    if ctx.dry_run {
        return Ok(Outcome {
            status: "succeeded",
            error: None,
            problems: problems.kept(),
            plan: Some(Value::Array(summaries)),
            stats,
        });
    }
    drop(summaries);

    // 4. Second pass. The groups the plan creates come first, in one
    //    transaction, so that batches applied side by side never race to
    //    create one. Each batch is planned again with the memberships as they
    //    are in its own transaction and applied in it, up to
    //    `ldapsync_apply_concurrency` batches at once (PostgreSQL; SQLite has
    //    one writer). The change counts are those applied.
    set_progress(ctx, |p| {
        p.phase = "applying".to_owned();
        p.users_to_apply = decisions.len() + suspensions.len();
    });
    let audit_ctx = AuditCtx {
        source: AUDIT_SOURCE,
        ..AuditCtx::default()
    };
    let created = if created_groups.is_empty() {
        HashMap::new()
    } else {
        let wanted: Vec<(String, String, String)> = created_groups
            .iter()
            .map(|((org, _), (name, reason))| (org.clone(), name.clone(), reason.clone()))
            .collect();
        let now_s = clock::fmt(clock::now());
        let mut tx = app.db.begin().await.map_err(db_err)?;
        let ids = apply::create_groups(&mut tx, &wanted, &now_s, &audit_ctx)
            .await
            .map_err(|e| apply_error(&e))?;
        still_ours(&mut tx, app, ctx).await?;
        tx.commit().await.map_err(db_err)?;
        ids
    };
    drop(created_groups);
    stats.clear_changes();
    let applier = Applier {
        app,
        ctx,
        directory: &directory,
        planner: &run_planner,
        default_org: &default_org,
        audit_ctx,
        created: &created,
        tally: Mutex::new((stats, CreatedGroups::new())),
        committed: tokio::sync::Mutex::new(Committed::default()),
    };
    let concurrency = match app.db.dialect() {
        crate::db::Dialect::Postgres => app.config.ldapsync_apply_concurrency,
        crate::db::Dialect::Sqlite => 1,
    };
    let batch_size = app.config.ldapsync_batch_size;
    let mut jobs = decisions
        .chunks(batch_size)
        .map(Job::Decided)
        .chain(suspensions.chunks(batch_size).map(Job::Suspend));
    let mut problem_rows = problems.new_rows().into_iter();
    let mut running = futures_util::stream::FuturesUnordered::new();
    loop {
        while running.len() < concurrency {
            let Some(job) = jobs.next() else { break };
            // Problems go in with the first batches (a crash leaves the rest
            // for the next run).
            let rows: Vec<ProblemKey> = problem_rows.by_ref().take(batch_size).collect();
            running.push(applier.run(job, rows));
        }
        match futures_util::StreamExt::next(&mut running).await {
            None => break,
            Some(result) => result?,
        }
    }
    drop(running);
    let rest: Vec<ProblemKey> = problem_rows.collect();
    applier.insert_problems(&rest).await?;
    let batches = applier.committed.lock().await.batches;
    let (mut stats, created_now) = applier
        .tally
        .into_inner()
        .map_err(|_| "internal error while applying".to_owned())?;
    stats.batches = batches;
    stats.groups_created = created_now.len();
    // A full run met every problem there still is: the stored ones it did
    // not meet are fixed.
    if directory.full {
        let stale = problems.stale_ids();
        if !stale.is_empty() {
            let mut tx = app.db.begin().await.map_err(db_err)?;
            delete_problems(&mut tx, &stale).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
        }
    }
    // What the next run compares with: the state after this run (groups it
    // created included), so only later changes force a full run.
    let mut conn = app.db.pool().acquire().await.map_err(db_err)?;
    stats.settings_fingerprint = settings_fingerprint(&mut conn, settings)
        .await
        .map_err(db_err)?;
    Ok(Outcome {
        status: "succeeded",
        error: None,
        problems: problems.kept(),
        plan: None,
        stats,
    })
}

fn db_error(e: &sqlx::Error) -> String {
    tracing::error!(error = %e, "ldap sync: database error");
    "database error while syncing (see the server log)".to_owned()
}

/// The groups a run's plan creates: (organization, folded name) -> (name,
/// the rule that creates it).
type CreatedGroups = BTreeMap<(String, String), (String, String)>;

/// One batch of the second pass.
enum Job<'a> {
    /// Entries to plan again and apply.
    Decided(&'a [plan::Decision]),
    /// Users gone from the directory.
    Suspend(&'a [UserChange]),
}

/// Batches committed so far.
#[derive(Default)]
struct Committed {
    batches: usize,
}

/// Applies the batches of a run's second pass, each in its own transaction;
/// several may run side by side. Commits are taken one at a time (with the
/// lease check).
struct Applier<'a> {
    app: &'a AppState,
    ctx: &'a RunCtx,
    directory: &'a ldap::Directory,
    planner: &'a plan::RunPlanner<'a>,
    default_org: &'a str,
    audit_ctx: AuditCtx,
    /// Groups created before the batches.
    created: &'a HashMap<(String, String), String>,
    /// The applied counts, and the groups the applied plans create.
    tally: Mutex<(Stats, CreatedGroups)>,
    committed: tokio::sync::Mutex<Committed>,
}

impl Applier<'_> {
    async fn run(&self, job: Job<'_>, problem_rows: Vec<ProblemKey>) -> Result<(), String> {
        let app = self.app;
        let db_err = |e: sqlx::Error| db_error(&e);
        let mut tx = app.db.begin().await.map_err(db_err)?;
        let planned;
        let (batch, users) = match job {
            Job::Suspend(changes) => (changes, changes.len()),
            Job::Decided(chunk) => {
                let mut states = load_states(
                    &mut tx,
                    chunk
                        .iter()
                        .filter(|d| !d.create)
                        .map(|d| d.user_id.as_str()),
                )
                .await
                .map_err(db_err)?;
                // Problems were recorded by the first pass.
                let mut again = ProblemSet::new(HashMap::new());
                let mut skipped = 0;
                let mut unchanged = 0;
                let mut changes = Vec::with_capacity(chunk.len());
                for d in chunk {
                    let state = states.remove(&d.user_id).unwrap_or_default();
                    match self
                        .planner
                        .change(d, self.directory.user(d.index), state, &mut again)
                    {
                        Err(()) => skipped += 1,
                        Ok(None) => unchanged += 1,
                        Ok(Some(c)) => changes.push(c),
                    }
                }
                if let Ok(mut t) = self.tally.lock() {
                    t.0.users_skipped += skipped;
                    t.0.users_unchanged += unchanged;
                }
                planned = changes;
                (planned.as_slice(), chunk.len())
            }
        };
        if let Ok(mut t) = self.tally.lock() {
            let (stats, created) = &mut *t;
            for c in batch {
                count_change(stats, c, created);
            }
        }
        let now_s = clock::fmt(clock::now());
        let mut groups = apply::GroupIds {
            created: self.created,
            local: HashMap::new(),
        };
        apply::apply_batch(
            &mut tx,
            batch,
            self.default_org,
            &now_s,
            &self.audit_ctx,
            &mut groups,
        )
        .await
        .map_err(|e| apply_error(&e))?;
        insert_problem_rows(&mut tx, &problem_rows, &now_s)
            .await
            .map_err(db_err)?;
        let mut committed = self.committed.lock().await;
        still_ours(&mut tx, app, self.ctx).await?;
        tx.commit().await.map_err(db_err)?;
        committed.batches += 1;
        app.authz
            .invalidate(batch.iter().map(|c| c.user_id.as_str()));
        set_progress(self.ctx, |p| p.users_applied += users);
        Ok(())
    }

    /// Problem rows no batch took (a run with few changes).
    async fn insert_problems(&self, rows: &[ProblemKey]) -> Result<(), String> {
        if rows.is_empty() {
            return Ok(());
        }
        let db_err = |e: sqlx::Error| db_error(&e);
        let mut tx = self.app.db.begin().await.map_err(db_err)?;
        insert_problem_rows(&mut tx, rows, &clock::fmt(clock::now()))
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }
}

fn apply_error(e: &ApiError) -> String {
    tracing::error!(error = ?e.internal, message = %e.body.message, "ldap sync: cannot apply a batch");
    format!("cannot apply a batch of changes: {}", e.body.message)
}

/// Renews this run's lease in `tx`. If heartbeats were missed and another
/// replica took the lease, the batch is not applied and the run stops.
async fn still_ours(tx: &mut crate::db::Tx, app: &AppState, ctx: &RunCtx) -> Result<(), String> {
    let held =
        sqlx::query("UPDATE ldapsync_lease SET expires_at = $1 WHERE id = 1 AND run_id = $2")
            .bind(clock::fmt(clock::now() + lease(app)))
            .bind(&ctx.id)
            .execute(&mut **tx)
            .await
            .map_err(|e| db_error(&e))?
            .rows_affected();
    if held == 1 {
        Ok(())
    } else {
        Err(
            "this run lost its lease (its heartbeats stopped and another run took \
             over); it stopped before its next batch"
                .to_owned(),
        )
    }
}

async fn insert_problem_rows(conn: &mut Conn, rows: &[ProblemKey], now: &str) -> sqlx::Result<()> {
    for (org, user, kind, detail) in rows {
        insert_problem(conn, org.as_deref(), user.as_deref(), kind, detail, now).await?;
    }
    Ok(())
}

/// Adds a change's counts to `stats`; `created_groups` collects the groups it
/// creates (organization, folded name), counted once per run.
fn count_change(stats: &mut Stats, c: &UserChange, created_groups: &mut CreatedGroups) {
    for g in c.plan.groups.values() {
        for a in g.add.iter().filter(|a| a.create) {
            created_groups
                .entry((g.organization_id.clone(), a.name.to_lowercase()))
                .or_insert_with(|| (a.name.clone(), a.reason.clone()));
        }
    }
    stats.users_created += usize::from(c.create);
    stats.users_linked += usize::from(c.link);
    stats.users_updated +=
        usize::from(!c.create && !c.suspend && (c.update_profile || c.plan.has_changes()));
    stats.users_suspended += usize::from(c.suspend);
    stats.users_reactivated += usize::from(c.reactivate);
    let p = &c.plan;
    stats.organizations_joined += p.organizations.add.len();
    stats.organizations_left += p.organizations.remove.len();
    for g in p.groups.values() {
        stats.groups_joined += g.add.len();
        stats.groups_left += g.remove.len();
    }

    stats.roles_changed += p
        .roles
        .values()
        .filter(|r| !r.add.is_empty() || !r.remove.is_empty())
        .count();
    stats.site_roles_changed +=
        usize::from(!p.site_roles.add.is_empty() || !p.site_roles.remove.is_empty());
    stats.memberships_added = stats.organizations_joined + stats.groups_joined;
    stats.memberships_removed = stats.organizations_left + stats.groups_left;
}

/// Why the run would remove too much, if it would.
fn removal_check(
    settings: &LdapSettings,
    stats: &Stats,
    ldap_users: usize,
    ldap_memberships: usize,
) -> Option<String> {
    let limit = settings.max_removal_percent;
    let pct = |n: usize, of: usize| -> f64 {
        if n == 0 {
            0.0
        } else if of == 0 {
            100.0
        } else {
            #[allow(clippy::cast_precision_loss)]
            let p = n as f64 * 100.0 / of as f64;
            p
        }
    };
    let users = pct(stats.users_suspended, ldap_users);
    if users > limit {
        return Some(format!(
            "the run would suspend {} of {} directory users ({users:.1}%), more than max_removal_percent ({limit}%)",
            stats.users_suspended, ldap_users
        ));
    }
    let memberships = pct(stats.memberships_removed, ldap_memberships);
    if memberships > limit {
        return Some(format!(
            "the run would remove {} of {} memberships of directory users ({memberships:.1}%), more than max_removal_percent ({limit}%)",
            stats.memberships_removed, ldap_memberships
        ));
    }
    None
}

/// Active directory-linked users, and their organization + group memberships.
async fn guard_base(conn: &mut Conn) -> sqlx::Result<(usize, usize)> {
    let users = count_linked(
        conn,
        "users x ON x.id = l.user_id AND x.status <> 'suspended'",
    )
    .await?;
    let orgs = count_linked(conn, "organization_members x ON x.user_id = l.user_id").await?;
    let groups = count_linked(conn, "group_members x ON x.user_id = l.user_id").await?;
    Ok((users, orgs + groups))
}

/// Counts the rows of `join` (`table x ON ...`) of directory-linked users.
async fn count_linked(conn: &mut Conn, join: &'static str) -> sqlx::Result<usize> {
    // `join` is one of the constants above: no input reaches the SQL text.
    let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM user_links l JOIN {join} WHERE l.source = $1"
    )))
    .bind(LINK_SOURCE)
    .fetch_one(conn)
    .await?
    .try_get("n")?;
    Ok(usize::try_from(n).unwrap_or(0))
}

async fn last_success_start(conn: &mut Conn) -> sqlx::Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query(
        "SELECT started_at FROM ldapsync_runs WHERE status = 'succeeded' AND dry_run = 0 \
         ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?
    .and_then(|r| r.try_get::<String, _>("started_at").ok())
    .and_then(|s| clock::parse(&s)))
}

/// Every directory link, with digests of its stored claims (not the claims:
/// 100,000 users' group lists would be most of a run's memory).
async fn load_links(conn: &mut Conn, group_keys: &[&str]) -> sqlx::Result<HashMap<String, Link>> {
    use futures_util::TryStreamExt as _;
    let mut out = HashMap::new();
    let mut rows = sqlx::query(
        "SELECT user_id, external_id, claims, suspended_by_sync FROM user_links WHERE source = $1",
    )
    .bind(LINK_SOURCE)
    .fetch(conn);
    while let Some(r) = rows.try_next().await? {
        let text: String = r.try_get("claims")?;
        let claims = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let names: BTreeSet<String> = group_keys
            .iter()
            .filter_map(|k| orgsync_sync::claim_values(&claims, k).ok())
            .flatten()
            .collect();
        out.insert(
            r.try_get("external_id")?,
            Link {
                user_id: r.try_get("user_id")?,
                claims_digest: plan::text_digest(&text),
                groups_digest: ldap::group_names_digest(names.iter().map(String::as_str)),
                suspended_by_sync: r.try_get::<i64, _>("suspended_by_sync")? != 0,
            },
        );
    }
    Ok(out)
}

async fn load_known_users(conn: &mut Conn) -> sqlx::Result<HashMap<String, Known>> {
    let mut out = HashMap::new();
    for r in sqlx::query("SELECT id, username, email, name, status, login_type FROM users")
        .fetch_all(conn)
        .await?
    {
        out.insert(
            r.try_get("id")?,
            Known {
                username: r.try_get("username")?,
                email: r.try_get("email")?,
                name: r.try_get("name")?,
                status: UserStatus::parse(&r.try_get::<String, _>("status")?),
                login_type: crate::model::LoginType::parse(&r.try_get::<String, _>("login_type")?),
            },
        );
    }
    Ok(out)
}

/// Every user's memberships, compact: ids and role names interned, so that
/// the first pass over 100,000 users holds a few bytes per membership. Read
/// with three streamed queries.
#[derive(Default)]
struct States {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
    users: HashMap<Box<str>, CompactState>,
}

#[derive(Default)]
struct CompactState {
    /// (organization, its roles)
    orgs: Vec<(u32, Vec<u32>)>,
    groups: Vec<u32>,
    site_roles: Vec<u32>,
}

impl States {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(s.into());
        self.index.insert(s.into(), i);
        i
    }

    fn user(&mut self, id: &str) -> &mut CompactState {
        if !self.users.contains_key(id) {
            self.users.insert(id.into(), CompactState::default());
        }
        self.users.entry(id.into()).or_default()
    }

    fn name(&self, i: u32) -> String {
        self.names
            .get(i as usize)
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// `user`'s memberships as the planner takes them (empty when unknown).
    fn get(&self, user: &str) -> UserState {
        let mut out = UserState::default();
        if let Some(c) = self.users.get(user) {
            for (org, roles) in &c.orgs {
                let org = self.name(*org);
                out.org_roles
                    .insert(org.clone(), roles.iter().map(|r| self.name(*r)).collect());
                out.orgs.insert(org);
            }
            out.groups = c.groups.iter().map(|g| self.name(*g)).collect();
            out.site_roles = c.site_roles.iter().map(|r| self.name(*r)).collect();
        }
        out
    }

    async fn load(conn: &mut Conn) -> sqlx::Result<States> {
        use futures_util::TryStreamExt as _;
        let mut st = States::default();
        {
            let mut rows =
                sqlx::query("SELECT user_id, organization_id, roles FROM organization_members")
                    .fetch(&mut *conn);
            while let Some(r) = rows.try_next().await? {
                let user: String = r.try_get("user_id")?;
                let org = st.intern(&r.try_get::<String, _>("organization_id")?);
                let roles: Vec<String> =
                    serde_json::from_str(&r.try_get::<String, _>("roles")?).unwrap_or_default();
                let roles = roles.iter().map(|r| st.intern(r)).collect();
                st.user(&user).orgs.push((org, roles));
            }
        }
        {
            let mut rows = sqlx::query(
                "SELECT m.user_id, m.group_id FROM group_members m JOIN groups g ON g.id = m.group_id \
                 WHERE g.id <> g.organization_id",
            )
            .fetch(&mut *conn);
            while let Some(r) = rows.try_next().await? {
                let user: String = r.try_get("user_id")?;
                let group = st.intern(&r.try_get::<String, _>("group_id")?);
                st.user(&user).groups.push(group);
            }
        }
        {
            let mut rows = sqlx::query("SELECT id, roles FROM users").fetch(&mut *conn);
            while let Some(r) = rows.try_next().await? {
                let user: String = r.try_get("id")?;
                let roles: Vec<String> =
                    serde_json::from_str(&r.try_get::<String, _>("roles")?).unwrap_or_default();
                let roles: Vec<u32> = roles
                    .iter()
                    .filter(|r| *r != "member")
                    .map(|r| st.intern(r))
                    .collect();
                st.user(&user).site_roles = roles;
            }
        }
        for c in st.users.values_mut() {
            c.orgs.shrink_to_fit();
            c.groups.shrink_to_fit();
        }
        Ok(st)
    }
}

/// The memberships of `users` (ids), read in the caller's transaction: one
/// query per [`apply::IDS_PER_STATEMENT`] ids. Users without any row get no
/// entry.
async fn load_states<'a>(
    conn: &mut Conn,
    users: impl Iterator<Item = &'a str>,
) -> sqlx::Result<HashMap<String, UserState>> {
    let ids: Vec<&str> = users.collect();
    let mut out: HashMap<String, UserState> = HashMap::new();
    for ids in ids.chunks(apply::IDS_PER_STATEMENT) {
        let marks = apply::placeholders(ids.len());
        // Only placeholders reach the SQL text; each id is bound once and
        // used by the three parts.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 'o' AS kind, user_id, organization_id AS item, roles FROM organization_members \
             WHERE user_id IN ({marks}) \
             UNION ALL SELECT 'g' AS kind, m.user_id, m.group_id AS item, '[]' AS roles \
             FROM group_members m JOIN groups g ON g.id = m.group_id \
             WHERE g.id <> g.organization_id AND m.user_id IN ({marks}) \
             UNION ALL SELECT 's' AS kind, id AS user_id, '' AS item, roles FROM users WHERE id IN ({marks})"
        )));
        for id in ids {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let user: String = r.try_get("user_id")?;
            let kind: String = r.try_get("kind")?;
            let item: String = r.try_get("item")?;
            let roles: Vec<String> =
                serde_json::from_str(&r.try_get::<String, _>("roles")?).unwrap_or_default();
            let s = out.entry(user).or_default();
            match kind.as_str() {
                "o" => {
                    s.org_roles
                        .insert(item.clone(), roles.into_iter().collect());
                    s.orgs.insert(item);
                }
                "g" => {
                    s.groups.insert(item);
                }
                _ => s
                    .site_roles
                    .extend(roles.into_iter().filter(|r| r != "member")),
            }
        }
    }
    Ok(out)
}

type ProblemKey = (Option<String>, Option<String>, String, String);

/// The stored problems of directory runs: key -> row ids.
async fn load_problem_keys(conn: &mut Conn) -> sqlx::Result<HashMap<ProblemKey, Vec<String>>> {
    let mut out: HashMap<ProblemKey, Vec<String>> = HashMap::new();
    for r in sqlx::query(
        "SELECT id, organization_id, user_id, kind, detail FROM idpsync_problems WHERE source = $1",
    )
    .bind(AUDIT_SOURCE)
    .fetch_all(conn)
    .await?
    {
        out.entry((
            r.try_get("organization_id")?,
            r.try_get("user_id")?,
            r.try_get("kind")?,
            r.try_get("detail")?,
        ))
        .or_default()
        .push(r.try_get("id")?);
    }
    Ok(out)
}

/// Deletes stored problems by id (those a full run no longer sees).
async fn delete_problems(conn: &mut Conn, ids: &[String]) -> sqlx::Result<()> {
    for chunk in ids.chunks(apply::IDS_PER_STATEMENT) {
        let marks = apply::placeholders(chunk.len());
        // Only placeholders reach the SQL text.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM idpsync_problems WHERE id IN ({marks})"
        )));
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_problem(
    conn: &mut Conn,
    org: Option<&str>,
    user: Option<&str>,
    kind: &str,
    detail: &str,
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO idpsync_problems (id, organization_id, user_id, source, kind, detail, time) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(store::new_id())
    .bind(org)
    .bind(user)
    .bind(AUDIT_SOURCE)
    .bind(kind)
    .bind(detail)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// A run's problems: all of them for the run record (aggregated, capped), the
/// ones not recorded before for `idpsync_problems`, and the recorded ones it
/// did not meet again (a full run deletes those: the directory or the settings
/// were fixed).
struct ProblemSet {
    /// Stored problems not met (yet) by this run: key -> row ids.
    recorded: HashMap<ProblemKey, Vec<String>>,
    /// Stored problems this run met again.
    met_again: HashSet<ProblemKey>,
    new: Vec<ProblemKey>,
    new_keys: HashSet<ProblemKey>,
    /// (org, kind, detail) -> count, in first-seen order.
    summary: BTreeMap<(Option<String>, String, String), usize>,
    total: usize,
}

impl ProblemSet {
    fn new(recorded: HashMap<ProblemKey, Vec<String>>) -> Self {
        Self {
            recorded,
            met_again: HashSet::new(),
            new: Vec::new(),
            new_keys: HashSet::new(),
            summary: BTreeMap::new(),
            total: 0,
        }
    }

    fn add(&mut self, org: Option<&str>, user: Option<&str>, kind: &str, detail: &str) {
        let key: ProblemKey = (
            org.map(str::to_owned),
            user.map(str::to_owned),
            kind.to_owned(),
            detail.to_owned(),
        );
        *self
            .summary
            .entry((key.0.clone(), key.2.clone(), key.3.clone()))
            .or_default() += 1;
        self.total += 1;
        if self.recorded.remove(&key).is_some() {
            self.met_again.insert(key);
        } else if !self.met_again.contains(&key) && self.new_keys.insert(key.clone()) {
            self.new.push(key);
        }
    }

    /// Row ids of the stored problems this run did not meet.
    fn stale_ids(&self) -> Vec<String> {
        self.recorded.values().flatten().cloned().collect()
    }

    fn len(&self) -> usize {
        self.summary.len()
    }

    fn kept(&self) -> Vec<Value> {
        self.summary
            .iter()
            .take(PROBLEMS_KEEP)
            .map(|((org, kind, detail), n)| {
                json!({"organization_id": org, "kind": kind, "detail": detail, "count": n})
            })
            .collect()
    }

    fn new_rows(&self) -> Vec<ProblemKey> {
        self.new.clone()
    }
}

// ---------------------------------------------------------------------------
// Schedule
// ---------------------------------------------------------------------------

/// Claims each tick of the configured cron schedule; the replica whose insert
/// of the tick's row succeeds runs it. Ends when the app is dropped.
pub async fn scheduler(app: Weak<App>) {
    let mut current: Option<(String, cron::Schedule)> = None;
    let mut next: Option<DateTime<Utc>> = None;
    let mut rounds: u64 = 0;
    loop {
        let wait = next
            .map(|t| (t - clock::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
        let Some(app) = app.upgrade() else {
            return;
        };
        rounds += 1;
        let settings = match app.db.pool().acquire().await {
            Ok(mut conn) => match load_settings(&mut conn).await {
                Ok(s) => s,
                Err(_) => continue,
            },
            Err(_) => continue,
        };
        if !settings.enabled {
            current = None;
            next = None;
            continue;
        }
        if current
            .as_ref()
            .is_none_or(|(expr, _)| *expr != settings.schedule)
        {
            match cron::Schedule::from_str(&settings.schedule) {
                Ok(s) => {
                    next = s.after(&clock::now()).next();
                    current = Some((settings.schedule.clone(), s));
                }
                Err(e) => {
                    tracing::warn!(schedule = %settings.schedule, error = %e, "ldap sync: invalid schedule");
                    current = None;
                    next = None;
                    continue;
                }
            }
        }
        let now = clock::now();
        let Some(tick) = next.filter(|t| *t <= now) else {
            continue;
        };
        next = current.as_ref().and_then(|(_, s)| s.after(&now).next());
        let tick_s = clock::fmt(tick);
        if claim_tick(&app, &tick_s, &clock::fmt(now)).await {
            let req = RunRequest {
                trigger: Trigger::Schedule,
                dry_run: false,
                force: false,
                full: None,
                started_by: None,
                tick: Some(tick_s.clone()),
            };
            match start(&app, req).await {
                Ok(_) | Err(StartError::Disabled) => {}
                Err(StartError::Busy(run)) => {
                    tracing::info!(tick = %tick_s, run = ?run, "ldap sync: scheduled tick skipped, a run is in progress");
                }
                Err(StartError::Db(e)) => {
                    tracing::warn!(tick = %tick_s, error = %e, "ldap sync: cannot start a scheduled run");
                }
            }
        }
        if rounds.is_multiple_of(600)
            && let Ok(mut conn) = app.db.pool().acquire().await
        {
            let _ = sqlx::query("DELETE FROM ldapsync_ticks WHERE tick < $1")
                .bind(clock::fmt(now - chrono::Duration::days(1)))
                .execute(&mut *conn)
                .await;
        }
    }
}

async fn claim_tick(app: &App, tick: &str, now: &str) -> bool {
    let Ok(mut conn) = app.db.pool().acquire().await else {
        return false;
    };
    sqlx::query(
        "INSERT INTO ldapsync_ticks (tick, node, claimed_at) VALUES ($1, $2, $3) ON CONFLICT (tick) DO NOTHING",
    )
    .bind(tick)
    .bind(&app.node_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .is_ok_and(|r| r.rows_affected() == 1)
}
