//! Workspaces and their builds: the HTTP adapter of
//! [`crate::usecase::workspaces`].

use axum::Json;
use axum::http::StatusCode;
use serde_json::Value;

use super::extract::{ApiJson, ApiQuery, Call};
use super::reply::{Created, created};
use crate::error::ApiResult;
use crate::provisioner::Transition;
use crate::usecase::workspaces::{
    self, BuildSummary, ListQuery, NewBuild, NewWorkspace, Workspace,
};

/// `POST /organizations/{organization}/members/{user}/workspaces`: creates the
/// workspace and its first `start` build.
pub async fn create(
    c: Call<(String, String)>,
    ApiJson(req): ApiJson<NewWorkspace>,
) -> ApiResult<Created<Workspace>> {
    let (org, user) = &c.path;
    let ws = workspaces::create(c.ctx(), &c.app.jobs, &c.caller, org, user, req).await?;
    Ok(created(ws))
}

/// `GET /workspaces`: every live workspace the caller may read.
pub async fn list(c: Call, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Value>> {
    Ok(Json(workspaces::list(c.ctx(), &c.caller, &q).await?))
}

pub async fn get(c: Call<String>) -> ApiResult<Json<Workspace>> {
    Ok(Json(workspaces::get(c.ctx(), &c.caller, &c.path).await?))
}

pub async fn builds(c: Call<String>) -> ApiResult<Json<Vec<BuildSummary>>> {
    Ok(Json(workspaces::builds(c.ctx(), &c.caller, &c.path).await?))
}

/// `POST /workspaces/{id}/builds {transition}`.
pub async fn create_build(
    c: Call<String>,
    ApiJson(req): ApiJson<NewBuild>,
) -> ApiResult<Created<Workspace>> {
    Ok(created(
        workspaces::start_build(c.ctx(), &c.app.jobs, &c.caller, &c.path, req).await?,
    ))
}

/// `DELETE /workspaces/{id}`: a `delete` build (202); the workspace is
/// soft-deleted when it succeeds.
pub async fn delete(c: Call<String>) -> ApiResult<(StatusCode, Json<Workspace>)> {
    let req = NewBuild {
        transition: Transition::Delete,
        template_version_id: None,
        rich_parameter_values: None,
        orphan: false,
    };
    let ws = workspaces::start_build(c.ctx(), &c.app.jobs, &c.caller, &c.path, req).await?;
    Ok((StatusCode::ACCEPTED, Json(ws)))
}
