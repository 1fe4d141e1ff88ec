//! Organizations: the HTTP adapter of [`crate::usecase::orgs`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use orgsync_policy::Action;

use super::extract::{Actor, ApiJson, ApiQuery, Path};
use crate::app::AppState;
use crate::authz::Permit;
use crate::error::ApiResult;
use crate::model::Organization;
use crate::usecase::orgs::{self, NewOrg, OrgChanges};

/// Loads the organization of a `{organization}` segment (id or name) and requires
/// `action` on it; 404 when the caller may not read it. For the handlers not yet
/// moved onto a use case.
pub(crate) async fn load_org(
    app: &AppState,
    actor: &Actor,
    key: &str,
    action: Action,
) -> ApiResult<(Organization, Permit)> {
    let mut conn = app.db.pool().acquire().await?;
    orgs::load(&mut conn, &app.authz, &actor.caller(), key, action).await
}

/// The organizations the caller may read.
pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    ApiQuery(page): ApiQuery<super::Page>,
) -> ApiResult<Json<Vec<Organization>>> {
    Ok(Json(orgs::list(app.ctx(), &actor.caller(), page).await?))
}

/// `POST /organizations`: the org, its Everyone group and the creator as member.
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<NewOrg>,
) -> ApiResult<(StatusCode, Json<Organization>)> {
    let org = orgs::create(app.ctx(), &actor.caller(), req).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

pub async fn get(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
) -> ApiResult<Json<Organization>> {
    Ok(Json(orgs::get(app.ctx(), &actor.caller(), &key).await?))
}

pub async fn update(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<OrgChanges>,
) -> ApiResult<Json<Organization>> {
    Ok(Json(
        orgs::update(app.ctx(), &actor.caller(), &key, req).await?,
    ))
}

/// `DELETE /organizations/{organization}`: 409 while the org holds anything.
pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    orgs::delete(app.ctx(), &actor.caller(), &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
