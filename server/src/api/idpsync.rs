//! IdP sync settings, preview and problems.

use axum::Json;
use axum::extract::State;
use orgsync_policy::{Action, ORG_ROLES, Resource, SITE_ROLES};
use orgsync_sync::{
    FieldError, GroupSyncSettings, MappingPatch, OrganizationSyncSettings, RoleSyncSettings,
    SiteRoleSyncSettings,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::extract::{Actor, ApiJson, ApiQuery, Path};
use super::orgs::load_org;
use crate::app::AppState;
use crate::audit::{self, Change};
use crate::clock;
use crate::error::{ApiError, ApiResult, Validation};
use crate::idpsync::{self, SettingsKey};
use crate::model::Organization;
use crate::store;

/// A 400 naming every invalid field (`validations`), the first in the message.
pub(super) fn invalid(errors: Vec<FieldError>) -> ApiError {
    let mut e = ApiError::bad_request(match errors.first() {
        Some(f) => format!("invalid `{}`: {}", f.field, f.detail),
        None => "invalid settings".to_owned(),
    });
    e.body.validations = errors
        .into_iter()
        .map(|f| Validation {
            field: f.field,
            detail: f.detail,
        })
        .collect();
    e
}

fn check(errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid(errors))
    }
}

/// Merges a JSON patch object into the current settings (top-level keys
/// replace), then parses and validates the result.
fn merged<T: Serialize + DeserializeOwned>(current: &T, patch: &Value) -> ApiResult<T> {
    let Value::Object(patch) = patch else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    let mut value = serde_json::to_value(current).map_err(ApiError::internal)?;
    if let Value::Object(obj) = &mut value {
        for (k, v) in patch {
            obj.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(value).map_err(|e| {
        let msg = e.to_string();
        let field = msg.split('`').nth(1).unwrap_or("body").to_owned();
        invalid(vec![FieldError { field, detail: msg }])
    })
}

async fn save<T: Serialize>(
    app: &AppState,
    actor: &Actor,
    org: Option<&Organization>,
    key: SettingsKey,
    old: &T,
    new: &T,
) -> ApiResult<()> {
    let now_s = clock::fmt(clock::now());
    let old_v = serde_json::to_value(old).map_err(ApiError::internal)?;
    let new_v = serde_json::to_value(new).map_err(ApiError::internal)?;
    let mut tx = app.db.begin().await?;
    idpsync::store_settings(&mut tx, org.map(|o| o.id.as_str()), key, &new_v, &now_s).await?;
    if old_v != new_v {
        audit::record(
            &mut tx,
            &actor.audit(),
            &now_s,
            Change {
                organization_id: org.map(|o| o.id.as_str()),
                action: "update",
                resource_type: key.resource_type(),
                resource_id: org.map_or("deployment", |o| o.id.as_str()),
                resource_target: key.name(),
                diff: audit::diff(&old_v, &new_v),
                status_code: 200,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

// ---- Deployment-wide: organization sync and site role sync ----

pub async fn get_org_sync(
    State(app): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<OrganizationSyncSettings>> {
    app.authz.require(
        &actor.principal.entity,
        Action::DEPLOYMENT_SYNC_READ,
        &Resource::site(),
        "settings",
    )?;
    let mut conn = app.db.pool().acquire().await?;
    Ok(Json(
        idpsync::load_settings(&mut conn, None, SettingsKey::Organization).await?,
    ))
}

async fn put_org_sync(
    app: &AppState,
    actor: &Actor,
    old: OrganizationSyncSettings,
    new: OrganizationSyncSettings,
) -> ApiResult<Json<OrganizationSyncSettings>> {
    check(new.validate())?;
    let mut conn = app.db.pool().acquire().await?;
    let grants = idpsync::org_sync_grants(&mut conn, &new).await?;
    drop(conn);
    app.authz.require_grants(
        &actor.principal.entity,
        &grants,
        "the organization sync settings",
    )?;
    save(app, actor, None, SettingsKey::Organization, &old, &new).await?;
    Ok(Json(new))
}

pub async fn patch_org_sync(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<OrganizationSyncSettings>> {
    app.authz.require(
        &actor.principal.entity,
        Action::DEPLOYMENT_SYNC_UPDATE,
        &Resource::site(),
        "settings",
    )?;
    let mut conn = app.db.pool().acquire().await?;
    let old: OrganizationSyncSettings =
        idpsync::load_settings(&mut conn, None, SettingsKey::Organization).await?;
    drop(conn);
    let new = merged(&old, &patch)?;
    put_org_sync(&app, &actor, old, new).await
}

pub async fn patch_org_sync_mapping(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(patch): ApiJson<MappingPatch>,
) -> ApiResult<Json<OrganizationSyncSettings>> {
    app.authz.require(
        &actor.principal.entity,
        Action::DEPLOYMENT_SYNC_UPDATE,
        &Resource::site(),
        "settings",
    )?;
    let mut conn = app.db.pool().acquire().await?;
    let old: OrganizationSyncSettings =
        idpsync::load_settings(&mut conn, None, SettingsKey::Organization).await?;
    drop(conn);
    let mut new = old.clone();
    patch.apply(&mut new.mapping);
    put_org_sync(&app, &actor, old, new).await
}

pub async fn get_site_role_sync(
    State(app): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<SiteRoleSyncSettings>> {
    app.authz.require(
        &actor.principal.entity,
        Action::DEPLOYMENT_SYNC_READ,
        &Resource::site(),
        "settings",
    )?;
    let mut conn = app.db.pool().acquire().await?;
    Ok(Json(
        idpsync::load_settings(&mut conn, None, SettingsKey::SiteRoles).await?,
    ))
}

pub async fn patch_site_role_sync(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<SiteRoleSyncSettings>> {
    app.authz.require(
        &actor.principal.entity,
        Action::DEPLOYMENT_SYNC_UPDATE,
        &Resource::site(),
        "settings",
    )?;
    let mut conn = app.db.pool().acquire().await?;
    let old: SiteRoleSyncSettings =
        idpsync::load_settings(&mut conn, None, SettingsKey::SiteRoles).await?;
    drop(conn);
    let new: SiteRoleSyncSettings = merged(&old, &patch)?;
    check(new.validate())?;
    check(new.validate_roles(SITE_ROLES))?;
    app.authz.require_grants(
        &actor.principal.entity,
        &idpsync::site_role_sync_grants(&new),
        "the site role sync settings (a claim field passes unmapped values through as role names)",
    )?;
    save(&app, &actor, None, SettingsKey::SiteRoles, &old, &new).await?;
    Ok(Json(new))
}

// ---- Per organization: group sync and role sync ----

async fn org_settings<T: DeserializeOwned + Default>(
    app: &AppState,
    actor: &Actor,
    org: &str,
    key: SettingsKey,
    action: Action,
) -> ApiResult<(Organization, T)> {
    let (org, _) = load_org(app, actor, org, Action::ORGANIZATION_READ).await?;
    app.authz.require(
        &actor.principal.entity,
        action,
        &Resource::idpsync_settings(&org.org_ref()),
        "settings",
    )?;
    let mut conn = app.db.pool().acquire().await?;
    let s = idpsync::load_settings(&mut conn, Some(&org.id), key).await?;
    Ok((org, s))
}

pub async fn get_group_sync(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
) -> ApiResult<Json<GroupSyncSettings>> {
    Ok(Json(
        org_settings(
            &app,
            &actor,
            &org,
            SettingsKey::Groups,
            Action::IDPSYNC_SETTINGS_READ,
        )
        .await?
        .1,
    ))
}

async fn put_group_sync(
    app: &AppState,
    actor: &Actor,
    org: &Organization,
    old: GroupSyncSettings,
    new: GroupSyncSettings,
) -> ApiResult<Json<GroupSyncSettings>> {
    check(new.validate())?;
    save(app, actor, Some(org), SettingsKey::Groups, &old, &new).await?;
    Ok(Json(new))
}

pub async fn patch_group_sync(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<GroupSyncSettings>> {
    let (org, old) = org_settings::<GroupSyncSettings>(
        &app,
        &actor,
        &org,
        SettingsKey::Groups,
        Action::IDPSYNC_SETTINGS_UPDATE,
    )
    .await?;
    let new = merged(&old, &patch)?;
    put_group_sync(&app, &actor, &org, old, new).await
}

pub async fn patch_group_sync_mapping(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<MappingPatch>,
) -> ApiResult<Json<GroupSyncSettings>> {
    let (org, old) = org_settings::<GroupSyncSettings>(
        &app,
        &actor,
        &org,
        SettingsKey::Groups,
        Action::IDPSYNC_SETTINGS_UPDATE,
    )
    .await?;
    let mut new = old.clone();
    patch.apply(&mut new.mapping);
    put_group_sync(&app, &actor, &org, old, new).await
}

pub async fn get_role_sync(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
) -> ApiResult<Json<RoleSyncSettings>> {
    Ok(Json(
        org_settings(
            &app,
            &actor,
            &org,
            SettingsKey::Roles,
            Action::IDPSYNC_SETTINGS_READ,
        )
        .await?
        .1,
    ))
}

async fn put_role_sync(
    app: &AppState,
    actor: &Actor,
    org: &Organization,
    old: RoleSyncSettings,
    new: RoleSyncSettings,
) -> ApiResult<Json<RoleSyncSettings>> {
    check(new.validate())?;
    check(new.validate_roles(ORG_ROLES))?;
    app.authz.require_grants(
        &actor.principal.entity,
        &idpsync::role_sync_grants(org, &new),
        &format!(
            "the role sync settings of `{}` (a claim field passes unmapped values through as role names)",
            org.name
        ),
    )?;
    save(app, actor, Some(org), SettingsKey::Roles, &old, &new).await?;
    Ok(Json(new))
}

pub async fn patch_role_sync(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<RoleSyncSettings>> {
    let (org, old) = org_settings::<RoleSyncSettings>(
        &app,
        &actor,
        &org,
        SettingsKey::Roles,
        Action::IDPSYNC_SETTINGS_UPDATE,
    )
    .await?;
    let new = merged(&old, &patch)?;
    put_role_sync(&app, &actor, &org, old, new).await
}

pub async fn patch_role_sync_mapping(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(patch): ApiJson<MappingPatch>,
) -> ApiResult<Json<RoleSyncSettings>> {
    let (org, old) = org_settings::<RoleSyncSettings>(
        &app,
        &actor,
        &org,
        SettingsKey::Roles,
        Action::IDPSYNC_SETTINGS_UPDATE,
    )
    .await?;
    let mut new = old.clone();
    patch.apply(&mut new.mapping);
    put_role_sync(&app, &actor, &org, old, new).await
}

// ---- Preview, problems, claim fields ----

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub claims: Map<String, Value>,
    /// An existing user (id or username); absent: a new user.
    pub user: Option<String>,
}

/// `POST /idpsync/preview`: the plan a login with these claims would apply,
/// with reasons and problems. Writes nothing.
pub async fn preview(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> ApiResult<Json<Value>> {
    app.authz.require(
        &actor.principal.entity,
        Action::DEPLOYMENT_SYNC_READ,
        &Resource::site(),
        "settings",
    )?;
    let mut conn = app.db.pool().acquire().await?;
    let user_id = match &req.user {
        Some(key) => {
            let no_user = || ApiError::validation("user", format!("no user `{key}`"));
            let user = store::users::find(&mut conn, actor.resolve_user_key(key))
                .await?
                .ok_or_else(no_user)?;
            // A user the caller may not read is no user at all.
            if !app.authz.allowed(
                &actor.principal.entity,
                Action::USER_READ,
                &crate::usecase::users::user_resource(&user),
            ) {
                return Err(no_user());
            }
            Some(user.id)
        }
        None => None,
    };
    let plan = idpsync::plan_for(&mut conn, user_id.as_deref(), &req.claims).await?;
    let mut plan = serde_json::to_value(&plan).map_err(ApiError::internal)?;
    // The plan shows each org's group and role sync settings at work: only for
    // the orgs whose sync settings the caller may read.
    let hidden: Vec<String> = store::orgs::list(&mut conn)
        .await?
        .into_iter()
        .filter(|o| {
            !app.authz.allowed(
                &actor.principal.entity,
                Action::IDPSYNC_SETTINGS_READ,
                &Resource::idpsync_settings(&o.org_ref()),
            )
        })
        .map(|o| o.name)
        .collect();
    hide_orgs(&mut plan, &hidden);
    Ok(Json(plan))
}

/// Removes the per-org parts of a preview for `hidden` orgs (by name).
fn hide_orgs(plan: &mut Value, hidden: &[String]) {
    if hidden.is_empty() {
        return;
    }
    for section in ["groups", "roles"] {
        if let Some(Value::Object(per_org)) = plan.get_mut(section) {
            per_org.retain(|name, _| !hidden.contains(name));
        }
    }
    if let Some(Value::Array(problems)) = plan.get_mut("problems") {
        problems.retain(|p| {
            p.get("organization")
                .and_then(Value::as_str)
                .is_none_or(|name| !hidden.iter().any(|h| h == name))
        });
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProblemsQuery {
    pub organization: Option<String>,
    pub limit: Option<i64>,
}

/// `GET /idpsync/problems`: problems of the orgs whose sync settings the caller
/// may read (deployment-wide ones for deployment sync readers).
pub async fn problems(
    State(app): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<ProblemsQuery>,
) -> ApiResult<Json<Value>> {
    let (limit, _) = super::Page {
        limit: q.limit,
        offset: None,
    }
    .resolve(100, 1000)?;
    let principal = &actor.principal.entity;
    let mut conn = app.db.pool().acquire().await?;
    let deployment = app
        .authz
        .allowed(principal, Action::DEPLOYMENT_SYNC_READ, &Resource::site());
    let mut orgs = Vec::new();
    for o in store::orgs::list(&mut conn).await? {
        let wanted = q
            .organization
            .as_ref()
            .is_none_or(|k| k == &o.id || k.eq_ignore_ascii_case(&o.name));
        if wanted
            && app.authz.allowed(
                principal,
                Action::IDPSYNC_SETTINGS_READ,
                &Resource::idpsync_settings(&o.org_ref()),
            )
        {
            orgs.push(o);
        }
    }
    if !deployment && orgs.is_empty() {
        return Err(ApiError::forbidden().with_detail("you may not read IdP sync problems"));
    }
    let ids: Vec<String> = orgs.iter().map(|o| o.id.clone()).collect();
    let problems = idpsync::list_problems(
        &mut conn,
        &ids,
        deployment && q.organization.is_none(),
        limit,
    )
    .await?;
    Ok(Json(json!({"problems": problems})))
}

/// `GET /settings/idpsync/available-fields`: claim names seen in stored claims.
pub async fn available_fields(
    State(app): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Vec<String>>> {
    app.authz.require(
        &actor.principal.entity,
        Action::DEPLOYMENT_SYNC_READ,
        &Resource::site(),
        "settings",
    )?;
    let mut conn = app.db.pool().acquire().await?;
    Ok(Json(idpsync::claim_fields(&mut conn).await?))
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
    app.authz.require(
        &actor.principal.entity,
        Action::DEPLOYMENT_SYNC_READ,
        &Resource::site(),
        "settings",
    )?;
    let mut conn = app.db.pool().acquire().await?;
    Ok(Json(
        idpsync::claim_values(&mut conn, &q.claim_field).await?,
    ))
}
