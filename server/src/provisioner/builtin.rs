//! The built-in daemons: in-process, serving the default organization only,
//! through the same queue service (and the same Cedar decisions) as external
//! daemons.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::daemon::{DaemonTiming, JobSource, SourceError, serve};
use super::executor::Executor;
use super::{AcquiredJob, JobResult, LogLine, default_tags};
use crate::error::ApiError;
use crate::jobs::{self, DaemonIdentity, QueueHandle};
use crate::store;
use crate::usecase::Work;
use orgsync_policy::{Action, Resource};

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

/// A failed registration of a built-in daemon, with its internal cause.
fn registration_error(e: crate::error::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot register a built-in provisioner daemon: {}{}",
        e.body.message,
        e.internal.map(|c| format!(" ({c})")).unwrap_or_default()
    )
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
    let ctx = handle.queue().ctx;
    let mut conn = ctx.conn().await.map_err(registration_error)?;
    let org = store::orgs::default_org(&mut conn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no default organization"))?;
    drop(conn);
    let mut identities = Vec::new();
    for i in 0..n {
        // Each daemon registers itself, as a daemon with a key does: the
        // policies decide (`provisioner_job:acquire` in its organization).
        let daemon = DaemonIdentity::new(
            store::new_id(),
            org.org_ref(),
            vec!["echo".into(), "terraform".into()],
            default_tags(),
        );
        let caller = daemon.caller();
        let mut work = Work::begin(ctx, &caller)
            .await
            .map_err(registration_error)?;
        let permit = work
            .require(
                Action::PROVISIONER_JOB_ACQUIRE,
                &Resource::organization(&daemon.org),
                "organization",
            )
            .map_err(registration_error)?;
        let now = work.now_s.clone();
        let mut w = work.write(&permit).map_err(registration_error)?;
        if i == 0 {
            // Every start registers new built-in daemons: drop those of earlier
            // runs (offline, holding no job) so restarts do not pile them up.
            // Other replicas' daemons are online and stay.
            store::provisioners::prune_offline(&mut w, &org.id, None, &jobs::online_after())
                .await?;
        }
        let row = store::provisioners::Daemon {
            id: daemon.id.clone(),
            organization_id: org.id.clone(),
            key_id: None,
            name: format!("built-in-{}", i + 1),
            provisioners: daemon.provisioners.clone(),
            tags: daemon.tags.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: now.clone(),
            last_seen_at: now,
            status: String::new(),
            disconnected: false,
        };
        store::provisioners::insert_daemon(&mut w, &row).await?;
        work.commit().await.map_err(registration_error)?;
        identities.push(daemon);
    }
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
