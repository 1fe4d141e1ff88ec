//! IdP sync settings, preview and problems. The settings are the HTTP adapter
//! of [`crate::usecase::idpsync`].

use axum::Json;
use orgsync_sync::{
    GroupSyncSettings, MappingPatch, OrganizationSyncSettings, RoleSyncSettings,
    SiteRoleSyncSettings,
};
use serde_json::Value;

use super::extract::{ApiJson, ApiQuery, Call, Path};
use crate::error::ApiResult;
use crate::usecase::idpsync::{
    self as settings, PreviewRequest, ProblemsQuery, Scope, SettingsChange, SyncSettings,
};

async fn get_in<T: SyncSettings>(c: &Call, scope: Scope<'_>) -> ApiResult<Json<T>> {
    Ok(Json(settings::get(c.ctx(), &c.caller, scope).await?))
}

async fn change_in<T: SyncSettings>(
    c: &Call,
    scope: Scope<'_>,
    change: SettingsChange,
) -> ApiResult<Json<T>> {
    Ok(Json(
        settings::update(c.ctx(), &c.caller, scope, change).await?,
    ))
}

// ---- Deployment-wide: organization sync and site role sync ----

pub async fn get_org_sync(c: Call) -> ApiResult<Json<OrganizationSyncSettings>> {
    get_in(&c, Scope::Deployment).await
}

pub async fn patch_org_sync(
    c: Call,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<OrganizationSyncSettings>> {
    change_in(&c, Scope::Deployment, SettingsChange::Merge(patch)).await
}

pub async fn patch_org_sync_mapping(
    c: Call,
    ApiJson(patch): ApiJson<MappingPatch>,
) -> ApiResult<Json<OrganizationSyncSettings>> {
    change_in(&c, Scope::Deployment, SettingsChange::Mapping(patch)).await
}

pub async fn get_site_role_sync(c: Call) -> ApiResult<Json<SiteRoleSyncSettings>> {
    get_in(&c, Scope::Deployment).await
}

pub async fn patch_site_role_sync(
    c: Call,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<SiteRoleSyncSettings>> {
    change_in(&c, Scope::Deployment, SettingsChange::Merge(patch)).await
}

// ---- Per organization: group sync and role sync ----

pub async fn get_group_sync(
    c: Call,
    Path(org): Path<String>,
) -> ApiResult<Json<GroupSyncSettings>> {
    get_in(&c, Scope::Org(&org)).await
}

pub async fn patch_group_sync(
    c: Call,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<GroupSyncSettings>> {
    change_in(&c, Scope::Org(&org), SettingsChange::Merge(patch)).await
}

pub async fn patch_group_sync_mapping(
    c: Call,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<MappingPatch>,
) -> ApiResult<Json<GroupSyncSettings>> {
    change_in(&c, Scope::Org(&org), SettingsChange::Mapping(patch)).await
}

pub async fn get_role_sync(c: Call, Path(org): Path<String>) -> ApiResult<Json<RoleSyncSettings>> {
    get_in(&c, Scope::Org(&org)).await
}

pub async fn patch_role_sync(
    c: Call,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<RoleSyncSettings>> {
    change_in(&c, Scope::Org(&org), SettingsChange::Merge(patch)).await
}

pub async fn patch_role_sync_mapping(
    c: Call,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<MappingPatch>,
) -> ApiResult<Json<RoleSyncSettings>> {
    change_in(&c, Scope::Org(&org), SettingsChange::Mapping(patch)).await
}

// ---- Preview, problems, claim fields ----

/// `POST /idpsync/preview`: the plan a login with these claims would apply.
pub async fn preview(c: Call, ApiJson(req): ApiJson<PreviewRequest>) -> ApiResult<Json<Value>> {
    Ok(Json(settings::preview(c.ctx(), &c.caller, &req).await?))
}

/// `GET /idpsync/problems`.
pub async fn problems(c: Call, ApiQuery(q): ApiQuery<ProblemsQuery>) -> ApiResult<Json<Value>> {
    Ok(Json(settings::problems(c.ctx(), &c.caller, &q).await?))
}

/// `GET /settings/idpsync/available-fields`: claim names seen in stored claims.
pub async fn available_fields(c: Call) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(settings::claims_seen(c.ctx(), &c.caller, None).await?))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldValuesQuery {
    #[serde(rename = "claimField")]
    pub claim_field: String,
}

/// `GET /settings/idpsync/field-values?claimField=`: values seen for a claim.
pub async fn field_values(
    c: Call,
    ApiQuery(q): ApiQuery<FieldValuesQuery>,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(
        settings::claims_seen(c.ctx(), &c.caller, Some(&q.claim_field)).await?,
    ))
}
