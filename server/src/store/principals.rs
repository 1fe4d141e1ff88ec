//! The authorization data of a user, read for the policy engine.

use sqlx::Row;

use super::{Conn, json_list};
use orgsync_policy::{OrgMembership, Principal};

/// Loads a user's status, site roles, memberships (with org roles) and groups.
/// Returns the data with the `authz_version` it was read at.
pub async fn load(conn: &mut Conn, user_id: &str) -> sqlx::Result<Option<(Principal, i64)>> {
    let Some(row) = sqlx::query("SELECT id, status, roles, authz_version FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let memberships =
        sqlx::query("SELECT organization_id, roles FROM organization_members WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| {
                Ok(OrgMembership {
                    org_id: r.try_get("organization_id")?,
                    roles: json_list(&r.try_get::<String, _>("roles")?),
                })
            })
            .collect::<sqlx::Result<Vec<_>>>()?;
    let groups = sqlx::query("SELECT group_id FROM group_members WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get("group_id"))
        .collect::<sqlx::Result<Vec<String>>>()?;
    let principal = Principal {
        id: row.try_get("id")?,
        status: row.try_get("status")?,
        site_roles: json_list(&row.try_get::<String, _>("roles")?),
        memberships,
        groups,
    };
    Ok(Some((principal, row.try_get("authz_version")?)))
}
