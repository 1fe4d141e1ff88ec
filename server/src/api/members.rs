//! Organization members and their org roles.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use orgsync_policy::{Action, ORG_ROLES, Resource, is_org_role};
use serde::Serialize;
use serde_json::json;

use super::extract::{Actor, ApiJson, ApiQuery, Path};
use super::orgs::load_org;
use super::users::{RolesRequest, roles_changed};
use crate::app::AppState;
use crate::audit::{self, Change};
use crate::authz::Grant;
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::model::{Member, Organization, User};
use crate::store;

pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<super::Page>,
) -> ApiResult<Json<Vec<Member>>> {
    let (org, _) = load_org(&app, &actor, &org, Action::MEMBER_READ).await?;
    let mut conn = app.db.pool().acquire().await?;
    Ok(Json(
        page.apply(store::members::list(&mut conn, &org.id).await?)?,
    ))
}

/// The org and user of a `/organizations/{organization}/members/{user}` route.
async fn org_and_user(
    app: &AppState,
    actor: &Actor,
    org_key: &str,
    user_key: &str,
) -> ApiResult<(Organization, User)> {
    let (org, _) = load_org(app, actor, org_key, Action::ORGANIZATION_READ).await?;
    let mut conn = app.db.pool().acquire().await?;
    let user = store::users::find(&mut conn, actor.resolve_user_key(user_key))
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok((org, user))
}

pub async fn add(
    State(app): State<AppState>,
    actor: Actor,
    Path((org_key, user_key)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Member>)> {
    let (org, user) = org_and_user(&app, &actor, &org_key, &user_key).await?;
    let _permit = app.authz.require(
        &actor.principal.entity,
        Action::MEMBER_CREATE,
        &Resource::member(&org.org_ref(), &user.id),
        "organization",
    )?;
    app.authz.require_grants(
        &actor.principal.entity,
        &[Grant::org(&org, "organization-member")],
        &format!("adding `{}` to `{}`", user.username, org.name),
    )?;
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    crate::idpsync::guard_manual_member_add(&mut tx, user.login_type, &user.username).await?;
    if store::members::get(&mut tx, &org.id, &user.id)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(format!(
            "`{}` is already a member of `{}`",
            user.username, org.name
        )));
    }
    store::members::insert(&mut tx, &org.id, &user.id, &[], &now_s).await?;
    let member = store::members::get(&mut tx, &org.id, &user.id)
        .await?
        .ok_or_else(|| ApiError::internal("member vanished"))?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "create",
            resource_type: "organization_member",
            resource_id: &user.id,
            resource_target: &user.username,
            diff: json!({"roles": {"old": null, "new": []}}),
            status_code: 201,
        },
    )
    .await?;
    tx.commit().await?;
    app.authz.invalidate([user.id.as_str()]);
    Ok((StatusCode::CREATED, Json(member)))
}

/// Removes a member and, atomically, its memberships of the org's groups.
pub async fn remove(
    State(app): State<AppState>,
    actor: Actor,
    Path((org_key, user_key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (org, user) = org_and_user(&app, &actor, &org_key, &user_key).await?;
    let _permit = app.authz.require(
        &actor.principal.entity,
        Action::MEMBER_DELETE,
        &member_resource(&org, &user),
        "member",
    )?;
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    let member = store::members::get(&mut tx, &org.id, &user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    // Removing a member takes every role it holds in the org: it needs the
    // authority to set them.
    let grants: Vec<Grant> = std::iter::once("organization-member")
        .chain(member.roles.iter().map(String::as_str))
        .map(|r| Grant::org(&org, r))
        .collect();
    app.authz.require_grants(
        &actor.principal.entity,
        &grants,
        &format!("removing `{}` from `{}`", user.username, org.name),
    )?;
    let groups = store::members::remove(&mut tx, &org.id, &user.id).await?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "delete",
            resource_type: "organization_member",
            resource_id: &user.id,
            resource_target: &user.username,
            diff: json!({"roles": {"old": member.roles, "new": null}, "groups": {"old": groups, "new": []}}),
            status_code: 204,
        },
    )
    .await?;
    tx.commit().await?;
    app.authz.invalidate([user.id.as_str()]);
    Ok(StatusCode::NO_CONTENT)
}

/// Validates requested org roles; `organization-member` is implicit and dropped.
fn parse_org_roles(roles: &[String]) -> ApiResult<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for (i, r) in roles.iter().enumerate() {
        if !is_org_role(r) {
            return Err(ApiError::validation(
                &format!("roles[{i}]"),
                format!("`{r}` is not an organization role"),
            ));
        }
        if r != "organization-member" {
            out.insert(r.clone());
        }
    }
    Ok(out)
}

