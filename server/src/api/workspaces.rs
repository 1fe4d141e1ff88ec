//! Workspaces and their builds: the HTTP adapter of
//! [`crate::usecase::workspaces`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

use super::extract::{Actor, ApiJson, ApiQuery, Path};
use crate::app::AppState;
use crate::error::ApiResult;
use crate::provisioner::Transition;
use crate::usecase::workspaces::{
    self, BuildSummary, ListQuery, NewBuild, NewWorkspace, Workspace,
};

/// `POST /organizations/{organization}/members/{user}/workspaces`: creates the
/// workspace and its first `start` build.
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    Path((org_key, user_key)): Path<(String, String)>,
    ApiJson(req): ApiJson<NewWorkspace>,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    let ws = workspaces::create(
        app.ctx(),
        &app.jobs,
        &actor.caller(),
        &org_key,
        &user_key,
        req,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(ws)))
}

/// `GET /workspaces`: every live workspace the caller may read.
pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        workspaces::list(app.ctx(), &actor.caller(), &q).await?,
    ))
}

pub async fn get(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Workspace>> {
    Ok(Json(
        workspaces::get(app.ctx(), &actor.caller(), &id).await?,
    ))
}

pub async fn builds(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<BuildSummary>>> {
    Ok(Json(
        workspaces::builds(app.ctx(), &actor.caller(), &id).await?,
    ))
}

/// `POST /workspaces/{id}/builds {transition}`.
pub async fn create_build(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewBuild>,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    let ws = workspaces::start_build(app.ctx(), &app.jobs, &actor.caller(), &id, req).await?;
    Ok((StatusCode::CREATED, Json(ws)))
}

/// `DELETE /workspaces/{id}`: a `delete` build; the workspace is soft-deleted
/// when it succeeds.
pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    let req = NewBuild {
        transition: Transition::Delete,
        template_version_id: None,
        rich_parameter_values: None,
    };
    let ws = workspaces::start_build(app.ctx(), &app.jobs, &actor.caller(), &id, req).await?;
    Ok((StatusCode::ACCEPTED, Json(ws)))
}
