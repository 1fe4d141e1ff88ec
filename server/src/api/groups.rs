//! Groups: the HTTP adapter of [`crate::usecase::groups`].

use axum::Json;
use axum::http::StatusCode;

use super::Page;
use super::extract::{ApiJson, ApiQuery, Call};
use super::reply::{Created, created};
use crate::error::ApiResult;
use crate::model::Group;
use crate::usecase::groups::{self, GroupChanges, NewGroup};

#[utoipa::path(
    get,
    path = "/organizations/{organization}/groups",
    tag = "groups",
    summary = "List an organization's groups",
    params(Page),
    responses((status = 200, description = "OK", body = Vec<Group>))
)]
pub async fn list(c: Call<String>, ApiQuery(page): ApiQuery<Page>) -> ApiResult<Json<Vec<Group>>> {
    Ok(Json(groups::list(c.ctx(), &c.caller, &c.path, page).await?))
}

#[utoipa::path(
    post,
    path = "/organizations/{organization}/groups",
    tag = "groups",
    summary = "Create a group",
    request_body = NewGroup,
    responses((status = 201, description = "Created", body = Group))
)]
pub async fn create(c: Call<String>, ApiJson(req): ApiJson<NewGroup>) -> ApiResult<Created<Group>> {
    Ok(created(
        groups::create(c.ctx(), &c.caller, &c.path, req).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/groups/{id}",
    tag = "groups",
    summary = "Get a group with its members",
    responses((status = 200, description = "OK", body = Group))
)]
pub async fn get(c: Call<String>) -> ApiResult<Json<Group>> {
    Ok(Json(groups::get(c.ctx(), &c.caller, &c.path).await?))
}

#[utoipa::path(
    patch,
    path = "/groups/{id}",
    tag = "groups",
    summary = "Update a group (name, members)",
    request_body = GroupChanges,
    responses((status = 200, description = "OK", body = Group))
)]
pub async fn update(
    c: Call<String>,
    ApiJson(req): ApiJson<GroupChanges>,
) -> ApiResult<Json<Group>> {
    Ok(Json(
        groups::update(c.ctx(), &c.caller, &c.path, req).await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/groups/{id}",
    tag = "groups",
    summary = "Delete a group",
    responses((status = 204, description = "No content"))
)]
pub async fn delete(c: Call<String>) -> ApiResult<StatusCode> {
    groups::delete(c.ctx(), &c.caller, &c.path).await?;
    Ok(StatusCode::NO_CONTENT)
}
