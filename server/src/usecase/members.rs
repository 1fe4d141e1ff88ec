//! Organization members and their org roles. Adding, removing and changing the
//! roles of a member are grants: each passes the grant rule for every role it
//! gives or takes.

use std::collections::BTreeSet;

use orgsync_policy::{Action, Resource, is_org_role};
use serde_json::json;

use super::{Caller, Ctx, Page, Work, orgs, roles_changed};
use crate::audit::Change;
use crate::authz::Grant;
use crate::error::{Error, Result};
use crate::idpsync::Managed;
use crate::model::{Member, Organization, User};
use crate::store::{self, Conn};

pub async fn list(ctx: Ctx<'_>, caller: &Caller, org_key: &str, page: Page) -> Result<Vec<Member>> {
    let mut conn = ctx.conn().await?;
    let (org, _) = orgs::load(&mut conn, ctx.authz, caller, org_key, Action::MEMBER_READ).await?;
    page.apply(store::members::list(&mut conn, &org.id).await?)
}

/// One page of the org's members by username (`page`: 50 by default, at
/// most 1,000) and how many members it has in all.
pub async fn list_page(
    ctx: Ctx<'_>,
    caller: &Caller,
    org_key: &str,
    page: Page,
) -> Result<(Vec<Member>, i64)> {
    let mut conn = ctx.conn().await?;
    let (org, _) = orgs::load(&mut conn, ctx.authz, caller, org_key, Action::MEMBER_READ).await?;
    let limit_offset = page.resolve(50, 1000)?;
    Ok(store::members::list_page(&mut conn, &org.id, limit_offset).await?)
}

/// The org and user of a `/organizations/{organization}/members/{user}` route,
/// loaded in the operation's transaction.
async fn org_and_user(
    work: &mut Work<'_>,
    org_key: &str,
    user_key: &str,
) -> Result<(Organization, User)> {
    let (org, _) = orgs::load_in(work, org_key, Action::ORGANIZATION_READ).await?;
    let key = work.caller().resolve_user_key(user_key).to_owned();
    // By id, username or email: what the console's Add member field takes.
    let user = store::users::find_by_handle(work.conn(), &key)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    Ok((org, user))
}

/// Adds `user_key` to the org with no role beyond `organization-member`.
pub async fn add(ctx: Ctx<'_>, caller: &Caller, org_key: &str, user_key: &str) -> Result<Member> {
    let mut work = Work::begin(ctx, caller).await?;
    let (org, user) = org_and_user(&mut work, org_key, user_key).await?;
    let permit = work.require(
        Action::MEMBER_CREATE,
        &Resource::member(&org.org_ref(), &user.id),
        "organization",
    )?;
    work.require_grants(
        &[Grant::org(&org, "organization-member")],
        &format!("adding `{}` to `{}`", user.username, org.name),
    )?;
    crate::idpsync::guard_manual_change(
        work.conn(),
        user.login_type,
        Managed::Memberships,
        &user.username,
    )
    .await?;
    if store::members::get(work.conn(), &org.id, &user.id)
        .await?
        .is_some()
    {
        return Err(Error::conflict(format!(
            "`{}` is already a member of `{}`",
            user.username, org.name
        )));
    }
    let now_s = work.now_s.clone();
    store::members::insert(&mut work.write(&permit)?, &org.id, &user.id, &now_s).await?;
    let member = store::members::get(work.conn(), &org.id, &user.id)
        .await?
        .ok_or_else(|| Error::internal("member vanished"))?;
    work.audit(
        &permit,
        Change::member(
            &org.id,
            &user,
            "create",
            json!({"roles": {"old": null, "new": []}}),
            201,
        ),
    )
    .await?;
    work.touch(user.id);
    work.commit().await?;
    Ok(member)
}

