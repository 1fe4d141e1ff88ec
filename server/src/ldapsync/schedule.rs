//! The scheduler: claims each tick of the configured cron schedule; the
//! replica whose insert of the tick's row succeeds runs it.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{DirectorySync, RunRequest, StartError, Trigger};
use crate::clock;
use crate::store::directory_runs;

/// Runs the schedule. `sync` gives the service for each round; the
/// scheduler ends when it gives none (the server is gone).
pub async fn scheduler(sync: impl Fn() -> Option<DirectorySync>) {
    let mut current: Option<(String, cron::Schedule)> = None;
    let mut next: Option<DateTime<Utc>> = None;
    let mut rounds: u64 = 0;
    loop {
        let wait = next
            .map(|t| (t - clock::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
        let Some(sync) = sync() else {
            return;
        };
        rounds += 1;
        let Ok(settings) = sync.settings().await else {
            continue;
        };
        if !settings.enabled {
            current = None;
            next = None;
            continue;
        }
        let now = clock::now();
        if current
            .as_ref()
            .is_none_or(|(expr, _)| *expr != settings.schedule)
        {
            match cron::Schedule::from_str(&settings.schedule) {
                Ok(s) => {
                    next = s.after(&now).next();
                    current = Some((settings.schedule.clone(), s));
                }
                Err(e) => {
                    tracing::warn!(schedule = %settings.schedule, error = %e, "ldap sync: invalid schedule");
                    current = None;
                    next = None;
                    continue;
                }
            }
        }
        let Some(tick) = next.filter(|t| *t <= now) else {
            continue;
        };
        next = current.as_ref().and_then(|(_, s)| s.after(&now).next());
        sync.run_tick(tick, now).await;
        if rounds.is_multiple_of(600) {
            sync.forget_ticks(now - chrono::Duration::days(1)).await;
        }
    }
}

impl DirectorySync {
    /// Claims `tick` and, when this replica got it, starts its run.
    async fn run_tick(&self, tick: DateTime<Utc>, now: DateTime<Utc>) {
        let tick_s = clock::fmt(tick);
        if !self.claim_tick(&tick_s, now).await {
            return;
        }
        let req = RunRequest {
            trigger: Trigger::Schedule,
            dry_run: false,
            force: false,
            full: None,
            started_by: None,
            tick: Some(tick_s.clone()),
        };
        match self.start(req, now).await {
            Ok(_) | Err(StartError::Disabled) => {}
            Err(StartError::Busy(run)) => {
                tracing::info!(tick = %tick_s, run = ?run, "ldap sync: scheduled tick skipped, a run is in progress");
            }
            Err(StartError::Db(e)) => {
                tracing::warn!(tick = %tick_s, error = %e, "ldap sync: cannot start a scheduled run");
            }
        }
    }

    /// True when this replica's insert of the tick's row made the claim.
    async fn claim_tick(&self, tick: &str, now: DateTime<Utc>) -> bool {
        let Ok((mut work, permit)) = self.records(now).await else {
            return false;
        };
        let Ok(mut w) = work.write(&permit) else {
            return false;
        };
        let claimed = directory_runs::claim_tick(&mut w, tick, &self.node_id, &clock::fmt(now))
            .await
            .unwrap_or(false);
        claimed && work.commit().await.is_ok()
    }

    /// Forgets the claimed ticks before `before` (best effort).
    async fn forget_ticks(&self, before: DateTime<Utc>) {
        if let Ok((mut work, permit)) = self.records(clock::now()).await
            && let Ok(mut w) = work.write(&permit)
            && directory_runs::delete_ticks_before(&mut w, &clock::fmt(before))
                .await
                .is_ok()
        {
            let _ = work.commit().await;
        }
    }
}
