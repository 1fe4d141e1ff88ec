//! The body of a run: read the directory, plan every entry (first pass:
//! count and decide), check the removal guard, then plan again and apply
//! batch by batch (second pass).
//!
//! Memory stays bounded by the compact [`ldap::Directory`]: the first pass
//! plans every entry to count (the removal guard, the stats, a dry run's
//! plan) and keeps only a small [`plan::Decision`] per entry that changes;
//! the second pass builds and plans those entries again one batch at a time,
//! with the memberships read in the batch's own transaction, and applies the
//! batch in it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use orgsync_sync::ldap::{self, DirectoryUser, LdapSettings, ReadMode, ReadProgress};
use orgsync_sync::{Plan, Planner, Settings, World};
use serde_json::{Value, json};

use super::problems::{self, ProblemKey, ProblemSet};
use super::run::{Outcome, RunCtx, RunError, RunStatus, Stats};
use super::state::{self, Known, Link, States};
use super::{AUDIT_SOURCE, DirectorySync, LINK_SOURCE, apply, plan, settings};
use crate::audit::AuditCtx;
use crate::authz::{DIRECTORY_ACCOUNT_ACTIONS, PLAN_ACTIONS, System};
use crate::clock;
use crate::idpsync::apply as idpsync_apply;
use crate::store::{self, Conn, directory_runs};
use crate::usecase::{Caller, Work};
use orgsync_policy::{Action, Resource};

/// Incremental runs look this far behind the previous run's start (clock skew
/// between orgsync and the directory, one-second timestamps).
const INCREMENTAL_OVERLAP_SECONDS: i64 = 120;
/// At most this many per-user changes are kept in a run's `plan`.
const PLAN_KEEP: usize = 1000;
/// The first pass publishes its progress every this many entries.
const PROGRESS_EVERY: usize = 500;

/// What a run does to one user.
#[derive(Debug)]
pub(super) struct UserChange {
    pub(super) user_id: String,
    /// The directory entry (None for a user to suspend).
    pub(super) entry: Option<DirectoryUser>,
    pub(super) create: bool,
    pub(super) link: bool,
    pub(super) update_profile: bool,
    pub(super) store_claims: bool,
    pub(super) reactivate: bool,
    pub(super) suspend: bool,
    pub(super) plan: Plan,
}

impl UserChange {
    fn summary(&self) -> Value {
        let action = if self.create {
            "create"
        } else if self.suspend {
            "suspend"
        } else if self.reactivate {
            "reactivate"
        } else if self.link {
            "link"
        } else {
            "update"
        };
        let username = self.entry.as_ref().map(|e| e.username.clone());
        let mut v = json!({"user_id": self.user_id, "username": username, "action": action});
        if self.plan.has_changes()
            && let (Value::Object(m), Ok(Value::Object(p))) =
                (&mut v, serde_json::to_value(&self.plan))
        {
            for (k, val) in p {
                if k != "problems" && k != "refused" {
                    m.insert(k, val);
                }
            }
        }
        v
    }
}

/// The groups a run's plan creates: (organization, folded name) -> (name,
/// the rule that creates it).
type CreatedGroups = BTreeMap<(String, String), (String, String)>;

