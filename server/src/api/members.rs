//! Organization members and their org roles: the HTTP adapter of
//! [`crate::usecase::members`].

use axum::Json;
use axum::http::StatusCode;

use super::Page;
use super::extract::{ApiJson, ApiQuery, Call};
use super::reply::{Created, created};
use super::users::RolesRequest;
use crate::error::ApiResult;
use crate::model::Member;
use crate::usecase::members;
use crate::usecase::roles::{self, AssignableRole};

/// `{organization}/members/{user}`.
/// `{organization}/members/{user}`.
type OrgUser = (String, String);

pub async fn list(c: Call<String>, ApiQuery(page): ApiQuery<Page>) -> ApiResult<Json<Vec<Member>>> {
    Ok(Json(
        members::list(c.ctx(), &c.caller, &c.path, page).await?,
    ))
}

pub async fn add(c: Call<OrgUser>) -> ApiResult<Created<Member>> {
    let (org, user) = &c.path;
    Ok(created(members::add(c.ctx(), &c.caller, org, user).await?))
}

/// Removes a member and, atomically, its memberships of the org's groups.
pub async fn remove(c: Call<OrgUser>) -> ApiResult<StatusCode> {
    let (org, user) = &c.path;
    members::remove(c.ctx(), &c.caller, org, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn set_roles(
    c: Call<OrgUser>,
    ApiJson(req): ApiJson<RolesRequest>,
) -> ApiResult<Json<Member>> {
    let (org, user) = &c.path;
    Ok(Json(
        members::set_roles(c.ctx(), &c.caller, org, user, &req.roles).await?,
    ))
}

/// `GET /organizations/{organization}/members/roles`: the org roles and which of
/// them the caller may assign, as the policies decide.
pub async fn assignable_roles(c: Call<String>) -> ApiResult<Json<Vec<AssignableRole>>> {
    Ok(Json(roles::list(c.ctx(), &c.caller, &c.path).await?))
}
