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

/// Create a workspace (and its first start build).
///
/// `POST /organizations/{organization}/members/{user}/workspaces`: creates the
/// workspace and its first `start` build.
#[utoipa::path(post, path = "/organizations/{organization}/members/{user}/workspaces", tag = "workspaces", request_body = NewWorkspace, responses((status = 201, description = "Created", body = Workspace), (status = 400, description = "Invalid input: an unknown transition, unknown or missing rich parameters (named in `validations`)", body = crate::error::ErrorBody)))]
pub async fn create(
    c: Call<(String, String)>,
    ApiJson(req): ApiJson<NewWorkspace>,
) -> ApiResult<Created<Workspace>> {
    let (org, user) = &c.path;
    let ws = workspaces::create(c.ctx(), &c.app.jobs, &c.caller, org, user, req).await?;
    Ok(created(ws))
}

/// List the workspaces the caller may read.
///
/// `GET /workspaces`: every live workspace the caller may read.
#[utoipa::path(get, path = "/workspaces", tag = "workspaces", params(ListQuery), responses((status = 200, description = "OK", body = super::openapi::WorkspaceList)))]
pub async fn list(c: Call, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Value>> {
    Ok(Json(workspaces::list(c.ctx(), &c.caller, &q).await?))
}

/// Get a workspace.
#[utoipa::path(get, path = "/workspaces/{id}", tag = "workspaces", responses((status = 200, description = "OK", body = Workspace)))]
pub async fn get(c: Call<String>) -> ApiResult<Json<Workspace>> {
    Ok(Json(workspaces::get(c.ctx(), &c.caller, &c.path).await?))
}

/// List a workspace's builds.
#[utoipa::path(get, path = "/workspaces/{id}/builds", tag = "workspaces", responses((status = 200, description = "OK", body = Vec<BuildSummary>)))]
pub async fn builds(c: Call<String>) -> ApiResult<Json<Vec<BuildSummary>>> {
    Ok(Json(workspaces::builds(c.ctx(), &c.caller, &c.path).await?))
}

/// Start a build (start, stop, delete).
///
/// `POST /workspaces/{id}/builds {transition}`.
#[utoipa::path(post, path = "/workspaces/{id}/builds", tag = "workspaces", request_body = NewBuild, responses((status = 201, description = "Created", body = Workspace), (status = 400, description = "Invalid input: an unknown transition, unknown or missing rich parameters (named in `validations`)", body = crate::error::ErrorBody)))]
pub async fn create_build(
    c: Call<String>,
    ApiJson(req): ApiJson<NewBuild>,
) -> ApiResult<Created<Workspace>> {
    Ok(created(
        workspaces::start_build(c.ctx(), &c.app.jobs, &c.caller, &c.path, req).await?,
    ))
}

/// Delete a workspace (a delete build).
///
/// `DELETE /workspaces/{id}`: a `delete` build (202); the workspace is
/// soft-deleted when it succeeds.
#[utoipa::path(delete, path = "/workspaces/{id}", tag = "workspaces", responses((status = 202, description = "The delete build has started", body = Workspace)))]
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