/// Reads, plans, guards and applies. `Err` is a failed run.
pub(super) async fn execute(
    sync: &DirectorySync,
    settings: &LdapSettings,
    ctx: &RunCtx,
) -> Result<Outcome, RunError> {
    // 1. Read the directory. Any non-success LDAP result fails the run here,
    //    before anything is written.
    let (links, directory) = read(sync, settings, ctx).await?;
    ctx.set_progress(|p| p.phase = "planning".to_owned());

    // 2. First pass: decide and plan every entry; keep the decisions of the
    //    entries that change something, and the counts.
    let inputs = PlanningInputs::load(sync).await?;
    let planner = Planner::new(&inputs.sync_settings, &inputs.world);
    let mut run_planner = plan::RunPlanner::new(
        plan::Inputs {
            links: &links,
            users: &inputs.known,
            default_org: &inputs.default_org,
            email_attribute: &settings.user_attributes.email,
        },
        &planner,
    );
    let first = first_pass(
        ctx,
        &directory,
        &mut run_planner,
        inputs.states,
        inputs.problems,
    );

    // 3. The removal guard.
    let removal_problem = removal_problem(sync, settings, &first.stats).await?;
    if let Some(why) = removal_problem
        && !ctx.force
    {
        return Ok(first.outcome(
            RunStatus::Aborted,
            Some(format!(
                "{why}; nothing was changed. Review the plan and run again with `force` (`orgsync ldapsync run --force`) if it is right"
            )),
        ));
    }
    if ctx.dry_run {
        return Ok(first.outcome(RunStatus::Succeeded, None));
    }

    // 4. Second pass.
    let FirstPass {
        stats,
        problems,
        decisions,
        summaries,
        suspensions,
        created_groups,
    } = first;
    drop(summaries);
    ctx.set_progress(|p| {
        p.phase = "applying".to_owned();
        p.users_to_apply = decisions.len() + suspensions.len();
    });
    let audit_ctx = AuditCtx {
        source: AUDIT_SOURCE,
        ..AuditCtx::default()
    };
    let created = create_groups(sync, ctx, created_groups, &audit_ctx, clock::now()).await?;
    let applier = Applier {
        sync,
        ctx,
        directory: &directory,
        planner: &run_planner,
        default_org: &inputs.default_org,
        audit_ctx,
        created: &created,
        tally: Mutex::new((stats, CreatedGroups::new())),
        committed: tokio::sync::Mutex::new(Committed::default()),
    };
    let mut stats = applier
        .apply_all(&decisions, &suspensions, problems.new_rows())
        .await?;
    if directory.full {
        forget_fixed_problems(sync, &problems).await?;
    }
    // What the next run compares with: the state after this run (groups it
    // created included), so only later changes force a full run.
    let mut conn = sync.db.pool().acquire().await?;
    stats.settings_fingerprint = settings::fingerprint(&mut conn, settings).await?;
    Ok(Outcome {
        status: RunStatus::Succeeded,
        error: None,
        problems: problems.kept(),
        plan: None,
        stats,
    })
}

/// Step 1: the directory links, then the directory (full, or incremental
/// since shortly before the last successful run).
async fn read(
    sync: &DirectorySync,
    settings: &LdapSettings,
    ctx: &RunCtx,
) -> Result<(HashMap<String, Link>, ldap::Directory), RunError> {
    let group_keys: Vec<&str> = settings
        .claims
        .iter()
        .filter(|(_, v)| v.as_str() == ldap::GROUPS_CLAIM)
        .map(|(k, _)| k.as_str())
        .collect();
    let mut conn = sync.db.pool().acquire().await?;
    let links = state::load_links(&mut conn, &group_keys).await?;
    let mode = if ctx.full {
        ReadMode::Full
    } else {
        let since = directory_runs::last_success_start(&mut conn, false)
            .await?
            .as_deref()
            .and_then(clock::parse)
            .map(|t| t - chrono::Duration::seconds(INCREMENTAL_OVERLAP_SECONDS))
            .unwrap_or(ctx.started - chrono::Duration::days(365 * 30));
        ReadMode::Incremental {
            since: since.format("%Y%m%d%H%M%SZ").to_string(),
            known: links
                .iter()
                .map(|(ext, l)| (ext.clone(), l.groups_digest))
                .collect(),
        }
    };
    drop(conn);
    let progress = ctx.progress.clone();
    let on_read = Arc::new(move |p: ReadProgress| {
        if let Ok(mut g) = progress.lock() {
            g.users_read = p.users_read;
            g.groups_read = p.groups_read;
        }
    });
    let directory = ldap::read_directory(settings, mode, on_read).await?;
    Ok((links, directory))
}

/// What the planning reads of orgsync, once per run.
struct PlanningInputs {
    sync_settings: Settings,
    world: World,
    known: HashMap<String, Known>,
    default_org: String,
    problems: HashMap<ProblemKey, Vec<String>>,
    states: States,
}

