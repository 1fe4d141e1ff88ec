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

/// Get the organization sync settings.
#[utoipa::path(get, path = "/settings/idpsync/organization", tag = "idpsync", responses((status = 200, description = "OK", body = OrganizationSyncSettings)))]
pub async fn get_org_sync(c: Call) -> ApiResult<Json<OrganizationSyncSettings>> {
    get_in(&c, Scope::Deployment).await
}

/// Change the organization sync settings (merge).
#[utoipa::path(patch, path = "/settings/idpsync/organization", tag = "idpsync", request_body = OrganizationSyncSettings, responses((status = 200, description = "OK", body = OrganizationSyncSettings)))]
pub async fn patch_org_sync(
    c: Call,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<OrganizationSyncSettings>> {
    change_in(&c, Scope::Deployment, SettingsChange::Merge(patch)).await
}

/// Add and remove organization sync mappings.
#[utoipa::path(patch, path = "/settings/idpsync/organization/mapping", tag = "idpsync", request_body = MappingPatch, responses((status = 200, description = "OK", body = OrganizationSyncSettings)))]
pub async fn patch_org_sync_mapping(
    c: Call,
    ApiJson(patch): ApiJson<MappingPatch>,
) -> ApiResult<Json<OrganizationSyncSettings>> {
    change_in(&c, Scope::Deployment, SettingsChange::Mapping(patch)).await
}

/// Get the site role sync settings.
#[utoipa::path(get, path = "/settings/idpsync/site-roles", tag = "idpsync", responses((status = 200, description = "OK", body = SiteRoleSyncSettings)))]
pub async fn get_site_role_sync(c: Call) -> ApiResult<Json<SiteRoleSyncSettings>> {
    get_in(&c, Scope::Deployment).await
}

/// Change the site role sync settings (merge).
#[utoipa::path(patch, path = "/settings/idpsync/site-roles", tag = "idpsync", request_body = SiteRoleSyncSettings, responses((status = 200, description = "OK", body = SiteRoleSyncSettings)))]
pub async fn patch_site_role_sync(
    c: Call,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<SiteRoleSyncSettings>> {
    change_in(&c, Scope::Deployment, SettingsChange::Merge(patch)).await
}

// ---- Per organization: group sync and role sync ----

/// Get an organization's group sync settings.
#[utoipa::path(get, path = "/organizations/{organization}/settings/idpsync/groups", tag = "idpsync", responses((status = 200, description = "OK", body = GroupSyncSettings)))]
pub async fn get_group_sync(
    c: Call,
    Path(org): Path<String>,
) -> ApiResult<Json<GroupSyncSettings>> {
    get_in(&c, Scope::Org(&org)).await
}

/// Change an organization's group sync settings (merge).
#[utoipa::path(patch, path = "/organizations/{organization}/settings/idpsync/groups", tag = "idpsync", request_body = GroupSyncSettings, responses((status = 200, description = "OK", body = GroupSyncSettings)))]
pub async fn patch_group_sync(
    c: Call,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<GroupSyncSettings>> {
    change_in(&c, Scope::Org(&org), SettingsChange::Merge(patch)).await
}

/// Add and remove group sync mappings.
#[utoipa::path(patch, path = "/organizations/{organization}/settings/idpsync/groups/mapping", tag = "idpsync", request_body = MappingPatch, responses((status = 200, description = "OK", body = GroupSyncSettings)))]
pub async fn patch_group_sync_mapping(
    c: Call,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<MappingPatch>,
) -> ApiResult<Json<GroupSyncSettings>> {
    change_in(&c, Scope::Org(&org), SettingsChange::Mapping(patch)).await
}

/// Get an organization's role sync settings.
#[utoipa::path(get, path = "/organizations/{organization}/settings/idpsync/roles", tag = "idpsync", responses((status = 200, description = "OK", body = RoleSyncSettings)))]
pub async fn get_role_sync(c: Call, Path(org): Path<String>) -> ApiResult<Json<RoleSyncSettings>> {
    get_in(&c, Scope::Org(&org)).await
}

/// Change an organization's role sync settings (merge).
#[utoipa::path(patch, path = "/organizations/{organization}/settings/idpsync/roles", tag = "idpsync", request_body = RoleSyncSettings, responses((status = 200, description = "OK", body = RoleSyncSettings)))]
pub async fn patch_role_sync(
    c: Call,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<RoleSyncSettings>> {
    change_in(&c, Scope::Org(&org), SettingsChange::Merge(patch)).await
}

/// Add and remove role sync mappings.
#[utoipa::path(patch, path = "/organizations/{organization}/settings/idpsync/roles/mapping", tag = "idpsync", request_body = MappingPatch, responses((status = 200, description = "OK", body = RoleSyncSettings)))]
pub async fn patch_role_sync_mapping(
    c: Call,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<MappingPatch>,
) -> ApiResult<Json<RoleSyncSettings>> {
    change_in(&c, Scope::Org(&org), SettingsChange::Mapping(patch)).await
}

// ---- Preview, problems, claim fields ----

/// Preview the plan a login with these claims would apply.
///
/// `POST /idpsync/preview`: the plan a login with these claims would apply.
#[utoipa::path(post, path = "/idpsync/preview", tag = "idpsync", request_body = PreviewRequest, responses((status = 200, description = "OK", body = Object)))]
pub async fn preview(c: Call, ApiJson(req): ApiJson<PreviewRequest>) -> ApiResult<Json<Value>> {
    Ok(Json(settings::preview(c.ctx(), &c.caller, &req).await?))
}

/// List IdP sync problems.
///
/// `GET /idpsync/problems`.
#[utoipa::path(get, path = "/idpsync/problems", tag = "idpsync", params(ProblemsQuery), responses((status = 200, description = "OK", body = super::openapi::Problems)))]
pub async fn problems(c: Call, ApiQuery(q): ApiQuery<ProblemsQuery>) -> ApiResult<Json<Value>> {
    Ok(Json(settings::problems(c.ctx(), &c.caller, &q).await?))
}

/// List the claim names seen in stored claims.
///
/// `GET /settings/idpsync/available-fields`: claim names seen in stored claims.
#[utoipa::path(get, path = "/settings/idpsync/available-fields", tag = "idpsync", responses((status = 200, description = "OK", body = Vec<String>)))]
pub async fn available_fields(c: Call) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(settings::claims_seen(c.ctx(), &c.caller, None).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FieldValuesQuery {
    #[serde(rename = "claimField")]
    pub claim_field: String,
}

/// List the values seen for a claim.
///
/// `GET /settings/idpsync/field-values?claimField=`: values seen for a claim.
#[utoipa::path(get, path = "/settings/idpsync/field-values", tag = "idpsync", params(FieldValuesQuery), responses((status = 200, description = "OK", body = Vec<String>)))]
pub async fn field_values(
    c: Call,
    ApiQuery(q): ApiQuery<FieldValuesQuery>,
) -> ApiResult<Json<Vec<String>>> {
    let values = settings::claims_seen(c.ctx(), &c.caller, Some(&q.claim_field)).await?;
    Ok(Json(values))
}
