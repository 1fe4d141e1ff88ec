//! Groups. The Everyone group (id == organization id) holds every member
//! implicitly and cannot be renamed, edited or deleted.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use orgsync_policy::{Action, Resource};
use serde::Deserialize;
use serde_json::json;

use super::extract::{Actor, ApiJson, ApiQuery, Path};
use super::orgs::load_org;
use crate::app::AppState;
use crate::audit::{self, Change, to_value};
use crate::authz::Permit;
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::model::{EVERYONE, Group, Name, Organization, parse_text};
use crate::store::{self, Conn};

async fn with_members(conn: &mut Conn, mut g: Group) -> sqlx::Result<Group> {
    g.members = store::groups::members(conn, &g).await?;
    Ok(g)
}

pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<super::Page>,
) -> ApiResult<Json<Vec<Group>>> {
    let (org, _) = load_org(&app, &actor, &org, Action::GROUP_READ).await?;
    let mut conn = app.db.pool().acquire().await?;
    let mut out = Vec::new();
    for g in page.apply(store::groups::list(&mut conn, &org.id).await?)? {
        out.push(with_members(&mut conn, g).await?);
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGroupRequest {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub avatar_url: String,
    #[serde(default)]
    pub quota_allowance: i64,
}

fn parse_group_name(raw: &str) -> ApiResult<String> {
    if raw.eq_ignore_ascii_case(EVERYONE) {
        return Err(ApiError::validation(
            "name",
            "`Everyone` is reserved for the implicit group",
        ));
    }
    Ok(Name::parse("name", raw)?.as_str().to_owned())
}

fn parse_quota(q: i64) -> ApiResult<i64> {
    if q < 0 {
        return Err(ApiError::validation(
            "quota_allowance",
            "must not be negative",
        ));
    }
    Ok(q)
}

pub async fn create(
    State(app): State<AppState>,
    actor: Actor,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreateGroupRequest>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    let (org, _permit) = load_org(&app, &actor, &org, Action::GROUP_CREATE).await?;
    let name = parse_group_name(&req.name)?;
    let display_name = parse_text("display_name", &req.display_name, 128)?;
    let avatar_url = parse_text("avatar_url", &req.avatar_url, 2048)?;
    let quota = parse_quota(req.quota_allowance)?;
    let now_s = clock::fmt(clock::now());
    let id = store::new_id();
    let mut tx = app.db.begin().await?;
    store::groups::insert(
        &mut tx,
        &store::groups::NewGroup {
            id: &id,
            organization_id: &org.id,
            name: &name,
            display_name: &display_name,
            avatar_url: &avatar_url,
            quota_allowance: quota,
            source: "user",
            now: &now_s,
        },
    )
    .await
    .map_err(ApiError::on_unique(format!(
        "a group named `{name}` already exists in `{}`",
        org.name
    )))?;
    let group = store::groups::find(&mut tx, &id)
        .await?
        .ok_or_else(|| ApiError::internal("group vanished"))?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "create",
            resource_type: "group",
            resource_id: &id,
            resource_target: &name,
            diff: audit::created(&to_value(&group)),
            status_code: 201,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(group)))
}

