//! The authorization data of a user, read for the policy engine.

use orgsync_policy::{OrgMembership, Principal, is_org_role};
use sqlx::Result;

use super::Conn;
use super::query::{Text, optional, scalars};

/// Loads a user's status, site roles, memberships (with org roles and the
/// permissions of its custom roles) and groups.
/// Returns the data with the `authz_version` it was read at.
pub async fn load(conn: &mut Conn, user_id: &str) -> Result<Option<(Principal, i64)>> {
    let sql = "SELECT id, status, roles, authz_version FROM users WHERE id = $1";
    let Some((id, status, roles, version)) =
        optional::<(String, String, Text, i64)>(&mut *conn, sql, (user_id,)).await?
    else {
        return Ok(None);
    };
    let sql = "SELECT organization_id, roles FROM organization_members WHERE user_id = $1";
    let memberships: Vec<(String, Text)> = super::query::all(&mut *conn, sql, (user_id,)).await?;
    let sql = "SELECT group_id FROM group_members WHERE user_id = $1";
    let groups = scalars(conn, sql, (user_id,)).await?;
    let mut orgs = Vec::with_capacity(memberships.len());
    for (org_id, roles) in memberships {
        let roles: Vec<String> = roles.json();
        // Only a custom role costs a read: the built-in ones carry no data.
        let permissions = if roles.iter().all(|r| is_org_role(r)) {
            Vec::new()
        } else {
            super::roles::permissions(&mut *conn, &org_id, &roles).await?
        };
        orgs.push(OrgMembership {
            org_id,
            roles,
            permissions,
        });
    }
    let principal = Principal {
        id,
        status,
        site_roles: roles.json(),
        memberships: orgs,
        groups,
    };
    Ok(Some((principal, version)))
}
