//! Provisioner keys, daemons and jobs, as people see them: the HTTP adapter of
//! [`crate::usecase::provisioners`].

use axum::Json;
use axum::http::StatusCode;
use serde_json::Value;

use super::extract::{ApiJson, ApiQuery, Call};
use super::reply::{Created, created};
use crate::error::ApiResult;
use crate::usecase::provisioners::{
    self, Daemon, Job, JobsQuery, LogEntry, LogsQuery, NewKey, ProvisionerKey,
};

pub async fn list_keys(c: Call<String>) -> ApiResult<Json<Vec<ProvisionerKey>>> {
    Ok(Json(
        provisioners::list_keys(c.ctx(), &c.caller, &c.path).await?,
    ))
}

/// `POST /organizations/{organization}/provisionerkeys`: the secret is in the
/// response once and never again; only its SHA-256 is stored.
pub async fn create_key(
    c: Call<String>,
    ApiJson(req): ApiJson<NewKey>,
) -> ApiResult<Created<Value>> {
    Ok(created(
        provisioners::create_key(c.ctx(), &c.caller, &c.path, req).await?,
    ))
}

/// `DELETE /organizations/{organization}/provisionerkeys/{name}`.
pub async fn delete_key(c: Call<(String, String)>) -> ApiResult<StatusCode> {
    let (org, name) = &c.path;
    provisioners::delete_key(c.ctx(), &c.caller, org, name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_daemons(c: Call<String>) -> ApiResult<Json<Vec<Daemon>>> {
    Ok(Json(
        provisioners::list_daemons(c.ctx(), &c.caller, &c.path).await?,
    ))
}

pub async fn list_jobs(
    c: Call<String>,
    ApiQuery(q): ApiQuery<JobsQuery>,
) -> ApiResult<Json<Vec<Job>>> {
    Ok(Json(
        provisioners::list_jobs(c.ctx(), &c.caller, &c.path, &q).await?,
    ))
}

pub async fn get_job(c: Call<String>) -> ApiResult<Json<Job>> {
    Ok(Json(
        provisioners::get_job(c.ctx(), &c.caller, &c.path).await?,
    ))
}

/// `GET /provisionerjobs/{id}/logs?after=N`: readable while the job runs.
pub async fn job_logs(
    c: Call<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> ApiResult<Json<Vec<LogEntry>>> {
    Ok(Json(
        provisioners::job_logs(c.ctx(), &c.caller, &c.path, &q).await?,
    ))
}

/// `POST /provisionerjobs/{id}/cancel`: a pending job is canceled at once; a
/// running one is asked to stop (its daemon learns at the next heartbeat).
pub async fn cancel_job(c: Call<String>) -> ApiResult<Json<Value>> {
    Ok(Json(
        provisioners::cancel_job(c.ctx(), &c.caller, &c.path).await?,
    ))
}
