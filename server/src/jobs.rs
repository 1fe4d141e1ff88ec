//! The job queue as a service: enqueueing (inside the caller's transaction),
//! acquisition by daemons (long-poll, woken by notification), heartbeats, logs,
//! completion with its side effects, cancellation and the reaper of jobs whose
//! daemon went silent. Daemon actions are decided by Cedar like every other.

use std::sync::Arc;
use std::time::Duration;

use orgsync_policy::{Action, OrgRef, PrincipalEntity, Resource};
use tokio::sync::Notify;

use crate::audit::AuditCtx;
use crate::authz::{Permit, System};
use crate::clock;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::provisioner::{AcquiredJob, JobResult, JobStatus, JobType, LogLine, Tags, Transition};
use crate::store::{self, Conn, Write, jobs::Job};
use crate::usecase::{Caller, Ctx, Work};

/// Wakes idle daemons when jobs are queued.
#[derive(Debug, Default)]
pub struct JobsHub {
    notify: Notify,
}

impl JobsHub {
    pub fn wake(&self) {
        self.notify.notify_waiters();
    }
}

/// What the queue service runs against: the database and policies, the hub
/// that wakes idle daemons, and how often an idle long-poll re-checks
/// (`--job-poll-interval-ms`).
#[derive(Clone, Copy)]
pub struct Queue<'a> {
    pub ctx: Ctx<'a>,
    pub hub: &'a JobsHub,
    pub poll_interval: Duration,
}

/// A daemon as the queue sees it.
#[derive(Debug, Clone)]
pub struct DaemonIdentity {
    pub id: String,
    pub org: OrgRef,
    pub provisioners: Vec<String>,
    pub tags: Tags,
    pub principal: PrincipalEntity,
}

impl DaemonIdentity {
    /// The daemon as the caller of its operations: the policies decide its
    /// every action.
    pub fn caller(&self) -> Caller {
        Caller::Daemon {
            principal: Box::new(self.principal.clone()),
            audit: AuditCtx::default(),
        }
    }

    pub fn new(id: String, org: OrgRef, provisioners: Vec<String>, tags: Tags) -> Self {
        let principal = PrincipalEntity::daemon(&id, &org);
        Self {
            id,
            org,
            provisioners,
            tags,
            principal,
        }
    }
}

/// Hands out the queue service to tasks that outlive one call (the built-in
/// daemons); the server's app is one.
pub trait QueueHandle: Send + Sync + 'static {
    fn queue(&self) -> Queue<'_>;
}

/// Enqueues a job in the caller's transaction; daemons are woken at commit
/// (`after_commit`). On PostgreSQL other replicas are notified too.
pub async fn enqueue(
    db: &Db,
    w: &mut Write<'_>,
    job: &store::jobs::NewJob<'_>,
) -> sqlx::Result<()> {
    store::jobs::insert(w, job).await?;
    db.notify_jobs(w.conn(), job.organization_id).await
}

/// Call after the transaction that enqueued jobs committed.
pub fn after_commit(hub: &JobsHub) {
    hub.wake();
}

/// Takes the oldest job this daemon may run, waiting up to `wait` for one.
pub async fn acquire(
    q: Queue<'_>,
    daemon: &DaemonIdentity,
    wait: Duration,
) -> ApiResult<Option<AcquiredJob>> {
    let caller = daemon.caller();
    let permit = caller.require(
        q.ctx.authz,
        Action::PROVISIONER_JOB_ACQUIRE,
        &Resource::organization(&daemon.org),
        "organization",
    )?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let notified = q.hub.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut work = Work::begin(q.ctx, &caller).await?;
        let now = work.now_s.clone();
        let mut w = work.write(&permit)?;
        store::provisioners::touch_daemon(&mut w, &daemon.id, &now).await?;
        let claimed = store::jobs::claim(
            &mut w,
            q.ctx.db.dialect(),
            &daemon.org.id,
            &daemon.provisioners,
            &daemon.tags,
            &daemon.id,
            &now,
        )
        .await?;
        let payload = match &claimed {
            Some(job) => payload(work.conn(), job, &daemon.org.id).await?,
            None => None,
        };
        if let (Some(job), None) = (&claimed, &payload) {
            // Claimed but not servable to this org: failed, in the same
            // transaction; the daemon looks for another job at once.
            store::jobs::finish(
                &mut work.write(&permit)?,
                &job.id,
                &daemon.id,
                JobStatus::Failed,
                Some(ARCHIVE_UNAVAILABLE),
                &now,
            )
            .await?;
            work.commit().await?;
            tracing::warn!(job_id = %job.id, daemon = %daemon.id, "job failed: its template archive is not bound to its organization");
            continue;
        }
        let acquired_at = work.now;
        work.commit().await?;
        if let Some(p) = payload {
            let waited = claimed
                .as_ref()
                .and_then(|j| clock::parse(&j.created_at))
                .and_then(|created| (acquired_at - created).to_std().ok())
                .unwrap_or_default();
            crate::metrics::job_acquired(p.job_type.as_str(), waited);
            tracing::info!(job_id = %p.id, daemon = %daemon.id, "job acquired");
            return Ok(Some(p));
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        // Woken by a notification; the periodic re-check
        // (`--job-poll-interval-ms`) only guards against a lost notification
        // (e.g. a replica's listener reconnecting).
        let recheck = q.poll_interval;
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep(left.min(recheck)) => {}
        }
    }
}

