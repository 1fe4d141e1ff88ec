//! Organization members and their org roles: the HTTP adapter of
//! [`crate::usecase::members`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::extract::{Actor, ApiJson, ApiQuery, Path};
use super::users::RolesRequest;
use crate::app::AppState;
use crate::error::ApiResult;
use crate::model::Member;
use crate::usecase::members::{self, AssignableRole};

pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<super::Page>,
) -> ApiResult<Json<Vec<Member>>> {
    Ok(Json(
        members::list(app.ctx(), &actor.caller(), &org, page).await?,
    ))
}

pub async fn add(
    State(app): State<AppState>,
    actor: Actor,
    Path((org, user)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Member>)> {
    let member = members::add(app.ctx(), &actor.caller(), &org, &user).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// Removes a member and, atomically, its memberships of the org's groups.
pub async fn remove(
    State(app): State<AppState>,
    actor: Actor,
    Path((org, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    members::remove(app.ctx(), &actor.caller(), &org, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn set_roles(
    State(app): State<AppState>,
    actor: Actor,
    Path((org, user)): Path<(String, String)>,
    ApiJson(req): ApiJson<RolesRequest>,
) -> ApiResult<Json<Member>> {
    Ok(Json(
        members::set_roles(app.ctx(), &actor.caller(), &org, &user, &req.roles).await?,
    ))
}

/// `GET /organizations/{organization}/members/roles`: the org roles and which of
/// them the caller may assign, as the policies decide.
pub async fn assignable_roles(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<AssignableRole>>> {
    Ok(Json(
        members::assignable_roles(app.ctx(), &actor.caller(), &org).await?,
    ))
}
