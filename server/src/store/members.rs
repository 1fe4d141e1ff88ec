//! Organization memberships.

use sqlx::Result;

use super::query::{all, execute, optional, scalar, scalars, sql};
use super::users::bump_authz;
use super::{Conn, Write, to_json_list};
use crate::model::Member;

const MEMBER_SELECT: &str = "SELECT m.organization_id, m.user_id, u.username, u.email, u.name, \
    m.roles, m.created_at, m.updated_at FROM organization_members m JOIN users u ON u.id = m.user_id";

/// A new member, with no role but the implicit `organization-member`.
pub async fn insert(w: &mut Write<'_>, org_id: &str, user_id: &str, now: &str) -> Result<()> {
    let sql = "INSERT INTO organization_members (organization_id, user_id, roles, created_at, \
         updated_at) VALUES ($1, $2, '[]', $3, $3)";
    execute(w, sql, (org_id, user_id, now)).await?;
    bump_authz(w, &[user_id]).await
}

pub async fn get(conn: &mut Conn, org_id: &str, user_id: &str) -> Result<Option<Member>> {
    let sql = sql!("{MEMBER_SELECT} WHERE m.organization_id = $1 AND m.user_id = $2");
    optional(conn, sql, (org_id, user_id)).await
}

pub async fn list(conn: &mut Conn, org_id: &str) -> Result<Vec<Member>> {
    let sql = sql!("{MEMBER_SELECT} WHERE m.organization_id = $1 ORDER BY u.username_lower");
    all(conn, sql, (org_id,)).await
}

/// One page of an org's members by username (`limit` after `offset`) and
/// how many members the org has. Two plans give the same rows: for an org
/// holding a good part of the users (the default org), walking the users in
/// username order (their unique index) and keeping its members reads little
/// more than the page, where joining the org's members and sorting them all
/// would cost milliseconds per 10,000; for a small org, the join is cheaper.
pub async fn list_page(
    conn: &mut Conn,
    org_id: &str,
    (limit, offset): (i64, i64),
) -> Result<(Vec<Member>, i64)> {
    const COLUMNS: &str = "m.organization_id, m.user_id, u.username, u.email, u.name, m.roles, \
        m.created_at, m.updated_at";
    let total: i64 = scalar(
        conn,
        "SELECT COUNT(*) FROM organization_members WHERE organization_id = $1",
        (org_id,),
    )
    .await?;
    let users = super::users::count(conn).await?;
    // `CROSS JOIN` keeps SQLite's join order (users first); PostgreSQL plans
    // it as any inner join.
    let sql = if total.saturating_mul(20) >= users {
        sql!(
            "SELECT {COLUMNS} FROM users u CROSS JOIN organization_members m \
             WHERE m.organization_id = $1 AND m.user_id = u.id \
             ORDER BY u.username_lower LIMIT $2 OFFSET $3"
        )
    } else {
        sql!(
            "{MEMBER_SELECT} WHERE m.organization_id = $1 ORDER BY u.username_lower LIMIT $2 OFFSET $3"
        )
    };
    Ok((all(conn, sql, (org_id, limit, offset)).await?, total))
}

pub async fn set_roles(
    w: &mut Write<'_>,
    org_id: &str,
    user_id: &str,
    roles: &[String],
    now: &str,
) -> Result<()> {
    let sql = "UPDATE organization_members SET roles = $1, updated_at = $2 \
         WHERE organization_id = $3 AND user_id = $4";
    execute(w, sql, (to_json_list(roles), now, org_id, user_id)).await?;
    bump_authz(w, &[user_id]).await
}

/// Removes a membership and, in the same statement set, the user's memberships of
/// that org's groups. Returns the ids of the groups the user left.
pub async fn remove(w: &mut Write<'_>, org_id: &str, user_id: &str) -> Result<Vec<String>> {
    let args = (org_id, user_id);
    let groups = scalars(
        w.conn(),
        "SELECT group_id FROM group_members WHERE organization_id = $1 AND user_id = $2 \
         ORDER BY group_id",
        args,
    )
    .await?;
    let of_user = "WHERE organization_id = $1 AND user_id = $2";
    execute(w, sql!("DELETE FROM group_members {of_user}"), args).await?;
    execute(w, sql!("DELETE FROM organization_members {of_user}"), args).await?;
    bump_authz(w, &[user_id]).await?;
    Ok(groups)
}

/// User ids of every member of an org.
pub async fn user_ids(conn: &mut Conn, org_id: &str) -> Result<Vec<String>> {
    let sql = "SELECT user_id FROM organization_members WHERE organization_id = $1";
    scalars(conn, sql, (org_id,)).await
}

/// New organization memberships: (organization_id, user_id, roles,
/// created_at, updated_at) each; existing ones are kept.
pub async fn insert_many(w: &mut Write<'_>, rows: Vec<super::bulk::ArgRow>) -> Result<()> {
    let head = "organization_members (organization_id, user_id, roles, created_at, updated_at)";
    let tail = "ON CONFLICT (organization_id, user_id) DO NOTHING";
    super::bulk::insert_rows(w, head, tail, rows).await
}