/// The error of a job whose template archive its org may not use.
const ARCHIVE_UNAVAILABLE: &str =
    "the template archive of this job is not available to its organization";

/// Builds what a daemon of `org_id` needs to run a job; `None` when the job
/// may not be served to it: the job, its version and the archive's binding
/// must all be of that org (files never cross orgs, whatever the data says).
async fn payload(conn: &mut Conn, job: &Job, org_id: &str) -> ApiResult<Option<AcquiredJob>> {
    if job.organization_id != org_id {
        return Ok(None);
    }
    let missing = || ApiError::internal(format!("job {} has no subject", job.id));
    let mut out = AcquiredJob {
        id: job.id.clone(),
        job_type: job.job_type,
        organization_id: job.organization_id.clone(),
        provisioner: job.provisioner.clone(),
        template_tar_base64: String::new(),
        template_version_id: String::new(),
        workspace_id: None,
        workspace_name: None,
        workspace_owner: None,
        transition: None,
        build_number: None,
        parameters: Vec::new(),
        state_base64: None,
    };
    let version_id = match job.job_type {
        JobType::TemplateVersionImport => {
            store::templates::version_by_job(conn, &job.id)
                .await?
                .ok_or_else(missing)?
                .id
        }
        JobType::WorkspaceBuild => {
            let build = store::workspaces::build_by_job(conn, &job.id)
                .await?
                .ok_or_else(missing)?;
            let ws = store::workspaces::name_and_owner(conn, &build.workspace_id)
                .await?
                .ok_or_else(missing)?;
            out.state_base64 =
                store::workspaces::last_state(conn, &build.workspace_id, build.build_number)
                    .await?;
            out.workspace_id = Some(build.workspace_id);
            out.workspace_name = Some(ws.0);
            out.workspace_owner = Some(ws.1);
            out.transition = Some(build.transition);
            out.build_number = Some(build.build_number);
            out.parameters = build.parameters;
            build.template_version_id
        }
    };
    let version = store::templates::get_version(conn, &version_id)
        .await?
        .ok_or_else(missing)?;
    if version.organization_id != org_id {
        return Ok(None);
    }
    let Some(archive) =
        store::templates::file_content_for_org(conn, &version.file_hash, org_id).await?
    else {
        return Ok(None);
    };
    out.template_tar_base64 = archive;
    out.template_version_id = version.id;
    Ok(Some(out))
}

/// Loads a job in the operation's transaction and requires that this daemon
/// (the caller of `work`) may act on it: the job and the permit to.
async fn daemon_job(
    work: &mut Work<'_>,
    daemon: &DaemonIdentity,
    job_id: &str,
) -> ApiResult<(Job, Permit)> {
    let job = store::jobs::get(work.conn(), job_id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    let resource = Resource::provisioner_job(&daemon.org_for(&job), &job.id, &job.initiator_id);
    let permit = work.require(Action::PROVISIONER_JOB_UPDATE, &resource, "job")?;
    if job.worker_id.as_deref() != Some(daemon.id.as_str()) {
        return Err(ApiError::conflict("this job is not held by this daemon"));
    }
    Ok((job, permit))
}

impl DaemonIdentity {
    /// The org of a job as the policies see it; a job of another org keeps its
    /// own org id, so the policy denies (and the daemon learns nothing).
    fn org_for(&self, job: &Job) -> OrgRef {
        if job.organization_id == self.org.id {
            self.org.clone()
        } else {
            OrgRef::new(job.organization_id.clone(), false)
        }
    }
}

/// What a heartbeat answers: whether the daemon should cancel the job.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct HeartbeatReply {
    pub cancel: bool,
}

pub async fn heartbeat(
    q: Queue<'_>,
    daemon: &DaemonIdentity,
    job_id: &str,
) -> ApiResult<HeartbeatReply> {
    let caller = daemon.caller();
    let mut work = Work::begin(q.ctx, &caller).await?;
    let (_, permit) = daemon_job(&mut work, daemon, job_id).await?;
    let now = work.now_s.clone();
    let mut w = work.write(&permit)?;
    store::provisioners::touch_daemon(&mut w, &daemon.id, &now).await?;
    let status = store::jobs::heartbeat(&mut w, job_id, &daemon.id, &now).await?;
    work.commit().await?;
    match status {
        Some(JobStatus::Running) => Ok(HeartbeatReply { cancel: false }),
        Some(JobStatus::Canceling) => Ok(HeartbeatReply { cancel: true }),
        // Finished elsewhere (reaped, key deleted): stop working on it.
        _ => Ok(HeartbeatReply { cancel: true }),
    }
}

