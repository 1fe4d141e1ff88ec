//! Groups: the HTTP adapter of [`crate::usecase::groups`].

use axum::Json;
use axum::http::StatusCode;

use super::Page;
use super::extract::{ApiJson, ApiQuery, Call};
use super::reply::{Created, created};
use crate::error::ApiResult;
use crate::model::Group;
use crate::usecase::groups::{self, GroupChanges, NewGroup};

/// List an organization's groups.
#[utoipa::path(get, path = "/organizations/{organization}/groups", tag = "groups", params(Page), responses((status = 200, description = "OK", body = Vec<Group>)))]
pub async fn list(c: Call<String>, ApiQuery(page): ApiQuery<Page>) -> ApiResult<Json<Vec<Group>>> {
    Ok(Json(groups::list(c.ctx(), &c.caller, &c.path, page).await?))
}

/// Create a group.
#[utoipa::path(post, path = "/organizations/{organization}/groups", tag = "groups", request_body = NewGroup, responses((status = 201, description = "Created", body = Group)))]
pub async fn create(c: Call<String>, ApiJson(req): ApiJson<NewGroup>) -> ApiResult<Created<Group>> {
    Ok(created(
        groups::create(c.ctx(), &c.caller, &c.path, req).await?,
    ))
}

/// Get a group with its members.
#[utoipa::path(get, path = "/groups/{id}", tag = "groups", responses((status = 200, description = "OK", body = Group)))]
pub async fn get(c: Call<String>) -> ApiResult<Json<Group>> {
    Ok(Json(groups::get(c.ctx(), &c.caller, &c.path).await?))
}

/// Update a group (name, members).
#[utoipa::path(patch, path = "/groups/{id}", tag = "groups", request_body = GroupChanges, responses((status = 200, description = "OK", body = Group)))]
pub async fn update(
    c: Call<String>,
    ApiJson(req): ApiJson<GroupChanges>,
) -> ApiResult<Json<Group>> {
    Ok(Json(
        groups::update(c.ctx(), &c.caller, &c.path, req).await?,
    ))
}

/// Delete a group.
#[utoipa::path(delete, path = "/groups/{id}", tag = "groups", responses((status = 204, description = "No content")))]
pub async fn delete(c: Call<String>) -> ApiResult<StatusCode> {
    groups::delete(c.ctx(), &c.caller, &c.path).await?;
    Ok(StatusCode::NO_CONTENT)
}
