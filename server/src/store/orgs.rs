use sqlx::Row;

use super::Conn;
use crate::db::flag;
use crate::model::Organization;

pub(crate) const ORG_COLUMNS_O: &str = "o.id, o.name, o.display_name, o.description, o.icon, \
    o.is_default, o.created_at, o.updated_at";

pub(crate) fn org_from_row(row: &sqlx::any::AnyRow) -> sqlx::Result<Organization> {
    Ok(Organization {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        display_name: row.try_get("display_name")?,
        description: row.try_get("description")?,
        icon: row.try_get("icon")?,
        is_default: row.try_get::<i64, _>("is_default")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn insert(conn: &mut Conn, org: &Organization) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO organizations (id, name, name_lower, display_name, description, icon, \
         is_default, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&org.id)
    .bind(&org.name)
    .bind(org.name.to_lowercase())
    .bind(&org.display_name)
    .bind(&org.description)
    .bind(&org.icon)
    .bind(flag(org.is_default))
    .bind(&org.created_at)
    .bind(&org.updated_at)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Finds an organization by id or name.
pub async fn find(conn: &mut Conn, key: &str) -> sqlx::Result<Option<Organization>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ORG_COLUMNS_O} FROM organizations o WHERE o.id = $1 OR o.name_lower = $2"
    )))
    .bind(key)
    .bind(key.to_lowercase())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(org_from_row).transpose()
}

pub async fn default_org(conn: &mut Conn) -> sqlx::Result<Option<Organization>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ORG_COLUMNS_O} FROM organizations o WHERE o.is_default = 1"
    )))
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(org_from_row).transpose()
}

pub async fn list(conn: &mut Conn) -> sqlx::Result<Vec<Organization>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ORG_COLUMNS_O} FROM organizations o ORDER BY o.name"
    )))
    .fetch_all(conn)
    .await?;
    rows.iter().map(org_from_row).collect()
}

pub async fn update(conn: &mut Conn, org: &Organization) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE organizations SET name = $2, name_lower = $3, display_name = $4, description = $5, \
         icon = $6, updated_at = $7 WHERE id = $1",
    )
    .bind(&org.id)
    .bind(&org.name)
    .bind(org.name.to_lowercase())
    .bind(&org.display_name)
    .bind(&org.description)
    .bind(&org.icon)
    .bind(&org.updated_at)
    .execute(conn)
    .await
    .map(|_| ())
}

/// What still lives in an organization, for the delete refusal: groups other
/// than Everyone, and members other than `except_user`. templates, provisioner keys
/// and live workspaces.
pub async fn remaining(
    conn: &mut Conn,
    org_id: &str,
    except_user: &str,
) -> sqlx::Result<Vec<String>> {
    let mut out = Vec::new();
    let groups: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM groups WHERE organization_id = $1 AND id <> $1")
            .bind(org_id)
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
    if groups > 0 {
        out.push(format!("{groups} group(s)"));
    }
    let members: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM organization_members WHERE organization_id = $1 AND user_id <> $2",
    )
    .bind(org_id)
    .bind(except_user)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    if members > 0 {
        out.push(format!("{members} member(s)"));
    }
    let counts = [
        (
            "SELECT COUNT(*) AS n FROM templates WHERE organization_id = $1",
            "template(s)",
        ),
        (
            "SELECT COUNT(*) AS n FROM provisioner_keys WHERE organization_id = $1",
            "provisioner key(s)",
        ),
        (
            "SELECT COUNT(*) AS n FROM workspaces WHERE organization_id = $1 AND deleted = 0",
            "workspace(s)",
        ),
    ];
    for (sql, label) in counts {
        let n: i64 = sqlx::query(sql)
            .bind(org_id)
            .fetch_one(&mut *conn)
            .await?
            .try_get("n")?;
        if n > 0 {
            out.push(format!("{n} {label}"));
        }
    }
    Ok(out)
}

pub async fn delete(conn: &mut Conn, org_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET authz_version = authz_version + 1 \
         WHERE id IN (SELECT user_id FROM organization_members WHERE organization_id = $1)",
    )
    .bind(org_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM organizations WHERE id = $1")
        .bind(org_id)
        .execute(conn)
        .await
        .map(|_| ())
}
