//! Organizations: the HTTP adapter of [`crate::usecase::orgs`].

use axum::Json;
use axum::http::StatusCode;

use super::extract::{ApiJson, ApiQuery, Call, Path};
use crate::error::ApiResult;
use crate::model::Organization;
use crate::usecase::orgs::{self, NewOrg, OrgChanges};

/// The organizations the caller may read.
pub async fn list(
    c: Call,
    ApiQuery(page): ApiQuery<super::Page>,
) -> ApiResult<Json<Vec<Organization>>> {
    Ok(Json(orgs::list(c.ctx(), &c.caller, page).await?))
}

/// `POST /organizations`: the org, its Everyone group and the creator as member.
pub async fn create(
    c: Call,
    ApiJson(req): ApiJson<NewOrg>,
) -> ApiResult<(StatusCode, Json<Organization>)> {
    let org = orgs::create(c.ctx(), &c.caller, req).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

pub async fn get(c: Call, Path(key): Path<String>) -> ApiResult<Json<Organization>> {
    Ok(Json(orgs::get(c.ctx(), &c.caller, &key).await?))
}

pub async fn update(
    c: Call,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<OrgChanges>,
) -> ApiResult<Json<Organization>> {
    Ok(Json(orgs::update(c.ctx(), &c.caller, &key, req).await?))
}

/// `DELETE /organizations/{organization}`: 409 while the org holds anything.
pub async fn delete(c: Call, Path(key): Path<String>) -> ApiResult<StatusCode> {
    orgs::delete(c.ctx(), &c.caller, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
