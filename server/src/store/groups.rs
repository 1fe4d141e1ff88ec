use sqlx::Row;

use super::Conn;
use crate::model::{EVERYONE, Group, GroupMember};

const GROUP_COLUMNS: &str = "id, organization_id, name, display_name, avatar_url, quota_allowance, \
    source, created_at, updated_at";

fn group_from_row(row: &sqlx::any::AnyRow) -> sqlx::Result<Group> {
    let id: String = row.try_get("id")?;
    let org: String = row.try_get("organization_id")?;
    Ok(Group {
        is_everyone: id == org,
        id,
        organization_id: org,
        name: row.try_get("name")?,
        display_name: row.try_get("display_name")?,
        avatar_url: row.try_get("avatar_url")?,
        quota_allowance: row.try_get("quota_allowance")?,
        source: row.try_get("source")?,
        members: Vec::new(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

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

pub async fn insert(conn: &mut Conn, g: &NewGroup<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO groups (id, organization_id, name, name_lower, display_name, avatar_url, \
         quota_allowance, source, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(g.id)
    .bind(g.organization_id)
    .bind(g.name)
    .bind(g.name.to_lowercase())
    .bind(g.display_name)
    .bind(g.avatar_url)
    .bind(g.quota_allowance)
    .bind(g.source)
    .bind(g.now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Creates an organization's Everyone group (id == organization id).
pub async fn insert_everyone(conn: &mut Conn, org_id: &str, now: &str) -> sqlx::Result<()> {
    insert(
        conn,
        &NewGroup {
            id: org_id,
            organization_id: org_id,
            name: EVERYONE,
            display_name: "",
            avatar_url: "",
            quota_allowance: 0,
            source: "user",
            now,
        },
    )
    .await
}

pub async fn find(conn: &mut Conn, id: &str) -> sqlx::Result<Option<Group>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {GROUP_COLUMNS} FROM groups WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(group_from_row).transpose()
}

pub async fn find_by_name(
    conn: &mut Conn,
    org_id: &str,
    name: &str,
) -> sqlx::Result<Option<Group>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {GROUP_COLUMNS} FROM groups WHERE organization_id = $1 AND name_lower = $2"
    )))
    .bind(org_id)
    .bind(name.to_lowercase())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(group_from_row).transpose()
}

pub async fn list(conn: &mut Conn, org_id: &str) -> sqlx::Result<Vec<Group>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {GROUP_COLUMNS} FROM groups WHERE organization_id = $1 ORDER BY (id = organization_id) DESC, name_lower"
    )))
    .bind(org_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(group_from_row).collect()
}

/// The members of a group; the Everyone group holds every org member.
pub async fn members(conn: &mut Conn, group: &Group) -> sqlx::Result<Vec<GroupMember>> {
    let rows = if group.is_everyone {
        sqlx::query(
            "SELECT u.id, u.username, u.email, u.name FROM organization_members m \
             JOIN users u ON u.id = m.user_id WHERE m.organization_id = $1 ORDER BY u.username_lower",
        )
        .bind(&group.organization_id)
        .fetch_all(conn)
        .await?
    } else {
        sqlx::query(
            "SELECT u.id, u.username, u.email, u.name FROM group_members g \
             JOIN users u ON u.id = g.user_id WHERE g.group_id = $1 ORDER BY u.username_lower",
        )
        .bind(&group.id)
        .fetch_all(conn)
        .await?
    };
    rows.iter()
        .map(|r| {
            Ok(GroupMember {
                id: r.try_get("id")?,
                username: r.try_get("username")?,
                email: r.try_get("email")?,
                name: r.try_get("name")?,
            })
        })
        .collect()
}

pub async fn update(conn: &mut Conn, g: &Group) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE groups SET name = $2, name_lower = $3, display_name = $4, avatar_url = $5, \
         quota_allowance = $6, updated_at = $7 WHERE id = $1",
    )
    .bind(&g.id)
    .bind(&g.name)
    .bind(g.name.to_lowercase())
    .bind(&g.display_name)
    .bind(&g.avatar_url)
    .bind(g.quota_allowance)
    .bind(&g.updated_at)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn add_member(
    conn: &mut Conn,
    group: &Group,
    user_id: &str,
    now: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO group_members (group_id, user_id, organization_id, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (group_id, user_id) DO NOTHING",
    )
    .bind(&group.id)
    .bind(user_id)
    .bind(&group.organization_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    super::users::bump_authz(conn, &[user_id]).await?;
    Ok(done.rows_affected() > 0)
}

pub async fn remove_member(conn: &mut Conn, group_id: &str, user_id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
        .bind(group_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    super::users::bump_authz(conn, &[user_id]).await?;
    Ok(done.rows_affected() > 0)
}

pub async fn member_ids(conn: &mut Conn, group_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query("SELECT user_id FROM group_members WHERE group_id = $1")
        .bind(group_id)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| r.try_get("user_id"))
        .collect()
}

pub async fn delete(conn: &mut Conn, group_id: &str) -> sqlx::Result<()> {
    let members = member_ids(&mut *conn, group_id).await?;
    sqlx::query("DELETE FROM groups WHERE id = $1")
        .bind(group_id)
        .execute(&mut *conn)
        .await?;
    let ids: Vec<&str> = members.iter().map(String::as_str).collect();
    super::users::bump_authz(conn, &ids).await
}

/// Every group but the Everyone groups, as (id, organization_id, name).
pub async fn list_all_named(conn: &mut Conn) -> sqlx::Result<Vec<(String, String, String)>> {
    sqlx::query("SELECT id, organization_id, name FROM groups WHERE id <> organization_id")
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get("organization_id")?,
                r.try_get("name")?,
            ))
        })
        .collect()
}

/// New group memberships: (group_id, user_id, organization_id, created_at)
/// each; existing ones are kept.
pub async fn insert_members_many(
    tx: &mut Conn,
    rows: Vec<super::bulk::ArgRow>,
) -> sqlx::Result<()> {
    super::bulk::insert_rows(
        tx,
        "group_members (group_id, user_id, organization_id, created_at)",
        "ON CONFLICT (group_id, user_id) DO NOTHING",
        4,
        rows,
    )
    .await
}