impl PlanningInputs {
    async fn load(sync: &DirectorySync) -> Result<PlanningInputs, RunError> {
        let mut conn = sync.db.pool().acquire().await?;
        let (sync_settings, world, _) = crate::idpsync::inputs(&mut conn, None).await?;
        let known = state::load_known_users(&mut conn).await?;
        let default_org = world
            .orgs
            .iter()
            .find(|o| o.is_default)
            .map(|o| o.id.clone())
            .ok_or(RunError::NoDefaultOrg)?;
        let problems = problems::load_keys(&mut conn).await?;
        let states = States::load(&mut conn).await?;
        Ok(PlanningInputs {
            sync_settings,
            world,
            known,
            default_org,
            problems,
            states,
        })
    }
}

/// What the first pass found.
struct FirstPass {
    stats: Stats,
    problems: ProblemSet,
    /// The entries that change something.
    decisions: Vec<plan::Decision>,
    /// The first [`PLAN_KEEP`] changes, for a dry or aborted run's plan.
    summaries: Vec<Value>,
    /// Users gone from the directory.
    suspensions: Vec<UserChange>,
    created_groups: CreatedGroups,
}

impl FirstPass {
    /// The end of a run that stops after the first pass (a dry run, or one
    /// the removal guard aborts): its plan is the record's.
    fn outcome(self, status: RunStatus, error: Option<String>) -> Outcome {
        Outcome {
            status,
            error,
            problems: self.problems.kept(),
            plan: Some(Value::Array(self.summaries)),
            stats: self.stats,
        }
    }
}

/// Step 2: decides and plans every entry with everyone's memberships
/// (`states`, dropped at the end).
fn first_pass(
    ctx: &RunCtx,
    directory: &ldap::Directory,
    run_planner: &mut plan::RunPlanner<'_>,
    states: States,
    recorded_problems: HashMap<ProblemKey, Vec<String>>,
) -> FirstPass {
    let mut stats = Stats {
        users_seen: directory.present_ids.len(),
        groups_seen: directory.groups_seen,
        ..Stats::default()
    };
    let mut problems = ProblemSet::new(recorded_problems);
    for p in &directory.problems {
        problems.add(None, None, &p.kind, &format!("{}: {}", p.dn, p.detail));
    }
    let present = |id: &str| directory.present_ids.contains(id);
    let mut decisions: Vec<plan::Decision> = Vec::new();
    let mut summaries: Vec<Value> = Vec::new();
    let mut created_groups = CreatedGroups::new();
    for i in 0..directory.len() {
        let entry = directory.user(i);
        let Some(d) = run_planner.decide(i, &entry, &present, &mut problems, &mut stats) else {
            continue;
        };
        match run_planner.change(&d, entry, states.get(&d.user_id), &mut problems) {
            Err(()) => stats.users_skipped += 1,
            Ok(None) => stats.users_unchanged += 1,
            Ok(Some(c)) => {
                count_change(&mut stats, &c, &mut created_groups);
                if summaries.len() < PLAN_KEEP {
                    summaries.push(c.summary());
                }
                decisions.push(d);
            }
        }
        if (i + 1) % PROGRESS_EVERY == 0 {
            ctx.set_progress(|p| p.users_planned = i + 1);
        }
    }
    ctx.set_progress(|p| p.users_planned = directory.len());
    drop(states);
    let suspensions = run_planner.suspensions(&present);
    for c in &suspensions {
        count_change(&mut stats, c, &mut created_groups);
        if summaries.len() < PLAN_KEEP {
            summaries.push(c.summary());
        }
    }
    stats.groups_created = created_groups.len();
    stats.problems = problems.len();
    FirstPass {
        stats,
        problems,
        decisions,
        summaries,
        suspensions,
        created_groups,
    }
}