/// At most this many log lines per call.
pub const MAX_LOG_LINES_PER_CALL: usize = 1000;
/// A log line's `output` is at most this many bytes (a longer one is cut and
/// ends with the marker below, within this size).
pub const MAX_LOG_LINE_BYTES: usize = 64 * 1024;
/// What ends a cut log line.
pub const TRUNCATED_MARKER: &str = " [truncated]";
/// A log line's `stage` and `level` are cut to this many bytes.
const MAX_LOG_LABEL_BYTES: usize = 64;

/// `text` without NUL (which PostgreSQL cannot store) and at most `max` bytes:
/// a longer one is cut on a character boundary and ends with `marker` (within
/// `max`). Cleaning a cleaned text changes nothing.
pub fn clean_text(text: &str, max: usize, marker: &str) -> String {
    let mut out = if text.contains('\0') {
        text.replace('\0', "")
    } else {
        text.to_owned()
    };
    if out.len() > max {
        let mut cut = max.saturating_sub(marker.len());
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str(marker);
    }
    out
}

/// A log line as stored: NUL stripped, `output` at most
/// [`MAX_LOG_LINE_BYTES`] (marker included), labels at most 64 bytes.
pub fn clean_log_line(line: &LogLine) -> LogLine {
    LogLine {
        stage: clean_text(&line.stage, MAX_LOG_LABEL_BYTES, ""),
        level: clean_text(&line.level, MAX_LOG_LABEL_BYTES, ""),
        output: clean_text(&line.output, MAX_LOG_LINE_BYTES, TRUNCATED_MARKER),
    }
}

pub async fn append_logs(
    q: Queue<'_>,
    daemon: &DaemonIdentity,
    job_id: &str,
    lines: &[LogLine],
) -> ApiResult<()> {
    if lines.len() > MAX_LOG_LINES_PER_CALL {
        return Err(ApiError::validation(
            "logs",
            format!("at most {MAX_LOG_LINES_PER_CALL} lines per call"),
        ));
    }
    let caller = daemon.caller();
    let mut work = Work::begin(q.ctx, &caller).await?;
    let (job, permit) = daemon_job(&mut work, daemon, job_id).await?;
    if job.status.is_terminal() {
        return Err(ApiError::conflict("the job has finished"));
    }
    let lines: Vec<LogLine> = lines.iter().map(clean_log_line).collect();
    let now = work.now_s.clone();
    store::jobs::append_logs(&mut work.write(&permit)?, job_id, &lines, &now).await?;
    work.commit().await?;
    Ok(())
}

/// Refuses a `state_base64` that is not standard base64 (a 400 naming it).
pub fn check_state(result: &JobResult) -> ApiResult<()> {
    use base64::Engine as _;
    match &result.state_base64 {
        Some(state)
            if base64::engine::general_purpose::STANDARD
                .decode(state)
                .is_err() =>
        {
            Err(ApiError::validation(
                "state_base64",
                "must be standard base64 (RFC 4648, padded)",
            ))
        }
        _ => Ok(()),
    }
}

/// A job succeeded: record it and its effects (a build's state; a delete build
/// soft-deletes its workspace) in one transaction.
pub async fn complete(
    q: Queue<'_>,
    daemon: &DaemonIdentity,
    job_id: &str,
    result: &JobResult,
) -> ApiResult<()> {
    check_state(result)?;
    let caller = daemon.caller();
    let mut work = Work::begin(q.ctx, &caller).await?;
    let (job, permit) = daemon_job(&mut work, daemon, job_id).await?;
    let now = work.now_s.clone();
    let mut w = work.write(&permit)?;
    if !store::jobs::finish(&mut w, job_id, &daemon.id, JobStatus::Succeeded, None, &now).await? {
        return Err(ApiError::conflict(
            "the job is not running on this daemon any more",
        ));
    }
    if job.job_type == JobType::WorkspaceBuild
        && let Some(build) = store::workspaces::build_by_job(w.conn(), job_id).await?
    {
        let state = result.state_base64.as_deref();
        store::workspaces::set_state(&mut w, &build.build_id, state).await?;
        if build.transition == Transition::Delete {
            store::workspaces::mark_deleted(&mut w, &build.workspace_id, &now).await?;
        }
    }
    work.commit().await?;
    tracing::info!(job_id, daemon = %daemon.id, "job succeeded");
    Ok(())
}

