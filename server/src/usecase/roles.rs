//! Custom organization roles: defined per organization by those the policies
//! let manage its roles (`organization_role:create|update|delete`), enforced by
//! the policies of `policies/custom-roles.cedar` (which read the permissions a
//! member's roles carry), and held like the built-in org roles.
//!
//! A role held by anyone changes what its holders may do: updating or deleting
//! it passes the grant rule for it (`org_role:assign`), as assigning it does.

use std::collections::BTreeSet;

use orgsync_policy::{Action, ORG_ROLES, Resource, RolePermission, is_reserved_role_name};
use orgsync_sync::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::idpsync::invalid;
use super::{Caller, Ctx, Work, orgs};
use crate::audit::{Audited, Change};
use crate::authz::Grant;
use crate::error::{Error, Result};
use crate::model::{CustomRole, Organization};
use crate::store;

/// A role as the API takes it (create, update).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RoleRequest {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    /// If given, the organization of the URL (its id).
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub organization_permissions: Vec<RolePermission>,
    /// Must be empty: a custom role acts in its organization only.
    #[serde(default)]
    #[schema(value_type = Vec<RolePermission>)]
    pub site_permissions: Vec<serde_json::Value>,
    /// Must be empty.
    #[serde(default)]
    #[schema(value_type = Vec<RolePermission>)]
    pub user_permissions: Vec<serde_json::Value>,
}

/// A role of an organization, built-in or custom, and whether the caller may
/// assign it there.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssignableRole {
    pub name: String,
    pub display_name: String,
    pub organization_id: String,
    /// Whether the caller may grant or revoke it in this org.
    pub assignable: bool,
    /// Whether it is one of orgsync's built-in roles (whose permissions are
    /// the policies' bundles, not listed here).
    pub built_in: bool,
    pub organization_permissions: Vec<RolePermission>,
    pub site_permissions: Vec<RolePermission>,
    pub user_permissions: Vec<RolePermission>,
}

/// A role's name is lowercase letters, digits and inner dashes, 1 to 64 long.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// Checks a request against the org of the URL and the running policies'
/// schema; returns the role to store (permissions sorted, duplicates dropped).
fn validate(ctx: Ctx<'_>, org: &Organization, req: &RoleRequest, now: &str) -> Result<CustomRole> {
    let mut errors = Vec::new();
    let mut err = |field: &str, detail: String| {
        errors.push(FieldError {
            field: field.to_owned(),
            detail,
        });
    };
    if !valid_name(&req.name) {
        err(
            "name",
            "a role name is 1 to 64 lowercase letters, digits and inner dashes".to_owned(),
        );
    } else if is_reserved_role_name(&req.name) {
        err(
            "name",
            format!("`{}` is a built-in or reserved role name", req.name),
        );
    }
    if let Some(id) = &req.organization_id
        && id != &org.id
    {
        err(
            "organization_id",
            format!("`{id}` is not the organization of the URL (`{}`)", org.id),
        );
    }
    if !req.site_permissions.is_empty() {
        err(
            "site_permissions",
            "must be empty: a custom role acts only in its organization".to_owned(),
        );
    }
    if !req.user_permissions.is_empty() {
        err(
            "user_permissions",
            "must be empty: a custom role acts only in its organization".to_owned(),
        );
    }
    let engine = ctx.authz.engine();
    let grantable = engine.custom_role_actions();
    for (i, p) in req.organization_permissions.iter().enumerate() {
        let name = p.action_name();
        if grantable.contains(&name) {
            continue;
        }
        let prefix = format!("{}:", p.resource_type);
        let detail = if engine.action_names().any(|a| a.starts_with(&prefix)) {
            format!(
                "`{}` is not an action of `{}` a custom role may carry (one of: {})",
                p.action,
                p.resource_type,
                grantable
                    .iter()
                    .filter_map(|a| a.strip_prefix(&prefix))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!("`{}` is not a resource type", p.resource_type)
        };
        err(&format!("organization_permissions[{i}]"), detail);
    }
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    let permissions: BTreeSet<RolePermission> =
        req.organization_permissions.iter().cloned().collect();
    Ok(CustomRole {
        organization_id: org.id.clone(),
        name: req.name.clone(),
        display_name: req.display_name.clone(),
        permissions: permissions.into_iter().collect(),
        site_permissions: Vec::new(),
        user_permissions: Vec::new(),
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    })
}

impl Audited for CustomRole {
    const RESOURCE_TYPE: &'static str = "organization_role";
    fn audit_id(&self) -> &str {
        &self.name
    }
    fn audit_target(&self) -> &str {
        &self.name
    }
    fn audit_org(&self) -> Option<&str> {
        Some(&self.organization_id)
    }
}

/// The built-in and custom roles of an org, and which the caller may assign.
pub async fn list(ctx: Ctx<'_>, caller: &Caller, org_key: &str) -> Result<Vec<AssignableRole>> {
    let mut conn = ctx.conn().await?;
    let (org, _) = orgs::load(&mut conn, ctx.authz, caller, org_key, Action::MEMBER_READ).await?;
    let custom = store::roles::list(&mut conn, &org.id).await?;
    let assignable = |name: &str| {
        caller.allowed(
            ctx.authz,
            Action::ORG_ROLE_ASSIGN,
            &Resource::org_role(&org.org_ref(), name),
        )
    };
    let built_in = ORG_ROLES.iter().map(|role| AssignableRole {
        name: (*role).to_owned(),
        display_name: display_name(role),
        organization_id: org.id.clone(),
        assignable: assignable(role),
        built_in: true,
        organization_permissions: Vec::new(),
        site_permissions: Vec::new(),
        user_permissions: Vec::new(),
    });
    let custom = custom.into_iter().map(|r| AssignableRole {
        assignable: assignable(&r.name),
        display_name: if r.display_name.is_empty() {
            r.name.clone()
        } else {
            r.display_name
        },
        name: r.name,
        organization_id: r.organization_id,
        built_in: false,
        organization_permissions: r.permissions,
        site_permissions: Vec::new(),
        user_permissions: Vec::new(),
    });
    Ok(built_in.chain(custom).collect())
}

/// One custom role and the usernames of the members holding it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoleHolders {
    #[serde(flatten)]
    pub role: CustomRole,
    pub members: Vec<String>,
}

