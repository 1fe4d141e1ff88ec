//! The daemon protocol's operations: a daemon authenticates with its
//! provisioner key (which fixes its organization and tags), registers, then
//! acquires jobs, heartbeats, sends logs and finishes them through the queue
//! service ([`crate::jobs`]), every action decided by the policies for the
//! daemon's principal.

use std::time::Duration;

use orgsync_policy::{Action, Resource};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::provisioners::key_tags;
use super::{Caller, Ctx, Work};
use crate::audit::{AuditCtx, Change};
use crate::error::{Error, Result};
use crate::jobs::{self, DaemonIdentity, HeartbeatReply, Queue};
use crate::model::{Organization, parse_text};
use crate::provisioner::{AcquiredJob, JobResult, LogLine, Tags, is_provisioner};
use crate::secrets::sha256_hex;
use crate::store::{self, provisioners::ProvisionerKey};

/// Connected daemons one provisioner key may have at once.
pub const MAX_DAEMONS_PER_KEY: i64 = 100;

/// A caller authenticated by a provisioner key.
pub struct KeyAuth {
    pub key: ProvisionerKey,
    pub org: Organization,
}

/// The key a secret belongs to (and its org); 401 for an unknown or deleted key.
pub async fn authenticate(ctx: Ctx<'_>, secret: &str) -> Result<KeyAuth> {
    let unauthorized = || Error::unauthorized("invalid or deleted provisioner key");
    let hashed = sha256_hex(secret.trim());
    let mut conn = ctx.conn().await?;
    let key = store::provisioners::find_key_by_hash(&mut conn, &hashed)
        .await?
        .ok_or_else(unauthorized)?;
    // The lookup is by hash; compare again in constant time all the same.
    let stored = store::provisioners::hashed_secret(&mut conn, &key.id)
        .await?
        .ok_or_else(unauthorized)?;
    if !bool::from(stored.as_bytes().ct_eq(hashed.as_bytes())) {
        return Err(unauthorized());
    }
    let org = store::orgs::find(&mut conn, &key.organization_id)
        .await?
        .ok_or_else(unauthorized)?;
    Ok(KeyAuth { key, org })
}

/// A daemon's registration as sent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub name: String,
    pub provisioners: Vec<String>,
    #[serde(default)]
    pub version: String,
    /// Refused when non-empty: a daemon's tags are its key's.
    #[serde(default)]
    pub tags: Option<Tags>,
}

/// Registers a daemon under its key; a name the key already uses replaces
/// that daemon (its running jobs fail). At most [`MAX_DAEMONS_PER_KEY`]
/// connected daemons per key (409 past it; daemons offline for 30 s that hold
/// no job are dropped first). Answers `{id, organization_id,
/// organization_name, tags}`; `audit` is the request's (no user).
pub async fn register(
    ctx: Ctx<'_>,
    audit: AuditCtx,
    auth: &KeyAuth,
    req: Registration,
) -> Result<Value> {
    if req.tags.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(Error::validation(
            "tags",
            "a daemon's tags are those of its provisioner key; set them on the key",
        ));
    }
    let name = parse_text("name", req.name.trim(), 64)?;
    if name.is_empty() {
        return Err(Error::validation("name", "must not be empty"));
    }
    if req.provisioners.is_empty() {
        return Err(Error::validation(
            "provisioners",
            "name at least one of `terraform`, `echo`",
        ));
    }
    for (i, p) in req.provisioners.iter().enumerate() {
        if !is_provisioner(p) {
            return Err(Error::validation(
                &format!("provisioners[{i}]"),
                format!("unknown provisioner type `{p}`"),
            ));
        }
    }
    let version = parse_text("version", &req.version, 64)?;
    let id = store::new_id();
    let tags = key_tags(&auth.key);
    let identity = DaemonIdentity::new(
        id.clone(),
        auth.org.org_ref(),
        req.provisioners.clone(),
        tags.clone(),
    );
    let caller = Caller::Daemon {
        principal: Box::new(identity.principal.clone()),
        audit,
    };
    let mut work = Work::begin(ctx, &caller).await?;
    let permit = work.require(
        Action::PROVISIONER_JOB_ACQUIRE,
        &Resource::organization(&auth.org.org_ref()),
        "organization",
    )?;
    let daemon = store::provisioners::Daemon {
        id,
        organization_id: auth.org.id.clone(),
        key_id: Some(auth.key.id.clone()),
        name,
        provisioners: req.provisioners,
        tags,
        version,
        created_at: work.now_s.clone(),
        last_seen_at: work.now_s.clone(),
        status: String::new(),
        disconnected: false,
    };
    store::provisioners::lock_key(&mut work.write(&permit)?, &auth.key.id).await?;
    // The name is the daemon's identity under its key: registering it again
    // (a restart) replaces the previous daemon.
    let replaced: Vec<String> =
        store::provisioners::key_daemons_named(work.conn(), &auth.key.id, &daemon.name)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
    if !replaced.is_empty() {
        store::jobs::fail_for_workers(&mut work.write(&permit)?,
            &replaced,
            "the provisioner daemon running this job registered again (it restarted); the job was abandoned",
            &daemon.created_at,
        )
        .await?;
        for id in &replaced {
            store::provisioners::delete_daemon(&mut work.write(&permit)?, id).await?;
        }
    }
    store::provisioners::prune_offline(
        &mut work.write(&permit)?,
        &auth.org.id,
        Some(&auth.key.id),
        &jobs::online_after(),
    )
    .await?;
    if store::provisioners::count_key_daemons(work.conn(), &auth.key.id).await?
        >= MAX_DAEMONS_PER_KEY
    {
        return Err(Error::conflict(format!(
            "provisioner key `{}` already has {MAX_DAEMONS_PER_KEY} connected daemons (the limit \
             per key); stop one, reuse a daemon name to replace its daemon, or use another key",
            auth.key.name
        )));
    }
    store::provisioners::insert_daemon(&mut work.write(&permit)?, &daemon).await?;
    let mut diff = json!({"name": {"old": null, "new": daemon.name}, "key": {"old": null, "new": auth.key.name},
                          "provisioners": {"old": null, "new": daemon.provisioners}});
    if !replaced.is_empty() {
        diff["replaces"] = json!({"old": null, "new": replaced});
    }
    work.audit(
        &permit,
        Change {
            organization_id: Some(&auth.org.id),
            action: "create",
            resource_type: "provisioner_daemon",
            resource_id: &daemon.id,
            resource_target: &daemon.name,
            diff,
            status_code: 201,
        },
    )
    .await?;
    work.commit().await?;
    tracing::info!(daemon = %daemon.id, org = %auth.org.name, key = %auth.key.name, ?replaced, "provisioner daemon registered");
    Ok(
        json!({"id": daemon.id, "organization_id": daemon.organization_id, "organization_name": auth.org.name, "tags": daemon.tags}),
    )
}