/// Removes a member and, atomically, its memberships of the org's groups.
/// Removing takes every role the member holds in the org: the caller needs the
/// authority to grant each of them.
pub async fn remove(ctx: Ctx<'_>, caller: &Caller, org_key: &str, user_key: &str) -> Result<()> {
    let mut work = Work::begin(ctx, caller).await?;
    let (org, user) = org_and_user(&mut work, org_key, user_key).await?;
    let permit = work.require(
        Action::MEMBER_DELETE,
        &member_resource(&org, &user),
        "member",
    )?;
    let member = store::members::get(work.conn(), &org.id, &user.id)
        .await?
        .ok_or_else(|| Error::not_found("member"))?;
    let grants: Vec<Grant> = std::iter::once("organization-member")
        .chain(member.roles.iter().map(String::as_str))
        .map(|r| Grant::org(&org, r))
        .collect();
    work.require_grants(
        &grants,
        &format!("removing `{}` from `{}`", user.username, org.name),
    )?;
    let groups = store::members::remove(&mut work.write(&permit)?, &org.id, &user.id).await?;
    work.audit(
        &permit,
        Change::member(&org.id, &user, "delete", json!({"roles": {"old": member.roles, "new": null}, "groups": {"old": groups, "new": []}}), 204),
    )
    .await?;
    work.touch(user.id);
    work.commit().await
}

/// Validates requested org roles (built-in, or custom roles of the org);
/// `organization-member` is implicit and dropped.
async fn parse_org_roles(
    conn: &mut Conn,
    org: &Organization,
    roles: &[String],
) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let custom: Vec<String> = if roles.iter().all(|r| is_org_role(r)) {
        Vec::new()
    } else {
        store::roles::list(conn, &org.id)
            .await?
            .into_iter()
            .map(|r| r.name)
            .collect()
    };
    for (i, r) in roles.iter().enumerate() {
        if !is_org_role(r) && !custom.contains(r) {
            return Err(Error::validation(
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

/// Sets a member's org roles to exactly `roles`; every role granted or revoked
/// passes the grant rule.
pub async fn set_roles(
    ctx: Ctx<'_>,
    caller: &Caller,
    org_key: &str,
    user_key: &str,
    roles: &[String],
) -> Result<Member> {
    let mut work = Work::begin(ctx, caller).await?;
    let (org, user) = org_and_user(&mut work, org_key, user_key).await?;
    let wanted = parse_org_roles(work.conn(), &org, roles).await?;
    let member = store::members::get(work.conn(), &org.id, &user.id).await?;
    let current: BTreeSet<String> = member
        .as_ref()
        .map(|m| m.roles.iter().cloned().collect())
        .unwrap_or_default();
    let changed = roles_changed(&current, &wanted);
    let permit = work.require(
        Action::MEMBER_UPDATE_ROLES,
        &member_resource(&org, &user),
        "member",
    )?;
    let grants: Vec<Grant> = changed.iter().map(|r| Grant::org(&org, r)).collect();
    work.require_grants(
        &grants,
        &format!(
            "changing the roles of `{}` in `{}`",
            user.username, org.name
        ),
    )?;
    let member = member.ok_or_else(|| Error::not_found("member"))?;
    if changed.is_empty() {
        return Ok(member);
    }
    crate::idpsync::guard_manual_change(
        work.conn(),
        user.login_type,
        Managed::OrgRoles(&org.id),
        &user.username,
    )
    .await?;
    let list: Vec<String> = wanted.into_iter().collect();
    let now_s = work.now_s.clone();
    store::members::set_roles(&mut work.write(&permit)?, &org.id, &user.id, &list, &now_s).await?;
    let updated = store::members::get(work.conn(), &org.id, &user.id)
        .await?
        .ok_or_else(|| Error::not_found("member"))?;
    work.audit(
        &permit,
        Change::member(
            &org.id,
            &user,
            "update",
            json!({"roles": {"old": member.roles, "new": updated.roles}}),
            200,
        ),
    )
    .await?;
    work.touch(user.id);
    work.commit().await?;
    Ok(updated)
}

/// The user `key` (id, username or `me`) if it is a member of `org`. Anyone
/// else, existing or not, is the same 400 naming the key as given: a caller
/// that may manage the org learns nothing about users outside it.
pub async fn org_member_by_key(
    conn: &mut Conn,
    caller: &Caller,
    org: &Organization,
    key: &str,
    field: &str,
) -> Result<User> {
    let not_member =
        || Error::validation(field, format!("`{key}` is not a member of `{}`", org.name));
    let user = store::users::find_by_handle(conn, caller.resolve_user_key(key))
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
