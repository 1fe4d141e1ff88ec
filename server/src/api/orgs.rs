//! Organizations: the HTTP adapter of [`crate::usecase::orgs`].

use axum::Json;
use axum::http::StatusCode;

use super::Page;
use super::extract::{ApiJson, ApiQuery, Call};
use super::reply::{Created, created};
use crate::error::ApiResult;
use crate::model::Organization;
use crate::usecase::orgs::{self, NewOrg, OrgChanges};

/// List the organizations the caller may read.
///
/// The organizations the caller may read.
#[utoipa::path(get, path = "/organizations", tag = "organizations", params(Page), responses((status = 200, description = "OK", body = Vec<Organization>)))]
pub async fn list(c: Call, ApiQuery(page): ApiQuery<Page>) -> ApiResult<Json<Vec<Organization>>> {
    Ok(Json(orgs::list(c.ctx(), &c.caller, page).await?))
}

/// Create an organization.
///
/// `POST /organizations`: the org, its Everyone group and the creator as member.
#[utoipa::path(post, path = "/organizations", tag = "organizations", request_body = NewOrg, responses((status = 201, description = "Created", body = Organization)))]
pub async fn create(c: Call, ApiJson(req): ApiJson<NewOrg>) -> ApiResult<Created<Organization>> {
    Ok(created(orgs::create(c.ctx(), &c.caller, req).await?))
}

/// Get an organization.
#[utoipa::path(get, path = "/organizations/{organization}", tag = "organizations", responses((status = 200, description = "OK", body = Organization)))]
pub async fn get(c: Call<String>) -> ApiResult<Json<Organization>> {
    Ok(Json(orgs::get(c.ctx(), &c.caller, &c.path).await?))
}

/// Update an organization.
#[utoipa::path(patch, path = "/organizations/{organization}", tag = "organizations", request_body = OrgChanges, responses((status = 200, description = "OK", body = Organization)))]
pub async fn update(
    c: Call<String>,
    ApiJson(req): ApiJson<OrgChanges>,
) -> ApiResult<Json<Organization>> {
    let org = orgs::update(c.ctx(), &c.caller, &c.path, req).await?;
    Ok(Json(org))
}

/// Delete an empty organization.
///
/// `DELETE /organizations/{organization}`: 409 while the org holds anything.
#[utoipa::path(delete, path = "/organizations/{organization}", tag = "organizations", responses((status = 204, description = "No content")))]
pub async fn delete(c: Call<String>) -> ApiResult<StatusCode> {
    orgs::delete(c.ctx(), &c.caller, &c.path).await?;
    Ok(StatusCode::NO_CONTENT)
}
