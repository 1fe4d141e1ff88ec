//! Groups. The Everyone group (id == organization id) holds every member
//! implicitly and cannot be renamed, edited or deleted.

use std::collections::BTreeSet;

use orgsync_policy::{Action, Resource};
use serde::Deserialize;
use serde_json::json;

use super::members::org_member_by_key;
use super::{Caller, Ctx, Page, Work, orgs};
use crate::audit::{self, Change, to_value};
use crate::authz::Permit;
use crate::error::{Error, Result};
use crate::model::{EVERYONE, Group, Name, Organization, parse_image_url, parse_text};
use crate::store::{self, Conn};

async fn with_members(conn: &mut Conn, mut g: Group) -> sqlx::Result<Group> {
    g.members = store::groups::members(conn, &g).await?;
    Ok(g)
}

/// A page of the groups of the org `org_key`, decided on `group:read`.
async fn page_of(
    conn: &mut Conn,
    ctx: Ctx<'_>,
    caller: &Caller,
    org_key: &str,
    page: Page,
) -> Result<Vec<Group>> {
    let (org, _) = orgs::load(conn, ctx.authz, caller, org_key, Action::GROUP_READ).await?;
    page.apply(store::groups::list(conn, &org.id).await?)
}

pub async fn list(ctx: Ctx<'_>, caller: &Caller, org_key: &str, page: Page) -> Result<Vec<Group>> {
    let mut conn = ctx.conn().await?;
    let mut out = Vec::new();
    for g in page_of(&mut conn, ctx, caller, org_key, page).await? {
        out.push(with_members(&mut conn, g).await?);
    }
    Ok(out)
}

/// The org's groups with their member counts, members not read: what a
/// listing shows (the Everyone group of a big org has every member).
pub async fn list_counted(
    ctx: Ctx<'_>,
    caller: &Caller,
    org_key: &str,
    page: Page,
) -> Result<Vec<(Group, i64)>> {
    let mut conn = ctx.conn().await?;
    let mut out = Vec::new();
    for g in page_of(&mut conn, ctx, caller, org_key, page).await? {
        let n = store::groups::member_count(&mut conn, &g).await?;
        out.push((g, n));
    }
    Ok(out)
}

/// A new group as requested.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub avatar_url: String,
    #[serde(default)]
    pub quota_allowance: i64,
}

fn parse_group_name(raw: &str) -> Result<String> {
    if raw.eq_ignore_ascii_case(EVERYONE) {
        return Err(Error::validation(
            "name",
            "`Everyone` is reserved for the implicit group",
        ));
    }
    Ok(Name::parse("name", raw)?.as_str().to_owned())
}

fn parse_quota(q: i64) -> Result<i64> {
    if q < 0 {
        return Err(Error::validation("quota_allowance", "must not be negative"));
    }
    Ok(q)
}

pub async fn create(ctx: Ctx<'_>, caller: &Caller, org_key: &str, req: NewGroup) -> Result<Group> {
    let mut work = Work::begin(ctx, caller).await?;
    let (org, permit) = orgs::load_in(&mut work, org_key, Action::GROUP_CREATE).await?;
    let name = parse_group_name(&req.name)?;
    let display_name = parse_text("display_name", &req.display_name, 128)?;
    let avatar_url = parse_image_url("avatar_url", &req.avatar_url)?;
    let quota = parse_quota(req.quota_allowance)?;
    let id = store::new_id();
    let now_s = work.now_s.clone();
    store::groups::insert(
        &mut work.write(&permit)?,
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
    .map_err(Error::on_unique(format!(
        "a group named `{name}` already exists in `{}`",
        org.name
    )))?;
    let group = store::groups::find(work.conn(), &id)
        .await?
        .ok_or_else(|| Error::internal("group vanished"))?;
    work.audit(&permit, Change::created(&group)).await?;
    work.commit().await?;
    Ok(group)
}

/// Loads a group and its org and decides `action` on the group.
async fn load(
    conn: &mut Conn,
    ctx: Ctx<'_>,
    caller: &Caller,
    id: &str,
    action: Action,
) -> Result<(Group, Organization, Permit)> {
    let group = store::groups::find(conn, id).await?;
    let (group, org) = orgs::with_org(conn, group, |g| &g.organization_id, "group").await?;
    let permit = caller.require(
        ctx.authz,
        action,
        &Resource::group(&org.org_ref(), &group.id),
        "group",
    )?;
    Ok((group, org, permit))
}

pub async fn get(ctx: Ctx<'_>, caller: &Caller, id: &str) -> Result<Group> {
    let mut conn = ctx.conn().await?;
    let (group, _, _) = load(&mut conn, ctx, caller, id, Action::GROUP_READ).await?;
    Ok(with_members(&mut conn, group).await?)
}

/// A group of an org by id or name (the console's `/organizations/{org}/groups/{group}`):
/// 404 when the org is unknown or unreadable, or has no such group.
pub async fn find_in_org(
    ctx: Ctx<'_>,
    caller: &Caller,
    org_key: &str,
    group_key: &str,
) -> Result<Group> {
    let mut conn = ctx.conn().await?;
    let (org, _) = orgs::load(&mut conn, ctx.authz, caller, org_key, Action::GROUP_READ).await?;
    let group = match store::groups::find(&mut conn, group_key).await? {
        Some(g) if g.organization_id == org.id => Some(g),
        _ => store::groups::find_by_name(&mut conn, &org.id, group_key).await?,
    }
    .ok_or_else(|| Error::not_found("group"))?;
    caller.require(
        ctx.authz,
        Action::GROUP_READ,
        &Resource::group(&org.org_ref(), &group.id),
        "group",
    )?;
    Ok(with_members(&mut conn, group).await?)
}

/// The fields of a group to change, and members to add and remove.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub quota_allowance: Option<i64>,
    #[serde(default)]
    pub add_users: Vec<String>,
    #[serde(default)]
    pub remove_users: Vec<String>,
}

