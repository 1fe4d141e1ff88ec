//! The built-in daemons: in-process, serving the default organization only,
//! through the same queue service (and the same Cedar decisions) as external
//! daemons.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::daemon::{DaemonTiming, JobSource, SourceError, serve};
use super::executor::Executor;
use super::{AcquiredJob, JobResult, LogLine, default_tags};
use crate::clock;
use crate::error::ApiError;
use crate::jobs::{self, DaemonIdentity, QueueHandle};
use crate::store;

struct InProcess<H> {
    handle: Arc<H>,
    daemon: DaemonIdentity,
}

fn source_error(e: ApiError) -> SourceError {
    if matches!(
        e.kind,
        crate::error::Kind::Unauthenticated | crate::error::Kind::Forbidden
    ) {
        SourceError::Unauthorized(e.body.message)
    } else {
        SourceError::Transient(e.internal.unwrap_or(e.body.message))
    }
}

impl<H: QueueHandle> JobSource for InProcess<H> {
    async fn acquire(&self) -> Result<Option<AcquiredJob>, SourceError> {
        // A long-poll never ends sooner than the re-check interval: an idle
        // built-in daemon looks at the queue when notified, else only every
        // `--job-poll-interval-ms` (at least every 25 s).
        let queue = self.handle.queue();
        let poll = queue.poll_interval;
        jobs::acquire(queue, &self.daemon, poll.max(Duration::from_secs(25)))
            .await
            .map_err(source_error)
    }

    async fn heartbeat(&self, job_id: &str) -> Result<bool, SourceError> {
        jobs::heartbeat(self.handle.queue(), &self.daemon, job_id)
            .await
            .map(|r| r.cancel)
            .map_err(source_error)
    }

    async fn logs(&self, job_id: &str, lines: Vec<LogLine>) -> Result<(), SourceError> {
        jobs::append_logs(self.handle.queue(), &self.daemon, job_id, &lines)
            .await
            .map_err(source_error)
    }

    async fn complete(&self, job_id: &str, result: JobResult) -> Result<(), SourceError> {
        jobs::complete(self.handle.queue(), &self.daemon, job_id, &result)
            .await
            .map_err(source_error)
    }

    async fn fail(&self, job_id: &str, error: &str, canceled: bool) -> Result<(), SourceError> {
        jobs::fail(self.handle.queue(), &self.daemon, job_id, error, canceled)
            .await
            .map_err(source_error)
    }
}

/// Starts `n` built-in daemons for the default org, running both executors'
/// provisioner types (echo and terraform). Stops with `shutdown`.
pub async fn start<H: QueueHandle>(
    handle: &Arc<H>,
    n: u32,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if n == 0 {
        return Ok(());
    }
    let mut tx = handle.queue().ctx.db.begin().await?;
    let org = store::orgs::default_org(&mut tx)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no default organization"))?;
    let now = clock::fmt(clock::now());
    // Every start registers new built-in daemons: drop those of earlier runs
    // (offline, holding no job) so restarts do not pile them up. Other
    // replicas' daemons are online and stay.
    store::provisioners::prune_offline(&mut tx, &org.id, None, &jobs::online_after()).await?;
    let mut identities = Vec::new();
    for i in 0..n {
        let id = store::new_id();
        let daemon = store::provisioners::Daemon {
            id: id.clone(),
            organization_id: org.id.clone(),
            key_id: None,
            name: format!("built-in-{}", i + 1),
            provisioners: vec!["echo".into(), "terraform".into()],
            tags: default_tags(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: now.clone(),
            last_seen_at: now.clone(),
            status: String::new(),
            disconnected: false,
        };
        store::provisioners::insert_daemon(&mut tx, &daemon).await?;
        identities.push(DaemonIdentity::new(
            id,
            org.org_ref(),
            daemon.provisioners,
            daemon.tags,
        ));
    }
    tx.commit().await?;
    for daemon in identities {
        let handle = handle.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let source = InProcess { handle, daemon };
            let executors = [
                Executor::Echo,
                Executor::parse("terraform").unwrap_or(Executor::Echo),
            ];
            if let Err(e) = serve(&source, &executors, DaemonTiming::default(), &shutdown).await {
                tracing::error!("built-in provisioner daemon stopped: {e}");
            }
        });
    }
    Ok(())
}
