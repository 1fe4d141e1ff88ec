//! Provisioner keys, daemons and jobs, as people see them.

use orgsync_policy::{Action, Resource};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Caller, Ctx, Page, Work, orgs};
use crate::audit::{Change, to_value};
use crate::authz::Permit;
use crate::error::{Error, Result};
use crate::jobs;
use crate::model::{Name, Organization};
use crate::provisioner::{Tags, effective_tags, validate_tags};
use crate::secrets;
pub use crate::store::jobs::{Job, LogEntry};
pub use crate::store::provisioners::{Daemon, ProvisionerKey};
use crate::store::{self, Conn};

/// Key names daemons use for other authentication schemes.
const RESERVED_KEY_NAMES: &[&str] = &["built-in", "user-auth", "psk"];

/// The calling user's id (empty for a system actor or a daemon, which the
/// policies never let create what a user owns).
pub(crate) fn caller_id(caller: &Caller) -> &str {
    caller.user_id().unwrap_or_default()
}

pub async fn list_keys(
    ctx: Ctx<'_>,
    caller: &Caller,
    org_key: &str,
) -> Result<Vec<ProvisionerKey>> {
    let mut conn = ctx.conn().await?;
    let (org, _) = orgs::load(
        &mut conn,
        ctx.authz,
        caller,
        org_key,
        Action::PROVISIONER_KEY_READ,
    )
    .await?;
    Ok(store::provisioners::list_keys(&mut conn, &org.id).await?)
}

/// A new provisioner key as requested.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    #[serde(default)]
    pub tags: Tags,
}

/// Creates a key: the secret is in the answer (`key`) once and never again;
/// only its SHA-256 is stored.
pub async fn create_key(
    ctx: Ctx<'_>,
    caller: &Caller,
    org_key: &str,
    req: NewKey,
) -> Result<Value> {
    let mut work = Work::begin(ctx, caller).await?;
    let (org, _) = orgs::load_in(&mut work, org_key, Action::ORGANIZATION_READ).await?;
    let permit = work.require(
        Action::PROVISIONER_KEY_CREATE,
        &Resource::provisioner_key(&org.org_ref(), "new"),
        "organization",
    )?;
    if RESERVED_KEY_NAMES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(&req.name))
    {
        return Err(Error::validation(
            "name",
            format!("`{}` is reserved", req.name),
        ));
    }
    let name = Name::parse("name", &req.name)?;
    validate_tags(&req.tags).map_err(|e| Error::validation("tags", e))?;
    let secret = secrets::random_base62(43);
    let key = ProvisionerKey {
        id: store::new_id(),
        organization_id: org.id.clone(),
        name: name.as_str().to_owned(),
        tags: req.tags,
        created_by: caller_id(caller).to_owned(),
        created_at: work.now_s.clone(),
    };
    store::provisioners::insert_key(
        &mut work.write(&permit)?,
        &key,
        &secrets::sha256_hex(&secret),
    )
    .await
    .map_err(Error::on_unique(format!(
        "a provisioner key named `{}` already exists in `{}`",
        key.name, org.name
    )))?;
    work.audit(&permit, Change::created(&key)).await?;
    work.commit().await?;
    let mut body = to_value(&key);
    if let Some(map) = body.as_object_mut() {
        map.insert("key".to_owned(), Value::String(secret));
    }
    Ok(body)
}

/// Deleting a key disconnects its daemons: their next call is refused (401),
/// and jobs they were running fail now rather than at the heartbeat timeout.
pub async fn delete_key(ctx: Ctx<'_>, caller: &Caller, org_key: &str, name: &str) -> Result<()> {
    let mut work = Work::begin(ctx, caller).await?;
    let (org, _) = orgs::load_in(&mut work, org_key, Action::ORGANIZATION_READ).await?;
    let key = store::provisioners::find_key(work.conn(), &org.id, name)
        .await?
        .ok_or_else(|| Error::not_found("provisioner key"))?;
    let permit = work.require(
        Action::PROVISIONER_KEY_DELETE,
        &Resource::provisioner_key(&org.org_ref(), &key.id),
        "provisioner key",
    )?;
    let now_s = work.now_s.clone();
    let daemons =
        store::provisioners::disconnect_key_daemons(&mut work.write(&permit)?, &key.id, &now_s)
            .await?;
    store::jobs::fail_for_workers(
        &mut work.write(&permit)?,
        &daemons,
        &format!(
            "the provisioner key `{}` of the daemon running this job was deleted",
            key.name
        ),
        &now_s,
    )
    .await?;
    store::provisioners::delete_key(&mut work.write(&permit)?, &key.id).await?;
    work.audit(&permit, Change::deleted(&key)).await?;
    work.commit().await
}

