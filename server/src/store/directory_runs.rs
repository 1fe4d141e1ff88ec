//! Directory sync runs (`ldapsync_runs`), the one lease row
//! (`ldapsync_lease`, id 1) that makes runs one at a time across replicas,
//! the claimed schedule ticks (`ldapsync_ticks`), and what the next run
//! compares with (the last successful runs' start and settings fingerprint).

use sqlx::Result;

use super::query::{Text, affected, execute, optional, page, scalar_optional, sql};
use super::{Conn, Write};
use crate::db::flag;
use crate::ldapsync::{Run, RunStatus};

const RUN_COLUMNS: &str = "id, started_at, finished_at, status, trigger, tick, dry_run, forced, \
    full_sync, started_by, node, heartbeat_at, stats, progress, error, problems";

impl TryFrom<Text> for RunStatus {
    type Error = String;

    fn try_from(status: Text) -> Result<RunStatus, String> {
        RunStatus::parse(status.as_str())
            .ok_or_else(|| format!("unknown run status `{}`", status.as_str()))
    }
}

/// A run with its plan.
pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<Run>> {
    let sql = sql!("SELECT {RUN_COLUMNS}, plan FROM ldapsync_runs WHERE id = $1");
    optional(conn, sql, (id,)).await
}

/// Runs newest first (without their plans), and how many there are.
pub async fn list(conn: &mut Conn, limit: i64, offset: i64) -> Result<(Vec<Run>, i64)> {
    let order = "started_at DESC, id DESC";
    page(
        conn,
        RUN_COLUMNS,
        "ldapsync_runs",
        order,
        (),
        (limit, offset),
    )
    .await
}

/// A run as recorded when it starts (status `running`).
pub struct NewRun<'a> {
    pub id: &'a str,
    pub started_at: &'a str,
    pub trigger: &'a str,
    pub tick: Option<&'a str>,
    pub dry_run: bool,
    pub force: bool,
    pub full: bool,
    pub started_by: Option<&'a str>,
    pub node: &'a str,
    /// JSON text.
    pub progress: &'a str,
}

pub async fn insert(w: &mut Write<'_>, r: &NewRun<'_>) -> Result<()> {
    let sql = "INSERT INTO ldapsync_runs (id, started_at, status, trigger, tick, dry_run, forced, \
         full_sync, started_by, node, stats, progress, problems, heartbeat_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '{}', $11, '[]', $2)";
    let args = (
        r.id,
        r.started_at,
        RunStatus::Running.as_str(),
        r.trigger,
        r.tick,
        flag(r.dry_run),
        flag(r.force),
        flag(r.full),
        r.started_by,
        r.node,
        r.progress,
    );
    execute(w, sql, args).await
}

/// Marks every run still `running` as failed with `error` (their replica
/// stopped: the lease they held expired).
pub async fn fail_running(w: &mut Write<'_>, now: &str, error: &str) -> Result<()> {
    let sql =
        "UPDATE ldapsync_runs SET status = $1, finished_at = $2, error = $3 WHERE status = $4";
    let args = (
        RunStatus::Failed.as_str(),
        now,
        error,
        RunStatus::Running.as_str(),
    );
    execute(w, sql, args).await
}

/// Publishes a running run's progress (JSON text) and sign of life.
pub async fn heartbeat(w: &mut Write<'_>, id: &str, progress: &str, now: &str) -> Result<()> {
    let sql = "UPDATE ldapsync_runs SET progress = $1, heartbeat_at = $2 \
         WHERE id = $3 AND status = $4";
    let args = (progress, now, id, RunStatus::Running.as_str());
    execute(w, sql, args).await
}

/// The end of a run, as recorded.
pub struct Finished<'a> {
    pub status: RunStatus,
    pub finished_at: &'a str,
    /// JSON text of the stats, the progress and the problems.
    pub stats: &'a str,
    pub progress: &'a str,
    pub error: Option<&'a str>,
    pub problems: &'a str,
    pub plan: Option<&'a str>,
}

