//! The run lifecycle: start (lease, the `running` record), the heartbeat
//! that renews the lease and publishes progress, the lease check before each
//! commit, and the recorded end whatever happens (a panic included). Runs are
//! one at a time across replicas: the lease row is taken by a conditional
//! update, and a run whose replica stops sending heartbeats loses it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use orgsync_sync::ldap::{LdapError, LdapSettings};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::execute::execute;
use super::{DirectorySync, RunRequest, settings};
use crate::clock;
use crate::error::{ApiError, Error};
use crate::store::{self, Write, directory_runs};

/// How often a running run renews its lease and publishes its progress.
const HEARTBEAT: Duration = Duration::from_millis(200);

/// What a run's record says of it (stored and served as these strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Stopped by the removal guard before changing anything.
    Aborted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Aborted => "aborted",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "aborted" => RunStatus::Aborted,
            _ => return None,
        })
    }
}

/// Why a run failed. The message is what the run's record shows; causes
/// that are internal (database, apply) are logged, not shown.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The server stopped: the batch in flight rolled back with its
    /// transaction.
    #[error("the server stopped during the run; the next run converges")]
    Stopped,
    /// Heartbeats were missed and another run took the lease.
    #[error(
        "this run lost its lease (its heartbeats stopped and another run took over); it stopped before its next batch"
    )]
    LeaseLost,
    #[error("database error while syncing (see the server log)")]
    Db(#[from] sqlx::Error),
    /// Any non-success LDAP result: nothing was written.
    #[error(transparent)]
    Directory(#[from] LdapError),
    #[error("the default organization is missing")]
    NoDefaultOrg,
    #[error("cannot apply a batch of changes: {}", .0.body.message)]
    Apply(ApiError),
    /// A batch panicked while holding the run's counts.
    #[error("internal error while applying")]
    Poisoned,
    /// The run's task panicked.
    #[error("internal error while running the sync (see the server log)")]
    Panicked,
}

impl RunError {
    /// Logs what the record does not show.
    fn log(&self, run: &str) {
        match self {
            RunError::Db(e) => tracing::error!(run, error = %e, "ldap sync: database error"),
            RunError::Apply(e) => {
                tracing::error!(run, error = ?e.internal, message = %e.body.message, "ldap sync: cannot apply a batch");
            }
            _ => {}
        }
    }
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// LDAP sync is off (manual runs only; the schedule just waits).
    #[error("ldap sync is not enabled")]
    Disabled,
    /// Another run holds the lease.
    #[error("an ldap sync run is already in progress")]
    Busy(Option<String>),
    #[error("database error")]
    Db(#[from] sqlx::Error),
}

impl From<Error> for StartError {
    /// A run's records are written on the sync's own authority, which is
    /// never refused: what fails there is the database.
    fn from(e: Error) -> Self {
        StartError::Db(sqlx::Error::Protocol(e.internal.unwrap_or(e.body.message)))
    }
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
    /// What the run planned with (see `settings::fingerprint`): an
    /// incremental run is only right when nothing of it changed since.
    pub settings_fingerprint: String,
}

impl Stats {
    /// Zeroes what [`super::execute::count_change`] counts (the second pass
    /// counts again what it applies).
    pub(super) fn clear_changes(&mut self) {
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
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Run {
    pub id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    #[sqlx(try_from = "crate::store::Text")]
    pub status: RunStatus,
    pub trigger: String,
    #[sqlx(try_from = "crate::store::Flag")]
    pub dry_run: bool,
    #[sqlx(rename = "forced", try_from = "crate::store::Flag")]
    pub force: bool,
    #[sqlx(rename = "full_sync", try_from = "crate::store::Flag")]
    pub full: bool,
    pub started_by: Option<String>,
    pub tick: Option<String>,
    /// The replica (process) that ran it.
    pub node: String,
    /// The last sign of life of a running run.
    pub heartbeat_at: Option<String>,
    #[sqlx(try_from = "crate::store::Text")]
    pub stats: Value,
    #[sqlx(try_from = "crate::store::Text")]
    pub progress: Value,
    pub error: Option<String>,
    #[sqlx(try_from = "crate::store::Text")]
    pub problems: Value,
    /// Read only with a single run ([`crate::store::directory_runs::get`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[sqlx(default, try_from = "crate::store::Text")]
    pub plan: Option<Value>,
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
        if self.status == RunStatus::Running && silent_for.is_some_and(|d| d > lease) {
            self.status = RunStatus::Failed;
            self.error = Some(format!(
                "the replica running it stopped sending heartbeats (last at {}); the next run converges",
                self.heartbeat_at.as_deref().unwrap_or("?")
            ));
        }
    }
}

/// A run in progress, shared by its body and its heartbeat.
pub(super) struct RunCtx {
    pub id: String,
    pub started: DateTime<Utc>,
    pub dry_run: bool,
    pub force: bool,
    pub full: bool,
    pub fingerprint: String,
    pub progress: Arc<Mutex<Progress>>,
}

impl RunCtx {
    pub fn set_progress(&self, f: impl FnOnce(&mut Progress)) {
        if let Ok(mut p) = self.progress.lock() {
            f(&mut p);
        }
    }

    fn progress(&self) -> Progress {
        self.progress.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// The end of a run that was not a failure.
pub(super) struct Outcome {
    pub status: RunStatus,
    pub stats: Stats,
    pub error: Option<String>,
    pub problems: Vec<Value>,
    pub plan: Option<Value>,
}

impl Outcome {
    fn failed(e: &RunError) -> Outcome {
        Outcome {
            status: RunStatus::Failed,
            stats: Stats::default(),
            error: Some(e.to_string()),
            problems: Vec::new(),
            plan: None,
        }
    }
}

impl DirectorySync {
    /// Starts a run in the background: takes the lease, records the run as
    /// `running`, and returns it. The run itself goes on in a spawned task.
    pub async fn start(&self, req: RunRequest, now: DateTime<Utc>) -> Result<Run, StartError> {
        let settings = self.settings().await?;
        if !settings.enabled {
            return Err(StartError::Disabled);
        }
        let now_s = clock::fmt(now);
        let id = store::new_id();
        let (fingerprint, full) = {
            let mut conn = self.db.pool().acquire().await?;
            let fingerprint = settings::fingerprint(&mut conn, &settings).await?;
            let full = match req.full {
                Some(f) => f,
                None => {
                    settings::full_run_due(&mut conn, &settings, now).await?
                        || settings::last_fingerprint(&mut conn).await?.as_deref()
                            != Some(fingerprint.as_str())
                }
            };
            (fingerprint, full)
        };
        let progress = Progress {
            phase: "reading".to_owned(),
            ..Progress::default()
        };
        let (mut work, permit) = self.records(now).await?;
        let expires = clock::fmt(now + self.lease());
        let mut w = work.write(&permit)?;
        if !directory_runs::take_lease(&mut w, &id, &self.node_id, &expires, &now_s).await? {
            return Err(StartError::Busy(
                directory_runs::lease_holder(w.conn()).await?,
            ));
        }
        // A run still marked running lost its replica (its lease expired).
        directory_runs::fail_running(
            &mut w,
            &now_s,
            "the replica running it stopped before it finished (no heartbeat); the next run converges",
        )
        .await?;
        directory_runs::insert(
            &mut w,
            &directory_runs::NewRun {
                id: &id,
                started_at: &now_s,
                trigger: req.trigger.as_str(),
                tick: req.tick.as_deref(),
                dry_run: req.dry_run,
                force: req.force,
                full,
                started_by: req.started_by.as_deref(),
                node: &self.node_id,
                progress: &json!(progress).to_string(),
            },
        )
        .await?;
        work.commit().await?;
        tracing::info!(run = %id, trigger = req.trigger.as_str(), dry_run = req.dry_run, full, "ldap sync run started");

        let ctx = RunCtx {
            id: id.clone(),
            started: now,
            dry_run: req.dry_run,
            force: req.force,
            full,
            fingerprint,
            progress: Arc::new(Mutex::new(progress)),
        };
        // Read back before the run starts, so the answer shows it `running` even
        // when it ends at once; the run starts whatever the read gives.
        let started = match self.db.pool().acquire().await {
            Ok(mut conn) => directory_runs::get(&mut conn, &id).await,
            Err(e) => Err(e),
        };
        let this = self.clone();
        tokio::spawn(async move { this.supervise(settings, ctx).await });
        started?.ok_or(StartError::Db(sqlx::Error::RowNotFound))
    }

    pub(super) fn lease(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.limits.lease_seconds).unwrap_or(30))
    }

    /// Runs `execute` with a heartbeat (lease renewal + progress) beside it,
    /// and records the outcome whatever happens (a panic included).
    async fn supervise(self, settings: LdapSettings, ctx: RunCtx) {
        let ctx = Arc::new(ctx);
        let beat = {
            let this = self.clone();
            let ctx = ctx.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(HEARTBEAT).await;
                    this.heartbeat(&ctx, clock::now()).await;
                }
            })
        };
        let mut work = {
            let this = self.clone();
            let ctx = ctx.clone();
            tokio::spawn(async move { execute(&this, &settings, &ctx).await })
        };
        let joined = tokio::select! {
            r = &mut work => r,
            () = self.shutdown.cancelled() => {
                // The server stops: the batch in flight rolls back with its
                // transaction; the run is recorded as failed and the lease freed.
                work.abort();
                Ok(Err(RunError::Stopped))
            }
        };
        let outcome = match joined {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                e.log(&ctx.id);
                Outcome::failed(&e)
            }
            Err(_) => Outcome::failed(&RunError::Panicked),
        };
        beat.abort();
        if let Err(e) = self.finish(&ctx, outcome, clock::now()).await {
            tracing::error!(run = %ctx.id, error = ?e, "cannot record the end of an ldap sync run");
        }
    }

    /// Renews the lease and publishes the progress; errors wait for the next
    /// beat.
    async fn heartbeat(&self, ctx: &RunCtx, now: DateTime<Utc>) {
        let progress = json!(ctx.progress()).to_string();
        let Ok((mut work, permit)) = self.records(now).await else {
            return;
        };
        let Ok(mut w) = work.write(&permit) else {
            return;
        };
        let expires = clock::fmt(now + self.lease());
        // A lost lease still publishes the progress.
        let _ = directory_runs::renew_lease(&mut w, &ctx.id, &expires).await;
        let _ = directory_runs::heartbeat(&mut w, &ctx.id, &progress, &clock::fmt(now)).await;
        let _ = work.commit().await;
    }

    /// Renews this run's lease in the batch's transaction. If heartbeats were
    /// missed and another replica took the lease, the batch is not applied and
    /// the run stops.
    pub(super) async fn still_ours(
        &self,
        w: &mut Write<'_>,
        ctx: &RunCtx,
        now: DateTime<Utc>,
    ) -> Result<(), RunError> {
        if directory_runs::renew_lease(w, &ctx.id, &clock::fmt(now + self.lease())).await? {
            Ok(())
        } else {
            Err(RunError::LeaseLost)
        }
    }

    async fn finish(
        &self,
        ctx: &RunCtx,
        mut outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if outcome.stats.settings_fingerprint.is_empty() {
            outcome
                .stats
                .settings_fingerprint
                .clone_from(&ctx.fingerprint);
        }
        outcome.stats.duration_ms =
            u64::try_from((now - ctx.started).num_milliseconds()).unwrap_or(0);
        let mut progress = ctx.progress();
        progress.phase = "done".to_owned();
        let (mut work, permit) = self.records(now).await?;
        let mut w = work.write(&permit)?;
        directory_runs::finish(
            &mut w,
            &ctx.id,
            &directory_runs::Finished {
                status: outcome.status,
                finished_at: &clock::fmt(now),
                stats: &json!(outcome.stats).to_string(),
                progress: &json!(progress).to_string(),
                error: outcome.error.as_deref(),
                problems: &Value::Array(outcome.problems).to_string(),
                plan: outcome.plan.map(|p| p.to_string()).as_deref(),
            },
        )
        .await?;
        directory_runs::release_lease(&mut w, &ctx.id).await?;
        work.commit().await?;
        crate::metrics::directory_run(
            outcome.status.as_str(),
            std::time::Duration::from_millis(outcome.stats.duration_ms),
        );
        match outcome.status {
            RunStatus::Succeeded => {
                tracing::info!(run = %ctx.id, stats = ?outcome.stats, "ldap sync run succeeded")
            }
            status => {
                tracing::warn!(run = %ctx.id, status = status.as_str(), error = outcome.error.as_deref().unwrap_or(""), "ldap sync run did not succeed")
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn statuses_are_stored_and_served_as_the_same_strings() {
        for (status, text) in [
            (RunStatus::Running, "running"),
            (RunStatus::Succeeded, "succeeded"),
            (RunStatus::Failed, "failed"),
            (RunStatus::Aborted, "aborted"),
        ] {
            assert_eq!(status.as_str(), text);
            assert_eq!(RunStatus::parse(text), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), json!(text));
        }
        assert_eq!(RunStatus::parse("done"), None);
    }

    #[test]
    fn run_errors_say_what_the_record_shows() {
        assert_eq!(
            RunError::Stopped.to_string(),
            "the server stopped during the run; the next run converges"
        );
        assert_eq!(
            RunError::Db(sqlx::Error::RowNotFound).to_string(),
            "database error while syncing (see the server log)"
        );
        assert_eq!(
            RunError::Apply(ApiError::bad_request("no")).to_string(),
            "cannot apply a batch of changes: no"
        );
    }

    #[test]
    fn a_running_run_without_heartbeats_settles_as_failed() {
        let now = clock::parse("2026-01-01T00:01:00Z").unwrap();
        let mut run = Run {
            id: "r".to_owned(),
            started_at: "2026-01-01T00:00:00.000000Z".to_owned(),
            finished_at: None,
            status: RunStatus::Running,
            trigger: "manual".to_owned(),
            dry_run: false,
            force: false,
            full: true,
            started_by: None,
            tick: None,
            node: "n".to_owned(),
            heartbeat_at: Some("2026-01-01T00:00:10.000000Z".to_owned()),
            stats: json!({}),
            progress: json!({}),
            error: None,
            problems: json!([]),
            plan: None,
        };
        run.settle(now, 60);
        assert_eq!(run.status, RunStatus::Running);
        run.settle(now, 30);
        assert_eq!(run.status, RunStatus::Failed);
        assert!(run.error.unwrap().contains("stopped sending heartbeats"));
    }
}
