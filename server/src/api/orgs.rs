//! Organizations.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use orgsync_policy::{Action, Resource};
use serde::Deserialize;

use super::extract::{Actor, ApiJson, ApiQuery, Path};
use crate::app::AppState;
use crate::audit::{self, Change, to_value};
use crate::authz::Permit;
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::model::{Name, Organization, parse_text};
use crate::store;

/// Loads the organization of a `{organization}` segment (id or name) and requires
/// `action` on it; 404 when the caller may not read it.
pub(crate) async fn load_org(
    app: &AppState,
    actor: &Actor,
    key: &str,
    action: Action,
) -> ApiResult<(Organization, Permit)> {
    let mut conn = app.db.pool().acquire().await?;
    let org = store::orgs::find(&mut conn, key)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    drop(conn);
    let permit = app.authz.require(
        &actor.principal.entity,
        action,
        &Resource::organization(&org.org_ref()),
        "organization",
    )?;
    Ok((org, permit))
}

/// The organizations the caller may read.
pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    ApiQuery(page): ApiQuery<super::Page>,
) -> ApiResult<Json<Vec<Organization>>> {
    let mut conn = app.db.pool().acquire().await?;
    let orgs = store::orgs::list(&mut conn).await?;
    Ok(Json(
        page.apply(
            orgs.into_iter()
                .filter(|o| {
                    app.authz.allowed(
                        &actor.principal.entity,
                        Action::ORGANIZATION_READ,
                        &Resource::organization(&o.org_ref()),
                    )
                })
                .collect(),
        )?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrgRequest {
    pub name: String,
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub icon: String,
}

/// `POST /organizations`: creates the org, its Everyone group, and makes the
/// creator a member, in one transaction.
pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<CreateOrgRequest>,
) -> ApiResult<(StatusCode, Json<Organization>)> {
    let _permit = app.authz.require(
        &actor.principal.entity,
        Action::ORGANIZATION_CREATE,
        &Resource::site(),
        "organization",
    )?;
    let name = Name::parse("name", &req.name)?;
    let display_name = parse_text(
        "display_name",
        req.display_name.as_deref().unwrap_or(name.as_str()),
        128,
    )?;
    let description = parse_text("description", &req.description, 1024)?;
    let icon = parse_text("icon", &req.icon, 2048)?;
    let now_s = clock::fmt(clock::now());
    let org = Organization {
        id: store::new_id(),
        name: name.as_str().to_owned(),
        display_name,
        description,
        icon,
        is_default: false,
        created_at: now_s.clone(),
        updated_at: now_s.clone(),
    };
    let mut tx = app.db.begin().await?;
    store::orgs::insert(&mut tx, &org)
        .await
        .map_err(ApiError::on_unique(name_taken(&org.name)))?;
    store::groups::insert_everyone(&mut tx, &org.id, &now_s).await?;
    store::members::insert(&mut tx, &org.id, actor.id(), &[], &now_s).await?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "create",
            resource_type: "organization",
            resource_id: &org.id,
            resource_target: &org.name,
            diff: audit::created(&to_value(&org)),
            status_code: 201,
        },
    )
    .await?;
    tx.commit().await?;
    app.authz.invalidate([actor.id()]);
    Ok((StatusCode::CREATED, Json(org)))
}

fn name_taken(name: &str) -> String {
    format!("an organization named `{name}` already exists")
}

pub async fn get(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
) -> ApiResult<Json<Organization>> {
    let (org, _) = load_org(&app, &actor, &key, Action::ORGANIZATION_READ).await?;
    Ok(Json(org))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrgRequest {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub icon: Option<String>,
}

pub async fn update(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<UpdateOrgRequest>,
) -> ApiResult<Json<Organization>> {
    let (org, _permit) = load_org(&app, &actor, &key, Action::ORGANIZATION_UPDATE).await?;
    let mut updated = org.clone();
    if let Some(n) = &req.name {
        updated.name = Name::parse("name", n)?.as_str().to_owned();
    }
    if let Some(d) = &req.display_name {
        updated.display_name = parse_text("display_name", d, 128)?;
    }
    if let Some(d) = &req.description {
        updated.description = parse_text("description", d, 1024)?;
    }
    if let Some(i) = &req.icon {
        updated.icon = parse_text("icon", i, 2048)?;
    }
    if updated == org {
        return Ok(Json(org));
    }
    let now_s = clock::fmt(clock::now());
    updated.updated_at = now_s.clone();
    let mut tx = app.db.begin().await?;
    store::orgs::update(&mut tx, &updated)
        .await
        .map_err(ApiError::on_unique(name_taken(&updated.name)))?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "update",
            resource_type: "organization",
            resource_id: &org.id,
            resource_target: &updated.name,
            diff: audit::diff(&to_value(&org), &to_value(&updated)),
            status_code: 200,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(updated))
}

/// `DELETE /organizations/{organization}`: refused (409, naming what remains)
/// while the org holds anything but its Everyone group and the caller.
pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    let (org, _permit) = load_org(&app, &actor, &key, Action::ORGANIZATION_DELETE).await?;
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    let remaining = store::orgs::remaining(&mut tx, &org.id, actor.id()).await?;
    if !remaining.is_empty() {
        return Err(ApiError::conflict(format!(
            "organization `{}` still has {}; remove them first",
            org.name,
            remaining.join(", ")
        )));
    }
    let members = store::members::user_ids(&mut tx, &org.id).await?;
    store::orgs::delete(&mut tx, &org.id).await?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "delete",
            resource_type: "organization",
            resource_id: &org.id,
            resource_target: &org.name,
            diff: audit::deleted(&to_value(&org)),
            status_code: 204,
        },
    )
    .await?;
    tx.commit().await?;
    app.authz.invalidate(members.iter().map(String::as_str));
    Ok(StatusCode::NO_CONTENT)
}