/// A job failed (or was canceled on request).
pub async fn fail(
    q: Queue<'_>,
    daemon: &DaemonIdentity,
    job_id: &str,
    error: &str,
    canceled: bool,
) -> ApiResult<()> {
    let caller = daemon.caller();
    let mut work = Work::begin(q.ctx, &caller).await?;
    let (job, permit) = daemon_job(&mut work, daemon, job_id).await?;
    let now = work.now_s.clone();
    let status = if canceled && job.status == JobStatus::Canceling {
        JobStatus::Canceled
    } else {
        JobStatus::Failed
    };
    let error: String = error.chars().filter(|&c| c != '\0').take(4000).collect();
    let mut w = work.write(&permit)?;
    if !store::jobs::finish(&mut w, job_id, &daemon.id, status, Some(&error), &now).await? {
        return Err(ApiError::conflict(
            "the job is not running on this daemon any more",
        ));
    }
    work.commit().await?;
    tracing::info!(job_id, daemon = %daemon.id, status = status.as_str(), "job finished without success");
    Ok(())
}

/// Fails the jobs whose daemon stopped heartbeating for `timeout` (one pass
/// of the reaper), on the reaper's own authority, in one transaction. Returns
/// the ids failed.
pub async fn reap(
    ctx: Ctx<'_>,
    timeout: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<Vec<String>> {
    let caller = Caller::system(System::Reaper);
    let mut work = Work::begin_at(ctx, &caller, now).await?;
    let permit = work.require(Action::PROVISIONER_JOB_UPDATE, &Resource::site(), "job")?;
    let cutoff = clock::fmt(now - chrono::Duration::from_std(timeout).unwrap_or_default());
    let now_s = work.now_s.clone();
    let mut w = work.write(&permit)?;
    let ids = store::jobs::reap(&mut w, &cutoff, timeout.as_secs(), &now_s).await?;
    work.commit().await?;
    if !ids.is_empty() {
        tracing::warn!(
            ?ids,
            authority = ?permit.authority(),
            "failed jobs whose daemon stopped heartbeating"
        );
    }
    Ok(ids)
}

/// Why a pending job waits, for people reading it.
pub async fn queue_message(
    conn: &mut Conn,
    job: &Job,
    online_after: &str,
) -> sqlx::Result<Option<String>> {
    if job.status != JobStatus::Pending {
        return Ok(None);
    }
    let daemons =
        store::provisioners::list_daemons(conn, &job.organization_id, online_after).await?;
    let fits = daemons.iter().any(|d| {
        d.status != "offline"
            && d.provisioners.contains(&job.provisioner)
            && crate::provisioner::tags_match(&job.tags, &d.tags)
    });
    Ok(if daemons.iter().all(|d| d.status == "offline") {
        Some("no provisioner available for this organization".to_owned())
    } else if !fits {
        Some("no provisioner daemon of this organization matches the job's provisioner type and tags".to_owned())
    } else {
        None
    })
}

/// How long a daemon may be silent before it counts as offline.
pub const ONLINE_WINDOW_SECS: i64 = 30;

pub fn online_after() -> String {
    clock::fmt(clock::now() - chrono::Duration::seconds(ONLINE_WINDOW_SECS))
}

/// Shared handle for in-process daemons.
pub type Shared = Arc<JobsHub>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_is_stripped_of_nul_and_cut_on_a_char_boundary() {
        assert_eq!(clean_text("a\0b\0", 10, "!"), "ab");
        assert_eq!(clean_text("abcdef", 4, "!"), "abc!");
        assert_eq!(clean_text("abcd", 4, "!"), "abcd");
        // "€" is 3 bytes: 4 or 5 bytes with the marker keep one.
        assert_eq!(clean_text("€€", 4, "|"), "€|");
        assert_eq!(clean_text("€€", 5, "|"), "€|");
        let line = clean_log_line(&LogLine {
            stage: "s".repeat(100),
            level: "info".into(),
            output: "x".repeat(MAX_LOG_LINE_BYTES + 1),
        });
        assert_eq!(line.stage.len(), MAX_LOG_LABEL_BYTES);
        assert_eq!(line.output.len(), MAX_LOG_LINE_BYTES);
        assert!(line.output.ends_with(TRUNCATED_MARKER));
        assert_eq!(clean_log_line(&line), line, "idempotent");
    }

    #[test]
    fn state_must_be_standard_base64() {
        let state = |s: Option<&str>| JobResult {
            state_base64: s.map(str::to_owned),
        };
        assert!(check_state(&state(None)).is_ok());
        assert!(check_state(&state(Some("QUJD"))).is_ok());
        assert!(check_state(&state(Some(""))).is_ok());
        for bad in ["QQ", "not base64", "QUJD*"] {
            assert!(check_state(&state(Some(bad))).is_err(), "{bad}");
        }
    }
}
