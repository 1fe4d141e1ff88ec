//! What `GET /metrics` reads of the state at scrape time: this replica's
//! database pool and the job queue's depth. Aggregates only (no user, no
//! object), so no decision is asked: the exposition is public like
//! `/healthz` (`docs/decisions.md`).

use super::Ctx;
use crate::metrics::Snapshot;
use crate::provisioner::JobType;
use crate::store;

/// How long a scrape waits for the queue count.
const COUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The gauges of [`Snapshot`]. The pool is read first, so the connection the
/// queue count takes is not counted in use; a database that cannot be read
/// leaves the pending jobs out (logged) rather than failing the scrape.
pub async fn snapshot(ctx: Ctx<'_>) -> Snapshot {
    let (pool_size, pool_idle, pool_max) = ctx.db.pool_stats();
    // A pool at its limit would make the scrape wait for a connection: the
    // count gives up after a moment and the gauges still answer.
    let pending = tokio::time::timeout(COUNT_TIMEOUT, async {
        let mut conn = ctx.conn().await?;
        Ok::<_, crate::error::Error>(store::jobs::pending_by_type(&mut conn).await?)
    })
    .await
    .unwrap_or_else(|_| Err(crate::error::Error::internal("timed out")));
    let pending_jobs = match pending {
        Ok(rows) => Some(
            [JobType::TemplateVersionImport, JobType::WorkspaceBuild]
                .into_iter()
                .map(|t| {
                    let count = rows
                        .iter()
                        .filter(|(name, _)| name == t.as_str())
                        .map(|(_, n)| *n)
                        .sum();
                    (t.as_str(), count)
                })
                .collect(),
        ),
        Err(e) => {
            tracing::warn!(
                error = e.internal.as_deref().unwrap_or(&e.body.message),
                "metrics: cannot count the pending jobs"
            );
            None
        }
    };
    Snapshot {
        pool_size,
        pool_idle,
        pool_max,
        pending_jobs,
    }
}
