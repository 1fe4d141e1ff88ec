//! Organization members and their org roles: the HTTP adapter of
//! [`crate::usecase::members`].

use axum::Json;
use axum::http::StatusCode;

use super::Page;
use super::extract::{ApiJson, ApiQuery, Call};
use super::reply::{Created, created};
use super::users::RolesRequest;
use crate::error::ApiResult;
use crate::model::{CustomRole, Member};
use crate::usecase::members;
use crate::usecase::roles::{self, AssignableRole, RoleHolders, RoleRequest, Save};

/// `{organization}/members/{user}`.
/// `{organization}/members/{user}`.
type OrgUser = (String, String);

/// List an organization's members.
#[utoipa::path(get, path = "/organizations/{organization}/members", tag = "members", params(Page), responses((status = 200, description = "OK", body = Vec<Member>)))]
pub async fn list(c: Call<String>, ApiQuery(page): ApiQuery<Page>) -> ApiResult<Json<Vec<Member>>> {
    Ok(Json(
        members::list(c.ctx(), &c.caller, &c.path, page).await?,
    ))
}

/// Add a user to an organization.
#[utoipa::path(post, path = "/organizations/{organization}/members/{user}", tag = "members", responses((status = 201, description = "Created", body = Member)))]
pub async fn add(c: Call<OrgUser>) -> ApiResult<Created<Member>> {
    let (org, user) = &c.path;
    Ok(created(members::add(c.ctx(), &c.caller, org, user).await?))
}

/// Remove a member (and its group memberships).
///
/// Removes a member and, atomically, its memberships of the org's groups.
#[utoipa::path(delete, path = "/organizations/{organization}/members/{user}", tag = "members", responses((status = 204, description = "No content")))]
pub async fn remove(c: Call<OrgUser>) -> ApiResult<StatusCode> {
    let (org, user) = &c.path;
    members::remove(c.ctx(), &c.caller, org, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace a member's org roles.
#[utoipa::path(put, path = "/organizations/{organization}/members/{user}/roles", tag = "members", request_body = RolesRequest, responses((status = 200, description = "OK", body = Member)))]
pub async fn set_roles(
    c: Call<OrgUser>,
    ApiJson(req): ApiJson<RolesRequest>,
) -> ApiResult<Json<Member>> {
    let (org, user) = &c.path;
    Ok(Json(
        members::set_roles(c.ctx(), &c.caller, org, user, &req.roles).await?,
    ))
}

/// List the org roles and which the caller may assign.
///
/// `GET /organizations/{organization}/members/roles`: the org roles and which of
/// them the caller may assign, as the policies decide.
#[utoipa::path(get, path = "/organizations/{organization}/members/roles", tag = "members", responses((status = 200, description = "OK", body = Vec<AssignableRole>)))]
pub async fn assignable_roles(c: Call<String>) -> ApiResult<Json<Vec<AssignableRole>>> {
    Ok(Json(roles::list(c.ctx(), &c.caller, &c.path).await?))
}

/// `{organization}/members/roles/{name}`.
type OrgRole = (String, String);

/// Create a custom organization role.
///
/// Its permissions are actions of the policies' `bundle:custom-role` group;
/// site and user permissions must be empty.
#[utoipa::path(post, path = "/organizations/{organization}/members/roles", tag = "members", request_body = RoleRequest, responses((status = 201, description = "Created", body = CustomRole)))]
pub async fn create_role(
    c: Call<String>,
    ApiJson(req): ApiJson<RoleRequest>,
) -> ApiResult<Created<CustomRole>> {
    Ok(created(
        roles::save(c.ctx(), &c.caller, &c.path, &req, Save::Create).await?,
    ))
}

/// Update a custom organization role (the body names it).
#[utoipa::path(put, path = "/organizations/{organization}/members/roles", tag = "members", request_body = RoleRequest, responses((status = 200, description = "OK", body = CustomRole)))]
pub async fn update_role(
    c: Call<String>,
    ApiJson(req): ApiJson<RoleRequest>,
) -> ApiResult<Json<CustomRole>> {
    Ok(Json(
        roles::save(c.ctx(), &c.caller, &c.path, &req, Save::Update).await?,
    ))
}

/// Show a custom organization role and the members holding it.
#[utoipa::path(get, path = "/organizations/{organization}/members/roles/{name}", tag = "members", responses((status = 200, description = "OK", body = RoleHolders)))]
pub async fn get_role(c: Call<OrgRole>) -> ApiResult<Json<RoleHolders>> {
    let (org, name) = &c.path;
    Ok(Json(roles::show(c.ctx(), &c.caller, org, name).await?))
}

/// Delete a custom organization role (and take it from every member).
#[utoipa::path(delete, path = "/organizations/{organization}/members/roles/{name}", tag = "members", responses((status = 204, description = "No content")))]
pub async fn delete_role(c: Call<OrgRole>) -> ApiResult<StatusCode> {
    let (org, name) = &c.path;
    roles::delete(c.ctx(), &c.caller, org, name).await?;
    Ok(StatusCode::NO_CONTENT)
}
