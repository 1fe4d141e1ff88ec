//! Organizations.

use sqlx::Result;

use super::query::{all, execute, optional, scalar, sql};
use super::{Conn, Write};
use crate::db::flag;
use crate::model::Organization;

pub(crate) const ORG_COLUMNS_O: &str = "o.id, o.name, o.display_name, o.description, o.icon, \
    o.is_default, o.created_at, o.updated_at";

pub async fn insert(w: &mut Write<'_>, org: &Organization) -> Result<()> {
    let sql = "INSERT INTO organizations (id, name, name_lower, display_name, description, icon, \
         is_default, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    let o = org;
    let args = (
        &o.id,
        &o.name,
        o.name.to_lowercase(),
        &o.display_name,
        &o.description,
        &o.icon,
        flag(o.is_default),
        &o.created_at,
        &o.updated_at,
    );
    execute(w, sql, args).await
}

/// Finds an organization by id or name.
pub async fn find(conn: &mut Conn, key: &str) -> Result<Option<Organization>> {
    let sql =
        sql!("SELECT {ORG_COLUMNS_O} FROM organizations o WHERE o.id = $1 OR o.name_lower = $2");
    optional(conn, sql, (key, key.to_lowercase())).await
}

pub async fn default_org(conn: &mut Conn) -> Result<Option<Organization>> {
    let sql = sql!("SELECT {ORG_COLUMNS_O} FROM organizations o WHERE o.is_default = 1");
    optional(conn, sql, ()).await
}

pub async fn list(conn: &mut Conn) -> Result<Vec<Organization>> {
    all(
        conn,
        sql!("SELECT {ORG_COLUMNS_O} FROM organizations o ORDER BY o.name"),
        (),
    )
    .await
}

pub async fn update(w: &mut Write<'_>, org: &Organization) -> Result<()> {
    let sql = "UPDATE organizations SET name = $1, name_lower = $2, display_name = $3, \
         description = $4, icon = $5, updated_at = $6 WHERE id = $7";
    let o = org;
    let args = (
        &o.name,
        o.name.to_lowercase(),
        &o.display_name,
        &o.description,
        &o.icon,
        &o.updated_at,
        &o.id,
    );
    execute(w, sql, args).await
}

/// What still lives in an organization, for the delete refusal: groups other
/// than Everyone, members other than `except_user`, templates, provisioner
/// keys and live workspaces.
pub async fn remaining(conn: &mut Conn, org_id: &str, except_user: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (from, label) in [
        ("groups WHERE organization_id = $1 AND id <> $1", "group(s)"),
        (
            "organization_members WHERE organization_id = $1 AND user_id <> $2",
            "member(s)",
        ),
        ("templates WHERE organization_id = $1", "template(s)"),
        (
            "provisioner_keys WHERE organization_id = $1",
            "provisioner key(s)",
        ),
        (
            "workspaces WHERE organization_id = $1 AND deleted = 0",
            "workspace(s)",
        ),
    ] {
        // `from` is one of these constants: no input reaches the SQL text.
        let sql = sql!("SELECT COUNT(*) FROM {from}");
        let n: i64 = if from.contains("$2") {
            scalar(&mut *conn, sql, (org_id, except_user)).await?
        } else {
            scalar(&mut *conn, sql, (org_id,)).await?
        };
        if n > 0 {
            out.push(format!("{n} {label}"));
        }
    }
    Ok(out)
}

pub async fn delete(w: &mut Write<'_>, org_id: &str) -> Result<()> {
    let members = "UPDATE users SET authz_version = authz_version + 1 \
         WHERE id IN (SELECT user_id FROM organization_members WHERE organization_id = $1)";
    execute(w, members, (org_id,)).await?;
    execute(w, "DELETE FROM organizations WHERE id = $1", (org_id,)).await
}
