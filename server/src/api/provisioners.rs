//! Provisioner keys, daemons and jobs, as people see them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use orgsync_policy::{Action, Resource};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Page;
use super::extract::{Actor, ApiJson, ApiQuery, Path};
use super::orgs::load_org;
use crate::app::AppState;
use crate::audit::{self, Change, to_value};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::jobs;
use crate::model::{Name, Organization};
use crate::provisioner::{Tags, effective_tags, validate_tags};
use crate::secrets;
use crate::store::{self, jobs::Job, provisioners::ProvisionerKey};

/// Key names daemons use for other authentication schemes.
const RESERVED_KEY_NAMES: &[&str] = &["built-in", "user-auth", "psk"];

pub async fn list_keys(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<ProvisionerKey>>> {
    let (org, _) = load_org(&app, &actor, &org, Action::PROVISIONER_KEY_READ).await?;
    let mut conn = app.db.pool().acquire().await?;
    Ok(Json(
        store::provisioners::list_keys(&mut conn, &org.id).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    pub name: String,
    #[serde(default)]
    pub tags: Tags,
}

/// `POST /organizations/{organization}/provisionerkeys`: the secret is in the
/// response once and never again; only its SHA-256 is stored.
pub async fn create_key(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreateKeyRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (org, _) = load_org(&app, &actor, &org, Action::ORGANIZATION_READ).await?;
    let _permit = app.authz.require(
        &actor.principal.entity,
        Action::PROVISIONER_KEY_CREATE,
        &Resource::provisioner_key(&org.org_ref(), "new"),
        "organization",
    )?;
    if RESERVED_KEY_NAMES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(&req.name))
    {
        return Err(ApiError::validation(
            "name",
            format!("`{}` is reserved", req.name),
        ));
    }
    let name = Name::parse("name", &req.name)?;
    validate_tags(&req.tags).map_err(|e| ApiError::validation("tags", e))?;
    let secret = secrets::random_base62(43);
    let now_s = clock::fmt(clock::now());
    let key = ProvisionerKey {
        id: store::new_id(),
        organization_id: org.id.clone(),
        name: name.as_str().to_owned(),
        tags: req.tags.clone(),
        created_by: actor.id().to_owned(),
        created_at: now_s.clone(),
    };
    let mut tx = app.db.begin().await?;
    store::provisioners::insert_key(&mut tx, &key, &secrets::sha256_hex(&secret))
        .await
        .map_err(ApiError::on_unique(format!(
            "a provisioner key named `{}` already exists in `{}`",
            key.name, org.name
        )))?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "create",
            resource_type: "provisioner_key",
            resource_id: &key.id,
            resource_target: &key.name,
            diff: audit::created(&to_value(&key)),
            status_code: 201,
        },
    )
    .await?;
    tx.commit().await?;
    let mut body = to_value(&key);
    if let Some(map) = body.as_object_mut() {
        map.insert("key".to_owned(), Value::String(secret));
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// Deleting a key disconnects its daemons: their next call is refused (401),
/// and jobs they were running fail now rather than at the heartbeat timeout.
pub async fn delete_key(
    State(app): State<AppState>,
    actor: Actor,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (org, _) = load_org(&app, &actor, &org, Action::ORGANIZATION_READ).await?;
    let mut conn = app.db.pool().acquire().await?;
    let key = store::provisioners::find_key(&mut conn, &org.id, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("provisioner key"))?;
    drop(conn);
    let _permit = app.authz.require(
        &actor.principal.entity,
        Action::PROVISIONER_KEY_DELETE,
        &Resource::provisioner_key(&org.org_ref(), &key.id),
        "provisioner key",
    )?;
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    let daemons = store::provisioners::disconnect_key_daemons(&mut tx, &key.id, &now_s).await?;
    store::jobs::fail_for_workers(
        &mut tx,
        &daemons,
        &format!(
            "the provisioner key `{}` of the daemon running this job was deleted",
            key.name
        ),
        &now_s,
    )
    .await?;
    store::provisioners::delete_key(&mut tx, &key.id).await?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "delete",
            resource_type: "provisioner_key",
            resource_id: &key.id,
            resource_target: &key.name,
            diff: audit::deleted(&to_value(&key)),
            status_code: 204,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_daemons(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<store::provisioners::Daemon>>> {
    let (org, _) = load_org(&app, &actor, &org, Action::PROVISIONER_DAEMON_READ).await?;
    let mut conn = app.db.pool().acquire().await?;
    let daemons =
        store::provisioners::list_daemons(&mut conn, &org.id, &jobs::online_after()).await?;
    Ok(Json(
        daemons.into_iter().filter(|d| !d.disconnected).collect(),
    ))
}

/// A job's resource for the policies.
pub(crate) fn job_resource(org: &Organization, job: &Job) -> Resource {
    Resource::provisioner_job(&org.org_ref(), &job.id, &job.initiator_id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub async fn list_jobs(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiQuery(q): ApiQuery<JobsQuery>,
) -> ApiResult<Json<Vec<Job>>> {
    let (org, _) = load_org(&app, &actor, &org, Action::ORGANIZATION_READ).await?;
    if let Some(s) = &q.status
        && crate::provisioner::JobStatus::parse(s).is_none()
    {
        return Err(ApiError::validation(
            "status",
            format!("`{s}` is not a job status"),
        ));
    }
    let (limit, offset) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .resolve(50, 1000)?;
    let mut conn = app.db.pool().acquire().await?;
    let all = store::jobs::list(&mut conn, &org.id, q.status.as_deref(), limit, offset).await?;
    let online_after = jobs::online_after();
    let mut out = Vec::new();
    for mut job in all {
        if app.authz.allowed(
            &actor.principal.entity,
            Action::PROVISIONER_JOB_READ,
            &job_resource(&org, &job),
        ) {
            job.queue_message = jobs::queue_message(&mut conn, &job, &online_after).await?;
            out.push(job);
        }
    }
    Ok(Json(out))
}

/// Loads a job and its org, requiring `action` on it.
pub(crate) async fn load_job(
    app: &AppState,
    actor: &Actor,
    id: &str,
    action: Action,
) -> ApiResult<(Job, Organization)> {
    let mut conn = app.db.pool().acquire().await?;
    let job = store::jobs::get(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    let org = store::orgs::find(&mut conn, &job.organization_id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    drop(conn);
    app.authz.require(
        &actor.principal.entity,
        action,
        &job_resource(&org, &job),
        "job",
    )?;
    Ok((job, org))
}

pub async fn get_job(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Job>> {
    let (mut job, _) = load_job(&app, &actor, &id, Action::PROVISIONER_JOB_READ).await?;
    let mut conn = app.db.pool().acquire().await?;
    job.queue_message = jobs::queue_message(&mut conn, &job, &jobs::online_after()).await?;
    Ok(Json(job))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// Only lines after this id.
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

/// `GET /provisionerjobs/{id}/logs?after=N`: readable while the job runs.
pub async fn job_logs(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> ApiResult<Json<Vec<store::jobs::LogEntry>>> {
    load_job(&app, &actor, &id, Action::PROVISIONER_JOB_READ).await?;
    let (limit, _) = Page {
        limit: q.limit,
        offset: None,
    }
    .resolve(1000, 10_000)?;
    let mut conn = app.db.pool().acquire().await?;
    Ok(Json(
        store::jobs::logs(&mut conn, &id, q.after.unwrap_or(0), limit).await?,
    ))
}

/// `POST /provisionerjobs/{id}/cancel`: a pending job is canceled at once; a
/// running one is asked to stop (its daemon learns at the next heartbeat).
pub async fn cancel_job(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (job, org) = load_job(&app, &actor, &id, Action::PROVISIONER_JOB_CANCEL).await?;
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    let status = store::jobs::cancel(&mut tx, &job.id, &now_s)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(format!(
                "the job already finished ({})",
                job.status.as_str()
            ))
        })?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
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
    tx.commit().await?;
    Ok(Json(json!({"id": job.id, "status": status})))
}

/// Effective tags of a key (what its daemons run with).
pub(crate) fn key_tags(key: &ProvisionerKey) -> Tags {
    effective_tags(&key.tags)
}