pub async fn update(ctx: Ctx<'_>, caller: &Caller, id: &str, req: GroupChanges) -> Result<Group> {
    let mut work = Work::begin(ctx, caller).await?;
    let (group, org, permit) = load(work.conn(), ctx, caller, id, Action::GROUP_UPDATE).await?;
    if group.is_everyone {
        return Err(Error::bad_request(
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
        updated.avatar_url = parse_image_url("avatar_url", a)?;
    }
    if let Some(q) = req.quota_allowance {
        updated.quota_allowance = parse_quota(q)?;
    }
    let now_s = work.now_s.clone();
    updated.updated_at = now_s.clone();
    // Every user named must be a member of the group's org (leaving the org
    // leaves its groups).
    let mut add = BTreeSet::new();
    for (i, key) in req.add_users.iter().enumerate() {
        let field = format!("add_users[{i}]");
        let user = org_member_by_key(work.conn(), caller, &org, key, &field).await?;
        add.insert(user.id);
    }
    let mut remove = BTreeSet::new();
    for (i, key) in req.remove_users.iter().enumerate() {
        let field = format!("remove_users[{i}]");
        let user = org_member_by_key(work.conn(), caller, &org, key, &field).await?;
        remove.insert(user.id);
    }
    let before: BTreeSet<String> = store::groups::member_ids(work.conn(), &group.id)
        .await?
        .into_iter()
        .collect();
    let mut w = work.write(&permit)?;
    store::groups::update(&mut w, &updated)
        .await
        .map_err(Error::on_unique(format!(
            "a group named `{}` already exists in `{}`",
            updated.name, org.name
        )))?;
    for uid in add.difference(&remove) {
        store::groups::add_member(&mut w, &group, uid, &now_s).await?;
    }
    for uid in &remove {
        store::groups::remove_member(&mut w, &group.id, uid).await?;
    }
    let after: BTreeSet<String> = store::groups::member_ids(work.conn(), &group.id)
        .await?
        .into_iter()
        .collect();
    let mut diff = audit::diff(&to_value(&group), &to_value(&updated));
    if before != after
        && let Some(map) = diff.as_object_mut()
    {
        map.insert("members".to_owned(), json!({"old": before, "new": after}));
    }
    if diff.as_object().is_some_and(|m| !m.is_empty()) {
        work.audit(
            &permit,
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
    let result = store::groups::find(work.conn(), &group.id)
        .await?
        .ok_or_else(|| Error::not_found("group"))?;
    let result = with_members(work.conn(), result).await?;
    work.touch_all(before.symmetric_difference(&after).cloned());
    work.commit().await?;
    Ok(result)
}

pub async fn delete(ctx: Ctx<'_>, caller: &Caller, id: &str) -> Result<()> {
    let mut work = Work::begin(ctx, caller).await?;
    let (group, org, permit) = load(work.conn(), ctx, caller, id, Action::GROUP_DELETE).await?;
    if group.is_everyone {
        return Err(Error::bad_request("the Everyone group cannot be deleted"));
    }
    let members = store::groups::member_ids(work.conn(), &group.id).await?;
    store::groups::delete(&mut work.write(&permit)?, &group.id).await?;
    let gone = json!({"name": group.name, "display_name": group.display_name, "members": members});
    work.audit(
        &permit,
        Change::site(
            "group",
            "delete",
            &group.id,
            &group.name,
            audit::deleted(&gone),
            204,
        )
        .in_org(&org.id),
    )
    .await?;
    work.touch_all(members);
    work.commit().await
}