/// Step 3: why the run would remove too much, if it would.
async fn removal_problem(
    sync: &DirectorySync,
    settings: &LdapSettings,
    stats: &Stats,
) -> Result<Option<String>, RunError> {
    let mut conn = sync.db.pool().acquire().await?;
    let (ldap_users, ldap_memberships) =
        store::directory::linked_counts(&mut conn, LINK_SOURCE).await?;
    Ok(removal_check(settings, stats, ldap_users, ldap_memberships))
}

/// The caller of a run's writes: the directory sync, audited as `ldap_sync`.
fn run_caller(audit: &AuditCtx) -> Caller {
    Caller::System {
        actor: System::DirectorySync,
        audit: audit.clone(),
    }
}

/// Step 4a: the groups the plan creates come first, in one transaction, so
/// that batches applied side by side never race to create one. Returns their
/// ids by (organization, folded name).
async fn create_groups(
    sync: &DirectorySync,
    ctx: &RunCtx,
    created_groups: CreatedGroups,
    audit_ctx: &AuditCtx,
    now: DateTime<Utc>,
) -> Result<HashMap<(String, String), String>, RunError> {
    if created_groups.is_empty() {
        return Ok(HashMap::new());
    }
    let wanted: Vec<(String, String, String)> = created_groups
        .into_iter()
        .map(|((org, _), (name, reason))| (org, name, reason))
        .collect();
    let caller = run_caller(audit_ctx);
    let mut work = Work::begin_at(sync.ctx(), &caller, now)
        .await
        .map_err(RunError::Apply)?;
    let permit = work
        .require(Action::GROUP_CREATE, &Resource::site(), "groups")
        .map_err(RunError::Apply)?;
    let audit = work.audit_ctx(&permit, None).map_err(RunError::Apply)?;
    let now_s = work.now_s.clone();
    let mut w = work.write(&permit).map_err(RunError::Apply)?;
    let ids = idpsync_apply::create_groups(&mut w, &wanted, &now_s, &audit, "ldap")
        .await
        .map_err(RunError::Apply)?;
    sync.still_ours(&mut w, ctx, now).await?;
    work.commit().await.map_err(RunError::Apply)?;
    Ok(ids)
}

/// Step 4c: a full run met every problem there still is: the stored ones it
/// did not meet are fixed.
async fn forget_fixed_problems(
    sync: &DirectorySync,
    problems: &ProblemSet,
) -> Result<(), RunError> {
    let stale = problems.stale_ids();
    if !stale.is_empty() {
        let (mut work, permit) = sync.records(clock::now()).await.map_err(RunError::Apply)?;
        let stale: Vec<&str> = stale.iter().map(String::as_str).collect();
        store::problems::delete(&mut work.write(&permit).map_err(RunError::Apply)?, &stale).await?;
        work.commit().await.map_err(RunError::Apply)?;
    }
    Ok(())
}

/// One batch of the second pass.
enum Job<'a> {
    /// Entries to plan again and apply.
    Decided(&'a [plan::Decision]),
    /// Users gone from the directory.
    Suspend(&'a [UserChange]),
}

/// Batches committed so far.
#[derive(Default)]
struct Committed {
    batches: usize,
}

/// Applies the batches of a run's second pass, each in its own transaction;
/// several may run side by side. Commits are taken one at a time (with the
/// lease check).
struct Applier<'a> {
    sync: &'a DirectorySync,
    ctx: &'a RunCtx,
    directory: &'a ldap::Directory,
    planner: &'a plan::RunPlanner<'a>,
    default_org: &'a str,
    audit_ctx: AuditCtx,
    /// Groups created before the batches.
    created: &'a HashMap<(String, String), String>,
    /// The applied counts, and the groups the applied plans create.
    tally: Mutex<(Stats, CreatedGroups)>,
    committed: tokio::sync::Mutex<Committed>,
}