/// The registered daemon behind a key: it must belong to that key and not be
/// disconnected (its key deleted).
async fn identity(ctx: Ctx<'_>, auth: &KeyAuth, daemon_id: &str) -> Result<DaemonIdentity> {
    let mut conn = ctx.conn().await?;
    let daemon = store::provisioners::get_daemon(&mut conn, daemon_id)
        .await?
        .filter(|d| d.key_id.as_deref() == Some(auth.key.id.as_str()) && !d.disconnected)
        .ok_or_else(|| {
            Error::unauthorized("unknown daemon for this provisioner key; register again")
        })?;
    Ok(DaemonIdentity::new(
        daemon.id,
        auth.org.org_ref(),
        daemon.provisioners,
        daemon.tags,
    ))
}

/// Takes the oldest job the daemon may run, waiting up to `wait` (at most 60 s).
pub async fn acquire(
    q: Queue<'_>,
    auth: &KeyAuth,
    daemon_id: &str,
    wait: Duration,
) -> Result<Option<AcquiredJob>> {
    let daemon = identity(q.ctx, auth, daemon_id).await?;
    jobs::acquire(q, &daemon, wait.min(Duration::from_secs(60))).await
}

pub async fn heartbeat(
    q: Queue<'_>,
    auth: &KeyAuth,
    daemon_id: &str,
    job_id: &str,
) -> Result<HeartbeatReply> {
    let daemon = identity(q.ctx, auth, daemon_id).await?;
    jobs::heartbeat(q, &daemon, job_id).await
}

/// Log lines as sent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    pub logs: Vec<LogLine>,
}

pub async fn logs(
    q: Queue<'_>,
    auth: &KeyAuth,
    daemon_id: &str,
    job_id: &str,
    req: &Logs,
) -> Result<()> {
    let daemon = identity(q.ctx, auth, daemon_id).await?;
    jobs::append_logs(q, &daemon, job_id, &req.logs).await
}

pub async fn complete(
    q: Queue<'_>,
    auth: &KeyAuth,
    daemon_id: &str,
    job_id: &str,
    result: &JobResult,
) -> Result<()> {
    let daemon = identity(q.ctx, auth, daemon_id).await?;
    jobs::complete(q, &daemon, job_id, result).await
}

/// A failure as sent (`canceled` when the daemon stopped on request).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub error: String,
    #[serde(default)]
    pub canceled: bool,
}

pub async fn fail(
    q: Queue<'_>,
    auth: &KeyAuth,
    daemon_id: &str,
    job_id: &str,
    req: &Failure,
) -> Result<()> {
    let daemon = identity(q.ctx, auth, daemon_id).await?;
    jobs::fail(q, &daemon, job_id, &req.error, req.canceled).await
}
