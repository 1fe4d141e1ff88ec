//! Groups: the HTTP adapter of [`crate::usecase::groups`].

use axum::Json;
use axum::http::StatusCode;

use super::Page;
use super::extract::{ApiJson, ApiQuery, Call};
use super::reply::{Created, created};
use crate::error::ApiResult;
use crate::model::Group;
use crate::usecase::groups::{self, GroupChanges, NewGroup};

pub async fn list(c: Call<String>, ApiQuery(page): ApiQuery<Page>) -> ApiResult<Json<Vec<Group>>> {
    Ok(Json(groups::list(c.ctx(), &c.caller, &c.path, page).await?))
}

pub async fn create(c: Call<String>, ApiJson(req): ApiJson<NewGroup>) -> ApiResult<Created<Group>> {
    Ok(created(
        groups::create(c.ctx(), &c.caller, &c.path, req).await?,
    ))
}

pub async fn get(c: Call<String>) -> ApiResult<Json<Group>> {
    Ok(Json(groups::get(c.ctx(), &c.caller, &c.path).await?))
}

pub async fn update(
    c: Call<String>,
    ApiJson(req): ApiJson<GroupChanges>,
) -> ApiResult<Json<Group>> {
    Ok(Json(
        groups::update(c.ctx(), &c.caller, &c.path, req).await?,
    ))
}

pub async fn delete(c: Call<String>) -> ApiResult<StatusCode> {
    groups::delete(c.ctx(), &c.caller, &c.path).await?;
    Ok(StatusCode::NO_CONTENT)
}