impl Applier<'_> {
    /// Step 4b: each batch is planned again with the memberships as they are
    /// in its own transaction and applied in it, up to the configured apply
    /// concurrency at once (as many as the database takes writers: one on
    /// SQLite). Returns the stats with the change counts of what was applied.
    async fn apply_all(
        self,
        decisions: &[plan::Decision],
        suspensions: &[UserChange],
        problem_rows: Vec<ProblemKey>,
    ) -> Result<Stats, RunError> {
        if let Ok(mut t) = self.tally.lock() {
            t.0.clear_changes();
        }
        let concurrency = self
            .sync
            .db
            .write_concurrency(self.sync.limits.apply_concurrency);
        let batch_size = self.sync.limits.batch_size;
        let mut jobs = decisions
            .chunks(batch_size)
            .map(Job::Decided)
            .chain(suspensions.chunks(batch_size).map(Job::Suspend));
        let mut problem_rows = problem_rows.into_iter();
        let mut running = futures_util::stream::FuturesUnordered::new();
        loop {
            while running.len() < concurrency {
                let Some(job) = jobs.next() else { break };
                // Problems go in with the first batches (a crash leaves the rest
                // for the next run).
                let rows: Vec<ProblemKey> = problem_rows.by_ref().take(batch_size).collect();
                running.push(self.run(job, rows));
            }
            match futures_util::StreamExt::next(&mut running).await {
                None => break,
                Some(result) => result?,
            }
        }
        drop(running);
        let rest: Vec<ProblemKey> = problem_rows.collect();
        self.insert_problems(&rest, clock::now()).await?;
        let batches = self.committed.lock().await.batches;
        let (mut stats, created_now) = self.tally.into_inner().map_err(|_| RunError::Poisoned)?;
        stats.batches = batches;
        stats.groups_created = created_now.len();
        Ok(stats)
    }

    /// Plans (again) and applies one batch in one transaction.
    async fn run(&self, job: Job<'_>, problem_rows: Vec<ProblemKey>) -> Result<(), RunError> {
        let sync = self.sync;
        let caller = run_caller(&self.audit_ctx);
        let mut work = Work::begin(sync.ctx(), &caller)
            .await
            .map_err(RunError::Apply)?;
        // Every write of a batch is on the run's own authority.
        let mut permits = Vec::new();
        for action in DIRECTORY_ACCOUNT_ACTIONS.iter().chain(PLAN_ACTIONS) {
            permits.push(
                work.require(*action, &Resource::site(), "directory sync")
                    .map_err(RunError::Apply)?,
            );
        }
        let audit = work.audit_ctx(&permits[0], None).map_err(RunError::Apply)?;
        let planned;
        let (batch, users) = match job {
            Job::Suspend(changes) => (changes, changes.len()),
            Job::Decided(chunk) => {
                planned = self.plan_again(work.conn(), chunk).await?;
                (planned.as_slice(), chunk.len())
            }
        };
        if let Ok(mut t) = self.tally.lock() {
            let (stats, created) = &mut *t;
            for c in batch {
                count_change(stats, c, created);
            }
        }
        let now_s = clock::fmt(clock::now());
        let mut groups = idpsync_apply::GroupIds {
            created: self.created,
            local: HashMap::new(),
            source: "ldap",
        };
        let mut w = work.write(&permits[0]).map_err(RunError::Apply)?;
        let changes =
            apply::apply_batch(&mut w, batch, self.default_org, &now_s, &audit, &mut groups)
                .await
                .map_err(RunError::Apply)?;
        problems::insert_rows(&mut w, &problem_rows, &now_s).await?;
        let mut committed = self.committed.lock().await;
        sync.still_ours(&mut w, self.ctx, clock::now()).await?;
        work.touch_all(batch.iter().map(|c| c.user_id.clone()));
        work.commit().await.map_err(RunError::Apply)?;
        crate::metrics::idpsync_changes(&changes, audit.source);
        committed.batches += 1;
        self.ctx.set_progress(|p| p.users_applied += users);
        Ok(())
    }

    /// Plans a batch of decided entries with the memberships as they are in
    /// `tx`, and counts the ones skipped or unchanged now.
    async fn plan_again(
        &self,
        conn: &mut Conn,
        chunk: &[plan::Decision],
    ) -> Result<Vec<UserChange>, RunError> {
        let mut states = state::load_states(
            conn,
            chunk
                .iter()
                .filter(|d| !d.create)
                .map(|d| d.user_id.as_str()),
        )
        .await?;
        // Problems were recorded by the first pass.
        let mut again = ProblemSet::new(HashMap::new());
        let mut skipped = 0;
        let mut unchanged = 0;
        let mut changes = Vec::with_capacity(chunk.len());
        for d in chunk {
            let state = states.remove(&d.user_id).unwrap_or_default();
            match self
                .planner
                .change(d, self.directory.user(d.index), state, &mut again)
            {
                Err(()) => skipped += 1,
                Ok(None) => unchanged += 1,
                Ok(Some(c)) => changes.push(c),
            }
        }
        if let Ok(mut t) = self.tally.lock() {
            t.0.users_skipped += skipped;
            t.0.users_unchanged += unchanged;
        }
        Ok(changes)
    }

    /// Problem rows no batch took (a run with few changes).
    async fn insert_problems(
        &self,
        rows: &[ProblemKey],
        now: DateTime<Utc>,
    ) -> Result<(), RunError> {
        if rows.is_empty() {
            return Ok(());
        }
        let (mut work, permit) = self.sync.records(now).await.map_err(RunError::Apply)?;
        let mut w = work.write(&permit).map_err(RunError::Apply)?;
        problems::insert_rows(&mut w, rows, &clock::fmt(now)).await?;
        work.commit().await.map_err(RunError::Apply)?;
        Ok(())
    }
}