pub async fn set_roles(
    State(app): State<AppState>,
    actor: Actor,
    Path((org_key, user_key)): Path<(String, String)>,
    ApiJson(req): ApiJson<RolesRequest>,
) -> ApiResult<Json<Member>> {
    let wanted = parse_org_roles(&req.roles)?;
    let (org, user) = org_and_user(&app, &actor, &org_key, &user_key).await?;
    let mut conn = app.db.pool().acquire().await?;
    let member = store::members::get(&mut conn, &org.id, &user.id).await?;
    drop(conn);
    let current: BTreeSet<String> = member
        .as_ref()
        .map(|m| m.roles.iter().cloned().collect())
        .unwrap_or_default();
    let changed = roles_changed(&current, &wanted);
    let _permit = app.authz.require(
        &actor.principal.entity,
        Action::MEMBER_UPDATE_ROLES,
        &member_resource(&org, &user),
        "member",
    )?;
    let grants: Vec<Grant> = changed.iter().map(|r| Grant::org(&org, r)).collect();
    app.authz.require_grants(
        &actor.principal.entity,
        &grants,
        &format!(
            "changing the roles of `{}` in `{}`",
            user.username, org.name
        ),
    )?;
    let member = member.ok_or_else(|| ApiError::not_found("member"))?;
    if !changed.is_empty() {
        let mut conn = app.db.pool().acquire().await?;
        crate::idpsync::guard_manual_role_change(
            &mut conn,
            user.login_type,
            &org.id,
            &user.username,
        )
        .await?;
    }
    if changed.is_empty() {
        return Ok(Json(member));
    }
    let now_s = clock::fmt(clock::now());
    let list: Vec<String> = wanted.into_iter().collect();
    let mut tx = app.db.begin().await?;
    store::members::set_roles(&mut tx, &org.id, &user.id, &list, &now_s).await?;
    let updated = store::members::get(&mut tx, &org.id, &user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "update",
            resource_type: "organization_member",
            resource_id: &user.id,
            resource_target: &user.username,
            diff: json!({"roles": {"old": member.roles, "new": updated.roles}}),
            status_code: 200,
        },
    )
    .await?;
    tx.commit().await?;
    app.authz.invalidate([user.id.as_str()]);
    Ok(Json(updated))
}

#[derive(Debug, Serialize)]
pub struct AssignableRole {
    pub name: &'static str,
    pub display_name: String,
    pub organization_id: String,
    /// Whether the caller may grant or revoke it in this org.
    pub assignable: bool,
}

/// `GET /organizations/{organization}/members/roles`: the org roles and which of
/// them the caller may assign, as the policies decide.
pub async fn assignable_roles(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<AssignableRole>>> {
    let (org, _) = load_org(&app, &actor, &org, Action::MEMBER_READ).await?;
    let roles = ORG_ROLES
        .iter()
        .map(|role| {
            let assignable = app.authz.allowed(
                &actor.principal.entity,
                Action::ORG_ROLE_ASSIGN,
                &Resource::org_role(&org.org_ref(), role),
            );
            AssignableRole {
                name: role,
                display_name: display_name(role),
                organization_id: org.id.clone(),
                assignable,
            }
        })
        .collect();
    Ok(Json(roles))
}

/// The user `key` (id, username or `me`) if it is a member of `org`. Anyone
/// else, existing or not, is the same 400 naming the key as given: a caller
/// that may manage the org learns nothing about users outside it.
pub(super) async fn org_member_by_key(
    conn: &mut crate::store::Conn,
    actor: &Actor,
    org: &Organization,
    key: &str,
    field: &str,
) -> ApiResult<User> {
    let not_member =
        || ApiError::validation(field, format!("`{key}` is not a member of `{}`", org.name));
    let user = store::users::find(conn, actor.resolve_user_key(key))
        .await?
        .ok_or_else(not_member)?;
    if store::members::get(conn, &org.id, &user.id)
        .await?
        .is_none()
    {
        return Err(not_member());
    }
    Ok(user)
}

/// A membership as the object of a decision, with its user's site roles (which
/// guardrails read: nobody below owner removes an owner).
fn member_resource(org: &Organization, user: &User) -> Resource {
    Resource::member(&org.org_ref(), &user.id).with_site_roles(&user.roles)
}

fn display_name(role: &str) -> String {
    role.trim_start_matches("organization-")
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}
