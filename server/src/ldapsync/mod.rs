//! LDAP directory sync: a run reads the directory (the `orgsync-sync` crate's
//! LDAP source), plans every directory user with the same planner and settings
//! as an OIDC login, checks the removal guard, and applies the changes in
//! batches of one transaction each. Runs are one at a time across replicas (a
//! lease row), scheduled ticks are claimed by exactly one replica (a row per
//! tick), and a run in progress reports its counts.
//!
//! The use cases are methods of [`DirectorySync`]; the modules:
//! `settings` (load, store, served view, config file, fingerprint), `run`
//! (lease, heartbeat, recorded end; [`RunStatus`], [`RunError`]), `schedule`
//! (cron ticks), `execute` (the run body, step by step), `state` (what a run
//! reads of orgsync), `problems`, `plan` (pure matching and planning) and
//! `apply` (a batch in one transaction). All SQL is in `crate::store`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::authz::Authz;
use crate::db::Db;
use crate::store::directory_runs;

mod apply;
mod execute;
mod plan;
mod problems;
mod run;
mod schedule;
mod settings;
mod state;

pub use run::{Progress, Run, RunError, RunStatus, StartError, Stats};
pub use schedule::scheduler;
pub use settings::{
    apply_file_settings, load_settings, public_settings, replace_settings, store_settings,
};

// The names `plan` and `apply` share.
use execute::UserChange;
use problems::ProblemSet;
use state::{Known, Link};

/// Where the settings live in `deployment_settings`.
pub const SETTINGS_KEY: &str = "ldapsync";
/// `user_links.source` of directory identities.
pub const LINK_SOURCE: &str = "ldap";
/// The audit source of what a run changes.
pub const AUDIT_SOURCE: &str = "ldap_sync";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        }
    }
}

/// What starts a run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub trigger: Trigger,
    pub dry_run: bool,
    pub force: bool,
    /// Force a full run (`None`: full when due, else incremental).
    pub full: Option<bool>,
    pub started_by: Option<String>,
    pub tick: Option<String>,
}

/// How runs are sized and leased (from the server's configuration).
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// A run's lease lasts this long without a heartbeat.
    pub lease_seconds: u64,
    /// Users per batch (one transaction each).
    pub batch_size: usize,
    /// Batches applied side by side, where the database takes several writers.
    pub apply_concurrency: usize,
}

/// The directory sync service: what its use cases need and nothing more.
#[derive(Clone)]
pub struct DirectorySync {
    db: Db,
    /// Its principal cache is invalidated for the users a batch changed.
    authz: Arc<Authz>,
    /// This replica (the lease holder, the claimer of ticks).
    node_id: String,
    /// Cancelled when the server stops: a run in progress then ends failed.
    shutdown: CancellationToken,
    limits: RunLimits,
    /// The caller of the runs' own records (the run row, the lease, the
    /// schedule's ticks, the problems): the directory sync itself.
    caller: crate::usecase::Caller,
}

impl DirectorySync {
    /// What the run's use-case writes run against.
    pub(crate) fn ctx(&self) -> crate::usecase::Ctx<'_> {
        crate::usecase::Ctx::new(&self.db, &self.authz)
    }

    /// A transaction for the runs' own records, on the authority of
    /// [`System::DirectorySync`](crate::authz::System::DirectorySync), with
    /// the permit (`ldapsync:run`) they are written under.
    pub(crate) async fn records(
        &self,
        now: DateTime<Utc>,
    ) -> crate::error::Result<(crate::usecase::Work<'_>, crate::authz::Permit)> {
        let work = crate::usecase::Work::begin_at(self.ctx(), &self.caller, now).await?;
        let permit = work.require(
            orgsync_policy::Action::LDAPSYNC_RUN,
            &orgsync_policy::Resource::site(),
            "directory sync",
        )?;
        Ok((work, permit))
    }

    pub fn new(
        db: Db,
        authz: Arc<Authz>,
        node_id: String,
        shutdown: CancellationToken,
        limits: RunLimits,
    ) -> Self {
        Self {
            db,
            authz,
            node_id,
            shutdown,
            limits,
            caller: crate::usecase::Caller::system(crate::authz::System::DirectorySync),
        }
    }

    /// A run with its plan, settled at `now` (see [`Run::settle`]).
    pub async fn get_run(&self, id: &str, now: DateTime<Utc>) -> sqlx::Result<Option<Run>> {
        let mut conn = self.db.pool().acquire().await?;
        let mut run = directory_runs::get(&mut conn, id).await?;
        if let Some(r) = &mut run {
            r.settle(now, self.limits.lease_seconds);
        }
        Ok(run)
    }

    /// Runs newest first, settled at `now`, and how many there are.
    pub async fn list_runs(
        &self,
        limit: i64,
        offset: i64,
        now: DateTime<Utc>,
    ) -> sqlx::Result<(Vec<Run>, i64)> {
        let mut conn = self.db.pool().acquire().await?;
        let (mut runs, count) = directory_runs::list(&mut conn, limit, offset).await?;
        for r in &mut runs {
            r.settle(now, self.limits.lease_seconds);
        }
        Ok((runs, count))
    }
}
