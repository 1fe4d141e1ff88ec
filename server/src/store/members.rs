use sqlx::Row;

use super::{Conn, json_list, to_json_list};
use crate::model::Member;

const MEMBER_SELECT: &str = "SELECT m.organization_id, m.user_id, u.username, u.email, u.name, \
    m.roles, m.created_at, m.updated_at FROM organization_members m JOIN users u ON u.id = m.user_id";

fn member_from_row(row: &sqlx::any::AnyRow) -> sqlx::Result<Member> {
    Ok(Member {
        organization_id: row.try_get("organization_id")?,
        user_id: row.try_get("user_id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        roles: json_list(&row.try_get::<String, _>("roles")?),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert(
    conn: &mut Conn,
    org_id: &str,
    user_id: &str,
    roles: &[String],
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO organization_members (organization_id, user_id, roles, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(to_json_list(roles))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    super::users::bump_authz(conn, &[user_id]).await
}

pub async fn get(conn: &mut Conn, org_id: &str, user_id: &str) -> sqlx::Result<Option<Member>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{MEMBER_SELECT} WHERE m.organization_id = $1 AND m.user_id = $2"
    )))
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(member_from_row).transpose()
}

pub async fn list(conn: &mut Conn, org_id: &str) -> sqlx::Result<Vec<Member>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{MEMBER_SELECT} WHERE m.organization_id = $1 ORDER BY u.username_lower"
    )))
    .bind(org_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(member_from_row).collect()
}

pub async fn set_roles(
    conn: &mut Conn,
    org_id: &str,
    user_id: &str,
    roles: &[String],
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE organization_members SET roles = $3, updated_at = $4 \
         WHERE organization_id = $1 AND user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(to_json_list(roles))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    super::users::bump_authz(conn, &[user_id]).await
}

/// Removes a membership and, in the same statement set, the user's memberships of
/// that org's groups. Returns the ids of the groups the user left.
pub async fn remove(conn: &mut Conn, org_id: &str, user_id: &str) -> sqlx::Result<Vec<String>> {
    let groups: Vec<String> = sqlx::query(
        "SELECT group_id FROM group_members WHERE organization_id = $1 AND user_id = $2 ORDER BY group_id",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.try_get("group_id"))
    .collect::<sqlx::Result<_>>()?;
    sqlx::query("DELETE FROM group_members WHERE organization_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM organization_members WHERE organization_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    super::users::bump_authz(conn, &[user_id]).await?;
    Ok(groups)
}

/// User ids of every member of an org.
pub async fn user_ids(conn: &mut Conn, org_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query("SELECT user_id FROM organization_members WHERE organization_id = $1")
        .bind(org_id)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| r.try_get("user_id"))
        .collect()
}

/// New organization memberships: (organization_id, user_id, roles,
/// created_at, updated_at) each; existing ones are kept.
pub async fn insert_many(tx: &mut Conn, rows: Vec<super::bulk::ArgRow>) -> sqlx::Result<()> {
    super::bulk::insert_rows(
        tx,
        "organization_members (organization_id, user_id, roles, created_at, updated_at)",
        "ON CONFLICT (organization_id, user_id) DO NOTHING",
        5,
        rows,
    )
    .await
}
