//! Groups: the HTTP adapter of [`crate::usecase::groups`].

use axum::Json;
use axum::http::StatusCode;

use super::extract::{ApiJson, ApiQuery, Call, Path};
use crate::error::ApiResult;
use crate::model::Group;
use crate::usecase::groups::{self, GroupChanges, NewGroup};

pub async fn list(
    c: Call,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<super::Page>,
) -> ApiResult<Json<Vec<Group>>> {
    Ok(Json(groups::list(c.ctx(), &c.caller, &org, page).await?))
}

pub async fn create(
    c: Call,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<NewGroup>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    let group = groups::create(c.ctx(), &c.caller, &org, req).await?;
    Ok((StatusCode::CREATED, Json(group)))
}

pub async fn get(c: Call, Path(id): Path<String>) -> ApiResult<Json<Group>> {
    Ok(Json(groups::get(c.ctx(), &c.caller, &id).await?))
}

pub async fn update(
    c: Call,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<GroupChanges>,
) -> ApiResult<Json<Group>> {
    Ok(Json(groups::update(c.ctx(), &c.caller, &id, req).await?))
}

pub async fn delete(c: Call, Path(id): Path<String>) -> ApiResult<StatusCode> {
    groups::delete(c.ctx(), &c.caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
