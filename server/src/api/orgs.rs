//! Organizations: the HTTP adapter of [`crate::usecase::orgs`].

use axum::Json;
use axum::http::StatusCode;

use super::Page;
use super::extract::{ApiJson, ApiQuery, Call};
use super::reply::{Created, created};
use crate::error::ApiResult;
use crate::model::Organization;
use crate::usecase::orgs::{self, NewOrg, OrgChanges};

/// The organizations the caller may read.
#[utoipa::path(
    get,
    path = "/organizations",
    tag = "organizations",
    summary = "List the organizations the caller may read",
    params(Page),
    responses((status = 200, description = "OK", body = Vec<Organization>))
)]
pub async fn list(c: Call, ApiQuery(page): ApiQuery<Page>) -> ApiResult<Json<Vec<Organization>>> {
    Ok(Json(orgs::list(c.ctx(), &c.caller, page).await?))
}

/// `POST /organizations`: the org, its Everyone group and the creator as member.
#[utoipa::path(
    post,
    path = "/organizations",
    tag = "organizations",
    summary = "Create an organization",
    request_body = NewOrg,
    responses((status = 201, description = "Created", body = Organization))
)]
pub async fn create(c: Call, ApiJson(req): ApiJson<NewOrg>) -> ApiResult<Created<Organization>> {
    Ok(created(orgs::create(c.ctx(), &c.caller, req).await?))
}

#[utoipa::path(
    get,
    path = "/organizations/{organization}",
    tag = "organizations",
    summary = "Get an organization",
    responses((status = 200, description = "OK", body = Organization))
)]
pub async fn get(c: Call<String>) -> ApiResult<Json<Organization>> {
    Ok(Json(orgs::get(c.ctx(), &c.caller, &c.path).await?))
}

#[utoipa::path(
    patch,
    path = "/organizations/{organization}",
    tag = "organizations",
    summary = "Update an organization",
    request_body = OrgChanges,
    responses((status = 200, description = "OK", body = Organization))
)]
pub async fn update(
    c: Call<String>,
    ApiJson(req): ApiJson<OrgChanges>,
) -> ApiResult<Json<Organization>> {
    Ok(Json(orgs::update(c.ctx(), &c.caller, &c.path, req).await?))
}

/// `DELETE /organizations/{organization}`: 409 while the org holds anything.
#[utoipa::path(
    delete,
    path = "/organizations/{organization}",
    tag = "organizations",
    summary = "Delete an empty organization",
    responses((status = 204, description = "No content"))
)]
pub async fn delete(c: Call<String>) -> ApiResult<StatusCode> {
    orgs::delete(c.ctx(), &c.caller, &c.path).await?;
    Ok(StatusCode::NO_CONTENT)
}
