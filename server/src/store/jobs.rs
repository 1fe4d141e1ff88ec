//! The provisioner job queue.

use serde::Serialize;
use sqlx::Row;

use super::Conn;
use crate::db::Dialect;
use crate::provisioner::{JobStatus, JobType, LogLine, Tags, tags_match};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub organization_id: String,
    #[serde(rename = "type")]
    pub job_type: JobType,
    pub provisioner: String,
    pub status: JobStatus,
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
    pub queue_message: Option<String>,
    #[serde(skip)]
    pub input: serde_json::Value,
}

const JOB_COLUMNS: &str = "id, organization_id, job_type, provisioner, status, tags, input, initiator_id, \
    worker_id, created_at, updated_at, started_at, completed_at, error";

fn job_from_row(r: &sqlx::any::AnyRow) -> sqlx::Result<Job> {
    let status: String = r.try_get("status")?;
    Ok(Job {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        job_type: JobType::parse(&r.try_get::<String, _>("job_type")?),
        provisioner: r.try_get("provisioner")?,
        status: JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
        tags: serde_json::from_str(&r.try_get::<String, _>("tags")?).unwrap_or_default(),
        input: serde_json::from_str(&r.try_get::<String, _>("input")?).unwrap_or_default(),
        initiator_id: r.try_get("initiator_id")?,
        worker_id: r.try_get("worker_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        started_at: r.try_get("started_at")?,
        completed_at: r.try_get("completed_at")?,
        error: r.try_get("error")?,
        queue_message: None,
    })
}

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

pub async fn insert(conn: &mut Conn, j: &NewJob<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO provisioner_jobs (id, organization_id, job_type, provisioner, status, tags, input, \
         initiator_id, created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $8)",
    )
    .bind(j.id)
    .bind(j.organization_id)
    .bind(j.job_type.as_str())
    .bind(j.provisioner)
    .bind(serde_json::to_string(j.tags).unwrap_or_else(|_| "{}".to_owned()))
    .bind(j.input.to_string())
    .bind(j.initiator_id)
    .bind(j.now)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn get(conn: &mut Conn, id: &str) -> sqlx::Result<Option<Job>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {JOB_COLUMNS} FROM provisioner_jobs WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(job_from_row).transpose()
}

pub async fn list(
    conn: &mut Conn,
    org_id: &str,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Job>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {JOB_COLUMNS} FROM provisioner_jobs WHERE organization_id = $1 AND ($2 IS NULL OR status = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    )))
    .bind(org_id)
    .bind(status)
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?;
    rows.iter().map(job_from_row).collect()
}

