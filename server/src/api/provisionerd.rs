//! The daemon protocol (HTTP, JSON): the HTTP adapter of
//! [`crate::usecase::provisionerd`]. Every call carries the header
//! `Orgsync-Provisioner-Key: <secret>`; the key fixes the daemon's organization
//! and tags.
//!
//! - `POST /provisionerd/register {name, provisioners, version}` -> 201 `{id, organization_id, tags}`;
//!   a name the key already uses replaces that daemon (new id; the old one's
//!   calls get 401 and its running jobs fail); at most
//!   [`MAX_DAEMONS_PER_KEY`](crate::usecase::provisionerd::MAX_DAEMONS_PER_KEY) connected daemons per key (409 past it; daemons
//!   offline for 30 s that hold no job are dropped first)
//! - `POST /provisionerd/{daemon}/acquire?wait_ms=N` -> 200 job | 204 (long-poll, woken by notification)
//! - `POST /provisionerd/{daemon}/jobs/{job}/heartbeat` -> `{cancel}`
//! - `POST /provisionerd/{daemon}/jobs/{job}/logs {logs: [{stage, level, output}]}` -> 204;
//!   at most 1000 lines per call, NUL stripped, `output` at most 64 KiB (a
//!   longer one is cut and ends with ` [truncated]`)
//! - `POST /provisionerd/{daemon}/jobs/{job}/complete {state_base64?}` -> 204 (400 when
//!   `state_base64` is not standard base64)
//! - `POST /provisionerd/{daemon}/jobs/{job}/fail {error, canceled}` -> 204

use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::extract::{ApiJson, ApiJsonAnyText, ApiQuery, Path, RequestMeta};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::jobs::HeartbeatReply;
use crate::provisioner::JobResult;
pub use crate::usecase::provisionerd::KeyAuth;
use crate::usecase::provisionerd::{self, Failure, Logs, Registration};

pub const KEY_HEADER: &str = "orgsync-provisioner-key";

impl FromRequestParts<AppState> for KeyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let secret = parts
            .headers
            .get(KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("missing `Orgsync-Provisioner-Key` header"))?;
        provisionerd::authenticate(app.ctx(), secret).await
    }
}

/// Daemon protocol: register a daemon.
#[utoipa::path(post, path = "/provisionerd/register", tag = "provisioners", request_body = Registration, security(("provisioner_key" = [])), responses((status = 201, description = "Created", body = super::openapi::DaemonRegistered)))]
pub async fn register(
    State(app): State<AppState>,
    meta: RequestMeta,
    auth: KeyAuth,
    ApiJson(req): ApiJson<Registration>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = provisionerd::register(app.ctx(), meta.audit(None), &auth, req).await?;
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AcquireQuery {
    pub wait_ms: Option<u64>,
}

/// Daemon protocol: acquire a job (long poll).
#[utoipa::path(post, path = "/provisionerd/{daemon}/acquire", tag = "provisioners", params(AcquireQuery), security(("provisioner_key" = [])), responses((status = 200, description = "A job to run", body = crate::provisioner::AcquiredJob), (status = 204, description = "No job within the wait")))]
pub async fn acquire(
    State(app): State<AppState>,
    auth: KeyAuth,
    Path(daemon): Path<String>,
    ApiQuery(q): ApiQuery<AcquireQuery>,
) -> ApiResult<Response> {
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(25_000));
    match provisionerd::acquire(app.queue(), &auth, &daemon, wait).await? {
        Some(job) => Ok(Json(job).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Daemon protocol: a running job's heartbeat.
#[utoipa::path(post, path = "/provisionerd/{daemon}/jobs/{job}/heartbeat", tag = "provisioners", security(("provisioner_key" = [])), responses((status = 200, description = "OK", body = HeartbeatReply)))]
pub async fn heartbeat(
    State(app): State<AppState>,
    auth: KeyAuth,
    Path((daemon, job)): Path<(String, String)>,
) -> ApiResult<Json<HeartbeatReply>> {
    Ok(Json(
        provisionerd::heartbeat(app.queue(), &auth, &daemon, &job).await?,
    ))
}

/// Daemon protocol: append log lines to a job.
#[utoipa::path(post, path = "/provisionerd/{daemon}/jobs/{job}/logs", tag = "provisioners", request_body = Logs, security(("provisioner_key" = [])), responses((status = 204, description = "No content")))]
pub async fn logs(
    State(app): State<AppState>,
    auth: KeyAuth,
    Path((daemon, job)): Path<(String, String)>,
    ApiJsonAnyText(req): ApiJsonAnyText<Logs>,
) -> ApiResult<StatusCode> {
    provisionerd::logs(app.queue(), &auth, &daemon, &job, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Daemon protocol: a job succeeded.
#[utoipa::path(post, path = "/provisionerd/{daemon}/jobs/{job}/complete", tag = "provisioners", request_body = JobResult, security(("provisioner_key" = [])), responses((status = 204, description = "No content")))]
pub async fn complete(
    State(app): State<AppState>,
    auth: KeyAuth,
    Path((daemon, job)): Path<(String, String)>,
    ApiJson(req): ApiJson<JobResult>,
) -> ApiResult<StatusCode> {
    provisionerd::complete(app.queue(), &auth, &daemon, &job, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Daemon protocol: a job failed.
#[utoipa::path(post, path = "/provisionerd/{daemon}/jobs/{job}/fail", tag = "provisioners", request_body = Failure, security(("provisioner_key" = [])), responses((status = 204, description = "No content")))]
pub async fn fail(
    State(app): State<AppState>,
    auth: KeyAuth,
    Path((daemon, job)): Path<(String, String)>,
    ApiJsonAnyText(req): ApiJsonAnyText<Failure>,
) -> ApiResult<StatusCode> {
    provisionerd::fail(app.queue(), &auth, &daemon, &job, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}
