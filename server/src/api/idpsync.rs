//! IdP sync settings, preview and problems. The settings are the HTTP adapter
//! of [`crate::usecase::idpsync`].

use axum::Json;
use axum::extract::State;
use orgsync_sync::{
    GroupSyncSettings, MappingPatch, OrganizationSyncSettings, RoleSyncSettings,
    SiteRoleSyncSettings,
};
use serde_json::Value;

use super::extract::{Actor, ApiJson, ApiQuery, Path};
use crate::app::AppState;
use crate::error::ApiResult;
pub(super) use crate::usecase::idpsync::invalid;
use crate::usecase::idpsync::{
    self as settings, PreviewRequest, ProblemsQuery, Scope, SettingsChange, SyncSettings,
};

async fn get_in<T: SyncSettings>(
    app: &AppState,
    actor: &Actor,
    scope: Scope<'_>,
) -> ApiResult<Json<T>> {
    Ok(Json(
        settings::get(app.ctx(), &actor.caller(), scope).await?,
    ))
}

async fn change_in<T: SyncSettings>(
    app: &AppState,
    actor: &Actor,
    scope: Scope<'_>,
    change: SettingsChange,
) -> ApiResult<Json<T>> {
    Ok(Json(
        settings::update(app.ctx(), &actor.caller(), scope, change).await?,
    ))
}

// ---- Deployment-wide: organization sync and site role sync ----

pub async fn get_org_sync(
    State(app): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<OrganizationSyncSettings>> {
    get_in(&app, &actor, Scope::Deployment).await
}

pub async fn patch_org_sync(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<OrganizationSyncSettings>> {
    change_in(
        &app,
        &actor,
        Scope::Deployment,
        SettingsChange::Merge(patch),
    )
    .await
}

pub async fn patch_org_sync_mapping(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(patch): ApiJson<MappingPatch>,
) -> ApiResult<Json<OrganizationSyncSettings>> {
    change_in(
        &app,
        &actor,
        Scope::Deployment,
        SettingsChange::Mapping(patch),
    )
    .await
}

pub async fn get_site_role_sync(
    State(app): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<SiteRoleSyncSettings>> {
    get_in(&app, &actor, Scope::Deployment).await
}

pub async fn patch_site_role_sync(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<SiteRoleSyncSettings>> {
    change_in(
        &app,
        &actor,
        Scope::Deployment,
        SettingsChange::Merge(patch),
    )
    .await
}

// ---- Per organization: group sync and role sync ----

pub async fn get_group_sync(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
) -> ApiResult<Json<GroupSyncSettings>> {
    get_in(&app, &actor, Scope::Org(&org)).await
}

pub async fn patch_group_sync(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<GroupSyncSettings>> {
    change_in(&app, &actor, Scope::Org(&org), SettingsChange::Merge(patch)).await
}

pub async fn patch_group_sync_mapping(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<MappingPatch>,
) -> ApiResult<Json<GroupSyncSettings>> {
    change_in(
        &app,
        &actor,
        Scope::Org(&org),
        SettingsChange::Mapping(patch),
    )
    .await
}

pub async fn get_role_sync(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
) -> ApiResult<Json<RoleSyncSettings>> {
    get_in(&app, &actor, Scope::Org(&org)).await
}

pub async fn patch_role_sync(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<RoleSyncSettings>> {
    change_in(&app, &actor, Scope::Org(&org), SettingsChange::Merge(patch)).await
}

pub async fn patch_role_sync_mapping(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<MappingPatch>,
) -> ApiResult<Json<RoleSyncSettings>> {
    change_in(
        &app,
        &actor,
        Scope::Org(&org),
        SettingsChange::Mapping(patch),
    )
    .await
}

// ---- Preview, problems, claim fields ----

/// `POST /idpsync/preview`: the plan a login with these claims would apply.
pub async fn preview(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        settings::preview(app.ctx(), &actor.caller(), &req).await?,
    ))
}

/// `GET /idpsync/problems`.
pub async fn problems(
    State(app): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<ProblemsQuery>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        settings::problems(app.ctx(), &actor.caller(), &q).await?,
    ))
}

/// `GET /settings/idpsync/available-fields`: claim names seen in stored claims.
pub async fn available_fields(
    State(app): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(
        settings::claims_seen(app.ctx(), &actor.caller(), None).await?,
    ))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldValuesQuery {
    #[serde(rename = "claimField")]
    pub claim_field: String,
}

/// `GET /settings/idpsync/field-values?claimField=`: values seen for a claim.
pub async fn field_values(
    State(app): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<FieldValuesQuery>,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(
        settings::claims_seen(app.ctx(), &actor.caller(), Some(&q.claim_field)).await?,
    ))
}