/// Claims the oldest pending job of `org_id` that this daemon may run: its
/// provisioner is one the daemon runs and its tags match the daemon's. Runs in
/// the caller's transaction; on PostgreSQL candidate rows are locked with
/// `FOR UPDATE SKIP LOCKED`, so racing daemons never see the same row, and the
/// claim itself is conditional on the job still being pending.
pub async fn claim(
    conn: &mut Conn,
    dialect: Dialect,
    org_id: &str,
    provisioners: &[String],
    daemon_tags: &Tags,
    worker_id: &str,
    now: &str,
) -> sqlx::Result<Option<Job>> {
    const PAGE: i64 = 50;
    let mut offset = 0;
    loop {
        let sql = format!(
            "SELECT id, provisioner, tags FROM provisioner_jobs WHERE organization_id = $1 AND status = 'pending' \
             ORDER BY created_at, id LIMIT $2 OFFSET $3{}",
            dialect.skip_locked()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .bind(PAGE)
            .bind(offset)
            .fetch_all(&mut *conn)
            .await?;
        let n = rows.len() as i64;
        for r in rows {
            let provisioner: String = r.try_get("provisioner")?;
            let tags: Tags =
                serde_json::from_str(&r.try_get::<String, _>("tags")?).unwrap_or_default();
            if !provisioners.contains(&provisioner) || !tags_match(&tags, daemon_tags) {
                continue;
            }
            let id: String = r.try_get("id")?;
            let done = sqlx::query(
                "UPDATE provisioner_jobs SET status = 'running', worker_id = $2, started_at = $3, \
                 heartbeat_at = $3, updated_at = $3 WHERE id = $1 AND status = 'pending'",
            )
            .bind(&id)
            .bind(worker_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 1 {
                return get(conn, &id).await;
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
    conn: &mut Conn,
    id: &str,
    worker_id: &str,
    now: &str,
) -> sqlx::Result<Option<JobStatus>> {
    sqlx::query(
        "UPDATE provisioner_jobs SET heartbeat_at = $3 WHERE id = $1 AND worker_id = $2 \
         AND status IN ('running', 'canceling')",
    )
    .bind(id)
    .bind(worker_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query("SELECT status, worker_id FROM provisioner_jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    if row.try_get::<Option<String>, _>("worker_id")?.as_deref() != Some(worker_id) {
        return Ok(None);
    }
    Ok(JobStatus::parse(&row.try_get::<String, _>("status")?))
}

/// Moves a job held by `worker_id` to a terminal status. Returns false when the
/// job is not running on that worker (already finished, reaped or canceled).
pub async fn finish(
    conn: &mut Conn,
    id: &str,
    worker_id: &str,
    status: JobStatus,
    error: Option<&str>,
    now: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE provisioner_jobs SET status = $3, error = $4, completed_at = $5, updated_at = $5 \
         WHERE id = $1 AND worker_id = $2 AND status IN ('running', 'canceling')",
    )
    .bind(id)
    .bind(worker_id)
    .bind(status.as_str())
    .bind(error)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Cancels a job: a pending one at once, a running one asks its daemon to stop
/// (`canceling`). Returns the new status, or None when it already finished.
pub async fn cancel(conn: &mut Conn, id: &str, now: &str) -> sqlx::Result<Option<JobStatus>> {
    let pending = sqlx::query(
        "UPDATE provisioner_jobs SET status = 'canceled', error = 'canceled by a user', completed_at = $2, \
         updated_at = $2 WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if pending.rows_affected() == 1 {
        return Ok(Some(JobStatus::Canceled));
    }
    let running = sqlx::query(
        "UPDATE provisioner_jobs SET status = 'canceling', updated_at = $2 WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok((running.rows_affected() == 1).then_some(JobStatus::Canceling))
}

/// Fails running jobs whose daemon stopped heartbeating before `cutoff`.
/// Returns the ids failed.
pub async fn reap(
    conn: &mut Conn,
    cutoff: &str,
    timeout_secs: u64,
    now: &str,
) -> sqlx::Result<Vec<String>> {
    let ids: Vec<String> = sqlx::query(
        "SELECT id FROM provisioner_jobs WHERE status IN ('running', 'canceling') AND heartbeat_at < $1",
    )
    .bind(cutoff)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.try_get("id"))
    .collect::<sqlx::Result<_>>()?;
    let message = format!(
        "the provisioner daemon running this job stopped sending heartbeats for {timeout_secs} s; \
         the job was failed (the daemon may have crashed or lost its connection)"
    );
    for id in &ids {
        sqlx::query(
            "UPDATE provisioner_jobs SET status = 'failed', error = $2, completed_at = $3, updated_at = $3 \
             WHERE id = $1 AND status IN ('running', 'canceling')",
        )
        .bind(id)
        .bind(&message)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(ids)
}

/// Fails the running jobs of the given workers (their key was deleted).
pub async fn fail_for_workers(
    conn: &mut Conn,
    workers: &[String],
    error: &str,
    now: &str,
) -> sqlx::Result<()> {
    for w in workers {
        sqlx::query(
            "UPDATE provisioner_jobs SET status = 'failed', error = $2, completed_at = $3, updated_at = $3 \
             WHERE worker_id = $1 AND status IN ('running', 'canceling')",
        )
        .bind(w)
        .bind(error)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn append_logs(
    conn: &mut Conn,
    job_id: &str,
    lines: &[LogLine],
    now: &str,
) -> sqlx::Result<()> {
    let next: i64 = sqlx::query(
        "SELECT COALESCE(MAX(seq), 0) AS n FROM provisioner_job_logs WHERE job_id = $1",
    )
    .bind(job_id)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    for (i, l) in lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO provisioner_job_logs (job_id, seq, time, stage, level, output) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(job_id)
        .bind(next + 1 + i as i64)
        .bind(now)
        .bind(&l.stage)
        .bind(&l.level)
        .bind(&l.output)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LogEntry {
    pub id: i64,
    pub time: String,
    pub stage: String,
    pub level: String,
    pub output: String,
}

pub async fn logs(
    conn: &mut Conn,
    job_id: &str,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<LogEntry>> {
    sqlx::query(
        "SELECT seq, time, stage, level, output FROM provisioner_job_logs WHERE job_id = $1 AND seq > $2 \
         ORDER BY seq LIMIT $3",
    )
    .bind(job_id)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(LogEntry {
            id: r.try_get("seq")?,
            time: r.try_get("time")?,
            stage: r.try_get("stage")?,
            level: r.try_get("level")?,
            output: r.try_get("output")?,
        })
    })
    .collect()
}
