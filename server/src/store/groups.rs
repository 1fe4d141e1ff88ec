//! Groups and their members.

use sqlx::Result;

use super::query::{affected, all, execute, optional, scalar, scalars, sql};
use super::users::bump_authz;
use super::{Conn, Write};
use crate::model::{EVERYONE, Group, GroupMember};

const GROUP_COLUMNS: &str = "id, organization_id, name, display_name, avatar_url, \
    quota_allowance, source, CASE WHEN id = organization_id THEN 1 ELSE 0 END AS is_everyone, \
    created_at, updated_at";

pub struct NewGroup<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    pub name: &'a str,
    pub display_name: &'a str,
    pub avatar_url: &'a str,
    pub quota_allowance: i64,
    pub source: &'a str,
    pub now: &'a str,
}

pub async fn insert(w: &mut Write<'_>, g: &NewGroup<'_>) -> Result<()> {
    let sql = "INSERT INTO groups (id, organization_id, name, name_lower, display_name, avatar_url, \
         quota_allowance, source, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)";
    let args = (
        g.id,
        g.organization_id,
        g.name,
        g.name.to_lowercase(),
        g.display_name,
        g.avatar_url,
        g.quota_allowance,
        g.source,
        g.now,
    );
    execute(w, sql, args).await
}

/// Creates an organization's Everyone group (id == organization id).
pub async fn insert_everyone(w: &mut Write<'_>, org_id: &str, now: &str) -> Result<()> {
    let everyone = NewGroup {
        id: org_id,
        organization_id: org_id,
        name: EVERYONE,
        display_name: "",
        avatar_url: "",
        quota_allowance: 0,
        source: "user",
        now,
    };
    insert(w, &everyone).await
}

pub async fn find(conn: &mut Conn, id: &str) -> Result<Option<Group>> {
    optional(
        conn,
        sql!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = $1"),
        (id,),
    )
    .await
}

pub async fn find_by_name(conn: &mut Conn, org_id: &str, name: &str) -> Result<Option<Group>> {
    let sql =
        sql!("SELECT {GROUP_COLUMNS} FROM groups WHERE organization_id = $1 AND name_lower = $2");
    optional(conn, sql, (org_id, name.to_lowercase())).await
}

pub async fn list(conn: &mut Conn, org_id: &str) -> Result<Vec<Group>> {
    let sql = sql!(
        "SELECT {GROUP_COLUMNS} FROM groups WHERE organization_id = $1 \
         ORDER BY (id = organization_id) DESC, name_lower"
    );
    all(conn, sql, (org_id,)).await
}

/// Where a group's members are: the table, its column naming the group, and
/// the key (the Everyone group holds every member of its org).
fn member_rows(group: &Group) -> (&'static str, &'static str, &str) {
    if group.is_everyone {
        (
            "organization_members",
            "organization_id",
            &group.organization_id,
        )
    } else {
        ("group_members", "group_id", &group.id)
    }
}

/// The members of a group; the Everyone group holds every org member.
pub async fn members(conn: &mut Conn, group: &Group) -> Result<Vec<GroupMember>> {
    let (table, column, key) = member_rows(group);
    // The names are the constants above: no input reaches the SQL text.
    let sql = sql!(
        "SELECT u.id, u.username, u.email, u.name FROM {table} m \
         JOIN users u ON u.id = m.user_id WHERE m.{column} = $1 ORDER BY u.username_lower"
    );
    all(conn, sql, (key,)).await
}

/// How many members a group has (the Everyone group: the org's members),
/// without reading them: for listings.
pub async fn member_count(conn: &mut Conn, group: &Group) -> Result<i64> {
    let (table, column, key) = member_rows(group);
    // The names are the constants above: no input reaches the SQL text.
    let sql = sql!("SELECT COUNT(*) FROM {table} WHERE {column} = $1");
    scalar(conn, sql, (key,)).await
}

pub async fn update(w: &mut Write<'_>, g: &Group) -> Result<()> {
    let sql = "UPDATE groups SET name = $1, name_lower = $2, display_name = $3, avatar_url = $4, \
         quota_allowance = $5, updated_at = $6 WHERE id = $7";
    let args = (
        &g.name,
        g.name.to_lowercase(),
        &g.display_name,
        &g.avatar_url,
        g.quota_allowance,
        &g.updated_at,
        &g.id,
    );
    execute(w, sql, args).await
}

pub async fn add_member(
    w: &mut Write<'_>,
    group: &Group,
    user_id: &str,
    now: &str,
) -> Result<bool> {
    let sql = "INSERT INTO group_members (group_id, user_id, organization_id, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (group_id, user_id) DO NOTHING";
    let added = affected(w, sql, (&group.id, user_id, &group.organization_id, now)).await?;
    bump_authz(w, &[user_id]).await?;
    Ok(added > 0)
}

pub async fn remove_member(w: &mut Write<'_>, group_id: &str, user_id: &str) -> Result<bool> {
    let sql = "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2";
    let removed = affected(w, sql, (group_id, user_id)).await?;
    bump_authz(w, &[user_id]).await?;
    Ok(removed > 0)
}

pub async fn member_ids(conn: &mut Conn, group_id: &str) -> Result<Vec<String>> {
    let sql = "SELECT user_id FROM group_members WHERE group_id = $1";
    scalars(conn, sql, (group_id,)).await
}

pub async fn delete(w: &mut Write<'_>, group_id: &str) -> Result<()> {
    let members = member_ids(w.conn(), group_id).await?;
    execute(w, "DELETE FROM groups WHERE id = $1", (group_id,)).await?;
    let ids: Vec<&str> = members.iter().map(String::as_str).collect();
    bump_authz(w, &ids).await
}

/// Every group but the Everyone groups, as (id, organization_id, name).
pub async fn list_all_named(conn: &mut Conn) -> Result<Vec<(String, String, String)>> {
    let sql = "SELECT id, organization_id, name FROM groups WHERE id <> organization_id";
    all(conn, sql, ()).await
}

/// New group memberships: (group_id, user_id, organization_id, created_at)
/// each; existing ones are kept.
pub async fn insert_members_many(w: &mut Write<'_>, rows: Vec<super::bulk::ArgRow>) -> Result<()> {
    let head = "group_members (group_id, user_id, organization_id, created_at)";
    super::bulk::insert_rows(w, head, "ON CONFLICT (group_id, user_id) DO NOTHING", rows).await
}
