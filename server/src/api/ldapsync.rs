//! LDAP sync settings and runs: the HTTP adapter of [`crate::usecase::ldapsync`].

use axum::Json;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::extract::{ApiJson, ApiQuery, Call};
use crate::error::{ApiError, ApiResult};
use crate::ldapsync::Run;
use crate::usecase::Page;
use crate::usecase::ldapsync::{self, StartRun};

/// `GET /settings/ldapsync`: the settings without the bind password.
pub async fn get_settings(c: Call) -> ApiResult<Json<Value>> {
    Ok(Json(ldapsync::settings(c.ctx(), &c.caller).await?))
}

/// `PUT /settings/ldapsync`: replaces the settings (absent fields take their
/// defaults). A missing or null `bind_password` keeps the stored one; `""`
/// clears it.
pub async fn put_settings(c: Call, ApiJson(body): ApiJson<Value>) -> ApiResult<Json<Value>> {
    let Value::Object(body) = body else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    Ok(Json(
        ldapsync::replace_settings(c.ctx(), &c.caller, body).await?,
    ))
}

/// `GET /ldapsync/runs`: newest first.
pub async fn list_runs(c: Call, ApiQuery(page): ApiQuery<Page>) -> ApiResult<Json<Value>> {
    let (runs, count) = ldapsync::runs(&c.app.directory_sync(), &c.caller, page).await?;
    Ok(Json(json!({"runs": runs, "count": count})))
}

/// `GET /ldapsync/runs/{id}`: with progress while running, and the plan of a
/// dry or aborted run.
pub async fn get_run(c: Call<String>) -> ApiResult<Json<Run>> {
    Ok(Json(
        ldapsync::run(&c.app.directory_sync(), &c.caller, &c.path).await?,
    ))
}

/// `POST /ldapsync/runs {dry_run, force, full?}`: starts a run and answers
/// 202 with it (`status: running`); poll `GET /ldapsync/runs/{id}`.
pub async fn start_run(
    c: Call,
    ApiJson(body): ApiJson<StartRun>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let run = ldapsync::start(&c.app.directory_sync(), &c.caller, body).await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}
