//! The daemon loop: acquire a job, run it with heartbeats and log shipping,
//! report the outcome. The same loop serves the built-in daemons (in-process
//! source) and `orgsync provisionerd` (HTTP source).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::executor::{Executor, JobFailure};
use super::{AcquiredJob, JobResult, LogLine};

/// Why a source call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The daemon's credentials are not (any more) valid: stop serving.
    Unauthorized(String),
    /// A passing problem (network, server restart): retry later.
    Transient(String),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::Unauthorized(m) => write!(f, "unauthorized: {m}"),
            SourceError::Transient(m) => write!(f, "{m}"),
        }
    }
}

/// Where a daemon gets jobs and reports on them.
pub trait JobSource: Send + Sync {
    /// Waits (long-poll) for a job; `None` when none came in time.
    fn acquire(&self) -> impl Future<Output = Result<Option<AcquiredJob>, SourceError>> + Send;
    /// Returns whether the job should be canceled.
    fn heartbeat(&self, job_id: &str) -> impl Future<Output = Result<bool, SourceError>> + Send;
    fn logs(
        &self,
        job_id: &str,
        lines: Vec<LogLine>,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;
    fn complete(
        &self,
        job_id: &str,
        result: JobResult,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;
    fn fail(
        &self,
        job_id: &str,
        error: &str,
        canceled: bool,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;
}

/// Timing of a daemon.
#[derive(Debug, Clone, Copy)]
pub struct DaemonTiming {
    pub heartbeat: Duration,
    pub log_flush: Duration,
}

impl Default for DaemonTiming {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(5),
            log_flush: Duration::from_millis(250),
        }
    }
}

/// Serves jobs until `shutdown` or until the source refuses the daemon's
/// credentials (returned as the error).
pub async fn serve<S: JobSource>(
    source: &S,
    executors: &[Executor],
    timing: DaemonTiming,
    shutdown: &CancellationToken,
) -> Result<(), SourceError> {
    let mut backoff = Duration::from_millis(200);
    // Failed acquisitions in a row: the next success is a reconnect.
    let mut failures = 0u32;
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let acquired = tokio::select! {
            r = source.acquire() => r,
            () = shutdown.cancelled() => return Ok(()),
        };
        if acquired.is_ok() && failures > 0 {
            tracing::info!(failed_attempts = failures, "provisioner daemon reconnected");
            failures = 0;
        }
        match acquired {
            Ok(Some(job)) => {
                backoff = Duration::from_millis(200);
                match executors
                    .iter()
                    .find(|e| e.provisioner() == job.provisioner)
                {
                    Some(executor) => run_job(source, executor, timing, &job).await?,
                    None => {
                        let msg = format!("this daemon has no `{}` executor", job.provisioner);
                        if let Err(SourceError::Unauthorized(m)) =
                            source.fail(&job.id, &msg, false).await
                        {
                            return Err(SourceError::Unauthorized(m));
                        }
                    }
                }
            }
            Ok(None) => {}
            Err(SourceError::Unauthorized(m)) => return Err(SourceError::Unauthorized(m)),
            Err(SourceError::Transient(m)) => {
                failures += 1;
                tracing::warn!(
                    error = %m,
                    backoff_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                    failed_attempts = failures,
                    "provisioner daemon: cannot acquire a job; retrying after the backoff"
                );
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn run_job<S: JobSource>(
    source: &S,
    executor: &Executor,
    timing: DaemonTiming,
    job: &AcquiredJob,
) -> Result<(), SourceError> {
    let started = std::time::Instant::now();
    tracing::info!(
        job_id = %job.id,
        kind = job.job_type.as_str(),
        org = %job.organization_id,
        provisioner = %job.provisioner,
        "provisioner daemon: running a job"
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<LogLine>();
    let cancel = CancellationToken::new();
    let work = executor.run(job, &tx, &cancel);
    tokio::pin!(work);
    let mut heartbeat = tokio::time::interval(timing.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flush = tokio::time::interval(timing.log_flush);
    let mut pending: Vec<LogLine> = Vec::new();
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            _ = heartbeat.tick() => {
                match source.heartbeat(&job.id).await {
                    Ok(true) => cancel.cancel(),
                    Ok(false) => {}
                    Err(SourceError::Unauthorized(m)) => {
                        cancel.cancel();
                        return Err(SourceError::Unauthorized(m));
                    }
                    Err(SourceError::Transient(m)) => tracing::warn!(job_id = %job.id, "heartbeat: {m}"),
                }
            }
            Some(line) = rx.recv() => pending.push(line),
            _ = flush.tick() => ship(source, &job.id, &mut pending).await?,
        }
    };

    while let Ok(line) = rx.try_recv() {
        pending.push(line);
    }
    ship(source, &job.id, &mut pending).await?;
    let (reported, result) = match outcome {
        Ok(result) => (source.complete(&job.id, result).await, "succeeded"),
        Err(JobFailure::Failed(e)) => (source.fail(&job.id, &e, false).await, "failed"),
        Err(JobFailure::Canceled) => (source.fail(&job.id, "canceled", true).await, "canceled"),
    };
    tracing::info!(
        job_id = %job.id,
        kind = job.job_type.as_str(),
        org = %job.organization_id,
        outcome = result,
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "provisioner daemon: job finished"
    );
    match reported {
        Err(SourceError::Unauthorized(m)) => Err(SourceError::Unauthorized(m)),
        Err(SourceError::Transient(m)) => {
            tracing::warn!(job_id = %job.id, "cannot report the job's outcome: {m}");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

async fn ship<S: JobSource>(
    source: &S,
    job_id: &str,
    pending: &mut Vec<LogLine>,
) -> Result<(), SourceError> {
    if pending.is_empty() {
        return Ok(());
    }
    let lines: Vec<LogLine> = std::mem::take(pending)
        .iter()
        .map(crate::jobs::clean_log_line)
        .collect();
    for batch in batches(lines) {
        match source.logs(job_id, batch).await {
            Ok(()) => {}
            Err(SourceError::Unauthorized(m)) => return Err(SourceError::Unauthorized(m)),
            Err(SourceError::Transient(m)) => tracing::warn!(job_id, "cannot ship logs: {m}"),
        }
    }
    Ok(())
}

/// Lines per log call, under the server's limit of 1000.
const BATCH_LINES: usize = 500;
/// Bytes of output per log call (lines are at most 64 KiB each once cleaned),
/// well under the server's default 1 MiB body limit.
const BATCH_BYTES: usize = 512 * 1024;

/// Cleaned lines in batches of at most [`BATCH_LINES`] lines and about
/// [`BATCH_BYTES`] bytes of text (a single longer line goes alone).
fn batches(lines: Vec<LogLine>) -> Vec<Vec<LogLine>> {
    let mut out: Vec<Vec<LogLine>> = Vec::new();
    let mut batch: Vec<LogLine> = Vec::new();
    let mut bytes = 0;
    for line in lines {
        let n = line.output.len() + line.stage.len() + line.level.len();
        if !batch.is_empty() && (batch.len() == BATCH_LINES || bytes + n > BATCH_BYTES) {
            out.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes += n;
        batch.push(line);
    }
    if !batch.is_empty() {
        out.push(batch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_batches_are_bounded_in_lines_and_bytes() {
        let small: Vec<LogLine> = (0..1200)
            .map(|i| LogLine::new("s", format!("{i}")))
            .collect();
        let sizes: Vec<usize> = batches(small).iter().map(Vec::len).collect();
        assert_eq!(sizes, [500, 500, 200]);
        let big: Vec<LogLine> = (0..20)
            .map(|_| LogLine::new("s", "x".repeat(64 * 1024 - 16)))
            .collect();
        let b = batches(big);
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 20);
        assert!(
            b.iter().all(
                |batch| batch.iter().map(|l| l.output.len() + 5).sum::<usize>() <= BATCH_BYTES
            )
        );
    }
}
