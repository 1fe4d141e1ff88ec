//! LDAP sync settings and runs: the HTTP adapter of [`crate::usecase::ldapsync`].

use axum::Json;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::extract::{ApiJson, ApiQuery, Call};
use crate::error::{ApiError, ApiResult};
use crate::ldapsync::Run;
use crate::usecase::Page;
use crate::usecase::ldapsync::{self, StartRun};

/// `GET /ldapsync/runs`: a page of runs and how many there are in all.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunList {
    pub runs: Vec<Run>,
    pub count: i64,
}

/// Get the LDAP sync settings (without the bind password).
///
/// `GET /settings/ldapsync`: the settings without the bind password.
#[utoipa::path(get, path = "/settings/ldapsync", tag = "ldapsync", responses((status = 200, description = "OK", body = Object)))]
pub async fn get_settings(c: Call) -> ApiResult<Json<Value>> {
    Ok(Json(ldapsync::settings(c.ctx(), &c.caller).await?))
}

/// Replace the LDAP sync settings.
///
/// `PUT /settings/ldapsync`: replaces the settings (absent fields take their
/// defaults). A missing or null `bind_password` keeps the stored one; `""`
/// clears it.
#[utoipa::path(put, path = "/settings/ldapsync", tag = "ldapsync", request_body = Object, responses((status = 200, description = "OK", body = Object)))]
pub async fn put_settings(c: Call, ApiJson(body): ApiJson<Value>) -> ApiResult<Json<Value>> {
    let Value::Object(body) = body else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    Ok(Json(
        ldapsync::replace_settings(c.ctx(), &c.caller, body).await?,
    ))
}

/// List LDAP sync runs, newest first.
///
/// `GET /ldapsync/runs`: newest first.
#[utoipa::path(get, path = "/ldapsync/runs", tag = "ldapsync", params(Page), responses((status = 200, description = "OK", body = RunList)))]
pub async fn list_runs(c: Call, ApiQuery(page): ApiQuery<Page>) -> ApiResult<Json<RunList>> {
    let (runs, count) = ldapsync::runs(&c.app.directory_sync(), &c.caller, page).await?;
    Ok(Json(RunList { runs, count }))
}

/// Get an LDAP sync run.
///
/// `GET /ldapsync/runs/{id}`: with progress while running, and the plan of a
/// dry or aborted run.
#[utoipa::path(get, path = "/ldapsync/runs/{id}", tag = "ldapsync", responses((status = 200, description = "OK", body = Run)))]
pub async fn get_run(c: Call<String>) -> ApiResult<Json<Run>> {
    Ok(Json(
        ldapsync::run(&c.app.directory_sync(), &c.caller, &c.path).await?,
    ))
}

/// Start an LDAP sync run.
///
/// `POST /ldapsync/runs {dry_run, force, full?}`: starts a run and answers
/// 202 with it (`status: running`); poll `GET /ldapsync/runs/{id}`.
#[utoipa::path(post, path = "/ldapsync/runs", tag = "ldapsync", request_body = StartRun, responses((status = 202, description = "The run has started", body = Run)))]
pub async fn start_run(
    c: Call,
    ApiJson(body): ApiJson<StartRun>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let run = ldapsync::start(&c.app.directory_sync(), &c.caller, body).await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}
