//! Organization members and their org roles: the HTTP adapter of
//! [`crate::usecase::members`].

use axum::Json;
use axum::http::StatusCode;

use super::extract::{ApiJson, ApiQuery, Call, Path};
use super::users::RolesRequest;
use crate::error::ApiResult;
use crate::model::Member;
use crate::usecase::members::{self, AssignableRole};

pub async fn list(
    c: Call,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<super::Page>,
) -> ApiResult<Json<Vec<Member>>> {
    Ok(Json(members::list(c.ctx(), &c.caller, &org, page).await?))
}

pub async fn add(
    c: Call,
    Path((org, user)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Member>)> {
    let member = members::add(c.ctx(), &c.caller, &org, &user).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// Removes a member and, atomically, its memberships of the org's groups.
pub async fn remove(c: Call, Path((org, user)): Path<(String, String)>) -> ApiResult<StatusCode> {
    members::remove(c.ctx(), &c.caller, &org, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn set_roles(
    c: Call,
    Path((org, user)): Path<(String, String)>,
    ApiJson(req): ApiJson<RolesRequest>,
) -> ApiResult<Json<Member>> {
    let member = members::set_roles(c.ctx(), &c.caller, &org, &user, &req.roles).await?;
    Ok(Json(member))
}

/// `GET /organizations/{organization}/members/roles`: the org roles and which of
/// them the caller may assign, as the policies decide.
pub async fn assignable_roles(
    c: Call,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<AssignableRole>>> {
    Ok(Json(
        members::assignable_roles(c.ctx(), &c.caller, &org).await?,
    ))
}
