//! The provisioner job queue.

use serde::Serialize;
use sqlx::Result;

use super::query::{Text, affected, all, execute, optional, scalar, scalars, sql};
use super::{Conn, Write};
use crate::db::Dialect;
use crate::provisioner::{JobStatus, JobType, LogLine, Tags, tags_match};

/// A stored status; an unknown one reads as failed.
impl From<Text> for JobStatus {
    fn from(status: Text) -> JobStatus {
        JobStatus::parse(status.as_str()).unwrap_or(JobStatus::Failed)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct Job {
    pub id: String,
    pub organization_id: String,
    #[serde(rename = "type")]
    #[sqlx(try_from = "Text")]
    pub job_type: JobType,
    pub provisioner: String,
    #[sqlx(try_from = "Text")]
    pub status: JobStatus,
    #[sqlx(try_from = "Text")]
    pub tags: Tags,
    pub initiator_id: String,
    pub worker_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub error: Option<String>,
    /// Why a pending job waits (e.g. no provisioner for its org), when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[sqlx(skip)]
    pub queue_message: Option<String>,
    #[serde(skip)]
    #[sqlx(try_from = "Text")]
    pub input: serde_json::Value,
}

const JOB_COLUMNS: &str = "id, organization_id, job_type, provisioner, status, tags, input, \
    initiator_id, worker_id, created_at, updated_at, started_at, completed_at, error";

pub struct NewJob<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    pub job_type: JobType,
    pub provisioner: &'a str,
    pub tags: &'a Tags,
    pub input: serde_json::Value,
    pub initiator_id: &'a str,
    pub now: &'a str,
}

pub async fn insert(w: &mut Write<'_>, j: &NewJob<'_>) -> Result<()> {
    let sql = "INSERT INTO provisioner_jobs (id, organization_id, job_type, provisioner, status, \
         tags, input, initiator_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $8)";
    let args = (
        j.id,
        j.organization_id,
        j.job_type.as_str(),
        j.provisioner,
        serde_json::to_string(j.tags).unwrap_or_else(|_| "{}".to_owned()),
        j.input.to_string(),
        j.initiator_id,
        j.now,
    );
    execute(w, sql, args).await
}

pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<Job>> {
    optional(
        conn,
        sql!("SELECT {JOB_COLUMNS} FROM provisioner_jobs WHERE id = $1"),
        (id,),
    )
    .await
}

pub async fn list(
    conn: &mut Conn,
    org_id: &str,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Job>> {
    let sql = sql!(
        "SELECT {JOB_COLUMNS} FROM provisioner_jobs \
         WHERE organization_id = $1 AND ($2 IS NULL OR status = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    );
    all(conn, sql, (org_id, status, limit, offset)).await
}

/// Pending jobs per job type: the queue depth (`orgsync_jobs_pending`).
pub async fn pending_by_type(conn: &mut Conn) -> Result<Vec<(String, i64)>> {
    all(
        conn,
        "SELECT job_type, COUNT(*) FROM provisioner_jobs WHERE status = 'pending' \
         GROUP BY job_type",
        (),
    )
    .await
}

/// Claims the oldest pending job of `org_id` that this daemon may run: its
/// provisioner is one the daemon runs and its tags match the daemon's. Runs in
/// the caller's transaction; on PostgreSQL candidate rows are locked with
/// `FOR UPDATE SKIP LOCKED`, so racing daemons never see the same row, and the
/// claim itself is conditional on the job still being pending.
pub async fn claim(
    w: &mut Write<'_>,
    dialect: Dialect,
    org_id: &str,
    provisioners: &[String],
    daemon_tags: &Tags,
    worker_id: &str,
    now: &str,
) -> Result<Option<Job>> {
    const PAGE: i64 = 50;
    let candidates = format!(
        "SELECT id, provisioner, tags FROM provisioner_jobs \
         WHERE organization_id = $1 AND status = 'pending' \
         ORDER BY created_at, id LIMIT $2 OFFSET $3{}",
        dialect.skip_locked()
    );
    let mut offset = 0;
    loop {
        // The locking clause is one of the dialect's constants.
        let sql = sqlx::AssertSqlSafe(candidates.as_str());
        let rows: Vec<(String, String, Text)> = all(w.conn(), sql, (org_id, PAGE, offset)).await?;
        let n = rows.len() as i64;
        for (id, provisioner, tags) in rows {
            if !provisioners.contains(&provisioner) || !tags_match(&tags.json(), daemon_tags) {
                continue;
            }
            let sql = "UPDATE provisioner_jobs SET status = 'running', worker_id = $2, \
                 started_at = $3, heartbeat_at = $3, updated_at = $3 \
                 WHERE id = $1 AND status = 'pending'";
            if affected(w, sql, (&id, worker_id, now)).await? == 1 {
                return get(w.conn(), &id).await;
            }
        }
        if n < PAGE {
            return Ok(None);
        }
        offset += PAGE;
    }
}

/// Records a heartbeat of the job's worker; returns the job's status, or None
/// when the job is not held by this worker any more.
pub async fn heartbeat(
    w: &mut Write<'_>,
    id: &str,
    worker_id: &str,
    now: &str,
) -> Result<Option<JobStatus>> {
    let sql = "UPDATE provisioner_jobs SET heartbeat_at = $3 WHERE id = $1 AND worker_id = $2 \
         AND status IN ('running', 'canceling')";
    execute(w, sql, (id, worker_id, now)).await?;
    let sql = "SELECT status, worker_id FROM provisioner_jobs WHERE id = $1";
    let row: Option<(Text, Option<String>)> = optional(w.conn(), sql, (id,)).await?;
    Ok(row
        .filter(|(_, worker)| worker.as_deref() == Some(worker_id))
        .and_then(|(status, _)| JobStatus::parse(status.as_str())))
}

/// Moves a job held by `worker_id` to a terminal status. Returns false when the
/// job is not running on that worker (already finished, reaped or canceled).
pub async fn finish(
    w: &mut Write<'_>,
    id: &str,
    worker_id: &str,
    status: JobStatus,
    error: Option<&str>,
    now: &str,
) -> Result<bool> {
    let sql = "UPDATE provisioner_jobs SET status = $3, error = $4, completed_at = $5, \
         updated_at = $5 WHERE id = $1 AND worker_id = $2 AND status IN ('running', 'canceling')";
    Ok(affected(w, sql, (id, worker_id, status.as_str(), error, now)).await? == 1)
}

/// Cancels a job: a pending one at once, a running one asks its daemon to stop
/// (`canceling`). Returns the new status, or None when it already finished.
pub async fn cancel(w: &mut Write<'_>, id: &str, now: &str) -> Result<Option<JobStatus>> {
    let pending = "UPDATE provisioner_jobs SET status = 'canceled', \
         error = 'canceled by a user', completed_at = $2, updated_at = $2 \
         WHERE id = $1 AND status = 'pending'";
    if affected(w, pending, (id, now)).await? == 1 {
        return Ok(Some(JobStatus::Canceled));
    }
    let running = "UPDATE provisioner_jobs SET status = 'canceling', updated_at = $2 \
         WHERE id = $1 AND status = 'running'";
    Ok((affected(w, running, (id, now)).await? == 1).then_some(JobStatus::Canceling))
}

/// Fails the running jobs of `column` = `value` (a job, or a worker's jobs).
async fn fail_running(
    w: &mut Write<'_>,
    column: &'static str,
    value: &str,
    error: &str,
    now: &str,
) -> Result<()> {
    // `column` is a constant of this file: no input reaches the SQL text.
    let sql = sql!(
        "UPDATE provisioner_jobs SET status = 'failed', error = $2, completed_at = $3, \
         updated_at = $3 WHERE {column} = $1 AND status IN ('running', 'canceling')"
    );
    execute(w, sql, (value, error, now)).await
}

/// Fails running jobs whose daemon stopped heartbeating before `cutoff`.
/// Returns the ids failed.
pub async fn reap(
    w: &mut Write<'_>,
    cutoff: &str,
    timeout_secs: u64,
    now: &str,
) -> Result<Vec<String>> {
    let sql = "SELECT id FROM provisioner_jobs \
         WHERE status IN ('running', 'canceling') AND heartbeat_at < $1";
    let ids: Vec<String> = scalars(w.conn(), sql, (cutoff,)).await?;
    let message = format!(
        "the provisioner daemon running this job stopped sending heartbeats for {timeout_secs} s; \
         the job was failed (the daemon may have crashed or lost its connection)"
    );
    for id in &ids {
        fail_running(w, "id", id, &message, now).await?;
    }
    Ok(ids)
}

/// Fails the running jobs of the given workers (their key was deleted).
pub async fn fail_for_workers(
    w: &mut Write<'_>,
    workers: &[String],
    error: &str,
    now: &str,
) -> Result<()> {
    for worker in workers {
        fail_running(w, "worker_id", worker, error, now).await?;
    }
    Ok(())
}

pub async fn append_logs(
    w: &mut Write<'_>,
    job_id: &str,
    lines: &[LogLine],
    now: &str,
) -> Result<()> {
    let sql = "SELECT COALESCE(MAX(seq), 0) FROM provisioner_job_logs WHERE job_id = $1";
    let next: i64 = scalar(w.conn(), sql, (job_id,)).await?;
    let sql = "INSERT INTO provisioner_job_logs (job_id, seq, time, stage, level, output) \
         VALUES ($1, $2, $3, $4, $5, $6)";
    for (i, l) in lines.iter().enumerate() {
        let args = (
            job_id,
            next + 1 + i as i64,
            now,
            &l.stage,
            &l.level,
            &l.output,
        );
        execute(w, sql, args).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct LogEntry {
    #[sqlx(rename = "seq")]
    pub id: i64,
    pub time: String,
    pub stage: String,
    pub level: String,
    pub output: String,
}

pub async fn logs(conn: &mut Conn, job_id: &str, after: i64, limit: i64) -> Result<Vec<LogEntry>> {
    let sql = "SELECT seq, time, stage, level, output FROM provisioner_job_logs \
         WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
    all(conn, sql, (job_id, after, limit)).await
}
