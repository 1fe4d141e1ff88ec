//! Directory sync runs (`ldapsync_runs`), the one lease row
//! (`ldapsync_lease`, id 1) that makes runs one at a time across replicas,
//! the claimed schedule ticks (`ldapsync_ticks`), and what the next run
//! compares with (the last successful runs' start and settings fingerprint).

use serde_json::Value;
use sqlx::Row;

use super::Conn;
use crate::ldapsync::{Run, RunStatus};

const RUN_COLUMNS: &str = "id, started_at, finished_at, status, trigger, tick, dry_run, forced, \
    full_sync, started_by, node, heartbeat_at, stats, progress, error, problems";

fn run_from_row(r: &sqlx::any::AnyRow, with_plan: bool) -> sqlx::Result<Run> {
    let json = |col: &str| -> sqlx::Result<Value> {
        let raw: String = r.try_get(col)?;
        Ok(serde_json::from_str(&raw).unwrap_or(Value::Null))
    };
    let status: String = r.try_get("status")?;
    Ok(Run {
        id: r.try_get("id")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        status: RunStatus::parse(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "status".to_owned(),
            source: format!("unknown run status `{status}`").into(),
        })?,
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

/// A run with its plan.
pub async fn get(conn: &mut Conn, id: &str) -> sqlx::Result<Option<Run>> {
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

/// Runs newest first (without their plans), and how many there are.
pub async fn list(conn: &mut Conn, limit: i64, offset: i64) -> sqlx::Result<(Vec<Run>, i64)> {
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

pub async fn insert(conn: &mut Conn, r: &NewRun<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO ldapsync_runs (id, started_at, status, trigger, tick, dry_run, forced, full_sync, \
         started_by, node, stats, progress, problems, heartbeat_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '{}', $11, '[]', $2)",
    )
    .bind(r.id)
    .bind(r.started_at)
    .bind(RunStatus::Running.as_str())
    .bind(r.trigger)
    .bind(r.tick)
    .bind(i64::from(r.dry_run))
    .bind(i64::from(r.force))
    .bind(i64::from(r.full))
    .bind(r.started_by)
    .bind(r.node)
    .bind(r.progress)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Marks every run still `running` as failed with `error` (their replica
/// stopped: the lease they held expired).
pub async fn fail_running(conn: &mut Conn, now: &str, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE ldapsync_runs SET status = $1, finished_at = $2, error = $3 WHERE status = $4",
    )
    .bind(RunStatus::Failed.as_str())
    .bind(now)
    .bind(error)
    .bind(RunStatus::Running.as_str())
    .execute(conn)
    .await
    .map(|_| ())
}

/// Publishes a running run's progress (JSON text) and sign of life.
pub async fn heartbeat(conn: &mut Conn, id: &str, progress: &str, now: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE ldapsync_runs SET progress = $1, heartbeat_at = $2 WHERE id = $3 AND status = $4",
    )
    .bind(progress)
    .bind(now)
    .bind(id)
    .bind(RunStatus::Running.as_str())
    .execute(conn)
    .await
    .map(|_| ())
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
pub async fn finish(conn: &mut Conn, id: &str, f: &Finished<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE ldapsync_runs SET status = $1, finished_at = $2, stats = $3, progress = $4, error = $5, \
         problems = $6, plan = $7, heartbeat_at = $2 WHERE id = $8 AND status = $9",
    )
    .bind(f.status.as_str())
    .bind(f.finished_at)
    .bind(f.stats)
    .bind(f.progress)
    .bind(f.error)
    .bind(f.problems)
    .bind(f.plan)
    .bind(id)
    .bind(RunStatus::Running.as_str())
    .execute(conn)
    .await
    .map(|_| ())
}

/// The start of the newest successful run that wrote (not a dry run); only a
/// full one when `full_only`.
pub async fn last_success_start(conn: &mut Conn, full_only: bool) -> sqlx::Result<Option<String>> {
    let sql = if full_only {
        "SELECT started_at FROM ldapsync_runs WHERE status = $1 AND dry_run = 0 AND full_sync = 1 \
         ORDER BY started_at DESC LIMIT 1"
    } else {
        "SELECT started_at FROM ldapsync_runs WHERE status = $1 AND dry_run = 0 \
         ORDER BY started_at DESC LIMIT 1"
    };
    sqlx::query(sql)
        .bind(RunStatus::Succeeded.as_str())
        .fetch_optional(conn)
        .await?
        .map(|r| r.try_get("started_at"))
        .transpose()
}

/// The stats (JSON text) of the newest successful run that wrote.
pub async fn last_success_stats(conn: &mut Conn) -> sqlx::Result<Option<String>> {
    sqlx::query(
        "SELECT stats FROM ldapsync_runs WHERE status = $1 AND dry_run = 0 \
         ORDER BY started_at DESC LIMIT 1",
    )
    .bind(RunStatus::Succeeded.as_str())
    .fetch_optional(conn)
    .await?
    .map(|r| r.try_get("stats"))
    .transpose()
}

// ---- The lease ----

/// Takes the lease for `run_id` if it is free or expired at `now`; false
/// when another run holds it.
pub async fn take_lease(
    conn: &mut Conn,
    run_id: &str,
    node: &str,
    expires_at: &str,
    now: &str,
) -> sqlx::Result<bool> {
    let taken = sqlx::query(
        "UPDATE ldapsync_lease SET run_id = $1, node = $2, expires_at = $3 \
         WHERE id = 1 AND (run_id IS NULL OR expires_at < $4)",
    )
    .bind(run_id)
    .bind(node)
    .bind(expires_at)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(taken == 1)
}

/// The run holding the lease, if any.
pub async fn lease_holder(conn: &mut Conn) -> sqlx::Result<Option<String>> {
    Ok(
        sqlx::query("SELECT run_id FROM ldapsync_lease WHERE id = 1")
            .fetch_optional(conn)
            .await?
            .and_then(|r| r.try_get("run_id").ok()),
    )
}

/// Extends `run_id`'s lease to `expires_at`; false when the run no longer
/// holds it.
pub async fn renew_lease(conn: &mut Conn, run_id: &str, expires_at: &str) -> sqlx::Result<bool> {
    let held =
        sqlx::query("UPDATE ldapsync_lease SET expires_at = $1 WHERE id = 1 AND run_id = $2")
            .bind(expires_at)
            .bind(run_id)
            .execute(conn)
            .await?
            .rows_affected();
    Ok(held == 1)
}

/// Frees the lease if `run_id` holds it.
pub async fn release_lease(conn: &mut Conn, run_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE ldapsync_lease SET run_id = NULL, node = NULL, expires_at = NULL WHERE id = 1 AND run_id = $1",
    )
    .bind(run_id)
    .execute(conn)
    .await
    .map(|_| ())
}

// ---- Schedule ticks ----

/// Claims a tick for `node`: true when this insert made the claim.
pub async fn claim_tick(conn: &mut Conn, tick: &str, node: &str, now: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO ldapsync_ticks (tick, node, claimed_at) VALUES ($1, $2, $3) ON CONFLICT (tick) DO NOTHING",
    )
    .bind(tick)
    .bind(node)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Forgets the ticks before `before`.
pub async fn delete_ticks_before(conn: &mut Conn, before: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM ldapsync_ticks WHERE tick < $1")
        .bind(before)
        .execute(conn)
        .await
        .map(|_| ())
}