/// The connected daemons of an organization.
pub async fn list_daemons(ctx: Ctx<'_>, caller: &Caller, org_key: &str) -> Result<Vec<Daemon>> {
    let mut conn = ctx.conn().await?;
    let (org, _) = orgs::load(
        &mut conn,
        ctx.authz,
        caller,
        org_key,
        Action::PROVISIONER_DAEMON_READ,
    )
    .await?;
    let daemons =
        store::provisioners::list_daemons(&mut conn, &org.id, &jobs::online_after()).await?;
    Ok(daemons.into_iter().filter(|d| !d.disconnected).collect())
}

/// A job's resource for the policies.
pub(crate) fn job_resource(org: &Organization, job: &Job) -> Resource {
    Resource::provisioner_job(&org.org_ref(), &job.id, &job.initiator_id)
}

/// `?status=&limit=&offset=` of a job list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// The jobs of an organization the caller may read, each with why it waits.
pub async fn list_jobs(
    ctx: Ctx<'_>,
    caller: &Caller,
    org_key: &str,
    q: &JobsQuery,
) -> Result<Vec<Job>> {
    let mut conn = ctx.conn().await?;
    let (org, _) = orgs::load(
        &mut conn,
        ctx.authz,
        caller,
        org_key,
        Action::ORGANIZATION_READ,
    )
    .await?;
    if let Some(s) = &q.status
        && crate::provisioner::JobStatus::parse(s).is_none()
    {
        return Err(Error::validation(
            "status",
            format!("`{s}` is not a job status"),
        ));
    }
    let (limit, offset) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .resolve(50, 1000)?;
    let all = store::jobs::list(&mut conn, &org.id, q.status.as_deref(), limit, offset).await?;
    let online_after = jobs::online_after();
    let mut out = Vec::new();
    for mut job in all {
        if caller.allowed(
            ctx.authz,
            Action::PROVISIONER_JOB_READ,
            &job_resource(&org, &job),
        ) {
            job.queue_message = jobs::queue_message(&mut conn, &job, &online_after).await?;
            out.push(job);
        }
    }
    Ok(out)
}

/// Loads a job and its org, deciding `action` on it.
async fn load_job(
    conn: &mut Conn,
    ctx: Ctx<'_>,
    caller: &Caller,
    id: &str,
    action: Action,
) -> Result<(Job, Organization, Permit)> {
    let job = store::jobs::get(conn, id).await?;
    let (job, org) = orgs::with_org(conn, job, |j| &j.organization_id, "job").await?;
    let permit = caller.require(ctx.authz, action, &job_resource(&org, &job), "job")?;
    Ok((job, org, permit))
}

pub async fn get_job(ctx: Ctx<'_>, caller: &Caller, id: &str) -> Result<Job> {
    let mut conn = ctx.conn().await?;
    let (mut job, _, _) =
        load_job(&mut conn, ctx, caller, id, Action::PROVISIONER_JOB_READ).await?;
    job.queue_message = jobs::queue_message(&mut conn, &job, &jobs::online_after()).await?;
    Ok(job)
}

/// `?after=&limit=` of a job's logs.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// Only lines after this id.
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

/// A job's log lines (readable while the job runs).
pub async fn job_logs(
    ctx: Ctx<'_>,
    caller: &Caller,
    id: &str,
    q: &LogsQuery,
) -> Result<Vec<LogEntry>> {
    let mut conn = ctx.conn().await?;
    load_job(&mut conn, ctx, caller, id, Action::PROVISIONER_JOB_READ).await?;
    let (limit, _) = Page {
        limit: q.limit,
        offset: None,
    }
    .resolve(1000, 10_000)?;
    Ok(store::jobs::logs(&mut conn, id, q.after.unwrap_or(0), limit).await?)
}

/// Cancels a job: a pending job at once; a running one is asked to stop (its
/// daemon learns at the next heartbeat). Answers `{id, status}`.
pub async fn cancel_job(ctx: Ctx<'_>, caller: &Caller, id: &str) -> Result<Value> {
    let mut work = Work::begin(ctx, caller).await?;
    let (job, org, permit) =
        load_job(work.conn(), ctx, caller, id, Action::PROVISIONER_JOB_CANCEL).await?;
    let now_s = work.now_s.clone();
    let status = store::jobs::cancel(&mut work.write(&permit)?, &job.id, &now_s)
        .await?
        .ok_or_else(|| {
            Error::conflict(format!(
                "the job already finished ({})",
                job.status.as_str()
            ))
        })?;
    work.audit(
        &permit,
        Change {
            organization_id: Some(&org.id),
            action: "update",
            resource_type: "provisioner_job",
            resource_id: &job.id,
            resource_target: job.job_type.as_str(),
            diff: json!({"status": {"old": job.status, "new": status}}),
            status_code: 200,
        },
    )
    .await?;
    work.commit().await?;
    Ok(json!({"id": job.id, "status": status}))
}

/// Effective tags of a key (what its daemons run with).
pub(crate) fn key_tags(key: &ProvisionerKey) -> Tags {
    effective_tags(&key.tags)
}
