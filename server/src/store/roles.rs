//! Custom organization roles, and the memberships that hold them.

use orgsync_policy::RolePermission;
use sqlx::Result;

use super::query::{all, execute, optional};
use super::users::bump_authz;
use super::{Conn, Text, Write, to_json_list};
use crate::model::CustomRole;

const ROLE_SELECT: &str = "SELECT organization_id, name, display_name, permissions, created_at, \
    updated_at FROM organization_roles";

pub async fn list(conn: &mut Conn, org_id: &str) -> Result<Vec<CustomRole>> {
    let sql = super::query::sql!("{ROLE_SELECT} WHERE organization_id = $1 ORDER BY name");
    all(conn, sql, (org_id,)).await
}

pub async fn get(conn: &mut Conn, org_id: &str, name: &str) -> Result<Option<CustomRole>> {
    let sql = super::query::sql!("{ROLE_SELECT} WHERE organization_id = $1 AND name = $2");
    optional(conn, sql, (org_id, name)).await
}

fn permissions_json(permissions: &[RolePermission]) -> String {
    serde_json::to_string(permissions).unwrap_or_else(|_| "[]".to_owned())
}

pub async fn insert(w: &mut Write<'_>, role: &CustomRole) -> Result<()> {
    let sql = "INSERT INTO organization_roles (organization_id, name, display_name, permissions, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)";
    let args = (
        role.organization_id.as_str(),
        role.name.as_str(),
        role.display_name.as_str(),
        permissions_json(&role.permissions),
        role.created_at.as_str(),
        role.updated_at.as_str(),
    );
    execute(w, sql, args).await
}

/// Replaces a role's display name and permissions; its holders' authorization
/// data changes with it (`holders`: their ids).
pub async fn update(w: &mut Write<'_>, role: &CustomRole, holders: &[&str]) -> Result<()> {
    let sql = "UPDATE organization_roles SET display_name = $1, permissions = $2, updated_at = $3 \
         WHERE organization_id = $4 AND name = $5";
    let args = (
        role.display_name.as_str(),
        permissions_json(&role.permissions),
        role.updated_at.as_str(),
        role.organization_id.as_str(),
        role.name.as_str(),
    );
    execute(w, sql, args).await?;
    bump_authz(w, holders).await
}

/// The members of `org_id` holding the role `name`: (user id, username, their
/// roles there), by username.
pub async fn holders(
    conn: &mut Conn,
    org_id: &str,
    name: &str,
) -> Result<Vec<(String, String, Vec<String>)>> {
    // Role names are `[a-z0-9-]`: no LIKE wildcard; the match is confirmed on
    // the parsed list.
    let sql = "SELECT m.user_id, u.username, m.roles FROM organization_members m \
         JOIN users u ON u.id = m.user_id \
         WHERE m.organization_id = $1 AND m.roles LIKE $2 ORDER BY u.username_lower";
    let rows: Vec<(String, String, Text)> =
        all(conn, sql, (org_id, format!("%\"{name}\"%"))).await?;
    Ok(rows
        .into_iter()
        .map(|(id, username, roles)| (id, username, roles.json::<Vec<String>>()))
        .filter(|(_, _, roles)| roles.iter().any(|r| r == name))
        .collect())
}

/// Deletes a role and takes it from every member holding it (`holders`, as
/// [`holders`] read them in the same transaction).
pub async fn delete(
    w: &mut Write<'_>,
    org_id: &str,
    name: &str,
    holders: &[(String, String, Vec<String>)],
    now: &str,
) -> Result<()> {
    for (user_id, _, roles) in holders {
        let kept: Vec<String> = roles.iter().filter(|r| *r != name).cloned().collect();
        let sql = "UPDATE organization_members SET roles = $1, updated_at = $2 \
             WHERE organization_id = $3 AND user_id = $4";
        execute(w, sql, (to_json_list(&kept), now, org_id, user_id.as_str())).await?;
    }
    let sql = "DELETE FROM organization_roles WHERE organization_id = $1 AND name = $2";
    execute(w, sql, (org_id, name)).await?;
    let ids: Vec<&str> = holders.iter().map(|(id, _, _)| id.as_str()).collect();
    bump_authz(w, &ids).await
}

/// The permissions of the custom roles `names` of `org_id` (names that are no
/// custom role of it give none).
pub async fn permissions(
    conn: &mut Conn,
    org_id: &str,
    names: &[String],
) -> Result<Vec<RolePermission>> {
    let sql = "SELECT name, permissions FROM organization_roles WHERE organization_id = $1";
    let rows: Vec<(String, Text)> = all(conn, sql, (org_id,)).await?;
    Ok(rows
        .into_iter()
        .filter(|(name, _)| names.contains(name))
        .flat_map(|(_, p)| p.json::<Vec<RolePermission>>())
        .collect())
}

/// The names of the custom roles of every organization: (organization id,
/// name).
pub async fn names(conn: &mut Conn) -> Result<Vec<(String, String)>> {
    let sql = "SELECT organization_id, name FROM organization_roles ORDER BY organization_id, name";
    all(conn, sql, ()).await
}