/// One custom role of an org and the usernames of the members holding it.
pub async fn show(ctx: Ctx<'_>, caller: &Caller, org_key: &str, name: &str) -> Result<RoleHolders> {
    let mut conn = ctx.conn().await?;
    let (org, _) = orgs::load(&mut conn, ctx.authz, caller, org_key, Action::MEMBER_READ).await?;
    let role = store::roles::get(&mut conn, &org.id, name)
        .await?
        .ok_or_else(|| Error::not_found("role"))?;
    let holders = store::roles::holders(&mut conn, &org.id, name).await?;
    Ok(RoleHolders {
        role,
        members: holders.into_iter().map(|(_, u, _)| u).collect(),
    })
}

/// Whether a save defines a new role or replaces one (the body names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Save {
    /// Defines a role, held by nobody yet: nothing is granted (assigning it
    /// passes the grant rule).
    Create,
    /// Replaces a role's display name and permissions; its holders'
    /// decisions change at once, on every replica.
    Update,
}

/// Creates or updates the custom role the body names.
pub async fn save(
    ctx: Ctx<'_>,
    caller: &Caller,
    org_key: &str,
    req: &RoleRequest,
    mode: Save,
) -> Result<CustomRole> {
    let mut work = Work::begin(ctx, caller).await?;
    let now_s = work.now_s.clone();
    if mode == Save::Update {
        let (org, old, holders, permit) = load_for_change(
            &mut work,
            org_key,
            &req.name,
            Action::ORGANIZATION_ROLE_UPDATE,
        )
        .await?;
        let mut role = validate(ctx, &org, req, &now_s)?;
        role.created_at = old.created_at.clone();
        if role.display_name == old.display_name && role.permissions == old.permissions {
            return Ok(old);
        }
        let ids: Vec<&str> = holders.iter().map(|(id, _, _)| id.as_str()).collect();
        store::roles::update(&mut work.write(&permit)?, &role, &ids).await?;
        work.audit(&permit, Change::updated(&old, &role)).await?;
        work.touch_all(ids);
        work.commit().await?;
        return Ok(role);
    }
    let (org, _) = orgs::load_in(&mut work, org_key, Action::ORGANIZATION_READ).await?;
    let permit = work.require(
        Action::ORGANIZATION_ROLE_CREATE,
        &Resource::org_role(&org.org_ref(), &req.name),
        "organization",
    )?;
    let role = validate(ctx, &org, req, &now_s)?;
    if store::roles::get(work.conn(), &org.id, &role.name)
        .await?
        .is_some()
    {
        return Err(Error::conflict(format!(
            "`{}` already has a role `{}`",
            org.name, role.name
        )));
    }
    store::roles::insert(&mut work.write(&permit)?, &role).await?;
    work.audit(&permit, Change::created(&role)).await?;
    work.commit().await?;
    Ok(role)
}

/// Loads the custom role `name` of the org for a change of it (`action`); a
/// role someone holds passes the grant rule too (its change grants or takes
/// what it carries). Returns the org, the role, its holders and the permit.
async fn load_for_change(
    work: &mut Work<'_>,
    org_key: &str,
    name: &str,
    action: Action,
) -> Result<(
    Organization,
    CustomRole,
    Vec<(String, String, Vec<String>)>,
    crate::authz::Permit,
)> {
    let (org, _) = orgs::load_in(work, org_key, Action::ORGANIZATION_READ).await?;
    let permit = work.require(action, &Resource::org_role(&org.org_ref(), name), "role")?;
    let role = store::roles::get(work.conn(), &org.id, name)
        .await?
        .ok_or_else(|| Error::not_found("role"))?;
    let holders = store::roles::holders(work.conn(), &org.id, name).await?;
    if !holders.is_empty() {
        work.require_grants(
            &[Grant::org(&org, name)],
            &format!(
                "changing the role `{name}`, which {} member(s) of `{}` hold,",
                holders.len(),
                org.name
            ),
        )?;
    }
    Ok((org, role, holders, permit))
}

/// Deletes a custom role and, in the same transaction, takes it from every
/// member holding it. Returns the usernames of those members.
pub async fn delete(
    ctx: Ctx<'_>,
    caller: &Caller,
    org_key: &str,
    name: &str,
) -> Result<Vec<String>> {
    let mut work = Work::begin(ctx, caller).await?;
    let (org, role, holders, permit) =
        load_for_change(&mut work, org_key, name, Action::ORGANIZATION_ROLE_DELETE).await?;
    let now_s = work.now_s.clone();
    store::roles::delete(&mut work.write(&permit)?, &org.id, name, &holders, &now_s).await?;
    let usernames: Vec<String> = holders.iter().map(|(_, u, _)| u.clone()).collect();
    let mut change = Change::deleted(&role);
    change.diff["members"] = json!({"old": usernames, "new": []});
    work.audit(&permit, change).await?;
    work.touch_all(holders.into_iter().map(|(id, _, _)| id));
    work.commit().await?;
    Ok(usernames)
}

pub(crate) fn display_name(role: &str) -> String {
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
