//! The authorization data of a user, read for the policy engine.

use orgsync_policy::{OrgMembership, Principal};
use sqlx::Result;

use super::Conn;
use super::query::{Text, optional, scalars};

/// Loads a user's status, site roles, memberships (with org roles) and groups.
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
    let principal = Principal {
        id,
        status,
        site_roles: roles.json(),
        memberships: memberships
            .into_iter()
            .map(|(org_id, roles)| OrgMembership {
                org_id,
                roles: roles.json(),
            })
            .collect(),
        groups,
    };
    Ok(Some((principal, version)))
}

/// Every user's authorization data with its username, in id order (what a
/// policy change's impact is evaluated against).
pub async fn load_all(conn: &mut Conn) -> Result<Vec<(Principal, String)>> {
    let sql = "SELECT id, username, status, roles FROM users ORDER BY id";
    let users: Vec<(String, String, String, Text)> = super::query::all(&mut *conn, sql, ()).await?;
    let sql = "SELECT user_id, organization_id, roles FROM organization_members ORDER BY user_id, organization_id";
    let members: Vec<(String, String, Text)> = super::query::all(&mut *conn, sql, ()).await?;
    let sql = "SELECT user_id, group_id FROM group_members ORDER BY user_id, group_id";
    let groups: Vec<(String, String)> = super::query::all(&mut *conn, sql, ()).await?;
    let mut by_id: std::collections::HashMap<String, Principal> = users
        .iter()
        .map(|(id, _, status, roles)| {
            let p = Principal {
                id: id.clone(),
                status: status.clone(),
                site_roles: roles.json(),
                memberships: Vec::new(),
                groups: Vec::new(),
            };
            (id.clone(), p)
        })
        .collect();
    for (user_id, org_id, roles) in members {
        if let Some(p) = by_id.get_mut(&user_id) {
            p.memberships.push(OrgMembership {
                org_id,
                roles: roles.json(),
            });
        }
    }
    for (user_id, group_id) in groups {
        if let Some(p) = by_id.get_mut(&user_id) {
            p.groups.push(group_id);
        }
    }
    Ok(users
        .into_iter()
        .filter_map(|(id, name, _, _)| by_id.remove(&id).map(|p| (p, name)))
        .collect())
}