/// Loads a group and its org and requires `action` on the group.
async fn load_group(
    app: &AppState,
    actor: &Actor,
    id: &str,
    action: Action,
) -> ApiResult<(Group, Organization, Permit)> {
    let mut conn = app.db.pool().acquire().await?;
    let group = store::groups::find(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    let org = store::orgs::find(&mut conn, &group.organization_id)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    drop(conn);
    let permit = app.authz.require(
        &actor.principal.entity,
        action,
        &Resource::group(&org.org_ref(), &group.id),
        "group",
    )?;
    Ok((group, org, permit))
}

pub async fn get(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Group>> {
    let (group, _, _) = load_group(&app, &actor, &id, Action::GROUP_READ).await?;
    let mut conn = app.db.pool().acquire().await?;
    Ok(Json(with_members(&mut conn, group).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroupRequest {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub quota_allowance: Option<i64>,
    #[serde(default)]
    pub add_users: Vec<String>,
    #[serde(default)]
    pub remove_users: Vec<String>,
}

pub async fn update(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateGroupRequest>,
) -> ApiResult<Json<Group>> {
    let (group, org, _permit) = load_group(&app, &actor, &id, Action::GROUP_UPDATE).await?;
    if group.is_everyone {
        return Err(ApiError::bad_request(
            "the Everyone group cannot be edited: it always holds every member",
        ));
    }
    let mut updated = group.clone();
    if let Some(n) = &req.name {
        updated.name = parse_group_name(n)?;
    }
    if let Some(d) = &req.display_name {
        updated.display_name = parse_text("display_name", d, 128)?;
    }
    if let Some(a) = &req.avatar_url {
        updated.avatar_url = parse_text("avatar_url", a, 2048)?;
    }
    if let Some(q) = req.quota_allowance {
        updated.quota_allowance = parse_quota(q)?;
    }
    let now_s = clock::fmt(clock::now());
    updated.updated_at = now_s.clone();
    let mut tx = app.db.begin().await?;
    // Resolve users: every one must be a member of the group's org.
    let mut add = BTreeSet::new();
    for (i, key) in req.add_users.iter().enumerate() {
        let field = format!("add_users[{i}]");
        let user = super::members::org_member_by_key(&mut tx, &actor, &org, key, &field).await?;
        add.insert(user.id);
    }
    let mut remove = BTreeSet::new();
    for (i, key) in req.remove_users.iter().enumerate() {
        // Group members are org members (leaving the org leaves its groups).
        let field = format!("remove_users[{i}]");
        let user = super::members::org_member_by_key(&mut tx, &actor, &org, key, &field).await?;
        remove.insert(user.id);
    }
    let before: BTreeSet<String> = store::groups::member_ids(&mut tx, &group.id)
        .await?
        .into_iter()
        .collect();
    store::groups::update(&mut tx, &updated)
        .await
        .map_err(ApiError::on_unique(format!(
            "a group named `{}` already exists in `{}`",
            updated.name, org.name
        )))?;
    for uid in add.difference(&remove) {
        store::groups::add_member(&mut tx, &group, uid, &now_s).await?;
    }
    for uid in &remove {
        store::groups::remove_member(&mut tx, &group.id, uid).await?;
    }
    let after: BTreeSet<String> = store::groups::member_ids(&mut tx, &group.id)
        .await?
        .into_iter()
        .collect();
    let mut diff = audit::diff(&to_value(&group), &to_value(&updated));
    if before != after
        && let Some(map) = diff.as_object_mut()
    {
        map.insert("members".to_owned(), json!({"old": before, "new": after}));
    }
    let changed_any = diff.as_object().is_some_and(|m| !m.is_empty());
    if changed_any {
        audit::record(
            &mut tx,
            &actor.audit(),
            &now_s,
            Change {
                organization_id: Some(&org.id),
                action: "update",
                resource_type: "group",
                resource_id: &group.id,
                resource_target: &updated.name,
                diff,
                status_code: 200,
            },
        )
        .await?;
    }
    let result = store::groups::find(&mut tx, &group.id)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    let result = with_members(&mut tx, result).await?;
    tx.commit().await?;
    let touched: Vec<&str> = before
        .symmetric_difference(&after)
        .map(String::as_str)
        .collect();
    app.authz.invalidate(touched);
    Ok(Json(result))
}

pub async fn delete(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (group, org, _permit) = load_group(&app, &actor, &id, Action::GROUP_DELETE).await?;
    if group.is_everyone {
        return Err(ApiError::bad_request(
            "the Everyone group cannot be deleted",
        ));
    }
    let now_s = clock::fmt(clock::now());
    let mut tx = app.db.begin().await?;
    let members = store::groups::member_ids(&mut tx, &group.id).await?;
    store::groups::delete(&mut tx, &group.id).await?;
    audit::record(
        &mut tx,
        &actor.audit(),
        &now_s,
        Change {
            organization_id: Some(&org.id),
            action: "delete",
            resource_type: "group",
            resource_id: &group.id,
            resource_target: &group.name,
            diff: audit::deleted(&json!({"name": group.name, "display_name": group.display_name, "members": members})),
            status_code: 204,
        },
    )
    .await?;
    tx.commit().await?;
    app.authz.invalidate(members.iter().map(String::as_str));
    Ok(StatusCode::NO_CONTENT)
}