/// Records the end of a run still `running`.
pub async fn finish(w: &mut Write<'_>, id: &str, f: &Finished<'_>) -> Result<()> {
    let sql = "UPDATE ldapsync_runs SET status = $1, finished_at = $2, stats = $3, progress = $4, \
         error = $5, problems = $6, plan = $7, heartbeat_at = $2 WHERE id = $8 AND status = $9";
    let running = RunStatus::Running.as_str();
    let args = (
        f.status.as_str(),
        f.finished_at,
        f.stats,
        f.progress,
        f.error,
        f.problems,
        f.plan,
        id,
        running,
    );
    execute(w, sql, args).await
}

/// The start of the newest successful run that wrote (not a dry run); only a
/// full one when `full_only`.
pub async fn last_success_start(conn: &mut Conn, full_only: bool) -> Result<Option<String>> {
    let sql = "SELECT started_at FROM ldapsync_runs WHERE status = $1 AND dry_run = 0 \
         AND ($2 = 0 OR full_sync = 1) ORDER BY started_at DESC LIMIT 1";
    let args = (RunStatus::Succeeded.as_str(), flag(full_only));
    scalar_optional(conn, sql, args).await
}

/// The stats (JSON text) of the newest successful run that wrote.
pub async fn last_success_stats(conn: &mut Conn) -> Result<Option<String>> {
    let sql = "SELECT stats FROM ldapsync_runs WHERE status = $1 AND dry_run = 0 \
         ORDER BY started_at DESC LIMIT 1";
    scalar_optional(conn, sql, (RunStatus::Succeeded.as_str(),)).await
}

// ---- The lease ----

/// Takes the lease for `run_id` if it is free or expired at `now`; false
/// when another run holds it.
pub async fn take_lease(
    w: &mut Write<'_>,
    run_id: &str,
    node: &str,
    expires_at: &str,
    now: &str,
) -> Result<bool> {
    let sql = "UPDATE ldapsync_lease SET run_id = $1, node = $2, expires_at = $3 \
         WHERE id = 1 AND (run_id IS NULL OR expires_at < $4)";
    Ok(affected(w, sql, (run_id, node, expires_at, now)).await? == 1)
}

/// The run holding the lease, if any.
pub async fn lease_holder(conn: &mut Conn) -> Result<Option<String>> {
    let holder: Option<Option<String>> =
        scalar_optional(conn, "SELECT run_id FROM ldapsync_lease WHERE id = 1", ()).await?;
    Ok(holder.flatten())
}

/// Extends `run_id`'s lease to `expires_at`; false when the run no longer
/// holds it.
pub async fn renew_lease(w: &mut Write<'_>, run_id: &str, expires_at: &str) -> Result<bool> {
    let sql = "UPDATE ldapsync_lease SET expires_at = $1 WHERE id = 1 AND run_id = $2";
    Ok(affected(w, sql, (expires_at, run_id)).await? == 1)
}

/// Frees the lease if `run_id` holds it.
pub async fn release_lease(w: &mut Write<'_>, run_id: &str) -> Result<()> {
    let sql = "UPDATE ldapsync_lease SET run_id = NULL, node = NULL, expires_at = NULL \
         WHERE id = 1 AND run_id = $1";
    execute(w, sql, (run_id,)).await
}

// ---- Schedule ticks ----

/// Claims a tick for `node`: true when this insert made the claim.
pub async fn claim_tick(w: &mut Write<'_>, tick: &str, node: &str, now: &str) -> Result<bool> {
    let sql = "INSERT INTO ldapsync_ticks (tick, node, claimed_at) VALUES ($1, $2, $3) \
         ON CONFLICT (tick) DO NOTHING";
    Ok(affected(w, sql, (tick, node, now)).await? == 1)
}

/// Forgets the ticks before `before`.
pub async fn delete_ticks_before(w: &mut Write<'_>, before: &str) -> Result<()> {
    let sql = "DELETE FROM ldapsync_ticks WHERE tick < $1";
    execute(w, sql, (before,)).await
}