/// Adds a change's counts to `stats`; `created_groups` collects the groups it
/// creates (organization, folded name), counted once per run.
pub(super) fn count_change(stats: &mut Stats, c: &UserChange, created_groups: &mut CreatedGroups) {
    for g in c.plan.groups.values() {
        for a in g.add.iter().filter(|a| a.create) {
            created_groups
                .entry((g.organization_id.clone(), a.name.to_lowercase()))
                .or_insert_with(|| (a.name.clone(), a.reason.clone()));
        }
    }
    stats.users_created += usize::from(c.create);
    stats.users_linked += usize::from(c.link);
    stats.users_updated +=
        usize::from(!c.create && !c.suspend && (c.update_profile || c.plan.has_changes()));
    stats.users_suspended += usize::from(c.suspend);
    stats.users_reactivated += usize::from(c.reactivate);
    let p = &c.plan;
    stats.organizations_joined += p.organizations.add.len();
    stats.organizations_left += p.organizations.remove.len();
    for g in p.groups.values() {
        stats.groups_joined += g.add.len();
        stats.groups_left += g.remove.len();
    }

    stats.roles_changed += p
        .roles
        .values()
        .filter(|r| !r.add.is_empty() || !r.remove.is_empty())
        .count();
    stats.site_roles_changed +=
        usize::from(!p.site_roles.add.is_empty() || !p.site_roles.remove.is_empty());
    stats.memberships_added = stats.organizations_joined + stats.groups_joined;
    stats.memberships_removed = stats.organizations_left + stats.groups_left;
}

/// Why the run would remove too much, if it would.
fn removal_check(
    settings: &LdapSettings,
    stats: &Stats,
    ldap_users: usize,
    ldap_memberships: usize,
) -> Option<String> {
    let limit = settings.max_removal_percent;
    let pct = |n: usize, of: usize| -> f64 {
        if n == 0 {
            0.0
        } else if of == 0 {
            100.0
        } else {
            #[allow(clippy::cast_precision_loss)]
            let p = n as f64 * 100.0 / of as f64;
            p
        }
    };
    let users = pct(stats.users_suspended, ldap_users);
    if users > limit {
        return Some(format!(
            "the run would suspend {} of {} directory users ({users:.1}%), more than max_removal_percent ({limit}%)",
            stats.users_suspended, ldap_users
        ));
    }
    let memberships = pct(stats.memberships_removed, ldap_memberships);
    if memberships > limit {
        return Some(format!(
            "the run would remove {} of {} memberships of directory users ({memberships:.1}%), more than max_removal_percent ({limit}%)",
            stats.memberships_removed, ldap_memberships
        ));
    }
    None
}
