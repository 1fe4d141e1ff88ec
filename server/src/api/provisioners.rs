//! Provisioner keys, daemons and jobs, as people see them: the HTTP adapter of
//! [`crate::usecase::provisioners`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

use super::extract::{Actor, ApiJson, ApiQuery, Path};
use crate::app::AppState;
use crate::error::ApiResult;
use crate::usecase::provisioners::{
    self, Daemon, Job, JobsQuery, LogEntry, LogsQuery, NewKey, ProvisionerKey,
};

pub async fn list_keys(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<ProvisionerKey>>> {
    Ok(Json(
        provisioners::list_keys(app.ctx(), &actor.caller(), &org).await?,
    ))
}

/// `POST /organizations/{organization}/provisionerkeys`: the secret is in the
/// response once and never again; only its SHA-256 is stored.
pub async fn create_key(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<NewKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = provisioners::create_key(app.ctx(), &actor.caller(), &org, req).await?;
    Ok((StatusCode::CREATED, Json(body)))
}

/// `DELETE /organizations/{organization}/provisionerkeys/{name}`.
pub async fn delete_key(
    State(app): State<AppState>,
    actor: Actor,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    provisioners::delete_key(app.ctx(), &actor.caller(), &org, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_daemons(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<Daemon>>> {
    Ok(Json(
        provisioners::list_daemons(app.ctx(), &actor.caller(), &org).await?,
    ))
}

pub async fn list_jobs(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiQuery(q): ApiQuery<JobsQuery>,
) -> ApiResult<Json<Vec<Job>>> {
    Ok(Json(
        provisioners::list_jobs(app.ctx(), &actor.caller(), &org, &q).await?,
    ))
}

pub async fn get_job(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Job>> {
    Ok(Json(
        provisioners::get_job(app.ctx(), &actor.caller(), &id).await?,
    ))
}

/// `GET /provisionerjobs/{id}/logs?after=N`: readable while the job runs.
pub async fn job_logs(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> ApiResult<Json<Vec<LogEntry>>> {
    Ok(Json(
        provisioners::job_logs(app.ctx(), &actor.caller(), &id, &q).await?,
    ))
}

/// `POST /provisionerjobs/{id}/cancel`: a pending job is canceled at once; a
/// running one is asked to stop (its daemon learns at the next heartbeat).
pub async fn cancel_job(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        provisioners::cancel_job(app.ctx(), &actor.caller(), &id).await?,
    ))
}
