//! Groups: the HTTP adapter of [`crate::usecase::groups`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::extract::{Actor, ApiJson, ApiQuery, Path};
use crate::app::AppState;
use crate::error::ApiResult;
use crate::model::Group;
use crate::usecase::groups::{self, GroupChanges, NewGroup};

pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<super::Page>,
) -> ApiResult<Json<Vec<Group>>> {
    Ok(Json(
        groups::list(app.ctx(), &actor.caller(), &org, page).await?,
    ))
}

pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<NewGroup>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    let group = groups::create(app.ctx(), &actor.caller(), &org, req).await?;
    Ok((StatusCode::CREATED, Json(group)))
}

pub async fn get(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Group>> {
    Ok(Json(groups::get(app.ctx(), &actor.caller(), &id).await?))
}

pub async fn update(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<GroupChanges>,
) -> ApiResult<Json<Group>> {
    Ok(Json(
        groups::update(app.ctx(), &actor.caller(), &id, req).await?,
    ))
}

pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    groups::delete(app.ctx(), &actor.caller(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
