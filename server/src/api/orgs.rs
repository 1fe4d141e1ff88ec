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
pub async fn list(c: Call, ApiQuery(page): ApiQuery<Page>) -> ApiResult<Json<Vec<Organization>>> {
    Ok(Json(orgs::list(c.ctx(), &c.caller, page).await?))
}

/// `POST /organizations`: the org, its Everyone group and the creator as member.
pub async fn create(c: Call, ApiJson(req): ApiJson<NewOrg>) -> ApiResult<Created<Organization>> {
    Ok(created(orgs::create(c.ctx(), &c.caller, req).await?))
}

pub async fn get(c: Call<String>) -> ApiResult<Json<Organization>> {
    Ok(Json(orgs::get(c.ctx(), &c.caller, &c.path).await?))
}

pub async fn update(
    c: Call<String>,
    ApiJson(req): ApiJson<OrgChanges>,
) -> ApiResult<Json<Organization>> {
    Ok(Json(orgs::update(c.ctx(), &c.caller, &c.path, req).await?))
}

/// `DELETE /organizations/{organization}`: 409 while the org holds anything.
pub async fn delete(c: Call<String>) -> ApiResult<StatusCode> {
    orgs::delete(c.ctx(), &c.caller, &c.path).await?;
    Ok(StatusCode::NO_CONTENT)
}
