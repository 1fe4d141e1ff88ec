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

/// List an organization's provisioner keys.
#[utoipa::path(get, path = "/organizations/{organization}/provisionerkeys", tag = "provisioners", responses((status = 200, description = "OK", body = Vec<ProvisionerKey>)))]
pub async fn list_keys(c: Call<String>) -> ApiResult<Json<Vec<ProvisionerKey>>> {
    Ok(Json(
        provisioners::list_keys(c.ctx(), &c.caller, &c.path).await?,
    ))
}

/// Create a provisioner key (the secret is shown once).
///
/// `POST /organizations/{organization}/provisionerkeys`: the secret is in the
/// response once and never again; only its SHA-256 is stored.
#[utoipa::path(post, path = "/organizations/{organization}/provisionerkeys", tag = "provisioners", request_body = NewKey, responses((status = 201, description = "Created", body = super::openapi::ProvisionerKeyCreated)))]
pub async fn create_key(
    c: Call<String>,
    ApiJson(req): ApiJson<NewKey>,
) -> ApiResult<Created<Value>> {
    Ok(created(
        provisioners::create_key(c.ctx(), &c.caller, &c.path, req).await?,
    ))
}

/// Delete a provisioner key.
///
/// `DELETE /organizations/{organization}/provisionerkeys/{name}`.
#[utoipa::path(delete, path = "/organizations/{organization}/provisionerkeys/{name}", tag = "provisioners", responses((status = 204, description = "No content")))]
pub async fn delete_key(c: Call<(String, String)>) -> ApiResult<StatusCode> {
    let (org, name) = &c.path;
    provisioners::delete_key(c.ctx(), &c.caller, org, name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List an organization's provisioner daemons.
#[utoipa::path(get, path = "/organizations/{organization}/provisionerdaemons", tag = "provisioners", responses((status = 200, description = "OK", body = Vec<Daemon>)))]
pub async fn list_daemons(c: Call<String>) -> ApiResult<Json<Vec<Daemon>>> {
    Ok(Json(
        provisioners::list_daemons(c.ctx(), &c.caller, &c.path).await?,
    ))
}

/// List an organization's provisioner jobs.
#[utoipa::path(get, path = "/organizations/{organization}/provisionerjobs", tag = "provisioners", params(JobsQuery), responses((status = 200, description = "OK", body = Vec<Job>)))]
pub async fn list_jobs(
    c: Call<String>,
    ApiQuery(q): ApiQuery<JobsQuery>,
) -> ApiResult<Json<Vec<Job>>> {
    Ok(Json(
        provisioners::list_jobs(c.ctx(), &c.caller, &c.path, &q).await?,
    ))
}

/// Get a provisioner job.
#[utoipa::path(get, path = "/provisionerjobs/{id}", tag = "provisioners", responses((status = 200, description = "OK", body = Job)))]
pub async fn get_job(c: Call<String>) -> ApiResult<Json<Job>> {
    Ok(Json(
        provisioners::get_job(c.ctx(), &c.caller, &c.path).await?,
    ))
}

/// Read a job's logs.
///
/// `GET /provisionerjobs/{id}/logs?after=N`: readable while the job runs.
#[utoipa::path(get, path = "/provisionerjobs/{id}/logs", tag = "provisioners", params(LogsQuery), responses((status = 200, description = "OK", body = Vec<LogEntry>)))]
pub async fn job_logs(
    c: Call<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> ApiResult<Json<Vec<LogEntry>>> {
    Ok(Json(
        provisioners::job_logs(c.ctx(), &c.caller, &c.path, &q).await?,
    ))
}

/// Cancel a job.
///
/// `POST /provisionerjobs/{id}/cancel`: a pending job is canceled at once; a
/// running one is asked to stop (its daemon learns at the next heartbeat).
#[utoipa::path(post, path = "/provisionerjobs/{id}/cancel", tag = "provisioners", responses((status = 200, description = "OK", body = super::openapi::JobCanceled)))]
pub async fn cancel_job(c: Call<String>) -> ApiResult<Json<Value>> {
    Ok(Json(
        provisioners::cancel_job(c.ctx(), &c.caller, &c.path).await?,
    ))
}
